"""Categorical and Bernoulli mixtures (latent class analysis).

The categorical (and Bernoulli) family plus
:class:`~fastem.models.base.MixtureModel`: in-memory, chunked, online and
Dask fitting, sample weights, prediction, sampling, save/load, BIC/AIC and
:func:`fastem.select` come from the base class.  Missing entries (NaN) are
marginalized: left out of the row's product of per-feature probabilities.
"""

import numbers

import numpy as np

from fastem.families.categorical import BernoulliFamily, CategoricalFamily
from fastem.models.base import MixtureModel, check_float, short_repr

__all__ = ["BernoulliMixture", "CategoricalMixture"]

_COMMON = """    n_components : int, default=1
        Number of mixture components (latent classes).
    tol : float, default=1e-6
        Convergence threshold on the change of the lower bound (the mean
        log-likelihood per row).  Smaller than GaussianMixture's 1e-3: EM for
        latent classes creeps (on 3,000 rows of four features it gained 0.04
        per row after the change had dropped below 1e-3); poLCA's default
        stops at a change of 1e-10 in the total log-likelihood.
    reg_prob : float, default=1e-6
        Floor of every probability (in ``[0, 1 / n_categories)``), so that
        a category never seen in a component's rows keeps a positive
        probability; the M-step is the exact maximum over probabilities
        with that floor, so the log-likelihood still never decreases.
    max_iter : int, default=1000
        Number of EM iterations to perform (poLCA's default).
    n_init : int, default=1
        Number of initializations; the best result is kept.
    init_params : {'kmeans', 'random', 'k-means++', 'random_from_data'}, \
default='kmeans'
        Initialization: k-means on the codes (missing entries counted as 0
        there); random responsibilities (random starts, as poLCA's);
        k-means++ seed rows; randomly chosen rows.
    weights_init : array-like of shape (n_components,), default=None
        Initial weights.
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
        Step-size exponent of :meth:`partial_fit`."""


class _DiscreteMixture(MixtureModel):
    """What the categorical and Bernoulli mixtures share."""

    def _allow_nan(self):
        return True

    def _prepare_init(self, X):
        # k-means needs numbers everywhere: a missing code counts as 0 there
        # (the EM passes themselves skip it)
        return np.where(np.isnan(X), 0.0, X) if np.isnan(X).any() else X

    def _check_family_parameters(self):
        check_float("reg_prob", self.reg_prob, 0.0)
        if self.reg_prob >= 0.5:
            raise ValueError(
                f"Invalid value for 'reg_prob': {self.reg_prob!r}. It is a "
                "floor on probabilities and must be below 1 / n_categories "
                "(the default 1e-6 suits most data).")

    def _init_fields(self, n_features):
        K = self.n_components
        given = {}
        if self.weights_init is not None:
            w = np.asarray(self.weights_init, dtype=np.float64)
            if w.shape != (K,):
                raise ValueError(f"weights_init must have shape ({K},) "
                                 f"(n_components), got {w.shape}.")
            given["weights"] = w
        probs = self._probs_init_array(n_features)
        if probs is not None:
            given["probs"] = probs
        if given:
            family = self._family()
            probe = family.to_fields(family.m_step(self._uniform_stats(
                K, n_features)))
            probe.update(given)
            try:
                family.from_fields(probe)
            except ValueError as e:
                raise ValueError(f"Invalid initial parameters: {e}") from None
        return given

    def _uniform_stats(self, K, D):
        from fastem.families.base import SumStats

        nc = self._family()._ncat(D)
        return SumStats({"nk": np.ones(K), "counts": np.ones(
            (K, D, int(nc.max(initial=1))))}, 0.0, float(K), K)


