"""Input validation.

Every user mistake becomes a clear ValueError/TypeError before it can reach a
compiled kernel.
"""

import sys

import numpy as np


class NotFittedError(ValueError, AttributeError):
    """Raised when a method that needs a fitted model is called before ``fit``.

    When scikit-learn has been imported in the process, the error raised is
    also an instance of ``sklearn.exceptions.NotFittedError``.
    """


def not_fitted_error(name):
    """Build a NotFittedError for estimator class ``name``."""
    msg = (f"This {name} instance is not fitted yet. Call 'fit' with "
           "appropriate arguments before using this estimator.")
    sk = sys.modules.get("sklearn.exceptions")
    if sk is not None and hasattr(sk, "NotFittedError"):
        cls = type("NotFittedError", (NotFittedError, sk.NotFittedError), {})
        return cls(msg)
    return NotFittedError(msg)


def _is_sparse(X):
    return type(X).__module__.startswith("scipy.sparse")


_NAN_HINT = ("or pass nan_policy='marginalize' to GaussianMixture to fit them "
             "by exact EM over the observed entries")


def check_array(X, n_features=None, estimator=None, min_samples=1,
                allow_nan=False, row_offset=0, nan_hint=_NAN_HINT):
    """Validate ``X`` and return a C-contiguous float64/float32 2-D array.

    float32 stays float32; every other numeric type is converted to float64
    once.  Copies only when needed (dtype or layout change).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    n_features : int, optional
        Expected number of features (raises if different).
    estimator : str, optional
        Name used in messages.
    min_samples : int
        Minimum number of rows.
    allow_nan : bool
        Accept NaN entries (inf is always rejected).
    row_offset : int
        Index of X's first row in the whole data (a chunk's or block's
        start), so that messages name the global row.
    nan_hint : str
        What the NaN message suggests after "Drop or impute those rows, ".

    Returns
    -------
    ndarray
    """
    who = estimator or "fastem"
    if _is_sparse(X):
        raise TypeError(
            f"{who} does not support sparse input (got {type(X).__name__}); "
            "convert it with X.toarray() if it fits in memory.")
    if hasattr(X, "__dask_graph__"):
        raise TypeError(
            f"{who} got a dask array; this fit path needs an in-memory array. "
            "Call .compute() on it first.")
    if hasattr(X, "dtypes") and hasattr(X, "to_numpy"):
        X = X.to_numpy()
    try:
        arr = np.asarray(X)
    except ValueError as e:  # ragged nested sequences
        raise ValueError(
            f"{who} expects a 2D array of shape (n_samples, n_features), but "
            f"X could not be made into one: {str(e).splitlines()[0]} Make "
            "every row the same length.") from None
    if arr.dtype.kind == "c":
        raise ValueError(
            f"Complex data not supported: {who} expects real numbers, got "
            f"dtype {arr.dtype}. Pass X.real or np.abs(X).")
    if arr.dtype.kind in "OUS" or arr.dtype == np.bool_:
        try:
            arr = np.asarray(arr, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise type(e)(
                f"{who} expects numeric data, but X (dtype {arr.dtype}) could "
                f"not be converted to float: {e}. Convert or drop the "
                "non-numeric columns.") from None
    elif arr.dtype.kind not in "fiu":
        raise TypeError(
            f"{who} expects numeric data, got dtype {arr.dtype}. Convert X to "
            "a float array first.")
    if arr.ndim != 2:
        if arr.ndim == 1:
            raise ValueError(
                f"Expected 2D array, got 1D array instead (shape {arr.shape}). "
                "Reshape your data either using array.reshape(-1, 1) if your "
                "data has a single feature or array.reshape(1, -1) if it "
                "contains a single sample.")
        raise ValueError(
            f"Expected a 2D array of shape (n_samples, n_features), got a "
            f"{arr.ndim}D array of shape {arr.shape}. Reshape it to 2D.")
    n, d = arr.shape
    if n < min_samples:
        raise ValueError(
            f"Found array with {n} sample(s) (shape={arr.shape}) while a "
            f"minimum of {min_samples} is required.")
    if d < 1:
        raise ValueError(
            f"Found array with 0 feature(s) (shape={arr.shape}) while a "
            "minimum of 1 is required.")
    if arr.dtype != np.float32:
        arr = np.ascontiguousarray(arr, dtype=np.float64)
    else:
        arr = np.ascontiguousarray(arr)
    if n_features is not None and d != n_features:
        raise ValueError(
            f"X has {d} features, but {who} is expecting {n_features} features "
            "as input.")
    _check_finite(arr, allow_nan, row_offset, nan_hint)
    return writeable_view(arr)


class _WriteableInterface:
    """An ``__array_interface__`` exporter over a read-only array's memory.

    Holds the original array (``_array``), so the memory (a memory map, a
    bytes buffer) lives as long as the view: the view's ``base`` is this
    object.
    """

    def __init__(self, array):
        self._array = array
        iface = dict(array.__array_interface__)
        iface["data"] = (iface["data"][0], False)  # pointer, not read-only
        self.__array_interface__ = iface


def writeable_view(arr):
    """Return ``arr``, or a writeable view of a read-only array's memory.

    numba compiles a separate specialization of every kernel for read-only
    arrays (``np.load(..., mmap_mode="r")``, ``arr.setflags(write=False)``),
    about a minute of CPU for nothing.  fastem's kernels never write their
    inputs (X, sample weights), so the kernels can safely be given a view
    flagged writeable over the same memory -- no copy.  That flag is a
    promise, not a permission: fastem never writes through it (a write would
    hit read-only memory, a segfault for a read-only map), and the view is
    internal (never returned to the user).

    Parameters
    ----------
    arr : ndarray
        float32/float64 C-contiguous, as validated for the kernels; other
        arrays are returned unchanged.

    Returns
    -------
    ndarray
    """
    if (arr.flags.writeable or arr.size == 0 or not arr.flags.c_contiguous
            or arr.dtype not in (np.float32, np.float64)
            or not arr.dtype.isnative):
        return arr
    view = np.asarray(_WriteableInterface(arr))
    if view.dtype != arr.dtype or view.shape != arr.shape:  # pragma: no cover
        return arr
    return view


def _check_finite(arr, allow_nan, row_offset=0, nan_hint=_NAN_HINT):
    # Fast path: the sum of a finite array is finite (overflow aside).
    with np.errstate(over="ignore", invalid="ignore"):
        total = arr.sum(dtype=np.float64)
    if np.isfinite(total):
        return
    nan = np.isnan(arr)
    n_nan = int(nan.sum())
    n_inf = int(np.isinf(arr).sum())
    if n_inf == 0 and n_nan == 0:
        return  # finite entries whose sum overflowed
    if n_inf:
        row = int(np.argwhere(np.isinf(arr))[0, 0]) + row_offset
        raise ValueError(
            f"Input X contains infinity: {n_inf} inf value(s), the first in "
            f"row {row}. Remove or clip those entries (fastem fits finite data "
            "only).")
    if n_nan and not allow_nan:
        rows = np.flatnonzero(nan.any(axis=1))
        raise ValueError(
            f"Input X contains NaN: {n_nan} NaN value(s) in {rows.size} row(s), "
            f"the first in row {int(rows[0]) + row_offset}. Drop or impute "
            f"those rows, {nan_hint}.")


def check_sample_weight(sample_weight, n_samples, allow_zero_sum=False):
    """Validate sample weights.

    Returns float64 (n_samples,), or an empty array meaning "all ones".

    Parameters
    ----------
    sample_weight : array-like of shape (n_samples,) or scalar or None
    n_samples : int
    allow_zero_sum : bool
        Accept weights that are all zero (one chunk or block of a larger
        data set; the total is checked by the caller).

    Returns
    -------
    ndarray
    """
    if sample_weight is None:
        return np.empty(0)
    sw = np.asarray(sample_weight)
    if sw.dtype.kind not in "fiub":
        raise TypeError(
            f"sample_weight must be numeric, got dtype {sw.dtype}.")
    if sw.ndim == 0:
        sw = np.full(n_samples, float(sw))
    sw = np.ascontiguousarray(sw, dtype=np.float64)
    if sw.shape != (n_samples,):
        raise ValueError(
            f"sample_weight must have shape ({n_samples},) to match X, got "
            f"shape {sw.shape}.")
    if not np.all(np.isfinite(sw)):
        raise ValueError(
            f"sample_weight contains {int((~np.isfinite(sw)).sum())} NaN or "
            "infinite value(s); weights must be finite and non-negative.")
    if np.any(sw < 0):
        raise ValueError(
            f"sample_weight contains {int((sw < 0).sum())} negative value(s) "
            f"(smallest {sw.min():g}); weights must be non-negative.")
    if sw.max(initial=0.0) > 1e150:
        raise ValueError(
            f"sample_weight contains values up to {sw.max():.3g}; weighted "
            "sums would overflow float64. Weights are relative: divide them "
            "by their maximum.")
    if not allow_zero_sum and not sw.sum() > 0:
        raise ValueError(
            "sample_weight sums to zero; at least one row needs a positive "
            "weight.")
    return writeable_view(sw)  # read-only weights: see writeable_view
