"""Private Numba kernels of the Gaussian hidden Markov model.

Arrays and scalars in, arrays out; no validation (that is :mod:`fastem.hmm`'s
job).  ``K`` states, ``D`` features, ``N`` rows in total, ``S`` sequences;
sequence ``s`` is rows ``starts[s]:starts[s + 1]``.  Emission parameters use
the layouts of :mod:`fastem._kernels` (``code``, ``means``, ``prec``,
``logconst = logdet - D/2 log(2 pi)``, no mixing weights).

One Baum-Welch E-step is three passes:

1. :func:`_emission_pass` -- parallel over fixed chunks of rows (sequence
   boundaries do not matter): ``logB[t, k] = log N(x_t | k)`` by the mixture's
   vectorized block kernel, stored *shifted* as ``B[t, k] = exp(logB[t, k] -
   m_t)`` with ``m_t = max_k logB[t, k]``, so that ``max_k B[t, k] = 1``.
2. :func:`_fb_pass` -- parallel over 2 S independent tasks: the scaled forward
   recursion of every sequence and, concurrently, its scaled backward
   recursion (each normalizes its own vectors, so neither waits for the
   other: a single long sequence still uses two threads).
3. :func:`_posterior_pass` -- parallel over fixed chunks of rows again:
   posteriors ``gamma``, the expected transition counts, the start posteriors,
   the log-likelihood ``sum_t log c_t + m_t`` and the Gaussian sufficient
   statistics, accumulated by the mixture's own accumulator
   (:func:`fastem._kernels._block_accumulate`).

Why scaled rather than log-space recursions: the recursions are the only
sequential part of the E-step, and in scaled form they are pure multiply-adds
(``K^2`` per step, no ``exp``/``log``), while the log-space form needs ``K^2``
exponentials per step.  The usual weakness of scaling -- the frame
likelihoods underflow -- is removed by the per-row shift ``m_t``.  A step can
still underflow when the model all but forbids the observed data (a forward
or backward normalizer below ``TINY``); such a sequence is redone exactly in
log space by :func:`_fb_log_seq`, whose results are written back in the same
format (``alpha = gamma``, ``beta = 1``, ``c = 1``, ``m = 0``) so the
posterior pass treats it like any other.

Scaling conventions: ``alpha[t] = P(z_t | x_{..t})`` (sums to one),
``c[t] = p(x_t | x_{..t-1}) / exp(m_t)``; ``beta[t]`` is the backward vector
normalized to sum to one (any per-row scale works).  Then ``gamma_t =
alpha_t * beta_t / g_t`` with ``g_t = sum_k alpha_t beta_t``, and the
expected transition ``xi_t(i, j) = alpha_t(i) A_ij B_{t+1}(j) beta_{t+1}(j) /
(c_{t+1} g_{t+1})``.

Determinism: chunks depend only on ``N`` and partials are reduced in chunk
order; the recursions of a sequence run on one thread.  Results do not depend
on the thread count.
"""

import math

import numpy as np
from numba import njit, prange

from . import _fastmath as _fm
from ._config import JIT, PJIT
from ._kernels import FULL, TIED, _block_accumulate, _block_logp, _reduce

# A forward/backward normalizer (or a posterior normalizer g_t) below this
# sends the sequence to the exact log-space path.  It leaves ~18 orders of
# magnitude above the smallest normal double, so every term that matters in
# such a sum is a normal number.
TINY = 1e-290
# Lazy rescaling bounds of the recursions (see _forward_scaled).
RESCALE_LO = 1e-30
RESCALE_HI = 1e30


# ------------------------------------------------------------- pass 1: emissions
@njit(**PJIT)
def _emission_pass(code, X, means, prec, logconst, n_chunks, block, shifted,
                   out, m):
    """Emission log-densities of every row.

    ``shifted``: ``out[t, k] = exp(logB[t, k] - m[t])``, ``m[t] = max_k
    logB[t, k]`` (a row with no finite density gets ``out = 0``,
    ``m = -inf``).  Otherwise ``out[t, k] = logB[t, k]`` and ``m`` is unused.
    """
    N, D = X.shape
    K = means.shape[0]
    for ch in prange(n_chunks):
        start = ch * N // n_chunks
        stop = (ch + 1) * N // n_chunks
        xt = np.empty((D, block))
        dt = np.empty((D, block))
        lp = np.empty((K, block))
        t = np.empty(block)
        q = np.empty(block)
        mx = np.empty(block)
        sh = np.empty(block)
        for b0 in range(start, stop, block):
            nb = min(block, stop - b0)
            for i in range(nb):
                for j in range(D):
                    xt[j, i] = X[b0 + i, j]
            _block_logp(code, xt, nb, means, prec, logconst, lp, dt, t, q)
            if shifted:
                for i in range(nb):
                    mx[i] = lp[0, i]
                for k in range(1, K):
                    for i in range(nb):
                        mx[i] = max(mx[i], lp[k, i])
                for i in range(nb):
                    v = mx[i]
                    # -inf - -inf would be NaN: shift by 0, every exp is 0.
                    sh[i] = v if (v > -np.inf and v < np.inf) else 0.0
                for k in range(K):
                    for i in range(nb):
                        lp[k, i] = _fm.exp(lp[k, i] - sh[i])
                for i in range(nb):
                    m[b0 + i] = mx[i]
            for i in range(nb):
                for k in range(K):
                    out[b0 + i, k] = lp[k, i]


