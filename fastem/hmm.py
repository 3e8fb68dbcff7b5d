"""Hidden Markov models under hmmlearn's module name (``hmmlearn.hmm``).

The estimators live in :mod:`fastem.models`; this module is where a user
switching ``from hmmlearn.hmm import GaussianHMM`` looks.
"""

from fastem.core.monitor import ConvergenceMonitor
from fastem.models.hmm import GaussianHMM

__all__ = ["ConvergenceMonitor", "GaussianHMM"]
