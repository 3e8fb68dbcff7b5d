"""Every user-facing error: type and message; inputs are never modified."""

import warnings

import numpy as np
import pytest
from conftest import make_blobs3d

from fastem import ConvergenceWarning, GaussianMixture, NotFittedError
from fastem.stats import (
    ComponentCollapseError,
    GaussianParams,
    compute_precision_cholesky,
    compute_stats,
    m_step,
    predict_proba,
    score_samples,
    stats_from_responsibilities,
)


@pytest.fixture(scope="module")
def X():
    return make_blobs3d(n=300, seed=0)[0]


@pytest.fixture(scope="module")
def fitted(X):
    return GaussianMixture(3, random_state=0).fit(X)


# ---------------------------------------------------------------- bad X
def _with(X, i, j, value):
    X = X.copy()
    X[i, j] = value
    return X


@pytest.mark.parametrize("make, exc, match", [
    (lambda X: _with(X, 5, 1, np.nan), ValueError, r"Input X contains NaN"),
    (lambda X: _with(X, 7, 0, np.inf), ValueError,
     r"Input X contains infinity: 1 inf value\(s\), the first in row 7"),
    (lambda X: _with(X, 2, 2, -np.inf), ValueError, r"contains infinity"),
    (lambda X: X[:, 0], ValueError, r"Expected 2D array, got 1D array"),
    (lambda X: X.reshape(30, 10, 3), ValueError,
     r"Expected a 2D array .* got a 3D array"),
    (lambda X: np.empty((0, 3)), ValueError, r"Found array with 0 sample\(s\)"),
    (lambda X: np.empty((5, 0)), ValueError, r"Found array with 0 feature\(s\)"),
    (lambda X: X[:1], ValueError,
     r"Found array with 1 sample\(s\) .* minimum of 2 is required"),
    (lambda X: X.astype(np.complex128), ValueError, r"Complex data not supported"),
    (lambda X: np.array([["a", "b"], ["c", "d"], ["e", "f"]], dtype=object),
     ValueError, r"could not convert string to float"),
    (lambda X: np.array([[object(), 1.0]] * 4, dtype=object), TypeError,
     r"float\(\) argument must be"),
    (lambda X: np.zeros((4, 2), dtype="datetime64[s]"), TypeError,
     r"expects numeric data, got dtype datetime64"),
    (lambda X: X * 1e160, ValueError,
     r"values up to .* squared distances would overflow"),
])
def test_bad_X_in_fit(X, make, exc, match):
    with pytest.raises(exc, match=match):
        GaussianMixture(2, random_state=0).fit(make(X))


def test_sparse_X_rejected(X):
    import scipy.sparse

    with pytest.raises(TypeError, match=r"does not support sparse input"):
        GaussianMixture(2).fit(scipy.sparse.csr_matrix(X))


def test_n_components_greater_than_n_samples(X):
    with pytest.raises(ValueError,
                       match=r"Expected n_samples >= n_components but got "
                             r"n_components = 10, n_samples = 5"):
        GaussianMixture(10).fit(X[:5])


@pytest.mark.parametrize("method", ["predict", "predict_proba", "score_samples",
                                    "score"])
def test_bad_X_in_prediction(fitted, X, method):
    f = getattr(fitted, method)
    with pytest.raises(ValueError, match=r"Input X contains NaN"):
        f(_with(X, 0, 0, np.nan))
    with pytest.raises(ValueError,
                       match=r"X has 2 features, but GaussianMixture is "
                             r"expecting 3 features"):
        f(X[:, :2])
    with pytest.raises(ValueError, match=r"Expected 2D array, got 1D array"):
        f(X[0])


