"""mclust's fourteen covariance models (fastem/families/mclust.py).

Parity with mclust itself (R, mclust 6.0.0; skipped when ``Rscript`` or the
package is missing): from the same responsibilities z, fastem's M-step
equals ``mstep(modelName, data, z)``, its log-likelihood under those
parameters equals ``estep``'s, and a full EM from z equals ``me``'s
log-likelihood and BIC.  Without R: the log-likelihood never decreases, the
fitted covariances satisfy their model's constraints, the scikit-learn names
are the same models, save/load is exact, the parameter counts are mclust's,
one-feature data collapses to mclust's "E" and "V".
"""

import json
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest

import fastem
from fastem.families.covariances import (
    ALIASES,
    COVARIANCE_MODELS,
    MCLUST_COVARIANCE_TYPES,
)
from fastem.families.gaussian import (
    m_step,
    score_samples,
    stats_from_responsibilities,
)
from fastem.io import load, save
from fastem.selection import n_parameters

DATA = Path(__file__).parent / "data"
MODELS = MCLUST_COVARIANCE_TYPES
ITERATIVE = ("VEI", "VEE", "EVE", "VVE", "VEV")
DATASETS = ("faithful", "iris")
# mclust's emControl()$tol[2]: the iterative M-steps stop at this relative
# change, so fastem and mclust agree to about it (they run the same
# iterations from the same start: in practice to ~1e-13)
INNER_TOL = np.sqrt(np.finfo(float).eps)


def _load(name):
    return np.loadtxt(DATA / f"{name}.csv", delimiter=",", skiprows=2)


def _soft_z(X, rows, s=1.0):
    """Deterministic soft responsibilities: a Gaussian kernel to ``rows``."""
    c = X[rows]
    d = (((X[:, None, :] - c[None]) ** 2) / X.var(axis=0)).sum(axis=-1)
    z = np.exp(-d / (2 * s))
    return z / z.sum(axis=1, keepdims=True)


Z_ROWS = {"faithful": [0, 1, 2], "iris": [0, 50, 100]}


def _z(name):
    return _soft_z(_load(name), Z_ROWS[name])


def _full(cov, ct, K, D):
    """Covariances (K, D, D) of any layout."""
    model = COVARIANCE_MODELS[ct]
    cov = np.asarray(cov)
    if model.square:
        return np.broadcast_to(cov, (K, D, D)) if cov.ndim == 2 else cov
    if cov.ndim == 1:
        return cov[:, None, None] * np.eye(D)
    return np.einsum("ki,ij->kij", cov, np.eye(D))


# --------------------------------------------------------------- R and mclust
R_SCRIPT = r"""
suppressMessages(library(mclust))
args <- commandArgs(trailingOnly = TRUE)
dir <- args[1]
models <- c("EII","VII","EEI","VEI","EVI","VVI","EEE","VEE","EVE","VVE",
            "EEV","VEV","EVV","VVV")
out <- list()
for (nm in c("faithful", "iris")) {
  X <- as.matrix(read.csv(file.path(dir, paste0(nm, ".csv")), header = FALSE))
  z <- as.matrix(read.csv(file.path(dir, paste0("z_", nm, ".csv")),
                          header = FALSE))
  n <- nrow(X); d <- ncol(X); G <- ncol(z)
  for (m in models) {
    ms <- mstep(modelName = m, data = X, z = z)
    es <- estep(modelName = m, data = X, parameters = ms$parameters)
    fit <- me(modelName = m, data = X, z = z,
              control = emControl(tol = c(1e-10, sqrt(.Machine$double.eps))))
    out[[paste(nm, m)]] <- list(
      pro = ms$parameters$pro, mean = c(ms$parameters$mean),
      sigma = c(ms$parameters$variance$sigma),
      estep_loglik = es$loglik, me_loglik = fit$loglik,
      me_bic = bic(m, fit$loglik, n, d, G),
      me_iter = attr(fit, "info")[1])
  }
}
counts <- list()
for (d in c(1, 2, 3, 5)) for (G in c(1, 2, 4)) for (m in models)
  counts[[paste(m, d, G)]] <- nVarParams(m, d = d, G = G)
for (d in c(1)) for (G in c(1, 2, 4)) for (m in c("E", "V"))
  counts[[paste(m, d, G)]] <- nVarParams(m, d = d, G = G)
cat(jsonlite::toJSON(list(fits = out, counts = counts), digits = NA,
                     auto_unbox = TRUE), file = file.path(dir, "out.json"))
"""


