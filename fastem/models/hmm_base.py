"""What every hidden Markov model shares, and what an emission supplies.

:class:`BaseHMM` is everything in an hmmlearn-compatible HMM that does not
depend on the emission distribution: ``startprob_`` / ``transmat_`` and
their Dirichlet priors, the checks of ``lengths``, of ``params`` /
``init_params`` and of the other constructor arguments, the EM run on the
core driver (:func:`fastem.core.driver.run_em` with hmmlearn's
:class:`~fastem.core.monitor.ConvergenceMonitor`) over the sources of whole
sequences (:mod:`fastem.core.sequences`): ``fit`` on arrays and dask arrays,
``fit_chunks``, ``partial_fit``; ``score`` / ``score_samples`` /
``predict_proba`` / ``decode`` (Viterbi or MAP) / ``predict``, ``sample``,
``n_parameters`` / ``aic`` / ``bic``, ``export_state`` / ``import_state`` /
``check_params``, ``save`` / ``load`` and the memory checks.

The E-step runs the parallel forward-backward kernels of
:mod:`fastem.kernels.hmm` on an (N, K) matrix of per-row log-emission
densities (the ``LATTICE`` copies of its templates: :func:`lattice_e_step`);
an emission with a fused kernel path (the Gaussian one, whose block kernels
compute the densities and accumulate the statistics inside the
forward-backward passes) overrides :meth:`BaseHMM._e_step` instead.

The emission interface
----------------------
An HMM with a new emission is one module: a subclass of :class:`BaseHMM`
with hmmlearn's constructor (store the parameters, nothing else) and these
class attributes and methods -- plus a registration line (the lazy export in
``fastem/__init__.py``, the facade :mod:`fastem.hmm`).  :class:`PoissonHMM
<fastem.models.poisson_hmm.PoissonHMM>` is the worked example.

``_EMISSION_PARAMS``
    dict, letter -> attribute: the ``params`` / ``init_params`` letters the
    emission owns and the fitted attribute each one names (``{"l":
    "lambdas_"}``; Gaussian ``{"m": "means_", "c": "_covars_"}``).
``_LETTER_NAMES``
    dict, letter -> word for messages (``{"l": "lambdas"}``).
``_FEATURES_ATTR``
    The attribute whose last axis is the number of features.
``_n_features_of(value)`` / ``_set_n_features(D)`` (optional)
    The number of data columns a parameter implies, and what ``fit``
    records for ``D`` columns (default: ``n_features = n_features_in_ =
    D``).  :class:`CategoricalHMM <fastem.models.categorical_hmm.
    CategoricalHMM>` overrides both: its data is one column of symbols and
    its ``n_features`` counts the symbols, as hmmlearn's.
``_STATE_FIELDS``
    The emission's fields of :meth:`export_state` (``("lambdas",)``).
``_NAN_HINT``
    End of the message for a NaN in a dask array.
``_check_emission_parameters()``
    Check the emission's constructor arguments (clear TypeError/ValueError).
``_emission_priors(K, D)``
    The emission's priors, validated and broadcast (a dict).
``_check_values(X, row_offset)``
    Refuse validated float data outside the emission's support (the message
    names the first bad row, counted from ``row_offset``).
``_check_emission_values(p, D)`` / ``_check_emission(p, D, first, fit_iter)``
    Check the emission parameters in the dict ``p`` (attribute -> array):
    the first raises plain ValueErrors (shapes, finiteness; during ``fit``
    they are prefixed with the EM iteration), the second returns the
    checked parameters ``em`` (any object) for :meth:`_emission_model`.
``_emission_model(em)``
    The kernels' view: ``(code, means, prec, logconst, emission)``; for a
    lattice emission ``code`` is :data:`~fastem.kernels.hmm.LATTICE`, the
    three Gaussian arrays are placeholders of K rows and ``emission`` is
    what ``log_emissions`` reads.
``_lattice_functions()``
    Two module-level (picklable: Dask sends them to the workers) functions:
    ``log_emissions(emission, X) -> (N, K)`` per-row log-densities, and
    ``emission_stats(emission, X, gamma) -> stats`` from the state
    posteriors ``gamma`` (N, K): additive statistics (``a + b``,
    ``scale(f)``, e.g. a :class:`~fastem.families.base.SumStats`) that add
    across sequences, chunks and Dask blocks.  The base runs the
    forward-backward kernels on the log-densities
    (:func:`lattice_sequence_stats`).  An emission with a fused kernel path
    overrides ``_e_step``, ``_stats_function`` (a picklable ``f(model,
    need_stats, want_xi, X, starts) -> HMMStats``) and ``_emission_logb``
    instead.
``_init_emission(p, X, needs_init, rng)``
    Initialize the emission parameters ``needs_init(letter, name, attr)``
    asks for, from the data ``X`` (or a sample of it), into ``p``.
``_emission_m_step(es, model, p, priors, stacklevel)``
    Put the next emission parameters (for the letters in ``params``) into
    ``p`` from the summed statistics ``es.stats`` (with the priors).
``_emission_scalars(D)``
    Free scalars per letter (hmmlearn's count).
``_sample_step(em, state, rng)`` / ``_sample_finish(em, draws, states)``
    One row's random draws in state ``state`` (called in hmmlearn's order,
    interleaved with the state draws, so a seed gives hmmlearn's sample),
    then the rows from all the draws.
``_export_emission(em)`` / ``_import_emission(state, K)``
    The emission's fields as float64 arrays, and back: check the fields
    (messages start with the field name), return ``(p, D)``.

Optional hooks with defaults: ``_check_init_rows(N)`` and
``_check_init_sample(init_size)`` (rows the initialization needs),
``_start_model(p, D)``, ``_recentre(running, model)`` (online statistics
kept about a reference), ``_online_compatible(running, D)``,
``_check_layout()``, ``_install_init(p)`` (hmmlearn's ``_init``),
``_STRING_PARAMS`` (string arguments checked first) and
``_lattice_arrays`` (extra (N, K) arrays of the E-step, for the memory
check).

Files: :meth:`BaseHMM.save` writes :func:`hmm_to_dict` as JSON (``"format":
"fastem.<Class>"``, exact floats), :meth:`BaseHMM.load` reads it back
through :func:`hmm_from_dict` and ``import_state`` (GaussianHMM keeps
:mod:`fastem.io`'s format).
"""

