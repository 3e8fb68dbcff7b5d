"""CategoricalHMM: a hidden Markov model over discrete symbols, hmmlearn-compatible.

An emission module on :class:`~fastem.models.hmm_base.BaseHMM` (see
:mod:`fastem.models.poisson_hmm` for the worked example): the parameter
``emissionprob_`` (letter ``'e'``), its Dirichlet prior, the symbol check,
hmmlearn's random initialization, the log-densities and the statistics
(posterior-weighted symbol counts; two small worker kernels in
:mod:`fastem.kernels.emissions`, about 0.6 s of CPU to compile), the
M-step, the parameter count, sampling and the saved fields.  The
forward-backward, posteriors, transitions and Viterbi run in fastem's
parallel HMM kernels on the (N, K) log-densities.
"""


import numpy as np

from fastem import _config
from fastem.families.base import SumStats
from fastem.kernels.emissions import categorical_counts, categorical_log_emissions
from fastem.models._emission_probs import EmissionProbabilities
from fastem.models.base import check_random_state
from fastem.models.hmm_base import BaseHMM, _float_array

__all__ = ["CategoricalHMM"]


def _log_emissions(emission, X):
    """(N, K) log-probabilities of the symbols under ``emission`` (K, M)."""
    return categorical_log_emissions(X, emission,
                                     _config.n_chunks_for(X.shape[0]))


def _emission_stats(emission, X, gamma):
    """Posterior-weighted symbol counts: ``post`` (K,), ``obs`` (K, M)."""
    obs = categorical_counts(X, np.ascontiguousarray(gamma),
                             emission.shape[1],
                             _config.n_chunks_for(X.shape[0]))
    # every row has one symbol: a state's posterior total is its row of obs
    # (gamma.sum(axis=0) cost 3 ms per iteration at 200,000 x 4)
    return SumStats({"post": obs.sum(axis=1), "obs": obs}, 0.0,
                    float(X.shape[0]), int(X.shape[0]))


