"""asv benchmarks of fastem.GaussianMixture, with scikit-learn as a baseline.

Every fit starts from the same explicit parameters (``common.initial_params``)
with ``tol=0`` and a fixed ``max_iter``, so each run does the same EM work.
Data is built in ``setup`` (cached, because asv re-runs ``setup`` before every
sample) and fastem's kernels are loaded or compiled in ``setup`` by a small
fit, so no timing includes JIT compilation -- except the ``timeraw_``
compile-latency benchmarks, which measure exactly that in a fresh
interpreter.

scikit-learn appears as a ``library`` (or ``variant``) axis on the same data
and start, so asv's graphs show the ratio's history; its line should stay
flat, which also exposes machine drift.
"""

import subprocess
import sys

import numpy as np

from .common import (
    ISSUE_SIZES,
    ITERS,
    LIBRARIES,
    WORKLOADS,
    estimator,
    fit,
    import_and_fit_code,
    initial_params,
    iteration_timer,
    make_data,
    peak_rss_increase_mib,
    warm_up,
)

# EM iterations of each TimeFitVsSklearn fit (scikit-learn is slow).
VS_ITERS = 5


class TimeFit:
    """fastem: seconds per EM iteration of ``fit`` over a grid.

    One sample is one ``fit`` of ``ITERS`` iterations from an explicit start;
    the timer divides by ``ITERS``.  In 1-D every covariance type is the same
    model, so only ``'full'`` runs there.  scikit-learn is compared on issue
    3's shapes by :class:`TimeFitVsSklearn`.
    """

    params = ([10_000, 100_000], [1, 8], [2, 8],
              ["full", "tied", "diag", "spherical"], ["float64", "float32"])
    param_names = ["n_samples", "n_features", "n_components",
                   "covariance_type", "dtype"]
    timer = staticmethod(iteration_timer(ITERS))
    number = 1
    repeat = (2, 7, 10.0)
    warmup_time = 0
    timeout = 300

    def setup(self, n, d, k, ct, dtype):
        if d == 1 and ct != "full":
            raise NotImplementedError("1-D: every covariance type is 'full'")
        self.X = make_data(n, d, k, dtype)
        warm_up("fastem", k, ct, self.X)
        self.est = estimator("fastem", k, ct, initial_params(self.X, k, ct))

    def time_fit(self, n, d, k, ct, dtype):
        fit(self.est, self.X)


class TimeFitVsSklearn:
    """Seconds per EM iteration on issue 3's workloads (a tenth of its sizes).

    ``variant``: scikit-learn, fastem with ``n_threads=1``, fastem with
    ``n_threads=2``; same data, start and ``max_iter``.  The ratios of these
    lines are the issue's targets (speed-up over scikit-learn, 1 to 2
    threads).
    """

    params = (list(ISSUE_SIZES), ["sklearn", "fastem-1T", "fastem-2T"])
    param_names = ["workload", "variant"]
    timer = staticmethod(iteration_timer(VS_ITERS))
    number = 1
    repeat = (2, 5, 15.0)
    warmup_time = 0
    timeout = 600

    def setup(self, workload, variant):
        import numba

        library, _, threads = variant.partition("-")
        threads = int(threads[:-1]) if threads else None
        if threads and threads > numba.config.NUMBA_NUM_THREADS:
            raise NotImplementedError(f"numba has fewer than {threads} threads")
        d, k, ct = WORKLOADS[workload]
        self.X = make_data(ISSUE_SIZES[workload], d, k)
        warm_up(library, k, ct, self.X, threads)
        self.est = estimator(library, k, ct, initial_params(self.X, k, ct),
                             max_iter=VS_ITERS, n_threads=threads)

    def time_fit(self, workload, variant):
        fit(self.est, self.X)


class TimeDataReadFloor:
    """The data-read floor: one parallel numba sum over X, at 1 and 2 threads.

    Same data as :class:`TimeFitVsSklearn`; an EM pass cannot be faster than
    reading X once, so ``TimeFitVsSklearn`` fastem-2T over this is how far an
    iteration is from the floor.
    """

    params = (list(ISSUE_SIZES), [1, 2])
    param_names = ["workload", "n_threads"]
    warmup_time = 0

    def setup(self, workload, n_threads):
        import numba

        if n_threads > numba.config.NUMBA_NUM_THREADS:
            raise NotImplementedError(f"numba has fewer than {n_threads} threads")

        @numba.njit(parallel=True, fastmath=True)
        def parallel_sum(x):
            s = 0.0
            for i in numba.prange(x.shape[0]):
                s += x[i]
            return s

        d, k, _ = WORKLOADS[workload]
        self.flat = make_data(ISSUE_SIZES[workload], d, k).reshape(-1)
        self.sum = parallel_sum
        numba.set_num_threads(n_threads)
        self.sum(self.flat)

    def time_parallel_sum(self, workload, n_threads):
        self.sum(self.flat)


class TimePredict:
    """predict / score_samples of a model (50,000 rows)."""

    params = (["1d-K2-full", "8d-K8-full", "32d-K16-full"], LIBRARIES)
    param_names = ["workload", "library"]
    n_samples = 50_000
    warmup_time = 0
    timeout = 300

    def setup(self, workload, library):
        d, k, ct = WORKLOADS[workload]
        self.X = make_data(self.n_samples, d, k)
        warm_up(library, k, ct, self.X, predict=True)
        self.est = fit(estimator(library, k, ct, initial_params(self.X, k, ct),
                                 max_iter=1), self.X)

    def time_predict(self, workload, library):
        self.est.predict(self.X)

    def time_score_samples(self, workload, library):
        self.est.score_samples(self.X)


