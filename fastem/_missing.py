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

import numpy as np
from numba import njit, prange

from . import _fastmath as _fm
from ._config import PJIT, n_chunks_for
from ._kernels import _mirror

_LOG_2PI = np.log(2.0 * np.pi)


class MissingPlan:
    """Rows of ``X`` grouped by missingness pattern (built once per fit).

    Attributes
    ----------
    pid : ndarray of shape (N,)
        Pattern id of each row.
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
            uniq, inv = np.unique(codes, return_inverse=True)
            masks = ((uniq[:, None] >> np.arange(D)) & 1).astype(bool)
        else:
            masks, inv = np.unique(miss, axis=0, return_inverse=True)
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
    K, D = means.shape
    P = plan.n_patterns
    U = np.zeros((P, K, D, D))
    B = np.zeros((P, K, D, D))
    C = np.zeros((P, K, D, D))
    logconst = np.empty((P, K))
    with np.errstate(divide="ignore"):
        logw = np.log(weights)
    for p in range(P):
        no = plan.n_obs[p]
        o = plan.obs_idx[p, :no]
        m = plan.obs_idx[p, no:]
        if no == 0:
            logconst[p] = logw
            continue
        s_oo = cov_full[:, o][:, :, o]
        L = np.linalg.cholesky(s_oo)
        inv_l = np.linalg.inv(L)  # (K, no, no) lower
        u = np.swapaxes(inv_l, 1, 2)  # upper, U U^T = inv(S_oo)
        U[p, :, :no, :no] = u
        logdet = np.log(np.diagonal(u, axis1=1, axis2=2)).sum(axis=1)
        logconst[p] = logw + logdet - 0.5 * no * _LOG_2PI
        if m.size:
            s_mo = cov_full[:, m][:, :, o]
            prec_oo = u @ inv_l  # U U^T
            b = s_mo @ prec_oo
            B[p, :, :m.size, :no] = b
            C[p, :, :m.size, :m.size] = (cov_full[:, m][:, :, m]
                                         - b @ np.swapaxes(s_mo, 1, 2))
    return U, B, C, logconst


@njit(**PJIT)
def _missing_pass(X, sw, pid, n_obs, obs_idx, means, U, B, C, logconst,
                  ref, n_chunks, diag, want_stats, out_lse, out_resp, out_label,
                  out_imp):
    """Fused E-step over rows in natural order, each with its pattern's factors.

    Accumulates full (K, D, D) statistics (only the diagonal when ``diag``).
    """
    N = X.shape[0]
    K, D = means.shape
    p_nk = np.zeros((n_chunks, K))
    p_sums = np.zeros((n_chunks, K, D))
    p_scatter = np.zeros((n_chunks, K, D, D))
    p_ll = np.zeros(n_chunks)
    p_ws = np.zeros(n_chunks)
    has_w = sw.shape[0] > 0
    w_lse = out_lse.shape[0] > 0
    w_resp = out_resp.shape[0] > 0
    w_label = out_label.shape[0] > 0
    w_imp = out_imp.shape[0] > 0
    w_out = w_lse or w_resp or w_label
    for c in prange(n_chunks):
        start = c * N // n_chunks
        stop = (c + 1) * N // n_chunks
        d = np.empty(D)
        y = np.empty(D)
        lp = np.empty(K)
        xhat = np.empty(D)
        imp = np.empty(D)
        nk = np.zeros(K)
        sums = np.zeros((K, D))
        scatter = np.zeros((K, D, D))
        ll = 0.0
        ws = 0.0
        for row in range(start, stop):
            p = pid[row]
            no = n_obs[p]
            nm = D - no
            if no == 0 and not (w_out or w_imp):
                continue  # nothing observed: no information for the fit
            for k in range(K):
                for a in range(no):
                    d[a] = X[row, obs_idx[p, a]] - means[k, obs_idx[p, a]]
                q = 0.0
                if diag:
                    for a in range(no):
                        v = d[a] * U[p, k, a, a]
                        q += v * v
                else:
                    for j in range(no):
                        acc = 0.0
                        for a in range(j + 1):
                            acc += d[a] * U[p, k, a, j]
                        q += acc * acc
                lp[k] = logconst[p, k] - 0.5 * q
            mx = -np.inf
            for k in range(K):
                mx = max(mx, lp[k])
            s = 0.0
            for k in range(K):
                e = _fm.exp(lp[k] - mx) if mx > -np.inf else 0.0
                lp[k] = e
                s += e
            lse = mx + _fm.log(s) if s > 0.0 else mx
            for k in range(K):
                lp[k] = lp[k] / s if s > 0.0 else 0.0
            if w_lse:
                out_lse[row] = lse
            if w_resp:
                for k in range(K):
                    out_resp[row, k] = lp[k]
            if w_label:
                best = 0
                for k in range(1, K):
                    if lp[k] > lp[best]:
                        best = k
                out_label[row] = best
            need_imp = w_imp and nm > 0
            if need_imp:
                for j in range(D):
                    imp[j] = X[row, j]
                for a in range(nm):
                    imp[obs_idx[p, no + a]] = 0.0
            wi = sw[row] if has_w else 1.0
            do_stats = want_stats and no > 0 and wi != 0.0
            if do_stats:
                ll += wi * lse
                ws += wi
            if not (do_stats or need_imp):
                continue
            for k in range(K):
                r = lp[k]
                if r == 0.0:
                    continue
                # completed row: observed values, conditional means elsewhere
                for a in range(no):
                    xhat[obs_idx[p, a]] = X[row, obs_idx[p, a]]
                    d[a] = X[row, obs_idx[p, a]] - means[k, obs_idx[p, a]]
                for a in range(nm):
                    acc = means[k, obs_idx[p, no + a]]
                    if not diag:
                        for b in range(no):
                            acc += B[p, k, a, b] * d[b]
                    xhat[obs_idx[p, no + a]] = acc
                if need_imp:
                    for a in range(nm):
                        j = obs_idx[p, no + a]
                        imp[j] += r * xhat[j]
                if not do_stats:
                    continue
                wr = wi * r
                nk[k] += wr
                for j in range(D):
                    y[j] = xhat[j] - ref[k, j]
                if diag:
                    for a in range(D):
                        v = wr * y[a]
                        sums[k, a] += v
                        scatter[k, a, a] += v * y[a]
                    for a in range(nm):
                        ia = obs_idx[p, no + a]
                        scatter[k, ia, ia] += wr * C[p, k, a, a]
                    continue
                for a in range(D):
                    v = wr * y[a]
                    sums[k, a] += v
                    for b in range(a, D):
                        scatter[k, a, b] += v * y[b]
                for a in range(nm):
                    ia = obs_idx[p, no + a]
                    for b in range(a, nm):
                        scatter[k, ia, obs_idx[p, no + b]] += wr * C[p, k, a, b]
            if need_imp:
                for j in range(D):
                    out_imp[row, j] = imp[j]
        p_nk[c] = nk
        p_sums[c] = sums
        p_scatter[c] = scatter
        p_ll[c] = ll
        p_ws[c] = ws
    nk = p_nk[0].copy()
    sums = p_sums[0].copy()
    scatter = p_scatter[0].copy()
    ll = p_ll[0]
    ws = p_ws[0]
    for c in range(1, n_chunks):
        nk += p_nk[c]
        sums += p_sums[c]
        scatter += p_scatter[c]
        ll += p_ll[c]
        ws += p_ws[c]
    _mirror(0, scatter)
    return nk, sums, scatter, ll, ws


def missing_pass(X, sw, plan, params, want_stats=True, lse=None, resp=None,
                 label=None, imp=None, ref=None):
    """Run the missing-data pass; return stats in ``params``' covariance type.

    Returns
    -------
    GaussianStats or None
        Statistics when ``want_stats``.
    """
    from .stats import GaussianStats, _covariances_for

    means = np.ascontiguousarray(params.means, dtype=np.float64)
    K, D = means.shape
    cov = full_covariances(_covariances_for(params), params.covariance_type, K, D)
    U, B, C, logconst = pattern_factors(plan, np.asarray(params.weights, float),
                                        means, cov)
    ref = means.copy() if ref is None else np.ascontiguousarray(ref, np.float64)
    ef = np.empty(0)
    out = _missing_pass(
        X, sw, plan.pid, plan.n_obs, plan.obs_idx, means, U, B, C,
        logconst, ref, n_chunks_for(X.shape[0]),
        params.covariance_type in ("diag", "spherical"), want_stats,
        ef if lse is None else lse,
        np.empty((0, K)) if resp is None else resp,
        np.empty(0, np.int64) if label is None else label,
        np.empty((0, D)) if imp is None else imp)
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
