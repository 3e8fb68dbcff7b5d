"""numba kernel of the Poisson mixture (independent count features).

One parallel pass over fixed chunks of rows computes, per row ``i``, the
log-density of every component,

    log w_k + sum_d (x_id log lambda_kd - lambda_kd - log x_id!),

its logsumexp and the responsibilities, and accumulates the additive
statistics ``nk[k] = sum_i w_i r_ik`` and ``sums[k, d] = sum_i w_i r_ik
x_id``.  The component constant ``a_k = log w_k - sum_d lambda_kd`` and
``log lambda`` are computed once in Python; ``log x!`` comes from a table
for counts below its length and :func:`math.lgamma` above.

Chunks depend only on ``N`` (``n_chunks``) and are taken from a shared
counter by serial ``nogil`` workers, one per thread
(:func:`fastem._config.run_workers`), in blocks of rows transposed so that
the loops run over rows and vectorize; partials are reduced in chunk order,
so results do not depend on the thread count.  No validation or
exception here: the family (:mod:`fastem.families.poisson`) checks the data
first.  Compiled once per input dtype (float64, float32); the arithmetic
runs in float64.
"""

import math

import numpy as np
from numba import njit

from fastem._config import BLOCK_PAD, BLOCK_ROWS, JIT, run_workers
from fastem.kernels import fastmath as _fm
from fastem.kernels import partials as _partials
from fastem.kernels.gaussian import _block_normalize, _write_rows

LOG_FACTORIAL_TABLE = np.array([math.lgamma(n + 1.0) for n in range(1024)])


@njit(**JIT)
def _log_factorial(x, table):
    n = table.shape[0]
    if x < n:
        return table[int(x)]
    return math.lgamma(x + 1.0)


@njit(**JIT)
def _poisson_worker(next_chunk, X, sw, a, loglam, lam, table, n_chunks,
                    want_stats, out_lse, out_resp, out_label, p_nk, p_sums,
                    p_miss, p_ll, p_ws):
    """Chunks from the shared counter until none is left (see the module).

    A chunk is processed in blocks of ``BLOCK_ROWS`` rows, transposed to
    ``xt`` (D, B) in float64, so that every loop runs over the block's rows
    and vectorizes: ``lp[k, i] = a_k + sum_d x_di log lambda_kd``, the
    normalization (:func:`fastem.kernels.gaussian._block_normalize`, one
    vectorized exponential per entry), the requested outputs and, with
    ``want_stats``, the weighted statistics, into the chunk's slot of
    ``p_nk`` (K,), ``p_sums`` (K, D), ``p_ll`` and ``p_ws``.  (Row by row,
    with scalar loops over K and D, the pass was 4-5x slower at K = D = 8.)

    A missing entry (NaN) is left out of the product: it adds nothing to
    ``x log lambda`` nor ``log x!``, and its ``-lambda_kd`` (inside ``a_k``)
    is given back; ``p_miss`` (K, D) collects the responsibility of the
    rows missing feature ``d`` (the M-step's denominator is ``nk - miss``).
    Blocks without NaN skip that work.
    """
    _fm.wide_simd()
    N, D = X.shape
    K = a.shape[0]
    B = BLOCK_ROWS
    has_w = sw.shape[0] > 0
    w_lse = out_lse.shape[0] > 0
    w_resp = out_resp.shape[0] > 0
    w_label = out_label.shape[0] > 0
    w_out = w_lse or w_resp or w_label
    no_order = np.empty(0, np.int64)
    xt = np.empty((D, B + BLOCK_PAD))
    mt = np.empty((D, B + BLOCK_PAD))
    lp = np.empty((K, B + BLOCK_PAD))
    lf = np.empty(B)
    m = np.empty(B)
    s = np.empty(B)
    lse = np.empty(B)
    wb = np.empty(B)
    wr = np.empty(B)
    nk = np.empty(K)
    sums = np.empty((K, D))
    miss = np.empty((K, D))
    while True:
        c = _fm.fetch_add(next_chunk, 1)
        if c >= n_chunks:
            break
        nk[:] = 0.0
        sums[:] = 0.0
        miss[:] = 0.0
        ll = 0.0
        ws = 0.0
        start = c * N // n_chunks
        stop = (c + 1) * N // n_chunks
        for b0 in range(start, stop, B):
            nb = min(B, stop - b0)
            gaps = False
            for i in range(nb):
                acc = 0.0
                for d in range(D):
                    v = np.float64(X[b0 + i, d])
                    xt[d, i] = v
                    acc += _log_factorial(v, table)
                if acc != acc:  # a missing entry (NaN) in this row
                    gaps = True
                    acc = 0.0
                    for d in range(D):
                        v = xt[d, i]
                        if v != v:
                            xt[d, i] = 0.0
                        else:
                            acc += _log_factorial(v, table)
                lf[i] = acc
            if gaps:
                for d in range(D):
                    for i in range(nb):
                        v = np.float64(X[b0 + i, d])
                        mt[d, i] = 1.0 if v != v else 0.0
            for k in range(K):
                ak = a[k]
                for i in range(nb):
                    lp[k, i] = ak
                for d in range(D):
                    ld = loglam[k, d]
                    for i in range(nb):
                        lp[k, i] += xt[d, i] * ld
                if gaps:
                    for d in range(D):
                        lk = lam[k, d]
                        for i in range(nb):
                            lp[k, i] += mt[d, i] * lk
            # np.bool_: the one specialization the E-step kernel compiles
            _block_normalize(lp, nb, m, s, lse, np.bool_(True))
            for i in range(nb):
                lse[i] -= lf[i]
            if w_out:
                _write_rows(lp, lse, nb, no_order, b0, out_lse, out_resp,
                            out_label)
            if not want_stats:
                continue
            for i in range(nb):
                wi = sw[b0 + i] if has_w else 1.0
                wb[i] = wi
                if wi != 0.0:
                    ll += wi * lse[i]
                    ws += wi
            for k in range(K):
                tot = 0.0
                for i in range(nb):
                    r = lp[k, i] * wb[i]
                    wr[i] = r
                    tot += r
                if tot == 0.0:
                    continue
                nk[k] += tot
                for d in range(D):
                    acc = 0.0
                    for i in range(nb):
                        acc += wr[i] * xt[d, i]
                    sums[k, d] += acc
                if gaps:
                    for d in range(D):
                        acc = 0.0
                        for i in range(nb):
                            acc += wr[i] * mt[d, i]
                        miss[k, d] += acc
        _fm.put(p_nk, c, nk)
        _fm.put(p_sums, c, sums)
        _fm.put(p_miss, c, miss)
        p_ll[c] = ll
        p_ws[c] = ws


