"""Numba options shared by every fastem kernel, kept in one place.

Nothing here is imported from a kernel at run time; the values are read once,
when the kernel modules are imported and their decorators run.
"""

import os
import signal
import threading

# GNU OpenMP (numba's 'omp' threading layer) spin-waits between parallel
# regions by default.  On a shared or oversubscribed machine the spinning
# threads starve the working ones: 2-thread fits measured 3-30x slower than
# 1-thread fits under load, and back to normal with PASSIVE.  A bounded spin
# (GOMP_SPINCOUNT=50000) was re-measured: 1.15-1.2x faster 2-thread 1-D
# iterations on an idle machine, 1.2x slower beside another fitting process,
# and 0.1-1.5 ms to start a parallel call after an idle gap (PASSIVE: 30-90
# us), so PASSIVE stays the default.  libgomp reads these when numba first
# loads it, so this runs before any kernel; a setting of the user's wins.
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

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
# Extra columns in every (rows x block) scratch array: rows 256 doubles apart
# would be exactly 2 KiB apart, so every other row aliases the same 4 KiB
# offset (store-to-load false dependencies) and the same cache sets.
BLOCK_PAD = 8

JIT = dict(nogil=True, cache=CACHE, fastmath=FASTMATH, error_model="numpy")
PJIT = dict(JIT, parallel=True)
# For code whose operation order is chosen by hand (fused multiply-adds LLVM
# would otherwise re-factor, or error-compensated sums).
JIT_NO_REASSOC = dict(JIT, fastmath=FASTMATH - {"reassoc"})


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


def em_block_rows(n_features, n_components, full):
    """Rows per block of the mixture E-step pass (:func:`_kernels._em_pass`).

    The block's scratch -- the transposed rows, the log-densities and, for
    full/tied covariances, two centred copies -- should stay in the 48 KiB L1
    data cache: the largest of 512, 384, 256, 192 and 128 rows whose scratch
    fits in 44 KiB.  When even 128 rows do not fit (larger D), the pass runs
    from L2 whatever the block and 256 rows are used (measured within noise
    of the best there).  Measured on the development machine, ns per row at
    1 thread for blocks of 128/256/512: 1-D K=2 10.2/8.9/8.5, 8-D full K=8
    84.9/97.4/106.4, 32-D full K=16 1338/1289/1268.  Depends only on the
    problem's shape, so results stay independent of the thread count.

    Parameters
    ----------
    n_features, n_components : int
    full : bool
        Full or tied covariance (needs the centred copies).

    Returns
    -------
    int
    """
    rows = (4 * n_features if full else n_features) + n_components + 4
    for b in (512, 384, 256, 192, 128):
        if rows * b * 8 <= 44 * 1024:
            return b
    return 256


# Thread count used by fastem's kernels when an estimator's ``n_threads`` is
# None.  None means numba's default (all cores, or NUMBA_NUM_THREADS).
_DEFAULT_THREADS = [None]


def set_num_threads(n):
    """Set the default number of threads of fastem's kernels.

    Parameters
    ----------
    n : int or None
        Threads to use (at most numba's ``NUMBA_NUM_THREADS``); None restores
        the default, all cores.  Results do not depend on this setting.
    """
    _DEFAULT_THREADS[0] = validate_threads(n)


def validate_threads(n):
    """Check a thread count (None allowed) and return it."""
    if n is None:
        return None
    import numba

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n_threads must be a positive int or None, got {n!r}.")
    if n > numba.config.NUMBA_NUM_THREADS:
        raise ValueError(
            f"n_threads={n} exceeds the {numba.config.NUMBA_NUM_THREADS} threads "
            "numba was started with (set NUMBA_NUM_THREADS before importing).")
    return n


def get_num_threads():
    """Return the default thread count set by :func:`set_num_threads`.

    Returns
    -------
    int
        Threads fastem's kernels use by default.
    """
    import numba

    n = _DEFAULT_THREADS[0]
    return numba.config.NUMBA_NUM_THREADS if n is None else n


_POOL = []
_POOL_LOCK = threading.Lock()


def _pool():
    from concurrent.futures import ThreadPoolExecutor

    import numba

    with _POOL_LOCK:
        if not _POOL:
            _POOL.append(ThreadPoolExecutor(
                max(1, numba.config.NUMBA_NUM_THREADS - 1),
                thread_name_prefix="fastem"))
        return _POOL[0]


