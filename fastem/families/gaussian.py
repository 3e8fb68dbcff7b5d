"""Low-level, stable API: fastem as a backend for other libraries.

Three operations, each a thin wrapper over a compiled kernel:

* :func:`compute_stats` -- given ``X`` and :class:`GaussianParams` (and
  optionally sample weights), one parallel pass returns
  :class:`GaussianStats`: the additive sufficient statistics of an E-step plus
  the log-likelihood of ``X`` under the parameters.
* :func:`m_step` -- given :class:`GaussianStats`, return new
  :class:`GaussianParams` (a pure function, no data needed).
* :func:`score_samples` / :func:`predict_proba` -- per-point log-likelihood
  and responsibilities.

Statistics are *additive*: the statistics of two chunks of rows, added with
``+``, equal the statistics of the concatenated rows (to rounding).  That is
what makes chunked, out-of-core, and distributed EM a reduction::

    total = sum((compute_stats(chunk, params) for chunk in chunks), start=None)

(``None + stats`` is ``stats``, so ``sum(..., start=None)`` works.)
"""

from dataclasses import dataclass

import numpy as np

from fastem import _config
from fastem._validation import check_array, check_sample_weight
from fastem.families.covariances import (  # noqa: F401  (re-exported)
    ALIASES,
    COVARIANCE_MODELS,
    MCLUST_COVARIANCE_TYPES,
    SKLEARN_COVARIANCE_TYPES,
    ComponentCollapseError,
)
from fastem.kernels.gaussian import DIAG, EM_PASS, FULL, SPHERICAL, STATS_GIVEN, TIED

__all__ = [
    "COVARIANCE_TYPES",
    "MIXTURE_COVARIANCE_TYPES",
    "GaussianParams",
    "GaussianStats",
    "compute_precision_cholesky",
    "compute_stats",
    "m_step",
    "predict_proba",
    "score_samples",
    "stats_from_responsibilities",
    "degenerate_components",
]

# covariance type -> the compiled E-step layout it runs on: scikit-learn's
# four (what GaussianHMM and BayesianGaussianMixture accept) ...
COVARIANCE_TYPES = {name: COVARIANCE_MODELS[name].code
                    for name in SKLEARN_COVARIANCE_TYPES}
# ... and every type GaussianMixture accepts: those four and mclust's
# fourteen models (EII ... VVV, fastem.families.mclust)
MIXTURE_COVARIANCE_TYPES = {name: m.code
                            for name, m in COVARIANCE_MODELS.items()}

_EMPTY_F = np.empty(0)
_EMPTY_I = np.empty(0, dtype=np.int64)
_LOG_2PI = np.log(2.0 * np.pi)


def _code(covariance_type, n_features=None):
    """Return the compiled layout ``covariance_type`` runs on, given ``n_features``.

    Spherical covariances always run on the diag layout: their precision
    factor is repeated over the features ((K, 1, D), see
    :meth:`~fastem.families.covariances.Spherical.kernel_prec`) and their
    statistics are the diagonal moments the diag layout accumulates, so a
    spherical fit compiles nothing of its own (the diag quadratic form
    costs the same two operations per feature as the spherical one).  With
    one feature, full, diag and spherical covariances are the same scalar
    variance, with the same (K, 1, 1) precision factors and (K, 1, 1)
    scatter, and every pass computes the same numbers through each layout's
    one-feature branch: they all run on the diag layout, so a 1-D fit
    compiles neither the triangular solve nor the cross products.  Tied
    covariances run on the full layout (the diag one for one feature): the
    shared precision factor is repeated per component ((K, D, D), see
    :meth:`~fastem.families.covariances.Tied.kernel_prec`) and the
    per-component scatters are summed over the components in NumPy
    (:func:`scatter_in_shape`): the same operations per row, one layout
    fewer to compile.
    """
    code = _model(covariance_type).code
    if code == SPHERICAL or (n_features == 1 and code in (FULL, TIED)):
        return DIAG
    if code == TIED:
        return FULL
    return code


