"""mclust's hierarchical initialization (``init_params='hc'``).

The kernel is checked against a slow, obviously right agglomeration (all
pair costs recomputed at every step) and, where R and mclust are installed,
against mclust's own ``hc`` and ``qclass``.
"""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import fastem
from fastem.core.hc import hc, initial_partition, qclass, svd_transform

DATA = Path(__file__).parent / "data"


def faithful():
    return np.loadtxt(DATA / "faithful.csv", delimiter=",", skiprows=2)


def iris():
    from sklearn.datasets import load_iris

    return load_iris().data


def _term(rows, Z, alpha):
    """mclust's VVV classification term of one cluster (dense NumPy)."""
    n, p = len(rows), Z.shape[1]
    Y = Z[rows] - Z[rows].mean(axis=0)
    W = Y.T @ Y
    tr = np.trace(W)
    base = (tr + alpha) / n
    if n <= p or tr == 0:
        return n * np.log(base)
    sign, logdet = np.linalg.slogdet(W / n)
    if sign <= 0:
        return n * np.log(base)
    return n * np.log(np.exp(logdet) + base)


def reference_merges(X):
    """Agglomerate by recomputing every pair cost each step (slow, clear).

    Clusters live in slots as in mclust: the union of slots i < j goes to i
    and the last slot moves to j; among equal costs the last pair in the
    packed order (column j, then row i, ascending) wins.
    """
    Z = svd_transform(X)
    n, p = Z.shape
    Zc = Z / np.sqrt(n * p)
    alpha = max(((Zc - Zc.mean(axis=0)) ** 2).sum(), np.finfo(float).eps)
    slots = [[i] for i in range(n)]
    names = list(range(n))
    merges = []
    while len(slots) > 1:
        best = None
        for j in range(1, len(slots)):
            for i in range(j):
                c = (_term(slots[i] + slots[j], Z, alpha)
                     - _term(slots[i], Z, alpha) - _term(slots[j], Z, alpha))
                if best is None or c <= best[0]:
                    best = (c, i, j)
        _, i, j = best
        a, b = names[i], names[j]
        merges.append((min(a, b), max(a, b)))
        slots[i] = slots[i] + slots[j]
        names[i] = min(a, b)
        slots[j], names[j] = slots[-1], names[-1]
        slots.pop()
        names.pop()
    return np.array(merges)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kernel_matches_reference_agglomeration(seed):
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal(c, 1.0, size=(12, 3)) for c in (0, 4, 8)])
    tree = hc(X)
    np.testing.assert_array_equal(tree.merges, reference_merges(X))


def test_partitions_are_nested_and_sized():
    tree = hc(iris())
    prev = None
    for K in range(1, 10):
        lab = tree.partition(K)
        assert np.unique(lab).size == K
        # labels numbered by first appearance
        assert lab[0] == 0
        if prev is not None:  # K clusters refine K - 1
            for k in range(K):
                assert np.unique(prev[lab == k]).size == 1
        prev = lab
    with pytest.raises(ValueError, match="cannot be cut"):
        tree.partition(151)


def test_qclass_quantile_classes():
    x = np.arange(100.0)
    lab = qclass(x, 4)
    np.testing.assert_array_equal(np.bincount(lab), [25, 25, 25, 25])
    assert (np.diff(lab) >= 0).all()
    with pytest.raises(ValueError, match="distinct values"):
        qclass(np.r_[np.zeros(5), np.ones(5)], 3)


def test_hc_input_errors():
    with pytest.raises(ValueError, match="at least 2 rows"):
        hc(np.zeros((1, 2)))
    with pytest.raises(ValueError, match="finite"):
        hc(np.array([[0.0, 1.0], [np.nan, 2.0]]))
    X = faithful()
    X0 = X.copy()
    hc(X)
    np.testing.assert_array_equal(X, X0)  # input untouched


def test_subset_for_large_data_and_cache():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5000, 2))
    rows, lab = initial_partition(X, 3, np.random.RandomState(0), subset=300)
    assert rows.shape == (300,) and lab.shape == (300,)
    assert np.unique(rows).size == 300
    rows2, lab2 = initial_partition(X, 3, np.random.RandomState(0),
                                    subset=300)
    np.testing.assert_array_equal(rows, rows2)
    np.testing.assert_array_equal(lab, lab2)
    # the tree of the subset is the tree of those rows
    np.testing.assert_array_equal(lab, hc(X[rows]).partition(3))


def test_gaussian_mixture_hc_start_is_the_partition_m_step():
    X = faithful()
    lab = hc(X).partition(3)
    means = np.array([X[lab == k].mean(axis=0) for k in range(3)])
    g = fastem.GaussianMixture(3, covariance_type="tied", init_params="hc",
                               max_iter=0).fit(X)
    np.testing.assert_allclose(g.means_, means, rtol=1e-12)
    np.testing.assert_allclose(g.weights_, np.bincount(lab) / len(X),
                               rtol=1e-12)
    # one-dimensional data: quantile classes
    g1 = fastem.GaussianMixture(2, init_params="hc", max_iter=0).fit(X[:, :1])
    lab1 = qclass(X[:, 0], 2)
    np.testing.assert_allclose(
        np.sort(g1.means_[:, 0]),
        np.sort([X[lab1 == k, 0].mean() for k in range(2)]), rtol=1e-12)


