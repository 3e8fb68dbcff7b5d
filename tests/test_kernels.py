"""Kernel-level parity of fastem.stats with the slow reference (tests/reference.py).

Tolerances.  Both sides compute in float64; the reference with NumPy/SciPy
component by component, fastem in parallel chunks with reassociated sums and
its own exp/log (1-2 ulp).  Sums over at most a few thousand rows lose at most
~N * eps ~ 1e-12 relative to the size of their terms, so RTOL = 1e-10 (relative
to the scale of each array, see conftest.scaled_atol) leaves a 100x margin
while any algorithmic slip (a missing weight, a wrong reference point, a
transposed factor) shows up at 1e-3 or more.
"""

import functools

import numpy as np
import pytest
import reference as ref
from conftest import (
    COVARIANCE_TYPES,
    assert_close,
    assert_stats_close,
    gaussian_params,
    make_blobs3d,
    soft_params,
)

from fastem import _config
from fastem.stats import (
    GaussianStats,
    compute_stats,
    m_step,
    predict_proba,
    score_samples,
    stats_from_responsibilities,
)

RTOL = 1e-10
# float32 input: the E-step (log-densities, exponentials, normalization) runs
# in float32, unit roundoff u = 2**-24 = 6e-8; the statistics are totalled
# in float64 (diag-type moments after float32 block sums of <= 512 rows, a
# further ~2e-6 at worst).  A log-density of magnitude |lp| <= ~40 on this
# data is off by at most a few |lp| u ~ 1e-5 in the worst case, which is the
# relative error of a responsibility and so of each statistic; errors
# average out over rows
# (measured: ~5e-8).  RTOL32 = 1e-4 bounds the worst case with margin while
# an algorithmic slip still shows at 1e-3 or more.
RTOL32 = 1e-4
K = 3


def _rtol(dtype):
    return RTOL if dtype == np.float64 else RTOL32


@pytest.fixture(scope="module")
def data():
    X, y = make_blobs3d(n=600, seed=0)
    rng = np.random.default_rng(42)
    sw = rng.uniform(0.0, 3.0, X.shape[0])
    sw[rng.choice(X.shape[0], 40, replace=False)] = 0.0  # some zero weights
    return X, y, sw


def _params(X, y, ct):
    w, m, pc = soft_params(X, y, K, ct)
    return (w, m, pc), gaussian_params(w, m, pc, ct)


def _input(X, dtype):
    """(array passed to fastem, float64 array the reference uses).

    float32 input: the reference computes in float64 on the float32-rounded
    data; fastem's E-step runs in float32 (see RTOL32).
    """
    Xi = X.astype(dtype)
    return Xi, Xi.astype(np.float64)


# --------------------------------------------------------- the reference
@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_reference_agrees_with_sklearn_private_functions(data, ct):
    """Validate the reference itself against scikit-learn's estimators."""
    from sklearn.mixture import _gaussian_mixture as skgm

    X, y, _ = data
    (w, m, pc), _ = _params(X, y, ct)
    R = ref.responsibilities(X, w, m, pc, ct)
    # sklearn: per-component log-density and M-step
    sk_logp = skgm._estimate_log_gaussian_prob(X, m, pc, ct)
    assert_close(ref.log_gaussian_prob(X, m, pc, ct), sk_logp, RTOL)
    nk, means, cov = skgm._estimate_gaussian_parameters(X, R, 1e-6, ct)
    rw, rm, rc, rpc = ref.m_step(X, R, ct, 1e-6)
    assert_close(rw, nk / nk.sum(), RTOL)
    assert_close(rm, means, RTOL)
    # sklearn's tied/diag/spherical use E[x^2] - E[x]^2: on this data
    # (|x| <= ~12, variances ~1) that cancels ~2 digits, still far below 1e-10.
    assert_close(rc, cov, RTOL)
    assert_close(rpc, skgm._compute_precision_cholesky(cov, ct), RTOL)


# ---------------------------------------------------------- E-step stats
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_compute_stats_matches_reference(data, ct, dtype, weighted):
    X, y, sw = data
    Xi, X64 = _input(X, dtype)
    (w, m, pc), params = _params(X, y, ct)
    sample_weight = sw if weighted else None
    got = compute_stats(Xi, params, sample_weight=sample_weight)
    expected = ref.e_step_stats(X64, w, m, pc, ct, sample_weight)
    assert got.covariance_type == ct
    np.testing.assert_array_equal(got.ref, m)  # default ref: the E-step means
    assert_stats_close(got, expected, _rtol(dtype))
    if weighted:
        # the weights really are used: unweighted stats differ at O(1)
        plain = compute_stats(Xi, params)
        assert abs(plain.weight_sum - got.weight_sum) > 1.0
    np.testing.assert_allclose(got.mean_loglik,
                               expected["loglik"] / expected["weight_sum"],
                               rtol=_rtol(dtype))


