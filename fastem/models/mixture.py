"""GaussianMixture, a drop-in replacement for scikit-learn's.

Fitted by a fused single-pass EM (see :mod:`fastem.stats` for the kernels'
contract).
"""

import warnings
from functools import partial

import numpy as np

from fastem import _config
from fastem._validation import check_array, check_sample_weight
from fastem.core._data import check_magnitude as _check_magnitude
from fastem.core._data import feature_names as _feature_names
from fastem.core._data import sample_rows as _sample_rows  # noqa: F401
from fastem.core.hc import initial_partition
from fastem.core.sources import ArraySource
from fastem.families.gaussian import (
    COVARIANCE_MODELS,
    COVARIANCE_TYPES,
    MIXTURE_COVARIANCE_TYPES,
    GaussianFamily,
    GaussianParams,
    covariance_shape,
    degenerate_components,
    m_step,
    stats_from_responsibilities,
)
from fastem.kernels.kmeans import _kmeanspp, _lloyd
from fastem.kernels.missing import MissingPlan, missing_pass
from fastem.models.base import INIT_METHODS as _INIT_METHODS
from fastem.models.base import INIT_SAMPLE as _INIT_SAMPLE
from fastem.models.base import ConvergenceWarning, MixtureModel, check_random_state  # noqa: F401
from fastem.models.base import check_float as _check_float
from fastem.models.base import column_variance as _column_variance
from fastem.models.base import (
    convergence_warning_class as _convergence_warning_class,
)
from fastem.models.base import distinct_rows as _distinct_rows
from fastem.models.base import short_repr as _short_repr

NAN_POLICIES = ("raise", "marginalize")



