"""The ``fastem`` command line.

Subcommands register themselves in :data:`COMMANDS` with :func:`command`;
adding one is a function plus a decorator.

Conventions: results go to stdout (``--json`` makes them machine-readable);
progress, notes and warnings go to stderr.  A user error (bad file, bad
column, bad option) prints one line, ``fastem: error: ...``, on stderr and
exits with status 1 (2 for bad options); set ``FASTEM_DEBUG=1`` to get the
traceback instead.
"""

import argparse
import json
import os
import re
import sys
import warnings
from time import perf_counter

COMMANDS = {}


def command(name, help):
    """Register ``func(args)`` as subcommand ``name``.

    ``func.configure(parser)``, if set, adds the subcommand's arguments.
    """

    def deco(func):
        COMMANDS[name] = (func, help)
        return func

    return deco


def demo_data(random_state=0):
    """Generate the classic example.

    4,000 points from N(20, 5) and 8,000 from N(40, 5), shuffled.

    Parameters
    ----------
    random_state : int
        Seed.

    Returns
    -------
    ndarray of shape (12000, 1)
    """
    import numpy as np

    rng = np.random.default_rng(random_state)
    x = np.concatenate([rng.normal(20.0, 5.0, 4000), rng.normal(40.0, 5.0, 8000)])
    rng.shuffle(x)
    return x.reshape(-1, 1)


def _configure_demo(p):
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


@command("demo", "fit a 2-component mixture to the classic 20/40 example")
def run_demo(args):
    """Run ``fastem demo``."""
    import numpy as np

    from fastem.models.mixture import GaussianMixture

    X = demo_data(args.seed)
    print("fastem demo: 4,000 points from N(20, 5) and 8,000 from N(40, 5)")
    gm = GaussianMixture(n_components=2, random_state=args.seed)
    t0 = perf_counter()
    gm.fit(X)
    t = perf_counter() - t0
    order = np.argsort(gm.means_[:, 0])
    print(f"{'component':>10} {'weight':>8} {'mean':>9} {'std':>8}")
    for i, k in enumerate(order):
        print(f"{i:>10d} {gm.weights_[k]:8.4f} {gm.means_[k, 0]:9.4f} "
              f"{np.sqrt(gm.covariances_[k, 0, 0]):8.4f}")
    print("truth: weights 0.3333/0.6667, means 20/40, std 5/5")
    print(f"iterations: {gm.n_iter_} (converged: {gm.converged_})")
    print(f"final log-likelihood: {gm.lower_bound_ * X.shape[0]:.4f} "
          f"(mean per point {gm.lower_bound_:.6f})")
    print(f"fit time: {t:.4f} s (includes loading compiled kernels on the "
          "first run in a process)")
    return 0


run_demo.configure = _configure_demo


def _configure_compile(p):
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress display and no summary")


@command("compile", "compile every kernel ahead of time (e.g. in a Docker "
                    "image build), so that later runs start at once")
def run_compile(args):
    """Run ``fastem compile``."""
    from fastem._compile import compile as compile_all

    report = compile_all(verbose=not args.quiet)
    return 1 if report and report.get("errors") else 0


run_compile.configure = _configure_compile



# --------------------------------------------------------------- helpers
class CLIError(Exception):
    """A user error: its message is printed as one line, exit status 1."""


def _one_line(msg):
    return " ".join(str(msg).split())


def _note(args, msg):
    if not getattr(args, "quiet", False):
        print(msg, file=sys.stderr)


def _components_list(text):
    """Parse ``-k`` for select: ``"1-9"``, ``"2,4,8"``, ``"1-3,6"``."""
    ks = []
    for part in text.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part)
        if m:
            lo, hi = int(m.group(1)), int(m.group(2))
            if lo > hi:
                raise argparse.ArgumentTypeError(
                    f"empty range {part!r} (write low-high, e.g. 1-9)")
            ks.extend(range(lo, hi + 1))
        elif part.isdigit():
            ks.append(int(part))
        else:
            raise argparse.ArgumentTypeError(
                f"invalid value {text!r}: expected a number, a range like 1-9 "
                "or a list like 1,2,5")
    if not ks or min(ks) < 1:
        raise argparse.ArgumentTypeError(
            f"invalid value {text!r}: numbers of components must be >= 1")
    return list(dict.fromkeys(ks))


def _positive_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid value {text!r}: expected a positive integer") from None
    if v < 1:
        raise argparse.ArgumentTypeError(
            f"invalid value {text!r}: expected a positive integer")
    return v


def _nonneg_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid value {text!r}: expected an integer >= 0") from None
    if v < 0:
        raise argparse.ArgumentTypeError(
            f"invalid value {text!r}: expected an integer >= 0")
    return v


def _nonneg_float(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid value {text!r}: expected a number >= 0") from None
    if not v >= 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(
            f"invalid value {text!r}: expected a finite number >= 0")
    return v


_COV_TYPES = ("full", "tied", "diag", "spherical")
# mclust's fourteen models (fastem.families.mclust); full, tied, diag and
# spherical are VVV, EEE, VVI and VII
_MCLUST_TYPES = ("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE",
                 "EVE", "VVE", "EEV", "VEV", "EVV", "VVV")
_LAYOUT_OF = {**{t: t for t in _COV_TYPES},
              **dict.fromkeys(("EII", "VII"), "spherical"),
              **dict.fromkeys(("EEI", "VEI", "EVI", "VVI"), "diag"),
              "EEE": "tied",
              **dict.fromkeys(("VEE", "EVE", "VVE", "EEV", "VEV", "EVV",
                               "VVV"), "full")}


def _covariance_list(text):
    if text in ("all", "mclust"):
        return list(_COV_TYPES if text == "all" else _MCLUST_TYPES)
    types = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in types if t not in _LAYOUT_OF]
    if bad or not types:
        raise argparse.ArgumentTypeError(
            f"invalid value {text!r}: expected 'all' or 'mclust' or a "
            f"comma-separated list of {', '.join(_COV_TYPES)}, "
            f"{', '.join(_MCLUST_TYPES)}")
    return list(dict.fromkeys(types))


