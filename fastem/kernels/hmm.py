"""Private Numba kernels of the Gaussian hidden Markov model.

Arrays and scalars in, arrays out; no validation (that is :mod:`fastem.hmm`'s
job).  ``K`` states, ``D`` features, ``N`` rows in total, ``S`` sequences;
sequence ``s`` is rows ``starts[s]:starts[s + 1]``.  Emission parameters use
the layouts of :mod:`fastem.kernels.gaussian` (``code``, ``means``, ``prec``,
``logconst = logdet - D/2 log(2 pi)``, no mixing weights).

Emission densities are stored *shifted*: ``B[t, k] = exp(logB[t, k] - m_t)``
with ``m_t = max_k logB[t, k]`` (so ``max_k B[t, k] = 1``), computed by the
mixture's vectorized block kernel (``_t_block_logp`` of
:mod:`fastem.kernels.gaussian`).

Two ways to run one Baum-Welch E-step, chosen from the lengths only:

* Long sequences (one, or a few): three passes.

  1. :func:`_emission_pass` -- ``B`` and ``m`` for all rows, parallel over
     fixed chunks of rows (sequence boundaries do not matter).
  2. :func:`_fb_pass` -- parallel over 2 S independent tasks: the scaled
     forward recursion of every sequence and, concurrently, its backward
     recursion (each scales its own vectors, so neither waits for the other:
     a single long sequence still uses two threads).
  3. :func:`_posterior_pass` -- parallel over the row chunks again:
     posteriors, expected transition counts, start posteriors, the
     log-likelihood and the Gaussian sufficient statistics, accumulated by
     the mixture's own accumulator (``_t_block_accumulate``).

* Many short sequences: :func:`_grouped_pass`, one parallel pass over fixed
  groups of consecutive sequences; each task does all of the above for its
  sequences, on lattices the size of one sequence (which stay in cache).

Both use the same block helpers (:func:`_t_emit_block`,
:func:`_t_post_block`) and recursions (:func:`_forward_scaled`,
:func:`_backward_scaled`).  Decoding: :func:`_emission_pass` (unshifted
log-densities), then :func:`_viterbi_pass`, parallel over sequences.

Parallel passes are serial ``nogil`` workers on a work queue (as the
mixture's, see CONTRIBUTING): a worker (``_t_emission_worker``,
:func:`_fb_worker`, ``_t_posterior_worker``, ``_t_grouped_worker``,
:func:`_viterbi_worker`) takes the next chunk, task, group or sequence from
a shared atomic counter (``_fm.fetch_add``) until none is left and writes
that item's outputs or partials to the item's own slot;
:func:`fastem._config.run_workers` runs one copy per thread of the
caller's setting, and the partials are added by :func:`_reduce_hmm` in
slot order.  (A ``prange`` version cost several times the compile time.)

Kernels compiled per layout: every kernel that calls the mixture's block
kernels is written once, as a ``_t_`` template reading the global
``LAYOUT`` (plain ``if`` on it, never a conditional expression), and
:func:`_specialize` builds one lazily compiled, separately cached
dispatcher per layout (``_SPECIALIZED[code]["_t_posterior_worker"]`` is
``_posterior_worker_diag`` for ``code = DIAG``), whose globals hold that
layout's ``LAYOUT``, the mixture's dispatchers of that layout
(``_t_block_logp``, ``_t_block_accumulate``) and this module's templates of
that layout: a fit with one covariance type compiles that layout alone.
The entry points the estimator calls -- :func:`_emission_pass`,
:func:`_fb_pass`, :func:`_posterior_pass`, :func:`_grouped_pass`,
:func:`_fb_log_seq`, :func:`_viterbi_pass` -- are plain Python functions
taking the layout ``code`` first where it matters.

Why scaled rather than log-space recursions: the recursions are the only
sequential part of the E-step, and in scaled form they are pure multiply-adds
(``K^2`` per step, no ``exp``/``log``), while the log-space form needs ``K^2``
exponentials per step.  The usual weakness of scaling -- the frame
likelihoods underflow -- is removed by the per-row shift ``m_t``.  A
normalizer can still underflow when the model all but forbids the observed
data (below ``TINY``); such a sequence is redone exactly in log space by
:func:`_fb_log_seq`, whose results are written back in the same format
(``alpha = gamma``, ``beta = 1``, ``c = 1``, ``m = 0``) so the posterior code
treats it like any other.

Scaling conventions (lazy: a row is rescaled only when its sum leaves
``[RESCALE_LO, RESCALE_HI]``, and the forward rows always at a sequence's
first and last row): ``alpha[t]`` is the forward vector of the shifted model
divided by ``prod_{u <= t} c[u]``, with ``c[u]`` the divisor applied at row
``u`` (1 when none), so that ``log p(x) = sum_t log c_t + m_t``; ``beta[t]`` is
the backward vector up to any per-row scale.  Then ``gamma_t = alpha_t *
beta_t / g_t`` with ``g_t = sum_k alpha_t beta_t``, and the expected
transition ``xi_t(i, j) = alpha_t(i) A_ij B_{t+1}(j) beta_{t+1}(j) / (c_{t+1}
g_{t+1})`` (its sum over ``i, j`` is 1 whatever the row scales).

Determinism: chunks and groups depend only on ``N`` and the lengths, partials
are reduced in chunk (group) order, and the recursions of a sequence run on
one thread (whichever one takes it).  Results do not depend on the thread
count.
"""