# D = 1..3 use only the one-column paths; 4 and 8 only whole 4 x 4 tiles
# of the loops over rows, 5 and 7 the last D % 4 columns too.  Above
# WIDE_TRI_MAX_D (8) full and tied take the micro-kernel, whose column tile
# is 8 (AVX-512) or 6 (else): 9, 12, 13, 18, 25, 30 and 33 leave every
# remainder from 1 to 6 on one CPU or the other, 16 and 24 none on AVX-512.
# The cross products keep 4 x 4 tiles: 9, 13 and 18 have D % 4 columns left.
@pytest.mark.parametrize("D", [1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 16, 18, 24,
                               25, 30, 33])
@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_compute_stats_every_tile_shape(ct, D):
    """The register-tiled loops agree with the reference for every D mod 4."""
    rng = np.random.default_rng(D)
    n = 700  # more than two 256-row blocks: a partial last block too
    A = rng.normal(size=(D, D)) / np.sqrt(D)
    X = rng.normal(size=(n, D)) @ (np.eye(D) + A)
    y = rng.integers(0, K, n)
    X += 3.0 * y[:, None]
    w, m, pc = soft_params(X, y, K, ct)
    params = gaussian_params(w, m, pc, ct)
    sw = rng.uniform(0.0, 2.0, n)
    got = compute_stats(X, params, sample_weight=sw)
    expected = ref.e_step_stats(X, w, m, pc, ct, sw)
    assert_stats_close(got, expected, RTOL)
    assert_close(score_samples(X, params), ref.score_samples(X, w, m, pc, ct),
                 RTOL)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("ct", ["full", "tied"])
def test_micro_kernel_rows_do_not_depend_on_their_place(ct, dtype):
    """A row's log-density is bit-identical wherever the micro-kernel meets it.

    Rows are vector lanes: in a whole group, in the group shifted back to end
    at a partial block's last row (computed twice), or in the zero-padded copy
    of a block smaller than one group -- the same operations on the same row.
    """
    from fastem.kernels import micro

    D = 20  # > WIDE_TRI_MAX_D: the micro-kernel
    rng = np.random.default_rng(5)
    n = 600  # 256 + 256 + 88 rows: a partial last block
    X = (rng.normal(size=(n, D)) + 4.0).astype(dtype)
    y = rng.integers(0, K, n)
    w, m, pc = soft_params(X.astype(np.float64), y, K, ct)
    params = gaussian_params(w, m, pc, ct)
    whole = score_samples(X, params)
    G = micro.group_rows(np.dtype(dtype).itemsize)
    for lo, hi in [(0, 3), (5, 5 + G - 1), (37, 37 + G), (101, 101 + 2 * G + 5),
                   (n - 7, n)]:
        np.testing.assert_array_equal(score_samples(X[lo:hi], params),
                                      whole[lo:hi])
    assert_close(whole, ref.score_samples(X.astype(np.float64), w, m, pc, ct),
                 _rtol(dtype))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_two_components_match_reference(data, ct, dtype):
    """K = 2 takes its own normalization (one exponential per row)."""
    X, y, sw = data
    Xi, X64 = _input(X, dtype)
    y2 = (y > 0).astype(np.int64)
    w, m, pc = soft_params(X, y2, 2, ct)
    params = gaussian_params(w, m, pc, ct)
    tol = _rtol(dtype)
    got = compute_stats(Xi, params, sample_weight=sw)
    assert_stats_close(got, ref.e_step_stats(X64, w, m, pc, ct, sw), tol)
    resp, lse = predict_proba(Xi, params)
    np.testing.assert_allclose(lse, ref.score_samples(X64, w, m, pc, ct),
                               rtol=tol)
    exp_resp = ref.responsibilities(X64, w, m, pc, ct)
    np.testing.assert_allclose(resp, exp_resp, rtol=0, atol=tol)
    assert np.sort(exp_resp, axis=1)[:, 0].max() > 0.1  # genuinely soft
    # a component of weight 0 (log weight -inf) gets no responsibility
    w0 = np.array([1.0, 0.0])
    resp0, lse0 = predict_proba(Xi, gaussian_params(w0, m, pc, ct))
    np.testing.assert_array_equal(resp0[:, 1], 0.0)
    np.testing.assert_array_equal(resp0[:, 0], 1.0)
    np.testing.assert_allclose(lse0, ref.score_samples(X64, w0, m, pc, ct),
                               rtol=tol)


