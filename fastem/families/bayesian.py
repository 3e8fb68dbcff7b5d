"""The variational Gaussian-Wishart family (scikit-learn's BayesianGaussianMixture).

Variational Bayes for a Gaussian mixture (Bishop 2006, ch. 10; Blei and
Jordan 2006 for the Dirichlet-process prior), in scikit-learn's
conventions and with its simplified lower bound.  There is no kernel of its
own: the variational E-step

    log rho_ik = E[log pi_k] + 0.5 E[log |Lambda_k|] - D/2 log(2 pi)
                 - D / (2 beta_k) - nu_k / 2 (x - m_k)^T W_k (x - m_k)

is the Gaussian E-step with shifted per-component constants and the
precision ``nu_k W_k`` (scikit-learn's normalized ``precisions_``), so one
pass of :mod:`fastem.kernels.gaussian`'s fused kernel gives ``nk``, the
sums and the scatter about the E-step means and ``sum_i lse_i``: everything
the variational M-step needs, and the lower bound too.  The entropy term
``sum_ik r_ik log r_ik`` of scikit-learn's bound is

    sum_k [nk_k c_k - 0.5 tr(P_k S_k)] - sum_i lse_i

(``c_k`` the E-step constant, ``P_k`` the E-step precision, ``S_k`` the
weighted scatter about the E-step means): no per-row pass, no
``n_samples x n_components`` array.

The special functions act on K-length arrays: ``math.lgamma`` and a
digamma series (scipy is not a runtime dependency).
"""

import math
from dataclasses import dataclass, field

import numpy as np

from fastem.families.covariances import COVARIANCE_MODELS
from fastem.families.gaussian import (
    GaussianStats,
    _code,
    _outputs,
    _stats_pass,
    stats_from_responsibilities,
)

__all__ = [
    "PRIOR_TYPES",
    "BayesianFamily",
    "BayesianParams",
    "Priors",
    "VariationalStats",
    "betaln",
    "digamma",
    "gammaln",
]

PRIOR_TYPES = ("dirichlet_process", "dirichlet_distribution")
_LOG_2PI = math.log(2.0 * math.pi)
_LOG_2 = math.log(2.0)
_EPS = np.finfo(np.float64).eps


# ------------------------------------------------------- special functions
def gammaln(x):
    """``log |Gamma(x)|`` elementwise (``math.lgamma``), for small arrays.

    Parameters
    ----------
    x : array-like

    Returns
    -------
    ndarray of float64
    """
    x = np.asarray(x, dtype=np.float64)
    return np.vectorize(math.lgamma, otypes=[np.float64])(x) if x.ndim \
        else np.float64(math.lgamma(float(x)))


