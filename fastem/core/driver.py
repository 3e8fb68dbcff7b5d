"""The EM loop shared by every fastem estimator.

:func:`run_em` knows nothing of Gaussians, mixtures or Markov chains: it
is given small callables (``init``, ``e_step``, ``m_step``) and a monitor
(:mod:`fastem.core.monitor`) that decides convergence and does the verbose
reporting.  It never touches an estimator: it returns an :class:`EMResult`
that the estimator commits in one step, so that an exception or a Ctrl-C
anywhere in the loop leaves the previous model intact.
"""

from dataclasses import dataclass, field

import numpy as np

from fastem import _config

__all__ = ["EMResult", "run_em"]


@dataclass
class EMResult:
    """Outcome of :func:`run_em`: the best run's final state.

    Attributes
    ----------
    params : object
        Parameters after the last M-step of the best run.
    objective : float
        Objective (log-likelihood) of the best run's last E-step.
    n_iter : int
        Iterations of the best run.
    converged : bool
        Whether the monitor declared convergence (a callback stop and
        reaching ``max_iter`` do not count, unless the monitor says so).
    history : list of float
        Objective of every iteration of the best run.
    init : int
        Index of the best run among the initializations.
    """

    params: object
    objective: float
    n_iter: int
    converged: bool
    history: list = field(default_factory=list)
    init: int = 0


def _objective(stats):
    return stats.objective


def run_em(init, e_step, m_step, monitor, *, n_init=1, max_iter=100, rng=None,
           start=None, start_objective=-np.inf, objective=_objective,
           check=None, callback=None):
    """Run EM from ``n_init`` starts (or one warm start); return the best run.

    One iteration is: ``stats = e_step(params)`` (one statistics pass over
    the data), :func:`fastem._config.check_interrupt`, ``obj =
    objective(stats)``, ``check(obj, n_iter)``, ``params = m_step(stats,
    params)``, ``monitor.report(obj)``, ``callback(n_iter, obj)``; the run
    stops when ``monitor.converged`` (then it counts as converged), when the
    callback returned True, or after ``max_iter`` iterations.  Of several
    runs the one with the largest final objective is kept (the first on
    ties).

    Parameters
    ----------
    init : callable
        ``init(rng) -> params``: initial parameters of one run.
    e_step : callable
        ``e_step(params) -> stats``: the statistics of all the data.
    m_step : callable
        ``m_step(stats, params) -> params``: the next parameters.
    monitor : object
        Has ``report(objective)``, the property ``converged`` and
        ``history``, and optionally ``begin(init_index, start_objective)``
        and ``end(objective, converged)`` (see :mod:`fastem.core.monitor`).
    n_init : int, default=1
        Number of runs from ``init``; ignored (one run) with ``start``.
    max_iter : int, default=100
        Iterations per run at most.
    rng : object, optional
        Passed to ``init``.
    start : object, optional
        Parameters to continue from (warm start): ``init`` is not called.
    start_objective : float, default=-inf
        The objective before the first iteration (of the warm start).
    objective : callable, default: ``stats.objective``
        Reads the objective from the statistics.
    check : callable, optional
        ``check(objective, n_iter)``, raises when the objective is unusable.
    callback : callable, optional
        ``callback(n_iter, objective)``; True stops the run.

    Returns
    -------
    EMResult
    """
    begin = getattr(monitor, "begin", None)
    end = getattr(monitor, "end", None)
    best = None
    runs = 1 if start is not None else n_init
    for i in range(runs):
        if start is not None:
            params, obj = start, start_objective
        else:
            params, obj = init(rng), -np.inf
        if begin is not None:
            begin(i, obj)
        converged = False
        n_iter = 0
        for n_iter in range(1, max_iter + 1):
            stats = e_step(params)
            _config.check_interrupt()
            obj = objective(stats)
            if check is not None:
                check(obj, n_iter)
            params = m_step(stats, params)
            monitor.report(obj)
            stop = callback is not None and bool(callback(n_iter, obj))
            if monitor.converged:
                converged = True
                break
            if stop:
                break
        if end is not None:
            end(obj, converged)
        if best is None or obj > best.objective:
            best = EMResult(params, obj, n_iter, converged,
                            list(monitor.history), i)
    return best
