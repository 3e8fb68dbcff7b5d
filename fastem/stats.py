"""fastem as a backend: the Gaussian family's public low-level API.

Given X and parameters, return additive statistics
(:func:`compute_stats`); given statistics, return parameters
(:func:`m_step`); given X and parameters, return per-row log-likelihoods
or responsibilities (:func:`score_samples`, :func:`predict_proba`).  The
implementation lives in :mod:`fastem.families.gaussian`; this module is its
stable public face.
"""

from fastem.families.gaussian import (
    COVARIANCE_TYPES,
    ComponentCollapseError,
    GaussianParams,
    GaussianStats,
    compute_precision_cholesky,
    compute_stats,
    degenerate_components,
    m_step,
    predict_proba,
    score_samples,
    stats_from_responsibilities,
)

__all__ = [
    "COVARIANCE_TYPES",
    "ComponentCollapseError",
    "GaussianParams",
    "GaussianStats",
    "compute_precision_cholesky",
    "compute_stats",
    "degenerate_components",
    "m_step",
    "predict_proba",
    "score_samples",
    "stats_from_responsibilities",
]
