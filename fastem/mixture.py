"""Mixture models under scikit-learn's module name (``sklearn.mixture``).

The estimators live in :mod:`fastem.models`; this module is where a user
switching ``from sklearn.mixture import GaussianMixture`` looks.
"""

from fastem.models.bayesian import BayesianGaussianMixture
from fastem.models.categorical import BernoulliMixture, CategoricalMixture
from fastem.models.mixture import ConvergenceWarning, GaussianMixture
from fastem.models.poisson import PoissonMixture

__all__ = ["BayesianGaussianMixture", "BernoulliMixture", "CategoricalMixture",
           "ConvergenceWarning", "GaussianMixture", "PoissonMixture"]
