"""Dask backend: EM over a ``dask.array`` whose blocks stay on the workers.

Imported only when a dask collection reaches the estimator.  Each EM
iteration maps fastem's statistics kernel over the row blocks (on the
workers), adds the statistics up as a binary tree, and brings only the small
reduced statistics back to the client, where the M-step runs.  The
parameters are one small task per iteration, shared by every block task.
"""

import operator

import numpy as np


def is_dask_collection(X):
    """Whether ``X`` is a dask collection (array or DataFrame)."""
    return hasattr(X, "__dask_graph__")


def as_dask_array(X, name):
    """Dask array of shape (n, d), one chunk along the columns.

    A dask DataFrame's column names are not carried: read them first with
    ``mixture._feature_names(X)`` (as :func:`fit` does).
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


def _block_stats(block, weights, params, allow_nan, start=0):
    """Statistics of one block (runs on a worker).

    ``start`` is the block's first row in the whole array, for messages.  A
    block whose weights are all zero is valid (it adds nothing).
    """
    from ._missing import MissingPlan, missing_pass
    from ._validation import check_array, check_sample_weight
    from .mixture import _check_magnitude
    from .stats import _stats_pass

    Xb = check_array(block, allow_nan=allow_nan, min_samples=0,
                     row_offset=start)
    _check_magnitude(Xb)
    sw = check_sample_weight(weights, Xb.shape[0], allow_zero_sum=True) \
        if weights is not None else np.empty(0)
    if allow_nan and np.isnan(Xb).any():
        return missing_pass(Xb, sw, MissingPlan(Xb), params)
    code, means, prec, logconst = params.kernel_args()
    return _stats_pass(Xb, sw, params.covariance_type, code, means, prec,
                       logconst)


def _tree_sum(parts):
    from dask import delayed

    add = delayed(operator.add, pure=True)
    while len(parts) > 1:
        parts = [add(parts[i], parts[i + 1]) if i + 1 < len(parts) else parts[i]
                 for i in range(0, len(parts), 2)]
    return parts[0]


def fit(model, X, sample_weight, init_size=100_000):
    """Run ``model``'s EM on a dask array (see module docstring)."""
    import dask
    import dask.array as da

    from .mixture import _feature_names

    name = type(model).__name__
    model._check_parameters()
    names = _feature_names(X)  # a dask DataFrame's columns (no compute)
    X = as_dask_array(X, name)
    N, D = X.shape
    K = model.n_components
    if N < max(K, 2):
        raise ValueError(
            f"Expected n_samples >= n_components but got n_components = {K}, "
            f"n_samples = {N}.")
    blocks = X.to_delayed().ravel().tolist()
    if sample_weight is None:
        wblocks = [None] * len(blocks)
    else:
        w = sample_weight
        if not isinstance(w, da.Array):
            w = da.from_array(np.asarray(w, dtype=np.float64),
                              chunks=(X.chunks[0],))
        if w.shape != (N,):
            raise ValueError(f"sample_weight must have shape ({N},) to match "
                             f"X, got shape {w.shape}.")
        wblocks = w.rechunk((X.chunks[0],)).to_delayed().ravel().tolist()
        total = float(w.sum().compute())
        if not total > 0:
            raise ValueError("sample_weight sums to zero; at least one row "
                             "needs a positive weight.")
    allow_nan = model._allow_nan()
    rng = model._rng_for_fit()
    # Initialization on a uniform sample of rows, gathered to the client:
    # O(init_size) memory on the client, never N of anything.
    from .mixture import _sample_rows

    idx = _sample_rows(rng, N, min(N, init_size))
    sample = np.asarray(X[idx].compute(), dtype=np.float64)
    sw_s = (np.asarray(w[idx].compute(), np.float64)
            if sample_weight is not None else np.empty(0))
    if allow_nan and np.isnan(sample).any():
        from .mixture import _mean_impute

        sample = _mean_impute(sample)

    def init_fn(rng_, inits):
        return model._initialize(sample, sw_s, rng_, inits)

    stats_task = dask.delayed(_block_stats, pure=True)
    starts = np.concatenate([[0], np.cumsum(X.chunks[0])[:-1]]).tolist()

    def stats_fn(params):
        p = dask.delayed(params, pure=True)
        parts = [stats_task(b, w, p, allow_nan, int(s0))
                 for b, w, s0 in zip(blocks, wblocks, starts)]
        return _tree_sum(parts).compute()

    dtype = np.float32 if X.dtype == np.float32 else np.float64
    model._run_em(stats_fn, init_fn, N, D, names, rng=rng, dtype=dtype)


def _block_outputs(block, params, allow_nan, kind, K):
    from ._missing import MissingPlan, missing_pass
    from ._validation import check_array
    from .stats import _outputs

    Xb = check_array(block, allow_nan=allow_nan, min_samples=0)
    if Xb.shape[0] == 0:
        return np.empty((0, K)) if kind == "resp" else np.empty(
            0, dtype=np.int64 if kind == "label" else np.float64)
    want = (kind == "lse", kind == "resp", kind == "label")
    if allow_nan and np.isnan(Xb).any():
        n = Xb.shape[0]
        out = (np.empty(n) if want[0] else None,
               np.empty((n, K)) if want[1] else None,
               np.empty(n, dtype=np.int64) if want[2] else None)
        missing_pass(Xb, np.empty(0), MissingPlan(Xb), params, False, *out)
    else:
        out = _outputs(Xb, params, *want)
    return out[want.index(True)]


def outputs(model, X, kind):
    """Lazy per-row outputs (``'lse'``, ``'resp'`` or ``'label'``)."""
    from .mixture import _feature_names

    name = type(model).__name__
    model._check_feature_names(_feature_names(X), stacklevel=4)
    X = as_dask_array(X, name)
    if X.shape[1] != model.n_features_in_:
        raise ValueError(
            f"X has {X.shape[1]} features, but {name} is expecting "
            f"{model.n_features_in_} features as input.")
    K = model.n_components
    args = (model._params, model._allow_nan(), kind, K)
    if kind == "resp":
        return X.map_blocks(_block_outputs, *args, dtype=np.float64,
                            chunks=(X.chunks[0], (K,)))
    dtype = np.int64 if kind == "label" else np.float64
    return X.map_blocks(_block_outputs, *args, dtype=dtype, drop_axis=1)