def scatter_in_shape(scatter, covariance_type, K, D):
    """Return the kernels' scatter in ``covariance_type``'s shape.

    The shape is the covariance type's, not the layout's it ran on: tied
    models run on a per-component layout, and their (K, D, D) scatters are
    summed over the components here (in component order).
    """
    model = _model(covariance_type)
    if model.code == TIED:
        return scatter.reshape(-1, D, D).sum(axis=0)
    return scatter.reshape(model.scatter_shape(K, D))


def _model(covariance_type):
    """Return the covariance model of ``covariance_type`` (or a clear error)."""
    try:
        return COVARIANCE_MODELS[covariance_type]
    except (KeyError, TypeError):
        raise ValueError(
            f"covariance_type must be one of {list(MIXTURE_COVARIANCE_TYPES)}"
            f", got {covariance_type!r}."
        ) from None


def covariance_shape(covariance_type, n_components, n_features):
    """Shape of the covariances (and precisions) of a covariance layout.

    The one table of the layouts' shapes, in scikit-learn's conventions:
    ``(K, D, D)`` full, ``(D, D)`` tied, ``(K, D)`` diag, ``(K,)``
    spherical; mclust's models take their layout's shape (EII, VII:
    ``(K,)``; EEI, VEI, EVI, VVI: ``(K, D)``; EEE: ``(D, D)``; the others
    ``(K, D, D)``).

    Parameters
    ----------
    covariance_type : str
        scikit-learn's four names or mclust's fourteen.
    n_components, n_features : int

    Returns
    -------
    tuple of int
    """
    return _model(covariance_type).shape(int(n_components), int(n_features))


def n_covariance_parameters(covariance_type, n_components, n_features):
    """Free parameters of the covariances of a layout.

    ``K D (D + 1) / 2`` (full), ``D (D + 1) / 2`` (tied), ``K D`` (diag),
    ``K`` (spherical): the counts scikit-learn's ``bic`` uses; for mclust's
    models mclust's ``nVarParams`` (for instance VEV: ``K + (D - 1) +
    K D (D - 1) / 2``), so that BIC equals mclust's.

    Parameters
    ----------
    covariance_type : str
        scikit-learn's four names or mclust's fourteen.
    n_components, n_features : int

    Returns
    -------
    int
    """
    return _model(covariance_type).n_parameters(int(n_components),
                                               int(n_features))


@dataclass
class GaussianParams:
    """Parameters of a Gaussian mixture, in scikit-learn's conventions.

    Attributes
    ----------
    weights : ndarray of shape (K,)
        Mixing weights, summing to one.
    means : ndarray of shape (K, D)
        Component means.
    precisions_cholesky : ndarray
        Cholesky factors of the precision matrices: (K, D, D) upper
        triangular for ``'full'``, (D, D) for ``'tied'``, (K, D) for
        ``'diag'``, (K,) for ``'spherical'``.
    covariance_type : str
        One of ``'full'``, ``'tied'``, ``'diag'``, ``'spherical'`` or
        mclust's model names (``'EII'`` ... ``'VVV'``, which take their
        layout's shapes).
    covariances : ndarray or None
        Covariances with the same shape convention (optional).
    """

    weights: np.ndarray
    means: np.ndarray
    precisions_cholesky: np.ndarray
    covariance_type: str = "full"
    covariances: np.ndarray = None

    def kernel_args(self):
        """Return ``(code, means, prec3, logconst)`` as the kernels take them."""
        model = _model(self.covariance_type)
        means = np.ascontiguousarray(self.means, dtype=np.float64)
        if means.ndim != 2:
            raise ValueError("GaussianParams.means must have shape "
                             f"(n_components, n_features), got {means.shape}.")
        K, D = means.shape
        pc = np.asarray(self.precisions_cholesky, dtype=np.float64)
        w = np.asarray(self.weights, dtype=np.float64)
        want = model.shape(K, D)
        if w.shape != (K,) or pc.shape != want:
            raise ValueError(
                f"GaussianParams for covariance_type={self.covariance_type!r} "
                f"need weights ({K},), means (K, D) and precisions_cholesky "
                f"{want}; got weights {w.shape}, means {means.shape}, "
                f"precisions_cholesky {pc.shape}.")
        prec, logdet = model.kernel_prec(pc, K, D)
        code = _code(self.covariance_type, D)
        with np.errstate(divide="ignore"):
            logw = np.log(w)
        logconst = logw + logdet - 0.5 * D * _LOG_2PI
        return code, means, np.ascontiguousarray(prec), logconst


