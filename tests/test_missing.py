"""Exact incomplete-data EM (nan_policy='marginalize') against a slow NumPy
reference, plus its invariants and the imputation."""

import warnings

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from fastem import GaussianMixture

COV_TYPES = ["full", "tied", "diag", "spherical"]


def _full_cov(cov, ct, K, D):
    if ct == "full":
        return cov
    if ct == "tied":
        return np.broadcast_to(cov, (K, D, D))
    if ct == "diag":
        return np.array([np.diag(c) for c in cov])
    return np.array([c * np.eye(D) for c in cov])


def reference_em_step(X, w, means, cov, ct, reg, sw=None):
    """One EM iteration for incomplete data, row by row (obviously right).

    Returns (mean observed-data log-likelihood, weights, means, covariances).
    """
    N, D = X.shape
    K = len(w)
    S = _full_cov(cov, ct, K, D)
    sw = np.ones(N) if sw is None else sw
    nk = np.zeros(K)
    s1 = np.zeros((K, D))
    s2 = np.zeros((K, D, D))
    ll = 0.0
    wsum = 0.0
    for i in range(N):
        o = ~np.isnan(X[i])
        m = ~o
        if not o.any():
            continue
        logp = np.array([np.log(w[k]) + multivariate_normal(
            means[k][o], S[k][np.ix_(o, o)]).logpdf(X[i, o]) for k in range(K)])
        lse = np.logaddexp.reduce(logp)
        r = np.exp(logp - lse)
        ll += sw[i] * lse
        wsum += sw[i]
        for k in range(K):
            xh = X[i].copy()
            C = np.zeros((D, D))
            if m.any():
                B = S[k][np.ix_(m, o)] @ np.linalg.inv(S[k][np.ix_(o, o)])
                xh[m] = means[k][m] + B @ (X[i, o] - means[k][o])
                C[np.ix_(m, m)] = S[k][np.ix_(m, m)] - B @ S[k][np.ix_(o, m)]
            nk[k] += sw[i] * r[k]
            s1[k] += sw[i] * r[k] * xh
            s2[k] += sw[i] * r[k] * (np.outer(xh, xh) + C)
    new_means = s1 / nk[:, None]
    full = s2 / nk[:, None, None] - np.einsum("ki,kj->kij", new_means, new_means)
    if ct == "full":
        new_cov = full + reg * np.eye(D)
    elif ct == "tied":
        new_cov = (full * nk[:, None, None]).sum(0) / nk.sum() + reg * np.eye(D)
    elif ct == "diag":
        new_cov = np.diagonal(full, axis1=1, axis2=2) + reg
    else:
        new_cov = np.diagonal(full, axis1=1, axis2=2).mean(1) + reg
    return ll / wsum, nk / nk.sum(), new_means, new_cov


def _precisions(cov, ct):
    if ct in ("full", "tied"):
        return np.linalg.inv(cov)
    return 1.0 / cov