@pytest.mark.parametrize("scale", [True, False])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_two_component_normalize_equals_general_path(dtype, scale):
    """The K = 2 shortcut gives what the general path gives for the same two
    rows plus a third of -inf (which adds exp(-inf) = 0 to every sum), bit for
    bit on ordinary rows, and the same handling of rows with no finite
    log-density (-inf, +inf, NaN)."""
    from fastem.kernels.gaussian import _block_normalize

    rng = np.random.default_rng(0)
    n = 300
    lp2 = rng.normal(0.0, 20.0, (2, n)).astype(dtype)
    lp2[0, :5] = -np.inf              # one component impossible
    lp2[1, 5:10] = -np.inf
    lp2[:, 10:13] = -np.inf           # both
    lp2[0, 13] = np.inf
    lp2[1, 14] = np.nan
    lp2[:, 15:20] = lp2[0, 15:20]     # ties
    lp2[1, 20:25] = lp2[0, 20:25] - 800.0  # exp underflows to 0
    lp3 = np.vstack([lp2, np.full((1, n), -np.inf, dtype)])
    outs = []
    for lp in (lp2.copy(), lp3.copy()):
        m, s, lse = (np.empty(n, dtype) for _ in range(3))
        total = _block_normalize(lp, n, m, s, lse, scale)
        outs.append((lp[:2], s, lse, total))
    (r2, s2, l2, t2), (r3, s3, l3, t3) = outs
    ok = np.r_[0:10, 15:n]
    np.testing.assert_array_equal(r2[:, ok], r3[:, ok])
    np.testing.assert_array_equal(s2[ok], s3[ok])
    np.testing.assert_array_equal(l2[ok], l3[ok])
    # no finite maximum: lse is the maximum itself, no responsibility
    np.testing.assert_array_equal(l2[10:14], [-np.inf] * 3 + [np.inf])
    np.testing.assert_array_equal(r2[:, 10:14], 0.0)
    assert np.isnan(l2[14]) and np.isnan(t2) and np.isnan(t3)
    np.testing.assert_array_equal(r2[:, 14], 0.0)
    np.testing.assert_array_equal(r2[1, :5], 1.0)
    np.testing.assert_array_equal(r2[0, :5], 0.0)


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_compute_stats_explicit_ref(data, ct):
    X, y, sw = data
    (w, m, pc), params = _params(X, y, ct)
    r = m + np.array([[0.5, -1.0, 2.0]]) * np.arange(1, K + 1)[:, None]
    got = compute_stats(X, params, sample_weight=sw, ref=r)
    np.testing.assert_array_equal(got.ref, r)
    assert_stats_close(got, ref.e_step_stats(X, w, m, pc, ct, sw, ref=r), RTOL)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_score_samples_and_predict_proba_match_reference(data, ct, dtype):
    X, y, _ = data
    Xi, X64 = _input(X, dtype)
    (w, m, pc), params = _params(X, y, ct)
    exp_lse = ref.score_samples(X64, w, m, pc, ct)
    exp_resp = ref.responsibilities(X64, w, m, pc, ct)
    tol = _rtol(dtype)
    # log-likelihoods are O(1-10): relative 1e-10 of their magnitude.
    np.testing.assert_allclose(score_samples(Xi, params), exp_lse, rtol=tol)
    resp, lse = predict_proba(Xi, params)
    np.testing.assert_allclose(lse, exp_lse, rtol=tol)
    # responsibilities are in [0, 1]; absolute 1e-10 (values below ~1e-300
    # are flushed to 0 by fastem, which is far inside this tolerance).
    np.testing.assert_allclose(resp, exp_resp, rtol=0, atol=tol)
    # the data gives genuinely soft responsibilities (the test is not trivial)
    assert np.sort(exp_resp, axis=1)[:, -2].max() > 0.1
    # rows sum to one: K terms each rounded once, then scaled: a few eps of
    # the E-step's precision.
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(resp.sum(axis=1), 1.0, rtol=0, atol=8 * eps)
    assert resp.min() >= 0.0


