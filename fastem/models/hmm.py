"""GaussianHMM: a hidden Markov model with Gaussian emissions, hmmlearn-compatible.

Fitted by Baum-Welch (EM) with Numba kernels (see :mod:`fastem.kernels.hmm`
for the algorithm): the emission log-densities, the posteriors and the
Gaussian sufficient statistics are computed in parallel over blocks of rows
-- even for a single sequence -- and the forward/backward recursions in
parallel over sequences (and over the two directions).  The state posteriors
feed the same Gaussian accumulator as :class:`fastem.GaussianMixture`; the
M-step follows hmmlearn's estimates (including its priors) exactly, computed
from statistics centred on the previous means.

The E-step's statistics (:class:`HMMStats`) add across sequences, so every
fit is the core's loop (:func:`fastem.core.driver.run_em`) over a source of
whole sequences (:mod:`fastem.core.sequences`): an in-memory array
(:meth:`GaussianHMM.fit`), chunks streamed from anywhere
(:meth:`GaussianHMM.fit_chunks`), the blocks of a dask array (``fit`` on a
dask array), and decayed running statistics (:meth:`GaussianHMM.partial_fit`).
"""

import copy
import logging
import numbers
import operator
import os
import warnings
from collections import deque
from dataclasses import dataclass
from functools import partial

import numpy as np

from fastem import _config, _dask
from fastem._base import BaseEstimator
from fastem._validation import check_array, not_fitted_error
from fastem.core.driver import run_em
from fastem.core.monitor import ConvergenceMonitor
from fastem.core.sequences import (
    SequenceArraySource,
    SequenceChunkSource,
    SequenceDaskSource,
)
from fastem.families.gaussian import (
    COVARIANCE_TYPES,
    ComponentCollapseError,
    GaussianParams,
    GaussianStats,
    compute_precision_cholesky,
)
from fastem.kernels.gaussian import FULL, TIED
from fastem.kernels.hmm import (
    _emission_pass,
    _fb_log_seq,
    _fb_pass,
    _grouped_pass,
    _posterior_pass,
    _viterbi_pass,
)
from fastem.kernels.kmeans import _kmeanspp, _lloyd
from fastem.models.mixture import (
    _MAX_ABS,
    _check_int,
    _check_magnitude,
    check_random_state,
)

__all__ = ["ConvergenceMonitor", "GaussianHMM", "HMMStats",
           "check_lengths"]

_log = logging.getLogger("fastem.hmm")  # hmmlearn users look for fastem.hmm

DECODER_ALGORITHMS = ("viterbi", "map")
IMPLEMENTATIONS = ("log", "scaling")
_PARAM_LETTERS = "stmc"
_EMPTY_F = np.empty(0)
_NAN_HINT = ("and shorten the lengths of their sequences to match "
             "(GaussianHMM does not accept missing values)")


# ------------------------------------------------------------------ helpers
@dataclass
class _Model:
    """Validated parameters in the kernels' layout."""

    code: int
    startprob: np.ndarray
    transmat: np.ndarray
    log_startprob: np.ndarray
    log_transmat: np.ndarray
    means: np.ndarray
    prec: np.ndarray
    logconst: np.ndarray


# Sequences are processed by groups in one fused pass when each is short
# compared with the data (longest * GROUPED_MIN_RATIO <= n_samples), in at
# most MAX_GROUPS groups of about equal rows.  The choice depends only on the
# lengths, never on the thread count.
GROUPED_MIN_RATIO = 8
MAX_GROUPS = 64


def _plan_groups(starts):
    """Group boundaries (sequence indices) for the fused pass, or None."""
    S = starts.shape[0] - 1
    N = int(starts[-1])
    if S < 2 or int(np.diff(starts).max()) * GROUPED_MIN_RATIO > N:
        return None
    G = min(S, MAX_GROUPS)
    targets = (N * np.arange(G + 1)) // G
    groups = np.searchsorted(starts[:-1], targets, side="left")
    groups[0], groups[-1] = 0, S
    return np.unique(groups).astype(np.int64)


class _Workspace:
    """Per-call buffers of the E-step (reused across EM iterations)."""

    def __init__(self, N, K, starts, plan="auto"):
        S = starts.shape[0] - 1
        self.groups = _plan_groups(starts) if plan == "auto" else (
            None if plan == "rows" else
            np.unique((np.arange(MAX_GROUPS + 1) * S) // MAX_GROUPS))
        if self.groups is not None:
            return
        self.B = np.empty((N, K))
        self.m = np.empty(N)
        self.alpha = np.empty((N, K))
        self.beta = np.empty((N, K))
        self.c = np.empty(N)
        self.okf = np.ones(S, dtype=np.uint8)
        self.okb = np.ones(S, dtype=np.uint8)
        self.bad = np.zeros(S, dtype=np.uint8)


@dataclass
class HMMStats:
    """Additive sufficient statistics of a Gaussian HMM's E-step.

    The statistics of a set of sequences are the sum (``+``) of the
    statistics of any partition of the sequences into groups, to rounding:
    that is what lets ``fit_chunks``, Dask and ``partial_fit`` share the
    M-step of ``fit``.  ``None`` is the empty sum (``stats + None`` is
    ``stats``).

    Attributes
    ----------
    loglik : float
        Log-likelihood of the sequences under the E-step's parameters.
    stats : GaussianStats
        Emission statistics: the state posteriors fed to the Gaussian
        accumulator (``nk``, ``sums`` and ``scatter`` around ``stats.ref``,
        normally the E-step's means).  Statistics around different
        references are added by re-centring the right operand on the left
        one's reference first (exact algebra, :meth:`GaussianStats.shift`).
    xi : ndarray of shape (n_components, n_components)
        Expected transition counts, summed over the sequences.
    start : ndarray of shape (n_components,)
        Posteriors of the first state, summed over the sequences.
    n_rows : int
        Rows (observations) seen.
    n_sequences : int
        Sequences seen.
    """

    loglik: float
    stats: GaussianStats
    xi: np.ndarray
    start: np.ndarray
    n_rows: int = 0
    n_sequences: int = 0

    @property
    def objective(self):
        """The total log-probability (the driver's objective)."""
        return self.loglik

    def __add__(self, other):
        if other is None:
            return self
        if not isinstance(other, HMMStats):
            return NotImplemented
        if other.xi.shape != self.xi.shape:
            raise ValueError(
                "cannot add the statistics of HMMs with "
                f"{self.xi.shape[0]} and {other.xi.shape[0]} states.")
        return HMMStats(self.loglik + other.loglik, self.stats + other.stats,
                        self.xi + other.xi, self.start + other.start,
                        self.n_rows + other.n_rows,
                        self.n_sequences + other.n_sequences)

    __radd__ = __add__

    def scale(self, factor):
        """Return the statistics multiplied by ``factor`` (decayed averages).

        ``n_rows`` and ``n_sequences`` (counts of the data seen) are kept.

        Parameters
        ----------
        factor : float

        Returns
        -------
        HMMStats
        """
        f = float(factor)
        return HMMStats(self.loglik * f, self.stats.scale(f), self.xi * f,
                        self.start * f, self.n_rows, self.n_sequences)

    def shift(self, new_ref):
        """Return the same statistics with the emission moments around ``new_ref``.

        Parameters
        ----------
        new_ref : ndarray of shape (n_components, n_features)

        Returns
        -------
        HMMStats
        """
        return HMMStats(self.loglik, self.stats.shift(new_ref), self.xi.copy(),
                        self.start.copy(), self.n_rows, self.n_sequences)


class _MonitorAdapter:
    """Drive a user's monitor through :func:`fastem.core.driver.run_em`.

    hmmlearn's protocol is only ``report``/``converged``/``history``: the
    monitor is reset by ``fit`` itself (a user's subclass may not have the
    core's ``begin``/``end``).
    """

    def __init__(self, monitor):
        self.monitor = monitor

    @property
    def history(self):
        return self.monitor.history

    def report(self, log_prob):
        self.monitor.report(log_prob)

    @property
    def converged(self):
        return self.monitor.converged


def _short(values, n=6):
    """``values`` for a message: at most ``n`` of them, then '...'."""
    values = list(values)
    body = ", ".join(str(v) for v in values[:n])
    return f"[{body}{', ...' if len(values) > n else ''}]"


def check_lengths(lengths, n_samples):
    """Validate the sequence lengths of ``n_samples`` rows; return the offsets.

    The check every :class:`GaussianHMM` method makes of its ``lengths``
    argument.  Every length is bounded (1 <= length <= n_samples) and the
    sum is taken in Python integers, so huge lengths cannot wrap around in
    int64.

    Parameters
    ----------
    lengths : array-like of int of shape (n_sequences,), or None
        Lengths of the sequences, in the order of the rows; None is one
        sequence of ``n_samples`` rows.
    n_samples : int
        Rows of the data the lengths describe.

    Returns
    -------
    starts : ndarray of int64 of shape (n_sequences + 1,)
        Offset of every sequence's first row, then ``n_samples``.

    Raises
    ------
    ValueError
        When the lengths are not positive integers summing to
        ``n_samples``, saying which one is wrong.
    """
    if lengths is None:
        return np.array([0, n_samples], dtype=np.int64)
    arr = np.asarray(lengths)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(
            "lengths must be a 1-D sequence of sequence lengths, got an array "
            f"of shape {arr.shape}. Pass one integer per sequence in X, in "
            "order, e.g. lengths=[100, 250].")
    if arr.size == 0:
        raise ValueError(
            "lengths is empty; pass one length per sequence (or lengths=None "
            "for a single sequence).")
    if arr.dtype.kind == "O":
        # e.g. Python integers beyond int64: compared as Python ints below
        try:
            arr = np.array([operator.index(v) for v in arr.tolist()],
                           dtype=object)
        except TypeError:
            raise ValueError(
                "lengths must contain integers, got "
                f"{_short(arr.tolist(), 5)}.") from None
    if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) \
            and np.all(arr == np.round(arr)):
        values = arr
    elif arr.dtype.kind in "iuO":
        values = arr
    else:
        raise ValueError(
            f"lengths must contain integers, got dtype {arr.dtype} "
            f"(values {_short(arr.tolist(), 5)}).")
    low = np.flatnonzero(values < 1)
    if low.size:
        i = int(low[0])
        raise ValueError(
            f"lengths must be positive integers, found lengths[{i}] = "
            f"{int(values[i])}. Remove empty sequences and check that the "
            "lengths are the number of rows of each sequence.")
    high = np.flatnonzero(values > n_samples)
    if high.size:
        i = int(high[0])
        raise ValueError(
            f"lengths array {_short(int(v) for v in values.tolist())} doesn't "
            f"sum to {n_samples} samples: lengths[{i}] = {int(values[i])} is "
            f"larger than X, which has {n_samples} rows. Every length must be "
            f"between 1 and n_samples = {n_samples}, and the lengths must add "
            "up to n_samples.")
    if arr.size > n_samples:
        raise ValueError(
            f"lengths array has {arr.size} sequences, but X has only "
            f"{n_samples} samples (rows); every sequence needs at least one "
            "row.")
    arr = values.astype(np.int64)     # safe: 1 <= every length <= n_samples
    total = sum(int(v) for v in arr.tolist()) if arr.size > 1 else int(arr[0])
    if total != n_samples:
        raise ValueError(
            f"lengths array {_short(arr.tolist())} doesn't sum to {n_samples} "
            f"samples: they sum to {total}, but X has {n_samples} rows. The "
            "lengths of the sequences must add up to n_samples, e.g. "
            f"lengths=[{n_samples}] for a single sequence.")
    starts = np.zeros(arr.size + 1, dtype=np.int64)
    np.cumsum(arr, out=starts[1:])
    return starts


_check_lengths = check_lengths  # the former private name (tests, callers)


def _memory_bound():
    """Bytes a single request may use: this machine's physical memory.

    Returns ``(bytes, description)``; falls back to a fixed 1 TiB where the
    operating system does not report its memory size.
    """
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        if total > 0:
            return total, "this machine's physical memory"
    except (ValueError, OSError, AttributeError):
        pass
    return 1 << 40, "fastem's fixed bound (the OS reports no memory size)"


def _bytes(n):
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}" if unit != "bytes" else f"{int(n)} bytes"
        n /= 1024
    return f"{n:.3g} EiB"  # pragma: no cover


