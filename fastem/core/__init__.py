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
  ``map_sum(fn)`` interface (:class:`ArraySource`, :class:`ChunkSource`,
  :class:`DaskSource`).
* :mod:`~fastem.core.sequences` -- the same for data made of *whole
  sequences* (hidden Markov models), ``map_sum(fn)`` with ``fn(X_chunk,
  starts_chunk)``: :class:`SequenceArraySource`,
  :class:`SequenceChunkSource`, :class:`SequenceDaskSource`, and
  :func:`sequence_blocks` (block sizes that keep the sequences whole, for
  rechunking a dask array).
"""

from fastem.core.driver import EMResult, run_em
from fastem.core.monitor import ConvergenceMonitor, LowerBoundMonitor
from fastem.core.sequences import (
    SequenceArraySource,
    SequenceChunkSource,
    SequenceDaskSource,
    sequence_blocks,
)
from fastem.core.sources import ArraySource, ChunkSource, DaskSource

__all__ = ["ArraySource", "ChunkSource", "ConvergenceMonitor", "DaskSource",
           "EMResult", "LowerBoundMonitor", "SequenceArraySource",
           "SequenceChunkSource", "SequenceDaskSource", "run_em",
           "sequence_blocks"]
