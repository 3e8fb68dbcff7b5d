"""GaussianHMM: a hidden Markov model with Gaussian emissions, hmmlearn-compatible.

Fitted by Baum-Welch (EM) with Numba kernels (see :mod:`fastem.kernels.hmm`
for the algorithm): the emission log-densities, the posteriors and the
Gaussian sufficient statistics are computed in parallel over blocks of rows
-- even for a single sequence -- and the forward/backward recursions in
parallel over sequences (and over the two directions).  The state posteriors
feed the same Gaussian accumulator as :class:`fastem.GaussianMixture`; the
M-step follows hmmlearn's estimates (including its priors) exactly, computed
from statistics centred on the previous means.

Everything that does not depend on the emission -- the transitions and
their priors, the fit paths, inference, decoding, sampling, persistence --
is :class:`fastem.models.hmm_base.BaseHMM`'s; this module is the Gaussian
emission (its parameters, checks, initialization, M-step and sampling) and
its fused kernel path, which computes the densities and accumulates the
statistics inside the forward-backward passes.

The E-step's statistics (:class:`HMMStats`) add across sequences, so every
fit is the core's loop (:func:`fastem.core.driver.run_em`) over a source of
whole sequences (:mod:`fastem.core.sequences`): an in-memory array
(:meth:`GaussianHMM.fit`), chunks streamed from anywhere
(:meth:`GaussianHMM.fit_chunks`), the blocks of a dask array (``fit`` on a
dask array), and decayed running statistics (:meth:`GaussianHMM.partial_fit`).
"""

import numbers
import warnings
from functools import partial

import numpy as np

from fastem import _config
from fastem.core._data import _MAX_ABS  # noqa: F401  (the former import site)
from fastem.core.monitor import ConvergenceMonitor
from fastem.families.gaussian import (
    COVARIANCE_TYPES,
    ComponentCollapseError,
    GaussianParams,
    GaussianStats,
    compute_precision_cholesky,
    scatter_in_shape,
)
from fastem.kernels.gaussian import TIED
from fastem.kernels.hmm import _emission_pass, _fb_log_seq
from fastem.kernels.kmeans import _kmeanspp, _lloyd
from fastem.models.base import check_int as _check_int  # noqa: F401
from fastem.models.hmm_base import (  # noqa: F401  (re-exported: tests, callers)
    _EMPTY_F,
    DECODER_ALGORITHMS,
    GROUPED_MIN_RATIO,
    IMPLEMENTATIONS,
    MAX_GROUPS,
    BaseHMM,
    HMMStats,
    _check_lengths,
    _check_memory,
    _float_array,
    _log,
    _Model,
    _MonitorAdapter,
    _per_state,
    _plan_groups,
    _short,
    _Workspace,
    check_lengths,
    run_e_step,
)
from fastem.models.hmm_base import _as_prior as _as_prior

__all__ = ["ConvergenceMonitor", "GaussianHMM", "HMMStats",
           "check_lengths"]

_PARAM_LETTERS = "stmc"
_NAN_HINT = ("and shorten the lengths of their sequences to match "
             "(GaussianHMM does not accept missing values)")
# The fields of export_state() that import_state() requires.
_STATE_FIELDS = ("startprob", "transmat", "means", "covars")



# ------------------------------------------------------------------ helpers
def _fill_covars(covars, covariance_type, K, D):
    """Type-specific covariances -> (K, D, D) full matrices (hmmlearn's covars_)."""
    if covariance_type == "full":
        return covars.copy()
    if covariance_type == "tied":
        return np.tile(covars, (K, 1, 1))
    if covariance_type == "diag":
        out = np.zeros((K, D, D))
        idx = np.arange(D)
        out[:, idx, idx] = covars
        return out
    return np.asarray(covars)[:, None, None] * np.eye(D)[None]


def _covars_shape(covariance_type, K, D):
    return {"spherical": (K,), "diag": (K, D), "full": (K, D, D),
            "tied": (D, D)}[covariance_type]



def _factor_ok(c):
    """Whether one covariance matrix has a usable Cholesky factorization."""
    try:
        L = np.linalg.cholesky(c)
    except np.linalg.LinAlgError:
        return False
    d = np.diag(L)
    with np.errstate(divide="ignore"):
        return bool(np.isfinite(L).all() and (d > 0).all()
                    and np.isfinite(1.0 / d).all())