class CategoricalMixture(_DiscreteMixture):
    """Mixture of independent categorical features: latent class analysis.

    Each component (latent class) ``k`` has a weight ``w_k`` and, for every
    feature ``d``, probabilities ``theta_{k, d, c}`` of its categories
    ``c = 0, ..., C_d - 1``; a row of category codes ``x`` has density
    ``sum_k w_k prod_d theta_{k, d, x_d}`` -- the model R's poLCA fits.
    Fitted by EM; each iteration is one parallel pass over ``X``.  The
    methods, and the parameters shared with it, are those of
    :class:`fastem.GaussianMixture`.

    Parameters
    ----------
    n_categories : int, array-like of int of shape (n_features,) or None, \
default=None
        Number of categories of each feature (one int: the same for all).
        None: one more than the largest code of each feature in the data of
        the first ``fit`` (give it for chunked, online or Dask fitting, whose
        later data may hold codes the first chunk has not).
    <common parameters>
    probs_init : array-like of shape (n_components, n_features, \
n_categories), default=None
        Initial probabilities (0 beyond a feature's categories).

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    probs_ : ndarray of shape (n_components, n_features, max_categories)
        ``probs_[k, d, c]``: probability of category ``c`` of feature ``d`` in
        component ``k``; 0 for ``c >= n_categories_[d]``.
    n_categories_ : ndarray of int of shape (n_features,)
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
    lower_bounds_ : list of float
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from fastem import CategoricalMixture
    >>> rng = np.random.default_rng(0)
    >>> a = rng.choice(3, size=(500, 4), p=[0.8, 0.1, 0.1])
    >>> b = rng.choice(3, size=(500, 4), p=[0.1, 0.1, 0.8])
    >>> cm = CategoricalMixture(2, random_state=0).fit(np.vstack([a, b]))
    >>> sorted(np.round(cm.probs_[:, 0, 0], 1))
    [0.1, 0.8]
    """

    def __init__(self, n_components=1, *, n_categories=None, tol=1e-6,
                 reg_prob=1e-6, max_iter=1000, n_init=1, init_params="kmeans",
                 weights_init=None, probs_init=None, random_state=None,
                 warm_start=False, verbose=0, verbose_interval=10,
                 n_threads=None, callback=None, online_decay=0.6):
        self.n_components = n_components
        self.n_categories = n_categories
        self.tol = tol
        self.reg_prob = reg_prob
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.probs_init = probs_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.n_threads = n_threads
        self.callback = callback
        self.online_decay = online_decay

    # The categories of each feature: the constructor's n_categories, else
    # inferred from the data of this fit (in-memory: all of X; chunked,
    # online and Dask: the initialization sample), else the fitted ones.
    _UNKNOWN = np.empty(0, dtype=np.int64)

    def _known_categories(self, n_features=None):
        nc = self.n_categories
        if nc is None:
            nc = getattr(self, "_inferred_categories", None)
            if nc is None:
                nc = getattr(self, "n_categories_", None)
            return None if nc is None or len(nc) == 0 else np.asarray(
                nc, dtype=np.int64)
        if isinstance(nc, numbers.Integral) and not isinstance(nc, bool):
            if n_features is None:
                n_features = getattr(self, "_n_cols", None)
            return None if n_features is None else np.full(n_features, int(nc))
        return np.asarray(nc, dtype=np.int64)

    def _start_fit(self):
        # a new fit infers the categories again (unless they are given, or
        # a warm start continues the fitted model)
        if self.n_categories is None and not (
                self.warm_start and hasattr(self, "n_categories_")):
            self._inferred_categories = self._UNKNOWN

    def _infer(self, X):
        self._n_cols = X.shape[1]
        if self._known_categories(X.shape[1]) is None:
            with np.errstate(invalid="ignore"):
                top = np.nanmax(X, axis=0, initial=0.0) if X.shape[0] else \
                    np.zeros(X.shape[1])
            self._inferred_categories = np.nan_to_num(top).astype(
                np.int64) + 1

    def fit(self, X, y=None, sample_weight=None):
        """Estimate the model parameters with EM (see :class:`GaussianMixture`).

        Parameters
        ----------
        X : array-like or dask array of shape (n_samples, n_features)
            Category codes, NaN for a missing entry.
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self
        """
        self._start_fit()
        return super().fit(X, y, sample_weight)

    def fit_chunks(self, make_chunks, init_size=100_000):
        """Fit on chunks (see :meth:`GaussianMixture.fit_chunks`).

        Without ``n_categories`` the categories are inferred from the
        initialization sample; a later chunk with a larger code raises an
        error asking for ``n_categories``.

        Parameters
        ----------
        make_chunks : callable
        init_size : int, default=100000

        Returns
        -------
        self
        """
        self._start_fit()
        return super().fit_chunks(make_chunks, init_size)

    def partial_fit(self, X, y=None, sample_weight=None):
        """One online EM step on a batch (see :meth:`GaussianMixture.partial_fit`).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self
        """
        if not hasattr(self, "n_categories_"):
            self._start_fit()
        return super().partial_fit(X, y, sample_weight)

    def _prepare_init(self, X):
        self._infer(X)
        return super()._prepare_init(X)

    def _family(self):
        return CategoricalFamily(self._known_categories(), self.reg_prob)

    def _check_family_parameters(self):
        super()._check_family_parameters()
        nc = self.n_categories
        if nc is None:
            return
        a = np.asarray(nc)
        if (a.ndim > 1 or a.dtype.kind not in "iu" or a.size == 0
                or np.any(a < 1) or isinstance(nc, bool)):
            raise ValueError(
                f"Invalid value for 'n_categories': {short_repr(nc)}. Expected a "
                "positive int or one positive int per feature.")

    def _validate_X(self, X, reset, min_samples=1):
        out = super()._validate_X(X, reset, min_samples)
        if reset:
            Xv = out[0]
            if self.n_categories is not None:
                want = self._known_categories(Xv.shape[1])
                if want.shape != (Xv.shape[1],):
                    raise ValueError(
                        f"n_categories has {want.size} entries but X has "
                        f"{Xv.shape[1]} features.")
                CategoricalFamily(want).check_data(Xv)
            self._infer(Xv)
        return out

    def _commit(self, params, dtype, n_features, names):
        super()._commit(params, dtype, n_features, names)
        self.n_categories_ = np.asarray(params.n_categories, dtype=np.int64)

    def _init_fields(self, n_features):
        given = super()._init_fields(n_features)
        nc = self._known_categories(n_features)
        if "probs" in given and nc is not None:
            given["n_categories"] = nc.astype(np.float64)
        return given

    def _probs_init_array(self, n_features):
        if self.probs_init is None:
            return None
        p = np.asarray(self.probs_init, dtype=np.float64)
        if p.ndim != 3 or p.shape[:2] != (self.n_components, n_features):
            raise ValueError(
                "probs_init must have shape (n_components, n_features, "
                f"n_categories) = ({self.n_components}, {n_features}, C), got "
                f"{p.shape}.")
        return p


