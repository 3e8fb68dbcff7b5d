"""BayesianGaussianMixture, a drop-in replacement for scikit-learn's.

Variational inference for a Gaussian mixture with a Dirichlet-process or
Dirichlet-distribution prior on the weights and Gaussian-Wishart priors on
the components (:mod:`fastem.families.bayesian`), on the fused Gaussian
E-step kernel, through :class:`~fastem.models.base.MixtureModel`: in-memory,
chunked, online and Dask fitting, sample weights, float32, threads and
save/load come from the core.
"""

import numbers

import numpy as np

from fastem.core.sources import ArraySource
from fastem.families.bayesian import (
    PRIOR_PASS,
    PRIOR_TYPES,
    BayesianFamily,
    Priors,
    moments_mean_cov,
)
from fastem.families.gaussian import COVARIANCE_TYPES
from fastem.models.base import (
    INIT_SAMPLE,
    MixtureModel,
    check_float,
    distinct_rows,
    short_repr,
)
from fastem.selection import EFFECTIVE_WEIGHT  # what select reports with

__all__ = ["BayesianGaussianMixture", "effective_components"]


def effective_components(weights, threshold=EFFECTIVE_WEIGHT):
    """Count the components whose weight exceeds ``threshold``.

    A variational fit empties the components the data does not need: their
    expected weight falls to about ``weight_concentration_prior / n``.  A
    component with more than ``threshold`` (default 1%) of the weight is
    counted as effective.

    Parameters
    ----------
    weights : array-like of shape (n_components,)
    threshold : float, default=0.01

    Returns
    -------
    int
    """
    return int(np.count_nonzero(np.asarray(weights) > threshold))


def _positive_or_none(name, value):
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
            not (value > 0 and np.isfinite(value)):
        raise ValueError(
            f"The '{name}' parameter of BayesianGaussianMixture must be None "
            f"or a float in the range (0.0, inf). Got {short_repr(value)} "
            "instead.")


def _prior_array(name, value, shape, what):
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an array of numbers, got "
                         f"{short_repr(value)}.") from None
    if a.shape != shape:
        raise ValueError(
            f"The parameter '{what}' should have the shape of {shape}, but "
            f"got {a.shape} ({name} for {shape[0] if shape else 1} "
            "features).")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinite values.")
    return a


