"""fastem.plot: check what is drawn, not only that something is."""

import io
import os
import sys
import warnings

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.collections import PathCollection, PolyCollection  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Ellipse  # noqa: E402

import fastem.plot as fplot  # noqa: E402
from fastem import GaussianHMM, GaussianMixture  # noqa: E402
from fastem.selection import select  # noqa: E402

pd = pytest.importorskip("pandas")

FAITHFUL = os.path.join(os.path.dirname(__file__), "data", "faithful.csv")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


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


@pytest.fixture(scope="module")
def faithful():
    df = pd.read_csv(FAITHFUL, comment="#")
    return df, GaussianMixture(2, random_state=0).fit(df)


@pytest.fixture(scope="module")
def hmm2():
    """A 2-state, 2-feature HMM on a generated series of two sequences."""
    rng = np.random.default_rng(3)
    z = np.repeat([0, 1, 0, 1, 0], [60, 50, 40, 70, 80])
    X = rng.normal(np.array([[0.0, 0.0], [4.0, -3.0]])[z], 0.7)
    lengths = [120, 180]
    return GaussianHMM(2, random_state=0).fit(X, lengths), X, lengths


def normal_pdf(x, mu, var):
    return np.exp(-0.5 * (x - mu) ** 2 / var) / np.sqrt(2 * np.pi * var)


def component_lines(ax):
    return [ln for ln in ax.get_lines()
            if ln.get_label().startswith(("component", "state"))]


def mixture_line(ax):
    (line,) = [ln for ln in ax.get_lines() if ln.get_label() == "mixture"]
    return line


def check_components_visible(ax, n):
    """n component lines, distinct colours, drawn above the mixture."""
    comps, mix = component_lines(ax), mixture_line(ax)
    assert len(comps) == n
    assert len({to_rgba(ln.get_color()) for ln in comps}) == n
    assert to_rgba(mix.get_color()) not in {to_rgba(ln.get_color())
                                            for ln in comps}
    assert all(ln.get_zorder() > mix.get_zorder() for ln in comps)
    assert all(ln.get_visible() for ln in comps)
    lo, hi = ax.get_ylim()
    for ln in comps:  # each peak is inside the axes, well above zero
        peak = np.max(ln.get_ydata())
        assert lo <= 0 < 0.05 * (hi - lo) < peak < hi
    return comps, mix


# ---------------------------------------------------------------- density
def test_density_1d(X1):
    gm = GaussianMixture(2, random_state=0).fit(X1)
    fig, ax = fplot.figure()
    assert fplot.density(gm, X1, ax=ax) is fig
    assert fig.axes == [ax]
    lines = ax.get_lines()
    assert len(lines) == 3  # the mixture, then two components
    comps, mix = check_components_visible(ax, 2)
    grid = mix.get_xdata()
    comp = np.array([ln.get_ydata() for ln in comps])
    for k in range(2):
        np.testing.assert_allclose(
            comp[k], gm.weights_[k] * normal_pdf(grid, gm.means_[k, 0],
                                                 gm.covariances_[k, 0, 0]),
            rtol=1e-12)
    np.testing.assert_allclose(mix.get_ydata(), comp.sum(axis=0), rtol=1e-12)
    # The mixture line is the model's density.
    np.testing.assert_allclose(mix.get_ydata(),
                               np.exp(gm.score_samples(grid[:, None])),
                               rtol=1e-9)
    # The histogram covers the data range and is a density (area 1).
    bars = [p for p in ax.patches if p.get_height() > 0]
    assert len(bars) > 5
    area = sum(p.get_width() * p.get_height() for p in ax.patches)
    assert area == pytest.approx(1.0)
    assert grid.min() < X1.min() and grid.max() > X1.max()
    # y-limits hold the histogram and the curves.
    top = max(max(p.get_height() for p in ax.patches), mix.get_ydata().max())
    assert top < ax.get_ylim()[1] < 1.5 * top
    assert "component 0 (w=" in comps[0].get_label()
    fig.savefig(io.BytesIO(), format="png")


