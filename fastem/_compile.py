"""Ahead-of-time compilation of fastem's kernels, and the first-run notice.

fastem's kernels are numba functions compiled on first use and cached on
disk (``cache=True``).  This module

* watches numba's ``"numba:compile"`` events (:class:`CompileListener`),
  counting only fastem's own dispatchers (their module starts with
  ``"fastem"``): a cache hit is no event, so on a warm cache it sees nothing;
* shows the command line's first-run notice (:class:`CompileNotice`),
  installed by ``fastem.cli`` only -- library users are never spammed;
* compiles everything ahead of time (:func:`compile`, ``fastem compile``),
  e.g. while building a Docker image.
"""

import importlib.abc
import importlib.util
import os
import sys
import threading
import time

NOTICE = ("fastem: compiling fastem's kernels for this machine (first run "
          "only) ...")

KINDS = ("mixture", "missing", "hmm", "poisson", "categorical",
         "poisson_hmm", "gmm_hmm", "hc")
# the kinds without covariance types: one step per dtype
_NO_COVARIANCE = ("poisson", "categorical", "poisson_hmm", "gmm_hmm", "hc")
DTYPES = ("float64", "float32")
COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
# HMM data of 80 rows as one sequence, as three long sequences (the
# row-parallel passes) and as eight short ones (the grouped pass, chosen when
# the longest sequence is at most 1/8 of the rows)
_LENGTHS = (None, [30, 25, 25], [10] * 8)


# ------------------------------------------------------------- listener
def _is_fastem(dispatcher):
    func = getattr(dispatcher, "py_func", None)
    module = getattr(func, "__module__", None) or ""
    return module == "fastem" or module.startswith("fastem.")


def _make_listener_class():
    from numba.core import event

    class _Listener(event.Listener):
        def __init__(self, owner):
            self.owner = owner

        def on_start(self, ev):
            d = (ev.data or {}).get("dispatcher")
            if d is not None and self.owner.accept(d):
                self.owner._start(d)

        def on_end(self, ev):
            d = (ev.data or {}).get("dispatcher")
            if d is not None and self.owner.accept(d):
                # Event.is_failed is inverted (numba 0.68: True when
                # nothing failed); read the exception details themselves.
                exc = getattr(ev, "_exc_details", None)
                self.owner._end(d, ok=not exc or exc[0] is None)

    return _Listener


class CompileListener:
    """Count the compilations of fastem's numba dispatchers.

    Parameters
    ----------
    accept : callable, optional
        ``accept(dispatcher) -> bool``: which dispatchers count (default
        those whose Python function's module is ``fastem`` or below).
    on_start, on_end, on_first : callable, optional
        Called (with this listener) when a counted compilation starts, ends,
        and when the first one starts.

    Attributes
    ----------
    n_compiled : int
        Specializations compiled so far (one per dispatcher and signature).
    kernels : set of str
        Qualified names of the kernels compiled.
    t_first : float or None
        ``time.perf_counter()`` when the first compilation started.
    """

    def __init__(self, accept=None, on_start=None, on_end=None,
                 on_first=None):
        self.accept = accept or _is_fastem
        self.on_start = on_start
        self.on_end = on_end
        self.on_first = on_first
        self.n_compiled = 0
        self.kernels = set()
        self.depth = 0
        self.current = None
        self.t_first = None
        self._listener = None
        self._lock = threading.Lock()

    def _start(self, dispatcher):
        with self._lock:
            self.depth += 1
            self.current = _name(dispatcher)
            first = self.t_first is None
            if first:
                self.t_first = time.perf_counter()
        if first and self.on_first is not None:
            self.on_first(self)
        if self.on_start is not None:
            self.on_start(self)

    def _end(self, dispatcher, ok=True):
        with self._lock:
            self.depth = max(self.depth - 1, 0)
            if ok:
                self.n_compiled += 1
                self.kernels.add(_name(dispatcher))
        if self.on_end is not None:
            self.on_end(self)

    def install(self):
        """Register with numba (imports numba); returns ``self``."""
        from numba.core import event

        if self._listener is None:
            self._listener = _make_listener_class()(self)
            event.register("numba:compile", self._listener)
        return self

    def uninstall(self):
        """Unregister from numba (if registered)."""
        if self._listener is not None:
            from numba.core import event

            try:
                event.unregister("numba:compile", self._listener)
            except (ValueError, KeyError):
                pass
            self._listener = None

    def __enter__(self):
        return self.install()

    def __exit__(self, *exc):
        self.uninstall()


