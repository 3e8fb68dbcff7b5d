"""EM invariants and estimator behaviour of fastem.GaussianMixture."""

import copy
import os
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
import reference as ref
from conftest import (
    BLOBS3D_COVS,
    BLOBS3D_MEANS,
    BLOBS3D_WEIGHTS,
    COVARIANCE_TYPES,
    INIT_PARAMS,
    assert_close,
    make_1d_classic,
    make_blobs3d,
    make_overlap,
    precisions_init_for,
    soft_params,
)

from fastem import ConvergenceWarning, GaussianMixture

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FITTED = ("weights_", "means_", "covariances_", "precisions_",
          "precisions_cholesky_")


def _explicit_init(X, labels, ct, seed=0):
    """weights_init / means_init / precisions_init near ``labels``."""
    w, m, pc = soft_params(X, labels, 3, ct, seed=seed)
    return dict(weights_init=w, means_init=m,
                precisions_init=precisions_init_for(pc, ct))


def _assert_same_state(a, b, rtol, attrs=FITTED):
    for name in attrs:
        assert_close(getattr(a, name), getattr(b, name), rtol, name)


def _assert_identical(a, b):
    for name in FITTED:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name),
                                      err_msg=name)
    assert a.lower_bounds_ == b.lower_bounds_
    assert a.n_iter_ == b.n_iter_ and a.converged_ == b.converged_


# ----------------------------------------------------------- invariants
@pytest.mark.parametrize("init_params", INIT_PARAMS)
@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_lower_bound_never_decreases(ct, init_params, overlap2d, X3d,
                                     no_convergence_warning):
    # overlapping data: 60 slow iterations; separated data: converges to
    # the fixed point, where the changes are pure rounding.
    for X in (overlap2d, X3d):
        gm = GaussianMixture(3, covariance_type=ct, init_params=init_params,
                             tol=0.0, max_iter=60, random_state=0).fit(X)
        lb = np.asarray(gm.lower_bounds_)
        assert lb.shape == (60,)
        assert np.all(np.isfinite(lb))
        # EM cannot decrease the likelihood; allow only rounding of the mean
        # log-likelihood (sums of a few hundred terms: ~1e-15 relative).
        assert np.all(np.diff(lb) >= -1e-12 * np.abs(lb[1:]))
        assert gm.lower_bound_ == lb[-1]
        # the final parameters (after the last M-step) score at least the
        # last lower bound (computed before it)
        assert gm.score(X) >= gm.lower_bound_ - 1e-12 * abs(gm.lower_bound_)


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_fitted_attributes_consistent(ct, X3d):
    gm = GaussianMixture(3, covariance_type=ct, random_state=0).fit(X3d)
    K, D = 3, X3d.shape[1]
    assert gm.weights_.shape == (K,) and gm.means_.shape == (K, D)
    np.testing.assert_allclose(gm.weights_.sum(), 1.0, rtol=1e-14)
    covs = ref.full_from_type_covariances(gm.covariances_, ct, K, D)
    precs = ref.full_from_type_covariances(gm.precisions_, ct, K, D)
    covs_from_chol = ref.full_covariances(gm.precisions_cholesky_, ct, K, D)
    for k in range(K):
        np.testing.assert_allclose(covs[k], covs[k].T, rtol=0, atol=1e-14)
        assert np.linalg.eigvalsh(covs[k]).min() > 0
        # precisions_ = inv(covariances_); cond(cov) < 100 here: 1e-10
        np.testing.assert_allclose(precs[k] @ covs[k], np.eye(D), rtol=0,
                                   atol=1e-10)
        assert_close(covs_from_chol[k], covs[k], 1e-10)
    np.testing.assert_allclose(
        ref.precisions_from_cholesky(gm.precisions_cholesky_, ct),
        gm.precisions_, rtol=1e-12)
    if ct in ("full", "tied"):  # upper-triangular factors
        pc = gm.precisions_cholesky_.reshape(-1, D, D)
        assert np.all(np.tril(pc, -1) == 0)


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_predict_proba_rows_sum_to_one(ct, overlap2d):
    gm = GaussianMixture(3, covariance_type=ct, random_state=0).fit(overlap2d)
    P = gm.predict_proba(overlap2d)
    assert P.shape == (overlap2d.shape[0], 3)
    assert P.min() >= 0.0
    # K entries rounded once and normalized: a few eps
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(gm.predict(overlap2d), P.argmax(axis=1))