import math

import numpy as np
from numba import njit

from fastem._config import JIT, JIT_NO_REASSOC, run_workers
from fastem.kernels import fastmath as _fm
from fastem.kernels import partials as _partials
from fastem.kernels.gaussian import (
    _BY_QUAD as _MIXTURE_BY_QUAD,
)
from fastem.kernels.gaussian import (
    _SPECIALIZED as _MIXTURE_SPECIALIZED,
)
from fastem.kernels.gaussian import (
    FULL,
    LAYOUT_NAMES,
    TIED,
    WIDE_TRI_MAX_D,
    _empty_aligned,
    _load_block,
    _t_block_accumulate,
    _t_block_logp,
)
from fastem.kernels.templates import layout_template, specialize

# A forward/backward normalizer (or a posterior normalizer g_t) below this
# sends the sequence to the exact log-space path.  It leaves ~18 orders of
# magnitude above the smallest normal double, so every term that matters in
# such a sum is a normal number.
TINY = 1e-290
# Lazy rescaling bounds of the recursions (see _forward_scaled).
RESCALE_LO = 1e-30
RESCALE_HI = 1e30

# The layout a template is compiled for (see :func:`_specialize`; this
# module-level value is never compiled).
LAYOUT = -1
# Whether the layout's scatter is square, (D, D): full and tied.
SQUARE = False
_TEMPLATES = []
# The mixture kernels the templates call, by their template names (imported
# above for the names only): each specialization's globals hold that
# layout's dispatchers instead.
_MIXTURE_TEMPLATES = tuple(f.__name__ for f in (
    _t_block_logp, _t_block_accumulate))


def _layout_template(options):
    """Register a ``_t_`` template, compiled per layout with ``options``."""
    return layout_template(_TEMPLATES, options)


def _specialize():
    """Compile nothing; create every template's dispatcher for every layout.

    :func:`fastem.kernels.templates.specialize` over this module's globals,
    one variant per Gaussian layout -- its own ``LAYOUT`` and ``SQUARE``,
    the mixture's dispatchers of that layout under their template names
    (``_t_block_logp``, ...) -- and one more, ``LATTICE`` (suffix
    ``_lattice``), which runs the same templates on a precomputed (N, K)
    log-emission matrix passed as ``X`` (any emission): its
    ``_t_emit_block`` is :func:`_lattice_emit_block` (copy, shifted or
    not), and the Gaussian block kernels are stubs never reached (the
    statistics pass is called with ``want_stats`` False).

    Returns
    -------
    list of dict
        Per layout code (``LATTICE`` last), template name -> that layout's
        dispatcher.
    """
    variants = []
    for code, lname in enumerate(LAYOUT_NAMES):
        overrides = {"LAYOUT": code, "SQUARE": code in (FULL, TIED)}
        for name in _MIXTURE_TEMPLATES:
            overrides[name] = _MIXTURE_SPECIALIZED[code][name]
        variants.append((lname, overrides, {}))
    variants.append(("lattice", {
        "LAYOUT": LATTICE, "SQUARE": False, "_t_block_logp": _lattice_stub,
        "_t_block_accumulate": _lattice_stub, "_load_block": _lattice_stub},
        {_t_emit_block: _lattice_emit_block}))
    return specialize(_TEMPLATES, globals(), variants)


# A pseudo-layout after the four Gaussian ones: the emissions are given as
# an (N, K) matrix of log-densities (any emission; see _specialize).
LATTICE = len(LAYOUT_NAMES)


@njit(**JIT)
def _lattice_stub(*args):
    """Stands for the Gaussian block kernels in the ``LATTICE`` copies."""
    return None


def _lattice_emit_block(X, x0, nb, means, prec, logconst, shifted, out, m,
                        o0, xt, dt, lp, t, q, mx):
    """``_t_emit_block`` of the ``LATTICE`` copies: ``X`` is log-densities.

    Rows ``x0 .. x0 + nb`` of the (N, K) log-emission matrix ``X`` go to
    ``out`` rows ``o0 ..``, shifted as :func:`_t_emit_block` does (the same
    arithmetic: ``exp(logB - max_k logB)``, 0 and ``m = -inf`` for a row
    with no finite density) or copied as they are.
    """
    K = X.shape[1]
    if shifted:
        for i in range(nb):
            v = X[x0 + i, 0]
            for k in range(1, K):
                v = max(v, X[x0 + i, k])
            m[o0 + i] = v
            sh = v if (v > -np.inf and v < np.inf) else 0.0
            for k in range(K):
                out[o0 + i, k] = _fm.exp(X[x0 + i, k] - sh)
    else:
        for i in range(nb):
            for k in range(K):
                out[o0 + i, k] = X[x0 + i, k]