def _name(dispatcher):
    func = getattr(dispatcher, "py_func", None)
    if func is None:
        return repr(dispatcher)
    return f"{func.__module__}.{func.__qualname__}"


class _AfterImport(importlib.abc.MetaPathFinder):
    """Run ``callback`` right after module ``name`` is first imported."""

    def __init__(self, name, callback):
        self.name = name
        self.callback = callback

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        try:
            sys.meta_path.remove(self)
        except ValueError:
            pass
        spec = importlib.util.find_spec(fullname)
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        original = loader.exec_module
        callback = self.callback

        def exec_module(module):
            original(module)
            callback()

        loader.exec_module = exec_module
        return spec


def when_imported(name, callback):
    """Call ``callback()`` once module ``name`` is imported (now if it is).

    Costs nothing until ``name`` is imported: the command line uses it so
    that commands which never load numba do not import it for the notice.
    """
    if name in sys.modules:
        callback()
        return
    sys.meta_path.insert(0, _AfterImport(name, callback))


# --------------------------------------------------------------- notice
class CompileNotice:
    """The command line's first-run notice on ``stream`` (stderr).

    Nothing is written unless one of fastem's kernels is actually compiled
    (a warm cache prints nothing).  On a terminal the line
    ``fastem: compiling fastem's kernels ... 12 kernels compiled, 31 s`` is
    rewritten in place (a ticker thread keeps the seconds moving); otherwise
    the notice is one line when compiling starts and one line at the end
    (:meth:`close`) with the count and the time.

    Parameters
    ----------
    stream : file
        Usually ``sys.stderr``.
    interactive : bool, optional
        Rewrite the line in place (default: ``stream.isatty()``).
    interval : float
        Seconds between two redraws of the ticker.
    """

    def __init__(self, stream, interactive=None, interval=0.5):
        if interactive is None:
            try:
                interactive = stream.isatty()
            except (AttributeError, ValueError):
                interactive = False
        self.stream = stream
        self.interactive = interactive
        self.interval = interval
        self.listener = CompileListener(on_first=self._first,
                                        on_end=self._redraw)
        self.width = 0
        self.closed = False
        self._stop = threading.Event()
        self._thread = None
        self._lock = threading.Lock()

    def install(self):
        """Listen to numba's compile events, once numba is imported."""
        when_imported("numba", self._install_now)
        return self

    def _install_now(self):
        if not self.closed:
            self.listener.install()

    def _elapsed(self):
        t0 = self.listener.t_first
        return 0.0 if t0 is None else time.perf_counter() - t0

    def _status(self):
        n = self.listener.n_compiled
        return (f"{NOTICE} {n} kernel{'s' if n != 1 else ''} compiled, "
                f"{self._elapsed():.0f} s")

    def _write(self, text, end=""):
        try:
            self.stream.write(text + end)
            self.stream.flush()
        except (OSError, ValueError):
            pass

    def _first(self, listener):
        if self.interactive:
            self._redraw(listener)
            self._thread = threading.Thread(target=self._tick, daemon=True)
            self._thread.start()
        else:
            self._write(NOTICE, "\n")

    def _redraw(self, listener=None):
        if not self.interactive or self.closed:
            return
        with self._lock:
            text = self._status()
            pad = max(self.width - len(text), 0)
            self.width = len(text)
            self._write("\r" + text + " " * pad)

    def _tick(self):
        while not self._stop.wait(self.interval):
            self._redraw()

    def close(self):
        """Stop listening; finish the notice line if anything compiled."""
        if self.closed:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self.listener.uninstall()
        self.closed = True
        if self.listener.t_first is None:
            return
        n = self.listener.n_compiled
        final = (f"fastem: compiled {n} kernel{'s' if n != 1 else ''} in "
                 f"{self._elapsed():.1f} s (cached for the next runs)")
        if self.interactive:
            with self._lock:
                pad = max(self.width - len(final), 0)
                self._write("\r" + final + " " * pad, "\n")
        else:
            self._write(final, "\n")


# ---------------------------------------------------------- compile all
def cache_location():
    """Where numba caches fastem's kernels.

    Returns
    -------
    str
        ``numba.config.CACHE_DIR`` (``NUMBA_CACHE_DIR``) when set, else the
        ``__pycache__`` directory next to fastem's sources.
    """
    import numba

    cache_dir = getattr(numba.config, "CACHE_DIR", "") or os.environ.get(
        "NUMBA_CACHE_DIR", "")
    if cache_dir:
        return os.path.abspath(cache_dir)
    return os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "__pycache__")


