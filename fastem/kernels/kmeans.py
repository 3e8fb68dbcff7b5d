"""Private Numba kernels for fastem's own weighted k-means.

k-means++ seeding followed by Lloyd iterations, used to initialize mixtures.

Randomness comes in from the caller as pre-drawn uniforms, so the kernels are
deterministic functions of their inputs.  Lloyd's reduction uses the same
fixed chunking as the EM pass: results do not depend on the thread count.
"""

import numpy as np
from numba import njit

from fastem._config import JIT, run_workers
from fastem.kernels import fastmath as _fm
from fastem.kernels import partials as _partials


@njit(**JIT)
def _sqdist(X, i, c):
    s = 0.0
    for j in range(X.shape[1]):
        t = X[i, j] - c[j]
        s += t * t
    return s


def _update_min_dist(X, center, d2, cand_d2, n_chunks):
    """cand_d2[i] = min(d2[i], |x_i - center|^2) for all rows (parallel)."""
    K, D = 1, X.shape[1]
    run_workers(_lloyd_worker, (np.zeros(1, np.int64), X, _NO_W,
                                center.reshape(1, D), _NO_LABELS, n_chunks)
                + _partials.zeros(0, (K, D), (K,), ()) + (d2, cand_d2),
                n_chunks)


@njit(**JIT)
def _weighted_sum(w, d2, has_w):
    s = 0.0
    for i in range(d2.shape[0]):
        s += (w[i] if has_w else 1.0) * d2[i]
    return s


@njit(**JIT)
def _cumulative(w, d2, has_w, use_d2, cum):
    """cum[i] = sum_{j <= i} w_j (times d2_j with ``use_d2``), in order."""
    acc = 0.0
    for i in range(cum.shape[0]):
        v = w[i] if has_w else 1.0
        if use_d2:
            v = v * d2[i]
        acc += v
        cum[i] = acc


def _pick(cum, u):
    """Index of the first cumulative value > u * total (binary search)."""
    idx = int(np.searchsorted(cum, u * cum[-1], side="right"))
    return min(idx, cum.shape[0] - 1)


def _kmeanspp(X, sw, K, uniforms, n_trials, n_chunks):
    """Greedy k-means++ seeding; returns the indices of the K seeds.

    ``uniforms`` holds ``1 + (K - 1) * n_trials`` numbers in [0, 1).  The
    loop over seeds and trials is Python (Ctrl-C is acted on between two
    seeds); each distance update is one parallel pass.
    """
    from fastem._config import check_interrupt

    N, D = X.shape
    has_w = sw.shape[0] > 0
    w = sw if has_w else np.ones(1)
    cum = np.empty(N)
    _cumulative(w, cum, has_w, False, cum)
    idx = np.empty(K, dtype=np.int64)
    idx[0] = _pick(cum, uniforms[0])
    center = np.array(X[idx[0]], dtype=np.float64)
    d2 = np.full(N, np.inf)
    _update_min_dist(X, center, d2, d2, n_chunks)
    cand = np.empty(N)
    best_d2 = np.empty(N)
    u = 1
    for k in range(1, K):
        check_interrupt()
        _cumulative(w, d2, has_w, True, cum)
        best_pot = np.inf
        best_idx = -1
        for _ in range(n_trials):
            if cum[-1] > 0.0:
                ci = _pick(cum, uniforms[u])
            else:
                # Every point coincides with a chosen seed: reuse the weights.
                ci = min(int(uniforms[u] * N), N - 1)
            u += 1
            center[:] = X[ci]
            _update_min_dist(X, center, d2, cand, n_chunks)
            pot = _weighted_sum(w, cand, has_w)
            if pot < best_pot:
                best_pot = pot
                best_idx = ci
                best_d2[:] = cand
        idx[k] = best_idx
        d2[:] = best_d2
    return idx


_NO_W = np.empty(0)
_NO_LABELS = np.empty(0, np.int64)
_NO_D2 = np.empty(0)


@njit(**JIT)
def _lloyd_worker(next_chunk, X, sw, centers, labels, n_chunks, p_sum, p_cnt,
                  p_in, d2, cand_d2):
    """Assign the queue's chunks' rows to their nearest center; partials.

    With a non-empty ``d2`` it is k-means++'s distance update instead:
    ``cand_d2[i] = min(d2[i], |x_i - centers[0]|^2)`` (one worker for both:
    a second top-level kernel would cost its own compile).
    """
    N, D = X.shape
    K = centers.shape[0]
    has_w = sw.shape[0] > 0
    s = np.empty((K, D))
    cnt = np.empty(K)
    while True:
        c = _fm.fetch_add(next_chunk, 1)
        if c >= n_chunks:
            break
        if d2.shape[0] > 0:
            for i in range(c * N // n_chunks, (c + 1) * N // n_chunks):
                v = _sqdist(X, i, centers[0])
                cand_d2[i] = v if v < d2[i] else d2[i]
            continue
        s[:] = 0.0
        cnt[:] = 0.0
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


def _lloyd_step(X, sw, centers, labels, n_chunks):
    """Assign every row to its nearest center (parallel).

    Returns weighted sums, counts and inertia (reduced in chunk order).
    """
    K, D = centers.shape
    p_sum, p_cnt, p_in = _partials.zeros(n_chunks, (K, D), (K,), ())
    run_workers(_lloyd_worker, (np.zeros(1, np.int64), X, sw, centers,
                                labels, n_chunks, p_sum, p_cnt, p_in, _NO_D2,
                                _NO_D2), n_chunks)
    return _partials.reduce_partials(p_sum, p_cnt, p_in)


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
