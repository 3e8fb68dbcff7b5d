"""The ``fastem hmm`` command group: ``hmm fit``, ``hmm predict``, ``hmm select``.

Hidden Markov models of sequences of rows.  The rows of a data file are one
or several sequences, given either by a column holding a sequence id (the
rows of one sequence are consecutive, in time order) or by a lengths file
(one integer per line, in the order of the rows); without either, the whole
file is one sequence.

Registered in :mod:`fastem.cli` by :func:`register` (``register(command)``)
or, for a parser of one's own, by :func:`add_parser`.  Errors follow the
``fastem`` conventions: one line, ``fastem: error: ...``, exit status 1.

This module imports :mod:`fastem.cli` only inside its functions (``cli``
imports this module while it is being imported).
"""

import os
import sys
from time import perf_counter

HELP = ("hidden Markov models of sequences: fit, predict (decode states), "
        "select the number of states")

__all__ = ["HELP", "add_parser", "configure_hmm", "print_info", "register",
           "run_hmm"]


def _cli():
    """Return the running :mod:`fastem.cli` (``__main__`` under ``-m``).

    Under ``python -m fastem.cli`` the module runs as ``__main__`` and a
    second ``fastem.cli`` would have its own ``CLIError`` class, which the
    running ``main`` would not catch.
    """
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name == "fastem.cli":
        return main
    from fastem.cli import app as cli

    return cli


# ---------------------------------------------------------- registration
def register(command):
    """Register ``fastem hmm`` with :mod:`fastem.cli`'s ``command`` decorator.

    Parameters
    ----------
    command : callable
        :func:`fastem.cli.command`.

    Returns
    -------
    callable
        :func:`run_hmm`.
    """
    return command("hmm", HELP)(run_hmm)


def add_parser(subparsers):
    """Add the ``hmm`` command group to an argparse ``subparsers`` object.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        What ``parser.add_subparsers()`` returned.

    Returns
    -------
    argparse.ArgumentParser
        The ``hmm`` parser; ``args.func`` is :func:`run_hmm`.
    """
    p = subparsers.add_parser("hmm", help=HELP, description=HELP)
    configure_hmm(p)
    p.set_defaults(func=run_hmm)
    return p


def configure_hmm(p):
    """Add the ``fit``, ``predict`` and ``select`` subcommands to ``p``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The parser of ``fastem hmm``.
    """
    sub = p.add_subparsers(dest="hmm_command", metavar="SUBCOMMAND")
    for name, func, configure, help_ in (
            ("fit", run_hmm_fit, _configure_fit,
             "fit a Gaussian HMM to the sequences of a data file"),
            ("predict", run_hmm_predict, _configure_predict,
             "decode the hidden state of every row with a saved HMM"),
            ("select", run_hmm_select, _configure_select,
             "choose the number of states by BIC, AIC or cross-validation")):
        q = sub.add_parser(name, help=help_, description=help_)
        configure(q)
        q.set_defaults(hmm_func=func)
    p.set_defaults(hmm_parser=p)


def run_hmm(args):
    """Run ``fastem hmm SUBCOMMAND``.

    Parameters
    ----------
    args : argparse.Namespace

    Returns
    -------
    int
        Exit status.
    """
    func = getattr(args, "hmm_func", None)
    if func is None:
        args.hmm_parser.print_help(sys.stderr)
        return 2
    return func(args)


run_hmm.configure = configure_hmm


# -------------------------------------------------------------- options
def _add_sequence_options(p):
    g = p.add_mutually_exclusive_group()
    g.add_argument("--lengths", metavar="FILE",
                   help="file of sequence lengths, one integer per line, in "
                        "the order of the rows (they must add up to the "
                        "number of rows)")
    g.add_argument("--sequence-column", metavar="NAME",
                   help="column holding a sequence id (name, or 0-based "
                        "index); the rows of one sequence must be "
                        "consecutive, in time order; the column is not a "
                        "feature")
    p.add_argument("--columns", action="append", metavar="COLS",
                   help="feature columns: comma-separated names or 0-based "
                        "indices (default: all, but the sequence column)")