# ------------------------------------------------------ pass 2: the recursions
@njit(**JIT)
def _forward_scaled(a, b, startprob, transmat, B, alpha, c):
    """Scaled forward recursion of rows ``a:b``; False on underflow.

    Rescaling is lazy: a row is normalized only when its sum leaves
    ``[RESCALE_LO, 1]`` (and always at the first and last row of the
    sequence), with ``c[t]`` the divisor (1 when none); this takes the
    division off the recursion's critical path.
    """
    K = startprob.shape[0]
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
        for j in range(K):
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


@njit(**PJIT)
def _fb_pass(starts, startprob, transmat, B, alpha, c, beta, okf, okb,
             backward):
    """Forward (and, if ``backward``, backward) recursions of all sequences.

    Tasks ``0..S-1`` are forward recursions, ``S..2S-1`` backward ones; they
    are independent, so two threads work even on a single sequence.
    ``okf[s]`` / ``okb[s]`` are set to 0 where a recursion underflowed.
    """
    S = starts.shape[0] - 1
    n_tasks = 2 * S if backward else S
    for task in prange(n_tasks):
        if task < S:
            ok = _forward_scaled(starts[task], starts[task + 1], startprob,
                                 transmat, B, alpha, c)
            okf[task] = 1 if ok else 0
        else:
            s = task - S
            ok = _backward_scaled(starts[s], starts[s + 1], transmat, B, beta)
            okb[s] = 1 if ok else 0


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


@njit(**JIT)
def _fb_log_seq(code, X, a, b, log_startprob, log_transmat, means, prec,
                logconst, block, alpha, beta, c, m):
    """Forward-backward of rows ``a:b`` in log space (the exact fallback).

    Recomputes the emission log-densities (the shifted ``B`` may have flushed
    terms that matter here), then writes ``alpha[t] = gamma_t``,
    ``beta[t] = 1``, ``c[t] = 1``, ``m[t] = 0`` for the rows of the sequence.

    Returns
    -------
    loglik : float
        ``log p(x_a..x_{b-1})`` (``-inf`` if the model forbids the sequence).
    xi : ndarray (K, K)
        Expected transition counts of the sequence.
    """
    D = X.shape[1]
    K = means.shape[0]
    L = b - a
    logB = np.empty((L, K))
    xt = np.empty((D, block))
    dt = np.empty((D, block))
    lp = np.empty((K, block))
    tb = np.empty(block)
    q = np.empty(block)
    for b0 in range(a, b, block):
        nb = min(block, b - b0)
        for i in range(nb):
            for j in range(D):
                xt[j, i] = X[b0 + i, j]
        _block_logp(code, xt, nb, means, prec, logconst, lp, dt, tb, q)
        for i in range(nb):
            for k in range(K):
                logB[b0 - a + i, k] = lp[k, i]
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
            alpha[a + t, k] = math.exp(buf[k] - z)
            beta[a + t, k] = 1.0
        c[a + t] = 1.0
        m[a + t] = 0.0
        if t + 1 < L:
            for i in range(K):
                for j in range(K):
                    xi[i, j] += math.exp(fwd[t, i] + log_transmat[i, j]
                                         + logB[t + 1, j] + bwd[t + 1, j] - ll)
    return ll, xi