@pytest.mark.parametrize("max_iter", [2, 100])
@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_fit_predict_equals_fit_then_predict(ct, max_iter, overlap2d,
                                             no_convergence_warning):
    kw = dict(covariance_type=ct, max_iter=max_iter, random_state=3)
    labels = GaussianMixture(3, **kw).fit_predict(overlap2d)
    gm = GaussianMixture(3, **kw).fit(overlap2d)
    np.testing.assert_array_equal(labels, gm.predict(overlap2d))
    assert len(np.unique(labels)) == 3


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_max_iter_zero_keeps_the_initial_parameters(ct, blobs3d):
    X, y = blobs3d
    init = _explicit_init(X, y, ct)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # none expected
        gm = GaussianMixture(3, covariance_type=ct, max_iter=0, **init).fit(X)
    assert gm.n_iter_ == 0 and gm.lower_bounds_ == []
    assert gm.lower_bound_ == -np.inf
    np.testing.assert_array_equal(gm.weights_, init["weights_init"])
    np.testing.assert_array_equal(gm.means_, init["means_init"])
    # precisions -> Cholesky -> precisions: a few roundings, cond < 100
    assert_close(gm.precisions_, init["precisions_init"], 1e-12)
    K, D = 3, X.shape[1]
    covs = ref.full_from_type_covariances(gm.covariances_, ct, K, D)
    precs = ref.full_from_type_covariances(init["precisions_init"], ct, K, D)
    assert_close(covs, np.linalg.inv(precs), 1e-10)


# ----------------------------------------------------------------- n_init
@pytest.mark.parametrize("init_params", ["kmeans", "random"])
def test_n_init_keeps_the_best_run(init_params, X3d):
    kw = dict(n_components=5, init_params=init_params)
    # The first initialization of n_init=5 is the n_init=1 initialization
    # (same random_state, same first draws), so the best of five is at least
    # as good.
    one = GaussianMixture(**kw, random_state=0).fit(X3d)
    five = GaussianMixture(**kw, n_init=5, random_state=0).fit(X3d)
    assert five.lower_bound_ >= one.lower_bound_
    # Exact design: a shared RandomState instance is consumed by successive
    # initializations exactly as by successive single-init fits, so the five
    # single fits below are the five runs of n_init=5.
    rs = np.random.RandomState(0)
    singles = [GaussianMixture(**kw, random_state=rs).fit(X3d) for _ in range(5)]
    bounds = [s.lower_bound_ for s in singles]
    # the runs reach different optima, so picking the best is observable
    assert max(bounds) - min(bounds) > 1e-4
    five_rs = GaussianMixture(**kw, n_init=5,
                              random_state=np.random.RandomState(0)).fit(X3d)
    best = singles[int(np.argmax(bounds))]
    assert five_rs.lower_bound_ == max(bounds)
    _assert_identical(five_rs, best)


# -------------------------------------------------------------- warm start
@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_warm_start_continues(ct, overlap2d, no_convergence_warning):
    X = overlap2d
    kw = dict(covariance_type=ct, tol=0.0, random_state=0)
    warm = GaussianMixture(3, max_iter=5, warm_start=True, **kw)
    warm.fit(X)
    first = list(warm.lower_bounds_)
    warm.fit(X)
    second = list(warm.lower_bounds_)
    assert len(first) == len(second) == 5
    full = GaussianMixture(3, max_iter=10, **kw).fit(X)
    # the second fit repeats iterations 6-10 of the 10-iteration fit with
    # the same operations on the same numbers: 1e-12 only as a safety net
    np.testing.assert_allclose(first + second, full.lower_bounds_, rtol=1e-12)
    _assert_same_state(warm, full, 1e-12)
    # without warm_start, a second fit starts over
    cold = GaussianMixture(3, max_iter=5, **kw)
    cold.fit(X)
    lb1 = list(cold.lower_bounds_)
    cold.fit(X)
    assert cold.lower_bounds_ == lb1


