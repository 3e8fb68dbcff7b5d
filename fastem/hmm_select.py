"""Choosing the number of hidden states of a :class:`~fastem.GaussianHMM`.

:func:`select_states` fits one HMM per number of states (and covariance
type) and ranks them by BIC, AIC or cross-validated log-likelihood of
held-out *sequences*.  The result is a :class:`HMMSelectionResult`, the
:class:`fastem.SelectionResult` of mixtures with HMM columns.
"""

import numbers
from time import perf_counter

import numpy as np

from fastem import _config
from fastem.selection import (
    _SINK,
    SelectionResult,
    _as_components,
    _as_types,
    _fmt,
    _seed,
    run_grid,
)

__all__ = ["CRITERIA", "HMMSelectionResult", "fit_best", "select_states",
           "sequence_folds"]

CRITERIA = ("bic", "aic", "cv")
DEFAULT_CV = 5

_FIELDS = ("n_components", "covariance_type", "criterion", "bic", "aic", "cv",
           "log_likelihood", "cv_loglik", "n_parameters", "converged",
           "n_iter", "degenerate", "fit_time", "error", "cv_error", "warnings")



class HMMSelectionResult(SelectionResult):
    """Outcome of :func:`select_states`: every fit, and the best one.

    The attributes and methods of :class:`fastem.SelectionResult`
    (``results``, ``models``, ``best_params``, ``best_model``,
    ``best_score``, ``to_pandas()``, ``table()``, ``plot()``), for HMMs.

    Attributes
    ----------
    criterion : str
        ``'bic'``, ``'aic'`` or ``'cv'`` (lower is better for all three).
    results : list of dict
        One row per (number of states, covariance type), in grid order, with
        keys ``n_components``, ``covariance_type``, ``criterion`` (the value
        of the chosen criterion), ``bic``, ``aic``, ``cv`` (``-2 x`` the
        total held-out log-likelihood of the held-out sequences; NaN without
        cross-validation), ``log_likelihood`` (of all the data under the
        model fitted on all of it), ``cv_loglik`` (mean held-out
        log-likelihood per row; NaN without cross-validation),
        ``n_parameters`` (free scalars, the count ``GaussianHMM.bic`` uses),
        ``converged``, ``n_iter``, ``degenerate`` (always False: kept for
        :class:`~fastem.SelectionResult`), ``fit_time`` (seconds, the fold
        fits included), ``error`` (``None``, or why the fit failed; the
        criteria are then ``inf``), ``cv_error`` (``None``, or why a fold
        failed) and ``warnings``.
    models : dict
        ``(n_components, covariance_type) -> GaussianHMM`` fitted on all the
        data, for every fit that succeeded.
    best_params : dict
        ``{'n_components': K, 'covariance_type': type}``.
    best_model : GaussianHMM
    best_score : float
    n_samples, n_features : int
    n_sequences : int
    cv : int or None
        Number of folds.
    cv_folds : list of list of (int, int) or None
        The held-out ``(start, stop)`` row ranges of each fold (see
        :func:`sequence_folds`).
    """

    _fields = _FIELDS

    def __init__(self, criterion, results, models, n_samples, n_features,
                 n_sequences, cv=None, cv_folds=None):
        self.n_sequences = n_sequences
        super().__init__(criterion, results, models, n_samples, n_features,
                         include_degenerate=True, cv=cv)
        self.cv = cv
        self.cv_folds = cv_folds

    def table(self):
        """Readable criterion table: one row per number of states.

        Returns
        -------
        str
            One column per covariance type; the best value is marked ``*``,
            fits that did not converge ``~``; failed fits show ``failed``.
        """
        text = super().table()
        lines = text.split("\n")
        if self.criterion == "cv":
            lines[0] = (f"CV (-2 x held-out log-likelihood of whole "
                        f"sequences, {self.cv} folds) (lower is better)")
        return "\n".join(lines)

    def __repr__(self):
        return (f"HMMSelectionResult(criterion={self.criterion!r}, "
                f"best_params={self.best_params}, "
                f"best_score={_fmt(self.best_score)}, "
                f"n_fits={len(self.results)})")