def _columns(args):
    cols = []
    for item in getattr(args, "columns", None) or []:
        cols.extend(c.strip() for c in item.split(",") if c.strip())
    return cols or None


def _read(path, columns, args=None, nan_policy=None):
    """Read DATA; notes (text columns skipped) go to stderr."""
    from fastem.cli.readers import read_table

    if nan_policy is None:
        nan_policy = getattr(args, "nan_policy", None) or "raise"
    return read_table(path, columns, nan_policy=nan_policy,
                      note=lambda msg: _note(args, f"fastem: note: {msg}"))


def _nan_kwargs(args):
    """``nan_policy`` for GaussianMixture/select (only when not the default)."""
    policy = getattr(args, "nan_policy", None)
    return {"nan_policy": policy} if policy and policy != "raise" else {}


def _n_missing(X):
    import numpy as np

    return int(np.isnan(X).sum())


def _standardize(X):
    """Centre and scale the columns of ``X`` (NaN ignored).

    Returns
    -------
    Z : ndarray
        ``(X - mean) / scale``.
    mean, scale : ndarray of shape (n_features,)
        A constant column gets scale 1 (it is only centred).
    """
    import numpy as np

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        mean = np.nanmean(X, axis=0)
        scale = np.nanstd(X, axis=0)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
    return (X - mean) / scale, mean, scale


def _to_original_units(gm, mean, scale):
    """Map a model fitted on standardized data back to the original units.

    :func:`fastem.selection.from_standardized`; spherical models are refused
    before the fit (``--standardize`` with ``--covariance spherical``).

    Parameters
    ----------
    gm : GaussianMixture
        Fitted on ``(X - mean) / scale``.
    mean, scale : ndarray of shape (n_features,)

    Returns
    -------
    GaussianMixture
        The model in original units.
    """
    from fastem.selection import from_standardized

    return from_standardized(gm, mean, scale)


def _complete_rows(args, X):
    """Rows of ``X`` without NaN (for pictures), with a note if any dropped."""
    import numpy as np

    keep = ~np.isnan(X).any(axis=1)
    if keep.all():
        return X
    if not keep.any():
        raise CLIError("--plot: every row has a missing value; nothing to "
                       "draw")
    _note(args, f"fastem: note: the picture shows the {int(keep.sum()):,} "
                f"rows without missing values (of {X.shape[0]:,})")
    return X[keep]


def _jsonable(v):
    """Numpy values to JSON values; non-finite floats become null."""
    import numpy as np

    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return _jsonable(v.tolist())
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        v = float(v)
        return v if v == v and abs(v) != float("inf") else None
    return v


def _print_json(obj):
    from fastem.io import _dumps

    print(_dumps(_jsonable(obj)))


def _add_data_options(p, what="DATA", nan_default="raise"):
    p.add_argument("--columns", action="append", metavar="COLS",
                   help="columns of DATA to use: comma-separated names "
                        "(files with a header, parquet) or 0-based indices; "
                        "default every numeric column (text columns are "
                        "skipped, with a note)")
    if nan_default is None:
        default = "default: the model's nan_policy, raise unless it was " \
                  "fitted with marginalize"
    else:
        default = f"default {nan_default}"
    p.add_argument("--nan-policy", choices=("raise", "marginalize"),
                   default=nan_default,
                   help="missing values (empty cells, NA, NaN, nan, N/A, "
                        "NULL, null, '.'): raise refuses them naming the "
                        "first; marginalize uses the observed entries of "
                        f"incomplete rows ({default})")


def _add_output_options(p):
    p.add_argument("--json", action="store_true",
                   help="print the results as JSON (for scripts)")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress display and no notes on stderr "
                        "(results still go to stdout)")


def _add_fit_options(p):
    p.add_argument("--n-init", type=_positive_int, default=1, metavar="N",
                   help="initializations per fit; the best is kept (default 1)")
    p.add_argument("--seed", type=int, default=0,
                   help="random seed (default 0)")
    p.add_argument("--max-iter", type=_nonneg_int, default=None, metavar="N",
                   help="maximum EM iterations (default 100; select: 1000)")
    p.add_argument("--tol", type=_nonneg_float, default=None,
                   help="convergence threshold on the change of the mean "
                        "log-likelihood per point (default 1e-3; select: "
                        "1e-5, as tight as mclust's)")
    p.add_argument("--reg-covar", type=_nonneg_float, default=1e-6,
                   metavar="R", help="added to covariance diagonals "
                                     "(default 1e-6)")
    p.add_argument("--init", default=None,
                   choices=("kmeans", "k-means++", "random",
                            "random_from_data", "hc"),
                   help="initialization (default kmeans; select: hc, "
                        "mclust's hierarchical agglomeration)")
    p.add_argument("--threads", type=_positive_int, default=None,
                   help="kernel threads (default all cores)")
    p.add_argument("--bayesian", nargs="?", const="dirichlet_process",
                   default=None,
                   choices=("dirichlet_process", "dirichlet_distribution"),
                   metavar="PRIOR",
                   help="fit a variational BayesianGaussianMixture instead "
                        "(weight prior dirichlet_process, the default, or "
                        "dirichlet_distribution): K is then the most "
                        "components, and the output reports how many the "
                        "fit uses (weight above 1%%)")


# Seconds a fit runs before the progress display appears, and between two
# redraws.
PROGRESS_DELAY = 0.5
PROGRESS_INTERVAL = 0.2