# ---------------------------------------------------------- sample weights
@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_integer_weights_equal_repeated_rows(ct, blobs3d,
                                             no_convergence_warning):
    X, y = blobs3d
    sw = np.random.default_rng(0).integers(0, 4, X.shape[0])  # zeros included
    init = _explicit_init(X, y, ct)
    kw = dict(covariance_type=ct, tol=0.0, max_iter=20, **init)
    a = GaussianMixture(3, **kw).fit(X, sample_weight=sw)
    b = GaussianMixture(3, **kw).fit(np.repeat(X, sw, axis=0))
    # same sums in a different order (rows x2, x3 vs repeated): rounding
    # ~1e-15, not amplified by 20 iterations near the optimum.
    np.testing.assert_allclose(a.lower_bounds_, b.lower_bounds_, rtol=1e-10)
    _assert_same_state(a, b, 1e-9)


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_sample_weight_scaling_invariance(ct, blobs3d, no_convergence_warning):
    X, y = blobs3d
    sw = np.random.default_rng(1).uniform(0.1, 2.0, X.shape[0])
    init = _explicit_init(X, y, ct)
    kw = dict(covariance_type=ct, tol=0.0, max_iter=20, **init)
    a = GaussianMixture(3, **kw).fit(X, sample_weight=sw)
    b = GaussianMixture(3, **kw).fit(X, sample_weight=3 * sw)
    # weights only enter through ratios (lower bound = weighted mean): equal
    # up to rounding and the 10-eps regularization of n_k
    np.testing.assert_allclose(a.lower_bounds_, b.lower_bounds_, rtol=1e-10)
    _assert_same_state(a, b, 1e-9)
    # through the default k-means initialization too; scaling by 4 (a power
    # of two) is exact in floating point, so the seeding draws the same rows
    c = GaussianMixture(3, covariance_type=ct, random_state=0).fit(
        X, sample_weight=sw)
    d = GaussianMixture(3, covariance_type=ct, random_state=0).fit(
        X, sample_weight=4 * sw)
    assert c.n_iter_ == d.n_iter_
    _assert_same_state(c, d, 1e-9)


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_unit_weights_equal_no_weights(ct, X3d):
    a = GaussianMixture(3, covariance_type=ct, random_state=0).fit(X3d)
    b = GaussianMixture(3, covariance_type=ct, random_state=0).fit(
        X3d, sample_weight=np.ones(X3d.shape[0]))
    # multiplying by 1.0 is exact: same numbers throughout
    np.testing.assert_allclose(a.lower_bounds_, b.lower_bounds_, rtol=1e-14)
    _assert_same_state(a, b, 1e-14)


def test_weighted_fit_matches_reference_em(blobs3d, no_convergence_warning):
    """Three weighted EM iterations against the slow reference."""
    X, y = blobs3d
    ct = "full"
    sw = np.random.default_rng(2).uniform(0, 2, X.shape[0])
    w, m, pc = soft_params(X, y, 3, ct)
    gm = GaussianMixture(3, covariance_type=ct, tol=0.0, max_iter=3,
                         weights_init=w, means_init=m,
                         precisions_init=precisions_init_for(pc, ct)).fit(
        X, sample_weight=sw)
    bounds = []
    for _ in range(3):
        lb, (w, m, cov, pc) = ref.em_step(X, w, m, pc, ct, 1e-6, sw)
        bounds.append(lb)
    np.testing.assert_allclose(gm.lower_bounds_, bounds, rtol=1e-10)
    assert_close(gm.means_, m, 1e-9)
    assert_close(gm.covariances_, cov, 1e-9)
    assert_close(gm.weights_, w, 1e-9)