def test_predict_proba_far_from_every_component():
    """Rows hundreds of standard deviations away still normalize (log-sum-exp
    with the maximum factored out) instead of giving 0/0."""
    X, y = make_blobs3d(n=300, seed=3)
    (w, m, pc), params = _params(X, y, "full")
    far = np.array([[60.0, -40.0, 30.0], [-80.0, 0.0, 0.0]])
    resp, lse = predict_proba(far, params)
    assert np.all(np.isfinite(resp)) and np.all(np.isfinite(lse))
    np.testing.assert_allclose(resp.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(lse, ref.score_samples(far, w, m, pc, "full"),
                               rtol=RTOL)


# ---------------------------------------------------------------- M-step
@pytest.mark.parametrize("reg_covar", [1e-6, 0.3])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_m_step_matches_reference(data, ct, dtype, weighted, reg_covar):
    X, y, sw = data
    Xi, X64 = _input(X, dtype)
    sample_weight = sw if weighted else None
    (w, m, pc), params = _params(X, y, ct)
    new = m_step(compute_stats(Xi, params, sample_weight=sample_weight),
                 reg_covar=reg_covar)
    R = ref.responsibilities(X64, w, m, pc, ct)
    ew, em, ec, epc = ref.m_step(X64, R, ct, reg_covar, sample_weight)
    tol = _rtol(dtype)
    assert new.covariance_type == ct
    assert_close(new.weights, ew, tol)
    assert_close(new.means, em, tol)
    assert new.covariances.shape == ec.shape
    assert_close(new.covariances, ec, tol)
    # Cholesky factors of a well-conditioned (cond < 100) matrix: the
    # relative perturbation grows by at most ~cond: < 1e-8 (float64 input),
    # < 1e-2 (float32).
    assert_close(new.precisions_cholesky, epc, tol * 100)
    np.testing.assert_allclose(new.weights.sum(), 1.0, rtol=1e-14)


# ----------------------------------------------- given responsibilities
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_stats_from_resp_matrix(data, ct, dtype, weighted):
    X, _, sw = data
    Xi, X64 = _input(X, dtype)
    sample_weight = sw if weighted else None
    R = np.random.default_rng(7).dirichlet(np.ones(K), size=X.shape[0])
    got = stats_from_responsibilities(Xi, resp=R, covariance_type=ct,
                                      sample_weight=sample_weight)
    # default reference point: the (weighted) mean of X for every component
    wv = sw if weighted else np.ones(X.shape[0])
    center = wv @ X64 / wv.sum()
    assert_close(got.ref, np.tile(center, (K, 1)), RTOL)
    expected = ref.sufficient_stats(X64, R, ct, sample_weight, got.ref)
    assert_stats_close(got, expected, RTOL, check_loglik=False)
    assert got.loglik == 0.0
    # and the M-step on them is the reference M-step from these resp
    new = m_step(got)
    ew, em, ec, _ = ref.m_step(X64, R, ct, 1e-6, sample_weight)
    assert_close(new.weights, ew, RTOL)
    assert_close(new.means, em, RTOL)
    assert_close(new.covariances, ec, RTOL)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_stats_from_labels(data, ct, weighted):
    X, y, sw = data
    sample_weight = sw if weighted else None
    labels = y.copy()
    labels[::7] = -1  # negative label: row ignored
    r = np.arange(K * 3, dtype=float).reshape(K, 3)
    got = stats_from_responsibilities(X, covariance_type=ct, labels=labels,
                                      n_components=K, ref=r,
                                      sample_weight=sample_weight)
    expected = ref.sufficient_stats(X, ref.onehot(labels, K), ct,
                                    sample_weight, r)
    assert_stats_close(got, expected, RTOL, check_loglik=False)
    wv = np.ones(X.shape[0]) if not weighted else sw
    np.testing.assert_allclose(got.weight_sum, wv[labels >= 0].sum(), rtol=RTOL)


def _recover_random_resp(n_rows, n_components, seed, sample_weight=None):
    """The responsibility matrix behind ``random_seed``: with X the identity
    and ref 0, ``sums[k, i] = w_i r_ik`` exactly (one product per entry)."""
    st = stats_from_responsibilities(
        np.eye(n_rows), covariance_type="diag", n_components=n_components,
        random_seed=seed, ref=np.zeros((n_components, n_rows)),
        sample_weight=sample_weight)
    return st.sums.T.copy()


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_stats_from_random_seed(ct):
    n, k = 200, 4
    R = _recover_random_resp(n, k, seed=123)
    # a valid responsibility matrix: positive entries, rows summing to one
    assert R.shape == (n, k)
    assert R.min() > 0.0 and R.max() < 1.0
    np.testing.assert_allclose(R.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    # normalized uniforms: every column has mean 1/k; each entry has sd ~0.13,
    # so the mean over 200 rows has sd ~0.01 and 0.05 is a 5-sigma bound.
    np.testing.assert_allclose(R.mean(axis=0), 1.0 / k, atol=0.05)
    # deterministic in the seed, different for another seed
    np.testing.assert_array_equal(_recover_random_resp(n, k, seed=123), R)
    assert np.abs(_recover_random_resp(n, k, seed=124) - R).max() > 0.1
    # The responsibilities depend on (seed, row, component) only, not on X:
    # statistics of any X with this seed are those of resp=R.
    X = np.random.default_rng(0).normal(size=(n, 3)) * [1.0, 5.0, 0.2]
    got = stats_from_responsibilities(X, covariance_type=ct, n_components=k,
                                      random_seed=123)
    expected = ref.sufficient_stats(X, R, ct, None, got.ref)
    assert_stats_close(got, expected, RTOL, check_loglik=False)
    # with sample weights: weights multiply the same responsibilities
    sw = np.random.default_rng(1).integers(0, 4, n).astype(float)
    got_w = stats_from_responsibilities(X, covariance_type=ct, n_components=k,
                                        random_seed=123, sample_weight=sw)
    expected_w = ref.sufficient_stats(X, R, ct, sw, got_w.ref)
    assert_stats_close(got_w, expected_w, RTOL, check_loglik=False)


# ------------------------------------------------------------ additivity
def _assert_stats_equal(a, b, rtol):
    assert a.covariance_type == b.covariance_type
    assert a.n_samples == b.n_samples
    np.testing.assert_allclose(a.ref, b.ref, rtol=0, atol=0)
    assert_close(a.nk, b.nk, rtol)
    assert_close(a.sums, b.sums, rtol)
    assert_close(a.scatter, b.scatter, rtol)
    np.testing.assert_allclose(a.loglik, b.loglik, rtol=rtol)
    np.testing.assert_allclose(a.weight_sum, b.weight_sum, rtol=rtol)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_stats_are_additive(data, ct, weighted):
    X, y, sw = data
    _, params = _params(X, y, ct)
    w = sw if weighted else np.ones(X.shape[0])
    whole = compute_stats(X, params, sample_weight=w)
    h = 250
    a = compute_stats(X[:h], params, sample_weight=w[:h])
    b = compute_stats(X[h:], params, sample_weight=w[h:])
    _assert_stats_equal(a + b, whole, RTOL)
    # different reference points: '+' re-centres the right operand (shift);
    # the offsets are O(1-10) on data of scale ~5, so the re-centring adds
    # rounding of relative size ~eps * (offset / spread)^2, well below RTOL.
    other_ref = params.means + np.array([[3.0, -2.0, 1.0], [0.0, 5.0, 0.5],
                                         [-4.0, 0.0, 2.0]])
    b2 = compute_stats(X[h:], params, sample_weight=w[h:], ref=other_ref)
    assert not np.array_equal(b2.ref, a.ref)
    _assert_stats_equal(a + b2, whole, RTOL)
    # shift on its own: statistics around another point, as the reference has
    shifted = whole.shift(other_ref)
    exp_around_other = compute_stats(X, params, sample_weight=w, ref=other_ref)
    _assert_stats_equal(shifted, exp_around_other, RTOL)
    # sum(..., start=None) over unequal chunks, with mixed references
    bounds = [0, 17, 130, 131, 400, X.shape[0]]
    chunks = [compute_stats(X[i:j], params, sample_weight=w[i:j],
                            ref=other_ref if c % 2 else None)
              for c, (i, j) in enumerate(zip(bounds[:-1], bounds[1:]))]
    total = sum(chunks, start=None)
    assert isinstance(total, GaussianStats)
    _assert_stats_equal(total, whole, RTOL)
    assert (None + a) is a and (a + None) is a


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_given_resp_stats_are_additive(data, ct):
    X, y, sw = data
    R = np.random.default_rng(3).dirichlet(np.ones(K), size=X.shape[0])
    r = np.tile(X.mean(axis=0), (K, 1))
    whole = stats_from_responsibilities(X, resp=R, covariance_type=ct,
                                        sample_weight=sw, ref=r)
    a = stats_from_responsibilities(X[:300], resp=R[:300], covariance_type=ct,
                                    sample_weight=sw[:300], ref=r)
    b = stats_from_responsibilities(X[300:], resp=R[300:], covariance_type=ct,
                                    sample_weight=sw[300:])  # default ref
    _assert_stats_equal(a + b, whole, RTOL)


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_scale(data, ct):
    X, y, _ = data
    _, params = _params(X, y, ct)
    st = compute_stats(X, params)
    s3 = st.scale(3.0)
    # multiplying every statistic by 3 is one rounding per entry
    for name in ("nk", "sums", "scatter"):
        np.testing.assert_allclose(getattr(s3, name), 3 * getattr(st, name),
                                   rtol=1e-15)
    np.testing.assert_allclose(s3.loglik, 3 * st.loglik, rtol=1e-15)
    # scaling all weights does not change the M-step (beyond the 10 eps
    # regularization of nk, relative ~1e-15 / n_k)
    a, b = m_step(st), m_step(s3)
    assert_close(b.means, a.means, 1e-12)
    assert_close(b.covariances, a.covariances, 1e-12)


# -------------------------------------------------- thread-count invariance
@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_thread_count_invariance(ct):
    import numba

    assert numba.config.NUMBA_NUM_THREADS >= 2, "needs 2 numba threads"
    X, y = make_blobs3d(n=5000, seed=4)  # 3 chunks of rows
    assert _config.n_chunks_for(X.shape[0]) > 1
    sw = np.random.default_rng(0).uniform(0, 2, X.shape[0])
    _, params = _params(X, y, ct)

    def run():
        st = compute_stats(X, params, sample_weight=sw)
        resp, lse = predict_proba(X, params)
        rnd = stats_from_responsibilities(X, covariance_type=ct, n_components=K,
                                          random_seed=5, sample_weight=sw)
        return st, m_step(st), resp, lse, rnd

    with _config.threads(1):
        assert numba.get_num_threads() == 1
        one = run()
    with _config.threads(2):
        assert numba.get_num_threads() == 2
        two = run()
    # The chunking depends on the row count only and partial results are
    # reduced in chunk order, so the answers do not depend on the thread
    # count; 1e-12 relative is the tolerance asked of the contract.
    tol = 1e-12
    _assert_stats_equal(one[0], two[0], tol)
    assert_close(one[1].covariances, two[1].covariances, tol)
    assert_close(one[1].means, two[1].means, tol)
    assert_close(one[2], two[2], tol)
    assert_close(one[3], two[3], tol)
    _assert_stats_equal(one[4], two[4], tol)


@pytest.mark.parametrize("ct", ["full", "diag"])
def test_estimator_thread_count_invariance(ct):
    from fastem import GaussianMixture

    X, _ = make_blobs3d(n=5000, seed=5)
    fits = [GaussianMixture(3, covariance_type=ct, random_state=0,
                            n_threads=n).fit(X) for n in (1, 2)]
    tol = 1e-12  # see test_thread_count_invariance
    a, b = fits
    assert a.n_iter_ == b.n_iter_
    np.testing.assert_allclose(a.lower_bounds_, b.lower_bounds_, rtol=tol)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        assert_close(getattr(a, name), getattr(b, name), tol, name)
        # README: "results are bit-identical for any thread count"
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name),
                                      err_msg=name)
    assert a.lower_bounds_ == b.lower_bounds_