@dataclass
class GaussianStats:
    """Additive sufficient statistics of a Gaussian mixture E-step.

    First and second moments are kept around a per-component reference point
    ``ref`` (normally the means used in the E-step), which preserves precision
    for data far from the origin.  Adding statistics with different references
    re-centres the right operand first (exact algebra, see :meth:`shift`).

    Attributes
    ----------
    covariance_type : str
    nk : ndarray of shape (K,)
        Sum over rows of ``w_i r_ik``.
    sums : ndarray of shape (K, D)
        Sum of ``w_i r_ik (x_i - ref_k)``.
    scatter : ndarray
        Sum of ``w_i r_ik (x_i - ref_k)(x_i - ref_k)^T``: (K, D, D) for
        ``'full'``; summed over components, (D, D), for ``'tied'``; only the
        diagonal, (K, D), for ``'diag'`` and ``'spherical'``.
    ref : ndarray of shape (K, D)
        The reference points.
    loglik : float
        Sum over rows of ``w_i log p(x_i)`` under the E-step parameters
        (0 when the statistics come from given responsibilities).
    weight_sum : float
        Sum of the sample weights of the rows seen.
    n_samples : int
        Number of rows seen.
    """

    covariance_type: str
    nk: np.ndarray
    sums: np.ndarray
    scatter: np.ndarray
    ref: np.ndarray
    loglik: float
    weight_sum: float
    n_samples: int

    def shift(self, new_ref):
        """Return the same statistics expressed around ``new_ref`` (K, D)."""
        new_ref = np.asarray(new_ref, dtype=np.float64)
        delta = self.ref - new_ref  # (K, D)
        sums = self.sums + self.nk[:, None] * delta
        # sum r (x-b)(x-b)^T = sum r (x-a)(x-a)^T + d s^T + s d^T + n d d^T,
        # with d = a - b and s the sums around a.
        outer = (np.einsum("ki,kj->kij", delta, self.sums)
                 + np.einsum("ki,kj->kij", self.sums, delta)
                 + self.nk[:, None, None] * np.einsum("ki,kj->kij", delta, delta))
        scatter = _model(self.covariance_type).shift_scatter(self.scatter,
                                                             outer)
        return GaussianStats(self.covariance_type, self.nk.copy(), sums, scatter,
                             new_ref.copy(), self.loglik, self.weight_sum,
                             self.n_samples)

    def __add__(self, other):
        if other is None:
            return self
        if not isinstance(other, GaussianStats):
            return NotImplemented
        if other.covariance_type != self.covariance_type:
            raise ValueError(
                "cannot add statistics of different covariance types: "
                f"{self.covariance_type!r} and {other.covariance_type!r}."
            )
        if other.nk.shape != self.nk.shape or other.sums.shape != self.sums.shape:
            raise ValueError(
                f"cannot add statistics of shapes {self.sums.shape} and "
                f"{other.sums.shape} (n_components, n_features)."
            )
        if not np.array_equal(other.ref, self.ref):
            other = other.shift(self.ref)
        return GaussianStats(
            self.covariance_type, self.nk + other.nk, self.sums + other.sums,
            self.scatter + other.scatter, self.ref.copy(),
            self.loglik + other.loglik, self.weight_sum + other.weight_sum,
            self.n_samples + other.n_samples)

    __radd__ = __add__

    def scale(self, factor):
        """Return the statistics multiplied by ``factor`` (for decayed averages)."""
        f = float(factor)
        return GaussianStats(self.covariance_type, self.nk * f, self.sums * f,
                             self.scatter * f, self.ref.copy(), self.loglik * f,
                             self.weight_sum * f, self.n_samples)

    @property
    def mean_loglik(self):
        """Weighted mean log-likelihood per row (scikit-learn's lower bound)."""
        return self.loglik / self.weight_sum if self.weight_sum > 0 else -np.inf


