"""The estimator every mixture family gets for free: :class:`MixtureModel`.

A mixture estimator is a family (:mod:`fastem.families`) plus this class:
validation, initialization (k-means, k-means++, random responsibilities,
random rows), the EM loop through :func:`fastem.core.run_em`, in-memory,
chunked (:meth:`MixtureModel.fit_chunks`), online
(:meth:`MixtureModel.partial_fit`) and Dask fitting through
:mod:`fastem.core.sources`, sample weights, ``n_init``, warm start,
prediction, sampling, BIC/AIC and the persistence protocol
(:meth:`MixtureModel.export_state` / :meth:`MixtureModel.import_state`) that
:mod:`fastem.io` saves and loads.  A subclass supplies ``_family()`` and
its constructor; see :class:`fastem.models.poisson.PoissonMixture` (about
60 lines) and CONTRIBUTING.md's worked example.
"""

import numbers
import sys
import warnings
from functools import partial

import numpy as np

from fastem import _config, _dask
from fastem._base import BaseEstimator
from fastem._validation import check_array, check_sample_weight, not_fitted_error
from fastem.core._data import check_magnitude, feature_names
from fastem.core.driver import run_em
from fastem.core.monitor import LowerBoundMonitor
from fastem.core.sources import ArraySource, ChunkSource, DaskSource

__all__ = ["ConvergenceWarning", "MixtureModel", "check_random_state"]

INIT_METHODS = ("kmeans", "k-means++", "random", "random_from_data")
TOL_RULES = ("absolute", "relative")

# Initialization runs on a uniform sample of this many rows when the data is
# larger (bounded memory and time; EM itself uses every row).
INIT_SAMPLE = 500_000


class ConvergenceWarning(UserWarning):
    """EM stopped at ``max_iter`` before the lower bound converged.

    When scikit-learn has been imported in the process, the warning issued is
    also an instance of ``sklearn.exceptions.ConvergenceWarning``.
    """


def convergence_warning_class():
    """:class:`ConvergenceWarning`, also scikit-learn's when it is loaded."""
    sk = sys.modules.get("sklearn.exceptions")
    if sk is not None and hasattr(sk, "ConvergenceWarning"):
        return type("ConvergenceWarning",
                    (ConvergenceWarning, sk.ConvergenceWarning), {})
    return ConvergenceWarning


def check_random_state(seed):
    """Turn ``seed`` (None, int, RandomState or Generator) into a RandomState.

    Parameters
    ----------
    seed : None, int, numpy.random.RandomState or numpy.random.Generator

    Returns
    -------
    numpy.random.RandomState
    """
    if seed is None or seed is np.random:
        return np.random.mtrand._rand
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        if not 0 <= seed < 2 ** 32:
            raise ValueError(
                "random_state must be None, an int in [0, 2**32 - 1], a numpy "
                f"RandomState or Generator; got {seed!r}. Use a non-negative "
                "seed.")
        return np.random.RandomState(seed)
    if isinstance(seed, np.random.RandomState):
        return seed
    if isinstance(seed, np.random.Generator):
        return np.random.RandomState(seed.integers(2 ** 32))
    raise ValueError(
        f"random_state must be None, an int, a numpy RandomState or Generator; "
        f"got {seed!r}.")


def check_int(name, value, low):
    """Raise unless ``value`` is an int >= ``low`` (bool excluded)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int >= {low}, got {value!r} "
                        f"({type(value).__name__}).")
    if value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value}.")


def check_float(name, value, low):
    """Raise unless ``value`` is a finite real >= ``low`` (bool excluded)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a float >= {low}, got {value!r} "
                        f"({type(value).__name__}).")
    if not (value >= low and np.isfinite(value)):
        raise ValueError(f"{name} must be a finite float >= {low}, got {value}.")


def short_repr(value, n=60):
    """``repr(value)`` cut to ``n`` characters, for messages."""
    r = repr(value)
    return r if len(r) <= n else r[:n] + "..."