@pytest.mark.parametrize("ct", ["full", "tied"])
def test_micro_kernel_paths_thread_invariant_and_exact_far_from_origin(ct):
    """Above WIDE_TRI_MAX_D features (the micro-kernels): a fit is
    bit-identical at 1 and 2 threads, and the statistics of X + 1e6 give the
    covariances of X (the panels are centred on each component's reference
    before any product, as the loops over rows were)."""
    from fastem import GaussianMixture

    rng = np.random.default_rng(11)
    D, n = 20, 5000  # 20 > WIDE_TRI_MAX_D
    assert _config.n_chunks_for(n) > 1
    y = rng.integers(0, K, n)
    X = rng.normal(size=(n, D)) + 4.0 * y[:, None] * rng.normal(size=D)
    fits = [GaussianMixture(K, covariance_type=ct, random_state=0, max_iter=5,
                            n_threads=t).fit(X) for t in (1, 2)]
    a, b = fits
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name),
                                      err_msg=name)
    assert a.lower_bounds_ == b.lower_bounds_
    w, m, pc = soft_params(X, y, K, ct)
    params = gaussian_params(w, m, pc, ct)
    shifted = gaussian_params(w, m + 1e6, pc, ct)
    base = m_step(compute_stats(X, params))
    far = m_step(compute_stats(X + 1e6, shifted))
    # X + 1e6 is X rounded to multiples of ulp(1e6) = 1.2e-10: ~1e-10
    # relative on spreads of ~1; 1e-8 allowed (see the test below)
    assert_close(far.covariances, base.covariances, 1e-8)