def betaln(a, b):
    """``log B(a, b)`` elementwise.

    Parameters
    ----------
    a, b : array-like

    Returns
    -------
    ndarray of float64
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return gammaln(a) + gammaln(b) - gammaln(a + b)


# Bernoulli numbers B_2n / (2n), for the asymptotic series of digamma
_DIGAMMA_COEF = (1.0 / 12, -1.0 / 120, 1.0 / 252, -1.0 / 240, 1.0 / 132,
                 -691.0 / 32760, 1.0 / 12)


_SHIFT = np.arange(10.0)


def digamma(x):
    """Return the digamma function ``psi(x)`` for ``x > 0``, elementwise.

    ``psi(x) = psi(x + 10) - sum_{j<10} 1 / (x + j)`` (vectorized, for
    every ``x``), then the asymptotic series of ``psi(x + 10)`` to
    ``x**-14`` (absolute error below 1e-15 there).

    Parameters
    ----------
    x : array-like of positive floats

    Returns
    -------
    ndarray of float64
    """
    x = np.array(x, dtype=np.float64, ndmin=1)
    out = -(1.0 / (x[..., None] + _SHIFT)).sum(axis=-1)
    x = x + 10.0
    inv2 = 1.0 / (x * x)
    series = 0.0
    for c in reversed(_DIGAMMA_COEF):
        series = inv2 * (c + series)
    return out + np.log(x) - 0.5 / x - series


# ------------------------------------------------------------------ priors
@dataclass
class Priors:
    """The priors and settings of one variational fit (scikit-learn's ``*_prior_``).

    Attributes
    ----------
    covariance_type : str
    prior_type : {'dirichlet_process', 'dirichlet_distribution'}
    n_components : int
    weight_concentration_prior : float
    mean_precision_prior : float
    mean_prior : ndarray of shape (D,)
    degrees_of_freedom_prior : float
    covariance_prior : ndarray or float
        (D, D) full and tied, (D,) diag, float spherical.
    reg_covar : float
    total_weight : float
        Total sample weight of the data the priors were computed on (the
        number of rows, unweighted): statistics of an initialization
        subsample are scaled up to it.
    n_rows : int
        Rows of that data.
    """

    covariance_type: str
    prior_type: str
    n_components: int
    weight_concentration_prior: float
    mean_precision_prior: float
    mean_prior: np.ndarray
    degrees_of_freedom_prior: float
    covariance_prior: object
    reg_covar: float = 1e-6
    total_weight: float = 0.0
    n_rows: int = 0

    @property
    def n_features(self):
        """Number of features."""
        return self.mean_prior.shape[0]


class _PriorPass:
    """Marker "parameters": ``stats`` returns the data's moments instead."""

    def __reduce__(self):
        return (_PriorPass, ())


#: Passed to :meth:`BayesianFamily.stats` in place of parameters, it asks
#: for the weighted mean and scatter of the chunk (the data-dependent
#: default priors), as additive :class:`GaussianStats` with one component.
PRIOR_PASS = _PriorPass()


def _block_rows(D):
    # about 65,536 values (0.5 MB of float64) per temporary block
    return max(256, (1 << 16) // max(1, D))


def chunk_moments(X, w, rows=None):
    """Weighted count, mean and scatter of a chunk, as one-component stats.

    About the chunk's own mean (statistics with different references add
    exactly, :meth:`GaussianStats.shift`), computed block by block: no copy
    of ``X``.

    Parameters
    ----------
    X : ndarray of shape (n, D)
    w : ndarray of shape (n,) or (0,)

    Returns
    -------
    GaussianStats
        ``'full'``, one component.
    """
    n, D = X.shape
    rows = rows or _block_rows(D)
    weighted = w.shape[0] > 0
    if weighted:
        W = float(w.sum())
        mean = (w @ X).astype(np.float64) / W if W > 0 else np.zeros(D)
    else:
        W = float(n)
        mean = X.mean(axis=0, dtype=np.float64) if n else np.zeros(D)
    S = np.zeros((D, D))
    for a in range(0, n, rows):
        d = X[a:a + rows].astype(np.float64) - mean
        S += ((d * w[a:a + rows, None]) if weighted else d).T @ d
    return GaussianStats("full", np.array([W]), np.zeros((1, D)), S[None],
                         mean[None].copy(), 0.0, W, n)


@dataclass
class MissingMoments:
    """Additive moments of data with missing values (NaN).

    ``complete``: :func:`chunk_moments` of the rows without NaN;
    ``columns``: per-column weighted moments of the observed entries, as
    one-feature statistics with a "component" per column (so that they add
    exactly, re-centred like any :class:`GaussianStats`); ``n_missing``: the
    number of NaN entries.
    """

    complete: GaussianStats
    columns: GaussianStats
    n_missing: int = 0

    def __add__(self, other):
        if other is None:
            return self
        return MissingMoments(self.complete + other.complete,
                              self.columns + other.columns,
                              self.n_missing + other.n_missing)

    __radd__ = __add__

    @property
    def weight_sum(self):
        """Total weight of the rows with at least one observed entry."""
        return self.columns.weight_sum

    @property
    def n_samples(self):
        """Rows with at least one observed entry."""
        return self.columns.n_samples


def missing_moments(X, w, rows=None):
    """:class:`MissingMoments` of a chunk that may hold NaN (block by block)."""
    n, D = X.shape
    rows = rows or _block_rows(D)
    weighted = w.shape[0] > 0
    W = np.zeros(D)
    tot = np.zeros(D)
    row_w = 0.0
    n_inf = 0
    n_missing = 0
    complete = None
    for a in range(0, n, rows):
        b = X[a:a + rows]
        wb = w[a:a + rows] if weighted else np.ones(b.shape[0])
        obs = ~np.isnan(b)
        informative = obs.any(axis=1)
        n_inf += int(np.count_nonzero(informative))
        row_w += float(wb[informative].sum())
        n_missing += int(obs.size - np.count_nonzero(obs))
        W += wb @ obs
        tot += wb @ np.where(obs, b, 0.0)
        ok = obs.all(axis=1)
        part = chunk_moments(b[ok], w[a:a + rows][ok] if weighted else w)
        complete = part if complete is None else complete + part
    if complete is None:
        complete = chunk_moments(X, w)
    mean = np.where(W > 0, tot / np.maximum(W, 1e-300), 0.0)
    S = np.zeros(D)
    for a in range(0, n, rows):
        b = X[a:a + rows]
        wb = w[a:a + rows] if weighted else np.ones(b.shape[0])
        d = np.where(np.isnan(b), 0.0, b - mean)
        S += wb @ (d * d)
    cols = GaussianStats("diag", W, np.zeros((D, 1)), S[:, None],
                         mean[:, None].copy(), 0.0, row_w, n_inf)
    return MissingMoments(complete, cols, n_missing)


def moments_mean_cov(stats):
    """Mean and (ddof=1) covariance from :func:`chunk_moments`' sum.

    Parameters
    ----------
    stats : GaussianStats

    Returns
    -------
    mean : ndarray of shape (D,)
    cov : ndarray of shape (D, D)
        ``np.cov(X.T)`` for unweighted data; with weights, the scatter about
        the weighted mean over ``sum(w) - 1`` (equal to repeating rows).
    """
    if isinstance(stats, MissingMoments):
        c = stats.columns
        if stats.n_missing == 0:
            # no missing entry: the complete-data moments
            return moments_mean_cov(stats.complete)
        delta = c.sums[:, 0] / np.maximum(c.nk, 1e-300)
        var = (c.scatter[:, 0] - c.nk * delta * delta) / (c.nk - 1.0)
        return c.ref[:, 0] + delta, np.diag(var)
    W = float(stats.nk[0])
    delta = stats.sums[0] / W
    mean = stats.ref[0] + delta
    S = stats.scatter[0] - W * np.outer(delta, delta)
    return mean, S / (W - 1.0)


# -------------------------------------------------------------- parameters
@dataclass
class BayesianParams:
    """Variational posterior of a Gaussian mixture, in scikit-learn's names.

    Attributes
    ----------
    weight_concentration : ndarray
        (2, K) Beta parameters for the Dirichlet process, (K,) Dirichlet
        parameters for the Dirichlet distribution.
    mean_precision : ndarray of shape (K,)
    means : ndarray of shape (K, D)
    degrees_of_freedom : ndarray
        (K,), or (1,) for ``'tied'``.
    covariances : ndarray
        scikit-learn's ``covariances_`` (normalized by the degrees of
        freedom).
    precisions_cholesky : ndarray
    priors : Priors
    weights : ndarray of shape (K,)
        Expected mixing weights (derived).
    """

    weight_concentration: np.ndarray
    mean_precision: np.ndarray
    means: np.ndarray
    degrees_of_freedom: np.ndarray
    covariances: np.ndarray
    precisions_cholesky: np.ndarray
    priors: Priors
    weights: np.ndarray = field(init=False)
    _kargs: tuple = field(init=False, default=None, repr=False)

    def __post_init__(self):
        wc = self.weight_concentration
        if self.priors.prior_type == "dirichlet_process":
            s = wc[0] + wc[1]
            tmp = wc[1] / s
            w = wc[0] / s * np.hstack((1, np.cumprod(tmp[:-1])))
            self.weights = w / np.sum(w)
        else:
            self.weights = wc / np.sum(wc)

    @property
    def covariance_type(self):
        """The covariance layout."""
        return self.priors.covariance_type

    def log_weights(self):
        """``E[log pi_k]`` under the variational posterior (K,)."""
        wc = self.weight_concentration
        if self.priors.prior_type == "dirichlet_process":
            dsum, da, db = digamma(np.stack((wc[0] + wc[1], wc[0], wc[1])))
            return da - dsum + np.hstack((0, np.cumsum(db - dsum)[:-1]))
        return digamma(wc) - digamma(np.sum(wc))

    def kernel_args(self):
        """Return ``(code, means, prec, logconst)`` for the Gaussian kernels.

        ``prec`` is the Cholesky factor of scikit-learn's ``precisions_``
        (``nu_k W_k``); ``logconst`` holds the variational constants
        ``E[log pi_k] + log|U_k| - D/2 log(2 pi) - D/2 log nu_k
        + (log Lambda~_k - D / beta_k) / 2``.
        """
        if self._kargs is None:
            model = COVARIANCE_MODELS[self.covariance_type]
            means = np.ascontiguousarray(self.means, dtype=np.float64)
            K, D = means.shape
            pc = np.asarray(self.precisions_cholesky, dtype=np.float64)
            prec, logdet = model.kernel_prec(pc, K, D)
            nu = np.broadcast_to(np.asarray(self.degrees_of_freedom,
                                            dtype=np.float64), (K,))
            log_lambda = D * _LOG_2 + digamma(
                0.5 * (nu[None, :] - np.arange(D)[:, None])).reshape(
                    D, K).sum(axis=0)
            logconst = (self.log_weights() + logdet - 0.5 * D * _LOG_2PI
                        - 0.5 * D * np.log(nu)
                        + 0.5 * (log_lambda - D / self.mean_precision))
            self._kargs = (_layout(self.covariance_type, D), means,
                           np.ascontiguousarray(prec),
                           np.ascontiguousarray(logconst))
        return self._kargs

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_kargs"] = None
        return state


def _layout(covariance_type, n_features):
    # the compiled layout the Gaussian family runs this layout on (it may
    # depend on the number of features, e.g. one feature)
    try:
        return _code(covariance_type, n_features)
    except TypeError:
        return COVARIANCE_MODELS[covariance_type].code


# ---------------------------------------------------------------- statistics
@dataclass
class VariationalStats:
    """Additive statistics of a variational E-step.

    The Gaussian statistics of the pass (:class:`GaussianStats`, moments
    about the E-step means) plus the E-step parameters, which the lower
    bound's entropy term needs.  ``a + b`` adds the Gaussian statistics.

    Attributes
    ----------
    gauss : GaussianStats
    estep : BayesianParams or None
        The parameters of the E-step (None: statistics from given
        responsibilities, at initialization).
    family : BayesianFamily or None
        The family whose priors define the lower bound; set by the
        estimator for the statistics of a fit.
    """

    gauss: GaussianStats
    estep: object = None
    family: object = None
    _cache: dict = field(default_factory=dict, repr=False)

    def __add__(self, other):
        if other is None:
            return self
        if not isinstance(other, VariationalStats):
            return NotImplemented
        return VariationalStats(self.gauss + other.gauss, self.estep,
                                self.family or other.family)

    __radd__ = __add__

    def scale(self, factor):
        """Return the statistics multiplied by ``factor``."""
        return VariationalStats(self.gauss.scale(factor), self.estep,
                                self.family)

    @property
    def loglik(self):
        """Sum over rows of ``w_i log sum_k rho_ik``."""
        return self.gauss.loglik

    @property
    def weight_sum(self):
        """Total sample weight."""
        return self.gauss.weight_sum

    @property
    def n_samples(self):
        """Rows seen."""
        return self.gauss.n_samples

    @property
    def mean_loglik(self):
        """The objective the EM driver monitors: scikit-learn's lower bound.

        The ELBO (not per row: scikit-learn's ``lower_bound_``) of the
        M-step from these statistics; the M-step is computed once and
        reused by :meth:`BayesianFamily.m_step`.  Without a family, the mean
        of ``log sum_k rho_ik`` per row.
        """
        if self.family is None or self.estep is None:
            return self.gauss.mean_loglik
        return self.family.objective(self)


# ------------------------------------------------------------------ family
class BayesianFamily:
    """The variational Gaussian-Wishart family (see the module docstring).

    Parameters
    ----------
    priors : Priors or None
        None only for a family that validates data and nothing else.
    covariance_type : str
        Used when ``priors`` is None.
    online_weight : float or None
        :meth:`m_step` scales statistics to this total weight (online EM,
        whose running statistics are per-row averages).
    """

    name = "bayesian_gaussian"
    FIELDS = {"weight_concentration": None, "mean_precision": 1, "means": 2,
              "degrees_of_freedom": 1, "covariances": None,
              "precisions_cholesky": None, "prior_weight_concentration": 1,
              "prior_mean_precision": 1, "prior_mean": 1,
              "prior_degrees_of_freedom": 1, "prior_covariance": None,
              "prior_settings": 1}

    def __init__(self, priors=None, covariance_type="full",
                 online_weight=None, allow_nan=False):
        self.priors = priors
        self.covariance_type = (priors.covariance_type if priors is not None
                                else covariance_type)
        self.online_weight = online_weight
        self.allow_nan = bool(allow_nan)

    # ------------------------------------------------------------ passes
    def check_data(self, X, where="X"):
        """Accept any finite data (validated before)."""

    def stats(self, params, X, w):
        """Additive statistics of one chunk (one pass of the Gaussian kernel).

        With :data:`PRIOR_PASS` for ``params``: the chunk's moments
        (:func:`chunk_moments`), for the data-dependent priors.
        """
        if isinstance(params, _PriorPass):
            return missing_moments(X, w) if self.allow_nan \
                else chunk_moments(X, w)
        if self.allow_nan and np.isnan(X).any():
            return VariationalStats(_missing(params, X, w, True), params,
                                    self)
        code, means, prec, logconst = params.kernel_args()
        g = _stats_pass(X, w, params.covariance_type, code, means, prec,
                        logconst)
        return VariationalStats(g, params, self)

    def outputs(self, params, X, lse=False, resp=False, label=False):
        """Per-row ``(lse, resp, label)`` (each or None), as scikit-learn's.

        ``lse`` is ``log sum_k rho_ik`` (scikit-learn's ``score_samples``
        for this estimator), ``resp`` the variational responsibilities.
        """
        if self.allow_nan and np.isnan(X).any():
            N, K = X.shape[0], params.means.shape[0]
            out = (np.empty(N) if lse else None,
                   np.empty((N, K)) if resp else None,
                   np.empty(N, dtype=np.int64) if label else None)
            _missing(params, X, np.empty(0), False, *out)
            return out
        out = _outputs(X, params, lse, resp, label)
        return tuple(o if want else None
                     for o, want in zip(out, (lse, resp, label)))

    def recenter(self, stats, params):
        """Return ``stats`` around ``params``' means (online EM)."""
        return VariationalStats(stats.gauss.shift(params.means), stats.estep,
                                stats.family)

    # ------------------------------------------------------------ M-step
    def _require_priors(self):
        if self.priors is None:
            raise RuntimeError("this BayesianFamily has no priors (internal "
                               "error: fit computes them first).")
        return self.priors

    def m_step(self, stats, params=None):
        """Return the next parameters (scikit-learn's variational ``_m_step``).

        Parameters
        ----------
        stats : VariationalStats or GaussianStats
        params : BayesianParams, optional
            Unused (every component is re-estimated, with the priors).

        Returns
        -------
        BayesianParams
        """
        if isinstance(stats, VariationalStats):
            cached = stats._cache.get("next")
            if cached is not None and cached[0] is self.priors:
                return cached[1]
            g = stats.gauss
        else:
            g = stats
        if self.online_weight is not None and g.weight_sum > 0:
            g = g.scale(self.online_weight / g.weight_sum)
        return self._m_step(g)

    def _m_step(self, g):
        pr = self._require_priors()
        ct = pr.covariance_type
        model = COVARIANCE_MODELS[ct]
        K = g.nk.shape[0]
        # scikit-learn's 10 * eps guard, scaled by the mean sample weight
        # (as GaussianMixture's): 1 for unweighted data
        unit = (g.weight_sum / g.n_samples
                if g.n_samples > 0 and g.weight_sum > 0 else 1.0)
        nk = g.nk + 10 * _EPS * unit
        delta = g.sums / nk[:, None]
        xk = g.ref + delta
        sk = model.estimate(nk, delta, g.scatter, pr.reg_covar)
        # weights (Dirichlet / stick-breaking Beta parameters)
        if pr.prior_type == "dirichlet_process":
            wc = np.vstack((1.0 + nk, pr.weight_concentration_prior
                            + np.hstack((np.cumsum(nk[::-1])[-2::-1], 0))))
        else:
            wc = pr.weight_concentration_prior + nk
        # means
        b0, m0 = pr.mean_precision_prior, pr.mean_prior
        beta = b0 + nk
        means = (b0 * m0 + nk[:, None] * xk) / beta[:, None]
        # Wishart
        nu0, cp = pr.degrees_of_freedom_prior, pr.covariance_prior
        diff = xk - m0
        if ct == "full":
            nu = nu0 + nk
            cov = (cp + nk[:, None, None] * sk
                   + (nk * b0 / beta)[:, None, None]
                   * np.einsum("ki,kj->kij", diff, diff))
            cov /= nu[:, None, None]
        elif ct == "tied":
            nu = np.array([nu0 + nk.sum() / K])
            cov = (cp + sk * nk.sum() / K
                   + b0 / K * np.dot((nk / beta) * diff.T, diff))
            cov /= nu[0]
        elif ct == "diag":
            nu = nu0 + nk
            cov = cp + nk[:, None] * (sk + (b0 / beta)[:, None]
                                      * np.square(diff))
            cov /= nu[:, None]
        else:
            nu = nu0 + nk
            cov = cp + nk * (sk + b0 / beta * np.mean(np.square(diff), 1))
            cov /= nu
        pc = model.precision_cholesky(cov)
        return BayesianParams(wc, beta, means, nu, cov, pc, pr)

    # ------------------------------------------------------- lower bound
    def objective(self, stats):
        """scikit-learn's lower bound after the M-step from ``stats``.

        ``-sum r log r`` (from the pass's statistics and the E-step
        parameters, see the module docstring) minus the Wishart and
        Dirichlet normalizations and ``D/2 sum log beta_k`` of the new
        parameters.  The new parameters are cached for :meth:`m_step`.

        Parameters
        ----------
        stats : VariationalStats

        Returns
        -------
        float
        """
        new = self.m_step(stats)
        stats._cache["next"] = (self.priors, new)
        return float(-entropy_term(stats) + lower_bound_terms(new))

    def stats_from_labels(self, X, w, labels, K):
        """Statistics of hard assignments (initialization)."""
        labels = np.asarray(labels, dtype=np.int64)
        # moments about each component's own mean (exact for seed rows)
        ref = np.zeros((K, X.shape[1]))
        ww = w if w.shape[0] else np.ones(X.shape[0])
        cnt = np.bincount(labels, weights=ww, minlength=K)
        for j in range(X.shape[1]):
            ref[:, j] = np.bincount(labels, weights=ww * X[:, j],
                                    minlength=K)
        ref = np.where(cnt[:, None] > 0, ref / np.maximum(cnt, 1e-300)[:, None],
                       0.0)
        g = stats_from_responsibilities(
            X, covariance_type=self.covariance_type,
            sample_weight=w if w.shape[0] else None, ref=ref, labels=labels,
            n_components=K)
        return self._init_stats(g, X.shape[0], K)

    def stats_from_resp(self, X, w, resp):
        """Statistics of given responsibilities (initialization)."""
        g = stats_from_responsibilities(
            X, resp, covariance_type=self.covariance_type,
            sample_weight=w if w.shape[0] else None)
        return self._init_stats(g, X.shape[0], resp.shape[1])

    def _init_stats(self, g, n, K):
        pr = self.priors
        # statistics of an initialization subsample (more than one row per
        # component) count for the whole data, as the priors do
        if pr is not None and K < n < pr.n_rows and g.weight_sum > 0:
            g = g.scale(pr.total_weight / g.weight_sum)
        return VariationalStats(g)

    # -------------------------------------------------------- the rest
    def n_parameters(self, params):
        """Free parameters of the point estimate (weights, means, covariances)."""
        from fastem.families.gaussian import n_covariance_parameters

        K, D = params.means.shape
        return int(n_covariance_parameters(params.covariance_type, K, D)
                   + K * D + K - 1)

    def sample_component(self, params, k, n, rng):
        """``n`` draws from component ``k`` (scikit-learn's draws)."""
        mean = np.asarray(params.means[k], dtype=np.float64)
        return COVARIANCE_MODELS[params.covariance_type].sample(
            rng, mean, params.covariances, k, n)

    def n_components(self, params):
        """Return the number of components."""
        return params.means.shape[0]

    def n_features(self, params):
        """Return the number of features."""
        return params.means.shape[1]

    def fitted_attributes(self, params):
        """scikit-learn's fitted attributes (the estimator fixes their types)."""
        model = COVARIANCE_MODELS[params.covariance_type]
        pc = np.asarray(params.precisions_cholesky, dtype=np.float64)
        return {"means_": params.means, "precisions_cholesky_": pc,
                "precisions_": model.precisions(pc),
                "covariances_": params.covariances,
                "mean_precision_": params.mean_precision}

    def to_fields(self, params):
        """Return the posterior and the priors as named float64 arrays (saving)."""
        pr = params.priors
        return {
            "weight_concentration": params.weight_concentration,
            "mean_precision": params.mean_precision,
            "means": params.means,
            "degrees_of_freedom": np.atleast_1d(params.degrees_of_freedom),
            "covariances": params.covariances,
            "precisions_cholesky": params.precisions_cholesky,
            "prior_weight_concentration": np.array(
                [pr.weight_concentration_prior]),
            "prior_mean_precision": np.array([pr.mean_precision_prior]),
            "prior_mean": pr.mean_prior,
            "prior_degrees_of_freedom": np.array(
                [pr.degrees_of_freedom_prior]),
            "prior_covariance": np.atleast_1d(pr.covariance_prior),
            "prior_settings": np.array(
                [PRIOR_TYPES.index(pr.prior_type), pr.reg_covar,
                 pr.total_weight, pr.n_rows], dtype=np.float64),
        }

    def from_fields(self, fields):
        """Parameters from :meth:`to_fields`' arrays, validated (names the field)."""
        ct = self.covariance_type
        model = COVARIANCE_MODELS[ct]

        def get(name, shape=None):
            a = np.asarray(fields[name], dtype=np.float64)
            if shape is not None and a.shape != tuple(shape):
                raise ValueError(f"field {name!r} has shape {a.shape}, "
                                 f"expected {tuple(shape)}.")
            if not np.all(np.isfinite(a)):
                raise ValueError(f"field {name!r} has NaN or infinite "
                                 "values.")
            return a

        means = get("means")
        if means.ndim != 2:
            raise ValueError(f"field 'means' must be 2-D (n_components, "
                             f"n_features), got shape {means.shape}.")
        K, D = means.shape
        settings = get("prior_settings", (4,))
        code = int(settings[0])
        if code not in (0, 1) or code != settings[0]:
            raise ValueError("field 'prior_settings' names no prior type "
                             f"(its first entry is {settings[0]}).")
        prior_type = PRIOR_TYPES[code]
        cshape = model.shape(K, D)
        pshape = {"full": (D, D), "tied": (D, D), "diag": (D,),
                  "spherical": (1,)}[ct]
        cp = get("prior_covariance", pshape)
        pr = Priors(ct, prior_type, K,
                    float(get("prior_weight_concentration", (1,))[0]),
                    float(get("prior_mean_precision", (1,))[0]),
                    get("prior_mean", (D,)),
                    float(get("prior_degrees_of_freedom", (1,))[0]),
                    float(cp[0]) if ct == "spherical" else cp,
                    float(settings[1]), float(settings[2]), int(settings[3]))
        wc = get("weight_concentration",
                 (2, K) if prior_type == "dirichlet_process" else (K,))
        beta = get("mean_precision", (K,))
        nu = get("degrees_of_freedom", (1,) if ct == "tied" else (K,))
        cov = get("covariances", cshape)
        pc = get("precisions_cholesky", cshape)
        if (wc <= 0).any() or (beta <= 0).any() or (nu <= D - 1).any():
            raise ValueError(
                "fields 'weight_concentration' and 'mean_precision' must be "
                f"positive and 'degrees_of_freedom' greater than {D - 1}.")
        return BayesianParams(wc, beta, means, nu, cov, pc, pr)


def _missing(params, X, w, want_stats, lse=None, resp=None, label=None):
    """Run the variational E-step on rows with missing entries.

    With ``q(z, x_m) = q(z) q(x_m | z)`` (the missing entries' posterior
    given the component), the optimal ``q(x_m | k)`` is the Gaussian
    conditional under scikit-learn's ``covariances_`` and

        log rho_ik = c_k + log N(x_o | m_ko, covariances_k[o, o])

    with the same per-component shift ``c_k = E[log pi_k] + (log Lambda~_k
    - D log nu_k - D / beta_k) / 2`` as complete rows: the plug-in
    missing-data pass (:mod:`fastem.kernels.missing`) with weights
    ``exp(c_k)``.  Its statistics are the expected sufficient statistics
    under ``q(x_m | k)``, which the M-step and the lower bound take as
    they are (the bound then includes the entropy of ``q(x_m | z)``).
    """
    from types import SimpleNamespace

    from fastem.kernels.missing import MissingPlan, missing_pass

    _, means, _, logconst = params.kernel_args()
    K, D = means.shape
    pc = np.asarray(params.precisions_cholesky, dtype=np.float64)
    _, logdet = COVARIANCE_MODELS[params.covariance_type].kernel_prec(pc, K, D)
    shift = logconst - logdet + 0.5 * D * _LOG_2PI
    top = float(shift.max())
    proxy = SimpleNamespace(weights=np.exp(shift - top), means=means,
                            covariances=params.covariances,
                            precisions_cholesky=pc,
                            covariance_type=params.covariance_type)
    stats = missing_pass(X, w, MissingPlan(X), proxy, want_stats, lse, resp,
                         label)
    if lse is not None:
        lse += top
    if stats is not None:
        stats.loglik += top * stats.weight_sum
    return stats


def entropy_term(stats):
    """``sum_ik w_i r_ik log r_ik`` from the statistics of a variational pass.

    ``sum_k [nk_k c_k - 0.5 tr(P_k S_k)] - sum_i w_i lse_i`` with the
    E-step's constants ``c_k``, precisions ``P_k`` and the scatter ``S_k``
    about its means.

    Parameters
    ----------
    stats : VariationalStats

    Returns
    -------
    float
    """
    p = stats.estep
    g = stats.gauss
    _, means, _, logconst = p.kernel_args()
    if not np.array_equal(g.ref, means):
        g = g.shift(means)
    model = COVARIANCE_MODELS[p.covariance_type]
    prec = model.precisions(np.asarray(p.precisions_cholesky,
                                       dtype=np.float64))
    if p.covariance_type == "spherical":
        quad = np.sum(prec * g.scatter.sum(axis=1))
    else:
        quad = np.sum(prec * g.scatter)
    return float(np.dot(g.nk, logconst) - 0.5 * quad - g.loglik)


def log_det_cholesky(pc, covariance_type, n_features):
    """``log |U|`` per component (scikit-learn's ``_compute_log_det_cholesky``)."""
    if covariance_type == "full":
        return np.log(np.diagonal(pc, axis1=1, axis2=2)).sum(axis=1)
    if covariance_type == "tied":
        return np.log(np.diag(pc)).sum()
    if covariance_type == "diag":
        return np.log(pc).sum(axis=1)
    return n_features * np.log(pc)


def log_wishart_norm(nu, log_det_chol, n_features):
    """scikit-learn's ``_log_wishart_norm`` (without the log(pi) term)."""
    nu = np.asarray(nu, dtype=np.float64)
    g = gammaln(0.5 * (nu[..., None] - np.arange(n_features))).sum(axis=-1)
    return -(nu * log_det_chol + nu * n_features * 0.5 * _LOG_2 + g)


def lower_bound_terms(params):
    """Return the lower bound's terms that depend on the parameters only.

    ``- log_wishart - log_norm_weight - D/2 sum log beta`` of scikit-learn's
    ``_compute_lower_bound``.

    Parameters
    ----------
    params : BayesianParams

    Returns
    -------
    float
    """
    pr = params.priors
    ct = pr.covariance_type
    K, D = params.means.shape
    nu = np.asarray(params.degrees_of_freedom, dtype=np.float64)
    ldc = log_det_cholesky(np.asarray(params.precisions_cholesky), ct, D)
    if ct == "tied":
        nu = nu[0]
        log_wishart = K * float(log_wishart_norm(nu, ldc - 0.5 * D * np.log(nu),
                                                 D))
    else:
        log_wishart = float(np.sum(log_wishart_norm(
            nu, ldc - 0.5 * D * np.log(nu), D)))
    wc = params.weight_concentration
    if pr.prior_type == "dirichlet_process":
        log_norm_weight = -float(np.sum(betaln(wc[0], wc[1])))
    else:
        log_norm_weight = float(gammaln(np.sum(wc)) - np.sum(gammaln(wc)))
    return (-log_wishart - log_norm_weight
            - 0.5 * D * float(np.sum(np.log(params.mean_precision))))