# ------------------------------------------------------------ block helpers
@_layout_template(JIT)
def _t_emit_block(X, x0, nb, means, prec, logconst, shifted, out, m, o0,
                  xt, dt, lp, t, q, mx):
    """Write the emission log-densities of a block of rows.

    X rows ``x0 .. x0 + nb`` go to ``out`` rows ``o0 ..``.
    ``shifted``: ``out[o, k] = exp(logB - m[o])`` with ``m[o] = max_k logB``
    (a row with no finite density gets ``out = 0``, ``m = -inf``); otherwise
    ``out[o, k] = logB`` and ``m`` is not touched.
    """
    _fm.inline_into_callers()
    _fm.wide_simd()
    K = means.shape[0]
    _load_block(X, x0, nb, xt)
    _t_block_logp(xt, nb, means, prec, logconst, lp, dt, t, q)
    if shifted:
        for i in range(nb):
            mx[i] = lp[0, i]
        for k in range(1, K):
            for i in range(nb):
                mx[i] = max(mx[i], lp[k, i])
        for i in range(nb):
            v = mx[i]
            m[o0 + i] = v
            # -inf - -inf would be NaN: shift by 0, every exp below is 0.
            q[i] = v if (v > -np.inf and v < np.inf) else 0.0
        for k in range(K):
            for i in range(nb):
                lp[k, i] = _fm.exp(lp[k, i] - q[i])
    for i in range(nb):
        for k in range(K):
            out[o0 + i, k] = lp[k, i]


@_layout_template(JIT)
def _t_post_block(X, x0, r0, nb, n_rows, alpha, beta, B, c, m, nv, sf,
                  okr, ref, want_gamma, want_stats, want_xi, out_gamma, g0,
                  xt, dt, wd, at, lp, hh, ginv, wr, wb, nk, sums, scatter,
                  xi, st):
    """Add the posterior contributions of a block of rows.

    Lattice rows ``r0 .. r0 + nb`` (X rows ``x0 ..``; ``out_gamma`` rows
    ``g0 ..``).  Per row ``i``: ``nv[i]`` 1 if the next row belongs to the same (scaled)
    sequence, ``sf[i]`` 1 on a sequence's first row, ``okr[i]`` 1 if the
    sequence went through the scaled recursions.  Adds to ``xi`` the
    transition counts divided by the transition matrix, to ``st`` the start
    posteriors, to ``nk, sums, scatter`` the Gaussian statistics.

    Returns
    -------
    loglik : float
        ``sum log c_t + m_t`` over the rows.
    first_bad : int
        First row (block-relative) of a scaled sequence whose posterior
        normalizer underflowed, or -1.
    """
    _fm.inline_into_callers()
    _fm.wide_simd()
    K = alpha.shape[1]
    acc = 0.0
    for i in range(nb):
        acc += _fm.log(c[r0 + i]) + m[r0 + i]
    first_bad = -1
    if not (want_gamma or want_xi):
        return acc, first_bad
    # Tiles of alpha and alpha * beta, with the next row appended.
    ne = nb + 1 if r0 + nb < n_rows else nb
    for i in range(ne):
        for k in range(K):
            a_ = alpha[r0 + i, k]
            at[k, i] = a_
            lp[k, i] = a_ * beta[r0 + i, k]
    for i in range(ne):
        ginv[i] = 0.0
    for k in range(K):
        for i in range(ne):
            ginv[i] += lp[k, i]
    for i in range(ne):
        if not ginv[i] >= TINY:  # rare: keeps the division loop branch-free
            if i < nb and okr[i] != 0.0 and first_bad < 0:
                first_bad = i
            if not ginv[i] > 0.0:
                ginv[i] = 1.0
    for i in range(ne):
        ginv[i] = 1.0 / ginv[i]
    if want_xi:
        # hh[j, i] = B_{t+1} beta_{t+1} / (c_{t+1} g_{t+1}) for t = r0 + i
        for i in range(nb):
            wr[i] = ginv[i + 1] / c[r0 + i + 1] if nv[i] != 0.0 else 0.0
        for i in range(nb):
            if nv[i] != 0.0:
                r1 = r0 + i + 1
                for k in range(K):
                    hh[k, i] = B[r1, k] * beta[r1, k]
            else:
                for k in range(K):
                    hh[k, i] = 0.0
        for k in range(K):
            for i in range(nb):
                hh[k, i] *= wr[i]
                if nv[i] == 0.0:
                    at[k, i] = 0.0
        for k in range(K):
            for j in range(K):
                s = 0.0
                for i in range(nb):
                    s += at[k, i] * hh[j, i]
                xi[k, j] += s
    if want_gamma:
        for k in range(K):
            for i in range(nb):
                lp[k, i] *= ginv[i]
        for i in range(nb):
            if sf[i] != 0.0:
                for k in range(K):
                    st[k] += lp[k, i]
        if out_gamma.shape[0] > 0:
            for i in range(nb):
                for k in range(K):
                    out_gamma[g0 + i, k] = lp[k, i]
        if want_stats:
            _load_block(X, x0, nb, xt)
            _t_block_accumulate(xt, nb, lp, wb, ref, ref, nk, sums,
                                scatter, dt, wd, wr)
    return acc, first_bad


# ------------------------------------------------------------- pass 1: emissions
@_layout_template(JIT)
def _t_emission_worker(next_chunk, X, means, prec, logconst, n_chunks, block,
                       shifted, out, m):
    """Write the emissions of the queue's row chunks (:func:`_t_emit_block`).

    Serial (``nogil``) worker, run on the caller's threads by
    :func:`_emission_pass`: each copy takes the next chunk from the shared
    counter ``next_chunk`` until none is left.  Every row is written by
    exactly one chunk, so the result does not depend on who computed it.
    """
    _fm.wide_simd()
    if _fm.fetch_add(next_chunk, 0) >= n_chunks:
        return  # queue empty: skip the scratch allocations
    N, D = X.shape
    K = means.shape[0]
    # 64-byte aligned rows of whole cache lines, for the micro-kernels
    xt = _empty_aligned(D, block + (-block) % 8, means)
    dt = np.empty((D, block))
    lp = np.empty((K, block))
    t = np.empty(block)
    q = np.empty(block)
    mx = np.empty(block)
    while True:
        ch = _fm.fetch_add(next_chunk, 1)
        if ch >= n_chunks:
            break
        start = ch * N // n_chunks
        stop = (ch + 1) * N // n_chunks
        for b0 in range(start, stop, block):
            nb = min(block, stop - b0)
            _t_emit_block(X, b0, nb, means, prec, logconst, shifted, out,
                          m, b0, xt, dt, lp, t, q, mx)


