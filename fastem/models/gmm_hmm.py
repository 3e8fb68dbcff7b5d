"""GMMHMM: a hidden Markov model with Gaussian-mixture emissions, hmmlearn-compatible.

An HMM emission plug-in (see :mod:`fastem.models.hmm_base` for the
interface, :mod:`fastem.models.poisson_hmm` for the worked example): each
state emits from a mixture of ``n_mix`` Gaussians.  This module is the
emission -- its parameters ``weights_`` (K, M), ``means_`` (K, M, D) and
``covars_`` (hmmlearn's shapes per covariance type; the ``'w'``, ``'m'``,
``'c'`` letters of ``params`` / ``init_params``), hmmlearn's priors and
M-step, its k-means initialization, the checks, sampling and the saved
fields.  Two kernels do the work (:mod:`fastem.kernels.emissions`):
:func:`~fastem.kernels.emissions.gmm_log_emissions`, the (N, K) lattice
``log sum_m w_km N(x | mu_km, Sigma_km)``, and
:func:`~fastem.kernels.emissions.gmm_weighted_stats`, which turns the state
posteriors into the per-component sums (posterior totals, weighted sums of
x, weighted squares or outer products about the E-step's means) in one pass,
without an (N, K, M) array.  Everything else -- transitions, ``fit`` /
``fit_chunks`` / Dask / ``partial_fit``, ``score`` / ``predict_proba`` /
``decode``, ``sample``, ``save`` / ``load`` -- is
:class:`~fastem.models.hmm_base.BaseHMM`'s.
"""

import numbers
import warnings
from dataclasses import dataclass

import numpy as np

from fastem import _config
from fastem.kernels.emissions import gmm_log_emissions, gmm_weighted_stats
from fastem.kernels.hmm import LATTICE
from fastem.kernels.kmeans import _kmeanspp, _lloyd
from fastem.models.hmm_base import BaseHMM, _float_array

__all__ = ["GMMHMM"]

COVARIANCE_TYPES = ("spherical", "diag", "full", "tied")
_LOG_2PI = float(np.log(2 * np.pi))


# ------------------------------------------------------------- statistics
@dataclass
class GMMStats:
    """Additive statistics of the Gaussian-mixture emission.

    Attributes
    ----------
    post : ndarray of shape (n_components,)
        State posteriors summed over rows.
    nk : ndarray of shape (n_components, n_mix)
        Component posteriors summed over rows.
    sums : ndarray of shape (n_components, n_mix, n_features)
        Component-posterior-weighted sums of the rows.
    scatter : ndarray
        Weighted squares (n_components, n_mix, n_features) for the diagonal
        types, or outer products (n_components, n_mix, n_features,
        n_features) for 'full' and 'tied', of the rows about ``ref``.
    ref : ndarray of shape (n_components, n_mix, n_features)
        The point the scatter is taken about (the E-step's means, as
        hmmlearn's statistics).  Statistics about different references are
        added after re-centring the right operand (:meth:`shift`).
    """

    post: np.ndarray
    nk: np.ndarray
    sums: np.ndarray
    scatter: np.ndarray
    ref: np.ndarray

    def __add__(self, other):
        if other is None:
            return self
        if not isinstance(other, GMMStats):
            return NotImplemented
        if other.scatter.shape != self.scatter.shape:
            raise ValueError(
                "cannot add GMMHMM statistics of different shapes: "
                f"{self.scatter.shape} and {other.scatter.shape}.")
        if not np.array_equal(other.ref, self.ref):
            other = other.shift(self.ref)
        return GMMStats(self.post + other.post, self.nk + other.nk,
                        self.sums + other.sums,
                        self.scatter + other.scatter, self.ref)

    __radd__ = __add__

    def scale(self, factor):
        """Return the statistics multiplied by ``factor``.

        Parameters
        ----------
        factor : float

        Returns
        -------
        GMMStats
        """
        f = float(factor)
        return GMMStats(self.post * f, self.nk * f, self.sums * f,
                        self.scatter * f, self.ref)

    def shift(self, new_ref):
        """Return the same statistics with the scatter about ``new_ref``.

        Exact algebra: with ``u = sums - nk ref`` and ``d = ref - new_ref``,
        the scatter about ``new_ref`` is ``S + u d^T + d u^T + nk d d^T``.

        Parameters
        ----------
        new_ref : ndarray of shape (n_components, n_mix, n_features)

        Returns
        -------
        GMMStats
        """
        new_ref = np.array(new_ref, dtype=np.float64)
        n = self.nk[..., None]
        u = self.sums - n * self.ref
        d = self.ref - new_ref
        if self.scatter.ndim == 4:
            ud = u[..., :, None] * d[..., None, :]
            sc = (self.scatter + ud + np.swapaxes(ud, -1, -2)
                  + n[..., None] * d[..., :, None] * d[..., None, :])
        else:
            sc = self.scatter + 2 * u * d + n * d * d
        return GMMStats(self.post, self.nk, self.sums, sc, new_ref)