def _poisson_pass(X, sw, a, loglam, table, n_chunks, want_stats,
                  out_lse, out_resp, out_label, lam=None):
    """Log-densities, logsumexp, responsibilities and statistics, one pass.

    Parameters
    ----------
    X : (N, D) float64 or float32, non-negative integer counts (NaN for a
        missing entry)
    sw : (N,) sample weights, or length 0 for unit weights
    a : (K,) ``log w_k - sum_d lambda_kd``
    loglam : (K, D) ``log lambda_kd``
    table : (T,) ``log n!`` for ``n < T``
    n_chunks : fixed chunk count (depends on N only)
    want_stats : accumulate the statistics
    out_lse, out_resp, out_label : (N,), (N, K), (N,) outputs, written when
        their length is not zero

    lam : (K, D) ``lambda_kd`` (default ``exp(loglam)``), given back for a
        missing entry

    Returns
    -------
    nk, sums, miss, loglik, weight_sum
        ``miss[k, d]``: the weighted responsibility of the rows where
        feature ``d`` is missing.
    """
    K, D = loglam.shape
    if lam is None:
        lam = np.exp(loglam)
    parts = _partials.zeros(n_chunks, (K,), (K, D), (K, D), (), ())
    run_workers(_poisson_worker, (np.zeros(1, np.int64), X, sw, a, loglam,
                                  lam, table, n_chunks, want_stats, out_lse,
                                  out_resp, out_label) + parts, n_chunks)
    return _partials.reduce_partials(*parts)


@njit(**JIT)
def _count_problems(X):
    """Return ``(negative, non_integer, first_bad_row)`` over the rows of X.

    NaN counts as neither (the caller decides about NaN first).
    """
    N, D = X.shape
    neg = 0
    frac = 0
    first = -1
    for i in range(N):
        for d in range(D):
            v = X[i, d]
            bad = False
            if v != v:  # NaN: missing, neither
                continue
            if v < 0:
                neg += 1
                bad = True
            elif v != math.floor(v):
                frac += 1
                bad = True
            if bad and first < 0:
                first = i
    return neg, frac, first