# ------------------------------------------------------ pass 2: the recursions
@njit(**JIT_NO_REASSOC)
def _forward_scaled(a, b, startprob, transmat, B, alpha, c):
    """Scaled forward recursion of rows ``a:b``; False on underflow.

    Rescaling is lazy: a row is normalized only when its sum leaves
    ``[RESCALE_LO, 1]`` (and always at the first and last row of the
    sequence), with ``c[t]`` the divisor (1 when none); this takes the
    division off the recursion's critical path.

    ``alpha[t, j] = B[t, j] sum_i alpha[t - 1, i] A[i, j]`` is computed for
    four states ``j`` at a time: four independent chains of multiply-adds
    sharing each load of ``alpha[t - 1, i]``.  Every sum runs in index
    order (compiled without 'reassoc', so the order does not depend on how
    LLVM vectorizes).  The previous form, a loop over ``i`` per state ``j``,
    was front-end bound for small K, and its speed depended on where the
    loop landed in memory (the same machine code ran 1.3x slower in one
    build than in another, K = 4); this one measured 12.0 -> 8.4 ns per row
    at K = 4 and 430-560 -> 215 at K = 32 (one thread).
    """
    _fm.inline_into_callers()
    K = startprob.shape[0]
    K4 = K - K % 4
    s = 0.0
    for k in range(K):
        v = startprob[k] * B[a, k]
        alpha[a, k] = v
        s += v
    if not s >= TINY:
        return False
    c[a] = s
    inv = 1.0 / s
    for k in range(K):
        alpha[a, k] *= inv
    last = b - 1
    for t in range(a + 1, b):
        s = 0.0
        for j0 in range(0, K4, 4):
            acc0 = 0.0
            acc1 = 0.0
            acc2 = 0.0
            acc3 = 0.0
            for i in range(K):
                x = alpha[t - 1, i]
                acc0 += x * transmat[i, j0]
                acc1 += x * transmat[i, j0 + 1]
                acc2 += x * transmat[i, j0 + 2]
                acc3 += x * transmat[i, j0 + 3]
            v0 = acc0 * B[t, j0]
            v1 = acc1 * B[t, j0 + 1]
            v2 = acc2 * B[t, j0 + 2]
            v3 = acc3 * B[t, j0 + 3]
            alpha[t, j0] = v0
            alpha[t, j0 + 1] = v1
            alpha[t, j0 + 2] = v2
            alpha[t, j0 + 3] = v3
            s += v0
            s += v1
            s += v2
            s += v3
        for j in range(K4, K):
            acc = 0.0
            for i in range(K):
                acc += alpha[t - 1, i] * transmat[i, j]
            v = acc * B[t, j]
            alpha[t, j] = v
            s += v
        if s < RESCALE_LO or t == last:
            if not s >= TINY:
                return False
            c[t] = s
            inv = 1.0 / s
            for j in range(K):
                alpha[t, j] *= inv
        else:
            c[t] = 1.0
    return True


@njit(**JIT)
def _backward_scaled(a, b, transmat, B, beta):
    """Backward recursion of rows ``a:b`` (lazily rescaled, any row scale)."""
    _fm.inline_into_callers()
    K = transmat.shape[0]
    for k in range(K):
        beta[b - 1, k] = 1.0
    for t in range(b - 2, a - 1, -1):
        s = 0.0
        for i in range(K):
            acc = 0.0
            for j in range(K):
                acc += transmat[i, j] * (B[t + 1, j] * beta[t + 1, j])
            beta[t, i] = acc
            s += acc
        if s < RESCALE_LO or s > RESCALE_HI:
            if not s >= TINY:
                return False
            inv = 1.0 / s
            for i in range(K):
                beta[t, i] *= inv
    return True


@njit(**JIT)
def _fb_worker(next_task, starts, startprob, transmat, B, alpha, c, beta, okf,
               okb, n_tasks):
    """Run the recursions of the queue's tasks (see :func:`_fb_pass`).

    Task ``s < S`` is sequence ``s``'s forward recursion, task ``S + s`` its
    backward one; each recursion runs on the thread that took it.
    """
    S = starts.shape[0] - 1
    while True:
        task = _fm.fetch_add(next_task, 1)
        if task >= n_tasks:
            break
        if task < S:
            ok = _forward_scaled(starts[task], starts[task + 1], startprob,
                                 transmat, B, alpha, c)
            okf[task] = 1 if ok else 0
        else:
            s = task - S
            ok = _backward_scaled(starts[s], starts[s + 1], transmat, B, beta)
            okb[s] = 1 if ok else 0


