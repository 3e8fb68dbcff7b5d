"""PoissonMixture: the first family plugged into the generic MixtureModel.

Parity is checked against a plain NumPy EM written here (slow, obviously
right) from the same start; every fitting path (in memory, chunks, Dask,
online, weights) and every shared feature (save/load, select) goes through
code the Poisson family does not own.
"""

import json
import math

import numpy as np
import pytest

import fastem
from fastem import PoissonMixture
from fastem.chunks import array_chunks
from fastem.families.poisson import PoissonFamily, PoissonParams

# Tolerance of the comparisons with the NumPy reference: both compute the
# same sums in float64 in different orders (chunked, fused); the relative
# difference of a sum of N positive terms is ~N u = 1e-12 at N = 1e4.
RTOL = 1e-10


def _data(n=1500, seed=0):
    rng = np.random.default_rng(seed)
    lam = np.array([[1.0, 8.0, 0.5], [9.0, 2.0, 3.0], [4.0, 4.0, 12.0]])
    z = rng.integers(0, 3, n)
    return rng.poisson(lam[z]).astype(np.float64), z


def _logfact(X):
    return np.vectorize(math.lgamma)(X + 1.0).sum(axis=1)


def _ref_loglik_resp(X, w, rates):
    lp = (np.log(w)[None, :] - rates.sum(axis=1)[None, :]
          + X @ np.log(rates).T - _logfact(X)[:, None])
    m = lp.max(axis=1, keepdims=True)
    lse = (m + np.log(np.exp(lp - m).sum(axis=1, keepdims=True)))[:, 0]
    return lse, np.exp(lp - lse[:, None])


def _ref_em(X, w, rates, n_iter, reg=1e-6, sw=None):
    """Plain EM; returns the lower bound of each iteration and the params."""
    sw = np.ones(X.shape[0]) if sw is None else sw
    bounds = []
    for _ in range(n_iter):
        lse, r = _ref_loglik_resp(X, w, rates)
        bounds.append(float((sw * lse).sum() / sw.sum()))
        r = r * sw[:, None]
        nk = r.sum(axis=0)
        nk = nk + 10 * np.finfo(float).eps * (nk.sum() / nk.size)
        w = nk / nk.sum()
        rates = (r.T @ X) / nk[:, None] + reg
    return bounds, w, rates


START_W = np.array([0.3, 0.3, 0.4])
START_R = np.array([[2.0, 6.0, 1.0], [7.0, 3.0, 2.0], [3.0, 3.0, 9.0]])


def _from_start(**kw):
    return PoissonMixture(3, weights_init=START_W, rates_init=START_R, tol=0,
                          max_iter=6, **kw)


def _fit_quiet(model, *args, method="fit", **kw):
    with pytest.warns(fastem.ConvergenceWarning):  # tol=0: never converges
        return getattr(model, method)(*args, **kw)


def test_matches_numpy_reference_every_iteration():
    X, _ = _data()
    pm = _fit_quiet(_from_start(), X)
    bounds, w, rates = _ref_em(X, START_W, START_R, 6)
    np.testing.assert_allclose(pm.lower_bounds_, bounds, rtol=RTOL)
    np.testing.assert_allclose(pm.weights_, w, rtol=RTOL)
    np.testing.assert_allclose(pm.rates_, rates, rtol=RTOL)
    lse, resp = _ref_loglik_resp(X, pm.weights_, pm.rates_)
    np.testing.assert_allclose(pm.score_samples(X), lse, rtol=RTOL)
    np.testing.assert_allclose(pm.predict_proba(X), resp, rtol=1e-9,
                               atol=1e-14)
    np.testing.assert_array_equal(pm.predict(X), resp.argmax(axis=1))


def test_split_then_merge_equals_whole():
    X, _ = _data()
    fam = PoissonFamily()
    p = PoissonParams(START_W, START_R)
    w = np.random.default_rng(1).uniform(0, 2, X.shape[0])
    whole = fam.stats(p, X, w)
    parts = fam.stats(p, X[:700], w[:700]) + fam.stats(p, X[700:], w[700:])
    for k in ("nk", "sums"):
        np.testing.assert_allclose(parts[k], whole[k], rtol=1e-12)
    assert parts.loglik == pytest.approx(whole.loglik, rel=1e-12)
    assert parts.weight_sum == pytest.approx(whole.weight_sum, rel=1e-12)
    assert parts.n_samples == whole.n_samples == X.shape[0]