# --------------------------------------------------------------- recovery
@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_recovers_the_classic_1d_mixture(ct):
    X = make_1d_classic(seed=0)
    gm = GaussianMixture(2, covariance_type=ct, random_state=0).fit(X)
    assert gm.converged_
    order = np.argsort(gm.means_[:, 0])
    means = gm.means_[order, 0]
    weights = gm.weights_[order]
    var = ref.full_from_type_covariances(gm.covariances_, ct, 2, 1)[order, 0, 0]
    # 5 standard errors: weight sqrt(p(1-p)/N) = 0.0043 -> 0.02; mean
    # 5/sqrt(4000) = 0.08 (plus overlap) -> 0.5; std 5/sqrt(2*4000) = 0.056
    # -> 0.3.  (In 1-D every covariance type is the same model.)
    np.testing.assert_allclose(weights, [1 / 3, 2 / 3], atol=0.02)
    np.testing.assert_allclose(means, [20.0, 40.0], atol=0.5)
    np.testing.assert_allclose(np.sqrt(var), [5.0, 5.0], atol=0.3)


def test_recovers_a_3d_mixture():
    n = 3000
    X, _ = make_blobs3d(n=n, seed=10)
    gm = GaussianMixture(3, random_state=0).fit(X)
    order = [int(np.argmin(np.linalg.norm(gm.means_ - mu, axis=1)))
             for mu in BLOBS3D_MEANS]
    assert sorted(order) == [0, 1, 2]
    for k, j in enumerate(order):
        nk = BLOBS3D_WEIGHTS[k] * n
        cov = BLOBS3D_COVS[k]
        p = BLOBS3D_WEIGHTS[k]
        # 5 standard errors of each estimate (separated clusters: the
        # mixture MLE is essentially the per-cluster sample estimate)
        assert abs(gm.weights_[j] - p) <= 5 * np.sqrt(p * (1 - p) / n)
        se_mean = np.sqrt(np.diag(cov) / nk)
        assert np.all(np.abs(gm.means_[j] - BLOBS3D_MEANS[k]) <= 5 * se_mean)
        # Wishart: var(S_ij) = (C_ii C_jj + C_ij^2) / n
        d = np.sqrt(np.diag(cov))
        se_cov = np.sqrt((np.outer(d, d) ** 2 + cov ** 2) / nk)
        assert np.all(np.abs(gm.covariances_[j] - cov) <= 5 * se_cov)


# ------------------------------------------------------------ determinism
@pytest.mark.parametrize("init_params", INIT_PARAMS)
def test_same_random_state_bit_identical(init_params, overlap2d):
    kw = dict(n_components=3, init_params=init_params, n_init=2)
    a = GaussianMixture(**kw, random_state=11).fit(overlap2d)
    b = GaussianMixture(**kw, random_state=11).fit(overlap2d)
    _assert_identical(a, b)
    c = GaussianMixture(**kw, random_state=np.random.RandomState(11)).fit(
        overlap2d)
    _assert_identical(a, c)
    # and the seed matters
    d = GaussianMixture(**kw, random_state=12).fit(overlap2d)
    assert not np.array_equal(a.means_, d.means_)


def test_bit_identical_across_processes(overlap2d):
    """README: the same random_state gives bit-identical results run after
    run -- also in fresh processes (other addresses, alignment, cache
    loading), and also against this process, which may have compiled the
    kernels itself (helpers are inlined into their callers' compiled code,
    so compiled-here and loaded-from-cache code are the same; before that
    they differed in the last bits; tests/test_compile.py checks it on an
    empty cache)."""
    gm = GaussianMixture(3, covariance_type="full", random_state=5).fit(
        overlap2d)  # compiles (or loads) and fills the cache
    code = """
import sys
sys.path.insert(0, "tests")
from conftest import make_overlap
from fastem import GaussianMixture
gm = GaussianMixture(3, covariance_type="full", random_state=5).fit(make_overlap())
print(gm.means_.tobytes().hex(), gm.covariances_.tobytes().hex(),
      float(gm.lower_bound_).hex())
"""
    first, second = _run(code), _run(code)
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert first.stdout.split() == second.stdout.split()
    means_hex, cov_hex, lb_hex = first.stdout.split()
    means = np.frombuffer(bytes.fromhex(means_hex)).reshape(gm.means_.shape)
    cov = np.frombuffer(bytes.fromhex(cov_hex)).reshape(gm.covariances_.shape)
    np.testing.assert_array_equal(means, gm.means_)
    np.testing.assert_array_equal(cov, gm.covariances_)
    assert float.fromhex(lb_hex) == gm.lower_bound_