import copy
import json
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
from fastem.core._data import _MAX_ABS
from fastem.core._data import check_magnitude as _check_magnitude
from fastem.core.driver import run_em
from fastem.core.monitor import ConvergenceMonitor
from fastem.core.sequences import (
    SequenceArraySource,
    SequenceChunkSource,
    SequenceDaskSource,
)
from fastem.kernels.hmm import (
    LATTICE,  # noqa: F401  (emission modules import it here)
    _emission_pass,
    _fb_log_seq,
    _fb_pass,
    _grouped_pass,
    _posterior_pass,
    _viterbi_pass,
)
from fastem.models.base import check_int as _check_int
from fastem.models.base import check_random_state

__all__ = ["BaseHMM", "HMMStats", "check_lengths", "hmm_from_dict",
           "hmm_to_dict", "lattice_e_step", "lattice_sequence_stats"]

_log = logging.getLogger("fastem.hmm")  # hmmlearn users look for fastem.hmm

DECODER_ALGORITHMS = ("viterbi", "map")
IMPLEMENTATIONS = ("log", "scaling")
_EMPTY_F = np.empty(0)


# ------------------------------------------------------------------ helpers
@dataclass
class _Model:
    """Validated parameters in the kernels' layout.

    ``code``, ``means``, ``prec``, ``logconst``: the Gaussian layout of the
    fused kernels, or ``LATTICE`` and placeholders of K rows for an emission
    given as log-densities (``emission``: what its ``log_emissions``
    reads).
    """

    code: int
    startprob: np.ndarray
    transmat: np.ndarray
    log_startprob: np.ndarray
    log_transmat: np.ndarray
    means: np.ndarray
    prec: np.ndarray
    logconst: np.ndarray
    emission: object = None


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


def _add(a, b):
    """Return ``a + b``, with None as the empty sum."""
    if a is None:
        return b
    if b is None:
        return a
    return a + b


@dataclass
class HMMStats:
    """Additive sufficient statistics of an HMM's E-step.

    The statistics of a set of sequences are the sum (``+``) of the
    statistics of any partition of the sequences into groups, to rounding:
    that is what lets ``fit_chunks``, Dask and ``partial_fit`` share the
    M-step of ``fit``.  ``None`` is the empty sum (``stats + None`` is
    ``stats``).

    Attributes
    ----------
    loglik : float
        Log-likelihood of the sequences under the E-step's parameters.
    stats : object or None
        Emission statistics: for :class:`~fastem.GaussianHMM` a
        :class:`~fastem.families.gaussian.GaussianStats` (the state
        posteriors fed to the Gaussian accumulator: ``nk``, ``sums`` and
        ``scatter`` around ``stats.ref``, normally the E-step's means;
        statistics around different references are added by re-centring
        the right operand on the left one's reference first, exact algebra,
        :meth:`GaussianStats.shift`); for another emission its own additive
        statistics (a :class:`~fastem.families.base.SumStats`); None when no
        emission parameter is fitted.
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
    stats: object
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
        return HMMStats(self.loglik + other.loglik,
                        _add(self.stats, other.stats),
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
        return HMMStats(self.loglik * f,
                        None if self.stats is None else self.stats.scale(f),
                        self.xi * f, self.start * f, self.n_rows,
                        self.n_sequences)

    def shift(self, new_ref):
        """Return the same statistics with the emission moments around ``new_ref``.

        For Gaussian emission statistics (which are kept about a reference).

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