class CategoricalHMM(EmissionProbabilities, BaseHMM):
    """Hidden Markov model with categorical emissions, a drop-in for hmmlearn's.

    Same constructor arguments, defaults, methods and fitted attributes as
    ``hmmlearn.hmm.CategoricalHMM`` (0.3): X is one column of integer
    symbols ``0 <= x < n_features``.  From identical starting parameters the
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
    emissionprob_prior : float or array-like of shape (n_components, \
n_features), default=1.0
        Dirichlet prior of each row of :attr:`emissionprob_` (1 is no
        prior): the M-step is ``max(prior - 1 + counts, 0)``, normalized.
    n_features : int or None, default=None
        Number of symbols; inferred as the largest symbol + 1 by the first
        ``fit`` when None.
    algorithm : {'viterbi', 'map'}, default='viterbi'
    random_state : int, RandomState instance or None, default=None
    n_iter : int, default=10
    tol : float, default=1e-2
    verbose : bool, default=False
    params, init_params : str, default='ste'
        's' (startprob), 't' (transmat), 'e' (emissionprob); initialization
        draws uniform random rows (normalized) for 'e', as hmmlearn.
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
        Probability of each symbol in each state.
    monitor_ : ConvergenceMonitor
    n_features : int
        Number of symbols.
    n_features_in_ : int
        1 (one column of symbols).

    Notes
    -----
    Deviations from hmmlearn 0.3.3: symbols may come as a float column of
    integer values (hmmlearn requires an integer dtype); a state with no
    posterior weight keeps its previous emission probabilities with a
    warning (hmmlearn's become zeros).
    """

    _NAN_HINT = ("and shorten the lengths of their sequences to match "
                 "(CategoricalHMM does not accept missing symbols)")

    def __init__(self, n_components=1, startprob_prior=1.0,
                 transmat_prior=1.0, *, emissionprob_prior=1.0,
                 n_features=None, algorithm="viterbi", random_state=None,
                 n_iter=10, tol=1e-2, verbose=False, params="ste",
                 init_params="ste", implementation="log", n_threads=None,
                 online_decay=0.6):
        self.n_components = n_components
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.emissionprob_prior = emissionprob_prior
        self.n_features = n_features
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

    # The data is one column of symbols, whatever the number of symbols.
    def _n_features_of(self, value):
        return 1

    def _set_n_features(self, D):
        self.n_features_in_ = D
        if hasattr(self, "emissionprob_"):
            self.n_features = int(np.shape(self.emissionprob_)[-1])

    def _n_symbols(self):
        if self.n_features is not None:
            return int(self.n_features)
        if hasattr(self, "emissionprob_"):
            return int(np.shape(self.emissionprob_)[-1])
        # not known yet: what the data being fitted shows (its largest
        # symbol + 1, recorded when it was checked)
        return getattr(self, "_seen_symbols", None)

    def _check_and_set_n_features(self, X):
        """Check integer symbols as hmmlearn's private method (its tests call it).

        Stricter than :meth:`fit`, as hmmlearn's: ``X`` must have an integer
        dtype.  Sets ``n_features`` when it is None.
        """
        X = np.asarray(X)
        if not np.issubdtype(X.dtype, np.integer):
            raise ValueError("Symbols should be integers")
        if X.min() < 0:
            raise ValueError("Symbols should be nonnegative")
        if self.n_features is not None:
            if self.n_features - 1 < X.max():
                raise ValueError(
                    f"Largest symbol is {X.max()} but the model only emits "
                    f"symbols up to {self.n_features - 1}")
        else:
            self.n_features = int(X.max()) + 1

    # ------------------------------------------------------------ checks
    def _emission_priors(self, K, D):
        prior = _float_array("emissionprob_prior", self.emissionprob_prior)
        if not np.all(np.isfinite(prior)):
            raise ValueError("emissionprob_prior must be finite, got "
                             f"{self.emissionprob_prior!r:.80}.")
        return {"emissionprob_prior": prior}

    def _check_values(self, X, row_offset):
        super()._check_values(X, row_offset)
        if X.shape[1] != 1:
            raise ValueError(
                "CategoricalHMM expects X of shape (n_samples, 1): one "
                f"column of integer symbols, got {X.shape[1]} columns. "
                "Reshape with X.reshape(-1, 1).")
        M = self._n_symbols() if (self.n_features is not None or hasattr(
            self, "emissionprob_")) else None
        if M is None and X.shape[0]:
            self._seen_symbols = max(int(np.max(X)) + 1, getattr(
                self, "_seen_symbols", 0) or 0)
        bad = (X < 0) | (X != np.floor(X))
        if M is not None:
            bad |= X >= M
        if bad.any():
            r = int(np.flatnonzero(bad[:, 0])[0])
            v = float(X[r, 0])
            fix = (f"pass n_features with at least {int(v) + 1} symbols"
                   if M is not None and v == np.floor(v) and v >= 0 else
                   "code the symbols as integers 0, 1, 2, ...")
            raise ValueError(
                "CategoricalHMM expects integer symbols 0 <= x < n_features"
                f"{'' if M is None else f' = {M}'}, but row "
                f"{r + row_offset} holds {v!r}. Fix: {fix}.")

    def _n_categories(self, E, D):
        return self.n_features if self.n_features is not None else E.shape[-1]

    def _lattice_functions(self):
        return _log_emissions, _emission_stats

    # ----------------------------------------------------------- fitting
    def _init_emission(self, p, X, needs_init, rng):
        """Draw uniform random rows, normalized, as hmmlearn."""
        if self.n_features is None:
            if "emissionprob_" in p and p["emissionprob_"] is not None:
                self.n_features = int(np.shape(p["emissionprob_"])[-1])
            elif hasattr(self, "emissionprob_"):
                self.n_features = int(np.shape(self.emissionprob_)[-1])
            elif X.shape[0]:
                self.n_features = int(np.nanmax(X)) + 1
        # hmmlearn re-seeds: check_random_state(self.random_state) again
        rng = check_random_state(self.random_state)
        if needs_init("e", "emissionprob_", "emissionprob_"):
            E = rng.rand(self.n_components, self.n_features)
            p["emissionprob_"] = E / E.sum(axis=1, keepdims=True)

    def _emission_m_step(self, es, model, p, priors, stacklevel):
        """``max(prior - 1 + counts, 0)``, rows normalized (hmmlearn)."""
        if "e" not in self.params:
            return
        obs = es.stats["obs"]
        new = np.maximum(priors["emissionprob_prior"] - 1 + obs, 0)
        self._set_probabilities(p, new, stacklevel)

    def _emission_scalars(self, D):
        return {"e": self.n_components * (self._n_symbols() - 1)}

    # ---------------------------------------------------------- sampling
    def _sample_step(self, E, state, rng):
        cdf = np.cumsum(E[state, :])
        return [(cdf > rng.rand()).argmax()]

    # ------------------------------------------------------- persistence
    def _import_emission(self, state, K):
        E = self._import_probabilities(state, K)
        self.n_features = E.shape[1]
        return {"emissionprob_": E}, 1