def _fb_pass(starts, startprob, transmat, B, alpha, c, beta, okf, okb,
             backward):
    """Forward (and, if ``backward``, backward) recursions of all sequences.

    Tasks ``0..S-1`` are forward recursions, ``S..2S-1`` backward ones; they
    are independent, so two threads work even on a single sequence (each
    recursion runs on one thread, :func:`_fb_worker`).  ``okf[s]`` /
    ``okb[s]`` are set to 0 where a recursion underflowed.
    """
    S = starts.shape[0] - 1
    n_tasks = 2 * S if backward else S
    run_workers(_fb_worker, (np.zeros(1, np.int64), starts, startprob,
                             transmat, B, alpha, c, beta, okf, okb, n_tasks),
                n_tasks)


# ------------------------------------------------------- exact log-space path
@njit(**JIT)
def _lse(v, n):
    mx = v[0]
    for k in range(1, n):
        mx = max(mx, v[k])
    if not (mx > -np.inf and mx < np.inf):
        return mx
    acc = 0.0
    for k in range(n):
        acc += math.exp(v[k] - mx)
    return math.log(acc) + mx


@_layout_template(JIT)
def _t_fb_log_seq(X, a, b, log_startprob, log_transmat, means, prec,
                  logconst, block, alpha, beta, c, m, off):
    """Forward-backward of X rows ``a:b`` in log space (the exact fallback).

    Recomputes the emission log-densities (the shifted ``B`` may have flushed
    terms that matter here), then writes ``alpha = gamma``, ``beta = 1``,
    ``c = 1``, ``m = 0`` into lattice rows ``off .. off + b - a``.

    Returns
    -------
    loglik : float
        ``log p(x_a..x_{b-1})`` (``-inf`` if the model forbids the sequence).
    xi : ndarray (K, K)
        Expected transition counts of the sequence.
    """
    _fm.inline_into_callers()
    D = X.shape[1]
    K = means.shape[0]
    L = b - a
    logB = np.empty((L, K))
    # 64-byte aligned rows of whole cache lines, for the micro-kernels
    xt = _empty_aligned(D, block + (-block) % 8, means)
    dt = np.empty((D, block))
    lp = np.empty((K, block))
    tb = np.empty(block)
    q = np.empty(block)
    mx = np.empty(block)
    for r0 in range(0, L, block):
        nb = min(block, L - r0)
        # np.bool_/np.int64 (not bare literals): the callee's one compiled
        # specialization serves every caller (a literal argument would
        # compile it again, for that value)
        _t_emit_block(X, a + r0, nb, means, prec, logconst, np.bool_(False),
                      logB, mx, r0, xt, dt, lp, tb, q, mx)
    fwd = np.empty((L, K))
    bwd = np.empty((L, K))
    buf = np.empty(K)
    for k in range(K):
        fwd[0, k] = log_startprob[k] + logB[0, k]
    for t in range(1, L):
        for j in range(K):
            for i in range(K):
                buf[i] = fwd[t - 1, i] + log_transmat[i, j]
            fwd[t, j] = _lse(buf, K) + logB[t, j]
    for k in range(K):
        bwd[L - 1, k] = 0.0
    for t in range(L - 2, -1, -1):
        for i in range(K):
            for j in range(K):
                buf[j] = log_transmat[i, j] + logB[t + 1, j] + bwd[t + 1, j]
            bwd[t, i] = _lse(buf, K)
    for k in range(K):
        buf[k] = fwd[L - 1, k]
    ll = _lse(buf, K)
    xi = np.zeros((K, K))
    for t in range(L):
        for k in range(K):
            buf[k] = fwd[t, k] + bwd[t, k]
        z = _lse(buf, K)
        for k in range(K):
            alpha[off + t, k] = math.exp(buf[k] - z)
            beta[off + t, k] = 1.0
        c[off + t] = 1.0
        m[off + t] = 0.0
        if t + 1 < L and ll > -np.inf:
            for i in range(K):
                for j in range(K):
                    xi[i, j] += math.exp(fwd[t, i] + log_transmat[i, j]
                                         + logB[t + 1, j] + bwd[t + 1, j] - ll)
    return ll, xi


# --------------------------------------------------- pass 3: posteriors, stats
def _reduce_hmm(code, *parts):
    """Sum per-chunk (or per-group) partials in slot order (deterministic).

    ``nk, sums, scatter, loglik, n_rows, xi, start, xi_fb``, each summed
    over its first axis in NumPy (:mod:`fastem.kernels.partials`: nothing
    to compile; as a numba kernel per layout this reduction cost about 1 s
    of CPU on a cold cache); the upper triangle of a full/tied scatter is
    mirrored.  ``xi_fb`` is zeros (K, K) when not given.
    """
    out = list(_partials.reduce_partials(*parts))
    if len(out) == 7:
        K = parts[0].shape[1]
        out.append(np.zeros((K, K)))
    if code in (FULL, TIED):
        _partials.mirror_upper(out[2])
    return tuple(out)


def _hmm_partials(n, K, D, s_rows, sd1):
    """Return zeroed per-chunk (or per-group) partials.

    ``nk, sums, scatter, loglik, n_rows, xi, start, xi_fb``, each with a
    leading axis of ``n``.
    """
    return (np.zeros((n, K)), np.zeros((n, K, D)), np.zeros((n, s_rows, sd1, D)),
            np.zeros(n), np.zeros(n), np.zeros((n, K, K)), np.zeros((n, K)),
            np.zeros((n, K, K)))