# ------------------------------------------------- far from the origin
@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_precision_far_from_origin(data, ct):
    """compute_stats + m_step on X + 1e6 give the covariances of X.

    Shifting by 1e6 rounds every entry to a multiple of ulp(1e6) = 1.2e-10,
    i.e. perturbs data of spread ~1-5 by ~1e-10 relative, so the covariances
    of X + 1e6 equal those of X to ~1e-9 relative; we allow 1e-8.  A
    one-pass E[x^2] - E[x]^2 would cancel 12 of the 16 digits and be off by
    ~1e-4 (checked below, so the tolerance discriminates).  Against the exact
    shift Xs - 1e6 (exact by Sterbenz's lemma) fastem, which accumulates
    around the E-step means, must agree to the ordinary RTOL.
    """
    X, y, sw = data
    (w, m, pc), params = _params(X, y, ct)
    shift = 1e6
    Xs = X + shift
    ps = gaussian_params(w, m + shift, pc, ct)
    new_s = m_step(compute_stats(Xs, ps, sample_weight=sw))
    new_0 = m_step(compute_stats(X, params, sample_weight=sw))
    assert_close(new_s.covariances, new_0.covariances, 1e-8)
    # means: absolute error ~ulp(1e6)
    np.testing.assert_allclose(new_s.means - shift, new_0.means, rtol=0,
                               atol=1e-8)
    # exact shift: identical differences x - ref, so only reassociation
    Xe = Xs - shift
    pe = gaussian_params(w, (m + shift) - shift, pc, ct)
    new_e = m_step(compute_stats(Xe, pe, sample_weight=sw))
    assert_close(new_s.covariances, new_e.covariances, RTOL)
    # the naive one-pass estimate really is inaccurate here
    R = ref.responsibilities(X, w, m, pc, ct)
    wr = R[:, 0] * sw
    mu = wr @ Xs / wr.sum()
    naive = (wr[:, None] * Xs).T @ Xs / wr.sum() - np.outer(mu, mu)
    exact = ref.m_step(X, R, "full", 0.0, sw)[2][0]
    assert np.abs(naive - exact).max() > 1e-6 * np.abs(exact).max()