def _wrap_stats(covariance_type, ref, n_samples, out):
    nk, sums, scatter, ll, ws = out
    K, D = sums.shape
    scatter = scatter_in_shape(scatter, covariance_type, K, D)
    return GaussianStats(covariance_type, nk, sums, scatter, ref, float(ll),
                         float(ws), int(n_samples))


def _check_ref(ref, shape):
    ref = np.ascontiguousarray(ref, dtype=np.float64)
    if ref.shape != tuple(shape):
        raise ValueError(
            f"ref must have shape (n_components, n_features) = {tuple(shape)}, "
            f"got {ref.shape}.")
    if not np.all(np.isfinite(ref)):
        raise ValueError("ref contains NaN or infinite values.")
    return ref


def _s_rows(code, K):
    return 1 if code == TIED else K


def _prepare(X, sample_weight, n_features=None):
    X = check_array(X, n_features=n_features)
    sw = check_sample_weight(sample_weight, X.shape[0])
    return X, sw


def compute_stats(X, params, sample_weight=None, ref=None):
    """E-step sufficient statistics of ``X`` under ``params``, in one pass.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Data (float64 or float32; other numeric types are converted).
    params : GaussianParams
        Parameters used for the responsibilities.
    sample_weight : array-like of shape (n_samples,), optional
        Non-negative row weights; a weight of 2 counts a row twice.
    ref : ndarray of shape (K, D), optional
        Reference points for the moments (default: ``params.means``).

    Returns
    -------
    GaussianStats
        Additive statistics, including the weighted log-likelihood.
    """
    code, means, prec, logconst = params.kernel_args()
    X, sw = _prepare(X, sample_weight, means.shape[1])
    return _stats_pass(X, sw, params.covariance_type, code, means, prec,
                       logconst, ref)


def _stats_pass(X, sw, covariance_type, code, means, prec, logconst, ref=None):
    """Kernel call on validated inputs (used by the estimator's EM loop)."""
    K = means.shape[0]
    ref = means.copy() if ref is None else _check_ref(ref, means.shape)
    with _config.threads():
        out = EM_PASS[code](X, sw, means, prec, logconst, ref,
                            _config.n_chunks_for(X.shape[0]),
                            _config.em_block_rows(X.shape[1], K, code <= TIED),
                            True, _EMPTY_F, np.empty((0, K)), _EMPTY_I,
                            _s_rows(code, K))
    return _wrap_stats(covariance_type, ref, X.shape[0], out)


def stats_from_responsibilities(X, resp=None, covariance_type="full",
                                sample_weight=None, ref=None, labels=None,
                                n_components=None, random_seed=None):
    """Statistics from given responsibilities (no E-step).

    Exactly one of ``resp`` (n_samples, K), ``labels`` (n_samples,) hard
    assignments (negative: row ignored) or ``random_seed`` (random
    row-normalized responsibilities, drawn inside the kernel) is used.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    resp : array-like of shape (n_samples, K), optional
    covariance_type : str
    sample_weight : array-like of shape (n_samples,), optional
    ref : ndarray of shape (K, D), optional
        Reference points (default: the weighted mean of X for every component).
    labels : array-like of shape (n_samples,), optional
    n_components : int, optional
        Required with ``labels`` or ``random_seed``.
    random_seed : int, optional

    Returns
    -------
    GaussianStats
        With ``loglik = 0``.
    """
    X = check_array(X)
    sw = check_sample_weight(sample_weight, X.shape[0])
    N, D = X.shape
    code = _code(covariance_type, D)
    if resp is not None:
        resp = np.ascontiguousarray(resp, dtype=np.float64)
        if resp.ndim != 2 or resp.shape[0] != N:
            raise ValueError(
                f"resp must have shape (n_samples={N}, n_components), got "
                f"{resp.shape}.")
        mode, K, labels_a, seed = 2, resp.shape[1], _EMPTY_I, 0
    elif labels is not None:
        labels_a = np.ascontiguousarray(labels, dtype=np.int64)
        K = int(n_components)
        if labels_a.shape != (N,) or labels_a.max(initial=-1) >= K:
            raise ValueError(f"labels must have shape ({N},) with values < {K}.")
        mode, resp, seed = 0, np.empty((0, K)), 0
    elif random_seed is not None:
        K = int(n_components)
        mode, resp, labels_a = 1, np.empty((0, K)), _EMPTY_I
        seed = int(random_seed) % (2 ** 63)
    else:
        raise ValueError("give one of resp, labels or random_seed.")
    if ref is None:
        if sw.shape[0]:
            center = (sw @ X) / max(sw.sum(), np.finfo(float).tiny)
        else:
            center = X.mean(axis=0, dtype=np.float64)
        ref = np.tile(center, (K, 1))
    ref = _check_ref(ref, (K, D))
    with _config.threads():
        out = STATS_GIVEN[code](X, sw, mode, labels_a, resp, seed, K, ref,
                                _config.n_chunks_for(N), _s_rows(code, K),
                                _config.em_block_rows(D, K, code <= TIED))
    return _wrap_stats(covariance_type, ref, N, out)


