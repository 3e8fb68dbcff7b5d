"""Data helpers shared by the sources, the estimators and the Dask backend.

Only NumPy here (no estimator, no kernel): anything may import it.
"""

import os
import warnings

import numpy as np

# Beyond this magnitude squared distances overflow float64.
_MAX_ABS = 1e150


def sample_rows(rng, n, size):
    """Sorted uniform sample of ``size`` distinct indices out of ``n``.

    Memory O(size), never O(n): a permutation of 40M rows took 312 MB and
    11 s.  Draws with replacement, drops repeats and tops up; when ``size``
    is close to ``n`` a permutation of ``n`` is as small as the sample.
    """
    if size >= n:
        return np.arange(n)
    if n <= 4 * size:
        return np.sort(rng.permutation(n)[:size])
    idx = np.unique(rng.randint(0, n, size=size))
    while idx.size < size:
        more = rng.randint(0, n, size=2 * (size - idx.size))
        idx = np.unique(np.concatenate([idx, more]))
    if idx.size > size:
        idx = np.sort(rng.choice(idx, size=size, replace=False))
    return idx


def reservoir(sample, sample_w, Xc, wc, seen, size, rng):
    """Uniform reservoir sample of rows (Algorithm R, vectorized per chunk)."""
    n = Xc.shape[0]
    has_w = wc.shape[0] > 0
    if sample_w is None and has_w:
        sample_w = np.ones(sample.shape[0])
    take = min(max(size - sample.shape[0], 0), n)
    if take:
        sample = np.vstack([sample, Xc[:take]])
        if sample_w is not None:
            sample_w = np.concatenate([sample_w, wc[:take] if has_w
                                       else np.ones(take)])
    if take < n:
        idx = np.arange(seen + take, seen + n)
        j = rng.randint(0, idx + 1)
        keep = np.flatnonzero(j < size)
        sample[j[keep]] = Xc[take + keep]
        if sample_w is not None:
            sample_w[j[keep]] = wc[take + keep] if has_w else 1.0
    return sample, sample_w


def check_magnitude(X):
    """Reject values whose squares overflow (no temporary copy of X).

    The same rule holds for fitting and for prediction.
    """
    if not X.size:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN X
        amax = max(float(np.nanmax(X)), -float(np.nanmin(X)))
    if amax > _MAX_ABS:
        raise ValueError(
            f"X contains values up to {amax:.3g} in magnitude; squared "
            "distances would overflow float64 (limit ~1e150). Rescale X, "
            "for example divide it by its standard deviation.")


def feature_names(X):
    cols = getattr(X, "columns", None)
    if cols is None or not hasattr(X, "dtypes"):
        return None
    names = np.asarray(cols, dtype=object)
    if len(names) and all(isinstance(c, str) for c in names):
        return names
    return None


def check_output_size(n_rows, n_cols, name):
    """Refuse an output that cannot fit in memory, before allocating it."""
    need = float(n_rows) * n_cols * 8
    try:
        avail = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX
        avail = 2.0 ** 50
    if need > avail:
        raise ValueError(
            f"{name}={n_rows} would need {need / 2 ** 30:.3g} GiB for the "
            f"output, more than this machine's {avail / 2 ** 30:.3g} GiB of "
            f"memory. Ask for fewer rows (in batches if you need many).")
