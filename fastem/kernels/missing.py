"""Exact EM for data with missing entries (NaN), missing at random.

The E-step evaluates each row's density on its observed coordinates; the
statistics use the conditional expectations of the missing coordinates and
of their second moments given the observed ones (Ghahramani & Jordan 1994):

    E[x_m | x_o, k]       = mu_m + S_mo S_oo^-1 (x_o - mu_o)
    Cov[x_m | x_o, k]     = S_mm - S_mo S_oo^-1 S_om

Rows are grouped by missingness pattern, so the per-pattern, per-component
matrices (marginal precision Cholesky, regression, conditional covariance)
are factorized once per iteration, not once per row.  Statistics are always
accumulated as full (K, D, D) scatter and then reduced to the requested
covariance type, after which the ordinary M-step applies.

Rows with every coordinate missing carry no information: ``fit`` ignores
them (they add nothing to the statistics, the log-likelihood or the weight
total); ``score_samples`` gives them 0 (the log of an empty marginal),
``predict_proba`` the mixing weights, and ``impute`` the mixture mean.
"""

import types

import numpy as np
from numba import njit

from fastem._config import BLOCK_PAD, BLOCK_ROWS, JIT, MAX_CHUNKS, run_workers
from fastem.kernels import fastmath as _fm
from fastem.kernels.gaussian import (
    _block_normalize,
    _cross_products_centred,
    _diag_moments,
    _finish_partials,
    _weighted_resp,
    _write_rows,
    _zero_partials,
)

_LOG_2PI = np.log(2.0 * np.pi)

# Whether the covariances are diagonal (diag, spherical): a compile-time
# constant in each variant of _missing_pass (see _missing_pass_variant).
DIAG_COV = False


class MissingPlan:
    """Rows of ``X`` grouped by missingness pattern (built once per fit).

    Attributes
    ----------
    pid : ndarray of shape (N,)
        Pattern id of each row.
    order : ndarray of shape (N,)
        Row indices sorted by pattern.
    t_pat, t_start, t_len : ndarray of shape (T,)
        Work blocks: pattern, first position in ``order``, row count.
    obs_idx : ndarray of shape (P, D)
        Per pattern: observed feature indices, then missing ones.
    n_obs : ndarray of shape (P,)
        Observed feature count per pattern.
    n_informative : int
        Rows with at least one observed entry.
    """

    def __init__(self, X):
        N, D = X.shape
        miss = np.isnan(X)
        if D <= 62:
            codes = (miss.astype(np.int64) << np.arange(D, dtype=np.int64)).sum(1)
            order = np.argsort(codes, kind="stable")
            self.order = order.astype(np.int64)
            sc = codes[order]
            first = np.concatenate([[True], sc[1:] != sc[:-1]])
            uniq = sc[first]
            inv = np.empty(N, dtype=np.int64)
            inv[order] = np.cumsum(first) - 1
            masks = ((uniq[:, None] >> np.arange(D)) & 1).astype(bool)
        else:
            masks, inv = np.unique(miss, axis=0, return_inverse=True)
            self.order = np.argsort(inv.reshape(-1), kind="stable").astype(
                np.int64)
        self.pid = inv.reshape(-1).astype(np.int64)
        P = masks.shape[0]
        self.masks = masks
        self.n_obs = (~masks).sum(axis=1).astype(np.int64)
        self.obs_idx = np.empty((P, D), dtype=np.int64)
        for p in range(P):
            self.obs_idx[p] = np.concatenate(
                [np.flatnonzero(~masks[p]), np.flatnonzero(masks[p])])
        counts = np.bincount(self.pid, minlength=P)
        self.n_informative = int(counts[self.n_obs > 0].sum())
        self.n_patterns = P
        # Rows sorted by pattern, cut into blocks of at most BLOCK_ROWS rows
        # of one pattern each: the kernel's unit of (vectorized) work.
        ends = np.cumsum(counts)
        starts = ends - counts
        t_pat, t_start, t_len = [], [], []
        for p in range(P):
            for a in range(starts[p], ends[p], BLOCK_ROWS):
                t_pat.append(p)
                t_start.append(a)
                t_len.append(min(BLOCK_ROWS, ends[p] - a))
        self.t_pat = np.asarray(t_pat, dtype=np.int64)
        self.t_start = np.asarray(t_start, dtype=np.int64)
        self.t_len = np.asarray(t_len, dtype=np.int64)


