"""Sources of whole sequences for the EM driver (hidden Markov models).

An HMM's E-step runs forward-backward along each sequence, so its data
comes in pieces that hold *whole* sequences.  These sources mirror
:mod:`fastem.core.sources` (``n_rows``, ``n_features``, ``dtype``,
``init_sample()``, ``map_sum(fn)``), with ``fn(X_chunk, starts_chunk) ->
stats``: ``starts_chunk`` (int64, one more than the chunk's sequences)
holds the offsets of the chunk's sequences within the chunk, its last entry
the chunk's row count.  The statistics must be additive (``a + b``).

* :class:`SequenceArraySource` -- one in-memory array and its sequences.
* :class:`SequenceChunkSource` -- chunks ``(X_chunk, lengths_chunk)`` (or
  ``X_chunk``, one sequence) streamed by ``make_chunks()``.
* :class:`SequenceDaskSource` -- a dask array whose row-blocks each hold
  whole sequences; statistics are computed on the workers and tree-summed
  there.

Validation that is the estimator's (the rows of ``X``, the lengths and
their messages) is passed in as callables; this module knows nothing of
the estimators.
"""

import numpy as np

from fastem import _config
from fastem._validation import check_array
from fastem.core._data import check_magnitude, reservoir

__all__ = ["SequenceArraySource", "SequenceChunkSource", "SequenceDaskSource",
           "sequence_blocks"]


def sequence_blocks(lengths, block_rows):
    """Block sizes that keep every sequence whole (for ``X.rechunk``).

    Consecutive sequences are grouped greedily into blocks of at most
    ``block_rows`` rows; a sequence longer than that gets a block of its
    own.  Use it to rechunk a dask array before
    :meth:`fastem.GaussianHMM.fit`: ``X = X.rechunk({0:
    sequence_blocks(lengths, 100_000)})``.

    Parameters
    ----------
    lengths : array-like of int
        Lengths of the sequences, in the order of the rows.
    block_rows : int
        Target rows per block.

    Returns
    -------
    tuple of int
        Block sizes, summing to ``sum(lengths)``.
    """
    sizes, current = [], 0
    for n in np.asarray(lengths, dtype=np.int64).ravel().tolist():
        if current and current + n > block_rows:
            sizes.append(current)
            current = 0
        current += n
    if current:
        sizes.append(current)
    return tuple(sizes)


class SequenceArraySource:
    """An in-memory array of sequences: one chunk, the whole data.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
        Validated data.
    starts : ndarray of int64 of shape (n_sequences + 1,)
        Sequence offsets (the last is ``n_rows``).
    """

    def __init__(self, X, starts):
        self.X = X
        self.starts = starts
        self.n_rows, self.n_features = X.shape
        self.n_sequences = starts.shape[0] - 1
        self.dtype = X.dtype

    def init_sample(self, rng=None, size=None):
        """Return the data itself (the whole data is the sample).

        Parameters
        ----------
        rng, size : optional
            Unused.

        Returns
        -------
        ndarray
        """
        return self.X

    def map_sum(self, fn):
        """Return ``fn(X, starts)``: the statistics of all the sequences.

        Parameters
        ----------
        fn : callable
            ``fn(X_chunk, starts_chunk) -> stats``.

        Returns
        -------
        stats
        """
        return fn(self.X, self.starts) + None


def _error(e, prefix):
    """``e``'s type (ValueError or TypeError) with ``prefix`` before its text."""
    cls = TypeError if isinstance(e, TypeError) else ValueError
    return cls(f"{prefix}{e}")