@_layout_template(JIT)
def _t_posterior_worker(next_chunk, X, starts, ok, alpha, beta, B, c, m, ref,
                        n_chunks, block, want_gamma, want_stats, want_xi,
                        out_gamma, bad, p_nk, p_sums, p_scatter, p_ll, p_ws,
                        p_xi, p_start):
    """Add up the posteriors and statistics of the queue's row chunks.

    Serial (``nogil``) worker of :func:`_posterior_pass`, run on the
    caller's threads: each copy takes the next chunk from the shared counter
    ``next_chunk`` and writes the chunk's partials to its own slot ``ch`` of
    ``p_*`` (whichever thread computed it); they are reduced in chunk order
    by :func:`_reduce_hmm`.
    """
    _fm.wide_simd()
    if _fm.fetch_add(next_chunk, 0) >= n_chunks:
        return  # queue empty: skip the scratch allocations
    N, D = X.shape
    K = alpha.shape[1]
    s_rows = p_scatter.shape[1]
    sd1 = p_scatter.shape[2]
    w1 = block + 1
    # 64-byte aligned rows of whole cache lines, for the micro-kernels
    xt = _empty_aligned(D, block + (-block) % 8, ref)
    dt = np.empty((D, block))
    wd = np.empty((D, block))
    at = np.empty((K, w1))
    lp = np.empty((K, w1))
    hh = np.empty((K, w1))
    ginv = np.empty(w1)
    nv = np.empty(block)
    okr = np.empty(block)
    sf = np.empty(block)
    wr = np.empty(block)
    wb = np.ones(block)
    nk = np.empty(K)
    sums = np.empty((K, D))
    scatter = np.empty((s_rows, sd1, D))
    xi = np.empty((K, K))
    st = np.empty(K)
    while True:
        ch = _fm.fetch_add(next_chunk, 1)
        if ch >= n_chunks:
            break
        start = ch * N // n_chunks
        stop = (ch + 1) * N // n_chunks
        nk[:] = 0.0
        sums[:] = 0.0
        scatter[:] = 0.0
        xi[:] = 0.0
        st[:] = 0.0
        ll = 0.0
        seq = np.searchsorted(starts, start, side="right") - 1
        seq_end = starts[seq + 1]
        for b0 in range(start, stop, block):
            nb = min(block, stop - b0)
            for i in range(nb):
                row = b0 + i
                while row >= seq_end:
                    seq += 1
                    seq_end = starts[seq + 1]
                okq = ok[seq] != 0
                nv[i] = 1.0 if (okq and row + 1 < seq_end) else 0.0
                sf[i] = 1.0 if row == starts[seq] else 0.0
                okr[i] = 1.0 if okq else 0.0
            ll_b, first_bad = _t_post_block(
                X, b0, b0, nb, N, alpha, beta, B, c, m, nv, sf, okr,
                ref, want_gamma, want_stats, want_xi, out_gamma, b0, xt, dt,
                wd, at, lp, hh, ginv, wr, wb, nk, sums, scatter, xi, st)
            ll += ll_b
            if first_bad >= 0:
                bad[np.searchsorted(starts, b0 + first_bad, side="right")
                    - 1] = 1
        _fm.put(p_nk, ch, nk)
        _fm.put(p_sums, ch, sums)
        _fm.put(p_scatter, ch, scatter)
        p_ll[ch] = ll
        p_ws[ch] = stop - start
        _fm.put(p_xi, ch, xi)
        _fm.put(p_start, ch, st)


