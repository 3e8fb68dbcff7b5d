"""MultinomialHMM: a hidden Markov model of count vectors, hmmlearn-compatible.

An emission module on :class:`~fastem.models.hmm_base.BaseHMM` (see
:mod:`fastem.models.poisson_hmm` for the worked example): each row is the
outcome of ``n_trials`` draws among ``n_features`` categories, multinomial
in each state with probabilities ``emissionprob_`` (letter ``'e'``).  The
log-densities are one small worker kernel
(:func:`fastem.kernels.emissions.multinomial_log_emissions`); the
statistics are the posterior-weighted counts; the forward-backward,
posteriors and Viterbi run in fastem's parallel HMM kernels.
"""


import numpy as np

from fastem import _config
from fastem.families.base import SumStats
from fastem.kernels.emissions import (
    multinomial_log_emissions,
    posterior_weighted_sums,
)
from fastem.kernels.poisson import LOG_FACTORIAL_TABLE
from fastem.models._emission_probs import EmissionProbabilities
from fastem.models.base import check_random_state
from fastem.models.hmm_base import BaseHMM

__all__ = ["MultinomialHMM"]


def _log_emissions(emission, X):
    """(N, K) multinomial log-probabilities under ``emission`` (K, M) logs."""
    return multinomial_log_emissions(X, emission, LOG_FACTORIAL_TABLE,
                                     _config.n_chunks_for(X.shape[0]))


def _emission_stats(emission, X, gamma):
    """Posterior-weighted counts: ``post`` (K,) and ``obs`` (K, M)."""
    post, obs = posterior_weighted_sums(X, np.ascontiguousarray(gamma),
                                        _config.n_chunks_for(X.shape[0]))
    return SumStats({"post": post, "obs": obs}, 0.0, float(X.shape[0]),
                    int(X.shape[0]))


class MultinomialHMM(EmissionProbabilities, BaseHMM):
    """Hidden Markov model with multinomial emissions, a drop-in for hmmlearn's.

    Same constructor arguments, defaults, methods and fitted attributes as
    ``hmmlearn.hmm.MultinomialHMM`` (0.3): each row of X holds the counts of
    ``n_trials`` draws among ``n_features`` categories.  From identical
    starting parameters the log-likelihood of every iteration, the fitted
    parameters and the Viterbi paths agree with hmmlearn's (tested to 1e-8
    relative).

    Parameters
    ----------
    n_components : int, default=1
        Number of hidden states.
    n_trials : int, array-like of int or None, default=None
        Draws per row; None: each row's sum, set by ``fit`` (sampling needs
        one value).
    startprob_prior, transmat_prior : float or array-like, default=1.0
        Dirichlet priors of :attr:`startprob_` and of each row of
        :attr:`transmat_` (1 is no prior).
    algorithm : {'viterbi', 'map'}, default='viterbi'
    random_state : int, RandomState instance or None, default=None
    n_iter : int, default=10
    tol : float, default=1e-2
    verbose : bool, default=False
    params, init_params : str, default='ste'
        's' (startprob), 't' (transmat), 'e' (emissionprob: uniform random
        rows, normalized, as hmmlearn).
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
    emissionprob_ : ndarray of shape (n_components, n_features)
        Probability of each category in each state.
    monitor_ : ConvergenceMonitor
    n_features : int
        Number of categories (columns of X).

    Notes
    -----
    Deviations from hmmlearn 0.3.3: counts may come as floats of integer
    values (hmmlearn insists on an integer dtype); a state with no posterior
    weight keeps its previous probabilities with a warning (hmmlearn's
    become NaN).
    """

    _NAN_HINT = ("and shorten the lengths of their sequences to match "
                 "(MultinomialHMM models counts: it does not accept missing "
                 "values)")

    def __init__(self, n_components=1, n_trials=None, startprob_prior=1.0,
                 transmat_prior=1.0, algorithm="viterbi", random_state=None,
                 n_iter=10, tol=1e-2, verbose=False, params="ste",
                 init_params="ste", implementation="log", n_threads=None,
                 online_decay=0.6):
        self.n_components = n_components
        self.n_trials = n_trials
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
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

    def _check_and_set_n_features(self, X):
        """Check integer counts as hmmlearn's private method (its tests call it).

        Sets ``n_features`` and, when None, ``n_trials`` (each row's sum).
        """
        X = np.asarray(X)
        if self.__dict__.get("n_features") is not None:
            if X.shape[1] != self.n_features:
                raise ValueError(
                    f"Unexpected number of dimensions, got {X.shape[1]} but "
                    f"expected {self.n_features}")
        else:
            self.n_features = X.shape[1]
        if not np.issubdtype(X.dtype, np.integer) or X.min() < 0:
            raise ValueError("Symbol counts should be nonnegative integers")
        if self.n_trials is None:
            self.n_trials = X.sum(axis=1)
        elif not (X.sum(axis=1) == self.n_trials).all():
            raise ValueError("Total count for each sample should add up to "
                             "the number of trials")

    # ------------------------------------------------------------ checks
    def _emission_priors(self, K, D):
        return {}

    def _check_values(self, X, row_offset):
        super()._check_values(X, row_offset)
        bad = ((X < 0) | (X != np.floor(X))).any(axis=1)
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            raise ValueError(
                "MultinomialHMM models counts: X must hold non-negative "
                f"integers, but row {r + row_offset} is {X[r].tolist()[:8]}. "
                "Pass the raw counts of each row's draws.")
        if self.n_trials is not None and X.shape[0]:
            n = np.asarray(self.n_trials)
            sums = X.sum(axis=1)
            if n.ndim == 0 or n.shape == sums.shape:
                off = sums != n
                if off.any():
                    r = int(np.flatnonzero(off)[0])
                    want = int(n) if n.ndim == 0 else int(n[r])
                    raise ValueError(
                        f"MultinomialHMM: row {r + row_offset} sums to "
                        f"{sums[r]:g}, but n_trials is {want}. Each row must "
                        "hold the counts of n_trials draws (or pass "
                        "n_trials=None).")

    def _lattice_functions(self):
        return _log_emissions, _emission_stats

    # ----------------------------------------------------------- fitting
    def _init_emission(self, p, X, needs_init, rng):
        """Draw uniform random rows, normalized, as hmmlearn."""
        if self.n_trials is None and X.shape[0]:
            self.n_trials = X.sum(axis=1).astype(np.int64)
        # hmmlearn re-seeds: check_random_state(self.random_state) again
        rng = check_random_state(self.random_state)
        if needs_init("e", "emissionprob_", "emissionprob_"):
            E = rng.rand(self.n_components, X.shape[1])
            p["emissionprob_"] = E / E.sum(axis=1, keepdims=True)

    def _emission_m_step(self, es, model, p, priors, stacklevel):
        """``obs / obs.sum(axis=1)`` (hmmlearn: no prior)."""
        if "e" not in self.params:
            return
        self._set_probabilities(p, es.stats["obs"].copy(), stacklevel)

    def _emission_scalars(self, D):
        return {"e": self.n_components * (D - 1)}

    # ---------------------------------------------------------- sampling
    def _sample_step(self, E, state, rng):
        n = (np.unique(np.asarray(self.n_trials)) if self.n_trials
             is not None else np.empty(0))
        if n.size != 1:
            raise ValueError(
                "For sampling, a single n_trials must be given (set "
                f"n_trials to one int; it is {self.n_trials!r:.60}).")
        return rng.multinomial(int(n[0]), E[state])

    # ------------------------------------------------------- persistence
    def _import_emission(self, state, K):
        E = self._import_probabilities(state, K)
        return {"emissionprob_": E}, E.shape[1]