def full_covariances(covariances, covariance_type, K, D):
    """Expand any covariance layout to (K, D, D)."""
    cov = np.asarray(covariances, dtype=np.float64)
    if covariance_type == "full":
        return cov
    if covariance_type == "tied":
        return np.broadcast_to(cov, (K, D, D)).copy()
    if covariance_type == "diag":
        return np.einsum("kd,de->kde", cov, np.eye(D))
    return cov[:, None, None] * np.eye(D)[None]


def pattern_factors(plan, weights, means, cov_full):
    """Factorize the covariances once per missingness pattern and component.

    Returns the marginal precision Cholesky ``U`` (compact observed block),
    the regression ``B`` (missing x observed), the conditional covariance
    ``C`` (missing x missing), and ``logconst`` (P, K).
    """
    with np.errstate(divide="ignore"):
        logw = np.log(np.asarray(weights, dtype=np.float64))
    return _pattern_factors(plan.n_obs, plan.obs_idx,
                            np.ascontiguousarray(cov_full, dtype=np.float64),
                            logw)


@njit(**JIT)
def _pattern_factors(n_obs, obs_idx, cov, logw):
    P = n_obs.shape[0]
    K, D, _ = cov.shape
    U = np.zeros((P, K, D, D))
    B = np.zeros((P, K, D, D))
    C = np.zeros((P, K, D, D))
    logconst = np.empty((P, K))
    L = np.zeros((D, D))
    Li = np.zeros((D, D))
    prec = np.zeros((D, D))
    for p in range(P):
        no = n_obs[p]
        nm = D - no
        for k in range(K):
            # Cholesky of the observed block: S_oo = L L^T
            for i in range(no):
                for j in range(i + 1):
                    acc = cov[k, obs_idx[p, i], obs_idx[p, j]]
                    for a in range(j):
                        acc -= L[i, a] * L[j, a]
                    if i == j:
                        L[i, i] = np.sqrt(acc) if acc > 0.0 else np.nan
                    else:
                        L[i, j] = acc / L[j, j]
            # Li = inv(L) (lower); U = Li^T; log det(U) = -sum log diag(L)
            logdet = 0.0
            for i in range(no):
                Li[i, i] = 1.0 / L[i, i]
                logdet -= np.log(L[i, i])
                for j in range(i):
                    acc = 0.0
                    for a in range(j, i):
                        acc -= L[i, a] * Li[a, j]
                    Li[i, j] = acc / L[i, i]
                for j in range(i + 1, no):
                    Li[i, j] = 0.0
            for a in range(no):
                for j in range(no):
                    U[p, k, a, j] = Li[j, a]
            logconst[p, k] = logw[k] + logdet - 0.5 * no * _LOG_2PI
            if nm == 0:
                continue
            # prec = inv(S_oo) = Li^T Li ; B = S_mo prec ; C = S_mm - B S_om
            for i in range(no):
                for j in range(no):
                    acc = 0.0
                    for a in range(max(i, j), no):
                        acc += Li[a, i] * Li[a, j]
                    prec[i, j] = acc
            for a in range(nm):
                ma = obs_idx[p, no + a]
                for j in range(no):
                    acc = 0.0
                    for b in range(no):
                        acc += cov[k, ma, obs_idx[p, b]] * prec[b, j]
                    B[p, k, a, j] = acc
                for b in range(nm):
                    acc = cov[k, ma, obs_idx[p, no + b]]
                    for j in range(no):
                        acc -= B[p, k, a, j] * cov[k, obs_idx[p, j],
                                                   obs_idx[p, no + b]]
                    C[p, k, a, b] = acc
    return U, B, C, logconst