def _check_memory(nbytes, what, fix):
    """Refuse a request whose arrays would not fit in memory (before allocating)."""
    bound, name = _memory_bound()
    if nbytes > bound:
        raise ValueError(
            f"{what} would need {_bytes(nbytes)}, more than {name} "
            f"({_bytes(bound)}); nothing was allocated. {fix}")


def _fill_covars(covars, covariance_type, K, D):
    """Type-specific covariances -> (K, D, D) full matrices (hmmlearn's covars_)."""
    if covariance_type == "full":
        return covars.copy()
    if covariance_type == "tied":
        return np.tile(covars, (K, 1, 1))
    if covariance_type == "diag":
        out = np.zeros((K, D, D))
        idx = np.arange(D)
        out[:, idx, idx] = covars
        return out
    return np.asarray(covars)[:, None, None] * np.eye(D)[None]


# The fields of export_state() that import_state() requires.
_STATE_FIELDS = ("startprob", "transmat", "means", "covars")


def _found(value):
    """Describe ``value`` for a message ("found ...")."""
    if isinstance(value, (list, tuple, np.ndarray)):
        items = [type(v).__name__ for v in value if not isinstance(v, str)]
        if items:
            return f"a list of length {len(value)} holding {items[0]} items"
        return f"a list of length {len(value)}"
    if isinstance(value, dict):
        return f"a dict with keys {sorted(map(str, value))}"
    return f"{value!r:.60}"


def _covars_shape(covariance_type, K, D):
    return {"spherical": (K,), "diag": (K, D), "full": (K, D, D),
            "tied": (D, D)}[covariance_type]


def _as_prior(name, value, shape, what):
    arr = _float_array(name, value)
    try:
        out = np.broadcast_to(arr, shape)
    except ValueError:
        raise ValueError(
            f"{name} must be a scalar or an array broadcastable to {shape} "
            f"({what}), got shape {arr.shape}.") from None
    if not np.all(np.isfinite(arr)):    # arr, not the (K, K) broadcast
        raise ValueError(f"{name} contains NaN or infinite values.")
    return out


def _per_state(name, value, K):
    """Scalar or (K,) -> (K,) (a per-state weight)."""
    arr = _float_array(name, value)
    if arr.ndim == 0:
        arr = np.full(K, float(arr))
    if arr.shape != (K,):
        raise ValueError(
            f"{name} must be a scalar or an array of shape (n_components,) = "
            f"({K},), got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values.")
    return arr


def _float_array(name, value):
    """``value`` as a float64 array, with a clear error for non-numbers."""
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(
            f"{name} must be numbers (a scalar or an array of floats), got "
            f"{value!r:.80} ({str(e).splitlines()[0]}).") from None


def _check_loglik(loglik, where):
    """Refuse a non-finite log-likelihood (``where``: 'at iteration 3')."""
    if not np.isfinite(loglik):
        raise ValueError(
            f"The log-likelihood is {loglik} {where}: the model gives "
            "(numerically) zero probability to the data. Check for zeros in "
            "startprob_ / transmat_ that forbid the observed sequences, or "
            "rescale X.")


def _factor_ok(c):
    """Whether one covariance matrix has a usable Cholesky factorization."""
    try:
        L = np.linalg.cholesky(c)
    except np.linalg.LinAlgError:
        return False
    d = np.diag(L)
    with np.errstate(divide="ignore"):
        return bool(np.isfinite(L).all() and (d > 0).all()
                    and np.isfinite(1.0 / d).all())


# ---------------------------------------------------------------- the E-step
def _e_step(covariance_type, X, starts, model, ws, *, gamma=False, stats=False,
            xi=False, backward=True, out_gamma=None, ref=None):
    """Run one E-step (see :mod:`fastem.kernels.hmm`); return :class:`HMMStats`.

    ``ws`` is a :class:`_Workspace`; its plan decides which kernels run.
    """
    N, D = X.shape
    K = model.means.shape[0]
    block = _config.BLOCK_ROWS
    code = model.code
    s_rows = 1 if code == TIED else K
    ref = model.means if ref is None else ref
    out_gamma = np.empty((0, K)) if out_gamma is None else out_gamma
    gamma = gamma or stats or out_gamma.shape[0] > 0
    if ws.groups is not None:
        out = _grouped_pass(
            code, X, starts, ws.groups, model.startprob, model.transmat,
            model.log_startprob, model.log_transmat, model.means,
            model.prec, model.logconst, ref, block, s_rows, backward,
            gamma, stats, xi, out_gamma)
        nk, sums, scatter, ll, n, xi_acc, start, fb_xi = out
        loglik = float(ll)
    else:
        loglik, nk, sums, scatter, n, xi_acc, start, fb_xi = _e_step_rows(
            X, starts, model, ws, gamma, stats, xi, backward, out_gamma, ref,
            block, s_rows)
    if code == FULL:
        scatter = scatter.reshape(K, D, D)
    elif code == TIED:
        scatter = scatter.reshape(D, D)
    else:
        scatter = scatter.reshape(K, D)
    st = GaussianStats(covariance_type, nk, sums, scatter,
                       np.array(ref, copy=True), loglik, float(n), N)
    return HMMStats(loglik, st, model.transmat * xi_acc + fb_xi, start, N,
                    starts.shape[0] - 1)


def _e_step_rows(X, starts, model, ws, gamma, stats, xi, backward, out_gamma,
                 ref, block, s_rows):
    """Run the three-pass E-step.

    Emissions and posteriors are parallel over row chunks, the recursions
    over sequences and directions.
    """
    N = X.shape[0]
    K = model.means.shape[0]
    code = model.code
    nc = _config.n_chunks_for(N)
    _emission_pass(code, X, model.means, model.prec, model.logconst, nc,
                   block, True, ws.B, ws.m)
    _config.check_interrupt()
    _fb_pass(starts, model.startprob, model.transmat, ws.B, ws.alpha, ws.c,
             ws.beta, ws.okf, ws.okb, backward)
    _config.check_interrupt()
    ok = ws.okf.copy()
    if backward:
        ok &= ws.okb
    fb_ll = []
    fb_xi = np.zeros((K, K))

    def fallback(seqs):
        for s in seqs:
            ll_s, xi_s = _fb_log_seq(
                code, X, starts[s], starts[s + 1], model.log_startprob,
                model.log_transmat, model.means, model.prec,
                model.logconst, block, ws.alpha, ws.beta, ws.c, ws.m,
                starts[s])
            fb_ll.append(ll_s)
            fb_xi[...] += xi_s

    fallback(np.flatnonzero(ok == 0))
    for _ in range(3):
        ws.bad[:] = 0
        nk, sums, scatter, ll, n, xi_acc, start, _ = _posterior_pass(
            code, X, starts, ok, ws.alpha, ws.beta, ws.B, ws.c, ws.m, ref,
            nc, block, s_rows, gamma, stats, xi, out_gamma, ws.bad)
        redo = np.flatnonzero(ws.bad & ok)
        if not redo.size:
            break
        ok[redo] = 0
        fallback(redo)
    loglik = float(ll) + sum(fb_ll)
    return loglik, nk, sums, scatter, n, xi_acc, start, fb_xi


def _sequence_stats(covariance_type, model, need_stats, want_xi, X, starts):
    """HMMStats of one chunk of whole sequences (module level: picklable).

    Used by every fit path: each chunk (a block of a dask array, a chunk of
    a stream) gets its own workspace; the moments are taken around the
    E-step's means, the same reference for every chunk, so the chunks' stats
    add without re-centring.
    """
    ws = _Workspace(X.shape[0], model.means.shape[0], starts)
    return _e_step(covariance_type, X, starts, model, ws, gamma=True,
                   stats=need_stats, xi=want_xi, ref=model.means)