def _add_hmm_options(p, n_init_default):
    c = _cli()
    p.add_argument("--n-iter", type=c._nonneg_int, default=100, metavar="N",
                   help="maximum Baum-Welch iterations (default 100)")
    p.add_argument("--tol", type=c._nonneg_float, default=1e-2,
                   help="convergence threshold on the gain in "
                        "log-likelihood (default 1e-2, as hmmlearn)")
    p.add_argument("--n-init", type=c._positive_int, default=n_init_default,
                   metavar="N", help="starts per fit (seeds SEED, SEED+1, "
                   "...); the most likely is kept (default "
                   f"{n_init_default})")
    p.add_argument("--seed", type=int, default=0,
                   help="random seed (default 0)")
    p.add_argument("--threads", type=c._positive_int, default=None,
                   help="kernel threads (default all cores)")


def _add_output_options(p):
    p.add_argument("--json", action="store_true",
                   help="print the results as JSON (for scripts)")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no notes on stderr (results still go to stdout)")


# --------------------------------------------------------- reading data
def _split_columns(items):
    cols = []
    for item in items or []:
        cols.extend(c.strip() for c in item.split(",") if c.strip())
    return cols or None


def _column_index(path, col, names, n_cols):
    """0-based index of column ``col`` (a name or an index) of ``path``."""
    from fastem.cli.readers import DataError

    col = str(col).strip()
    if names is not None and col in names:
        return names.index(col)
    try:
        i = int(col)
    except ValueError:
        if names is None:
            raise DataError(
                f"{path}: column {col!r} not found: the file has no header, "
                f"select columns by 0-based index (0 to {n_cols - 1})") \
                from None
        raise DataError(f"{path}: column {col!r} not found; available "
                        f"columns: {', '.join(names)}") from None
    if not -n_cols <= i < n_cols:
        raise DataError(f"{path}: column index {i} out of range: the file "
                        f"has {n_cols} columns (0 to {n_cols - 1})")
    return i % n_cols


def _read_ids(path, col):
    """Return the values of column ``col`` of ``path`` as strings (any type).

    Text files are read as text (ids may be names); ``.npy`` files as
    numbers; parquet columns of any type.
    """
    from fastem.cli.readers import DataError, peek_columns, read_table

    names, n_cols = peek_columns(path)
    idx = _column_index(path, col, names, n_cols)
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".npy":
        ids, _ = read_table(path, [idx])
        return [repr(float(v)) for v in ids[:, 0]]
    if suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        name = names[idx]
        values = pq.read_table(path, columns=[name]).column(name).to_pylist()
        if any(v is None for v in values):
            raise DataError(f"{path}: sequence column {name!r} has missing "
                            "values")
        return [str(v) for v in values]
    ids = []
    header = names is not None
    with open(path, encoding="utf-8-sig") as f:
        for line in f:
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            if header:  # the header line
                header = False
                continue
            delimiter = next((d for d in (",", "\t", ";") if d in text),
                             None)
            fields = text.split(delimiter)
            if idx >= len(fields):
                raise DataError(f"{path}: a row has fewer columns than the "
                                "sequence column's index")
            ids.append(fields[idx].strip().strip('"').strip("'"))
    return ids


def _lengths_from_ids(path, col, ids):
    """Lengths of the runs of equal ids; an id must not come back."""
    lengths, seen, start = [], {}, 0
    for i in range(1, len(ids) + 1):
        if i == len(ids) or ids[i] != ids[start]:
            key = ids[start]
            if key in seen:
                a, b = seen[key]
                raise _cli().CLIError(
                    f"{path}: the rows of sequence {_show_id(key)} (column "
                    f"{col!r}) are not consecutive: data rows {a + 1}-{b} "
                    f"and {start + 1}-{i}; sort the file by that column, "
                    "keeping the time order within each sequence")
            seen[key] = (start, i)
            lengths.append(i - start)
            start = i
    return lengths


def _show_id(key):
    try:
        v = float(key)
        return repr(int(v)) if v == int(v) else repr(v)
    except (ValueError, OverflowError):
        return repr(key)


