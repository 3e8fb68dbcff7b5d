"""fastem: Numba-compiled Expectation-Maximization.

``import fastem`` compiles nothing and never imports scikit-learn; kernels
compile on first use (and are cached on disk).
"""

__version__ = "0.1.0"

__all__ = [
    "ConvergenceWarning",
    "GaussianMixture",
    "NotFittedError",
    "get_num_threads",
    "set_num_threads",
    "stats",
]

_LAZY = {
    "GaussianMixture": "fastem.mixture",
    "ConvergenceWarning": "fastem.mixture",
    "NotFittedError": "fastem._validation",
    "set_num_threads": "fastem._config",
    "get_num_threads": "fastem._config",
}


def __getattr__(name):
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name == "stats":
        return importlib.import_module("fastem.stats")
    raise AttributeError(f"module 'fastem' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