class Progress:
    """One-line progress display of EM (a ``GaussianMixture`` callback).

    Shows the initialization, iteration, mean log-likelihood per point, its
    change and the elapsed time on ``stream``, rewritten in place.  Nothing
    is shown before ``delay`` seconds (quick fits stay quiet); then a ticker
    thread keeps the elapsed time moving every ``interval`` seconds, also
    while the initialization runs (when there is no iteration to report).

    Parameters
    ----------
    stream : file
        Usually ``sys.stderr``.
    n_init : int
        Initializations of the fit (to show ``init i/n``).
    delay : float, optional
        Seconds before anything is shown (default :data:`PROGRESS_DELAY`).
    interval : float, optional
        Minimum seconds between two redraws (default
        :data:`PROGRESS_INTERVAL`).
    ticker : bool
        Run the ticker thread (stopped by :meth:`close`).
    """

    def __init__(self, stream, n_init=1, delay=None, interval=None,
                 ticker=True):
        import threading

        self.stream = stream
        self.n_init = n_init
        self.delay = PROGRESS_DELAY if delay is None else delay
        self.interval = PROGRESS_INTERVAL if interval is None else interval
        self.last = -float("inf")
        self.t0 = perf_counter()
        self.init = 0
        self.prev = None
        self.status = "initializing"
        self.width = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        if ticker:
            self._thread = threading.Thread(target=self._tick, daemon=True)
            self._thread.start()

    def _due(self):
        now = perf_counter()
        return now - self.t0 >= self.delay and now - self.last >= self.interval

    def _tick(self):
        while not self._stop.wait(max(self.interval, 0.05)):
            if self._due():
                self.draw()

    def __call__(self, n_iter, lower_bound):
        """Record iteration ``n_iter`` (the GaussianMixture callback)."""
        if n_iter == 1:
            self.init += 1
            self.prev = None
        parts = []
        if self.n_init > 1:
            parts.append(f"init {max(self.init, 1)}/{self.n_init}")
        parts.append(f"iteration {n_iter}")
        parts.append(f"log-lik/point {lower_bound:.6f}")
        if self.prev is not None:
            parts.append(f"change {lower_bound - self.prev:+.2e}")
        self.prev = lower_bound
        self.status = "  ".join(parts)
        if self._due():
            self.draw()
        return None

    def draw(self):
        """Show the current status and the elapsed time."""
        self.write(f"{self.status}  {perf_counter() - self.t0:.1f} s")

    def write(self, line):
        """Show ``line`` in place of the previous one."""
        with self._lock:
            if self._stop.is_set() and self._thread is not None:
                return
            pad = max(0, self.width - len(line))
            self.stream.write("\r" + line + " " * pad)
            self.stream.flush()
            self.last = perf_counter()
            self.width = len(line)

    def close(self):
        """Stop the ticker and erase the line (if anything was shown)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            if self.width:
                self.stream.write("\r" + " " * self.width + "\r")
                self.stream.flush()
                self.width = 0


def _progress_enabled(args):
    if getattr(args, "quiet", False):
        return False
    if getattr(args, "progress", False):
        return True
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _has_callback():
    from fastem.models.mixture import GaussianMixture

    return "callback" in GaussianMixture().get_params()


def _fmt(v):
    return f"{v:.6g}"


def _table(row_labels, col_labels, rows, indent="  ", max_width=100):
    """Right-aligned table; columns beyond ``max_width`` wrap into blocks."""
    cells = [[_fmt(v) for v in r] for r in rows]
    lw = max([len(x) for x in row_labels] + [0])
    cw = max([len(c) for c in col_labels]
             + [len(c) for r in cells for c in r] + [6]) + 2
    per = max(1, (max_width - len(indent) - lw) // cw)
    out = []
    for start in range(0, len(col_labels), per):
        sl = slice(start, start + per)
        out.append(indent + " " * lw + "".join(f"{c:>{cw}}"
                                                for c in col_labels[sl]))
        for lab, r in zip(row_labels, cells):
            out.append(indent + f"{lab:<{lw}}" + "".join(f"{c:>{cw}}"
                                                         for c in r[sl]))
    return out


def _feature_names(gm, names):
    D = gm.means_.shape[1]
    if names is None:
        names = getattr(gm, "feature_names_in_", None)
    return [str(n) for n in names] if names is not None else [
        f"x{i}" for i in range(D)]


def _param_lines(gm, names=None):
    """Weights, means and covariances as readable tables."""
    import numpy as np

    K, D = gm.means_.shape
    names = _feature_names(gm, names)
    comps = [f"comp {k}" for k in range(K)]
    ct = _LAYOUT_OF.get(gm.covariance_type, gm.covariance_type)
    cov = np.asarray(gm.covariances_)
    lines = ["weights"]
    lines += _table([""], comps, [gm.weights_])
    lines.append("means")
    lines += _table(names, comps, gm.means_.T)
    if ct == "full" and D <= 8:
        lines.append("covariances (full)")
        for k in range(K):
            lines.append(f"  component {k}")
            lines += _table(names, names, cov[k], indent="    ")
    elif ct == "full":
        lines.append("variances (diagonals of the full covariances; "
                     "all entries with --json)")
        lines += _table(names, comps, np.diagonal(cov, axis1=1, axis2=2).T)
    elif ct == "tied":
        lines.append("covariance (tied: shared by every component)")
        if D <= 8:
            lines += _table(names, names, cov)
        else:
            lines += _table(names, ["variance"], np.diag(cov)[:, None])
    elif ct == "diag":
        lines.append("variances (diag)")
        lines += _table(names, comps, cov.T)
    else:
        lines.append("variance (spherical: the same for every feature)")
        lines += _table([""], comps, [cov])
    return lines


def _quality(gm, X):
    """Log-likelihood, BIC, AIC and the parameter count of ``gm`` on ``X``."""
    import numpy as np

    from fastem.selection import n_parameters

    ll = float(np.sum(gm.score_samples(X)))
    n = X.shape[0]
    p = n_parameters(*gm.means_.shape, gm.covariance_type)
    return {"log_likelihood": ll, "mean_log_likelihood": ll / n,
            "bic": -2 * ll + p * np.log(n), "aic": -2 * ll + 2 * p,
            "n_parameters": p}


def _model_json(gm, names=None):
    return {"n_components": int(gm.means_.shape[0]),
            "covariance_type": gm.covariance_type,
            "n_features": int(gm.means_.shape[1]),
            "features": _feature_names(gm, names),
            "weights": gm.weights_, "means": gm.means_,
            "covariances": gm.covariances_,
            "converged": bool(gm.converged_), "n_iter": int(gm.n_iter_),
            "lower_bound": gm.lower_bound_,
            "lower_bounds": list(getattr(gm, "lower_bounds_", []))}


_IGNORED = "X does not have valid feature names"


def _same_file(a, b):
    """Whether paths ``a`` and ``b`` name one file (hard or symbolic links)."""
    try:
        return os.path.samefile(a, b)  # same device and inode
    except (OSError, ValueError):
        pass
    try:
        return os.path.realpath(a) == os.path.realpath(b)
    except (OSError, ValueError):
        return False


def _check_outputs(args, inputs=()):
    """Fail before the fit, not after, on unwritable or unsupported outputs.

    ``inputs`` are ``(what, path)`` pairs of the files the command reads: an
    output that is one of them (the same file, whatever the spelling) would
    replace the user's data or model, and is refused.
    """
    outputs = []
    for opt in ("out", "plot"):
        path = getattr(args, opt, None)
        if not path:
            continue
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise CLIError(f"--{opt} {path}: directory {parent} does not exist")
        if os.path.isdir(path):
            raise CLIError(f"--{opt} {path}: is a directory")
        for what, src in inputs:
            if src and _same_file(path, src):
                same = "" if path == src else f" ({src}, the same file)"
                raise CLIError(
                    f"--{opt} {path} is the input {what}{same}: writing it "
                    f"would replace the {what.lower()} being read; choose "
                    "another output file")
        for other_opt, other in outputs:
            if _same_file(path, other):
                raise CLIError(f"--{opt} {path} and --{other_opt} {other} "
                               "are the same file; choose two names")
        outputs.append((opt, path))
    if getattr(args, "plot", None):
        from fastem.plot import figure

        fig, _ = figure()
        ext = os.path.splitext(args.plot)[1].lower().lstrip(".")
        supported = fig.canvas.get_supported_filetypes()
        if ext not in supported:
            raise CLIError(
                f"--plot {args.plot}: unsupported picture format "
                f"{'.' + ext if ext else '(no extension)'}; use one of "
                f"{', '.join('.' + e for e in sorted(supported))}")


def _save_plot(path, draw):
    from fastem.plot import figure

    fig, ax = figure()
    draw(ax)
    _save_figure(path, fig)


def _save_figure(path, fig):
    from fastem.io import atomic_write

    ext = os.path.splitext(path)[1].lower().lstrip(".")
    with atomic_write(path, "wb") as f:  # never a half-written picture
        fig.savefig(f, format=ext)


def _pair(args, gm):
    feats = [c.strip() for c in (args.plot_features or "0,1").split(",")]
    if len(feats) != 2:
        raise CLIError(f"--plot-features takes two features, got "
                       f"{args.plot_features!r}")
    out = []
    for f in feats:
        out.append(int(f) if re.fullmatch(r"-?\d+", f) else f)
    return tuple(out)


def _bayesian_model(args):
    """Return an unfitted BayesianGaussianMixture for --bayesian (or None)."""
    prior = getattr(args, "bayesian", None)
    if prior is None:
        return None
    if getattr(args, "nan_policy", None) == "marginalize":
        raise CLIError("--bayesian does not support --nan-policy "
                       "marginalize; drop the rows with missing values or "
                       "fit without --bayesian")
    if getattr(args, "standardize", False):
        raise CLIError("--bayesian does not support --standardize; "
                       "standardize the columns yourself")
    from fastem.models.bayesian import BayesianGaussianMixture

    return BayesianGaussianMixture(weight_concentration_prior_type=prior)


def _effective_line(gm):
    """Return the effective-components line of a --bayesian fit (or None)."""
    if not hasattr(gm, "weight_concentration_"):
        return None
    import numpy as np

    from fastem.selection import EFFECTIVE_WEIGHT

    n = int(np.count_nonzero(np.asarray(gm.weights_) > EFFECTIVE_WEIGHT))
    return (f"effective components: {n} of {gm.weights_.shape[0]} (weight "
            f"above {EFFECTIVE_WEIGHT:g}); lower bound (ELBO) "
            f"{float(gm.lower_bound_):.4f}")


def _make_model(args, **extra):
    from fastem.models.mixture import GaussianMixture

    bayes = _bayesian_model(args)
    tol = 1e-3 if args.tol is None else args.tol
    init = "kmeans" if args.init is None else args.init
    max_iter = 100 if args.max_iter is None else args.max_iter
    if bayes is not None:
        return bayes.set_params(
            n_init=args.n_init, random_state=args.seed,
            max_iter=max_iter, tol=tol, reg_covar=args.reg_covar,
            init_params=init, n_threads=args.threads, **extra)
    return GaussianMixture(
        n_init=args.n_init, random_state=args.seed, max_iter=max_iter,
        tol=tol, reg_covar=args.reg_covar, init_params=init,
        n_threads=args.threads, **extra)


# ------------------------------------------------------------------ fit
def _configure_fit(p):
    p.add_argument("data", metavar="DATA",
                   help="data file: .csv/.tsv/.txt (header optional), .npy, "
                        ".parquet")
    p.add_argument("-k", "--components", type=_positive_int, required=True,
                   metavar="K", help="number of components")
    p.add_argument("--covariance", default="full",
                   choices=_COV_TYPES + _MCLUST_TYPES, metavar="TYPE",
                   help="covariance structure: full, tied, diag, spherical "
                        "or one of mclust's models EII, VII, EEI, VEI, EVI, "
                        "VVI, EEE, VEE, EVE, VVE, EEV, VEV, EVV, VVV "
                        "(default full)")
    _add_fit_options(p)
    _add_data_options(p)
    p.add_argument("--standardize", action="store_true",
                   help="fit on columns scaled to mean 0 and standard "
                        "deviation 1 (for features in different units); the "
                        "model is saved and printed in the original units")
    p.add_argument("--out", metavar="MODEL.json",
                   help="save the fitted model (JSON; read it with fastem "
                        "predict/info or fastem.load)")
    p.add_argument("--plot", metavar="FIG.png",
                   help="save a picture (any matplotlib format: png, pdf, "
                        "svg...); needs matplotlib")
    p.add_argument("--plot-kind", default="auto",
                   choices=("auto", "density", "scatter", "loglik"),
                   help="auto: density for 1 feature, scatter otherwise")
    p.add_argument("--plot-features", metavar="A,B",
                   help="pair of features of the scatter plot (default 0,1)")
    p.add_argument("--progress", action="store_true",
                   help="show the progress display even when stderr is not "
                        "a terminal")
    _add_output_options(p)


@command("fit", "fit a Gaussian mixture to a data file and print a summary")
def run_fit(args):
    """Run ``fastem fit``."""
    _check_outputs(args, [("DATA", args.data)])
    if args.standardize and args.covariance == "spherical":
        raise CLIError("--standardize with --covariance spherical: a "
                       "spherical model of standardized features is not "
                       "spherical in the original units; use --covariance "
                       "diag")
    if args.standardize and args.covariance not in _COV_TYPES:
        raise CLIError(f"--standardize with --covariance {args.covariance}: "
                       "mclust's constrained models are not preserved by "
                       "scaling the features; use full, tied, diag (VVV, "
                       "EEE, VVI) or leave out --standardize")
    t0 = perf_counter()
    X, names = _read(args.data, _columns(args), args)
    t_read = perf_counter() - t0
    K = args.components
    if K > X.shape[0]:
        raise CLIError(f"-k {K} is more components than the {X.shape[0]} "
                       f"rows of {args.data}")
    progress = None
    if _progress_enabled(args) and _has_callback():
        progress = Progress(sys.stderr, n_init=args.n_init)
    gm = _make_model(args, n_components=K, covariance_type=args.covariance,
                     **_nan_kwargs(args),
                     **({"callback": progress} if progress else {}))
    Z = X
    if args.standardize:
        Z, mean, scale = _standardize(X)
    t0 = perf_counter()
    try:
        gm.fit(Z)
    finally:
        if progress is not None:
            progress.close()
    t_fit = perf_counter() - t0
    if progress is not None:
        gm.set_params(callback=None)
    if args.standardize:
        gm = _to_original_units(gm, mean, scale)
        del Z
    if names is not None:
        import numpy as np

        gm.feature_names_in_ = np.asarray(names, dtype=object)
    q = _quality(gm, X)
    if args.plot:
        _plot_fit(args, gm, X)
    if args.out:
        from fastem.io import save

        save(gm, args.out, metadata={
            "data": os.path.abspath(args.data), "n_samples": X.shape[0],
            **{k: q[k] for k in ("log_likelihood", "bic", "aic")},
            "fit_time": t_fit, **_data_metadata(args, X)})
    if args.json:
        _print_json({"data": args.data, "n_samples": X.shape[0],
                     "n_missing": _n_missing(X),
                     "standardized": bool(args.standardize),
                     **_model_json(gm, names), **q, "fit_time": t_fit,
                     **({"effective_components": int((gm.weights_ > 0.01).sum())}
                        if hasattr(gm, "weight_concentration_") else {}),
                     "read_time": t_read, "model": args.out,
                     "plot": args.plot})
    else:
        print("\n".join(_fit_summary(args.data, X, gm, q, t_read, t_fit,
                                     names, args)))
    if args.out:
        _note(args, f"model saved to {args.out}")
    if args.plot:
        _note(args, f"picture saved to {args.plot}")
    return 0


def _data_metadata(args, X):
    """Metadata on missing values and standardization for a saved model."""
    meta = {}
    if getattr(args, "nan_policy", None) == "marginalize":
        meta["n_missing"] = _n_missing(X)
    if getattr(args, "standardize", False):
        meta["standardized"] = True
    return meta


def _plot_fit(args, gm, X):
    from fastem import plot

    if args.plot_kind != "loglik":
        X = _complete_rows(args, X)
    kind = args.plot_kind
    if kind == "auto":
        kind = "density" if X.shape[1] == 1 else "scatter"
    if kind == "scatter" and X.shape[1] < 2:
        raise CLIError("--plot-kind scatter needs at least 2 features; use "
                       "density")
    if kind == "scatter":
        pair = _pair(args, gm)
        _save_plot(args.plot, lambda ax: plot.scatter(gm, X, features=pair,
                                                      ax=ax))
    elif kind == "density" and args.plot_features:
        feature = _pair(args, gm)[0]
        _save_plot(args.plot, lambda ax: plot.density(gm, X, feature=feature,
                                                      ax=ax))
    elif kind == "density":  # every column, one panel each
        from matplotlib.figure import Figure

        D = X.shape[1]
        ncols = 1 if D == 1 else 2 if D <= 4 else 3
        nrows = -(-D // ncols)
        fig = Figure(figsize=(4.2 * ncols, 3.2 * nrows), layout="constrained")
        plot.density(gm, X, fig=fig)
        _save_figure(args.plot, fig)
    else:
        _save_plot(args.plot, lambda ax: plot.loglik(gm, ax=ax))


def _fit_summary(path, X, gm, q, t_read, t_fit, names, args=None):
    K, D = gm.means_.shape
    feats = f": {', '.join(names)}" if names else ""
    n_missing = _n_missing(X)
    missing = f" ({n_missing:,} missing values)" if n_missing else ""
    lines = [
        f"fastem fit: {path}: {X.shape[0]:,} rows x {D} feature"
        f"{'s' if D != 1 else ''}{feats}{missing}",
        f"model: {K} component{'s' if K != 1 else ''}, covariance "
        f"'{gm.covariance_type}'",
        f"converged: {'yes' if gm.converged_ else 'NO'} after {gm.n_iter_} "
        f"iteration{'s' if gm.n_iter_ != 1 else ''} (best of {gm.n_init} "
        f"initialization{'s' if gm.n_init != 1 else ''})",
        f"log-likelihood: {q['log_likelihood']:.4f} (mean per point "
        f"{q['mean_log_likelihood']:.6f})",
        f"BIC: {q['bic']:.4f}   AIC: {q['aic']:.4f}   parameters: "
        f"{q['n_parameters']}",
        f"time: fit {t_fit:.3f} s, read {t_read:.3f} s",
    ]
    if getattr(args, "standardize", False):
        lines.append("fitted on standardized features; parameters in the "
                     "original units")
    eff = _effective_line(gm)
    if eff is not None:
        lines.append(eff)
    return lines + _param_lines(gm, names)


# --------------------------------------------------------------- select
def _configure_select(p):
    p.add_argument("data", metavar="DATA",
                   help="data file: .csv/.tsv/.txt, .npy, .parquet")
    p.add_argument("-k", "--components", type=_components_list,
                   default=list(range(1, 10)), metavar="KS",
                   help="numbers of components: a range 1-9 (default), a "
                        "list 2,4,8, or both 1-3,6")
    p.add_argument("--covariance", type=_covariance_list, default=None,
                   metavar="TYPES",
                   help="'all' (full, tied, diag, spherical), 'mclust' "
                        "(mclust's 14 models EII ... VVV) or a "
                        "comma-separated list of those names (default all; "
                        "full,tied,diag with --standardize)")
    p.add_argument("--criterion", default="bic",
                   choices=("bic", "aic", "icl", "cv"),
                   help="selection criterion, lower is better (default bic); "
                        "cv: held-out log-likelihood of K-fold "
                        "cross-validation (see --cv-folds)")
    p.add_argument("--cv-folds", type=_positive_int, default=None,
                   metavar="N",
                   help="folds of --criterion cv (default 5)")
    _add_fit_options(p)
    p.add_argument("--jobs", type=_positive_int, default=None,
                   help="fits run at the same time (default: automatic)")
    _add_data_options(p)
    p.add_argument("--standardize", action="store_true",
                   help="fit on columns scaled to mean 0 and standard "
                        "deviation 1 (for features in different units); "
                        "models and criteria in the original units")
    p.add_argument("--out", metavar="MODEL.json", help="save the best model")
    p.add_argument("--include-degenerate", action="store_true",
                   help="let a degenerate fit (a collapsed component, marked "
                        "! in the table) be chosen")
    p.add_argument("--plot", metavar="FIG.png",
                   help="save the criterion curves (needs matplotlib)")
    p.add_argument("--bic-sign", default="fastem",
                   choices=("fastem", "mclust"),
                   help="BIC as scikit-learn signs it (-2 log L + p log n, "
                        "lower is better; default) or as mclust does "
                        "(higher is better)")
    p.add_argument("--summary", action="store_true",
                   help="also print mclust's summary: the top three models "
                        "and the chosen model's log-likelihood, BIC, ICL and "
                        "clustering table")
    p.add_argument("--progress", action="store_true",
                   help="show progress even when stderr is not a terminal")
    _add_output_options(p)


@command("select", "choose the number of components and covariance type "
                   "by BIC, AIC or ICL")
def run_select(args):
    """Run ``fastem select``."""
    from fastem.selection import select

    _check_outputs(args, [("DATA", args.data)])
    extra = _select_kwargs(select, args)
    X, names = _read(args.data, _columns(args), args)
    types = args.covariance
    if isinstance(types, str):
        types = _covariance_list(types)
    if types is None and not args.standardize:
        types = list(_COV_TYPES)
    too_many = [k for k in args.components if k > X.shape[0]]
    if too_many == args.components:
        raise CLIError(f"every -k value exceeds the {X.shape[0]} rows of "
                       f"{args.data}")
    show = _progress_enabled(args)
    bar = Progress(sys.stderr, delay=0.0, ticker=False) if show else None

    def progress(row, done, total):
        if bar is not None:
            bar.write(f"fitted {done}/{total}: K={row['n_components']} "
                      f"{row['covariance_type']} ({row['fit_time']:.2f} s)")

    bayes = _bayesian_model(args)
    if bayes is not None:
        extra["estimator"] = bayes
    # select's own defaults (mclust's hc start, tol and max_iter) unless
    # given
    for key, value, plain in (("tol", args.tol, 1e-3),
                              ("init_params", args.init, "kmeans"),
                              ("max_iter", args.max_iter, 100)):
        if value is not None:
            extra[key] = value
        elif bayes is not None:
            extra[key] = plain
    t0 = perf_counter()
    try:
        res = select(X, args.components, types, criterion=args.criterion,
                     n_init=args.n_init, random_state=args.seed,
                     n_jobs=args.jobs, progress=progress,
                     include_degenerate=args.include_degenerate,
                     reg_covar=args.reg_covar,
                     n_threads=args.threads, bic_sign=args.bic_sign,
                     **extra)
    finally:
        if bar is not None:
            bar.close()
    elapsed = perf_counter() - t0
    best = res.best_model
    if names is not None:
        import numpy as np

        for m in res.models.values():
            m.feature_names_in_ = np.asarray(names, dtype=object)
    if args.plot:
        from fastem import plot

        _save_plot(args.plot, lambda ax: plot.criterion(res, ax=ax))
    if args.out:
        from fastem.io import save

        q = _quality(best, X)
        save(best, args.out, metadata={
            "data": os.path.abspath(args.data), "n_samples": X.shape[0],
            **{k: q[k] for k in ("log_likelihood", "bic", "aic")},
            "selected_by": args.criterion, **_data_metadata(args, X)})
    if args.json:
        rows = [{k: v for k, v in r.items()} for r in res.results]
        _print_json({"data": args.data, "n_samples": X.shape[0],
                     "n_features": X.shape[1], "n_missing": _n_missing(X),
                     "standardized": bool(args.standardize),
                     "criterion": args.criterion,
                     "best": {**res.best_params, "criterion": res.best_score},
                     "results": rows, "time": elapsed, "model": args.out,
                     "plot": args.plot})
    else:
        bp = res.best_params
        r = next(r for r in res.results
                 if r["n_components"] == bp["n_components"]
                 and r["covariance_type"] == bp["covariance_type"])
        n_missing = _n_missing(X)
        missing = f" ({n_missing:,} missing values)" if n_missing else ""
        print(f"fastem select: {args.data}: {X.shape[0]:,} rows x "
              f"{X.shape[1]} features{missing}, {len(res.results)} fits in "
              f"{elapsed:.2f} s")
        print(res.table())
        print(f"best: K={bp['n_components']}, covariance "
              f"'{bp['covariance_type']}' ({args.criterion.upper()} "
              f"{res.best_score:.4f}; log-likelihood "
              f"{r['log_likelihood']:.4f}; {r['n_parameters']} parameters; "
              f"{'converged' if r['converged'] else 'did NOT converge'} after "
              f"{r['n_iter']} iterations)")
        if args.summary:
            print()
            print(res.summary())
        if bayes is not None:
            print("effective components (weight above 1%): " + ", ".join(
                f"K={q['n_components']} {q['covariance_type']}: "
                f"{q['effective_components']}" for q in res.results
                if q.get("effective_components") is not None))
    if args.out:
        _note(args, f"best model saved to {args.out}")
    if args.plot:
        _note(args, f"picture saved to {args.plot}")
    return 0


def _select_kwargs(select, args):
    """Return the keyword arguments of ``select`` for the CLI's options.

    For --criterion cv, --cv-folds, --standardize and --nan-policy; each is
    refused with a clear message if this fastem's ``select`` lacks it.
    """
    import inspect

    from fastem import selection

    params = inspect.signature(select).parameters
    kwargs = _nan_kwargs(args)
    if args.cv_folds is not None and args.criterion != "cv":
        raise CLIError("--cv-folds is the number of folds of --criterion cv; "
                       "add --criterion cv")
    if args.criterion == "cv":
        if "cv" not in params or "cv" not in getattr(selection, "CRITERIA",
                                                     ()):
            raise CLIError("--criterion cv needs a fastem whose select() "
                           "supports cross-validation; this one does not "
                           "(use bic, aic or icl, or upgrade fastem)")
        if args.cv_folds is not None:
            if args.cv_folds < 2:
                raise CLIError(f"--cv-folds {args.cv_folds}: cross-validation "
                               "needs at least 2 folds")
            kwargs["cv"] = args.cv_folds
    if args.standardize:
        if "standardize" not in params:
            raise CLIError("--standardize needs a fastem whose select() "
                           "supports standardize=True; this one does not")
        kwargs["standardize"] = True
    return kwargs


# -------------------------------------------------------------- predict
def _load_model(path):
    from fastem.io import ModelFileError, load

    try:
        return load(path)
    except FileNotFoundError:
        raise CLIError(f"{path}: no such model file") from None
    except IsADirectoryError:
        raise CLIError(f"{path}: is a directory, expected a model file") \
            from None
    except ModelFileError as e:
        raise CLIError(str(e)) from None


def _configure_predict(p):
    p.add_argument("model", metavar="MODEL",
                   help="model file written by fastem fit/select --out")
    p.add_argument("data", metavar="DATA",
                   help="data file: .csv/.tsv/.txt, .npy, .parquet")
    p.add_argument("--proba", action="store_true",
                   help="write the probability of every component instead "
                        "of the most probable one")
    p.add_argument("--out", metavar="FILE.csv",
                   help="write to this CSV file instead of stdout")
    p.add_argument("--no-header", action="store_true",
                   help="no header line in the CSV output")
    _add_data_options(p, nan_default=None)
    p.add_argument("--json", action="store_true",
                   help="print {\"labels\": [...]} or {\"proba\": [[...]]} "
                        "as JSON")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no notes on stderr")


def _predict_columns(args, gm):
    """Columns of DATA for ``gm``.

    --columns if given (a note when their names differ from the model's
    features); else the model's features by name when both have names (an
    error naming the missing ones); else every numeric column.
    """
    from fastem.cli.readers import _resolve_columns, peek_columns

    cols = _columns(args)
    fitted = getattr(gm, "feature_names_in_", None)
    fitted = None if fitted is None else [str(f) for f in fitted]
    names, n_cols = peek_columns(args.data)
    if cols is not None:
        if fitted is not None and names is not None:
            idx = _resolve_columns(args.data, cols, names, n_cols)
            chosen = [names[i] for i in idx]
            if chosen != fitted and len(chosen) == len(fitted):
                _note(args, f"fastem: note: using the columns "
                            f"{', '.join(chosen)} of {args.data} for the "
                            f"model's features {', '.join(fitted)}")
        return cols
    if fitted is not None and names is not None:
        missing = [f for f in fitted if f not in names]
        if not missing:
            return fitted
        raise CLIError(
            f"{args.data} lacks the model's feature(s) "
            f"{', '.join(map(repr, missing))} (its columns: "
            f"{', '.join(names)}); choose columns with --columns")
    return None


@command("predict", "assign the rows of a data file to the components of a "
                    "saved model")
def run_predict(args):
    """Run ``fastem predict``."""
    import numpy as np

    gm = _load_model(args.model)
    from fastem.models.hmm import GaussianHMM

    if isinstance(gm, GaussianHMM):
        raise CLIError(f"{args.model} holds a hidden Markov model "
                       "(GaussianHMM): use fastem hmm predict")
    _check_outputs(args, [("MODEL", args.model), ("DATA", args.data)])
    if not hasattr(gm, "weights_"):
        raise CLIError(f"{args.model}: the model is not fitted")
    # missing values: as the model was fitted, unless --nan-policy says
    policy = args.nan_policy or getattr(gm, "nan_policy", "raise")
    if policy == "marginalize" and getattr(gm, "nan_policy", "raise") \
            != "marginalize":
        gm.set_params(nan_policy="marginalize")
    cols = _predict_columns(args, gm)
    X, _ = _read(args.data, cols, args, nan_policy=policy)
    D = gm.means_.shape[1]
    if X.shape[1] != D:
        raise CLIError(f"{args.model} expects {D} feature"
                       f"{'s' if D != 1 else ''}, got {X.shape[1]} "
                       f"{'' if cols is not None else 'numeric '}column"
                       f"{'s' if X.shape[1] != 1 else ''} from {args.data}; "
                       f"choose {D} with --columns")
    if args.proba:
        values = gm.predict_proba(X)
        header = ",".join(f"p{k}" for k in range(values.shape[1]))
        fmt = "%.9g"
    else:
        values = gm.predict(X)
        header = "label"
        fmt = "%d"
    if args.json:
        _print_json({"proba" if args.proba else "labels": values})
        return 0
    if args.out:
        from fastem.io import atomic_write

        # a temporary file renamed into place: an error or Ctrl-C half-way
        # leaves no truncated output (and any previous file intact)
        with atomic_write(args.out) as f:
            np.savetxt(f, values, fmt=fmt, delimiter=",",
                       header="" if args.no_header else header, comments="")
    else:
        np.savetxt(sys.stdout, values, fmt=fmt, delimiter=",",
                   header="" if args.no_header else header, comments="")
    if args.out:
        _note(args, f"{'probabilities' if args.proba else 'labels'} of "
                    f"{X.shape[0]:,} rows written to {args.out}")
    return 0


# ----------------------------------------------------------------- info
def _configure_info(p):
    p.add_argument("model", metavar="MODEL", help="model file")
    p.add_argument("--json", action="store_true",
                   help="print the model file's content as JSON")


@command("info", "describe a saved model")
def run_info(args):
    """Run ``fastem info``."""
    from fastem.io import read_metadata, to_dict

    gm = _load_model(args.model)
    meta = read_metadata(args.model)
    if args.json:
        from fastem.io import _dumps

        print(_dumps(to_dict(gm, meta)))
        return 0
    from fastem.models.hmm import GaussianHMM

    if isinstance(gm, GaussianHMM):
        from fastem.cli.hmm import print_info

        return print_info(args.model, gm, meta)
    with open(args.model, encoding="utf-8") as f:
        raw = json.load(f)
    print(f"fastem model: {args.model} (format {raw.get('format_version')}, "
          f"written by fastem {raw.get('fastem_version', '?')})")
    if not hasattr(gm, "weights_"):
        print(f"not fitted; parameters: n_components={gm.n_components}, "
              f"covariance_type='{gm.covariance_type}'")
        return 0
    K, D = gm.means_.shape
    names = getattr(gm, "feature_names_in_", None)
    feats = f": {', '.join(map(str, names))}" if names is not None else ""
    print(f"model: {K} component{'s' if K != 1 else ''}, covariance "
          f"'{gm.covariance_type}', {D} feature{'s' if D != 1 else ''}{feats}")
    eff = _effective_line(gm)
    if eff is None:
        print(f"converged: {'yes' if gm.converged_ else 'NO'} after "
              f"{gm.n_iter_} iterations; final mean log-likelihood per point "
              f"{gm.lower_bound_:.6f}")
    else:
        print(f"converged: {'yes' if gm.converged_ else 'NO'} after "
              f"{gm.n_iter_} iterations (variational BayesianGaussianMixture)")
        print(eff)
    if meta.get("data"):
        labels = {"log_likelihood": "log-likelihood", "bic": "BIC",
                  "aic": "AIC"}
        extra = "".join(f"; {lab} {meta[k]:.4f}" for k, lab in labels.items()
                        if isinstance(meta.get(k), (int, float)))
        n = meta.get("n_samples")
        rows = f" ({n:,} rows)" if isinstance(n, int) else ""
        print(f"fitted on: {meta['data']}{rows}{extra}")
    how = []
    if getattr(gm, "nan_policy", "raise") == "marginalize":
        n_missing = meta.get("n_missing")
        how.append("missing values marginalized" + (
            f" ({n_missing:,} in the data)" if isinstance(n_missing, int)
            else "") + "; predict accepts rows with gaps")
    if meta.get("standardized"):
        how.append("fitted on standardized features; parameters in the "
                   "original units")
    for line in how:
        print(line)
    print("\n".join(_param_lines(gm)))
    return 0


# ----------------------------------------------------------------- main
class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr."""

    def error(self, message):
        """Print ``prog: error: message`` and exit with status 2."""
        self.exit(2, f"{self.prog}: error: {_one_line(message)} (see "
                     f"'{self.prog} --help')\n")