def _covariances_for(params):
    """``params.covariances``, or the covariances implied by the precisions."""
    if params.covariances is not None:
        return params.covariances
    pc = np.asarray(params.precisions_cholesky, dtype=np.float64)
    return _model(params.covariance_type).covariances(pc)


def compute_precision_cholesky(covariances, covariance_type):
    """Cholesky factors of the precisions from covariances.

    scikit-learn's convention: upper triangular ``U`` with
    ``U U^T = inv(cov)``.

    Parameters
    ----------
    covariances : ndarray
        (K, D, D) full, (D, D) tied, (K, D) diag, (K,) spherical.
    covariance_type : str

    Returns
    -------
    ndarray
        Same shape as ``covariances``.

    Raises
    ------
    ComponentCollapseError
        If a covariance is not positive definite.
    """
    return _model(covariance_type).precision_cholesky(
        np.asarray(covariances, dtype=np.float64))


def m_step(stats, reg_covar=1e-6, previous=None):
    """Maximization step: parameters from statistics (pure function).

    Follows scikit-learn's estimates: ``nk += 10 * eps`` (times the mean
    sample weight, so that weights are relative); means ``sums/nk``;
    covariances the weighted scatter around the new means divided by ``nk``
    plus ``reg_covar`` on the diagonal (tied: summed over components and
    divided by the total weight; spherical: the mean of the diagonal).
    mclust's models (:mod:`fastem.families.mclust`) take their constrained
    estimate from the scatter matrices ``W_k + reg_covar * nk * I``.

    Parameters
    ----------
    stats : GaussianStats
    reg_covar : float
        Non-negative regularization added to the diagonal of covariances.
    previous : GaussianParams, optional
        The current parameters.  The iterative M-steps (mclust's VEI, VEE,
        EVE, VVE, VEV) start their inner iterations from its covariances
        (a Generalized EM step: the expected complete log-likelihood does
        not decrease); without it they start where mclust's ``mstep``
        does.  The closed forms ignore it.

    Returns
    -------
    GaussianParams
        With ``covariances`` filled in.

    Raises
    ------
    ComponentCollapseError
        If a covariance is not positive definite.
    """
    model = _model(stats.covariance_type)
    # scikit-learn adds 10 * eps to every nk (unit weights).  Sample weights
    # are relative, so the guard scales with the mean weight: weights of
    # 1e-20 must give the fit of unit weights, not covariances shrunk by the
    # guard (it was 1000x at 1e-20, 1% at 1e-15).
    unit = (stats.weight_sum / stats.n_samples
            if stats.n_samples > 0 and stats.weight_sum > 0 else 1.0)
    nk = stats.nk + 10 * np.finfo(np.float64).eps * unit
    delta = stats.sums / nk[:, None]  # new mean minus ref
    means = stats.ref + delta
    if model.iterative:
        prev = None
        if previous is not None and \
                previous.covariance_type == stats.covariance_type:
            prev = _covariances_for(previous)
        cov = model.estimate(nk, delta, stats.scatter, reg_covar, prev)
    else:
        cov = model.estimate(nk, delta, stats.scatter, reg_covar)
    weights = nk / nk.sum()
    prec_chol = model.precision_cholesky(cov)
    return GaussianParams(weights, means, prec_chol, stats.covariance_type, cov)


