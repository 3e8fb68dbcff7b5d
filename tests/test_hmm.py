"""Tests of fastem.GaussianHMM: parity with hmmlearn, EM invariants, recovery,
parameter freezing, and user-facing errors.

Tolerances.  fastem and hmmlearn compute the same quantities in a different
order (scaled recursions on shifted densities vs. log-space recursions;
centred vs. raw second moments; precision Cholesky factors vs. covariance
Cholesky factors), so results agree to rounding: observed differences are
~1e-13 relative on the log-likelihood and ~1e-13 absolute on parameters of
order one after a dozen iterations.  The asserted tolerances are the issue's
1e-8 relative on the log-likelihood, and 1e-7 on parameters (EM is
contractive near its fixed points, so rounding differences do not grow, but
each iteration's M-step divides by state weights, which loses a few digits
more than the log-likelihood).  Posteriors are probabilities in [0, 1] and
are compared with an absolute tolerance of 1e-9.
"""

import itertools
import logging
import warnings

import hmm_reference as href
import numpy as np
import pytest

from fastem import NotFittedError
from fastem.models.hmm import ConvergenceMonitor, GaussianHMM, _check_lengths

COVARIANCE_TYPES = ("spherical", "diag", "full", "tied")
K, D = 3, 2
# Lengths of the multi-sequence tests.  LENGTHS (long sequences) runs the
# row-chunked three-pass E-step; MANY (short ones) the fused per-group pass.
LENGTHS = [200, 1, 149, 250]          # includes a sequence of length one
MANY = [1, 63] + [67] * 8
SEQUENCES = [None, LENGTHS, MANY]
SEQ_IDS = ["one", "long", "many"]
LL_RTOL = 1e-8
N_ITER = 10                           # EM iterations of the parity fits
PARAM_RTOL = 1e-7
PROBA_ATOL = 1e-9

TRUE_STARTPROB = np.array([0.6, 0.3, 0.1])
TRUE_TRANSMAT = np.array([[0.85, 0.10, 0.05],
                          [0.10, 0.80, 0.10],
                          [0.05, 0.15, 0.80]])
TRUE_MEANS = np.array([[0.0, 0.0], [3.0, 1.0], [1.0, 4.0]])
TRUE_COVS = np.array([[[1.0, 0.3], [0.3, 0.6]],
                      [[0.8, -0.2], [-0.2, 1.2]],
                      [[0.5, 0.0], [0.0, 0.9]]])


def covars_in_layout(full, ct):
    """Type-specific covariances (what ``covars_ = ...`` takes) from full ones."""
    if ct == "full":
        return full.copy()
    if ct == "tied":
        return full.mean(axis=0)
    if ct == "diag":
        return np.array([np.diag(c) for c in full])
    return np.array([np.trace(c) / c.shape[0] for c in full])


def set_params(model, ct, startprob, transmat, means, full_covs):
    model.startprob_ = np.array(startprob, dtype=float)
    model.transmat_ = np.array(transmat, dtype=float)
    model.means_ = np.array(means, dtype=float)
    model.covars_ = covars_in_layout(np.asarray(full_covs, dtype=float), ct)
    return model


def true_model(ct="full", **kw):
    m = GaussianHMM(K, covariance_type=ct, init_params="", **kw)
    return set_params(m, ct, TRUE_STARTPROB, TRUE_TRANSMAT, TRUE_MEANS,
                      TRUE_COVS)


def start_params():
    """A deliberately poor but valid starting point for EM."""
    return (np.full(K, 1 / K), np.full((K, K), 1 / K),
            np.array([[0.5, 0.5], [2.0, 2.0], [0.0, 3.0]]),
            np.tile(np.eye(D), (K, 1, 1)))


def full_covars(model):
    """Full (K, D, D) covariances of a fastem model (works for every type)."""
    return model.covars_


@pytest.fixture(scope="module")
def data():
    X, Z = true_model(random_state=0).sample(600)
    return X, Z


@pytest.fixture(scope="module")
def hmmlearn_hmm():
    return pytest.importorskip("hmmlearn.hmm")


