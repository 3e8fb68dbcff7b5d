"""Categorical and Bernoulli families: independent discrete features.

``p(x | k) = prod_d theta_{k, d, x_d}`` over integer-coded categories
``0 <= x_d < C_d`` -- the latent class model of R's poLCA.  Bernoulli is
the case ``C_d = 2`` (binary features, ``theta_{k, d, 1}`` the probability
of a one).  A missing entry (NaN) is left out of the product: its feature
is marginalized, exactly, for that row.

Statistics: ``nk`` (K,) and ``counts`` (K, D, C), the
responsibility-weighted category counts of the observed entries.  M-step:
for every component and feature, the probabilities that maximize
``sum_c counts_c log theta_c`` subject to ``theta_c >= reg_prob`` (the
maximum-likelihood frequencies, with any below the floor raised to it and
the others rescaled, repeated until none is below).  Being an exact
maximization over that set, every EM iteration still increases the
log-likelihood; the floor keeps a category unseen in a component's rows
from getting probability 0 (a log-density of -inf), as ``reg_covar`` keeps
a variance off 0.  The kernel is :mod:`fastem.kernels.categorical`.
"""

from dataclasses import dataclass

import numpy as np

from fastem import _config
from fastem.families.base import OutputsFromPass, SumStats, mixing_weights

__all__ = ["BernoulliFamily", "CategoricalFamily", "CategoricalParams",
           "floored_frequencies"]

_EMPTY_F = np.empty(0)
_EMPTY_I = np.empty(0, dtype=np.int64)
_CHECK_ROWS = 1 << 16


@dataclass
class CategoricalParams:
    """Parameters of a categorical (or Bernoulli) mixture.

    Attributes
    ----------
    weights : ndarray of shape (K,)
        Mixing weights, summing to one.
    probs : ndarray of shape (K, D, C)
        ``probs[k, d, c]``: probability of category ``c`` of feature ``d``
        in component ``k``; zero for ``c >= n_categories[d]`` (padding).
    n_categories : ndarray of shape (D,), int
        Number of categories of each feature.
    """

    weights: np.ndarray
    probs: np.ndarray
    n_categories: np.ndarray

    def kernel_args(self):
        """Return ``(log_weights, log_probs)`` as the kernel takes them."""
        with np.errstate(divide="ignore"):
            logw = np.log(np.asarray(self.weights, dtype=np.float64))
            logp = np.log(np.ascontiguousarray(self.probs, dtype=np.float64))
        return logw, logp