def test_density_faithful_components_not_hidden(faithful):
    # The user's report: each Old Faithful component is (almost) the whole
    # mixture around its mode, and was drawn under the thick mixture line.
    df, gm = faithful
    fig = fplot.density(gm, df)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    for ax, name in zip(fig.axes, ["eruptions", "waiting"]):
        assert ax.get_xlabel() == name
        comps, mix = check_components_visible(ax, 2)
        # The mixture is thinner and dashed, the components solid.
        assert mix.get_linestyle() == "--"
        assert all(ln.get_linestyle() == "-" for ln in comps)
        assert all(ln.get_linewidth() > mix.get_linewidth() for ln in comps)
        # Light fills under each component, below the lines.
        fills = [c for c in ax.collections if isinstance(c, PolyCollection)]
        assert len(fills) == 2
        assert all(f.get_zorder() < mix.get_zorder() for f in fills)
    # One legend (on the first panel) naming the components.
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert texts[0] == "data" and texts[1] == "mixture"
    assert texts[2].startswith("component 0") and len(texts) == 4
    assert fig.axes[1].get_legend() is None


def test_density_iris_setosa_visible():
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_iris

    df = load_iris(as_frame=True).data
    gm = GaussianMixture(3, random_state=0).fit(df)
    fig = fplot.density(gm, df, feature="petal length (cm)")
    (ax,) = fig.axes
    comps, mix = check_components_visible(ax, 3)
    # Setosa: the component with the smallest petal-length mean is the
    # mixture at its mode; drawn above it, and its peak is on the picture.
    k = int(np.argmin(gm.means_[:, 2]))
    peak = comps[k].get_ydata().max()
    assert peak == pytest.approx(mix.get_ydata().max(), rel=1e-3)
    assert peak < ax.get_ylim()[1]


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


def test_density_every_feature(X3):
    gm = GaussianMixture(2, covariance_type="tied", random_state=0).fit(X3)
    fig = fplot.density(gm, X3)  # feature=None: all three
    assert len(fig.axes) == 3
    for i, ax in enumerate(fig.axes):
        assert ax.get_xlabel() == f"feature {i}"
        comps, mix = check_components_visible(ax, 2)
        x = mix.get_xdata()
        np.testing.assert_allclose(
            comps[1].get_ydata(),
            gm.weights_[1] * normal_pdf(x, gm.means_[1, i],
                                        gm.covariances_[i, i]), rtol=1e-12)
    fig = fplot.density(gm, X3, feature=[2, 0])
    assert [a.get_xlabel() for a in fig.axes] == ["feature 2", "feature 0"]
    with pytest.raises(ValueError, match="ax= draws one feature"):
        fplot.density(gm, X3, ax=fplot.figure()[1])
    # fig= draws the grid on a given figure.
    fig = Figure()
    assert fplot.density(gm, X3, fig=fig) is fig and len(fig.axes) == 3


# ---------------------------------------------- new figure, never current
def _calls(X3, gm, hmm2):
    res = select(X3[:200], [1, 2], ["diag"], random_state=0)
    hmm, Xh, lengths = hmm2
    return {
        "density": lambda: fplot.density(gm, X3),
        "scatter": lambda: fplot.scatter(gm, X3),
        "classification": lambda: fplot.classification(gm, X3),
        "uncertainty": lambda: fplot.uncertainty(gm, X3),
        "pairs": lambda: fplot.pairs(gm, X3),
        "loglik": lambda: fplot.loglik(gm),
        "criterion": lambda: fplot.criterion(res),
        "model": lambda: fplot.model(gm, X3),
        "states": lambda: fplot.states(hmm, Xh, lengths),
    }


def test_every_function_makes_a_new_figure(X3, hmm2):
    gm = GaussianMixture(2, random_state=0).fit(X3)
    calls = _calls(X3, gm, hmm2)
    assert set(calls) == set(fplot.__all__)
    for name, call in calls.items():
        before = plt.figure()
        ax0 = before.add_subplot()
        ax0.plot([0, 1], [0, 1])
        fig = call()
        assert isinstance(fig, Figure), name
        assert fig is not before, name
        # The figure that was current is untouched.
        assert before.axes == [ax0], name
        assert len(ax0.get_lines()) == 1 and not ax0.collections, name
        assert not ax0.patches and ax0.get_legend() is None, name
        assert fig.axes, name
        fig.savefig(io.BytesIO(), format="png")
        plt.close("all")


