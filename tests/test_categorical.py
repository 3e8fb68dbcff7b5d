"""CategoricalMixture and BernoulliMixture: latent classes as family plug-ins.

Parity is checked against a plain NumPy EM written here (slow, obviously
right) from the same start, missing entries included; the fitting paths
(in memory, chunks, Dask, online, weights) and the shared features
(save/load, select) go through code the family does not own.
"""

import numpy as np
import pytest

import fastem
from fastem import BernoulliMixture, CategoricalMixture
from fastem.chunks import array_chunks
from fastem.families.categorical import (
    CategoricalFamily,
    CategoricalParams,
    floored_frequencies,
)

# Both sides compute the same float64 sums in different orders (chunked,
# fused): a sum of N positive terms differs by ~N u = 1e-12 at N = 1e4.
RTOL = 1e-10
FLOOR = 1e-6
NC = np.array([3, 2, 4, 3])


THETA = [  # per component, per feature: category probabilities
    [[0.8, 0.1, 0.1], [0.9, 0.1], [0.7, 0.1, 0.1, 0.1], [0.6, 0.3, 0.1]],
    [[0.1, 0.1, 0.8], [0.2, 0.8], [0.1, 0.1, 0.1, 0.7], [0.1, 0.3, 0.6]],
    [[0.3, 0.6, 0.1], [0.5, 0.5], [0.1, 0.7, 0.1, 0.1], [0.2, 0.6, 0.2]],
]


def _data(n=1500, seed=0, missing=0.0):
    rng = np.random.default_rng(seed)
    theta = THETA
    z = rng.integers(0, 3, n)
    X = np.empty((n, 4))
    for d in range(4):
        for k in range(3):
            rows = z == k
            X[rows, d] = rng.choice(NC[d], size=rows.sum(), p=theta[k][d])
    if missing:
        X[rng.random(X.shape) < missing] = np.nan
    return X, z


def _ref_logdens(X, w, probs):
    """(N, K) log w_k + sum over observed d of log theta[k, d, x_d]."""
    N, D = X.shape
    lp = np.tile(np.log(w), (N, 1))
    for d in range(D):
        ok = ~np.isnan(X[:, d])
        lp[ok] += np.log(probs[:, d, X[ok, d].astype(int)]).T
    return lp


def _ref_floor(n, C, floor):
    """Constrained maximum of sum n_c log t_c, t_c >= floor, by brute force
    over which categories sit at the floor (C <= 4: at most 16 sets)."""
    n = n[:C]
    best, best_val = None, -np.inf
    for mask in range(1 << C):
        at = np.array([(mask >> c) & 1 for c in range(C)], bool)
        free = ~at
        if not free.any():
            continue
        tot = n[free].sum()
        t = np.full(C, floor)
        budget = 1 - floor * at.sum()
        t[free] = budget * (n[free] / tot if tot > 0 else 1 / free.sum())
        if np.any(t < floor * (1 - 1e-12)):
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            val = np.sum(np.where(n > 0, n * np.log(t), 0.0))
        if best is None or val > best_val + 1e-12 * abs(best_val):
            best, best_val = t, val
    return best


def _ref_em(X, w, probs, n_iter, sw=None, floor=FLOOR):
    """Plain EM; returns the lower bound of each iteration and the params."""
    sw = np.ones(X.shape[0]) if sw is None else sw
    K, D, C = probs.shape
    bounds = []
    for _ in range(n_iter):
        lp = _ref_logdens(X, w, probs)
        m = lp.max(axis=1, keepdims=True)
        lse = (m + np.log(np.exp(lp - m).sum(axis=1, keepdims=True)))[:, 0]
        bounds.append(float((sw * lse).sum() / sw.sum()))
        r = np.exp(lp - lse[:, None]) * sw[:, None]
        nk = r.sum(axis=0)
        nk = nk + 10 * np.finfo(float).eps * (nk.sum() / nk.size)
        w = nk / nk.sum()
        new = np.zeros_like(probs)
        for k in range(K):
            for d in range(D):
                cnt = np.zeros(C)
                ok = ~np.isnan(X[:, d])
                np.add.at(cnt, X[ok, d].astype(int), r[ok, k])
                new[k, d, :NC[d]] = _ref_floor(cnt, NC[d], floor)
        probs = new
    return bounds, w, probs


START_W = np.array([0.3, 0.3, 0.4])


def _start_probs():
    rng = np.random.default_rng(3)
    p = np.zeros((3, 4, 4))
    for k in range(3):
        for d in range(4):
            p[k, d, :NC[d]] = rng.dirichlet(np.ones(NC[d]) * 2)
    return p


def _from_start(**kw):
    return CategoricalMixture(3, n_categories=NC, weights_init=START_W,
                              probs_init=_start_probs(), tol=0, max_iter=6,
                              **kw)


def _fit_quiet(model, *args, method="fit", **kw):
    with pytest.warns(fastem.ConvergenceWarning):  # tol=0: never converges
        return getattr(model, method)(*args, **kw)