class SequenceChunkSource:
    """Sequences streamed in chunks by ``make_chunks()`` (out of core).

    Parameters
    ----------
    make_chunks : callable
        Returns a fresh iterator over the chunks each time it is called.  A
        chunk is a tuple ``(X_chunk, lengths_chunk)`` holding whole
        sequences (``lengths_chunk`` sums to the chunk's rows), or an array
        ``X_chunk`` alone, which is one sequence.  A chunk with no rows (and
        no lengths) is skipped.
    check_chunk : callable
        ``check_chunk(X_chunk, lengths_chunk, n_features, row0) -> (X,
        starts)``: validates a chunk (``n_features`` is None for the first;
        ``row0`` is the chunk's first row in the stream, for messages) and
        raises ValueError/TypeError with the estimator's message; the source
        adds which chunk it was.
    estimator : str, default="estimator"
        Name used in messages.

    Notes
    -----
    :meth:`scan` (pass 0) must run before :meth:`map_sum`: it counts the
    rows and sequences, checks every chunk and draws the initialization
    sample.  Every later pass must see the same rows and sequences.
    """

    def __init__(self, make_chunks, check_chunk, *, estimator="estimator"):
        if not callable(make_chunks):
            raise TypeError(
                "make_chunks must be a callable returning a fresh iterator of "
                "chunks (X_chunk, lengths_chunk), got "
                f"{type(make_chunks).__name__}. For example: def "
                "make_chunks(): return ((X[a:b], lengths_ab) for a, b, "
                "lengths_ab in pieces).")
        self.make_chunks = make_chunks
        self.check_chunk = check_chunk
        self.estimator = estimator
        self.n_rows = 0
        self.n_sequences = 0
        self.n_features = None
        self.dtype = np.dtype(np.float64)
        self.passes = 0

    def chunks(self):
        """Yield validated ``(X_chunk, starts_chunk)`` pairs: one pass.

        Yields
        ------
        tuple of ndarray
        """
        it = self.make_chunks()
        if it is None or not hasattr(it, "__iter__"):
            raise TypeError(
                "make_chunks() must return an iterator of chunks (X_chunk, "
                f"lengths_chunk), got {type(it).__name__}.")
        row0 = 0
        for i, chunk in enumerate(it):
            lengths = None
            if isinstance(chunk, tuple):
                if len(chunk) != 2:
                    raise ValueError(
                        f"chunk {i} of make_chunks() is a tuple of "
                        f"{len(chunk)} items; a chunk is (X_chunk, "
                        "lengths_chunk), or an array X_chunk holding one "
                        "sequence.")
                chunk, lengths = chunk
            shape = np.shape(chunk)
            if shape and shape[0] == 0 and (lengths is None
                                            or np.size(lengths) == 0):
                continue
            try:
                Xc, starts = self.check_chunk(chunk, lengths, self.n_features,
                                              row0)
            except (ValueError, TypeError) as e:
                raise _error(e, f"In chunk {i} of make_chunks() (its rows "
                             f"start at row {row0} of the stream): ") from None
            if self.n_features is None:
                self.n_features = Xc.shape[1]
            row0 += Xc.shape[0]
            _config.check_interrupt()
            yield Xc, starts

    def scan(self, rng, init_size):
        """Pass 0: rows, sequences, features, and the initialization sample.

        The sample is a uniform reservoir sample of ``init_size`` rows
        (Algorithm R) across all the chunks; when the data has at most
        ``init_size`` rows it is all of them, in order.

        Parameters
        ----------
        rng : numpy.random.RandomState
            Draws the reservoir sample.
        init_size : int
            Rows of the initialization sample.

        Returns
        -------
        self : SequenceChunkSource
        """
        self.n_features = None
        n_rows = n_seq = 0
        sample = None
        for Xc, starts in self.chunks():
            if sample is None:
                self.dtype = Xc.dtype
                sample = np.empty((0, Xc.shape[1]))
            sample, _ = reservoir(sample, None, Xc, np.empty(0), n_rows,
                                  init_size, rng)
            n_rows += Xc.shape[0]
            n_seq += starts.shape[0] - 1
        if sample is None:
            raise ValueError(
                "make_chunks() produced no chunks with rows; nothing to fit. "
                "Check that it returns a fresh iterator each time it is "
                "called (a generator function, not a generator).")
        self.n_rows, self.n_sequences = n_rows, n_seq
        self.sample = sample
        self.passes = 1
        return self

    def init_sample(self, rng=None, size=None):
        """Return the reservoir sample drawn by :meth:`scan`.

        Parameters
        ----------
        rng, size : optional
            Unused (:meth:`scan` drew the sample).

        Returns
        -------
        ndarray of float64
        """
        return self.sample

    def map_sum(self, fn):
        """One pass: the sum of ``fn`` over the chunks.

        Parameters
        ----------
        fn : callable
            ``fn(X_chunk, starts_chunk) -> stats``.

        Returns
        -------
        stats
        """
        self.passes += 1
        total, rows, seqs = None, 0, 0
        for Xc, starts in self.chunks():
            rows += Xc.shape[0]
            seqs += starts.shape[0] - 1
            total = fn(Xc, starts) + total
        if (rows, seqs) != (self.n_rows, self.n_sequences):
            raise ValueError(
                f"make_chunks() yielded {rows} rows in {seqs} sequences on "
                f"pass {self.passes} over the data but {self.n_rows} rows in "
                f"{self.n_sequences} sequences on the first: every call must "
                "return a fresh iterator over the same data (for example a "
                "function that re-opens the file or re-creates the generator "
                "each time), not an exhausted or changing one.")
        return total


def _nothing(X, starts):
    """Statistics of nothing (a validation-only pass)."""
    return _Nothing()


class _Nothing:
    def __add__(self, other):
        return self

    __radd__ = __add__