# ---------------------------------------------------------------- float32
@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_float32_input_runs_the_e_step_in_float32(ct, blobs3d,
                                                  no_convergence_warning):
    """From the same explicit start, float32 X gives the float64 computation
    on the float32-rounded data to float32 precision: the E-step runs in
    float32 (unit roundoff 6e-8; log-densities here are O(10), so their
    absolute error is ~1e-6 at worst), the statistics sum in float64.
    Measured ~4e-8 after 15 iterations; 1e-5 bounds the worst case.  The
    answers are not bit-identical: that would mean the float32 path is not
    used."""
    X, y = blobs3d
    X32 = X.astype(np.float32)
    init = _explicit_init(X, y, ct)
    kw = dict(covariance_type=ct, tol=0.0, max_iter=15, **init)
    a = GaussianMixture(3, **kw).fit(X32)
    b = GaussianMixture(3, **kw).fit(X32.astype(np.float64))
    np.testing.assert_allclose(a.lower_bounds_, b.lower_bounds_, rtol=1e-5)
    _assert_same_state(a, b, 1e-5)
    np.testing.assert_allclose(a.score_samples(X32), b.score_samples(X32),
                               rtol=1e-5)
    assert not np.array_equal(a.means_, b.means_)


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_float32_gives_the_float64_answer(ct, X3d):
    """Default initialization, converged tightly: the float32 fit is the
    float64 fit to float32 precision.  Rounding X to float32 moves each entry
    by <= 2^-24 |x| ~ 7e-7 (|x| <= ~12) which moves means and covariances
    (spread ~1) by ~1e-5 relative at most; 1e-4 leaves margin."""
    kw = dict(covariance_type=ct, random_state=0, tol=1e-10, max_iter=500)
    a = GaussianMixture(3, **kw).fit(X3d.astype(np.float32))
    b = GaussianMixture(3, **kw).fit(X3d)
    assert a.converged_ and b.converged_
    _assert_same_state(a, b, 1e-4)
    assert a.lower_bound_ == pytest.approx(b.lower_bound_, rel=1e-5)


@pytest.mark.parametrize("ct", ["full", "diag"])
def test_far_from_origin_fit(ct, blobs3d, no_convergence_warning):
    """The whole fit on X + 1e6 (same start shifted) gives the covariances of
    X: the shift rounds the data by ulp(1e6)/2 = 6e-11 (relative ~1e-10 of
    the spread), which 20 contracting EM steps do not amplify; 1e-7."""
    X, y = blobs3d
    init = _explicit_init(X, y, ct)
    kw = dict(covariance_type=ct, tol=0.0, max_iter=20)
    a = GaussianMixture(3, **kw, **init).fit(X)
    shifted = dict(init, means_init=init["means_init"] + 1e6)
    b = GaussianMixture(3, **kw, **shifted).fit(X + 1e6)
    assert_close(b.covariances_, a.covariances_, 1e-7)
    np.testing.assert_allclose(b.means_ - 1e6, a.means_, rtol=0, atol=1e-6)
    np.testing.assert_allclose(b.lower_bounds_, a.lower_bounds_, rtol=1e-7)


# --------------------------------------------------------- degenerate fits
def test_emptied_component_policy(blobs3d, no_convergence_warning):
    """README: a component that loses all its points keeps its last mean,
    gets a weight ~1e-16 and a covariance of reg_covar * I, and the fit warns
    naming it."""
    X, y = blobs3d
    init = _explicit_init(X, y, "full")
    means = init["means_init"].copy()
    means[2] = [1e3, 1e3, 1e3]  # hundreds of standard deviations from the data
    init["means_init"] = means
    with pytest.warns(UserWarning, match=r"Component\(s\) \[2\] ended with"):
        gm = GaussianMixture(3, reg_covar=1e-4, max_iter=5, tol=0.0,
                             **init).fit(X)
    assert gm.weights_[2] < 1e-12
    np.testing.assert_array_equal(gm.means_[2], means[2])
    np.testing.assert_allclose(gm.covariances_[2], 1e-4 * np.eye(3), rtol=1e-12)
    np.testing.assert_allclose(gm.weights_[:2].sum(), 1.0, rtol=1e-12)