def sequence_folds(lengths, n_samples, cv, random_state=None):
    """Held-out row ranges of each fold of a split over sequences.

    With at least ``cv`` sequences, whole sequences are held out: a seeded
    permutation of the sequences is cut into ``cv`` groups whose sizes
    differ by at most one.  With fewer (a single long series, typically),
    the rows are cut into ``cv`` contiguous blocks of about equal size (cut
    further at sequence boundaries): fold ``i`` holds out block ``i``, and
    trains on the rest, the parts before and after the block being separate
    sequences.

    Parameters
    ----------
    lengths : array-like of int or None
        Lengths of the sequences (None: one sequence).
    n_samples : int
    cv : int
        Number of folds, at least 2.
    random_state : int, RandomState, Generator or None
        Seeds the permutation of the sequences.

    Returns
    -------
    list of list of (int, int)
        For each fold, the ``(start, stop)`` row ranges held out; each is
        scored as one sequence.
    """
    from fastem.models.base import check_random_state
    from fastem.models.hmm import check_lengths

    starts = [int(s) for s in check_lengths(lengths, int(n_samples))]
    if isinstance(cv, bool) or not isinstance(cv, numbers.Integral) or cv < 2:
        raise ValueError(f"cv must be an int >= 2, got {cv!r}.")
    cv = int(cv)
    S = len(starts) - 1
    N = starts[-1]
    if S >= cv:
        perm = check_random_state(random_state).permutation(S)
        return [sorted((starts[s], starts[s + 1]) for s in g)
                for g in np.array_split(perm, cv)]
    if N < cv:
        raise ValueError(f"cv={cv} folds need at least {cv} rows, got {N}.")
    edges = [int(e) for e in np.linspace(0, N, cv + 1).round()]
    cuts = sorted(set(edges) | set(starts))
    folds = [[] for _ in range(cv)]
    for a, b in zip(cuts[:-1], cuts[1:]):
        if b > a:
            folds[int(np.searchsorted(edges, a, side="right")) - 1].append(
                (a, b))
    return folds


def _train_ranges(starts, held):
    """Row ranges (as sequences) of the data without the ``held`` ranges."""
    out = []
    held = sorted(held)
    for a, b in zip(starts[:-1], starts[1:]):
        pos = a
        for h0, h1 in held:
            if h1 <= a or h0 >= b:
                continue
            if h0 > pos:
                out.append((pos, h0))
            pos = max(pos, h1)
        if pos < b:
            out.append((pos, b))
    return out


def _take(X, ranges):
    idx = np.concatenate([np.arange(a, b) for a, b in ranges])
    return X[idx], [b - a for a, b in ranges]


def fit_best(params, X, lengths=None, seed=None, n_init=1, estimator=None):
    """Fit ``n_init`` HMMs from different seeds and keep the best.

    The fit behind :func:`select_states` and ``fastem hmm fit``: run ``i``
    uses ``random_state = seed + i`` (None: unseeded); with more than one
    run, the one whose fitted model scores ``X`` highest is kept.  A run
    that fails (a collapsed covariance, a non-finite log-likelihood) is
    skipped; when all fail, the last error is raised.

    Parameters
    ----------
    params : dict
        Constructor arguments of the estimator (without ``random_state``).
    X : array-like of shape (n_samples, n_features)
    lengths : array-like of int, optional
        Lengths of the sequences in ``X``.
    seed : int or None, default=None
    n_init : int, default=1
    estimator : class, optional
        The HMM class (default :class:`~fastem.GaussianHMM`), e.g.
        :class:`~fastem.PoissonHMM`.

    Returns
    -------
    The best fitted model.

    Raises
    ------
    ValueError, numpy.linalg.LinAlgError, FloatingPointError
        The last run's error, when every run failed.
    """
    if estimator is None:
        from fastem.models.hmm import GaussianHMM as estimator

    best = best_ll = error = None
    for i in range(n_init):
        rs = None if seed is None else seed + i
        try:
            m = estimator(**params, random_state=rs).fit(X, lengths)
            ll = m.score(X, lengths) if n_init > 1 else 0.0
        except (ValueError, np.linalg.LinAlgError, FloatingPointError) as e:
            error = e
            continue
        if best is None or ll > best_ll:
            best, best_ll = m, ll
    if best is None:
        raise error
    return best