def test_objective_never_decreases_from_random_starts():
    X, _ = _data(seed=3)
    for init in ("kmeans", "k-means++", "random", "random_from_data"):
        pm = PoissonMixture(3, init_params=init, random_state=2, tol=1e-10,
                            max_iter=200).fit(X)
        d = np.diff(pm.lower_bounds_)
        assert d.min() >= -1e-12 * abs(pm.lower_bound_), (init, d.min())
        assert pm.converged_


def test_recovers_the_rates():
    X, z = _data(n=6000, seed=4)
    pm = PoissonMixture(3, random_state=0, n_init=2).fit(X)
    order = np.argsort(pm.rates_[:, 2])
    np.testing.assert_allclose(pm.rates_[order],
                               [[1.0, 8.0, 0.5], [9.0, 2.0, 3.0],
                                [4.0, 4.0, 12.0]], atol=0.4)


def test_integer_weights_equal_repeated_rows():
    X, _ = _data(n=600)
    reps = np.random.default_rng(5).integers(0, 3, X.shape[0])
    a = _fit_quiet(_from_start(), X, sample_weight=reps.astype(float))
    b = _fit_quiet(_from_start(), np.repeat(X, reps, axis=0))
    np.testing.assert_allclose(a.lower_bounds_, b.lower_bounds_, rtol=RTOL)
    np.testing.assert_allclose(a.rates_, b.rates_, rtol=RTOL)
    bounds, _, rates = _ref_em(X, START_W, START_R, 6, sw=reps.astype(float))
    np.testing.assert_allclose(a.lower_bounds_, bounds, rtol=RTOL)


def test_chunked_equals_in_memory():
    X, _ = _data()
    a = _fit_quiet(_from_start(), X)
    b = _fit_quiet(_from_start(), array_chunks(X, 256), method="fit_chunks")
    np.testing.assert_allclose(b.lower_bounds_, a.lower_bounds_, rtol=RTOL)
    np.testing.assert_allclose(b.rates_, a.rates_, rtol=RTOL)
    assert b.n_features_in_ == 3


def test_dask_equals_in_memory():
    da = pytest.importorskip("dask.array")
    X, _ = _data()
    sw = np.random.default_rng(6).uniform(0.5, 2, X.shape[0])
    a = _fit_quiet(_from_start(), X, sample_weight=sw)
    Xd = da.from_array(X, chunks=(400, 3))
    b = _fit_quiet(_from_start(), Xd, sample_weight=sw)
    np.testing.assert_allclose(b.lower_bounds_, a.lower_bounds_, rtol=RTOL)
    np.testing.assert_allclose(b.rates_, a.rates_, rtol=RTOL)
    np.testing.assert_array_equal(b.predict(Xd).compute(), a.predict(X))
    np.testing.assert_allclose(b.score_samples(Xd).compute(),
                               a.score_samples(X), rtol=1e-12)


def test_online_approaches_the_batch_fit():
    X, _ = _data(n=20000, seed=7)
    batch = PoissonMixture(3, random_state=0).fit(X)
    online = PoissonMixture(3, random_state=0)
    for i in range(0, X.shape[0], 500):
        online.partial_fit(X[i:i + 500])
    assert online.n_batches_ == 40
    a = np.argsort(batch.rates_[:, 2])
    b = np.argsort(online.rates_[:, 2])
    # stochastic approximation: close to the batch optimum, not equal
    np.testing.assert_allclose(online.rates_[b], batch.rates_[a], atol=0.5)
    assert online.score(X) > batch.score(X) - 0.01


def test_thread_count_does_not_change_results():
    X, _ = _data(n=20000)
    a = _fit_quiet(_from_start(n_threads=1), X)
    b = _fit_quiet(_from_start(n_threads=2), X)
    assert a.lower_bounds_ == b.lower_bounds_
    np.testing.assert_array_equal(a.rates_, b.rates_)


def test_float32_input():
    X, _ = _data()
    a = _fit_quiet(_from_start(), X)
    b = _fit_quiet(_from_start(), X.astype(np.float32))
    assert b.rates_.dtype == np.float32 and b.weights_.dtype == np.float32
    np.testing.assert_allclose(b.rates_, a.rates_, rtol=1e-6)
    assert b.score_samples(X.astype(np.float32)).dtype == np.float32