def mean_loglik(stats):
    """Return the lower bound of ``stats`` (its mean log-likelihood)."""
    return stats.mean_loglik


def checked_stats(family, params, X, w):
    """``family.stats`` after ``family.check_data`` (picklable for Dask)."""
    family.check_data(X, "a chunk of X")
    return family.stats(params, X, w)


def checked_outputs(family, params, X, lse, resp, label):
    """``family.outputs`` after ``family.check_data`` (picklable for Dask)."""
    family.check_data(X)
    return family.outputs(params, X, lse, resp, label)


def distinct_rows(rng, n, k, sw):
    """``k`` distinct row indices, uniform among rows of positive weight."""
    pos = np.flatnonzero(sw) if sw.shape[0] else None
    m = n if pos is None else pos.size
    if m <= INIT_SAMPLE:
        idx = rng.choice(m if pos is None else pos, size=k, replace=False)
        return np.asarray(idx)
    chosen = []
    while len(chosen) < k:  # no permutation of m indices for large m
        j = int(rng.randint(0, m))
        if j not in chosen:
            chosen.append(j)
    idx = np.asarray(chosen)
    return idx if pos is None else pos[idx]


def column_variance(X, rows=1 << 16):
    """Mean per-feature variance of X, in chunks (no copy of X)."""
    n = X.shape[0]
    mean = np.zeros(X.shape[1])
    for a in range(0, n, rows):
        mean += X[a:a + rows].sum(axis=0, dtype=np.float64)
    mean /= n
    ss = np.zeros(X.shape[1])
    for a in range(0, n, rows):
        ss += ((X[a:a + rows] - mean) ** 2).sum(axis=0)
    return float((ss / n).mean())


def kmeans_labels(X, sw, K, rng, seeds_only=False):
    """Weighted k-means++ seeding, then Lloyd's iterations (unless seeds_only).

    Returns ``(labels, seeds)``: the label of every row of ``X`` (None with
    ``seeds_only``) and the indices of the K seed rows.
    """
    from fastem.kernels.kmeans import _kmeanspp, _lloyd

    N = X.shape[0]
    n_trials = 2 + int(np.log(K))
    u = rng.random_sample(1 + (K - 1) * n_trials)
    nc = _config.n_chunks_for(N)
    seeds = _kmeanspp(X, sw, K, u, n_trials, nc)
    if seeds_only:
        return None, seeds
    _, labels, _ = _lloyd(X, sw, X[seeds].astype(np.float64), 300,
                          1e-4 * column_variance(X), nc)
    found = np.unique(labels).size
    if found < K:
        warnings.warn(
            f"Number of distinct clusters ({found}) found smaller than "
            f"n_clusters ({K}). Possibly due to duplicate points in X.",
            convergence_warning_class(), stacklevel=8)
    return labels, seeds


