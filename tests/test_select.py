"""fastem.selection.select: the grid, the criteria, the choice."""

import warnings

import numpy as np
import pytest

from fastem import GaussianMixture
from fastem import selection as sel
from fastem.selection import _MCLUST_DEFAULTS, n_parameters, select


def make_structured(structure, seed, n=900):
    """Three 2-D clusters whose covariances have the given structure."""
    rng = np.random.default_rng(seed)
    means = np.array([[0.0, 0.0], [7.0, 1.0], [1.0, 7.0]])
    if structure == "spherical":
        covs = [s * np.eye(2) for s in (0.6, 1.0, 1.6)]
    elif structure == "diag":
        covs = [np.diag(d) for d in ((0.3, 2.0), (2.0, 0.4), (1.0, 1.0))]
        covs[2] = np.diag((0.4, 1.8))
    elif structure == "tied":
        c = np.array([[1.5, 0.9], [0.9, 1.0]])
        covs = [c, c, c]
    else:
        covs = [np.array([[1.5, 1.1], [1.1, 1.2]]),
                np.array([[1.2, -0.9], [-0.9, 1.1]]),
                np.array([[0.4, 0.0], [0.0, 2.0]])]
    parts = [rng.multivariate_normal(m, c, size=n // 3)
             for m, c in zip(means, covs)]
    return np.vstack(parts)


@pytest.mark.parametrize("structure", ["full", "tied", "diag", "spherical"])
def test_picks_known_k_and_structure(structure):
    X = make_structured(structure, seed=0)
    res = select(X, n_components=range(1, 6), random_state=0)
    assert res.best_params == {"n_components": 3,
                               "covariance_type": structure}
    assert len(res.results) == 20
    assert res.best_model.n_components == 3
    assert res.best_model.covariance_type == structure


@pytest.fixture(scope="module")
def result():
    X = make_structured("full", seed=3, n=600)
    return X, select(X, n_components=[1, 2, 3, 4], random_state=0)


def test_table_rows_match_standalone_fits(result):
    X, res = result
    N, D = X.shape
    assert [(r["n_components"], r["covariance_type"]) for r in res.results] \
        == [(k, t) for t in ("full", "tied", "diag", "spherical")
            for k in (1, 2, 3, 4)]
    for r in res.results:
        k, t = r["n_components"], r["covariance_type"]
        assert r["n_parameters"] == n_parameters(k, D, t)
        assert r["criterion"] == r["bic"]
        assert r["error"] is None and r["warnings"] == []
        assert r["fit_time"] >= 0
        if (k, t) not in {(1, "full"), (3, "full"), (2, "tied"), (4, "diag"),
                          (3, "spherical")}:
            continue
        gm = GaussianMixture(k, covariance_type=t, random_state=0,
                             **_MCLUST_DEFAULTS).fit(X)
        model = res.models[(k, t)]
        # Same seed (and select's mclust defaults: init_params='hc',
        # mclust's stopping rule, max_iter=1000): the grid's model is the
        # standalone one.
        np.testing.assert_array_equal(model.means_, gm.means_)
        np.testing.assert_allclose(r["bic"], gm.bic(X), rtol=1e-12)
        np.testing.assert_allclose(r["aic"], gm.aic(X), rtol=1e-12)
        np.testing.assert_allclose(r["log_likelihood"], gm.score(X) * N,
                                   rtol=1e-12)
        assert r["converged"] == gm.converged_
        assert r["n_iter"] == gm.n_iter_


def test_n_parameters_matches_sklearn_count():
    # scikit-learn: cov params + K*D means + K-1 weights
    assert n_parameters(3, 2, "full") == 3 * 3 + 6 + 2
    assert n_parameters(3, 2, "tied") == 3 + 6 + 2
    assert n_parameters(3, 2, "diag") == 6 + 6 + 2
    assert n_parameters(3, 2, "spherical") == 3 + 6 + 2
    assert n_parameters(1, 4, "full") == 10 + 4


def test_best_is_the_minimum_and_reported(result):
    X, res = result
    ok = [r for r in res.results if r["error"] is None]
    best = min(ok, key=lambda r: r["criterion"])
    assert res.best_score == best["criterion"]
    assert res.best_params["n_components"] == best["n_components"]
    assert res.best_model is res.models[(best["n_components"],
                                         best["covariance_type"])]
    text = res.table()
    assert text.splitlines()[0].startswith("BIC")
    assert text.count("*") == 2  # the best cell and the legend
    assert "SelectionResult(criterion='bic'" in repr(res)


def test_icl_is_bic_plus_twice_the_entropy(monkeypatch):
    X = make_structured("full", seed=5, n=450)
    # Small blocks, so the entropy is accumulated over several of them.
    monkeypatch.setattr(sel._config, "MIN_CHUNK_ROWS", 64)
    monkeypatch.setattr(sel, "_ENTROPY_BLOCK_VALUES", 200)
    res = select(X, [2, 3], ["full", "diag"], criterion="icl", random_state=1)
    for r in res.results:
        gm = res.models[(r["n_components"], r["covariance_type"])]
        R = gm.predict_proba(X)
        ent = -np.sum(R * np.log(np.where(R > 0, R, 1.0)))
        np.testing.assert_allclose(r["entropy"], ent, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(r["icl"], r["bic"] + 2 * ent, rtol=1e-12)
        assert r["criterion"] == r["icl"]
        assert r["icl"] >= r["bic"]


def test_aic_criterion_selects_on_aic():
    X = make_structured("diag", seed=2, n=300)
    res = select(X, [1, 2, 3], ["diag", "spherical"], criterion="aic",
                 random_state=0)
    assert all(r["criterion"] == r["aic"] for r in res.results)
    assert res.best_score == min(r["aic"] for r in res.results)


def test_threads_do_not_change_results():
    X = make_structured("tied", seed=4, n=300)
    a = select(X, [1, 2, 3], ["full", "tied"], random_state=0, n_jobs=1)
    b = select(X, [1, 2, 3], ["full", "tied"], random_state=0, n_jobs=2)
    for ra, rb in zip(a.results, b.results):
        assert ra["criterion"] == rb["criterion"]
        assert ra["n_iter"] == rb["n_iter"]
    assert a.best_params == b.best_params
    # The returned models keep the caller's thread setting.
    assert all(m.n_threads is None for m in b.models.values())


def test_failed_fits_are_recorded_not_raised():
    X = np.random.default_rng(0).normal(size=(6, 2))
    res = select(X, [1, 2, 8], ["spherical"], random_state=0)
    bad = res.results[2]
    assert bad["n_components"] == 8
    assert "n_samples >= n_components" in bad["error"]
    assert bad["criterion"] == np.inf
    assert (8, "spherical") not in res.models
    assert res.best_params["n_components"] in (1, 2)
    assert "failed K=8 spherical" in res.table()


def test_warnings_are_recorded_not_shown():
    X = make_structured("full", seed=1, n=300)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = select(X, [3], ["full"], random_state=0, max_iter=1, tol=0.0)
    assert caught == []
    r = res.results[0]
    assert r["converged"] is False
    assert any("did not converge" in w for w in r["warnings"])
    assert "~" in res.table()


def test_to_pandas(result):
    pd = pytest.importorskip("pandas")
    _, res = result
    df = res.to_pandas()
    assert isinstance(df, pd.DataFrame)
    assert len(df) == len(res.results)
    assert {"n_components", "covariance_type", "criterion", "bic", "aic",
            "icl", "log_likelihood", "n_parameters", "converged",
            "n_iter"} <= set(df.columns)
    assert df["criterion"].is_monotonic_increasing
    assert df.loc[0, "n_components"] == res.best_params["n_components"]
    assert df.loc[0, "covariance_type"] == res.best_params["covariance_type"]


def test_criterion_values(result):
    _, res = result
    ks, vals = res.criterion_values("diag")
    assert ks.tolist() == [1, 2, 3, 4]
    assert vals.tolist() == [r["bic"] for r in res.results
                             if r["covariance_type"] == "diag"]


def test_random_state_generator_and_single_values():
    X = make_structured("spherical", seed=6, n=300)
    res = select(X, 3, "spherical", random_state=np.random.default_rng(0))
    assert len(res.results) == 1
    res = select(X, [2, 3], "all", random_state=0)
    assert res.covariance_types == ["full", "tied", "diag", "spherical"]


@pytest.mark.parametrize("kwargs, match", [
    ({"criterion": "bicc"}, "criterion must be one of"),
    ({"covariance_types": ["full", "blah"]}, "covariance_types must be"),
    ({"n_components": []}, "n_components is empty"),
    ({"n_components": [0, 1]}, "must be >= 1"),
    ({"n_jobs": 0}, "n_jobs must be"),
    ({"tol": -1.0}, "tol"),
])
def test_bad_arguments(kwargs, match):
    X = np.random.default_rng(0).normal(size=(50, 2))
    with pytest.raises(ValueError, match=match):
        select(X, **{"n_components": [1, 2], **kwargs})


def test_reserved_keywords_rejected():
    X = np.random.default_rng(0).normal(size=(50, 2))
    with pytest.raises(TypeError, match="covariance_type"):
        select(X, [1], covariance_type="full")
