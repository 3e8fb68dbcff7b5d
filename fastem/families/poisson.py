"""The Poisson family: independent count features, a rate per component.

``p(x | k) = prod_d Poisson(x_d; lambda_kd)``.  Statistics: ``nk`` (K,),
``sums`` (K, D), the responsibility-weighted counts, and ``miss`` (K, D),
the responsibility of the rows whose feature ``d`` is missing (NaN: left
out of the product, so the fit is exact EM over the observed entries).
M-step: ``lambda_kd = sums_kd / (nk_k - miss_kd) + reg_rate`` (``reg_rate``
keeps a rate of a feature that is zero in a component's rows off zero, as
``reg_covar`` keeps a variance off zero).  The kernel is
:mod:`fastem.kernels.poisson`.
"""

from dataclasses import dataclass

import numpy as np

from fastem import _config
from fastem.families.base import OutputsFromPass, SumStats, mixing_weights

__all__ = ["PoissonFamily", "PoissonParams"]

_EMPTY_F = np.empty(0)
_EMPTY_I = np.empty(0, dtype=np.int64)


@dataclass
class PoissonParams:
    """Parameters of a Poisson mixture.

    Attributes
    ----------
    weights : ndarray of shape (K,)
        Mixing weights, summing to one.
    rates : ndarray of shape (K, D)
        Poisson rate of each feature in each component (positive).
    """

    weights: np.ndarray
    rates: np.ndarray

    def kernel_args(self):
        """Return ``(a, log_rates)`` as :func:`_poisson_pass` takes them."""
        rates = np.ascontiguousarray(self.rates, dtype=np.float64)
        with np.errstate(divide="ignore"):
            logw = np.log(np.asarray(self.weights, dtype=np.float64))
        return logw - rates.sum(axis=1), np.log(rates)


