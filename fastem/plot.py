"""Pictures of Gaussian mixtures and HMMs (matplotlib: ``pip install fastem[plot]``).

* :func:`density` -- histogram of each feature (or the chosen ones) with
  every component's weighted density drawn over the mixture density;
* :func:`scatter` / :func:`classification` -- points coloured by component
  with covariance ellipses, on a pair of features (mclust's
  "classification" plot; :func:`classification` also varies the marker);
* :func:`uncertainty` -- points sized and coloured by the uncertainty of
  their classification, ``1 - max_k r_ik`` (mclust's "uncertainty" plot);
* :func:`pairs` -- every pair of features: scatter plots with ellipses off
  the diagonal, marginal densities on it;
* :func:`states` -- an HMM's series over time with its decoded states;
* :func:`loglik` -- the lower bound per EM iteration;
* :func:`criterion` -- BIC/AIC/ICL against the number of components, one
  line per covariance type, from :func:`fastem.select`;
* :func:`model` -- :func:`density` for one feature, :func:`scatter` otherwise.

The models are a fitted :class:`~fastem.GaussianMixture` or
:class:`~fastem.GaussianHMM` (whose components are its states, weighted by
the stationary distribution of ``transmat_``).

Every function draws on the ``ax`` it is given (``fig`` for the pictures of
several panels) and otherwise on a new pyplot figure -- never on the
current Axes -- and returns the matplotlib Figure (``fig.axes`` lists its
Axes).  Axes are labelled with the feature names when the model has
``feature_names_in_`` or ``X`` is a pandas DataFrame.  matplotlib is
imported only when a function is called.
"""

import numpy as np

__all__ = ["classification", "criterion", "density", "loglik", "model",
           "pairs", "scatter", "states", "uncertainty"]

_INSTALL = ("fastem.plot needs matplotlib: pip install fastem[plot] "
            "(or pip install matplotlib)")

# Drawing order: data under the mixture line, components above it.
_Z_DATA, _Z_FILL, _Z_MIXTURE, _Z_COMPONENT = 1.0, 1.5, 2.0, 3.0


def _require_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError(_INSTALL) from None


def _new_figure(figsize):
    """Create a pyplot figure (shown by ``plt.show()``), constrained layout."""
    _require_matplotlib()
    import matplotlib.pyplot as plt

    return plt.figure(figsize=figsize, layout="constrained")


def _axes(ax, figsize=(6.4, 4.8)):
    """``ax``, or the Axes of a new figure (never the current Axes)."""
    _require_matplotlib()
    if ax is not None:
        return ax
    return _new_figure(figsize).add_subplot()


def _figure_of(ax):
    return ax.figure


def _color(k):
    return f"C{k % 10}"


# ------------------------------------------------------------- the model
class _Mixture:
    """Weights, means and full covariances of a GaussianMixture or HMM."""

    def __init__(self, gm):
        fitted = (gm.__sklearn_is_fitted__()
                  if hasattr(gm, "__sklearn_is_fitted__")
                  else hasattr(gm, "weights_"))
        if not fitted:
            from fastem._validation import not_fitted_error

            raise not_fitted_error(type(gm).__name__)
        self.gm = gm
        self.is_hmm = hasattr(gm, "transmat_")
        self.means = np.asarray(gm.means_, dtype=np.float64)
        self.K, self.D = self.means.shape
        if self.is_hmm:
            self.weights = np.asarray(gm.get_stationary_distribution(),
                                      dtype=np.float64)
            self.covs = np.asarray(gm.covars_, dtype=np.float64)
            self.word, self.wname = "state", "\u03c0"
        else:
            self.weights = np.asarray(gm.weights_, dtype=np.float64)
            self.covs = _full_covariances(gm)
            self.word, self.wname = "component", "w"
        self.names = getattr(gm, "feature_names_in_", None)

    def label(self, k):
        return f"{self.word} {k} ({self.wname}={self.weights[k]:.3f})"

    def predict(self, X, arr, lengths):
        if self.is_hmm:
            return self.gm.predict(arr, lengths=lengths)
        return self.gm.predict(self._model_input(X, arr))

    def proba(self, X, arr, lengths):
        if self.is_hmm:
            return self.gm.predict_proba(arr, lengths=lengths)
        return self.gm.predict_proba(self._model_input(X, arr))

    def _model_input(self, X, arr):
        # What the model was fitted on (a DataFrame when it has feature
        # names), so that predicting warns about nothing.
        if self.names is None:
            return arr
        if _is_dataframe(X):
            return X
        import pandas as pd

        return pd.DataFrame(arr, columns=list(self.names))


