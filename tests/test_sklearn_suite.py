"""scikit-learn's own ``test_gaussian_mixture.py``, run against fastem.

The file installed with scikit-learn is copied with one line changed
(``from sklearn.mixture import GaussianMixture`` becomes fastem's) and run in
a subprocess, float32 tests included (``SKLEARN_RUN_FLOAT32_TESTS=1``).  The
tests below do not apply, and are deselected, because they exercise
scikit-learn's private internals rather than the estimator's behaviour.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

sklearn = pytest.importorskip("sklearn")

NOT_APPLICABLE = {
    # calls the private GaussianMixture._set_parameters
    "test_gaussian_mixture_precisions_init":
        "uses scikit-learn's private _set_parameters",
    # mocks the private module function _estimate_gaussian_parameters and
    # counts its calls
    "test_gaussian_mixture_all_init_does_not_estimate_gaussian_parameters":
        "mocks scikit-learn's private _estimate_gaussian_parameters",
}
IMPORT = "from sklearn.mixture import GaussianMixture\n"


def test_sklearn_gaussian_mixture_test_file_passes(tmp_path):
    root = Path(sklearn.__file__).parent
    src = root / "mixture" / "tests" / "test_gaussian_mixture.py"
    if not src.exists():
        pytest.skip("this scikit-learn install ships no tests")
    text = src.read_text()
    assert text.count(IMPORT) == 1, "scikit-learn changed its import line"
    (tmp_path / "test_gm_sklearn.py").write_text(
        text.replace(IMPORT, "from fastem import GaussianMixture\n"))
    # its fixtures (global_dtype, global_random_seed) live in its conftest
    (tmp_path / "conftest.py").write_text((root / "conftest.py").read_text())
    env = dict(os.environ, SKLEARN_RUN_FLOAT32_TESTS="1")
    deselect = " or ".join(NOT_APPLICABLE)
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "-p", "no:randomly", "--rootdir", str(tmp_path),
         "-k", f"not ({deselect})", "test_gm_sklearn.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)
    tail = out.stdout[-4000:]
    assert out.returncode == 0, tail
    assert " passed" in tail and " failed" not in tail, tail