class GaussianMixture(MixtureModel):
    """Gaussian mixture model fitted by EM, compatible with scikit-learn's.

    Same parameters, defaults, methods and fitted attributes as
    ``sklearn.mixture.GaussianMixture``; in addition ``fit`` takes
    ``sample_weight``.  Each EM iteration is one parallel pass over ``X``
    (see :func:`fastem.stats.compute_stats`): no ``n_samples x n_components``
    array is created during ``fit``.

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components.
    covariance_type : str, default='full'
        Form of the covariance matrices: scikit-learn's ``'full'``,
        ``'tied'``, ``'diag'``, ``'spherical'``, or one of mclust's fourteen
        models ``Sigma_k = lambda_k D_k A_k D_k^T`` (volume, shape,
        orientation, each Equal across components, Variable, or the
        Identity): ``'EII'``, ``'VII'``, ``'EEI'``, ``'VEI'``, ``'EVI'``,
        ``'VVI'``, ``'EEE'``, ``'VEE'``, ``'EVE'``, ``'VVE'``, ``'EEV'``,
        ``'VEV'``, ``'EVV'``, ``'VVV'`` (see :mod:`fastem.families.mclust`;
        their M-steps are mclust's, VEI/VEE/EVE/VVE/VEV iterating inside
        the M-step as a Generalized EM step).  ``'full'``, ``'tied'``,
        ``'diag'``, ``'spherical'`` are the same models as VVV, EEE, VVI,
        VII and fit bit-identically; the name given is kept (in
        ``covariance_type`` and saved files).  ``covariances_`` has the
        layout's shape: ``(K,)`` for EII/VII, ``(K, D)`` for
        EEI/VEI/EVI/VVI, ``(D, D)`` for EEE, ``(K, D, D)`` for the others
        (shared models repeat their one covariance in every row).  With
        one feature every name is mclust's ``'E'`` (one variance: EII, EEI,
        EVI, EEE, EVE, EEV, EVV) or ``'V'`` (a variance per component: the
        others).  ``n_parameters``, ``bic`` and ``aic`` count parameters as
        mclust does.  ``nan_policy='marginalize'`` needs one of
        scikit-learn's four names.
    tol : float, default=1e-3
        Convergence threshold on the change of the lower bound (the mean
        log-likelihood per sample).  A bound that repeats its value from two
        to four iterations before, exactly, also counts as converged:
        rounding then cycles between the same parameters (seen with float32
        data and a ``tol`` below float32's resolution of the bound, ~1e-7
        relative).  ``tol=0`` runs exactly ``max_iter`` iterations.
    reg_covar : float, default=1e-6
        Non-negative regularization added to the diagonal of covariances.
        For mclust's models it is added to each component's sample
        covariance before the constrained estimate (the scatter ``W_k``
        becomes ``W_k + reg_covar * n_k * I``): the same thing for the
        four aliases, and ``reg_covar=0`` gives mclust's estimates.
    max_iter : int, default=100
        Number of EM iterations to perform.
    n_init : int, default=1
        Number of initializations; the best result is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data', \
'hc'}, default='kmeans'
        Initialization: fastem's own weighted k-means (k-means++ seeding then
        Lloyd iterations); k-means++ seeds only; random responsibilities;
        randomly chosen data points; or mclust's model-based hierarchical
        agglomeration (``'hc'``: the partition into ``n_components``
        clusters of the tree of :func:`fastem.core.hc.hc`, built on a random
        subset of 2,000 rows when there are more, then one M-step from it;
        one-dimensional data are cut at quantiles, mclust's ``qclass``).
        The tree ignores sample weights (the M-step from its partition uses
        them); with at most 2,000 rows it is deterministic, so ``n_init``
        repeats the same start.
    weights_init : array-like of shape (n_components,), default=None
        Initial weights.
    means_init : array-like of shape (n_components, n_features), default=None
        Initial means.
    precisions_init : array-like, default=None
        Initial precisions (inverse covariances); shape depends on
        ``covariance_type`` as in scikit-learn.
    random_state : int, RandomState instance or None, default=None
        Seed of the initialization.
    warm_start : bool, default=False
        Start ``fit`` from the previous solution (``n_init`` is then ignored).
    verbose : int, default=0
        1 prints the current initialization and iteration; 2 also the time
        and the change of the lower bound.
    verbose_interval : int, default=10
        Iterations between two messages.
    n_threads : int or None, default=None
        Threads for the compiled kernels (fastem addition); None uses
        :func:`fastem.set_num_threads`'s setting, by default all cores.
        Results do not depend on it.
    callback : callable or None, default=None
        Called after every EM iteration as ``callback(n_iter, lower_bound)``
        (fastem addition), for custom monitoring; if it returns ``True`` the
        current initialization stops early (counted as not converged).
    nan_policy : {'raise', 'marginalize'}, default='raise'
        What NaN entries in ``X`` mean (fastem addition).  ``'raise'``:
        reject them, as scikit-learn does.  ``'marginalize'``: treat them as
        missing at random and fit by exact incomplete-data EM (each row's
        density on its observed coordinates; conditional expectations of the
        missing ones in the statistics); ``lower_bound_`` is then the
        observed-data log-likelihood per informative row.  Rows with every
        entry missing are ignored by ``fit``.  ``predict``, ``predict_proba``,
        ``score_samples`` and ``score`` then accept NaN too (marginal
        densities), and :meth:`impute` fills the gaps.
    online_decay : float in (0.5, 1], default=0.6
        Step-size exponent of :meth:`partial_fit` (fastem addition): after
        ``t`` updates, a new batch gets weight ``(t + 2) ** -online_decay``
        in the running statistics.
    tol_rule : {'absolute', 'relative'}, default='absolute'
        How ``tol`` is read (fastem addition).  ``'absolute'``:
        scikit-learn's rule, the lower bound (mean log-likelihood per row)
        changes by less than ``tol``.  ``'relative'``: mclust's rule, the
        total log-likelihood ``L`` changes by less than ``tol (1 + |L|)``
        (mclust's default is ``tol=1e-5``; :func:`fastem.select` uses
        that).

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
    covariances_ : ndarray
    precisions_ : ndarray
    precisions_cholesky_ : ndarray
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        Lower bound (mean log-likelihood) of the best run's last iteration.
    lower_bounds_ : list of float
        Lower bound of every iteration of the best run.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names.
    """

    _init_methods = _INIT_METHODS + ("hc",)

    def __init__(self, n_components=1, *, covariance_type="full", tol=1e-3,
                 reg_covar=1e-6, max_iter=100, n_init=1, init_params="kmeans",
                 weights_init=None, means_init=None, precisions_init=None,
                 random_state=None, warm_start=False, verbose=0,
                 verbose_interval=10, n_threads=None, callback=None,
                 nan_policy="raise", online_decay=0.6, tol_rule="absolute"):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.n_threads = n_threads
        self.callback = callback
        self.nan_policy = nan_policy
        self.online_decay = online_decay
        self.tol_rule = tol_rule

    # ------------------------------------------------------------------ checks
    def _check_family_parameters(self):
        if not isinstance(self.covariance_type, str) or \
                self.covariance_type not in MIXTURE_COVARIANCE_TYPES:
            raise ValueError(
                f"Invalid value for 'covariance_type': {self.covariance_type!r}."
                f" Valid options are {list(MIXTURE_COVARIANCE_TYPES)}.")
        _check_float("reg_covar", self.reg_covar, 0.0)
        if not isinstance(self.nan_policy, str) or \
                self.nan_policy not in NAN_POLICIES:
            raise ValueError(
                f"Invalid value for 'nan_policy': {self.nan_policy!r}. Valid "
                f"options are {list(NAN_POLICIES)}.")
        if self.nan_policy == "marginalize" and \
                self.covariance_type not in COVARIANCE_TYPES:
            raise ValueError(
                "nan_policy='marginalize' supports covariance_type "
                f"{list(COVARIANCE_TYPES)}, got {self.covariance_type!r} (the "
                "missing-data pass has no constrained mclust M-step yet). Use "
                "one of those (VVV is 'full', EEE 'tied', VVI 'diag', VII "
                "'spherical'), or nan_policy='raise'.")

    def _check_initial_parameters(self, n_features):
        # scikit-learn's sentence first (code matching its text keeps
        # working), fastem's detail after it.
        K, D = self.n_components, n_features
        weights = means = prec = None
        if self.weights_init is not None:
            weights = _init_array("weights_init", self.weights_init)
            if weights.shape != (K,):
                raise ValueError(
                    f"The parameter 'weights' should have the shape of ({K},),"
                    f" but got {weights.shape}: weights_init needs one weight "
                    "per component.")
            if not np.all(np.isfinite(weights)) or weights.min() < 0 \
                    or weights.max() > 1:
                # scikit-learn's sentence, with its arguments in its order
                # (it prints the minimum as "max value"), then the facts.
                raise ValueError(
                    "The parameter 'weights' should be in the range [0, 1], "
                    f"but got max value {weights.min():.5f}, min value "
                    f"{weights.max():.5f} (weights_init ranges from "
                    f"{weights.min():.5g} to {weights.max():.5g}).")
            # float32 weights normalized in float32 are off by ~1e-7.
            atol = 1e-6 if weights.dtype == np.float32 else 1e-8
            if not abs(1.0 - float(weights.sum(dtype=np.float64))) <= atol:
                raise ValueError(
                    "The parameter 'weights' should be normalized, but got "
                    f"sum(weights) = {weights.sum(dtype=np.float64):.10g} "
                    f"(tolerance {atol:g}). Divide weights_init by its sum.")
            weights = weights.astype(np.float64)
        if self.means_init is not None:
            means = _init_array("means_init", self.means_init)
            if means.shape != (K, D):
                raise ValueError(
                    f"The parameter 'means' should have the shape of ({K}, {D})"
                    f", but got {means.shape}: means_init needs one row per "
                    "component and one column per feature of X.")
            if not np.all(np.isfinite(means)):
                raise ValueError("means_init contains NaN or infinite values.")
            means = means.astype(np.float64)
        if self.precisions_init is not None:
            prec = _init_array("precisions_init", self.precisions_init)
            ct = self.covariance_type
            shape = covariance_shape(ct, K, D)
            if prec.shape != shape:
                raise ValueError(
                    f"The parameter '{ct} precision' should have the shape of "
                    f"{shape}, but got {prec.shape} (precisions_init for "
                    f"covariance_type={ct!r}).")
            if not np.all(np.isfinite(prec)):
                raise ValueError("precisions_init contains NaN or infinite "
                                 "values.")
            prec = prec.astype(np.float64)
            if COVARIANCE_MODELS[ct].square:
                p3 = prec.reshape(-1, D, D)
                for k, p in enumerate(p3):
                    # scikit-learn's tolerances (np.isclose defaults): an
                    # inverse from np.linalg.inv is symmetric only to ~1e-12
                    # relative at 100 features.
                    if not (np.allclose(p, p.T)
                            and np.linalg.eigvalsh(p).min() > 0):
                        raise ValueError(
                            f"'{ct} precision' should be symmetric, "
                            f"positive-definite (precisions_init[{k}] is not)."
                            " Pass symmetric positive-definite precision "
                            "matrices.")
                # symmetrize what passed the tolerance, for the Cholesky
                prec = 0.5 * (prec + np.swapaxes(prec, -1, -2))
            elif prec.min() <= 0:
                raise ValueError(
                    f"'{ct} precision' should be positive, got min "
                    f"{prec.min():g} in precisions_init.")
        return weights, means, prec

    def _validate_X(self, X, reset, min_samples=1):
        names = _feature_names(X)
        name = type(self).__name__
        if reset:
            # The caller commits n_features_in_ / feature_names_in_ with
            # :meth:`_commit_features` once the fit has succeeded.
            return check_array(X, estimator=name, min_samples=min_samples,
                               allow_nan=self._allow_nan()), names
        self._check_feature_names(names, stacklevel=5)
        X = check_array(X, n_features=self.n_features_in_, estimator=name,
                        allow_nan=self._allow_nan())
        _check_magnitude(X)  # the rule fit applies, at prediction time too
        return X

    def _family(self):
        # what was fitted, even after set_params(covariance_type=...)
        ct = self._params.covariance_type if hasattr(
            self, "_params") else self.covariance_type
        return GaussianFamily(ct, self.reg_covar, self._allow_nan())

    def _allow_nan(self):
        return getattr(self, "nan_policy", "raise") == "marginalize"

    def _init_fields(self, n_features):
        return self._check_initial_parameters(n_features)

    def _prepare_init(self, X):
        # initialization sees a mean-imputed copy; EM itself is exact
        return _mean_impute(X) if np.isnan(X).any() else X

    def _check_source(self, source, names):
        _check_observed(source.observed, names)

    _empty_note = ("they keep their last mean and a covariance of reg_covar "
                   "* I. Consider fewer components.")

    def _fit_extra(self, params, n_rows):
        degenerate = degenerate_components(params, self.reg_covar)
        if degenerate.size:
            warnings.warn(
                f"Degenerate fit: component(s) {degenerate.tolist()} collapsed"
                " (a variance at the reg_covar floor, or a near-singular "
                "covariance), typically onto a few identical rows. Its "
                "likelihood is not comparable with other fits'; use fewer "
                "components, a constrained covariance_type, or a larger "
                "reg_covar. (degenerate_components_ lists them.)",
                UserWarning, stacklevel=5)
        return {"degenerate_components_": degenerate}

    def _fit(self, X, sample_weight):
        self._check_parameters()
        X, names = self._validate_X(X, reset=True, min_samples=2)
        N, D = X.shape
        plan = MissingPlan(X) if self._allow_nan() and np.isnan(
            X).any() else None
        _check_magnitude(X)
        if plan is not None:
            _check_observed(_observed_columns(X), names)
        sw = check_sample_weight(sample_weight, N)
        K = self.n_components
        if N < K:
            raise ValueError(
                f"Expected n_samples >= n_components but got n_components = {K}"
                f", n_samples = {N}. Use fewer components or more data.")
        if plan is not None and plan.n_informative < K:
            raise ValueError(
                f"Only {plan.n_informative} rows have at least one observed "
                f"(non-NaN) entry, fewer than n_components = {K}.")

        if sw.shape[0] and np.count_nonzero(sw) < K:
            raise ValueError(
                f"Only {np.count_nonzero(sw)} rows have a positive "
                f"sample_weight, fewer than n_components = {K}.")

        imputed = []

        def init_fn(rng, inits):
            # Initialization sees a mean-imputed copy (made once, only when
            # needed); EM itself is exact.
            X_init = X
            if plan is not None and any(v is None for v in inits):
                if not imputed:
                    imputed.append(_mean_impute(X))
                X_init = imputed[0]
            return self._initialize(X_init, sw, rng, inits)

        source = ArraySource(X, sw)
        family = self._family()
        if plan is not None and X.dtype != np.float64:
            # the missing-data pass computes in float64: read float32 data
            # into float64 once per fit, not once per pass
            source = ArraySource(X.astype(np.float64), sw)

        def stats_fn(params):
            if plan is None:
                return source.map_sum(partial(family.stats, params))
            # the plan of the whole array is made once, not every pass
            return source.map_sum(
                lambda Xc, wc: missing_pass(Xc, wc, plan, params))

        if X.dtype == np.float32:
            _warn_float32_offset(X)
        self._run_em(stats_fn, init_fn, N, D, names, dtype=X.dtype)
        return X

    def _initialize(self, X, sw, rng, inits):
        """Return initial GaussianParams (scikit-learn's semantics for *_init)."""
        weights, means, prec = inits
        ct = self.covariance_type
        K = self.n_components
        N = X.shape[0]
        if weights is not None and means is not None and prec is not None:
            return GaussianParams(weights, means,
                                  _chol_from_precisions(prec, ct), ct)
        method = self.init_params
        if method in ("kmeans", "k-means++") and N > _INIT_SAMPLE:
            # Large data: seed (and run Lloyd) on a uniform sample, so that
            # initialization needs no n_samples-sized scratch arrays.
            idx = np.unique(rng.randint(0, N, size=_INIT_SAMPLE))
            X, sw = X[idx], (sw[idx] if sw.shape[0] else sw)
            N = X.shape[0]
        if method == "kmeans":
            n_trials = 2 + int(np.log(K))
            u = rng.random_sample(1 + (K - 1) * n_trials)
            nc = _config.n_chunks_for(N)
            seeds = _kmeanspp(X, sw, K, u, n_trials, nc)
            var = _column_variance(X)
            centers, labels, _ = _lloyd(X, sw, X[seeds].astype(np.float64),
                                        300, 1e-4 * var, nc)
            found = np.unique(labels).size
            if found < K:
                warnings.warn(
                    f"Number of distinct clusters ({found}) found smaller than "
                    f"n_clusters ({K}). Possibly due to duplicate points in X.",
                    _convergence_warning_class(), stacklevel=7)
            stats = stats_from_responsibilities(
                X, covariance_type=ct, sample_weight=_none_if_empty(sw),
                ref=centers, labels=labels, n_components=K)
        elif method == "hc":
            rows, labels = initial_partition(X, K, rng)
            if rows is not None:
                X, sw = X[rows], (sw[rows] if sw.shape[0] else sw)
            ref = np.zeros((K, X.shape[1]))
            np.add.at(ref, labels, X)
            ref /= np.maximum(np.bincount(labels, minlength=K), 1)[:, None]
            stats = stats_from_responsibilities(
                X, covariance_type=ct, sample_weight=_none_if_empty(sw),
                ref=ref, labels=labels, n_components=K)
        elif method == "random":
            stats = stats_from_responsibilities(
                X, covariance_type=ct, sample_weight=_none_if_empty(sw),
                n_components=K, random_seed=rng.randint(2 ** 31 - 1))
        else:
            if method == "k-means++":
                n_trials = 2 + int(np.log(K))
                u = rng.random_sample(1 + (K - 1) * n_trials)
                idx = _kmeanspp(X, sw, K, u, n_trials, _config.n_chunks_for(N))
            else:
                idx = _distinct_rows(rng, N, K, sw)
            # Only the K chosen rows carry responsibility: their statistics
            # are those of X[idx] with labels 0..K-1.
            Xi = X[idx]
            stats = stats_from_responsibilities(
                Xi, covariance_type=ct,
                sample_weight=sw[idx] if sw.shape[0] else None,
                ref=Xi.astype(np.float64), labels=np.arange(K),
                n_components=K)
        p = m_step(stats, self.reg_covar)
        if weights is not None:
            p.weights = weights
        if means is not None:
            p.means = means
        if prec is not None:
            p.precisions_cholesky = _chol_from_precisions(prec, ct)
            p.covariances = None
        return p

    def _check_continuable(self, D, how):
        """Raise unless the fitted state can be continued on D features."""
        name = type(self).__name__
        p = self._params
        K0, D0 = p.means.shape
        if D != D0:
            raise ValueError(
                f"X has {D} features, but {name} is expecting {D0} features "
                f"as input: it was fitted with {D0} features, and {how} "
                "continues the previous fit. Use a new estimator (or "
                "warm_start=False) to fit afresh.")
        if K0 != self.n_components or p.covariance_type != self.covariance_type:
            raise ValueError(
                f"{how} continues the previous fit, which has n_components="
                f"{K0} and covariance_type={p.covariance_type!r}, but the "
                f"estimator now has n_components={self.n_components} and "
                f"covariance_type={self.covariance_type!r}. Set them back, or "
                "use a new estimator (or warm_start=False) to fit afresh.")

    def impute(self, X):
        """Fill every NaN of ``X`` with its conditional expectation.

        Each missing entry becomes ``sum_k r_k E[x_m | x_o, k]``, the
        responsibility-weighted conditional mean given the row's observed
        entries under the fitted mixture; observed entries are unchanged.
        Rows with nothing observed get the mixture mean.  Works with either
        ``nan_policy``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        X_imputed : ndarray or pandas.DataFrame of shape (n_samples, n_features)
            float64, a new object; ``X`` is not modified.  A pandas
            DataFrame gives a DataFrame with the same index and columns; any
            other input gives an ndarray.
        """
        self._check_is_fitted()
        name = type(self).__name__
        self._check_feature_names(_feature_names(X))
        Xv = check_array(X, n_features=self.n_features_in_, estimator=name,
                         allow_nan=True)
        out = np.array(Xv, dtype=np.float64)
        nan = np.isnan(Xv)
        if nan.any():
            imp = np.empty(Xv.shape)
            with _config.threads(self.n_threads):
                missing_pass(Xv, np.empty(0), MissingPlan(Xv), self._params,
                             False, imp=imp)
            out[nan] = imp[nan]
        if _is_pandas_frame(X):
            import pandas as pd  # already imported: X is a pandas object

            return pd.DataFrame(out, index=X.index, columns=X.columns)
        return out

    def to_sklearn(self):
        """Convert to ``sklearn.mixture.GaussianMixture`` (needs scikit-learn).

        Returns
        -------
        sklearn.mixture.GaussianMixture
            Same constructor parameters and, when fitted, the same fitted
            attributes: ``predict_proba`` agrees to ~1e-15.
        """
        from fastem.io import to_sklearn

        return to_sklearn(self)

    @classmethod
    def from_sklearn(cls, estimator):
        """Build from a scikit-learn ``GaussianMixture`` (fitted or not).

        Parameters
        ----------
        estimator : sklearn.mixture.GaussianMixture

        Returns
        -------
        GaussianMixture
            Same parameters and fitted attributes.
        """
        from fastem.io import from_sklearn

        return from_sklearn(estimator, cls=cls)

