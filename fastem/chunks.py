"""Chunk sources for out-of-core fits (:meth:`GaussianMixture.fit_chunks`).

A *chunk source* is a callable that returns a fresh iterator over chunks each
time it is called; EM calls it once per iteration (plus once to draw the
initialization sample).  A chunk is an array of shape (rows, n_features), or
a tuple ``(X_chunk, sample_weight_chunk)``.

Anything that can be sliced by rows works through :func:`array_chunks`:
NumPy arrays and memory maps, ``h5py`` datasets, ``zarr`` arrays.
"""

import numpy as np

__all__ = ["array_chunks", "npy_chunks", "parquet_chunks"]


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
