"""fastem.plot: check what is drawn, not only that something is."""

import sys

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.patches import Ellipse  # noqa: E402

import fastem.plot as fplot  # noqa: E402
from fastem import GaussianMixture  # noqa: E402
from fastem.selection import select  # noqa: E402


@pytest.fixture(scope="module")
def X1():
    rng = np.random.default_rng(0)
    return np.concatenate([rng.normal(-2, 1, 300),
                           rng.normal(3, 0.7, 200)]).reshape(-1, 1)


@pytest.fixture(scope="module")
def X3():
    rng = np.random.default_rng(1)
    a = rng.multivariate_normal([0, 0, 0], [[1, 0.8, 0], [0.8, 1, 0],
                                            [0, 0, 0.5]], 250)
    b = rng.normal([5, 1, -3], [0.5, 1.5, 1.0], (250, 3))
    return np.vstack([a, b])


def normal_pdf(x, mu, var):
    return np.exp(-0.5 * (x - mu) ** 2 / var) / np.sqrt(2 * np.pi * var)


def test_density_1d(X1):
    gm = GaussianMixture(2, random_state=0).fit(X1)
    fig, ax = fplot.figure()
    assert fplot.density(gm, X1, ax=ax) is ax
    lines = ax.get_lines()
    assert len(lines) == 3  # two components, then the mixture
    assert [ln.get_label() for ln in lines][-1] == "mixture"
    grid = lines[-1].get_xdata()
    comp = np.array([ln.get_ydata() for ln in lines[:2]])
    for k in range(2):
        np.testing.assert_allclose(
            comp[k], gm.weights_[k] * normal_pdf(grid, gm.means_[k, 0],
                                                 gm.covariances_[k, 0, 0]),
            rtol=1e-12)
    np.testing.assert_allclose(lines[-1].get_ydata(), comp.sum(axis=0),
                               rtol=1e-12)
    # The mixture line is the model's density.
    np.testing.assert_allclose(lines[-1].get_ydata(),
                               np.exp(gm.score_samples(grid[:, None])),
                               rtol=1e-9)
    # The histogram covers the data range and is a density (area 1).
    bars = [p for p in ax.patches if p.get_height() > 0]
    assert len(bars) > 5
    area = sum(p.get_width() * p.get_height() for p in ax.patches)
    assert area == pytest.approx(1.0)
    assert grid.min() < X1.min() and grid.max() > X1.max()
    fig.savefig(__import__("io").BytesIO(), format="png")


def test_density_marginal_of_a_chosen_feature(X3):
    gm = GaussianMixture(2, covariance_type="diag", random_state=0).fit(X3)
    fig, ax = fplot.figure()
    fplot.density(gm, ax=ax, feature=2, components=False)
    (line,) = ax.get_lines()
    x = line.get_xdata()
    expected = sum(gm.weights_[k] * normal_pdf(x, gm.means_[k, 2],
                                               gm.covariances_[k, 2])
                   for k in range(2))
    np.testing.assert_allclose(line.get_ydata(), expected, rtol=1e-12)
    assert len(ax.patches) == 0  # no data, no histogram
    assert ax.get_xlabel() == "feature 2"


@pytest.mark.parametrize("ct", ["full", "tied", "diag", "spherical"])
def test_scatter_with_ellipses(X3, ct):
    gm = GaussianMixture(2, covariance_type=ct, random_state=0).fit(X3)
    fig, ax = fplot.figure()
    fplot.scatter(gm, X3, features=(2, 0), ax=ax, n_std=(1.0, 2.0))
    cols = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(cols) == 3  # one per component, then the means
    labels = gm.predict(X3)
    for k in range(2):
        pts = cols[k].get_offsets()
        assert len(pts) == np.sum(labels == k)
        np.testing.assert_allclose(np.sort(pts[:, 0]),
                                   np.sort(X3[labels == k, 2]))
        np.testing.assert_allclose(np.sort(pts[:, 1]),
                                   np.sort(X3[labels == k, 0]))
    np.testing.assert_allclose(cols[2].get_offsets(), gm.means_[:, [2, 0]])
    ells = [p for p in ax.patches if isinstance(p, Ellipse)]
    assert len(ells) == 2 * 2
    covs = fplot.marginal_covariances(gm, (2, 0))
    for idx, e in enumerate(ells):
        k, ns = divmod(idx, 2)
        ns = (1.0, 2.0)[ns]
        np.testing.assert_allclose(e.center, gm.means_[k, [2, 0]])
        vals = np.sort(np.linalg.eigvalsh(covs[k]))[::-1]
        np.testing.assert_allclose([e.width, e.height],
                                   2 * ns * np.sqrt(vals), rtol=1e-10)
    assert ax.get_xlabel() == "feature 2" and ax.get_ylabel() == "feature 0"


