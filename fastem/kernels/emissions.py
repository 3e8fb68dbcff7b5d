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