def _log_emissions(emission, X):
    """(N, K) log-densities under ``emission`` (picklable)."""
    means, prec, logc, M, full, _ = emission
    return gmm_log_emissions(X, means, prec, logc, M, full,
                             _config.n_chunks_for(X.shape[0]))


def _emission_stats(emission, X, gamma):
    """Component statistics from the state posteriors ``gamma`` (picklable)."""
    means, prec, logc, M, full, shape = emission
    post, nk, sums, scat = gmm_weighted_stats(
        X, np.ascontiguousarray(gamma), means, prec, logc, means, M, full,
        _config.n_chunks_for(X.shape[0]))
    K, _, D = shape
    return GMMStats(post, nk.reshape(K, M), sums.reshape(K, M, D),
                    scat.reshape((K, M) + scat.shape[1:]),
                    means.reshape(K, M, D).copy())


def _kmeans(X, n, rng):
    """``n`` k-means centres of ``X`` (k-means++ seeds, then Lloyd)."""
    N = X.shape[0]
    n_trials = 2 + int(np.log(n))
    u = rng.random_sample(1 + (n - 1) * n_trials)
    nc = _config.n_chunks_for(N)
    sw = np.empty(0)
    seeds = _kmeanspp(X, sw, n, u, n_trials, nc)
    _config.check_interrupt()
    var = X.var(axis=0, dtype=np.float64).mean()
    centers, labels, _ = _lloyd(X, sw, X[seeds].astype(np.float64), 300,
                                1e-4 * var, nc)
    _config.check_interrupt()
    return centers, labels


def _full_covars(covars, covariance_type, K, M, D):
    """Return hmmlearn's covars_ as (K, M, D, D) matrices."""
    if covariance_type == "full":
        return np.asarray(covars)
    if covariance_type == "tied":
        return np.broadcast_to(np.asarray(covars)[:, None], (K, M, D, D))
    if covariance_type == "diag":
        return np.asarray(covars)[..., None] * np.eye(D)
    return np.asarray(covars)[..., None, None] * np.eye(D)