def test_scatter_then_criterion_do_not_overlay(X3):
    gm = GaussianMixture(2, random_state=0).fit(X3)
    res = select(X3, [1, 2], ["full"], random_state=0)
    f1 = fplot.scatter(gm, X3)
    f2 = fplot.criterion(res)
    assert f1 is not f2
    (ax1,) = f1.axes
    assert not any(ln.get_label() in ("full", "best") for ln in
                   ax1.get_lines())


def test_given_axes_are_used(X3, hmm2):
    gm = GaussianMixture(2, random_state=0).fit(X3)
    hmm, Xh, lengths = hmm2
    for call in (lambda ax: fplot.density(gm, X3, feature=1, ax=ax),
                 lambda ax: fplot.scatter(gm, X3, ax=ax),
                 lambda ax: fplot.classification(gm, X3, ax=ax),
                 lambda ax: fplot.uncertainty(gm, X3, ax=ax),
                 lambda ax: fplot.loglik(gm, ax=ax),
                 lambda ax: fplot.states(hmm, Xh, lengths, feature=0, ax=ax)):
        n = len(plt.get_fignums())
        fig, ax = fplot.figure()
        assert call(ax) is fig
        assert ax.get_lines() or ax.collections
        assert len(plt.get_fignums()) == n  # no pyplot figure made
    fig = Figure()
    assert fplot.pairs(gm, X3, fig=fig) is fig and len(fig.axes) == 9
    fig = Figure()
    assert fplot.states(hmm, Xh, lengths, fig=fig) is fig
    assert len(fig.axes) == 2


# ----------------------------------------------------------------- scatter
@pytest.mark.parametrize("ct", ["full", "tied", "diag", "spherical"])
def test_scatter_with_ellipses(X3, ct):
    gm = GaussianMixture(2, covariance_type=ct, random_state=0).fit(X3)
    fig, ax = fplot.figure()
    assert fplot.scatter(gm, X3, features=(2, 0), ax=ax,
                         n_std=(1.0, 2.0)) is fig
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
        assert to_rgba(e.get_edgecolor()) == to_rgba(f"C{k}")
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
        np.testing.assert_allclose(fplot.marginal_variances(gm, 1),
                                   c[:, 1, 1])


def test_scatter_subsamples_large_data(X3):
    gm = GaussianMixture(2, random_state=0).fit(X3)
    fig, ax = fplot.figure()
    fplot.scatter(gm, X3, ax=ax, max_points=100, n_std=2.0)
    cols = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert sum(len(c.get_offsets()) for c in cols[:2]) == 100
    assert len([p for p in ax.patches if isinstance(p, Ellipse)]) == 2


def test_classification_markers_and_colours(faithful):
    df, gm = faithful
    fig = fplot.classification(gm, df)
    (ax,) = fig.axes
    cols = [c for c in ax.collections if isinstance(c, PathCollection)]
    labels = gm.predict(df)
    assert [len(c.get_offsets()) for c in cols[:2]] == \
        [np.sum(labels == 0), np.sum(labels == 1)]
    paths = [c.get_paths()[0].vertices.shape for c in cols[:2]]
    assert paths[0] != paths[1]  # different marker shapes
    assert to_rgba(cols[0].get_facecolor()[0])[:3] != \
        to_rgba(cols[1].get_facecolor()[0])[:3]
    assert len([p for p in ax.patches if isinstance(p, Ellipse)]) == 4
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("eruptions", "waiting")


def test_uncertainty(faithful):
    df, gm = faithful
    fig = fplot.uncertainty(gm, df, features=("waiting", "eruptions"))
    ax = fig.axes[0]
    assert len(fig.axes) == 2  # the plot and its colour bar
    pts = ax.collections[0]
    u = 1 - gm.predict_proba(df).max(axis=1)
    np.testing.assert_allclose(pts.get_array(), np.sort(u))
    sizes = pts.get_sizes()
    assert np.all(np.diff(sizes) >= 0) and sizes[-1] > 5 * sizes[0]
    np.testing.assert_allclose(np.sort(pts.get_offsets()[:, 0]),
                               np.sort(df["waiting"].to_numpy()))
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("waiting", "eruptions")
    assert len([p for p in ax.patches if isinstance(p, Ellipse)]) == 4


