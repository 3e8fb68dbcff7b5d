"""BayesianGaussianMixture: parity with scikit-learn, and fastem's additions.

Parity: both libraries start from the same initial responsibilities
(``init_params='random'``: the same uniform draws from the same seed;
``'random_from_data'``: the same rows) and run a fixed number of
iterations (``tol=0``); every iteration's lower bound agrees to 1e-10
relative, the final parameters to 1e-8 (observed: ~1e-13).  Tied with
``'random_from_data'`` is excluded from parity: scikit-learn's tied
covariance estimate sums ``X^T X`` over every row while dividing by the
seed rows' weight (its formula assumes each row's responsibilities sum to
one, which hard seed responsibilities do not), fastem uses the seed rows'
scatter.
"""

import copy

import numpy as np
import pytest

from fastem import BayesianGaussianMixture
from fastem.families.bayesian import (
    betaln,
    digamma,
    entropy_term,
    gammaln,
    log_wishart_norm,
)

sklearn = pytest.importorskip("sklearn")
from sklearn.mixture import BayesianGaussianMixture as SkBGM  # noqa: E402

COV = ["full", "tied", "diag", "spherical"]
PRIORS = ["dirichlet_process", "dirichlet_distribution"]

pytestmark = pytest.mark.filterwarnings(
    "ignore:Best performing initialization did not converge",
    "ignore:.*ended with \\(almost\\) no data",
    "ignore:.*did not converge")


def _data(seed=0, n=(160, 120, 80)):
    rng = np.random.RandomState(seed)
    return np.vstack([rng.randn(n[0], 3),
                      rng.randn(n[1], 3) * 0.5 + [4, 4, 0],
                      rng.randn(n[2], 3) + [0, 5, 5]])


X = _data()


def _sklearn_bounds(model, X):
    """Fit scikit-learn's model; return its lower bound of every iteration."""
    bounds = []
    orig = model._compute_lower_bound

    def record(log_resp, log_prob_norm):
        b = orig(log_resp, log_prob_norm)
        bounds.append(float(np.ravel(b)[0]))
        return b

    model._compute_lower_bound = record
    model.fit(X)
    del model._compute_lower_bound
    return np.array(bounds)


def _rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def _close(a, b, rtol=1e-8, atol=1e-10):
    np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float),
                               rtol=rtol, atol=atol)


@pytest.mark.parametrize("prior_type", PRIORS)
@pytest.mark.parametrize("ct", COV)
@pytest.mark.parametrize("init", ["random", "random_from_data"])
def test_every_iteration_matches_sklearn(ct, prior_type, init):
    if init == "random_from_data" and ct == "tied":
        pytest.skip("scikit-learn's tied estimate from hard seed "
                    "responsibilities sums X^T X over all rows (module "
                    "docstring)")
    kw = dict(n_components=5, covariance_type=ct,
              weight_concentration_prior_type=prior_type, init_params=init,
              random_state=3, max_iter=20, tol=0)
    sk = SkBGM(**kw)
    sk_bounds = _sklearn_bounds(sk, X)
    fe = BayesianGaussianMixture(**kw).fit(X)
    assert len(fe.lower_bounds_) == len(sk_bounds) == 20
    assert _rel(fe.lower_bounds_, sk_bounds) < 1e-10
    assert _rel(fe.lower_bound_, sk.lower_bound_) < 1e-10
    _close(fe.weights_, sk.weights_)
    _close(fe.means_, sk.means_)
    _close(fe.covariances_, sk.covariances_)
    _close(fe.precisions_cholesky_, sk.precisions_cholesky_)
    _close(fe.precisions_, sk.precisions_)
    _close(fe.mean_precision_, sk.mean_precision_)
    _close(fe.degrees_of_freedom_, sk.degrees_of_freedom_)
    if prior_type == "dirichlet_process":
        assert isinstance(fe.weight_concentration_, tuple)
        for a, b in zip(fe.weight_concentration_, sk.weight_concentration_):
            _close(a, b)
    else:
        _close(fe.weight_concentration_, sk.weight_concentration_)
    for name in ("weight_concentration_prior_", "mean_precision_prior_",
                 "mean_prior_", "degrees_of_freedom_prior_",
                 "covariance_prior_"):
        _close(getattr(fe, name), getattr(sk, name), rtol=1e-12)
    assert fe.n_iter_ == sk.n_iter_ and fe.converged_ == sk.converged_
    _close(fe.predict_proba(X), sk.predict_proba(X), atol=1e-9)
    _close(fe.score_samples(X), sk.score_samples(X))
    np.testing.assert_array_equal(fe.predict(X), sk.predict(X))