@pytest.mark.parametrize("missing", [0.0, 0.15], ids=["complete", "missing"])
def test_matches_numpy_reference_every_iteration(missing):
    X, _ = _data(missing=missing)
    cm = _fit_quiet(_from_start(), X)
    bounds, w, probs = _ref_em(X, START_W, _start_probs(), 6)
    np.testing.assert_allclose(cm.lower_bounds_, bounds, rtol=RTOL)
    np.testing.assert_allclose(cm.weights_, w, rtol=RTOL)
    np.testing.assert_allclose(cm.probs_, probs, rtol=RTOL, atol=1e-15)
    np.testing.assert_array_equal(cm.n_categories_, NC)


def test_floor_is_the_constrained_maximum():
    rng = np.random.default_rng(1)
    counts = rng.integers(0, 5, (200, 4)).astype(float)
    counts[rng.random(counts.shape) < 0.4] = 0.0  # unseen categories
    counts[::17] = 0.0  # nothing seen at all: uniform
    for C in (2, 3, 4):
        valid = np.arange(4) < C
        for floor in (1e-6, 0.05, 0.2):
            got = floored_frequencies(counts, valid, floor)
            assert np.all(got[:, C:] == 0)
            np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-14)
            assert np.all(got[:, :C] >= floor * (1 - 1e-12))
            for i in range(0, 200, 7):
                ref = _ref_floor(counts[i], C, floor)
                np.testing.assert_allclose(got[i, :C], ref, rtol=1e-12)


def test_floor_keeps_the_objective_increasing():
    # a large floor binds for many categories: still an exact M-step
    X, _ = _data(n=800, seed=2, missing=0.1)
    for seed in range(4):
        cm = CategoricalMixture(4, n_categories=NC, reg_prob=0.05, tol=0,
                                max_iter=15, init_params="random",
                                random_state=seed)
        with pytest.warns(fastem.ConvergenceWarning):
            cm.fit(X)
        assert np.all(np.diff(cm.lower_bounds_) >= -1e-12)
        assert cm.probs_[:, 1, :2].min() >= 0.05 * (1 - 1e-12)


def test_split_then_merge_equals_whole():
    X, _ = _data(missing=0.1)
    fam = CategoricalFamily(NC)
    params = CategoricalParams(START_W, _start_probs(), NC)
    w = np.random.default_rng(4).uniform(0.5, 2, X.shape[0])
    whole = fam.stats(params, X, w)
    parts = fam.stats(params, X[:700], w[:700]) + fam.stats(
        params, X[700:], w[700:])
    for name in ("nk", "counts"):
        np.testing.assert_allclose(parts[name], whole[name], rtol=1e-12)
    assert parts.n_samples == whole.n_samples
    np.testing.assert_allclose(parts.loglik, whole.loglik, rtol=1e-12)


def test_integer_weights_equal_repeated_rows():
    X, _ = _data(n=600, missing=0.1)
    reps = np.random.default_rng(5).integers(0, 4, X.shape[0])
    a = _fit_quiet(_from_start(), X, sample_weight=reps.astype(float))
    b = _fit_quiet(_from_start(), np.repeat(X, reps, axis=0))
    np.testing.assert_allclose(a.lower_bounds_, b.lower_bounds_, rtol=RTOL)
    np.testing.assert_allclose(a.probs_, b.probs_, rtol=RTOL, atol=1e-15)


def test_chunked_dask_online_thread_paths():
    X, _ = _data(missing=0.1)
    a = _fit_quiet(_from_start(), X)
    b = _fit_quiet(_from_start(), array_chunks(X, 256), method="fit_chunks")
    np.testing.assert_allclose(b.lower_bounds_, a.lower_bounds_, rtol=RTOL)
    np.testing.assert_allclose(b.probs_, a.probs_, rtol=RTOL, atol=1e-15)
    c = _fit_quiet(_from_start(n_threads=1), X)
    d = _fit_quiet(_from_start(n_threads=2), X)
    assert c.lower_bounds_ == d.lower_bounds_
    np.testing.assert_array_equal(c.probs_, d.probs_)
    online = CategoricalMixture(3, n_categories=NC, random_state=0)
    for i in range(0, X.shape[0], 300):
        online.partial_fit(X[i:i + 300])
    assert online.n_batches_ == 5
    assert online.score(X) > a.score(X) - 0.1
    da = pytest.importorskip("dask.array")
    e = _fit_quiet(_from_start(), da.from_array(X, chunks=(400, 4)))
    np.testing.assert_allclose(e.lower_bounds_, a.lower_bounds_, rtol=RTOL)
    np.testing.assert_array_equal(
        e.predict(da.from_array(X, chunks=(400, 4))).compute(), a.predict(X))


def test_float32_and_categories_inferred():
    X, _ = _data()
    a = _fit_quiet(_from_start(), X)
    b = _fit_quiet(_from_start(), X.astype(np.float32))
    assert b.probs_.dtype == np.float32
    np.testing.assert_allclose(b.probs_, a.probs_, rtol=1e-6, atol=1e-12)
    c = CategoricalMixture(3, random_state=0).fit(X)
    np.testing.assert_array_equal(c.n_categories_, NC)


