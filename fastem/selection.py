"""Model selection: the number of components and the covariance structure.

:func:`select` fits a grid of :class:`~fastem.GaussianMixture` models and
ranks them by BIC, AIC or ICL, as mclust's ``Mclust`` does in R.
"""

import numbers
import threading
import warnings
from time import perf_counter

import numpy as np

from . import _config
from ._validation import check_array

__all__ = ["CRITERIA", "SelectionResult", "n_parameters", "select"]

CRITERIA = ("bic", "aic", "icl")
_ALL_TYPES = ("full", "tied", "diag", "spherical")

# Rows per block when computing the entropy of the responsibilities: at most
# this many float64 values (8 MB) of responsibilities exist at once.
_ENTROPY_BLOCK_VALUES = 1 << 20

# Where the warnings of the fit running in the current thread go.
_SINK = threading.local()

_FIELDS = ("n_components", "covariance_type", "criterion", "bic", "aic", "icl",
           "log_likelihood", "entropy", "n_parameters", "converged", "n_iter",
           "degenerate", "fit_time", "error", "warnings")


def n_parameters(n_components, n_features, covariance_type):
    """Return the number of free parameters of a Gaussian mixture.

    Parameters
    ----------
    n_components : int
    n_features : int
    covariance_type : {'full', 'tied', 'diag', 'spherical'}

    Returns
    -------
    int
        ``K - 1`` weights, ``K * D`` means and the covariance parameters:
        ``K D (D + 1) / 2`` (full), ``D (D + 1) / 2`` (tied), ``K D`` (diag),
        ``K`` (spherical); the count scikit-learn's ``bic`` uses.
    """
    K, D = int(n_components), int(n_features)
    cov = {"full": K * D * (D + 1) // 2, "tied": D * (D + 1) // 2,
           "diag": K * D, "spherical": K}[covariance_type]
    return cov + K * D + K - 1