def _read_lengths(path, n_rows):
    c = _cli()
    from fastem.cli.readers import _check_file

    _check_file(path)
    lengths = []
    try:
        with open(path, encoding="utf-8-sig") as f:
            for lineno, line in enumerate(f, 1):
                text = line.split("#", 1)[0].strip()
                if not text:
                    continue
                try:
                    v = int(text)
                except ValueError:
                    raise c.CLIError(
                        f"--lengths {path}: line {lineno}: expected one "
                        f"positive integer per line, found "
                        f"{text[:30]!r}") from None
                if v < 1:
                    raise c.CLIError(f"--lengths {path}: line {lineno}: "
                                     f"lengths must be >= 1, found {v}")
                lengths.append(v)
    except UnicodeDecodeError:
        raise c.CLIError(f"--lengths {path}: not a text file") from None
    if not lengths:
        raise c.CLIError(f"--lengths {path}: no lengths in the file")
    if sum(lengths) != n_rows:
        raise c.CLIError(
            f"--lengths {path}: the {len(lengths)} lengths add up to "
            f"{sum(lengths)}, but the data has {n_rows} rows")
    return lengths


def _feature_columns(args, model=None):
    """Feature columns of DATA: --columns, else without the sequence column."""
    from fastem.cli.readers import peek_columns

    cols = _split_columns(args.columns)
    if cols is not None or not args.sequence_column:
        return cols
    names, n_cols = peek_columns(args.data)
    seq = _column_index(args.data, args.sequence_column, names, n_cols)
    fitted = getattr(model, "feature_names_in_", None)
    if fitted is not None and names is not None and all(
            str(f) in names for f in fitted):
        return [str(f) for f in fitted]
    keep = [i for i in range(n_cols) if i != seq]
    if not keep:
        raise _cli().CLIError(f"{args.data}: no column left for the features "
                              "besides the sequence column")
    return keep


def _model_columns(args, m):
    """Columns of DATA for model ``m``: its features by name, else all."""
    from fastem.cli.readers import peek_columns

    names, n_cols = peek_columns(args.data)
    fitted = getattr(m, "feature_names_in_", None)
    D = m.means_.shape[1]
    if fitted is not None and names is not None:
        missing = [str(f) for f in fitted if str(f) not in names]
        if not missing:
            return [str(f) for f in fitted]
        if n_cols != D:
            raise _cli().CLIError(
                f"{args.data} lacks the model's feature(s) "
                f"{', '.join(map(repr, missing))} (its columns: "
                f"{', '.join(names)}); choose columns with --columns")
    if n_cols != D:
        raise _cli().CLIError(
            f"{args.model} expects {D} feature{'s' if D != 1 else ''}, "
            f"{args.data} has {n_cols} column{'s' if n_cols != 1 else ''}; "
            f"choose {D} with --columns")
    return None


def _read_data(args, model=None):
    """Return ``X``, feature names, lengths (or None) and the sequence ids."""
    from fastem.cli.readers import read_table

    c = _cli()
    cols = _feature_columns(args, model)
    if cols is None and model is not None:
        cols = _model_columns(args, model)
    X, names = read_table(args.data, cols)
    lengths = ids = None
    if args.sequence_column:
        ids = _read_ids(args.data, args.sequence_column)
        if len(ids) != X.shape[0]:
            raise c.CLIError(f"{args.data}: sequence column has {len(ids)} "
                             f"values for {X.shape[0]} rows")
        lengths = _lengths_from_ids(args.data, args.sequence_column, ids)
    elif args.lengths:
        lengths = _read_lengths(args.lengths, X.shape[0])
    return X, names, lengths, ids


def _inputs(args, *extra):
    return list(extra) + [("DATA", args.data),
                          ("LENGTHS", getattr(args, "lengths", None))]


def print_info(path, m, metadata=None):
    """Describe the saved HMM ``m`` (for ``fastem info MODEL``).

    Parameters
    ----------
    path : str
        The model file.
    m : GaussianHMM
        The model loaded from it.
    metadata : dict, optional
        Its ``"metadata"``.

    Returns
    -------
    int
        Exit status 0.
    """
    meta = metadata or {}
    print(f"fastem model: {path} (hidden Markov model, format "
          f"fastem.GaussianHMM)")
    if not hasattr(m, "means_"):
        print(f"not fitted; parameters: n_components={m.n_components}, "
              f"covariance_type='{m.covariance_type}'")
        return 0
    K, D = m.means_.shape
    names = getattr(m, "feature_names_in_", None)
    feats = f": {', '.join(map(str, names))}" if names is not None else ""
    print(f"model: {K} state{'s' if K != 1 else ''}, covariance "
          f"'{m.covariance_type}', {D} feature{'s' if D != 1 else ''}{feats}")
    mon = getattr(m, "monitor_", None)
    if mon is not None:
        print(f"converged: {'yes' if mon.converged else 'NO'} after "
              f"{mon.iter} iterations")
    if meta.get("data"):
        n = meta.get("n_samples")
        s = meta.get("n_sequences")
        rows = (f" ({n:,} rows in {s} sequences)" if isinstance(n, int)
                and isinstance(s, int) else "")
        extra = "".join(f"; {lab} {meta[k]:.4f}" for k, lab in
                        (("log_likelihood", "log-likelihood"), ("bic", "BIC"),
                         ("aic", "AIC"))
                        if isinstance(meta.get(k), (int, float)))
        print(f"fitted on: {meta['data']}{rows}{extra}")
    print("\n".join(_model_lines(m, names)))
    return 0


