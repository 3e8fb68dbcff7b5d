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
(:func:`fastem._config.run_workers`); partials are reduced in chunk order,
so results do not depend on the thread count.  No validation or
exception here: the family (:mod:`fastem.families.poisson`) checks the data
first.  Compiled once per input dtype (float64, float32); the arithmetic
runs in float64.
"""

import math

import numpy as np
from numba import njit

from fastem._config import JIT, run_workers
from fastem.kernels import fastmath as _fm
from fastem.kernels import partials as _partials

LOG_FACTORIAL_TABLE = np.array([math.lgamma(n + 1.0) for n in range(1024)])


@njit(**JIT)
def _log_factorial(x, table):
    n = table.shape[0]
    if x < n:
        return table[int(x)]
    return math.lgamma(x + 1.0)


@njit(**JIT)
def _poisson_worker(next_chunk, X, sw, a, loglam, table, n_chunks, want_stats,
                    out_lse, out_resp, out_label, p_nk, p_sums, p_ll, p_ws):
    """Chunks from the shared counter until none is left (see the module).

    Per row: the log-densities, their logsumexp, the requested outputs and,
    with ``want_stats``, the weighted statistics, into the chunk's slot of
    ``p_nk`` (K,), ``p_sums`` (K, D), ``p_ll`` and ``p_ws``.
    """
    N, D = X.shape
    K = a.shape[0]
    has_w = sw.shape[0] > 0
    w_lse = out_lse.shape[0] > 0
    w_resp = out_resp.shape[0] > 0
    w_label = out_label.shape[0] > 0
    lp = np.empty(K)
    x = np.empty(D)
    nk = np.empty(K)
    sums = np.empty((K, D))
    while True:
        c = _fm.fetch_add(next_chunk, 1)
        if c >= n_chunks:
            break
        nk[:] = 0.0
        sums[:] = 0.0
        ll = 0.0
        ws = 0.0
        for i in range(c * N // n_chunks, (c + 1) * N // n_chunks):
            lfact = 0.0
            for d in range(D):
                x[d] = X[i, d]
                lfact += _log_factorial(x[d], table)
            m = -np.inf
            best = 0
            for k in range(K):
                v = a[k]
                for d in range(D):
                    v += x[d] * loglam[k, d]
                lp[k] = v
                if v > m:
                    m = v
                    best = k
            s = 0.0
            for k in range(K):
                lp[k] = math.exp(lp[k] - m)
                s += lp[k]
            lse = m + math.log(s) - lfact
            if w_lse:
                out_lse[i] = lse
            if w_label:
                out_label[i] = best
            inv = 1.0 / s
            if w_resp:
                for k in range(K):
                    out_resp[i, k] = lp[k] * inv
            if want_stats:
                wi = 1.0
                if has_w:
                    wi = sw[i]
                if wi != 0.0:
                    ll += wi * lse
                    ws += wi
                    f = wi * inv
                    for k in range(K):
                        r = f * lp[k]
                        nk[k] += r
                        for d in range(D):
                            sums[k, d] += r * x[d]
        _fm.put(p_nk, c, nk)
        _fm.put(p_sums, c, sums)
        p_ll[c] = ll
        p_ws[c] = ws


def _poisson_pass(X, sw, a, loglam, table, n_chunks, want_stats,
                  out_lse, out_resp, out_label):
    """Log-densities, logsumexp, responsibilities and statistics, one pass.

    Parameters
    ----------
    X : (N, D) float64 or float32, non-negative integer counts
    sw : (N,) sample weights, or length 0 for unit weights
    a : (K,) ``log w_k - sum_d lambda_kd``
    loglam : (K, D) ``log lambda_kd``
    table : (T,) ``log n!`` for ``n < T``
    n_chunks : fixed chunk count (depends on N only)
    want_stats : accumulate the statistics
    out_lse, out_resp, out_label : (N,), (N, K), (N,) outputs, written when
        their length is not zero

    Returns
    -------
    nk, sums, loglik, weight_sum
    """
    K, D = loglam.shape
    parts = _partials.zeros(n_chunks, (K,), (K, D), (), ())
    run_workers(_poisson_worker, (np.zeros(1, np.int64), X, sw, a, loglam,
                                  table, n_chunks, want_stats, out_lse,
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
            if v < 0:
                neg += 1
                bad = True
            elif v != math.floor(v):
                frac += 1
                bad = True
            if bad and first < 0:
                first = i
    return neg, frac, first
