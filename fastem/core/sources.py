"""Data sources of the EM driver: in-memory arrays, chunk streams, Dask.

Every source gives ``n_rows``, ``n_features``, ``dtype`` (float32 or
float64: the dtype the fitted attributes take), an initialization sample
(:meth:`init_sample`) and :meth:`map_sum`: one pass over the data that maps
a per-chunk statistics function ``fn(X_chunk, w_chunk) -> stats`` over the
chunks and adds the results (additive statistics, ``a + b``).  The chunks
given to ``fn`` are validated float arrays; ``w_chunk`` is an empty array
when the data is unweighted.  Splitting the data differently changes the
sums only by rounding.
"""

import numpy as np

from fastem import _config
from fastem._validation import check_array, check_sample_weight
from fastem.core._data import check_magnitude, reservoir, sample_rows

__all__ = ["ArraySource", "ChunkSource", "DaskSource"]


class ArraySource:
    """An in-memory array: one chunk, the whole data.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
        Validated data (float32 or float64).
    sample_weight : ndarray of shape (n_rows,) or (0,), optional
        Validated weights; empty (or None) for unweighted data.
    """

    def __init__(self, X, sample_weight=None):
        self.X = X
        self.sample_weight = np.empty(0) if sample_weight is None \
            else sample_weight
        self.n_rows, self.n_features = X.shape
        self.dtype = X.dtype

    def init_sample(self, rng=None, size=None):
        """Return the data itself, ``(X, sample_weight)``.

        Parameters
        ----------
        rng : object, optional
            Unused (the whole data is the sample).
        size : int, optional
            Unused.

        Returns
        -------
        tuple of ndarray
        """
        return self.X, self.sample_weight

    def map_sum(self, fn):
        """Return ``fn(X, sample_weight)``: the statistics of all the data.

        Parameters
        ----------
        fn : callable
            ``fn(X_chunk, w_chunk) -> stats``.

        Returns
        -------
        stats
        """
        return fn(self.X, self.sample_weight)


class ChunkSource:
    """Data streamed in chunks by ``make_chunks()`` (out of core).

    Parameters
    ----------
    make_chunks : callable
        Returns a fresh iterator over the chunks each time it is called.  A
        chunk is an array (rows, n_features) or ``(X_chunk, w_chunk)``.
    allow_nan : bool, default=False
        Whether NaN entries are accepted.
    estimator : str, default="estimator"
        Name used in messages.

    Notes
    -----
    :meth:`scan` (pass 0) must run before :meth:`map_sum`: it counts the
    rows, checks every chunk and draws the initialization sample.  Every
    later pass must see the same number of rows.
    """

    def __init__(self, make_chunks, *, allow_nan=False, estimator="estimator"):
        if not callable(make_chunks):
            raise TypeError(
                "make_chunks must be a callable returning a fresh iterator of "
                f"chunks, got {type(make_chunks).__name__}; wrap an array with "
                "fastem.chunks.array_chunks(X).")
        self.make_chunks = make_chunks
        self.allow_nan = allow_nan
        self.estimator = estimator
        self.n_rows = 0
        self.n_features = None
        self.dtype = np.dtype(np.float64)
        self.passes = 0

    def chunks(self, n_features=None):
        """Yield validated ``(X_chunk, w_chunk)`` pairs, one pass over the data.

        Empty chunks and chunks whose weights are all zero are valid (they
        add nothing); messages name global row numbers.

        Parameters
        ----------
        n_features : int, optional
            Columns every chunk must have.

        Yields
        ------
        tuple of ndarray
        """
        it = self.make_chunks()
        if it is None or not hasattr(it, "__iter__"):
            raise TypeError("make_chunks() must return an iterator of chunks, "
                            f"got {type(it).__name__}.")
        start = 0
        for chunk in it:
            w = None
            if isinstance(chunk, tuple):
                chunk, w = chunk
            Xc = check_array(chunk, n_features=n_features,
                             estimator=self.estimator,
                             allow_nan=self.allow_nan, min_samples=0,
                             row_offset=start)
            if n_features is None:
                n_features = Xc.shape[1]
            wc = check_sample_weight(w, Xc.shape[0], allow_zero_sum=True) \
                if w is not None else np.empty(0)
            start += Xc.shape[0]
            _config.check_interrupt()
            yield Xc, wc

    def scan(self, rng, init_size, check_rows=None):
        """Pass 0: size, features, weights, observed columns, init sample.

        Parameters
        ----------
        rng : numpy.random.RandomState
            Draws the reservoir sample.
        init_size : int
            Rows of the initialization sample.
        check_rows : callable, optional
            ``check_rows(n_rows)``, raises when there are too few rows
            (called before the weights are checked).

        Returns
        -------
        self : ChunkSource
        """
        n_rows = 0
        D = None
        sample = sample_w = observed = None
        weighted, total_w = False, 0.0
        for Xc, wc in self.chunks(D):
            if D is None:
                D, self.dtype = Xc.shape[1], Xc.dtype
                sample = np.empty((0, D))
                observed = np.zeros(D, dtype=bool)
            elif Xc.shape[1] != D:
                raise ValueError(
                    f"chunks have {Xc.shape[1]} and {D} features; every chunk "
                    "needs the same number of columns.")
            if not Xc.shape[0]:
                continue
            if wc.shape[0]:
                weighted = True
                total_w += float(wc.sum())
            else:
                total_w += Xc.shape[0]
            if not observed.all():
                observed |= ~np.isnan(Xc).all(axis=0)
            check_magnitude(Xc)
            sample, sample_w = reservoir(sample, sample_w, Xc, wc, n_rows,
                                         init_size, rng)
            n_rows += Xc.shape[0]
        if D is None:
            raise ValueError("make_chunks() produced no chunks; nothing to fit.")
        if check_rows is not None:
            check_rows(n_rows)
        if weighted and not total_w > 0:
            raise ValueError("sample_weight sums to zero over all the chunks; "
                             "at least one row needs a positive weight.")
        self.n_rows, self.n_features = n_rows, D
        self.observed = observed
        self.weighted, self.total_weight = weighted, total_w
        self.sample = sample
        self.sample_weight = sample_w if sample_w is not None else np.empty(0)
        self.passes = 1
        return self

    def init_sample(self, rng=None, size=None):
        """Return the reservoir sample drawn by :meth:`scan`.

        Parameters
        ----------
        rng : object, optional
            Unused (:meth:`scan` drew the sample).
        size : int, optional
            Unused.

        Returns
        -------
        tuple of ndarray
            ``(sample, sample_weight)``, float64.
        """
        return self.sample, self.sample_weight

    def map_sum(self, fn):
        """One pass: the sum of ``fn`` over the non-empty chunks.

        Parameters
        ----------
        fn : callable
            ``fn(X_chunk, w_chunk) -> stats``.

        Returns
        -------
        stats
        """
        self.passes += 1
        total, rows = None, 0
        for Xc, wc in self.chunks(self.n_features):
            rows += Xc.shape[0]
            if Xc.shape[0]:
                total = fn(Xc, wc) + total
        if rows != self.n_rows:
            raise ValueError(
                f"make_chunks() yielded {rows} rows on pass {self.passes} "
                f"over the data but {self.n_rows} on the first: every call "
                "must return a fresh iterator over the same data (for "
                "example a function that re-opens the file or re-creates "
                "the generator each time), not an exhausted or shrinking "
                "one.")
        return total