def test_hc_fit_reaches_mclust_optimum_on_faithful():
    # mclust's best model on Old Faithful is EEE (tied) with 3 components,
    # log-likelihood -1126.326 at mclust's tolerance
    X = faithful()
    ll = [fastem.GaussianMixture(3, covariance_type="tied", init_params="hc",
                                 tol=1e-6, random_state=s).fit(X).score(X)
          * len(X) for s in range(3)]
    assert max(ll) - min(ll) == 0.0  # at most 2,000 rows: no randomness
    assert ll[0] > -1126.33


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_select_defaults_find_eee3_on_faithful(seed):
    res = fastem.select(faithful(), random_state=seed)
    assert res.best_params == {"n_components": 3, "covariance_type": "tied"}
    assert res.best_model.init_params == "hc"
    assert (res.best_model.tol, res.best_model.tol_rule) == (1e-5,
                                                             "relative")
    assert res.best_model.max_iter == 1000
    # kmeans, as asked
    res2 = fastem.select(faithful(), n_components=[2], random_state=seed,
                         init_params="kmeans", covariance_types="tied")
    assert res2.best_model.init_params == "kmeans"


def test_select_mclust_layout():
    X = faithful()
    res = fastem.select(X, n_components=range(1, 5), random_state=0,
                        bic_sign="mclust")
    ks, types, tab = res.bic_table()
    assert ks == [1, 2, 3, 4] and types == ["full", "tied", "diag",
                                             "spherical"]
    ks2, _, tab_f = res.bic_table(sign="fastem")
    np.testing.assert_array_equal(tab, -tab_f)
    for r in res.results:
        i, j = ks.index(r["n_components"]), types.index(r["covariance_type"])
        assert tab[i, j] == pytest.approx(
            2 * r["log_likelihood"] - r["n_parameters"] * np.log(len(X)))
    top = res.top_models()
    assert [t["label"] for t in top][0] == "tied,3"
    assert top[0]["bic"] == np.nanmax(tab)
    assert top[0]["bic"] >= top[1]["bic"] >= top[2]["bic"]
    text = res.summary()
    assert "Best BIC values (mclust's sign: higher is better)" in text
    assert "[mclust EEE]" in text and "equal volume, shape and orientation" \
        in text
    assert "Clustering table:" in text
    assert sum(res.best_counts) == len(X)
    assert "higher is better" in res.table()
    assert "lower is better" in fastem.select(
        X, n_components=[1, 2], covariance_types="full").table()
    with pytest.raises(ValueError, match="bic_sign"):
        fastem.select(X, bic_sign="R")


def _rscript_mclust():
    if shutil.which("Rscript") is None:
        return "Rscript is not installed (apt-get install r-cran-mclust)"
    out = subprocess.run(["Rscript", "-e", "library(mclust)"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        return "R's mclust package is not installed " \
               "(apt-get install r-cran-mclust)"
    return None


NO_MCLUST = _rscript_mclust()


@pytest.mark.skipif(NO_MCLUST is not None, reason=str(NO_MCLUST))
@pytest.mark.parametrize("name", ["faithful", "iris"])
def test_merges_and_partitions_equal_mclust(tmp_path, name):
    X = faithful() if name == "faithful" else iris()
    np.savetxt(tmp_path / "x.csv", X, delimiter=",")
    script = tmp_path / "hc.R"
    script.write_text(
        "suppressMessages(library(mclust))\n"
        "X <- as.matrix(read.csv('x.csv', header=FALSE))\n"
        "h <- hc(X, modelName='VVV', use='SVD')\n"
        "write.table(hclass(h, 1:9), 'cl.csv', sep=',', row.names=FALSE,"
        " col.names=FALSE)\n"
        "write.table(mclust:::qclass(X[,1], 4), 'q.csv', row.names=FALSE,"
        " col.names=FALSE)\n")
    subprocess.run(["Rscript", str(script)], cwd=tmp_path, check=True,
                   capture_output=True)
    cl = np.loadtxt(tmp_path / "cl.csv", delimiter=",", dtype=int) - 1
    tree = hc(X)
    for K in range(1, 10):
        np.testing.assert_array_equal(tree.partition(K), cl[:, K - 1])
    q = np.loadtxt(tmp_path / "q.csv", dtype=int) - 1
    np.testing.assert_array_equal(qclass(X[:, 0], 4), q)


def test_cli_select_mclust_view(capsys):
    from fastem.cli import main

    path = DATA / "faithful.csv"
    rc = main(["select", str(path), "-k", "1-4", "--bic-sign", "mclust",
               "--summary", "-q"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "BIC (mclust's sign: higher is better)" in out
    assert "Best BIC values" in out and "Clustering table:" in out
    assert "best: K=3, covariance 'tied'" in out
    # fit accepts --init hc; select's start can be changed back
    rc = main(["fit", str(path), "-k", "3", "--covariance", "tied", "--init",
               "hc", "-q", "--json"])
    assert rc == 0
    rc = main(["select", str(path), "-k", "2", "--init", "kmeans", "-q",
               "--json"])
    assert rc == 0
