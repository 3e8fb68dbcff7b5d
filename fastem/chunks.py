"""Chunk sources for out-of-core fits (``fit_chunks`` of every estimator).

A *chunk source* is a callable that returns a fresh iterator over chunks each
time it is called; EM calls it once per iteration (plus once to draw the
initialization sample).  For a mixture a chunk is an array of shape (rows,
n_features), or a tuple ``(X_chunk, sample_weight_chunk)``; for a hidden
Markov model it is a tuple ``(X_chunk, lengths_chunk)`` of whole sequences
(:func:`sequence_chunks`).

Anything that can be sliced by rows works through :func:`array_chunks` and
:func:`sequence_chunks`: NumPy arrays and memory maps, ``h5py`` datasets,
``zarr`` arrays.
"""

import numbers

import numpy as np

__all__ = ["array_chunks", "npy_chunks", "parquet_chunks", "sequence_chunks"]


def array_chunks(A, chunk_rows=1 << 18, sample_weight=None):
    """Chunk source over any row-sliceable 2-D array.

    Parameters
    ----------
    A : array-like with ``shape`` and row slicing
        NumPy array or memmap, h5py dataset, zarr array, ...
    chunk_rows : int, default=262144
        Rows per chunk; peak memory of a fit is about this many rows (as
        float64) plus the initialization sample.
    sample_weight : array-like of shape (n_rows,), optional
        Sliced alongside ``A``.

    Returns
    -------
    callable
        ``make_chunks()`` returning a fresh iterator of chunks.
    """
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) \
            or chunk_rows < 1:
        raise ValueError(f"chunk_rows must be a positive int, got {chunk_rows!r}.")
    n = A.shape[0]

    def make_chunks():
        for a in range(0, n, chunk_rows):
            block = np.asarray(A[a:a + chunk_rows])
            if sample_weight is None:
                yield block
            else:
                yield block, np.asarray(sample_weight[a:a + chunk_rows])

    return make_chunks


def npy_chunks(path, chunk_rows=1 << 18):
    """Chunk source over a ``.npy`` file, memory-mapped read-only.

    Parameters
    ----------
    path : str or os.PathLike
        A 2-D ``.npy`` file.
    chunk_rows : int, default=262144
        Rows per chunk.

    Returns
    -------
    callable
        ``make_chunks()`` returning a fresh iterator of chunks.
    """
    return array_chunks(np.load(path, mmap_mode="r"), chunk_rows)


def parquet_chunks(path, columns=None, batch_rows=1 << 18):
    """Chunk source over a Parquet file, one record batch at a time.

    Needs ``pyarrow`` (``pip install pyarrow``).

    Parameters
    ----------
    path : str or os.PathLike
    columns : list of str, optional
        Numeric columns to use (default: all).
    batch_rows : int, default=262144
        Rows per batch.

    Returns
    -------
    callable
        ``make_chunks()`` returning a fresh iterator of chunks.
    """
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            "parquet_chunks needs pyarrow: pip install pyarrow") from None

    def make_chunks():
        f = pq.ParquetFile(path)
        for batch in f.iter_batches(batch_size=batch_rows, columns=columns):
            yield np.column_stack([c.to_numpy(zero_copy_only=False)
                                   for c in batch.columns])

    return make_chunks


def sequence_chunks(X, lengths=None, chunk_rows=1 << 18):
    """Chunk source of whole sequences, for :meth:`GaussianHMM.fit_chunks`.

    Consecutive sequences are grouped greedily into chunks of at most
    ``chunk_rows`` rows; a sequence longer than ``chunk_rows`` is a chunk of
    its own (a sequence is never split: forward-backward runs along it).
    The grouping is fixed when the source is made, so every pass yields the
    same chunks.

    Parameters
    ----------
    X : array-like with ``shape`` and row slicing
        Observations of all the sequences, concatenated: a NumPy array or
        memmap, an h5py dataset, a zarr array, ...  Only one chunk is read
        into memory at a time.
    lengths : array-like of int of shape (n_sequences,), optional
        Lengths of the sequences in ``X`` (they must sum to its rows); None
        means one sequence (one chunk).
    chunk_rows : int, default=262144
        Target rows per chunk; peak memory of a fit is about the largest
        chunk (as float64, with a few arrays of n_components columns per
        row) plus the initialization sample.

    Returns
    -------
    callable
        ``make_chunks()`` returning a fresh iterator of ``(X_chunk,
        lengths_chunk)`` tuples.

    Raises
    ------
    ValueError
        When ``chunk_rows`` is not a positive int or ``lengths`` does not
        describe the rows of ``X`` (see :func:`fastem.models.hmm.check_lengths`).

    Examples
    --------
    >>> X = np.load("series.npy", mmap_mode="r")         # doctest: +SKIP
    >>> hmm = GaussianHMM(3).fit_chunks(
    ...     sequence_chunks(X, lengths, chunk_rows=1_000_000))  # doctest: +SKIP
    """
    from fastem.models.hmm import check_lengths

    if isinstance(chunk_rows, bool) or not isinstance(
            chunk_rows, numbers.Integral) or chunk_rows < 1:
        raise ValueError(
            f"chunk_rows must be a positive int, got {chunk_rows!r}.")
    if not hasattr(X, "shape"):
        X = np.asarray(X)
    if len(X.shape) != 2:
        raise ValueError(
            "X must be 2-D (n_samples, n_features), got shape "
            f"{tuple(X.shape)}.")
    starts = check_lengths(lengths, int(X.shape[0]))
    lens = np.diff(starts)
    cuts, rows = [0], 0     # sequence indices where a chunk starts
    for i, n in enumerate(lens.tolist()):
        if rows and rows + n > chunk_rows:
            cuts.append(i)
            rows = 0
        rows += n
    cuts.append(lens.shape[0])
    groups = [(int(starts[a]), int(starts[b]), lens[a:b])
              for a, b in zip(cuts[:-1], cuts[1:])]

    def make_chunks():
        for a, b, group in groups:
            yield np.asarray(X[a:b]), group.copy()

    return make_chunks
