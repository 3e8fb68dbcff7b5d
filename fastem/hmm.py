"""Hidden Markov models under hmmlearn's module name (``hmmlearn.hmm``).

The estimators live in :mod:`fastem.models`; this module is where a user
switching ``from hmmlearn.hmm import GaussianHMM`` (or ``PoissonHMM``,
``CategoricalHMM``, ``MultinomialHMM``, ``GMMHMM``)
looks.  :class:`HMMStats` is the E-step's additive sufficient statistics
(what ``fit_chunks``, Dask fits and ``partial_fit`` add up).
"""

from fastem.core.monitor import ConvergenceMonitor
from fastem.models.categorical_hmm import CategoricalHMM
from fastem.models.gmm_hmm import GMMHMM
from fastem.models.hmm import GaussianHMM, HMMStats
from fastem.models.multinomial_hmm import MultinomialHMM
from fastem.models.poisson_hmm import PoissonHMM

__all__ = ["CategoricalHMM", "ConvergenceMonitor", "GMMHMM", "GaussianHMM",
           "HMMStats", "MultinomialHMM", "PoissonHMM"]
