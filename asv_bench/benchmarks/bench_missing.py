"""Missing values inside EM (``nan_policy='marginalize'``), issue 5.

Seconds per EM iteration with a fraction of the entries set to NaN at random
(MCAR), next to the same fit on the complete data, from the same explicit
start, so the history shows the cost of missingness as a ratio.  Also the
observed-data lower bound, so a speed-up that changes answers shows.
"""

import numpy as np

from .common import ITERS, initial_params, iteration_timer, make_data

try:
    from fastem import GaussianMixture
except ImportError:  # pragma: no cover
    GaussianMixture = None


WORKLOADS = {"8d-K8-full": (8, 8, "full"), "8d-K8-diag": (8, 8, "diag"),
             "1d-K2-full": (1, 2, "full")}


def _with_nans(X, frac, seed=3):
    Xm = np.array(X, dtype=np.float64)
    Xm[np.random.default_rng(seed).random(Xm.shape) < frac] = np.nan
    return Xm


def _estimator(k, ct, init, max_iter=ITERS):
    if "nan_policy" not in GaussianMixture().get_params():
        raise NotImplementedError("this fastem has no nan_policy")
    return GaussianMixture(n_components=k, covariance_type=ct, tol=0.0,
                           max_iter=max_iter, nan_policy="marginalize", **init)


class TimeFitMissing:
    """fastem: s/iter with 0% and 20% of entries missing (8-D and 1-D)."""

    params = (list(WORKLOADS), [0.0, 0.2])
    param_names = ["workload", "missing_fraction"]
    timer = staticmethod(iteration_timer(ITERS))
    number = 1
    repeat = (2, 7, 10.0)
    warmup_time = 0
    timeout = 300

    def setup(self, workload, frac):
        d, k, ct = WORKLOADS[workload]
        X = make_data(100_000, d, k)
        self.X = _with_nans(X, frac) if frac else np.asarray(X, np.float64)
        self.init = initial_params(X, k, ct)
        _estimator(k, ct, self.init, max_iter=1).fit(self.X[:2000])  # JIT
        self.est = _estimator(k, ct, self.init)

    def time_fit(self, workload, frac):
        self.est.fit(self.X)


class TrackMissingLowerBound:
    """Observed-data lower bound after ``ITERS`` iterations, 20% missing."""

    params = ["8d-K8-full", "8d-K8-diag"]
    param_names = ["workload"]
    unit = "mean log-likelihood"

    def setup(self, workload):
        d, k, ct = WORKLOADS[workload]
        X = make_data(20_000, d, k)
        self.X = _with_nans(X, 0.2)
        self.init = initial_params(X, k, ct)

    def track_lower_bound(self, workload):
        d, k, ct = WORKLOADS[workload]
        return float(_estimator(k, ct, self.init).fit(self.X).lower_bound_)
