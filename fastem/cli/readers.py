"""Read numeric tables for the command line: .csv/.tsv/.txt, .npy, .parquet.

Every problem (missing file, unknown column, non-numeric value, missing
optional dependency) raises :class:`DataError` with a one-line message that
names the file and says what to do.
"""

import contextlib
import csv
import os
import re
import stat
import warnings

import numpy as np

SUFFIXES = (".csv", ".tsv", ".txt", ".npy", ".parquet", ".pq")


class DataError(ValueError):
    """A data file cannot be read as a numeric table (one-line message)."""


# Longest line a text file may have (a file of binary data or of a single
# endless line would otherwise be read whole into memory before any error),
# and the block size of the bounded pass that checks it.
MAX_LINE_BYTES = 16 * 2 ** 20
_SCAN_BLOCK = 2 ** 20
_KINDS = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def _check_file(path):
    """Refuse what is not a regular file or a pipe: one clear line, at once.

    ``/dev/zero`` and other devices never end; reading them would only stop
    when memory runs out.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from None
    if stat.S_ISDIR(mode):
        raise DataError(f"{path}: is a directory, expected a data file")
    if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
        kind = next((k for test, k in _KINDS if test(mode)), "not a file")
        raise DataError(
            f"{path}: is {kind}, not a regular file; fastem reads data files "
            "(CSV text, .npy, .parquet) -- save the data to a file first")
    return mode


def _nul_error(path, at):
    return DataError(
        f"{path}: not a text CSV file: found NUL bytes at byte {at}; fastem "
        "reads CSV text (UTF-8), .npy and .parquet -- convert the file, or "
        "give it its real extension")


def _long_line_error(path, line):
    return DataError(
        f"{path}: line {line} is longer than {MAX_LINE_BYTES // 2 ** 20} MiB; "
        "not a CSV table (one row per line) -- is it the right file?")


def _scan_text(f, path, keep=False):
    """Check a text file in one bounded pass: no NUL byte, no overlong line.

    Reads ``f`` (binary) in blocks of at most :data:`_SCAN_BLOCK` bytes, so
    memory stays bounded whatever the file holds.  Returns the bytes read
    when ``keep`` (for a pipe, which cannot be read twice), else None.
    """
    size = min(_SCAN_BLOCK, MAX_LINE_BYTES)
    offset = lines = since = 0  # since: bytes after the last line end
    kept = []
    while True:
        block = f.read(size)
        if not block:
            return b"".join(kept) if keep else None
        nul = block.find(b"\0")
        if nul >= 0:
            raise _nul_error(path, offset + nul)
        if keep:
            kept.append(block)
        offset += len(block)
        if b"\r" in block:  # CR or CRLF line ends count as line ends
            block = block.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        first = block.find(b"\n")
        if first < 0:
            since += len(block)
        else:
            if since + first > MAX_LINE_BYTES:
                raise _long_line_error(path, lines + 1)
            # the lines wholly inside the block are shorter than the block
            lines += block.count(b"\n")
            since = len(block) - block.rfind(b"\n") - 1
        if since > MAX_LINE_BYTES:
            raise _long_line_error(path, lines + 1)


# Tokens read as a missing value: pandas' default NA strings (none of them
# is a number) plus "." (SAS, Stata).  "nan" and "NaN" are numbers to
# Python's float() already.
NA_TOKENS = frozenset({
    "", ".", "NA", "N/A", "n/a", "NaN", "nan", "-NaN", "-nan", "NULL",
    "null", "None", "<NA>", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN",
    "1.#IND", "1.#QNAN"})
NAN_POLICIES = ("raise", "marginalize")
# Rows (and characters) of a text file looked at to tell numeric columns
# from text columns.
SAMPLE_ROWS = 1000
SAMPLE_CHARS = 4 * 2 ** 20


def read_table(path, columns=None, nan_policy="raise", note=None):
    """Read a numeric table from ``path``.

    Parameters
    ----------
    path : str or os.PathLike
        ``.csv``, ``.tsv`` or ``.txt`` (delimiter sniffed from the first
        line: comma, tab, semicolon or whitespace; a header line is detected
        when one of its fields is not a number), ``.npy`` (1-D or 2-D numeric
        array) or ``.parquet`` (needs pyarrow).  Quoted numbers (``"3.6"``,
        ``'3.6'``) are numbers.
    columns : sequence of str or int, optional
        Columns to keep, by name (files with a header, parquet) or by 0-based
        index.  Default: every numeric column (text columns are skipped and
        ``note`` is told which).
    nan_policy : {'raise', 'marginalize'}, default='raise'
        ``'raise'``: a missing value (an empty cell, one of
        :data:`NA_TOKENS`, a NaN) is an error naming its row and column.
        ``'marginalize'``: missing values are read as NaN.
    note : callable, optional
        Called with a one-line message about what was done silently (text
        columns skipped).

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float64
    names : list of str or None
        Column names of ``X`` when the file has them.

    Raises
    ------
    DataError
        With a one-line message.
    """
    if nan_policy not in NAN_POLICIES:
        raise ValueError(f"nan_policy must be one of {NAN_POLICIES}, got "
                         f"{nan_policy!r}")
    note = note or (lambda msg: None)
    path = os.fspath(path)
    mode = _check_file(path)
    suffix = os.path.splitext(path)[1].lower()
    where = None
    if suffix in (".npy",):
        X, names, where = _read_npy(path, columns)
    elif suffix in (".parquet", ".pq"):
        X, names, where = _read_parquet(path, columns, note)
    elif suffix in (".csv", ".tsv", ".txt", ".dat", ""):
        X, names, where = _read_text(path, columns, stat.S_ISFIFO(mode), note)
    else:
        raise DataError(
            f"{path}: unknown file type {suffix!r}; expected one of "
            f"{', '.join(SUFFIXES)}")
    if X.shape[0] == 0:
        raise DataError(f"{path}: no data rows")
    if X.shape[1] == 0:
        raise DataError(f"{path}: no columns selected")
    if nan_policy == "raise":
        _refuse_missing(path, X, names, where)
    return X, names


def _refuse_missing(path, X, names, where):
    """Raise on the first missing value (NaN) of ``X``, naming it."""
    nan = np.isnan(X)
    if not nan.any():
        return
    row = int(np.flatnonzero(nan.any(axis=1))[0])
    j = int(np.flatnonzero(nan[row])[0])
    col, what = j, "missing value (NaN)"
    if where is not None:  # the file's column and, in text, the token
        cols, token_at = where
        col = cols[j]
        token = token_at(row, col) if token_at is not None else None
        if token == "":
            what = "empty cell"
        elif token is not None:
            what = f"missing value {token!r}"
    name = f" ({names[j]!r})" if names is not None else ""
    raise DataError(
        f"{path}: {what} in data row {row + 1}, column {col}{name}; pass "
        "--nan-policy marginalize to use rows with missing values (only their "
        "observed entries count), or fill or drop them first")


def peek_columns(path):
    """Column names (or None) and column count of a data file, cheaply.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    names : list of str or None
    n_columns : int
    """
    path = os.fspath(path)
    _check_file(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".npy":
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError as e:
            raise DataError(f"{path}: not a numeric .npy array "
                            f"({str(e).splitlines()[0]})") from None
        if arr.dtype.names is not None:
            return list(arr.dtype.names), len(arr.dtype.names)
        return None, 1 if arr.ndim == 1 else int(arr.shape[1])
    if suffix in (".parquet", ".pq"):
        pq = _pyarrow(path)
        try:
            names = [n for n in pq.read_schema(path).names
                     if not n.startswith("__index_level_")]
        except Exception as e:  # pyarrow raises its own exception types
            raise DataError(f"{path}: not a readable parquet file "
                            f"({str(e).splitlines()[0]})") from None
        return names, len(names)
    layout = _layout(path)
    return layout["names"], layout["n_cols"]


def _pyarrow(path):
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(
            f"{path}: reading .parquet files needs pyarrow: pip install "
            "pyarrow (or pip install fastem[parquet])") from None
    return pq


def _data_lines(path, lines=None):
    """Yield ``(line_number, line)`` of the lines not blank nor a comment.

    Reads ``path`` line by line with a bound on the line length (or takes the
    lines of a pipe already read, ``lines``).
    """
    try:
        with open(path, encoding="utf-8-sig") if lines is None \
                else contextlib.nullcontext(iter(lines)) as f:
            n = offset = 0
            while True:
                line = f.readline(MAX_LINE_BYTES + 1) if lines is None \
                    else next(f, "")
                if not line:
                    return
                n += 1
                if len(line) > MAX_LINE_BYTES:
                    raise _long_line_error(path, n)
                nul = line.find("\0")
                if nul >= 0:
                    raise _nul_error(path, offset + len(line[:nul].encode()))
                offset += len(line.encode())
                if line.strip() and not line.lstrip().startswith("#"):
                    yield n, line
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text file (cannot decode as UTF-8)") \
            from None
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from None


def _first_line(path, lines=None):
    """First line that is neither blank nor a comment, and its line number."""
    with contextlib.closing(_data_lines(path, lines)) as it:
        for n, line in it:
            return line, n
    raise DataError(f"{path}: empty file")


def _layout(path, lines=None):
    """Delimiter, header and column names of a text table.

    The first line is a header when one of its fields is neither a number
    nor a missing-value token -- unless the next line has text in each of
    those places too (then the first line is data of a file with text
    columns and no header).
    """
    with contextlib.closing(_data_lines(path, lines)) as it:
        first = next(it, None)
        if first is None:
            raise DataError(f"{path}: empty file")
        second = next(it, None)
    n_before, line = first
    delimiter = _delimiter(line)
    fields = _fields(line, delimiter)
    text = [j for j, f in enumerate(fields) if _kind(f) == "text"]
    header = bool(text)
    if header and second is not None:
        nxt = _fields(_strip_comment(second[1]), delimiter)
        header = any(j >= len(nxt) or _kind(nxt[j]) != "text"
                     or _DECIMAL_COMMA.fullmatch(nxt[j]) for j in text)
    return {"delimiter": delimiter, "header": header, "n_before": n_before,
            "names": fields if header else None, "n_cols": len(fields)}


def _strip_comment(line):
    i = line.find("#")
    return line if i < 0 else line[:i]


def _unquote(field):
    field = field.strip()
    if len(field) >= 2 and field[0] == field[-1] and field[0] in "\"'":
        field = field[1:-1].strip()
    return field


def _fields(line, delimiter):
    """Split one line into fields, stripped, quotes removed."""
    line = line.rstrip("\r\n")
    if delimiter is None:
        raw = line.split()
    else:
        raw = next(csv.reader([line], delimiter=delimiter,
                              skipinitialspace=True), [])
    return [_unquote(f) for f in raw]


def _kind(field):
    """Classify an unquoted field: ``'number'``, ``'missing'`` or ``'text'``."""
    if field in NA_TOKENS:
        return "missing"
    try:
        float(field)
    except ValueError:
        return "text"
    return "number"


def _convert(field):
    """Convert a field for loadtxt: a number, NaN if missing, else error."""
    try:
        return float(field)
    except ValueError:
        pass
    field = _unquote(field)
    if field in NA_TOKENS:
        return np.nan
    return float(field)


def _delimiter(line):
    for d in (",", "\t", ";"):
        if d in line:
            return d
    return None


def _resolve_columns(path, columns, names, n_cols):
    """Map ``columns`` (names or 0-based indices) to indices."""
    if columns is None:
        return None
    idx = []
    for c in columns:
        if isinstance(c, (int, np.integer)) and not isinstance(c, bool):
            i = int(c)
        elif names is not None and str(c) in names:
            i = names.index(str(c))
        elif re.fullmatch(r"-?\d+", str(c).strip()):
            i = int(str(c).strip())
        elif names is None:
            raise DataError(
                f"{path}: column {c!r} not found: the file has no header, "
                f"select columns by 0-based index (0 to {n_cols - 1})")
        else:
            raise DataError(
                f"{path}: column {c!r} not found; available columns: "
                f"{', '.join(names)}")
        if not -n_cols <= i < n_cols:
            raise DataError(
                f"{path}: column index {i} out of range: the file has "
                f"{n_cols} column{'s' if n_cols != 1 else ''} (0 to {n_cols - 1})")
        idx.append(i % n_cols)
    if len(set(idx)) != len(idx):
        raise DataError(f"{path}: column selected twice in {list(columns)}")
    return idx


def _is_number(field):
    return _kind(_unquote(field)) != "text"


def _col(j, names):
    return f"column {j}" + (f" ({names[j]!r})" if names is not None
                            and j < len(names) else "")


def _rows(path, lines, layout):
    """Yield ``(data_row, line_number, fields)`` of the data rows (1-based)."""
    with contextlib.closing(_data_lines(path, lines)) as it:
        if layout["header"]:
            next(it, None)
        row = 0
        for n, line in it:
            line = _strip_comment(line)
            if not line.strip():
                continue
            row += 1
            yield row, n, _fields(line, layout["delimiter"])


def _text_columns(path, lines, layout):
    """Columns with text in the first rows: ``{column: (value, data_row)}``.

    Looks at :data:`SAMPLE_ROWS` rows and :data:`SAMPLE_CHARS` characters at
    most (memory and time stay bounded).
    """
    text = {}
    chars = 0
    comma = None
    with contextlib.closing(_rows(path, lines, layout)) as rows:
        for row, _, fields in rows:
            if row > SAMPLE_ROWS or chars > SAMPLE_CHARS:
                break
            if len(fields) != layout["n_cols"]:
                break  # reported by the parse, with its row
            for j, f in enumerate(fields):
                chars += len(f) + 1
                if _kind(f) == "text":
                    text.setdefault(j, (f, row))
                    if comma is None and _DECIMAL_COMMA.fullmatch(f):
                        comma = f
    return text, comma


_DECIMAL_COMMA = re.compile(r"[-+]?\d*,\d+")


def _comma_hint(values):
    """Hint at decimal commas (``3,6``) among ``values``."""
    if any(_DECIMAL_COMMA.fullmatch(v) for v in values):
        return (" (decimal commas? fastem reads '.' as the decimal point: "
                "convert the file)")
    return ""


def _non_numeric(path, value, row, j, names):
    return DataError(
        f"{path}: non-numeric value {value!r} in data row {row}, "
        f"{_col(j, names)}{_comma_hint([value])}; fix it, or choose other "
        "columns with --columns")


def _read_text(path, columns, pipe=False, note=None):
    # One bounded pass first: binary data or a file without line ends is
    # refused before a parser reads it whole (a 50 MB file of NUL bytes took
    # 467 MB, /dev/zero all the memory).  A pipe is read once, into memory.
    lines = None
    try:
        with open(path, "rb") as f:
            data = _scan_text(f, path, keep=pipe)
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from None
    if pipe:
        try:
            lines = data.decode("utf-8-sig").splitlines(keepends=True)
        except UnicodeDecodeError:
            raise DataError(f"{path}: not a text file (cannot decode as "
                            "UTF-8)") from None
        del data
    layout = _layout(path, lines)
    names, n_cols = layout["names"], layout["n_cols"]
    text, comma = _text_columns(path, lines, layout)
    hint = _comma_hint([comma] if comma else [])
    usecols = _resolve_columns(path, columns, names, n_cols)
    if usecols is not None:
        for j in usecols:
            if j in text:
                raise _non_numeric(path, text[j][0], text[j][1], j, names)
    else:
        unnamed = [j for j in range(n_cols) if names is not None
                   and names[j] == "" and j not in text]
        skip = sorted(set(text) | set(unnamed))
        if skip:
            usecols = [j for j in range(n_cols) if j not in skip]
            if not usecols:
                j = min(text)
                raise DataError(
                    f"{path}: no numeric column (column {j}"
                    f"{f' {names[j]!r}' if names else ''} has "
                    f"{text[j][0]!r} in data row {text[j][1]}){hint}")
            parts = []
            if unnamed:
                s = "s" if len(unnamed) != 1 else ""
                parts.append(f"the unnamed column{s} "
                             f"{', '.join(map(str, unnamed))} (row names?)")
            if text:
                s = "s" if len(text) != 1 else ""
                parts.append(f"the non-numeric column{s} " + ", ".join(
                    repr(names[j]) if names is not None and names[j]
                    else str(j) for j in sorted(text)) + hint)
            if note is not None:
                note(f"{path}: skipped {' and '.join(parts)}; choose columns "
                     "with --columns")
    kw = dict(delimiter=layout["delimiter"], quotechar='"',
              skiprows=layout["n_before"] if layout["header"] else 0,
              usecols=usecols, ndmin=2, dtype=np.float64, comments="#",
              encoding="utf-8-sig")
    X = None
    for converters in (None, _convert):  # fast first; then NA tokens, quotes
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "input contained no data"
                X = np.loadtxt(path if lines is None else lines,
                               converters=converters, **kw)
            break
        except ValueError as e:
            msg = str(e)
        except OSError as e:
            raise DataError(f"{path}: cannot read: {e.strerror or e}") \
                from None
    if X is None:
        raise _locate(path, lines, layout, usecols) or DataError(
            _loadtxt_message(path, msg))
    sel = names if usecols is None or names is None else [names[i] for i in usecols]
    if X.size == 0:
        X = X.reshape(0, len(usecols) if usecols is not None else n_cols)
    cols = list(range(n_cols)) if usecols is None else usecols

    def token_at(row, col):
        with contextlib.closing(_rows(path, lines, layout)) as rows:
            for r, _, fields in rows:
                if r == row + 1:
                    return fields[col] if col < len(fields) else None
        return None

    return X, sel, (cols, token_at)


def _locate(path, lines, layout, usecols):
    """Find the first bad row of the parse: a DataError (None if none)."""
    names, n_cols = layout["names"], layout["n_cols"]
    cols = range(n_cols) if usecols is None else usecols
    with contextlib.closing(_rows(path, lines, layout)) as rows:
        for row, _, fields in rows:
            if len(fields) != n_cols and (usecols is None
                                          or max(usecols) >= len(fields)):
                return DataError(
                    f"{path}: data row {row} has {len(fields)} fields, "
                    f"expected {n_cols} like the "
                    f"{'header' if layout['header'] else 'first row'}")
            for j in cols:
                if _kind(fields[j]) == "text":
                    return _non_numeric(path, fields[j], row, j, names)
    return None


def _loadtxt_message(path, msg):
    m = re.search(r"the number of columns changed from (\d+) to (\d+) at row "
                  r"(\d+)", msg)
    if m:
        return (f"{path}: data row {m.group(3)} has {m.group(2)} fields, "
                f"expected {m.group(1)} like the first row")
    m = re.search(r"invalid column index (-?\d+)", msg)
    if m:
        return f"{path}: some rows have fewer columns than the first line"
    return f"{path}: cannot parse as a numeric table: {msg.splitlines()[0]}"


def _read_npy(path, columns):
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as e:
        raise DataError(f"{path}: not a numeric .npy array "
                        f"({str(e).splitlines()[0]})") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e}") from None
    if not isinstance(arr, np.ndarray):
        raise DataError(f"{path}: expected one array in a .npy file")
    if arr.dtype.names is not None:
        names = list(arr.dtype.names)
        idx = _resolve_columns(path, columns, names, len(names))
        keep = names if idx is None else [names[i] for i in idx]
        for n in keep:
            if arr.dtype[n].kind not in "biuf":
                raise DataError(f"{path}: field {n!r} is not numeric "
                                f"(dtype {arr.dtype[n]})")
        return (np.column_stack([arr[n].astype(np.float64) for n in keep]),
                keep, (idx, None) if idx is not None else None)
    if arr.dtype.kind not in "biuf":
        raise DataError(f"{path}: array has non-numeric dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    elif arr.ndim != 2:
        raise DataError(f"{path}: expected a 1-D or 2-D array, got shape "
                        f"{arr.shape}")
    idx = _resolve_columns(path, columns, None, arr.shape[1])
    if idx is not None:
        arr = arr[:, idx]
    if arr.dtype != np.float32:
        arr = arr.astype(np.float64, copy=False)
    return np.ascontiguousarray(arr), None, \
        (idx, None) if idx is not None else None


def _read_parquet(path, columns, note=None):
    pq = _pyarrow(path)
    try:
        schema = pq.read_schema(path)
    except Exception as e:  # pyarrow raises its own exception types
        raise DataError(f"{path}: not a readable parquet file "
                        f"({str(e).splitlines()[0]})") from None
    names = [n for n in schema.names if not n.startswith("__index_level_")]
    idx = _resolve_columns(path, columns, names, len(names))
    if idx is None:
        text = [n for n in names if not _pa_numeric(schema.field(n).type)]
        keep = [n for n in names if n not in text]
        if text and not keep:
            raise DataError(f"{path}: no numeric column (column {text[0]!r} "
                            f"has type {schema.field(text[0]).type})")
        if text and note is not None:
            s = "s" if len(text) != 1 else ""
            note(f"{path}: skipped the non-numeric column{s} "
                 f"{', '.join(map(repr, text))}; choose columns with "
                 "--columns")
    else:
        keep = [names[i] for i in idx]
    for n in keep:
        t = schema.field(n).type
        if not (_pa_numeric(t)):
            raise DataError(
                f"{path}: column {n!r} is not numeric (type {t}); choose "
                "numeric columns with --columns")
    table = pq.read_table(path, columns=keep)
    cols = []
    for n in keep:
        col = table.column(n)
        if col.null_count:
            col = col.cast("float64").fill_null(float("nan"))
        cols.append(col.to_numpy().astype(np.float64, copy=False))
    if not cols:
        return np.empty((0, 0)), keep, None
    return np.column_stack(cols), keep, ([names.index(n) for n in keep], None)


def _pa_numeric(t):
    import pyarrow.types as pt

    return pt.is_integer(t) or pt.is_floating(t) or pt.is_boolean(t) \
        or pt.is_decimal(t)