# ------------------------------------------------------------ summaries
def _model_lines(m, names):
    import numpy as np

    c = _cli()
    K, D = m.means_.shape
    names = [str(n) for n in names] if names is not None else [
        f"x{i}" for i in range(D)]
    states = [f"state {k}" for k in range(K)]
    lines = ["start probabilities"]
    lines += c._table([""], states, [m.startprob_])
    lines.append("transition probabilities (row: from, column: to)")
    lines += c._table(states, states, m.transmat_)
    lines.append("means")
    lines += c._table(names, states, m.means_.T)
    cv = np.asarray(m.covars_)
    lines.append(f"variances ({m.covariance_type}; full matrices with "
                 "--json)")
    lines += c._table(names, states, np.diagonal(cv, axis1=1, axis2=2).T)
    return lines


def _quality(m, X, lengths):
    import numpy as np

    ll = float(m.score(X, lengths))
    p = int(m.n_parameters())
    n = X.shape[0]
    return {"log_likelihood": ll, "bic": -2 * ll + p * np.log(n),
            "aic": -2 * ll + 2 * p, "n_parameters": p}


def _metadata(args, X, lengths, q, **extra):
    return {"data": os.path.abspath(args.data), "n_samples": int(X.shape[0]),
            "n_sequences": 1 if lengths is None else len(lengths),
            **{k: q[k] for k in ("log_likelihood", "bic", "aic")}, **extra}


def _fit_model(args, K, covariance_type, X, lengths):
    from fastem.hmm_select import fit_best

    params = dict(n_components=K, covariance_type=covariance_type,
                  n_iter=args.n_iter, tol=args.tol, n_threads=args.threads)
    return fit_best(params, X, lengths, args.seed, args.n_init)


# ------------------------------------------------------------------ fit
def _configure_fit(p):
    p.add_argument("data", metavar="DATA",
                   help="data file: .csv/.tsv/.txt, .npy, .parquet")
    p.add_argument("-k", "--states", "--components", dest="components",
                   type=_cli()._positive_int, required=True, metavar="K",
                   help="number of hidden states")
    p.add_argument("--covariance", default="diag",
                   choices=("diag", "full", "tied", "spherical"),
                   help="emission covariance structure (default diag)")
    _add_sequence_options(p)
    _add_hmm_options(p, n_init_default=3)
    p.add_argument("--out", metavar="MODEL.json",
                   help="save the fitted model (JSON; read it with fastem "
                        "hmm predict or fastem.load)")
    _add_output_options(p)