def run_workers(fn, args, n_tasks):
    """Run ``fn(*args)`` on the caller's thread count, the caller included.

    For kernels written as a serial ``nogil`` worker that takes chunks from
    a shared atomic counter (a work queue) and writes per-chunk partials:
    ``min(n_tasks, numba.get_num_threads())`` copies run at once -- the
    calling thread and ``n - 1`` threads of a process-wide pool -- and this
    returns when all have.  A copy that starts after the queue is empty
    returns at once, so a busy pool (fits running in other threads) costs
    time, never correctness.  The thread count comes from :class:`threads`
    (numba's per-thread setting); results do not depend on it.  Without the
    JIT (``NUMBA_DISABLE_JIT=1``) the counter is not atomic, so everything
    runs in the calling thread.

    Parameters
    ----------
    fn : callable
        The worker (a numba dispatcher compiled with ``nogil=True``).
    args : tuple
        Its arguments, shared by every copy.
    n_tasks : int
        Chunks in the queue (no more copies than that).
    """
    import numba

    n = min(int(n_tasks), numba.get_num_threads())
    if n <= 1 or numba.config.DISABLE_JIT:
        fn(*args)
        return
    futures = [_pool().submit(fn, *args) for _ in range(n - 1)]
    try:
        fn(*args)
    finally:
        for f in futures:
            f.result()


_LAUNCH_LOCK = threading.RLock()
_DEPTH = threading.local()


def _needs_lock():
    """Whether kernel launches from several Python threads must be serialized.

    numba's ``workqueue`` threading layer (the fallback when neither TBB nor
    OpenMP loads) aborts the process on concurrent launches; the ``omp`` and
    ``tbb`` layers are thread-safe.  Until the first launch picks a layer we
    do not know, so the first fit in a process is serialized too.
    """
    import numba

    try:
        return numba.threading_layer() == "workqueue"
    except ValueError:
        return True


# Ctrl-C while a compiled kernel runs.  CPython's C-level SIGINT handler only
# records the signal; its Python-level handler (which raises
# KeyboardInterrupt) runs later, at the next bytecode.  If that happens while
# numba's dispatcher is still returning from a kernel, the dispatcher returns
# a result with an exception set (``SystemError``), and an exception raised
# half-way through a sequence of kernel launches can leave numba's thread
# pool mid-launch.  So inside a fastem context (main thread only, and only
# when the default handler is installed) SIGINT merely sets a flag; the
# Python side polls it between kernel launches with :func:`check_interrupt`
# and raises a plain KeyboardInterrupt there, before any state is committed.
_INTERRUPTED = [False]


def _defer_sigint(signum, frame):
    _INTERRUPTED[0] = True


# Set while an interrupted caller (``select`` with several jobs) waits for
# the fits running in worker threads: they stop at their next check.
_ABORT = threading.Event()


def check_interrupt():
    """Raise KeyboardInterrupt if Ctrl-C was pressed inside a fastem context.

    Called by the Python side between kernel launches (after every EM
    iteration, every k-means step, every chunk), so that an interrupt is
    acted on within one kernel call, and never inside one.
    """
    if _INTERRUPTED[0]:
        _INTERRUPTED[0] = False
        raise KeyboardInterrupt
    if _ABORT.is_set():
        raise KeyboardInterrupt


class threads:
    """Context manager running fastem kernels on ``n`` threads (None: default).

    numba's thread count is per calling thread, so concurrent fits from
    different Python threads do not interfere.  Under numba's non-thread-safe
    ``workqueue`` layer the context also serializes concurrent fits.  The
    outermost context in the main thread also defers Ctrl-C (see
    :func:`check_interrupt`); a deferred interrupt is raised as
    KeyboardInterrupt at the latest when the context exits.
    """

    def __init__(self, n=None):
        self.n = n
        self._locked = False
        self._sigint = None

    def __enter__(self):
        import numba

        n = validate_threads(self.n)  # before any state changes
        depth = getattr(_DEPTH, "n", 0)
        _DEPTH.n = depth + 1
        if n is None:
            # Inside an outer fastem context, keep its thread count.
            n = numba.get_num_threads() if depth else get_num_threads()
        if _needs_lock():
            _LAUNCH_LOCK.acquire()
            self._locked = True
        self._old = numba.get_num_threads()
        numba.set_num_threads(n)
        if (not depth and threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            _INTERRUPTED[0] = False
            self._sigint = signal.signal(signal.SIGINT, _defer_sigint)
        return self

    def __exit__(self, exc_type, *exc):
        import numba

        numba.set_num_threads(self._old)
        _DEPTH.n -= 1
        if self._locked:
            self._locked = False
            _LAUNCH_LOCK.release()
        if self._sigint is not None:
            signal.signal(signal.SIGINT, self._sigint)
            self._sigint = None
            if _INTERRUPTED[0]:
                _INTERRUPTED[0] = False
                if exc_type is None:
                    raise KeyboardInterrupt
        return False