def loglik_and_entropy(model, X):
    """Total log-likelihood of ``X`` and entropy of the responsibilities.

    The responsibilities are computed block by block (at most about a
    million values at a time), so no ``n_samples x n_components`` array is
    kept whatever the size of ``X``.

    Parameters
    ----------
    model : GaussianMixture
        A fitted model.
    X : array-like of shape (n_samples, n_features)

    Returns
    -------
    log_likelihood : float
        ``sum_i log p(x_i)``.
    entropy : float
        ``-sum_i sum_k r_ik log r_ik`` (0 when every point belongs to one
        component with certainty; at most ``n_samples * log(K)``).
    """
    X = check_array(X, n_features=model.means_.shape[1],
                    allow_nan=model._allow_nan())
    N = X.shape[0]
    K = model.means_.shape[0]
    step = max(_config.MIN_CHUNK_ROWS, _ENTROPY_BLOCK_VALUES // K)
    ll = 0.0
    ent = 0.0
    with _config.threads(getattr(model, "n_threads", None)):
        for start in range(0, N, step):
            # the model's own per-row outputs: float64 parameters, and the
            # missing-data pass where X has NaN (nan_policy='marginalize')
            lse, resp, _ = model._outputs(X[start:start + step], lse=True,
                                          resp=True)
            ll += float(lse.sum(dtype=np.float64))
            logr = np.log(resp, out=np.zeros_like(resp), where=resp > 0)
            ent -= float(np.einsum("ik,ik->", resp, logr))
    return ll, ent


class SelectionResult:
    """Outcome of :func:`select`: every fit, and the best one.

    Attributes
    ----------
    criterion : str
        ``'bic'``, ``'aic'`` or ``'icl'`` (lower is better for all three).
    results : list of dict
        One row per fitted model, in grid order (covariance types outer,
        numbers of components inner), with keys ``n_components``,
        ``covariance_type``, ``criterion`` (the value of the chosen
        criterion), ``bic``, ``aic``, ``icl``, ``log_likelihood`` (total, with
        the final parameters), ``entropy`` (of the responsibilities),
        ``n_parameters``, ``converged``, ``n_iter``, ``fit_time`` (seconds),
        ``degenerate`` (a component collapsed, see
        :func:`fastem.stats.degenerate_components`; such fits are not chosen
        unless ``include_degenerate=True``), ``error`` (``None``, or why the
        fit failed; the criteria are then ``inf``) and ``warnings``
        (messages the fit issued).
    models : dict
        ``(n_components, covariance_type) -> fitted GaussianMixture`` for
        every fit that succeeded.
    best_params : dict
        ``{'n_components': K, 'covariance_type': type}`` of the best model.
    best_model : GaussianMixture
        The best fitted model.
    best_score : float
        Its criterion value.
    n_samples, n_features : int
        Shape of the data.
    include_degenerate : bool
        Whether degenerate fits could be chosen.
    """

    def __init__(self, criterion, results, models, n_samples, n_features,
                 include_degenerate=False):
        self.criterion = criterion
        self.results = results
        self.models = models
        self.n_samples = n_samples
        self.n_features = n_features
        self.include_degenerate = include_degenerate
        ok = [r for r in results if r["error"] is None]
        if not ok:
            raise ValueError(
                "Every fit failed; first error: " + results[0]["error"])
        if not include_degenerate:
            # As mclust (no BIC for singular fits): a collapsed component's
            # likelihood grows without bound, so it would always win.
            sound = [r for r in ok if not r["degenerate"]]
            if sound:
                ok = sound
            else:
                warnings.warn(
                    "Every fit is degenerate (a component collapsed); the "
                    "best of them is reported. Use fewer components, a "
                    "constrained covariance type or a larger reg_covar.",
                    UserWarning, stacklevel=3)
        # Lowest criterion; ties go to the model with fewer parameters.
        best = min(ok, key=lambda r: (r["criterion"], r["n_parameters"]))
        self.best_params = {"n_components": best["n_components"],
                            "covariance_type": best["covariance_type"]}
        self.best_score = best["criterion"]
        self.best_model = models[(best["n_components"], best["covariance_type"])]

    @property
    def n_components(self):
        """Sorted numbers of components of the grid."""
        return sorted({r["n_components"] for r in self.results})

    @property
    def covariance_types(self):
        """Covariance types of the grid, in the order given."""
        return list(dict.fromkeys(r["covariance_type"] for r in self.results))

    def criterion_values(self, covariance_type):
        """Criterion per number of components for one covariance type.

        Parameters
        ----------
        covariance_type : str

        Returns
        -------
        n_components : ndarray of int
        values : ndarray of float
            ``inf`` where the fit failed.
        """
        rows = sorted((r for r in self.results
                       if r["covariance_type"] == covariance_type),
                      key=lambda r: r["n_components"])
        return (np.array([r["n_components"] for r in rows], dtype=int),
                np.array([r["criterion"] for r in rows], dtype=float))

    def to_pandas(self):
        """Return the table of every fit as a pandas DataFrame (needs pandas).

        Returns
        -------
        pandas.DataFrame
            One row per fit, the columns of :attr:`results`, sorted by the
            criterion (best first).
        """
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(
                "SelectionResult.to_pandas needs pandas: pip install pandas"
            ) from None
        df = pd.DataFrame(self.results, columns=list(_FIELDS))
        return df.sort_values(["criterion", "n_parameters"],
                              kind="stable").reset_index(drop=True)

    def table(self):
        """Readable criterion table: one row per K, one column per type.

        Returns
        -------
        str
            The best value is marked ``*``; values of degenerate fits (a
            collapsed component) are marked ``!``; values of fits that did
            not converge are marked ``~``; failed fits show ``failed``.
        """
        types = self.covariance_types
        by = {(r["n_components"], r["covariance_type"]): r for r in self.results}
        name = self.criterion.upper()
        width = max(12, max(len(t) for t in types) + 2)
        lines = [f"{name} (lower is better)",
                 f"{'K':>4}" + "".join(f"{t:>{width}}" for t in types)]
        best = (self.best_params["n_components"],
                self.best_params["covariance_type"])
        any_nc = any_failed = any_deg = False
        for k in self.n_components:
            cells = []
            for t in types:
                r = by.get((k, t))
                if r is None:
                    cells.append(f"{'':>{width}}")
                    continue
                if r["error"] is not None:
                    any_failed = True
                    cells.append(f"{'failed':>{width - 1}} ")
                    continue
                mark = "*" if (k, t) == best else (
                    "!" if r["degenerate"] else
                    "~" if not r["converged"] else " ")
                any_nc |= not r["converged"] and not r["degenerate"]
                any_deg |= bool(r["degenerate"])
                cells.append(f"{_fmt(r['criterion']):>{width - 1}}{mark}")
            lines.append(f"{k:>4}" + "".join(cells))
        notes = ["* best"]
        if any_deg:
            notes.append("! degenerate (a collapsed component): "
                         + ("may be chosen" if self.include_degenerate
                            else "not chosen"))
        if any_nc:
            notes.append("~ did not converge")
        lines.append("(" + "; ".join(notes) + ")")
        if any_failed:
            for r in self.results:
                if r["error"] is not None:
                    lines.append(f"failed K={r['n_components']} "
                                 f"{r['covariance_type']}: {r['error']}")
        return "\n".join(lines)

    def plot(self, ax=None):
        """Criterion curves (see :func:`fastem.plot.criterion`).

        Parameters
        ----------
        ax : matplotlib Axes, optional

        Returns
        -------
        matplotlib Axes
        """
        from .plot import criterion

        return criterion(self, ax=ax)

    def __repr__(self):
        return (f"SelectionResult(criterion={self.criterion!r}, "
                f"best_params={self.best_params}, "
                f"best_score={self.best_score:.6g}, n_fits={len(self.results)})")

    def __str__(self):
        return self.table()


def _fmt(v):
    return f"{v:.2f}" if abs(v) < 1e9 else f"{v:.6g}"


def _as_components(n_components):
    if isinstance(n_components, numbers.Integral) and not isinstance(
            n_components, bool):
        ks = [int(n_components)]
    else:
        try:
            ks = [int(k) for k in n_components]
        except TypeError:
            raise TypeError(
                "n_components must be an int or an iterable of ints, got "
                f"{n_components!r}.") from None
    if not ks:
        raise ValueError("n_components is empty: give at least one number of "
                         "components.")
    bad = [k for k in ks if k < 1]
    if bad:
        raise ValueError(f"n_components must be >= 1, got {bad}.")
    return list(dict.fromkeys(ks))


def _as_types(covariance_types):
    if isinstance(covariance_types, str):
        covariance_types = (_ALL_TYPES if covariance_types == "all"
                            else (covariance_types,))
    types = list(dict.fromkeys(covariance_types))
    bad = [t for t in types if t not in _ALL_TYPES]
    if bad or not types:
        raise ValueError(
            f"covariance_types must be a subset of {list(_ALL_TYPES)} (or "
            f"'all'), got {list(covariance_types)!r}.")
    return types


def _seed(random_state):
    """One int seed for every fit, so each fit equals a standalone fit."""
    if random_state is None or (isinstance(random_state, numbers.Integral)
                                and not isinstance(random_state, bool)):
        return random_state
    from .mixture import check_random_state

    return int(check_random_state(random_state).randint(2 ** 31 - 1))


def select(X, n_components=range(1, 10),
           covariance_types=("full", "tied", "diag", "spherical"),
           criterion="bic", n_init=1, random_state=None, n_jobs=None,
           progress=None, include_degenerate=False, **kwargs):
    """Fit a grid of Gaussian mixtures and pick the best by BIC, AIC or ICL.

    Every combination of ``n_components`` and ``covariance_types`` is fitted
    with :class:`~fastem.GaussianMixture` on the same validated copy of
    ``X``.  All three criteria are computed for every fit (one extra pass
    over ``X`` per fit, with the final parameters); ``criterion`` decides the
    winner.  All are "lower is better":

    * ``bic = -2 log L + p log n``
    * ``aic = -2 log L + 2 p``
    * ``icl = bic + 2 E``, where ``E = -sum_i sum_k r_ik log r_ik`` is the
      entropy of the responsibilities (Biernacki, Celeux & Govaert, 2000):
      BIC penalized for overlapping components, so ICL favours
      well-separated clusters.  The responsibilities are computed in blocks
      of rows (at most about a million values at a time): no
      ``n_samples x n_components`` array is kept.  (mclust's ``icl`` uses
      the hard assignments' log-posteriors instead of the soft entropy, and
      the opposite sign convention.)

    ``log L`` is the log-likelihood of ``X`` under the final parameters and
    ``p`` is :func:`n_parameters`, the values ``GaussianMixture.bic`` and
    ``.aic`` use.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    n_components : int or iterable of int, default=range(1, 10)
        Numbers of components to try.
    covariance_types : str or sequence of str, default=all four
        Among ``'full'``, ``'tied'``, ``'diag'``, ``'spherical'``; ``'all'``
        means all four.
    criterion : {'bic', 'aic', 'icl'}, default='bic'
    n_init : int, default=1
        Initializations per fit (the best is kept).
    random_state : int, RandomState, Generator or None, default=None
        Every fit uses the same seed (a RandomState or Generator is turned
        into one int seed first), so the model chosen is the one
        ``GaussianMixture(K, covariance_type=..., random_state=seed)`` gives
        on its own.
    n_jobs : int or None, default=None
        Fits to run at the same time (Python threads; the kernels release
        the GIL), each on ``n_threads // n_jobs`` kernel threads.  None
        means one fit per thread, each single-threaded: independent fits
        need no synchronization, which measured 5-30x faster in wall time
        than one fit at a time on two kernel threads (2-core machine, 24
        fits of 2,000 to 100,000 rows, other jobs running).  Results do not
        depend on it.
    progress : callable, optional
        Called as ``progress(row, done, total)`` after each fit, with the
        fit's row of :attr:`SelectionResult.results`.
    include_degenerate : bool, default=False
        Let a degenerate fit (a component collapsed onto a few identical
        rows, or a near-singular covariance; see
        :func:`fastem.stats.degenerate_components`) be chosen.  By default,
        as in mclust, such fits are listed (marked ``degenerate``) but not
        chosen: their likelihood is unbounded, so they would win any
        criterion.
    **kwargs
        Other :class:`~fastem.GaussianMixture` parameters (``tol``,
        ``max_iter``, ``reg_covar``, ``init_params``, ``n_threads``, ...).

    Returns
    -------
    SelectionResult
        ``.results`` (every fit), ``.to_pandas()``, ``.best_params``,
        ``.best_model``, ``.best_score``, ``.models``, ``.table()``.

    Notes
    -----
    A fit that raises (for instance more components than rows, or a
    collapsed component) is recorded with its error and infinite criteria
    instead of stopping the search.  Warnings issued by the fits
    (convergence, emptied components) are recorded in each row's
    ``warnings`` rather than shown.

    Examples
    --------
    >>> import fastem
    >>> res = fastem.select(X, n_components=range(1, 6))  # doctest: +SKIP
    >>> res.best_params                                  # doctest: +SKIP
    {'n_components': 3, 'covariance_type': 'full'}
    >>> res.to_pandas().head()                           # doctest: +SKIP
    """
    from .mixture import GaussianMixture

    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {list(CRITERIA)}, got "
                         f"{criterion!r}.")
    ks = _as_components(n_components)
    types = _as_types(covariance_types)
    for key in ("n_components", "covariance_type", "random_state", "n_init",
                "warm_start"):
        if key in kwargs:
            raise TypeError(f"select() got an unexpected keyword argument "
                            f"{key!r}.")
    seed = _seed(random_state)
    X = check_array(X, estimator="select", min_samples=2,
                    allow_nan=kwargs.get("nan_policy") == "marginalize")
    N, D = X.shape
    n_threads = kwargs.pop("n_threads", None)
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
    # Parameters are checked once, up front, so that a typo is an error and
    # not a grid of failed fits.
    GaussianMixture(n_init=n_init, **kwargs)._check_parameters()

    grid = [(k, t) for t in types for k in ks]

    def run(k, t):
        gm = GaussianMixture(k, covariance_type=t, n_init=n_init,
                             random_state=seed, n_threads=fit_threads, **kwargs)
        row = dict.fromkeys(_FIELDS)
        row.update(n_components=k, covariance_type=t,
                   n_parameters=n_parameters(k, D, t), warnings=[])
        t0 = perf_counter()
        _SINK.messages = row["warnings"]
        try:
            gm.fit(X)
            gm.set_params(n_threads=n_threads)
            ll, ent = loglik_and_entropy(gm, X)
        except (ValueError, np.linalg.LinAlgError, FloatingPointError) as e:
            gm = None
            row["error"] = " ".join(str(e).split())
        finally:
            _SINK.messages = None
        row["fit_time"] = perf_counter() - t0
        row["warnings"] = list(dict.fromkeys(row["warnings"]))
        if gm is None:
            row.update(bic=np.inf, aic=np.inf, icl=np.inf, criterion=np.inf,
                       log_likelihood=-np.inf, converged=False, n_iter=0)
            return row, None
        p = row["n_parameters"]
        bic = -2.0 * ll + p * np.log(N)
        row.update(log_likelihood=ll, entropy=ent, bic=bic,
                   aic=-2.0 * ll + 2.0 * p, icl=bic + 2.0 * ent,
                   converged=bool(gm.converged_), n_iter=int(gm.n_iter_),
                   degenerate=bool(gm.degenerate_components_.size))
        row["criterion"] = row[criterion]
        return row, gm

    out = {}
    done = 0

    def record(key, value):
        nonlocal done
        out[key] = value
        done += 1
        if progress is not None:
            progress(value[0], done, len(grid))

    with warnings.catch_warnings():
        # catch_warnings(record=True) is process-wide and not thread-safe:
        # one handler, installed here, files each warning under the fit
        # running in the thread that issued it.
        warnings.simplefilter("always")
        shown = warnings.showwarning

        def showwarning(message, category, filename, lineno, file=None,
                        line=None):
            sink = getattr(_SINK, "messages", None)
            if sink is None:
                return shown(message, category, filename, lineno, file, line)
            sink.append(str(message))

        warnings.showwarning = showwarning
        if n_jobs == 1:
            for key in grid:
                record(key, run(*key))
        else:
            from concurrent.futures import ThreadPoolExecutor, as_completed

            # Largest fits first, so that the pool ends evenly.
            order = sorted(grid, key=lambda kt: -n_parameters(kt[0], D, kt[1]))
            with ThreadPoolExecutor(n_jobs) as pool:
                futures = {pool.submit(run, *key): key for key in order}
                try:
                    for fut in as_completed(futures):
                        record(futures[fut], fut.result())
                except BaseException:
                    # Ctrl-C (or an error): drop the queued fits and stop the
                    # running ones at their next kernel boundary.
                    _config._ABORT.set()
                    try:
                        pool.shutdown(wait=True, cancel_futures=True)
                    finally:
                        _config._ABORT.clear()
                    raise
    results = [out[key][0] for key in grid]
    models = {key: out[key][1] for key in grid if out[key][1] is not None}
    return SelectionResult(criterion, results, models, N, D,
                           include_degenerate=bool(include_degenerate))