class BayesianGaussianMixture(MixtureModel):
    """Variational Bayesian Gaussian mixture, compatible with scikit-learn's.

    Same parameters, defaults, methods and fitted attributes as
    ``sklearn.mixture.BayesianGaussianMixture`` (the same updates and the
    same lower bound); in addition ``fit`` takes ``sample_weight`` (a
    weight of 2 counts a row twice) and the model has
    :meth:`fit_chunks`, :meth:`partial_fit`, Dask input, ``lower_bounds_``,
    float32 and :meth:`save`.  Each iteration is one parallel pass of the
    Gaussian E-step kernel over ``X``, with the variational constants.

    Parameters
    ----------
    n_components : int, default=1
        Maximum number of components; the fit can leave some of them
        (almost) empty (see ``weights_`` and :func:`effective_components`).
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
    tol : float, default=1e-3
        Convergence threshold on the change of the lower bound (the ELBO of
        the whole data, as scikit-learn's).
    reg_covar : float, default=1e-6
    max_iter : int, default=100
    n_init : int, default=1
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, \
default='kmeans'
        As :class:`fastem.GaussianMixture` (fastem's own k-means; 'random'
        and 'random_from_data' draw what scikit-learn draws).
    weight_concentration_prior_type : {'dirichlet_process', \
'dirichlet_distribution'}, default='dirichlet_process'
    weight_concentration_prior : float or None, default=None
        ``1 / n_components`` when None.
    mean_precision_prior : float or None, default=None
        1 when None.
    mean_prior : array-like of shape (n_features,), default=None
        The mean of ``X`` when None.
    degrees_of_freedom_prior : float or None, default=None
        ``n_features`` when None; must be greater than ``n_features - 1``.
    covariance_prior : float or array-like, default=None
        The covariance of ``X`` (``ddof=1``) in the layout's shape when None:
        (D, D) full and tied, (D,) diag, float spherical.
    random_state : int, RandomState instance or None, default=None
    warm_start : bool, default=False
    verbose : int, default=0
    verbose_interval : int, default=10
    n_threads : int or None, default=None
        Threads for the compiled kernels (fastem addition); results do not
        depend on it.
    callback : callable or None, default=None
        ``callback(n_iter, lower_bound)`` after every iteration (fastem
        addition); True stops the current initialization.
    nan_policy : {'raise', 'marginalize'}, default='raise'
        What NaN entries mean (fastem addition): rejected, or missing at
        random and integrated out (see Notes).  Rows with every entry
        missing are ignored by ``fit``.
    online_decay : float in (0.5, 1], default=0.6
        Step-size exponent of :meth:`partial_fit` (fastem addition).

    Attributes
    ----------
    weights_, means_, covariances_, precisions_, precisions_cholesky_
    weight_concentration_ : tuple of two ndarray or ndarray
        Beta parameters (Dirichlet process) or Dirichlet parameters.
    mean_precision_, degrees_of_freedom_ : ndarray
    weight_concentration_prior_, mean_precision_prior_, mean_prior_, \
degrees_of_freedom_prior_, covariance_prior_
        The priors used.
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        The lower bound (ELBO) of the best run's last iteration.
    lower_bounds_ : list of float
        The lower bound of every iteration of the best run.
    n_features_in_ : int
    feature_names_in_ : ndarray of str

    Notes
    -----
    With ``covariance_type='tied'`` and hard seed responsibilities
    (``init_params='random_from_data'`` or ``'k-means++'``) the initial
    covariance differs from scikit-learn's: scikit-learn's tied estimate
    sums ``X^T X`` over every row while dividing by the seed rows' weight
    (its formula assumes that each row's responsibilities sum to one);
    fastem uses the seed rows' own scatter.

    With ``nan_policy='marginalize'`` a row's missing entries get their own
    variational factor given its component, ``q(x_m | z)`` (the Gaussian
    conditional, see :func:`fastem.families.bayesian._missing`); the
    E-step is the missing-data pass with the variational constants, the
    M-step uses the expected statistics, and the lower bound includes the
    entropy of ``q(x_m | z)``.  The default priors are then the observed
    column means and, when some entries are missing, a diagonal
    covariance prior of the observed column variances (the complete-data
    default when none is).  With sample weights the default priors are the
    weighted mean and the weighted covariance over ``sum(w) - 1``, so that a
    weight of 2 equals repeating the row.

    Examples
    --------
    >>> import numpy as np
    >>> from fastem import BayesianGaussianMixture
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [4, 2], [12, 4], [10, 7]])
    >>> bgm = BayesianGaussianMixture(n_components=2, random_state=42,
    ...                               init_params="random_from_data").fit(X)
    >>> bgm.predict([[0, 0], [9, 3]])
    array([0, 1])
    """

    def __init__(self, n_components=1, *, covariance_type="full", tol=1e-3,
                 reg_covar=1e-6, max_iter=100, n_init=1, init_params="kmeans",
                 weight_concentration_prior_type="dirichlet_process",
                 weight_concentration_prior=None, mean_precision_prior=None,
                 mean_prior=None, degrees_of_freedom_prior=None,
                 covariance_prior=None, random_state=None, warm_start=False,
                 verbose=0, verbose_interval=10, n_threads=None,
                 callback=None, nan_policy="raise", online_decay=0.6):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weight_concentration_prior_type = weight_concentration_prior_type
        self.weight_concentration_prior = weight_concentration_prior
        self.mean_precision_prior = mean_precision_prior
        self.mean_prior = mean_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.covariance_prior = covariance_prior
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.n_threads = n_threads
        self.callback = callback
        self.nan_policy = nan_policy
        self.online_decay = online_decay

    # ------------------------------------------------------------ checks
    def _check_family_parameters(self):
        if not isinstance(self.covariance_type, str) or \
                self.covariance_type not in COVARIANCE_TYPES:
            raise ValueError(
                f"Invalid value for 'covariance_type': "
                f"{self.covariance_type!r}. Valid options are "
                f"{list(COVARIANCE_TYPES)}.")
        if not isinstance(self.weight_concentration_prior_type, str) or \
                self.weight_concentration_prior_type not in PRIOR_TYPES:
            raise ValueError(
                "Invalid value for 'weight_concentration_prior_type': "
                f"{short_repr(self.weight_concentration_prior_type)}. Valid "
                f"options are {list(PRIOR_TYPES)}.")
        check_float("reg_covar", self.reg_covar, 0.0)
        if not isinstance(self.nan_policy, str) or \
                self.nan_policy not in ("raise", "marginalize"):
            raise ValueError(
                f"Invalid value for 'nan_policy': {short_repr(self.nan_policy)}"
                ". Valid options are ['raise', 'marginalize'].")
        for name in ("weight_concentration_prior", "mean_precision_prior",
                     "degrees_of_freedom_prior"):
            _positive_or_none(name, getattr(self, name))
        cp = self.covariance_prior
        if isinstance(cp, numbers.Real) and not isinstance(cp, bool):
            _positive_or_none("covariance_prior", cp)
        elif isinstance(cp, (bool, str)):
            raise ValueError(
                "The 'covariance_prior' parameter of BayesianGaussianMixture "
                "must be None, an array-like or a float in the range (0.0, "
                f"inf). Got {short_repr(cp)} instead.")

    def _check_parameters(self, X=None):
        # scikit-learn's private ``_check_parameters(X)`` (its tests call it)
        # also sets the data-dependent priors; ``fit`` computes them itself
        super()._check_parameters()
        if X is not None:
            Xc = self._validate_X(X, reset=True, min_samples=2)[0]
            self._fit_priors = self._priors_of(ArraySource(Xc))

    def _initialize_parameters(self, X, random_state):
        """scikit-learn's private initialization (its tests call it).

        After ``_check_parameters(X)``: initialize as ``fit`` does, with
        ``init_params`` and ``random_state``, and install the result.
        """
        from fastem.models.base import check_random_state

        if self.__dict__.get("_fit_priors") is None:
            self._check_parameters(X)
        Xc = self._validate_X(X, reset=True, min_samples=2)[0]
        params = self._initialize(Xc, np.empty(0),
                                  check_random_state(random_state), {})
        self._fit_priors = None
        self._commit(params, Xc.dtype, Xc.shape[1], None)

    def _initialize(self, X, sw, rng, given):
        # 'random_from_data' needs K rows, not the base's subsample of
        # INIT_SAMPLE rows first (which costs ~30 MiB on 20M rows)
        if self.init_params != "random_from_data" or X.shape[0] <= \
                INIT_SAMPLE:
            return super()._initialize(X, sw, rng, given)
        family = self._family()
        K = self.n_components
        idx = distinct_rows(rng, X.shape[0], K, sw)
        stats = family.stats_from_labels(
            X[idx], sw[idx] if sw.shape[0] else sw, np.arange(K), K)
        return family.m_step(stats)

    def _priors_of(self, source):
        moments = source.map_sum(
            lambda a, b: self._family().stats(PRIOR_PASS, a, b))
        return self._make_priors(moments, source.n_features,
                                 moments.weight_sum, moments.n_samples)

    def _make_priors(self, moments, D, total_weight, n_rows):
        """Return the priors of a fit on data whose moments are ``moments``."""
        K = self.n_components
        ct = self.covariance_type
        mean, cov = moments_mean_cov(moments)
        wcp = (1.0 / K if self.weight_concentration_prior is None
               else float(self.weight_concentration_prior))
        mpp = (1.0 if self.mean_precision_prior is None
               else float(self.mean_precision_prior))
        if self.mean_prior is None:
            mp = mean
        else:
            mp = _prior_array("mean_prior", self.mean_prior, (D,), "means")
        if self.degrees_of_freedom_prior is None:
            dof = float(D)
        elif self.degrees_of_freedom_prior > D - 1.0:
            dof = float(self.degrees_of_freedom_prior)
        else:
            raise ValueError(
                "The parameter 'degrees_of_freedom_prior' should be greater "
                f"than {D - 1}, but got {self.degrees_of_freedom_prior:.3f}. "
                f"(With {D} features it must exceed n_features - 1 = "
                f"{D - 1}.)")
        cp = self.covariance_prior
        if cp is None:
            var = np.diag(cov).copy()
            cp = {"full": cov, "tied": cov, "diag": var,
                  "spherical": float(var.mean())}[ct]
        elif ct in ("full", "tied"):
            cp = _prior_array("covariance_prior", cp, (D, D),
                              f"{ct} covariance_prior")
            if not (np.allclose(cp, cp.T) and
                    np.linalg.eigvalsh(cp).min() > 0):
                raise ValueError(
                    f"'{ct} covariance_prior' should be symmetric, "
                    "positive-definite. Pass a symmetric positive-definite "
                    "(n_features, n_features) matrix.")
        elif ct == "diag":
            cp = _prior_array("covariance_prior", cp, (D,),
                              "diag covariance_prior")
            if cp.min() <= 0:
                raise ValueError(
                    "'diag covariance_prior' should be positive, got min "
                    f"{cp.min():g}.")
        else:
            if isinstance(cp, bool) or not isinstance(cp, numbers.Real):
                raise ValueError(
                    "covariance_prior must be a positive float for "
                    f"covariance_type='spherical', got {short_repr(cp)}.")
            cp = float(cp)
        if self.covariance_prior is None and not np.all(np.isfinite(cp)):
            raise ValueError(
                "The default covariance_prior (the covariance of X) is not "
                "finite: every column of X needs at least two observed "
                "values of positive weight. Pass covariance_prior, or drop "
                "the columns without data.")
        return Priors(ct, self.weight_concentration_prior_type, K, wcp, mpp,
                      np.asarray(mp, dtype=np.float64), dof, cp,
                      float(self.reg_covar), float(total_weight), int(n_rows))

    # ------------------------------------------------------------- hooks
    def _family(self, online_weight=None):
        priors = self.__dict__.get("_fit_priors")
        if priors is None and hasattr(self, "_params"):
            priors = self._params.priors
        return BayesianFamily(priors, self.covariance_type,
                              online_weight or self.__dict__.get(
                                  "_online_weight"), self._allow_nan())

    def _allow_nan(self):
        return getattr(self, "nan_policy", "raise") == "marginalize"

    def _prepare_init(self, X):
        # initialization sees a mean-imputed copy; the passes are exact
        # (without nan_policy='marginalize' X was checked finite: no scan)
        if self._allow_nan() and np.isnan(X).any():
            from fastem.models.mixture import _mean_impute

            return _mean_impute(X)
        return X

    def _check_source(self, source, names):
        from fastem.models.mixture import _check_observed

        observed = getattr(source, "observed", None)
        if observed is not None:
            _check_observed(observed, names)

    _empty_note = ("the variational fit left it unused (see "
                   "effective_components).")

    def _run_em(self, stats_fn, init_fn, n_rows, D, names, rng=None,
                dtype=np.float64):
        # One more pass first: the data's mean and covariance (the default
        # priors), through the same source as the EM passes.
        moments = stats_fn(PRIOR_PASS)
        priors = self._make_priors(moments, D, moments.weight_sum,
                                   moments.n_samples)
        old = self.__dict__.get("_fit_priors")
        self._fit_priors = priors
        try:
            family = self._family()

            def vb_stats(params):
                stats = stats_fn(params)
                stats.family = family  # the lower bound of these priors
                return stats

            super()._run_em(vb_stats, init_fn, n_rows, D, names, rng=rng,
                            dtype=dtype)
        finally:
            self._fit_priors = old

    def _commit(self, params, dtype, n_features, names):
        super()._commit(params, dtype, n_features, names)
        pr = params.priors
        wc = np.asarray(params.weight_concentration, dtype=dtype)
        self.weight_concentration_ = (
            (wc[0], wc[1]) if pr.prior_type == "dirichlet_process" else wc)
        nu = np.asarray(params.degrees_of_freedom, dtype=dtype)
        self.degrees_of_freedom_ = nu[0] if pr.covariance_type == "tied" \
            else nu
        self.weight_concentration_prior_ = pr.weight_concentration_prior
        self.mean_precision_prior_ = pr.mean_precision_prior
        self.mean_prior_ = np.asarray(pr.mean_prior, dtype=dtype)
        self.degrees_of_freedom_prior_ = pr.degrees_of_freedom_prior
        self.covariance_prior_ = (pr.covariance_prior
                                  if pr.covariance_type == "spherical" else
                                  np.asarray(pr.covariance_prior,
                                             dtype=dtype))

    def _check_continuable(self, D, how):
        super()._check_continuable(D, how)
        ct = self._params.covariance_type
        if ct != self.covariance_type or (
                self._params.priors.prior_type
                != self.weight_concentration_prior_type):
            raise ValueError(
                f"{how} continues the previous fit, which has covariance_type"
                f"={ct!r} and weight_concentration_prior_type="
                f"{self._params.priors.prior_type!r}; set them back, or use a "
                "new estimator (or warm_start=False) to fit afresh.")

    def partial_fit(self, X, y=None, sample_weight=None):
        """Update the model with one batch (stepwise variational EM).

        The running statistics are a decayed average of the batches'
        per-row statistics (:meth:`MixtureModel.partial_fit`); the M-step
        applies the priors to them scaled to the size of the latest batch
        (a batch of the running average's composition), so that the prior's
        weight is the one of a fit on one batch.  The first batch
        initializes the model and sets the data-dependent priors.
        ``lower_bound_`` is the lower bound of a fit on the batch alone.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self
        """
        from fastem._validation import check_array, check_sample_weight

        self._check_parameters()
        Xc = check_array(X, estimator=type(self).__name__, min_samples=1)
        w = check_sample_weight(sample_weight, Xc.shape[0])
        total = float(w.sum()) if w.shape[0] else float(Xc.shape[0])
        fresh = not hasattr(self, "_params")
        old = self.__dict__.get("_fit_priors")
        if fresh:
            if Xc.shape[0] < 2:
                raise ValueError(
                    "The first batch initializes the model and its priors "
                    "and needs at least 2 rows, got "
                    f"{Xc.shape[0]}.")
            self._fit_priors = self._priors_of(ArraySource(Xc, w))
        self._online_weight = total
        try:
            super().partial_fit(X, y, sample_weight)
        finally:
            self._online_weight = None
            self._fit_priors = old
        return self


__all__ += ["EFFECTIVE_WEIGHT"]