def run_hmm_fit(args):
    """Run ``fastem hmm fit``.

    Parameters
    ----------
    args : argparse.Namespace

    Returns
    -------
    int
    """
    import numpy as np

    c = _cli()
    c._check_outputs(args, _inputs(args))
    t0 = perf_counter()
    X, names, lengths, _ = _read_data(args)
    t_read = perf_counter() - t0
    K = args.components
    if K > X.shape[0]:
        raise c.CLIError(f"-k {K} is more states than the {X.shape[0]} rows "
                         f"of {args.data}")
    t0 = perf_counter()
    m = _fit_model(args, K, args.covariance, X, lengths)
    t_fit = perf_counter() - t0
    if names is not None:
        m.feature_names_in_ = np.asarray(names, dtype=object)
    q = _quality(m, X, lengths)
    n_seq = 1 if lengths is None else len(lengths)
    if args.out:
        m.save(args.out, metadata=_metadata(args, X, lengths, q))
    if args.json:
        c._print_json({
            "data": args.data, "n_samples": X.shape[0],
            "n_sequences": n_seq, "n_features": X.shape[1],
            "n_components": K, "covariance_type": args.covariance,
            "features": names, "startprob": m.startprob_,
            "transmat": m.transmat_, "means": m.means_,
            "covars": m.covars_, "converged": bool(m.monitor_.converged),
            "n_iter": int(m.monitor_.iter), **q, "time": t_fit,
            "model": args.out})
    else:
        print(f"fastem hmm fit: {args.data}: {X.shape[0]:,} rows in {n_seq} "
              f"sequence{'s' if n_seq != 1 else ''} x {X.shape[1]} "
              f"feature{'s' if X.shape[1] != 1 else ''}")
        print(f"model: {K} state{'s' if K != 1 else ''}, covariance "
              f"'{args.covariance}'; "
              f"{'converged' if m.monitor_.converged else 'did NOT converge'}"
              f" after {m.monitor_.iter} iterations")
        print(f"log-likelihood: {q['log_likelihood']:.4f}   BIC: "
              f"{q['bic']:.4f}   AIC: {q['aic']:.4f}   parameters: "
              f"{q['n_parameters']}")
        print(f"time: fit {t_fit:.3f} s, read {t_read:.3f} s")
        print("\n".join(_model_lines(m, names)))
    if args.out:
        c._note(args, f"model saved to {args.out}")
    return 0


# -------------------------------------------------------------- predict
def _configure_predict(p):
    p.add_argument("model", metavar="MODEL",
                   help="model file written by fastem hmm fit/select --out")
    p.add_argument("data", metavar="DATA",
                   help="data file: .csv/.tsv/.txt, .npy, .parquet")
    _add_sequence_options(p)
    p.add_argument("--proba", action="store_true",
                   help="write the posterior probability of every state "
                        "instead of the decoded state")
    p.add_argument("--algorithm", choices=("viterbi", "map"), default=None,
                   help="decoder: the most likely state sequence (viterbi) "
                        "or the most likely state of each row (map); "
                        "default: the model's")
    p.add_argument("--out", metavar="FILE.csv",
                   help="write to this CSV file instead of stdout")
    p.add_argument("--no-header", action="store_true",
                   help="no header line in the CSV output")
    _add_output_options(p)


def run_hmm_predict(args):
    """Run ``fastem hmm predict``.

    Parameters
    ----------
    args : argparse.Namespace

    Returns
    -------
    int
    """
    import numpy as np

    from fastem.models.hmm import GaussianHMM

    c = _cli()
    m = c._load_model(args.model)
    c._check_outputs(args, _inputs(args, ("MODEL", args.model)))
    if not isinstance(m, GaussianHMM):
        raise c.CLIError(f"{args.model}: not a hidden Markov model (it holds "
                         f"a {type(m).__name__}); use fastem predict")
    if not hasattr(m, "means_"):
        raise c.CLIError(f"{args.model}: the model is not fitted")
    X, _, lengths, _ = _read_data(args, m)
    D = m.means_.shape[1]
    if X.shape[1] != D:
        raise c.CLIError(f"{args.model} expects {D} features, got "
                         f"{X.shape[1]} columns from {args.data}")
    if args.proba:
        values = m.predict_proba(X, lengths)
        header = ",".join(f"p{k}" for k in range(values.shape[1]))
        fmt = "%.9g"
    else:
        values = m.decode(X, lengths, algorithm=args.algorithm)[1]
        header = "state"
        fmt = "%d"
    if args.json:
        c._print_json({"proba" if args.proba else "states": values})
        return 0
    header = "" if args.no_header else header
    if args.out:
        from fastem.io import atomic_write

        # never a truncated output file (an error or Ctrl-C half-way)
        with atomic_write(args.out) as f:
            np.savetxt(f, values, fmt=fmt, delimiter=",", header=header,
                       comments="")
        n_seq = 1 if lengths is None else len(lengths)
        c._note(args, f"{'probabilities' if args.proba else 'states'} of "
                      f"{X.shape[0]:,} rows ({n_seq} sequence"
                      f"{'s' if n_seq != 1 else ''}) written to {args.out}")
    else:
        np.savetxt(sys.stdout, values, fmt=fmt, delimiter=",", header=header,
                   comments="")
    return 0