@pytest.mark.parametrize("D, K, full", [(1, 2, True), (8, 8, True),
                                        (8, 8, False), (32, 16, True),
                                        (3, 3, False), (12, 8, True)])
def test_em_block_rows_rule(D, K, full):
    """The E-step block is the largest candidate whose scratch fits 44 KiB
    (so it stays in L1), else 256 rows; it depends on the shape only."""
    b = _config.em_block_rows(D, K, full)
    rows = (4 * D if full else D) + K + 4
    fits = [c for c in (512, 384, 256, 192, 128) if rows * c * 8 <= 44 * 1024]
    assert b == (fits[0] if fits else 256)
    assert b == _config.em_block_rows(D, K, full)


@pytest.mark.parametrize("block", [128, 256, 512])
def test_block_size_changes_only_rounding(block):
    """Any block size gives the same statistics up to summation order."""
    from fastem.families.gaussian import _s_rows
    from fastem.kernels.gaussian import _em_pass

    X, y = make_blobs3d(n=3000, seed=5)
    _, params = _params(X, y, "full")
    code, means, prec, logc = params.kernel_args()
    args = (np.empty(0), np.empty((0, K)), np.empty(0, np.int64), _s_rows(code, K))
    base = _em_pass(code, X, np.empty(0), means, prec, logc, means.copy(), 2,
                    256, True, *args)
    got = _em_pass(code, X, np.empty(0), means, prec, logc, means.copy(), 2,
                   block, True, *args)
    for a, b in zip(base, got):
        np.testing.assert_allclose(a, b, rtol=1e-12)


@pytest.mark.parametrize("D", [1, 2, 3, 4, 5, 6, 7, 8, 11, 16, 19])
@pytest.mark.parametrize("dtype, block_dtype", [
    (np.float64, np.float64), (np.float32, np.float32),
    (np.float32, np.float64), (np.float64, np.float32)])
@pytest.mark.parametrize("layout", ["C", "F", "reversed"])
def test_load_block_is_an_exact_transpose(D, dtype, block_dtype, layout):
    """The block load (register-shuffle tiles of eight whole rows below
    eight features, of 8 x 8 from eight up, element copies for the rest) is
    an exact transpose -- converted to the
    block's float type as an assignment would -- for every D mod 8, row
    count mod 8 and memory layout, and writes nothing past the block."""
    from fastem.kernels.gaussian import _load_block

    X = np.random.default_rng(D).normal(size=(300, D)).astype(dtype)
    X = {"C": X, "F": np.asfortranarray(X), "reversed": X[::-1]}[layout]
    for b0, nb in ((17, 256), (0, 253), (40, 8), (3, 5), (9, 0)):
        xt = np.full((D, 264), -7.0, block_dtype)
        _load_block(X, b0, nb, xt)
        np.testing.assert_array_equal(xt[:, :nb],
                                      X[b0:b0 + nb].T.astype(block_dtype))
        assert np.all(xt[:, nb:] == -7.0)


def test_transpose_tile_into_a_strided_block():
    """Tiles written into a non-contiguous destination (element stores)."""
    from numba import njit

    from fastem.kernels.fastmath import transpose_tile

    @njit
    def tiles(X, Xn, xt):
        transpose_tile(X, 5, 2, xt, 3, 8)  # an 8 x 8 tile of wide rows
        transpose_tile(Xn, 0, 0, xt, 11, 3)  # eight whole rows of 3

    X = np.arange(20 * 12, dtype=np.float64).reshape(20, 12)
    Xn = np.arange(8 * 3, dtype=np.float64).reshape(8, 3) + 0.5
    dst = np.zeros((24, 20))
    tiles(X, Xn, dst[::2])  # the strided view's rows 2..9, then 0..2
    want = np.zeros((24, 20))
    want[::2][2:10, 3:11] = X[5:13, 2:10].T
    want[::2][0:3, 11:19] = Xn.T
    np.testing.assert_array_equal(dst, want)


