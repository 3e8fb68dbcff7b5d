"""Private Numba kernels: per-row log-densities of HMM emissions.

An emission without a fused kernel path gives the HMM kernels
(:mod:`fastem.kernels.hmm`, its ``LATTICE`` copies) an (N, K) matrix of
log-densities, ``out[i, k] = log p(x_i | state k)``; these kernels compute
it, as serial ``nogil`` workers on a work queue over fixed row chunks (the
pattern of CONTRIBUTING, "Parallel kernels": every row is written by exactly
one chunk, so the result does not depend on the thread count).  Arrays in,
arrays out; no validation (the estimator checks the data first).
"""

import math

import numpy as np
from numba import njit

from fastem._config import JIT, run_workers
from fastem.kernels import fastmath as _fm
from fastem.kernels import partials as _partials


@njit(**JIT)
def _poisson_logb_worker(next_chunk, X, a, loglam, table, n_chunks, out):
    """Poisson log-densities of the queue's row chunks.

    ``out[i, k] = a[k] + sum_d x_id log lambda_kd - sum_d log(x_id!)`` with
    ``a[k] = -sum_d lambda_kd``; a zero count adds nothing (also where
    ``lambda_kd = 0``: ``log Poisson(0; 0) = 0``).
    """
    N, D = X.shape
    K = a.shape[0]
    T = table.shape[0]
    while True:
        c = _fm.fetch_add(next_chunk, 1)
        if c >= n_chunks:
            break
        for i in range(c * N // n_chunks, (c + 1) * N // n_chunks):
            lfact = 0.0
            for d in range(D):
                x = X[i, d]
                if x < T:
                    lfact += table[int(x)]
                else:
                    lfact += math.lgamma(x + 1.0)
            for k in range(K):
                v = a[k] - lfact
                for d in range(D):
                    x = X[i, d]
                    if x != 0:
                        v += x * loglam[k, d]
                out[i, k] = v


def poisson_log_emissions(X, a, loglam, table, n_chunks):
    """Return the (N, K) Poisson log-densities of the rows of ``X``.

    Parameters
    ----------
    X : (N, D) float64 or float32, non-negative integer counts
    a : (K,) ``-sum_d lambda_kd``
    loglam : (K, D) ``log lambda_kd`` (``-inf`` for a zero rate)
    table : (T,) ``log n!`` for ``n < T``
    n_chunks : fixed chunk count (depends on N only)

    Returns
    -------
    ndarray of shape (N, K)
    """
    out = np.empty((X.shape[0], a.shape[0]))
    run_workers(_poisson_logb_worker, (np.zeros(1, np.int64), X, a, loglam,
                                       table, n_chunks, out), n_chunks)
    return out


@njit(**JIT)
def _categorical_logb_worker(next_chunk, X, logE, n_chunks, out):
    """``out[i, k] = log emissionprob[k, x_i]`` over the queue's row chunks."""
    N = X.shape[0]
    K = logE.shape[0]
    while True:
        c = _fm.fetch_add(next_chunk, 1)
        if c >= n_chunks:
            break
        for i in range(c * N // n_chunks, (c + 1) * N // n_chunks):
            s = int(X[i, 0])
            for k in range(K):
                out[i, k] = logE[k, s]


@njit(**JIT)
def _categorical_counts_worker(next_chunk, X, gamma, n_chunks, p_obs):
    """Chunk ``c``'s ``p_obs[c, k, s] = sum_i gamma[i, k] [x_i = s]``."""
    N = X.shape[0]
    K = gamma.shape[1]
    while True:
        c = _fm.fetch_add(next_chunk, 1)
        if c >= n_chunks:
            break
        for i in range(c * N // n_chunks, (c + 1) * N // n_chunks):
            s = int(X[i, 0])
            for k in range(K):
                p_obs[c, k, s] += gamma[i, k]


def categorical_log_emissions(X, logE, n_chunks):
    """Return the (N, K) log-probabilities of the symbols ``X[:, 0]``.

    Parameters
    ----------
    X : (N, 1) float64 or float32 integer symbols, checked by the caller
    logE : (K, M) log emission probabilities
    n_chunks : fixed chunk count (depends on N only)

    Returns
    -------
    ndarray of shape (N, K)
    """
    out = np.empty((X.shape[0], logE.shape[0]))
    run_workers(_categorical_logb_worker, (np.zeros(1, np.int64), X, logE,
                                           n_chunks, out), n_chunks)
    return out


def categorical_counts(X, gamma, M, n_chunks):
    """Return ``obs[k, s] = sum_i gamma[i, k] [x_i = s]`` (K, M).

    Per-chunk partials summed in chunk order (thread-count independent).
    """
    (p_obs,) = _partials.zeros(n_chunks, (gamma.shape[1], M))
    run_workers(_categorical_counts_worker, (np.zeros(1, np.int64), X, gamma,
                                             n_chunks, p_obs), n_chunks)
    return _partials.chunk_sum(p_obs)


@njit(**JIT)
def _multinomial_logb_worker(next_chunk, X, logE, table, n_chunks, out):
    """Multinomial log-probabilities of the queue's row chunks.

    ``out[i, k] = log n_i! - sum_j log x_ij! + sum_j x_ij log p_kj`` with
    ``n_i = sum_j x_ij``; a zero count adds nothing (also where
    ``p_kj = 0``).
    """
    N, M = X.shape
    K = logE.shape[0]
    T = table.shape[0]
    while True:
        c = _fm.fetch_add(next_chunk, 1)
        if c >= n_chunks:
            break
        for i in range(c * N // n_chunks, (c + 1) * N // n_chunks):
            n = 0.0
            lfact = 0.0
            for j in range(M):
                x = X[i, j]
                n += x
                lfact += table[int(x)] if x < T else math.lgamma(x + 1.0)
            base = (table[int(n)] if n < T else math.lgamma(n + 1.0)) - lfact
            for k in range(K):
                v = base
                for j in range(M):
                    x = X[i, j]
                    if x != 0:
                        v += x * logE[k, j]
                out[i, k] = v


def multinomial_log_emissions(X, logE, table, n_chunks):
    """Return the (N, K) multinomial log-probabilities of the rows of ``X``.

    Parameters
    ----------
    X : (N, M) float64 or float32 non-negative integer counts
    logE : (K, M) log emission probabilities (``-inf`` for a zero one)
    table : (T,) ``log n!`` for ``n < T``
    n_chunks : fixed chunk count (depends on N only)

    Returns
    -------
    ndarray of shape (N, K)
    """
    out = np.empty((X.shape[0], logE.shape[0]))
    run_workers(_multinomial_logb_worker, (np.zeros(1, np.int64), X, logE,
                                           table, n_chunks, out), n_chunks)
    return out


@njit(**JIT)
def _weighted_sums_worker(next_chunk, X, gamma, n_chunks, p_post, p_obs):
    """Chunk ``c``'s posterior totals and posterior-weighted sums.

    ``p_post[c, k] = sum_i gamma_ik`` and ``p_obs[c, k, j] = sum_i gamma_ik
    x_ij`` over the chunk's rows.
    """
    N, D = X.shape
    K = gamma.shape[1]
    while True:
        c = _fm.fetch_add(next_chunk, 1)
        if c >= n_chunks:
            break
        for i in range(c * N // n_chunks, (c + 1) * N // n_chunks):
            for k in range(K):
                g = gamma[i, k]
                p_post[c, k] += g
                for j in range(D):
                    p_obs[c, k, j] += g * X[i, j]


def posterior_weighted_sums(X, gamma, n_chunks):
    """Return ``post = gamma.sum(0)`` (K,) and ``obs = gamma.T @ X`` (K, D).

    One parallel pass with per-chunk partials summed in chunk order: no
    BLAS call (whose threads would compete with the kernels' on the same
    cores) and no slow NumPy reduction over a narrow (N, K) array.
    """
    K, D = gamma.shape[1], X.shape[1]
    p_post, p_obs = _partials.zeros(n_chunks, (K,), (K, D))
    run_workers(_weighted_sums_worker, (np.zeros(1, np.int64), X, gamma,
                                        n_chunks, p_post, p_obs), n_chunks)
    return _partials.chunk_sum(p_post), _partials.chunk_sum(p_obs)


# ------------------------------------------------------------ GMM emissions
_GMM_BLOCK = 128     # rows per block of the GMM workers
# Components j = k * M + m (state k, mixture m).  ``prec`` is (J, 1, D) with
# the inverse variances for the diagonal layouts (diag, spherical), or
# (J, D, D) upper Cholesky factors U of the precisions (U U^T = inv(cov);
# full, tied) with ``full`` set; ``logc[j] = log w_km + log det U_j - D/2 log
# 2 pi``.  Both layouts share one compiled signature per dtype.  Rows are
# taken in blocks of B, transposed into ``xt`` (D, B), so that every inner
# loop runs over the block's rows (contiguous, vectorizable).
@njit(**JIT)
def _gmm_block_logp(X, r0, n, means, prec, logc, full, xt, dt, acc, lpb):
    """``lpb[j, i] = log w_j N(x_{r0+i} | mu_j, Sigma_j)`` for ``i < n``.

    Also fills ``xt[d, i] = x_{r0+i, d}`` (float64).
    """
    _fm.inline_into_callers()
    D = X.shape[1]
    J = means.shape[0]
    for i in range(n):
        for d in range(D):
            xt[d, i] = X[r0 + i, d]
    for j in range(J):
        for i in range(n):
            acc[i] = 0.0
        if full:
            for a in range(D):
                mu = means[j, a]
                for i in range(n):
                    dt[a, i] = xt[a, i] - mu
            for b in range(D):
                for i in range(n):
                    dt[D, i] = 0.0
                for a in range(b + 1):
                    u = prec[j, a, b]
                    for i in range(n):
                        dt[D, i] += dt[a, i] * u
                for i in range(n):
                    acc[i] += dt[D, i] * dt[D, i]
        else:
            for d in range(D):
                mu = means[j, d]
                p = prec[j, 0, d]
                for i in range(n):
                    t = xt[d, i] - mu
                    acc[i] += t * t * p
        c = logc[j]
        for i in range(n):
            lpb[j, i] = c - 0.5 * acc[i]


@njit(**JIT)
def _gmm_logb_worker(next_chunk, X, means, prec, logc, M, full, B, n_chunks,
                     out):
    """``out[i, k] = log sum_m w_km N(x_i | mu_km, Sigma_km)`` per chunk."""
    N, D = X.shape
    J = means.shape[0]
    K = J // M
    xt = np.empty((D, B))
    dt = np.empty((D + 1, B))
    acc = np.empty(B)
    mx = np.empty(B)
    lpb = np.empty((J, B))
    while True:
        c = _fm.fetch_add(next_chunk, 1)
        if c >= n_chunks:
            break
        hi = (c + 1) * N // n_chunks
        for r0 in range(c * N // n_chunks, hi, B):
            n = min(B, hi - r0)
            _gmm_block_logp(X, r0, n, means, prec, logc, full, xt, dt, acc,
                            lpb)
            for k in range(K):
                j0 = k * M
                for i in range(n):
                    mx[i] = lpb[j0, i]
                for m in range(1, M):
                    for i in range(n):
                        mx[i] = max(mx[i], lpb[j0 + m, i])
                for i in range(n):
                    acc[i] = 0.0
                for m in range(M):
                    for i in range(n):
                        acc[i] += _fm.exp(lpb[j0 + m, i] - mx[i])
                # a row whose components are all -inf: exp(nan) -> garbage,
                # replaced by -inf below (s >= 1 otherwise)
                for i in range(n):
                    acc[i] = mx[i] + _fm.log(max(acc[i], 1.0))
                for i in range(n):
                    out[r0 + i, k] = acc[i] if mx[i] > -np.inf else -np.inf


@njit(**JIT)
def _gmm_stats_worker(next_chunk, X, gamma, means, prec, logc, ref, M, full,
                      B, n_chunks, p_post, p_nk, p_sums, p_scat):
    """Chunk ``c``'s mixture-component statistics from the state posteriors.

    With ``r = gamma_ik w_km N_km(x_i) / sum_m' w_km' N_km'(x_i)``:
    ``p_post[c, k] += gamma_ik``, ``p_nk[c, j] += r``, ``p_sums[c, j] += r
    x_i``, and the scatter about ``ref[j]``: ``p_scat[c, j, 0, d] += r (x_id
    - ref_jd)^2`` (diagonal layouts) or ``p_scat[c, j, a, b] += r (x_ia -
    ref_ja)(x_ib - ref_jb)`` for ``a <= b`` (``full``).
    """
    N, D = X.shape
    J = means.shape[0]
    K = J // M
    xt = np.empty((D, B))
    dt = np.empty((D + 1, B))
    acc = np.empty(B)
    mx = np.empty(B)
    lpb = np.empty((J, B))
    while True:
        c = _fm.fetch_add(next_chunk, 1)
        if c >= n_chunks:
            break
        hi = (c + 1) * N // n_chunks
        for r0 in range(c * N // n_chunks, hi, B):
            n = min(B, hi - r0)
            _gmm_block_logp(X, r0, n, means, prec, logc, full, xt, dt, acc,
                            lpb)
            # responsibilities r into lpb
            for k in range(K):
                j0 = k * M
                s_post = 0.0
                for i in range(n):
                    s_post += gamma[r0 + i, k]
                p_post[c, k] += s_post
                for i in range(n):
                    mx[i] = lpb[j0, i]
                for m in range(1, M):
                    for i in range(n):
                        mx[i] = max(mx[i], lpb[j0 + m, i])
                for i in range(n):
                    acc[i] = 0.0
                    if mx[i] == -np.inf:
                        mx[i] = 0.0
                for m in range(M):
                    for i in range(n):
                        e = _fm.exp(lpb[j0 + m, i] - mx[i])
                        lpb[j0 + m, i] = e
                        acc[i] += e
                for i in range(n):
                    s = acc[i]
                    acc[i] = gamma[r0 + i, k] / s if s > 0.0 else 0.0
                for m in range(M):
                    for i in range(n):
                        lpb[j0 + m, i] *= acc[i]
            for j in range(J):
                tot = 0.0
                for i in range(n):
                    tot += lpb[j, i]
                p_nk[c, j] += tot
                for d in range(D):
                    mu = ref[j, d]
                    sx = 0.0
                    for i in range(n):
                        x = xt[d, i]
                        sx += lpb[j, i] * x
                        dt[d, i] = x - mu
                    p_sums[c, j, d] += sx
                if full:
                    for a in range(D):
                        for i in range(n):
                            dt[D, i] = lpb[j, i] * dt[a, i]
                        for b in range(a, D):
                            sab = 0.0
                            for i in range(n):
                                sab += dt[D, i] * dt[b, i]
                            p_scat[c, j, a, b] += sab
                else:
                    for d in range(D):
                        sdd = 0.0
                        for i in range(n):
                            t = dt[d, i]
                            sdd += lpb[j, i] * t * t
                        p_scat[c, j, 0, d] += sdd


def gmm_log_emissions(X, means, prec, logc, M, full, n_chunks):
    """Return the (N, K) log-densities of Gaussian-mixture emissions.

    Parameters
    ----------
    X : (N, D) float64 or float32
    means : (K * M, D) component means, state-major (``j = k * M + m``)
    prec : (K * M, 1, D) inverse variances, or (K * M, D, D) upper Cholesky
        factors of the precisions (``full``)
    logc : (K * M,) ``log w_km + log det U_km - D/2 log 2 pi``
    M : int, mixtures per state
    full : bool, the layout of ``prec``
    n_chunks : fixed chunk count (depends on N only)

    Returns
    -------
    ndarray of shape (N, K)
    """
    out = np.empty((X.shape[0], means.shape[0] // M))
    run_workers(_gmm_logb_worker, (np.zeros(1, np.int64), X, means, prec,
                                   logc, M, full, _GMM_BLOCK, n_chunks, out),
                n_chunks)
    return out


def gmm_weighted_stats(X, gamma, means, prec, logc, ref, M, full, n_chunks):
    """Return the mixture-component statistics of one pass over ``X``.

    Parameters
    ----------
    X : (N, D) float64 or float32
    gamma : (N, K) state posteriors, C-contiguous
    means, prec, logc, M, full : as :func:`gmm_log_emissions`
    ref : (K * M, D) the point the scatter is taken about
    n_chunks : fixed chunk count (depends on N only)

    Returns
    -------
    post : (K,) ``sum_i gamma_ik``
    nk : (K * M,) component posterior totals
    sums : (K * M, D) posterior-weighted sums of x
    scatter : (K * M, D) weighted squares about ``ref`` (diagonal layouts)
        or (K * M, D, D) weighted outer products (``full``, symmetric)

    Per-chunk partials summed in chunk order (thread-count independent).
    """
    J, D = means.shape
    K = gamma.shape[1]
    p_post, p_nk, p_sums, p_scat = _partials.zeros(
        n_chunks, (K,), (J,), (J, D), (J, D if full else 1, D))
    run_workers(_gmm_stats_worker, (np.zeros(1, np.int64), X, gamma, means,
                                    prec, logc, ref, M, full, _GMM_BLOCK,
                                    n_chunks, p_post, p_nk, p_sums, p_scat),
                n_chunks)
    post, nk, sums, scat = _partials.reduce_partials(p_post, p_nk, p_sums,
                                                     p_scat)
    if full:
        _partials.mirror_upper(scat)
    else:
        scat = scat[:, 0, :]
    return post, nk, sums, scat
