"""Convergence monitors of :func:`fastem.core.driver.run_em`.

A monitor records the objective of every iteration (``report``), says when
a run has converged (``converged``) and does the verbose reporting; the
driver calls ``begin(init_index, start_objective)`` before a run and
``end(objective, converged)`` after it.  Two semantics are provided:

* :class:`LowerBoundMonitor` -- scikit-learn's GaussianMixture: converged
  when ``|change| < tol`` of the mean log-likelihood (plus fastem's rule for
  a bound that cycles), verbose messages to stdout.
* :class:`ConvergenceMonitor` -- hmmlearn's: ``history`` holds the total
  log-probabilities, converged when the gain is below ``tol`` or after
  ``n_iter`` iterations, one line per iteration to stderr when verbose.
"""

import logging
import sys
from collections import deque
from time import perf_counter

import numpy as np

__all__ = ["ConvergenceMonitor", "LowerBoundMonitor"]

# hmmlearn's monitor logs through the logger of the HMM module (its users
# filter on that name).
_log = logging.getLogger("fastem.hmm")


class LowerBoundMonitor:
    """scikit-learn's convergence rule and verbose output for mixtures.

    Parameters
    ----------
    tol : float
        Converged when the lower bound changes by less than ``tol``; a bound
        that repeats exactly a value from 2-4 iterations before also counts
        as converged when ``tol > 0`` (rounding cycles the parameters).
    verbose : int, default=0
        1 prints the initialization and iteration numbers, 2 also the time
        and the change of the bound (to stdout, scikit-learn's format).
    verbose_interval : int, default=10
        Iterations between two messages.
    rule : {'absolute', 'relative'}, default='absolute'
        ``'absolute'``: scikit-learn's rule, ``|change| < tol``.
        ``'relative'``: mclust's, ``|L_new - L_old| / (1 + |L_new|) < tol``
        for the total ``L = n_rows x bound``, i.e. ``|change| < tol (1 /
        n_rows + |bound|)``.
    n_rows : float, default=1
        The rows (total weight) the bound is a mean over; for the
        relative rule.

    Attributes
    ----------
    history : list of float
        The bound of every iteration of the current run.
    iter : int
        Iterations of the current run.
    """

    def __init__(self, tol, verbose=0, verbose_interval=10,
                 rule="absolute", n_rows=1.0):
        self.tol = tol
        self.rule = rule
        self.n_rows = float(n_rows) if n_rows else 1.0
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.history = []
        self.iter = 0
        self._prev = -np.inf
        self._change = np.nan

    def begin(self, init_index, start_objective):
        """Start a run (prints ``Initialization i`` when verbose).

        Parameters
        ----------
        init_index : int
            Index of the run.
        start_objective : float
            Objective before the first iteration.
        """
        self.history = []
        self.iter = 0
        self._prev = start_objective
        if self.verbose:
            print(f"Initialization {init_index}")
            self._t_init = self._t_iter = perf_counter()

    def report(self, objective):
        """Record one iteration's bound (and print it when verbose).

        Parameters
        ----------
        objective : float
            The lower bound of this iteration.
        """
        self.history.append(objective)
        self.iter += 1
        self._change = objective - self._prev
        self._prev = objective
        n_iter = self.iter
        if self.verbose and n_iter % self.verbose_interval == 0:
            if self.verbose == 1:
                print(f"  Iteration {n_iter}")
            else:
                now = perf_counter()
                print(f"  Iteration {n_iter}\t time lapse "
                      f"{now - self._t_iter:.5f}s\t ll change "
                      f"{self._change:.5f}")
                self._t_iter = now

    @property
    def converged(self):
        """Whether the last iteration met the convergence rule."""
        # tol=0 keeps its meaning: exactly max_iter iterations.
        tol = self.tol
        if self.rule == "relative":
            tol = tol * (1.0 / self.n_rows + abs(self._prev))
        return bool(abs(self._change) < tol or (
            self.tol > 0 and self._prev in self.history[-5:-2]))

    def end(self, objective, converged):
        """Finish a run (prints whether it converged when verbose).

        Parameters
        ----------
        objective : float
            Final objective of the run.
        converged : bool
            Whether it converged.
        """
        if self.verbose:
            msg = "converged" if converged else "did not converge"
            if self.verbose == 1:
                print(f"Initialization {msg}.")
            else:
                print(f"Initialization {msg}. time lapse "
                      f"{perf_counter() - self._t_init:.5f}s\t lower bound "
                      f"{objective:.5f}.")


class ConvergenceMonitor:
    """Monitor and report the convergence of Baum-Welch (as hmmlearn's).

    Parameters
    ----------
    tol : float
        EM has converged when the gain in log-likelihood between two
        consecutive iterations is below ``tol`` ...
    n_iter : int
        ... or when ``n_iter`` iterations have been done.
    verbose : bool
        Print one line per iteration to :data:`sys.stderr`.

    Attributes
    ----------
    history : collections.deque
        The log-likelihood of the data at the start of every iteration (that
        is, under the parameters before that iteration's M-step).
    iter : int
        Number of iterations performed.

    Notes
    -----
    To use another stopping rule, subclass it, redefine :attr:`converged`,
    and assign an instance to the model's ``monitor_`` before ``fit``: a
    monitor whose class is not exactly ``ConvergenceMonitor`` is kept by
    ``fit`` (a shallow copy of it, reset, becomes ``monitor_`` when the fit
    succeeds, so that a failed or interrupted fit leaves ``monitor_`` as it
    was); otherwise ``fit`` makes a fresh one from ``tol``, ``n_iter`` and
    ``verbose``.
    """

    _template = "{iter:>10d} {log_prob:>16.8f} {delta:>+16.8f}"

    def __init__(self, tol, n_iter, verbose):
        self.tol = tol
        self.n_iter = n_iter
        self.verbose = verbose
        self.history = deque()
        self.iter = 0

    def __repr__(self):
        params = sorted(dict(vars(self), history=list(self.history)).items())
        return (f"{type(self).__name__}(\n"
                + "".join(f"    {k}={v},\n" for k, v in params) + ")")

    def _reset(self):
        self.iter = 0
        self.history.clear()

    def begin(self, init_index, start_objective):
        """Start a run: reset ``iter`` and ``history``.

        Parameters
        ----------
        init_index : int
            Index of the run (unused).
        start_objective : float
            Objective before the first iteration (unused).
        """
        self._reset()

    def end(self, objective, converged):
        """Finish a run (nothing to do: ``report`` printed every iteration).

        Parameters
        ----------
        objective : float
            Final objective of the run (unused).
        converged : bool
            Whether it converged (unused).
        """

    def report(self, log_prob):
        """Record the log-likelihood of one iteration (and print it if verbose).

        Parameters
        ----------
        log_prob : float
            Log-likelihood of the data at this iteration.
        """
        if self.verbose:
            delta = log_prob - self.history[-1] if self.history else np.nan
            print(self._template.format(iter=self.iter + 1, log_prob=log_prob,
                                        delta=delta), file=sys.stderr)
        precision = np.finfo(float).eps ** 0.5
        if self.history and (log_prob - self.history[-1]) < -precision:
            _log.warning("Model is not converging.  Current: %s is not greater "
                         "than %s. Delta is %s", log_prob, self.history[-1],
                         log_prob - self.history[-1])
        self.history.append(log_prob)
        self.iter += 1

    @property
    def converged(self):
        """Whether EM should stop: ``n_iter`` reached or gain below ``tol``."""
        return (self.iter == self.n_iter
                or (len(self.history) >= 2
                    and self.history[-1] - self.history[-2] < self.tol))