def _init_array(name, value):
    """``value`` as a float array (float32 kept), or a clear error."""
    try:
        arr = np.asarray(value)
        if arr.dtype.kind not in "fiu" or arr.dtype == np.float16:
            arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(
            f"{name} must be an array of numbers, got {_short_repr(value)} "
            f"({str(e).splitlines()[0]}).") from None
    if arr.dtype.kind not in "fiu":
        raise ValueError(
            f"{name} must be an array of numbers, got dtype {arr.dtype}.")
    return arr if arr.dtype == np.float32 else arr.astype(np.float64)


def _observed_columns(X):
    """Which columns of X have at least one observed (non-NaN) entry."""
    return ~np.isnan(X).all(axis=0)


def _check_observed(observed, names):
    """Refuse features with no observed value (nan_policy='marginalize')."""
    empty = np.flatnonzero(~observed)
    if empty.size:
        which = [f"{j} ({names[j]!r})" if names is not None else str(j)
                 for j in empty[:10]]
        raise ValueError(
            f"Feature(s) {', '.join(which)} of X have no observed (non-NaN) "
            "value: their mean and variance cannot be estimated from the data "
            "(fastem would have to invent them). Drop those columns.")


# float32 data whose mean is this many standard deviations from the origin
# (in some column) gets a warning: the E-step computes x - mu in float32, and
# mu itself is rounded to float32, so the covariances carry a relative error
# of about offset/spread * 2**-24 (see the README's bound).
_F32_OFFSET_WARN = 1e3