def _full_covariances(gm):
    K, D = np.shape(gm.means_)
    cov = np.asarray(gm.covariances_, dtype=np.float64)
    from fastem.families.covariances import COVARIANCE_MODELS

    ct = getattr(gm, "covariance_type", "full")
    # by the layout, so that mclust's names (EEI, VEV, ...) draw right
    code = COVARIANCE_MODELS[ct].code if ct in COVARIANCE_MODELS else 0
    if code == 0:
        return cov
    if code == 1:
        return np.broadcast_to(cov, (K, D, D))
    if code == 2:
        return np.stack([np.diag(c) for c in cov])
    return cov[:, None, None] * np.eye(D)


def _is_dataframe(X):
    return type(X).__name__ == "DataFrame" and hasattr(X, "columns")


def _names(m, X):
    """Feature names: the model's, else a DataFrame's columns, else None."""
    if m.names is not None:
        return [str(n) for n in m.names]
    if _is_dataframe(X) and len(X.columns) == m.D:
        return [str(c) for c in X.columns]
    return None


def _feature_index(names, feature, n_features):
    if isinstance(feature, str):
        if names is None:
            raise ValueError(f"unknown feature {feature!r}: the model has no "
                             "feature names; use a 0-based index")
        if feature not in names:
            raise ValueError(f"unknown feature {feature!r}; the model's "
                             f"features are {', '.join(names)}")
        return names.index(feature)
    i = int(feature)
    if not -n_features <= i < n_features:
        raise ValueError(f"feature index {i} out of range for "
                         f"{n_features} features")
    return i % n_features


def _feature_label(names, i):
    return names[i] if names is not None else f"feature {i}"


def _data(X, m):
    if X is None:
        return None
    from fastem._validation import check_array

    return check_array(X, n_features=m.D, allow_nan=True)


def marginal_variances(gm, i):
    """Variance of feature ``i`` in each component, shape (K,).

    Parameters
    ----------
    gm : fitted GaussianMixture or GaussianHMM
    i : int

    Returns
    -------
    ndarray of shape (K,)
    """
    return marginal_covariances(gm, (i, i))[:, 0, 0]


def marginal_covariances(gm, pair):
    """Covariance of a pair of features in each component, shape (K, 2, 2).

    Parameters
    ----------
    gm : fitted GaussianMixture or GaussianHMM
    pair : (int, int)

    Returns
    -------
    ndarray of shape (K, 2, 2)
    """
    m = gm if isinstance(gm, _Mixture) else _Mixture(gm)
    idx = list(pair)
    return np.ascontiguousarray(m.covs[:, idx][:, :, idx])


