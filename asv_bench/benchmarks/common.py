"""Shared helpers of fastem's asv suite: data, explicit starts, estimators.

Self-contained on purpose (it does not import ``fastem.bench``) so that the
suite can run against older commits: it only needs ``fastem.GaussianMixture``.

Every fit starts from explicit ``weights_init``/``means_init``/
``precisions_init`` with ``tol=0`` and a fixed ``max_iter``, so each run does
the same EM work, and scikit-learn gets exactly the same data and start.
"""

import functools
import gc
import os
import time
import warnings

import numpy as np

try:  # imported here so asv's forkserver loads it once for every benchmark
    from sklearn.mixture import GaussianMixture as SklearnGaussianMixture
except ImportError:  # pragma: no cover - sklearn is in the bench extra
    SklearnGaussianMixture = None

from fastem import GaussianMixture as FastemGaussianMixture

LIBRARIES = ["fastem", "sklearn"]

# EM iterations of every timed fit.
ITERS = 10

# Named workloads (n_features, n_components, covariance_type) of issue 3's
# table; each benchmark class picks its own n_samples.
WORKLOADS = {
    "1d-K2-full": (1, 2, "full"),
    "8d-K8-full": (8, 8, "full"),
    "8d-K8-diag": (8, 8, "diag"),
    "32d-K16-full": (32, 16, "full"),
}

# Issue 3's workloads at a tenth of its sizes (n_samples), so that the
# scikit-learn runs stay affordable.
ISSUE_SIZES = {
    "1d-K2-full": 200_000,
    "8d-K8-full": 20_000,
    "8d-K8-diag": 48_000,
    "32d-K16-full": 20_000,
}


def iteration_timer(iters):
    """Return an asv ``timer``: the wall clock divided by ``iters``.

    A benchmark that times one ``fit`` of ``iters`` iterations and sets
    ``timer = staticmethod(iteration_timer(iters))`` reports seconds per EM
    iteration (the fixed cost of a fit -- validation, scikit-learn's final
    E-step -- is spread over the iterations).
    """

    def timer():
        return time.perf_counter() / iters

    return timer


@functools.lru_cache(maxsize=4)
def make_data(n_samples, n_features, n_components, dtype="float64", seed=0):
    """Deterministic Gaussian-mixture data, C-contiguous.

    1-D: component k is N(20 (k + 1), 5), weight proportional to k + 1 (K=2:
    the classic 20/40 example).  D > 1: means from N(0, 4^2), covariances
    ``A A^T / D + I / 2``.  Cached: asv re-runs ``setup`` before each sample
    (do not modify the result; it is not made read-only because numba would
    compile separate kernels for read-only arrays).
    """
    rng = np.random.default_rng(seed)
    n, d, k = n_samples, n_features, n_components
    weights = np.arange(1, k + 1, dtype=np.float64)
    labels = rng.choice(k, size=n, p=weights / weights.sum())
    if d == 1:
        X = (20.0 * (labels + 1) + 5.0 * rng.standard_normal(n)).reshape(n, 1)
    else:
        X = rng.standard_normal((n, d))
        means = rng.normal(0.0, 4.0, size=(k, d))
        for j in range(k):
            a = rng.standard_normal((d, d))
            chol = np.linalg.cholesky(a @ a.T / d + 0.5 * np.eye(d))
            rows = labels == j
            X[rows] = X[rows] @ chol.T + means[j]
    return np.ascontiguousarray(X, dtype=dtype)