def _mclust_missing():
    if shutil.which("Rscript") is None:
        return "Rscript is not installed"
    r = subprocess.run(
        ["Rscript", "-e", "library(mclust); library(jsonlite)"],
        capture_output=True, text=True)
    if r.returncode != 0:
        return "R packages mclust and jsonlite are not installed"
    return None


@pytest.fixture(scope="module")
def mclust(tmp_path_factory):
    """Everything mclust computes for this module, in one R call."""
    why = _mclust_missing()
    if why:
        pytest.skip(f"mclust parity needs R with mclust: {why}")
    d = tmp_path_factory.mktemp("mclust")
    for name in DATASETS:
        np.savetxt(d / f"{name}.csv", _load(name), delimiter=",",
                   fmt="%.17g")
        np.savetxt(d / f"z_{name}.csv", _z(name), delimiter=",",
                   fmt="%.17g")
    (d / "run.R").write_text(R_SCRIPT)
    r = subprocess.run(["Rscript", str(d / "run.R"), str(d)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads((d / "out.json").read_text())


@pytest.fixture
def mclust_vve(monkeypatch):
    """VVE's orientation update as mclust's msvve does it (no 1/lambda_k)."""
    monkeypatch.setattr(COVARIANCE_MODELS["VVE"], "volume_weights", False)


def _r_params(res, K, D):
    sigma = np.array(res["sigma"]).reshape((D, D, K), order="F")
    return (np.array(res["pro"]),
            np.array(res["mean"]).reshape((D, K), order="F").T,
            sigma.transpose(2, 0, 1))


def _mstep(X, z, ct):
    stats = stats_from_responsibilities(X, resp=z, covariance_type=ct)
    return m_step(stats, reg_covar=0.0)


@pytest.mark.parametrize("name", DATASETS)
@pytest.mark.parametrize("ct", MODELS)
def test_mstep_and_estep_equal_mclust(mclust, mclust_vve, name, ct):
    X, z = _load(name), _z(name)
    D, K = X.shape[1], z.shape[1]
    res = mclust["fits"][f"{name} {ct}"]
    pro, mean, sigma = _r_params(res, K, D)
    p = _mstep(X, z, ct)
    # the closed forms to rounding; the iterative ones to their inner
    # tolerance (they run mclust's iterations from mclust's start)
    rtol = 1e-6 if ct in ITERATIVE else 1e-8
    np.testing.assert_allclose(p.weights, pro, rtol=1e-12)
    np.testing.assert_allclose(p.means, mean, rtol=1e-12)
    cov = _full(p.covariances, ct, K, D)
    np.testing.assert_allclose(cov, sigma, rtol=rtol,
                               atol=rtol * np.abs(sigma).max())
    # estep's log-likelihood under mstep's parameters
    ll = score_samples(X, p).sum()
    np.testing.assert_allclose(ll, res["estep_loglik"], rtol=1e-10)


@pytest.mark.parametrize("name", DATASETS)
def test_vve_mstep_is_a_better_gem_step_than_mclusts(mclust, name):
    """fastem's VVE (W_k weighted by 1/lambda_k) against mclust's msvve.

    Both M-steps from the same z: fastem's expected complete log-likelihood
    is at least mclust's (mclust's orientation update leaves the volumes
    out); they differ by ~0.5% in the covariances on these data.
    """
    X, z = _load(name), _z(name)
    D, K = X.shape[1], z.shape[1]
    _, _, sigma = _r_params(mclust["fits"][f"{name} VVE"], K, D)
    stats = stats_from_responsibilities(X, resp=z, covariance_type="VVE")
    nk = stats.nk
    mu = stats.ref + stats.sums / nk[:, None]
    d = X[:, None, :] - mu[None]
    W = np.einsum("nk,nki,nkj->kij", z, d, d)

    def q(S):
        return -0.5 * np.sum(nk * np.linalg.slogdet(S)[1] + np.einsum(
            "kij,kji->k", np.linalg.inv(S), W))

    ours = m_step(stats, reg_covar=0.0).covariances
    assert q(ours) >= q(sigma)
    assert q(ours) - q(sigma) > 1e-3  # a real difference on these data


@pytest.mark.parametrize("name", DATASETS)
@pytest.mark.parametrize("ct", MODELS)
def test_em_from_z_equals_mclust_me(mclust, mclust_vve, name, ct):
    X, z = _load(name), _z(name)
    N, K = X.shape[0], z.shape[1]
    res = mclust["fits"][f"{name} {ct}"]
    p0 = _mstep(X, z, ct)
    prec = COVARIANCE_MODELS[ct].precisions(p0.precisions_cholesky)
    gm = fastem.GaussianMixture(
        K, covariance_type=ct, reg_covar=0.0, tol=1e-12, max_iter=20000,
        weights_init=p0.weights, means_init=p0.means, precisions_init=prec)
    with warnings.catch_warnings():
        warnings.simplefilter("error", fastem.ConvergenceWarning)
        gm.fit(X)
    ll = gm.score(X) * N
    np.testing.assert_allclose(ll, res["me_loglik"], rtol=1e-5)
    # mclust's BIC = 2 loglik - npar log n, scikit-learn's is minus that
    np.testing.assert_allclose(-gm.bic(X), res["me_bic"], rtol=1e-5)
    assert (-gm.bic(X) - 2 * ll) == pytest.approx(
        res["me_bic"] - 2 * res["me_loglik"], rel=1e-12)


def test_parameter_counts_equal_mclust(mclust):
    for key, count in mclust["counts"].items():
        m, d, G = key.split()
        d, G = int(d), int(G)
        if m in ("E", "V"):  # mclust's univariate models
            for ct in MODELS:
                if ct[0] == m:
                    assert n_parameters(G, 1, ct) == count + G + G - 1
            continue
        assert COVARIANCE_MODELS[m].n_parameters(G, d) == count, key


# ------------------------------------------------------------- without R
def test_parameter_counts():
    # mclust: nVarParams("VEV", d = 4, G = 3) is 24
    assert COVARIANCE_MODELS["VEV"].n_parameters(3, 4) == 24
    for alias, model in ALIASES.items():
        for K, D in ((1, 1), (3, 2), (4, 5)):
            assert (n_parameters(K, D, alias)
                    == n_parameters(K, D, model))


def _three_blobs(seed=0, n=150):
    """Three 3-D clusters with different volumes, shapes and orientations."""
    rng = np.random.RandomState(seed)
    out = []
    for k, (scale, c) in enumerate(((1.0, 0.0), (2.0, 6.0), (0.5, -6.0))):
        A = rng.normal(size=(3, 3)) * scale
        out.append(rng.normal(size=(n, 3)) @ A + c)
    return np.vstack(out)


@pytest.mark.parametrize("ct", MODELS)
def test_log_likelihood_never_decreases(ct):
    data = (_load("faithful"), _three_blobs(1))
    for X in data:
        for seed in range(3):
            gm = fastem.GaussianMixture(
                3, covariance_type=ct, reg_covar=0.0, tol=0.0, max_iter=60,
                random_state=seed, init_params="random")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                gm.fit(X)
            lb = np.asarray(gm.lower_bounds_)
            drop = np.diff(lb)
            assert drop.min() >= -1e-12 * np.abs(lb).max(), (ct, seed, drop)


def _decompose(S):
    """Volumes, shapes (descending) and orientations of a stack (K, D, D)."""
    lam, vec = np.linalg.eigh(S)
    lam, vec = lam[:, ::-1], vec[:, :, ::-1]
    vol = np.exp(np.log(lam).mean(axis=1))
    return vol, lam / vol[:, None], vec


def _check_constraints(ct, cov, K, D):
    S = _full(cov, ct, K, D)
    vol, shape, vec = _decompose(S)
    v, a, o = ct
    rel = 1e-7
    if v == "E":
        np.testing.assert_allclose(vol, np.full(K, vol[0]), rtol=rel)
    else:
        assert np.ptp(vol) > 1e-3 * vol.max()
    if a == "I":
        np.testing.assert_allclose(shape, np.ones(shape.shape), rtol=rel)
    elif a == "E":
        np.testing.assert_allclose(shape, np.broadcast_to(shape[0], shape.shape),
                                   rtol=rel)
    else:
        assert np.ptp(shape[:, 0]) > 1e-3
    if o == "I":  # diagonal covariances
        off = S - np.einsum("kii,ij->kij", S, np.eye(D))
        assert np.abs(off).max() == 0.0
    elif o == "E":  # one eigenbasis diagonalizes every covariance
        B = np.einsum("ji,kjl,lm->kim", vec[0], S, vec[0])
        off = B - np.einsum("kii,ij->kij", B, np.eye(D))
        assert np.abs(off).max() <= rel * np.abs(S).max()
    else:
        B = np.einsum("ji,kjl,lm->kim", vec[0], S, vec[0])
        off = B - np.einsum("kii,ij->kij", B, np.eye(D))
        assert np.abs(off[1:]).max() > 1e-3 * np.abs(S).max()


@pytest.mark.parametrize("ct", MODELS)
def test_fitted_covariances_satisfy_the_constraints(ct):
    X = _three_blobs(2)
    gm = fastem.GaussianMixture(3, covariance_type=ct, random_state=0,
                                tol=1e-8, max_iter=500).fit(X)
    K, D = 3, X.shape[1]
    want = {"EII": (K,), "VII": (K,), "EEI": (K, D), "VEI": (K, D),
            "EVI": (K, D), "VVI": (K, D), "EEE": (D, D)}.get(ct, (K, D, D))
    assert gm.covariances_.shape == want
    _check_constraints(ct, gm.covariances_, K, D)
    if ct in ("EII", "EEI"):
        assert np.all(gm.covariances_ == gm.covariances_[0])  # equal rows


def test_iterative_mstep_from_previous_does_not_decrease_q():
    """The GEM step: from the current parameters, Q does not decrease."""
    X = _three_blobs(3)
    rng = np.random.RandomState(0)
    z = rng.dirichlet(np.ones(3), size=X.shape[0])
    for ct in ITERATIVE:
        stats = stats_from_responsibilities(X, resp=z, covariance_type=ct)
        nk = stats.nk
        mu = stats.ref + stats.sums / nk[:, None]
        d = X[:, None, :] - mu[None]
        W = np.einsum("nk,nki,nkj->kij", z, d, d)

        def q(cov, ct=ct):
            S = _full(cov, ct, 3, 3)
            return -0.5 * np.sum(nk * np.linalg.slogdet(S)[1] + np.einsum(
                "kij,kji->k", np.linalg.inv(S), W))

        # a previous state of the model from other responsibilities
        z2 = rng.dirichlet(np.ones(3), size=X.shape[0])
        prev = m_step(stats_from_responsibilities(X, resp=z2,
                                                  covariance_type=ct), 0.0)
        new = m_step(stats, 0.0, previous=prev)
        one = COVARIANCE_MODELS[ct].estimate(
            nk, stats.sums / nk[:, None], stats.scatter, 0.0,
            prev.covariances, max_iter=1)
        assert q(new.covariances) >= q(one) - 1e-9 * abs(q(one)), ct
        assert q(one) >= q(prev.covariances), ct


@pytest.mark.parametrize("alias", sorted(ALIASES))
def test_sklearn_names_are_the_same_models(alias):
    X = _three_blobs(4)
    a = fastem.GaussianMixture(3, covariance_type=alias, random_state=1).fit(X)
    b = fastem.GaussianMixture(3, covariance_type=ALIASES[alias],
                               random_state=1).fit(X)
    assert b.covariance_type == ALIASES[alias]
    for attr in ("weights_", "means_", "covariances_", "precisions_cholesky_",
                 "lower_bounds_"):
        assert np.array_equal(getattr(a, attr), getattr(b, attr)), attr
    assert a.bic(X) == b.bic(X)


@pytest.mark.parametrize("ct", MODELS)
def test_save_load_sample_exact(tmp_path, ct):
    X = _load("faithful")
    gm = fastem.GaussianMixture(3, covariance_type=ct, random_state=0).fit(X)
    save(gm, tmp_path / "m.json")
    back = load(tmp_path / "m.json")
    assert back.covariance_type == ct
    for attr in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        assert np.array_equal(getattr(back, attr), getattr(gm, attr)), attr
    assert np.array_equal(back.score_samples(X), gm.score_samples(X))
    Xs, ys = gm.sample(20)
    assert Xs.shape == (20, 2) and ys.shape == (20,)


@pytest.mark.parametrize("ct", MODELS)
def test_one_feature_is_mclusts_E_or_V(ct):
    X = _load("faithful")[:, :1]
    same = "EII" if ct[0] == "E" else "VII"
    kw = dict(random_state=0, reg_covar=0.0, tol=1e-10, max_iter=300)
    a = fastem.GaussianMixture(2, covariance_type=ct, **kw).fit(X)
    b = fastem.GaussianMixture(2, covariance_type=same, **kw).fit(X)
    np.testing.assert_allclose(a.score(X), b.score(X), rtol=1e-9)
    assert n_parameters(2, 1, ct) == n_parameters(2, 1, same)
    var = _full(a.covariances_, ct, 2, 1).reshape(2)
    if ct[0] == "E":
        assert var[0] == pytest.approx(var[1], rel=1e-12)


def test_unknown_name_lists_the_valid_ones():
    X = _load("faithful")
    with pytest.raises(ValueError, match="Invalid value for 'covariance_type'"
                       ": 'VXV'.*'full'.*'EII'.*'VVV'"):
        fastem.GaussianMixture(2, covariance_type="VXV").fit(X)
    with pytest.raises(ValueError, match="covariance_types must be a subset "
                       "of .*'VEV'.*got \\['VXV'\\]"):
        fastem.select(X, [1], covariance_types=["VXV"])
    with pytest.raises(ValueError, match="covariance_type must be one of "
                       ".*'EVE'.*got 'VXV'"):
        n_parameters(2, 2, "VXV")


def test_other_estimators_keep_sklearns_four():
    X = _load("faithful")
    with pytest.raises(ValueError, match="Invalid value for 'covariance_type'"
                       ": 'VEV'"):
        fastem.BayesianGaussianMixture(2, covariance_type="VEV").fit(X)
    with pytest.raises(ValueError, match="nan_policy='marginalize' supports"):
        fastem.GaussianMixture(2, covariance_type="VEV",
                               nan_policy="marginalize").fit(X)


def test_select_takes_mclust_names():
    X = _load("faithful")
    res = fastem.select(X, [2, 3], covariance_types=["EEE", "VEV"],
                        random_state=0)
    rows = {(r["n_components"], r["covariance_type"]): r for r in res.results}
    assert rows[(3, "VEV")]["n_parameters"] == 2 * 3 + 2 + 3 + 1 + 3
    assert res.best_params["covariance_type"] in ("EEE", "VEV")
    with pytest.raises(ValueError, match="standardize=True"):
        fastem.select(X, [2], covariance_types="mclust", standardize=True)


@pytest.mark.parametrize("name", DATASETS)
def test_vve_em_reaches_a_higher_likelihood_than_mclust(mclust, name):
    """fastem's VVE EM from z ends above mclust's ``me`` (monotone GEM)."""
    X, z = _load(name), _z(name)
    N, K = X.shape[0], z.shape[1]
    p0 = _mstep(X, z, "VVE")
    prec = COVARIANCE_MODELS["VVE"].precisions(p0.precisions_cholesky)
    gm = fastem.GaussianMixture(
        K, covariance_type="VVE", reg_covar=0.0, tol=1e-12, max_iter=20000,
        weights_init=p0.weights, means_init=p0.means,
        precisions_init=prec).fit(X)
    # faithful: -1122.664 against mclust's -1122.797; iris: -218.879
    # against -219.113
    assert gm.score(X) * N > mclust["fits"][f"{name} VVE"]["me_loglik"] + 0.05
    assert np.all(np.diff(gm.lower_bounds_) >= -1e-12)


def test_cli_takes_mclust_names(capsys, tmp_path):
    from fastem.cli import main

    path = DATA / "faithful.csv"
    out = tmp_path / "m.json"
    assert main(["fit", str(path), "-k", "2", "--covariance", "VEV",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "covariance 'VEV'" in text and "covariances (full)" in text
    assert load(out).covariance_type == "VEV"
    assert main(["fit", str(path), "-k", "2", "--covariance", "EEI"]) == 0
    assert "variances (diag)" in capsys.readouterr().out
    assert main(["fit", str(path), "-k", "2", "--covariance", "VEV",
                 "--standardize"]) != 0
    assert "mclust's constrained models" in capsys.readouterr().err


@pytest.mark.parametrize("ct", ["EII", "EEI", "VEI", "EVI", "EEE", "VEV"])
def test_plot_draws_mclust_models_by_their_layout(ct):
    from fastem.plot import _full_covariances

    X = _load("faithful")
    gm = fastem.GaussianMixture(2, covariance_type=ct, random_state=0).fit(X)
    full = _full_covariances(gm)
    assert full.shape == (2, 2, 2)
    np.testing.assert_allclose(full, _full(gm.covariances_, ct, 2, 2),
                               rtol=1e-12)


def test_from_standardized_keeps_diagonal_models_and_refuses_orientations():
    from fastem.selection import from_standardized

    X = _load("faithful")
    mu, sd = X.mean(axis=0), X.std(axis=0)
    Z = (X - mu) / sd
    gm = fastem.GaussianMixture(2, covariance_type="EEI", random_state=0,
                                tol=1e-8).fit(Z)
    back = from_standardized(gm, mu, sd)
    # the same density, in the original units (Jacobian -sum log sd)
    np.testing.assert_allclose(back.score_samples(X),
                               gm.score_samples(Z) - np.log(sd).sum(),
                               rtol=1e-10)
    np.testing.assert_allclose(back.covariances_[0], back.covariances_[1])
    vev = fastem.GaussianMixture(2, covariance_type="VEV",
                                 random_state=0).fit(Z)
    with pytest.raises(ValueError, match="VEV model fitted on standardized"):
        from_standardized(vev, mu, sd)
