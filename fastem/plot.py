"""Pictures of Gaussian mixtures (needs matplotlib: ``pip install fastem[plot]``).

* :func:`density` -- histogram of one feature with each component's
  weighted density and the mixture density;
* :func:`scatter` -- points coloured by component with covariance ellipses
  (for more than two features, a chosen pair);
* :func:`loglik` -- the lower bound per EM iteration;
* :func:`criterion` -- BIC/AIC/ICL curves from :func:`fastem.select`;
* :func:`model` -- :func:`density` for one feature, :func:`scatter` otherwise.

Each function draws on ``ax`` (default: the current pyplot Axes) and returns
it; matplotlib is imported only when a function is called.
"""

import numpy as np

__all__ = ["criterion", "density", "loglik", "model", "scatter"]

_INSTALL = ("fastem.plot needs matplotlib: pip install fastem[plot] "
            "(or pip install matplotlib)")


def _require_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError(_INSTALL) from None


def _axes(ax):
    _require_matplotlib()
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.gca()


def _fitted(gm):
    if not hasattr(gm, "weights_"):
        from ._validation import not_fitted_error

        raise not_fitted_error(type(gm).__name__)


def _feature_index(gm, feature, n_features):
    names = getattr(gm, "feature_names_in_", None)
    if isinstance(feature, str):
        if names is None:
            raise ValueError(f"unknown feature {feature!r}: the model has no "
                             "feature names; use a 0-based index")
        if feature not in list(names):
            raise ValueError(f"unknown feature {feature!r}; the model's "
                             f"features are {', '.join(map(str, names))}")
        return list(names).index(feature)
    i = int(feature)
    if not -n_features <= i < n_features:
        raise ValueError(f"feature index {i} out of range for "
                         f"{n_features} features")
    return i % n_features


def _feature_label(gm, i):
    names = getattr(gm, "feature_names_in_", None)
    return str(names[i]) if names is not None else f"feature {i}"


def marginal_variances(gm, i):
    """Variance of feature ``i`` in each component, shape (K,).

    Parameters
    ----------
    gm : fitted GaussianMixture
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
    gm : fitted GaussianMixture
    pair : (int, int)

    Returns
    -------
    ndarray of shape (K, 2, 2)
    """
    i, j = pair
    K, D = gm.means_.shape
    cov = np.asarray(gm.covariances_, dtype=np.float64)
    ct = gm.covariance_type
    if ct == "full":
        full = cov
    elif ct == "tied":
        full = np.broadcast_to(cov, (K, D, D))
    elif ct == "diag":
        full = np.stack([np.diag(c) for c in cov])
    else:
        full = cov[:, None, None] * np.eye(D)
    idx = [i, j]
    return np.ascontiguousarray(full[:, idx][:, :, idx])


def _data(X, gm=None):
    from ._validation import check_array

    n = None if gm is None else gm.means_.shape[1]
    return check_array(X, n_features=n)


def density(gm, X=None, feature=0, ax=None, bins="auto", n_points=400,
            components=True):
    """Histogram of one feature with the component and mixture densities.

    For a model of several features, the densities are the marginal
    densities of ``feature`` (a mixture of 1-D Gaussians with the
    components' variances of that feature).

    Parameters
    ----------
    gm : fitted GaussianMixture
    X : array-like of shape (n_samples, n_features), optional
        Data for the histogram (drawn with ``density=True``); also sets the
        range of the curves (default: the means +/- 4 standard deviations).
    feature : int or str, default=0
        Feature (index, or name when the model has ``feature_names_in_``).
    ax : matplotlib Axes, optional
    bins : int or str, default='auto'
        Histogram bins, as ``numpy.histogram`` takes them.
    n_points : int, default=400
        Points of each curve.
    components : bool, default=True
        Draw each component's weighted density ``w_k N(x | mu_k, s_k^2)``
        (one line each, labelled ``component k``) before the mixture (the
        last line, labelled ``mixture``, their sum).

    Returns
    -------
    matplotlib Axes
    """
    ax = _axes(ax)
    _fitted(gm)
    K, D = gm.means_.shape
    i = _feature_index(gm, feature, D)
    mu = gm.means_[:, i]
    var = marginal_variances(gm, i)
    sd = np.sqrt(var)
    if X is not None:
        x = _data(X, gm)[:, i]
        lo, hi = float(x.min()), float(x.max())
        ax.hist(x, bins=bins, density=True, color="0.8", edgecolor="0.6",
                linewidth=0.5, label="data")
    else:
        lo, hi = float((mu - 4 * sd).min()), float((mu + 4 * sd).max())
    pad = 0.05 * (hi - lo) if hi > lo else 1.0
    grid = np.linspace(lo - pad, hi + pad, int(n_points))
    comp = (gm.weights_[:, None] / np.sqrt(2 * np.pi * var)[:, None]
            * np.exp(-0.5 * (grid[None, :] - mu[:, None]) ** 2 / var[:, None]))
    if components:
        for k in range(K):
            ax.plot(grid, comp[k], linewidth=1.2, linestyle="--",
                    label=f"component {k} (w={gm.weights_[k]:.3f})")
    ax.plot(grid, comp.sum(axis=0), color="black", linewidth=2,
            label="mixture")
    ax.set_xlabel(_feature_label(gm, i))
    ax.set_ylabel("density")
    ax.legend(fontsize="small")
    return ax


