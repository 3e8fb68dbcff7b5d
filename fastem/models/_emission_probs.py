"""What the HMM emissions with an ``emissionprob_`` matrix share.

:class:`CategoricalHMM <fastem.models.categorical_hmm.CategoricalHMM>` and
:class:`MultinomialHMM <fastem.models.multinomial_hmm.MultinomialHMM>` both
have rows of probabilities ``emissionprob_`` (n_components, n_categories)
under the letter ``'e'``: their checks, the kernels' view (log
probabilities), the M-step's normalization with the empty-state guard, the
draws' array and the saved field are this mixin.
"""

import warnings

import numpy as np

from fastem.kernels.hmm import LATTICE
from fastem.models.hmm_base import _float_array


class EmissionProbabilities:
    """Mixin for a :class:`~fastem.models.hmm_base.BaseHMM` emission."""

    _EMISSION_PARAMS = {"e": "emissionprob_"}
    _LETTER_NAMES = {"e": "emissionprob"}
    _FEATURES_ATTR = "emissionprob_"
    _STATE_FIELDS = ("emissionprob",)

    def _n_categories(self, E, D):
        """Return the number of columns ``emissionprob_`` must have."""
        return D

    def _check_emission_values(self, p, D):
        K = self.n_components
        E = np.atleast_2d(_float_array("emissionprob_", p["emissionprob_"]))
        M = self._n_categories(E, D)
        if E.shape != (K, M):
            raise ValueError(
                f"emissionprob_ must have shape (n_components, n_features) = "
                f"({K}, {M}), got {E.shape}.")
        if (not np.all(np.isfinite(E)) or np.any(E < 0)
                or not np.allclose(E.sum(axis=1), 1.0)):
            raise ValueError(
                "emissionprob_ rows must be probabilities (non-negative, "
                "summing to 1).")
        return E

    def _check_emission(self, p, D, E, fit_iter=None):
        return E

    def _emission_model(self, E):
        K = E.shape[0]
        with np.errstate(divide="ignore"):
            logE = np.log(E)
        z = np.zeros((K, 1))
        return (LATTICE, z, z, np.zeros(K), np.ascontiguousarray(logE))

    def _set_probabilities(self, p, new, stacklevel):
        """Normalize the rows of ``new`` into ``p["emissionprob_"]``.

        A state whose row is all zero (no posterior weight) keeps its
        previous probabilities, with a warning (hmmlearn's become zeros or
        NaN).
        """
        tot = new.sum(axis=1)
        empty = tot <= 0
        if empty.any():
            warnings.warn(
                f"State(s) {np.flatnonzero(empty).tolist()} have no "
                "posterior weight; keeping their previous emissionprob.",
                RuntimeWarning, stacklevel=stacklevel + 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            new = new / tot[:, None]
        p["emissionprob_"] = np.where(empty[:, None], p["emissionprob_"],
                                      new)

    def _sample_finish(self, E, draws, states):
        return np.atleast_2d(np.array(draws))

    def _export_emission(self, E):
        return {"emissionprob": np.array(E, dtype=np.float64)}

    def _import_probabilities(self, state, K):
        E = _float_array("emissionprob", state["emissionprob"])
        if E.ndim != 2 or E.shape[0] != K or E.shape[1] < 1:
            raise ValueError("emissionprob: expected shape (n_components, "
                             f"n_features) with {K} rows, found {E.shape}")
        if not np.all(np.isfinite(E)) or np.any(E < 0):
            raise ValueError("emissionprob: expected probabilities, found "
                             f"{float(np.nanmin(E))!r}")
        return E