def _data(rng, n=240, D=3, frac=0.2):
    A = np.array([[1.0, 0.4, 0.0], [0.0, 1.0, 0.3], [0.2, 0.0, 1.0]])[:D, :D]
    X = np.vstack([rng.normal(0, 1, (n // 2, D)) @ A,
                   rng.normal(2.5, 0.7, (n - n // 2, D))])
    Xm = X.copy()
    Xm[rng.random(X.shape) < frac] = np.nan
    return X, Xm


def _start(ct, D=3, K=2):
    means = np.array([[0.1, -0.2, 0.0], [2.0, 2.2, 2.6]])[:K, :D]
    w = np.array([0.45, 0.55])
    if ct == "full":
        cov = np.array([np.eye(D) * 1.2 + 0.1, np.eye(D) * 0.6])
    elif ct == "tied":
        cov = np.eye(D) + 0.2
    elif ct == "diag":
        cov = np.array([[1.0, 1.3, 0.9], [0.5, 0.6, 0.7]])[:, :D]
    else:
        cov = np.array([1.1, 0.5])
    return w, means, cov


@pytest.mark.parametrize("ct", COV_TYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_iterates_match_reference(ct, weighted):
    # From the same start, every iterate equals the row-by-row reference.
    # Both are exact EM in float64; differences are accumulation order only,
    # so 1e-8 relative is generous.
    rng = np.random.default_rng(1)
    _, Xm = _data(rng)
    Xm[3] = np.nan  # a row with nothing observed: ignored by both
    sw = rng.integers(1, 4, len(Xm)).astype(float) if weighted else None
    w, means, cov = _start(ct)
    reg = 1e-6
    for it in range(1, 5):
        gm = GaussianMixture(2, covariance_type=ct, nan_policy="marginalize",
                             tol=0, max_iter=it, weights_init=w,
                             means_init=means,
                             precisions_init=_precisions(cov, ct), reg_covar=reg)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gm.fit(Xm, sample_weight=sw)
        rw, rm, rc = w, means, cov
        for _ in range(it):
            ll, rw, rm, rc = reference_em_step(Xm, rw, rm, rc, ct, reg, sw)
        np.testing.assert_allclose(gm.lower_bounds_[-1], ll, rtol=1e-8)
        np.testing.assert_allclose(gm.weights_, rw, rtol=1e-8)
        np.testing.assert_allclose(gm.means_, rm, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(gm.covariances_, rc, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("ct", COV_TYPES)
def test_no_nan_gives_complete_data_answer(ct):
    rng = np.random.default_rng(2)
    X, _ = _data(rng)
    a = GaussianMixture(2, covariance_type=ct, random_state=0).fit(X)
    b = GaussianMixture(2, covariance_type=ct, random_state=0,
                        nan_policy="marginalize").fit(X)
    assert a.lower_bounds_ == b.lower_bounds_
    np.testing.assert_array_equal(a.means_, b.means_)
    np.testing.assert_array_equal(a.covariances_, b.covariances_)


@pytest.mark.parametrize("ct", COV_TYPES)
@pytest.mark.parametrize("init", ["kmeans", "k-means++", "random",
                                  "random_from_data"])
def test_observed_loglik_never_decreases(ct, init):
    rng = np.random.default_rng(3)
    _, Xm = _data(rng, n=400, frac=0.3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm = GaussianMixture(3, covariance_type=ct, init_params=init, tol=0,
                             max_iter=30, random_state=0,
                             nan_policy="marginalize").fit(Xm)
    lb = np.array(gm.lower_bounds_)
    assert np.all(np.isfinite(lb))
    # EM is monotone; allow rounding of a mean of ~400 terms.
    assert np.all(np.diff(lb) >= -1e-12 * np.abs(lb[1:]))


def test_predict_score_accept_nan_and_match_reference():
    rng = np.random.default_rng(4)
    _, Xm = _data(rng)
    gm = GaussianMixture(2, random_state=0, nan_policy="marginalize").fit(Xm)
    S = gm.covariances_
    ref_lse = []
    ref_resp = []
    for x in Xm:
        o = ~np.isnan(x)
        lp = np.array([np.log(gm.weights_[k]) + multivariate_normal(
            gm.means_[k][o], S[k][np.ix_(o, o)]).logpdf(x[o]) if o.any()
            else np.log(gm.weights_[k]) for k in range(2)])
        lse = np.logaddexp.reduce(lp)
        ref_lse.append(lse)
        ref_resp.append(np.exp(lp - lse))
    # rtol for ordinary values; atol for log-likelihoods that round to ~0.
    np.testing.assert_allclose(gm.score_samples(Xm), ref_lse, rtol=1e-10,
                               atol=1e-13)
    np.testing.assert_allclose(gm.predict_proba(Xm), ref_resp, atol=1e-10)
    np.testing.assert_array_equal(gm.predict(Xm), np.argmax(ref_resp, axis=1))
    assert gm.score(Xm) == pytest.approx(np.mean(ref_lse), rel=1e-10)


def test_impute_conditional_expectation():
    rng = np.random.default_rng(5)
    _, Xm = _data(rng)
    Xm[0] = np.nan
    before = Xm.copy()
    gm = GaussianMixture(2, random_state=0, nan_policy="marginalize").fit(Xm)
    out = gm.impute(Xm)
    np.testing.assert_array_equal(Xm, before)  # input untouched
    obs = ~np.isnan(Xm)
    np.testing.assert_array_equal(out[obs], Xm[obs])
    assert not np.isnan(out).any()
    # reference: responsibility-weighted conditional means
    S = gm.covariances_
    for i in range(len(Xm)):
        o = obs[i]
        m = ~o
        if not m.any():
            continue
        if o.any():
            lp = np.array([np.log(gm.weights_[k]) + multivariate_normal(
                gm.means_[k][o], S[k][np.ix_(o, o)]).logpdf(Xm[i, o])
                for k in range(2)])
            r = np.exp(lp - np.logaddexp.reduce(lp))
        else:
            r = gm.weights_
        exp = sum(r[k] * (gm.means_[k][m] + S[k][np.ix_(m, o)] @ np.linalg.solve(
            S[k][np.ix_(o, o)], Xm[i, o] - gm.means_[k][o])) for k in range(2))
        np.testing.assert_allclose(out[i, m], exp, rtol=1e-9, atol=1e-12)
    # the all-missing row gets the mixture mean
    np.testing.assert_allclose(out[0], gm.weights_ @ gm.means_, rtol=1e-12)


def test_recovery_beats_dropping_and_mean_imputation():
    # 30% of entries missing completely at random: exact EM recovers the
    # parameters better than complete-case analysis (which keeps ~34% of the
    # rows) and far better than mean imputation.  One draw is noisy, so the
    # RMS errors are averaged over 4 data sets.
    true_means = np.array([[0.0, 0.0, 0.0], [3.0, 3.0, 3.0]])
    cov = np.array([[1.0, 0.8, 0.6], [0.8, 1.0, 0.8], [0.6, 0.8, 1.0]])

    def err(gm):
        o = np.argsort(gm.means_[:, 0])
        return (np.sqrt(((gm.means_[o] - true_means) ** 2).mean())
                + np.sqrt(((gm.covariances_[o] - cov) ** 2).mean()))

    errs = {"em": [], "drop": [], "mean": []}
    kw = dict(random_state=0, tol=1e-6, max_iter=500)
    for seed in range(4):
        rng = np.random.default_rng(seed)
        X = np.vstack([rng.multivariate_normal(m, cov, 1500) for m in true_means])
        Xm = X.copy()
        Xm[rng.random(X.shape) < 0.3] = np.nan
        em = GaussianMixture(2, nan_policy="marginalize", **kw).fit(Xm)
        complete = ~np.isnan(Xm).any(axis=1)
        drop = GaussianMixture(2, **kw).fit(Xm[complete])
        filled = np.where(np.isnan(Xm), np.nanmean(Xm, axis=0), Xm)
        mean_imp = GaussianMixture(2, **kw).fit(filled)
        errs["em"].append(err(em))
        errs["drop"].append(err(drop))
        errs["mean"].append(err(mean_imp))
    em, drop, mean = (np.mean(errs[k]) for k in ("em", "drop", "mean"))
    assert em < drop
    assert em < 0.5 * mean


def test_nan_raises_by_default_and_names_option():
    X = np.ones((10, 2))
    X[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"1 NaN value.*nan_policy='marginalize'"):
        GaussianMixture(1).fit(X)
    with pytest.raises(ValueError, match="nan_policy"):
        GaussianMixture(1, nan_policy="drop").fit(np.ones((10, 2)))
