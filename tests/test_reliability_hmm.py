"""Reliability of GaussianHMM: bad input gets a clear error (never an abort,
a MemoryError from a huge allocation, a numba traceback or silent NaN),
Ctrl-C during a fit keeps the previous model, and every model ``fit``
returns is usable by ``score`` / ``predict`` / ``sample``.

Whatever can abort the interpreter on a regression runs in a subprocess.
"""

import logging
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

from fastem import GaussianHMM
from fastem.stats import ComponentCollapseError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COVARIANCE_TYPES = ("spherical", "diag", "full", "tied")


def run_child(code, timeout=600):
    """Run ``code`` in a fresh interpreter; return the CompletedProcess."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                          cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def fitted():
    X = np.random.default_rng(0).normal(size=(400, 2))
    return GaussianHMM(2, random_state=0, n_iter=3).fit(X), X


# ------------------------------------------------------------ item 2
def test_lengths_whose_sum_wraps_around_are_refused():
    """Lengths of 2**62 / 2**63 - 1 summed in int64 wrap around to n_samples
    (then np.split / the kernels allocate from garbage offsets and glibc
    aborts); each length is bounded by n_samples first."""
    out = run_child("""
        import numpy as np
        from fastem import GaussianHMM
        X = np.random.default_rng(0).normal(size=(402, 2))
        for call in (
                lambda: GaussianHMM(2, n_iter=2).fit(
                    X, lengths=[2**63 - 1, 2**63 - 1, 402]),
                lambda: GaussianHMM(2, n_iter=2, random_state=0).fit(X[:400])
                .score(X[:400], lengths=[2**62] * 3 + [2**62 + 400])):
            try:
                call()
                print("accepted")
            except ValueError as e:
                print("ValueError:", e)
    """)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert len(lines) == 2, out.stdout
    assert lines[0].startswith(
        "ValueError: lengths array [9223372036854775807, 9223372036854775807, "
        "402] doesn't sum to 402 samples: lengths[0] = 9223372036854775807 is "
        "larger than X, which has 402 rows")
    assert lines[1].startswith(
        "ValueError: lengths array [4611686018427387904, ") and \
        "doesn't sum to 400 samples: lengths[0] = 4611686018427387904 is " \
        "larger than X" in lines[1]


@pytest.mark.parametrize("lengths, match", [
    (np.array([2**64 - 1], dtype=np.uint64), r"lengths\[0\] = "
     r"18446744073709551615 is larger than X, which has 400 rows"),
    ([2**70, 5], r"lengths\[0\] = 1180591620717411303424 is larger"),
    ([1e30], r"lengths\[0\] = 1000000000000000019884624838656 is larger"),
    ([1] * 401, r"401 sequences, but X has only 400 samples"),
    ([200, "x"], r"lengths must contain integers"),
])
def test_lengths_are_bounded_before_summing(fitted, lengths, match):
    m, X = fitted
    with pytest.raises(ValueError, match=match):
        m.score(X, lengths)
    with pytest.raises(ValueError, match=match):
        GaussianHMM(2).fit(X, lengths)


# ------------------------------------------------------------ item 3
def test_ctrl_c_during_fit_keeps_the_previous_model():
    """SIGINT during a long fit: a plain KeyboardInterrupt (never
    SystemError or a crash) within an EM iteration or two, the parameters and
    monitor of the earlier fit untouched, the model still usable, and a clean
    exit."""
    n_iter = 2000     # ~20 s uninterrupted (~9 ms per iteration)
    out = run_child(f"""
        import os, signal, threading, time
        import numpy as np
        from fastem import GaussianHMM
        from fastem.hmm import ConvergenceMonitor

        rng = np.random.default_rng(0)
        X = rng.normal(size=(200_000, 3))
        m = GaussianHMM(3, covariance_type="full", random_state=0,
                        n_iter=3).fit(X[:2000])
        names = ("startprob_", "transmat_", "means_", "_covars_")
        before = {{n: getattr(m, n).copy() for n in names}}
        iters = []

        class Count(ConvergenceMonitor):
            def report(self, log_prob):
                super().report(log_prob)
                iters.append(self.iter)

        mon = Count(0.0, {n_iter}, False)
        mon.history.append(-1.0)   # the "previous fit's" history
        m.monitor_ = mon
        m.set_params(n_iter={n_iter}, tol=-np.inf, init_params="")
        threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)).start()
        try:
            m.fit(X)
            print("not interrupted")
        except KeyboardInterrupt:
            print("KeyboardInterrupt after", len(iters), "iterations")
        for n in names:
            assert np.array_equal(getattr(m, n), before[n]), n
        assert m.monitor_ is mon and list(mon.history) == [-1.0]
        assert m.n_features == 3
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert m.predict(X[:100]).shape == (100,)
        print("intact")
    """)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "SystemError" not in out.stderr, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert lines[-1] == "intact", out.stdout
    assert lines[0].startswith("KeyboardInterrupt after "), out.stdout
    assert int(lines[0].split()[2]) < n_iter, out.stdout


# ------------------------------------------------------------ item 8
@pytest.mark.parametrize("method", ["score", "score_samples", "predict",
                                    "predict_proba", "decode_viterbi",
                                    "decode_map", "fit"])
def test_rows_beyond_the_magnitude_limit_are_refused(fitted, method):
    """One row with |x| > 1e150 used to turn every posterior into NaN."""
    m, X = fitted
    Y = X.copy()
    Y[7, 1] = -1e200
    Y0 = Y.copy()
    call = {"decode_viterbi": lambda: m.decode(Y, algorithm="viterbi"),
            "decode_map": lambda: m.decode(Y, algorithm="map"),
            "fit": lambda: GaussianHMM(2).fit(Y)}.get(
        method, lambda: getattr(m, method)(Y))
    with pytest.raises(ValueError, match=r"X contains values up to 1e\+200 "
                       r"in magnitude; squared distances would overflow "
                       r"float64 \(limit ~1e150\)\. Rescale X"):
        call()
    assert np.array_equal(Y, Y0)
    Y[7, 1] = -1e150                 # the limit itself is accepted
    assert np.all(np.isfinite(m.predict_proba(Y)))


# ----------------------------------------------------------- item 16
def test_more_states_than_rows_is_refused_before_allocating():
    """GaussianHMM(10**7) on 400 rows raised MemoryError (90.9 TiB for a
    K x K array) instead of the n_components > n_samples error."""
    X = np.random.default_rng(1).normal(size=(400, 2))
    with pytest.raises(ValueError, match=r"^n_samples=400 should be >= "
                       r"n_clusters=10000000: initializing the means by "
                       r"k-means"):
        GaussianHMM(10**7).fit(X)
    # means set and not re-initialized: the K x K matrices are what is refused
    m = GaussianHMM(10**7, init_params="st")
    m.means_ = np.zeros((10**7, 1))
    with pytest.raises(ValueError, match=r"Fitting GaussianHMM\(n_components="
                       r"10000000\) to 400 rows would need .* PiB, more than "
                       r"(this machine's physical memory|fastem's fixed bound)"):
        m.fit(X[:, :1])


def test_sampling_an_impossible_size_is_refused(fitted):
    m, _ = fitted
    with pytest.raises(ValueError, match=r"sample\(n_samples=10000000000000\) "
                       r"with 2 feature\(s\) would need 364 TiB, more than "
                       r"(this machine's physical memory|fastem's fixed bound)"
                       r".*nothing was allocated"):
        m.sample(10**13)


# ----------------------------------------------------------- item 21
def _messages(caplog, logger):
    return [r.getMessage() for r in caplog.records if r.name == logger]


def test_init_params_overwrite_and_degenerate_fit_are_logged_as_hmmlearn(
        caplog):
    """hmmlearn logs (``logging.warning``, not ``warnings.warn``) when
    ``init_params`` overwrites a parameter that is set, and when there are
    more free scalars than data points; fastem logs the same text on the
    ``fastem.hmm`` logger."""
    hmm = pytest.importorskip("hmmlearn.hmm")
    X = np.random.default_rng(2).normal(size=(6, 2))
    for cls, logger in ((hmm.GaussianHMM, "hmmlearn.base"),
                        (GaussianHMM, "fastem.hmm")):
        m = cls(2, covariance_type="full", init_params="stmc", n_iter=1,
                random_state=0)
        m.startprob_ = np.array([0.5, 0.5])
        m.transmat_ = np.full((2, 2), 0.5)
        m.means_ = np.zeros((2, 2))
        m.covars_ = np.tile(np.eye(2), (2, 1, 1))
        with caplog.at_level(logging.WARNING):
            caplog.clear()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                m.fit(X)
        if cls is GaussianHMM:
            ours = _messages(caplog, logger)
        else:
            theirs = _messages(caplog, logger)
    assert len(theirs) == 5 and ours == theirs
    assert ours[0] == ("Even though the 'startprob_' attribute is set, it "
                       "will be overwritten during initialization because "
                       "'init_params' contains 's'")
    assert ("Fitting a model with 13 free scalar parameters with only 12 "
            "data points will result in a degenerate solution.") in ours
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        GaussianHMM(2, n_iter=1, random_state=0).fit(
            np.random.default_rng(3).normal(size=(300, 2)))
    assert _messages(caplog, "fastem.hmm") == []   # nothing set, enough data


@pytest.mark.parametrize("shape", [(2,), (2, 1), (2, 3)])
def test_spherical_covars_take_hmmlearn_layouts(shape):
    """hmmlearn's setter takes any spherical covars with n_components rows:
    (K,), (K, 1) and (K, D) (its own layout after fit)."""
    hmm = pytest.importorskip("hmmlearn.hmm")
    values = np.broadcast_to(np.array([0.5, 2.0]).reshape(2, *[1] *
                             (len(shape) - 1)), shape).copy()
    h = hmm.GaussianHMM(2, covariance_type="spherical")
    h.covars_ = values                            # hmmlearn accepts it
    m = GaussianHMM(2, covariance_type="spherical", init_params="")
    m.covars_ = values
    assert np.array_equal(m._covars_, [0.5, 2.0])
    m.startprob_, m.transmat_ = np.array([0.5, 0.5]), np.full((2, 2), 0.5)
    m.means_ = np.zeros((2, 3))
    np.testing.assert_array_equal(m.covars_[1], 2.0 * np.eye(3))
    assert np.isfinite(m.score(np.ones((4, 3))))


def test_covars_setter_errors_say_what_to_pass():
    m = GaussianHMM(2, covariance_type="spherical")
    with pytest.raises(ValueError, match=r"'spherical' covars have length "
                       r"n_components, with one variance per state; got shape "
                       r"\(2, 2\) whose row 1 holds different values.*"
                       r"covariance_type='diag'"):
        m.covars_ = [[1.0, 1.0], [1.0, 2.0]]
    m = GaussianHMM(2, covariance_type="diag")
    with pytest.raises(ValueError, match=r"pass np.diagonal\(C, axis1=1, "
                       r"axis2=2\)"):
        m.covars_ = np.tile(np.eye(3), (2, 1, 1))
    with pytest.raises(ValueError, match=r"covars_ must be an array of "
                       r"numbers"):
        m.covars_ = [["a", "b"], ["c", "d"]]


@pytest.mark.parametrize("ct", ["full", "tied", "diag"])
def test_collapsed_covariance_names_the_hmm_remedies(ct):
    """The collapse error named scikit-learn's reg_covar (GaussianHMM has no
    such parameter); it keeps hmmlearn's sentence first and names
    covars_prior, fewer states and what min_covar does."""
    X = np.c_[np.zeros(20), np.arange(20.0)]       # a constant feature
    before = X.copy()
    with pytest.raises(ComponentCollapseError) as info:
        GaussianHMM(2, covariance_type=ct, covars_prior=0, n_iter=5,
                    random_state=0).fit(X)
    msg = str(info.value)
    assert "reg_covar" not in msg
    head = {"full": r"component \d of 'full' covars must be symmetric, "
            r"positive-definite: EM iteration 1",
            "tied": r"'tied' covars must be symmetric, positive-definite: EM "
            r"iteration 1 made the shared covariance singular",
            "diag": r"'diag' covars must be positive: EM iteration 1"}[ct]
    assert __import__("re").match(head, msg), msg
    assert "covars_prior" in msg and "min_covar" in msg
    if ct != "diag":
        assert "covars_prior=1e-2 * np.eye(n_features)" in msg
    assert np.array_equal(X, before)
    # the remedy it names works
    if ct != "diag":
        GaussianHMM(2, covariance_type=ct, covars_prior=1e-2 * np.eye(2),
                    n_iter=5, random_state=0).fit(X)


def _random_problem(seed):
    rng = np.random.default_rng(seed)
    N = int(rng.integers(3, 30))
    D = int(rng.integers(1, 4))
    K = int(rng.integers(1, 5))
    X = rng.normal(size=(N, D)) * 10 ** rng.uniform(-3, 3)
    if seed % 3 == 0:
        X = np.round(X)           # ties, constant features, all-zero data
    return X, K, COVARIANCE_TYPES[seed % 4]


def test_every_model_fit_returns_is_usable():
    """300 small random fits (seeds 200-499; 354 and 495 used to return
    covariances that ``fit`` accepted by Cholesky and ``score`` then rejected
    by eigenvalues): every fit either raises a ValueError or returns a model
    that ``score``, ``predict``, ``predict_proba`` and ``sample`` accept."""
    usable = refused = 0
    logging.getLogger("fastem.hmm").setLevel(logging.ERROR)
    try:
        for seed in range(200, 500):
            X, K, ct = _random_problem(seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    m = GaussianHMM(K, covariance_type=ct, random_state=seed,
                                    n_iter=20).fit(X)
                except ValueError as e:
                    assert "reg_covar" not in str(e)
                    refused += 1
                    continue
                assert np.isfinite(m.score(X)), seed
                assert m.predict(X).shape == (len(X),)
                assert np.all(np.isfinite(m.predict_proba(X)))
                assert m.sample(3)[0].shape == (3, X.shape[1])
                usable += 1
    finally:
        logging.getLogger("fastem.hmm").setLevel(logging.NOTSET)
    assert usable > 250, (usable, refused)


def test_stationary_distribution_needs_only_transmat():
    hmm = pytest.importorskip("hmmlearn.hmm")
    tm = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.0, 0.3, 0.7]])
    h = hmm.GaussianHMM(3)
    h.transmat_ = tm
    m = GaussianHMM(3)
    m.transmat_ = tm.copy()
    np.testing.assert_allclose(m.get_stationary_distribution(),
                               h.get_stationary_distribution(), atol=1e-12)
    m.transmat_ = tm[:2, :2]
    with pytest.raises(ValueError, match=r"transmat_ must have shape"):
        m.get_stationary_distribution()
    with pytest.raises(ValueError, match="not fitted"):
        GaussianHMM(3).get_stationary_distribution()


# ----------------------------------------------------------- item 22
def test_nan_message_is_for_gaussianhmm():
    X = np.random.default_rng(4).normal(size=(50, 2))
    X[[3, 9], 0] = np.nan
    with pytest.raises(ValueError) as info:
        GaussianHMM(2).fit(X)
    msg = str(info.value)
    assert msg.startswith("Input X contains NaN: 2 NaN value(s) in 2 row(s), "
                          "the first in row 3.")
    assert "nan_policy" not in msg and "GaussianMixture" not in msg
    assert "drop those rows" in msg and "impute" in msg


@pytest.mark.parametrize("call, exc, match", [
    (lambda m, X: m.fit([[1.0, 2.0], [3.0, 4.0, 5.0], [1.0, 2.0]]),
     ValueError, r"X is ragged: its items have different lengths \[2, 3\].*"
     r"np.concatenate\(sequences\)"),
    (lambda m, X: m.fit([np.zeros((5, 2)), np.zeros((7, 2))]),
     ValueError, r"X is ragged: its items have different lengths \[5, 7\]"),
    (lambda m, X: m.set_params(random_state=-1).fit(X),
     ValueError, r"random_state"),
    (lambda m, X: m.set_params(verbose=np.array([1, 0])).fit(X),
     TypeError, r"verbose must be a bool, got array"),
    (lambda m, X: m.set_params(covariance_type=np.array(["diag"])).fit(X),
     ValueError, r"covariance_type must be one of \['diag', 'full', "
     r"'spherical', 'tied'\], got array"),
    (lambda m, X: m.set_params(algorithm=["viterbi"]).fit(X),
     ValueError, r"algorithm must be one of"),
    (lambda m, X: m.set_params(means_prior="zero").fit(X),
     ValueError, r"means_prior must be numbers"),
])
def test_bad_arguments_get_clear_errors(fitted, call, exc, match):
    _, X = fitted
    with pytest.raises(exc, match=match):
        call(GaussianHMM(2, n_iter=1, random_state=0), X)


def test_bad_decode_algorithm_gets_a_clear_error(fitted):
    m, X = fitted
    with pytest.raises(ValueError, match=r"algorithm must be one of"):
        m.decode(X, algorithm=np.array(["map", "viterbi"]))


def test_inputs_are_not_modified(fitted):
    _, X = fitted
    m = GaussianHMM(2, n_iter=3, random_state=0)
    X0 = X.copy()
    lengths = np.array([150, 250])
    m.fit(X, lengths)
    m.score_samples(X, lengths)
    m.decode(X, lengths, algorithm="map")
    assert np.array_equal(X, X0) and lengths.tolist() == [150, 250]
