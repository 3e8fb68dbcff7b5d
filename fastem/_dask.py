"""Dask backend: EM over a ``dask.array`` whose blocks stay on the workers.

Used through :class:`fastem.core.sources.DaskSource`: each EM iteration
maps a statistics function over the row blocks (on the workers), adds the
statistics up as a binary tree, and brings only the small reduced
statistics back to the client, where the M-step runs.  The statistics
function (with the parameters) is one small task per iteration, shared by
every block task.  Knows nothing of the estimators.
"""

import operator

import numpy as np


def is_dask_collection(X):
    """Whether ``X`` is a dask collection (array or DataFrame)."""
    return hasattr(X, "__dask_graph__")


def as_dask_array(X, name):
    """Dask array of shape (n, d), one chunk along the columns.

    A dask DataFrame's column names are not carried: read them first with
    ``fastem.core._data.feature_names(X)``.
    """
    import dask.array as da

    if hasattr(X, "to_dask_array"):  # dask DataFrame / Series
        X = X.to_dask_array(lengths=True)
    if not isinstance(X, da.Array):
        raise TypeError(f"{name} accepts dask arrays and DataFrames, got "
                        f"{type(X).__name__}.")
    if X.ndim != 2:
        raise ValueError(f"Expected a 2D dask array of shape (n_samples, "
                         f"n_features), got {X.ndim}D with shape {X.shape}.")
    if any(np.isnan(c) for c in X.chunks[0]):
        X = X.compute_chunk_sizes()
    if X.dtype.kind not in "fiu":
        raise TypeError(f"{name} expects numeric data, got dtype {X.dtype}.")
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    return X


def block_apply(block, weights, fn, allow_nan, start=0):
    """Validate one block and return ``fn(X_block, w_block)`` (on a worker).

    ``start`` is the block's first row in the whole array, for messages.  A
    block whose weights are all zero is valid (it adds nothing).
    """
    from fastem._validation import check_array, check_sample_weight
    from fastem.core._data import check_magnitude

    Xb = check_array(block, allow_nan=allow_nan, min_samples=0,
                     row_offset=start)
    check_magnitude(Xb)
    sw = check_sample_weight(weights, Xb.shape[0], allow_zero_sum=True) \
        if weights is not None else np.empty(0)
    return fn(Xb, sw)


def tree_sum(parts):
    """Sum delayed values as a binary tree (the additions run on workers)."""
    from dask import delayed

    add = delayed(operator.add, pure=True)
    while len(parts) > 1:
        parts = [add(parts[i], parts[i + 1]) if i + 1 < len(parts) else parts[i]
                 for i in range(0, len(parts), 2)]
    return parts[0]


def _block_outputs(block, fn, allow_nan, kind, K):
    from fastem._validation import check_array

    Xb = check_array(block, allow_nan=allow_nan, min_samples=0)
    if Xb.shape[0] == 0:
        return np.empty((0, K)) if kind == "resp" else np.empty(
            0, dtype=np.int64 if kind == "label" else np.float64)
    want = (kind == "lse", kind == "resp", kind == "label")
    return fn(Xb, *want)[want.index(True)]


def outputs(X, fn, allow_nan, kind, K, n_features, estimator):
    """Lazy per-row outputs (``'lse'``, ``'resp'`` or ``'label'``).

    ``fn(X_block, lse, resp, label)`` returns the tuple ``(lse, resp,
    label)`` of one validated block (picklable: a module-level function or a
    ``functools.partial``).  The caller checks the feature names (read them
    with :func:`fastem.core._data.feature_names` before calling).
    """
    X = as_dask_array(X, estimator)
    if X.shape[1] != n_features:
        raise ValueError(
            f"X has {X.shape[1]} features, but {estimator} is expecting "
            f"{n_features} features as input.")
    args = (fn, allow_nan, kind, K)
    if kind == "resp":
        return X.map_blocks(_block_outputs, *args, dtype=np.float64,
                            chunks=(X.chunks[0], (K,)))
    dtype = np.int64 if kind == "label" else np.float64
    return X.map_blocks(_block_outputs, *args, dtype=dtype, drop_axis=1)