def test_ellipse_orientation():
    # A known covariance: eigenvectors at 45 degrees.
    cov = np.array([[2.0, 1.0], [1.0, 2.0]])
    w, h, angle = fplot._ellipse_geometry(cov, 1.0)
    assert (w, h) == pytest.approx((2 * np.sqrt(3.0), 2.0))
    assert angle % 180 == pytest.approx(45.0)


def test_marginal_covariances_by_type(X3):
    for ct in ("full", "tied", "diag", "spherical"):
        gm = GaussianMixture(2, covariance_type=ct, random_state=0).fit(X3)
        c = fplot.marginal_covariances(gm, (0, 1))
        assert c.shape == (2, 2, 2)
        if ct in ("diag", "spherical"):
            assert np.all(c[:, 0, 1] == 0)


def test_scatter_subsamples_large_data(X3):
    gm = GaussianMixture(2, random_state=0).fit(X3)
    fig, ax = fplot.figure()
    fplot.scatter(gm, X3, ax=ax, max_points=100, n_std=2.0)
    cols = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert sum(len(c.get_offsets()) for c in cols[:2]) == 100
    assert len([p for p in ax.patches if isinstance(p, Ellipse)]) == 2


def test_loglik(X3):
    gm = GaussianMixture(3, random_state=0, tol=1e-4).fit(X3)
    assert gm.n_iter_ >= 2
    fig, ax = fplot.figure()
    fplot.loglik(gm, ax=ax)
    (line,) = ax.get_lines()
    np.testing.assert_array_equal(line.get_ydata(), gm.lower_bounds_)
    np.testing.assert_array_equal(line.get_xdata(),
                                  np.arange(1, gm.n_iter_ + 1))
    assert "iterations" in ax.get_title()


def test_criterion_curves(X3):
    res = select(X3, [1, 2, 3], ["full", "diag"], random_state=0)
    fig, ax = fplot.figure()
    assert res.plot(ax=ax) is ax
    lines = ax.get_lines()
    assert [ln.get_label() for ln in lines] == ["full", "diag", "best"]
    for ln, ct in zip(lines, ["full", "diag"]):
        ks, vals = res.criterion_values(ct)
        np.testing.assert_array_equal(ln.get_xdata(), ks)
        np.testing.assert_array_equal(ln.get_ydata(), vals)
    np.testing.assert_array_equal(lines[2].get_xydata(),
                                  [[res.best_params["n_components"],
                                    res.best_score]])
    assert ax.get_ylabel().startswith("BIC")


def test_model_dispatch_and_pyplot_axes(X1, X3):
    import matplotlib.pyplot as plt

    g1 = GaussianMixture(2, random_state=0).fit(X1)
    g3 = GaussianMixture(2, random_state=0).fit(X3)
    try:
        ax = fplot.model(g1, X1)  # no ax: the current pyplot Axes
        assert ax is plt.gca() and len(ax.get_lines()) == 3
        plt.figure()
        ax = fplot.model(g3, X3, features=(0, 1))
        assert len([p for p in ax.patches if isinstance(p, Ellipse)]) == 4
    finally:
        plt.close("all")
    with pytest.raises(ValueError, match="needs the data"):
        fplot.model(g3)
    with pytest.raises(ValueError, match="at least 2 features"):
        fplot.scatter(g1, X1, ax=fplot.figure()[1])
    with pytest.raises(ValueError, match="two different features"):
        fplot.scatter(g3, X3, features=(1, 1), ax=fplot.figure()[1])
    with pytest.raises(ValueError, match="out of range"):
        fplot.scatter(g3, X3, features=(0, 5), ax=fplot.figure()[1])
    with pytest.raises(ValueError, match="no feature names"):
        fplot.density(g3, feature="a", ax=fplot.figure()[1])
    with pytest.raises(ValueError, match="not fitted"):
        fplot.density(GaussianMixture(), ax=fplot.figure()[1])


def test_missing_matplotlib_message(monkeypatch, X1):
    gm = GaussianMixture(2, random_state=0).fit(X1)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"pip install fastem\[plot\]"):
        fplot.density(gm, X1)
    with pytest.raises(ImportError, match=r"pip install fastem\[plot\]"):
        fplot.figure()
