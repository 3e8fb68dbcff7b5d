"""Slow, obviously-correct NumPy/SciPy reference implementations.

Nothing here imports fastem: every function works on plain arrays, in the
layouts of scikit-learn (and fastem's public API):

* precisions_cholesky: (K, D, D) upper triangular for 'full', (D, D) for
  'tied', (K, D) for 'diag', (K,) for 'spherical', with
  ``U @ U.T == inv(covariance)``.
* sufficient statistics around a per-component reference point ``ref``:
  ``nk = sum_i w_i r_ik``, ``sums_k = sum_i w_i r_ik (x_i - ref_k)``,
  ``scatter_k = sum_i w_i r_ik (x_i - ref_k)(x_i - ref_k)^T`` (summed over k
  for 'tied', only the diagonal for 'diag' / 'spherical').

Everything is computed in float64, component by component, with SciPy's
multivariate normal density and two-pass (centred) moments.
"""

import numpy as np
import scipy.linalg
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

EPS = np.finfo(np.float64).eps
COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def _as64(X):
    return np.asarray(X, dtype=np.float64)


def _weights(sample_weight, n):
    if sample_weight is None:
        return np.ones(n)
    return _as64(sample_weight).reshape(n)


# --------------------------------------------------------------- layouts
def full_covariances(precisions_cholesky, covariance_type, n_components,
                     n_features):
    """Expand a type's precision-Cholesky layout to (K, D, D) covariances."""
    K, D = n_components, n_features
    pc = _as64(precisions_cholesky)
    if covariance_type == "full":
        return np.stack([np.linalg.inv(pc[k] @ pc[k].T) for k in range(K)])
    if covariance_type == "tied":
        cov = np.linalg.inv(pc @ pc.T)
        return np.stack([cov] * K)
    if covariance_type == "diag":
        return np.stack([np.diag(1.0 / pc[k] ** 2) for k in range(K)])
    if covariance_type == "spherical":
        return np.stack([np.eye(D) / pc[k] ** 2 for k in range(K)])
    raise ValueError(covariance_type)


def full_from_type_covariances(covariances, covariance_type, n_components,
                               n_features):
    """Expand a type's covariance layout to (K, D, D) covariances."""
    K, D = n_components, n_features
    cov = _as64(covariances)
    if covariance_type == "full":
        return cov.reshape(K, D, D).copy()
    if covariance_type == "tied":
        return np.stack([cov.reshape(D, D)] * K)
    if covariance_type == "diag":
        return np.stack([np.diag(cov[k]) for k in range(K)])
    if covariance_type == "spherical":
        return np.stack([np.eye(D) * cov[k] for k in range(K)])
    raise ValueError(covariance_type)


def precision_cholesky(covariances, covariance_type):
    """scikit-learn's precisions_cholesky_ from covariances (upper U)."""
    cov = _as64(covariances)

    def one(c):
        low = scipy.linalg.cholesky(c, lower=True)
        return scipy.linalg.solve_triangular(
            low, np.eye(c.shape[0]), lower=True).T

    if covariance_type == "full":
        return np.stack([one(c) for c in cov])
    if covariance_type == "tied":
        return one(cov)
    return 1.0 / np.sqrt(cov)


def precisions_from_cholesky(precisions_cholesky, covariance_type):
    """Precision matrices (type layout) from their Cholesky factors."""
    pc = _as64(precisions_cholesky)
    if covariance_type == "full":
        return np.stack([u @ u.T for u in pc])
    if covariance_type == "tied":
        return pc @ pc.T
    return pc ** 2


# ------------------------------------------------------------ densities
def log_gaussian_prob(X, means, precisions_cholesky, covariance_type):
    """(N, K) ``log N(x_i | mean_k, cov_k)`` with scipy.stats."""
    X = _as64(X)
    means = _as64(means)
    K, D = means.shape
    covs = full_covariances(precisions_cholesky, covariance_type, K, D)
    cols = [np.atleast_1d(multivariate_normal(mean=means[k], cov=covs[k])
                          .logpdf(X)).reshape(X.shape[0])
            for k in range(K)]
    return np.column_stack(cols)


def weighted_log_prob(X, weights, means, precisions_cholesky, covariance_type):
    """(N, K) ``log w_k + log N(x_i | k)``."""
    with np.errstate(divide="ignore"):
        logw = np.log(_as64(weights))
    return log_gaussian_prob(X, means, precisions_cholesky,
                             covariance_type) + logw


def score_samples(X, weights, means, precisions_cholesky, covariance_type):
    """(N,) log-likelihood of every row under the mixture."""
    return logsumexp(weighted_log_prob(X, weights, means, precisions_cholesky,
                                       covariance_type), axis=1)


def responsibilities(X, weights, means, precisions_cholesky, covariance_type):
    """(N, K) posterior probabilities of the components."""
    wlp = weighted_log_prob(X, weights, means, precisions_cholesky,
                            covariance_type)
    return np.exp(wlp - logsumexp(wlp, axis=1, keepdims=True))