# --------------------------------------------------------------- estimator
class GMMHMM(BaseHMM):
    """Hidden Markov model with Gaussian-mixture emissions, a drop-in for hmmlearn's.

    Same constructor arguments, defaults, methods and fitted attributes as
    ``hmmlearn.hmm.GMMHMM`` (0.3): in state ``k`` an observation is drawn
    from ``sum_m weights_[k, m] N(means_[k, m], Sigma_km)``.  From identical
    starting parameters the log-likelihood of every iteration, the fitted
    parameters and the Viterbi paths agree with hmmlearn's (tested to 1e-8
    relative, every covariance type).

    Parameters
    ----------
    n_components : int, default=1
        Number of hidden states.
    n_mix : int, default=1
        Number of Gaussians in each state's mixture.
    min_covar : float, default=1e-3
        Added to the diagonal of the data covariance the covariances are
        initialized from (as in hmmlearn, not used by the M-step).
    startprob_prior : float or array-like of shape (n_components,), default=1.0
        Dirichlet prior of :attr:`startprob_`.
    transmat_prior : float or array-like of shape (n_components, n_components), \
default=1.0
        Dirichlet prior of each row of :attr:`transmat_`.
    weights_prior : float or array-like, default=1.0
        Dirichlet prior of each state's :attr:`weights_`, broadcast to
        (n_components, n_mix).
    means_prior, means_weight : float or array-like, default=0.0
        Mean and precision of the normal prior of :attr:`means_`, broadcast
        to (n_components, n_mix, n_features) and (n_components, n_mix).
    covars_prior, covars_weight : float or array-like, optional
        Prior of :attr:`covars_` (inverse gamma for 'spherical' and 'diag',
        inverse Wishart for 'full' and 'tied'), broadcast as hmmlearn does.
        Default (None): hmmlearn's, 0 and ``-(2 + n_features)`` for 'full',
        0 and ``-(n_mix + n_features + 1)`` for 'tied', -1.5 and 0 for
        'diag', ``-(n_mix + 2) / 2`` and 0 for 'spherical' (no prior).
    algorithm : {'viterbi', 'map'}, default='viterbi'
        Decoder of :meth:`predict` / :meth:`decode`.
    covariance_type : {'spherical', 'diag', 'full', 'tied'}, default='diag'
        'tied' shares one full covariance among the mixtures of each state
        (not among the states), as in hmmlearn.
    random_state : int, RandomState instance or None, default=None
        Seed of the initialization and default seed of :meth:`sample`.
    n_iter : int, default=10
        Maximum number of EM iterations.
    tol : float, default=1e-2
        Convergence threshold on the gain in log-likelihood.
    verbose : bool, default=False
        Print the log-likelihood of every iteration to :data:`sys.stderr`.
    params : str, default='stmcw'
        Parameters updated by ``fit``: any of 's' (startprob), 't'
        (transmat), 'm' (means), 'c' (covars), 'w' (weights).
    init_params : str, default='stmcw'
        Parameters initialized by ``fit``: random Dirichlet draws for 's' and
        't'; uniform weights; means by k-means into ``n_components``
        clusters, then k-means of each cluster into ``n_mix`` (a cluster of
        fewer than ``n_mix`` rows draws its means around the data centre);
        covariances from the data covariance plus ``min_covar``, as
        hmmlearn.  A parameter not listed keeps the value you set (and is
        initialized only if it has none).
    implementation : {'log', 'scaling'}, default='log'
        Accepted for compatibility (see :class:`~fastem.GaussianHMM`).
    n_threads : int or None, default=None
        Threads for the compiled kernels (fastem addition).
    online_decay : float in (0.5, 1], default=0.6
        Step-size exponent of :meth:`partial_fit` (fastem addition).

    Attributes
    ----------
    startprob_ : ndarray of shape (n_components,)
    transmat_ : ndarray of shape (n_components, n_components)
    weights_ : ndarray of shape (n_components, n_mix)
    means_ : ndarray of shape (n_components, n_mix, n_features)
    covars_ : ndarray
        (n_components, n_mix) 'spherical', (n_components, n_mix,
        n_features) 'diag', (n_components, n_mix, n_features, n_features)
        'full', (n_components, n_features, n_features) 'tied'.
    monitor_ : ConvergenceMonitor
    n_features : int
        Also ``n_features_in_``.

    Notes
    -----
    Deviations from hmmlearn 0.3.3: the k-means of the initialization is
    fastem's (one k-means++ run, not scikit-learn's ``KMeans(n_init=10)``),
    so with the same seed the starting means differ (set them and leave 'm'
    out of ``init_params`` to start where hmmlearn does); a mixture
    component with no posterior weight keeps its previous mean and
    covariance with a warning (hmmlearn's become 0 and NaN); a covariance
    that is not positive definite (a zero variance included) is an error
    naming the state and mixture, also when the M-step produces it.  As
    hmmlearn, the covariance M-step takes the scatter about the previous
    means, and the parameter count (:meth:`n_parameters`, for AIC/BIC)
    counts ``n_mix - 1`` weights in all (hmmlearn's count).
    ``save`` writes ``"format": "fastem.GMMHMM"`` (JSON, exact floats).
    """

    _EMISSION_PARAMS = {"w": "weights_", "m": "means_", "c": "covars_"}
    _LETTER_NAMES = {"w": "weights", "m": "means", "c": "covars"}
    _FEATURES_ATTR = "means_"
    _STATE_FIELDS = ("weights", "means", "covars")
    _NAN_HINT = ("and shorten the lengths of their sequences to match "
                 "(GMMHMM does not accept missing values)")
    _STRING_PARAMS = BaseHMM._STRING_PARAMS + (
        ("covariance_type", list(COVARIANCE_TYPES)),)

    def __init__(self, n_components=1, n_mix=1, min_covar=1e-3,
                 startprob_prior=1.0, transmat_prior=1.0, weights_prior=1.0,
                 means_prior=0.0, means_weight=0.0, covars_prior=None,
                 covars_weight=None, algorithm="viterbi",
                 covariance_type="diag", random_state=None, n_iter=10,
                 tol=1e-2, verbose=False, params="stmcw",
                 init_params="stmcw", implementation="log", n_threads=None,
                 online_decay=0.6):
        self.n_components = n_components
        self.n_mix = n_mix
        self.min_covar = min_covar
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.weights_prior = weights_prior
        self.means_prior = means_prior
        self.means_weight = means_weight
        self.covars_prior = covars_prior
        self.covars_weight = covars_weight
        self.algorithm = algorithm
        self.covariance_type = covariance_type
        self.random_state = random_state
        self.n_iter = n_iter
        self.tol = tol
        self.verbose = verbose
        self.params = params
        self.init_params = init_params
        self.implementation = implementation
        self.n_threads = n_threads
        self.online_decay = online_decay

    # ------------------------------------------------------------ checks
    def _check_emission_parameters(self):
        if self.covariance_type not in COVARIANCE_TYPES:
            raise ValueError(
                f"covariance_type must be one of {list(COVARIANCE_TYPES)}, "
                f"got {self.covariance_type!r}.")
        n_mix = self.n_mix
        if isinstance(n_mix, (bool, np.bool_)) or not isinstance(
                n_mix, numbers.Integral) or n_mix < 1:
            raise ValueError(
                f"n_mix must be an integer >= 1 (the number of Gaussians in "
                f"each state's mixture), got {n_mix!r:.60}.")
        mc = self.min_covar
        if isinstance(mc, (bool, np.bool_)) or not isinstance(
                mc, numbers.Real) or not (np.isfinite(mc) and mc >= 0):
            raise ValueError(
                f"min_covar must be a finite float >= 0, got {mc!r:.60}.")

    def _check_layout(self):
        self._check_emission_parameters()

    def _covars_shape(self, K, M, D):
        return {"spherical": (K, M), "diag": (K, M, D),
                "full": (K, M, D, D), "tied": (K, D, D)}[self.covariance_type]

    def _default_covars_priors(self, D):
        M = self.n_mix
        return {"full": (0.0, -(1.0 + D + 1.0)),
                "tied": (0.0, -(M + D + 1.0)),
                "diag": (-1.5, 0.0),
                "spherical": (-(M + 2.0) / 2.0, 0.0)}[self.covariance_type]

    def _emission_priors(self, K, D):
        """Validate the priors (hmmlearn's defaults); broadcast as hmmlearn does."""
        M = int(self.n_mix)
        ct = self.covariance_type
        cp0, cw0 = self._default_covars_priors(D)
        cp = cp0 if self.covars_prior is None else self.covars_prior
        cw = cw0 if self.covars_weight is None else self.covars_weight
        cp_shape = {"full": (K, M, D, D), "tied": (K, D, D),
                    "diag": (K, M, D), "spherical": (K, M)}[ct]
        cw_shape = {"full": (K, M), "tied": (K,), "diag": (K, M, D),
                    "spherical": (K, M)}[ct]
        out = {}
        for key, name, value, shape in (
                ("weights", "weights_prior", self.weights_prior, (K, M)),
                ("means", "means_prior", self.means_prior, (K, M, D)),
                ("means_weight", "means_weight", self.means_weight, (K, M)),
                ("covars", "covars_prior", cp, cp_shape),
                ("covars_weight", "covars_weight", cw, cw_shape)):
            arr = _float_array(name, value)
            try:
                arr = np.broadcast_to(arr, shape)
            except ValueError:
                raise ValueError(
                    f"{name} must be a scalar or an array broadcastable to "
                    f"{shape} for covariance_type={ct!r}, n_mix={M}, "
                    f"n_features={D}, got shape {arr.shape}.") from None
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{name} contains NaN or infinite values.")
            out[key] = arr
        return out

    def _check_emission_values(self, p, D):
        K, M = self.n_components, int(self.n_mix)
        w = _float_array("weights_", p["weights_"])
        if w.shape != (K, M):
            raise ValueError(
                f"weights_ must have shape (n_components, n_mix) = ({K}, "
                f"{M}), got {w.shape}.")
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError("weights_ must be finite and non-negative.")
        rows = w.sum(axis=1)
        bad = np.flatnonzero(~np.isclose(rows, 1.0))
        if bad.size:
            raise ValueError(
                f"weights_ rows must sum to 1 (each state's mixture weights), "
                f"but row(s) {bad.tolist()} sum to {rows[bad].tolist()}.")
        mu = _float_array("means_", p["means_"])
        if mu.shape != (K, M, D):
            raise ValueError(
                f"means_ must have shape (n_components, n_mix, n_features) = "
                f"({K}, {M}, {D}), got {mu.shape}.")
        if not np.all(np.isfinite(mu)):
            raise ValueError("means_ must be finite.")
        cv = _float_array("covars_", p["covars_"])
        want = self._covars_shape(K, M, D)
        if cv.shape != want:
            raise ValueError(
                f"{self.covariance_type!r} mixture covars_ must have shape "
                f"{want}, got {cv.shape}.")
        if not np.all(np.isfinite(cv)):
            raise ValueError("covars_ must be finite.")
        return w, mu, cv

    def _check_emission(self, p, D, first, fit_iter=None):
        """Return the checked parameters with the kernels' precision factors."""
        w, mu, cv = first
        K, M = w.shape
        ct = self.covariance_type
        where = (f"EM iteration {fit_iter} produced unusable parameters: "
                 if fit_iter else "")
        fix = (" Rescale X, use fewer states or mixtures, or set a "
               "covars_prior." if fit_iter else "")
        if ct in ("diag", "spherical"):
            var = cv if ct == "diag" else np.repeat(cv[..., None], D, axis=-1)
            bad = np.argwhere(~(var > 0))
            if bad.size:
                k, m = int(bad[0][0]), int(bad[0][1])
                raise ValueError(
                    f"{where}{ct!r} mixture covars_ must be positive, found "
                    f"{float(var[k, m].min())!r} in state #{k}, mixture "
                    f"#{m}.{fix}")
            prec = (1.0 / var).reshape(K * M, 1, D)
            logdet = -0.5 * np.log(var).sum(axis=-1)
        else:
            mats = cv if ct == "full" else cv[:, None]
            prec_k = np.empty(mats.shape)
            logdet_k = np.empty(mats.shape[:2])
            eye = np.eye(D)
            for idx in np.ndindex(*mats.shape[:2]):
                c = mats[idx]
                name = (f"state #{idx[0]}, mixture #{idx[1]}" if ct == "full"
                        else f"state #{idx[0]}")
                if not np.allclose(c, c.T):
                    raise ValueError(f"{where}Covariance of {name} is not "
                                     f"symmetric.{fix}")
                try:
                    L = np.linalg.cholesky(c)
                except np.linalg.LinAlgError:
                    L = None
                d = None if L is None else np.diag(L)
                if d is None or not (np.all(d > 0) and np.all(np.isfinite(L))):
                    raise ValueError(f"{where}Covariance of {name} is not "
                                     f"positive definite.{fix}")
                prec_k[idx] = np.linalg.solve(L, eye).T
                logdet_k[idx] = -np.log(d).sum()
            if ct == "tied":
                prec_k = np.broadcast_to(prec_k, (K, M, D, D))
                logdet_k = np.broadcast_to(logdet_k, (K, M))
            prec = np.ascontiguousarray(prec_k.reshape(K * M, D, D))
            logdet = logdet_k
        with np.errstate(divide="ignore"):
            logc = (np.log(w) + logdet - 0.5 * D * _LOG_2PI).reshape(K * M)
        emission = (np.ascontiguousarray(mu.reshape(K * M, D)),
                    np.ascontiguousarray(prec, dtype=np.float64),
                    np.ascontiguousarray(logc), M, ct in ("full", "tied"),
                    (K, M, D))
        return w, mu, cv, emission

    def _emission_model(self, em):
        K = em[0].shape[0]
        z = np.zeros((K, 1))
        return LATTICE, z, z, np.zeros(K), em[3]

    def _lattice_functions(self):
        return _log_emissions, _emission_stats

    def _recentre(self, running, model):
        if running.stats is None:
            return running
        K, M, D = model.emission[5]
        return running.shift(model.emission[0].reshape(K, M, D))

    def _online_compatible(self, running, D):
        st = running.stats
        return st is None or (
            st.sums.shape == (self.n_components, int(self.n_mix), D)
            and (st.scatter.ndim == 4) == (self.covariance_type in
                                            ("full", "tied")))

    # ----------------------------------------------------------- fitting
    def _check_init_rows(self, N):
        K = self.n_components
        ip = self.init_params
        if ("m" in ip or not hasattr(self, "means_")) and N < K:
            raise ValueError(
                f"n_samples={N} should be >= n_clusters={K}: initializing "
                "the means by k-means ('m' in init_params, or means_ not "
                f"set) needs at least n_components = {K} rows. Use fewer "
                "states, more data, or set means_ and remove 'm' from "
                "init_params.")

    def _check_init_sample(self, init_size):
        self._check_init_rows(init_size)

    def _data_covariance(self, X):
        D = X.shape[1]
        if X.shape[0] < 2:
            raise ValueError(
                "Initializing GMMHMM needs at least 2 samples (the data "
                "covariance); set means_ and covars_ and remove 'm' and 'c' "
                "from init_params.")
        return np.atleast_2d(np.cov(X.T.astype(np.float64))) \
            + self.min_covar * np.eye(D)

    def _init_emission(self, p, X, needs_init, rng):
        """Initialize as hmmlearn's ``_init``, with fastem's k-means."""
        N, D = X.shape
        K, M = self.n_components, int(self.n_mix)
        ct = self.covariance_type
        need_w = needs_init("w", "weights_", "weights_")
        need_m = needs_init("m", "means_", "means_")
        need_c = needs_init("c", "covars_", "covars_")
        cv = None
        if need_m:
            Xf = np.ascontiguousarray(X, dtype=np.float64)
            centers, labels = _kmeans(Xf, K, rng)
            main_centroid = centers.mean(axis=0)
            means = np.empty((K, M, D))
            for k in range(K):
                Xk = np.ascontiguousarray(Xf[labels == k])
                if Xk.shape[0] >= M:
                    means[k] = _kmeans(Xk, M, rng)[0]
                else:
                    if cv is None:
                        cv = self._data_covariance(X)
                    means[k] = rng.multivariate_normal(main_centroid, cv,
                                                       size=M)
            p["means_"] = means
        if need_w:
            p["weights_"] = np.full((K, M), 1.0 / M)
        if need_c:
            if cv is None:
                cv = self._data_covariance(X)
            if ct == "tied":
                p["covars_"] = np.tile(cv, (K, 1, 1))
            elif ct == "full":
                p["covars_"] = np.tile(cv, (K, M, 1, 1))
            elif ct == "diag":
                p["covars_"] = np.tile(np.diag(cv), (K, M, 1))
            else:
                p["covars_"] = np.full((K, M), cv.mean())

    def _emission_m_step(self, es, model, p, priors, stacklevel):
        """Run hmmlearn's GMMHMM M-step (its ``_do_mstep``), with its priors."""
        params = self.params
        st = es.stats
        if st is None:
            return
        ct = self.covariance_type
        M = int(self.n_mix)
        D = st.sums.shape[2]
        nk, post = st.nk, st.post
        w = p["weights_"]
        mu = p["means_"]
        empty = ~(nk > 0)
        if "w" in params:
            a1 = priors["weights"] - 1
            w_d = post + a1.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                new = (nk + a1) / w_d[:, None]
            bad = ~np.all(np.isfinite(new) & (new >= 0), axis=1)
            if bad.any():
                warnings.warn(
                    f"State(s) {np.flatnonzero(bad).tolist()} have no "
                    "usable mixture weights after the M-step (no posterior "
                    "weight, or a weights_prior below 1 made a weight "
                    "negative); keeping their previous weights.",
                    RuntimeWarning, stacklevel=stacklevel)
            w = np.where(bad[:, None], w, new)
            p["weights_"] = w
        if empty.any() and ("m" in params or "c" in params):
            warnings.warn(
                f"Mixture component(s) {np.argwhere(empty).tolist()} "
                "(state, mixture) have no posterior weight; keeping their "
                "previous means and covariances.", RuntimeWarning,
                stacklevel=stacklevel)
        mw = priors["means_weight"]
        mp = priors["means"]
        if "m" in params:
            m_n = mw[:, :, None] * mp + st.sums
            m_d = nk + mw
            m_d = np.where((w == 0) & (m_n == 0).all(axis=-1), 1.0, m_d)
            with np.errstate(invalid="ignore", divide="ignore"):
                new = m_n / m_d[:, :, None]
            keep = empty[:, :, None] | ~np.isfinite(new)
            mu = np.where(keep, mu, new)
            p["means_"] = mu
        if "c" in params:
            cm = mu - mp
            cp, cw = priors["covars"], priors["covars_weight"]
            old = p["covars_"]
            if ct == "full":
                c_n = (np.swapaxes(cp, -1, -2) + mw[:, :, None, None]
                       * cm[..., :, None] * cm[..., None, :] + st.scatter)
                c_d = (nk + 1 + cw + D + 1)[:, :, None, None]
                keep = empty[:, :, None, None]
            elif ct == "diag":
                c_n = mw[:, :, None] * cm ** 2 + 2 * cw + st.scatter
                c_d = nk[:, :, None] + 1 + 2 * (cp + 1)
                keep = empty[:, :, None]
            elif ct == "spherical":
                c_n = (mw * np.einsum("...i,...i", cm, cm) + 2 * cw
                       + st.scatter.sum(axis=-1))
                c_d = D * (nk + 1) + 2 * (cp + 1)
                keep = empty
            else:
                c_n = (np.einsum("ij,ijkl->ikl", mw,
                                 cm[..., :, None] * cm[..., None, :])
                       + np.swapaxes(cp, -1, -2) + st.scatter.sum(axis=1))
                c_d = (post + M + cw + D + 1)[:, None, None]
                keep = np.zeros(c_n.shape, dtype=bool)
            with np.errstate(invalid="ignore", divide="ignore"):
                new = c_n / c_d
            p["covars_"] = np.where(keep, old, new)

    def _emission_scalars(self, D):
        K, M = self.n_components, int(self.n_mix)
        return {"m": K * M * D,
                "c": {"spherical": K * M, "diag": K * M * D,
                      "full": K * M * D * (D + 1) // 2,
                      "tied": K * D * (D + 1) // 2}[self.covariance_type],
                "w": M - 1}

    # ---------------------------------------------------------- sampling
    def _sample_setup(self, em):
        # numpy's multivariate_normal: x = z @ (sqrt(s)[:, None] * v) + mean
        # with (u, s, v) = svd(cov), precomputed per component
        w, mu, cv, _ = em
        K, M, D = mu.shape
        covs = _full_covars(cv, self.covariance_type, K, M, D)
        T = np.empty((K, M, D, D))
        for k in range(K):
            for m in range(M):
                _, s, v = np.linalg.svd(covs[k, m])
                T[k, m] = np.sqrt(s)[:, None] * v
        return w, mu, T

    def _sample_step(self, em, state, rng):
        w, mu, _ = em
        m = rng.choice(w.shape[1], p=w[state])
        return m, rng.standard_normal(mu.shape[2])

    def _sample_finish(self, em, draws, states):
        _, mu, T = em
        D = mu.shape[2]
        X = np.empty((len(draws), D))
        for t, (m, z) in enumerate(draws):
            k = states[t]
            X[t] = z @ T[k, m] + mu[k, m]
        return X

    # ------------------------------------------------------- persistence
    def _export_emission(self, em):
        w, mu, cv, _ = em
        return {"weights": np.array(w, dtype=np.float64),
                "means": np.array(mu, dtype=np.float64),
                "covars": np.array(cv, dtype=np.float64)}

    def _import_emission(self, state, K):
        self._check_emission_parameters()
        M = int(self.n_mix)
        w = _float_array("weights", state["weights"])
        if w.shape != (K, M):
            raise ValueError(f"weights: expected shape (n_components, n_mix) "
                             f"= ({K}, {M}), found {w.shape}")
        mu = _float_array("means", state["means"])
        if mu.ndim != 3 or mu.shape[:2] != (K, M) or mu.shape[2] < 1:
            raise ValueError(f"means: expected shape (n_components, n_mix, "
                             f"n_features) = ({K}, {M}, D), found "
                             f"{mu.shape}")
        D = mu.shape[2]
        cv = _float_array("covars", state["covars"])
        want = self._covars_shape(K, M, D)
        if cv.shape != want:
            raise ValueError(f"covars: expected shape {want} for "
                             f"covariance_type={self.covariance_type!r}, "
                             f"found {cv.shape}")
        for name, arr in (("weights", w), ("means", mu), ("covars", cv)):
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{name}: expected finite values, found "
                                 "NaN or infinity")
        return {"weights_": w, "means_": mu, "covars_": cv}, D
