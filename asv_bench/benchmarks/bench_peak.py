"""The O(N K D^2) work against the machine's float64 multiply-add peak.

``track_fma_peak_gflops``: a numba loop of 128 independent multiply-add
chains (``acc = acc * a + b``) on every thread at once, GFLOP/s -- what the
hardware offers this suite (it moves with the machine's load, so read the
fraction below next to it).  ``track_fraction_of_peak``: GFLOP/s of a
full-covariance fit at fastem's default thread count over that peak,
counting ``2 D (D + 1)`` flops per row and component (the triangular
quadratic form ``U^T (x - mu)`` and the weighted scatter over the upper
triangle, ``D (D + 1) / 2`` multiply-adds each).  Per iteration by
differencing fits of ``1 + ITERS`` and 1 iterations (the fixed cost of a fit
cancels).  Self-contained like the rest of the suite (no ``fastem.bench``).
"""

import threading
import time

import numba
import numpy as np

from .common import ISSUE_SIZES, WORKLOADS, estimator, fit, initial_params, make_data

CHAINS = 128
ITERS = 3


@numba.njit(fastmath=True, nogil=True)
def _chains(n, a, b):
    acc = np.empty(CHAINS)
    for j in range(CHAINS):
        acc[j] = 1.0 + j * 1e-3
    for _ in range(n):
        for j in range(CHAINS):
            acc[j] = acc[j] * a + b
    s = 0.0
    for j in range(CHAINS):
        s += acc[j]
    return s


def fma_peak(threads, n=2_000_000, calls=5):
    """Best GFLOP/s of ``threads`` concurrent copies of :func:`_chains`."""
    _chains(10, 0.5, 0.5)
    best = 0.0
    for _ in range(calls):
        workers = [threading.Thread(target=_chains, args=(n, 0.9999999, 1e-7))
                   for _ in range(threads)]
        t0 = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        best = max(best, 2.0 * CHAINS * n * threads
                   / (time.perf_counter() - t0) / 1e9)
    return best


class TrackPeak:
    """FMA peak and the fraction of it the full-covariance pass reaches."""

    params = [["8d-K8-full", "32d-K16-full"]]
    param_names = ["workload"]
    unit = "fraction"
    timeout = 600

    def setup(self, name):
        d, k, ct = WORKLOADS[name]
        n = ISSUE_SIZES[name]
        self.X = make_data(n, d, k)
        self.init = initial_params(self.X, k, ct)
        self.k, self.ct = k, ct
        self.flops = 2.0 * d * (d + 1) * n * k
        fit(estimator("fastem", k, ct, self.init, max_iter=1), self.X)

    def _seconds_per_iter(self):
        times = []
        for it in (1, 1 + ITERS):
            est = estimator("fastem", self.k, self.ct, self.init, max_iter=it)
            t0 = time.perf_counter()
            fit(est, self.X)
            times.append(time.perf_counter() - t0)
        return (times[1] - times[0]) / ITERS

    def track_fma_peak_gflops(self, name):
        return fma_peak(numba.config.NUMBA_NUM_THREADS)

    track_fma_peak_gflops.unit = "GFLOP/s"

    def track_fraction_of_peak(self, name):
        per_iter = min(self._seconds_per_iter() for _ in range(3))
        peak = fma_peak(numba.config.NUMBA_NUM_THREADS)
        return self.flops / per_iter / 1e9 / peak
