"""Per-chunk partial statistics: allocated and summed in NumPy, not compiled.

Every parallel pass (the Gaussian E-step, the statistics from given
responsibilities, the missing-data pass, Lloyd's assignment step, the
Poisson pass) writes one slot of partial sums per chunk, whichever thread
ran that chunk, and the slots are then summed in chunk order.  That sum is a
few hundred floats at most: done here with one NumPy call per array it
costs microseconds and no compile time.  As numba kernels these reductions
(array expressions over the chunk axis, one dispatcher per layout) cost
about 1-2 s of CPU each on a cold cache -- a tenth of the first fit's compile.

The chunking depends on the number of rows only (:func:`fastem._config.
n_chunks_for`), so the sums, and every result built on them, do not depend
on the thread count.
"""

import numpy as np

__all__ = ["zeros", "chunk_sum", "reduce_partials", "mirror_upper"]


def zeros(n_chunks, *shapes):
    """Return one zeroed float64 array per shape, each with ``n_chunks`` slots.

    Parameters
    ----------
    n_chunks : int
        Number of chunks (the leading axis).
    *shapes : tuple of int
        The shape of one chunk's partial; ``()`` for a scalar.

    Returns
    -------
    tuple of ndarray
        Arrays of shape ``(n_chunks,) + shape``.
    """
    return tuple(np.zeros((n_chunks,) + tuple(s)) for s in shapes)


def chunk_sum(p):
    """Sum the slots of ``p`` over its first axis.

    Parameters
    ----------
    p : ndarray of shape (n_chunks, ...)
        Partials.

    Returns
    -------
    ndarray or float
        The sum (a float for 1-D ``p``).  For a fixed ``n_chunks`` the
        order of additions is fixed, so the result is reproducible.
    """
    out = np.add.reduce(p, axis=0)
    return float(out) if p.ndim == 1 else out


def reduce_partials(*parts):
    """Return :func:`chunk_sum` of every array of ``parts``, as a tuple."""
    return tuple(chunk_sum(p) for p in parts)


def mirror_upper(scatter):
    """Copy the upper triangle of each (D, D) matrix of ``scatter`` below it.

    The full and tied passes accumulate the upper triangle only.

    Parameters
    ----------
    scatter : ndarray of shape (S, D, D)
        Modified in place.
    """
    D = scatter.shape[-1]
    if D > 1:
        lo = np.tril_indices(D, -1)
        scatter[:, lo[0], lo[1]] = scatter[:, lo[1], lo[0]]
