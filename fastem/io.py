"""Saving, loading and converting fitted Gaussian mixtures.

The file format is JSON: portable (any language reads it), diffable, and
versioned.  Floats are written with Python's ``repr``, the shortest string
that reads back to the same float64, so a saved model loads with
bit-identical parameters and gives identical predictions.  No pickle is
involved (loading a file cannot run code).  A model also pickles as usual.

Layout (format version 1)::

    {
      "format": "fastem.GaussianMixture",
      "format_version": 1,
      "fastem_version": "0.1.0",
      "params": {"n_components": 3, "covariance_type": "full", ...},
      "fitted": {
        "weights": [...], "means": [[...]], "covariances": ...,
        "precisions_cholesky": ..., "converged": true, "n_iter": 12,
        "lower_bound": -3.6, "lower_bounds": [...], "n_features_in": 2,
        "feature_names_in": ["x", "y"] or null
      } or null,
      "metadata": {...}
    }

Arrays are nested lists in scikit-learn's shape conventions; non-finite
floats are written as the strings ``"inf"``, ``"-inf"`` and ``"nan"`` (JSON
has no such numbers).
"""

import json
import math
import os
import re

import numpy as np

__all__ = ["FORMAT", "FORMAT_VERSION", "from_dict", "from_sklearn", "load",
           "save", "to_dict", "to_sklearn"]

FORMAT = "fastem.GaussianMixture"
FORMAT_VERSION = 1

# Constructor parameters that do not describe the model and are not saved.
_UNSAVED = ("callback",)
_ARRAY_PARAMS = ("weights_init", "means_init", "precisions_init")
_SPECIAL = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


class ModelFileError(ValueError):
    """A file is not a fastem model this version can read (one-line message)."""


def _encode(a):
    """Nested lists of Python floats; non-finite values as strings."""
    arr = np.asarray(a, dtype=np.float64)
    if np.all(np.isfinite(arr)):
        return arr.tolist()
    flat = [repr(v) if not math.isfinite(v) else v for v in arr.ravel().tolist()]
    return np.array(flat, dtype=object).reshape(arr.shape).tolist()


def _decode(v):
    if isinstance(v, str):
        return _SPECIAL[v]
    if isinstance(v, list):
        return [_decode(x) for x in v]
    return v


def _array(v, name):
    try:
        return np.array(_decode(v), dtype=np.float64)
    except (KeyError, ValueError, TypeError):
        raise ModelFileError(f"invalid array {name!r} in the model file") \
            from None