# ------------------------------------- many sequences: one fused pass per group
@_layout_template(JIT)
def _t_grouped_worker(next_group, X, starts, groups, startprob, transmat,
                      log_startprob, log_transmat, means, prec, logconst, ref,
                      block, want_gamma, want_stats, want_xi, out_gamma, p_nk,
                      p_sums, p_scatter, p_ll, p_ws, p_xi, p_start, p_xifb):
    """Run the whole E-step of the queue's groups of sequences.

    Serial (``nogil``) worker of :func:`_grouped_pass`, run on the caller's
    threads: each copy takes the next group ``g`` from the shared counter
    ``next_group`` -- sequences ``groups[g]:groups[g + 1]`` -- and runs, for
    each of its sequences in turn, emissions, forward and backward
    recursions, posteriors and statistics, on lattices the size of one
    sequence (which stay in cache); a sequence that underflows is redone in
    log space on the spot.  The group's partials go to its slot ``g`` of
    ``p_*``.
    """
    _fm.wide_simd()
    G = groups.shape[0] - 1
    if _fm.fetch_add(next_group, 0) >= G:
        return  # queue empty: skip the scratch allocations
    D = X.shape[1]
    K = means.shape[0]
    s_rows = p_scatter.shape[1]
    sd1 = p_scatter.shape[2]
    need_post = want_gamma or want_xi
    w1 = block + 1
    # 64-byte aligned rows of whole cache lines, for the micro-kernels
    xt = _empty_aligned(D, block + (-block) % 8, means)
    dt = np.empty((D, block))
    wd = np.empty((D, block))
    at = np.empty((K, w1))
    lp = np.empty((K, w1))
    hh = np.empty((K, w1))
    ginv = np.empty(w1)
    tq = np.empty(block)
    q = np.empty(block)
    mx = np.empty(block)
    nv = np.empty(block)
    okr = np.empty(block)
    sf = np.empty(block)
    wr = np.empty(block)
    wb = np.ones(block)
    nk = np.empty(K)
    sums = np.empty((K, D))
    scatter = np.empty((s_rows, sd1, D))
    xi = np.empty((K, K))
    xifb = np.empty((K, K))
    st = np.empty(K)
    while True:
        g = _fm.fetch_add(next_group, 1)
        if g >= G:
            break
        s0 = groups[g]
        s1 = groups[g + 1]
        Lmax = 1
        for s in range(s0, s1):
            Lmax = max(Lmax, starts[s + 1] - starts[s])
        Bl = np.empty((Lmax, K))
        al = np.empty((Lmax, K))
        bl = np.empty((Lmax, K))
        cl = np.empty(Lmax)
        ml = np.empty(Lmax)
        nk[:] = 0.0
        sums[:] = 0.0
        scatter[:] = 0.0
        xi[:] = 0.0
        xifb[:] = 0.0
        st[:] = 0.0
        ll = 0.0
        for s in range(s0, s1):
            a = starts[s]
            L = starts[s + 1] - a
            for r0 in range(0, L, block):
                nb = min(block, L - r0)
                # np.bool_ / np.int64: no literal specializations (as in
                # _fb_log_seq)
                _t_emit_block(X, a + r0, nb, means, prec, logconst,
                              np.bool_(True), Bl, ml, r0, xt, dt, lp, tq, q,
                              mx)
            ok = _forward_scaled(np.int64(0), L, startprob, transmat, Bl, al,
                                 cl)
            if ok and need_post:
                ok = _backward_scaled(np.int64(0), L, transmat, Bl, bl)
                if ok:
                    for t in range(L):
                        gt = 0.0
                        for k in range(K):
                            gt += al[t, k] * bl[t, k]
                        if not gt >= TINY:
                            ok = False
                            break
            if not ok:
                ll_s, xi_s = _t_fb_log_seq(X, a, a + L, log_startprob,
                                           log_transmat, means, prec,
                                           logconst, block, al, bl, cl, ml,
                                           np.int64(0))
                ll += ll_s
                for i in range(K):
                    for j in range(K):
                        xifb[i, j] += xi_s[i, j]
            okv = 1.0 if ok else 0.0
            for r0 in range(0, L, block):
                nb = min(block, L - r0)
                for i in range(nb):
                    nv[i] = okv if r0 + i + 1 < L else 0.0
                    sf[i] = 1.0 if r0 + i == 0 else 0.0
                    okr[i] = okv
                ll_b, _ = _t_post_block(
                    X, a + r0, r0, nb, L, al, bl, Bl, cl, ml, nv, sf,
                    okr, ref, want_gamma, want_stats, want_xi, out_gamma,
                    a + r0, xt, dt, wd, at, lp, hh, ginv, wr, wb, nk, sums,
                    scatter, xi, st)
                ll += ll_b
        _fm.put(p_nk, g, nk)
        _fm.put(p_sums, g, sums)
        _fm.put(p_scatter, g, scatter)
        p_ll[g] = ll
        p_ws[g] = starts[s1] - starts[s0]
        _fm.put(p_xi, g, xi)
        _fm.put(p_start, g, st)
        _fm.put(p_xifb, g, xifb)


# --------------------------------------------------------------------- Viterbi
@njit(**JIT)
def _viterbi_worker(next_seq, starts, log_startprob, log_transmat, lat, path,
                    seq_logprob):
    """Decode the queue's sequences by Viterbi (see :func:`_viterbi_pass`)."""
    S = starts.shape[0] - 1
    K = log_startprob.shape[0]
    while True:
        s = _fm.fetch_add(next_seq, 1)
        if s >= S:
            break
        a = starts[s]
        b = starts[s + 1]
        for k in range(K):
            lat[a, k] = log_startprob[k] + lat[a, k]
        for t in range(a + 1, b):
            for i in range(K):
                mx = -np.inf
                for j in range(K):
                    mx = max(mx, lat[t - 1, j] + log_transmat[j, i])
                lat[t, i] = mx + lat[t, i]
        prev = 0
        for k in range(1, K):
            if lat[b - 1, k] > lat[b - 1, prev]:
                prev = k
        path[b - 1] = prev
        seq_logprob[s] = lat[b - 1, prev]
        for t in range(b - 2, a - 1, -1):
            best = -np.inf
            arg = 0
            for i in range(K):
                v = lat[t, i] + log_transmat[i, prev]
                if v >= best:
                    best = v
                    arg = i
            path[t] = arg
            prev = arg


def _viterbi_pass(starts, log_startprob, log_transmat, lat, path, seq_logprob):
    """Viterbi decoding of every sequence (parallel over sequences).

    ``lat`` holds the emission log-densities on entry and the Viterbi lattice
    on exit.  Ties are broken as hmmlearn does: the first maximum at the last
    step, the largest index while backtracking.  Each sequence is decoded by
    one thread (:func:`_viterbi_worker`).
    """
    S = starts.shape[0] - 1
    run_workers(_viterbi_worker, (np.zeros(1, np.int64), starts,
                                  log_startprob, log_transmat, lat, path,
                                  seq_logprob), S)


_SPECIALIZED = _specialize()