@pytest.mark.parametrize("ct", COV)
def test_convergence_and_fit_predict_match_sklearn(ct):
    kw = dict(n_components=4, covariance_type=ct, init_params="random",
              random_state=1, max_iter=500, tol=1e-3)
    sk = SkBGM(**kw)
    labels = sk.fit_predict(X)
    fe = BayesianGaussianMixture(**kw)
    np.testing.assert_array_equal(fe.fit_predict(X), labels)
    assert fe.n_iter_ == sk.n_iter_ and fe.converged_ and sk.converged_
    assert _rel(fe.lower_bound_, sk.lower_bound_) < 1e-10


def test_given_priors_match_sklearn():
    D = X.shape[1]
    priors = dict(weight_concentration_prior=0.3, mean_precision_prior=0.5,
                  mean_prior=np.full(D, 0.7), degrees_of_freedom_prior=D + 2.5)
    cps = {"full": np.eye(D) * 2 + 0.1, "tied": np.eye(D) * 2 + 0.1,
           "diag": np.arange(1.0, D + 1), "spherical": 1.7}
    for ct in COV:
        kw = dict(priors, n_components=4, covariance_type=ct,
                  covariance_prior=cps[ct], init_params="random",
                  random_state=0, max_iter=8, tol=0)
        sk = SkBGM(**kw)
        sk_bounds = _sklearn_bounds(sk, X)
        fe = BayesianGaussianMixture(**kw).fit(X)
        assert _rel(fe.lower_bounds_, sk_bounds) < 1e-10
        _close(fe.covariances_, sk.covariances_)
        _close(fe.means_, sk.means_)


def test_entropy_from_statistics_equals_the_direct_sum():
    # -sum r log r from the pass's statistics (no per-row pass) against the
    # direct sum over the responsibilities, on data far from the origin
    # where the cancellation in the identity is largest.
    rng = np.random.RandomState(5)
    Xf = np.vstack([rng.randn(3000, 2), rng.randn(3000, 2) + 3]) + 1e3
    for ct in COV:
        m = BayesianGaussianMixture(n_components=4, covariance_type=ct,
                                    init_params="random", random_state=0,
                                    max_iter=5, tol=0).fit(Xf)
        fam = m._family()
        stats = fam.stats(m._params, Xf, np.empty(0))
        resp = m.predict_proba(Xf)
        logr = np.log(resp, out=np.full_like(resp, 0.0), where=resp > 0)
        direct = float(np.sum(resp * logr))
        assert abs(entropy_term(stats) - direct) <= 1e-10 * abs(direct)


def test_special_functions_match_scipy():
    special = pytest.importorskip("scipy.special")
    x = np.array([1e-3, 0.1, 0.5, 1.0, 2.5, 7.3, 9.99, 10.0, 33.3, 1e3, 1e7])
    _close(digamma(x), special.digamma(x), rtol=1e-14, atol=1e-14)
    _close(gammaln(x), special.gammaln(x), rtol=1e-14, atol=1e-14)
    # lgamma(a) + lgamma(b) - lgamma(a + b): absolute error of a few ulps
    # of lgamma(a + b) (scipy avoids the cancellation; in the lower bound
    # the terms are of the order of the bound itself, so this is harmless)
    a, b = x, x[::-1]
    np.testing.assert_allclose(betaln(a, b), special.betaln(a, b), rtol=1e-13,
                               atol=1e-15 * np.abs(special.gammaln(a + b)).max())
    from sklearn.mixture._bayesian_mixture import _log_wishart_norm

    nu = np.array([3.5, 10.0, 200.0])
    ld = np.array([0.3, -1.0, 2.0])
    _close(log_wishart_norm(nu, ld, 3), _log_wishart_norm(nu, ld, 3),
           rtol=1e-14)


