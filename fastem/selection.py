"""Model selection: the number of components and the covariance structure.

:func:`select` fits a grid of :class:`~fastem.GaussianMixture` models and
ranks them by BIC, AIC or ICL, as mclust's ``Mclust`` does in R, or by a
K-fold cross-validated held-out log-likelihood.
"""

import numbers
import threading
import warnings
from time import perf_counter

import numpy as np

from fastem import _config
from fastem._validation import check_array

__all__ = ["CRITERIA", "SelectionResult", "cv_folds", "from_standardized",
           "n_parameters", "select"]

CRITERIA = ("bic", "aic", "icl", "cv")
_ALL_TYPES = ("full", "tied", "diag", "spherical")
# every covariance type GaussianMixture takes: those four and mclust's
# fourteen models (covariance_types="mclust" names the fourteen)
_MCLUST_TYPES = ("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE",
                 "EVE", "VVE", "EEV", "VEV", "EVV", "VVV")
_VALID_TYPES = _ALL_TYPES + _MCLUST_TYPES

# Rows per block when computing the entropy of the responsibilities: at most
# this many float64 values (8 MB) of responsibilities exist at once.
_ENTROPY_BLOCK_VALUES = 1 << 20

# Where the warnings of the fit running in the current thread go.
_SINK = threading.local()

_FIELDS = ("n_components", "covariance_type", "criterion", "bic", "aic", "icl",
           "cv", "log_likelihood", "cv_loglik", "entropy", "n_parameters",
           "converged", "n_iter", "degenerate", "fit_time", "error",
           "cv_error", "warnings", "effective_components")

#: mclust's words for its models (``mclustModelNames``), by mclust name.
MCLUST_DESCRIPTIONS = {
    "EII": "spherical, equal volume",
    "VII": "spherical, varying volume",
    "EEI": "diagonal, equal volume and shape",
    "VEI": "diagonal, equal shape",
    "EVI": "diagonal, equal volume, varying shape",
    "VVI": "diagonal, varying volume and shape",
    "EEE": "ellipsoidal, equal volume, shape and orientation",
    "VEE": "ellipsoidal, equal shape and orientation",
    "EVE": "ellipsoidal, equal volume and orientation",
    "VVE": "ellipsoidal, equal orientation",
    "EEV": "ellipsoidal, equal volume and shape",
    "VEV": "ellipsoidal, equal shape",
    "EVV": "ellipsoidal, equal volume",
    "VVV": "ellipsoidal, varying volume, shape, and orientation",
}

# scikit-learn's names for four of them
_MCLUST_NAME = {"full": "VVV", "tied": "EEE", "diag": "VVI",
                "spherical": "VII"}

BIC_SIGNS = ("fastem", "mclust")

# select()'s defaults for GaussianMixture where they differ from the
# estimator's: mclust's hierarchical start, mclust's stopping rule (a
# relative change of 1e-5 of the total log-likelihood) and room to get there
# (mclust has no iteration limit; at 100, a third of the fits of its 14
# models on Old Faithful stopped short).
_MCLUST_DEFAULTS = {"init_params": "hc", "tol": 1e-5, "tol_rule": "relative",
                    "max_iter": 1000}

#: A component whose weight exceeds this counts as effective (the
#: ``effective_components`` of :func:`select`'s results): a variational fit
#: (:class:`~fastem.BayesianGaussianMixture`) leaves the components the data
#: does not need with weights near ``weight_concentration_prior / n``.
EFFECTIVE_WEIGHT = 0.01


def n_parameters(n_components, n_features, covariance_type):
    """Return the number of free parameters of a Gaussian mixture.

    Parameters
    ----------
    n_components : int
    n_features : int
    covariance_type : str
        scikit-learn's ``'full'``, ``'tied'``, ``'diag'``, ``'spherical'``
        or one of mclust's fourteen models (``'EII'`` ... ``'VVV'``).

    Returns
    -------
    int
        ``K - 1`` weights, ``K * D`` means and the covariance parameters:
        ``K D (D + 1) / 2`` (full), ``D (D + 1) / 2`` (tied), ``K D`` (diag),
        ``K`` (spherical), the count scikit-learn's ``bic`` uses; for
        mclust's models mclust's ``nVarParams`` (EII 1, VII ``K``, EEI
        ``D``, VEI ``K + D - 1``, EVI ``1 + K (D - 1)``, VVI ``K D``, EEE
        ``D (D + 1) / 2``, VEE ``K + D - 1 + D (D - 1) / 2``, EVE ``1 +
        K (D - 1) + D (D - 1) / 2``, VVE ``K D + D (D - 1) / 2``, EEV ``D +
        K D (D - 1) / 2``, VEV ``K + D - 1 + K D (D - 1) / 2``, EVV ``1 +
        K (D - 1) + K D (D - 1) / 2``, VVV ``K D (D + 1) / 2``), so that
        ``bic`` is minus mclust's BIC.
    """
    from fastem.families.gaussian import n_covariance_parameters

    K, D = int(n_components), int(n_features)
    return n_covariance_parameters(covariance_type, K, D) + K * D + K - 1