def degenerate_components(params, reg_covar=0.0, rtol=1e-12):
    """Components whose covariance collapsed (mclust's "singular" fits).

    A component is degenerate when, in some direction, its variance beyond
    ``reg_covar`` is at most ``max(reg_covar, rtol * largest variance)``:
    its spread there is the regularization floor rather than the data's
    (typically it sits on a few identical rows), or its covariance is
    numerically singular.  Such a fit's likelihood grows without bound as
    ``reg_covar`` shrinks, so it is not comparable with other fits; mclust
    reports no BIC for it.  A degenerate tied covariance flags every
    component.

    Parameters
    ----------
    params : GaussianParams
    reg_covar : float, default=0
        The regularization the fit added to the diagonal.
    rtol : float, default=1e-12
        Smallest acceptable ratio of the smallest to the largest variance.

    Returns
    -------
    ndarray of int
        Indices of the degenerate components (empty when none).
    """
    model = _model(params.covariance_type)
    cov = np.asarray(_covariances_for(params), dtype=np.float64)
    K = np.asarray(params.weights).shape[0]
    lo, hi = model.variance_range(cov)
    bad = ~(lo - reg_covar > np.maximum(reg_covar, rtol * hi))
    if model.shared:
        return np.arange(K) if bad.any() else np.empty(0, dtype=np.int64)
    return np.flatnonzero(bad)


def _outputs(X, params, want_lse, want_resp, want_label):
    code, means, prec, logconst = params.kernel_args()
    X = check_array(X, n_features=means.shape[1])
    N = X.shape[0]
    K = means.shape[0]
    lse = np.empty(N) if want_lse else _EMPTY_F
    resp = np.empty((N, K)) if want_resp else np.empty((0, K))
    label = np.empty(N, dtype=np.int64) if want_label else _EMPTY_I
    with _config.threads():
        EM_PASS[code](X, _EMPTY_F, means, prec, logconst, means,
                      _config.n_chunks_for(N),
                      _config.em_block_rows(X.shape[1], K, code <= TIED),
                      False, lse, resp, label, _s_rows(code, K))
    return lse, resp, label


def score_samples(X, params):
    """Per-row log-likelihood ``log p(x_i)`` under ``params``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    params : GaussianParams

    Returns
    -------
    ndarray of shape (n_samples,)
    """
    return _outputs(X, params, True, False, False)[0]


def predict_proba(X, params):
    """Responsibilities and per-row log-likelihood, in one pass.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    params : GaussianParams

    Returns
    -------
    resp : ndarray of shape (n_samples, K)
    log_likelihood : ndarray of shape (n_samples,)
    """
    lse, resp, _ = _outputs(X, params, True, True, False)
    return resp, lse


