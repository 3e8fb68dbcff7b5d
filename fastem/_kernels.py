"""Private Numba kernels: the fused E-step + sufficient-statistics pass.

Arrays and scalars in, arrays out.  No validation, no strings, no warnings:
the Python layer (:mod:`fastem.stats`, :mod:`fastem.mixture`) does that.

Layouts (``K`` components, ``D`` features), by covariance code:

============  =====================  =====================
code          ``prec`` (precision     ``scatter``
              Cholesky factors)
============  =====================  =====================
0 full        (K, D, D) upper         (K, D, D)
1 tied        (1, D, D) upper         (1, D, D)
2 diag        (K, 1, D)               (K, 1, D)
3 spherical   (K, 1, 1)               (K, 1, D)
============  =====================  =====================

``sums`` (K, D) and ``scatter`` are accumulated around a per-component
reference point ``ref`` (K, D) -- normally the means of the parameters used
in the E-step -- so that second moments keep full precision far from the
origin.  Only the upper triangle of full/tied scatter is accumulated; it is
mirrored after the reduction.
"""

import math

import numpy as np
from numba import njit, prange

from ._config import JIT, PJIT

FULL, TIED, DIAG, SPHERICAL = 0, 1, 2, 3

# exp(x) underflows to a subnormal/zero below this; glibc is ~10x slower on
# subnormal results, and the responsibility is negligible anyway.
_EXP_FLOOR = -745.0


@njit(**JIT)
def _log_prob_block(code, xb, nb, means, prec, logconst, logp, diff, y):
    """Fill ``logp[:nb, k] = log w_k + log N(xb_i | k)`` for a block of rows."""
    K, D = means.shape
    for i in range(nb):
        for k in range(K):
            q = 0.0
            if code == DIAG:
                for j in range(D):
                    t = (xb[i, j] - means[k, j]) * prec[k, 0, j]
                    q += t * t
            elif code == SPHERICAL:
                for j in range(D):
                    t = xb[i, j] - means[k, j]
                    q += t * t
                q *= prec[k, 0, 0] * prec[k, 0, 0]
            else:
                kk = k if code == FULL else 0
                for j in range(D):
                    diff[j] = xb[i, j] - means[k, j]
                    y[j] = 0.0
                # y = diff @ U with U upper triangular, in axpy form so the
                # inner loop is contiguous and vectorizes.
                for a in range(D):
                    da = diff[a]
                    for j in range(a, D):
                        y[j] += da * prec[kk, a, j]
                for j in range(D):
                    q += y[j] * y[j]
            logp[i, k] = logconst[k] - 0.5 * q


@njit(**JIT)
def _normalize_row(logp, i, K):
    """Turn row ``i`` of ``logp`` into responsibilities; return its logsumexp."""
    m = -np.inf
    for k in range(K):
        if logp[i, k] > m:
            m = logp[i, k]
    if m == -np.inf or not math.isfinite(m):
        # No component gives the row any density (or the data is not finite):
        # the row gets no responsibility and log-likelihood m.
        for k in range(K):
            logp[i, k] = 0.0
        return m
    s = 0.0
    for k in range(K):
        t = logp[i, k] - m
        if t < _EXP_FLOOR:
            logp[i, k] = 0.0
        else:
            e = math.exp(t)
            logp[i, k] = e
            s += e
    inv = 1.0 / s
    for k in range(K):
        logp[i, k] *= inv
    return m + math.log(s)


@njit(**JIT)
def _accumulate(code, x, wr, k, ref, nk, sums, scatter, diff):
    """Add ``wr`` times row ``x`` to component ``k``'s statistics."""
    D = x.shape[0]
    nk[k] += wr
    for j in range(D):
        diff[j] = x[j] - ref[k, j]
    if code == FULL or code == TIED:
        kk = k if code == FULL else 0
        for a in range(D):
            da = wr * diff[a]
            sums[k, a] += da
            for b in range(a, D):
                scatter[kk, a, b] += da * diff[b]
    else:
        for a in range(D):
            da = wr * diff[a]
            sums[k, a] += da
            scatter[k, 0, a] += da * diff[a]


@njit(**JIT)
def _mirror(code, scatter):
    if code == FULL or code == TIED:
        for k in range(scatter.shape[0]):
            D = scatter.shape[1]
            for a in range(D):
                for b in range(a + 1, D):
                    scatter[k, b, a] = scatter[k, a, b]


@njit(**JIT)
def _load_block(X, start, nb, xb):
    D = X.shape[1]
    for i in range(nb):
        for j in range(D):
            xb[i, j] = X[start + i, j]