def loglik_and_entropy(model, X):
    """Total log-likelihood of ``X`` and entropy of the responsibilities.

    The responsibilities are computed block by block (at most about a
    million values at a time), so no ``n_samples x n_components`` array is
    kept whatever the size of ``X``.

    Parameters
    ----------
    model : GaussianMixture
        A fitted model.
    X : array-like of shape (n_samples, n_features)

    Returns
    -------
    log_likelihood : float
        ``sum_i log p(x_i)``.
    entropy : float
        ``-sum_i sum_k r_ik log r_ik`` (0 when every point belongs to one
        component with certainty; at most ``n_samples * log(K)``).
    """
    X = check_array(X, n_features=model.n_features_in_,
                    allow_nan=model._allow_nan() if hasattr(
                        model, "_allow_nan") else getattr(
                        model, "nan_policy", "raise") == "marginalize")
    N = X.shape[0]
    K = model.weights_.shape[0]
    step = max(_config.MIN_CHUNK_ROWS, _ENTROPY_BLOCK_VALUES // K)
    ll = 0.0
    ent = 0.0
    with _config.threads(getattr(model, "n_threads", None)):
        for start in range(0, N, step):
            # the model's public per-row outputs (float64 parameters, and
            # the missing-data pass where X has NaN): two passes per block
            Xb = X[start:start + step]
            if hasattr(model, "_outputs") and not np.isnan(Xb).any():
                # fastem's mixtures: both from one pass over the block
                lse, resp, _ = model._outputs(Xb, lse=True, resp=True)
            else:
                lse = _no_name_warning(model.score_samples, Xb)
                resp = _no_name_warning(model.predict_proba, Xb)
            ll += float(lse.sum(dtype=np.float64))
            logr = np.log(resp, out=np.zeros_like(resp), where=resp > 0)
            ent -= float(np.einsum("ik,ik->", resp, logr))
    return ll, ent


def _loglik(model, X):
    """Total log-likelihood of ``X`` (validated), in blocks of rows."""
    step = max(_config.MIN_CHUNK_ROWS, _ENTROPY_BLOCK_VALUES)
    ll = 0.0
    for start in range(0, X.shape[0], step):
        lse = _no_name_warning(model.score_samples, X[start:start + step])
        ll += float(lse.sum(dtype=np.float64))
    return ll


def _no_name_warning(method, X):
    """``method(X)`` on a plain array, silencing the feature-names warning.

    :func:`select` validates a DataFrame once into an array and then gives
    the fitted models the names; the per-block calls carry no names.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "X does not have valid feature names")
        return np.asarray(method(X), dtype=np.float64)


def cv_folds(n_samples, cv, random_state=None):
    """Test rows of each fold of a K-fold split (the split :func:`select` uses).

    Parameters
    ----------
    n_samples : int
    cv : int
        Number of folds, ``2 <= cv <= n_samples``.
    random_state : int, RandomState, Generator or None
        Seeds the permutation of the rows.

    Returns
    -------
    list of ndarray of int
        ``cv`` sorted arrays of row indices that partition
        ``range(n_samples)``: a seeded permutation of the rows cut into
        ``cv`` parts whose sizes differ by at most one.  Fold ``i`` is fitted
        on every row not in ``folds[i]`` and scored on ``folds[i]``.
    """
    from fastem.models.base import check_random_state

    n_samples, cv = int(n_samples), int(cv)
    if not 2 <= cv <= n_samples:
        raise ValueError(f"cv must be an int with 2 <= cv <= n_samples = "
                         f"{n_samples}, got {cv}.")
    perm = check_random_state(random_state).permutation(n_samples)
    return [np.sort(f) for f in np.array_split(perm, cv)]


def from_standardized(model, mean, scale):
    """Return in original units a model fitted on ``(X - mean) / scale``.

    Builds a new fitted :class:`~fastem.GaussianMixture` (via its
    ``import_state``) whose density is that of ``model`` mapped back to the
    original units: means ``means * scale + mean``, covariances
    ``cov * outer(scale, scale)`` (``'full'``, ``'tied'``) or
    ``cov * scale**2`` (``'diag'``), precisions and their Cholesky factors
    accordingly.  So ``new.predict(X) == model.predict((X - mean) / scale)``
    and ``new.score_samples(X) == model.score_samples((X - mean) / scale)
    - sum(log(scale))`` (the Jacobian; over the observed entries of a row
    with NaN).

    Parameters
    ----------
    model : GaussianMixture
        A model fitted on standardized data.
    mean : array-like of shape (n_features,)
    scale : array-like of shape (n_features,)
        Positive.

    Returns
    -------
    GaussianMixture
        A new model with the same parameters (``get_params``) and fit
        diagnostics (``converged_``, ``n_iter_``, ``degenerate_components_``,
        ``feature_names_in_``, ...); ``lower_bound_`` and ``lower_bounds_``
        are shifted by ``-sum(log(scale))``.  Refitting it fits the data it
        is given, unstandardized.

    Raises
    ------
    ValueError
        For a ``'spherical'`` model unless every ``scale`` is equal (a
        spherical covariance in standardized units is not spherical in the
        original units).
    """
    from fastem.models.mixture import GaussianMixture

    st = model.export_state()  # raises NotFittedError when not fitted
    p = st["params"]
    ct = st["covariance_type"]
    D = p["means"].shape[1]
    mean = np.asarray(mean, dtype=np.float64).reshape(-1)
    scale = np.asarray(scale, dtype=np.float64).reshape(-1)
    if mean.shape != (D,) or scale.shape != (D,):
        raise ValueError(f"mean and scale must have shape ({D},), got "
                         f"{mean.shape} and {scale.shape}.")
    if not (np.all(scale > 0) and np.all(np.isfinite(scale))
            and np.all(np.isfinite(mean))):
        raise ValueError("scale must be positive and finite, mean finite.")
    cov, pc = p["covariances"], p["precisions_cholesky"]
    from fastem.families.covariances import COVARIANCE_MODELS

    model_ct = COVARIANCE_MODELS[ct]
    code = model_ct.code
    if code == 0 and model_ct.mclust and ct != "VVV":
        raise ValueError(
            f"A {ct} model fitted on standardized data is not {ct} in the "
            "original units: scaling the features changes the eigenvectors, "
            "so common orientations or shapes are not kept. Fit "
            f"covariance_type={ct!r} on the original data, or use "
            "'full' (VVV), 'tied' (EEE) or a diagonal model.")
    if code in (0, 1):
        # U U^T = P  =>  (diag(1/s) U)(diag(1/s) U)^T = diag(1/s) P diag(1/s)
        cov = cov * np.outer(scale, scale)
        pc = pc / scale[:, None]
    elif code == 2:  # every diagonal model keeps its constraints
        cov = cov * scale ** 2
        pc = pc / scale
    else:
        if not np.all(scale == scale[0]):
            raise ValueError(
                f"A spherical ({ct!r}) model fitted on standardized data is "
                "not spherical in the original units (the features' scales "
                "differ); use covariance_type='diag' (or 'full'/'tied').")
        cov = cov * scale[0] ** 2
        pc = pc / scale[0]
    st["params"] = {"weights": p["weights"], "means": p["means"] * scale
                    + mean, "precisions_cholesky": pc, "covariances": cov}
    new = GaussianMixture(**dict(model.get_params(deep=False),
                                 covariance_type=ct))
    for key, value in vars(model).items():
        if key.endswith("_") and not key.startswith("_"):
            setattr(new, key, value.copy() if hasattr(value, "copy")
                    else value)
    new.import_state(st)
    new.set_params(covariance_type=model.covariance_type)
    shift = float(np.sum(np.log(scale)))
    if hasattr(model, "lower_bound_"):
        new.lower_bound_ = type(model.lower_bound_)(model.lower_bound_ - shift)
        new.lower_bounds_ = [b - shift for b in model.lower_bounds_]
    return new


class SelectionResult:
    """Outcome of :func:`select`: every fit, and the best one.

    Attributes
    ----------
    criterion : str
        ``'bic'``, ``'aic'``, ``'icl'`` or ``'cv'`` (lower is better for
        all four).
    results : list of dict
        One row per fitted model, in grid order (covariance types outer,
        numbers of components inner), with keys ``n_components``,
        ``covariance_type``, ``criterion`` (the value of the chosen
        criterion), ``bic``, ``aic``, ``icl``, ``cv`` (``-2 x`` the total
        held-out log-likelihood; NaN unless cross-validation was asked for),
        ``log_likelihood`` (total, with the final parameters),
        ``cv_loglik`` (mean held-out log-likelihood per row, higher is
        better; NaN without cross-validation), ``entropy`` (of the
        responsibilities), ``n_parameters``, ``converged``, ``n_iter``,
        ``fit_time`` (seconds, the fold fits included), ``degenerate`` (a
        component of the all-data fit collapsed, see
        :func:`fastem.stats.degenerate_components`; such fits are not chosen
        unless ``include_degenerate=True``), ``error`` (``None``, or why the
        all-data fit failed; the criteria are then ``inf``), ``cv_error``
        (``None``, or why a fold's fit failed, as ``'fold i/cv: ...'``;
        ``cv`` is then ``inf`` and, with ``criterion='cv'``, the fit is not
        chosen) and ``warnings`` (messages the fits issued; a fold's are
        prefixed ``'fold i/cv: '``), ``effective_components`` (the number of
        components of the all-data fit whose weight exceeds
        :data:`EFFECTIVE_WEIGHT`, 1%: what a
        :class:`~fastem.BayesianGaussianMixture` fit actually uses; None
        for a failed fit).  With ``standardize=True`` every value
        is that of the original-unit data and model.
    models : dict
        ``(n_components, covariance_type) -> fitted GaussianMixture`` for
        every fit that succeeded.
    best_params : dict
        ``{'n_components': K, 'covariance_type': type}`` of the best model.
    best_model : GaussianMixture
        The best fitted model.
    best_score : float
        Its criterion value.
    n_samples, n_features : int
        Shape of the data.
    include_degenerate : bool
        Whether degenerate fits could be chosen.
    cv : int or None
        Number of cross-validation folds (None: no cross-validation).
    cv_folds : list of ndarray or None
        Test rows of each fold (see :func:`cv_folds`), the same for every
        fit of the grid.
    standardize : bool
        Whether the fits ran on standardized features.
    feature_means, feature_scales : ndarray of shape (n_features,) or None
        The centring and scaling used with ``standardize=True``.
    """

    _fields = _FIELDS  # the columns of to_pandas()

    def __init__(self, criterion, results, models, n_samples, n_features,
                 include_degenerate=False, cv=None, cv_folds=None,
                 feature_means=None, feature_scales=None, bic_sign="fastem"):
        if bic_sign not in BIC_SIGNS:
            raise ValueError(f"bic_sign must be one of {list(BIC_SIGNS)}, "
                             f"got {bic_sign!r}.")
        self.bic_sign = bic_sign
        self.best_counts = None
        self.best_hard_entropy = None
        self.criterion = criterion
        self.results = results
        self.models = models
        self.n_samples = n_samples
        self.n_features = n_features
        self.include_degenerate = include_degenerate
        self.cv = cv
        self.cv_folds = cv_folds
        self.standardize = feature_scales is not None
        self.feature_means = feature_means
        self.feature_scales = feature_scales
        ok = [r for r in results if not self._failed(r)]
        if not ok:
            first = next((r.get("error") or r.get("cv_error")
                          for r in results if self._failed(r)), None)
            raise ValueError(f"Every fit failed; first error: {first}")
        if not include_degenerate:
            # As mclust (no BIC for singular fits): a collapsed component's
            # likelihood grows without bound, so it would always win.
            sound = [r for r in ok if not r["degenerate"]]
            if sound:
                ok = sound
            else:
                warnings.warn(
                    "Every fit is degenerate (a component collapsed); the "
                    "best of them is reported. Use fewer components, a "
                    "constrained covariance type or a larger reg_covar.",
                    UserWarning, stacklevel=3)
        # Lowest criterion; ties go to the model with fewer parameters.
        best = min(ok, key=lambda r: (r["criterion"], r["n_parameters"]))
        self.best_params = {"n_components": best["n_components"],
                            "covariance_type": best["covariance_type"]}
        self.best_score = best["criterion"]
        self.best_model = models[(best["n_components"], best["covariance_type"])]

    def _failed(self, r):
        """Whether row ``r`` cannot be chosen (its fit or a fold failed)."""
        return r["error"] is not None or (
            self.criterion == "cv" and r.get("cv_error") is not None)

    @property
    def n_components(self):
        """Sorted numbers of components of the grid."""
        return sorted({r["n_components"] for r in self.results})

    @property
    def covariance_types(self):
        """Covariance types of the grid, in the order given."""
        return list(dict.fromkeys(r["covariance_type"] for r in self.results))

    def criterion_values(self, covariance_type):
        """Criterion per number of components for one covariance type.

        Parameters
        ----------
        covariance_type : str

        Returns
        -------
        n_components : ndarray of int
        values : ndarray of float
            ``inf`` where the fit failed.
        """
        rows = sorted((r for r in self.results
                       if r["covariance_type"] == covariance_type),
                      key=lambda r: r["n_components"])
        return (np.array([r["n_components"] for r in rows], dtype=int),
                np.array([r["criterion"] for r in rows], dtype=float))

    def to_pandas(self):
        """Return the table of every fit as a pandas DataFrame (needs pandas).

        Returns
        -------
        pandas.DataFrame
            One row per fit, the columns of :attr:`results`, sorted by the
            criterion (best first).
        """
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(
                f"{type(self).__name__}.to_pandas needs pandas: pip install "
                "pandas") from None
        df = pd.DataFrame(self.results, columns=list(self._fields))
        return df.sort_values(["criterion", "n_parameters"],
                              kind="stable").reset_index(drop=True)

    def table(self):
        """Readable criterion table: one row per K, one column per type.

        Returns
        -------
        str
            The best value is marked ``*``; values of degenerate fits (a
            collapsed component) are marked ``!``; values of fits that did
            not converge are marked ``~``; failed fits show ``failed``.
        """
        types = self.covariance_types
        by = {(r["n_components"], r["covariance_type"]): r for r in self.results}
        name = self.criterion.upper()
        if self.criterion == "cv":
            name += (f" (-2 x held-out log-likelihood, {self.cv} folds)")
        flip = self.criterion == "bic" and self.bic_sign == "mclust"
        sign = -1.0 if flip else 1.0
        # a family without covariance types (Poisson, ...) has one column
        heads = [name if t is None else t for t in types]
        width = max(12, max(len(h) for h in heads) + 2)
        lines = [f"{name} (mclust's sign: higher is better)" if flip else
                 f"{name} (lower is better)",
                 f"{'K':>4}" + "".join(f"{h:>{width}}" for h in heads)]
        best = (self.best_params["n_components"],
                self.best_params["covariance_type"])
        any_nc = any_deg = False
        for k in self.n_components:
            cells = []
            for t in types:
                r = by.get((k, t))
                if r is None:
                    cells.append(f"{'':>{width}}")
                    continue
                if self._failed(r):
                    cells.append(f"{'failed':>{width - 1}} ")
                    continue
                mark = "*" if (k, t) == best else (
                    "!" if r["degenerate"] else
                    "~" if not r["converged"] else " ")
                any_nc |= not r["converged"] and not r["degenerate"]
                any_deg |= bool(r["degenerate"])
                cells.append(
                    f"{_fmt(sign * r['criterion']):>{width - 1}}{mark}")
            lines.append(f"{k:>4}" + "".join(cells))
        notes = ["* best"]
        if any_deg:
            notes.append("! degenerate (a collapsed component): "
                         + ("may be chosen" if self.include_degenerate
                            else "not chosen"))
        if any_nc:
            notes.append("~ did not converge")
        lines.append("(" + "; ".join(notes) + ")")
        if self.standardize:
            lines.append("(fitted on standardized features; values in the "
                         "original units)")
        for r in self.results:
            if r["error"] is not None:
                lines.append(f"failed K={r['n_components']} "
                             f"{r['covariance_type']}: {r['error']}")
            elif r.get("cv_error") is not None:
                lines.append(f"cv failed K={r['n_components']} "
                             f"{r['covariance_type']}: {r['cv_error']}")
        return "\n".join(lines)

    def _sign(self, sign):
        sign = self.bic_sign if sign is None else sign
        if sign not in BIC_SIGNS:
            raise ValueError(f"sign must be one of {list(BIC_SIGNS)}, got "
                             f"{sign!r}.")
        return -1.0 if sign == "mclust" else 1.0

    def _chosen_rows(self):
        """Return the rows that may be chosen, best first.

        Not failed, and not degenerate unless that is allowed.
        """
        ok = [r for r in self.results if not self._failed(r)
              and (self.include_degenerate or not r["degenerate"])]
        return sorted(ok, key=lambda r: (r["criterion"], r["n_parameters"]))

    def bic_table(self, sign=None):
        """BIC of every fit as a K x model array (mclust's ``mclustBIC``).

        Parameters
        ----------
        sign : {'fastem', 'mclust'}, optional
            ``'fastem'``: ``-2 log L + p log n``, lower is better
            (scikit-learn's); ``'mclust'``: ``2 log L - p log n``, higher is
            better (mclust's).  Default: the ``bic_sign`` given to
            :func:`select`.

        Returns
        -------
        n_components : list of int
            The rows.
        covariance_types : list of str
            The columns, in the order given to :func:`select`.
        values : ndarray of shape (n_rows, n_columns)
            NaN where the fit failed or is degenerate (and
            ``include_degenerate`` is False), or was not in the grid: mclust
            reports ``NA`` there.
        """
        f = self._sign(sign)
        ks, types = self.n_components, self.covariance_types
        out = np.full((len(ks), len(types)), np.nan)
        for r in self.results:
            if self._failed(r) or (r["degenerate"]
                                   and not self.include_degenerate):
                continue
            out[ks.index(r["n_components"]),
                types.index(r["covariance_type"])] = f * r["bic"]
        return ks, types, out

    def top_models(self, n=3, sign=None):
        """Return the ``n`` best fits, best first (mclust's "top 3 models").

        Ranked by the selection criterion (ties: fewer parameters first).

        Parameters
        ----------
        n : int, default=3
        sign : {'fastem', 'mclust'}, optional
            Sign of the ``bic`` values returned (see :meth:`bic_table`).

        Returns
        -------
        list of dict
            ``{'covariance_type', 'n_components', 'criterion', 'bic',
            'label'}`` with ``label`` as mclust prints it (``'EEE,3'``).
        """
        f = self._sign(sign)
        return [{"covariance_type": r["covariance_type"],
                 "n_components": r["n_components"],
                 "criterion": r["criterion"], "bic": f * r["bic"],
                 "label": f"{r['covariance_type']},{r['n_components']}"}
                for r in self._chosen_rows()[:int(n)]]

    def summary(self):
        """Return a summary a mclust user recognizes.

        The best three models with their BIC and the difference to the
        best (``summary(mclustBIC)``), then the chosen model as
        ``summary(Mclust(...))`` prints it: its name and mclust's
        description, log-likelihood, ``n``, ``df`` (free parameters), BIC,
        ICL (mclust's: BIC plus twice the log of each row's largest
        responsibility, summed) and the clustering table (rows per
        component by largest responsibility).  Values in the result's
        ``bic_sign``.

        Returns
        -------
        str
        """
        f = self._sign(None)
        top = self._chosen_rows()[:3]
        name = self.criterion.upper()
        head = (f"Best {name} values"
                + (" (mclust's sign: higher is better):"
                   if f < 0 and self.criterion == "bic"
                   else " (lower is better):"))
        vals = [(f if self.criterion == "bic" else 1.0) * r["criterion"]
                for r in top]
        labels = [f"{r['covariance_type']},{r['n_components']}" for r in top]
        w = max(11, max(len(lb) for lb in labels) + 2)
        lines = [head, " " * 9 + "".join(f"{lb:>{w}}" for lb in labels),
                 f"{name:<9}" + "".join(f"{_fmt3(v):>{w}}" for v in vals),
                 f"{name + ' diff':<9}" + "".join(
                     f"{_fmt3(v - vals[0]):>{w}}" for v in vals), ""]
        best = top[0] if top else None
        if best is None:
            return "\n".join(lines)
        t, K = best["covariance_type"], best["n_components"]
        mname = t if t is None else _MCLUST_NAME.get(t, t)
        desc = MCLUST_DESCRIPTIONS.get(mname)
        title = "Gaussian finite mixture model fitted by EM algorithm"
        lines += ["-" * len(title), title, "-" * len(title), ""]
        what = f"{t}" + (f" ({desc})" if desc else "") \
            + (f" [mclust {mname}]" if mname != t else "")
        lines.append(f"fastem {what} model with {K} component"
                     f"{'s' if K != 1 else ''}:" if t is not None else
                     f"fastem model with {K} component"
                     f"{'s' if K != 1 else ''}:")
        lines.append("")
        bic = f * best["bic"]
        cols = ["log-likelihood", "n", "df", "BIC"]
        cells = [_fmt3(best["log_likelihood"]), str(self.n_samples),
                 str(best["n_parameters"]), _fmt3(bic)]
        if self.best_hard_entropy is not None:
            cols.append("ICL")
            # mclust: ICL = BIC + 2 sum_i log max_k r_ik (its sign), i.e.
            # fastem's BIC + 2 x the hard assignments' entropy
            cells.append(_fmt3(f * (best["bic"]
                                    + 2.0 * self.best_hard_entropy)))
        ws = [max(len(c), len(v)) + 1 for c, v in zip(cols, cells)]
        lines.append("".join(f"{c:>{w}}" for c, w in zip(cols, ws)))
        lines.append("".join(f"{v:>{w}}" for v, w in zip(cells, ws)))
        if self.best_counts is not None:
            counts = [str(int(c)) for c in self.best_counts]
            ws = [max(len(str(k + 1)), len(c)) + 1
                  for k, c in enumerate(counts)]
            lines += ["", "Clustering table:",
                      "".join(f"{k + 1:>{w}}" for k, w in enumerate(ws)),
                      "".join(f"{c:>{w}}" for c, w in zip(counts, ws))]
        return "\n".join(lines)

    def plot(self, ax=None):
        """Criterion curves (see :func:`fastem.plot.criterion`).

        Parameters
        ----------
        ax : matplotlib Axes, optional

        Returns
        -------
        matplotlib Axes
        """
        from fastem.plot import criterion

        return criterion(self, ax=ax)

    def __repr__(self):
        return (f"SelectionResult(criterion={self.criterion!r}, "
                f"best_params={self.best_params}, "
                f"best_score={self.best_score:.6g}, n_fits={len(self.results)})")

    def __str__(self):
        return self.table()


def _fmt(v):
    return f"{v:.2f}" if abs(v) < 1e9 else f"{v:.6g}"


def _fmt3(v):
    return f"{v:.3f}" if abs(v) < 1e9 else f"{v:.6g}"


def _as_components(n_components):
    if isinstance(n_components, numbers.Integral) and not isinstance(
            n_components, bool):
        ks = [int(n_components)]
    else:
        try:
            ks = [int(k) for k in n_components]
        except TypeError:
            raise TypeError(
                "n_components must be an int or an iterable of ints, got "
                f"{n_components!r}.") from None
    if not ks:
        raise ValueError("n_components is empty: give at least one number of "
                         "components.")
    bad = [k for k in ks if k < 1]
    if bad:
        raise ValueError(f"n_components must be >= 1, got {bad}.")
    return list(dict.fromkeys(ks))


def _as_types(covariance_types, standardize=False):
    if isinstance(covariance_types, str):
        covariance_types = {"all": _ALL_TYPES, "mclust": _MCLUST_TYPES}.get(
            covariance_types, (covariance_types,))
    types = list(dict.fromkeys(covariance_types))
    bad = [t for t in types if t not in _VALID_TYPES]
    if bad or not types:
        raise ValueError(
            f"covariance_types must be a subset of {list(_VALID_TYPES)} (or "
            f"'all': scikit-learn's four; 'mclust': mclust's fourteen), got "
            f"{list(covariance_types)!r}.")
    mclust = [t for t in types if t not in _ALL_TYPES]
    if standardize and mclust:
        raise ValueError(
            f"standardize=True maps fits back to the original units for "
            f"{list(_ALL_TYPES)} only, got {mclust}: mclust's constrained "
            "models are not preserved by scaling the features. Use "
            "standardize=False (or 'full', 'tied', 'diag' for VVV, EEE, "
            "VVI).")
    return types


def _seed(random_state):
    """One int seed for every fit, so each fit equals a standalone fit."""
    if random_state is None or (isinstance(random_state, numbers.Integral)
                                and not isinstance(random_state, bool)):
        return random_state
    from fastem.models.base import check_random_state

    return int(check_random_state(random_state).randint(2 ** 31 - 1))


def select(X, n_components=range(1, 10), covariance_types=None,
           criterion="bic", n_init=1, random_state=None, n_jobs=None,
           progress=None, include_degenerate=False, cv=None,
           standardize=False, estimator=None, bic_sign="fastem", **kwargs):
    """Fit a grid of Gaussian mixtures and pick the best by BIC, AIC, ICL or CV.

    Every combination of ``n_components`` and ``covariance_types`` is fitted
    with :class:`~fastem.GaussianMixture` on the same validated copy of
    ``X``.  BIC, AIC and ICL are computed for every fit (one extra pass
    over ``X`` per fit, with the final parameters), the cross-validated
    criterion when asked for; ``criterion`` decides the winner.  All are
    "lower is better":

    * ``bic = -2 log L + p log n``
    * ``aic = -2 log L + 2 p``
    * ``icl = bic + 2 E``, where ``E = -sum_i sum_k r_ik log r_ik`` is the
      entropy of the responsibilities (Biernacki, Celeux & Govaert, 2000):
      BIC penalized for overlapping components, so ICL favours
      well-separated clusters.  The responsibilities are computed in blocks
      of rows (at most about a million values at a time): no
      ``n_samples x n_components`` array is kept.  (mclust's ``icl`` uses
      the hard assignments' log-posteriors instead of the soft entropy, and
      the opposite sign convention.)
    * ``cv = -2 sum_folds log L_test``: K-fold cross-validation.  The rows
      are permuted with ``random_state`` and cut into ``cv`` folds (see
      :func:`cv_folds`; the same folds for every point of the grid); for
      each fold a model with the same parameters and seed is fitted on the
      other rows and the log-likelihood of the fold's rows is taken under
      it.  ``cv`` is on the scale of ``bic`` and ``aic`` (``-2 x`` a
      log-likelihood of ``n`` rows) but needs no penalty: the likelihood is
      of rows the model did not see.  ``cv_loglik`` is the same total per
      row (higher is better).  It costs ``cv`` extra fits per grid point,
      so it is computed only with ``criterion='cv'`` or an explicit ``cv``.

    ``log L`` is the log-likelihood of ``X`` under the final parameters and
    ``p`` is :func:`n_parameters`, the values ``GaussianMixture.bic`` and
    ``.aic`` use.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        A pandas DataFrame's column names are kept: every returned model
        has ``feature_names_in_`` and predicts on the DataFrame without a
        warning.
    n_components : int or iterable of int, default=range(1, 10)
        Numbers of components to try.
    covariance_types : str or sequence of str, optional
        Among ``'full'``, ``'tied'``, ``'diag'``, ``'spherical'`` and
        mclust's fourteen models ``'EII'`` ... ``'VVV'`` (see
        :class:`~fastem.GaussianMixture`); ``'all'`` means scikit-learn's
        four, ``'mclust'`` mclust's fourteen.  Default: scikit-learn's four,
        or ``'full'``, ``'tied'``, ``'diag'`` with ``standardize=True``
        (which takes scikit-learn's names only).
    criterion : {'bic', 'aic', 'icl', 'cv'}, default='bic'
    n_init : int, default=1
        Initializations per fit (the best is kept).
    random_state : int, RandomState, Generator or None, default=None
        Every fit uses the same seed (a RandomState or Generator is turned
        into one int seed first), so the model chosen is the one
        ``GaussianMixture(K, covariance_type=..., random_state=seed)`` gives
        on its own.  The same seed permutes the rows into the
        cross-validation folds.
    n_jobs : int or None, default=None
        Fits to run at the same time (Python threads; the kernels release
        the GIL), each on ``n_threads // n_jobs`` kernel threads.  None
        means one fit per thread, each single-threaded: independent fits
        need no synchronization, which measured 5-30x faster in wall time
        than one fit at a time on two kernel threads (2-core machine, 24
        fits of 2,000 to 100,000 rows, other jobs running).  The fold fits
        of cross-validation are scheduled like the others.  Results do not
        depend on it.
    progress : callable, optional
        Called as ``progress(row, done, total)`` each time a grid point is
        complete (its fit, and its fold fits with cross-validation), with
        the point's row of :attr:`SelectionResult.results`.
    include_degenerate : bool, default=False
        Let a degenerate fit (a component collapsed onto a few identical
        rows, or a near-singular covariance; see
        :func:`fastem.stats.degenerate_components`) be chosen.  By default,
        as in mclust, such fits are listed (marked ``degenerate``) but not
        chosen: their likelihood is unbounded, so they would win any
        criterion.
    cv : int or None, default=None
        Number of cross-validation folds (``2 <= cv <= n_samples``).  None
        means 5 with ``criterion='cv'`` and no cross-validation otherwise;
        an int with another criterion also fills the ``cv`` and
        ``cv_loglik`` columns without using them to choose.
    standardize : bool, default=False
        Fit on features centred and scaled to mean 0 and standard deviation
        1 (``nanmean``/``nanstd``, so NaN entries, with
        ``nan_policy='marginalize'``, are ignored; a constant column is only
        centred), then report everything in the original units: every
        returned model is converted with :func:`from_standardized` (it
        predicts on original-unit ``X`` directly) and the criteria are
        those of the original data, whose log-likelihood differs from the
        standardized one by the Jacobian ``-n sum(log scale)``, a constant
        per data set that does not change the ranking.  ``reg_covar``
        applies in standardized units.  The cross-validation folds share
        the all-data mean and scale.  A spherical covariance in
        standardized units is not spherical in the original ones, so
        ``'spherical'`` is refused with ``standardize=True`` (use
        ``'diag'``).
    bic_sign : {'fastem', 'mclust'}, default='fastem'
        How :meth:`SelectionResult.table`, :meth:`~SelectionResult.summary`,
        :meth:`~SelectionResult.bic_table` and
        :meth:`~SelectionResult.top_models` show BIC: ``'fastem'``
        (scikit-learn's ``-2 log L + p log n``, lower is better) or
        ``'mclust'`` (``2 log L - p log n``, higher is better, as R's mclust
        prints it).  The ``bic`` and ``criterion`` values in
        :attr:`~SelectionResult.results` keep fastem's sign either way.
    estimator : unfitted mixture estimator, optional
        The model to select over (default :class:`~fastem.GaussianMixture`),
        for example ``fastem.PoissonMixture(reg_rate=1e-4)`` or
        ``fastem.BayesianGaussianMixture()`` (each row then reports its
        ``effective_components``; its criteria use the variational
        ``score_samples``, as scikit-learn's ``score`` does): each fit is
        a copy with its parameters, ``n_components`` from the grid and the
        ``n_init`` and ``random_state`` given here.  Without a
        ``covariance_type`` parameter the grid is over ``n_components``
        only (``covariance_types`` must then be None, and the results'
        ``covariance_type`` is None) and ``n_parameters`` is the fitted
        model's :meth:`n_parameters`.  ``standardize`` needs a Gaussian
        mixture.
    **kwargs
        Other :class:`~fastem.GaussianMixture` parameters (``tol``,
        ``max_iter``, ``reg_covar``, ``init_params``, ``nan_policy``,
        ``n_threads``, ...).  For :class:`~fastem.GaussianMixture` two
        defaults differ from the estimator's (where neither ``kwargs`` nor
        ``estimator`` sets them), so that the search finds mclust's
        answers: ``init_params='hc'``, mclust's start (one hierarchical tree,
        built once on a random subset of 2,000 rows when there are more,
        the same subset for every fit, cut at each ``K``), mclust's stopping
        rule (``tol=1e-5, tol_rule='relative'``: a relative change of 1e-5
        of the total log-likelihood) and ``max_iter=1000`` (mclust has no
        limit).  Pass ``init_params='kmeans', tol=1e-3,
        tol_rule='absolute', max_iter=100`` for scikit-learn's.

    Returns
    -------
    SelectionResult
        ``.results`` (every fit), ``.to_pandas()``, ``.best_params``,
        ``.best_model`` (fitted on all the data), ``.best_score``,
        ``.models``, ``.table()``, ``.cv_folds``.

    Notes
    -----
    A fit that raises (for instance more components than rows, or a
    collapsed component) is recorded with its error and infinite criteria
    instead of stopping the search; so is a fold's fit (for instance more
    components than rows in the training part), in ``cv_error`` with an
    infinite ``cv``.  Warnings issued by the fits (convergence, emptied
    components) are recorded in each row's ``warnings`` rather than shown.

    Examples
    --------
    >>> import fastem
    >>> res = fastem.select(X, n_components=range(1, 6))  # doctest: +SKIP
    >>> res.best_params                                  # doctest: +SKIP
    {'n_components': 3, 'covariance_type': 'full'}
    >>> res.to_pandas().head()                           # doctest: +SKIP
    >>> res = fastem.select(X, range(1, 6), criterion="cv", cv=5,
    ...                     standardize=True)            # doctest: +SKIP
    """
    from fastem.models.mixture import GaussianMixture, _feature_names

    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {list(CRITERIA)}, got "
                         f"{criterion!r}.")
    if cv is None and criterion == "cv":
        cv = 5
    if cv is not None and (isinstance(cv, bool) or not isinstance(
            cv, numbers.Integral) or cv < 2):
        raise ValueError(f"cv must be an int >= 2 (the number of folds) or "
                         f"None, got {cv!r}.")
    ks = _as_components(n_components)
    if estimator is None:
        estimator = GaussianMixture()
    elif isinstance(estimator, type) or not hasattr(estimator, "get_params"):
        raise TypeError(f"estimator must be an unfitted estimator instance "
                        f"such as fastem.PoissonMixture(), got {estimator!r}.")
    typed = "covariance_type" in estimator.get_params()
    if not typed:
        if covariance_types is not None:
            raise ValueError(
                f"{type(estimator).__name__} has no covariance_type; leave "
                "covariance_types as None.")
        if standardize:
            raise ValueError(
                f"standardize=True is for Gaussian mixtures; "
                f"{type(estimator).__name__} models the data's own values.")
        covariance_types = (None,)
    elif covariance_types is None:
        covariance_types = (("full", "tied", "diag") if standardize
                            else _ALL_TYPES)
    types = _as_types(covariance_types, standardize) if typed else [None]
    if standardize and "weight_concentration_prior_type" in \
            estimator.get_params():
        raise ValueError(
            "standardize=True maps GaussianMixture fits back to the original "
            f"units; {type(estimator).__name__}'s priors and lower bound "
            "would not follow. Standardize X yourself, or use "
            "standardize=False.")
    if standardize and "spherical" in types:
        raise ValueError(
            "standardize=True cannot report a 'spherical' model in the "
            "original units: a spherical covariance of standardized features "
            "is not spherical once the features are scaled back (their "
            "standard deviations differ). Use 'diag' instead, or "
            "standardize=False.")
    for key in ("n_components", "covariance_type", "random_state", "n_init",
                "warm_start"):
        if key in kwargs:
            raise TypeError(f"select() got an unexpected keyword argument "
                            f"{key!r}.")
    if bic_sign not in BIC_SIGNS:
        raise ValueError(f"bic_sign must be one of {list(BIC_SIGNS)}, got "
                         f"{bic_sign!r}.")
    if type(estimator) is GaussianMixture:
        # mclust's start and (about) its stopping rule, unless given
        params = estimator.get_params()
        defaults = GaussianMixture().get_params()
        for key, value in _MCLUST_DEFAULTS.items():
            if key not in kwargs and params[key] == defaults[key]:
                kwargs[key] = value
    seed = _seed(random_state)
    if seed is None and kwargs.get("init_params") == "hc":
        # one subset (hence one tree) for the whole grid, as mclust
        seed = int(np.random.randint(2 ** 31 - 1))
    names = _feature_names(X)
    # NaN: GaussianMixture with nan_policy='marginalize'; the count and
    # category mixtures always (they leave missing entries out)
    family_nan = type(estimator)(**dict(estimator.get_params(deep=False),
                                        **kwargs))._allow_nan() \
        if hasattr(estimator, "_allow_nan") else False
    X = check_array(X, estimator="select", min_samples=2,
                    allow_nan=family_nan
                    or kwargs.get("nan_policy") == "marginalize")
    N, D = X.shape
    folds = None
    if cv is not None:
        if cv > N:
            raise ValueError(f"cv={cv} folds need at least {cv} rows; X has "
                             f"{N}.")
        cv = int(cv)
        folds = cv_folds(N, cv, seed)
    n_threads = kwargs.pop("n_threads", None)
    total_threads = (_config.validate_threads(n_threads)
                     or _config.get_num_threads())
    # One task per fit: the all-data fit (fold None) and each fold's.
    fold_ids = [None] + (list(range(cv)) if cv is not None else [])
    grid = [(k, t) for t in types for k in ks]
    tasks = [(k, t, f) for k, t in grid for f in fold_ids]
    if n_jobs is None:
        n_jobs = total_threads
    elif isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) \
            or n_jobs < 1:
        raise ValueError(f"n_jobs must be a positive int or None, got "
                         f"{n_jobs!r}.")
    n_jobs = max(1, min(int(n_jobs), len(tasks)))
    fit_threads = max(1, total_threads // n_jobs)

    def make(k, t):
        params = dict(base, n_components=k, random_state=seed,
                      n_threads=fit_threads)
        if typed:
            params["covariance_type"] = t
        return type(estimator)(**params)

    mu = sd = None
    Xfit = X
    if standardize:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN column
            mu = np.nanmean(X, axis=0, dtype=np.float64)
            sd = np.nanstd(X, axis=0, dtype=np.float64)
        # An all-NaN column is left as is (the fit reports it); a constant
        # one is only centred.
        mu = np.where(np.isfinite(mu), mu, 0.0)
        sd = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)
        Xfit = np.ascontiguousarray((X - mu) / sd, dtype=X.dtype)
    # Parameters are checked once, up front, so that a typo is an error and
    # not a grid of failed fits.
    base = dict(estimator.get_params(deep=False), n_init=n_init, **kwargs)
    type(estimator)(**base).check_params()

    def run(k, t, fold):
        """One fit; returns its outcome (no exception for a failed fit)."""
        gm = make(k, t)
        res = {"warnings": [], "error": None, "model": None, "value": None}
        t0 = perf_counter()
        _SINK.messages = res["warnings"]
        try:
            if fold is None:
                gm.fit(Xfit)
                gm.set_params(n_threads=n_threads)
                if standardize:
                    gm = from_standardized(gm, mu, sd)
                if names is not None:
                    gm.feature_names_in_ = names
                res["value"] = loglik_and_entropy(gm, X)
                res["model"] = gm
            else:
                train = np.ones(N, dtype=bool)
                train[folds[fold]] = False
                gm.fit(Xfit[train])
                if standardize:
                    gm = from_standardized(gm, mu, sd)
                res["value"] = _loglik(gm, X[folds[fold]])
        except (ValueError, np.linalg.LinAlgError, FloatingPointError) as e:
            res["error"] = " ".join(str(e).split())
        finally:
            _SINK.messages = None
        res["time"] = perf_counter() - t0
        return res

    def assemble(k, t, parts):
        """Build the row of grid point (k, t) from its fits' outcomes."""
        main = parts[None]
        row = dict.fromkeys(_FIELDS)
        gm = main["model"]
        row["effective_components"] = None if gm is None else int(
            np.count_nonzero(np.asarray(gm.weights_) > EFFECTIVE_WEIGHT))
        row.update(n_components=k, covariance_type=t,
                   n_parameters=n_parameters(k, D, t) if typed else
                   None if gm is None else gm.n_parameters(),
                   error=main["error"])
        msgs = list(main["warnings"])
        for f in fold_ids[1:]:
            msgs += [f"fold {f + 1}/{cv}: {m}" for m in parts[f]["warnings"]]
        row["warnings"] = list(dict.fromkeys(msgs))
        row["fit_time"] = sum(part["time"] for part in parts.values())
        if gm is None:
            row.update(bic=np.inf, aic=np.inf, icl=np.inf,
                       log_likelihood=-np.inf, converged=False, n_iter=0)
        else:
            ll, ent = main["value"]
            p = row["n_parameters"]
            bic = -2.0 * ll + p * np.log(N)
            row.update(log_likelihood=ll, entropy=ent, bic=bic,
                       aic=-2.0 * ll + 2.0 * p, icl=bic + 2.0 * ent,
                       converged=bool(gm.converged_), n_iter=int(gm.n_iter_),
                       degenerate=bool(np.size(getattr(
                           gm, "degenerate_components_", ()))))
        if cv is None:
            row.update(cv=np.nan, cv_loglik=np.nan)
        else:
            bad = next((f for f in fold_ids[1:]
                        if parts[f]["error"] is not None), None)
            if bad is not None:
                row.update(cv=np.inf, cv_loglik=-np.inf,
                           cv_error=f"fold {bad + 1}/{cv}: "
                                    f"{parts[bad]['error']}")
            else:
                total = sum(parts[f]["value"] for f in fold_ids[1:])
                row.update(cv=-2.0 * total, cv_loglik=total / N)
        row["criterion"] = row[criterion]
        if gm is None:
            row["criterion"] = np.inf
        return row, gm

    out = {}
    parts = {key: {} for key in grid}
    done = 0

    def record(task, res):
        nonlocal done
        key = task[:2]
        parts[key][task[2]] = res
        if len(parts[key]) < len(fold_ids):
            return
        out[key] = assemble(*key, parts.pop(key))
        done += 1
        if progress is not None:
            progress(out[key][0], done, len(grid))

    # Largest fits first (all-data fits before their folds), so that the
    # pool ends evenly.
    run_grid(tasks, run, record, n_jobs, order=lambda kt: (
        -(n_parameters(kt[0], D, kt[1]) if typed else kt[0]),
        kt[2] is not None))
    results = [out[key][0] for key in grid]
    models = {key: out[key][1] for key in grid if out[key][1] is not None}
    res = SelectionResult(criterion, results, models, N, D,
                          include_degenerate=bool(include_degenerate),
                          cv=cv, cv_folds=folds, feature_means=mu,
                          feature_scales=sd, bic_sign=bic_sign)
    res.best_counts, res.best_hard_entropy = _hard_assignments(
        res.best_model, X)
    return res


def _hard_assignments(model, X):
    """Rows per component by largest responsibility, and ``-sum log max r``.

    In blocks of rows, as :func:`loglik_and_entropy`.
    """
    K = model.weights_.shape[0]
    step = max(_config.MIN_CHUNK_ROWS, _ENTROPY_BLOCK_VALUES // K)
    counts = np.zeros(K, dtype=np.int64)
    ent = 0.0
    with _config.threads(getattr(model, "n_threads", None)):
        for start in range(0, X.shape[0], step):
            resp = _no_name_warning(model.predict_proba, X[start:start + step])
            top = resp.argmax(axis=1)
            counts += np.bincount(top, minlength=K)
            with np.errstate(divide="ignore"):
                ent -= float(np.log(resp[np.arange(top.size), top]).sum())
    return counts, ent


def run_grid(tasks, run, record, n_jobs, order=None):
    """Run ``run(*task)`` for every task and ``record(task, result)`` each.

    The engine behind :func:`select` and :func:`fastem.hmm_select.select_states`.
    Warnings issued by a fit go to the list ``_SINK.messages`` of the thread
    that runs it (one process-wide handler: ``catch_warnings(record=True)``
    is not thread-safe).  With ``n_jobs > 1`` the tasks run in a thread pool,
    sorted by ``order``; Ctrl-C (or an error) drops the queued tasks and
    stops the running ones at their next kernel boundary.

    Parameters
    ----------
    tasks : list of tuple
    run : callable
    record : callable
    n_jobs : int
    order : callable, optional
        Sort key of the tasks for the pool.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        shown = warnings.showwarning

        def showwarning(message, category, filename, lineno, file=None,
                        line=None):
            messages = getattr(_SINK, "messages", None)
            if messages is None:
                return shown(message, category, filename, lineno, file, line)
            messages.append(str(message))

        warnings.showwarning = showwarning
        if n_jobs == 1:
            for task in tasks:
                record(task, run(*task))
            return
        from concurrent.futures import ThreadPoolExecutor, as_completed

        ordered = sorted(tasks, key=order) if order is not None else tasks
        with ThreadPoolExecutor(n_jobs) as pool:
            futures = {pool.submit(run, *task): task for task in ordered}
            try:
                for fut in as_completed(futures):
                    record(futures[fut], fut.result())
            except BaseException:
                _config._ABORT.set()
                try:
                    pool.shutdown(wait=True, cancel_futures=True)
                finally:
                    _config._ABORT.clear()
                raise