# --------------------------------------------------------------- priors
def custom_priors(ct):
    rng = np.random.default_rng(42)
    kw = dict(startprob_prior=np.array([2.0, 1.5, 3.0]),
              transmat_prior=1.0 + rng.random((K, K)),
              means_prior=rng.normal(size=(K, D)), means_weight=0.5)
    if ct in ("spherical", "diag"):
        kw.update(covars_prior=0.05 + rng.random((K, D)), covars_weight=3.0)
    elif ct == "full":
        A = rng.normal(size=(K, D, D))
        kw.update(covars_prior=0.1 * A @ np.swapaxes(A, 1, 2), covars_weight=4)
    else:
        kw.update(covars_prior=np.array([[0.3, 0.1], [0.1, 0.2]]),
                  covars_weight=5)
    return kw


def hmmlearn_covars(model, ct):
    """hmmlearn's internal covariances in fastem's type-specific layout
    (hmmlearn keeps spherical ones as (K, D) after fit)."""
    cv = np.asarray(model._covars_)
    return cv[:, 0] if (ct == "spherical" and cv.ndim == 2) else cv


# ------------------------------------------------------------- parity
@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
@pytest.mark.parametrize("seqs, priors", [
    ("one", "default"), ("long", "default"), ("many", "default"),
    ("long", "custom"), ("many", "custom")])
def test_fit_parity_with_hmmlearn(hmmlearn_hmm, data, ct, seqs, priors):
    X, _ = data
    lengths = SEQUENCES[SEQ_IDS.index(seqs)]
    kw = custom_priors(ct) if priors == "custom" else {}
    common = dict(covariance_type=ct, init_params="", n_iter=N_ITER,
                  tol=-np.inf, **kw)
    ref = set_params(hmmlearn_hmm.GaussianHMM(K, **common), ct,
                     *start_params())
    ours = set_params(GaussianHMM(K, **common), ct, *start_params())
    ref.fit(X, lengths)
    ours.fit(X, lengths)
    h_ref = np.array(ref.monitor_.history)
    h_ours = np.array(ours.monitor_.history)
    assert h_ours.shape == h_ref.shape == (N_ITER,)
    np.testing.assert_allclose(h_ours, h_ref, rtol=LL_RTOL, atol=0)
    # Relative to the parameters' scale (entries can be ~0).
    for name, a, b in [("startprob_", ours.startprob_, ref.startprob_),
                       ("transmat_", ours.transmat_, ref.transmat_),
                       ("means_", ours.means_, ref.means_),
                       ("covars", ours._covars_, hmmlearn_covars(ref, ct))]:
        np.testing.assert_allclose(a, b, rtol=PARAM_RTOL,
                                   atol=PARAM_RTOL * np.abs(b).max(),
                                   err_msg=name)


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
@pytest.mark.parametrize("lengths", SEQUENCES, ids=SEQ_IDS)
def test_inference_parity_with_hmmlearn(hmmlearn_hmm, data, ct, lengths):
    X, _ = data
    params = (TRUE_STARTPROB, TRUE_TRANSMAT, TRUE_MEANS + 0.3, TRUE_COVS)
    ref = set_params(hmmlearn_hmm.GaussianHMM(K, covariance_type=ct), ct,
                     *params)
    ours = set_params(GaussianHMM(K, covariance_type=ct), ct, *params)
    lp_ref, path_ref = ref.decode(X, lengths)
    lp_ours, path_ours = ours.decode(X, lengths)
    assert np.array_equal(path_ours, path_ref)
    np.testing.assert_allclose(lp_ours, lp_ref, rtol=1e-10)
    np.testing.assert_allclose(ours.score(X, lengths), ref.score(X, lengths),
                               rtol=1e-10)
    ll_ref, post_ref = ref.score_samples(X, lengths)
    ll_ours, post_ours = ours.score_samples(X, lengths)
    np.testing.assert_allclose(ll_ours, ll_ref, rtol=1e-10)
    np.testing.assert_allclose(post_ours, post_ref, rtol=0, atol=PROBA_ATOL)
    np.testing.assert_allclose(ours.predict_proba(X, lengths), post_ref,
                               rtol=0, atol=PROBA_ATOL)
    lp_ref, map_ref = ref.decode(X, lengths, algorithm="map")
    lp_ours, map_ours = ours.decode(X, lengths, algorithm="map")
    assert np.array_equal(map_ours, map_ref)
    np.testing.assert_allclose(lp_ours, lp_ref, rtol=1e-10)
    np.testing.assert_allclose(ours.aic(X, lengths), ref.aic(X, lengths),
                               rtol=1e-10)
    np.testing.assert_allclose(ours.bic(X, lengths), ref.bic(X, lengths),
                               rtol=1e-10)