def initial_params(X, n_components, covariance_type, seed=1):
    """Uniform weights, K distinct rows as means, the data covariance for all.

    Returns a dict of ``weights_init``, ``means_init``, ``precisions_init``.
    """
    rng = np.random.default_rng(seed)
    n, d = X.shape
    k = n_components
    means = np.asarray(X[np.sort(rng.choice(n, size=k, replace=False))],
                       dtype=np.float64)
    cov = np.atleast_2d(np.cov(np.asarray(X, dtype=np.float64), rowvar=False))
    cov = cov + 1e-6 * np.eye(d)
    prec = {
        "full": lambda: np.repeat(np.linalg.inv(cov)[None], k, axis=0),
        "tied": lambda: np.linalg.inv(cov),
        "diag": lambda: np.repeat((1.0 / np.diag(cov))[None], k, axis=0),
        "spherical": lambda: np.full(k, 1.0 / np.diag(cov).mean()),
    }[covariance_type]()
    return {"weights_init": np.full(k, 1.0 / k), "means_init": means,
            "precisions_init": prec}


def has_n_threads():
    """Whether this fastem's GaussianMixture takes ``n_threads``."""
    return "n_threads" in FastemGaussianMixture().get_params()


def estimator(library, n_components, covariance_type, init, max_iter=ITERS,
              n_threads=None):
    """A GaussianMixture of ``library`` with the explicit start ``init``.

    Raises NotImplementedError (asv: skipped) when scikit-learn is missing or
    ``n_threads`` is asked of a fastem that does not have it.
    """
    kw = dict(n_components=n_components, covariance_type=covariance_type,
              tol=0.0, max_iter=max_iter, **init)
    if library == "sklearn":
        if SklearnGaussianMixture is None:
            raise NotImplementedError("scikit-learn is not installed")
        return SklearnGaussianMixture(**kw)
    if n_threads is not None:
        if not has_n_threads():
            raise NotImplementedError("this fastem has no n_threads")
        kw["n_threads"] = n_threads
    return FastemGaussianMixture(**kw)


def fit(est, X):
    """``est.fit(X)`` with the (expected, tol=0) ConvergenceWarning silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X)


def warm_up(library, n_components, covariance_type, X, n_threads=None,
            predict=False, init=None):
    """Load (or compile) the kernels a fit of X needs, on a small slice.

    The fit starts from ``init`` (default: :func:`initial_params` of the
    slice).  With ``predict``, also loads those of ``predict`` and
    ``score_samples``.
    """
    Xs = X[: max(2 * n_components, min(len(X), 2000))]
    if init is None:
        init = initial_params(Xs, n_components, covariance_type)
    est = fit(estimator(library, n_components, covariance_type, init, 1,
                        n_threads), Xs)
    if predict:
        est.predict(Xs)
        est.score_samples(Xs)


# --------------------------------------------------- peak RSS above data
def _status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise NotImplementedError(f"no {field} in /proc/self/status")


def peak_rss_increase_mib(func):
    """Run ``func()``; return peak RSS during it minus RSS before it (MiB).

    Resets the kernel's high-water mark first (``5`` into
    ``/proc/self/clear_refs``), so allocations of numba kernels -- invisible
    to tracemalloc -- are counted.  Linux only (NotImplementedError
    elsewhere, which asv reports as skipped).
    """
    if not os.path.exists("/proc/self/clear_refs"):
        raise NotImplementedError("needs Linux /proc/self/clear_refs")
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError as exc:
        raise NotImplementedError(f"cannot reset VmHWM: {exc}") from None
    before = _status_kib("VmRSS")
    func()
    return (_status_kib("VmHWM") - before) / 1024.0


# ---------------------------------------------------------- raw timings
def import_and_fit_code(library):
    """Source of a fresh-interpreter run: import ``library`` and fit.

    The classic example (4,000 points from N(20, 5), 8,000 from N(40, 5)),
    two components, default initialization.
    """
    module = "fastem" if library == "fastem" else "sklearn.mixture"
    return f"""
import numpy as np
from {module} import GaussianMixture
rng = np.random.default_rng(0)
x = np.concatenate([rng.normal(20.0, 5.0, 4000), rng.normal(40.0, 5.0, 8000)])
GaussianMixture(n_components=2, random_state=0).fit(x.reshape(-1, 1))
"""
