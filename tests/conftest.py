"""Shared data fixtures and helpers for fastem's tests.

Data sets are small (hundreds to a few thousand rows) so the whole suite runs
in well under a few minutes on two cores; numba kernels compile on first use
(cached on disk afterwards).
"""

import signal
import warnings

import numpy as np
import pytest
import reference as ref

# The Ctrl-C tests send SIGINT to this process and to child interpreters.  A
# test run started in the background of a non-interactive shell (``cmd &``,
# nohup) inherits SIGINT *ignored*; Python then installs no KeyboardInterrupt
# handler, fastem (rightly) leaves an ignored SIGINT alone, and those tests
# would fail for the launcher's sake.  Restore Python's own handler: children
# then start with the default disposition too (a caught signal is reset on
# exec, an ignored one is not).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

COVARIANCE_TYPES = ref.COVARIANCE_TYPES
INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")

# True parameters of the 3-cluster, 3-D data set.
BLOBS3D_MEANS = np.array([[0.0, 0.0, 0.0], [7.0, 1.0, -1.0], [1.0, 7.0, 4.0]])
BLOBS3D_WEIGHTS = np.array([0.2, 0.3, 0.5])


def _random_spd(rng, D, scale):
    A = rng.normal(size=(D, D))
    return scale * (A @ A.T / D + 0.5 * np.eye(D))


BLOBS3D_COVS = np.stack([_random_spd(np.random.default_rng(s), 3, sc)
                         for s, sc in ((11, 0.6), (12, 1.0), (13, 1.4))])


def sample_mixture(rng, n, weights, means, covs):
    """``n`` rows from a Gaussian mixture, with exact per-component counts."""
    counts = np.round(np.asarray(weights) * n).astype(int)
    counts[-1] = n - counts[:-1].sum()
    parts, labels = [], []
    for k, c in enumerate(counts):
        parts.append(rng.multivariate_normal(means[k], covs[k], size=c))
        labels.append(np.full(c, k))
    X = np.vstack(parts)
    y = np.concatenate(labels)
    perm = rng.permutation(n)
    return X[perm], y[perm]


def make_blobs3d(n=600, seed=0):
    """Well-separated 3-cluster 3-D data: (X, true labels)."""
    return sample_mixture(np.random.default_rng(seed), n, BLOBS3D_WEIGHTS,
                          BLOBS3D_MEANS, BLOBS3D_COVS)


def make_overlap(n=500, seed=1):
    """Three strongly overlapping 2-D clusters: EM converges slowly on them."""
    means = np.array([[0.0, 0.0], [1.5, 0.5], [0.5, 1.8]])
    covs = np.stack([np.array([[1.0, 0.3], [0.3, 0.8]]),
                     np.array([[0.7, -0.2], [-0.2, 1.1]]),
                     np.array([[0.9, 0.0], [0.0, 0.6]])])
    return sample_mixture(np.random.default_rng(seed), n, [0.3, 0.3, 0.4],
                          means, covs)[0]