def _block_apply(block, starts, fn, row0, estimator, nan_hint):
    """Validate one block and return ``fn(X_block, starts)`` (on a worker)."""
    Xb = check_array(block, estimator=estimator, min_samples=0,
                     row_offset=row0, nan_hint=nan_hint)
    check_magnitude(Xb)
    return fn(Xb, starts)


class SequenceDaskSource:
    """A dask array whose row-blocks each hold whole sequences.

    :meth:`map_sum` maps ``fn`` over the blocks on the workers and adds the
    results as a binary tree there; only the sum comes back.

    Parameters
    ----------
    X : dask.array.Array or dask.dataframe.DataFrame
        The data (all sequences, concatenated).
    lengths : array-like of int or None
        Lengths of the sequences (None: one sequence).
    check_lengths : callable
        ``check_lengths(lengths, n_rows) -> starts``: the estimator's
        validation of ``lengths``.
    estimator : str, default="estimator"
        Name used in messages.
    nan_hint : str, optional
        What the NaN message suggests (see
        :func:`fastem._validation.check_array`).

    Raises
    ------
    ValueError
        When a sequence crosses a block boundary; the message suggests a
        ``rechunk`` that keeps the sequences whole.
    """

    def __init__(self, X, lengths, check_lengths, *, estimator="estimator",
                 nan_hint="or impute them"):
        from fastem.core.sources import DaskSource

        self.base = DaskSource(X, allow_nan=False, estimator=estimator)
        self.X = self.base.X
        self.estimator = estimator
        self.nan_hint = nan_hint
        self.n_rows, self.n_features = self.base.n_rows, self.base.n_features
        self.dtype = self.base.dtype
        starts = check_lengths(lengths, self.n_rows)
        self.n_sequences = starts.shape[0] - 1
        sizes = [int(n) for n in self.X.chunks[0]]
        bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        pos = np.minimum(np.searchsorted(starts, bounds), starts.shape[0] - 1)
        bad = np.flatnonzero(starts[pos] != bounds)
        if bad.size:
            self._crossing(int(bad[0]), bounds, starts, sizes)
        self.blocks = []
        for j, b in enumerate(self.base.blocks):
            if not sizes[j]:
                continue
            lo, hi = int(pos[j]), int(pos[j + 1])
            self.blocks.append((b, starts[lo:hi + 1] - bounds[j],
                                int(bounds[j])))

    def _crossing(self, j, bounds, starts, sizes):
        row = int(bounds[j])
        s = int(np.searchsorted(starts, row, side="right")) - 1
        lengths = np.diff(starts)
        target = max(sizes)
        suggest = sequence_blocks(lengths, target)
        if len(suggest) <= 6:
            spec = str(suggest)
        else:
            spec = ("fastem.core.sequences.sequence_blocks(lengths, "
                    f"{target})")
        raise ValueError(
            f"{self.estimator} on a dask array needs every row-block of X to "
            f"hold whole sequences, but sequence {s} (rows {int(starts[s])} "
            f"to {int(starts[s + 1]) - 1}) crosses the boundary between "
            f"blocks {j - 1} and {j} at row {row} (X has {len(sizes)} "
            f"row-blocks of sizes {tuple(sizes[:6])}"
            f"{'...' if len(sizes) > 6 else ''}). Rechunk X along the "
            f"sequence boundaries first: X = X.rechunk({{0: {spec}}}).")

    def init_sample(self, rng, size):
        """Gather a uniform sample of ``size`` rows to the client.

        All the rows, in order, when there are at most ``size``.  A sample
        with a value the fit refuses (NaN, infinite, beyond 1e150) sends
        every block through the workers' validation, so that the error
        names the row in ``X``.

        Parameters
        ----------
        rng : numpy.random.RandomState
        size : int

        Returns
        -------
        ndarray of float64
        """
        sample = self.base.init_sample(rng, size)[0]
        try:
            check_array(sample, estimator=self.estimator,
                        nan_hint=self.nan_hint)
            check_magnitude(sample)
        except ValueError:
            self.map_sum(_nothing)      # raises, naming the row in X
            raise
        return sample

    def map_sum(self, fn):
        """One pass on the workers: ``fn`` per block, tree-summed there.

        Parameters
        ----------
        fn : callable
            ``fn(X_block, starts_block) -> stats``; picklable for a
            distributed cluster (a module-level function or a
            ``functools.partial`` of one).

        Returns
        -------
        stats
        """
        import dask

        from fastem import _dask

        task = dask.delayed(_block_apply, pure=True)
        f = dask.delayed(fn, pure=True)
        parts = [task(b, starts, f, row0, self.estimator, self.nan_hint)
                 for b, starts, row0 in self.blocks]
        return _dask.tree_sum(parts).compute()
