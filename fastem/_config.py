"""Numba options shared by every fastem kernel, kept in one place.

Nothing here is imported from a kernel at run time; the values are read once,
when the kernel modules are imported and their decorators run.
"""

import os

# fastmath flags: everything LLVM needs to vectorize reductions and fuse
# multiply-adds, but *not* ``nnan``/``ninf`` -- logsumexp relies on -inf, and
# validation upstream relies on NaN propagating.
FASTMATH = {"nsz", "arcp", "contract", "reassoc"}

# Cache compiled kernels on disk (``__pycache__`` next to the sources, or
# ``NUMBA_CACHE_DIR``).  Set ``FASTEM_NO_CACHE=1`` to disable.
CACHE = os.environ.get("FASTEM_NO_CACHE", "0") in ("", "0")

# Rows are split into a fixed number of chunks that depends only on the
# number of rows -- never on the thread count -- and the per-chunk partial
# statistics are reduced in chunk order.  This is what makes results
# independent of the number of threads.
MIN_CHUNK_ROWS = 2048
MAX_CHUNKS = 64

# Rows processed together inside a chunk (bounded scratch memory).
BLOCK_ROWS = 256

JIT = dict(nogil=True, cache=CACHE, fastmath=FASTMATH, error_model="numpy")
PJIT = dict(JIT, parallel=True)


def n_chunks_for(n_rows):
    """Return the fixed chunk count used for ``n_rows`` rows.

    Parameters
    ----------
    n_rows : int
        Number of rows in the data.

    Returns
    -------
    int
        ``min(MAX_CHUNKS, ceil(n_rows / MIN_CHUNK_ROWS))``, at least 1.
    """
    return max(1, min(MAX_CHUNKS, -(-int(n_rows) // MIN_CHUNK_ROWS)))