def test_sample_parity_with_hmmlearn(hmmlearn_hmm):
    # Same parameters and seed -> same random draws in the same order.
    for ct in ("diag", "full", "tied"):
        ref = set_params(hmmlearn_hmm.GaussianHMM(K, covariance_type=ct), ct,
                         TRUE_STARTPROB, TRUE_TRANSMAT, TRUE_MEANS, TRUE_COVS)
        ours = true_model(ct)
        Xr, Zr = ref.sample(300, random_state=7)
        Xo, Zo = ours.sample(300, random_state=7)
        assert np.array_equal(Zo, Zr)
        # Same normals; only the matrix product's summation order differs.
        np.testing.assert_allclose(Xo, Xr, rtol=1e-12, atol=1e-12)
        Xr, Zr = ref.sample(50, random_state=3, currstate=2)
        Xo, Zo = ours.sample(50, random_state=3, currstate=2)
        assert Zo[0] == 2 and np.array_equal(Zo, Zr)


def test_stationary_distribution_parity(hmmlearn_hmm):
    ref = set_params(hmmlearn_hmm.GaussianHMM(K, covariance_type="full"),
                     "full", TRUE_STARTPROB, TRUE_TRANSMAT, TRUE_MEANS,
                     TRUE_COVS)
    pi = true_model().get_stationary_distribution()
    np.testing.assert_allclose(pi, ref.get_stationary_distribution(),
                               rtol=1e-10)
    np.testing.assert_allclose(pi @ TRUE_TRANSMAT, pi, rtol=1e-10)


# ------------------------------------------ E-step against the NumPy reference
@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
@pytest.mark.parametrize("plan", ["rows", "groups"])
def test_e_step_matches_reference(data, ct, plan):
    """Log-likelihood, transition counts, start posteriors, posteriors and
    Viterbi paths of both E-step kernels equal a plain log-space
    forward-backward (hmm_reference.py), to rounding."""
    X, _ = data
    model = true_model(ct)
    model.means_ = TRUE_MEANS + 0.2
    for lengths in SEQUENCES:
        expected = href.e_step(X, lengths, model.startprob_, model.transmat_,
                               model.means_, model.covars_)
        es, gamma = _e_step(model, X, lengths, plan)
        np.testing.assert_allclose(es.loglik, expected["loglik"], rtol=1e-12)
        np.testing.assert_allclose(es.xi, expected["xi"], rtol=1e-10)
        np.testing.assert_allclose(es.start, expected["start"], rtol=0,
                                   atol=1e-12)
        np.testing.assert_allclose(gamma, expected["gamma"], rtol=0,
                                   atol=1e-12)
        np.testing.assert_allclose(es.stats.nk, expected["gamma"].sum(0),
                                   rtol=1e-12)
    lp, path = href.viterbi(X, MANY, model.startprob_, model.transmat_,
                            model.means_, model.covars_)
    lp_ours, path_ours = model.decode(X, MANY)
    assert np.array_equal(path_ours, path)
    np.testing.assert_allclose(lp_ours, lp, rtol=1e-12)


def _e_step(model, X, lengths, plan="auto"):
    from fastem.models.hmm import _Workspace

    X = np.ascontiguousarray(X, dtype=np.float64)
    starts = _check_lengths(lengths, len(X))
    gamma = np.empty((len(X), K))
    es = model._e_step(X, starts, model._model(X.shape[1]),
                       _Workspace(len(X), K, starts, plan), gamma=True,
                       stats=True, xi=True, out_gamma=gamma)
    return es, gamma


def test_e_step_plan_follows_the_lengths():
    from fastem.models.hmm import _plan_groups

    assert _plan_groups(_check_lengths(None, 600)) is None
    assert _plan_groups(_check_lengths(LENGTHS, 600)) is None
    groups = _plan_groups(_check_lengths(MANY, 600))
    assert groups[0] == 0 and groups[-1] == len(MANY)
    assert np.all(np.diff(groups) >= 1)
    groups = _plan_groups(_check_lengths([10] * 1000, 10_000))
    assert len(groups) == 65 and set(np.diff(groups)) == {15, 16}
    assert _plan_groups(_check_lengths([1300] + [10] * 870, 10_000)) is None
    assert _plan_groups(_check_lengths([1200] + [10] * 880, 10_000)) is not None


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_posteriors_feed_the_mixture_accumulator(data, ct):
    """The HMM's Gaussian statistics are the mixture's statistics of its
    posteriors: equal to stats_from_responsibilities(X, resp=gamma)."""
    from fastem.stats import stats_from_responsibilities

    X, _ = data
    model = true_model(ct)
    es, gamma = _e_step(model, X, LENGTHS)
    np.testing.assert_allclose(model.predict_proba(X, LENGTHS), gamma,
                               rtol=0, atol=1e-15)
    st = stats_from_responsibilities(X, resp=gamma, covariance_type=ct,
                                     ref=model.means_)
    for name in ("nk", "sums", "scatter"):
        a, b = getattr(es.stats, name), getattr(st, name)
        np.testing.assert_allclose(a, b, rtol=1e-11,
                                   atol=1e-11 * np.abs(b).max(), err_msg=name)
    assert es.stats.n_samples == len(X)


