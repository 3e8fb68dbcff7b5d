"""PoissonHMM: a hidden Markov model with Poisson emissions, hmmlearn-compatible.

The worked example of an HMM emission (see :mod:`fastem.models.hmm_base`
for the interface): this module is the Poisson emission -- its parameter
``lambdas_`` (the ``'l'`` letter of ``params`` / ``init_params``), its
gamma prior, the count check, hmmlearn's method-of-moments initialization,
the log-densities (one kernel, :func:`fastem.kernels.emissions.
poisson_log_emissions`), the statistics (posterior-weighted counts), the
M-step, the parameter count, sampling and the saved fields.  Everything
else -- transitions, ``fit`` / ``fit_chunks`` / Dask / ``partial_fit``,
``score`` / ``predict_proba`` / ``decode``, ``sample``, ``save`` /
``load`` -- is :class:`~fastem.models.hmm_base.BaseHMM`'s, running the
forward-backward kernels on the log-densities.
"""

import warnings

import numpy as np

from fastem import _config
from fastem.families.base import SumStats
from fastem.kernels.emissions import (
    poisson_log_emissions,
    posterior_weighted_sums,
)
from fastem.kernels.hmm import LATTICE
from fastem.kernels.poisson import LOG_FACTORIAL_TABLE
from fastem.models.base import check_random_state
from fastem.models.hmm_base import BaseHMM, _float_array

__all__ = ["PoissonHMM"]


def _log_emissions(emission, X):
    """(N, K) log-densities under ``emission = (a, loglam)`` (picklable)."""
    a, loglam = emission
    return poisson_log_emissions(X, a, loglam, LOG_FACTORIAL_TABLE,
                                 _config.n_chunks_for(X.shape[0]))


def _emission_stats(emission, X, gamma):
    """Posterior-weighted counts: ``post`` (K,) and ``obs`` (K, D)."""
    post, obs = posterior_weighted_sums(X, np.ascontiguousarray(gamma),
                                        _config.n_chunks_for(X.shape[0]))
    return SumStats({"post": post, "obs": obs}, 0.0, float(X.shape[0]),
                    int(X.shape[0]))


