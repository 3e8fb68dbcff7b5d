"""select: criterion='cv', standardize=True, nan_policy end to end, names."""

import warnings

import numpy as np
import pytest
from test_select import make_structured

from fastem import GaussianMixture, _config
from fastem import selection as sel
from fastem.selection import cv_folds, from_standardized, select


def mclust_defaults(X):
    """select()'s defaults for GaussianMixture fits on all of ``X``."""
    return dict(sel._MCLUST_DEFAULTS)


def _scaled(seed=0, n=600):
    """Three full-covariance clusters with features of very different scale."""
    X = make_structured("full", seed=seed, n=n)
    return X * np.array([0.01, 300.0]) + np.array([5.0, -2000.0])


def _standardize(X):
    mu = np.nanmean(X, axis=0)
    sd = np.nanstd(X, axis=0)
    return (X - mu) / sd, mu, sd


def _no_warnings(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn(*args, **kwargs)


# ------------------------------------------------------------------- folds
def test_cv_folds_partition_and_are_seeded():
    folds = cv_folds(103, 5, 0)
    assert len(folds) == 5
    assert sorted(len(f) for f in folds) == [20, 20, 21, 21, 21]
    allrows = np.concatenate(folds)
    np.testing.assert_array_equal(np.sort(allrows), np.arange(103))
    assert all(np.all(np.diff(f) > 0) for f in folds)
    again = cv_folds(103, 5, 0)
    assert all(np.array_equal(a, b) for a, b in zip(folds, again))
    other = cv_folds(103, 5, 1)
    assert not all(np.array_equal(a, b) for a, b in zip(folds, other))
    with pytest.raises(ValueError, match="2 <= cv <= n_samples"):
        cv_folds(3, 4, 0)


def test_cv_equals_hand_computed_kfold(monkeypatch):
    X = make_structured("full", seed=7, n=300)
    N = X.shape[0]
    calls = []
    real = sel.cv_folds
    monkeypatch.setattr(sel, "cv_folds",
                        lambda *a: calls.append(a) or real(*a))
    res = select(X, [2, 3], ["full", "diag"], criterion="cv", cv=4,
                 random_state=0, n_jobs=2)
    # One split, drawn once for the whole grid, from the select's seed.
    assert calls == [(N, 4, 0)]
    folds = cv_folds(N, 4, 0)
    assert res.cv == 4
    assert all(np.array_equal(a, b) for a, b in zip(res.cv_folds, folds))
    for r in res.results:
        k, t = r["n_components"], r["covariance_type"]
        total = 0.0
        for test in folds:
            train = np.setdiff1d(np.arange(N), test)
            gm = GaussianMixture(k, covariance_type=t, random_state=0,
                                 **mclust_defaults(X)).fit(X[train])
            total += gm.score_samples(X[test]).sum()
        np.testing.assert_allclose(r["cv"], -2.0 * total, rtol=1e-10)
        np.testing.assert_allclose(r["cv_loglik"], total / N, rtol=1e-10)
        assert r["criterion"] == r["cv"]
        assert r["error"] is None and r["cv_error"] is None
        # the all-data fit is the one reported, and the model returned
        gm = GaussianMixture(k, covariance_type=t, random_state=0,
                             **mclust_defaults(X)).fit(X)
        np.testing.assert_array_equal(res.models[(k, t)].means_, gm.means_)
        np.testing.assert_allclose(r["bic"], gm.bic(X), rtol=1e-12)
    assert res.best_score == min(r["cv"] for r in res.results)
    assert res.table().startswith("CV (-2 x held-out log-likelihood, 4 folds)")


def test_cv_does_not_depend_on_n_jobs():
    X = make_structured("tied", seed=4, n=240)
    a = select(X, [1, 2, 3], ["full", "tied"], criterion="cv", cv=3,
               random_state=5, n_jobs=1)
    b = select(X, [1, 2, 3], ["full", "tied"], criterion="cv", cv=3,
               random_state=5, n_jobs=2)
    assert [r["cv"] for r in a.results] == [r["cv"] for r in b.results]
    assert a.best_params == b.best_params


@pytest.mark.parametrize("seed", [0, 1])
def test_cv_chooses_the_true_k(seed):
    X = make_structured("full", seed=seed, n=600)
    res = select(X, range(1, 7), ["full", "diag"], criterion="cv",
                 random_state=seed)
    assert res.cv == 5
    assert res.best_params == {"n_components": 3, "covariance_type": "full"}
    assert np.isfinite(res.results[0]["cv"])


def test_cv_only_when_asked_and_as_an_extra_column():
    pd = pytest.importorskip("pandas")
    X = make_structured("diag", seed=2, n=240)
    res = select(X, [1, 2, 3], ["diag"], random_state=0)
    assert res.cv is None and res.cv_folds is None
    assert all(np.isnan(r["cv"]) and np.isnan(r["cv_loglik"])
               for r in res.results)
    res = select(X, [1, 2, 3], ["diag"], random_state=0, cv=3)
    assert all(r["criterion"] == r["bic"] and np.isfinite(r["cv"])
               for r in res.results)
    assert res.best_score == min(r["bic"] for r in res.results)
    df = res.to_pandas()
    assert isinstance(df, pd.DataFrame)
    assert {"cv", "cv_loglik", "cv_error"} <= set(df.columns)
    np.testing.assert_allclose(df["cv"], -2 * 240 * df["cv_loglik"])


def test_fold_failures_are_recorded():
    X = np.random.default_rng(0).normal(size=(20, 2))
    # K=12: the all-data fit has 20 rows, each fold's training part 10.
    res = select(X, [1, 2, 12], ["spherical"], cv=2, random_state=0)
    bad = res.results[2]
    assert bad["error"] is None
    assert bad["cv_error"].startswith("fold 1/2: Expected n_samples >= "
                                      "n_components")
    assert bad["cv"] == np.inf and bad["cv_loglik"] == -np.inf
    assert np.isfinite(bad["bic"])
    assert "cv failed K=12 spherical: fold 1/2" in res.table()
    res = select(X, [1, 2, 12], ["spherical"], criterion="cv", cv=2,
                 random_state=0, include_degenerate=True)
    assert res.results[2]["criterion"] == np.inf
    assert res.best_params["n_components"] in (1, 2)
    assert (12, "spherical") in res.models  # the all-data fit succeeded
    text = res.table()
    assert "failed" in text.splitlines()[4]
    with pytest.raises(ValueError, match="Every fit failed; first error: "
                                         "fold 1/2"):
        select(X, [12], ["spherical"], criterion="cv", cv=2, random_state=0)


def test_fold_warnings_are_recorded_with_the_fold():
    X = make_structured("full", seed=1, n=300)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = select(X, [3], ["full"], criterion="cv", cv=3, random_state=0,
                     max_iter=1, tol=0.0)
    assert caught == []
    msgs = res.results[0]["warnings"]
    assert any(m.startswith("Best performing") for m in msgs)
    for i in (1, 2, 3):
        assert any(m.startswith(f"fold {i}/3: Best performing")
                   for m in msgs)


def test_progress_once_per_grid_point():
    X = make_structured("full", seed=1, n=240)
    seen = []
    select(X, [1, 2, 3], ["full", "diag"], criterion="cv", cv=3,
           random_state=0, n_jobs=2,
           progress=lambda row, done, total: seen.append((done, total,
                                                          row["cv"])))
    assert [s[:2] for s in seen] == [(i, 6) for i in range(1, 7)]
    assert all(np.isfinite(s[2]) for s in seen)


def test_interrupt_during_cv_cancels_and_clears_the_abort_flag():
    X = make_structured("full", seed=1, n=240)

    def stop(row, done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        select(X, [1, 2, 3, 4], ["full", "diag"], criterion="cv", cv=3,
               random_state=0, n_jobs=2, progress=stop)
    assert not _config._ABORT.is_set()
    res = select(X, [2], ["full"], criterion="cv", cv=3, random_state=0)
    assert np.isfinite(res.best_score)


@pytest.mark.parametrize("kwargs, match", [
    ({"cv": 1}, "cv must be an int >= 2"),
    ({"cv": True}, "cv must be an int >= 2"),
    ({"cv": 2.5}, "cv must be an int >= 2"),
    ({"cv": 51}, "cv=51 folds need at least 51 rows"),
    ({"criterion": "cvv"}, "criterion must be one of"),
    ({"standardize": True, "covariance_types": "spherical"},
     "cannot report a 'spherical' model"),
    ({"standardize": True, "covariance_types": "all"},
     "cannot report a 'spherical' model"),
])
def test_bad_cv_and_standardize_arguments(kwargs, match):
    X = np.random.default_rng(0).normal(size=(50, 2))
    with pytest.raises(ValueError, match=match):
        select(X, **{"n_components": [1, 2], **kwargs})


# -------------------------------------------------------------- standardize
@pytest.mark.parametrize("ct", ["full", "tied", "diag"])
def test_from_standardized_round_trip(ct):
    X = _scaled(seed=2)
    Xs, mu, sd = _standardize(X)
    gm = GaussianMixture(3, covariance_type=ct, random_state=0).fit(Xs)
    new = from_standardized(gm, mu, sd)
    assert new is not gm and new.covariance_type == ct
    assert new.get_params() == gm.get_params()
    np.testing.assert_array_equal(new.predict(X), gm.predict(Xs))
    jac = np.sum(np.log(sd))
    np.testing.assert_allclose(new.score_samples(X),
                               gm.score_samples(Xs) - jac, rtol=1e-9)
    np.testing.assert_allclose(new.score(X), gm.score(Xs) - jac, rtol=1e-10)
    np.testing.assert_allclose(new.predict_proba(X), gm.predict_proba(Xs),
                               atol=1e-10)
    np.testing.assert_allclose(new.means_, gm.means_ * sd + mu)
    S = np.outer(sd, sd) if ct != "diag" else sd ** 2
    np.testing.assert_allclose(new.covariances_, gm.covariances_ * S,
                               rtol=1e-10)
    # precisions and their Cholesky factors agree with the covariances
    cov = new.covariances_
    if ct == "diag":
        np.testing.assert_allclose(new.precisions_ * cov, 1.0, rtol=1e-9)
        np.testing.assert_allclose(new.precisions_cholesky_ ** 2,
                                   new.precisions_, rtol=1e-12)
    else:
        c3 = cov.reshape(-1, 2, 2)
        p3 = new.precisions_.reshape(-1, 2, 2)
        u3 = new.precisions_cholesky_.reshape(-1, 2, 2)
        for c, p, u in zip(c3, p3, u3):
            np.testing.assert_allclose(p @ c, np.eye(2), atol=1e-9)
            np.testing.assert_allclose(u @ u.T, p, rtol=1e-9)
            assert u[1, 0] == 0.0  # still upper triangular
    assert new.n_iter_ == gm.n_iter_ and new.converged_ == gm.converged_
    np.testing.assert_allclose(new.lower_bound_, gm.lower_bound_ - jac)
    # and the same model rebuilt from the original-unit parameters scores
    # the same: the returned model is self-consistent
    np.testing.assert_allclose(new.bic(X), gm.bic(Xs) + 2 * len(X) * jac,
                               rtol=1e-10)


def test_from_standardized_spherical_needs_equal_scales():
    X = make_structured("spherical", seed=0, n=300)
    gm = GaussianMixture(3, covariance_type="spherical", random_state=0)
    gm.fit((X - 1.0) / 2.0)
    with pytest.raises(ValueError, match="not spherical in the original"):
        from_standardized(gm, [1.0, 1.0], [2.0, 3.0])
    new = from_standardized(gm, [1.0, 1.0], [2.0, 2.0])
    np.testing.assert_array_equal(new.predict(X), gm.predict((X - 1) / 2))
    np.testing.assert_allclose(new.covariances_, gm.covariances_ * 4)


def test_select_standardize_reports_original_units():
    X = _scaled(seed=3)
    N = X.shape[0]
    Xs, mu, sd = _standardize(X)
    res = select(X, [2, 3, 4], random_state=0, standardize=True)
    assert res.covariance_types == ["full", "tied", "diag"]
    assert res.standardize
    np.testing.assert_allclose(res.feature_means, mu)
    np.testing.assert_allclose(res.feature_scales, sd)
    plain = select(Xs, [2, 3, 4], ["full", "tied", "diag"], random_state=0)
    jac = N * np.sum(np.log(sd))
    for r, q in zip(res.results, plain.results):
        key = (r["n_components"], r["covariance_type"])
        model, ms = res.models[key], plain.models[key]
        np.testing.assert_array_equal(model.predict(X), ms.predict(Xs))
        np.testing.assert_allclose(r["log_likelihood"],
                                   q["log_likelihood"] - jac, rtol=1e-9)
        np.testing.assert_allclose(r["bic"], q["bic"] + 2 * jac, rtol=1e-9)
        np.testing.assert_allclose(r["bic"], model.bic(X), rtol=1e-10)
        np.testing.assert_allclose(r["entropy"], q["entropy"], rtol=1e-6,
                                   atol=1e-8)
    assert res.best_params == plain.best_params == {
        "n_components": 3, "covariance_type": "full"}
    assert "standardized features" in res.table()


def test_select_standardize_with_cv_and_missing_values():
    X = _scaled(seed=4, n=450)
    rng = np.random.default_rng(0)
    X[rng.random(X.shape) < 0.05] = np.nan
    X[3] = np.nan  # one row with nothing observed
    Xs, mu, sd = _standardize(X)
    res = select(X, [2, 3], ["full", "diag"], criterion="cv", cv=3,
                 random_state=0, standardize=True, nan_policy="marginalize")
    np.testing.assert_allclose(res.feature_means, mu)
    np.testing.assert_allclose(res.feature_scales, sd)
    assert res.best_params["n_components"] == 3
    assert all(np.isfinite(r["cv"]) and r["cv_error"] is None
               for r in res.results)
    # one grid point by hand: fits on standardized training rows, held-out
    # log-likelihood in the original units (the Jacobian of the observed
    # entries of each row)
    N = X.shape[0]
    total = 0.0
    for test in cv_folds(N, 3, 0):
        train = np.setdiff1d(np.arange(N), test)
        gm = GaussianMixture(3, covariance_type="full", random_state=0,
                             nan_policy="marginalize",
                             **mclust_defaults(Xs)).fit(Xs[train])
        jac = (~np.isnan(X[test])) @ np.log(sd)
        total += np.sum(gm.score_samples(Xs[test]) - jac)
    r = next(r for r in res.results
             if (r["n_components"], r["covariance_type"]) == (3, "full"))
    np.testing.assert_allclose(r["cv"], -2 * total, rtol=1e-9)
    best = res.best_model
    assert best.nan_policy == "marginalize"
    imp = best.impute(X)
    assert not np.isnan(imp).any()
    np.testing.assert_array_equal(imp[~np.isnan(X)], X[~np.isnan(X)])


# ------------------------------------------------------------------ names
def test_select_keeps_feature_names():
    pd = pytest.importorskip("pandas")
    X = make_structured("full", seed=0, n=300)
    df = pd.DataFrame(X, columns=["height", "width"])
    res = select(df, [1, 2, 3], ["full", "diag"], random_state=0, cv=2)
    for model in res.models.values():
        assert list(model.feature_names_in_) == ["height", "width"]
    best = res.best_model
    assert _no_warnings(best.bic, df) == pytest.approx(res.best_score,
                                                       rel=1e-12)
    _no_warnings(best.predict, df)
    with pytest.warns(UserWarning, match="does not have valid feature"):
        best.predict(X)
    res = select(df, [2, 3], random_state=0, standardize=True)
    assert list(res.best_model.feature_names_in_) == ["height", "width"]
    _no_warnings(res.best_model.score, df)
    # plain arrays: no names
    res = select(X, [2], ["full"], random_state=0)
    assert not hasattr(res.best_model, "feature_names_in_")


def test_impute_returns_a_dataframe_for_a_dataframe():
    pd = pytest.importorskip("pandas")
    X = make_structured("full", seed=0, n=300)
    X[::9, 1] = np.nan
    df = pd.DataFrame(X, columns=["a", "b"],
                      index=pd.Index(np.arange(300) * 3 + 7, name="id"))
    gm = GaussianMixture(3, random_state=0, nan_policy="marginalize").fit(df)
    out = _no_warnings(gm.impute, df)
    assert isinstance(out, pd.DataFrame)
    assert out.index.equals(df.index) and out.columns.equals(df.columns)
    assert not out.isna().any().any()
    assert df["b"].isna().sum() == 34  # not modified
    arr = GaussianMixture(3, random_state=0,
                          nan_policy="marginalize").fit(X).impute(X)
    assert type(arr) is np.ndarray
    np.testing.assert_allclose(out.to_numpy(), arr)
    with pytest.warns(UserWarning, match="does not have valid feature"):
        assert type(gm.impute(X)) is np.ndarray


def test_dask_dataframe_fit_keeps_feature_names():
    pd = pytest.importorskip("pandas")
    dd = pytest.importorskip("dask.dataframe")
    X = make_structured("full", seed=0, n=300)
    df = pd.DataFrame(X, columns=["a", "b"])
    ddf = dd.from_pandas(df, npartitions=3)
    gm = GaussianMixture(3, random_state=0).fit(ddf)
    assert list(gm.feature_names_in_) == ["a", "b"]
    labels = _no_warnings(gm.predict, ddf).compute()
    np.testing.assert_array_equal(labels, _no_warnings(gm.predict, df))
    with pytest.warns(UserWarning, match="does not have valid feature"):
        gm.predict(X)
    with pytest.raises(ValueError, match="feature names should match"):
        gm.predict(dd.from_pandas(df.rename(columns={"a": "z"}),
                                  npartitions=2))
