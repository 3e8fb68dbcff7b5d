"""Compile latency of fastem's entry points (numba JIT), in fresh interpreters.

``TimerawCompileCold``: the first-ever run of each entry point, with an empty
``NUMBA_CACHE_DIR`` (a new temporary directory, removed at exit), so every
kernel it needs is compiled -- what a user pays once per machine (or what
``fastem compile`` pays ahead of time).  About a minute each on 2 cores: CI's
quick run leaves them out (``.ci/check.sh`` skips benchmarks matching
``[Cc]old``).

``TimerawCompileWarm``: the same runs on the warm on-disk cache (``setup``
runs each once first): import, load the cached kernels and fit; cheap, run in
CI.  ``fit-then-memmap`` fits an ordinary array and then a read-only memory
map of the same data: a read-only array used to compile (or load) a second
specialization of every kernel; it now shares the writeable one.
"""

import subprocess
import sys

# Demo-sized data: the classic 20/40 example (12,000 points, 1 feature).
_DATA = """
import numpy as np
rng = np.random.default_rng(0)
x = np.concatenate([rng.normal(20.0, 5.0, 4000), rng.normal(40.0, 5.0, 8000)])
X = x.reshape(-1, 1)
"""

_FIT = _DATA + """
from fastem import GaussianMixture
GaussianMixture(n_components=2, random_state=0).fit(X{cast})
"""

_MEMMAP_SETUP = """
import atexit, os, shutil, tempfile
import numpy as np
data_dir = tempfile.mkdtemp(prefix="fastem-bench-npy-")
atexit.register(shutil.rmtree, data_dir, True)
rng = np.random.default_rng(0)
x = np.concatenate([rng.normal(20.0, 5.0, 4000), rng.normal(40.0, 5.0, 8000)])
path = os.path.join(data_dir, "x.npy")
np.save(path, x.reshape(-1, 1))
"""

_MEMMAP = """
import numpy as np
from fastem import GaussianMixture
GaussianMixture(n_components=2, random_state=0).fit(
    np.load(path, mmap_mode="r"))
"""

_FIT_THEN_MEMMAP = """
import numpy as np
from fastem import GaussianMixture
GaussianMixture(n_components=2, random_state=0).fit(np.load(path))
GaussianMixture(n_components=2, random_state=0).fit(
    np.load(path, mmap_mode="r"))
"""

_MISSING = _DATA + """
from fastem import GaussianMixture
X = np.hstack([X, X[::-1] / 2.0])
X[::10, 0] = np.nan
GaussianMixture(n_components=2, nan_policy="marginalize",
                random_state=0).fit(X)
"""

_HMM = """
import numpy as np
from fastem import GaussianHMM
rng = np.random.default_rng(0)
X = np.concatenate([rng.normal(0.0, 1.0, 3000), rng.normal(5.0, 1.0, 3000)])
GaussianHMM(n_components=2, random_state=0).fit(X.reshape(-1, 1))
"""

_POISSON = """
import numpy as np
from fastem import PoissonMixture
rng = np.random.default_rng(0)
X = np.concatenate([rng.poisson(2.0, (3000, 2)), rng.poisson(9.0, (3000, 2))])
PoissonMixture(n_components=2, random_state=0).fit(X)
"""

_COLD_SETUP = """
import atexit, os, shutil, tempfile
cache_dir = tempfile.mkdtemp(prefix="fastem-cold-cache-")
os.environ["NUMBA_CACHE_DIR"] = cache_dir
atexit.register(shutil.rmtree, cache_dir, True)
"""

ENTRY_POINTS = {
    "fit-float64": (_FIT.format(cast=""), ""),
    "fit-float32": (_FIT.format(cast=".astype(np.float32)"), ""),
    "fit-memmap": (_MEMMAP, _MEMMAP_SETUP),
    "fit-missing": (_MISSING, ""),
    "hmm-fit": (_HMM, ""),
    "poisson-fit": (_POISSON, ""),
}

WARM = dict(ENTRY_POINTS, **{"fit-then-memmap": (_FIT_THEN_MEMMAP,
                                                 _MEMMAP_SETUP)})


class TimerawCompileCold:
    """First-ever run of each entry point: empty numba cache, everything it
    needs compiled (excluded from CI's quick run by its name)."""

    params = (list(ENTRY_POINTS),)
    param_names = ["entry_point"]
    number = 1
    repeat = (1, 2, 60.0)
    rounds = 1
    warmup_time = 0
    timeout = 900

    def timeraw_compile_cold(self, entry_point):
        code, setup = ENTRY_POINTS[entry_point]
        return code, _COLD_SETUP + setup


class TimerawCompileWarm:
    """The same runs in a fresh interpreter on the warm on-disk cache."""

    params = (list(WARM),)
    param_names = ["entry_point"]
    number = 1
    repeat = (2, 5, 30.0)
    warmup_time = 0
    timeout = 900

    def setup(self, entry_point):
        code, setup = WARM[entry_point]
        subprocess.run([sys.executable, "-c", setup + code], check=True,
                       capture_output=True)

    def timeraw_compile_warm(self, entry_point):
        return WARM[entry_point]
