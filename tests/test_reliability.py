"""Reliability: degenerate data, concurrent fits, interrupted fits."""

import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from fastem import GaussianMixture
from fastem.stats import ComponentCollapseError

COV_TYPES = ["full", "tied", "diag", "spherical"]


def _finite(gm):
    return all(np.all(np.isfinite(a)) for a in
               (gm.weights_, gm.means_, gm.covariances_,
                gm.precisions_cholesky_))


@pytest.mark.parametrize("ct", COV_TYPES)
@pytest.mark.parametrize("case", ["identical", "constant_feature",
                                  "few_distinct", "offset_tiny_spread"])
def test_degenerate_data_is_survived(ct, case):
    rng = np.random.default_rng(0)
    X = {
        "identical": np.ones((100, 2)),
        "constant_feature": np.c_[rng.normal(size=300), np.full(300, 5.0)],
        "few_distinct": np.repeat(rng.normal(size=(3, 2)), 50, axis=0),
        "offset_tiny_spread": 1e8 + 1e-2 * rng.normal(size=(400, 2)),
    }[case]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gm = GaussianMixture(5, covariance_type=ct, random_state=0).fit(X)
    assert _finite(gm)
    if case in ("identical", "few_distinct"):
        # more components than distinct points: the emptied ones are named
        assert any("ended with (almost) no data" in str(w.message)
                   for w in caught)
    if case == "offset_tiny_spread":
        # the spread (variance 1e-4) is resolved despite the 1e8 offset
        var = np.mean(gm.covariances_ if ct in ("diag", "spherical")
                      else np.diagonal(gm.covariances_, axis1=-2, axis2=-1))
        assert 1e-6 < var < 1e-3


def test_collapse_without_regularization_names_the_remedy():
    X = np.repeat(np.arange(3.0)[:, None], 20, axis=0)
    with pytest.raises(ComponentCollapseError, match="increase reg_covar"):
        GaussianMixture(3, reg_covar=0.0, random_state=0).fit(np.c_[X, X])


def test_tiny_scale_fit_is_finite():
    X = 1e-150 * np.random.default_rng(1).normal(size=(200, 2))
    gm = GaussianMixture(2, random_state=0, reg_covar=0.0).fit(X)
    assert _finite(gm)
    assert np.all(np.diagonal(gm.covariances_, axis1=1, axis2=2) > 0)


def test_concurrent_fits_from_python_threads():
    rng = np.random.default_rng(2)
    X = np.vstack([rng.normal(0, 1, (3000, 3)), rng.normal(4, 1, (3000, 3))])
    ref = GaussianMixture(3, random_state=0).fit(X)

    def job(seed):
        gm = GaussianMixture(3, random_state=0, n_threads=1 + seed % 2).fit(X)
        return gm.means_, gm.predict_proba(X[:500])

    with ThreadPoolExecutor(6) as ex:
        results = list(ex.map(job, range(12)))
    for means, proba in results:
        # thread-count invariance makes every concurrent fit bit-identical
        np.testing.assert_array_equal(means, ref.means_)
        np.testing.assert_array_equal(proba, ref.predict_proba(X[:500]))


def test_keyboard_interrupt_keeps_previous_model():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(2000, 2))
    gm = GaussianMixture(2, random_state=0).fit(X)
    before = {k: np.copy(v) for k, v in vars(gm).items()
              if k.endswith("_") and isinstance(v, np.ndarray)}
    n_iter, lb = gm.n_iter_, gm.lower_bound_

    def interrupt(n_iter, lower_bound):
        if n_iter == 2:
            raise KeyboardInterrupt

    gm.set_params(callback=interrupt, n_components=3, max_iter=50)
    with pytest.raises(KeyboardInterrupt):
        gm.fit(X[:1000, :1])
    for k, v in before.items():
        np.testing.assert_array_equal(getattr(gm, k), v)
    assert (gm.n_iter_, gm.lower_bound_, gm.n_features_in_) == (n_iter, lb, 2)
    gm.set_params(callback=None, n_components=2)
    assert gm.predict_proba(X).shape == (2000, 2)  # the old model still works


def test_pandas_dataframe_input():
    pd = pytest.importorskip("pandas")
    X = np.random.default_rng(4).normal(size=(300, 2))
    a = GaussianMixture(2, random_state=0).fit(pd.DataFrame(X, columns=["u", "v"]))
    b = GaussianMixture(2, random_state=0).fit(X)
    np.testing.assert_array_equal(a.means_, b.means_)
    assert list(a.feature_names_in_) == ["u", "v"]


@pytest.mark.parametrize("env, expected", [
    ({}, "PASSIVE"),
    ({"OMP_WAIT_POLICY": "ACTIVE"}, "ACTIVE"),
    ({"GOMP_SPINCOUNT": "50000"}, None),
])
def test_openmp_wait_policy_default_yields_to_the_users_setting(env, expected):
    """Loading fastem's kernels (on first use: ``import fastem`` itself is
    lazy) sets OMP_WAIT_POLICY=PASSIVE, before numba loads OpenMP, only
    when the user set neither the policy nor a spin count."""
    import os
    import subprocess
    import sys

    base = {k: v for k, v in os.environ.items()
            if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    code = ("import os; from fastem import GaussianMixture; "
            "print(os.environ.get('OMP_WAIT_POLICY'))")
    out = subprocess.run([sys.executable, "-c", code], env={**base, **env},
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(expected)