@pytest.mark.parametrize("lengths", [[100, 100], [10] * 20],
                         ids=["long", "many"])
def test_underflow_falls_back_to_log_space(hmmlearn_hmm, lengths):
    """A model that all but forbids the data (state 1 is unreachable, the data
    sit on its mean, ~50 sd from state 0) underflows any scaled recursion:
    those sequences are redone in log space and still match hmmlearn's
    log-space implementation."""
    rng = np.random.default_rng(3)
    X = np.concatenate([rng.normal(0.0, 1.0, 100),          # ordinary
                        rng.normal(50.0, 1.0, 100)]).reshape(-1, 1)
    if len(lengths) > 2:  # interleave ordinary and underflowing sequences
        X = X.reshape(2, 10, 10).transpose(1, 0, 2).reshape(-1, 1)
    params = dict(startprob_=np.array([1.0, 0.0]),
                  transmat_=np.array([[1.0, 0.0], [0.5, 0.5]]),
                  means_=np.array([[0.0], [50.0]]),
                  covars_=np.array([[1.0], [1.0]]))
    ref = hmmlearn_hmm.GaussianHMM(2, init_params="", params="mc", n_iter=3,
                                   tol=-np.inf)
    ours = GaussianHMM(2, init_params="", params="mc", n_iter=3, tol=-np.inf)
    for m in (ref, ours):
        for k, v in params.items():
            setattr(m, k, v)
    ll = ours.score(X, lengths)
    assert np.isfinite(ll) and ll < -1e5
    np.testing.assert_allclose(ll, ref.score(X, lengths), rtol=1e-10)
    np.testing.assert_allclose(ours.predict_proba(X, lengths),
                               ref.predict_proba(X, lengths), atol=PROBA_ATOL)
    assert np.array_equal(ours.predict(X, lengths), ref.predict(X, lengths))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # state 1 is empty
        ref.fit(X, lengths)
        with pytest.warns(RuntimeWarning, match=r"State\(s\) \[1\] have no "
                          "posterior weight"):
            ours.fit(X, lengths)
    np.testing.assert_allclose(ours.monitor_.history[0],
                               ref.monitor_.history[0], rtol=LL_RTOL)
    # hmmlearn's state-1 mean becomes 0/0 = NaN; fastem keeps it (policy).
    assert np.isnan(ref.means_[1, 0]) and ours.means_[1, 0] == 50.0
    h = np.array(ours.monitor_.history)
    # Non-decreasing up to rounding (it has converged after one step).
    assert np.all(np.isfinite(h)) and np.all(np.diff(h) >= -1e-12 * np.abs(h[1:]))