def test_pairs(X3):
    gm = GaussianMixture(2, random_state=0).fit(X3)
    fig = fplot.pairs(gm, X3, n_std=(1.0, 2.0))
    axes = np.array(fig.axes).reshape(3, 3)
    for r in range(3):
        for c in range(3):
            a = axes[r, c]
            ells = [p for p in a.patches if isinstance(p, Ellipse)]
            if r == c:
                assert not ells
                check_components_visible(a, 2)
            else:
                assert len(ells) == 4
                np.testing.assert_allclose(ells[0].center,
                                           gm.means_[0, [c, r]])
                pts = np.vstack([col.get_offsets() for col in a.collections])
                np.testing.assert_allclose(np.sort(pts[:, 0]),
                                           np.sort(X3[:, c]))
    assert axes[2, 0].get_xlabel() == "feature 0"
    assert axes[1, 0].get_ylabel() == "feature 1"
    assert len(fig.legends) == 1


# --------------------------------------------------------------- pandas
def test_dataframe_labels_and_no_warnings(faithful):
    df, gm = faithful
    arr = df.to_numpy()
    g_np = GaussianMixture(2, random_state=0).fit(arr)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for model, X in ((gm, df), (gm, arr), (g_np, df)):
            for fig in (fplot.scatter(model, X), fplot.classification(model, X),
                        fplot.uncertainty(model, X), fplot.pairs(model, X),
                        fplot.density(model, X), fplot.model(model, X)):
                fig.savefig(io.BytesIO(), format="png")
            ax = fplot.scatter(model, X, features=(1, 0)).axes[0]
            assert (ax.get_xlabel(), ax.get_ylabel()) == ("waiting",
                                                          "eruptions")
            plt.close("all")  # (pyplot warns beyond 20 open figures)
        # Names select features of a model fitted on a DataFrame.
        ax = fplot.density(gm, df, feature="waiting").axes[0]
        assert ax.get_xlabel() == "waiting"
        # and of a model fitted on an array when X is a DataFrame.
        ax = fplot.density(g_np, df, feature="waiting").axes[0]
        assert ax.get_xlabel() == "waiting"
    with pytest.raises(ValueError, match="no feature names"):
        fplot.density(g_np, arr, feature="waiting")


# ----------------------------------------------------------------- HMMs
def test_hmm_density_and_scatter(hmm2):
    hmm, X, lengths = hmm2
    pi = hmm.get_stationary_distribution()
    fig = fplot.density(hmm, X)
    assert len(fig.axes) == 2
    for i, ax in enumerate(fig.axes):
        comps, mix = check_components_visible(ax, 2)
        x = mix.get_xdata()
        for k in range(2):
            np.testing.assert_allclose(
                comps[k].get_ydata(),
                pi[k] * normal_pdf(x, hmm.means_[k, i],
                                   hmm.covars_[k, i, i]), rtol=1e-10)
        assert comps[0].get_label().startswith("state 0")
    fig = fplot.scatter(hmm, X, lengths=lengths)
    ax = fig.axes[0]
    cols = [c for c in ax.collections if isinstance(c, PathCollection)]
    z = hmm.predict(X, lengths)
    assert [len(c.get_offsets()) for c in cols[:2]] == \
        [np.sum(z == 0), np.sum(z == 1)]
    fig = fplot.uncertainty(hmm, X, lengths=lengths)
    u = 1 - hmm.predict_proba(X, lengths).max(axis=1)
    np.testing.assert_allclose(fig.axes[0].collections[0].get_array(),
                               np.sort(u))
    assert len(fplot.pairs(hmm, X, lengths=lengths).axes) == 4


def test_hmm_states(hmm2):
    hmm, X, lengths = hmm2
    fig = fplot.states(hmm, X, lengths)
    assert len(fig.axes) == 2
    z = hmm.predict(X, lengths)
    for i, ax in enumerate(fig.axes):
        (series, *vlines) = ax.get_lines()
        np.testing.assert_array_equal(series.get_ydata(), X[:, i])
        # The sequence boundary.
        assert [ln.get_xdata()[0] for ln in vlines] == [120]
        pts = [c for c in ax.collections if isinstance(c, PathCollection)]
        bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
        assert len(pts) == 2 and len(bands) == 2
        for k in range(2):
            np.testing.assert_array_equal(pts[k].get_offsets()[:, 0],
                                          np.flatnonzero(z == k))
            assert to_rgba(pts[k].get_facecolor()[0])[:3] == \
                to_rgba(f"C{k}")[:3]
    assert fig.axes[-1].get_xlabel() == "time"
    # A DataFrame with a time index: its index is the x axis.
    t = pd.date_range("2024-01-01", periods=len(X), freq="h")
    df = pd.DataFrame(X, columns=["a", "b"], index=t)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = fplot.states(hmm, df, lengths, feature="b")
    (ax,) = fig.axes
    assert ax.get_ylabel() == "b"
    fig.savefig(io.BytesIO(), format="png")