def test_save_load_is_exact(tmp_path):
    X, _ = _data()
    pm = PoissonMixture(3, random_state=0, reg_rate=1e-4).fit(X)
    path = pm.save(tmp_path / "p.json", metadata={"source": "test"})
    back = fastem.load(path)
    assert type(back) is PoissonMixture
    assert back.get_params() == pm.get_params()
    np.testing.assert_array_equal(back.rates_, pm.rates_)
    np.testing.assert_array_equal(back.predict_proba(X), pm.predict_proba(X))
    assert back.lower_bounds_ == pm.lower_bounds_
    assert PoissonMixture.load(path).n_iter_ == pm.n_iter_
    # an unfitted model saves its parameters only
    PoissonMixture(2, rates_init=[[1.0], [2.0]]).save(tmp_path / "u.json")
    u = fastem.load(tmp_path / "u.json")
    np.testing.assert_array_equal(u.rates_init, [[1.0], [2.0]])
    with pytest.raises(ValueError, match="holds a fastem.PoissonMixture"):
        fastem.GaussianMixture.load(path)


@pytest.mark.parametrize("edit, match", [
    (lambda f: f.update(rates=[[1.0, -2.0, 1.0]] * 3), "positive"),
    (lambda f: f.update(rates=[[1.0, 2.0]] * 3), "features"),
    (lambda f: f.pop("rates"), "rates"),
    (lambda f: f.update(n_iter="x"), "n_iter"),
])
def test_damaged_file_is_refused(tmp_path, edit, match):
    X, _ = _data(n=300)
    path = PoissonMixture(3, random_state=0).fit(X).save(tmp_path / "p.json")
    d = json.loads(open(path).read())
    edit(d["fitted"])
    open(path, "w").write(json.dumps(d))
    with pytest.raises(fastem.io.ModelFileError, match=match):
        fastem.load(path)


def test_select_over_k():
    X, _ = _data(n=3000, seed=8)
    res = fastem.select(X, range(1, 6), estimator=PoissonMixture(),
                        random_state=0, n_init=2)
    assert res.best_params["n_components"] == 3
    assert isinstance(res.best_model, PoissonMixture)
    row = next(r for r in res.results if r["n_components"] == 2)
    assert row["n_parameters"] == 2 * 3 + 1
    assert row["covariance_type"] is None
    assert row["bic"] == pytest.approx(
        res.models[(2, None)].bic(X), rel=1e-10)
    with pytest.raises(ValueError, match="no covariance_type"):
        fastem.select(X, 2, covariance_types="full", estimator=PoissonMixture())


def test_bic_aic_sample():
    X, _ = _data()
    pm = PoissonMixture(3, random_state=0).fit(X)
    n = X.shape[0]
    assert pm.n_parameters() == 3 * 3 + 2
    assert pm.bic(X) == pytest.approx(-2 * pm.score(X) * n + 11 * np.log(n))
    assert pm.aic(X) == pytest.approx(-2 * pm.score(X) * n + 22)
    S, y = pm.sample(20000)
    assert S.shape == (20000, 3) and np.all(S == np.floor(S)) and S.min() >= 0
    for k in range(3):
        np.testing.assert_allclose(S[y == k].mean(axis=0), pm.rates_[k],
                                   rtol=0.1, atol=0.1)


@pytest.mark.parametrize("X, match", [
    (np.array([[1.0, 2.0], [-1.0, 0.0], [3.0, 1.0]]), "1 negative"),
    (np.array([[1.0, 2.5], [1.0, 0.0], [3.0, 1.0]]), "1 non-integer"),
    (np.array([[1.0, np.inf], [1.0, 0.0], [3.0, 1.0]]), "nfinity"),
])
def test_bad_counts_get_a_clear_error(X, match):
    with pytest.raises(ValueError, match=match):
        PoissonMixture(2).fit(X)


def test_bad_parameters_get_a_clear_error():
    X, _ = _data(n=200)
    with pytest.raises(ValueError, match="reg_rate"):
        PoissonMixture(2, reg_rate=-1).fit(X)
    with pytest.raises(ValueError, match=r"rates_init must have shape \(2, 3\)"):
        PoissonMixture(2, rates_init=np.ones((3, 3))).fit(X)
    with pytest.raises(ValueError, match="positive"):
        PoissonMixture(2, rates_init=np.zeros((2, 3))).fit(X)
    with pytest.raises(ValueError, match="init_params"):
        PoissonMixture(2, init_params="hc").fit(X)
    pm = PoissonMixture(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="3 features"):
        pm.predict(X[:, :2])
    with pytest.raises(ValueError, match="negative"):
        pm.predict(-X)


