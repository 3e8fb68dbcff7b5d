"""Read numeric tables for the command line: .csv/.tsv/.txt, .npy, .parquet.

Every problem (missing file, unknown column, non-numeric value, missing
optional dependency) raises :class:`DataError` with a one-line message that
names the file and says what to do.
"""

import contextlib
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


def read_table(path, columns=None):
    """Read a numeric table from ``path``.

    Parameters
    ----------
    path : str or os.PathLike
        ``.csv``, ``.tsv`` or ``.txt`` (delimiter sniffed from the first
        line: comma, tab, semicolon or whitespace; a header line is detected
        when one of its fields is not a number), ``.npy`` (1-D or 2-D numeric
        array) or ``.parquet`` (needs pyarrow).
    columns : sequence of str or int, optional
        Columns to keep, by name (files with a header, parquet) or by 0-based
        index.  Default: all columns.

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
    path = os.fspath(path)
    mode = _check_file(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix in (".npy",):
        X, names = _read_npy(path, columns)
    elif suffix in (".parquet", ".pq"):
        X, names = _read_parquet(path, columns)
    elif suffix in (".csv", ".tsv", ".txt", ".dat", ""):
        X, names = _read_text(path, columns, stat.S_ISFIFO(mode))
    else:
        raise DataError(
            f"{path}: unknown file type {suffix!r}; expected one of "
            f"{', '.join(SUFFIXES)}")
    if X.shape[0] == 0:
        raise DataError(f"{path}: no data rows")
    if X.shape[1] == 0:
        raise DataError(f"{path}: no columns selected")
    return X, names


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
    first, _ = _first_line(path)
    fields = _split(first.rstrip("\r\n"), _delimiter(first))
    header = not all(_is_number(f) for f in fields if f != "")
    return (fields if header else None), len(fields)


def _pyarrow(path):
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(
            f"{path}: reading .parquet files needs pyarrow: pip install "
            "pyarrow (or pip install fastem[parquet])") from None
    return pq


def _first_line(path, lines=None):
    """First line that is neither blank nor a comment, and its line number.

    Reads ``path`` line by line with a bound on the line length (or takes the
    lines of a pipe already read, ``lines``).
    """
    try:
        with open(path, encoding="utf-8-sig") if lines is None \
                else contextlib.nullcontext(iter(lines)) as f:
            n_before = offset = 0
            while True:
                line = f.readline(MAX_LINE_BYTES + 1) if lines is None \
                    else next(f, "")
                if not line:
                    break
                n_before += 1
                if len(line) > MAX_LINE_BYTES:
                    raise _long_line_error(path, n_before)
                nul = line.find("\0")
                if nul >= 0:
                    raise _nul_error(path, offset + len(line[:nul].encode()))
                offset += len(line.encode())
                if line.strip() and not line.lstrip().startswith("#"):
                    return line, n_before
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text file (cannot decode as UTF-8)") \
            from None
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from None
    raise DataError(f"{path}: empty file")


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
    try:
        float(field)
    except ValueError:
        return False
    return True


def _split(line, delimiter):
    fields = line.split(delimiter) if delimiter else line.split()
    return [f.strip().strip('"').strip("'") for f in fields]


def _read_text(path, columns, pipe=False):
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
    first, n_before = _first_line(path, lines)
    delimiter = _delimiter(first)
    fields = _split(first.rstrip("\r\n"), delimiter)
    header = not all(_is_number(f) for f in fields if f != "")
    names = fields if header else None
    n_cols = len(fields)
    usecols = _resolve_columns(path, columns, names, n_cols)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "input contained no data"
            X = np.loadtxt(path if lines is None else lines,
                           delimiter=delimiter,
                           skiprows=n_before if header else 0, usecols=usecols,
                           ndmin=2, dtype=np.float64, comments="#",
                           encoding="utf-8-sig")
    except ValueError as e:
        raise DataError(_loadtxt_message(path, str(e), names, header,
                                         usecols)) from None
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from None
    sel = names if usecols is None or names is None else [names[i] for i in usecols]
    if X.size == 0:
        return X.reshape(0, len(sel) if sel else n_cols), sel
    return X, sel


def _loadtxt_message(path, msg, names, header, usecols):
    m = re.search(r"could not convert string '(.*)' to float64 at row (\d+), "
                  r"column (\d+)", msg)
    if m:
        value, row, col = m.group(1), int(m.group(2)), int(m.group(3)) - 1
        if usecols is not None:
            col = usecols[col] if col < len(usecols) else col
        where = f"column {col}"
        if names is not None and col < len(names):
            where += f" ({names[col]!r})"
        at = f"data row {row + 1}, {where}"
        if not value.strip():
            return (f"{path}: empty field (missing value) in {at}; fill or "
                    "drop incomplete rows first")
        return (f"{path}: non-numeric value {value!r} in {at}; choose numeric "
                "columns with --columns")
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
        return np.column_stack([arr[n].astype(np.float64) for n in keep]), keep
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
    return np.ascontiguousarray(arr), None


def _read_parquet(path, columns):
    pq = _pyarrow(path)
    try:
        schema = pq.read_schema(path)
    except Exception as e:  # pyarrow raises its own exception types
        raise DataError(f"{path}: not a readable parquet file "
                        f"({str(e).splitlines()[0]})") from None
    names = [n for n in schema.names if not n.startswith("__index_level_")]
    idx = _resolve_columns(path, columns, names, len(names))
    keep = names if idx is None else [names[i] for i in idx]
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
            raise DataError(f"{path}: column {n!r} has {col.null_count} "
                            "missing values; drop or impute them first")
        cols.append(col.to_numpy().astype(np.float64, copy=False))
    if not cols:
        return np.empty((0, 0)), keep
    return np.column_stack(cols), keep


def _pa_numeric(t):
    import pyarrow.types as pt

    return pt.is_integer(t) or pt.is_floating(t) or pt.is_boolean(t) \
        or pt.is_decimal(t)