def test_hmm_not_fitted():
    with pytest.raises(ValueError, match="not fitted"):
        fplot.density(GaussianHMM(2))
    with pytest.raises(ValueError, match="not fitted"):
        fplot.states(GaussianHMM(2), np.zeros((5, 1)))


# ------------------------------------------------------------ criterion
def test_loglik(X3):
    gm = GaussianMixture(3, random_state=0, tol=1e-4).fit(X3)
    assert gm.n_iter_ >= 2
    fig, ax = fplot.figure()
    assert fplot.loglik(gm, ax=ax) is fig
    (line,) = ax.get_lines()
    np.testing.assert_array_equal(line.get_ydata(), gm.lower_bounds_)
    np.testing.assert_array_equal(line.get_xdata(),
                                  np.arange(1, gm.n_iter_ + 1))
    assert "iterations" in ax.get_title()


def test_criterion_curves(X3):
    res = select(X3, [1, 2, 3], ["full", "diag"], random_state=0)
    fig, ax = fplot.figure()
    assert res.plot(ax=ax) is fig
    lines = ax.get_lines()
    bk, bt = res.best_params["n_components"], res.best_params["covariance_type"]
    assert [ln.get_label() for ln in lines] == ["full", "diag",
                                                f"best: {bk}, {bt}"]
    assert lines[0].get_color() != lines[1].get_color()
    for ln, ct in zip(lines, ["full", "diag"]):
        ks, vals = res.criterion_values(ct)
        np.testing.assert_array_equal(ln.get_xdata(), ks)
        np.testing.assert_array_equal(ln.get_ydata(), vals)
    np.testing.assert_array_equal(lines[2].get_xydata(),
                                  [[bk, res.best_score]])
    assert ax.get_ylabel().startswith("BIC")
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["full", "diag", f"best: {bk}, {bt}"]
    # Another criterion of the same fits.
    ax = fplot.criterion(res, which="aic").axes[0]
    ks, _ = res.criterion_values("diag")
    assert ax.get_ylabel().startswith("AIC")
    np.testing.assert_array_equal(
        ax.get_lines()[1].get_ydata(),
        [r["aic"] for r in sorted((r for r in res.results
                                   if r["covariance_type"] == "diag"),
                                  key=lambda r: r["n_components"])])
    with pytest.raises(ValueError, match="which"):
        fplot.criterion(res, which="xyz")


def test_criterion_degenerate_hollow(X3):
    res = select(X3, [1, 2, 3], ["full", "diag"], random_state=0)
    for r in res.results:  # mark one fit of each type as degenerate
        if r["n_components"] == 3:
            r["degenerate"] = True
    ax = fplot.criterion(res).axes[0]
    by = {ln.get_label(): ln for ln in ax.get_lines()}
    assert by["full"].get_markevery() == [True, True, False]
    hollow = [ln for ln in ax.get_lines() if ln.get_label() == "_degenerate"]
    assert len(hollow) == 2
    for ln, ct in zip(hollow, ["full", "diag"]):
        assert ln.get_markerfacecolor() == "white"
        assert ln.get_markeredgecolor() == by[ct].get_color()
        ks, vals = res.criterion_values(ct)
        np.testing.assert_array_equal(ln.get_xydata(), [[3, vals[-1]]])
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[-1] == "degenerate"


# --------------------------------------------------------------- others
def test_model_dispatch(X1, X3):
    g1 = GaussianMixture(2, random_state=0).fit(X1)
    g3 = GaussianMixture(2, random_state=0).fit(X3)
    fig = fplot.model(g1, X1)
    assert len(fig.axes[0].get_lines()) == 3
    fig = fplot.model(g3, X3, features=(0, 1))
    assert len([p for p in fig.axes[0].patches
                if isinstance(p, Ellipse)]) == 4
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