@njit(**PJIT)
def _em_pass(code, X, sw, means, prec, logconst, ref, n_chunks, block,
             want_stats, out_lse, out_resp, out_label, s_rows):
    """One parallel pass: log-densities, logsumexp, responsibilities, statistics.

    Parameters are described in the module docstring.  ``sw`` holds sample
    weights (length 0 means all ones).  ``out_lse`` (N,), ``out_resp`` (N, K)
    and ``out_label`` (N,) are written when they have a non-zero length.
    ``s_rows`` is the number of rows of ``scatter`` (1 for tied, else K) and
    its last two dimensions are inferred from ``code``.

    Returns
    -------
    nk, sums, scatter, loglik, weight_sum
    """
    N, D = X.shape
    K = means.shape[0]
    sd1 = D if (code == FULL or code == TIED) else 1
    p_nk = np.zeros((n_chunks, K))
    p_sums = np.zeros((n_chunks, K, D))
    p_scatter = np.zeros((n_chunks, s_rows, sd1, D))
    p_ll = np.zeros(n_chunks)
    p_ws = np.zeros(n_chunks)
    has_w = sw.shape[0] > 0
    w_lse = out_lse.shape[0] > 0
    w_resp = out_resp.shape[0] > 0
    w_label = out_label.shape[0] > 0
    for c in prange(n_chunks):
        start = c * N // n_chunks
        stop = (c + 1) * N // n_chunks
        xb = np.empty((block, D))
        logp = np.empty((block, K))
        diff = np.empty(D)
        y = np.empty(D)
        nk = np.zeros(K)
        sums = np.zeros((K, D))
        scatter = np.zeros((s_rows, sd1, D))
        ll = 0.0
        ws = 0.0
        for b0 in range(start, stop, block):
            nb = min(block, stop - b0)
            _load_block(X, b0, nb, xb)
            _log_prob_block(code, xb, nb, means, prec, logconst, logp, diff, y)
            for i in range(nb):
                lse = _normalize_row(logp, i, K)
                row = b0 + i
                if w_lse:
                    out_lse[row] = lse
                if w_resp:
                    for k in range(K):
                        out_resp[row, k] = logp[i, k]
                if w_label:
                    best = 0
                    for k in range(1, K):
                        if logp[i, k] > logp[i, best]:
                            best = k
                    out_label[row] = best
                if want_stats:
                    wi = sw[row] if has_w else 1.0
                    if wi == 0.0:
                        continue
                    ll += wi * lse
                    ws += wi
                    for k in range(K):
                        wr = wi * logp[i, k]
                        if wr != 0.0:
                            _accumulate(code, xb[i], wr, k, ref, nk, sums,
                                        scatter, diff)
        p_nk[c] = nk
        p_sums[c] = sums
        p_scatter[c] = scatter
        p_ll[c] = ll
        p_ws[c] = ws
    return _reduce(code, p_nk, p_sums, p_scatter, p_ll, p_ws)


@njit(**JIT)
def _reduce(code, p_nk, p_sums, p_scatter, p_ll, p_ws):
    """Sum per-chunk partials in chunk order (deterministic)."""
    nk = p_nk[0].copy()
    sums = p_sums[0].copy()
    scatter = p_scatter[0].copy()
    ll = p_ll[0]
    ws = p_ws[0]
    for c in range(1, p_nk.shape[0]):
        nk += p_nk[c]
        sums += p_sums[c]
        scatter += p_scatter[c]
        ll += p_ll[c]
        ws += p_ws[c]
    _mirror(code, scatter)
    return nk, sums, scatter, ll, ws


@njit(**JIT)
def _hash_uniform(seed, i, k):
    """Counter-based uniform in (0, 1): splitmix64 of (seed, i, k)."""
    z = np.uint64(seed) + np.uint64(i) * np.uint64(0x9E3779B97F4A7C15) \
        + np.uint64(k) * np.uint64(0xD1B54A32D192ED03)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (np.float64(z >> np.uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)


@njit(**PJIT)
def _stats_given(code, X, sw, mode, labels, resp, seed, K, ref, n_chunks,
                 s_rows):
    """Statistics from given responsibilities, in one parallel pass.

    ``mode`` 0: hard ``labels`` (N,) (negative label: row ignored);
    1: random responsibilities, uniform then row-normalized, from a
    counter-based generator seeded by ``seed`` (thread-count independent);
    2: a responsibility matrix ``resp`` (N, K).
    """
    N, D = X.shape
    sd1 = D if (code == FULL or code == TIED) else 1
    p_nk = np.zeros((n_chunks, K))
    p_sums = np.zeros((n_chunks, K, D))
    p_scatter = np.zeros((n_chunks, s_rows, sd1, D))
    p_ll = np.zeros(n_chunks)
    p_ws = np.zeros(n_chunks)
    has_w = sw.shape[0] > 0
    for c in prange(n_chunks):
        start = c * N // n_chunks
        stop = (c + 1) * N // n_chunks
        x = np.empty(D)
        diff = np.empty(D)
        r = np.empty(K)
        nk = np.zeros(K)
        sums = np.zeros((K, D))
        scatter = np.zeros((s_rows, sd1, D))
        ws = 0.0
        for row in range(start, stop):
            wi = sw[row] if has_w else 1.0
            if wi == 0.0:
                continue
            for j in range(D):
                x[j] = X[row, j]
            if mode == 0:
                lab = labels[row]
                if lab < 0:
                    continue
                ws += wi
                _accumulate(code, x, wi, lab, ref, nk, sums, scatter, diff)
                continue
            ws += wi
            if mode == 1:
                tot = 0.0
                for k in range(K):
                    r[k] = _hash_uniform(seed, row, k)
                    tot += r[k]
                for k in range(K):
                    r[k] /= tot
            else:
                for k in range(K):
                    r[k] = resp[row, k]
            for k in range(K):
                wr = wi * r[k]
                if wr != 0.0:
                    _accumulate(code, x, wr, k, ref, nk, sums, scatter, diff)
        p_nk[c] = nk
        p_sums[c] = sums
        p_scatter[c] = scatter
        p_ws[c] = ws
    return _reduce(code, p_nk, p_sums, p_scatter, p_ll, p_ws)