class BernoulliMixture(_DiscreteMixture):
    """Mixture of independent Bernoulli distributions over binary features.

    Each component ``k`` has a weight ``w_k`` and a probability ``p_kd`` that
    feature ``d`` is 1; a row ``x`` of zeros and ones has density ``sum_k
    w_k prod_d p_kd^x_d (1 - p_kd)^(1 - x_d)``.  Fitted by EM; each
    iteration is one parallel pass over ``X``.  The methods, and the
    parameters shared with it, are those of :class:`fastem.GaussianMixture`.

    Parameters
    ----------
    <common parameters>
    probs_init : array-like of shape (n_components, n_features), default=None
        Initial probabilities of a one (strictly between 0 and 1).

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    probs_ : ndarray of shape (n_components, n_features)
        Probability that each feature is 1, per component.
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
    lower_bounds_ : list of float
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from fastem import BernoulliMixture
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.random((500, 6)) < 0.9, rng.random((500, 6)) < 0.2])
    >>> bm = BernoulliMixture(2, random_state=0).fit(X.astype(float))
    >>> sorted(np.round(bm.probs_[:, 0], 1))
    [0.2, 0.9]
    """

    def __init__(self, n_components=1, *, tol=1e-6, reg_prob=1e-6,
                 max_iter=1000, n_init=1, init_params="kmeans",
                 weights_init=None, probs_init=None, random_state=None,
                 warm_start=False, verbose=0, verbose_interval=10,
                 n_threads=None, callback=None, online_decay=0.6):
        self.n_components = n_components
        self.tol = tol
        self.reg_prob = reg_prob
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.probs_init = probs_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.n_threads = n_threads
        self.callback = callback
        self.online_decay = online_decay

    def _family(self):
        return BernoulliFamily(getattr(self, "n_features_in_", None),
                               self.reg_prob)

    def _probs_init_array(self, n_features):
        if self.probs_init is None:
            return None
        p = np.asarray(self.probs_init, dtype=np.float64)
        if p.shape != (self.n_components, n_features):
            raise ValueError(
                "probs_init must have shape (n_components, n_features) = "
                f"({self.n_components}, {n_features}), got {p.shape}.")
        return p


for _cls in (CategoricalMixture, BernoulliMixture):
    _cls.__doc__ = _cls.__doc__.replace("    <common parameters>", _COMMON)
del _cls
