"""Parity with scikit-learn's GaussianMixture from the same initial parameters.

Both libraries start from identical ``weights_init / means_init /
precisions_init`` (taken from a 1-iteration scikit-learn fit) and run the same
EM in float64; they differ only in summation order, in the exp/log
implementations (fastem's are within 1-2 ulp) and in how the second moments
are formed.  Observed differences are ~1e-15 relative; EM near its optimum is
a contraction, so such rounding does not grow over 25 iterations.

Tolerances: lower bounds 1e-9 relative (asked for, and 10^6 above the
observed rounding); final state (weights, means, covariances, precision
factors) STATE_RTOL = 1e-8 relative to each array's scale, which still
catches any formula difference (those show up at 1e-4 or more on this
slowly-converging data).
"""

import copy
import warnings

import numpy as np
import pytest
from conftest import COVARIANCE_TYPES, assert_close, make_overlap
from sklearn.exceptions import ConvergenceWarning as SkConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGM

from fastem import ConvergenceWarning, GaussianMixture

K = 3
LB_RTOL = 1e-9
STATE_RTOL = 1e-8
STATE_ATTRS = ("weights_", "means_", "covariances_", "precisions_cholesky_",
               "precisions_")


@pytest.fixture(scope="module")
def X():
    return make_overlap(n=500, seed=1)


@pytest.fixture(scope="module")
def X_test():
    return make_overlap(n=300, seed=2)


def _init(X, ct):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkConvergenceWarning)
        sk1 = SkGM(K, covariance_type=ct, max_iter=1, random_state=0).fit(X)
    return dict(weights_init=sk1.weights_.copy(), means_init=sk1.means_.copy(),
                precisions_init=sk1.precisions_.copy())


def _fit_both(X, ct, **kw):
    init = _init(X, ct)
    with warnings.catch_warnings():
        # tol=0 runs never converge: the warning is expected, on both sides
        warnings.simplefilter("ignore", SkConvergenceWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk = SkGM(K, covariance_type=ct, **init, **kw).fit(X)
        fe = GaussianMixture(K, covariance_type=ct, **init, **kw).fit(X)
    return sk, fe


@pytest.fixture(scope="module", params=COVARIANCE_TYPES)
def fitted_pair(request, X):
    ct = request.param
    sk, fe = _fit_both(X, ct, tol=0.0, max_iter=25)
    return ct, sk, fe


def test_lower_bounds_iteration_by_iteration(fitted_pair):
    ct, sk, fe = fitted_pair
    lb_sk = np.asarray(sk.lower_bounds_)
    lb_fe = np.asarray(fe.lower_bounds_)
    assert lb_sk.shape == lb_fe.shape == (25,)
    np.testing.assert_allclose(lb_fe, lb_sk, rtol=LB_RTOL, atol=0)
    assert fe.lower_bound_ == pytest.approx(sk.lower_bound_, rel=LB_RTOL)
    assert fe.n_iter_ == sk.n_iter_ == 25
    assert fe.converged_ is sk.converged_ is False
    # The data makes this a real 25-iteration comparison: EM still moves
    # (by more than 1e-7 per iteration) at the end.
    assert np.diff(lb_sk)[-1] > 1e-7


def test_final_state(fitted_pair):
    ct, sk, fe = fitted_pair
    for name in STATE_ATTRS:
        a, b = getattr(fe, name), getattr(sk, name)
        assert np.shape(a) == np.shape(b), name
        assert_close(a, b, STATE_RTOL, f"{ct} {name}")


@pytest.mark.parametrize("tol", [1e-3, 1e-5])
@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_convergence_matches(X, ct, tol):
    sk, fe = _fit_both(X, ct, tol=tol)
    assert fe.n_iter_ == sk.n_iter_
    assert fe.converged_ == sk.converged_
    np.testing.assert_allclose(fe.lower_bounds_, sk.lower_bounds_,
                               rtol=LB_RTOL, atol=0)
    for name in STATE_ATTRS:
        assert_close(getattr(fe, name), getattr(sk, name), STATE_RTOL, name)


def test_prediction_methods(fitted_pair, X, X_test):
    ct, sk, fe = fitted_pair
    for data in (X, X_test):
        proba_sk = sk.predict_proba(data)
        proba_fe = fe.predict_proba(data)
        # probabilities in [0, 1]; the states agree to ~1e-14, so 1e-8 absolute
        np.testing.assert_allclose(proba_fe, proba_sk, rtol=0, atol=1e-8)
        # log-likelihoods of magnitude ~1-10: relative 1e-9
        np.testing.assert_allclose(fe.score_samples(data),
                                   sk.score_samples(data), rtol=1e-9)
        assert fe.score(data) == pytest.approx(sk.score(data), rel=1e-9)
        assert fe.bic(data) == pytest.approx(sk.bic(data), rel=1e-9)
        assert fe.aic(data) == pytest.approx(sk.aic(data), rel=1e-9)
        # labels: identical wherever the decision is not a near-tie
        top2 = np.sort(proba_sk, axis=1)[:, -2:]
        clear = (top2[:, 1] - top2[:, 0]) > 1e-6
        assert clear.mean() > 0.99
        np.testing.assert_array_equal(fe.predict(data)[clear],
                                      sk.predict(data)[clear])


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_sample_same_draws_for_same_parameters(X, ct):
    fe = GaussianMixture(K, covariance_type=ct, random_state=7).fit(X)
    # scikit-learn's estimator with exactly fastem's parameters
    sk = SkGM(K, covariance_type=ct, random_state=7)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_",
                 "precisions_"):
        setattr(sk, name, getattr(fe, name).copy())
    Xs_fe, y_fe = fe.sample(400)
    Xs_sk, y_sk = sk.sample(400)
    np.testing.assert_array_equal(y_fe, y_sk)
    np.testing.assert_array_equal(Xs_fe, Xs_sk)
    assert Xs_fe.shape == (400, X.shape[1])
    # with an int random_state both re-seed on every call: same draws again
    np.testing.assert_array_equal(fe.sample(400)[0], sk.sample(400)[0])


def test_sample_after_parallel_fits(fitted_pair):
    """Independently fitted from the same start, the parameters agree to
    ~1e-14, so the draws agree to ~1e-12 (the same normal variates
    transformed by nearly equal factors); the component counts are equal."""
    ct, sk, fe = (copy.deepcopy(e) for e in fitted_pair)
    sk.set_params(random_state=3)
    fe.set_params(random_state=3)
    Xs_fe, y_fe = fe.sample(300)
    Xs_sk, y_sk = sk.sample(300)
    np.testing.assert_array_equal(y_fe, y_sk)
    np.testing.assert_allclose(Xs_fe, Xs_sk, rtol=1e-8, atol=1e-8)