# --------------------------------------------------------------- density
def density(gm, X=None, feature=None, ax=None, fig=None, bins="auto",
            n_points=400, components=True):
    """Histogram of each feature with the component and mixture densities.

    For a model of several features, the densities are the marginal
    densities of the feature (a mixture of 1-D Gaussians with the
    components' variances of that feature).  Each component's weighted
    density ``w_k N(x | mu_k, s_k^2)`` is drawn in its own colour, lightly
    filled, above the mixture density (a thinner dashed black line, their
    sum), so that a component is visible even where it is the whole
    mixture.

    Parameters
    ----------
    gm : fitted GaussianMixture or GaussianHMM
        For an HMM the weights are its stationary distribution.
    X : array-like of shape (n_samples, n_features), optional
        Data for the histograms (drawn with ``density=True``); also sets the
        range of the curves (default: the means +/- 4 standard deviations).
    feature : int, str, sequence of them, or None, default=None
        Feature(s) to draw (index, or name when the model has
        ``feature_names_in_`` or ``X`` is a DataFrame); None draws every
        feature, one panel each in a grid.
    ax : matplotlib Axes, optional
        Draw one feature on this Axes.
    fig : matplotlib Figure or SubFigure, optional
        Draw the panels on this (empty) figure.
    bins : int or str, default='auto'
        Histogram bins, as ``numpy.histogram`` takes them.
    n_points : int, default=400
        Points of each curve.
    components : bool, default=True
        Draw each component's weighted density (one line each, labelled
        ``component k (w=...)``, zorder 3) above the mixture (labelled
        ``mixture``, zorder 2).

    Returns
    -------
    matplotlib Figure
        Per panel, the lines are the mixture, then the components.
    """
    _require_matplotlib()
    m = _Mixture(gm)
    names = _names(m, X)
    if feature is None:
        feats = list(range(m.D))
    elif isinstance(feature, (str, int, np.integer)):
        feats = [_feature_index(names, feature, m.D)]
    else:
        feats = [_feature_index(names, f, m.D) for f in feature]
    arr = _data(X, m)
    if ax is not None:
        if len(feats) != 1:
            raise ValueError(
                f"ax= draws one feature, but the model has {m.D} features; "
                "pass feature= (one of them), or fig= (or neither) to draw "
                "every feature")
        axes = [ax]
    else:
        n = len(feats)
        ncols = 1 if n == 1 else 2 if n <= 4 else 3
        nrows = -(-n // ncols)
        if fig is None:
            fig = _new_figure((6.4, 4.8) if n == 1
                              else (4.2 * ncols, 3.2 * nrows))
        grid = fig.subplots(nrows, ncols, squeeze=False).ravel()
        for a in grid[n:]:
            a.remove()
        axes = list(grid[:n])
    for a, i in zip(axes, feats):
        _density_panel(a, m, arr, i, names, bins, n_points, components)
        if len(feats) == 1 or a is axes[0]:
            a.legend(fontsize="small", loc="best", framealpha=0.8)
    return _figure_of(axes[0])


def _density_panel(ax, m, arr, i, names, bins, n_points, components,
                   ylabel=True):
    mu = m.means[:, i]
    var = m.covs[:, i, i]
    sd = np.sqrt(var)
    top = 0.0
    if arr is not None:
        x = arr[:, i]
        x = x[np.isfinite(x)]
        lo, hi = float(x.min()), float(x.max())
        heights, _, _ = ax.hist(x, bins=bins, density=True, color="0.85",
                                edgecolor="0.6", linewidth=0.5, label="data",
                                zorder=_Z_DATA)
        top = float(np.max(heights))
    else:
        lo, hi = float((mu - 4 * sd).min()), float((mu + 4 * sd).max())
    pad = 0.05 * (hi - lo) if hi > lo else 1.0
    grid = np.linspace(lo - pad, hi + pad, int(n_points))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        comp = (m.weights[:, None] / np.sqrt(2 * np.pi * var)[:, None]
                * np.exp(-0.5 * (grid[None, :] - mu[:, None]) ** 2
                         / var[:, None]))
    comp = np.nan_to_num(comp, nan=0.0, posinf=0.0)
    mix = comp.sum(axis=0)
    ax.plot(grid, mix, color="black", linewidth=1.2, linestyle="--",
            label="mixture", zorder=_Z_MIXTURE)
    if components:
        for k in range(m.K):
            ax.fill_between(grid, comp[k], color=_color(k), alpha=0.18,
                            linewidth=0, zorder=_Z_FILL)
            ax.plot(grid, comp[k], color=_color(k), linewidth=2.0,
                    label=m.label(k), zorder=_Z_COMPONENT)
    # y-limits from what is drawn (the histogram and the mixture), with
    # head room for the legend; a collapsed component's spike is clipped.
    curve_top = float(np.max(mix)) if mix.size else 0.0
    if arr is not None and top > 0:
        curve_top = min(curve_top, 3.0 * top)
    top = max(top, curve_top)
    if top > 0 and np.isfinite(top):
        ax.set_ylim(0, 1.25 * top)
    ax.set_xlim(grid[0], grid[-1])
    ax.set_xlabel(_feature_label(names, i))
    if ylabel:
        ax.set_ylabel("density")


# ---------------------------------------------------------------- scatter
def _ellipse_geometry(cov2, n_std):
    """Width, height and angle (degrees) of the n_std ellipse of a 2x2 cov."""
    vals, vecs = np.linalg.eigh(cov2)
    vals = np.clip(vals, 0.0, None)
    angle = float(np.degrees(np.arctan2(vecs[1, 1], vecs[0, 1])))
    width, height = 2 * n_std * np.sqrt(vals[::-1])
    return float(width), float(height), angle


def _pair(m, names, features):
    features = tuple(features)
    if len(features) != 2:
        raise ValueError(f"features must be a pair of features, got "
                         f"{features!r}")
    i, j = (_feature_index(names, f, m.D) for f in features)
    if i == j:
        raise ValueError(f"features must be two different features, got "
                         f"{features}")
    return i, j


def _subsample(n, max_points, random_state):
    if max_points is not None and n > max_points:
        return np.sort(np.random.default_rng(random_state).choice(
            n, int(max_points), replace=False))
    return None


def _ellipses(ax, m, i, j, n_std, linewidth=1.5):
    from matplotlib.patches import Ellipse

    covs = marginal_covariances(m, (i, j))
    for k in range(m.K):
        for ns in np.atleast_1d(n_std):
            w, h, a = _ellipse_geometry(covs[k], float(ns))
            ax.add_patch(Ellipse((m.means[k, i], m.means[k, j]), w, h,
                                 angle=a, fill=False, edgecolor=_color(k),
                                 linewidth=linewidth, zorder=_Z_COMPONENT))


_MARKERS = "os^Dv<>pP*Xh"


def scatter(gm, X, features=(0, 1), ax=None, n_std=(1.0, 2.0),
            max_points=20000, random_state=0, s=6, lengths=None,
            markers=False):
    """Scatter plot coloured by component, with covariance ellipses.

    Points are coloured by ``gm.predict(X)`` (which uses every feature; for
    an HMM, the Viterbi path), one collection per component; each component
    gets one ellipse per entry of ``n_std`` (the contours at that many
    standard deviations of the component's marginal Gaussian on the chosen
    pair of features) and its mean is marked with an ``x``.

    Parameters
    ----------
    gm : fitted GaussianMixture or GaussianHMM
    X : array-like of shape (n_samples, n_features)
    features : (int or str, int or str), default=(0, 1)
        The pair of features on the axes (indices or names).
    ax : matplotlib Axes, optional
    n_std : float or sequence of float, default=(1.0, 2.0)
    max_points : int or None, default=20000
        Draw at most this many points (a random subset); None draws all.
    random_state : int, default=0
        Seed of that subset.
    s : float, default=6
        Marker size.
    lengths : array-like of int, optional
        Sequence lengths (HMMs only).
    markers : bool, default=False
        One marker shape per component as well as one colour.

    Returns
    -------
    matplotlib Figure
    """
    _require_matplotlib()
    m = _Mixture(gm)
    if m.D < 2:
        raise ValueError("scatter needs at least 2 features; use density() "
                         "for 1-D models")
    names = _names(m, X)
    i, j = _pair(m, names, features)
    arr = _data(X, m)
    ax = _axes(ax)
    labels = m.predict(X, arr, lengths)
    keep = _subsample(arr.shape[0], max_points, random_state)
    if keep is not None:
        arr, labels = arr[keep], labels[keep]
    for k in range(m.K):
        sel = labels == k
        ax.scatter(arr[sel, i], arr[sel, j], s=s, color=_color(k),
                   alpha=0.6 if markers else 0.5, linewidths=0,
                   marker=_MARKERS[k % len(_MARKERS)] if markers else "o",
                   label=f"{m.word} {k}", zorder=_Z_DATA)
    _ellipses(ax, m, i, j, n_std)
    ax.scatter(m.means[:, i], m.means[:, j], marker="x", color="black",
               s=40, label="means", zorder=_Z_COMPONENT + 1)
    ax.set_xlabel(_feature_label(names, i))
    ax.set_ylabel(_feature_label(names, j))
    ax.legend(fontsize="small", markerscale=2 if s < 20 else 1,
              framealpha=0.8)
    ax.autoscale_view()
    return _figure_of(ax)


def classification(gm, X, features=(0, 1), ax=None, n_std=(1.0, 2.0),
                   max_points=20000, random_state=0, s=12, lengths=None):
    """Classification plot (as mclust's): points by predicted component.

    Each point is drawn with the colour and marker of its predicted
    component (the most probable one), over the components' covariance
    ellipses and means; :func:`scatter` with ``markers=True``.

    Parameters
    ----------
    gm : fitted GaussianMixture or GaussianHMM
    X : array-like of shape (n_samples, n_features)
    features : (int or str, int or str), default=(0, 1)
    ax : matplotlib Axes, optional
    n_std : float or sequence of float, default=(1.0, 2.0)
    max_points : int or None, default=20000
    random_state : int, default=0
    s : float, default=12
        Marker size.
    lengths : array-like of int, optional
        Sequence lengths (HMMs only).

    Returns
    -------
    matplotlib Figure
    """
    return scatter(gm, X, features=features, ax=ax, n_std=n_std,
                   max_points=max_points, random_state=random_state, s=s,
                   lengths=lengths, markers=True)


def uncertainty(gm, X, features=(0, 1), ax=None, n_std=(1.0, 2.0),
                max_points=20000, random_state=0, s_max=60.0, lengths=None,
                cmap="viridis"):
    """Uncertainty plot (as mclust's): points sized by classification doubt.

    The uncertainty of point ``i`` is ``1 - max_k r_ik`` (``r`` the
    responsibilities, ``predict_proba``; 0 for a point certainly in one
    component, at most ``1 - 1/K``).  Points are drawn with an area and a
    colour growing with it (the most uncertain on top, with a colour bar),
    over the components' covariance ellipses.

    Parameters
    ----------
    gm : fitted GaussianMixture or GaussianHMM
    X : array-like of shape (n_samples, n_features)
    features : (int or str, int or str), default=(0, 1)
    ax : matplotlib Axes, optional
    n_std : float or sequence of float, default=(1.0, 2.0)
    max_points : int or None, default=20000
    random_state : int, default=0
    s_max : float, default=60
        Marker area of the most uncertain point drawn (areas grow as the
        square root of the uncertainty over the largest one; the colour
        scale also ends at the largest).
    lengths : array-like of int, optional
        Sequence lengths (HMMs only).
    cmap : str or Colormap, default='viridis'

    Returns
    -------
    matplotlib Figure
        The points are one collection whose array is the uncertainty.
    """
    _require_matplotlib()
    m = _Mixture(gm)
    if m.D < 2:
        raise ValueError("uncertainty needs at least 2 features")
    names = _names(m, X)
    i, j = _pair(m, names, features)
    arr = _data(X, m)
    ax = _axes(ax)
    u = 1.0 - np.max(m.proba(X, arr, lengths), axis=1)
    keep = _subsample(arr.shape[0], max_points, random_state)
    if keep is not None:
        arr, u = arr[keep], u[keep]
    order = np.argsort(u, kind="stable")
    # Scaled to the largest uncertainty seen (as mclust ranks them), so
    # that a well-separated fit still shows which points are in doubt.
    umax = float(u.max()) if u.size and u.max() > 0 else 1.0
    sizes = 6.0 + (s_max - 6.0) * np.sqrt(np.clip(u[order] / umax, 0, 1))
    pts = ax.scatter(arr[order, i], arr[order, j], c=u[order], s=sizes,
                     cmap=cmap, vmin=0.0, vmax=umax, edgecolors="0.2",
                     linewidths=0.3, zorder=_Z_DATA)
    _ellipses(ax, m, i, j, n_std, linewidth=1.2)
    ax.scatter(m.means[:, i], m.means[:, j], marker="x", color="black",
               s=40, zorder=_Z_COMPONENT + 1)
    _figure_of(ax).colorbar(pts, ax=ax, label="uncertainty 1 - max r")
    ax.set_xlabel(_feature_label(names, i))
    ax.set_ylabel(_feature_label(names, j))
    ax.autoscale_view()
    return _figure_of(ax)


def pairs(gm, X, fig=None, n_std=(2.0,), bins="auto", max_points=5000,
          random_state=0, s=5, lengths=None):
    """Pair plot: every pair of features, marginal densities on the diagonal.

    Off the diagonal, panel (row r, column c) is the scatter plot of
    feature c (x) against feature r (y), coloured by predicted component,
    with the components' covariance ellipses; on the diagonal, the
    histogram of the feature with the component and mixture densities (as
    :func:`density`).  One legend for the figure.

    Parameters
    ----------
    gm : fitted GaussianMixture or GaussianHMM
    X : array-like of shape (n_samples, n_features)
    fig : matplotlib Figure or SubFigure, optional
        Draw on this (empty) figure; default a new one.
    n_std : float or sequence of float, default=(2.0,)
    bins : int or str, default='auto'
    max_points : int or None, default=5000
        Points per scatter panel at most (a random subset).
    random_state : int, default=0
    s : float, default=5
        Marker size.
    lengths : array-like of int, optional
        Sequence lengths (HMMs only).

    Returns
    -------
    matplotlib Figure
        ``fig.axes`` is the D x D grid, row by row.
    """
    _require_matplotlib()
    m = _Mixture(gm)
    names = _names(m, X)
    arr = _data(X, m)
    D = m.D
    if fig is None:
        side = min(2.2 * D, 12.0)
        fig = _new_figure((side + 0.6, side + 0.4))
    grid = fig.subplots(D, D, squeeze=False)
    labels = m.predict(X, arr, lengths)
    keep = _subsample(arr.shape[0], max_points, random_state)
    pts, lab = (arr, labels) if keep is None else (arr[keep], labels[keep])
    for r in range(D):
        for c in range(D):
            a = grid[r, c]
            if r == c:
                _density_panel(a, m, arr, r, names, bins, 400, True,
                               ylabel=False)
                a.set_yticks([])
            else:
                for k in range(m.K):
                    sel = lab == k
                    a.scatter(pts[sel, c], pts[sel, r], s=s, color=_color(k),
                              alpha=0.5, linewidths=0, zorder=_Z_DATA)
                _ellipses(a, m, c, r, n_std, linewidth=1.2)
                a.autoscale_view()
            if c == 0:
                a.set_ylabel(_feature_label(names, r))
            if r < D - 1:
                a.set_xlabel("")
                a.tick_params(labelbottom=False)
            else:
                a.set_xlabel(_feature_label(names, c))
            if c > 0:
                a.tick_params(labelleft=False)
                a.set_ylabel("")
    # The first row's y ticks (the diagonal panel has none): on the right.
    if D > 1:
        grid[0, D - 1].tick_params(labelright=True)
    # Columns share the x range of their feature (the diagonal's).
    for c in range(D):
        lim = grid[c, c].get_xlim()
        for r in range(D):
            if r != c:
                grid[r, c].set_xlim(lim)
    for r in range(D):
        for c in range(D):
            if r != c:
                grid[r, c].set_ylim(grid[r, r].get_xlim())
    handles, labs = grid[0, 0].get_legend_handles_labels()
    _figure_legend(fig, handles, labs, ncols=min(len(labs), 4))
    return fig


def _figure_legend(fig, handles, labels, ncols):
    try:
        fig.legend(handles, labels, loc="outside upper center", ncols=ncols,
                   fontsize="small")
    except (ValueError, TypeError):  # matplotlib < 3.7
        fig.legend(handles, labels, loc="upper center", ncol=ncols,
                   fontsize="small")


# ------------------------------------------------------------------ HMM
def states(hmm, X, lengths=None, fig=None, ax=None, feature=None, time=None,
           s=6):
    """Draw an HMM's series over time with the decoded (Viterbi) states.

    One panel per feature (sharing the time axis): the series as a thin
    grey line, its points coloured by decoded state, and a light band of the
    state's colour behind each stretch of time spent in it; sequence
    boundaries (``lengths``) are dashed vertical lines.

    Parameters
    ----------
    hmm : fitted GaussianHMM
        (Or any model with ``predict(X, lengths)``, ``means_`` and
        ``covars_``.)
    X : array-like of shape (n_samples, n_features)
    lengths : array-like of int, optional
        Lengths of the sequences in ``X``.
    fig : matplotlib Figure or SubFigure, optional
        Draw the panels on this (empty) figure.
    ax : matplotlib Axes, optional
        Draw one feature on this Axes.
    feature : int, str, sequence of them, or None, default=None
        Feature(s) to draw; None: all.
    time : array-like of shape (n_samples,), optional
        x values (default: the index of a pandas ``X`` that is not a plain
        range, else 0..n_samples-1).
    s : float, default=6
        Marker size.

    Returns
    -------
    matplotlib Figure
    """
    _require_matplotlib()
    m = _Mixture(hmm)
    names = _names(m, X)
    arr = _data(X, m)
    N = arr.shape[0]
    if feature is None:
        feats = list(range(m.D))
    elif isinstance(feature, (str, int, np.integer)):
        feats = [_feature_index(names, feature, m.D)]
    else:
        feats = [_feature_index(names, f, m.D) for f in feature]
    if time is None:
        index = getattr(X, "index", None)
        if index is not None and type(index).__name__ != "RangeIndex":
            time = np.asarray(index)
        else:
            time = np.arange(N)
    else:
        time = np.asarray(time)
        if time.shape != (N,):
            raise ValueError(f"time must have shape ({N},), got {time.shape}")
    labels = m.predict(X, arr, lengths)
    if ax is not None:
        if len(feats) != 1:
            raise ValueError(f"ax= draws one feature, but the model has "
                             f"{m.D} features; pass feature=, or fig=")
        axes = [ax]
    else:
        if fig is None:
            fig = _new_figure((9.0, 1.0 + 2.2 * len(feats)))
        axes = list(fig.subplots(len(feats), 1, sharex=True,
                                 squeeze=False)[:, 0])
    bounds = np.cumsum(np.asarray(lengths, dtype=int))[:-1] \
        if lengths is not None else []
    for a, i in zip(axes, feats):
        a.plot(time, arr[:, i], color="0.55", linewidth=0.7, zorder=_Z_DATA)
        for k in range(m.K):
            sel = labels == k
            a.fill_between(time, 0, 1, where=sel, step="mid",
                           transform=a.get_xaxis_transform(),
                           color=_color(k), alpha=0.15, linewidth=0,
                           zorder=0.5)
            a.scatter(time[sel], arr[sel, i], s=s, color=_color(k),
                      linewidths=0, label=m.label(k), zorder=_Z_COMPONENT)
        for b in bounds:
            a.axvline(time[b], color="black", linestyle="--", linewidth=0.8)
        a.set_ylabel(_feature_label(names, i))
        a.margins(x=0.01)
    axes[-1].set_xlabel("time")
    axes[0].legend(fontsize="small", markerscale=2, loc="upper left",
                   ncol=min(m.K, 4), framealpha=0.8)
    return _figure_of(axes[0])


# -------------------------------------------------------------- fitting
def loglik(gm, ax=None):
    """Lower bound (mean log-likelihood per point) at every EM iteration.

    Parameters
    ----------
    gm : fitted GaussianMixture
        Uses ``gm.lower_bounds_`` (the best initialization's run).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Figure
        One line: x = 1..n_iter, y = ``lower_bounds_``.
    """
    _require_matplotlib()
    _Mixture(gm)
    ax = _axes(ax)
    lb = np.asarray(getattr(gm, "lower_bounds_", []), dtype=np.float64)
    ax.plot(np.arange(1, lb.size + 1), lb, marker="o", markersize=3)
    ax.set_xlabel("iteration")
    ax.set_ylabel("mean log-likelihood per point")
    state = "converged" if gm.converged_ else "did not converge"
    ax.set_title(f"{state} after {gm.n_iter_} iterations")
    return _figure_of(ax)


def criterion(result, ax=None, which=None):
    """Criterion against the number of components, one line per type.

    Parameters
    ----------
    result : fastem.selection.SelectionResult
        The output of :func:`fastem.select`.
    ax : matplotlib Axes, optional
    which : {'bic', 'aic', 'icl'}, optional
        The criterion to draw (default: the one the selection used).

    Returns
    -------
    matplotlib Figure
        On its Axes: one line per covariance type (label = the type; failed
        fits are left out; degenerate fits, ``results[i]['degenerate']``,
        are hollow markers), then the best model marked with a star (a
        line of one point labelled ``best: K, type``), and when some fit is
        degenerate a hollow grey marker labelled ``degenerate``.
    """
    _require_matplotlib()
    ax = _axes(ax)
    which = (which or result.criterion).lower()
    if which not in ("bic", "aic", "icl"):
        raise ValueError(f"which must be 'bic', 'aic' or 'icl', got "
                         f"{which!r}")
    any_degenerate = False
    for n, t in enumerate(result.covariance_types):
        rows = sorted((r for r in result.results
                       if r["covariance_type"] == t),
                      key=lambda r: r["n_components"])
        ks = np.array([r["n_components"] for r in rows], dtype=int)
        vals = np.array([r[which] if r.get("error") is None else np.inf
                         for r in rows], dtype=float)
        deg = np.array([bool(r.get("degenerate")) for r in rows])
        ok = np.isfinite(vals)
        color = _color(n)
        ax.plot(ks[ok], vals[ok], marker="o", markersize=5, color=color,
                label=t, markevery=list(~deg[ok]))
        bad = ok & deg
        if bad.any():
            any_degenerate = True
            ax.plot(ks[bad], vals[bad], marker="o", markersize=6,
                    linestyle="none", markerfacecolor="white",
                    markeredgecolor=color, markeredgewidth=1.5,
                    label="_degenerate")
    if which == result.criterion:
        bk, bt = (result.best_params["n_components"],
                  result.best_params["covariance_type"])
        best = [bk], [result.best_score]
    else:
        by = min((r for r in result.results if r.get("error") is None
                  and (result.include_degenerate or not r["degenerate"])),
                 key=lambda r: r[which], default=None)
        bk, bt = (by["n_components"], by["covariance_type"]) if by else (0, "")
        best = ([bk], [by[which]]) if by else ([], [])
    ax.plot(*best, marker="*", markersize=15, color="black",
            markerfacecolor="none", markeredgewidth=1.2, linestyle="none",
            label=f"best: {bk}, {bt}", zorder=_Z_COMPONENT + 1)
    if any_degenerate:
        ax.plot([], [], marker="o", markersize=6, linestyle="none",
                markerfacecolor="white", markeredgecolor="0.4",
                label="degenerate")
    ax.set_xlabel("number of components")
    ax.set_ylabel(f"{which.upper()} (lower is better)")
    ax.set_xticks(result.n_components)
    ax.legend(fontsize="small", framealpha=0.8)
    return _figure_of(ax)


def model(gm, X=None, features=(0, 1), ax=None, **kwargs):
    """Draw the picture that suits the model.

    :func:`density` for a 1-feature model, :func:`scatter` on ``features``
    otherwise (which needs ``X``).

    Parameters
    ----------
    gm : fitted GaussianMixture or GaussianHMM
    X : array-like, optional
    features : pair of int or str, default=(0, 1)
    ax : matplotlib Axes, optional
    **kwargs
        Passed on to the function chosen.

    Returns
    -------
    matplotlib Figure
    """
    m = _Mixture(gm)
    if m.D == 1:
        return density(gm, X, ax=ax, **kwargs)
    if X is None:
        raise ValueError("a scatter plot needs the data X")
    return scatter(gm, X, features=features, ax=ax, **kwargs)


def figure(figsize=(6.4, 4.8)):
    """Return a matplotlib Figure and Axes not attached to pyplot (no GUI).

    Parameters
    ----------
    figsize : (float, float)

    Returns
    -------
    fig : matplotlib.figure.Figure
    ax : matplotlib Axes
    """
    _require_matplotlib()
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()