# ---------------------------------------------------------------- the E-step
def run_e_step(X, starts, model, ws, *, gamma=False, stats=False, xi=False,
               backward=True, out_gamma=None, ref=None, s_rows=None,
               fb_log_seq=None):
    """Run the kernels of one E-step (see :mod:`fastem.kernels.hmm`).

    ``X`` is the data for a fused Gaussian ``model.code``, or the (N, K)
    log-emission matrix for ``LATTICE``; ``ws`` is a :class:`_Workspace`,
    whose plan decides which kernels run; ``fb_log_seq`` is the exact
    log-space fallback (default :func:`fastem.kernels.hmm._fb_log_seq`).

    Returns
    -------
    loglik, nk, sums, scatter, n_rows, xi, start
        ``xi`` the expected transition counts; the statistics as the
        kernels return them (zeros unless ``stats`` and a fused layout).
    """
    K = model.means.shape[0]
    block = _config.BLOCK_ROWS
    code = model.code
    if s_rows is None:
        s_rows = K
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
            block, s_rows, _fb_log_seq if fb_log_seq is None else fb_log_seq)
    return (loglik, nk, sums, scatter, n, model.transmat * xi_acc + fb_xi,
            start)


def _e_step_rows(X, starts, model, ws, gamma, stats, xi, backward, out_gamma,
                 ref, block, s_rows, fb_log_seq):
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
            ll_s, xi_s = fb_log_seq(
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


def lattice_e_step(log_emissions, emission_stats, X, starts, model, ws, *,
                   gamma=False, stats=False, xi=False, backward=True,
                   out_gamma=None, fb_log_seq=None):
    """One E-step of an emission given by its log-densities; return HMMStats.

    ``log_emissions(model.emission, X)`` gives the (N, K) log-densities;
    the forward-backward, posterior and transition passes run on them (the
    ``LATTICE`` kernels); with ``stats``, ``emission_stats(model.emission,
    X, gamma)`` turns the posteriors into the emission's statistics.
    """
    N = X.shape[0]
    K = model.startprob.shape[0]
    logB = np.ascontiguousarray(log_emissions(model.emission, X),
                                dtype=np.float64)
    post = out_gamma
    if stats and (post is None or post.shape[0] == 0):
        post = np.empty((N, K))
    loglik, _, _, _, _, xi_m, start = run_e_step(
        logB, starts, model, ws, gamma=gamma or stats, stats=False, xi=xi,
        backward=backward, out_gamma=post, s_rows=1, fb_log_seq=fb_log_seq)
    est = emission_stats(model.emission, X, post) if stats else None
    return HMMStats(loglik, est, xi_m, start, N, starts.shape[0] - 1)


def lattice_sequence_stats(log_emissions, emission_stats, model, need_stats,
                           want_xi, X, starts):
    """HMMStats of one chunk of whole sequences (module level: picklable).

    The lattice version of :func:`fastem.models.hmm._sequence_stats`, used
    by every fit path of an emission given by its log-densities.
    """
    ws = _Workspace(X.shape[0], model.startprob.shape[0], starts)
    return lattice_e_step(log_emissions, emission_stats, X, starts, model,
                          ws, gamma=True, stats=need_stats, xi=want_xi)


# --------------------------------------------------------------- estimator
class BaseHMM(BaseEstimator):
    """Everything in an hmmlearn-compatible HMM but the emission.

    Not used directly: a subclass adds the emission (see the module
    docstring for the interface; :class:`~fastem.GaussianHMM` and
    :class:`~fastem.models.poisson_hmm.PoissonHMM` are the two).
    """

    _EMISSION_PARAMS = {}
    _LETTER_NAMES = {}
    _FEATURES_ATTR = None
    _STATE_FIELDS = ()
    _NAN_HINT = "and shorten the lengths of their sequences to match"
    # string constructor arguments checked first (name, allowed values)
    _STRING_PARAMS = (("algorithm", list(DECODER_ALGORITHMS)),
                      ("implementation", list(IMPLEMENTATIONS)))
    # (N, K) float arrays the E-step makes besides the workspace
    _lattice_arrays = 2

    # ----------------------------------------------------------- letters
    @classmethod
    def _param_letters(cls):
        return "st" + "".join(cls._EMISSION_PARAMS)

    @classmethod
    def _param_attrs(cls):
        return ("startprob_", "transmat_") + tuple(
            cls._EMISSION_PARAMS.values())

    def _n_features_of(self, value):
        shape = np.shape(value)
        return shape[-1] if shape else 1

    def _set_n_features(self, D):
        # the fitted number of data columns; an emission whose n_features
        # means something else (CategoricalHMM: symbols) overrides this
        self.n_features = self.n_features_in_ = D

    # ------------------------------------------------------------ checks
    def check_params(self, n_features=None):
        """Raise a clear error if a constructor parameter is invalid.

        ``fit`` runs the same checks first; this is for callers that build
        a model without fitting it (:func:`fastem.load`, a configuration
        file, a grid of models).

        Parameters
        ----------
        n_features : int, optional
            With it, the priors are also checked against that many features
            (their shapes may depend on it); without it only what does not
            depend on the data is.

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
            C-contiguous float64 (float32 is converted, as in hmmlearn),
            checked as the emission requires.
        lengths : ndarray of int64 of shape (n_sequences,)

        Raises
        ------
        ValueError
            Naming the first bad row or the bad length (see
            :func:`check_lengths`).
        """
        X = self._validate_X(X)
        return X, np.diff(check_lengths(lengths, X.shape[0]))

    def _check_parameters(self):
        _check_int("n_components", self.n_components, 1)
        for name, allowed in self._STRING_PARAMS:
            value = getattr(self, name)
            if not isinstance(value, str):
                raise ValueError(
                    f"{name} must be one of {allowed}, got {value!r:.80} "
                    f"({type(value).__name__}); pass one of those strings.")
        if not isinstance(self.verbose, (bool, np.bool_, numbers.Integral)):
            raise TypeError(
                f"verbose must be a bool, got {self.verbose!r:.80} "
                f"({type(self.verbose).__name__}); pass True or False.")
        self._check_emission_parameters()
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
        letters = self._param_letters()
        names = {"s": "startprob", "t": "transmat", **self._LETTER_NAMES}
        for name in ("params", "init_params"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise TypeError(
                    f"{name} must be a string of letters from {letters!r}, "
                    f"got {value!r}.")
            extra = sorted(set(value) - set(letters))
            if extra:
                each = [f"'{c}' ({names[c]})" for c in letters]
                raise ValueError(
                    f"{name}={value!r} contains {extra}; use only "
                    f"{', '.join(each[:-1])} and {each[-1]}.")
        check_random_state(self.random_state)
        _config.validate_threads(getattr(self, "n_threads", None))
        decay = getattr(self, "online_decay", 0.6)
        if isinstance(decay, bool) or not isinstance(
                decay, numbers.Real) or not (0.5 < decay <= 1):
            raise ValueError(
                "online_decay must be a float in (0.5, 1] (the step-size "
                "exponent of partial_fit; Cappé & Moulines need > 0.5 for "
                f"convergence), got {decay!r}.")

    def _check_emission_parameters(self):
        """Check the emission's constructor arguments (none by default)."""

    def _check_layout(self):
        """Check what :meth:`n_parameters` needs (nothing by default)."""

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
        return all(hasattr(self, a) for a in self._param_attrs())

    def _params_set(self):
        return {name: getattr(self, name) for name in self._param_attrs()}

    def _model(self, n_features):
        """Validate the parameters set on the model; return a :class:`_Model`."""
        if not self._is_set():
            raise not_fitted_error(type(self).__name__)
        return self._validated_model(self._params_set(), n_features)

    def _validated_model(self, p, D, fit_iter=None):
        """Check the parameters in ``p``; return a :class:`_Model`.

        The same checks for the parameters set by the user, those ``fit``
        starts from, those of every M-step and those ``score``/``predict``/
        ``sample`` use.
        """
        sp, tm, em = self._checked_params(p, D, fit_iter)
        return self._make_model(sp, tm, em)

    def _checked_params(self, p, D, fit_iter=None):
        """Check the parameters in ``p`` (:meth:`_validated_model`'s rule).

        Returns ``(startprob, transmat, em)``: float64 arrays and the
        emission's checked parameters.
        """
        K = self.n_components
        try:
            sp, tm = self._check_probabilities(p["startprob_"], p["transmat_"],
                                               K)
            first = self._check_emission_values(p, D)
        except ValueError as e:
            if fit_iter:
                raise ValueError(
                    f"EM iteration {fit_iter} produced unusable parameters: "
                    f"{e} Rescale X, or use fewer states.") from None
            raise
        em = self._check_emission(p, D, first, fit_iter)
        return sp, tm, em

    def _make_model(self, sp, tm, em):
        code, means, prec, logconst, emission = self._emission_model(em)
        with np.errstate(divide="ignore"):
            lsp = np.log(sp)
            ltm = np.log(tm)
        return _Model(code, np.ascontiguousarray(sp), np.ascontiguousarray(tm),
                      lsp, np.ascontiguousarray(ltm), means, prec, logconst,
                      emission)

    def _check(self):
        """Check the parameters set on the model (hmmlearn's ``_check``).

        Raises
        ------
        ValueError
            Naming the parameter that is missing or unusable.
        """
        self._check_parameters()
        self._check_is_fitted()
        self._model(self._n_features_of(getattr(self, self._FEATURES_ATTR)))

    def _check_is_fitted(self):
        if not self._is_set():
            raise not_fitted_error(type(self).__name__)

    def __sklearn_is_fitted__(self):
        return self._is_set()

    def _validate_X(self, X, n_features=None, row_offset=0):
        """``X`` as a 2-D float array, checked by the emission.

        ``row_offset``: the index of ``X``'s first row in the whole data (a
        chunk's start), so that messages name the row in the data.
        """
        name = type(self).__name__
        if isinstance(X, (list, tuple)):
            try:
                X = np.asarray(X)
            except ValueError:
                sizes = sorted({np.shape(r)[0] if np.ndim(r) else 1
                                for r in X})
                raise ValueError(
                    f"{name} expects X of shape (n_samples, n_features), "
                    "but X is ragged: its items have different lengths "
                    f"{_short(sizes, 4)}. Give every row the same number of "
                    "features; for several sequences, concatenate them "
                    "(np.concatenate(sequences)) and pass their lengths in "
                    "`lengths`.") from None
        X = check_array(X, n_features=n_features, estimator=name,
                        allow_nan=True, row_offset=row_offset)
        if X.dtype != np.float64:
            # float32 is read once into float64 (as hmmlearn does): the HMM
            # kernels compute in float64 anyway, and one dtype means one
            # compiled specialization per kernel instead of two (about 30 s
            # of first-run compilation saved for float32 users).
            X = X.astype(np.float64)
        self._check_values(X, row_offset)
        return X

    def _check_values(self, X, row_offset):
        """Refuse NaN and values beyond 1e150 (the default)."""
        with np.errstate(invalid="ignore"):
            hi, lo = float(X.max()), float(X.min())
        if np.isnan(hi) or np.isnan(lo):
            nan = np.isnan(X)
            rows = np.flatnonzero(nan.any(axis=1))
            name = type(self).__name__
            raise ValueError(
                f"Input X contains NaN: {int(nan.sum())} NaN value(s) in "
                f"{rows.size} row(s), the first in row "
                f"{int(rows[0]) + row_offset}. {name} does not accept "
                "missing values (as hmmlearn): drop those rows (and shorten "
                "the lengths of their sequences to match) or impute them, "
                "e.g. by interpolating within each sequence.")
        if max(hi, -lo) > _MAX_ABS:
            _check_magnitude(X)

    # -------------------------------------------------------- the E-step
    def _e_step(self, X, starts, model, ws, **kwargs):
        """Run one E-step on validated data; return :class:`HMMStats`."""
        kwargs.pop("ref", None)
        log_emissions, emission_stats = self._lattice_functions()
        return lattice_e_step(log_emissions, emission_stats, X, starts, model,
                              ws, **kwargs)

    def _stats_function(self):
        """Picklable ``f(model, need_stats, want_xi, X, starts) -> HMMStats``."""
        return partial(lattice_sequence_stats, *self._lattice_functions())

    def _emission_logb(self, model, X):
        """Return the (N, K) log-emission densities (Viterbi's lattice)."""
        return np.array(self._lattice_functions()[0](model.emission, X),
                        dtype=np.float64, order="C")

    # -------------------------------------------------------------- fit
    def _need_stats(self):
        return any(c in self.params for c in self._EMISSION_PARAMS)

    def fit(self, X, lengths=None):
        """Estimate the model parameters with the Baum-Welch (EM) algorithm.

        Starts from the parameters set on the model, those named in
        ``init_params`` (and those not set) initialized from ``X``, then
        runs at most ``n_iter`` EM iterations, stopping when the gain in
        log-likelihood falls below ``tol`` (``monitor_`` records them).  The
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
            Initialization runs on a uniform sample of 100,000 rows gathered
            to the client (all rows, in order, when there are fewer), seeded
            by ``random_state``.
        lengths : array-like of int of shape (n_sequences,), optional
            Lengths of the sequences in ``X``; must sum to ``n_samples``.
            None means one sequence.

        Returns
        -------
        self
        """
        self._check_parameters()
        if _dask.is_dask_collection(X):
            with _config.threads(self.n_threads):
                self._fit_source(*self._dask_source(X, lengths))
            return self
        X = self._validate_X(X)
        N, D = X.shape
        starts = check_lengths(lengths, N)
        self._check_init_rows(N)
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
            Rows of the sample the initialization runs on: a uniform
            reservoir sample of rows over all the chunks, drawn in the
            counting pass and seeded by ``random_state``.  With at most
            ``init_size`` rows in total the sample is all of them, in order,
            so the fit equals :meth:`fit` on the concatenation even from
            its own initialization.

        Returns
        -------
        self

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
            self._check_init_rows(source.n_rows)
            fn = self._stats_function()

            def stats_fn(model, need_stats, want_xi):
                return source.map_sum(partial(fn, model, need_stats, want_xi))

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
                                    nan_hint=self._NAN_HINT)
        N, D = source.n_rows, source.n_features
        self._check_init_rows(N)
        if self._needs_data_init():
            sample = source.init_sample(check_random_state(self.random_state),
                                        init_size)
        else:
            sample = np.empty((0, D))
        fn = self._stats_function()

        def stats_fn(model, need_stats, want_xi):
            return source.map_sum(partial(fn, model, need_stats, want_xi))

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
        need_stats = self._need_stats()
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
        self._commit(p, D)
        self.monitor_ = mon
        self._online = None  # a full fit restarts online EM

    def _commit(self, p, D):
        for name in self._param_attrs():
            setattr(self, name, p[name])
        self._set_n_features(D)

    def _start_model(self, p, D):
        """Return the validated starting model."""
        return self._validated_model(p, D)

    def _check_fit_memory(self, N, starts):
        K = self.n_components
        ws_rows = _plan_groups(starts) is None
        _check_memory(
            8 * (6 * K * K + (3 * N * K if ws_rows else 0) + 8 * N
                 + self._lattice_arrays * N * K),
            f"Fitting {type(self).__name__}(n_components={K}) to {N} rows",
            "Use fewer states (n_components) or fewer rows.")

    def _check_chunk(self, X, lengths, n_features, row0):
        """Validate one chunk of whole sequences; return ``(X, starts)``."""
        X = self._validate_X(X, n_features, row_offset=row0)
        return X, check_lengths(lengths, X.shape[0])

    def _needs_data_init(self):
        """Whether the initialization reads the data (emission to make)."""
        ip = self.init_params
        return any(c in ip or not hasattr(self, a)
                   for c, a in self._EMISSION_PARAMS.items())

    def _check_init_size(self, init_size):
        _check_int("init_size", init_size, 1)
        self._check_init_sample(init_size)
        return int(init_size)

    def _check_init_sample(self, init_size):
        """Refuse an initialization sample too small (nothing by default)."""

    def _check_init_rows(self, N):
        """Refuse too few rows for the initialization (nothing by default)."""

    # ----------------------------------------------------------- online
    def partial_fit(self, X, lengths=None):
        """Update the model with one batch of sequences by stepwise (online) EM.

        Cappé & Moulines (2009), as :meth:`GaussianMixture.partial_fit
        <fastem.GaussianMixture.partial_fit>`: the running sufficient
        statistics (:class:`HMMStats` per row: emission statistics, expected
        transition counts, start posteriors) are a decayed average, ``S <-
        (1 - g) S + g s(batch) / n_batch`` with ``g = (t + 2) **
        -online_decay`` after ``t`` updates, followed by one M-step.  The
        M-step sees ``S`` times the (equally decayed) average batch size, so
        the priors weigh as in a fit on one batch.

        The first call initializes the model when its parameters are not all
        set (as :meth:`fit` does, per ``init_params``, from this batch); a
        model that is fitted (or loaded, or whose parameters are all set)
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
        self
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
        D = (self._n_features_of(getattr(self, self._FEATURES_ATTR)) or 1) \
            if is_set else None
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
                 for name in self._param_attrs()}
            model = self._validated_model(p, D)
        else:
            self._check_init_rows(N)
            p = self._initial_params(X)
            model = self._start_model(p, D)
            online = None
        if online is not None:
            running = online[0]
            if running.xi.shape != (K, K) or not self._online_compatible(
                    running, D):
                online = None   # the model was changed: start afresh
        es = self._stats_function()(model, self._need_stats(),
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
        running = self._recentre(running, new)
        # commit
        self._commit(p, D)
        self._online = (running, t + 1, n_avg)
        self.n_batches_ = t + 1
        self.batch_log_likelihood_ = es.loglik

    def _online_compatible(self, running, D):
        """Whether running statistics fit the model (emission's shapes)."""
        st = running.stats
        return st is None or all(
            np.shape(v)[-1] == D for k, v in getattr(st, "arrays", {}).items()
            if np.ndim(v) == 2)

    def _recentre(self, running, model):
        """Return running statistics about the new model's reference (if any)."""
        return running

    def _priors(self, K, D):
        """Validate the priors once; return them broadcast for the M-step."""
        em = self._emission_priors(K, D)
        return {
            "startprob": _as_prior("startprob_prior", self.startprob_prior,
                                   (K,), "(n_components,)"),
            "transmat": _as_prior("transmat_prior", self.transmat_prior,
                                  (K, K), "(n_components, n_components)"),
            **em,
        }

    def _init(self, X, lengths=None):
        """Initialize the parameters as hmmlearn's ``_init`` does.

        hmmlearn's signature and effect: the parameters named in
        ``init_params`` (and those not set) are initialized from ``X`` and
        stored on the model, with ``n_features``.  ``lengths`` is checked
        (an int is one sequence) and otherwise unused.  ``fit`` does not
        call this; it uses :meth:`_initial_params`, which leaves the model
        untouched until the fit succeeds.
        """
        self._check_parameters()
        X = self._validate_X(X)
        N, D = X.shape
        if lengths is not None:
            check_lengths(np.atleast_1d(lengths), N)
        self._check_init_rows(N)
        with _config.threads(self.n_threads):
            p = self._initial_params(X)
        self._install_init(p)
        self._set_n_features(D)

    def _install_init(self, p):
        for name in self._param_attrs():
            setattr(self, name, p[name])

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
             for name in self._param_attrs() if hasattr(self, name)}

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
        self._init_emission(p, X, needs_init, rng)
        return p

    def _m_step(self, es, model, p, priors, fit_iter, stacklevel=6):
        """M-step of hmmlearn (with its priors).

        Updates the parameter dict ``p``; returns the next :class:`_Model`.
        """
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
        self._emission_m_step(es, model, p, priors, stacklevel + 1)
        D = self._n_features_of(p[self._FEATURES_ATTR])
        return self._validated_model(p, D, fit_iter=fit_iter)

    # ------------------------------------------------------- inference
    def _prepare(self, X, lengths, n_arrays=1):
        """Validate ``X``, ``lengths`` and the model for inference.

        ``n_arrays`` (n_samples, n_components) float arrays will be made.
        """
        self._check_is_fitted()
        D = self._n_features_of(getattr(self, self._FEATURES_ATTR))
        X = self._validate_X(X, D)
        N = X.shape[0]
        starts = check_lengths(lengths, N)
        K = self.n_components
        rows = _plan_groups(starts) is None
        _check_memory(8 * N * K * (n_arrays + (3 if rows else 0)
                                   + self._lattice_arrays),
                      f"{type(self).__name__}(n_components={K}) inference "
                      f"on {N} rows",
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
        path = np.empty(N, dtype=np.int64)
        seq_lp = np.empty(starts.shape[0] - 1)
        with _config.threads(self.n_threads):
            lat = self._emission_logb(model, X)
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
        D = self._n_features_of(getattr(self, self._FEATURES_ATTR))
        # X, the emission's draws and the states
        _check_memory(8 * n_samples * (2 * D + 1),
                      f"sample(n_samples={n_samples}) with {D} feature(s)",
                      "Draw fewer samples, or draw in parts: pass the last "
                      "state as currstate to continue a sequence.")
        sp, tm, em = self._checked_params(self._params_set(), D)
        K = self.n_components
        if currstate is not None:
            if isinstance(currstate, bool) or not isinstance(
                    currstate, numbers.Integral) or not 0 <= currstate < K:
                raise ValueError(
                    f"currstate must be a state index in [0, {K}), got "
                    f"{currstate!r}.")
        rng = check_random_state(self.random_state if random_state is None
                                 else random_state)
        em = self._sample_setup(em)
        t_cdf = np.cumsum(np.ascontiguousarray(tm), axis=1)
        states = np.empty(n_samples, dtype=np.int64)
        draws = [None] * n_samples
        rand = rng.random_sample
        if currstate is None:
            cdf = np.cumsum(np.ascontiguousarray(sp))
            currstate = int((cdf > rand()).argmax())
        state = int(currstate)
        step = self._sample_step
        for t in range(n_samples):
            if t:
                state = int((t_cdf[state] > rand()).argmax())
            states[t] = state
            draws[t] = step(em, state, rng)
        return self._sample_finish(em, draws, states), states

    def _sample_setup(self, em):
        """Return what :meth:`_sample_step` needs (the checked parameters)."""
        return em

    # ------------------------------------------------------------ files
    def save(self, path, metadata=None):
        """Save the model to a versioned JSON file (written atomically).

        Floats are written exactly (``repr``), so :meth:`load` gives
        bit-identical parameters, predictions and scores; no pickle is
        involved.

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
        return _save_hmm(self, path, metadata)

    @classmethod
    def load(cls, path):
        """Load a model written by :meth:`save`.

        Every field is checked; a damaged or hand-edited file raises
        ``ValueError`` naming the field.

        Parameters
        ----------
        path : str or os.PathLike

        Returns
        -------
        The model.
        """
        return _load_hmm(cls, path)

    # ------------------------------------------------------ persistence
    def export_state(self):
        """Return the model's parameters and fit record as plain values.

        The parameters are checked as :meth:`predict` checks them, so the
        state is always one :meth:`import_state` accepts.

        Returns
        -------
        dict
            ``startprob`` (n_components,), ``transmat`` (n_components,
            n_components), the emission's fields (float64 copies);
            ``n_features_in`` (int); ``feature_names_in`` (list of str, or
            None); ``monitor``: ``{"history": list of float, "iter": int,
            "converged": bool}`` from ``monitor_``, or None when the model
            has none (parameters set by hand).

        Raises
        ------
        NotFittedError
            When a parameter is not set.
        ValueError
            When the parameters set are not usable (the message says which
            and why).
        """
        self._check_is_fitted()
        D = int(self._n_features_of(getattr(self, self._FEATURES_ATTR)))
        sp, tm, em = self._checked_params(self._params_set(), D)
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
            **self._export_emission(em),
            "n_features_in": D,
            "feature_names_in": None if names is None else
            [str(n) for n in names],
            "monitor": monitor,
        }

    def import_state(self, state):
        """Install a state from :meth:`export_state`, after checking all of it.

        Every field is checked before anything is installed (on an error
        the model is unchanged): the shapes against ``n_components``, the
        probabilities (non-negative, summing to 1), the emission's fields,
        ``n_features_in`` and ``feature_names_in``, the monitor's history,
        and the priors against the number of features.  The running
        statistics of :meth:`partial_fit` are dropped (they belong to the
        previous parameters).

        Parameters
        ----------
        state : dict
            ``startprob``, ``transmat`` and the emission's fields (required;
            array-likes in :meth:`export_state`'s shapes), and optionally
            ``n_features_in``, ``feature_names_in`` and ``monitor`` (its
            ``history``, ``iter`` and ``converged``; the installed
            ``monitor_`` is a :class:`ConvergenceMonitor` with the model's
            ``tol``, ``n_iter`` and ``verbose``).

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Whose message starts with the field that is wrong
            (``"startprob: expected a sum of 1, found 0.9"``), or with
            ``"invalid parameter:"`` for a prior that does not fit the
            number of features.
        TypeError
            When ``state`` is not a dict, or a constructor parameter has the
            wrong type.
        """
        self._check_parameters()
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict (from export_state()), "
                            f"got {type(state).__name__}.")
        missing = [k for k in ("startprob", "transmat") + self._STATE_FIELDS
                   if k not in state]
        if missing:
            raise ValueError(f"the state lacks the field(s) {missing}; "
                             "pass a dict from export_state().")
        K = self.n_components
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
        pe, D = self._import_emission(state, K)
        n_in = state.get("n_features_in", D)
        if isinstance(n_in, (bool, np.bool_)) or not isinstance(
                n_in, numbers.Integral) or n_in != D:
            raise ValueError(f"n_features_in: expected {D} (the number of "
                             f"columns of {self._STATE_FIELDS[0]}), found "
                             f"{_found(n_in)}")
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
        p = {"startprob_": sp, "transmat_": tm, **pe}
        try:  # what predict checks, all together
            self._validated_model(p, D)
        except ValueError as e:
            raise ValueError(f"invalid model: {e}") from None
        # install (nothing above changed the model)
        for name in self._param_attrs():
            setattr(self, name, np.array(p[name], dtype=np.float64))
        self._set_n_features(D)
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
        return {"s": K - 1, "t": K * (K - 1), **self._emission_scalars(D)}

    def n_parameters(self, n_features=None):
        """Free scalar parameters of the model (hmmlearn's count, for BIC/AIC).

        The start distribution, the transitions and the emission
        parameters, whatever ``params`` says (as hmmlearn counts them).

        Parameters
        ----------
        n_features : int, optional
            Count for this many features; the model then need not be fitted
            (for instance to fill a table of models before fitting them).
            Default: the features of the fitted emission parameters.

        Returns
        -------
        int

        Raises
        ------
        NotFittedError
            Without ``n_features``, when the model is not fitted.
        """
        if n_features is None:
            if not hasattr(self, self._FEATURES_ATTR):
                raise not_fitted_error(type(self).__name__)
            D = self._n_features_of(getattr(self, self._FEATURES_ATTR))
        else:
            _check_int("n_features", n_features, 1)
            D = int(n_features)
        self._check_layout()
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


# ---------------------------------------------------------------- files
FORMAT_VERSION = 1


def _json_value(v):
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (np.floating, float)):
        v = float(v)
        return v if np.isfinite(v) else repr(v)
    if isinstance(v, np.integer):
        return int(v)
    return v


def hmm_to_dict(model, metadata=None):
    """Return ``model`` as a JSON-ready dict (constructor and export_state).

    The format of HMMs other than :class:`~fastem.GaussianHMM` (which
    :mod:`fastem.io` writes): ``{"format": "fastem.<Class>",
    "format_version": 1, "fastem_version": ..., "params": {...},
    "fitted": export_state() or null, "metadata": {...}}``; arrays are
    nested lists, non-finite floats the strings ``"inf"``, ``"-inf"``,
    ``"nan"``.

    Parameters
    ----------
    model : BaseHMM
    metadata : dict, optional

    Returns
    -------
    dict
    """
    from fastem import __version__

    params = {k: _json_value(np.asarray(v) if isinstance(v, (list, tuple))
                             else v)
              for k, v in model.get_params().items()}
    fitted = None
    if model.__sklearn_is_fitted__():
        st = model.export_state()
        fitted = {k: _json_value(v) for k, v in st.items()}
        if fitted.get("monitor") is not None:
            fitted["monitor"] = {k: _json_value(v) for k, v in
                                 fitted["monitor"].items()}
    return {"format": f"fastem.{type(model).__name__}",
            "format_version": FORMAT_VERSION, "fastem_version": __version__,
            "params": params, "fitted": fitted,
            "metadata": dict(metadata or {})}


def hmm_from_dict(d, cls, where="the model"):
    """Rebuild a model of class ``cls`` from :func:`hmm_to_dict`'s output.

    Every field is checked (the constructor parameters by ``check_params``,
    the fitted state by ``import_state``).

    Parameters
    ----------
    d : dict
    cls : type
        A :class:`BaseHMM` subclass; the dict's ``"format"`` must name it.
    where : str
        How messages name the source (a path).

    Returns
    -------
    BaseHMM

    Raises
    ------
    ValueError
        Naming the field that is wrong.
    """
    want = f"fastem.{cls.__name__}"
    fmt = d.get("format") if isinstance(d, dict) else None
    if fmt != want:
        raise ValueError(f"{where}: expected \"format\" {want!r}, found "
                         f"{fmt!r}; load it with the class the file holds.")
    if d.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{where}: unsupported format_version "
                         f"{d.get('format_version')!r} (this fastem reads "
                         f"{FORMAT_VERSION}).")
    params = d.get("params")
    if not isinstance(params, dict):
        raise ValueError(f"{where}: \"params\" must be an object.")
    known = set(cls().get_params())
    kwargs = {}
    for k, v in params.items():
        if k not in known:
            continue    # a parameter this version does not have
        if isinstance(v, str) and v in ("inf", "-inf", "nan"):
            v = float(v)
        elif isinstance(v, list):
            v = np.asarray(v, dtype=np.float64)
        kwargs[k] = v
    model = cls(**kwargs)
    try:
        model.check_params()
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: invalid parameter: {e}") from None
    fitted = d.get("fitted")
    if fitted is not None:
        if not isinstance(fitted, dict):
            raise ValueError(f"{where}: \"fitted\" must be an object or "
                             "null.")
        try:
            model.import_state(fitted)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{where}: {e}") from None
    return model


def _save_hmm(model, path, metadata=None):
    """Write :func:`hmm_to_dict` to ``path`` as JSON, atomically."""
    d = hmm_to_dict(model, metadata)
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            json.dump(d, f, indent=1, allow_nan=False)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def _load_hmm(cls, path):
    """Read a file of :func:`_save_hmm`; every field checked."""
    with open(os.fspath(path)) as f:
        try:
            d = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not a fastem model file ({e}).") \
                from None
    return hmm_from_dict(d, cls, where=str(path))