def _start(ct, Xs, **kw):
    """A model after one iteration: the common start of the comparisons."""
    return BayesianGaussianMixture(
        n_components=4, covariance_type=ct, random_state=0, max_iter=1,
        warm_start=True, init_params="random", **kw).fit(Xs)


def _continue(m):
    return copy.deepcopy(m).set_params(max_iter=8, tol=0)


def _same_fit(a, b, rtol=1e-10):
    assert _rel(a.lower_bounds_, b.lower_bounds_) < rtol
    _close(a.weights_, b.weights_)
    _close(a.means_, b.means_)
    _close(a.covariances_, b.covariances_)


@pytest.mark.parametrize("ct", COV)
def test_sample_weight_equals_repeated_rows(ct):
    w = np.random.RandomState(1).randint(0, 4, X.shape[0])
    Xr = np.repeat(X, w, axis=0)
    m = _start(ct, Xr)
    _same_fit(_continue(m).fit(Xr), _continue(m).fit(X, sample_weight=w))


@pytest.mark.parametrize("ct", COV)
def test_chunked_and_dask_equal_in_memory(ct):
    from fastem.chunks import array_chunks

    m = _start(ct, X)
    ref = _continue(m).fit(X)
    _same_fit(ref, _continue(m).fit_chunks(array_chunks(X, 97)))
    da = pytest.importorskip("dask.array")
    _same_fit(ref, _continue(m).fit(da.from_array(X, chunks=(111, 3))))


@pytest.mark.parametrize("ct", ["full", "diag"])
def test_online_first_batch_is_one_iteration(ct):
    kw = dict(n_components=4, covariance_type=ct, random_state=0,
              init_params="random")
    o = BayesianGaussianMixture(**kw).partial_fit(X)
    f = BayesianGaussianMixture(max_iter=1, **kw).fit(X)
    _close(o.means_, f.means_, rtol=1e-12)
    _close(o.covariances_, f.covariances_, rtol=1e-12)
    assert o.lower_bound_ == pytest.approx(f.lower_bound_, rel=1e-12)
    for part in np.array_split(X, 3):
        o.partial_fit(part)
    assert o.n_batches_ == 4 and np.isclose(o.weights_.sum(), 1)


@pytest.mark.parametrize("ct", COV)
def test_float32(ct):
    m = _start(ct, X)
    a = _continue(m).fit(X)
    b = _continue(m).fit(X.astype(np.float32))
    assert b.means_.dtype == np.float32 and b.covariances_.dtype == np.float32
    assert _rel(b.lower_bounds_, a.lower_bounds_) < 1e-5
    _close(b.means_, a.means_, rtol=1e-4, atol=1e-4)


def test_thread_count_does_not_change_the_fit():
    Xb = _data(2, (3000, 2000, 1000))
    fits = [BayesianGaussianMixture(n_components=5, random_state=0,
                                    max_iter=10, tol=0, n_threads=t).fit(Xb)
            for t in (1, 2)]
    assert fits[0].lower_bounds_ == fits[1].lower_bounds_
    np.testing.assert_array_equal(fits[0].means_, fits[1].means_)


