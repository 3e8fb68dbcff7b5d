"""fastem: Numba-compiled Expectation-Maximization.

``import fastem`` compiles nothing and never imports scikit-learn; kernels
compile on first use (and are cached on disk).
"""

__version__ = "0.1.0"

__all__ = [
    "BayesianGaussianMixture",
    "BernoulliMixture",
    "CategoricalHMM",
    "CategoricalMixture",
    "ConvergenceWarning",
    "GMMHMM",
    "GaussianHMM",
    "GaussianMixture",
    "HMMSelectionResult",
    "MultinomialHMM",
    "NotFittedError",
    "PoissonHMM",
    "PoissonMixture",
    "SelectionResult",
    "chunks",
    "compile",
    "get_num_threads",
    "io",
    "load",
    "plot",
    "select",
    "select_states",
    "selection",
    "set_num_threads",
    "stats",
]

_LAZY = {
    "GaussianMixture": "fastem.models.mixture",
    "ConvergenceWarning": "fastem.models.mixture",
    "NotFittedError": "fastem._validation",
    "PoissonMixture": "fastem.models.poisson",
    "BayesianGaussianMixture": "fastem.models.bayesian",
    "BernoulliMixture": "fastem.models.categorical",
    "CategoricalMixture": "fastem.models.categorical",
    "set_num_threads": "fastem._config",
    "get_num_threads": "fastem._config",
    "select": "fastem.selection",
    "SelectionResult": "fastem.selection",
    "load": "fastem.io",
    "GaussianHMM": "fastem.models.hmm",
    "PoissonHMM": "fastem.models.poisson_hmm",
    "CategoricalHMM": "fastem.models.categorical_hmm",
    "MultinomialHMM": "fastem.models.multinomial_hmm",
    "GMMHMM": "fastem.models.gmm_hmm",
    "select_states": "fastem.hmm_select",
    "HMMSelectionResult": "fastem.hmm_select",
    "compile": "fastem._compile",
}

_SUBMODULES = ("stats", "io", "plot", "selection", "chunks", "hmm_select",
               "mixture", "hmm", "core", "families", "models", "kernels")


def __getattr__(name):
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"fastem.{name}")
    raise AttributeError(f"module 'fastem' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