# ------------------------------------------------------ constructor params
@pytest.mark.parametrize("params, exc, match", [
    (dict(n_components=0), ValueError, r"n_components must be an int >= 1, got 0"),
    (dict(n_components="a"), TypeError, r"n_components must be an int >= 1"),
    (dict(n_components=2.0), TypeError, r"n_components must be an int >= 1"),
    (dict(covariance_type="bad"), ValueError,
     r"Invalid value for 'covariance_type': 'bad'"),
    (dict(tol=-1), ValueError, r"tol must be a finite float >= 0.0, got -1"),
    (dict(tol=np.nan), ValueError, r"tol must be a finite float"),
    (dict(tol="x"), TypeError, r"tol must be a float"),
    (dict(reg_covar=-1), ValueError, r"reg_covar must be a finite float >= 0.0"),
    (dict(max_iter=-1), ValueError, r"max_iter must be an int >= 0, got -1"),
    (dict(n_init=0), ValueError, r"n_init must be an int >= 1, got 0"),
    (dict(init_params="bad"), ValueError, r"Invalid value for 'init_params': 'bad'"),
    (dict(verbose_interval=0), ValueError,
     r"verbose_interval must be an int >= 1, got 0"),
    (dict(verbose=-1), ValueError, r"verbose must be an int >= 0"),
    (dict(n_threads=0), ValueError,
     r"n_threads must be a positive int or None, got 0"),
    (dict(n_threads=10 ** 6), ValueError, r"exceeds the \d+ threads numba"),
    (dict(random_state="bad"), ValueError,
     r"random_state must be None, an int, a numpy RandomState or Generator"),
])
def test_invalid_constructor_parameters(X, params, exc, match):
    gm = GaussianMixture(**{"n_components": 2, **params})
    with pytest.raises(exc, match=match):
        gm.fit(X)
    assert not hasattr(gm, "means_")  # nothing was fitted


def test_failed_thread_validation_leaves_no_state(X):
    """A fit rejected for its n_threads must not change how later fits pick
    their thread count: fastem.set_num_threads(1) still applies."""
    import numba

    import fastem
    from fastem import _config

    assert numba.config.NUMBA_NUM_THREADS >= 2, "needs 2 numba threads"
    fastem.set_num_threads(1)
    try:
        with _config.threads():
            assert numba.get_num_threads() == 1
        with pytest.raises(ValueError, match="n_threads must be a positive"):
            GaussianMixture(2, n_threads=0).fit(X)
        with _config.threads():
            assert numba.get_num_threads() == 1, (
                "set_num_threads(1) ignored after a failed fit")
    finally:
        fastem.set_num_threads(None)


def test_invalid_params_do_not_change_a_fitted_model(X):
    gm = GaussianMixture(3, random_state=0).fit(X)
    means = gm.means_.copy()
    gm.set_params(tol=-1)
    with pytest.raises(ValueError, match="tol must be"):
        gm.fit(X)
    np.testing.assert_array_equal(gm.means_, means)


# ------------------------------------------------------------ *_init
@pytest.mark.parametrize("init, match", [
    (dict(weights_init=[0.5, 0.5]),
     r"^The parameter 'weights' should have the shape of \(3,\), but got "
     r"\(2,\): weights_init needs"),
    (dict(weights_init=[0.5, 0.3, 0.3]),
     r"^The parameter 'weights' should be normalized, but got "
     r"sum\(weights\) = 1.1 .*Divide weights_init by its sum"),
    (dict(weights_init=[-0.2, 0.6, 0.6]),
     r"^The parameter 'weights' should be in the range \[0, 1\]"),
    (dict(weights_init=[np.nan, 0.5, 0.5]),
     r"^The parameter 'weights' should be in the range \[0, 1\]"),
    (dict(means_init=np.zeros((2, 3))),
     r"^The parameter 'means' should have the shape of \(3, 3\), but got "
     r"\(2, 3\): means_init needs one row per component"),
    (dict(means_init=np.zeros((3, 2))), r"^The parameter 'means' should have"),
    (dict(means_init=np.full((3, 3), np.nan)), r"means_init contains NaN"),
    (dict(precisions_init=np.stack([np.eye(3)] * 2)),
     r"^The parameter 'full precision' should have the shape of \(3, 3, 3\)"),
    (dict(precisions_init=np.stack([np.eye(3), np.eye(3),
                                    np.triu(np.ones((3, 3)))])),
     r"^'full precision' should be symmetric, positive-definite "
     r"\(precisions_init\[2\] is not\)"),
    (dict(precisions_init=np.stack([np.eye(3), -np.eye(3), np.eye(3)])),
     r"^'full precision' should be symmetric, positive-definite "
     r"\(precisions_init\[1\] is not\)"),
    (dict(precisions_init=np.stack([np.eye(3)] * 3) * np.nan),
     r"precisions_init contains NaN"),
])
def test_invalid_initial_parameters_full(X, init, match):
    with pytest.raises(ValueError, match=match):
        GaussianMixture(3, **init).fit(X)