def _ellipse_geometry(cov2, n_std):
    """Width, height and angle (degrees) of the n_std ellipse of a 2x2 cov."""
    vals, vecs = np.linalg.eigh(cov2)
    vals = np.clip(vals, 0.0, None)
    angle = float(np.degrees(np.arctan2(vecs[1, 1], vecs[0, 1])))
    width, height = 2 * n_std * np.sqrt(vals[::-1])
    return float(width), float(height), angle


def scatter(gm, X, features=(0, 1), ax=None, n_std=(1.0, 2.0),
            max_points=20000, random_state=0, s=6):
    """Scatter plot coloured by component, with covariance ellipses.

    Points are coloured by ``gm.predict(X)`` (which uses every feature), one
    collection per component; each component gets one ellipse per entry of
    ``n_std`` (the contours at that many standard deviations of the
    component's marginal Gaussian on the chosen pair of features) and its
    mean is marked with an ``x``.

    Parameters
    ----------
    gm : fitted GaussianMixture
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

    Returns
    -------
    matplotlib Axes
    """
    ax = _axes(ax)
    _fitted(gm)
    from matplotlib.patches import Ellipse

    K, D = gm.means_.shape
    if D < 2:
        raise ValueError("scatter needs at least 2 features; use density() "
                         "for 1-D models")
    X = _data(X, gm)
    i, j = (_feature_index(gm, f, D) for f in features)
    if i == j:
        raise ValueError(f"features must be two different features, got "
                         f"{tuple(features)}")
    labels = gm.predict(X)
    if max_points is not None and X.shape[0] > max_points:
        keep = np.random.default_rng(random_state).choice(
            X.shape[0], int(max_points), replace=False)
        X, labels = X[keep], labels[keep]
    colors = [f"C{k % 10}" for k in range(K)]
    for k in range(K):
        m = labels == k
        ax.scatter(X[m, i], X[m, j], s=s, color=colors[k], alpha=0.5,
                   linewidths=0, label=f"component {k}")
    covs = marginal_covariances(gm, (i, j))
    for k in range(K):
        for ns in np.atleast_1d(n_std):
            w, h, a = _ellipse_geometry(covs[k], float(ns))
            ax.add_patch(Ellipse((gm.means_[k, i], gm.means_[k, j]), w, h,
                                 angle=a, fill=False, edgecolor=colors[k],
                                 linewidth=1.5))
    ax.scatter(gm.means_[:, i], gm.means_[:, j], marker="x", color="black",
               s=40, label="means")
    ax.set_xlabel(_feature_label(gm, i))
    ax.set_ylabel(_feature_label(gm, j))
    ax.legend(fontsize="small", markerscale=2)
    ax.autoscale_view()
    return ax


def loglik(gm, ax=None):
    """Lower bound (mean log-likelihood per point) at every EM iteration.

    Parameters
    ----------
    gm : fitted GaussianMixture
        Uses ``gm.lower_bounds_`` (the best initialization's run).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
        One line: x = 1..n_iter, y = ``lower_bounds_``.
    """
    ax = _axes(ax)
    _fitted(gm)
    lb = np.asarray(getattr(gm, "lower_bounds_", []), dtype=np.float64)
    ax.plot(np.arange(1, lb.size + 1), lb, marker="o", markersize=3)
    ax.set_xlabel("iteration")
    ax.set_ylabel("mean log-likelihood per point")
    state = "converged" if gm.converged_ else "did not converge"
    ax.set_title(f"{state} after {gm.n_iter_} iterations")
    return ax


def criterion(result, ax=None):
    """Criterion against the number of components, one curve per type.

    Parameters
    ----------
    result : fastem.selection.SelectionResult
        The output of :func:`fastem.select`.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
        One line per covariance type (label = the type; failed fits are
        left out), then the best model marked with a star (a separate line
        of one point labelled ``best``).
    """
    ax = _axes(ax)
    for t in result.covariance_types:
        ks, vals = result.criterion_values(t)
        ok = np.isfinite(vals)
        ax.plot(ks[ok], vals[ok], marker="o", markersize=4, label=t)
    ax.plot([result.best_params["n_components"]], [result.best_score],
            marker="*", markersize=16, color="black", linestyle="none",
            label="best")
    ax.set_xlabel("number of components")
    ax.set_ylabel(f"{result.criterion.upper()} (lower is better)")
    ax.set_xticks(result.n_components)
    ax.legend(fontsize="small")
    return ax


def model(gm, X=None, features=(0, 1), ax=None, **kwargs):
    """Draw the picture that suits the model.

    :func:`density` for a 1-feature model, :func:`scatter` on ``features``
    otherwise (which needs ``X``).

    Parameters
    ----------
    gm : fitted GaussianMixture
    X : array-like, optional
    features : pair of int or str, default=(0, 1)
    ax : matplotlib Axes, optional
    **kwargs
        Passed on to the function chosen.

    Returns
    -------
    matplotlib Axes
    """
    _fitted(gm)
    if gm.means_.shape[1] == 1:
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