@pytest.mark.parametrize("plan", ["rows", "groups"])
def test_posterior_underflow_is_redone_in_log_space(monkeypatch, plan):
    """A forced switch through a 1e-280 transition: both scaled recursions
    stay in range, but the posterior normalizer of the switching row
    underflows (the lazily scaled lattices carry small factors), so the
    sequence is redone in log space -- and matches the reference."""
    import fastem.models.hmm as fh

    calls = []

    def counting(*args):
        calls.append(args[2])
        return real(*args)

    real = fh._fb_log_seq
    monkeypatch.setattr(fh, "_fb_log_seq", counting)
    eps = 1e-280
    sp = np.array([1.0, 0.0, 0.0])
    A = np.array([[1 - eps, eps, 0.0], [eps, 1 - eps, 0.0], [0.5, 0.5, 0.0]])
    means = np.array([[0.0], [6.0], [0.5]])
    covs = np.array([[1.0], [1.0], [0.05]])
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0.0, 0.2, 120),
                        rng.normal(6.0, 0.2, 120)] * 8).reshape(-1, 1)
    lengths = [240] * 8
    m = GaussianHMM(3, init_params="")
    m.startprob_, m.transmat_, m.means_, m.covars_ = sp, A, means, covs
    from fastem.models.hmm import _Workspace

    starts = _check_lengths(lengths, len(X))
    gamma = np.empty((len(X), 3))
    es = m._e_step(X, starts, m._model(1), _Workspace(len(X), 3, starts, plan),
                   gamma=True, stats=True, xi=True, out_gamma=gamma)
    expected = href.e_step(X, lengths, sp, A, means, covs[:, :, None])
    if plan == "rows":
        assert calls == [240 * s for s in range(8)]  # every sequence redone
    np.testing.assert_allclose(es.loglik, expected["loglik"], rtol=1e-12)
    np.testing.assert_allclose(gamma, expected["gamma"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(es.xi, expected["xi"], rtol=1e-10,
                               atol=1e-12)


def test_impossible_sequence_is_reported(data):
    X, _ = data
    model = true_model()
    model.startprob_ = np.array([1.0, 0.0, 0.0])
    model.transmat_ = np.eye(K)
    # State 0, the only reachable one, has a density that underflows to 0
    # even in log space ((x - mu)^2 overflows).
    model.means_ = np.array([[1e200, 1e200], [0, 0], [3, 1.0]])
    assert model.score(X) == -np.inf
    with pytest.raises(ValueError, match="zero probability to the data"):
        model.set_params(n_iter=2).fit(X)


# ------------------------------------------------------------ invariants
@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
@pytest.mark.parametrize("lengths", [LENGTHS, MANY], ids=["long", "many"])
def test_log_likelihood_never_decreases(data, ct, lengths):
    # Pure maximum likelihood (no covariance prior): EM's guarantee applies.
    # One thread: many short iterations, and the point is the arithmetic
    # (thread counts do not change results, see below).
    X, _ = data
    model = set_params(GaussianHMM(K, covariance_type=ct, init_params="",
                                   covars_prior=0.0, n_iter=40, tol=-np.inf,
                                   n_threads=1), ct, *start_params())
    model.fit(X, lengths)
    h = np.array(model.monitor_.history)
    assert len(h) == 40
    # Non-decreasing up to rounding of a sum of 600 terms of size ~1e3.
    assert np.all(np.diff(h) >= -1e-10 * np.abs(h[:-1])), np.diff(h).min()
    assert h[-1] > h[0] + 10  # and it actually improved


@pytest.mark.parametrize("lengths", SEQUENCES, ids=SEQ_IDS)
def test_thread_count_does_not_change_results(data, lengths):
    X, _ = data
    runs = []
    for n in (1, 2):
        m = set_params(GaussianHMM(K, covariance_type="full", init_params="",
                                   n_iter=5, n_threads=n), "full",
                       *start_params())
        m.fit(X, lengths)
        runs.append((np.array(m.monitor_.history), m.means_, m.transmat_))
    for a, b in zip(*runs):
        assert np.array_equal(a, b)


def test_float32_input_is_accumulated_in_float64(data):
    X32 = data[0].astype(np.float32)
    runs = []
    for X in (X32, X32.astype(np.float64)):
        m = set_params(GaussianHMM(K, init_params="", n_iter=5), "diag",
                       *start_params())
        runs.append(np.array(m.fit(X).monitor_.history))
    np.testing.assert_allclose(runs[0], runs[1], rtol=1e-13)


def test_sampling_and_refitting_recovers_the_model():
    """4000 steps in 8 sequences: ~1300 visits per state, so a mean is known
    to ~0.03, a transition probability to ~0.01 (standard errors); the
    tolerances are 4-5 of them."""
    truth = true_model("full")
    parts = [truth.sample(500, random_state=s) for s in range(8)]
    X = np.vstack([p[0] for p in parts])
    # k-means means and data covariance; neutral start/transition
    # probabilities (hmmlearn's random Dirichlet(1/K) draws are so peaked that
    # EM -- theirs and ours alike -- often stalls in a poor local optimum).
    model = GaussianHMM(K, covariance_type="full", n_iter=200, tol=1e-6,
                        init_params="mc", random_state=0)
    model.startprob_ = np.full(K, 1 / K)
    model.transmat_ = np.full((K, K), 0.1 / (K - 1)) + 0.85 * np.eye(K)
    model.fit(X, [500] * 8)
    # Match fitted states to true ones by their means.
    perm = min(itertools.permutations(range(K)),
               key=lambda p: np.abs(model.means_[list(p)] - TRUE_MEANS).sum())
    perm = list(perm)
    np.testing.assert_allclose(model.means_[perm], TRUE_MEANS, atol=0.15)
    np.testing.assert_allclose(model.transmat_[np.ix_(perm, perm)],
                               TRUE_TRANSMAT, atol=0.05)
    np.testing.assert_allclose(model.covars_[perm], TRUE_COVS, atol=0.2)
    Z = np.concatenate([p[1] for p in parts])
    assert np.mean(np.asarray(perm)[model.predict(X, [500] * 8)] == Z) > 0.9
    assert model.monitor_.converged


# ------------------------------------------------- params / init_params
@pytest.mark.parametrize("frozen", list("stmc"))
def test_params_freeze_a_block(data, frozen):
    X, _ = data
    m = set_params(GaussianHMM(K, covariance_type="full", init_params="",
                               params="stmc".replace(frozen, ""), n_iter=5),
                   "full", *start_params())
    before = {"s": m.startprob_.copy(), "t": m.transmat_.copy(),
              "m": m.means_.copy(), "c": m.covars_.copy()}
    m.fit(X, LENGTHS)
    after = {"s": m.startprob_, "t": m.transmat_, "m": m.means_,
             "c": m.covars_}
    for letter in "stmc":
        if letter == frozen:
            assert np.array_equal(after[letter], before[letter]), letter
        else:
            assert not np.allclose(after[letter], before[letter]), letter


def test_covariances_with_frozen_means_use_the_fixed_means(data):
    """params='c': the covariance update is the posterior-weighted scatter
    around the *fixed* means (+ hmmlearn's prior), checked in NumPy.
    (hmmlearn 0.3 gets this case wrong: it does not collect the statistics.)"""
    X, _ = data
    m = set_params(GaussianHMM(K, covariance_type="diag", init_params="",
                               params="c", n_iter=1), "diag",
                   *start_params())
    gamma = m.predict_proba(X, LENGTHS)
    means = m.means_.copy()
    m.fit(X, LENGTHS)
    post = gamma.sum(axis=0)
    sq = np.einsum("tk,tkd->kd", gamma, (X[:, None, :] - means) ** 2)
    expected = (1e-2 + sq) / post[:, None]       # covars_prior=1e-2, weight 1
    np.testing.assert_allclose(m._covars_, expected, rtol=1e-12)


def test_init_params_empty_starts_from_the_given_parameters(data):
    X, _ = data
    m = set_params(GaussianHMM(K, covariance_type="tied", init_params="",
                               n_iter=3), "tied", *start_params())
    ll0 = m.score(X, LENGTHS)
    m.fit(X, LENGTHS)
    np.testing.assert_allclose(m.monitor_.history[0], ll0, rtol=1e-13)


def test_init_params_initialize_only_listed_blocks(data):
    X, _ = data
    sp, tm, means, covs = start_params()
    m = set_params(GaussianHMM(K, covariance_type="diag", init_params="sm",
                               n_iter=0, random_state=1), "diag",
                   sp, tm, means, covs)
    m.fit(X)  # n_iter=0: initialization only
    assert not np.array_equal(m.startprob_, sp)
    assert not np.array_equal(m.means_, means)
    assert np.array_equal(m.transmat_, tm)
    assert np.array_equal(m._covars_, covars_in_layout(covs, "diag"))
    np.testing.assert_allclose(m.startprob_.sum(), 1.0)
    # k-means means lie among the data's clusters.
    assert np.all(np.min(np.abs(m.means_[:, None] - TRUE_MEANS[None]).sum(-1),
                         axis=1) < 1.0)


def test_default_initialization_is_deterministic_and_complete(data):
    X, _ = data
    fits = [GaussianHMM(K, covariance_type=ct, random_state=5, n_iter=3)
            .fit(X, LENGTHS) for ct in ("spherical", "spherical")]
    assert np.array_equal(fits[0].monitor_.history, fits[1].monitor_.history)
    m = fits[0]
    assert m.covars_.shape == (K, D, D) and m._covars_.shape == (K,)
    assert m.n_features == m.n_features_in_ == D


def test_length_one_sequences_keep_transmat_with_warning(data):
    X, _ = data
    m = true_model(params="t", n_iter=1)
    with pytest.warns(RuntimeWarning, match="no expected transitions"):
        m.fit(X[:20], [1] * 20)
    assert np.array_equal(m.transmat_, TRUE_TRANSMAT)


# ----------------------------------------------------------- monitor
def test_monitor_semantics(data, capsys):
    X, _ = data
    m = set_params(GaussianHMM(K, init_params="", n_iter=50, tol=1e3,
                               verbose=True), "diag", *start_params())
    m.fit(X)
    assert len(m.monitor_.history) == 2 and m.monitor_.converged
    assert "+" in capsys.readouterr().err     # the delta column is printed
    m.set_params(tol=-np.inf, n_iter=4, verbose=False).fit(X)
    assert m.monitor_.iter == 4 and m.monitor_.converged  # hmmlearn: n_iter

    class Never(ConvergenceMonitor):
        @property
        def converged(self):
            return False

    m.monitor_ = Never(0.0, 3, False)
    m.set_params(n_iter=3).fit(X)
    assert isinstance(m.monitor_, Never) and m.monitor_.iter == 3
    assert "history=" in repr(m.monitor_)


def test_failed_fit_leaves_the_model_unchanged(data):
    """Parameters are stored only at the end of a successful fit."""
    X, _ = data

    class Interrupt(ConvergenceMonitor):
        def report(self, log_prob):
            super().report(log_prob)
            if self.iter == 3:
                raise KeyboardInterrupt

    m = set_params(GaussianHMM(K, covariance_type="full", init_params="",
                               n_iter=10), "full", *start_params())
    before = {n: np.copy(getattr(m, n)) for n in
              ("startprob_", "transmat_", "means_", "_covars_")}
    m.monitor_ = Interrupt(0.0, 10, False)
    with pytest.raises(KeyboardInterrupt):
        m.fit(X)
    for n, v in before.items():
        assert np.array_equal(getattr(m, n), v), n
    assert not hasattr(m, "n_features")


def test_monitor_logs_a_decrease(caplog):
    mon = ConvergenceMonitor(1e-2, 10, False)
    mon.report(-10.0)
    with caplog.at_level(logging.WARNING, logger="fastem.hmm"):
        mon.report(-11.0)
    assert "not converging" in caplog.text


# ---------------------------------------------------------- estimator API
def test_constructor_matches_hmmlearn(hmmlearn_hmm):
    import inspect

    ours = inspect.signature(GaussianHMM).parameters
    theirs = inspect.signature(hmmlearn_hmm.GaussianHMM).parameters
    # hmmlearn's parameters in hmmlearn's order, then fastem's additions
    assert list(ours)[:len(theirs)] == list(theirs)
    assert list(ours)[len(theirs):] == ["n_threads", "online_decay"]
    for name, p in theirs.items():
        assert ours[name].default == p.default, name


def test_sklearn_conventions():
    from sklearn.base import clone

    m = GaussianHMM(4, covariance_type="full", n_iter=7, n_threads=1)
    c = clone(m)
    assert c.get_params() == m.get_params()
    assert repr(m) == ("GaussianHMM(covariance_type='full', n_components=4, "
                       "n_iter=7, n_threads=1)")
    with pytest.raises(NotFittedError, match="not fitted yet"):
        m.predict(np.zeros((5, 2)))


def test_sample_shapes_and_defaults():
    m = true_model(random_state=11)
    X1, Z1 = m.sample(40)
    X2, Z2 = m.sample(40)
    assert X1.shape == (40, D) and Z1.shape == (40,)
    assert np.array_equal(X1, X2) and np.array_equal(Z1, Z2)  # int seed
    X, Z = m.sample(1)
    assert X.shape == (1, D) and Z.shape == (1,)


# --------------------------------------------------------------- errors
@pytest.mark.parametrize("lengths, match", [
    ([300, 299], r"lengths array \[300, 299\] doesn't sum to 600 samples: "
                 r"they sum to 599"),
    ([300, -5, 305], r"lengths must be positive integers, found "
                     r"lengths\[1\] = -5"),
    ([0, 600], r"found lengths\[0\] = 0"),
    ([300.5, 299.5], r"lengths must contain integers"),
    ([[300, 300]], r"1-D sequence"),
    ([], r"lengths is empty"),
])
def test_bad_lengths(data, lengths, match):
    X, _ = data
    with pytest.raises(ValueError, match=match):
        GaussianHMM(K).fit(X, lengths)
    with pytest.raises(ValueError, match=match):
        true_model().score(X, lengths)


def test_bad_probabilities(data):
    X, _ = data
    m = true_model()
    m.transmat_ = TRUE_TRANSMAT * np.array([[1.0], [0.9], [1.0]])
    with pytest.raises(ValueError, match=r"transmat_ rows must sum to 1.*"
                       r"row\(s\) \[1\] sum to \[0\.9"):
        m.fit(X)
    m = true_model()
    m.startprob_ = np.array([0.5, 0.3, 0.1])
    with pytest.raises(ValueError, match=r"startprob_ must sum to 1, got "
                       r"sum\(startprob_\) = 0\.9.*Normalize"):
        m.predict(X)
    m = true_model()
    m.startprob_ = np.array([1.2, -0.2, 0.0])
    with pytest.raises(ValueError, match="non-negative"):
        m.score(X)
    m = true_model()
    m.transmat_ = np.eye(K + 1)
    with pytest.raises(ValueError, match=r"transmat_ must have shape "
                       r"\(n_components, n_components\) = \(3, 3\), got "
                       r"\(4, 4\)"):
        m.fit(X)


def test_bad_shapes_and_values(data):
    X, _ = data
    m = true_model()
    m.means_ = np.zeros((K, D + 1))
    with pytest.raises(ValueError, match=r"X has 2 features, but GaussianHMM "
                       r"is expecting 3 features"):
        m.predict(X)
    with pytest.raises(ValueError, match=r"means_ must have shape "
                       r"\(n_components, n_features\) = \(3, 2\), got \(3, 3\)"):
        m.fit(X)
    m = GaussianHMM(K, covariance_type="diag")
    with pytest.raises(ValueError, match=r"covars_ for covariance_type='diag' "
                       r"must have shape \(n_components, n_features\)"):
        m.covars_ = np.ones(K)
    m = GaussianHMM(K, covariance_type="full")
    bad = np.tile(np.eye(D), (K, 1, 1))
    bad[1] = [[1.0, 2.0], [2.0, 1.0]]
    with pytest.raises(ValueError, match=r"component 1 of 'full' covars must "
                       r"be symmetric, positive-definite: covars_\[1\] is not "
                       r"positive definite"):
        m.covars_ = bad
    with pytest.raises(ValueError, match="'spherical' covars must be positive"):
        GaussianHMM(K, covariance_type="spherical").covars_ = [1.0, 0.0, 1.0]
    Xn = X.copy()
    Xn[5, 1] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        GaussianHMM(K).fit(Xn)
    with pytest.raises(ValueError, match=r"n_samples=3 should be >= "
                       r"n_clusters=5: initializing the means by k-means"):
        GaussianHMM(5).fit(X[:3])


@pytest.mark.parametrize("kw, exc, match", [
    (dict(covariance_type="round"), ValueError, "covariance_type must be one"),
    (dict(algorithm="best"), ValueError, "algorithm must be one of"),
    (dict(implementation="fast"), ValueError, "implementation must be one of"),
    (dict(params="stmx"), ValueError, r"contains \['x'\]"),
    (dict(init_params=None), TypeError, "init_params must be a string"),
    (dict(n_components=0), ValueError, "n_components must be an int >= 1"),
    (dict(n_iter=2.5), TypeError, "n_iter must be an int"),
    (dict(min_covar=-1.0), ValueError, "min_covar must be a finite float"),
    (dict(tol=np.nan), ValueError, "tol must be a float"),
    (dict(means_weight=[1.0, 2.0]), ValueError,
     r"means_weight must be a scalar or an array of shape \(n_components,\)"),
    (dict(covars_prior=np.ones((2, 2, 2))), ValueError,
     r"covars_prior must be a scalar or an array broadcastable"),
])
def test_bad_constructor_arguments(data, kw, exc, match):
    X, _ = data
    args = dict(n_components=K, n_iter=2)
    args.update(kw)
    with pytest.raises(exc, match=match):
        GaussianHMM(**args).fit(X)


def test_bad_decode_arguments(data):
    X, _ = data
    m = true_model()
    with pytest.raises(ValueError, match="algorithm must be one of"):
        m.decode(X, algorithm="greedy")
    with pytest.raises(ValueError, match=r"currstate must be a state index "
                       r"in \[0, 3\)"):
        m.sample(5, currstate=3)
    with pytest.raises(ValueError, match="n_samples must be an int >= 1"):
        m.sample(0)