def select_states(X, lengths=None, n_components=range(1, 6),
                  covariance_types=("diag",), criterion="bic", cv=None,
                  random_state=None, n_jobs=None, n_init=3, progress=None,
                  **kwargs):
    """Fit GaussianHMMs with several numbers of states and pick the best.

    Every combination of ``n_components`` and ``covariance_types`` is fitted
    with :class:`~fastem.GaussianHMM` on all the data (with its
    ``lengths``), and ranked by a criterion, lower is better:

    * ``bic = -2 log L + p log n`` and ``aic = -2 log L + 2 p``, the values
      of ``GaussianHMM.bic`` / ``.aic`` (``p``: free scalars of the start
      distribution, transitions, means and covariances; ``n``: rows);
    * ``cv = -2 x`` the log-likelihood of held-out data under models fitted
      without it, summed over ``cv`` folds.  The folds hold out whole
      sequences when there are at least ``cv`` of them, else contiguous
      blocks of rows (see :func:`sequence_folds`); each held-out part is
      scored as a sequence of its own.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Observations of all sequences, concatenated.
    lengths : array-like of int, optional
        Lengths of the sequences (sum ``n_samples``); None is one sequence.
    n_components : int or iterable of int, default=range(1, 6)
        Numbers of states to try.
    covariance_types : str or sequence of str, default=('diag',)
        Among ``'spherical'``, ``'diag'``, ``'full'``, ``'tied'``; ``'all'``
        means all four.
    criterion : {'bic', 'aic', 'cv'}, default='bic'
    cv : int, optional
        Number of folds; default 5 with ``criterion='cv'``, else no
        cross-validation (giving ``cv`` computes the ``cv`` column whatever
        the criterion).
    random_state : int, RandomState, Generator or None
        Seeds every fit (the same seeds for all grid points and folds; a
        RandomState or Generator is turned into one int first) and the fold
        split.
    n_jobs : int or None
        Grid points fitted at the same time (threads), each on
        ``n_threads // n_jobs`` kernel threads; None: one per kernel thread
        (at most the grid size).  Results do not depend on it.
    n_init : int, default=3
        Fits per grid point (and fold), seeds ``seed``, ``seed + 1``...; the
        one with the highest log-likelihood of its training data is kept.
        Baum-Welch often stops in a poor local optimum (hmmlearn's random
        start and transition matrices): on a well-separated 3-state series,
        single starts picked 4 states while 3 starts per fit picked 3 for
        every seed tried.  ``n_init=1`` makes each fit equal to a standalone
        ``GaussianHMM(K, random_state=seed).fit(X, lengths)``.
    progress : callable, optional
        Called as ``progress(row, done, total)`` after each grid point.
    **kwargs
        Other :class:`~fastem.GaussianHMM` parameters (``n_iter``, ``tol``,
        ``params``, ``init_params``, priors, ``n_threads``...).

    Returns
    -------
    HMMSelectionResult
        ``.results``, ``.to_pandas()``, ``.table()``, ``.best_params``,
        ``.best_model``, ``.best_score``, ``.models``.

    Notes
    -----
    A fit that raises (more states than rows, a collapsed covariance) is
    recorded with its error and infinite criteria instead of stopping the
    search; a fold that fails makes ``cv`` infinite for its grid point.

    Examples
    --------
    >>> from fastem.hmm_select import select_states
    >>> res = select_states(X, lengths, n_components=range(1, 7),
    ...                     criterion="cv", random_state=0)  # doctest: +SKIP
    >>> res.best_params                                     # doctest: +SKIP
    {'n_components': 3, 'covariance_type': 'diag'}
    >>> print(res.table())                                  # doctest: +SKIP
    """
    from fastem._validation import check_array
    from fastem.models.hmm import GaussianHMM

    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {list(CRITERIA)}, got "
                         f"{criterion!r}.")
    ks = _as_components(n_components)
    types = _as_types(covariance_types)
    for key in ("n_components", "covariance_type", "random_state"):
        if key in kwargs:
            raise TypeError(f"select_states() got an unexpected keyword "
                            f"argument {key!r}.")
    if isinstance(n_init, bool) or not isinstance(n_init, numbers.Integral) \
            or n_init < 1:
        raise ValueError(f"n_init must be a positive int, got {n_init!r}.")
    if cv is None and criterion == "cv":
        cv = DEFAULT_CV
    seed = _seed(random_state)
    n_threads = kwargs.pop("n_threads", None)
    probe = GaussianHMM(**kwargs)
    probe.check_params()  # a typo is an error, not a grid of failures
    X, lens = probe.check_data(X, lengths)
    X = check_array(X, estimator="select_states", min_samples=2)
    N, D = X.shape
    lens = [int(n) for n in lens]
    starts = [0] + np.cumsum(lens).tolist()
    folds = None
    if cv is not None:
        folds = sequence_folds(lens, N, cv, seed)
    total_threads = (_config.validate_threads(n_threads)
                     or _config.get_num_threads())
    if n_jobs is None:
        n_jobs = total_threads
    elif isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) \
            or n_jobs < 1:
        raise ValueError(f"n_jobs must be a positive int or None, got "
                         f"{n_jobs!r}.")
    n_jobs = max(1, min(int(n_jobs), len(ks) * len(types)))
    fit_threads = max(1, total_threads // n_jobs)
    grid = [(k, t) for t in types for k in ks]

    def n_params(k, t):
        return GaussianHMM(k, covariance_type=t).n_parameters(n_features=D)

    def run(k, t):
        params = dict(kwargs, n_components=k, covariance_type=t,
                      n_threads=fit_threads)
        row = dict.fromkeys(_FIELDS)
        row.update(n_components=k, covariance_type=t, degenerate=False,
                   cv=np.nan, cv_loglik=np.nan, warnings=[])
        t0 = perf_counter()
        _SINK.messages = row["warnings"]
        model = None
        try:
            try:
                model = fit_best(params, X, lens, seed, n_init)
                ll = model.score(X, lens)
            except (ValueError, np.linalg.LinAlgError,
                    FloatingPointError) as e:
                model = None
                row["error"] = " ".join(str(e).split())
            if model is not None and folds is not None:
                held_ll = 0.0
                held_n = 0
                for i, held in enumerate(folds):
                    try:
                        Xtr, ltr = _take(X, _train_ranges(starts, held))
                        Xte, lte = _take(X, held)
                        m = fit_best(params, Xtr, ltr, seed, n_init)
                        held_ll += m.score(Xte, lte)
                        held_n += Xte.shape[0]
                    except (ValueError, np.linalg.LinAlgError,
                            FloatingPointError) as e:
                        row["cv_error"] = (f"fold {i + 1}/{len(folds)}: "
                                           + " ".join(str(e).split()))
                        break
                if row["cv_error"] is None and np.isfinite(held_ll):
                    row.update(cv=-2.0 * held_ll, cv_loglik=held_ll / held_n)
                else:
                    row["cv"] = np.inf
                    if row["cv_error"] is None:
                        row["cv_error"] = ("a held-out part has zero "
                                           "probability under the model")
        finally:
            _SINK.messages = None
        row["fit_time"] = perf_counter() - t0
        row["warnings"] = list(dict.fromkeys(row["warnings"]))
        if model is None:
            row.update(bic=np.inf, aic=np.inf, cv=np.inf, criterion=np.inf,
                       log_likelihood=-np.inf, converged=False, n_iter=0,
                       n_parameters=n_params(k, t))
            return row, None
        model.set_params(n_threads=n_threads)
        p = n_params(k, t)
        row.update(log_likelihood=ll, n_parameters=p,
                   bic=-2.0 * ll + p * np.log(N), aic=-2.0 * ll + 2.0 * p,
                   converged=bool(model.monitor_.converged),
                   n_iter=int(model.monitor_.iter))
        row["criterion"] = row[criterion]
        return row, model

    out = {}
    done = 0

    def record(key, value):
        nonlocal done
        out[key] = value
        done += 1
        if progress is not None:
            progress(value[0], done, len(grid))

    run_grid(grid, run, record, n_jobs, order=lambda kt: -kt[0])  # largest first
    results = [out[key][0] for key in grid]
    models = {key: out[key][1] for key in grid if out[key][1] is not None}
    return HMMSelectionResult(criterion, results, models, N, D,
                              len(lens), cv=cv, cv_folds=folds)