def test_input_not_modified_and_sklearn_clone():
    sk_base = pytest.importorskip("sklearn.base")
    X, _ = _data(n=300)
    X.flags.writeable = False
    pm = PoissonMixture(2, random_state=0)
    pm.fit(X)
    c = sk_base.clone(pm)
    assert c.get_params() == pm.get_params() and not hasattr(c, "rates_")



def _ref_em_missing(X, w, rates, n_iter, reg=1e-6):
    """Plain EM over the observed entries (NaN left out of each product)."""
    obs = ~np.isnan(X)
    X0 = np.where(obs, X, 0.0)
    bounds = []
    for _ in range(n_iter):
        lp = (np.log(w)[None, :] - obs.astype(float) @ rates.T
              + X0 @ np.log(rates).T - _logfact(X0)[:, None])
        m = lp.max(axis=1, keepdims=True)
        lse = (m + np.log(np.exp(lp - m).sum(axis=1, keepdims=True)))[:, 0]
        r = np.exp(lp - lse[:, None])
        bounds.append(float(lse.mean()))
        nk = r.sum(axis=0)
        nk = nk + 10 * np.finfo(float).eps * (nk.sum() / nk.size)
        w = nk / nk.sum()
        rates = (r.T @ X0) / (r.T @ obs.astype(float)) + reg
    return bounds, w, rates, lse


def _with_gaps(X, frac=0.2, seed=5):
    X = X.astype(np.float64).copy()
    X[np.random.default_rng(seed).random(X.shape) < frac] = np.nan
    return X


def test_missing_entries_match_numpy_reference_every_iteration():
    Xn = _with_gaps(_data()[0])
    X0 = Xn.copy()
    pm = _fit_quiet(_from_start(), Xn)
    np.testing.assert_array_equal(Xn, X0)  # input untouched
    bounds, w, rates, _ = _ref_em_missing(Xn, START_W, START_R, 6)
    np.testing.assert_allclose(pm.lower_bounds_, bounds, rtol=RTOL)
    np.testing.assert_allclose(pm.weights_, w, rtol=RTOL)
    np.testing.assert_allclose(pm.rates_, rates, rtol=RTOL)
    lse = _ref_em_missing(Xn, pm.weights_, pm.rates_, 1)[3]
    # (atol: rows with every entry missing have log-density 0, up to 1e-15)
    np.testing.assert_allclose(pm.score_samples(Xn), lse, rtol=RTOL,
                               atol=1e-12)
    # a row with every entry missing has density 1
    assert pm.score_samples(np.full((1, 3), np.nan))[0] == pytest.approx(
        0.0, abs=1e-12)


def test_missing_entries_chunked_split_and_from_kmeans():
    Xn = _with_gaps(_data()[0])
    fam = PoissonFamily()
    p = PoissonParams(START_W, START_R)
    whole = fam.stats(p, Xn, np.empty(0))
    parts = fam.stats(p, Xn[:700], np.empty(0)) + fam.stats(p, Xn[700:],
                                                             np.empty(0))
    for k in ("nk", "sums", "miss"):
        np.testing.assert_allclose(parts[k], whole[k], rtol=1e-12)
    assert whole["miss"].sum() == pytest.approx(np.isnan(Xn).sum())
    mem = _fit_quiet(_from_start(), Xn)
    chunked = _fit_quiet(_from_start(), array_chunks(Xn, 256),
                         method="fit_chunks")
    np.testing.assert_allclose(chunked.rates_, mem.rates_, rtol=1e-10)
    # default start (k-means on the column-mean-filled counts), monotone
    pm = PoissonMixture(3, random_state=0, tol=1e-8, max_iter=300).fit(Xn)
    assert np.diff(pm.lower_bounds_).min() > -1e-10
    full = PoissonMixture(3, random_state=0, tol=1e-8,
                          max_iter=300).fit(_data()[0])
    np.testing.assert_allclose(np.sort(pm.rates_, axis=0),
                               np.sort(full.rates_, axis=0), rtol=0.1)