# --------------------------------------------------------------- estimator
class GaussianHMM(BaseEstimator):
    """Hidden Markov model with Gaussian emissions, a drop-in for hmmlearn's.

    Same constructor arguments, defaults, methods and fitted attributes as
    ``hmmlearn.hmm.GaussianHMM``; fitted by Baum-Welch with parallel Numba
    kernels.  From identical starting parameters the log-likelihood of every
    iteration agrees with hmmlearn's to rounding.

    Parameters
    ----------
    n_components : int, default=1
        Number of hidden states.
    covariance_type : {'spherical', 'diag', 'full', 'tied'}, default='diag'
        Form of the emission covariances: one variance per state, a diagonal
        matrix per state, a full matrix per state, or one full matrix shared
        by all states.
    min_covar : float, default=1e-3
        Added to the diagonal of the data covariance when ``'c'`` is
        initialized (as in hmmlearn, it is not used by the M-step).
    startprob_prior : float or array-like of shape (n_components,), default=1.0
        Dirichlet prior of :attr:`startprob_` (1 is no prior).
    transmat_prior : float or array-like of shape (n_components, n_components), \
default=1.0
        Dirichlet prior of each row of :attr:`transmat_` (1 is no prior).
    means_prior : float or array-like broadcastable to (n_components, \
n_features), default=0
        Mean of the normal prior of :attr:`means_`.
    means_weight : float or array-like of shape (n_components,), default=0
        Precision (in pseudo-observations) of the prior of :attr:`means_`.
    covars_prior : float or array-like, default=1e-2
        Scale of the prior of the covariances (inverse gamma for
        ``'spherical'`` / ``'diag'``, inverse Wishart for ``'full'`` /
        ``'tied'``); broadcast like hmmlearn's: to (n_components, n_features)
        for ``'spherical'`` / ``'diag'``, (n_components, n_features,
        n_features) for ``'full'``, (n_features, n_features) for ``'tied'``.
    covars_weight : float or array-like of shape (n_components,), default=1
        Shape of the prior of the covariances (a scalar for ``'tied'``).
    algorithm : {'viterbi', 'map'}, default='viterbi'
        Decoder of :meth:`predict` / :meth:`decode`: the most likely state
        sequence (Viterbi), or the most likely state of each row (MAP).
    random_state : int, RandomState instance or None, default=None
        Seed of the initialization and default seed of :meth:`sample`.
    n_iter : int, default=10
        Maximum number of EM iterations.
    tol : float, default=1e-2
        Convergence threshold on the gain in log-likelihood (any float;
        ``-inf`` runs exactly ``n_iter`` iterations).
    verbose : bool, default=False
        Print the log-likelihood of every iteration to :data:`sys.stderr`.
    params : str, default='stmc'
        Parameters updated by ``fit``: any of 's' (startprob), 't'
        (transmat), 'm' (means), 'c' (covars).  The others stay fixed.
    init_params : str, default='stmc'
        Parameters initialized by ``fit`` (random Dirichlet draws for 's' and
        't', k-means for 'm', the data covariance for 'c').  A parameter not
        listed keeps the value you set on the model (and is initialized only
        if it has none).
    implementation : {'log', 'scaling'}, default='log'
        Accepted for compatibility; both use fastem's algorithm: scaled
        recursions on per-row shifted emission densities, with an automatic
        exact log-space fallback for any sequence that would underflow.
        Results are the same to rounding.
    n_threads : int or None, default=None
        Threads for the compiled kernels (fastem addition); None uses
        :func:`fastem.set_num_threads`'s setting.  Results do not depend on it.
    online_decay : float in (0.5, 1], default=0.6
        Step-size exponent of :meth:`partial_fit` (fastem addition): after
        ``t`` updates, a new batch gets weight ``(t + 2) ** -online_decay``
        in the running statistics.  Smaller values forget old batches
        faster (to track drift); 1 forgets slowest.

    Attributes
    ----------
    startprob_ : ndarray of shape (n_components,)
        Initial state distribution.
    transmat_ : ndarray of shape (n_components, n_components)
        Transition probabilities; row ``i`` is ``P(z_{t+1} | z_t = i)``.
    means_ : ndarray of shape (n_components, n_features)
        Emission means.
    covars_ : ndarray of shape (n_components, n_features, n_features)
        Emission covariances, always returned as full matrices (as in
        hmmlearn).  Set it in the type's own layout: (n_components,) for
        'spherical', (n_components, n_features) for 'diag',
        (n_components, n_features, n_features) for 'full', (n_features,
        n_features) for 'tied'.  As in hmmlearn, spherical variances may
        also be given as (n_components, 1) (or (n_components, 1, ..., 1))
        or (n_components, n_features) with equal values in each row
        (hmmlearn's layout after ``fit``).
    monitor_ : ConvergenceMonitor
        Log-likelihood history of the last fit and its ``converged`` flag.
    n_features : int
        Number of features (hmmlearn's name); also ``n_features_in_``.
    n_batches_ : int
        After :meth:`partial_fit`: updates since the running statistics
        started.
    batch_log_likelihood_ : float
        After :meth:`partial_fit`: log-likelihood of the last batch under
        the parameters before its update.

    Notes
    -----
    Deviations from hmmlearn 0.3, all where hmmlearn's result is unusable:
    with ``'m'`` not in ``params`` but ``'c'`` in it, hmmlearn estimates the
    covariances from statistics it did not collect (they come out wrong);
    fastem uses the fixed means.  For ``'spherical'``, hmmlearn's
    ``covars_`` has a wrong shape after ``fit`` when n_features > 1; fastem
    returns (n_components, n_features, n_features).  The spherical
    initialization uses the mean variance of the features (hmmlearn: the mean
    of all covariance entries).  A transition row, start distribution, mean or
    covariance whose M-step denominator is zero (a state that is never
    visited, with no prior) keeps its previous value with a warning instead
    of becoming all-zero or NaN.  A covariance that collapses during ``fit``
    (not positive definite after an M-step) stops the fit with
    :class:`~fastem.stats.ComponentCollapseError` naming the state and the
    remedies, and the model is left unchanged; hmmlearn instead retries its
    log-density with 1e-7 added to the diagonal and stores the singular
    matrix, which its own ``covars_`` setter would refuse.  One rule decides
    whether covariances are usable -- in the setter, in ``fit`` (its start
    and every M-step) and in ``score`` / ``predict`` / ``sample`` -- so a
    fitted model is always usable.

    As in hmmlearn, ``fit`` logs a warning (``logging``, logger
    ``fastem.hmm``) when ``init_params`` overwrites a parameter that is set
    and when the model has more free scalars than ``X`` has values.  Errors
    are raised before anything is allocated for requests beyond this
    machine's physical memory (huge ``n_components``, ``sample`` sizes).
    Rows with a value beyond 1e150 in magnitude are refused by ``fit`` and
    by every inference method (their squared distances overflow).
    """

    def __init__(self, n_components=1, covariance_type="diag", min_covar=1e-3,
                 startprob_prior=1.0, transmat_prior=1.0, means_prior=0,
                 means_weight=0, covars_prior=1e-2, covars_weight=1,
                 algorithm="viterbi", random_state=None, n_iter=10, tol=1e-2,
                 verbose=False, params="stmc", init_params="stmc",
                 implementation="log", n_threads=None, online_decay=0.6):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.min_covar = min_covar
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.means_prior = means_prior
        self.means_weight = means_weight
        self.covars_prior = covars_prior
        self.covars_weight = covars_weight
        self.algorithm = algorithm
        self.random_state = random_state
        self.n_iter = n_iter
        self.tol = tol
        self.verbose = verbose
        self.params = params
        self.init_params = init_params
        self.implementation = implementation
        self.n_threads = n_threads
        self.online_decay = online_decay

    # ----------------------------------------------------------- covars_
    @property
    def covars_(self):
        """Emission covariances as full (n_components, n_features, n_features)."""
        if not hasattr(self, "_covars_"):
            raise AttributeError("'GaussianHMM' object has no attribute "
                                 "'covars_' (not fitted, and not set).")
        cv = self._covars_
        ct = self.covariance_type
        K = self.n_components
        D = cv.shape[-1] if ct != "spherical" else self._n_features_guess()
        return _fill_covars(cv, ct, K, D)

    @covars_.setter
    def covars_(self, covars):
        try:
            cv = np.array(covars, dtype=np.float64, copy=True)
        except (TypeError, ValueError) as e:
            raise ValueError(
                f"covars_ must be an array of numbers, got {covars!r:.80} "
                f"({e}).") from None
        cv = self._covars_layout(cv)
        self._check_covars(cv, None)
        self._covars_ = cv

    def _n_features_guess(self):
        if hasattr(self, "means_"):
            return np.shape(self.means_)[-1]
        return getattr(self, "n_features", 1)

    # ------------------------------------------------------------ checks
    def check_params(self, n_features=None):
        """Raise a clear error if a constructor parameter is invalid.

        ``fit`` runs the same checks first; this is for callers that build
        a model without fitting it (:func:`fastem.load`, a configuration
        file, a grid of models).

        Parameters
        ----------
        n_features : int, optional
            With it, the priors (``means_prior``, ``covars_prior``, ...) are
            also checked against that many features (their shapes depend on
            it); without it only what does not depend on the data is.

        Raises
        ------
        TypeError, ValueError
            Naming the parameter, what was expected and what was found.
        """
        self._check_parameters()
        if n_features is not None:
            _check_int("n_features", n_features, 1)
            self._priors(self.n_components, int(n_features))

    def check_data(self, X, lengths=None):
        """Validate observations and sequence lengths as :meth:`fit` does.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Observations of all sequences, concatenated.
        lengths : array-like of int of shape (n_sequences,), optional
            Lengths of the sequences in ``X``; None means one sequence.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            C-contiguous float64 (float32 stays float32), finite, no value
            beyond 1e150 in magnitude.
        lengths : ndarray of int64 of shape (n_sequences,)

        Raises
        ------
        ValueError
            Naming the first bad row (NaN, infinite, huge values, ragged
            rows) or the bad length (see :func:`check_lengths`).
        """
        X = self._validate_X(X)
        return X, np.diff(check_lengths(lengths, X.shape[0]))

    def _check_parameters(self):
        _check_int("n_components", self.n_components, 1)
        for name, allowed in (("covariance_type", sorted(COVARIANCE_TYPES)),
                              ("algorithm", list(DECODER_ALGORITHMS)),
                              ("implementation", list(IMPLEMENTATIONS))):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise ValueError(
                    f"{name} must be one of {allowed}, got {value!r:.80} "
                    f"({type(value).__name__}); pass one of those strings.")
        if not isinstance(self.verbose, (bool, np.bool_, numbers.Integral)):
            raise TypeError(
                f"verbose must be a bool, got {self.verbose!r:.80} "
                f"({type(self.verbose).__name__}); pass True or False.")
        if self.covariance_type not in COVARIANCE_TYPES:
            raise ValueError(
                f"covariance_type must be one of {sorted(COVARIANCE_TYPES)}, "
                f"got {self.covariance_type!r}.")
        if isinstance(self.min_covar, bool) or not isinstance(
                self.min_covar, numbers.Real) or not (
                np.isfinite(self.min_covar) and self.min_covar >= 0):
            raise ValueError(
                f"min_covar must be a finite float >= 0, got {self.min_covar!r}.")
        if self.algorithm not in DECODER_ALGORITHMS:
            raise ValueError(
                f"algorithm must be one of {list(DECODER_ALGORITHMS)}, got "
                f"{self.algorithm!r}.")
        if self.implementation not in IMPLEMENTATIONS:
            raise ValueError(
                f"implementation must be one of {list(IMPLEMENTATIONS)}, got "
                f"{self.implementation!r}.")
        _check_int("n_iter", self.n_iter, 0)
        if isinstance(self.tol, bool) or not isinstance(self.tol, numbers.Real) \
                or np.isnan(self.tol):
            raise ValueError(f"tol must be a float, got {self.tol!r}.")
        for name in ("params", "init_params"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise TypeError(
                    f"{name} must be a string of letters from 'stmc', got "
                    f"{value!r}.")
            extra = sorted(set(value) - set(_PARAM_LETTERS))
            if extra:
                raise ValueError(
                    f"{name}={value!r} contains {extra}; use only 's' "
                    "(startprob), 't' (transmat), 'm' (means) and 'c' (covars).")
        check_random_state(self.random_state)
        _config.validate_threads(self.n_threads)
        if isinstance(self.online_decay, bool) or not isinstance(
                self.online_decay, numbers.Real) or not (
                0.5 < self.online_decay <= 1):
            raise ValueError(
                "online_decay must be a float in (0.5, 1] (the step-size "
                "exponent of partial_fit; Cappé & Moulines need > 0.5 for "
                f"convergence), got {self.online_decay!r}.")

    def _covars_layout(self, cv):
        """Bring the layouts hmmlearn's setter accepts to fastem's.

        A spherical ``covars_`` may be given as (n_components,), as
        (n_components, 1) (or (n_components, 1, ..., 1), which hmmlearn's
        setter takes too) or as (n_components, n_features) with equal values
        in every row (hmmlearn's own layout after ``fit``); all are stored as
        (n_components,).
        """
        K = self.n_components
        if (self.covariance_type == "spherical" and cv.ndim > 2
                and cv.shape[0] == K and all(n == 1 for n in cv.shape[1:])):
            # hmmlearn's setter checks only len(covars) == n_components, so
            # it takes (n_components, 1, 1, 1) (its test_issue_385)
            cv = cv.reshape(K, 1)
        if (self.covariance_type == "spherical" and cv.ndim == 2
                and cv.shape[0] == K and cv.shape[1] >= 1):
            first = cv[:, :1]
            if np.all(cv == first):
                return np.ascontiguousarray(cv[:, 0])
            if np.all(np.isfinite(cv)) and np.allclose(cv, first):
                return cv.mean(axis=1)
            k = int(np.flatnonzero(~np.isclose(cv, first).all(axis=1))[0])
            raise ValueError(
                "'spherical' covars have length n_components, with one "
                f"variance per state; got shape {cv.shape} whose row {k} holds "
                f"different values {_short(cv[k].tolist(), 4)}. Pass one "
                "variance per state (shape (n_components,)), or use "
                "covariance_type='diag' for one variance per feature.")
        return cv

    def _check_covars(self, cv, n_features, fit_iter=None):
        """Check covariances in the type's layout; return the precision factors.

        The one rule for usable covariances, applied wherever they are set or
        used -- the ``covars_`` setter, ``fit`` (its start and every M-step),
        ``score``, ``predict``, ``sample`` -- so that ``fit`` never returns a
        model its other methods reject: finite; diag/spherical variances
        positive; full/tied matrices symmetric (``np.allclose(C, C.T)``) with
        a Cholesky factorization whose precision factors are finite.
        ``fit_iter`` names the EM iteration that produced ``cv`` (messages).
        """
        ct = self.covariance_type
        K = self.n_components
        if ct not in COVARIANCE_TYPES:
            raise ValueError(
                f"covariance_type must be one of {sorted(COVARIANCE_TYPES)}, "
                f"got {ct!r}.")
        D = n_features
        if D is None:
            D = cv.shape[-1] if (cv.ndim >= 1 and ct != "spherical") else 1
        expected = _covars_shape(ct, K, D)
        if cv.shape != expected:
            names = {"spherical": "(n_components,)",
                     "diag": "(n_components, n_features)",
                     "full": "(n_components, n_features, n_features)",
                     "tied": "(n_features, n_features)"}[ct]
            hint = ""
            if cv.ndim == 3 and ct != "full":
                hint = {"spherical": " From full matrices, pass "
                        "np.diagonal(C, axis1=1, axis2=2).mean(axis=1).",
                        "diag": " From full matrices (the covars_ getter's "
                        "layout), pass np.diagonal(C, axis1=1, axis2=2).",
                        "tied": " From the covars_ getter's layout (one "
                        "copy per state), pass C[0]."}[ct]
            raise ValueError(
                f"covars_ for covariance_type={ct!r} must have shape {names} = "
                f"{expected}, got {cv.shape}.{hint}")
        if not np.all(np.isfinite(cv)):
            raise ValueError(
                "covars_ contains NaN or infinite values"
                + (f" after EM iteration {fit_iter}. Rescale X, or use "
                   "fewer states." if fit_iter else
                   ". Set finite covariances."))
        if fit_iter:
            where = (f"EM iteration {fit_iter} made the covariance of "
                     "state(s) {bad} collapse (too few rows are assigned to "
                     "the state, or they lie on a line or plane). ")
            if ct == "tied":
                where = (f"EM iteration {fit_iter} made the shared "
                         "covariance singular (the rows lie on a line or "
                         "plane, for instance a constant feature). ")
            remedy = (
                "Use fewer states (n_components), rescale X, or regularize "
                "the M-step with covars_prior"
                + (" (added to every variance)." if ct in ("spherical", "diag")
                   else ": pass a positive-definite matrix such as "
                   "covars_prior=1e-2 * np.eye(n_features) (a scalar is "
                   "added to every entry of the matrix, which does not keep "
                   "it positive definite).")
                + " min_covar regularizes only the initial covariances, as "
                "in hmmlearn.")
        if ct in ("spherical", "diag"):
            bad = np.flatnonzero(~(cv > 0).reshape(K, -1).all(axis=1))
            if not bad.size:
                with np.errstate(divide="ignore", over="ignore"):
                    pc = 1.0 / np.sqrt(cv)
                bad = np.flatnonzero(~np.isfinite(pc).reshape(K, -1).all(axis=1))
            if bad.size:
                head = f"'{ct}' covars must be positive: "
                if fit_iter:
                    raise ComponentCollapseError(
                        head + where.format(bad=bad.tolist()) + remedy)
                raise ComponentCollapseError(
                    head + f"covars_ has {cv.min():g} (state(s) "
                    f"{bad.tolist()}). Set positive variances.")
            return pc
        c3 = cv.reshape(-1, D, D)
        asym = [k for k, c in enumerate(c3) if not np.allclose(c, c.T)]
        bad = asym
        if not asym:
            try:
                pc = compute_precision_cholesky(cv, ct)
            except ComponentCollapseError:
                pc = None
            if pc is not None and np.all(np.isfinite(pc)):
                return pc
            bad = [k for k, c in enumerate(c3) if not _factor_ok(c)]
            bad = bad or list(range(len(c3)))
        head = ("'tied' covars must be symmetric, positive-definite: " if
                ct == "tied" else f"component {bad[0]} of 'full' covars must "
                "be symmetric, positive-definite: ")
        if fit_iter:
            raise ComponentCollapseError(
                head + where.format(bad=bad) + remedy)
        name = "covars_" if ct == "tied" else f"covars_[{bad[0]}]"
        if asym:
            raise ValueError(
                head + f"{name} is not symmetric; pass (C + C.T) / 2.")
        raise ComponentCollapseError(
            head + f"{name} is not positive definite (its Cholesky "
            "factorization fails; smallest eigenvalue "
            f"{np.linalg.eigvalsh(c3[bad[0]]).min():.3g}). Set a symmetric "
            "positive-definite matrix.")

    def _check_probabilities(self, startprob, transmat, K):
        sp = _float_array("startprob_", startprob)
        if sp.shape != (K,):
            raise ValueError(
                f"startprob_ must have shape (n_components,) = ({K},), got "
                f"{sp.shape}.")
        if not np.all(np.isfinite(sp)) or np.any(sp < 0):
            raise ValueError(
                f"startprob_ must be finite and non-negative, got {sp}.")
        if not np.isclose(sp.sum(), 1.0):
            raise ValueError(
                f"startprob_ must sum to 1, got sum(startprob_) = "
                f"{sp.sum():.10g}. Normalize it: startprob_ / "
                "startprob_.sum().")
        tm = _float_array("transmat_", transmat)
        if tm.shape != (K, K):
            raise ValueError(
                f"transmat_ must have shape (n_components, n_components) = "
                f"({K}, {K}), got {tm.shape}.")
        if not np.all(np.isfinite(tm)) or np.any(tm < 0):
            raise ValueError(
                "transmat_ must be finite and non-negative; found "
                f"{int((~np.isfinite(tm)).sum())} non-finite and "
                f"{int((tm < 0).sum())} negative entries.")
        rows = tm.sum(axis=1)
        badrows = np.flatnonzero(~np.isclose(rows, 1.0))
        if badrows.size:
            raise ValueError(
                f"transmat_ rows must sum to 1 (each row is the distribution "
                f"of the next state), but row(s) {badrows.tolist()} sum to "
                f"{rows[badrows].tolist()}. Normalize them: transmat_ / "
                "transmat_.sum(axis=1, keepdims=True).")
        return sp, tm

    def _is_set(self):
        return all(hasattr(self, a) for a in
                   ("startprob_", "transmat_", "means_", "_covars_"))

    def _model(self, n_features):
        """Validate the parameters set on the model; return a :class:`_Model`."""
        if not self._is_set():
            raise not_fitted_error(type(self).__name__)
        return self._validated_model(
            {name: getattr(self, name) for name in
             ("startprob_", "transmat_", "means_", "_covars_")}, n_features)

    def _validated_model(self, p, D, fit_iter=None):
        """Check the parameters in ``p``; return a :class:`_Model`.

        The same checks for the parameters set by the user, those ``fit``
        starts from, those of every M-step and those ``score``/``predict``/
        ``sample`` use.
        """
        sp, tm, means, _, pc = self._checked_params(p, D, fit_iter)
        return self._make_model(sp, tm, means, pc)

    def _checked_params(self, p, D, fit_iter=None):
        """Check the parameters in ``p`` (:meth:`_validated_model`'s rule).

        Returns ``(startprob, transmat, means, covars, precision factors)``
        as float64 arrays, the covariances in the type's own layout.
        """
        K = self.n_components
        try:
            sp, tm = self._check_probabilities(p["startprob_"], p["transmat_"],
                                               K)
            means = _float_array("means_", p["means_"])
            if means.shape != (K, D):
                raise ValueError(
                    f"means_ must have shape (n_components, n_features) = "
                    f"({K}, {D}), got {means.shape}.")
            if not np.all(np.isfinite(means)):
                raise ValueError("means_ contains NaN or infinite values.")
        except ValueError as e:
            if fit_iter:
                raise ValueError(
                    f"EM iteration {fit_iter} produced unusable parameters: "
                    f"{e} Rescale X, or use fewer states.") from None
            raise
        covars = self._covars_layout(_float_array("covars_", p["_covars_"]))
        pc = self._check_covars(covars, D, fit_iter)
        return sp, tm, means, covars, pc

    def _make_model(self, sp, tm, means, pc):
        K = means.shape[0]
        code, m, prec, logconst = GaussianParams(
            np.ones(K), means, pc, self.covariance_type).kernel_args()
        with np.errstate(divide="ignore"):
            lsp = np.log(sp)
            ltm = np.log(tm)
        return _Model(code, np.ascontiguousarray(sp), np.ascontiguousarray(tm),
                      lsp, np.ascontiguousarray(ltm), m, prec, logconst)

    def _check_is_fitted(self):
        if not self._is_set():
            raise not_fitted_error(type(self).__name__)

    def __sklearn_is_fitted__(self):
        return self._is_set()

    def _validate_X(self, X, n_features=None, row_offset=0):
        """``X`` as a 2-D float array: finite, no NaN, |x| <= 1e150.

        ``row_offset``: the index of ``X``'s first row in the whole data (a
        chunk's start), so that messages name the row in the data.
        """
        if isinstance(X, (list, tuple)):
            try:
                X = np.asarray(X)
            except ValueError:
                sizes = sorted({np.shape(r)[0] if np.ndim(r) else 1
                                for r in X})
                raise ValueError(
                    "GaussianHMM expects X of shape (n_samples, n_features), "
                    "but X is ragged: its items have different lengths "
                    f"{_short(sizes, 4)}. Give every row the same number of "
                    "features; for several sequences, concatenate them "
                    "(np.concatenate(sequences)) and pass their lengths in "
                    "`lengths`.") from None
        X = check_array(X, n_features=n_features, estimator="GaussianHMM",
                        allow_nan=True, row_offset=row_offset)
        with np.errstate(invalid="ignore"):
            hi, lo = float(X.max()), float(X.min())
        if np.isnan(hi) or np.isnan(lo):
            nan = np.isnan(X)
            rows = np.flatnonzero(nan.any(axis=1))
            raise ValueError(
                f"Input X contains NaN: {int(nan.sum())} NaN value(s) in "
                f"{rows.size} row(s), the first in row "
                f"{int(rows[0]) + row_offset}. GaussianHMM does not accept "
                "missing values (as hmmlearn): drop those rows (and shorten "
                "the lengths of their sequences to match) or impute them, "
                "e.g. by interpolating within each sequence.")
        if max(hi, -lo) > _MAX_ABS:
            _check_magnitude(X)
        return X

    # -------------------------------------------------------- the E-step
    def _e_step(self, X, starts, model, ws, **kwargs):
        """Run one E-step on validated data; see :func:`_e_step`."""
        return _e_step(self.covariance_type, X, starts, model, ws, **kwargs)

    # -------------------------------------------------------------- fit
    def fit(self, X, lengths=None):
        """Estimate the model parameters with the Baum-Welch (EM) algorithm.

        Parameters not in ``init_params`` keep the values set on the model
        (``init_params=''`` starts from exactly the parameters you set).  The
        fitted parameters are stored only when the fit succeeds: after an
        error (or an interrupt) the model is unchanged.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or dask array
            Observations of all sequences, concatenated.  A ``dask.array``
            (or dask DataFrame) is fitted on its workers: every row-block
            must hold whole sequences (a ValueError says how to rechunk
            otherwise); each iteration computes the blocks' statistics where
            the blocks are, adds them up there, and runs the M-step here.
            Initialization (for ``'m'`` / ``'c'`` in ``init_params``) runs
            on a uniform sample of 100,000 rows gathered to the client (all
            rows, in order, when there are fewer), seeded by
            ``random_state``.
        lengths : array-like of int of shape (n_sequences,), optional
            Lengths of the sequences in ``X``; must sum to ``n_samples``.
            None means one sequence.

        Returns
        -------
        self : GaussianHMM
        """
        self._check_parameters()
        if _dask.is_dask_collection(X):
            with _config.threads(self.n_threads):
                self._fit_source(*self._dask_source(X, lengths))
            return self
        X = self._validate_X(X)
        N, D = X.shape
        starts = check_lengths(lengths, N)
        self._check_means_init_rows(N)
        self._check_fit_memory(N, starts)
        source = SequenceArraySource(X, starts)
        ws = []     # made after the initialization, reused every iteration

        def chunk_stats(model, need_stats, want_xi, Xc, sc):
            if not ws:
                ws.append(_Workspace(N, self.n_components, starts))
            return self._e_step(Xc, sc, model, ws[0], gamma=True,
                                stats=need_stats, xi=want_xi, ref=model.means)

        def stats_fn(model, need_stats, want_xi):
            return source.map_sum(partial(chunk_stats, model, need_stats,
                                          want_xi))

        with _config.threads(self.n_threads):
            self._fit_source(stats_fn, X, X.size, D)
        return self

    def fit_chunks(self, make_chunks, init_size=100_000):
        """Fit by exact Baum-Welch on sequences streamed in chunks (out of core).

        Each EM iteration is one pass over the chunks, adding up the
        statistics of their sequences (:class:`HMMStats`) before one M-step;
        memory is bounded by one chunk plus the initialization sample.  From
        the same initial parameters the iterates (``monitor_.history``, the
        fitted parameters) equal those of :meth:`fit` on the concatenated
        chunks, to rounding.  ``init_params``, ``params``, the priors,
        ``n_iter``, ``tol`` and ``monitor_`` work as in :meth:`fit`.

        Parameters
        ----------
        make_chunks : callable
            Returns a fresh iterator over the chunks each time it is called
            (once per iteration, plus once to count the rows and draw the
            sample).  A chunk is a tuple ``(X_chunk, lengths_chunk)``
            holding whole sequences (``lengths_chunk`` sums to the rows of
            ``X_chunk``), or an array ``X_chunk`` alone, which is one
            sequence.  A sequence may not continue into the next chunk.
        init_size : int, default=100000
            Rows of the sample the initialization runs on (k-means for
            ``'m'``, the data covariance for ``'c'`` in ``init_params``): a
            uniform reservoir sample of rows over all the chunks, drawn in
            the counting pass and seeded by ``random_state``.  With at most
            ``init_size`` rows in total the sample is all of them, in order,
            so the fit equals :meth:`fit` on the concatenation even from
            its own initialization.

        Returns
        -------
        self : GaussianHMM

        Examples
        --------
        >>> def make_chunks():                  # doctest: +SKIP
        ...     for path in files:              # one file: several sequences
        ...         d = np.load(path)
        ...         yield d["X"], d["lengths"]
        >>> GaussianHMM(3).fit_chunks(make_chunks)  # doctest: +SKIP
        """
        self._check_parameters()
        init_size = self._check_init_size(init_size)
        source = SequenceChunkSource(make_chunks, self._check_chunk,
                                     estimator=type(self).__name__)
        with _config.threads(self.n_threads):
            source.scan(check_random_state(self.random_state), init_size)
            self._check_means_init_rows(source.n_rows)
            ct = self.covariance_type

            def stats_fn(model, need_stats, want_xi):
                return source.map_sum(partial(_sequence_stats, ct, model,
                                              need_stats, want_xi))

            self._fit_source(stats_fn, source.init_sample(),
                             source.n_rows * source.n_features,
                             source.n_features)
        return self

    def _dask_source(self, X, lengths, init_size=100_000):
        """Return :meth:`_fit_source`'s arguments for a dask array.

        Every row-block of ``X`` must hold whole sequences.
        """
        source = SequenceDaskSource(X, lengths, check_lengths,
                                    estimator=type(self).__name__,
                                    nan_hint=_NAN_HINT)
        N, D = source.n_rows, source.n_features
        self._check_means_init_rows(N)
        if self._needs_data_init():
            sample = source.init_sample(check_random_state(self.random_state),
                                        init_size)
        else:
            sample = np.empty((0, D))
        ct = self.covariance_type

        def stats_fn(model, need_stats, want_xi):
            return source.map_sum(partial(_sequence_stats, ct, model,
                                          need_stats, want_xi))

        return stats_fn, sample, N * D, D

    def _fit_source(self, stats_fn, sample, n_values, D):
        """Run Baum-Welch on the core driver and commit the result.

        ``stats_fn(model, need_stats, want_xi)`` returns the :class:`HMMStats`
        of all the sequences under ``model`` (one pass over a source of
        :mod:`fastem.core.sequences`); ``sample`` (rows) is what the
        initialization sees, ``n_values`` the number of values in the data.
        Nothing on ``self`` changes before the final commit.
        """
        K = self.n_components
        priors = self._priors(K, D)
        mon = getattr(self, "monitor_", None)
        if mon is None or type(mon) is ConvergenceMonitor:
            mon = ConvergenceMonitor(self.tol, self.n_iter, self.verbose)
        else:
            # a user's monitor subclass: reset a copy, so that an interrupted
            # or failed fit leaves the model's monitor_ as it was
            mon = copy.copy(mon)
            mon.history = deque()
        mon._reset()
        p = self._initial_params(sample, n_values)
        model = self._start_model(p, D)
        need_stats = "m" in self.params or "c" in self.params
        want_xi = "t" in self.params

        def e_step(model):
            return stats_fn(model, need_stats, want_xi)

        def check(loglik, n_iter):
            _check_loglik(loglik, f"at iteration {n_iter}")

        iters = [0]

        def m_step(es, model):
            iters[0] += 1
            return self._m_step(es, model, p, priors, iters[0], stacklevel=6)

        run_em(None, e_step, m_step, _MonitorAdapter(mon),
               max_iter=self.n_iter, start=model, check=check)
        # the one commit: nothing on self changed before this point
        self.startprob_ = p["startprob_"]
        self.transmat_ = p["transmat_"]
        self.means_ = p["means_"]
        self._covars_ = p["_covars_"]
        self.n_features = self.n_features_in_ = D
        self.monitor_ = mon
        self._online = None  # a full fit restarts online EM

    def _start_model(self, p, D):
        """Return the validated starting model (fit's hint on bad covariances)."""
        try:
            return self._validated_model(p, D)
        except ComponentCollapseError as e:
            raise ComponentCollapseError(
                f"{e} (The covariances fit starts from: those set on the "
                "model, or for 'c' in init_params the data covariance "
                "plus min_covar; increase min_covar if X has a constant "
                "feature.)") from None

    def _check_fit_memory(self, N, starts):
        K = self.n_components
        ws_rows = _plan_groups(starts) is None
        _check_memory(
            8 * (6 * K * K + (3 * N * K if ws_rows else 0) + 8 * N),
            f"Fitting GaussianHMM(n_components={K}) to {N} rows",
            "Use fewer states (n_components) or fewer rows.")

    def _check_chunk(self, X, lengths, n_features, row0):
        """Validate one chunk of whole sequences; return ``(X, starts)``."""
        X = self._validate_X(X, n_features, row_offset=row0)
        return X, check_lengths(lengths, X.shape[0])

    def _needs_data_init(self):
        """Whether the initialization reads the data ('m' or 'c' to make)."""
        ip = self.init_params
        return ("m" in ip or not hasattr(self, "means_")
                or "c" in ip or not hasattr(self, "_covars_"))

    def _check_init_size(self, init_size):
        _check_int("init_size", init_size, 1)
        K = self.n_components
        if ("m" in self.init_params or not hasattr(self, "means_")) \
                and init_size < max(K, 2):
            raise ValueError(
                f"init_size={init_size} is too small: the k-means "
                f"initialization of the means needs a sample of at least "
                f"n_components = {K} rows (and 2 for the covariances). Pass a "
                "larger init_size, or set means_ and covars_ and remove 'm' "
                "and 'c' from init_params.")
        return int(init_size)

    # ----------------------------------------------------------- online
    def partial_fit(self, X, lengths=None):
        """Update the model with one batch of sequences by stepwise (online) EM.

        Cappé & Moulines (2009), as :meth:`GaussianMixture.partial_fit
        <fastem.GaussianMixture.partial_fit>`: the running sufficient
        statistics (:class:`HMMStats` per row: emission moments, expected
        transition counts, start posteriors) are a decayed average, ``S <-
        (1 - g) S + g s(batch) / n_batch`` with ``g = (t + 2) **
        -online_decay`` after ``t`` updates, followed by one M-step.  The
        M-step sees ``S`` times the (equally decayed) average batch size, so
        the priors weigh as in a fit on one batch.

        The first call initializes the model when its parameters are not all
        set (as :meth:`fit` does, per ``init_params``, from this batch); a
        model that is fitted (or loaded, or whose four parameters are set)
        is continued from, and its first batch starts the running
        statistics.  :meth:`fit` starts afresh.  A batch holds whole
        sequences; a sequence cannot continue into the next batch.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            One batch: observations of its sequences, concatenated.
        lengths : array-like of int of shape (n_sequences,), optional
            Lengths of the sequences in the batch; None means one sequence.

        Returns
        -------
        self : GaussianHMM
            With ``n_batches_`` (updates since the running statistics
            started) and ``batch_log_likelihood_`` (log-likelihood of the
            batch under the parameters before the update: a prequential
            score of the stream).
        """
        self._check_parameters()
        with _config.threads(self.n_threads):
            self._partial_fit(X, lengths)
        return self

    def _partial_fit(self, X, lengths):
        is_set = self._is_set()
        D = (np.shape(self.means_)[-1] or 1) if is_set else None
        X = self._validate_X(X, D)
        N, D = X.shape
        K = self.n_components
        starts = check_lengths(lengths, N)
        self._check_fit_memory(N, starts)
        priors = self._priors(K, D)
        online = getattr(self, "_online", None)
        if is_set:
            p = {name: np.array(getattr(self, name), dtype=np.float64,
                                copy=True)
                 for name in ("startprob_", "transmat_", "means_", "_covars_")}
            model = self._validated_model(p, D)
        else:
            self._check_means_init_rows(N)
            p = self._initial_params(X)
            model = self._start_model(p, D)
            online = None
        if online is not None:
            running = online[0]
            if (running.xi.shape != (K, K) or running.stats.covariance_type
                    != self.covariance_type or running.stats.sums.shape[1] != D):
                online = None   # the model was changed: start afresh
        need_stats = "m" in self.params or "c" in self.params
        es = _sequence_stats(self.covariance_type, model, need_stats,
                             "t" in self.params, X, starts)
        _check_loglik(es.loglik, "for this batch")
        batch = es.scale(1.0 / N)
        if online is None:
            running, t, n_avg = batch, 0, float(N)
        else:
            running, t, n_avg = online
            g = (t + 2.0) ** (-self.online_decay)
            running = running.scale(1.0 - g) + batch.scale(g)
            n_avg = (1.0 - g) * n_avg + g * N
        new = self._m_step(running.scale(n_avg), model, p, priors, t + 1,
                           stacklevel=4)
        running = running.shift(new.means)     # keep the moments centred
        # commit
        self.startprob_ = p["startprob_"]
        self.transmat_ = p["transmat_"]
        self.means_ = p["means_"]
        self._covars_ = p["_covars_"]
        self.n_features = self.n_features_in_ = D
        self._online = (running, t + 1, n_avg)
        self.n_batches_ = t + 1
        self.batch_log_likelihood_ = es.loglik

    def _priors(self, K, D):
        """Validate the priors once; return them broadcast for the M-step."""
        ct = self.covariance_type
        cw = _float_array("covars_weight", self.covars_weight)
        if ct == "tied":
            if cw.ndim != 0 or not np.isfinite(cw):
                raise ValueError(
                    "covars_weight must be a finite scalar for "
                    f"covariance_type='tied', got {self.covars_weight!r}.")
        else:
            cw = _per_state("covars_weight", cw, K)
        mw = _per_state("means_weight", self.means_weight, K)
        if np.any(mw < 0):
            raise ValueError(f"means_weight must be >= 0, got {mw}.")
        cp_shape, cp_name = {
            "spherical": ((K, D), "(n_components, n_features)"),
            "diag": ((K, D), "(n_components, n_features)"),
            "full": ((K, D, D), "(n_components, n_features, n_features)"),
            "tied": ((D, D), "(n_features, n_features)")}[ct]
        return {
            "startprob": _as_prior("startprob_prior", self.startprob_prior,
                                   (K,), "(n_components,)"),
            "transmat": _as_prior("transmat_prior", self.transmat_prior,
                                  (K, K), "(n_components, n_components)"),
            "means": _as_prior("means_prior", self.means_prior, (K, D),
                               "(n_components, n_features)"),
            "means_weight": mw,
            "covars": _as_prior("covars_prior", self.covars_prior, cp_shape,
                                cp_name),
            "covars_weight": cw,
        }

    def _check_means_init_rows(self, N):
        """Refuse fewer rows than states when the means come from k-means.

        Checked before anything of size n_components x n_components is made.
        """
        K = self.n_components
        if ("m" in self.init_params or not hasattr(self, "means_")) and N < K:
            raise ValueError(
                f"n_samples={N} should be >= n_clusters={K}: initializing "
                "the means by k-means ('m' in init_params, or means_ not "
                f"set) needs at least n_components = {K} rows. Use fewer "
                "states, more data, or set means_ and remove 'm' from "
                "init_params.")

    def _init(self, X, lengths=None):
        """Initialize the parameters as hmmlearn's ``_init`` does.

        hmmlearn's signature and effect: the parameters named in
        ``init_params`` (and those not set) are initialized from ``X`` and
        stored on the model, with ``n_features``.  ``lengths`` is checked
        (an int is one sequence) and otherwise unused, as in hmmlearn's
        GaussianHMM.  ``fit`` does not call this; it uses
        :meth:`_initial_params`, which leaves the model untouched until the
        fit succeeds.
        """
        self._check_parameters()
        X = self._validate_X(X)
        N, D = X.shape
        if lengths is not None:
            check_lengths(np.atleast_1d(lengths), N)
        self._check_means_init_rows(N)
        with _config.threads(self.n_threads):
            p = self._initial_params(X)
        self.startprob_ = p["startprob_"]
        self.transmat_ = p["transmat_"]
        self.means_ = p["means_"]
        self.covars_ = p["_covars_"]
        self.n_features = self.n_features_in_ = D

    def _initial_params(self, X, n_values=None):
        """Return the initial parameters: those set, or new per ``init_params``.

        A dict; the model's attributes are not touched.  ``X`` is the data,
        or a sample of it (``n_values``: the number of values in the data,
        for hmmlearn's warning about too many free parameters).
        """
        N, D = X.shape
        K = self.n_components
        rng = check_random_state(self.random_state)
        ip = self.init_params
        p = {name: np.array(getattr(self, name), dtype=np.float64, copy=True)
             for name in ("startprob_", "transmat_", "means_", "_covars_")
             if hasattr(self, name)}

        def needs_init(code, name, key):
            # hmmlearn's _needs_init, its log message word for word
            if code in ip:
                if key in p:
                    _log.warning(
                        "Even though the %r attribute is set, it will be "
                        "overwritten during initialization because "
                        "'init_params' contains %r", name, code)
                return True
            return key not in p

        if needs_init("s", "startprob_", "startprob_"):
            p["startprob_"] = rng.dirichlet(np.full(K, 1.0 / K))
        if needs_init("t", "transmat_", "transmat_"):
            p["transmat_"] = rng.dirichlet(np.full(K, 1.0 / K), size=K)
        n_fit_scalars = sum(self._n_fit_scalars_per_param(D)[c]
                            for c in self.params)
        n_values = X.size if n_values is None else n_values
        if n_values < n_fit_scalars:
            _log.warning(
                "Fitting a model with %d free scalar parameters with only "
                "%d data points will result in a degenerate solution.",
                n_fit_scalars, n_values)
        if needs_init("m", "means_", "means_"):   # N >= K checked by fit
            n_trials = 2 + int(np.log(K))
            u = rng.random_sample(1 + (K - 1) * n_trials)
            nc = _config.n_chunks_for(N)
            sw = np.empty(0)
            seeds = _kmeanspp(X, sw, K, u, n_trials, nc)
            _config.check_interrupt()
            var = X.var(axis=0, dtype=np.float64).mean()
            centers, _, _ = _lloyd(X, sw, X[seeds].astype(np.float64), 300,
                                   1e-4 * var, nc)
            _config.check_interrupt()
            p["means_"] = centers
        if needs_init("c", "covars_", "_covars_"):
            if N < 2:
                raise ValueError(
                    "Initializing the covariances needs at least 2 samples; "
                    "set covars_ and remove 'c' from init_params.")
            cv = np.atleast_2d(np.cov(X.T.astype(np.float64))) \
                + self.min_covar * np.eye(D)
            ct = self.covariance_type
            if ct == "spherical":
                cv = np.full(K, np.trace(cv) / D)
            elif ct == "diag":
                cv = np.tile(np.diag(cv), (K, 1))
            elif ct == "full":
                cv = np.tile(cv, (K, 1, 1))
            p["_covars_"] = cv
        return p

    def _m_step(self, es, model, p, priors, fit_iter, stacklevel=6):
        """M-step of hmmlearn (with its priors), from centred statistics.

        Updates the parameter dict ``p``; returns the next :class:`_Model`.
        """
        st = es.stats
        params = self.params
        sp = model.startprob
        tm = model.transmat
        if "s" in params:
            new = np.maximum(priors["startprob"] - 1 + es.start, 0)
            new = np.where(sp == 0, 0, new)
            total = new.sum()
            if total > 0:
                sp = new / total
            else:
                warnings.warn("startprob_ has no support after the M-step "
                              "(zero posteriors); keeping the previous "
                              "startprob_.", RuntimeWarning,
                              stacklevel=stacklevel)
            p["startprob_"] = sp
        if "t" in params:
            new = np.maximum(priors["transmat"] - 1 + es.xi, 0)
            new = np.where(tm == 0, 0, new)
            rows = new.sum(axis=1)
            zero = rows == 0
            if zero.any():
                warnings.warn(
                    f"Rows {np.flatnonzero(zero).tolist()} of transmat_ have "
                    "no expected transitions (the states are never left); "
                    "keeping their previous values.", RuntimeWarning,
                    stacklevel=stacklevel)
            tm = np.where(zero[:, None], tm,
                          new / np.where(zero, 1, rows)[:, None])
            p["transmat_"] = tm
        means = model.means
        covars = p["_covars_"]
        post = st.nk
        mw = priors["means_weight"][:, None]
        mp = priors["means"]
        if "m" in params:
            obs = st.sums + post[:, None] * st.ref
            den = mw + post[:, None]
            empty = (den == 0).ravel()
            if empty.any():
                warnings.warn(
                    f"State(s) {np.flatnonzero(empty).tolist()} have no "
                    "posterior weight; keeping their previous means.",
                    RuntimeWarning, stacklevel=stacklevel)
            with np.errstate(invalid="ignore", divide="ignore"):
                new = (mw * mp + obs) / den
            means = np.where(empty[:, None], means, new)
            p["means_"] = means
        if "c" in params:
            covars = self._new_covars(st, means, mw, mp, post, covars, priors,
                                      stacklevel + 1)
            p["_covars_"] = covars
        return self._validated_model(p, means.shape[1], fit_iter=fit_iter)

    def _new_covars(self, st, means, mw, mp, post, old, priors, stacklevel):
        ct = self.covariance_type
        K, D = means.shape
        delta = means - st.ref          # new means minus the reference
        md = means - mp
        cw = priors["covars_weight"]
        prior = priors["covars"]
        if ct in ("spherical", "diag"):
            # sum_t r (x - mu)^2 from the scatter around ref
            sq = st.scatter - 2 * delta * st.sums + post[:, None] * delta ** 2
            c_n = mw * md ** 2 + sq
            c_d = np.maximum(cw - 1, 0)[:, None] + post[:, None]
            cov = (prior + c_n) / np.maximum(c_d, 1e-5)
            if ct == "spherical":
                cov = cov.mean(axis=1)
            return cov
        outer = np.einsum("ki,kj->kij", delta, st.sums)
        c_n = (mw[:, :, None] * np.einsum("ki,kj->kij", md, md)
               - outer - np.swapaxes(outer, 1, 2)
               + post[:, None, None] * np.einsum("ki,kj->kij", delta, delta))
        if ct == "tied":
            den = max(float(cw) - D, 0) + post.sum()
            if not den > 0:
                warnings.warn("The tied covariance has no weight; keeping "
                              "the previous one.", RuntimeWarning,
                              stacklevel=stacklevel)
                return old
            return (prior + st.scatter + c_n.sum(axis=0)) / den
        den = np.maximum(cw - D, 0) + post
        empty = ~(den > 0)
        if empty.any():
            warnings.warn(
                f"State(s) {np.flatnonzero(empty).tolist()} have no posterior "
                "weight; keeping their previous covariances.", RuntimeWarning,
                stacklevel=stacklevel)
        with np.errstate(invalid="ignore", divide="ignore"):
            cov = (prior + st.scatter + c_n) / den[:, None, None]
        return np.where(empty[:, None, None], old, cov)

    # ------------------------------------------------------- inference
    def _prepare(self, X, lengths, n_arrays=1):
        """Validate ``X``, ``lengths`` and the model for inference.

        ``n_arrays`` (n_samples, n_components) float arrays will be made.
        """
        self._check_is_fitted()
        shape = np.shape(self.means_)
        D = shape[-1] if shape else 1
        X = self._validate_X(X, D)
        N = X.shape[0]
        starts = check_lengths(lengths, N)
        K = self.n_components
        rows = _plan_groups(starts) is None
        _check_memory(8 * N * K * (n_arrays + (3 if rows else 0)),
                      f"GaussianHMM(n_components={K}) inference on {N} rows",
                      "Pass X in parts (one call per sequence or group of "
                      "sequences).")
        return X, starts, self._model(D)

    def score_samples(self, X, lengths=None):
        """Log-likelihood of ``X`` and the state posteriors of every row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        lengths : array-like of int of shape (n_sequences,), optional
            Lengths of the sequences in ``X`` (sum ``n_samples``).

        Returns
        -------
        log_prob : float
            Log-likelihood of ``X`` (summed over the sequences).
        posteriors : ndarray of shape (n_samples, n_components)
            ``P(z_t = k | x)`` of each row.
        """
        X, starts, model = self._prepare(X, lengths)
        N = X.shape[0]
        K = self.n_components
        post = np.empty((N, K))
        with _config.threads(self.n_threads):
            es = self._e_step(X, starts, model,
                              _Workspace(N, K, starts),
                              out_gamma=post)
        return es.loglik, post

    def score(self, X, lengths=None):
        """Log-likelihood of ``X`` under the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        lengths : array-like of int of shape (n_sequences,), optional

        Returns
        -------
        log_prob : float
        """
        X, starts, model = self._prepare(X, lengths, n_arrays=0)
        N = X.shape[0]
        with _config.threads(self.n_threads):
            es = self._e_step(X, starts, model,
                              _Workspace(N, self.n_components, starts),
                              backward=False)
        return es.loglik

    def predict_proba(self, X, lengths=None):
        """Posterior probability of every state for every row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        lengths : array-like of int of shape (n_sequences,), optional

        Returns
        -------
        posteriors : ndarray of shape (n_samples, n_components)
        """
        return self.score_samples(X, lengths)[1]

    def decode(self, X, lengths=None, algorithm=None):
        """Most likely state sequence of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        lengths : array-like of int of shape (n_sequences,), optional
        algorithm : {'viterbi', 'map'}, optional
            Default: the model's ``algorithm``.

        Returns
        -------
        log_prob : float
            Viterbi: the log-probability of the best path (jointly with
            ``X``).  MAP: hmmlearn's value, the sum over rows of the largest
            posterior.
        state_sequence : ndarray of shape (n_samples,)
        """
        if algorithm is None:
            algorithm = self.algorithm
        if not isinstance(algorithm, str) or \
                algorithm not in DECODER_ALGORITHMS:
            raise ValueError(
                f"algorithm must be one of {list(DECODER_ALGORITHMS)}, got "
                f"{algorithm!r:.80}.")
        if algorithm == "map":
            _, post = self.score_samples(X, lengths)
            starts = check_lengths(lengths, post.shape[0])
            best = post.max(axis=1)
            log_prob = 0.0
            for a, b in zip(starts[:-1], starts[1:]):
                log_prob += best[a:b].sum()
            return float(log_prob), np.argmax(post, axis=1)
        X, starts, model = self._prepare(X, lengths)
        N = X.shape[0]
        K = self.n_components
        lat = np.empty((N, K))
        path = np.empty(N, dtype=np.int64)
        seq_lp = np.empty(starts.shape[0] - 1)
        with _config.threads(self.n_threads):
            _emission_pass(model.code, X, model.means, model.prec,
                           model.logconst, _config.n_chunks_for(N),
                           _config.BLOCK_ROWS, False, lat, _EMPTY_F)
            _viterbi_pass(starts, model.log_startprob, model.log_transmat, lat,
                          path, seq_lp)
        log_prob = 0.0
        for v in seq_lp.tolist():
            log_prob += v
        return log_prob, path

    def predict(self, X, lengths=None):
        """Most likely states of ``X`` by the model's ``algorithm``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        lengths : array-like of int of shape (n_sequences,), optional

        Returns
        -------
        state_sequence : ndarray of shape (n_samples,)
        """
        return self.decode(X, lengths)[1]

    # -------------------------------------------------------- sampling
    def sample(self, n_samples=1, random_state=None, currstate=None):
        """Generate a sequence from the model.

        Draws the same random numbers in the same order as hmmlearn, so both
        libraries produce the same sample from the same parameters and seed.

        Parameters
        ----------
        n_samples : int, default=1
            Length of the sequence.
        random_state : int, RandomState instance or None, optional
            Default: the model's ``random_state``.
        currstate : int, optional
            State of the first sample (default: drawn from ``startprob_``).

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        state_sequence : ndarray of shape (n_samples,)
        """
        self._check_is_fitted()
        _check_int("n_samples", n_samples, 1)
        shape = np.shape(self.means_)
        D = shape[-1] if shape else 1
        # X, the standard normal draws and the states
        _check_memory(8 * n_samples * (2 * D + 1),
                      f"sample(n_samples={n_samples}) with {D} feature(s)",
                      "Draw fewer samples, or draw in parts: pass the last "
                      "state as currstate to continue a sequence.")
        model = self._model(D)
        K = self.n_components
        if currstate is not None:
            if isinstance(currstate, bool) or not isinstance(
                    currstate, numbers.Integral) or not 0 <= currstate < K:
                raise ValueError(
                    f"currstate must be a state index in [0, {K}), got "
                    f"{currstate!r}.")
        rng = check_random_state(self.random_state if random_state is None
                                 else random_state)
        means = model.means
        covs = self.covars_
        # numpy's multivariate_normal: x = z @ (sqrt(s)[:, None] * v) + mean
        # with (u, s, v) = svd(cov) -- precomputed once per state.
        transforms = []
        for k in range(K):
            _, s, v = np.linalg.svd(covs[k])
            transforms.append(np.sqrt(s)[:, None] * v)
        t_cdf = np.cumsum(model.transmat, axis=1)
        states = np.empty(n_samples, dtype=np.int64)
        Z = np.empty((n_samples, D))
        rand = rng.random_sample
        normal = rng.standard_normal
        if currstate is None:
            cdf = np.cumsum(model.startprob)
            currstate = int((cdf > rand()).argmax())
        state = int(currstate)
        for t in range(n_samples):
            if t:
                state = int((t_cdf[state] > rand()).argmax())
            states[t] = state
            Z[t] = normal(D)
        X = np.empty((n_samples, D))
        for k in range(K):
            idx = np.flatnonzero(states == k)
            if idx.size:
                X[idx] = Z[idx] @ transforms[k] + means[k]
        return X, states

    # ------------------------------------------------------------ files
    def save(self, path, metadata=None):
        """Save the model to a versioned JSON file (written atomically).

        Floats are written exactly (``repr``), so :meth:`load` gives
        bit-identical parameters, predictions and scores; no pickle is
        involved.  See :mod:`fastem.io` for the format (``"format":
        "fastem.GaussianHMM"``).

        Parameters
        ----------
        path : str or os.PathLike
        metadata : dict, optional
            JSON-serializable extra information stored with the model.

        Returns
        -------
        str
            The path written.
        """
        from fastem.io import save

        return save(self, path, metadata)

    @classmethod
    def load(cls, path):
        """Load a model written by :meth:`save` (same as ``fastem.load``).

        Every field is checked; a damaged or hand-edited file raises
        :class:`fastem.io.ModelFileError` naming the field.

        Parameters
        ----------
        path : str or os.PathLike

        Returns
        -------
        GaussianHMM
        """
        from fastem.io import load

        return load(path, cls=cls)

    # ------------------------------------------------------ persistence
    def export_state(self):
        """Return the model's parameters and fit record as plain values.

        What :func:`fastem.save` writes: the fields of the ``"fitted"``
        object of the file format (version 1, see :mod:`fastem.io`), before
        JSON encoding.  The parameters are checked as :meth:`predict` checks
        them, so the state is always one :meth:`import_state` accepts.

        Returns
        -------
        dict
            ``startprob`` (n_components,), ``transmat`` (n_components,
            n_components), ``means`` (n_components, n_features) and
            ``covars`` in the covariance type's own layout ((n_components,)
            spherical, (n_components, n_features) diag, (n_components,
            n_features, n_features) full, (n_features, n_features) tied):
            float64 copies; ``n_features_in`` (int); ``feature_names_in``
            (list of str, or None); ``monitor``: ``{"history": list of
            float, "iter": int, "converged": bool}`` from ``monitor_``, or
            None when the model has none (parameters set by hand).

        Raises
        ------
        NotFittedError
            When one of the four parameters is not set.
        ValueError
            When the parameters set are not usable (the message says which
            and why).
        """
        self._check_is_fitted()
        shape = np.shape(self.means_)
        D = int(shape[-1]) if shape else 1
        sp, tm, means, covars, _ = self._checked_params(
            {name: getattr(self, name) for name in
             ("startprob_", "transmat_", "means_", "_covars_")}, D)
        mon = getattr(self, "monitor_", None)
        monitor = None
        if mon is not None and hasattr(mon, "history"):
            history = [float(v) for v in mon.history]
            monitor = {"history": history,
                       "iter": int(getattr(mon, "iter", len(history))),
                       "converged": bool(mon.converged)}
        names = getattr(self, "feature_names_in_", None)
        return {
            "startprob": np.array(sp, dtype=np.float64),
            "transmat": np.array(tm, dtype=np.float64),
            "means": np.array(means, dtype=np.float64),
            "covars": np.array(covars, dtype=np.float64),
            "n_features_in": D,
            "feature_names_in": None if names is None else
            [str(n) for n in names],
            "monitor": monitor,
        }

    def import_state(self, state):
        """Install a state from :meth:`export_state`, after checking all of it.

        Every field is checked before anything is installed (on an error
        the model is unchanged): the shapes against ``n_components`` and
        the covariance type, the probabilities (non-negative, summing to 1),
        the covariances under the rule of the ``covars_`` setter (finite,
        positive; full and tied symmetric positive definite), ``n_features_in``
        and ``feature_names_in`` against the means, the monitor's history,
        and the priors against the number of features.  The running
        statistics of :meth:`partial_fit` are dropped (they belong to the
        previous parameters).

        Parameters
        ----------
        state : dict
            ``startprob``, ``transmat``, ``means``, ``covars`` (required;
            array-likes in :meth:`export_state`'s shapes), and optionally
            ``n_features_in``, ``feature_names_in`` and ``monitor`` (its
            ``history``, ``iter`` and ``converged``; the installed
            ``monitor_`` is a :class:`ConvergenceMonitor` with the model's
            ``tol``, ``n_iter`` and ``verbose``, so ``converged`` follows
            from those).

        Returns
        -------
        self : GaussianHMM

        Raises
        ------
        ValueError
            Whose message starts with the field that is wrong
            (``"startprob: expected a sum of 1, found 0.9"``), or with
            ``"invalid parameter:"`` for a prior that does not fit the
            number of features.  A covariance that is not positive
            definite raises :class:`~fastem.stats.ComponentCollapseError`
            (a ValueError).
        TypeError
            When ``state`` is not a dict, or a constructor parameter has the
            wrong type.
        """
        self._check_parameters()
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict (from export_state()), "
                            f"got {type(state).__name__}.")
        missing = [k for k in _STATE_FIELDS if k not in state]
        if missing:
            raise ValueError(f"the state lacks the field(s) {missing}; "
                             "pass a dict from export_state().")
        K = self.n_components
        ct = self.covariance_type
        sp = _float_array("startprob", state["startprob"])
        if sp.ndim != 1:
            raise ValueError(f"startprob: expected shape ({K},) "
                             f"(n_components={K}), found {sp.shape}")
        if sp.shape[0] != K:
            raise ValueError(f"startprob: {sp.shape[0]} values do not match "
                             f"parameter n_components={K}")
        bad = sp[~(np.isfinite(sp) & (sp >= 0))]
        if bad.size:
            raise ValueError(f"startprob: expected finite non-negative "
                             f"values, found {float(bad[0])!r}")
        if not np.isclose(sp.sum(), 1.0):  # the setter's own tolerance
            raise ValueError(f"startprob: expected a sum of 1, found "
                             f"{float(sp.sum())!r}")
        tm = _float_array("transmat", state["transmat"])
        if tm.shape != (K, K):
            raise ValueError(f"transmat: expected shape ({K}, {K}) "
                             f"(n_components={K}), found {tm.shape}")
        bad = tm[~(np.isfinite(tm) & (tm >= 0))]
        if bad.size:
            raise ValueError(f"transmat: expected finite non-negative "
                             f"values, found {float(bad[0])!r}")
        rows = tm.sum(axis=1)
        badrows = np.flatnonzero(~np.isclose(rows, 1.0))
        if badrows.size:
            r = int(badrows[0])
            raise ValueError(f"transmat: expected rows summing to 1, row {r} "
                             f"sums to {float(rows[r])!r}")
        means = _float_array("means", state["means"])
        if means.ndim >= 1 and means.shape[0] != K:
            raise ValueError(f"means: {means.shape[0]} rows do not match "
                             f"parameter n_components={K}")
        if means.ndim != 2:
            raise ValueError(f"means: expected shape (n_components, "
                             f"n_features), found {means.shape}")
        D = means.shape[1]
        if D < 1:
            raise ValueError("means: expected at least one feature, found "
                             "empty rows")
        if not np.all(np.isfinite(means)):
            raise ValueError("means: expected finite values, found NaN or "
                             "infinity")
        cv = _float_array("covars", state["covars"])
        shape = _covars_shape(ct, K, D)
        if cv.shape != shape:
            raise ValueError(
                f"covars of shape {cv.shape} do not match covariance_type "
                f"{ct!r} with {K} states and {D} features (expected {shape})")
        try:  # GaussianHMM's one rule for usable covariances
            self._check_covars(cv, D)
        except ValueError as e:
            cls = (ComponentCollapseError if isinstance(
                e, ComponentCollapseError) else ValueError)
            raise cls(f"covars: {e}") from None
        n_in = state.get("n_features_in", D)
        if isinstance(n_in, (bool, np.bool_)) or not isinstance(
                n_in, numbers.Integral) or n_in != D:
            raise ValueError(f"n_features_in: expected {D} (the number of "
                             f"columns of means), found {_found(n_in)}")
        names = state.get("feature_names_in")
        if names is not None:
            if not isinstance(names, (list, tuple, np.ndarray)) or \
                    np.ndim(names) != 1 or not all(
                        isinstance(n, str) for n in names):
                raise ValueError(f"feature_names_in: expected None or a list "
                                 f"of {D} strings, found {_found(names)}")
            if len(names) != D:
                raise ValueError(f"feature_names_in: expected None or a list "
                                 f"of {D} strings, found a list of length "
                                 f"{len(names)}")
        monitor = state.get("monitor")
        history = None
        if monitor is not None:
            if not isinstance(monitor, dict):
                raise ValueError(f"monitor: expected a dict (history, iter, "
                                 f"converged) or None, found "
                                 f"{_found(monitor)}")
            history = _float_array("monitor.history",
                                   monitor.get("history", []))
            if history.ndim != 1:
                raise ValueError(f"monitor.history: expected a list of "
                                 f"log-likelihoods, found shape "
                                 f"{history.shape}")
            if not np.all(np.isfinite(history)):
                raise ValueError("monitor.history: expected finite "
                                 "log-likelihoods, found NaN or infinity")
            it = monitor.get("iter", history.size)
            if isinstance(it, (bool, np.bool_)) or not isinstance(
                    it, numbers.Integral) or it != history.size:
                raise ValueError(f"monitor.iter: expected {history.size} (the "
                                 f"length of monitor.history), found "
                                 f"{_found(it)}")
            conv = monitor.get("converged", False)
            if not isinstance(conv, (bool, np.bool_)):
                raise ValueError(f"monitor.converged: expected True or False, "
                                 f"found {_found(conv)}")
        try:  # the priors, now that n_features is known
            self._priors(K, D)
        except (TypeError, ValueError) as e:
            raise ValueError(f"invalid parameter: {e}") from None
        p = {"startprob_": sp, "transmat_": tm, "means_": means,
             "_covars_": cv}
        try:  # what predict checks, all together
            self._validated_model(p, D)
        except ValueError as e:
            raise ValueError(f"invalid model: {e}") from None
        # install (nothing above changed the model)
        self.startprob_ = np.array(sp, dtype=np.float64)
        self.transmat_ = np.array(tm, dtype=np.float64)
        self.means_ = np.array(means, dtype=np.float64)
        self._covars_ = np.array(cv, dtype=np.float64)
        self.n_features = self.n_features_in_ = D
        if names is not None:
            self.feature_names_in_ = np.asarray(list(names), dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        if history is not None:
            mon = ConvergenceMonitor(self.tol, self.n_iter, self.verbose)
            mon.history.extend(float(v) for v in history)
            mon.iter = int(history.size)
            self.monitor_ = mon
        elif hasattr(self, "monitor_"):
            del self.monitor_
        self._online = None
        for name in ("n_batches_", "batch_log_likelihood_"):
            if hasattr(self, name):
                delattr(self, name)
        return self

    # ----------------------------------------------------- model checks
    def get_stationary_distribution(self):
        """Stationary distribution of the states (left eigenvector of transmat_).

        Needs only ``transmat_`` (as hmmlearn's).

        Returns
        -------
        ndarray of shape (n_components,)
        """
        if not hasattr(self, "transmat_"):
            raise not_fitted_error(type(self).__name__)
        K = self.n_components
        _, tm = self._check_probabilities(np.full(K, 1.0 / K), self.transmat_,
                                          K)
        vals, vecs = np.linalg.eig(tm.T)
        vec = np.real_if_close(vecs[:, np.argmax(vals.real)])
        return np.real(vec / vec.sum())

    def _n_fit_scalars_per_param(self, D):
        """Free scalars of each parameter block (hmmlearn's count)."""
        K = self.n_components
        return {"s": K - 1, "t": K * (K - 1), "m": K * D,
                "c": {"spherical": K, "diag": K * D,
                      "full": K * D * (D + 1) // 2,
                      "tied": D * (D + 1) // 2}[self.covariance_type]}

    def n_parameters(self, n_features=None):
        """Free scalar parameters of the model (hmmlearn's count, for BIC/AIC).

        The start distribution, the transitions, the means and the
        covariances, whatever ``params`` says (as hmmlearn counts them).

        Parameters
        ----------
        n_features : int, optional
            Count for this many features; the model then need not be fitted
            (for instance to fill a table of models before fitting them).
            Default: the features of ``means_``.

        Returns
        -------
        int

        Raises
        ------
        NotFittedError
            Without ``n_features``, when ``means_`` is not set.
        """
        if n_features is None:
            if not hasattr(self, "means_"):
                raise not_fitted_error(type(self).__name__)
            shape = np.shape(self.means_)
            D = shape[-1] if shape else 1
        else:
            _check_int("n_features", n_features, 1)
            D = int(n_features)
        if self.covariance_type not in COVARIANCE_TYPES:
            raise ValueError(
                f"covariance_type must be one of {sorted(COVARIANCE_TYPES)}, "
                f"got {self.covariance_type!r}.")
        return int(sum(self._n_fit_scalars_per_param(D).values()))

    def _n_parameters(self):
        # hmmlearn's private name, which its users call
        return self.n_parameters()

    def aic(self, X, lengths=None):
        """Akaike information criterion ``-2 log L + 2 p`` (lower is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        lengths : array-like of int of shape (n_sequences,), optional

        Returns
        -------
        float
        """
        return -2 * self.score(X, lengths) + 2 * self.n_parameters()

    def bic(self, X, lengths=None):
        """Bayesian information criterion ``-2 log L + p log n`` (lower is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        lengths : array-like of int of shape (n_sequences,), optional

        Returns
        -------
        float
        """
        return (-2 * self.score(X, lengths)
                + self.n_parameters() * np.log(len(X)))