@pytest.mark.parametrize("ct, prec, match", [
    ("tied", np.stack([np.eye(3)] * 3),
     r"'tied precision' should have the shape of \(3, 3\)"),
    ("tied", np.diag([1.0, 0.0, 1.0]),
     r"'tied precision' should be symmetric, positive-definite"),
    ("diag", np.ones(3), r"'diag precision' should have the shape of \(3, 3\)"),
    ("diag", np.array([[1.0, 1, 1], [1, -1, 1], [1, 1, 1]]),
     r"^'diag precision' should be positive, got min -1"),
    ("spherical", np.ones((3, 3)),
     r"'spherical precision' should have the shape of \(3,\)"),
    ("spherical", np.array([1.0, 0.0, 2.0]),
     r"^'spherical precision' should be positive, got min 0"),
])
def test_invalid_precisions_init_other_types(X, ct, prec, match):
    with pytest.raises(ValueError, match=match):
        GaussianMixture(3, covariance_type=ct, precisions_init=prec).fit(X)


# ------------------------------------------------------------ sample_weight
@pytest.mark.parametrize("make, exc, match", [
    (lambda n: -np.ones(n), ValueError,
     r"sample_weight contains \d+ negative value\(s\)"),
    (lambda n: np.r_[np.nan, np.ones(n - 1)], ValueError,
     r"sample_weight contains 1 NaN or infinite value\(s\)"),
    (lambda n: np.r_[np.inf, np.ones(n - 1)], ValueError,
     r"NaN or infinite value"),
    (lambda n: np.ones(n - 1), ValueError,
     r"sample_weight must have shape \(300,\) to match X, got shape \(299,\)"),
    (lambda n: np.ones((n, 2)), ValueError, r"sample_weight must have shape"),
    (lambda n: np.zeros(n), ValueError, r"sample_weight sums to zero"),
    (lambda n: np.r_[1.0, 1.0, np.zeros(n - 2)], ValueError,
     r"Only 2 rows have a positive sample_weight, fewer than n_components = 3"),
    (lambda n: np.array(["a"] * n), TypeError, r"sample_weight must be numeric"),
])
def test_invalid_sample_weight(X, make, exc, match):
    with pytest.raises(exc, match=match):
        GaussianMixture(3).fit(X, sample_weight=make(X.shape[0]))


# ------------------------------------------------------------- not fitted
@pytest.mark.parametrize("method, args", [
    ("predict", True), ("predict_proba", True), ("score_samples", True),
    ("score", True), ("bic", True), ("aic", True), ("sample", False),
])
def test_not_fitted(X, method, args):
    import sklearn.exceptions

    gm = GaussianMixture(2)
    with pytest.raises(NotFittedError, match=r"is not fitted yet") as info:
        getattr(gm, method)(*([X] if args else []))
    # scikit-learn has been imported: also its NotFittedError
    assert isinstance(info.value, sklearn.exceptions.NotFittedError)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, AttributeError)


def test_sklearn_check_is_fitted(X):
    from sklearn.exceptions import NotFittedError as SkNotFitted
    from sklearn.utils.validation import check_is_fitted

    gm = GaussianMixture(2)
    with pytest.raises(SkNotFitted):
        check_is_fitted(gm)
    check_is_fitted(gm.fit(X))


def test_sample_invalid_n_samples(fitted):
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match=r"Invalid value for 'n_samples'"):
            fitted.sample(bad)


# ------------------------------------------------------------ degenerate
def test_collapsed_component_error():
    P = np.repeat(np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]]), 5, axis=0)
    for ct in ("full", "diag"):
        with pytest.raises(ComponentCollapseError,
                           match=r"ill-defined empirical covariance"):
            GaussianMixture(3, covariance_type=ct, reg_covar=0.0,
                            random_state=0).fit(P)
    assert issubclass(ComponentCollapseError, ValueError)