# ---------------------------------------------------------------- the E-step
def _e_step(covariance_type, X, starts, model, ws, *, gamma=False, stats=False,
            xi=False, backward=True, out_gamma=None, ref=None):
    """Run one fused E-step (see :mod:`fastem.kernels.hmm`); return :class:`HMMStats`.

    ``ws`` is a :class:`_Workspace`; its plan decides which kernels run.
    The exact log-space fallback is this module's ``_fb_log_seq`` (looked
    up at call time).
    """
    N, D = X.shape
    K = model.means.shape[0]
    code = model.code
    ref = model.means if ref is None else ref
    loglik, nk, sums, scatter, n, xi_m, start = run_e_step(
        X, starts, model, ws, gamma=gamma, stats=stats, xi=xi,
        backward=backward, out_gamma=out_gamma, ref=ref,
        s_rows=1 if code == TIED else K, fb_log_seq=_fb_log_seq)
    # by the covariance type, not the kernel layout (one feature may run a
    # full model on the diag layout, tied runs on the full one)
    scatter = scatter_in_shape(scatter, covariance_type, K, D)
    st = GaussianStats(covariance_type, nk, sums, scatter,
                       np.array(ref, copy=True), loglik, float(n), N)
    return HMMStats(loglik, st, xi_m, start, N, starts.shape[0] - 1)


def _sequence_stats(covariance_type, model, need_stats, want_xi, X, starts):
    """HMMStats of one chunk of whole sequences (module level: picklable).

    Used by every fit path: each chunk (a block of a dask array, a chunk of
    a stream) gets its own workspace; the moments are taken around the
    E-step's means, the same reference for every chunk, so the chunks' stats
    add without re-centring.
    """
    ws = _Workspace(X.shape[0], model.means.shape[0], starts)
    return _e_step(covariance_type, X, starts, model, ws, gamma=True,
                   stats=need_stats, xi=want_xi, ref=model.means)


