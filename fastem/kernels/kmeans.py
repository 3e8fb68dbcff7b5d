"""Private Numba kernels for fastem's own weighted k-means.

k-means++ seeding followed by Lloyd iterations, used to initialize mixtures.

Randomness comes in from the caller as pre-drawn uniforms, so the kernels are
deterministic functions of their inputs.  Lloyd's reduction uses the same
fixed chunking as the EM pass: results do not depend on the thread count.
"""

import numpy as np
from numba import njit, prange

from fastem._config import JIT, PJIT
from fastem.kernels import fastmath as _fm


@njit(**JIT)
def _sqdist(X, i, c):
    s = 0.0
    for j in range(X.shape[1]):
        t = X[i, j] - c[j]
        s += t * t
    return s


@njit(**PJIT)
def _update_min_dist(X, center, d2, cand_d2, n_chunks):
    """cand_d2[i] = min(d2[i], |x_i - center|^2) for all rows."""
    N = X.shape[0]
    for c in prange(n_chunks):
        for i in range(c * N // n_chunks, (c + 1) * N // n_chunks):
            v = _sqdist(X, i, center)
            cand_d2[i] = v if v < d2[i] else d2[i]


@njit(**JIT)
def _weighted_sum(w, d2, has_w):
    s = 0.0
    for i in range(d2.shape[0]):
        s += (w[i] if has_w else 1.0) * d2[i]
    return s


@njit(**JIT)
def _pick(cum, u):
    """Index of the first cumulative value > u * total (binary search)."""
    target = u * cum[-1]
    idx = np.searchsorted(cum, target, side="right")
    return min(idx, cum.shape[0] - 1)


@njit(**JIT)
def _kmeanspp(X, sw, K, uniforms, n_trials, n_chunks):
    """Greedy k-means++ seeding; returns the indices of the K seeds.

    ``uniforms`` holds ``1 + (K - 1) * n_trials`` numbers in [0, 1).
    """
    N, D = X.shape
    has_w = sw.shape[0] > 0
    w = sw if has_w else np.ones(1)
    cum = np.empty(N)
    acc = 0.0
    for i in range(N):
        acc += w[i] if has_w else 1.0
        cum[i] = acc
    idx = np.empty(K, dtype=np.int64)
    idx[0] = _pick(cum, uniforms[0])
    center = np.empty(D)
    for j in range(D):
        center[j] = X[idx[0], j]
    d2 = np.full(N, np.inf)
    _update_min_dist(X, center, d2, d2, n_chunks)
    cand = np.empty(N)
    best_d2 = np.empty(N)
    u = 1
    for k in range(1, K):
        acc = 0.0
        for i in range(N):
            acc += (w[i] if has_w else 1.0) * d2[i]
            cum[i] = acc
        best_pot = np.inf
        best_idx = -1
        for t in range(n_trials):
            if cum[-1] > 0.0:
                ci = _pick(cum, uniforms[u])
            else:
                # Every point coincides with a chosen seed: reuse the weights.
                ci = min(int(uniforms[u] * N), N - 1)
            u += 1
            for j in range(D):
                center[j] = X[ci, j]
            _update_min_dist(X, center, d2, cand, n_chunks)
            pot = _weighted_sum(w, cand, has_w)
            if pot < best_pot:
                best_pot = pot
                best_idx = ci
                # element copies: a slice assignment compiles a shape
                # check whose error message costs seconds of compile time
                for i in range(N):
                    best_d2[i] = cand[i]
        idx[k] = best_idx
        for i in range(N):
            d2[i] = best_d2[i]
    return idx


@njit(**PJIT)
def _lloyd_step(X, sw, centers, labels, n_chunks):
    """Assign every row to its nearest center.

    Returns weighted sums, counts and inertia (reduced in chunk order).
    """
    N, D = X.shape
    K = centers.shape[0]
    has_w = sw.shape[0] > 0
    p_sum, p_cnt, p_in = _lloyd_partials(n_chunks, K, D)
    for c in prange(n_chunks):
        s = np.zeros((K, D))
        cnt = np.zeros(K)
        inertia = 0.0
        for i in range(c * N // n_chunks, (c + 1) * N // n_chunks):
            best = 0
            bd = np.inf
            for k in range(K):
                v = _sqdist(X, i, centers[k])
                if v < bd:
                    bd = v
                    best = k
            labels[i] = best
            wi = sw[i] if has_w else 1.0
            cnt[best] += wi
            inertia += wi * bd
            for j in range(D):
                s[best, j] += wi * X[i, j]
        _fm.put(p_sum, c, s)
        _fm.put(p_cnt, c, cnt)
        p_in[c] = inertia
    return _lloyd_reduce(p_sum, p_cnt, p_in)


@njit(**JIT)
def _lloyd_partials(n_chunks, K, D):
    # Outside the parallel function: there, every np.zeros or array
    # expression would be a parallel region (a thread-pool wake-up) of its own.
    return np.zeros((n_chunks, K, D)), np.zeros((n_chunks, K)), np.zeros(n_chunks)


@njit(**JIT)
def _lloyd_reduce(p_sum, p_cnt, p_in):
    tot = p_sum[0].copy()
    cnt = p_cnt[0].copy()
    inertia = p_in[0]
    for c in range(1, p_sum.shape[0]):
        tot += p_sum[c]
        cnt += p_cnt[c]
        inertia += p_in[c]
    return tot, cnt, inertia


def _lloyd(X, sw, centers, max_iter, tol, n_chunks):
    """Run Lloyd iterations from ``centers``.

    Stops when the squared center shift is at most ``tol``.  Empty clusters keep
    their previous center.  The loop is Python, one parallel kernel call per
    iteration (the centre update is K x D): Ctrl-C is acted on between two
    iterations (:func:`fastem._config.check_interrupt`), and only the
    assignment step is compiled.

    Returns
    -------
    centers, labels, n_iter
    """
    from fastem._config import check_interrupt

    N = X.shape[0]
    labels = np.empty(N, dtype=np.int64)
    centers = np.array(centers, dtype=np.float64)
    n_iter = 0
    for it in range(max_iter):
        n_iter = it + 1
        tot, cnt, _ = _lloyd_step(X, sw, centers, labels, n_chunks)
        check_interrupt()
        filled = cnt > 0.0
        new = centers.copy()
        new[filled] = tot[filled] / cnt[filled, None]
        shift = float(((new - centers) ** 2).sum())
        centers = new
        if shift <= tol:
            break
    # Final assignment consistent with the returned centers.
    _lloyd_step(X, sw, centers, labels, n_chunks)
    return centers, labels, n_iter