def _data(dtype, n=60, d=2, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    half = n // 2
    X = np.vstack([rng.normal(0.0, 1.0, (half, d)),
                   rng.normal(4.0, 1.0, (n - half, d))])
    return np.ascontiguousarray(X, dtype=dtype)


def _read_only(X):
    Y = X.copy()
    Y.setflags(write=False)
    return Y


def _mixture_steps(ct, dtype, layouts):
    import numpy as np

    from fastem.models.mixture import GaussianMixture

    def run(call):
        X0 = _data(dtype)
        w = np.linspace(0.5, 1.5, X0.shape[0])
        for layout in layouts:
            X = _read_only(X0) if layout == "read-only" else X0
            for init in ("kmeans", "k-means++", "random",
                         "random_from_data"):
                gm = GaussianMixture(2, covariance_type=ct, max_iter=2,
                                     tol=0.0, init_params=init,
                                     random_state=0)
                call(gm.fit, X)
            call(gm.fit, X, sample_weight=w)
            call(gm.fit_predict, X)
            call(gm.predict, X)
            call(gm.predict_proba, X)
            call(gm.score_samples, X)
            call(gm.score, X)
            call(gm.bic, X)
            call(gm.sample, 5)
            pf = GaussianMixture(2, covariance_type=ct, random_state=0)
            call(pf.partial_fit, X)
            call(pf.partial_fit, X)
            fc = GaussianMixture(2, covariance_type=ct, max_iter=2, tol=0.0,
                                 random_state=0)
            call(fc.fit_chunks, lambda: iter((X[:30], X[30:])), init_size=60)

    return [(f"GaussianMixture {ct} {dtype}", run)]


def _missing_steps(ct, dtype, layouts):
    import numpy as np

    from fastem.models.mixture import GaussianMixture

    def run(call):
        X0 = _data(dtype)
        X0[::7, 0] = np.nan
        X0[3::11, -1] = np.nan
        w = np.linspace(0.5, 1.5, X0.shape[0])
        for layout in layouts:
            X = _read_only(X0) if layout == "read-only" else X0
            for init in ("kmeans", "random"):
                gm = GaussianMixture(2, covariance_type=ct, max_iter=2,
                                     tol=0.0, init_params=init,
                                     nan_policy="marginalize",
                                     random_state=0)
                call(gm.fit, X)
            call(gm.fit, X, sample_weight=w)
            call(gm.predict, X)
            call(gm.predict_proba, X)
            call(gm.score_samples, X)
            call(gm.impute, X)

    return [(f"GaussianMixture {ct} {dtype} with missing values", run)]


def _hmm_steps(ct, dtype, layouts):
    from fastem.models.hmm import GaussianHMM

    def run(call):
        X0 = _data(dtype, n=80)
        for layout in layouts:
            X = _read_only(X0) if layout == "read-only" else X0
            for lengths in _LENGTHS:
                for impl in ("log", "scaling"):
                    h = GaussianHMM(2, covariance_type=ct, n_iter=2,
                                    implementation=impl, random_state=0)
                    call(h.fit, X, lengths)
                    for method in (h.score, h.score_samples, h.predict,
                                   h.predict_proba):
                        call(method, X, lengths)
                    for algorithm in ("viterbi", "map"):
                        call(h.decode, X, lengths, algorithm=algorithm)
            call(h.sample, 5, random_state=0)

    return [(f"GaussianHMM {ct} {dtype}", run)]


def _poisson_steps(ct, dtype, layouts):
    import numpy as np

    from fastem.models.poisson import PoissonMixture

    def run(call):
        X0 = np.floor(np.abs(_data(dtype)) * 3).astype(dtype)
        w = np.linspace(0.5, 1.5, X0.shape[0])
        for layout in layouts:
            X = _read_only(X0) if layout == "read-only" else X0
            for init in ("kmeans", "k-means++", "random",
                         "random_from_data"):
                pm = PoissonMixture(2, max_iter=2, tol=0.0, init_params=init,
                                    random_state=0)
                call(pm.fit, X)
            call(pm.fit, X, sample_weight=w)
            for method in (pm.predict, pm.predict_proba, pm.score_samples):
                call(method, X)

    return [(f"PoissonMixture {dtype}", run)]


def _call(errors, label, func, *args, **kwargs):
    """``func(*args, **kwargs)``; an error is recorded, not raised.

    A numerical failure of one tiny fit must not stop the compilation of the
    other entry points (the kernels it needed are compiled by then).
    """
    try:
        func(*args, **kwargs)
    except Exception as e:  # reported in the summary
        msg = f"{label}: {getattr(func, '__name__', func)}: " \
              f"{type(e).__name__}: {' '.join(str(e).split())}"
        if msg not in errors:
            errors.append(msg)


def _categorical_steps(ct, dtype, layouts):
    import numpy as np

    from fastem.models.categorical import BernoulliMixture, CategoricalMixture

    def run(call):
        X0 = np.floor(np.abs(_data(dtype)) * 1.5).clip(0, 2).astype(dtype)
        X0[::7, 1] = np.nan
        for layout in layouts:
            X = _read_only(X0) if layout == "read-only" else X0
            cm = CategoricalMixture(2, max_iter=2, tol=0.0, random_state=0)
            call(cm.fit, X)
            for method in (cm.predict, cm.predict_proba, cm.score_samples):
                call(method, X)
            bm = BernoulliMixture(2, max_iter=2, tol=0.0, random_state=0)
            call(bm.fit, np.minimum(X, 1))

    return [(f"CategoricalMixture {dtype}", run)]


def _poisson_hmm_steps(ct, dtype, layouts):
    import numpy as np

    from fastem.models.categorical_hmm import CategoricalHMM
    from fastem.models.multinomial_hmm import MultinomialHMM
    from fastem.models.poisson_hmm import PoissonHMM

    def run(call):
        X0 = np.floor(np.abs(_data(dtype, n=80)) * 3).astype(dtype)
        for layout in layouts:
            X = _read_only(X0) if layout == "read-only" else X0
            for lengths in _LENGTHS:
                for h, Xh in ((PoissonHMM(2, n_iter=2, random_state=0), X),
                              (CategoricalHMM(2, n_iter=2, random_state=0),
                               X[:, :1]),
                              (MultinomialHMM(2, n_iter=2, random_state=0),
                               X)):
                    call(h.fit, Xh, lengths)
                    for method in (h.score, h.predict, h.predict_proba):
                        call(method, Xh, lengths)

    return [(f"PoissonHMM / CategoricalHMM / MultinomialHMM {dtype}", run)]


def _gmm_hmm_steps(ct, dtype, layouts):
    from fastem.models.gmm_hmm import GMMHMM

    def run(call):
        X0 = _data(dtype, n=80)
        for layout in layouts:
            X = _read_only(X0) if layout == "read-only" else X0
            for cov in COVARIANCE_TYPES:
                for lengths in _LENGTHS:
                    h = GMMHMM(2, n_mix=2, covariance_type=cov, n_iter=2,
                               random_state=0)
                    call(h.fit, X, lengths)
                    for method in (h.score, h.predict, h.predict_proba):
                        call(method, X, lengths)

    return [(f"GMMHMM {dtype}", run)]


def _hc_steps(ct, dtype, layouts):
    from fastem.core.hc import hc

    def run(call):
        # the tree is built in float64 whatever the data's dtype
        call(hc, _data("float64", n=40, d=3))

    return [("hc (mclust's start) float64", run)] if dtype == DTYPES[0] \
        else []


_STEPS = {"mixture": _mixture_steps, "missing": _missing_steps,
          "hmm": _hmm_steps, "poisson": _poisson_steps,
          "categorical": _categorical_steps,
          "poisson_hmm": _poisson_hmm_steps, "gmm_hmm": _gmm_hmm_steps,
          "hc": _hc_steps}


class CompileReport(dict):
    """What :func:`compile` did (a dict, with attribute access).

    Keys: ``n_compiled`` (specializations compiled: one per kernel and
    argument types), ``n_kernels`` (distinct kernels among them),
    ``kernels`` (their names), ``n_steps``, ``wall_s``, ``cpu_s``
    (``time.process_time`` of this process), ``cache_dir`` and ``errors``
    (calls that failed, e.g. a tiny fit that diverged; the others ran).
    """

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def summary(self):
        """One line describing the report.

        Returns
        -------
        str
        """
        if self["n_compiled"] == 0:
            what = "nothing to compile: every kernel was already cached"
        else:
            what = (f"compiled {self['n_compiled']} specializations of "
                    f"{self['n_kernels']} kernels")
        if self["errors"]:
            what += f", {len(self['errors'])} calls failed"
        return (f"fastem compile: {what} ({self['n_steps']} steps, "
                f"{self['wall_s']:.1f} s wall, {self['cpu_s']:.1f} s CPU); "
                f"cache: {self['cache_dir']}")


def compile(kinds=KINDS, dtypes=DTYPES, covariance_types=COVARIANCE_TYPES,
            layouts=("writeable", "read-only"), verbose=False, stream=None):
    """Compile fastem's kernels ahead of time (e.g. in a Docker image build).

    Calls every public entry point on tiny data so that numba compiles (and
    caches on disk) every specialization later runs need: fit (each
    ``init_params``, with and without ``sample_weight``), ``partial_fit``,
    ``fit_chunks``, predict / predict_proba / score_samples / score / bic /
    sample of :class:`~fastem.GaussianMixture`; the same with missing
    values (``nan_policy="marginalize"``, and ``impute``); fit / score /
    score_samples / predict / predict_proba / decode (both algorithms) /
    sample of :class:`~fastem.GaussianHMM` on one sequence, on several long
    ones and on many short ones (the grouped pass); the other mixtures and
    HMMs and mclust's hierarchical start likewise.  Tied and spherical
    models run on the full and diag layouts, and the HMMs and the
    missing-data pass read float32 into float64, so those steps compile
    nothing of their own.  A second call (or run) finds everything cached
    and compiles nothing.

    Parameters
    ----------
    kinds : sequence of {"mixture", "missing", "hmm", "poisson", \
"categorical", "poisson_hmm", "gmm_hmm", "hc"}
        Which estimators (default all).
    dtypes : sequence of {"float64", "float32"}
        Input dtypes (default both).
    covariance_types : sequence of {"full", "tied", "diag", "spherical"}
        Default all four.
    layouts : sequence of {"writeable", "read-only"}
        Input arrays: ordinary and read-only (``np.load(mmap_mode="r")``);
        both share one specialization, the read-only pass checks it.
    verbose : bool
        Show progress on ``stream`` (rewritten in place on a terminal) and
        a summary at the end.
    stream : file, optional
        Where progress goes (default ``sys.stderr``).

    Returns
    -------
    CompileReport
        A dict: ``n_compiled``, ``n_kernels``, ``kernels``, ``n_steps``,
        ``wall_s``, ``cpu_s``, ``cache_dir``, ``errors``.
    """
    import functools
    import warnings

    for name, values, allowed in (("kinds", kinds, KINDS),
                                  ("dtypes", dtypes, DTYPES),
                                  ("covariance_types", covariance_types,
                                   COVARIANCE_TYPES),
                                  ("layouts", layouts,
                                   ("writeable", "read-only"))):
        if isinstance(values, str):
            raise TypeError(f"{name} must be a sequence, e.g. ({values!r},)")
        bad = [v for v in values if v not in allowed]
        if bad:
            raise ValueError(f"{name}: unknown {bad}; expected some of "
                             f"{list(allowed)}")
    stream = sys.stderr if stream is None else stream
    # (a family without covariance types compiles once per dtype)
    steps = [step for kind in kinds
             for ct in (covariance_types if kind not in _NO_COVARIANCE
                        else covariance_types[:1])
             for dtype in dtypes
             for step in _STEPS[kind](ct, dtype, tuple(layouts))]
    try:
        interactive = verbose and stream.isatty()
    except (AttributeError, ValueError):
        interactive = False
    t0, c0 = time.perf_counter(), time.process_time()
    width = 0

    def show(text, end=""):
        nonlocal width
        pad = max(width - len(text), 0)
        width = 0 if end else len(text)
        stream.write(("\r" if interactive else "") + text + " " * pad + end)
        stream.flush()

    errors = []
    listener = CompileListener()
    with listener:
        for i, (label, run) in enumerate(steps, 1):
            before = listener.n_compiled
            if interactive:
                show(f"fastem compile: [{i}/{len(steps)}] {label} ... "
                     f"{listener.n_compiled} compiled, "
                     f"{time.perf_counter() - t0:.0f} s")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                run(functools.partial(_call, errors, label))
            if verbose and not interactive:
                show(f"fastem compile: [{i}/{len(steps)}] {label}: "
                     f"{listener.n_compiled - before} compiled, "
                     f"{time.perf_counter() - t0:.0f} s", "\n")
    report = CompileReport(
        n_compiled=listener.n_compiled, n_kernels=len(listener.kernels),
        kernels=sorted(listener.kernels), n_steps=len(steps),
        wall_s=time.perf_counter() - t0, cpu_s=time.process_time() - c0,
        cache_dir=cache_location(), errors=errors)
    if verbose:
        show(report.summary(), "\n")
        for e in errors:
            show(f"fastem compile: error: {e}", "\n")
    return report