def _param_value(name, value):
    if value is None or isinstance(value, (bool, str)):
        return value
    if name in _ARRAY_PARAMS:
        return _encode(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    # A RandomState or Generator, or anything else JSON cannot hold: not
    # saved (the fitted parameters do not depend on it).
    return None


def to_dict(model, metadata=None):
    """Describe ``model`` as a JSON-serializable dict (the saved format).

    Parameters
    ----------
    model : GaussianMixture
        Fitted or not (an unfitted model saves only its parameters).
    metadata : dict, optional
        JSON-serializable extra information stored under ``"metadata"``.

    Returns
    -------
    dict
    """
    from . import __version__

    params = {k: _param_value(k, v) for k, v in model.get_params().items()
              if k not in _UNSAVED}
    fitted = None
    if hasattr(model, "weights_"):
        names = getattr(model, "feature_names_in_", None)
        fitted = {
            "weights": _encode(model.weights_),
            "means": _encode(model.means_),
            "covariances": _encode(model.covariances_),
            "precisions_cholesky": _encode(model.precisions_cholesky_),
            "converged": bool(model.converged_),
            "n_iter": int(model.n_iter_),
            "lower_bound": _encode(model.lower_bound_),
            "lower_bounds": _encode(getattr(model, "lower_bounds_", [])),
            "n_features_in": int(model.n_features_in_),
            "feature_names_in": None if names is None else [str(n) for n in names],
        }
    return {"format": FORMAT, "format_version": FORMAT_VERSION,
            "fastem_version": __version__, "params": params, "fitted": fitted,
            "metadata": dict(metadata or {})}


def save(model, path, metadata=None):
    """Save ``model`` to ``path`` as JSON (see the module docstring).

    Parameters
    ----------
    model : GaussianMixture
    path : str or os.PathLike
        Destination; written atomically (a temporary file then a rename), so
        an interrupted save never leaves a truncated model behind.
    metadata : dict, optional
        JSON-serializable extra information stored with the model.

    Returns
    -------
    str
        The path written.
    """
    path = os.fspath(path)
    text = _dumps(to_dict(model, metadata))
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.write("\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def _dumps(d):
    """JSON with one key per line but every list of numbers on one line."""
    arrays = []

    def compact(v):
        if isinstance(v, dict):
            return {k: compact(x) for k, x in v.items()}
        if isinstance(v, list) and v and not any(isinstance(x, dict)
                                                 for x in v):
            arrays.append(json.dumps(v, allow_nan=False))
            return f"\0{len(arrays) - 1}\0"
        return v

    text = json.dumps(compact(d), indent=1, allow_nan=False)
    return re.sub(r'"\\u0000(\d+)\\u0000"', lambda m: arrays[int(m.group(1))],
                  text)


def from_dict(d, cls=None):
    """Rebuild a model from :func:`to_dict`'s output.

    Parameters
    ----------
    d : dict
    cls : type, optional
        Estimator class (default :class:`fastem.GaussianMixture`).

    Returns
    -------
    GaussianMixture
    """
    from . import __version__

    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise ModelFileError(
            f"not a fastem model (expected \"format\": \"{FORMAT}\")")
    version = d.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise ModelFileError(f"invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"model format version {version} (written by fastem "
            f"{d.get('fastem_version', '?')}) is newer than this fastem "
            f"{__version__} reads (up to {FORMAT_VERSION}); upgrade fastem")
    if cls is None:
        from .mixture import GaussianMixture as cls
    params = d.get("params")
    if not isinstance(params, dict):
        raise ModelFileError("model file has no \"params\" object")
    known = set(cls().get_params())
    kwargs = {}
    for k, v in params.items():
        if k not in known:
            continue  # a parameter this version does not have
        kwargs[k] = _array(v, k) if (k in _ARRAY_PARAMS and v is not None) else v
    model = cls(**kwargs)
    fitted = d.get("fitted")
    if fitted is not None:
        try:
            _set_fitted(model, fitted)
        except KeyError as e:
            raise ModelFileError(f"model file lacks fitted field {e}") from None
    return model


def _set_fitted(model, f):
    from .stats import GaussianParams

    ct = model.covariance_type
    weights = _array(f["weights"], "weights")
    means = _array(f["means"], "means")
    pc = _array(f["precisions_cholesky"], "precisions_cholesky")
    cov = _array(f["covariances"], "covariances")
    K = weights.shape[0]
    if means.ndim != 2 or means.shape[0] != K:
        raise ModelFileError(f"means of shape {means.shape} do not match "
                             f"{K} weights")
    D = means.shape[1]
    shape = {"full": (K, D, D), "tied": (D, D), "diag": (K, D),
             "spherical": (K,)}[ct]
    if pc.shape != shape or cov.shape != shape:
        raise ModelFileError(
            f"covariances/precisions_cholesky of shape {cov.shape}/{pc.shape} "
            f"do not match covariance_type {ct!r} (expected {shape})")
    _commit(model, GaussianParams(weights, means, pc, ct, cov))
    model.converged_ = bool(f["converged"])
    model.n_iter_ = int(f["n_iter"])
    model.lower_bound_ = float(_decode(f["lower_bound"]))
    model.lower_bounds_ = [float(v) for v in _decode(f.get("lower_bounds", []))]
    model.n_features_in_ = int(f.get("n_features_in", D))
    names = f.get("feature_names_in")
    if names is not None:
        model.feature_names_in_ = np.asarray(names, dtype=object)


def _commit(model, params):
    """Install ``params`` as the model's fitted parameters."""
    model._set_params(params)


def load(path, cls=None):
    """Load a model saved with :func:`save`.

    Parameters
    ----------
    path : str or os.PathLike
    cls : type, optional
        Estimator class (default :class:`fastem.GaussianMixture`).

    Returns
    -------
    GaussianMixture
        With the saved parameters and fitted attributes, bit-identical.

    Raises
    ------
    ModelFileError
        (a ``ValueError``) when the file is not a fastem model or was written
        by a newer format version; ``OSError`` when it cannot be read.
    """
    path = os.fspath(path)
    with open(path, encoding="utf-8") as f:
        try:
            d = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ModelFileError(f"{path}: not a fastem model file (not JSON: "
                                 f"{e})") from None
    try:
        return from_dict(d, cls)
    except ModelFileError as e:
        raise ModelFileError(f"{path}: {e}") from None


def read_metadata(path):
    """Return the ``"metadata"`` dict stored in a model file.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    dict
    """
    with open(os.fspath(path), encoding="utf-8") as f:
        d = json.load(f)
    return dict(d.get("metadata") or {}) if isinstance(d, dict) else {}


# ------------------------------------------------------------ scikit-learn
_SKLEARN_PARAMS = ("n_components", "covariance_type", "tol", "reg_covar",
                   "max_iter", "n_init", "init_params", "weights_init",
                   "means_init", "precisions_init", "random_state",
                   "warm_start", "verbose", "verbose_interval")


def to_sklearn(model):
    """Convert to ``sklearn.mixture.GaussianMixture`` (needs scikit-learn).

    The scikit-learn model gets the same constructor parameters (those
    scikit-learn has) and, when ``model`` is fitted, the same fitted
    attributes (copies), so ``predict_proba`` agrees to rounding (~1e-15).

    Parameters
    ----------
    model : fastem.GaussianMixture

    Returns
    -------
    sklearn.mixture.GaussianMixture
    """
    try:
        from sklearn.mixture import GaussianMixture as SkGM
    except ImportError:
        raise ImportError("to_sklearn needs scikit-learn: pip install "
                          "scikit-learn (or pip install fastem[sklearn])") \
            from None
    params = model.get_params()
    sk = SkGM(**{k: params[k] for k in _SKLEARN_PARAMS if k in params})
    if hasattr(model, "weights_"):
        for attr in ("weights_", "means_", "covariances_", "precisions_",
                     "precisions_cholesky_"):
            setattr(sk, attr, np.array(getattr(model, attr), dtype=np.float64))
        sk.converged_ = bool(model.converged_)
        sk.n_iter_ = int(model.n_iter_)
        sk.lower_bound_ = float(model.lower_bound_)
        sk.lower_bounds_ = list(getattr(model, "lower_bounds_", []))
        sk.n_features_in_ = int(model.n_features_in_)
        if hasattr(model, "feature_names_in_"):
            sk.feature_names_in_ = np.array(model.feature_names_in_, dtype=object)
    return sk


def from_sklearn(estimator, cls=None):
    """Convert a ``sklearn.mixture.GaussianMixture`` to fastem's.

    Parameters
    ----------
    estimator : sklearn.mixture.GaussianMixture
        Fitted or not.
    cls : type, optional
        Target class (default :class:`fastem.GaussianMixture`).

    Returns
    -------
    fastem.GaussianMixture
        Same parameters and fitted attributes; predictions agree to rounding.
    """
    from .stats import GaussianParams

    if cls is None:
        from .mixture import GaussianMixture as cls
    if not hasattr(estimator, "get_params") or not hasattr(estimator,
                                                           "covariance_type"):
        raise TypeError("from_sklearn expects a sklearn.mixture."
                        f"GaussianMixture, got {type(estimator).__name__}")
    params = estimator.get_params()
    known = set(cls().get_params())
    model = cls(**{k: v for k, v in params.items() if k in known})
    if hasattr(estimator, "weights_"):
        ct = estimator.covariance_type
        _commit(model, GaussianParams(
            np.array(estimator.weights_, dtype=np.float64),
            np.array(estimator.means_, dtype=np.float64),
            np.array(estimator.precisions_cholesky_, dtype=np.float64), ct,
            np.array(estimator.covariances_, dtype=np.float64)))
        # The same precisions, not recomputed (they differ in the last bit).
        model.precisions_ = np.array(estimator.precisions_, dtype=np.float64)
        model.converged_ = bool(estimator.converged_)
        model.n_iter_ = int(estimator.n_iter_)
        model.lower_bound_ = float(estimator.lower_bound_)
        model.lower_bounds_ = [float(v) for v in
                               getattr(estimator, "lower_bounds_", [])]
        model.n_features_in_ = int(getattr(estimator, "n_features_in_",
                                           estimator.means_.shape[1]))
        if hasattr(estimator, "feature_names_in_"):
            model.feature_names_in_ = np.asarray(estimator.feature_names_in_,
                                                 dtype=object)
    return model
