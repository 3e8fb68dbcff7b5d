"""mclust's initialization: model-based hierarchical agglomeration.

R's mclust starts every EM of ``Mclust`` from a partition cut from one
hierarchical tree: the rows (a random subset of 2,000 when there are more)
are transformed as ``hcUse="SVD"`` does, then agglomerated by the
classification likelihood of unconstrained Gaussian clusters
(``hcModelName="VVV"``; Fraley 1998).  One-dimensional data are cut at
quantiles instead (``qclass``).  This module does the same:

* :func:`hc` -- the tree of a data set (:class:`HCTree`),
* :meth:`HCTree.partition` -- the partition into ``K`` clusters (mclust's
  ``hclass``),
* :func:`qclass` -- the quantile classes of one-dimensional data,
* :func:`initial_partition` -- what ``init_params="hc"`` uses: the subset
  and its partition for ``K`` components, with the tree cached so that a
  selection over many models and ``K`` builds it once, as mclust does.

The agglomeration itself is :mod:`fastem.kernels.hc`.
"""

import hashlib
import threading
from collections import OrderedDict

import numpy as np

__all__ = ["HCTree", "hc", "initial_partition", "qclass", "svd_transform",
           "HC_SUBSET"]

#: Rows the tree is built on at most (mclust's ``mclust.options("subset")``).
HC_SUBSET = 2000