def test_failed_fit_keeps_previous_model(X):
    """README: an exception during fit leaves the previous model intact."""
    gm = GaussianMixture(3, random_state=0).fit(X)
    saved = {k: np.copy(getattr(gm, k)) for k in ("means_", "covariances_")}
    with pytest.raises(ValueError, match="Input X contains NaN"):
        gm.fit(_with(X, 0, 0, np.nan))
    with pytest.raises(ValueError, match=r"n_components = 3, n_samples = 2"):
        gm.fit(X[:2])
    for k, v in saved.items():
        np.testing.assert_array_equal(getattr(gm, k), v)
    assert gm.n_features_in_ == 3


# ---------------------------------------------------- low-level stats API
@pytest.fixture(scope="module")
def params(fitted):
    return GaussianParams(fitted.weights_, fitted.means_,
                          fitted.precisions_cholesky_, "full")


def test_stats_api_errors(X, params):
    with pytest.raises(ValueError, match=r"X has 2 features, but fastem is "
                                         r"expecting 3 features"):
        compute_stats(X[:, :2], params)
    for f in (score_samples, predict_proba):
        with pytest.raises(ValueError, match=r"Input X contains NaN"):
            f(_with(X, 1, 1, np.nan), params)
    with pytest.raises(ValueError, match=r"covariance_type must be one of"):
        compute_stats(X, GaussianParams(params.weights, params.means,
                                        params.precisions_cholesky, "bad"))
    with pytest.raises(ValueError, match=r"sample_weight contains 1 negative"):
        compute_stats(X, params, sample_weight=np.r_[-1.0, np.ones(299)])
    with pytest.raises(ValueError,
                       match=r"resp must have shape \(n_samples=300, "
                             r"n_components\), got \(299, 3\)"):
        stats_from_responsibilities(X, resp=np.ones((299, 3)) / 3)
    with pytest.raises(ValueError, match=r"labels must have shape \(300,\) "
                                         r"with values < 3"):
        stats_from_responsibilities(X, labels=np.full(300, 3), n_components=3)
    with pytest.raises(ValueError, match=r"give one of resp, labels or "
                                         r"random_seed"):
        stats_from_responsibilities(X)
    a = compute_stats(X, params)
    b = compute_stats(X, GaussianParams(params.weights, params.means,
                                        np.ones((3, 3)), "diag"))
    with pytest.raises(ValueError, match=r"cannot add statistics of different "
                                         r"covariance types: 'full' and 'diag'"):
        a + b
    c = stats_from_responsibilities(X, resp=np.ones((300, 2)) / 2)
    with pytest.raises(ValueError, match=r"cannot add statistics of shapes"):
        a + c
    with pytest.raises(TypeError):
        a + 1.0


def test_stats_api_rejects_wrong_ref_shape(X, params):
    """A ``ref`` whose shape is not (K, D) must be rejected before reaching a
    kernel (fastem/_validation.py: every user mistake becomes a clear
    ValueError/TypeError before it can reach a compiled kernel); the kernels
    index ref[k, j] without bounds checks."""
    short = params.means[:2]
    with pytest.raises(ValueError, match=r"ref"):
        compute_stats(X, params, ref=short)
    with pytest.raises(ValueError, match=r"ref"):
        stats_from_responsibilities(X, labels=np.zeros(300, dtype=int),
                                    n_components=3, ref=short)


def test_compute_precision_cholesky_errors():
    bad = np.stack([np.eye(2), -np.eye(2)])
    with pytest.raises(ComponentCollapseError, match=r"Component\(s\) \[1\]"):
        compute_precision_cholesky(bad, "full")
    with pytest.raises(ComponentCollapseError, match=r"Component\(s\) \[0\]"):
        compute_precision_cholesky(np.array([0.0, 1.0]), "spherical")
    # the whole stack is factored at once; every failing component is named
    # (not positive definite, NaN) and the input is left alone
    stack = np.stack([np.eye(3), -np.eye(3), np.eye(3), np.full((3, 3), np.nan)])
    before = stack.copy()
    with pytest.raises(ComponentCollapseError, match=r"Component\(s\) \[1, 3\]"):
        compute_precision_cholesky(stack, "full")
    with pytest.raises(ComponentCollapseError, match=r"Component\(s\) \[3\]"):
        compute_precision_cholesky(stack[[0, 2, 2, 3]], "full")
    np.testing.assert_array_equal(stack, before)