def _specialize_quad():
    """Create the full and tied templates once more per triangular variant.

    As the mixture's pass does (:data:`fastem.kernels.gaussian._BY_QUAD`):
    with the variant of the triangular quadratic form fixed (QUAD 1 for
    ``D <= WIDE_TRI_MAX_D``, 2 above), a fit compiles one variant, not both
    (about 3 s of CPU less per full or tied layout and float type).

    Returns
    -------
    dict
        QUAD -> {FULL: dispatchers, TIED: dispatchers}.
    """
    out = {}
    for q, sfx in ((1, "_wide"), (2, "_narrow")):
        variants = []
        for code in (FULL, TIED):
            overrides = {"LAYOUT": code, "SQUARE": True}
            for name in _MIXTURE_TEMPLATES:
                overrides[name] = _MIXTURE_SPECIALIZED[code][name]
            for name in ("_t_block_logp", "_t_block_accumulate"):
                overrides[name] = _MIXTURE_BY_QUAD[q][code][name]
            variants.append((LAYOUT_NAMES[code] + sfx, overrides, {}))
        out[q] = dict(zip((FULL, TIED),
                          specialize(_TEMPLATES, globals(), variants)))
    return out


_BY_QUAD = _specialize_quad()


def _fns(code, D):
    """Return layout ``code``'s dispatchers (full/tied: the variant for ``D``)."""
    if code in (FULL, TIED):
        return _BY_QUAD[1 if D <= WIDE_TRI_MAX_D else 2][code]
    return _SPECIALIZED[code]


def _emission_pass(code, X, means, prec, logconst, n_chunks, block, shifted,
                   out, m):
    """Emission log-densities of every row (see :func:`_t_emit_block`).

    Parallel over ``n_chunks`` fixed chunks of rows: the layout ``code``'s
    :func:`_t_emission_worker` on the caller's threads
    (:func:`fastem._config.run_workers`).
    """
    run_workers(_fns(code, X.shape[1])["_t_emission_worker"],
                (np.zeros(1, np.int64), X, means, prec, logconst, n_chunks,
                 block, shifted, out, m), n_chunks)


def _fb_log_seq(code, X, a, b, log_startprob, log_transmat, means, prec,
                logconst, block, alpha, beta, c, m, off):
    """:func:`_t_fb_log_seq` of the layout ``code`` (the exact fallback).

    Returns
    -------
    loglik : float
    xi : ndarray (K, K)
    """
    return _fns(code, X.shape[1])["_t_fb_log_seq"](
        X, a, b, log_startprob, log_transmat, means, prec, logconst, block,
        alpha, beta, c, m, off)


def _posterior_pass(code, X, starts, ok, alpha, beta, B, c, m, ref, n_chunks,
                    block, s_rows, want_gamma, want_stats, want_xi, out_gamma,
                    bad):
    """Posteriors, transition counts, log-likelihood and Gaussian statistics.

    Parallel over the ``n_chunks`` fixed chunks of rows: the layout
    ``code``'s :func:`_t_posterior_worker` on the caller's threads, then
    :func:`_reduce_hmm` in chunk order.  ``ok[s] == 0`` marks a sequence
    already handled by :func:`_fb_log_seq` (it contributes its posteriors
    here, but no transitions and no log-likelihood).  ``out_gamma`` (N, K)
    is written when it has rows.  ``bad[s]`` is set to 1 when a posterior
    normalizer of an ``ok`` sequence underflowed (the caller then redoes
    that sequence in log space).

    Returns
    -------
    nk, sums, scatter, loglik, n_rows, xi, start, xi_fb
        Gaussian statistics around ``ref`` (as
        :func:`fastem.kernels.gaussian._em_pass`), the summed ``log c_t +
        m_t``, the number of rows, the expected transition counts *divided
        by* the transition matrix (``xi = transmat * result``), the summed
        start posteriors, and zeros (the log-space transitions are added by
        the caller).
    """
    D = X.shape[1]
    fns = _fns(code, D)
    K = alpha.shape[1]
    parts = _hmm_partials(n_chunks, K, D, s_rows,
                          D if code in (FULL, TIED) else 1)[:7]
    run_workers(fns["_t_posterior_worker"],
                (np.zeros(1, np.int64), X, starts, ok, alpha, beta, B, c, m,
                 ref, n_chunks, block, want_gamma, want_stats, want_xi,
                 out_gamma, bad) + parts, n_chunks)
    return _reduce_hmm(code, *parts)


def _grouped_pass(code, X, starts, groups, startprob, transmat, log_startprob,
                  log_transmat, means, prec, logconst, ref, block, s_rows,
                  backward, want_gamma, want_stats, want_xi, out_gamma):
    """Run the whole E-step in one parallel pass over groups of sequences.

    Group ``g`` is sequences ``groups[g]:groups[g + 1]`` (consecutive, about
    ``N / G`` rows each, fixed by the lengths only), one task of the layout
    ``code``'s :func:`_t_grouped_worker` on the caller's threads; the
    partials are reduced in group order.  ``backward`` is not used (the
    backward recursion runs whenever posteriors are wanted).

    Returns
    -------
    The same tuple as :func:`_posterior_pass`, with the log-space sequences'
    log-likelihoods included and their transition counts in ``xi_fb``.
    """
    D = X.shape[1]
    fns = _fns(code, D)
    K = means.shape[0]
    G = groups.shape[0] - 1
    parts = _hmm_partials(G, K, D, s_rows, D if code in (FULL, TIED) else 1)
    run_workers(fns["_t_grouped_worker"],
                (np.zeros(1, np.int64), X, starts, groups, startprob,
                 transmat, log_startprob, log_transmat, means, prec, logconst,
                 ref, block, want_gamma, want_stats, want_xi, out_gamma)
                + parts, G)
    return _reduce_hmm(code, *parts)