def svd_transform(X):
    """Return mclust's ``hcUse="SVD"`` view of the data.

    Columns centred and scaled to unit standard deviation (columns that are
    constant, hence not finite after scaling, are dropped, as mclust does),
    then rotated onto their singular vectors and divided by the square roots
    of the singular values: ``Z = Xs V diag(1 / sqrt(d))``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)

    Returns
    -------
    ndarray of shape (n_samples, min(n_samples, n_kept_features))
    """
    X = np.asarray(X, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        Xs = (X - X.mean(axis=0)) / X.std(axis=0, ddof=1)
    Xs = Xs[:, np.isfinite(Xs).all(axis=0)]
    if Xs.shape[1] == 0:
        return np.zeros((X.shape[0], 1))
    _, d, vt = np.linalg.svd(Xs, full_matrices=False)
    keep = d > d[0] * 1e-12  # directions with no spread carry no signal
    return (Xs @ vt[keep].T) / np.sqrt(d[keep])


class HCTree:
    """A hierarchical agglomeration of ``n`` rows (mclust's ``hcPairs``).

    Attributes
    ----------
    merges : ndarray of shape (n - 1, 2)
        Step ``s`` merged the clusters containing rows ``merges[s, 0]`` and
        ``merges[s, 1]`` (each cluster named by its representative row).
    costs : ndarray of shape (n - 1,)
        The rise of the classification log-likelihood criterion at each
        step.
    rows : ndarray of int or None
        The rows of the original data the tree was built on (None: all).
    """

    def __init__(self, merges, costs, rows=None):
        self.merges = merges
        self.costs = costs
        self.rows = rows
        self._cuts = {}  # n_clusters -> labels (select cuts each K 14 times)

    @property
    def n_leaves(self):
        """Number of rows the tree was built on."""
        return self.merges.shape[0] + 1

    def partition(self, n_clusters):
        """Cluster labels of the tree's rows cut at ``n_clusters`` clusters.

        Labels are 0 .. n_clusters - 1, numbered by first appearance (as
        mclust's ``hclass`` then ``partconv(consec=TRUE)``).

        Parameters
        ----------
        n_clusters : int
            Between 1 and the number of rows.

        Returns
        -------
        ndarray of int64, shape (n_leaves,)
        """
        n = self.n_leaves
        if not 1 <= n_clusters <= n:
            raise ValueError(
                f"The tree has {n} rows; it cannot be cut into "
                f"{n_clusters} clusters. Ask for 1 to {n} clusters.")
        cut = self._cuts.get(n_clusters)
        if cut is None:
            label = np.arange(n)
            for a, b in self.merges[:n - n_clusters]:
                label[label == b] = a
            cut = self._cuts[n_clusters] = _consecutive(label)
        return cut.copy()


def _consecutive(label):
    _, first, inv = np.unique(label, return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)
    return rank[inv.ravel()]


def hc(X, *, use="SVD", rows=None):
    """Model-based hierarchical agglomeration of the rows of ``X``.

    mclust's ``hc(X, modelName="VVV", use="SVD")``: every row starts as its
    own cluster; each step merges the two clusters whose union lowers the
    classification likelihood of a mixture of unconstrained Gaussians the
    least.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Finite values, at least two rows.
    use : {'SVD', 'VARS'}, default='SVD'
        ``'SVD'`` agglomerates :func:`svd_transform` of the data (mclust's
        default), ``'VARS'`` the data as given.
    rows : ndarray of int, optional
        Recorded on the tree: which rows of a larger data set ``X`` holds.

    Returns
    -------
    HCTree
    """
    from fastem.kernels.hc import _agglomerate

    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 2:
        raise ValueError(
            "hc needs a 2-D array with at least 2 rows; got shape "
            f"{X.shape}.")
    if not np.isfinite(X).all():
        raise ValueError(
            "hc needs finite values; the data hold NaN or infinity. Impute "
            "or drop those rows first.")
    if use == "SVD":
        Z = svd_transform(X)
    elif use == "VARS":
        Z = X.copy()
    else:
        raise ValueError(f"use must be 'SVD' or 'VARS'; got {use!r}.")
    n, p = Z.shape
    Zc = Z / np.sqrt(n * p)
    alpha = max(float(((Zc - Zc.mean(axis=0)) ** 2).sum()),
                np.finfo(np.float64).eps)
    merges = np.zeros((n - 1, 2), dtype=np.int64)
    costs = np.zeros(n - 1)
    _agglomerate(np.ones(n), np.ascontiguousarray(Z), np.zeros((n, p, p)),
                 alpha, 1.0, n - 1, merges, costs)
    return HCTree(merges, costs, rows)


def qclass(x, n_clusters):
    """Quantile classes of one-dimensional data (mclust's ``qclass``).

    Cut points at equally spaced quantiles (refined until there are
    ``n_clusters + 1`` distinct ones; the closest are dropped when there
    are more).

    Parameters
    ----------
    x : array-like of shape (n_samples,)
    n_clusters : int

    Returns
    -------
    ndarray of int64
        Labels 0 .. n_clusters - 1 (in increasing order of ``x``).
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    k = int(n_clusters)
    if np.unique(x).size < k:
        raise ValueError(
            f"The data have {np.unique(x).size} distinct values; they cannot "
            f"be cut into {k} classes. Use fewer components.")
    eps = x.std(ddof=1) * np.sqrt(np.finfo(np.float64).eps) if x.size > 1 \
        else 0.0
    q = np.array([np.nan])
    m = k
    while q.size < k + 1:
        m += 1
        q = np.unique(np.quantile(x, np.linspace(0.0, 1.0, m)))
    if q.size > k + 1:
        drop = np.argsort(np.diff(q), kind="stable")[:q.size - k - 1]
        q = np.delete(q, drop)
    q[0] = x.min() - eps
    q[-1] = x.max() + eps
    return np.clip(np.searchsorted(q, x, side="right") - 1, 0, k - 1)


_CACHE = OrderedDict()
_CACHE_SIZE = 4
# select runs fits in threads: the first builds the tree, the others wait
# for it instead of building it again
_CACHE_LOCK = threading.Lock()


def _cached_tree(Z, rows):
    key = hashlib.sha1(Z.tobytes()).hexdigest() + str(Z.shape)
    with _CACHE_LOCK:
        tree = _CACHE.get(key)
        if tree is None:
            tree = hc(Z, rows=rows)
            _CACHE[key] = tree
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
        else:
            _CACHE.move_to_end(key)
        return tree


def initial_partition(X, n_components, rng, subset=HC_SUBSET):
    """Return the rows and partition ``init_params="hc"`` starts from.

    mclust's scheme: with more than ``subset`` rows, a random subset of
    ``subset`` rows (drawn with ``rng``) is agglomerated; the partition of
    those rows into ``n_components`` clusters gives the first M-step, whose
    E-step then runs on all rows.  One-dimensional data use
    :func:`qclass`.  Trees are cached (the last four data sets), so fits
    of many models and ``K`` on the same data build one.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Finite values.
    n_components : int
    rng : numpy.random.RandomState
    subset : int, default=2000

    Returns
    -------
    rows : ndarray of int or None
        The subset's rows (None: all rows).
    labels : ndarray of int64
        A label 0 .. n_components - 1 for each of those rows.

    Raises
    ------
    ValueError
        If the rows cannot be cut into ``n_components`` clusters.
    """
    N = X.shape[0]
    rows = None
    if N > subset:
        rows = np.sort(rng.choice(N, size=subset, replace=False))
        X = X[rows]
    X = np.asarray(X, dtype=np.float64)
    if X.shape[1] == 1:
        return rows, qclass(X[:, 0], n_components)
    if n_components > X.shape[0]:
        raise ValueError(
            f"init_params='hc' cannot cut {X.shape[0]} rows into "
            f"{n_components} clusters. Use fewer components.")
    if n_components == 1:
        return rows, np.zeros(X.shape[0], dtype=np.int64)
    return rows, _cached_tree(np.ascontiguousarray(X), rows).partition(
        n_components)