class MixtureModel(BaseEstimator):
    """A finite mixture fitted by EM, generic over its family.

    Subclasses define ``__init__`` (scikit-learn style: store the
    parameters) and ``_family()``, which returns the family object for the
    current parameters.  The constructor parameters this class reads are
    ``n_components``, ``tol``, ``max_iter``, ``n_init``, ``init_params``,
    ``random_state``, ``warm_start``, ``verbose``, ``verbose_interval``,
    ``n_threads``, ``callback`` and ``online_decay``; their meaning is that
    of :class:`fastem.GaussianMixture`.

    Fitted attributes: ``weights_``, the family's own (for example
    ``rates_``), ``converged_``, ``n_iter_``, ``lower_bound_``,
    ``lower_bounds_``, ``n_features_in_`` and ``feature_names_in_``.
    """

    #: The accepted ``init_params``.
    _init_methods = INIT_METHODS


    # ------------------------------------------------------------- hooks
    def _family(self):
        raise NotImplementedError

    def _check_family_parameters(self):
        """Check the family's own constructor parameters (override)."""

    def _init_fields(self, n_features):
        """User-given initial parameters, as family fields (override)."""
        return {}

    def _allow_nan(self):
        return False

    def _prepare_init(self, X):
        # the initialization sample as initialization sees it
        # (GaussianMixture mean-imputes NaN)
        return X

    def _check_source(self, source, names):
        # checks after a chunk source's first pass (override)
        return None

    def _fit_extra(self, params, n_rows):
        # warn about family-specific problems of a fit; return extra fitted
        # attributes (GaussianMixture: degenerate components)
        return {}

    _empty_note = "Consider fewer components."

    # ------------------------------------------------------------ checks
    def check_params(self):
        """Raise a clear error if a constructor parameter is invalid.

        ``fit`` runs the same checks first; this is for callers that build
        a model without fitting it (:func:`fastem.load`, a configuration
        file).

        Raises
        ------
        TypeError, ValueError
            Naming the parameter, what was expected and what was found.
        """
        self._check_parameters()

    def _check_parameters(self):
        check_int("n_components", self.n_components, 1)
        check_float("tol", self.tol, 0.0)
        check_int("max_iter", self.max_iter, 0)
        check_int("n_init", self.n_init, 1)
        if not isinstance(self.init_params, str) or \
                self.init_params not in self._init_methods:
            raise ValueError(
                f"Invalid value for 'init_params': {self.init_params!r}. "
                f"Valid options are {list(self._init_methods)}.")
        check_int("verbose", int(self.verbose) if isinstance(
            self.verbose, (bool, np.bool_)) else self.verbose, 0)
        check_int("verbose_interval", self.verbose_interval, 1)
        rule = getattr(self, "tol_rule", "absolute")
        if not isinstance(rule, str) or rule not in TOL_RULES:
            raise ValueError(
                f"Invalid value for 'tol_rule': {rule!r}. Valid options are "
                f"{list(TOL_RULES)}: 'absolute' (scikit-learn's: the mean "
                "log-likelihood per row changes by less than tol) or "
                "'relative' (mclust's: |change of the total| / (1 + |total|) "
                "< tol).")
        check_random_state(self.random_state)
        _config.validate_threads(self.n_threads)
        if not isinstance(self.warm_start, (bool, np.bool_)):
            raise TypeError(
                f"The 'warm_start' parameter of {type(self).__name__} must be "
                "an instance of 'bool' or an instance of 'numpy.bool'. Got "
                f"{short_repr(self.warm_start)} instead.")
        if isinstance(self.online_decay, bool) or not isinstance(
                self.online_decay, numbers.Real) or not (
                0.5 < self.online_decay <= 1):
            raise ValueError(
                "online_decay must be a float in (0.5, 1], got "
                f"{self.online_decay!r}.")
        if self.callback is not None and not callable(self.callback):
            raise TypeError(
                f"callback must be callable or None, got {self.callback!r}.")
        self._check_family_parameters()

    def _check_is_fitted(self):
        if not hasattr(self, "_params"):
            raise not_fitted_error(type(self).__name__)

    def __sklearn_is_fitted__(self):
        return hasattr(self, "_params")

    def _validate_X(self, X, reset, min_samples=1):
        names = feature_names(X)
        name = type(self).__name__
        if not reset:
            self._check_feature_names(names, stacklevel=5)
        X = check_array(X, n_features=None if reset else self.n_features_in_,
                        estimator=name, min_samples=min_samples,
                        allow_nan=self._allow_nan())
        check_magnitude(X)
        self._family().check_data(X)
        return (X, names) if reset else X

    def _check_feature_names(self, names, stacklevel=3):
        """Warn or raise as scikit-learn does about feature names."""
        name = type(self).__name__
        fitted = getattr(self, "feature_names_in_", None)
        if names is not None and fitted is None:
            warnings.warn(f"X has feature names, but {name} was fitted "
                          "without feature names", UserWarning,
                          stacklevel=stacklevel)
        elif names is None and fitted is not None:
            warnings.warn(f"X does not have valid feature names, but {name} "
                          "was fitted with feature names", UserWarning,
                          stacklevel=stacklevel)
        elif names is not None and not np.array_equal(names, fitted):
            raise ValueError(
                "The feature names should match those that were passed during "
                f"fit. Fitted with {list(fitted)}, got {list(names)}.")

    def _check_rows(self, n_rows):
        K = self.n_components
        if n_rows < max(K, 2):
            raise ValueError(
                f"Expected n_samples >= n_components but got n_components = "
                f"{K}, n_samples = {n_rows}. Use fewer components or more "
                "data.")

    # ----------------------------------------------------------- fitting
    def fit(self, X, y=None, sample_weight=None):
        """Estimate the parameters with the EM algorithm.

        Runs ``n_init`` initializations (one with ``warm_start`` after the
        first fit) of at most ``max_iter`` iterations each and keeps the run
        with the largest final lower bound.  ``X`` may be a dask array or
        DataFrame: its blocks are then processed on the workers.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; a weight of 2 counts a row twice.

        Returns
        -------
        self
        """
        with _config.threads(self.n_threads):
            if _dask.is_dask_collection(X):
                self._fit_dask(X, sample_weight)
            else:
                self._fit(X, sample_weight)
        return self

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit the model and return the label of each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        if _dask.is_dask_collection(X):
            return self.fit(X, sample_weight=sample_weight).predict(X)
        with _config.threads(self.n_threads):
            X = self._fit(X, sample_weight)
        return self._outputs(X, label=True)[2]

    def _fit(self, X, sample_weight):
        self._check_parameters()
        X, names = self._validate_X(X, reset=True, min_samples=2)
        N = X.shape[0]
        sw = check_sample_weight(sample_weight, N)
        self._check_rows(N)
        if sw.shape[0] and np.count_nonzero(sw) < self.n_components:
            raise ValueError(
                f"Only {np.count_nonzero(sw)} rows have a positive "
                f"sample_weight, fewer than n_components = "
                f"{self.n_components}.")
        family = self._family()
        source = ArraySource(X, sw)
        init = []

        def init_fn(rng, given):
            if not init:  # made once, and only when needed
                init.append(self._prepare_init(X))
            return self._initialize(init[0], sw, rng, given)

        self._run_em(lambda p: source.map_sum(partial(family.stats, p)),
                     init_fn, N, X.shape[1], names, dtype=X.dtype)
        return X

    def fit_chunks(self, make_chunks, init_size=100_000):
        """Fit by exact EM on data streamed in chunks (out of core).

        Each EM iteration is one pass over the chunks, adding up their
        statistics; memory is bounded by one chunk plus the initialization
        sample.  From the same initial parameters the iterates equal those
        of :meth:`fit` on the concatenated data, to rounding.

        Parameters
        ----------
        make_chunks : callable
            Returns a fresh iterator over the chunks each time it is called
            (see :mod:`fastem.chunks`).  A chunk is an array (rows,
            n_features) or a tuple ``(X_chunk, sample_weight_chunk)``.
        init_size : int, default=100000
            Rows of the uniform random sample (a reservoir sample drawn in
            one extra pass, seeded by ``random_state``) that the
            initialization runs on.

        Returns
        -------
        self
        """
        source = ChunkSource(make_chunks, allow_nan=self._allow_nan(),
                             estimator=type(self).__name__)
        with _config.threads(self.n_threads):
            self._fit_chunks(source, init_size)
        return self

    def _fit_chunks(self, source, init_size):
        self._check_parameters()
        check_int("init_size", init_size, 1)
        rng = check_random_state(self.random_state)
        # Pass 0: size, features, total weight, observed columns, and a
        # reservoir sample for initialization.
        source.scan(rng, init_size, self._check_rows)
        self._check_source(source, None)
        sample, sw = source.init_sample()
        family = self._family()
        family.check_data(sample, "the chunks")
        X_init = self._prepare_init(sample)
        self._run_em(
            lambda p: source.map_sum(partial(checked_stats, family, p)),
            lambda rng_, given: self._initialize(X_init, sw, rng_, given),
            source.n_rows, source.n_features, None, dtype=source.dtype)

    def _fit_dask(self, X, sample_weight, init_size=100_000):
        """Fit on a dask array or DataFrame (blocks stay on the workers)."""
        self._check_parameters()
        names = feature_names(X)  # a dask DataFrame's columns (no compute)
        source = DaskSource(X, allow_nan=self._allow_nan(),
                            estimator=type(self).__name__)
        self._check_rows(source.n_rows)
        source.set_weights(sample_weight)
        rng = check_random_state(self.random_state)
        # Initialization on a uniform sample of rows, gathered to the
        # client: O(init_size) memory there, never N of anything.
        sample, sw = source.init_sample(rng, init_size)
        family = self._family()
        family.check_data(sample, "X")
        X_init = self._prepare_init(sample)
        self._run_em(
            lambda p: source.map_sum(partial(checked_stats, family, p)),
            lambda rng_, given: self._initialize(X_init, sw, rng_, given),
            source.n_rows, source.n_features, names, rng=rng,
            dtype=source.dtype)

    def partial_fit(self, X, y=None, sample_weight=None):
        """Update the model with one batch by stepwise (online) EM.

        Cappé & Moulines (2009): the running statistics are a decayed
        average, ``S <- (1 - g) S + g s(batch)`` with ``g = (t + 2) **
        -online_decay`` after ``t`` updates, followed by an M-step.  The
        first batch initializes the model.  ``fit`` starts afresh.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            One batch.
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self
        """
        with _config.threads(self.n_threads):
            self._check_parameters()
            first = not hasattr(self, "_params")
            X, names = self._validate_X(X, reset=True)
            sw = check_sample_weight(sample_weight, X.shape[0])
            family = self._family()
            if first:
                if X.shape[0] < self.n_components:
                    raise ValueError(
                        "The first batch initializes the model and needs at "
                        f"least n_components = {self.n_components} rows, got "
                        f"{X.shape[0]}.")
                rng = check_random_state(self.random_state)
                params = self._initialize(self._prepare_init(X), sw, rng,
                                          self._init_fields(X.shape[1]))
                running, t = None, 0
            else:
                self._check_continuable(X.shape[1], "partial_fit")
                params = self._params
                running, t = getattr(self, "_online", None) or (None, 0)
            stats = family.stats(params, X, sw)
            if not stats.weight_sum > 0:
                raise ValueError("The batch has no row with positive weight "
                                 "and at least one observed entry.")
            batch = stats.scale(1.0 / stats.weight_sum)
            fresh = running is None
            if fresh:
                running = batch
            else:
                g = (t + 2.0) ** (-self.online_decay)
                running = running.scale(1.0 - g) + batch.scale(g)
            new = family.m_step(running, params)
            recenter = getattr(family, "recenter", None)
            if recenter is not None:  # e.g. moments kept around the means
                running = recenter(running, new)
            self._commit(new, X.dtype, X.shape[1], names)
            self._online = (running, t + 1)
            self.n_batches_ = t + 1
            self.lower_bound_ = stats.mean_loglik
            history = [] if fresh else self.lower_bounds_
            self.lower_bounds_ = history + [self.lower_bound_]
            self.n_iter_ = t + 1
            self.converged_ = False
        return self

    def _run_em(self, stats_fn, init_fn, n_rows, D, names, rng=None,
                dtype=np.float64):
        """Run :func:`fastem.core.run_em`; commit the best run.

        ``stats_fn(params)`` returns the statistics of all the data under
        ``params`` (one pass of a :mod:`fastem.core.sources` source);
        ``init_fn(rng, given)`` returns initial parameters (``given``: the
        user's initial parameters, :meth:`_init_fields`).  Nothing on
        ``self`` changes before the end, so an exception or Ctrl-C during
        the fit leaves the previous model intact.
        """
        family = self._family()
        given = self._init_fields(D)
        do_init = not (self.warm_start and hasattr(self, "_params"))
        if not do_init:
            self._check_continuable(D, "warm_start=True")
        rng = check_random_state(self.random_state) if rng is None else rng

        def check(lower_bound, n_iter):
            if not np.isfinite(lower_bound):
                raise ValueError(
                    "The log-likelihood became non-finite "
                    f"({lower_bound}) at iteration {n_iter}: the data is "
                    "too far from every component for float64 (values "
                    "too large or too spread out). Rescale X (for "
                    "example standardize each feature).")

        best = run_em(
            lambda rng_: init_fn(rng_, given), stats_fn, family.m_step,
            LowerBoundMonitor(self.tol, self.verbose, self.verbose_interval,
                              rule=getattr(self, "tol_rule", "absolute"),
                              n_rows=n_rows),
            n_init=self.n_init, max_iter=self.max_iter, rng=rng,
            start=None if do_init else self._params,
            start_objective=-np.inf if do_init else self.lower_bound_,
            objective=mean_loglik, check=check, callback=self.callback)
        if not best.converged and self.max_iter > 0:
            warnings.warn(
                "Best performing initialization did not converge. Try "
                "different init parameters, or increase max_iter, tol, or "
                f"check for degenerate data. (Stopped after {self.max_iter} "
                "iterations.)", convergence_warning_class(), stacklevel=4)
        empty = np.flatnonzero(best.params.weights * n_rows < 1e-8)
        if empty.size:
            warnings.warn(
                f"Component(s) {empty.tolist()} ended with (almost) no data "
                f"(weight < 1e-8 / n_samples): {self._empty_note}",
                UserWarning, stacklevel=4)
        extra = self._fit_extra(best.params, n_rows)
        _config.check_interrupt()
        self._commit(best.params, dtype, D, names)
        for key, value in extra.items():
            setattr(self, key, value)
        self.converged_ = best.converged
        self.n_iter_ = best.n_iter
        self.lower_bound_ = np.dtype(dtype).type(best.objective)
        # float64, as the convergence test saw them (float32 would hide the
        # changes below its resolution that tol compares)
        self.lower_bounds_ = [float(b) for b in best.history]
        self._online = None  # a full fit restarts online EM

    def _initialize(self, X, sw, rng, given):
        """Return initial parameters from ``init_params`` and the given fields."""
        family = self._family()
        K = self.n_components
        fields = [f for f in family.FIELDS]
        if given and all(f in given for f in fields):
            return family.from_fields(given)
        N = X.shape[0]
        method = self.init_params
        if N > INIT_SAMPLE:
            idx = np.unique(rng.randint(0, N, size=INIT_SAMPLE))
            X, sw = X[idx], (sw[idx] if sw.shape[0] else sw)
            N = X.shape[0]
        if method == "kmeans":
            labels, _ = kmeans_labels(X, sw, K, rng)
            stats = family.stats_from_labels(X, sw, labels, K)
        elif method == "random":
            resp = rng.uniform(size=(N, K))
            resp /= resp.sum(axis=1, keepdims=True)
            stats = family.stats_from_resp(X, sw, resp)
        else:
            if method == "k-means++":
                _, idx = kmeans_labels(X, sw, K, rng, seeds_only=True)
            else:
                idx = distinct_rows(rng, N, K, sw)
            stats = family.stats_from_labels(
                X[idx], sw[idx] if sw.shape[0] else sw, np.arange(K), K)
        params = family.m_step(stats)
        if given:
            merged = dict(family.to_fields(params))
            merged.update(given)
            params = family.from_fields(merged)
        return params

    def _commit(self, params, dtype, n_features, names):
        """Install fitted parameters and the fitted attributes."""
        family = self._family()
        self._params = params
        self._fit_dtype = np.dtype(dtype)
        self.weights_ = np.asarray(params.weights, dtype=dtype)
        for name, value in family.fitted_attributes(params).items():
            setattr(self, name, np.asarray(value, dtype=dtype))
        self.n_features_in_ = n_features
        if names is not None:
            self.feature_names_in_ = names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_

    def _check_continuable(self, D, how):
        name = type(self).__name__
        family = self._family()
        K0, D0 = family.n_components(self._params), family.n_features(
            self._params)
        if D != D0:
            raise ValueError(
                f"X has {D} features, but {name} is expecting {D0} features "
                f"as input: it was fitted with {D0} features, and {how} "
                "continues the previous fit. Use a new estimator (or "
                "warm_start=False) to fit afresh.")
        if K0 != self.n_components:
            raise ValueError(
                f"{how} continues the previous fit, which has n_components="
                f"{K0}, but the estimator now has n_components="
                f"{self.n_components}. Set it back, or use a new estimator "
                "(or warm_start=False) to fit afresh.")

    # -------------------------------------------------------- prediction
    def _outputs(self, X, lse=False, resp=False, label=False):
        with _config.threads(self.n_threads):
            out = self._family().outputs(self._params, X, lse, resp, label)
        if X.dtype == np.float32:
            out = tuple(o.astype(np.float32) if o is not None and
                        o.dtype == np.float64 else o for o in out)
        return out

    def _predict(self, X, kind):
        self._check_is_fitted()
        if _dask.is_dask_collection(X):
            self._check_feature_names(feature_names(X), stacklevel=5)
            fn = partial(checked_outputs, self._family(), self._params)
            return _dask.outputs(X, fn, self._allow_nan(), kind,
                                 self._family().n_components(self._params),
                                 self.n_features_in_, type(self).__name__)
        X = self._validate_X(X, reset=False)
        out = self._outputs(X, lse=kind == "lse", resp=kind == "resp",
                            label=kind == "label")
        return out[("lse", "resp", "label").index(kind)]

    def score_samples(self, X):
        """Log-likelihood of each row under the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_prob : ndarray of shape (n_samples,)
        """
        return self._predict(X, "lse")

    def score(self, X, y=None):
        """Mean log-likelihood of the rows of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored.

        Returns
        -------
        float
        """
        out = self.score_samples(X)
        if _dask.is_dask_collection(out):
            out = out.mean().compute()
        return float(np.mean(out))

    def predict(self, X):
        """Most probable component of each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        return self._predict(X, "label")

    def predict_proba(self, X):
        """Posterior probability of each component for each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        resp : ndarray of shape (n_samples, n_components)
        """
        return self._predict(X, "resp")

    def sample(self, n_samples=1):
        """Generate random samples from the fitted model.

        Parameters
        ----------
        n_samples : int, default=1

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,)
            Component of each sample.
        """
        self._check_is_fitted()
        if isinstance(n_samples, bool) or not isinstance(
                n_samples, numbers.Integral) or n_samples < 1:
            raise ValueError(
                f"Invalid value for 'n_samples': {n_samples!r}. The sampling "
                "requires at least one sample.")
        from fastem.core._data import check_output_size

        family = self._family()
        check_output_size(n_samples, self.n_features_in_ + 1, "n_samples")
        rng = check_random_state(self.random_state)
        counts = rng.multinomial(n_samples, self._params.weights)
        parts = [family.sample_component(self._params, k, int(n), rng)
                 for k, n in enumerate(counts)]
        y = np.concatenate([np.full(n, k, dtype=int)
                            for k, n in enumerate(counts)])
        return np.vstack(parts), y

    # ----------------------------------------------------- persistence
    def export_state(self):
        """Return the fitted state as plain values (what :func:`fastem.save` writes).

        Returns
        -------
        dict
            ``family`` (its name), ``covariance_type`` (the fitted layout,
            or None), ``params`` (the family's named float64 arrays),
            ``dtype``,
            ``converged``, ``n_iter``, ``lower_bound``, ``lower_bounds``,
            ``n_features_in`` and ``feature_names_in`` (or None).
        """
        self._check_is_fitted()
        names = getattr(self, "feature_names_in_", None)
        family = self._family()
        return {
            "family": family.name,
            "covariance_type": getattr(family, "covariance_type", None),
            "params": {k: np.asarray(v, dtype=np.float64) for k, v in
                       family.to_fields(self._params).items()},
            "dtype": str(self._fit_dtype),
            "converged": bool(self.converged_),
            "n_iter": int(self.n_iter_),
            "lower_bound": float(self.lower_bound_),
            "lower_bounds": [float(b) for b in self.lower_bounds_],
            "n_features_in": int(self.n_features_in_),
            "feature_names_in": None if names is None else
            [str(n) for n in names],
        }

    def import_state(self, state):
        """Install a state from :meth:`export_state` (validated).

        Parameters
        ----------
        state : dict

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Naming what is wrong.
        """
        self._check_parameters()
        family = self._family()
        missing = [f for f in family.FIELDS if f not in state["params"]]
        if missing:
            raise ValueError(f"the parameters lack the field(s) {missing}.")
        params = family.from_fields(state["params"])
        K, D = family.n_components(params), family.n_features(params)
        if K != self.n_components:
            raise ValueError(
                f"the parameters have {K} components but n_components is "
                f"{self.n_components}.")
        if state["n_features_in"] != D:
            raise ValueError(
                f"n_features_in is {state['n_features_in']} but the "
                f"parameters have {D} features.")
        names = state.get("feature_names_in")
        if names is not None and len(names) != D:
            raise ValueError(f"feature_names_in has {len(names)} names for "
                             f"{D} features.")
        dtype = np.dtype(state.get("dtype", "float64"))
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {dtype}.")
        self._commit(params, dtype, D, None if names is None else
                     np.asarray(names, dtype=object))
        self.converged_ = bool(state["converged"])
        self.n_iter_ = int(state["n_iter"])
        self.lower_bound_ = dtype.type(state["lower_bound"])
        self.lower_bounds_ = [float(b) for b in state["lower_bounds"]]
        return self

    def save(self, path, metadata=None):
        """Save the model to a versioned JSON file (see :mod:`fastem.io`).

        Parameters
        ----------
        path : str or os.PathLike
        metadata : dict, optional
            JSON-serializable extra information stored with the model.

        Returns
        -------
        str
            The path written.
        """
        from fastem.io import save

        return save(self, path, metadata)

    @classmethod
    def load(cls, path):
        """Load a model written by :meth:`save` (same as ``fastem.load``).

        Parameters
        ----------
        path : str or os.PathLike

        Returns
        -------
        MixtureModel
        """
        from fastem.io import load

        return load(path, cls=cls)

    # -------------------------------------------------- model selection
    def n_parameters(self):
        """Free parameters of the fitted model (for BIC and AIC).

        Returns
        -------
        int
        """
        self._check_is_fitted()
        return self._family().n_parameters(self._params)

    def _n_parameters(self):
        # scikit-learn's private name, which its own tests and users call
        return self.n_parameters()

    def bic(self, X):
        """Bayesian information criterion for ``X`` (lower is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        float
        """
        n = np.shape(X)[0]
        return float(-2 * self.score(X) * n + self.n_parameters() * np.log(n))

    def aic(self, X):
        """Akaike information criterion for ``X`` (lower is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        float
        """
        return float(-2 * self.score(X) * np.shape(X)[0]
                     + 2 * self.n_parameters())