# --------------------------------------------------------------- estimator
class GaussianHMM(BaseHMM):
    """Hidden Markov model with Gaussian emissions, a drop-in for hmmlearn's.

    Same constructor arguments, defaults, methods and fitted attributes as
    ``hmmlearn.hmm.GaussianHMM``; fitted by Baum-Welch with parallel Numba
    kernels.  From identical starting parameters the log-likelihood of every
    iteration agrees with hmmlearn's to rounding.

    Parameters
    ----------
    n_components : int, default=1
        Number of hidden states.
    covariance_type : {'spherical', 'diag', 'full', 'tied'}, default='diag'
        Form of the emission covariances: one variance per state, a diagonal
        matrix per state, a full matrix per state, or one full matrix shared
        by all states.
    min_covar : float, default=1e-3
        Added to the diagonal of the data covariance when ``'c'`` is
        initialized (as in hmmlearn, it is not used by the M-step).
    startprob_prior : float or array-like of shape (n_components,), default=1.0
        Dirichlet prior of :attr:`startprob_` (1 is no prior).
    transmat_prior : float or array-like of shape (n_components, n_components), \
default=1.0
        Dirichlet prior of each row of :attr:`transmat_` (1 is no prior).
    means_prior : float or array-like broadcastable to (n_components, \
n_features), default=0
        Mean of the normal prior of :attr:`means_`.
    means_weight : float or array-like of shape (n_components,), default=0
        Precision (in pseudo-observations) of the prior of :attr:`means_`.
    covars_prior : float or array-like, default=1e-2
        Scale of the prior of the covariances (inverse gamma for
        ``'spherical'`` / ``'diag'``, inverse Wishart for ``'full'`` /
        ``'tied'``); broadcast like hmmlearn's: to (n_components, n_features)
        for ``'spherical'`` / ``'diag'``, (n_components, n_features,
        n_features) for ``'full'``, (n_features, n_features) for ``'tied'``.
    covars_weight : float or array-like of shape (n_components,), default=1
        Shape of the prior of the covariances (a scalar for ``'tied'``).
    algorithm : {'viterbi', 'map'}, default='viterbi'
        Decoder of :meth:`predict` / :meth:`decode`: the most likely state
        sequence (Viterbi), or the most likely state of each row (MAP).
    random_state : int, RandomState instance or None, default=None
        Seed of the initialization and default seed of :meth:`sample`.
    n_iter : int, default=10
        Maximum number of EM iterations.
    tol : float, default=1e-2
        Convergence threshold on the gain in log-likelihood (any float;
        ``-inf`` runs exactly ``n_iter`` iterations).
    verbose : bool, default=False
        Print the log-likelihood of every iteration to :data:`sys.stderr`.
    params : str, default='stmc'
        Parameters updated by ``fit``: any of 's' (startprob), 't'
        (transmat), 'm' (means), 'c' (covars).  The others stay fixed.
    init_params : str, default='stmc'
        Parameters initialized by ``fit`` (random Dirichlet draws for 's' and
        't', k-means for 'm', the data covariance for 'c').  A parameter not
        listed keeps the value you set on the model (and is initialized only
        if it has none).
    implementation : {'log', 'scaling'}, default='log'
        Accepted for compatibility; both use fastem's algorithm: scaled
        recursions on per-row shifted emission densities, with an automatic
        exact log-space fallback for any sequence that would underflow.
        Results are the same to rounding.
    n_threads : int or None, default=None
        Threads for the compiled kernels (fastem addition); None uses
        :func:`fastem.set_num_threads`'s setting.  Results do not depend on it.
    online_decay : float in (0.5, 1], default=0.6
        Step-size exponent of :meth:`partial_fit` (fastem addition): after
        ``t`` updates, a new batch gets weight ``(t + 2) ** -online_decay``
        in the running statistics.  Smaller values forget old batches
        faster (to track drift); 1 forgets slowest.

    Attributes
    ----------
    startprob_ : ndarray of shape (n_components,)
        Initial state distribution.
    transmat_ : ndarray of shape (n_components, n_components)
        Transition probabilities; row ``i`` is ``P(z_{t+1} | z_t = i)``.
    means_ : ndarray of shape (n_components, n_features)
        Emission means.
    covars_ : ndarray of shape (n_components, n_features, n_features)
        Emission covariances, always returned as full matrices (as in
        hmmlearn).  Set it in the type's own layout: (n_components,) for
        'spherical', (n_components, n_features) for 'diag',
        (n_components, n_features, n_features) for 'full', (n_features,
        n_features) for 'tied'.  As in hmmlearn, spherical variances may
        also be given as (n_components, 1) (or (n_components, 1, ..., 1))
        or (n_components, n_features) with equal values in each row
        (hmmlearn's layout after ``fit``).
    monitor_ : ConvergenceMonitor
        Log-likelihood history of the last fit and its ``converged`` flag.
    n_features : int
        Number of features (hmmlearn's name); also ``n_features_in_``.
    n_batches_ : int
        After :meth:`partial_fit`: updates since the running statistics
        started.
    batch_log_likelihood_ : float
        After :meth:`partial_fit`: log-likelihood of the last batch under
        the parameters before its update.

    Notes
    -----
    Deviations from hmmlearn 0.3, all where hmmlearn's result is unusable:
    with ``'m'`` not in ``params`` but ``'c'`` in it, hmmlearn estimates the
    covariances from statistics it did not collect (they come out wrong);
    fastem uses the fixed means.  For ``'spherical'``, hmmlearn's
    ``covars_`` has a wrong shape after ``fit`` when n_features > 1; fastem
    returns (n_components, n_features, n_features).  The spherical
    initialization uses the mean variance of the features (hmmlearn: the mean
    of all covariance entries).  A transition row, start distribution, mean or
    covariance whose M-step denominator is zero (a state that is never
    visited, with no prior) keeps its previous value with a warning instead
    of becoming all-zero or NaN.  A covariance that collapses during ``fit``
    (not positive definite after an M-step) stops the fit with
    :class:`~fastem.stats.ComponentCollapseError` naming the state and the
    remedies, and the model is left unchanged; hmmlearn instead retries its
    log-density with 1e-7 added to the diagonal and stores the singular
    matrix, which its own ``covars_`` setter would refuse.  One rule decides
    whether covariances are usable -- in the setter, in ``fit`` (its start
    and every M-step) and in ``score`` / ``predict`` / ``sample`` -- so a
    fitted model is always usable.

    As in hmmlearn, ``fit`` logs a warning (``logging``, logger
    ``fastem.hmm``) when ``init_params`` overwrites a parameter that is set
    and when the model has more free scalars than ``X`` has values.  Errors
    are raised before anything is allocated for requests beyond this
    machine's physical memory (huge ``n_components``, ``sample`` sizes).
    Rows with a value beyond 1e150 in magnitude are refused by ``fit`` and
    by every inference method (their squared distances overflow).
    """

    _EMISSION_PARAMS = {"m": "means_", "c": "_covars_"}
    _LETTER_NAMES = {"m": "means", "c": "covars"}
    _FEATURES_ATTR = "means_"
    _STATE_FIELDS = ("means", "covars")
    _NAN_HINT = _NAN_HINT
    _STRING_PARAMS = (("covariance_type", sorted(COVARIANCE_TYPES)),
                      ("algorithm", list(DECODER_ALGORITHMS)),
                      ("implementation", list(IMPLEMENTATIONS)))
    _lattice_arrays = 0     # the fused path makes no (N, K) arrays of its own

    def __init__(self, n_components=1, covariance_type="diag", min_covar=1e-3,
                 startprob_prior=1.0, transmat_prior=1.0, means_prior=0,
                 means_weight=0, covars_prior=1e-2, covars_weight=1,
                 algorithm="viterbi", random_state=None, n_iter=10, tol=1e-2,
                 verbose=False, params="stmc", init_params="stmc",
                 implementation="log", n_threads=None, online_decay=0.6):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.min_covar = min_covar
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.means_prior = means_prior
        self.means_weight = means_weight
        self.covars_prior = covars_prior
        self.covars_weight = covars_weight
        self.algorithm = algorithm
        self.random_state = random_state
        self.n_iter = n_iter
        self.tol = tol
        self.verbose = verbose
        self.params = params
        self.init_params = init_params
        self.implementation = implementation
        self.n_threads = n_threads
        self.online_decay = online_decay

    # ----------------------------------------------------------- covars_
    @property
    def covars_(self):
        """Emission covariances as full (n_components, n_features, n_features)."""
        if not hasattr(self, "_covars_"):
            raise AttributeError("'GaussianHMM' object has no attribute "
                                 "'covars_' (not fitted, and not set).")
        cv = self._covars_
        ct = self.covariance_type
        K = self.n_components
        D = cv.shape[-1] if ct != "spherical" else self._n_features_guess()
        return _fill_covars(cv, ct, K, D)

    @covars_.setter
    def covars_(self, covars):
        try:
            cv = np.array(covars, dtype=np.float64, copy=True)
        except (TypeError, ValueError) as e:
            raise ValueError(
                f"covars_ must be an array of numbers, got {covars!r:.80} "
                f"({e}).") from None
        cv = self._covars_layout(cv)
        self._check_covars(cv, None)
        self._covars_ = cv

    def _n_features_guess(self):
        if hasattr(self, "means_"):
            return np.shape(self.means_)[-1]
        return getattr(self, "n_features", 1)

    # ------------------------------------------------- emission: checks
    def _check_emission_parameters(self):
        if self.covariance_type not in COVARIANCE_TYPES:
            raise ValueError(
                f"covariance_type must be one of {sorted(COVARIANCE_TYPES)}, "
                f"got {self.covariance_type!r}.")
        if isinstance(self.min_covar, bool) or not isinstance(
                self.min_covar, numbers.Real) or not (
                np.isfinite(self.min_covar) and self.min_covar >= 0):
            raise ValueError(
                f"min_covar must be a finite float >= 0, got {self.min_covar!r}.")

    def _check_layout(self):
        if self.covariance_type not in COVARIANCE_TYPES:
            raise ValueError(
                f"covariance_type must be one of {sorted(COVARIANCE_TYPES)}, "
                f"got {self.covariance_type!r}.")

    def _covars_layout(self, cv):
        """Bring the layouts hmmlearn's setter accepts to fastem's.

        A spherical ``covars_`` may be given as (n_components,), as
        (n_components, 1) (or (n_components, 1, ..., 1), which hmmlearn's
        setter takes too) or as (n_components, n_features) with equal values
        in every row (hmmlearn's own layout after ``fit``); all are stored as
        (n_components,).
        """
        K = self.n_components
        if (self.covariance_type == "spherical" and cv.ndim > 2
                and cv.shape[0] == K and all(n == 1 for n in cv.shape[1:])):
            # hmmlearn's setter checks only len(covars) == n_components, so
            # it takes (n_components, 1, 1, 1) (its test_issue_385)
            cv = cv.reshape(K, 1)
        if (self.covariance_type == "spherical" and cv.ndim == 2
                and cv.shape[0] == K and cv.shape[1] >= 1):
            first = cv[:, :1]
            if np.all(cv == first):
                return np.ascontiguousarray(cv[:, 0])
            if np.all(np.isfinite(cv)) and np.allclose(cv, first):
                return cv.mean(axis=1)
            k = int(np.flatnonzero(~np.isclose(cv, first).all(axis=1))[0])
            raise ValueError(
                "'spherical' covars have length n_components, with one "
                f"variance per state; got shape {cv.shape} whose row {k} holds "
                f"different values {_short(cv[k].tolist(), 4)}. Pass one "
                "variance per state (shape (n_components,)), or use "
                "covariance_type='diag' for one variance per feature.")
        return cv

    def _check_covars(self, cv, n_features, fit_iter=None):
        """Check covariances in the type's layout; return the precision factors.

        The one rule for usable covariances, applied wherever they are set or
        used -- the ``covars_`` setter, ``fit`` (its start and every M-step),
        ``score``, ``predict``, ``sample`` -- so that ``fit`` never returns a
        model its other methods reject: finite; diag/spherical variances
        positive; full/tied matrices symmetric (``np.allclose(C, C.T)``) with
        a Cholesky factorization whose precision factors are finite.
        ``fit_iter`` names the EM iteration that produced ``cv`` (messages).
        """
        ct = self.covariance_type
        K = self.n_components
        if ct not in COVARIANCE_TYPES:
            raise ValueError(
                f"covariance_type must be one of {sorted(COVARIANCE_TYPES)}, "
                f"got {ct!r}.")
        D = n_features
        if D is None:
            D = cv.shape[-1] if (cv.ndim >= 1 and ct != "spherical") else 1
        expected = _covars_shape(ct, K, D)
        if cv.shape != expected:
            names = {"spherical": "(n_components,)",
                     "diag": "(n_components, n_features)",
                     "full": "(n_components, n_features, n_features)",
                     "tied": "(n_features, n_features)"}[ct]
            hint = ""
            if cv.ndim == 3 and ct != "full":
                hint = {"spherical": " From full matrices, pass "
                        "np.diagonal(C, axis1=1, axis2=2).mean(axis=1).",
                        "diag": " From full matrices (the covars_ getter's "
                        "layout), pass np.diagonal(C, axis1=1, axis2=2).",
                        "tied": " From the covars_ getter's layout (one "
                        "copy per state), pass C[0]."}[ct]
            raise ValueError(
                f"covars_ for covariance_type={ct!r} must have shape {names} = "
                f"{expected}, got {cv.shape}.{hint}")
        if not np.all(np.isfinite(cv)):
            raise ValueError(
                "covars_ contains NaN or infinite values"
                + (f" after EM iteration {fit_iter}. Rescale X, or use "
                   "fewer states." if fit_iter else
                   ". Set finite covariances."))
        if fit_iter:
            where = (f"EM iteration {fit_iter} made the covariance of "
                     "state(s) {bad} collapse (too few rows are assigned to "
                     "the state, or they lie on a line or plane). ")
            if ct == "tied":
                where = (f"EM iteration {fit_iter} made the shared "
                         "covariance singular (the rows lie on a line or "
                         "plane, for instance a constant feature). ")
            remedy = (
                "Use fewer states (n_components), rescale X, or regularize "
                "the M-step with covars_prior"
                + (" (added to every variance)." if ct in ("spherical", "diag")
                   else ": pass a positive-definite matrix such as "
                   "covars_prior=1e-2 * np.eye(n_features) (a scalar is "
                   "added to every entry of the matrix, which does not keep "
                   "it positive definite).")
                + " min_covar regularizes only the initial covariances, as "
                "in hmmlearn.")
        if ct in ("spherical", "diag"):
            bad = np.flatnonzero(~(cv > 0).reshape(K, -1).all(axis=1))
            if not bad.size:
                with np.errstate(divide="ignore", over="ignore"):
                    pc = 1.0 / np.sqrt(cv)
                bad = np.flatnonzero(~np.isfinite(pc).reshape(K, -1).all(axis=1))
            if bad.size:
                head = f"'{ct}' covars must be positive: "
                if fit_iter:
                    raise ComponentCollapseError(
                        head + where.format(bad=bad.tolist()) + remedy)
                raise ComponentCollapseError(
                    head + f"covars_ has {cv.min():g} (state(s) "
                    f"{bad.tolist()}). Set positive variances.")
            return pc
        c3 = cv.reshape(-1, D, D)
        asym = [k for k, c in enumerate(c3) if not np.allclose(c, c.T)]
        bad = asym
        if not asym:
            try:
                pc = compute_precision_cholesky(cv, ct)
            except ComponentCollapseError:
                pc = None
            if pc is not None and np.all(np.isfinite(pc)):
                return pc
            bad = [k for k, c in enumerate(c3) if not _factor_ok(c)]
            bad = bad or list(range(len(c3)))
        head = ("'tied' covars must be symmetric, positive-definite: " if
                ct == "tied" else f"component {bad[0]} of 'full' covars must "
                "be symmetric, positive-definite: ")
        if fit_iter:
            raise ComponentCollapseError(
                head + where.format(bad=bad) + remedy)
        name = "covars_" if ct == "tied" else f"covars_[{bad[0]}]"
        if asym:
            raise ValueError(
                head + f"{name} is not symmetric; pass (C + C.T) / 2.")
        raise ComponentCollapseError(
            head + f"{name} is not positive definite (its Cholesky "
            "factorization fails; smallest eigenvalue "
            f"{np.linalg.eigvalsh(c3[bad[0]]).min():.3g}). Set a symmetric "
            "positive-definite matrix.")

    def _check_emission_values(self, p, D):
        K = self.n_components
        means = _float_array("means_", p["means_"])
        if means.shape != (K, D):
            raise ValueError(
                f"means_ must have shape (n_components, n_features) = "
                f"({K}, {D}), got {means.shape}.")
        if not np.all(np.isfinite(means)):
            raise ValueError("means_ contains NaN or infinite values.")
        return means

    def _check_emission(self, p, D, means, fit_iter=None):
        covars = self._covars_layout(_float_array("covars_", p["_covars_"]))
        pc = self._check_covars(covars, D, fit_iter)
        return means, covars, pc

    def _emission_model(self, em):
        means, _, pc = em
        K = means.shape[0]
        code, m, prec, logconst = GaussianParams(
            np.ones(K), means, pc, self.covariance_type).kernel_args()
        return code, m, prec, logconst, None

    # ------------------------------------------------ emission: E-step
    def _e_step(self, X, starts, model, ws, **kwargs):
        """Run one E-step on validated data; see :func:`_e_step`."""
        return _e_step(self.covariance_type, X, starts, model, ws, **kwargs)

    def _stats_function(self):
        return partial(_sequence_stats, self.covariance_type)

    def _emission_logb(self, model, X):
        N = X.shape[0]
        lat = np.empty((N, self.n_components))
        _emission_pass(model.code, X, model.means, model.prec,
                       model.logconst, _config.n_chunks_for(N),
                       _config.BLOCK_ROWS, False, lat, _EMPTY_F)
        return lat

    def _recentre(self, running, model):
        return running.shift(model.means)     # keep the moments centred

    def _online_compatible(self, running, D):
        return (running.stats.covariance_type == self.covariance_type
                and running.stats.sums.shape[1] == D)

    # ---------------------------------------------- emission: fitting
    def _start_model(self, p, D):
        """Return the validated starting model (fit's hint on bad covariances)."""
        try:
            return self._validated_model(p, D)
        except ComponentCollapseError as e:
            raise ComponentCollapseError(
                f"{e} (The covariances fit starts from: those set on the "
                "model, or for 'c' in init_params the data covariance "
                "plus min_covar; increase min_covar if X has a constant "
                "feature.)") from None

    def _check_init_sample(self, init_size):
        K = self.n_components
        if ("m" in self.init_params or not hasattr(self, "means_")) \
                and init_size < max(K, 2):
            raise ValueError(
                f"init_size={init_size} is too small: the k-means "
                f"initialization of the means needs a sample of at least "
                f"n_components = {K} rows (and 2 for the covariances). Pass a "
                "larger init_size, or set means_ and covars_ and remove 'm' "
                "and 'c' from init_params.")

    def _check_init_rows(self, N):
        self._check_means_init_rows(N)

    def _check_means_init_rows(self, N):
        """Refuse fewer rows than states when the means come from k-means.

        Checked before anything of size n_components x n_components is made.
        """
        K = self.n_components
        if ("m" in self.init_params or not hasattr(self, "means_")) and N < K:
            raise ValueError(
                f"n_samples={N} should be >= n_clusters={K}: initializing "
                "the means by k-means ('m' in init_params, or means_ not "
                f"set) needs at least n_components = {K} rows. Use fewer "
                "states, more data, or set means_ and remove 'm' from "
                "init_params.")

    def _emission_priors(self, K, D):
        """Validate the emission priors; return them broadcast."""
        ct = self.covariance_type
        cw = _float_array("covars_weight", self.covars_weight)
        if ct == "tied":
            if cw.ndim != 0 or not np.isfinite(cw):
                raise ValueError(
                    "covars_weight must be a finite scalar for "
                    f"covariance_type='tied', got {self.covars_weight!r}.")
        else:
            cw = _per_state("covars_weight", cw, K)
        mw = _per_state("means_weight", self.means_weight, K)
        if np.any(mw < 0):
            raise ValueError(f"means_weight must be >= 0, got {mw}.")
        cp_shape, cp_name = {
            "spherical": ((K, D), "(n_components, n_features)"),
            "diag": ((K, D), "(n_components, n_features)"),
            "full": ((K, D, D), "(n_components, n_features, n_features)"),
            "tied": ((D, D), "(n_features, n_features)")}[ct]
        return {
            "means": _as_prior("means_prior", self.means_prior, (K, D),
                               "(n_components, n_features)"),
            "means_weight": mw,
            "covars": _as_prior("covars_prior", self.covars_prior, cp_shape,
                                cp_name),
            "covars_weight": cw,
        }

    def _install_init(self, p):
        self.startprob_ = p["startprob_"]
        self.transmat_ = p["transmat_"]
        self.means_ = p["means_"]
        self.covars_ = p["_covars_"]

    def _init_emission(self, p, X, needs_init, rng):
        """k-means means and the data covariance (hmmlearn's initialization)."""
        N, D = X.shape
        K = self.n_components
        if needs_init("m", "means_", "means_"):   # N >= K checked by fit
            n_trials = 2 + int(np.log(K))
            u = rng.random_sample(1 + (K - 1) * n_trials)
            nc = _config.n_chunks_for(N)
            sw = np.empty(0)
            seeds = _kmeanspp(X, sw, K, u, n_trials, nc)
            _config.check_interrupt()
            var = X.var(axis=0, dtype=np.float64).mean()
            centers, _, _ = _lloyd(X, sw, X[seeds].astype(np.float64), 300,
                                   1e-4 * var, nc)
            _config.check_interrupt()
            p["means_"] = centers
        if needs_init("c", "covars_", "_covars_"):
            if N < 2:
                raise ValueError(
                    "Initializing the covariances needs at least 2 samples; "
                    "set covars_ and remove 'c' from init_params.")
            cv = np.atleast_2d(np.cov(X.T.astype(np.float64))) \
                + self.min_covar * np.eye(D)
            ct = self.covariance_type
            if ct == "spherical":
                cv = np.full(K, np.trace(cv) / D)
            elif ct == "diag":
                cv = np.tile(np.diag(cv), (K, 1))
            elif ct == "full":
                cv = np.tile(cv, (K, 1, 1))
            p["_covars_"] = cv

    def _emission_m_step(self, es, model, p, priors, stacklevel):
        """Update means and covariances by hmmlearn's M-step (centred statistics)."""
        st = es.stats
        params = self.params
        means = model.means
        covars = p["_covars_"]
        post = st.nk
        mw = priors["means_weight"][:, None]
        mp = priors["means"]
        if "m" in params:
            obs = st.sums + post[:, None] * st.ref
            den = mw + post[:, None]
            empty = (den == 0).ravel()
            if empty.any():
                warnings.warn(
                    f"State(s) {np.flatnonzero(empty).tolist()} have no "
                    "posterior weight; keeping their previous means.",
                    RuntimeWarning, stacklevel=stacklevel)
            with np.errstate(invalid="ignore", divide="ignore"):
                new = (mw * mp + obs) / den
            means = np.where(empty[:, None], means, new)
            p["means_"] = means
        if "c" in params:
            covars = self._new_covars(st, means, mw, mp, post, covars, priors,
                                      stacklevel + 1)
            p["_covars_"] = covars

    def _new_covars(self, st, means, mw, mp, post, old, priors, stacklevel):
        ct = self.covariance_type
        K, D = means.shape
        delta = means - st.ref          # new means minus the reference
        md = means - mp
        cw = priors["covars_weight"]
        prior = priors["covars"]
        if ct in ("spherical", "diag"):
            # sum_t r (x - mu)^2 from the scatter around ref
            sq = st.scatter - 2 * delta * st.sums + post[:, None] * delta ** 2
            c_n = mw * md ** 2 + sq
            c_d = np.maximum(cw - 1, 0)[:, None] + post[:, None]
            cov = (prior + c_n) / np.maximum(c_d, 1e-5)
            if ct == "spherical":
                cov = cov.mean(axis=1)
            return cov
        outer = np.einsum("ki,kj->kij", delta, st.sums)
        c_n = (mw[:, :, None] * np.einsum("ki,kj->kij", md, md)
               - outer - np.swapaxes(outer, 1, 2)
               + post[:, None, None] * np.einsum("ki,kj->kij", delta, delta))
        if ct == "tied":
            den = max(float(cw) - D, 0) + post.sum()
            if not den > 0:
                warnings.warn("The tied covariance has no weight; keeping "
                              "the previous one.", RuntimeWarning,
                              stacklevel=stacklevel)
                return old
            return (prior + st.scatter + c_n.sum(axis=0)) / den
        den = np.maximum(cw - D, 0) + post
        empty = ~(den > 0)
        if empty.any():
            warnings.warn(
                f"State(s) {np.flatnonzero(empty).tolist()} have no posterior "
                "weight; keeping their previous covariances.", RuntimeWarning,
                stacklevel=stacklevel)
        with np.errstate(invalid="ignore", divide="ignore"):
            cov = (prior + st.scatter + c_n) / den[:, None, None]
        return np.where(empty[:, None, None], old, cov)

    def _emission_scalars(self, D):
        K = self.n_components
        return {"m": K * D,
                "c": {"spherical": K, "diag": K * D,
                      "full": K * D * (D + 1) // 2,
                      "tied": D * (D + 1) // 2}[self.covariance_type]}

    # ---------------------------------------------- emission: sampling
    def _sample_setup(self, em):
        # numpy's multivariate_normal: x = z @ (sqrt(s)[:, None] * v) + mean
        # with (u, s, v) = svd(cov) -- precomputed once per state.
        means, covars, _ = em
        K, D = means.shape
        covs = _fill_covars(covars, self.covariance_type, K, D)
        transforms = []
        for k in range(K):
            _, s, v = np.linalg.svd(covs[k])
            transforms.append(np.sqrt(s)[:, None] * v)
        return means, transforms

    def _sample_step(self, em, state, rng):
        return rng.standard_normal(em[0].shape[1])

    def _sample_finish(self, em, draws, states):
        means, transforms = em
        Z = np.array(draws, dtype=np.float64).reshape(len(draws), -1)
        X = np.empty(Z.shape)
        for k in range(means.shape[0]):
            idx = np.flatnonzero(states == k)
            if idx.size:
                X[idx] = Z[idx] @ transforms[k] + means[k]
        return X

    # ------------------------------------------------------------ files
    def save(self, path, metadata=None):
        """Save the model to a versioned JSON file (written atomically).

        Floats are written exactly (``repr``), so :meth:`load` gives
        bit-identical parameters, predictions and scores; no pickle is
        involved.  See :mod:`fastem.io` for the format (``"format":
        "fastem.GaussianHMM"``).

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

        Every field is checked; a damaged or hand-edited file raises
        :class:`fastem.io.ModelFileError` naming the field.

        Parameters
        ----------
        path : str or os.PathLike

        Returns
        -------
        GaussianHMM
        """
        from fastem.io import load

        return load(path, cls=cls)

    # ------------------------------------------- emission: persistence
    def _export_emission(self, em):
        means, covars, _ = em
        return {"means": np.array(means, dtype=np.float64),
                "covars": np.array(covars, dtype=np.float64)}

    def _import_emission(self, state, K):
        ct = self.covariance_type
        means = _float_array("means", state["means"])
        if means.ndim >= 1 and means.shape[0] != K:
            raise ValueError(f"means: {means.shape[0]} rows do not match "
                             f"parameter n_components={K}")
        if means.ndim != 2:
            raise ValueError(f"means: expected shape (n_components, "
                             f"n_features), found {means.shape}")
        D = means.shape[1]
        if D < 1:
            raise ValueError("means: expected at least one feature, found "
                             "empty rows")
        if not np.all(np.isfinite(means)):
            raise ValueError("means: expected finite values, found NaN or "
                             "infinity")
        cv = _float_array("covars", state["covars"])
        shape = _covars_shape(ct, K, D)
        if cv.shape != shape:
            raise ValueError(
                f"covars of shape {cv.shape} do not match covariance_type "
                f"{ct!r} with {K} states and {D} features (expected {shape})")
        try:  # GaussianHMM's one rule for usable covariances
            self._check_covars(cv, D)
        except ValueError as e:
            cls = (ComponentCollapseError if isinstance(
                e, ComponentCollapseError) else ValueError)
            raise cls(f"covars: {e}") from None
        return {"means_": means, "_covars_": cv}, D