def test_recovers_latent_classes_and_select():
    X, z = _data(n=3000, seed=8)
    r = fastem.select(X, n_components=range(1, 6),
                      estimator=CategoricalMixture(), n_init=3,
                      random_state=0)
    assert r.best_params["n_components"] == 3
    # a maximum of the likelihood: at least as likely as the parameters the
    # data were drawn from
    true = np.zeros((3, 4, 4))
    for k in range(3):
        for d in range(4):
            true[k, d, :NC[d]] = THETA[k][d]
    lp = _ref_logdens(X, np.full(3, 1 / 3), true)
    m = lp.max(axis=1)
    true_ll = np.mean(m + np.log(np.exp(lp - m[:, None]).sum(axis=1)))
    assert r.best_model.score(X) > true_ll
    assert "BIC" in str(r)


def test_save_load_is_exact(tmp_path):
    X, _ = _data(missing=0.1)
    cm = CategoricalMixture(3, random_state=0).fit(X)
    back = fastem.load(cm.save(tmp_path / "c.json"))
    assert type(back) is CategoricalMixture
    np.testing.assert_array_equal(back.probs_, cm.probs_)
    np.testing.assert_array_equal(back.n_categories_, cm.n_categories_)
    np.testing.assert_array_equal(back.predict_proba(X), cm.predict_proba(X))
    Xb = (X[:, :3] > 0).astype(float)
    bm = BernoulliMixture(2, random_state=0).fit(Xb)
    bb = fastem.load(bm.save(tmp_path / "b.json"))
    assert type(bb) is BernoulliMixture
    np.testing.assert_array_equal(bb.probs_, bm.probs_)
    np.testing.assert_array_equal(bb.score_samples(Xb), bm.score_samples(Xb))


def test_bernoulli_is_two_categories():
    X, _ = _data(missing=0.1)
    Xb = np.where(np.isnan(X), np.nan, (X > 0).astype(float))
    p1 = np.random.default_rng(9).uniform(0.2, 0.8, (3, 4))
    bm = BernoulliMixture(3, weights_init=START_W, probs_init=p1, tol=0,
                          max_iter=5)
    cm = CategoricalMixture(3, n_categories=2, weights_init=START_W,
                            probs_init=np.stack([1 - p1, p1], axis=2), tol=0,
                            max_iter=5)
    for m in (bm, cm):
        _fit_quiet(m, Xb)
    np.testing.assert_allclose(bm.lower_bounds_, cm.lower_bounds_, rtol=1e-13)
    np.testing.assert_allclose(bm.probs_, cm.probs_[:, :, 1], rtol=1e-13)
    assert bm.probs_.shape == (3, 4)
    assert bm.n_parameters() == 3 * 4 + 2
    assert cm.n_parameters() == 3 * 4 + 2
    Xs, ys = bm.sample(50)
    assert Xs.shape == (50, 4) and set(np.unique(Xs)) <= {0.0, 1.0}


@pytest.mark.parametrize("X, est, match", [
    (np.array([[0.0, 1.0], [2.0, 1.0], [1.0, 0.0]]), BernoulliMixture(2),
     "binary features.*2.0 in row 1"),
    (np.array([[0.0, 1.0], [-1.0, 1.0], [1.0, 0.0]]), CategoricalMixture(2),
     "category codes.*-1.0 in row 1"),
    (np.array([[0.0, 1.5], [1.0, 1.0], [1.0, 0.0]]), CategoricalMixture(2),
     "category codes.*1.5 in row 0, feature 1"),
    (np.array([[0.0, 1.0], [3.0, 1.0], [1.0, 0.0]]),
     CategoricalMixture(2, n_categories=2),
     "feature 0 has 2 categories.*at least 4"),
])
def test_bad_codes_get_a_clear_error(X, est, match):
    with pytest.raises(ValueError, match=match):
        est.fit(X)


def test_later_batch_beyond_the_categories_is_refused():
    X, _ = _data(n=400)
    m = CategoricalMixture(2, random_state=0).partial_fit(X[:200])
    np.testing.assert_array_equal(m.n_categories_, NC)  # from the 1st batch
    Y = X[200:].copy()
    Y[5, 0] = 7.0
    with pytest.raises(ValueError, match="row 5, feature 0.*pass n_categories"
                       " with at least 8"):
        m.partial_fit(Y)


def test_bad_parameters_get_a_clear_error():
    X, _ = _data(n=100)
    for kw, match in ((dict(reg_prob=-1.0), "reg_prob"),
                      (dict(reg_prob=0.7), "reg_prob"),
                      (dict(n_categories=[3, 2]), "n_categories has 2"),
                      (dict(n_categories="x"), "n_categories"),
                      (dict(probs_init=np.ones((2, 4))), "probs_init")):
        with pytest.raises(ValueError, match=match):
            CategoricalMixture(2, **kw).fit(X)


def test_input_not_modified():
    X, _ = _data(n=200, missing=0.2)
    before = X.copy()
    CategoricalMixture(2, random_state=0).fit(X).predict(X)
    np.testing.assert_array_equal(X, before)