class PoissonHMM(BaseHMM):
    """Hidden Markov model with Poisson emissions, a drop-in for hmmlearn's.

    Same constructor arguments, defaults, methods and fitted attributes as
    ``hmmlearn.hmm.PoissonHMM`` (0.3); every feature is independent and
    Poisson in each state.  From identical starting parameters the
    log-likelihood of every iteration, the fitted parameters and the
    Viterbi paths agree with hmmlearn's (tested to 1e-8 relative).

    Parameters
    ----------
    n_components : int, default=1
        Number of hidden states.
    startprob_prior : float or array-like of shape (n_components,), default=1.0
        Dirichlet prior of :attr:`startprob_` (1 is no prior).
    transmat_prior : float or array-like of shape (n_components, n_components), \
default=1.0
        Dirichlet prior of each row of :attr:`transmat_` (1 is no prior).
    lambdas_prior, lambdas_weight : float or array-like, default=0
        The gamma prior of the rates (alpha, beta), a scalar or an array
        broadcastable to (n_components, n_features) by NumPy's rules (as
        in hmmlearn, whose documented shape (n_components,) broadcasts
        against the features, so use (n_components, 1) per state).  As
        in hmmlearn, the M-step is ``lambdas_ = (alpha + n * y_bar) /
        (beta + n)`` with ``y_bar`` the state's posterior mean count and
        ``n`` the total posterior weight of all states.
    algorithm : {'viterbi', 'map'}, default='viterbi'
        Decoder of :meth:`predict` / :meth:`decode`.
    random_state : int, RandomState instance or None, default=None
        Seed of the initialization and default seed of :meth:`sample`.
    n_iter : int, default=10
        Maximum number of EM iterations.
    tol : float, default=1e-2
        Convergence threshold on the gain in log-likelihood.
    verbose : bool, default=False
        Print the log-likelihood of every iteration to :data:`sys.stderr`.
    params : str, default='stl'
        Parameters updated by ``fit``: any of 's' (startprob), 't'
        (transmat), 'l' (lambdas).
    init_params : str, default='stl'
        Parameters initialized by ``fit`` (random Dirichlet draws for 's' and
        't'; for 'l', hmmlearn's method of moments: gamma draws with the
        mean and variance of all of X).  A parameter not listed keeps the
        value you set on the model (and is initialized only if it has none).
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
    lambdas_ : ndarray of shape (n_components, n_features)
        Poisson rate of each feature in each state.
    monitor_ : ConvergenceMonitor
    n_features : int
        Also ``n_features_in_``.

    Notes
    -----
    Deviations from hmmlearn 0.3.3: X must hold non-negative integer counts
    (hmmlearn scores other values with ``scipy.stats.poisson.logpmf``, which
    gives ``-inf``); a state with no posterior weight keeps its previous
    rates with a warning (hmmlearn's are NaN); a RandomState instance as
    ``random_state`` is not advanced by ``fit`` for the rates' draws in the
    same way (with an integer seed both draw the same starting rates).
    ``save`` writes ``"format": "fastem.PoissonHMM"`` (JSON, exact floats;
    :meth:`load` reads it back).
    """

    _EMISSION_PARAMS = {"l": "lambdas_"}
    _LETTER_NAMES = {"l": "lambdas"}
    _FEATURES_ATTR = "lambdas_"
    _STATE_FIELDS = ("lambdas",)
    _NAN_HINT = ("and shorten the lengths of their sequences to match "
                 "(PoissonHMM models counts: it does not accept missing "
                 "values)")

    def __init__(self, n_components=1, startprob_prior=1.0,
                 transmat_prior=1.0, lambdas_prior=0.0, lambdas_weight=0.0,
                 algorithm="viterbi", random_state=None, n_iter=10, tol=1e-2,
                 verbose=False, params="stl", init_params="stl",
                 implementation="log", n_threads=None, online_decay=0.6):
        self.n_components = n_components
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.lambdas_prior = lambdas_prior
        self.lambdas_weight = lambdas_weight
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

    # ------------------------------------------------------------ checks
    def _emission_priors(self, K, D):
        out = {}
        for name in ("lambdas_prior", "lambdas_weight"):
            arr = _float_array(name, getattr(self, name))
            try:
                arr = np.broadcast_to(arr, (K, D))
            except ValueError:
                raise ValueError(
                    f"{name} must be a scalar or an array broadcastable to "
                    f"(n_components, n_features) = ({K}, {D}), got shape "
                    f"{np.shape(getattr(self, name))}.") from None
            if not np.all(np.isfinite(arr)) or np.any(arr < 0):
                raise ValueError(
                    f"{name} must be finite and >= 0 (a gamma prior), got "
                    f"{getattr(self, name)!r:.80}.")
            out[name] = arr
        return out

    def _check_values(self, X, row_offset):
        super()._check_values(X, row_offset)
        neg = X < 0
        frac = X != np.floor(X)
        bad = neg | frac
        if bad.any():
            rows = np.flatnonzero(bad.any(axis=1))
            what = []
            if neg.any():
                what.append(f"{int(neg.sum())} negative value(s)")
            if frac.any():
                what.append(f"{int(frac.sum())} non-integer value(s)")
            r = int(rows[0])
            raise ValueError(
                "PoissonHMM models counts: X must hold non-negative "
                f"integers, but it has {' and '.join(what)} (the first in "
                f"row {r + row_offset}: {X[r].tolist()[:8]}). Pass the raw "
                "counts (not normalized or log-transformed values).")

    def _check_emission_values(self, p, D):
        K = self.n_components
        lam = _float_array("lambdas_", p["lambdas_"])
        if lam.shape != (K, D):
            raise ValueError(
                f"lambdas_ must have shape (n_components, n_features) = "
                f"({K}, {D}), got {lam.shape}.")
        if not np.all(np.isfinite(lam)) or np.any(lam < 0):
            raise ValueError(
                "lambdas_ must be finite and non-negative (Poisson rates), "
                f"found {lam.min():g}.")
        return lam

    def _check_emission(self, p, D, lam, fit_iter=None):
        return lam

    def _emission_model(self, lam):
        K = lam.shape[0]
        with np.errstate(divide="ignore"):
            loglam = np.log(lam)
        z = np.zeros((K, 1))
        return (LATTICE, z, z, np.zeros(K),
                (np.ascontiguousarray(-lam.sum(axis=1)), loglam))

    def _lattice_functions(self):
        return _log_emissions, _emission_stats

    # ----------------------------------------------------------- fitting
    def _init_emission(self, p, X, needs_init, rng):
        """Draw the rates by hmmlearn's method of moments."""
        # hmmlearn re-seeds: check_random_state(self.random_state) again
        rng = check_random_state(self.random_state)
        if needs_init("l", "lambdas_", "lambdas_"):
            mean = float(X.mean())
            var = float(X.var())
            if not (mean > 0 and var > 0):
                raise ValueError(
                    "Initializing lambdas_ by the method of moments needs "
                    "counts with a positive mean and variance, but X has "
                    f"mean {mean:g} and variance {var:g}. Set lambdas_ and "
                    "remove 'l' from init_params.")
            p["lambdas_"] = rng.gamma(shape=mean ** 2 / var, scale=var / mean,
                                      size=(self.n_components, X.shape[1]))

    def _emission_m_step(self, es, model, p, priors, stacklevel):
        """Update the rates as hmmlearn: ``(alpha + n y_bar) / (beta + n)``."""
        if "l" not in self.params:
            return
        post = es.stats["post"]
        obs = es.stats["obs"]
        empty = post <= 0
        if empty.any():
            warnings.warn(
                f"State(s) {np.flatnonzero(empty).tolist()} have no "
                "posterior weight; keeping their previous lambdas.",
                RuntimeWarning, stacklevel=stacklevel)
        n = post.sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            y_bar = obs / post[:, None]
            new = (priors["lambdas_prior"] + n * y_bar) / (
                priors["lambdas_weight"] + n)
        p["lambdas_"] = np.where(empty[:, None], p["lambdas_"], new)

    def _emission_scalars(self, D):
        return {"l": self.n_components * D}

    # ---------------------------------------------------------- sampling
    def _sample_step(self, lam, state, rng):
        return rng.poisson(lam[state])

    def _sample_finish(self, lam, draws, states):
        return np.atleast_2d(np.array(draws))

    # ------------------------------------------------------- persistence
    def _export_emission(self, lam):
        return {"lambdas": np.array(lam, dtype=np.float64)}

    def _import_emission(self, state, K):
        lam = _float_array("lambdas", state["lambdas"])
        if lam.ndim >= 1 and lam.shape[0] != K:
            raise ValueError(f"lambdas: {lam.shape[0]} rows do not match "
                             f"parameter n_components={K}")
        if lam.ndim != 2 or lam.shape[1] < 1:
            raise ValueError(f"lambdas: expected shape (n_components, "
                             f"n_features), found {lam.shape}")
        if not np.all(np.isfinite(lam)) or np.any(lam < 0):
            raise ValueError("lambdas: expected finite non-negative rates, "
                             f"found {float(np.nanmin(lam))!r}")
        return {"lambdas_": lam}, lam.shape[1]