def _warn_float32_offset(X, rows=1 << 16):
    """Warn when float32 X lies far from the origin relative to its spread."""
    n = X.shape[0]
    mean = np.zeros(X.shape[1])
    cnt = np.zeros(X.shape[1])
    for a in range(0, n, rows):
        blk = X[a:a + rows].astype(np.float64)
        ok = ~np.isnan(blk)
        mean += np.where(ok, blk, 0.0).sum(axis=0)
        cnt += ok.sum(axis=0)
    mean /= np.maximum(cnt, 1)
    ss = np.zeros(X.shape[1])
    for a in range(0, n, rows):
        d = X[a:a + rows].astype(np.float64) - mean
        ss += np.where(np.isnan(d), 0.0, d * d).sum(axis=0)
    std = np.sqrt(ss / np.maximum(cnt, 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(std > 0, np.abs(mean) / std, 0.0)
    j = int(np.argmax(ratio))
    if ratio[j] > _F32_OFFSET_WARN:
        warnings.warn(
            f"float32 X lies far from the origin relative to its spread: "
            f"column {j} has mean {mean[j]:.4g} and standard deviation "
            f"{std[j]:.4g} ({ratio[j]:.3g} standard deviations away). In "
            "float32 the covariances then carry a relative error of about "
            f"up to {ratio[j] * 2.0 ** -24:.1e}. Centre X first (X - "
            "X.mean(axis=0), exact enough in float32) or pass float64 data.",
            UserWarning, stacklevel=4)


def _mean_impute(X):
    """Copy of X with NaN replaced by column means (for initialization)."""
    out = np.array(X, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        col = np.nanmean(out, axis=0)
    col = np.where(np.isfinite(col), col, 0.0)
    idx = np.nonzero(np.isnan(out))
    out[idx] = col[idx[1]]
    return out


def _none_if_empty(sw):
    return sw if sw.shape[0] else None


def _chol_from_precisions(prec, covariance_type):
    """Precision Cholesky factors (upper, scikit-learn's convention)."""
    return COVARIANCE_MODELS[covariance_type].cholesky_of_precisions(prec)


def _is_pandas_frame(X):
    return (type(X).__module__.startswith("pandas")
            and hasattr(X, "columns") and hasattr(X, "index"))


__all__ = ["ConvergenceWarning", "GaussianMixture", "check_random_state"]