# ------------------------------------------------------------ statistics
def sufficient_stats(X, resp, covariance_type, sample_weight=None, ref=None):
    """Weighted sufficient statistics around ``ref``, two-pass.

    First pass: weighted mean ``mu_k`` of every component; second pass: the
    scatter around ``mu_k``; both are then re-expressed around ``ref_k``
    exactly (``sums = n (mu - ref)``, ``scatter += n (mu - ref)(mu - ref)^T``:
    the cross terms vanish because the residuals around ``mu`` sum to zero).

    Returns a dict with nk, sums, scatter (type layout), weight_sum, n_samples.
    """
    X = _as64(X)
    N, D = X.shape
    resp = _as64(resp)
    K = resp.shape[1]
    w = _weights(sample_weight, N)
    wr = resp * w[:, None]
    ref = np.zeros((K, D)) if ref is None else _as64(ref).reshape(K, D)
    nk = wr.sum(axis=0)
    sums = np.zeros((K, D))
    scatter = np.zeros((K, D, D))
    for k in range(K):
        if nk[k] == 0:
            continue
        mu = (wr[:, k] @ X) / nk[k]  # pass 1
        diff = X - mu  # pass 2
        centred = (wr[:, k, None] * diff).T @ diff
        d = mu - ref[k]
        sums[k] = nk[k] * d
        scatter[k] = centred + nk[k] * np.outer(d, d)
    # weight of the rows that take part (all rows with a responsibility)
    weight_sum = w[resp.sum(axis=1) > 0].sum()
    return dict(nk=nk, sums=sums, scatter=type_scatter(scatter, covariance_type),
                weight_sum=weight_sum, n_samples=N)


def type_scatter(scatter_full, covariance_type):
    """Reduce (K, D, D) per-component scatter to a covariance type's layout."""
    if covariance_type == "full":
        return scatter_full
    if covariance_type == "tied":
        return scatter_full.sum(axis=0)
    return np.diagonal(scatter_full, axis1=1, axis2=2).copy()


def e_step_stats(X, weights, means, precisions_cholesky, covariance_type,
                 sample_weight=None, ref=None):
    """Statistics of an E-step under the given parameters (plus loglik)."""
    X = _as64(X)
    resp = responsibilities(X, weights, means, precisions_cholesky,
                            covariance_type)
    out = sufficient_stats(X, resp, covariance_type, sample_weight,
                           means if ref is None else ref)
    w = _weights(sample_weight, X.shape[0])
    out["loglik"] = float(w @ score_samples(X, weights, means,
                                            precisions_cholesky,
                                            covariance_type))
    return out


# ---------------------------------------------------------------- M-step
def m_step(X, resp, covariance_type, reg_covar=1e-6, sample_weight=None):
    """M-step with scikit-learn's estimates, row weights folded into resp.

    ``nk = sum w r + 10 eps``; means ``sum w r x / nk``; covariances: the
    weighted scatter around the new means over ``nk`` plus ``reg_covar`` on
    the diagonal ('tied': summed over components and divided by ``sum nk``;
    'diag': the diagonal; 'spherical': the mean of the diagonal); weights
    ``nk / sum(nk)``.  The moments are centred (two-pass), which is
    algebraically what scikit-learn computes.

    Returns (weights, means, covariances, precisions_cholesky).
    """
    X = _as64(X)
    N, D = X.shape
    w = _weights(sample_weight, N)
    wr = _as64(resp) * w[:, None]
    K = wr.shape[1]
    nk = wr.sum(axis=0) + 10 * EPS
    means = (wr.T @ X) / nk[:, None]
    full = np.empty((K, D, D))
    for k in range(K):
        diff = X - means[k]
        full[k] = (wr[:, k, None] * diff).T @ diff
    if covariance_type == "full":
        cov = full / nk[:, None, None] + reg_covar * np.eye(D)
    elif covariance_type == "tied":
        cov = full.sum(axis=0) / nk.sum() + reg_covar * np.eye(D)
    elif covariance_type == "diag":
        cov = np.diagonal(full, axis1=1, axis2=2) / nk[:, None] + reg_covar
    elif covariance_type == "spherical":
        cov = (np.diagonal(full, axis1=1, axis2=2) / nk[:, None]
               + reg_covar).mean(axis=1)
    else:
        raise ValueError(covariance_type)
    weights = nk / nk.sum()
    return weights, means, cov, precision_cholesky(cov, covariance_type)


def em_step(X, weights, means, precisions_cholesky, covariance_type,
            reg_covar=1e-6, sample_weight=None):
    """One EM iteration: (mean log-likelihood before, new parameters)."""
    X = _as64(X)
    w = _weights(sample_weight, X.shape[0])
    lse = score_samples(X, weights, means, precisions_cholesky, covariance_type)
    resp = responsibilities(X, weights, means, precisions_cholesky,
                            covariance_type)
    return (float(w @ lse / w.sum()),
            m_step(X, resp, covariance_type, reg_covar, sample_weight))


def onehot(labels, n_components):
    """(N, K) hard responsibilities; negative labels give an all-zero row."""
    labels = np.asarray(labels)
    R = np.zeros((labels.shape[0], n_components))
    ok = labels >= 0
    R[np.flatnonzero(ok), labels[ok]] = 1.0
    return R