# --------------------------------------------------------------- select
def _configure_select(p):
    c = _cli()
    p.add_argument("data", metavar="DATA",
                   help="data file: .csv/.tsv/.txt, .npy, .parquet")
    p.add_argument("-k", "--states", "--components", dest="components",
                   type=c._components_list, default=list(range(1, 7)),
                   metavar="KS", help="numbers of states: a range 1-6 "
                   "(default), a list 2,4,8, or both 1-3,6")
    p.add_argument("--covariance", type=c._covariance_list, default=["diag"],
                   metavar="TYPES",
                   help="'diag' (default), 'all' or a comma-separated list of "
                        "full, tied, diag, spherical")
    p.add_argument("--criterion", default="bic", choices=("bic", "aic", "cv"),
                   help="lower is better: bic (default), aic, or cv (-2 x "
                        "held-out log-likelihood of whole sequences)")
    p.add_argument("--cv", type=c._positive_int, default=None, metavar="N",
                   help="folds of --criterion cv (default 5): whole "
                        "sequences held out when there are at least N, "
                        "else N contiguous blocks of rows")
    _add_sequence_options(p)
    _add_hmm_options(p, n_init_default=3)
    p.add_argument("--jobs", type=c._positive_int, default=None,
                   help="fits run at the same time (default: automatic)")
    p.add_argument("--out", metavar="MODEL.json", help="save the best model")
    _add_output_options(p)


def run_hmm_select(args):
    """Run ``fastem hmm select``.

    Parameters
    ----------
    args : argparse.Namespace

    Returns
    -------
    int
    """
    import numpy as np

    from fastem.hmm_select import select_states

    c = _cli()
    c._check_outputs(args, _inputs(args))
    if args.cv is not None and args.cv < 2:
        raise c.CLIError(f"--cv {args.cv}: at least 2 folds")
    X, names, lengths, _ = _read_data(args)
    if min(args.components) > X.shape[0]:
        raise c.CLIError(f"every -k value exceeds the {X.shape[0]} rows of "
                         f"{args.data}")
    types = args.covariance
    if isinstance(types, str):
        types = c._covariance_list(types)
    show = c._progress_enabled(args)
    bar = c.Progress(sys.stderr, delay=0.0, ticker=False) if show else None

    def progress(row, done, total):
        if bar is not None:
            bar.write(f"fitted {done}/{total}: K={row['n_components']} "
                      f"{row['covariance_type']} ({row['fit_time']:.2f} s)")

    t0 = perf_counter()
    try:
        res = select_states(X, lengths, args.components, types,
                            criterion=args.criterion, cv=args.cv,
                            random_state=args.seed, n_jobs=args.jobs,
                            n_init=args.n_init, progress=progress,
                            n_iter=args.n_iter, tol=args.tol,
                            n_threads=args.threads)
    finally:
        if bar is not None:
            bar.close()
    elapsed = perf_counter() - t0
    best = res.best_model
    if names is not None:
        for m in res.models.values():
            m.feature_names_in_ = np.asarray(names, dtype=object)
    if args.out:
        q = _quality(best, X, lengths)
        best.save(args.out, metadata=_metadata(
            args, X, lengths, q, selected_by=args.criterion))
    bp = res.best_params
    if args.json:
        c._print_json({"data": args.data, "n_samples": X.shape[0],
                       "n_sequences": res.n_sequences,
                       "n_features": X.shape[1],
                       "criterion": args.criterion, "cv": res.cv,
                       "best": {**bp, "criterion": res.best_score},
                       "results": res.results, "time": elapsed,
                       "model": args.out})
    else:
        r = next(r for r in res.results
                 if r["n_components"] == bp["n_components"]
                 and r["covariance_type"] == bp["covariance_type"])
        print(f"fastem hmm select: {args.data}: {X.shape[0]:,} rows in "
              f"{res.n_sequences} sequence"
              f"{'s' if res.n_sequences != 1 else ''} x {X.shape[1]} "
              f"features, {len(res.results)} fits in {elapsed:.2f} s")
        print(res.table())
        print(f"best: K={bp['n_components']} states, covariance "
              f"'{bp['covariance_type']}' ({args.criterion.upper()} "
              f"{res.best_score:.4f}; log-likelihood "
              f"{r['log_likelihood']:.4f}; {r['n_parameters']} parameters; "
              f"{'converged' if r['converged'] else 'did NOT converge'} after "
              f"{r['n_iter']} iterations)")
    if args.out:
        c._note(args, f"best model saved to {args.out}")
    return 0