def make_1d_classic(seed=0):
    """The classic 4000 x N(20, 5) + 8000 x N(40, 5), shuffled, as (12000, 1)."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(20.0, 5.0, 4000), rng.normal(40.0, 5.0, 8000)])
    rng.shuffle(x)
    return x.reshape(-1, 1)


@pytest.fixture(scope="session")
def blobs3d():
    return make_blobs3d()


@pytest.fixture(scope="session")
def X3d(blobs3d):
    return blobs3d[0]


@pytest.fixture(scope="session")
def overlap2d():
    return make_overlap()


@pytest.fixture(scope="session")
def X1d():
    """Small 1-D two-Gaussian data (400 rows)."""
    rng = np.random.default_rng(5)
    return np.concatenate([rng.normal(-2.0, 1.0, 150),
                           rng.normal(3.0, 1.5, 250)]).reshape(-1, 1)


# ------------------------------------------------------------------ helpers
def soft_params(X, labels, n_components, covariance_type, seed=0, mix=0.35):
    """Reference parameters from soft responsibilities near ``labels``.

    ``resp = (1 - mix) * onehot(labels) + mix * random`` (rows normalized), so
    the components overlap and the responsibilities under these parameters are
    genuinely soft.  Returns (weights, means, precisions_cholesky).
    """
    rng = np.random.default_rng(seed)
    R = rng.random((X.shape[0], n_components))
    R /= R.sum(axis=1, keepdims=True)
    R = (1 - mix) * ref.onehot(labels, n_components) + mix * R
    w, m, _, pc = ref.m_step(X, R, covariance_type)
    return w, m, pc


def gaussian_params(weights, means, precisions_cholesky, covariance_type):
    from fastem.stats import GaussianParams

    return GaussianParams(np.array(weights, dtype=np.float64),
                          np.array(means, dtype=np.float64),
                          np.array(precisions_cholesky, dtype=np.float64),
                          covariance_type)


def scaled_atol(expected, rtol):
    """An absolute tolerance ``rtol * max|expected|`` for arrays whose entries
    can be much smaller than the array's scale (near-empty components, small
    off-diagonal terms): the error of a sum is relative to the size of its
    terms, not to the size of the result."""
    expected = np.asarray(expected, dtype=np.float64)
    return rtol * max(float(np.max(np.abs(expected), initial=0.0)), 1e-300)


def assert_close(actual, expected, rtol, err_msg=""):
    """assert_allclose with ``rtol`` and the scale-based atol above."""
    np.testing.assert_allclose(actual, expected, rtol=rtol,
                               atol=scaled_atol(expected, rtol),
                               err_msg=err_msg)


def assert_stats_close(got, expected, rtol, check_loglik=True):
    """Compare fastem GaussianStats with a reference statistics dict."""
    assert got.n_samples == expected["n_samples"]
    assert_close(got.nk, expected["nk"], rtol, "nk")
    assert_close(got.sums, expected["sums"], rtol, "sums")
    assert got.scatter.shape == expected["scatter"].shape
    assert_close(got.scatter, expected["scatter"], rtol, "scatter")
    np.testing.assert_allclose(got.weight_sum, expected["weight_sum"], rtol=rtol)
    if check_loglik:
        np.testing.assert_allclose(got.loglik, expected["loglik"], rtol=rtol)


def precisions_init_for(precisions_cholesky, covariance_type):
    """``precisions_init`` (what the estimators take) from Cholesky factors."""
    return ref.precisions_from_cholesky(precisions_cholesky, covariance_type)


@pytest.fixture
def no_convergence_warning():
    """Silence (only) ConvergenceWarning: used where max_iter is small on
    purpose (tol=0 runs, warm-start halves)."""
    from sklearn.exceptions import ConvergenceWarning as SkCW

    from fastem import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", SkCW)
        yield


def run_hmmlearn_test_file(tmp_path, filename, imports=None, check=True):
    """Run hmmlearn's own ``tests/<filename>`` with ``import fastem as hmm``.

    The file's only change is its import line (and its relative imports of
    hmmlearn's test helpers, made absolute); it runs in a subprocess with
    hmmlearn's conftest.  Skips when the installed hmmlearn ships no tests.
    ``imports`` replaces the default import substitutions (a dict, old line
    -> new line, each old line occurring once) for files that import
    otherwise; with ``check=False`` the pytest summary is returned
    unchecked (for files hmmlearn marks xfail).
    """
    import os
    import subprocess
    import sys
    from pathlib import Path

    import hmmlearn

    root = Path(hmmlearn.__file__).parent / "tests"
    src = root / filename
    if not src.exists():
        pytest.skip("this hmmlearn install ships no tests")
    text = src.read_text()
    if imports is None:
        imports = {"from hmmlearn import hmm\n": "import fastem as hmm\n",
                   "from . import ": "from hmmlearn.tests import "}
    for old, new in imports.items():
        assert text.count(old) == 1, f"hmmlearn changed its import {old!r}"
        text = text.replace(old, new)
    (tmp_path / filename).write_text(text)
    (tmp_path / "conftest.py").write_text((root / "conftest.py").read_text())
    env = dict(os.environ)
    env.setdefault("HMMLEARN_SEED", "0")
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rxX", "-p", "no:cacheprovider",
         "-p", "no:randomly", "--rootdir", str(tmp_path), filename],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)
    tail = out.stdout[-4000:]
    if not check:
        return tail
    assert out.returncode == 0, tail
    assert " passed" in tail and " failed" not in tail, tail
    return tail