def floored_frequencies(counts, valid, floor):
    """Maximize ``sum_c counts_c log theta_c`` with ``theta_c >= floor``.

    Over the categories where ``valid`` is true, for every leading index
    at once.

    Parameters
    ----------
    counts : ndarray of shape (..., C)
        Non-negative weighted counts.
    valid : ndarray of bool, broadcastable to ``counts``
        The categories that exist (the others get probability 0).
    floor : float
        Lower bound of every probability, ``0 <= floor < 1 / C``.

    Returns
    -------
    ndarray of shape (..., C)
        Probabilities summing to one over the valid categories.  Where all
        counts are 0, the uniform distribution.
    """
    counts = np.where(valid, counts, 0.0)
    valid = np.broadcast_to(valid, counts.shape)
    n_valid = valid.sum(axis=-1, keepdims=True)
    fixed = np.zeros(counts.shape, dtype=bool)
    for _ in range(counts.shape[-1] + 1):
        free = valid & ~fixed
        budget = 1.0 - floor * fixed.sum(axis=-1, keepdims=True)
        tot = np.where(free, counts, 0.0).sum(axis=-1, keepdims=True)
        n_free = free.sum(axis=-1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(tot > 0, counts / tot,
                             1.0 / np.maximum(n_free, 1))
        theta = np.where(fixed, floor, np.where(free, budget * share, 0.0))
        low = free & (theta < floor)
        if not low.any():
            break
        fixed |= low
    theta = np.where(valid, theta, 0.0)
    empty = np.where(valid, counts, 0.0).sum(axis=-1, keepdims=True) <= 0
    return np.where(empty & valid, 1.0 / np.maximum(n_valid, 1), theta)


class CategoricalFamily(OutputsFromPass):
    """Independent categorical features (see the module docstring).

    Parameters
    ----------
    n_categories : array-like of int of shape (D,) or None
        Categories per feature; None until known (then only the integer
        and sign checks of :meth:`check_data` apply).
    reg_prob : float, default=1e-6
        Floor of every category probability.
    """

    name = "categorical"
    kind = "categorical"

    def __init__(self, n_categories=None, reg_prob=1e-6):
        self.n_categories = (None if n_categories is None else
                             np.asarray(n_categories, dtype=np.int64))
        self.reg_prob = float(reg_prob)

    # ------------------------------------------------------------ the data
    def _what(self):
        return "integer category codes 0, 1, ..., n_categories - 1"

    def check_data(self, X, where="X"):
        """Raise ValueError unless X holds valid category codes (or NaN).

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            Validated float data (NaN marks a missing entry).
        where : str
            How to name the data in the message.
        """
        nc = self.n_categories
        if nc is not None and nc.shape != (X.shape[1],):
            raise ValueError(
                f"n_categories has {nc.size} entries but {where} has "
                f"{X.shape[1]} features: give one count per feature (or one "
                "int for all).")
        for r0 in range(0, X.shape[0], _CHECK_ROWS):
            B = X[r0:r0 + _CHECK_ROWS]
            with np.errstate(invalid="ignore"):
                bad = (B < 0) | (B != np.floor(B)) | np.isinf(B)
                if nc is not None:
                    bad |= B >= nc
                bad &= ~np.isnan(B)  # missing entries are allowed
            if bad.any():
                i, d = np.argwhere(bad)[0]
                v = float(B[i, d])
                raise ValueError(
                    f"A {self.kind} mixture needs {self._what()} (NaN for a "
                    f"missing entry): {where} has {v!r} in row {r0 + i}, "
                    f"feature {d}. Fix: {self._hint(v, d)}.")

    def _hint(self, v, d):
        nc = self.n_categories
        if nc is not None and v >= nc[d] and v == np.floor(v):
            return (f"feature {d} has {nc[d]} categories (codes 0 to "
                    f"{nc[d] - 1}); pass n_categories with at least "
                    f"{int(v) + 1} for it")
        return "encode each feature's categories as 0, 1, 2, ..."

    # ----------------------------------------------------------- the pass
    def _pass(self, params, X, w, want_stats, lse, resp, label):
        from fastem.kernels.categorical import _categorical_pass

        logw, logp = params.kernel_args()
        with _config.threads():
            return _categorical_pass(X, w, logw, logp,
                                     _config.n_chunks_for(X.shape[0]),
                                     want_stats, lse, resp, label)

    def stats(self, params, X, w):
        """Additive statistics of one chunk under ``params``.

        Parameters
        ----------
        params : CategoricalParams
        X : ndarray of shape (n, D)
        w : ndarray of shape (n,) or (0,)

        Returns
        -------
        SumStats
            With arrays ``nk`` (K,) and ``counts`` (K, D, C).
        """
        K = params.probs.shape[0]
        nk, counts, ll, ws = self._pass(params, X, w, True, _EMPTY_F,
                                        np.empty((0, K)), _EMPTY_I)
        return SumStats({"nk": nk, "counts": counts}, float(ll), float(ws),
                        int(X.shape[0]))

    # -------------------------------------------------------- the M-step
    def _valid(self, D, C):
        nc = self._ncat(D)
        return np.arange(C)[None, None, :] < nc[None, :, None]

    def _ncat(self, D):
        if self.n_categories is None:
            raise ValueError("the number of categories is not known yet.")
        return self.n_categories

    def m_step(self, stats, params=None):
        """Maximize the expected complete log-likelihood (floored).

        Parameters
        ----------
        stats : SumStats
        params : CategoricalParams, optional
            The current parameters: a component with no weight keeps its
            probabilities.

        Returns
        -------
        CategoricalParams
        """
        counts = stats["counts"]
        K, D, C = counts.shape
        _, weights = mixing_weights(stats["nk"])
        probs = floored_frequencies(counts, self._valid(D, C), self.reg_prob)
        if params is not None:
            empty = stats["nk"] <= 0
            probs[empty] = params.probs[empty]
        return CategoricalParams(weights, probs, self._ncat(D).copy())

    def _codes(self, X):
        C = int(self._ncat(X.shape[1]).max(initial=1))
        return C

    def _counts(self, X, R):
        """``counts[k, d, c] = sum_i R[i, k] [X[i, d] = c]`` (NaN skipped)."""
        N, D = X.shape
        C = self._codes(X)
        counts = np.zeros((R.shape[1], D, C))
        for d in range(D):
            col = X[:, d]
            ok = ~np.isnan(col)
            onehot = np.zeros((int(ok.sum()), C))
            onehot[np.arange(onehot.shape[0]), col[ok].astype(np.int64)] = 1.0
            counts[:, d, :] = R[ok].T @ onehot
        return counts

    def stats_from_labels(self, X, w, labels, K):
        """Statistics of hard assignments (rows with label < 0 ignored).

        Parameters
        ----------
        X : ndarray of shape (n, D)
        w : ndarray of shape (n,) or (0,)
        labels : ndarray of shape (n,)
        K : int

        Returns
        -------
        SumStats
        """
        w = np.ones(X.shape[0]) if w.shape[0] == 0 else w
        R = np.zeros((X.shape[0], K))
        keep = labels >= 0
        R[np.flatnonzero(keep), labels[keep]] = w[keep]
        return SumStats({"nk": R.sum(axis=0),
                         "counts": self._counts(np.asarray(X, float), R)},
                        0.0, float(w[keep].sum()), int(keep.sum()))

    def stats_from_resp(self, X, w, resp):
        """Statistics of given responsibilities.

        Parameters
        ----------
        X : ndarray of shape (n, D)
        w : ndarray of shape (n,) or (0,)
        resp : ndarray of shape (n, K)

        Returns
        -------
        SumStats
        """
        R = resp if w.shape[0] == 0 else resp * w[:, None]
        return SumStats({"nk": R.sum(axis=0),
                         "counts": self._counts(np.asarray(X, float), R)},
                        0.0, float(R.sum()), int(X.shape[0]))

    # ---------------------------------------------------------- the rest
    def n_parameters(self, params):
        """Free parameters: ``K sum_d (C_d - 1)`` probabilities, ``K - 1`` weights.

        Parameters
        ----------
        params : CategoricalParams

        Returns
        -------
        int
        """
        K = params.probs.shape[0]
        return int(K * int(np.sum(params.n_categories - 1)) + K - 1)

    def sample_component(self, params, k, n, rng):
        """``n`` draws from component ``k``.

        Parameters
        ----------
        params : CategoricalParams
        k, n : int
        rng : numpy.random.RandomState

        Returns
        -------
        ndarray of shape (n, D)
        """
        D = params.probs.shape[1]
        out = np.empty((n, D))
        for d in range(D):
            C = int(params.n_categories[d])
            p = params.probs[k, d, :C]
            out[:, d] = rng.choice(C, size=n, p=p / p.sum())
        return out

    def n_components(self, params):
        """Return the number of components of ``params``."""
        return params.probs.shape[0]

    def n_features(self, params):
        """Return the number of features of ``params``."""
        return params.probs.shape[1]

    def fitted_attributes(self, params):
        """Return the fitted attributes an estimator shows (besides ``weights_``).

        Parameters
        ----------
        params : CategoricalParams

        Returns
        -------
        dict
            ``{"probs_": (K, D, C)}``.
        """
        return {"probs_": params.probs}

    FIELDS = {"weights": 1, "probs": 3, "n_categories": 1}  # name -> ndim

    def to_fields(self, params):
        """Return the parameters as named float64 arrays (for saving).

        Parameters
        ----------
        params : CategoricalParams

        Returns
        -------
        dict
        """
        return {"weights": params.weights, "probs": params.probs,
                "n_categories": params.n_categories.astype(np.float64)}

    def from_fields(self, fields):
        """Parameters from :meth:`to_fields`' arrays, validated.

        Parameters
        ----------
        fields : dict of str to ndarray

        Returns
        -------
        CategoricalParams

        Raises
        ------
        ValueError
            Naming the field that is wrong.
        """
        w = np.asarray(fields["weights"], dtype=np.float64)
        p = np.asarray(fields["probs"], dtype=np.float64)
        if p.ndim != 3 or w.shape != (p.shape[0],):
            raise ValueError(
                "'probs' must be (n_components, n_features, n_categories) and "
                f"'weights' (n_components,); got {p.shape} and {w.shape}.")
        if "n_categories" in fields and fields["n_categories"] is not None:
            nc = np.asarray(fields["n_categories"], dtype=np.float64)
        elif self.n_categories is not None:
            nc = self.n_categories.astype(np.float64)
        else:
            nc = np.full(p.shape[1], float(p.shape[2]))
        if (nc.shape != (p.shape[1],) or not np.all(nc == np.floor(nc))
                or nc.min(initial=2) < 1 or nc.max(initial=1) > p.shape[2]):
            raise ValueError(
                f"'n_categories' must be {p.shape[1]} integers from 1 to "
                f"{p.shape[2]}; got {nc.tolist()[:8]}.")
        nc = nc.astype(np.int64)
        valid = np.arange(p.shape[2])[None, None, :] < nc[None, :, None]
        valid = np.broadcast_to(valid, p.shape)
        if not (np.all(np.isfinite(p)) and np.all(p[valid] > 0)
                and np.all(p[~valid] == 0)
                and np.allclose(p.sum(axis=2), 1.0, atol=1e-6)):
            raise ValueError(
                "'probs' must be positive for each feature's categories, 0 "
                "beyond them, and sum to 1 over the categories.")
        if not (np.all(np.isfinite(w)) and np.all(w >= 0)
                and abs(w.sum() - 1) < 1e-6):
            raise ValueError("'weights' must be non-negative and sum to 1.")
        return CategoricalParams(w, p, nc)


class BernoulliFamily(CategoricalFamily):
    """Independent binary features: the categorical family with two categories.

    Parameters are shown and saved as ``probs`` (K, D), the probability of a
    one.

    Parameters
    ----------
    n_features : int or None
        Number of features, when known.
    reg_prob : float, default=1e-6
        Probabilities are kept in ``[reg_prob, 1 - reg_prob]``.
    """

    name = "bernoulli"
    kind = "Bernoulli"

    def __init__(self, n_features=None, reg_prob=1e-6):
        super().__init__(None if n_features is None else
                         np.full(int(n_features), 2), reg_prob)

    def _what(self):
        return "binary features (0 or 1)"

    def _hint(self, v, d):
        return ("code each feature as 0 or 1, for example X = (X > 0)"
                ".astype(float), or use CategoricalMixture for more than two "
                "categories")

    def check_data(self, X, where="X"):
        """Raise ValueError unless X holds 0, 1 or NaN.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
        where : str
        """
        saved = self.n_categories
        self.n_categories = np.full(X.shape[1], 2)
        try:
            super().check_data(X, where)
        finally:
            self.n_categories = saved

    def _ncat(self, D):
        return np.full(D, 2, dtype=np.int64)

    def m_step(self, stats, params=None):
        """Run the categorical M-step, with ``P(0) = 1 - P(1)`` exactly.

        Parameters
        ----------
        stats : SumStats
        params : CategoricalParams, optional

        Returns
        -------
        CategoricalParams
        """
        new = super().m_step(stats, params)
        # the file holds P(1) only: make the loaded model the fitted one
        new.probs[:, :, 0] = 1.0 - new.probs[:, :, 1]
        return new

    def fitted_attributes(self, params):
        """Return ``{"probs_": (K, D)}``, the probabilities of a one."""
        return {"probs_": params.probs[:, :, 1]}

    FIELDS = {"weights": 1, "probs": 2}

    def to_fields(self, params):
        """Return ``weights`` and ``probs`` (K, D), as float64 arrays."""
        return {"weights": params.weights, "probs": params.probs[:, :, 1]}

    def from_fields(self, fields):
        """Parameters from ``weights`` and ``probs`` (K, D), validated.

        Parameters
        ----------
        fields : dict of str to ndarray

        Returns
        -------
        CategoricalParams
        """
        p1 = np.asarray(fields["probs"], dtype=np.float64)
        if p1.ndim != 2:
            raise ValueError("'probs' must be (n_components, n_features); "
                             f"got shape {p1.shape}.")
        if not (np.all(np.isfinite(p1)) and np.all(p1 > 0)
                and np.all(p1 < 1)):
            raise ValueError("'probs' must be strictly between 0 and 1.")
        probs = np.stack([1.0 - p1, p1], axis=2)
        return super().from_fields({"weights": fields["weights"],
                                    "probs": probs,
                                    "n_categories": np.full(p1.shape[1], 2.0)})

    def n_parameters(self, params):
        """Free parameters: ``K D`` probabilities and ``K - 1`` weights."""
        K, D = params.probs.shape[:2]
        return int(K * D + K - 1)
