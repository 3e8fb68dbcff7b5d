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

import numpy as np
from numba import njit, prange

from . import _fastmath as _fm
from ._config import JIT, PJIT

FULL, TIED, DIAG, SPHERICAL = 0, 1, 2, 3

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
def _block_logp(code, xt, nb, means, prec, logconst, lp, dt, t, q):
    """``lp[k, i] = log w_k + log N(x_i | k)`` for the block ``xt`` (D, B).

    Rows are the innermost loop everywhere so that the loops vectorize.
    """
    K, D = means.shape
    for k in range(K):
        for i in range(nb):
            q[i] = 0.0
        if code == DIAG:
            for j in range(D):
                mu = means[k, j]
                p = prec[k, 0, j]
                for i in range(nb):
                    v = (xt[j, i] - mu) * p
                    q[i] += v * v
        elif code == SPHERICAL:
            for j in range(D):
                mu = means[k, j]
                for i in range(nb):
                    v = xt[j, i] - mu
                    q[i] += v * v
            p2 = prec[k, 0, 0] * prec[k, 0, 0]
            for i in range(nb):
                q[i] *= p2
        else:
            kk = k if code == FULL else 0
            for j in range(D):
                mu = means[k, j]
                for i in range(nb):
                    dt[j, i] = xt[j, i] - mu
            # y_j = sum_{a <= j} d_a U[a, j];  q = |y|^2
            for j in range(D):
                for i in range(nb):
                    t[i] = 0.0
                for a in range(j + 1):
                    u = prec[kk, a, j]
                    for i in range(nb):
                        t[i] += dt[a, i] * u
                for i in range(nb):
                    q[i] += t[i] * t[i]
        c = logconst[k]
        for i in range(nb):
            lp[k, i] = c - 0.5 * q[i]


@njit(**JIT)
def _block_normalize(lp, nb, m, s, lse):
    """Responsibilities in place in ``lp`` (K, B) and the row logsumexp.

    A row with no finite log-density gets no responsibility and
    ``lse = max`` (-inf).
    """
    K = lp.shape[0]
    for i in range(nb):
        m[i] = lp[0, i]
    for k in range(1, K):
        for i in range(nb):
            m[i] = max(m[i], lp[k, i])
    for i in range(nb):
        s[i] = 0.0
        if not (m[i] > -np.inf and m[i] < np.inf):
            lse[i] = m[i]
            m[i] = np.inf  # every exp below becomes exp(-inf) = 0
    for k in range(K):
        for i in range(nb):
            e = _fm.exp(lp[k, i] - m[i])
            lp[k, i] = e
            s[i] += e
    for i in range(nb):
        if s[i] > 0.0:
            lse[i] = m[i] + _fm.log(s[i])
            s[i] = 1.0 / s[i]
    for k in range(K):
        for i in range(nb):
            lp[k, i] *= s[i]


@njit(**JIT)
def _block_accumulate(code, xt, nb, lp, wb, ref, nk, sums, scatter, dt, wd,
                      wr):
    """Add the block's weighted responsibilities ``lp * wb`` to the stats."""
    K, D = ref.shape
    full = code == FULL or code == TIED
    cross = full and D > 1
    for k in range(K):
        tot = 0.0
        for i in range(nb):
            r = lp[k, i] * wb[i]
            wr[i] = r
            tot += r
        if tot == 0.0:
            continue
        nk[k] += tot
        kk = 0 if code == TIED else k
        for a in range(D):
            rf = ref[k, a]
            sa = 0.0
            sq = 0.0
            if cross:
                # keep the centred block for the off-diagonal products
                for i in range(nb):
                    d = xt[a, i] - rf
                    dt[a, i] = d
                    v = wr[i] * d
                    wd[a, i] = v
                    sa += v
                    sq += v * d
            else:
                for i in range(nb):
                    d = xt[a, i] - rf
                    v = wr[i] * d
                    sa += v
                    sq += v * d
            sums[k, a] += sa
            if full:
                scatter[kk, a, a] += sq
            else:
                scatter[k, 0, a] += sq
        if cross:
            for a in range(D):
                for b in range(a + 1, D):
                    acc = 0.0
                    for i in range(nb):
                        acc += wd[a, i] * dt[b, i]
                    scatter[kk, a, b] += acc


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
    p_nk, p_sums, p_scatter, p_ll, p_ws = _partials(n_chunks, K, D, s_rows,
                                                    sd1)
    has_w = sw.shape[0] > 0
    w_lse = out_lse.shape[0] > 0
    w_resp = out_resp.shape[0] > 0
    w_label = out_label.shape[0] > 0
    for c in prange(n_chunks):
        start = c * N // n_chunks
        stop = (c + 1) * N // n_chunks
        xt = np.empty((D, block))
        dt = np.empty((D, block))
        wd = np.empty((D, block))
        lp = np.empty((K, block))
        m = np.empty(block)
        s = np.empty(block)
        lse = np.empty(block)
        t = np.empty(block)
        q = np.empty(block)
        wb = np.ones(block)
        nk = np.zeros(K)
        sums = np.zeros((K, D))
        scatter = np.zeros((s_rows, sd1, D))
        ll = 0.0
        ws = 0.0
        for b0 in range(start, stop, block):
            nb = min(block, stop - b0)
            for i in range(nb):
                for j in range(D):
                    xt[j, i] = X[b0 + i, j]
            _block_logp(code, xt, nb, means, prec, logconst, lp, dt, t, q)
            _block_normalize(lp, nb, m, s, lse)
            for i in range(nb):
                row = b0 + i
                if w_lse:
                    out_lse[row] = lse[i]
                if w_resp:
                    for k in range(K):
                        out_resp[row, k] = lp[k, i]
                if w_label:
                    best = 0
                    for k in range(1, K):
                        if lp[k, i] > lp[best, i]:
                            best = k
                    out_label[row] = best
            if want_stats:
                for i in range(nb):
                    wi = sw[b0 + i] if has_w else 1.0
                    wb[i] = wi
                    if wi != 0.0:
                        ll += wi * lse[i]
                        ws += wi
                _block_accumulate(code, xt, nb, lp, wb, ref, nk, sums,
                                  scatter, dt, wd, t)
        p_nk[c] = nk
        p_sums[c] = sums
        p_scatter[c] = scatter
        p_ll[c] = ll
        p_ws[c] = ws
    return _reduce(code, p_nk, p_sums, p_scatter, p_ll, p_ws)


@njit(**JIT)
def _partials(n_chunks, K, D, s_rows, sd1):
    """Per-chunk partial statistics, zeroed.

    Allocated in a non-parallel function on purpose: inside a
    ``parallel=True`` function every ``np.zeros`` becomes a parallel region
    of its own, each a wake-up of the thread pool.
    """
    return (np.zeros((n_chunks, K)), np.zeros((n_chunks, K, D)),
            np.zeros((n_chunks, s_rows, sd1, D)), np.zeros(n_chunks),
            np.zeros(n_chunks))


@njit(**JIT)
def _reduce(code, p_nk, p_sums, p_scatter, p_ll, p_ws):
    """Sum per-chunk partials in chunk order (deterministic).

    A separate non-parallel function: array expressions in a
    ``parallel=True`` function would each become a parallel region.
    """
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
    p_nk, p_sums, p_scatter, p_ll, p_ws = _partials(n_chunks, K, D, s_rows,
                                                    sd1)
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