class DaskSource:
    """A dask array (or DataFrame) whose blocks stay on the workers.

    :meth:`map_sum` maps ``fn`` over the row blocks on the workers, adds
    the results as a binary tree there and brings back only the sum.

    Parameters
    ----------
    X : dask.array.Array or dask.dataframe.DataFrame
        The data.
    allow_nan : bool, default=False
        Whether NaN entries are accepted.
    estimator : str, default="estimator"
        Name used in messages.
    """

    def __init__(self, X, *, allow_nan=False, estimator="estimator"):
        from fastem import _dask

        self.X = _dask.as_dask_array(X, estimator)
        self.allow_nan = allow_nan
        self.n_rows, self.n_features = self.X.shape
        self.dtype = np.dtype(np.float32 if self.X.dtype == np.float32
                              else np.float64)
        self.blocks = self.X.to_delayed().ravel().tolist()
        self.weight_blocks = [None] * len(self.blocks)
        self.weights = None
        self.starts = np.concatenate(
            [[0], np.cumsum(self.X.chunks[0])[:-1]]).tolist()

    def set_weights(self, sample_weight):
        """Attach sample weights (array-like or dask array of n_rows).

        Parameters
        ----------
        sample_weight : array-like or dask.array.Array or None
            Non-negative weights, summing to more than zero.

        Returns
        -------
        self : DaskSource
        """
        if sample_weight is None:
            return self
        import dask.array as da

        N = self.n_rows
        w = sample_weight
        if not isinstance(w, da.Array):
            w = da.from_array(np.asarray(w, dtype=np.float64),
                              chunks=(self.X.chunks[0],))
        if w.shape != (N,):
            raise ValueError(f"sample_weight must have shape ({N},) to match "
                             f"X, got shape {w.shape}.")
        self.weight_blocks = w.rechunk(
            (self.X.chunks[0],)).to_delayed().ravel().tolist()
        total = float(w.sum().compute())
        if not total > 0:
            raise ValueError("sample_weight sums to zero; at least one row "
                             "needs a positive weight.")
        self.weights = w
        return self

    def init_sample(self, rng, size):
        """Gather a uniform sample of rows to the client.

        Parameters
        ----------
        rng : numpy.random.RandomState
            Draws the rows.
        size : int
            Rows wanted (all of them when there are fewer).

        Returns
        -------
        tuple of ndarray
            ``(sample, sample_weight)``, float64; O(size) memory.
        """
        idx = sample_rows(rng, self.n_rows, min(self.n_rows, size))
        sample = np.asarray(self.X[idx].compute(), dtype=np.float64)
        sw = (np.asarray(self.weights[idx].compute(), np.float64)
              if self.weights is not None else np.empty(0))
        return sample, sw

    def map_sum(self, fn):
        """One pass on the workers: ``fn`` per block, tree-summed there.

        Parameters
        ----------
        fn : callable
            ``fn(X_block, w_block) -> stats``; picklable for a distributed
            cluster (a module-level function or a ``functools.partial``).

        Returns
        -------
        stats
        """
        import dask

        from fastem import _dask

        task = dask.delayed(_dask.block_apply, pure=True)
        f = dask.delayed(fn, pure=True)
        parts = [task(b, w, f, self.allow_nan, int(s0))
                 for b, w, s0 in zip(self.blocks, self.weight_blocks,
                                     self.starts)]
        return _dask.tree_sum(parts).compute()