class GaussianFamily:
    """The Gaussian family in the interface of :mod:`fastem.families.base`.

    One object per covariance layout and ``reg_covar``; the statistics are
    :class:`GaussianStats` (moments around a reference, so they add
    exactly) and the kernels are :mod:`fastem.kernels.gaussian`'s,
    compiled per layout.  :class:`~fastem.GaussianMixture` adds the
    missing-data pass and scikit-learn's initialization on top.

    Parameters
    ----------
    covariance_type : str
        scikit-learn's four names or mclust's fourteen models.
    reg_covar : float, default=1e-6
    allow_nan : bool, default=False
        NaN entries are missing values: chunks with NaN go through the
        missing-data pass (:mod:`fastem.kernels.missing`), which
        marginalizes them exactly.
    """

    name = "gaussian"
    FIELDS = {"weights": 1, "means": 2, "precisions_cholesky": None,
              "covariances": None}

    def __init__(self, covariance_type="full", reg_covar=1e-6,
                 allow_nan=False):
        self.covariance_type = covariance_type
        self.reg_covar = float(reg_covar)
        self.allow_nan = bool(allow_nan)

    def check_data(self, X, where="X"):
        """Accept any finite data (validated before)."""

    def stats(self, params, X, w):
        """Additive statistics of one chunk (one kernel pass)."""
        if self.allow_nan and np.isnan(X).any():
            from fastem.kernels.missing import MissingPlan, missing_pass

            return missing_pass(X, w, MissingPlan(X), params)
        code, means, prec, logconst = params.kernel_args()
        return _stats_pass(X, w, params.covariance_type, code, means, prec,
                           logconst)

    def outputs(self, params, X, lse=False, resp=False, label=False):
        """Per-row ``(lse, resp, label)`` (each or None)."""
        if self.allow_nan and np.isnan(X).any():
            from fastem.kernels.missing import MissingPlan, missing_pass

            N, K = X.shape[0], params.means.shape[0]
            out = (np.empty(N) if lse else None,
                   np.empty((N, K)) if resp else None,
                   np.empty(N, dtype=np.int64) if label else None)
            missing_pass(X, np.empty(0), MissingPlan(X), params, False, *out)
            return out
        out = _outputs(X, params, lse, resp, label)
        return tuple(o if want else None
                     for o, want in zip(out, (lse, resp, label)))

    def recenter(self, stats, params):
        """Return ``stats`` around ``params``' means.

        Online EM keeps its running moments centred on the current means.
        """
        return stats.shift(params.means)

    def m_step(self, stats, params=None):
        """Return the next parameters (:func:`m_step` with ``reg_covar``).

        ``params``, the current parameters, is where an iterative M-step
        (mclust's VEI, VEE, EVE, VVE, VEV) starts.
        """
        return m_step(stats, self.reg_covar, params)

    def n_parameters(self, params):
        """Return the free parameters: weights, means, the covariances."""
        K, D = params.means.shape
        return int(n_covariance_parameters(params.covariance_type, K, D)
                   + K * D + K - 1)

    def sample_component(self, params, k, n, rng):
        """``n`` draws from component ``k``, as scikit-learn draws them.

        The same calls on the same generator as
        ``sklearn.mixture.GaussianMixture.sample``, so both libraries draw
        the same samples from the same parameters and ``random_state``.
        """
        mean = np.asarray(params.means[k], dtype=np.float64)
        return _model(params.covariance_type).sample(
            rng, mean, _covariances_for(params), k, n)

    def n_components(self, params):
        """Return the number of components of ``params``."""
        return params.means.shape[0]

    def n_features(self, params):
        """Return the number of features of ``params``."""
        return params.means.shape[1]

    def fitted_attributes(self, params):
        """Return scikit-learn's fitted attributes of ``params``."""
        pc = np.asarray(params.precisions_cholesky, dtype=np.float64)
        prec = _model(params.covariance_type).precisions(pc)
        return {"means_": params.means, "precisions_cholesky_": pc,
                "precisions_": prec, "covariances_": _covariances_for(params)}

    def to_fields(self, params):
        """Return the parameters as named float64 arrays (for saving)."""
        return {"weights": params.weights, "means": params.means,
                "precisions_cholesky": params.precisions_cholesky,
                "covariances": _covariances_for(params)}

    def from_fields(self, fields):
        """Return parameters from :meth:`to_fields`' arrays, validated."""
        w = np.asarray(fields["weights"], dtype=np.float64)
        m = np.asarray(fields["means"], dtype=np.float64)
        pc = np.asarray(fields["precisions_cholesky"], dtype=np.float64)
        cov = fields.get("covariances")
        if cov is not None:
            cov = np.asarray(cov, dtype=np.float64)
            if cov.shape != pc.shape:
                raise ValueError(
                    f"'covariances' of shape {cov.shape} do not match "
                    f"'precisions_cholesky' of shape {pc.shape}.")
        p = GaussianParams(w, m, pc, self.covariance_type, cov)
        p.kernel_args()  # checks the shapes, naming them
        if not (np.all(np.isfinite(m)) and np.all(np.isfinite(pc))):
            raise ValueError("'means' and 'precisions_cholesky' must be "
                             "finite.")
        return p