def test_compute_precision_cholesky_stack_matches_per_matrix():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(5, 6, 6))
    cov = A @ np.swapaxes(A, 1, 2) + 0.5 * np.eye(6)
    U = compute_precision_cholesky(cov, "full")
    for k in range(5):
        np.testing.assert_allclose(np.triu(U[k]), U[k], atol=0)
        np.testing.assert_allclose(U[k] @ U[k].T, np.linalg.inv(cov[k]),
                                   rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(compute_precision_cholesky(cov[0], "tied"),
                               U[0], rtol=1e-14)


def test_m_step_collapse_error():
    X = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])  # collinear: singular
    st = stats_from_responsibilities(X, labels=np.zeros(3, dtype=int),
                                     n_components=1, covariance_type="full")
    with pytest.raises(ComponentCollapseError, match=r"increase reg_covar"):
        m_step(st, reg_covar=0.0)
    assert np.all(np.isfinite(m_step(st, reg_covar=1e-6).covariances))


# ---------------------------------------------- inputs never modified
def test_inputs_never_modified(X):
    Xc = X.copy()
    sw = np.random.default_rng(0).uniform(0.5, 2, X.shape[0])
    swc = sw.copy()
    gm = GaussianMixture(3, random_state=0).fit(X, sample_weight=sw)
    gm.fit_predict(X, sample_weight=sw)
    for f in (gm.predict, gm.predict_proba, gm.score_samples, gm.score,
              gm.bic, gm.aic):
        f(X)
    np.testing.assert_array_equal(X, Xc)
    np.testing.assert_array_equal(sw, swc)
    X32 = X.astype(np.float32)
    X32c = X32.copy()
    GaussianMixture(3, random_state=0).fit(X32).predict(X32)
    np.testing.assert_array_equal(X32, X32c)


@pytest.mark.parametrize("ct", ["full", "diag"])
def test_accepted_input_layouts(X, ct):
    """Read-only, Fortran-ordered, strided, int, float32 views and lists are
    accepted and give the answer of the same values as a C float64 array."""
    kw = dict(covariance_type=ct, random_state=0)
    base = GaussianMixture(3, **kw).fit(X)

    ro = X.copy()
    ro.setflags(write=False)
    wide = np.zeros((X.shape[0] * 2, 6))
    wide[::2, 1::2] = X
    strided = wide[::2, 1::2]
    assert not strided.flags.c_contiguous
    variants = {
        "read-only": ro,
        "fortran": np.asfortranarray(X),
        "strided": strided,
        "list": X.tolist(),
    }
    for name, Xv in variants.items():
        gm = GaussianMixture(3, **kw).fit(Xv)
        # the same float64 values: the same computation, bit for bit
        np.testing.assert_array_equal(gm.means_, base.means_, err_msg=name)
        np.testing.assert_array_equal(gm.covariances_, base.covariances_,
                                      err_msg=name)
        np.testing.assert_array_equal(gm.predict(Xv), base.predict(X),
                                      err_msg=name)
        np.testing.assert_array_equal(gm.score_samples(Xv),
                                      base.score_samples(X), err_msg=name)
    assert not ro.flags.writeable

    Xi = np.round(X * 10).astype(np.int64)
    a = GaussianMixture(3, **kw).fit(Xi)
    b = GaussianMixture(3, **kw).fit(Xi.astype(np.float64))
    np.testing.assert_array_equal(a.means_, b.means_)
    np.testing.assert_array_equal(a.predict(Xi), b.predict(Xi))
    Xi32 = Xi.astype(np.int32)
    np.testing.assert_array_equal(GaussianMixture(3, **kw).fit(Xi32).means_,
                                  b.means_)

    ro32 = X.astype(np.float32)
    ro32.setflags(write=False)
    f32 = GaussianMixture(3, **kw).fit(ro32)
    np.testing.assert_array_equal(
        f32.means_, GaussianMixture(3, **kw).fit(ro32.copy()).means_)


def test_read_only_sample_weight_and_init_arrays(X):
    sw = np.ones(X.shape[0])
    sw.setflags(write=False)
    gm = GaussianMixture(3, random_state=0).fit(X, sample_weight=sw)
    means = gm.means_.copy()
    means.setflags(write=False)
    weights = gm.weights_.copy()
    weights.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm2 = GaussianMixture(3, means_init=means, weights_init=weights,
                              max_iter=2, tol=0.0).fit(X)
    assert gm2.n_iter_ == 2