def test_fetch_add_hands_out_every_chunk_once():
    """The E-step's work queue: workers racing on the counter take every
    chunk index exactly once, and each stops at the first index past the
    end (so the counter ends at n plus one overshoot per worker)."""
    import numba
    from numba import njit, prange

    from fastem.kernels.fastmath import fetch_add

    @njit(parallel=True)
    def take(n, workers, counter, taken):
        for w in prange(workers):
            while True:
                c = fetch_add(counter, 1)
                if c >= n:
                    break
                taken[c] += 1

    before = numba.get_num_threads()
    try:
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        for n, workers in ((1000, 2), (3, 2), (0, 2), (64, 1)):
            counter = np.zeros(1, np.int64)
            taken = np.zeros(n, np.int64)
            take(n, workers, counter, taken)
            np.testing.assert_array_equal(taken, np.ones(n, np.int64))
            assert counter[0] == n + workers
    finally:
        numba.set_num_threads(before)


@pytest.mark.parametrize("ct, D", [("diag", 3), ("spherical", 3), ("full", 1),
                                   ("tied", 1), ("diag", 9)])
def test_float32_moments_about_the_given_reference(ct, D):
    """float32 data: diag, spherical and one-feature moments are summed per
    block in float32 about the reference rounded to float32, then re-centred
    on the given float64 reference.  With one component (responsibility
    exactly 1, so only the accumulation differs) they match float64 sums
    over the same values: the first moments to 1e-6 and the second to 1e-5
    of their size (block sums of <= 512 float32 terms, ~32 per SIMD lane:
    worst case ~32 * 6e-8 = 2e-6), 1e4 standard deviations from the origin,
    where moments about a reference off by float32 rounding (up to 5e-4
    here) would be off by ~1e-3."""
    rng = np.random.default_rng(11)
    X64 = (1e4 + 0.3 + rng.normal(size=(20_000, D))).astype(np.float32)
    X64 = X64.astype(np.float64)
    ref_pt = np.full((1, D), 1e4 + 0.3 + 1e-3 / 3)  # not a float32 value
    prec = {"diag": np.ones((1, D)), "spherical": np.ones(1),
            "full": np.eye(D)[None], "tied": np.eye(D)}[ct]
    params = gaussian_params([1.0], ref_pt, prec, ct)
    s64 = compute_stats(X64, params, ref=ref_pt)
    s32 = compute_stats(X64.astype(np.float32), params, ref=ref_pt)
    np.testing.assert_array_equal(s32.nk, s64.nk)
    np.testing.assert_allclose(s32.sums, s64.sums,
                               atol=1e-6 * np.abs(X64 - ref_pt).sum(0).max())
    np.testing.assert_allclose(s32.scatter, s64.scatter, rtol=1e-5)


@functools.cache
def _scatter_rows_runner():
    """One compiled caller of micro.scatter_rows for every test below."""
    from numba import njit

    from fastem.kernels import micro

    @njit
    def run(wd, e, n, S, sums):
        micro.scatter_rows(wd, e, n, S, sums)

    return run


@pytest.mark.parametrize("D", [2, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 40])
def test_scatter_micro_kernel_matches_numpy(D):
    """micro.scatter_rows adds the upper triangle of wd^T e and wd's column
    sums, reads no row past ``n`` and no padding column (NaN there would
    show), and leaves every entry below the diagonal either untouched or at
    its symmetric value (the caller mirrors the upper triangle over them)."""
    from fastem.kernels import micro

    run = _scatter_rows_runner()
    rng = np.random.default_rng(D)
    C = micro.scatter_columns(D)
    for n in (1, 5, 64):
        e = np.full((n + 3, C), np.nan)
        e[:n, :D] = rng.normal(size=(n, D)) + 50.0
        wd = np.full((n + 3, C), np.nan)
        wd[:n, :D] = e[:n, :D] * rng.uniform(size=(n, 1))
        S0 = rng.normal(size=(D, D))
        sums0 = rng.normal(size=D)
        S, sums = S0.copy(), sums0.copy()
        run(wd, e, n, S, sums)
        want = S0 + wd[:n, :D].T @ e[:n, :D]
        up = np.triu_indices(D)
        np.testing.assert_allclose(S[up], want[up], rtol=1e-13)
        lo = np.tril_indices(D, -1)
        touched = S[lo] != S0[lo]
        np.testing.assert_allclose(S[lo][touched], want[lo][touched],
                                   rtol=1e-13)
        np.testing.assert_allclose(sums, sums0 + wd[:n, :D].sum(axis=0),
                                   rtol=1e-13)