def _t_missing_worker(next_chunk, X, sw, order, t_pat, t_start, t_len, n_obs,
                       obs_idx, means, U, B, C, logconst, ref, n_chunks,
                       block, want_stats, out_lse, out_resp, out_label,
                       out_imp, p_nk, p_sums, p_scatter, p_ll, p_ws):
    """Fused E-step over blocks of rows that share a missingness pattern.

    Within a block the observed coordinates are gathered transposed
    (features x rows) so that every inner loop runs over rows and vectorizes,
    as in the complete-data kernel.  Accumulates full (K, D, D) statistics
    (only the diagonal for diagonal covariances, ``DIAG_COV``).  Chunks are
    fixed ranges of blocks taken from the shared counter ``next_chunk`` (a
    work queue; partials go to per-chunk slots, reduced in chunk order by
    :func:`missing_pass`), so results do not depend on the thread count;
    :func:`fastem._config.run_workers` runs one copy per thread.
    A template: compiled as :data:`_MISSING_PASS` ``[diag]``, one variant per
    value of ``DIAG_COV``, so that a fit compiles only its own branches.
    """
    _fm.wide_simd()
    T = t_pat.shape[0]
    K, D = means.shape
    has_w = sw.shape[0] > 0
    w_lse = out_lse.shape[0] > 0
    w_resp = out_resp.shape[0] > 0
    w_label = out_label.shape[0] > 0
    w_imp = out_imp.shape[0] > 0
    w_out = w_lse or w_resp or w_label
    if _fm.fetch_add(next_chunk, 0) >= n_chunks:
        return  # queue empty: skip the scratch allocations
    # rows padded as in the complete-data kernel (no 4 KiB aliasing)
    xt = np.empty((D, block + BLOCK_PAD))
    dt = np.empty((D, block + BLOCK_PAD))
    y = np.empty((D, block + BLOCK_PAD))
    no_shift = np.zeros(D)  # y is centred already: y - 0.0 is y, exactly
    wd = np.empty((D, block + BLOCK_PAD))
    imp = np.empty((D, block + BLOCK_PAD))
    lp = np.empty((K, block + BLOCK_PAD))
    m = np.empty(block)
    s = np.empty(block)
    lse = np.empty(block)
    t = np.empty(block)
    q = np.empty(block)
    wb = np.empty(block)
    wr = np.empty(block)
    rfo = np.empty(D)
    mo1 = np.empty(D)
    mo2 = np.empty(D)
    nk = np.empty(K)
    sums = np.empty((K, D))
    scatter = np.empty((K, D, D))
    while True:
        c = _fm.fetch_add(next_chunk, 1)
        if c >= n_chunks:
            break
        nk[:] = 0.0
        sums[:] = 0.0
        scatter[:] = 0.0
        ll = 0.0
        ws = 0.0
        for task in range(c * T // n_chunks, (c + 1) * T // n_chunks):
            p = t_pat[task]
            st = t_start[task]
            nb = t_len[task]
            no = n_obs[p]
            nm = D - no
            do_stats = want_stats and no > 0
            need_imp = w_imp and nm > 0
            if not (do_stats or need_imp or w_out):
                continue  # nothing observed: no information for the fit
            for i in range(nb):
                row = order[st + i]
                for a in range(no):
                    xt[a, i] = X[row, obs_idx[p, a]]
            # log-densities of the observed coordinates
            for k in range(K):
                for i in range(nb):
                    q[i] = 0.0
                if DIAG_COV:
                    for a in range(no):
                        mu = means[k, obs_idx[p, a]]
                        u = U[p, k, a, a]
                        for i in range(nb):
                            v = (xt[a, i] - mu) * u
                            q[i] += v * v
                else:
                    for a in range(no):
                        mu = means[k, obs_idx[p, a]]
                        for i in range(nb):
                            dt[a, i] = xt[a, i] - mu
                    for j in range(no):
                        for i in range(nb):
                            t[i] = 0.0
                        for a in range(j + 1):
                            u = U[p, k, a, j]
                            for i in range(nb):
                                t[i] += dt[a, i] * u
                        for i in range(nb):
                            q[i] += t[i] * t[i]
                cst = logconst[p, k]
                for i in range(nb):
                    lp[k, i] = cst - 0.5 * q[i]
            # np.bool_: the one specialization the E-step kernel compiles
            _block_normalize(lp, nb, m, s, lse, np.bool_(True))
            if w_out:
                _write_rows(lp, lse, nb, order, st, out_lse, out_resp,
                            out_label)
            for i in range(nb):
                row = order[st + i]
                wi = sw[row] if has_w else 1.0
                wb[i] = wi
                if do_stats and wi != 0.0:
                    ll += wi * lse[i]
                    ws += wi
            if not (do_stats or need_imp):
                continue
            if need_imp:
                for a in range(nm):
                    for i in range(nb):
                        imp[a, i] = 0.0
            for k in range(K):
                if DIAG_COV:
                    # Diagonal covariance: missing coordinates are
                    # independent of the observed ones, so E[x_m] = mu_m and
                    # only per-coordinate moments are needed.
                    tot = 0.0
                    if do_stats:
                        for i in range(nb):
                            r = lp[k, i] * wb[i]
                            wr[i] = r
                            tot += r
                        nk[k] += tot
                    for a in range(nm):
                        j = obs_idx[p, no + a]
                        mu = means[k, j]
                        if need_imp:
                            for i in range(nb):
                                imp[a, i] += lp[k, i] * mu
                        if do_stats:
                            cm = mu - ref[k, j]
                            sums[k, j] += tot * cm
                            scatter[k, j, j] += tot * (cm * cm + C[p, k, a, a])
                    if not do_stats or tot == 0.0:
                        continue
                    # observed coordinates: the complete-data moment loop
                    # on the gathered rows, then back to original features
                    for a in range(no):
                        rfo[a] = ref[k, obs_idx[p, a]]
                        mo1[a] = 0.0
                        mo2[a] = 0.0
                    _diag_moments(xt[:no], nb, wr, rfo, mo1, mo2)
                    for a in range(no):
                        j = obs_idx[p, a]
                        sums[k, j] += mo1[a]
                        scatter[k, j, j] += mo2[a]
                    continue
                # completed block in original coordinates, minus ref_k
                for a in range(no):
                    j = obs_idx[p, a]
                    rf = ref[k, j]
                    mu = means[k, j]
                    for i in range(nb):
                        y[j, i] = xt[a, i] - rf
                        dt[a, i] = xt[a, i] - mu
                for a in range(nm):
                    j = obs_idx[p, no + a]
                    mu = means[k, j]
                    for i in range(nb):
                        t[i] = mu
                    for b in range(no):
                        coef = B[p, k, a, b]
                        for i in range(nb):
                            t[i] += coef * dt[b, i]
                    if need_imp:
                        for i in range(nb):
                            imp[a, i] += lp[k, i] * t[i]
                    rf = ref[k, j]
                    for i in range(nb):
                        y[j, i] = t[i] - rf
                if not do_stats:
                    continue
                tot = _weighted_resp(lp, k, nb, wb, wr)
                if tot == 0.0:
                    continue
                nk[k] += tot
                for a in range(D):
                    sa = 0.0
                    sq = 0.0
                    for i in range(nb):
                        v = wr[i] * y[a, i]
                        wd[a, i] = v
                        sa += v
                        sq += v * y[a, i]
                    sums[k, a] += sa
                    scatter[k, a, a] += sq
                _cross_products_centred(wd, y, no_shift, nb, scatter[k])
                # conditional covariance of the missing block
                for a in range(nm):
                    ia = obs_idx[p, no + a]
                    for b in range(a, nm):
                        scatter[k, ia, obs_idx[p, no + b]] += tot * C[p, k, a, b]
            if need_imp:
                for i in range(nb):
                    row = order[st + i]
                    for j in range(D):
                        out_imp[row, j] = X[row, j]
                    for a in range(nm):
                        out_imp[row, obs_idx[p, no + a]] = imp[a, i]
        _fm.put(p_nk, c, nk)
        _fm.put(p_sums, c, sums)
        _fm.put(p_scatter, c, scatter)
        p_ll[c] = ll
        p_ws[c] = ws


def _missing_pass_variant(diag):
    """Compile nothing; return the dispatcher of :func:`_t_missing_worker`.

    Its globals hold ``DIAG_COV = diag`` (numba prunes the other case's
    branches); its own qualified name gives it its own disk-cache entry.
    """
    g = dict(globals())
    g["DIAG_COV"] = diag
    name = "_missing_worker_diag" if diag else "_missing_worker_full"
    fn = types.FunctionType(_t_missing_worker.__code__, g, name,
                            _t_missing_worker.__defaults__)
    fn.__qualname__ = name
    fn.__doc__ = _t_missing_worker.__doc__
    return njit(**JIT)(fn)


# indexed by "the covariances are diagonal"
_MISSING_PASS = (_missing_pass_variant(False), _missing_pass_variant(True))


def missing_pass(X, sw, plan, params, want_stats=True, lse=None, resp=None,
                 label=None, imp=None, ref=None):
    """Run the missing-data pass; return stats in ``params``' covariance type.

    Returns
    -------
    GaussianStats or None
        Statistics when ``want_stats``.
    """
    from fastem.families.gaussian import GaussianStats, _covariances_for

    if X.dtype != np.float64:
        # float32 data is read into float64 for this pass (it computes in
        # float64 anyway): one compiled specialization instead of two, about
        # 8 s less first-run compilation, for a transient float64 copy
        X = X.astype(np.float64)
    means = np.ascontiguousarray(params.means, dtype=np.float64)
    K, D = means.shape
    cov = full_covariances(_covariances_for(params), params.covariance_type, K, D)
    U, B, C, logconst = pattern_factors(plan, np.asarray(params.weights, float),
                                        means, cov)
    ref = means.copy() if ref is None else np.ascontiguousarray(ref, np.float64)
    ef = np.empty(0)
    diag = params.covariance_type in ("diag", "spherical")
    n_chunks = max(1, min(MAX_CHUNKS, plan.t_pat.shape[0]))
    parts = _zero_partials(n_chunks, K, D, K, D)
    run_workers(_MISSING_PASS[diag], (
        np.zeros(1, np.int64), X, sw, plan.order, plan.t_pat, plan.t_start,
        plan.t_len, plan.n_obs, plan.obs_idx, means, U, B, C, logconst, ref,
        n_chunks, BLOCK_ROWS, want_stats,
        ef if lse is None else lse,
        np.empty((0, K)) if resp is None else resp,
        np.empty(0, np.int64) if label is None else label,
        np.empty((0, D)) if imp is None else imp) + parts, n_chunks)
    out = _finish_partials(0, parts)  # full layout: mirror the scatter
    if not want_stats:
        return None
    nk, sums, scatter, ll, ws = out
    ct = params.covariance_type
    if ct == "tied":
        scatter = scatter.sum(axis=0)
    elif ct in ("diag", "spherical"):
        scatter = np.diagonal(scatter, axis1=1, axis2=2).copy()
    return GaussianStats(ct, nk, sums, scatter, ref, float(ll), float(ws),
                         plan.n_informative)