class PeakMemFit:
    """Memory of ``fit`` on 1-D data, K=4 (issue target: +40 MB at 20M rows).

    ``init``: ``'explicit'`` starts from the shared parameters (EM alone);
    ``'kmeans'`` is the library's default initialization (``random_state=0``),
    what a user's ``fit`` costs.  ``peakmem_fit`` is asv's whole-process peak
    RSS (imports and data included).  ``track_fit_peak_above_data`` is the
    peak RSS during ``fit`` minus the RSS just before it, in MiB (high-water
    mark reset through ``/proc/self/clear_refs``; counts numba's
    allocations, which tracemalloc does not see).  scikit-learn is skipped at
    20M rows (several GB).
    """

    params = ([1_000_000, 20_000_000], LIBRARIES, ["explicit", "kmeans"])
    param_names = ["n_samples", "library", "init"]
    n_components = 4
    max_iter = 2
    timeout = 300
    unit = "MiB"

    def setup(self, n, library, init):
        if library == "sklearn" and n > 5_000_000:
            raise NotImplementedError("scikit-learn needs several GB here")
        k = self.n_components
        self.X = make_data(n, 1, k)
        if init == "explicit":
            self.init = initial_params(self.X, k, "full")
            warm_up(library, k, "full", self.X)
        else:
            self.init = {"random_state": 0}
            warm_up(library, k, "full", self.X, init=self.init)

    def _fit(self, library):
        fit(estimator(library, self.n_components, "full", self.init,
                      max_iter=self.max_iter), self.X)

    def peakmem_fit(self, n, library, init):
        self._fit(library)

    def track_fit_peak_above_data(self, n, library, init):
        return peak_rss_increase_mib(lambda: self._fit(library))


class TrackLowerBound:
    """Final lower bound after ``ITERS`` iterations from the explicit start.

    A speed-up that changes the answer shows here; fastem's and
    scikit-learn's lines should coincide.
    """

    params = (list(WORKLOADS), LIBRARIES)
    param_names = ["workload", "library"]
    n_samples = 5_000
    unit = "mean log-likelihood"
    timeout = 300

    def setup(self, workload, library):
        d, k, ct = WORKLOADS[workload]
        self.X = make_data(self.n_samples, d, k)
        self.est = estimator(library, k, ct, initial_params(self.X, k, ct))

    def track_lower_bound(self, workload, library):
        return float(fit(self.est, self.X).lower_bound_)


class TrackAgreement:
    """max |fastem - scikit-learn| / max |scikit-learn| of the final means.

    Same data (float64 or float32 for both), start and iteration count:
    should stay near 1e-12 for float64 and near float32's 1e-7 for float32.
    """

    params = (list(WORKLOADS), ["float64", "float32"])
    param_names = ["workload", "dtype"]
    n_samples = 5_000
    unit = "relative difference"
    timeout = 300

    def setup(self, workload, dtype):
        d, k, ct = WORKLOADS[workload]
        self.X = make_data(self.n_samples, d, k, dtype)
        init = initial_params(self.X, k, ct)
        self.est = {lib: estimator(lib, k, ct, init) for lib in LIBRARIES}

    def track_means_rel_diff(self, workload, dtype):
        fe = fit(self.est["fastem"], self.X).means_
        sk = fit(self.est["sklearn"], self.X).means_
        return float(np.max(np.abs(fe - sk)) / np.max(np.abs(sk)))


class TimerawImportFit:
    """Fresh interpreter: import the library and fit the classic 20/40 data.

    fastem with its on-disk kernel cache warm (``setup`` runs the same code
    once first); issue target: no slower than scikit-learn.
    """

    params = (LIBRARIES,)
    param_names = ["library"]
    number = 1
    repeat = (2, 5, 30.0)
    warmup_time = 0
    timeout = 600

    def setup(self, library):
        if library == "sklearn":
            try:
                import sklearn  # noqa: F401
            except ImportError:
                raise NotImplementedError("scikit-learn is not installed")
        subprocess.run([sys.executable, "-c", import_and_fit_code(library)],
                       check=True, capture_output=True)

    def timeraw_import_and_fit(self, library):
        return import_and_fit_code(library)


class TimerawImportFitCold:
    """First-ever run: import fastem and fit with an empty numba cache.

    ``NUMBA_CACHE_DIR`` points to a new temporary directory (removed at exit),
    so every kernel the fit needs is compiled: what a user pays once.
    Slow (about a minute on 2 cores); CI's quick run excludes it with
    ``--bench``.
    """

    number = 1
    repeat = (1, 2, 60.0)
    rounds = 1
    warmup_time = 0
    timeout = 900

    def timeraw_import_and_fit_cold(self):
        setup = """
import atexit, os, shutil, tempfile
cache_dir = tempfile.mkdtemp(prefix="fastem-cold-cache-")
os.environ["NUMBA_CACHE_DIR"] = cache_dir
atexit.register(shutil.rmtree, cache_dir, True)
"""
        return import_and_fit_code("fastem"), setup
