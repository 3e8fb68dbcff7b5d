"""Poisson mixture: the Poisson family plus :class:`~fastem.models.base.MixtureModel`.

Everything but the constructor comes from the base class: in-memory,
chunked, online and Dask fitting, sample weights, prediction, sampling,
save/load, BIC/AIC and :func:`fastem.select`.
"""

import warnings

import numpy as np

from fastem.families.poisson import PoissonFamily
from fastem.models.base import MixtureModel, check_float

__all__ = ["PoissonMixture"]


class PoissonMixture(MixtureModel):
    """Mixture of independent Poisson distributions over count features.

    Each component ``k`` has a weight ``w_k`` and a rate ``lambda_kd`` per
    feature; a row of counts ``x`` has density ``sum_k w_k prod_d
    Poisson(x_d; lambda_kd)``.  Fitted by EM; each iteration is one parallel
    pass over ``X``.  The methods, and the parameters shared with it, are
    those of :class:`fastem.GaussianMixture`.  A missing count (NaN) is left
    out of its row's product: fitting, scoring and prediction use the
    observed entries only (exact EM over them; the k-means start fills the
    gaps with the column means).

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components.
    tol : float, default=1e-3
        Convergence threshold on the change of the lower bound (the mean
        log-likelihood per row).
    reg_rate : float, default=1e-6
        Non-negative value added to every rate in the M-step, so that a
        feature that is zero in all of a component's rows keeps a positive
        rate.
    max_iter : int, default=100
        Number of EM iterations to perform.
    n_init : int, default=1
        Number of initializations; the best result is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, \
default='kmeans'
        Initialization: k-means on the counts; k-means++ seed rows; random
        responsibilities; randomly chosen rows.
    weights_init : array-like of shape (n_components,), default=None
        Initial weights.
    rates_init : array-like of shape (n_components, n_features), default=None
        Initial rates (positive).
    random_state : int, RandomState instance or None, default=None
    warm_start : bool, default=False
        Start ``fit`` from the previous solution (``n_init`` is then ignored).
    verbose : int, default=0
    verbose_interval : int, default=10
    n_threads : int or None, default=None
        Threads for the compiled kernel; results do not depend on it.
    callback : callable or None, default=None
        Called after every EM iteration as ``callback(n_iter, lower_bound)``;
        ``True`` stops the current initialization.
    online_decay : float in (0.5, 1], default=0.6
        Step-size exponent of :meth:`partial_fit`.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    rates_ : ndarray of shape (n_components, n_features)
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
    lower_bounds_ : list of float
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names.

    Examples
    --------
    >>> import numpy as np
    >>> from fastem import PoissonMixture
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.poisson([1, 8], (500, 2)),
    ...                rng.poisson([9, 2], (500, 2))])
    >>> pm = PoissonMixture(2, random_state=0).fit(X)
    >>> np.round(np.sort(pm.rates_[:, 0]), 0)
    array([1., 9.])
    """

    def __init__(self, n_components=1, *, tol=1e-3, reg_rate=1e-6,
                 max_iter=100, n_init=1, init_params="kmeans",
                 weights_init=None, rates_init=None, random_state=None,
                 warm_start=False, verbose=0, verbose_interval=10,
                 n_threads=None, callback=None, online_decay=0.6):
        self.n_components = n_components
        self.tol = tol
        self.reg_rate = reg_rate
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.rates_init = rates_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.n_threads = n_threads
        self.callback = callback
        self.online_decay = online_decay

    def _family(self):
        return PoissonFamily(self.reg_rate)

    def _allow_nan(self):
        return True

    def _prepare_init(self, X):
        # k-means needs numbers everywhere: a missing count is its column's
        # mean there (the EM passes themselves skip it)
        gap = np.isnan(X)
        if not gap.any():
            return X
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN column
            fill = np.nan_to_num(np.nanmean(X, axis=0))
        return np.where(gap, fill.astype(X.dtype), X)

    def _check_family_parameters(self):
        check_float("reg_rate", self.reg_rate, 0.0)

    def _init_fields(self, n_features):
        K, D = self.n_components, n_features
        given = {}
        for name, value, shape in (("weights", self.weights_init, (K,)),
                                   ("rates", self.rates_init, (K, D))):
            if value is None:
                continue
            a = np.asarray(value, dtype=np.float64)
            if a.shape != shape:
                raise ValueError(
                    f"{name}_init must have shape {shape} (n_components"
                    f"{', n_features' if len(shape) == 2 else ''}), got "
                    f"{a.shape}.")
            given[name] = a
        if given:
            # the family's own checks, on the given fields
            probe = {"weights": np.full(K, 1.0 / K), "rates": np.ones((K, D))}
            probe.update(given)
            try:
                self._family().from_fields(probe)
            except ValueError as e:
                raise ValueError(f"Invalid initial parameters: {e}") from None
        return given