class PoissonFamily(OutputsFromPass):
    """Independent Poisson counts (see the module docstring).

    Parameters
    ----------
    reg_rate : float, default=1e-6
        Added to every rate in the M-step.
    """

    name = "poisson"

    def __init__(self, reg_rate=1e-6):
        self.reg_rate = float(reg_rate)

    # ------------------------------------------------------------ the data
    def check_data(self, X, where="X"):
        """Raise ValueError unless X holds non-negative integer counts.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            Validated (finite) float data.
        where : str
            How to name the data in the message.
        """
        from fastem.kernels.poisson import _count_problems

        if X.shape[0] == 0:
            return
        neg, frac, row = _count_problems(X)
        if neg or frac:
            what = []
            if neg:
                what.append(f"{neg} negative value(s)")
            if frac:
                what.append(f"{frac} non-integer value(s)")
            raise ValueError(
                f"A Poisson mixture models counts: {where} must hold "
                f"non-negative integers, but it has {' and '.join(what)} "
                f"(the first in row {row}: {X[row].tolist()[:8]}). Pass the "
                "raw counts (not normalized or log-transformed values).")

    # ----------------------------------------------------------- the pass
    def _pass(self, params, X, w, want_stats, lse, resp, label):
        from fastem.kernels.poisson import LOG_FACTORIAL_TABLE, _poisson_pass

        a, loglam = params.kernel_args()
        with _config.threads():
            return _poisson_pass(X, w, a, loglam, LOG_FACTORIAL_TABLE,
                                 _config.n_chunks_for(X.shape[0]), want_stats,
                                 lse, resp, label,
                                 np.ascontiguousarray(params.rates,
                                                      dtype=np.float64))

    def stats(self, params, X, w):
        """Additive statistics of one chunk under ``params``.

        Parameters
        ----------
        params : PoissonParams
        X : ndarray of shape (n, D)
        w : ndarray of shape (n,) or (0,)

        Returns
        -------
        SumStats
            With arrays ``nk`` (K,), ``sums`` (K, D) and ``miss`` (K, D).
        """
        K = params.rates.shape[0]
        nk, sums, miss, ll, ws = self._pass(params, X, w, True, _EMPTY_F,
                                            np.empty((0, K)), _EMPTY_I)
        return SumStats({"nk": nk, "sums": sums, "miss": miss}, float(ll),
                        float(ws), int(X.shape[0]))

    # -------------------------------------------------------- the M-step
    def m_step(self, stats, params=None):
        """Maximize the expected complete log-likelihood.

        Parameters
        ----------
        stats : SumStats
        params : PoissonParams, optional
            The current parameters: a component with no weight keeps its
            rates.

        Returns
        -------
        PoissonParams
        """
        nk, weights = mixing_weights(stats["nk"])
        # the weight of the rows that observe each feature
        seen = nk[:, None] - stats["miss"]
        seen = np.where(seen > 1e-12 * nk[:, None], seen, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            rates = stats["sums"] / seen + self.reg_rate
        # a component with no weight, or a feature no row of it observes,
        # keeps its rate (or, at initialization, takes the data's)
        empty = (stats["nk"] <= 0)[:, None] | (seen <= 0)
        if empty.any():
            if params is not None:
                fill = params.rates
            else:
                tot = np.maximum((nk[:, None] - stats["miss"]).sum(axis=0),
                                 1e-300)
                fill = np.broadcast_to(stats["sums"].sum(axis=0) / tot
                                       + self.reg_rate, rates.shape)
            rates = np.where(empty, fill, rates)
        return PoissonParams(weights, rates)

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
        keep = labels >= 0
        lab, wk = labels[keep], w[keep]
        nk = np.bincount(lab, weights=wk, minlength=K).astype(np.float64)
        Xk = np.asarray(X[keep], dtype=np.float64)
        gap = np.isnan(Xk)
        sums = np.zeros((K, X.shape[1]))
        np.add.at(sums, lab, wk[:, None] * np.where(gap, 0.0, Xk))
        miss = np.zeros((K, X.shape[1]))
        if gap.any():
            np.add.at(miss, lab, wk[:, None] * gap)
        return SumStats({"nk": nk, "sums": sums, "miss": miss}, 0.0,
                        float(wk.sum()), int(keep.sum()))

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
        wr = resp if w.shape[0] == 0 else resp * w[:, None]
        Xf = np.asarray(X, dtype=np.float64)
        gap = np.isnan(Xf)
        return SumStats({"nk": wr.sum(axis=0),
                         "sums": wr.T @ np.where(gap, 0.0, Xf),
                         "miss": wr.T @ gap.astype(np.float64)}, 0.0,
                        float(wr.sum()), int(X.shape[0]))

    # ---------------------------------------------------------- the rest
    def n_parameters(self, params):
        """Free parameters: ``K D`` rates and ``K - 1`` weights.

        Parameters
        ----------
        params : PoissonParams

        Returns
        -------
        int
        """
        K, D = params.rates.shape
        return int(K * D + K - 1)

    def sample_component(self, params, k, n, rng):
        """``n`` draws from component ``k``.

        Parameters
        ----------
        params : PoissonParams
        k, n : int
        rng : numpy.random.RandomState

        Returns
        -------
        ndarray of shape (n, D)
        """
        return rng.poisson(params.rates[k], size=(n, params.rates.shape[1])
                           ).astype(np.float64)

    def n_components(self, params):
        """Return the number of components of ``params``."""
        return params.rates.shape[0]

    def n_features(self, params):
        """Return the number of features of ``params``."""
        return params.rates.shape[1]

    def fitted_attributes(self, params):
        """Return the fitted attributes an estimator shows (besides ``weights_``).

        Parameters
        ----------
        params : PoissonParams

        Returns
        -------
        dict
            ``{"rates_": (K, D)}``.
        """
        return {"rates_": params.rates}

    def to_fields(self, params):
        """Return the parameters as named float64 arrays (for saving).

        Parameters
        ----------
        params : PoissonParams

        Returns
        -------
        dict
        """
        return {"weights": params.weights, "rates": params.rates}

    FIELDS = {"weights": 1, "rates": 2}  # name -> ndim

    def from_fields(self, fields):
        """Parameters from :meth:`to_fields`' arrays, validated.

        Parameters
        ----------
        fields : dict of str to ndarray

        Returns
        -------
        PoissonParams

        Raises
        ------
        ValueError
            Naming the field that is wrong.
        """
        w = np.asarray(fields["weights"], dtype=np.float64)
        r = np.asarray(fields["rates"], dtype=np.float64)
        if r.ndim != 2 or w.shape != (r.shape[0],):
            raise ValueError(
                f"'rates' must be (n_components, n_features) and 'weights' "
                f"(n_components,); got {r.shape} and {w.shape}.")
        if not (np.all(np.isfinite(r)) and np.all(r > 0)):
            raise ValueError("'rates' must be finite and positive.")
        if not (np.all(np.isfinite(w)) and np.all(w >= 0)
                and abs(w.sum() - 1) < 1e-6):
            raise ValueError("'weights' must be non-negative and sum to 1.")
        return PoissonParams(w, r)
