"""One EM core shared by fastem's estimators.

* :func:`~fastem.core.driver.run_em` -- the EM loop (``n_init`` restarts
  keeping the best, warm start, ``max_iter``, a callback, Ctrl-C checks),
  parameterized by ``init(rng)``, ``e_step(params)`` and
  ``m_step(stats, params)``; it returns an :class:`~fastem.core.driver.
  EMResult` and never touches an estimator.
* :mod:`~fastem.core.monitor` -- convergence rules and verbose output:
  scikit-learn's (:class:`LowerBoundMonitor`) and hmmlearn's
  (:class:`ConvergenceMonitor`).
* :mod:`~fastem.core.sources` -- where the statistics come from: an
  in-memory array, a stream of chunks, a dask array, behind one
  ``map_sum(fn)`` interface.
"""

from fastem.core.driver import EMResult, run_em
from fastem.core.monitor import ConvergenceMonitor, LowerBoundMonitor
from fastem.core.sources import ArraySource, ChunkSource, DaskSource

__all__ = ["ArraySource", "ChunkSource", "ConvergenceMonitor", "DaskSource",
           "EMResult", "LowerBoundMonitor", "run_em"]