# --------------------------------------------------------- warnings, verbose
def test_convergence_warning(overlap2d):
    from sklearn.exceptions import ConvergenceWarning as SkCW

    with pytest.warns(ConvergenceWarning, match="did not converge") as rec:
        gm = GaussianMixture(3, max_iter=2, tol=0.0, random_state=0).fit(
            overlap2d)
    assert not gm.converged_ and gm.n_iter_ == 2
    # sklearn has been imported: the warning is also scikit-learn's
    assert any(isinstance(r.message, SkCW) for r in rec)
    # a converging fit does not warn
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        gm = GaussianMixture(3, random_state=0).fit(overlap2d)
    assert gm.converged_ and gm.n_iter_ < 100


def test_verbose_output(overlap2d, capsys):
    GaussianMixture(3, random_state=0, verbose=2, verbose_interval=1,
                    tol=1e-2).fit(overlap2d)
    out = capsys.readouterr().out
    assert "Initialization 0" in out
    assert "Iteration 1" in out
    assert "ll change" in out
    assert re.search(r"Initialization (converged|did not converge)", out)


# ------------------------------------------------------ scikit-learn tools
def test_get_params_set_params_clone(X3d):
    from sklearn.base import clone

    from fastem import NotFittedError

    gm = GaussianMixture(4, covariance_type="diag", tol=1e-4, random_state=3)
    params = gm.get_params()
    assert params["n_components"] == 4
    assert params["covariance_type"] == "diag"
    assert params["tol"] == 1e-4 and params["random_state"] == 3
    assert {"n_components", "covariance_type", "tol", "reg_covar", "max_iter",
            "n_init", "init_params", "weights_init", "means_init",
            "precisions_init", "random_state", "warm_start", "verbose",
            "verbose_interval", "n_threads"} <= set(params)
    assert gm.set_params(n_components=3, tol=1e-3) is gm
    assert gm.n_components == 3 and gm.tol == 1e-3
    with pytest.raises(ValueError, match="Invalid parameter 'bogus'"):
        gm.set_params(bogus=1)
    gm.fit(X3d)
    c = clone(gm)
    assert type(c) is GaussianMixture
    assert c.get_params() == gm.get_params()
    assert not hasattr(c, "means_")
    with pytest.raises(NotFittedError):
        c.predict(X3d)
    # a clone fits to the same answer (int random_state)
    _assert_identical(c.fit(X3d), gm)
    assert "n_components=3" in repr(gm) and "covariance_type='diag'" in repr(gm)


def test_pipeline(X3d):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pipe = make_pipeline(StandardScaler(), GaussianMixture(3, random_state=0))
    pipe.fit(X3d)
    Z = StandardScaler().fit_transform(X3d)
    gm = GaussianMixture(3, random_state=0).fit(Z)
    np.testing.assert_array_equal(pipe.predict(X3d), gm.predict(Z))
    # same arithmetic on the same standardized array: equal to rounding
    assert pipe.score(X3d) == pytest.approx(gm.score(Z), rel=1e-12)
    np.testing.assert_allclose(pipe.predict_proba(X3d), gm.predict_proba(Z),
                               rtol=0, atol=1e-12)


def test_grid_search_over_n_components(X3d):
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV, KFold

    cv = KFold(3)
    grid = GridSearchCV(GaussianMixture(random_state=0),
                        {"n_components": [1, 2, 3]}, cv=cv).fit(X3d)
    # three well-separated clusters: held-out log-likelihood picks 3
    assert grid.best_params_ == {"n_components": 3}
    assert isinstance(grid.best_estimator_, GaussianMixture)
    # the score is the mean held-out log-likelihood (estimator.score)
    for i, k in enumerate([1, 2, 3]):
        scores = [clone(GaussianMixture(k, random_state=0)).fit(X3d[tr])
                  .score(X3d[te]) for tr, te in cv.split(X3d)]
        assert grid.cv_results_["mean_test_score"][i] == pytest.approx(
            np.mean(scores), rel=1e-12)


