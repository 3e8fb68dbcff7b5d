"""Slow, obviously-correct NumPy/SciPy reference of a Gaussian HMM E-step.

Nothing here imports fastem or hmmlearn.  Covariances are given as full
(K, D, D) matrices; everything is computed in log space, one sequence at a
time, with SciPy's multivariate normal density and ``logsumexp``.
"""

import numpy as np
from scipy.special import logsumexp
from scipy.stats import multivariate_normal


def log_emissions(X, means, covs):
    """(N, K) matrix of ``log N(x_t | means[k], covs[k])``."""
    return np.column_stack([
        multivariate_normal(means[k], covs[k]).logpdf(X).reshape(len(X))
        for k in range(len(means))])


def split(lengths, n):
    lengths = [n] if lengths is None else list(lengths)
    ends = np.cumsum(lengths)
    return [(int(e - n_), int(e)) for n_, e in zip(lengths, ends)]


def e_step(X, lengths, startprob, transmat, means, covs):
    """Log-likelihood, posteriors, expected transitions and start posteriors.

    Returns
    -------
    dict with ``loglik`` (float), ``gamma`` (N, K), ``xi`` (K, K) summed over
    all sequences, ``start`` (K,) summed first-row posteriors.
    """
    X = np.asarray(X, dtype=np.float64)
    logB = log_emissions(X, means, covs)
    with np.errstate(divide="ignore"):
        ls = np.log(startprob)
        lA = np.log(transmat)
    K = len(startprob)
    gamma = np.empty_like(logB)
    xi = np.zeros((K, K))
    start = np.zeros(K)
    total = 0.0
    for a, b in split(lengths, len(X)):
        L = b - a
        fwd = np.empty((L, K))
        bwd = np.zeros((L, K))
        fwd[0] = ls + logB[a]
        for t in range(1, L):
            fwd[t] = logsumexp(fwd[t - 1][:, None] + lA, axis=0) + logB[a + t]
        for t in range(L - 2, -1, -1):
            bwd[t] = logsumexp(lA + (logB[a + t + 1] + bwd[t + 1])[None, :],
                               axis=1)
        ll = logsumexp(fwd[-1])
        total += ll
        lg = fwd + bwd
        gamma[a:b] = np.exp(lg - logsumexp(lg, axis=1, keepdims=True))
        start += gamma[a]
        for t in range(L - 1):
            xi += np.exp(fwd[t][:, None] + lA
                         + (logB[a + t + 1] + bwd[t + 1])[None, :] - ll)
    return {"loglik": total, "gamma": gamma, "xi": xi, "start": start}


def viterbi(X, lengths, startprob, transmat, means, covs):
    """Best state path (backpointers, first index on ties) and its log-prob."""
    logB = log_emissions(np.asarray(X, dtype=np.float64), means, covs)
    with np.errstate(divide="ignore"):
        ls = np.log(startprob)
        lA = np.log(transmat)
    path = np.empty(len(X), dtype=np.int64)
    total = 0.0
    for a, b in split(lengths, len(X)):
        L = b - a
        delta = ls + logB[a]
        back = np.zeros((L, len(ls)), dtype=np.int64)
        for t in range(1, L):
            cand = delta[:, None] + lA
            back[t] = np.argmax(cand, axis=0)
            delta = cand.max(axis=0) + logB[a + t]
        path[b - 1] = np.argmax(delta)
        total += delta.max()
        for t in range(L - 1, 0, -1):
            path[a + t - 1] = back[t, path[a + t]]
    return total, path