@pytest.mark.parametrize("prior_type", PRIORS)
@pytest.mark.parametrize("ct", COV)
def test_save_load_round_trip(tmp_path, ct, prior_type):
    import fastem

    m = BayesianGaussianMixture(
        n_components=3, covariance_type=ct, random_state=0,
        weight_concentration_prior_type=prior_type, max_iter=5).fit(X)
    path = tmp_path / "bgm.json"
    m.save(path)
    new = fastem.load(path)
    assert type(new) is BayesianGaussianMixture
    for name in ("weights_", "means_", "covariances_", "precisions_",
                 "precisions_cholesky_", "mean_precision_",
                 "degrees_of_freedom_", "mean_prior_", "covariance_prior_",
                 "weight_concentration_prior_", "lower_bounds_"):
        np.testing.assert_array_equal(getattr(new, name), getattr(m, name))
    wc = m.weight_concentration_
    assert type(new.weight_concentration_) is type(wc)
    np.testing.assert_array_equal(np.asarray(new.weight_concentration_),
                                  np.asarray(wc))
    np.testing.assert_array_equal(new.predict_proba(X), m.predict_proba(X))
    # the loaded model continues the fit as the original does
    a = copy.deepcopy(m).set_params(warm_start=True, max_iter=3).fit(X)
    b = new.set_params(warm_start=True, max_iter=3).fit(X)
    assert a.lower_bounds_ == b.lower_bounds_


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(weight_concentration_prior_type="dirichlet"), ValueError,
     "Invalid value for 'weight_concentration_prior_type'.*Valid options"),
    (dict(weight_concentration_prior=-1.0), ValueError,
     "'weight_concentration_prior' parameter .* range \\(0.0, inf\\)"),
    (dict(mean_precision_prior=0), ValueError, "'mean_precision_prior'"),
    (dict(covariance_type="banana"), ValueError,
     "Invalid value for 'covariance_type'"),
    (dict(degrees_of_freedom_prior=1.5), ValueError,
     "'degrees_of_freedom_prior' should be greater than 2, but got 1.500"),
    (dict(mean_prior=[0.0, 1.0]), ValueError,
     "'means' should have the shape of \\(3,\\), but got \\(2,\\)"),
    (dict(covariance_prior=-np.eye(3)), ValueError,
     "'full covariance_prior' should be symmetric, positive-definite"),
    (dict(covariance_type="diag", covariance_prior=[1.0, -1.0, 1.0]),
     ValueError, "'diag covariance_prior' should be positive"),
    (dict(covariance_type="spherical", covariance_prior=-2.0), ValueError,
     "'covariance_prior' parameter .* range \\(0.0, inf\\)"),
    (dict(covariance_prior="big"), ValueError, "covariance_prior"),
    (dict(n_components=0), ValueError, "n_components must be an int >= 1"),
])
def test_bad_parameters_raise_clearly(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        BayesianGaussianMixture(**kwargs).fit(X)


def test_failed_refit_keeps_the_previous_model():
    m = BayesianGaussianMixture(n_components=3, random_state=0,
                                max_iter=5).fit(X)
    before = m.means_.copy()
    with pytest.raises(ValueError, match="degrees_of_freedom_prior"):
        m.set_params(degrees_of_freedom_prior=0.5).fit(X)
    np.testing.assert_array_equal(m.means_, before)
    np.testing.assert_array_equal(m.predict(X), m.predict(X))


def test_select_reports_effective_components():
    import fastem

    res = fastem.select(X, n_components=[7], covariance_types=["full"],
                        estimator=BayesianGaussianMixture(max_iter=300),
                        random_state=0)
    row = res.results[0]
    assert row["effective_components"] == 3
    assert row["error"] is None
    assert np.count_nonzero(res.best_model.weights_ > 0.01) == 3


def test_cli_fit_and_select_bayesian(tmp_path, capsys):
    import json

    import fastem
    from fastem.cli import main

    data = tmp_path / "x.npy"
    np.save(data, X)
    out = tmp_path / "m.json"
    rc = main(["fit", str(data), "-k", "7", "--bayesian", "--max-iter", "300",
               "--out", str(out), "-q"])
    text = capsys.readouterr().out
    assert rc == 0
    assert "effective components: 3 of 7 (weight above 0.01)" in text
    assert type(fastem.load(out)) is BayesianGaussianMixture
    rc = main(["info", str(out)])
    text = capsys.readouterr().out
    assert rc == 0 and "effective components: 3 of 7" in text
    rc = main(["fit", str(data), "-k", "7", "--bayesian",
               "dirichlet_distribution", "--max-iter", "300", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and doc["effective_components"] == 3
    rc = main(["select", str(data), "-k", "7", "--covariance", "full",
               "--bayesian", "--max-iter", "300"])
    text = capsys.readouterr().out
    assert rc == 0 and "effective components (weight above 1%): K=7 full: 3" \
        in text
    rc = main(["fit", str(data), "-k", "3", "--bayesian", "--standardize"])
    err = capsys.readouterr().err
    assert rc != 0 and "--bayesian does not support --standardize" in err


def _with_nan(seed=4, frac=0.15):
    rng = np.random.RandomState(seed)
    Xn = X.copy()
    Xn[rng.rand(*X.shape) < frac] = np.nan
    Xn[5] = np.nan  # a row with nothing observed is ignored
    return Xn


@pytest.mark.parametrize("ct", COV)
def test_marginalize_missing_values(ct):
    from scipy.special import logsumexp
    from scipy.stats import multivariate_normal

    from fastem.chunks import array_chunks
    from fastem.families.covariances import COVARIANCE_MODELS

    kw = dict(n_components=4, covariance_type=ct, random_state=0,
              init_params="random", tol=0)
    # complete data: the same fit as nan_policy='raise'
    a = BayesianGaussianMixture(max_iter=6, **kw).fit(X)
    b = BayesianGaussianMixture(max_iter=6, nan_policy="marginalize",
                                **kw).fit(X)
    assert a.lower_bounds_ == b.lower_bounds_
    # with NaN: the variational bound never decreases
    Xn = _with_nan()
    m = BayesianGaussianMixture(max_iter=40, nan_policy="marginalize",
                                **kw).fit(Xn)
    lb = np.array(m.lower_bounds_)
    assert np.all(np.diff(lb) >= -1e-9 * np.abs(lb[1:]))
    # log sum_k rho_ik of a row equals c_k + log N(x_o | m_ko, cov_k[o, o])
    p = m._params
    _, means, _, logconst = p.kernel_args()
    K, D = means.shape
    _, logdet = COVARIANCE_MODELS[ct].kernel_prec(
        np.asarray(p.precisions_cholesky), K, D)
    shift = logconst - logdet + 0.5 * D * np.log(2 * np.pi)
    cov = np.asarray(p.covariances, dtype=float)
    full = {"full": lambda k: cov[k], "tied": lambda k: cov,
            "diag": lambda k: np.diag(cov[k]),
            "spherical": lambda k: np.eye(D) * cov[k]}[ct]
    rows = [i for i in range(40)
            if np.isnan(Xn[i]).any() and not np.isnan(Xn[i]).all()]
    direct = []
    for i in rows:
        o = ~np.isnan(Xn[i])
        direct.append(logsumexp([
            shift[k] + multivariate_normal(
                means[k][o], full(k)[np.ix_(o, o)]).logpdf(Xn[i][o])
            for k in range(K)]))
    _close(m.score_samples(Xn[rows]), direct, rtol=1e-12)
    assert m.predict(Xn).shape == (X.shape[0],)
    # chunked equals in-memory from the same start
    s = BayesianGaussianMixture(max_iter=1, warm_start=True,
                                nan_policy="marginalize", **kw).fit(Xn)
    _same_fit(_continue(s).fit(Xn),
              _continue(s).fit_chunks(array_chunks(Xn, 77)))
    with pytest.raises(ValueError, match="NaN"):
        BayesianGaussianMixture(**kw).fit(Xn)


def _expected_failed_checks(estimator):
    # as for GaussianMixture (tests/test_estimator_checks.py): fitting with
    # integer sample_weight equals fitting on repeated rows from the same
    # start (test_sample_weight_equals_repeated_rows), but k-means++ seeding
    # and random_from_data draw different starting rows on repeated rows
    return {"check_sample_weight_equivalence_on_dense_data":
            "the initialization draws different rows from weighted and from "
            "repeated data; equivalence holds from the same start"}


def _estimator_checks():
    import warnings

    from sklearn.utils.estimator_checks import parametrize_with_checks

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Estimator BayesianGaussianMixture "
                                "does not inherit from", UserWarning)
        return parametrize_with_checks(
            [BayesianGaussianMixture(n_components=2, random_state=0)],
            expected_failed_checks=_expected_failed_checks)


@_estimator_checks()
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
