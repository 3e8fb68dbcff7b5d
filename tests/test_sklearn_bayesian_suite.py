"""scikit-learn's own ``test_bayesian_mixture.py``, run against fastem.

The file installed with scikit-learn is copied with one line changed
(``from sklearn.mixture import BayesianGaussianMixture`` becomes fastem's)
and run in a subprocess.  Every test applies and runs, including
``test_compare_covar_type``, which calls scikit-learn's private
``_check_parameters(X)`` and ``_initialize_parameters(X, random_state)``:
fastem's estimator has both, with scikit-learn's meaning.
``test_log_dirichlet_norm`` and ``test_log_wishart_norm`` check
scikit-learn's own private helpers (imported from scikit-learn, not from
the estimator), so they pass independently of fastem; fastem's versions are
checked against them in ``test_bayesian_mixture_parity.py``.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

sklearn = pytest.importorskip("sklearn")

# test name -> why it does not apply (none at present)
NOT_APPLICABLE = {}
IMPORT = "from sklearn.mixture import BayesianGaussianMixture\n"


def test_sklearn_bayesian_mixture_test_file_passes(tmp_path):
    root = Path(sklearn.__file__).parent
    src = root / "mixture" / "tests" / "test_bayesian_mixture.py"
    if not src.exists():
        pytest.skip("this scikit-learn install ships no tests")
    text = src.read_text()
    assert text.count(IMPORT) == 1, "scikit-learn changed its import line"
    (tmp_path / "test_bgm_sklearn.py").write_text(
        text.replace(IMPORT, "from fastem import BayesianGaussianMixture\n"))
    # its fixtures live in its conftest
    (tmp_path / "conftest.py").write_text((root / "conftest.py").read_text())
    env = dict(os.environ, SKLEARN_RUN_FLOAT32_TESTS="1")
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
            "-p", "no:randomly", "--rootdir", str(tmp_path)]
    if NOT_APPLICABLE:
        args += ["-k", "not (" + " or ".join(NOT_APPLICABLE) + ")"]
    out = subprocess.run(args + ["test_bgm_sklearn.py"], cwd=tmp_path,
                         env=env, capture_output=True, text=True,
                         timeout=1800)
    tail = out.stdout[-4000:]
    assert out.returncode == 0, tail
    assert " passed" in tail and " failed" not in tail, tail