# ------------------------------------------------------------ subprocesses
def _run(code_or_args, timeout=300):
    env = dict(os.environ, PYTHONPATH=ROOT)
    args = ([sys.executable, "-c", code_or_args]
            if isinstance(code_or_args, str) else
            [sys.executable] + list(code_or_args))
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_import_is_light():
    code = """
import sys
import fastem
assert 'sklearn' not in sys.modules, 'import fastem imported sklearn'
import fastem.mixture, fastem.stats
assert 'sklearn' not in sys.modules, 'import fastem.mixture imported sklearn'
from numba.core.registry import CPUDispatcher
import fastem.kernels.gaussian, fastem.kernels.kmeans
compiled = [f"{m.__name__}.{n}"
            for m in (fastem.kernels.gaussian, fastem.kernels.kmeans)
            for n, f in vars(m).items()
            if isinstance(f, CPUDispatcher) and f.signatures]
assert fastem.kernels.gaussian._SPECIALIZED[0]["_t_em_worker"].signatures == []
print("compiled:", compiled)
print("OK")
"""
    res = _run(code)
    assert res.returncode == 0, res.stderr
    assert "compiled: []" in res.stdout
    assert res.stdout.strip().endswith("OK")


def test_cli_demo():
    res = _run(["-m", "fastem", "demo"])
    assert res.returncode == 0, res.stderr
    rows = re.findall(r"^\s*(\d)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$",
                      res.stdout, flags=re.M)
    assert len(rows) == 2, res.stdout
    weights = [float(r[1]) for r in rows]
    means = sorted(float(r[2]) for r in rows)
    # same 5-standard-error bounds as test_recovers_the_classic_1d_mixture
    assert means[0] == pytest.approx(20.0, abs=0.5)
    assert means[1] == pytest.approx(40.0, abs=0.5)
    assert sum(weights) == pytest.approx(1.0, abs=2e-4)  # printed to 4 places


def test_objects_are_not_shared_between_fits(blobs3d):
    """fit does not keep references to (or modify) the *_init arrays."""
    X, y = blobs3d
    init = _explicit_init(X, y, "full")
    saved = copy.deepcopy(init)
    gm = GaussianMixture(3, max_iter=3, tol=0.0, **init)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(X)
    for key, value in init.items():
        np.testing.assert_array_equal(value, saved[key])
        assert getattr(gm, key) is value  # parameters stay what the user set
    assert not np.shares_memory(gm.means_, init["means_init"])


def test_fit_on_overlap_makes_progress():
    """Sanity check of the overlapping data set used by the parity tests:
    from a k-means start EM needs many iterations at tol=1e-6."""
    X = make_overlap()
    gm = GaussianMixture(3, tol=1e-6, max_iter=1000, random_state=0).fit(X)
    assert gm.n_iter_ > 25


@pytest.mark.parametrize("ct", ["diag", "spherical"])
def test_rounding_cycle_counts_as_converged(ct, X3d):
    """float32 data with a tol below float32's resolution of the bound: the
    float32 block sums make EM alternate between two parameter states whose
    bounds differ by ~1e-9..1e-7 (> tol).  Such an exact repeat ends the fit
    as converged, within a few iterations of reaching the cycle, instead of
    running to max_iter."""
    gm = GaussianMixture(3, covariance_type=ct, random_state=0, tol=1e-12,
                         max_iter=500).fit(X3d.astype(np.float32))
    lb = gm.lower_bounds_
    assert gm.converged_ and gm.n_iter_ < 60
    assert lb[-1] in lb[-5:-2] and abs(lb[-1] - lb[-2]) >= 1e-12


def test_tol_zero_runs_every_iteration_even_in_a_rounding_cycle(X3d):
    """tol=0 (fixed work per fit, as the benchmarks use) is not cut short by
    the rounding-cycle rule."""
    gm = GaussianMixture(3, covariance_type="diag", random_state=0, tol=0.0,
                         max_iter=80).fit(X3d.astype(np.float32))
    lb = gm.lower_bounds_
    assert gm.n_iter_ == 80 and len(lb) == 80
    assert any(lb[i] in lb[i - 3:i - 1] for i in range(3, 80))