def build_parser():
    """Return the argument parser with every registered subcommand."""
    from fastem import __version__

    parser = _Parser(
        prog="fastem", description="Numba-compiled EM for Gaussian mixtures.")
    parser.add_argument("--version", action="version",
                        version=f"fastem {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (func, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        configure = getattr(func, "configure", None)
        if configure is not None:
            configure(p)
    return parser


def _run(func, args):
    """Run a command; warnings become ``fastem: warning: ...`` lines."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", message=_IGNORED)
        try:
            return func(args)
        finally:
            for msg in dict.fromkeys(_one_line(w.message) for w in caught):
                print(f"fastem: warning: {msg}", file=sys.stderr)


def main(argv=None):
    """Entry point of the ``fastem`` console script.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0 success, 1 user error (bad file, column or model),
        2 bad options, 130 interrupted.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, option errors
        return e.code if isinstance(e.code, int) else 1
    if args.command is None:
        parser.print_help()
        return 2
    func = COMMANDS[args.command][0]
    notice = None
    # not for compile (its own progress display) nor with --quiet
    if args.command != "compile" and not getattr(args, "quiet", False):
        from fastem._compile import CompileNotice

        # Says so on stderr while fastem's kernels compile (first run on
        # this machine); silent on a warm cache.  Costs nothing until numba
        # is imported.
        notice = CompileNotice(sys.stderr).install()
    try:
        return _main(func, args)
    finally:
        if notice is not None:
            notice.close()


def _main(func, args):
    if os.environ.get("FASTEM_DEBUG"):
        return _run(func, args)
    try:
        return _run(func, args)
    except KeyboardInterrupt:
        print("fastem: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Output piped into a command that stopped reading (e.g. head).
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except ImportError as e:
        print(f"fastem: error: {_one_line(e)}", file=sys.stderr)
        return 1
    except (CLIError, ValueError, TypeError, OSError, MemoryError) as e:
        print(f"fastem: error: {_describe(e)}", file=sys.stderr)
        return 1
    except Exception as e:  # a bug: still one line, with a way to see more
        print(f"fastem: internal error: {type(e).__name__}: {_one_line(e)} "
              "(set FASTEM_DEBUG=1 for the traceback, and please report it)",
              file=sys.stderr)
        return 1


def _describe(e):
    if isinstance(e, OSError) and e.filename and e.strerror:
        return f"{e.filename}: {e.strerror.lower()}"
    if isinstance(e, MemoryError):
        return "out of memory"
    return _one_line(e)


run_fit.configure = _configure_fit
run_select.configure = _configure_select
run_predict.configure = _configure_predict
run_info.configure = _configure_info


from fastem.cli.hmm import register as _register_hmm  # noqa: E402

_register_hmm(command)  # fastem hmm fit / predict / select


if __name__ == "__main__":
    sys.exit(main())
