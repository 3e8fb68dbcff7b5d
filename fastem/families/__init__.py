"""Distribution families: what varies between EM models.

A family supplies per-row log-densities over a block of rows, an additive
statistics accumulator, an M-step, initialization from responsibilities,
a parameter count, sampling and (de)serialization; the core
(:mod:`fastem.core`) and the models (:mod:`fastem.models`) do the rest.

* :mod:`~fastem.families.gaussian` -- multivariate Gaussian;
* :mod:`~fastem.families.covariances` -- its covariance types (scikit-learn's
  four), each in one class, registered in ``COVARIANCE_MODELS``;
* :mod:`~fastem.families.poisson` -- independent Poisson counts;
* :mod:`~fastem.families.base` -- the interface, and ``SumStats``.
"""