# --------------------------------------------------- pass 3: posteriors, stats
@njit(**PJIT)
def _posterior_pass(code, X, starts, ok, alpha, beta, B, c, m, ref, n_chunks,
                    block, s_rows, want_gamma, want_stats, want_xi, out_gamma,
                    bad):
    """Posteriors, transition counts, log-likelihood and Gaussian statistics.

    ``ok[s] == 0`` marks a sequence already handled by :func:`_fb_log_seq`
    (it contributes its posteriors here, but no transitions and no
    log-likelihood).  ``out_gamma`` (N, K) is written when it has rows.
    ``bad[s]`` is set to 1 when a posterior normalizer of an ``ok`` sequence
    underflowed (the caller then redoes that sequence in log space).

    Returns
    -------
    nk, sums, scatter, loglik, n_rows, xi, start
        Gaussian statistics around ``ref`` (as :func:`fastem._kernels._em_pass`),
        the summed ``log c_t + m_t``, the number of rows, the expected
        transition counts *before* multiplication by the transition matrix
        (``xi = transmat * result``), and the summed start posteriors.
    """
    N, D = X.shape
    K = alpha.shape[1]
    sd1 = D if (code == FULL or code == TIED) else 1
    p_nk = np.zeros((n_chunks, K))
    p_sums = np.zeros((n_chunks, K, D))
    p_scatter = np.zeros((n_chunks, s_rows, sd1, D))
    p_ll = np.zeros(n_chunks)
    p_ws = np.zeros(n_chunks)
    p_xi = np.zeros((n_chunks, K, K))
    p_start = np.zeros((n_chunks, K))
    w_gamma = out_gamma.shape[0] > 0
    need_g = want_gamma or want_xi
    for ch in prange(n_chunks):
        start = ch * N // n_chunks
        stop = (ch + 1) * N // n_chunks
        w1 = block + 1
        xt = np.empty((D, block))
        dt = np.empty((D, block))
        wd = np.empty((D, block))
        at = np.empty((K, w1))      # alpha, rows b0 .. b0 + nb (one extra)
        lp = np.empty((K, w1))      # alpha * beta, then gamma
        hh = np.empty((K, w1))
        ginv = np.empty(w1)
        nv = np.empty(block)
        okr = np.empty(block)
        sf = np.empty(block)
        wr = np.empty(block)
        wb = np.ones(block)
        nk = np.zeros(K)
        sums = np.zeros((K, D))
        scatter = np.zeros((s_rows, sd1, D))
        xi = np.zeros((K, K))
        st = np.zeros(K)
        ll = 0.0
        seq = np.searchsorted(starts, start, side="right") - 1
        seq_end = starts[seq + 1]
        for b0 in range(start, stop, block):
            nb = min(block, stop - b0)
            # Sequence bookkeeping (scalar): next-row validity, start rows.
            for i in range(nb):
                row = b0 + i
                while row >= seq_end:
                    seq += 1
                    seq_end = starts[seq + 1]
                okq = ok[seq] != 0
                nv[i] = 1.0 if (okq and row + 1 < seq_end) else 0.0
                sf[i] = 1.0 if row == starts[seq] else 0.0
                okr[i] = 1.0 if okq else 0.0
            # log-likelihood: sum of log c_t + m_t (c = 1, m = 0 on
            # sequences done in log space).
            acc = 0.0
            for i in range(nb):
                acc += _fm.log(c[b0 + i]) + m[b0 + i]
            ll += acc
            if not need_g:
                continue
            # Tiles of alpha and alpha * beta, with the next row appended.
            ne = nb + 1 if b0 + nb < N else nb
            for i in range(ne):
                for k in range(K):
                    a_ = alpha[b0 + i, k]
                    at[k, i] = a_
                    lp[k, i] = a_ * beta[b0 + i, k]
            for i in range(ne):
                ginv[i] = 0.0
            for k in range(K):
                for i in range(ne):
                    ginv[i] += lp[k, i]
            for i in range(ne):
                if not ginv[i] >= TINY:  # rare: no division on this path
                    if i < nb and okr[i] != 0.0:
                        # an ok sequence: the caller redoes it in log space
                        row = b0 + i
                        bad[np.searchsorted(starts, row, side="right") - 1] = 1
                    if not ginv[i] > 0.0:
                        ginv[i] = 1.0
            for i in range(ne):
                ginv[i] = 1.0 / ginv[i]
            if want_xi:
                # hh[j, i] = B_{t+1} beta_{t+1} / (c_{t+1} g_{t+1}), t = b0+i
                for i in range(nb):
                    wr[i] = nv[i] * ginv[i + 1] / c[b0 + i + 1] \
                        if nv[i] != 0.0 else 0.0
                for i in range(nb):
                    for k in range(K):
                        r1 = b0 + i + 1
                        hh[k, i] = B[r1, k] * beta[r1, k] if nv[i] != 0.0 \
                            else 0.0
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
                if w_gamma:
                    for i in range(nb):
                        for k in range(K):
                            out_gamma[b0 + i, k] = lp[k, i]
                if want_stats:
                    for i in range(nb):
                        for j in range(D):
                            xt[j, i] = X[b0 + i, j]
                    _block_accumulate(code, xt, nb, lp, wb, ref, nk, sums,
                                      scatter, dt, wd, wr)
        p_nk[ch] = nk
        p_sums[ch] = sums
        p_scatter[ch] = scatter
        p_ll[ch] = ll
        p_ws[ch] = stop - start
        p_xi[ch] = xi
        p_start[ch] = st
    nk, sums, scatter, ll, ws = _reduce(code, p_nk, p_sums, p_scatter, p_ll,
                                        p_ws)
    xi = p_xi[0].copy()
    st = p_start[0].copy()
    for ch in range(1, n_chunks):
        xi += p_xi[ch]
        st += p_start[ch]
    return nk, sums, scatter, ll, ws, xi, st


# --------------------------------------------------------------------- Viterbi
@njit(**PJIT)
def _viterbi_pass(starts, log_startprob, log_transmat, lat, path, seq_logprob):
    """Viterbi decoding of every sequence (parallel over sequences).

    ``lat`` holds the emission log-densities on entry and the Viterbi lattice
    on exit.  Ties are broken as hmmlearn does: the first maximum at the last
    step, the largest index while backtracking.
    """
    S = starts.shape[0] - 1
    K = log_startprob.shape[0]
    for s in prange(S):
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
