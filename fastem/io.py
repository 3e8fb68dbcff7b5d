"""Saving, loading and converting fitted Gaussian mixtures and HMMs.

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

A :class:`~fastem.GaussianHMM` is saved the same way (format version 1)::

    {
      "format": "fastem.GaussianHMM",
      "format_version": 1,
      "fastem_version": "0.1.0",
      "params": {"n_components": 3, "covariance_type": "diag", ...},
      "fitted": {
        "startprob": [...], "transmat": [[...]], "means": [[...]],
        "covars": ... (the covariance type's own layout: (K,) spherical,
                  (K, D) diag, (K, D, D) full, (D, D) tied),
        "n_features_in": 2, "feature_names_in": null,
        "monitor": {"history": [...], "iter": 12, "converged": true} or null
      } or null,
      "metadata": {...}
    }

:func:`load` returns the class the ``"format"`` field names.  Array-valued
priors are saved as nested lists.

Arrays are nested lists in scikit-learn's shape conventions; non-finite
floats are written as the strings ``"inf"``, ``"-inf"`` and ``"nan"`` (JSON
has no such numbers).
"""

import contextlib
import json
import math
import os
import re
import stat
import tempfile
import warnings

import numpy as np

from fastem.families.covariances import (
    COVARIANCE_MODELS,
    SKLEARN_COVARIANCE_TYPES,
)

__all__ = ["FORMAT", "FORMAT_VERSION", "HMM_FORMAT", "from_dict",
           "from_sklearn", "load", "save", "to_dict", "to_sklearn"]

FORMAT = "fastem.GaussianMixture"
HMM_FORMAT = "fastem.GaussianHMM"
FORMAT_VERSION = 1  # of both formats
_FORMATS = (FORMAT, HMM_FORMAT)

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


def _what(x):
    """Describe the type of a JSON value, for error messages."""
    if x is None:
        return "null"
    if isinstance(x, bool):
        return "a boolean"
    if isinstance(x, str):
        return f"the string {x[:20]!r}" + ("..." if len(x) > 20 else "")
    if isinstance(x, (int, float, np.number)):
        return f"the number {x!r}"
    if isinstance(x, (list, tuple)):
        return "a list"
    if isinstance(x, dict):
        return "an object"
    return type(x).__name__


def _array(v, name, ndim):
    """Decode the nested lists of field ``name`` into a float64 array.

    Exactly ``ndim`` levels of lists of numbers (or the strings ``"inf"``,
    ``"-inf"``, ``"nan"``) are accepted; anything else is a
    :class:`ModelFileError` naming the field.  The depth is bounded by
    ``ndim`` (at most 3), so a deeply nested value cannot exhaust the stack.
    """
    dims = {1: "a list of numbers", 2: "a list of lists of numbers",
            3: "a list of lists of lists of numbers"}[ndim]
    if isinstance(v, np.ndarray):
        v = v.tolist()

    def bad(found):
        return ModelFileError(f"{name}: expected {dims}, found {found}")

    def walk(x, depth):
        if isinstance(x, (list, tuple)):
            if depth == ndim:
                raise bad("lists nested deeper than that")
            return [walk(y, depth + 1) for y in x]
        if depth != ndim:
            raise bad(_what(x) if depth == 0 else f"{_what(x)} inside it")
        if isinstance(x, str) and x in _SPECIAL:
            return _SPECIAL[x]
        if isinstance(x, bool) or not isinstance(x, (int, float, np.number)):
            raise bad(f"{_what(x)} inside it")
        return x

    try:
        return np.array(walk(v, 0), dtype=np.float64)
    except (ValueError, OverflowError) as e:
        if isinstance(e, ModelFileError):
            raise
        raise ModelFileError(f"{name}: expected {dims} forming a "
                             f"rectangular array of float64 values "
                             f"({_one_line(e)})") from None


def _number(v, name):
    """Return a JSON number (or ``"inf"``/``"-inf"``/``"nan"``) as a float."""
    if isinstance(v, str) and v in _SPECIAL:
        return _SPECIAL[v]
    if isinstance(v, bool) or not isinstance(v, (int, float, np.number)):
        raise ModelFileError(f"{name}: expected a number, found {_what(v)}")
    try:
        return float(v)
    except OverflowError:
        raise ModelFileError(f"{name}: number out of the float64 range") \
            from None


def _one_line(msg):
    return " ".join(str(msg).split())


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
    model : GaussianMixture or GaussianHMM
        Fitted or not (an unfitted model saves only its parameters).
    metadata : dict, optional
        JSON-serializable extra information stored under ``"metadata"``.

    Returns
    -------
    dict
    """
    from fastem import __version__

    if _is_hmm(model):
        return _hmm_to_dict(model, metadata)
    if _hmm_format(type(model)):
        from fastem.models.hmm_base import hmm_to_dict

        return hmm_to_dict(model, metadata)
    if _generic_format(type(model)):
        return _generic_to_dict(model, metadata)

    params = {k: _param_value(k, v) for k, v in model.get_params().items()
              if k not in _UNSAVED}
    fitted = None
    if hasattr(model, "weights_"):
        ct = _fitted_covariance_type(model)
        if ct != params.get("covariance_type"):
            # ``set_params(covariance_type=...)`` after the fit changes the
            # parameter, not the fitted arrays.  Writing the new type beside
            # arrays of the old shapes gave a file load() rejects; what the
            # user has in hand (and what predict uses) is the fitted model,
            # so that is what is saved, with the type it was fitted with:
            # load() gives back a working model.  Refitting gives the new
            # type.
            warnings.warn(
                f"covariance_type was set to {params.get('covariance_type')!r}"
                f" after the model was fitted with {ct!r}; saving the fitted "
                f"model, with covariance_type={ct!r} (fit again to get a "
                f"{params.get('covariance_type')!r} model)", UserWarning,
                stacklevel=3)
            params["covariance_type"] = ct
        names = getattr(model, "feature_names_in_", None)
        # The float64 parameters the kernels use, not the attributes (a
        # float32 fit shows float32 attributes): loading gives bit-identical
        # predictions either way.
        if hasattr(model, "export_state") and \
                model.__sklearn_is_fitted__():
            st = model.export_state()["params"]
            arrays = (st["weights"], st["means"], st["covariances"],
                      st["precisions_cholesky"])
        else:
            arrays = (model.weights_, model.means_, model.covariances_,
                      model.precisions_cholesky_)
        fitted = {
            "weights": _encode(arrays[0]),
            "means": _encode(arrays[1]),
            "covariances": _encode(arrays[2]),
            "precisions_cholesky": _encode(arrays[3]),
            "dtype": str(getattr(model, "_fit_dtype", "float64")),
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


# The covariance types and their parameter shapes, from the covariance
# registry (NumPy only: io imports no numba).
_SHAPES = {ct: m.shape for ct, m in COVARIANCE_MODELS.items()}


def _fitted_covariance_type(model):
    """Return the covariance type of ``model``'s fitted arrays.

    The type recorded with the fitted parameters when there is one, else the
    one the shape of ``precisions_cholesky_`` implies (full ``(K, D, D)``,
    tied ``(D, D)``, diag ``(K, D)``, spherical ``(K,)``); the constructor
    parameter when it agrees with that shape (tied and diag shapes coincide
    when ``K == D``; mclust's models share their layout's shape, so only
    the recorded type or the constructor's names one of them).
    """
    K = np.shape(model.weights_)[0]
    D = np.shape(model.means_)[1]
    shape = np.shape(model.precisions_cholesky_)
    fits = [t for t, f in _SHAPES.items() if f(K, D) == shape]
    for ct in (getattr(getattr(model, "_params", None), "covariance_type",
                       None),
               getattr(model, "_fitted_covariance_type", None),
               model.covariance_type):
        if ct in fits:
            return ct
    if not fits:
        raise ValueError(
            f"cannot save: the fitted precisions_cholesky_ of shape {shape} "
            f"fit no covariance type for {K} components and {D} features")
    fits = [t for t in fits if t in SKLEARN_COVARIANCE_TYPES]
    if len(fits) > 1:  # tied or diag with K == D: tied is triangular
        pc = np.asarray(model.precisions_cholesky_)
        return "tied" if not np.tril(pc, -1).any() else "diag"
    return fits[0]


def save(model, path, metadata=None):
    """Save ``model`` to ``path`` as JSON (see the module docstring).

    Parameters
    ----------
    model : GaussianMixture or GaussianHMM
    path : str or os.PathLike
        Destination; written atomically (a temporary file of its own in the
        same directory, flushed to disk, then renamed over ``path``), so an
        interrupted save never leaves a truncated model behind, and saves to
        one path from several threads or processes never mix (the last
        rename wins; a concurrent :func:`load` sees one complete file).
    metadata : dict, optional
        JSON-serializable extra information stored with the model.

    Returns
    -------
    str
        The path written.
    """
    path = os.fspath(path)
    text = _dumps(to_dict(model, metadata))
    with atomic_write(path) as f:
        f.write(text)
        f.write("\n")
    return path


def _umask():
    """Return the umask, read without changing it where possible."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    # Elsewhere the umask can only be read by setting it (briefly racy with
    # other threads creating files; Linux has /proc).
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path, mode="w"):
    """Open a temporary file that replaces ``path`` when the block succeeds.

    The temporary file is created with :func:`tempfile.mkstemp` in the
    directory of ``path`` (so the final :func:`os.replace` is a rename on one
    file system) under a name unique to this call, hence to this process and
    thread.  On success it is flushed, ``fsync``-ed and renamed over
    ``path``; if the block raises (an error, ``KeyboardInterrupt``) it is
    removed and ``path`` is left as it was.  The file gets the permissions
    of the file it replaces, or, for a new file, those :func:`open` would
    give (``0o666`` minus the umask; ``mkstemp`` itself creates ``0o600``).
    A symbolic link at ``path`` is followed: its target is replaced.

    Parameters
    ----------
    path : str or os.PathLike
        Destination.
    mode : {'w', 'wb'}
        Text (UTF-8) or binary.

    Yields
    ------
    file
        The open temporary file.
    """
    path = os.path.realpath(os.fspath(path))
    directory, name = os.path.split(path)
    try:
        perm = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        perm = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp",
                               dir=directory or ".")
    try:
        kw = {} if "b" in mode else {"encoding": "utf-8", "newline": None}
        with os.fdopen(fd, mode, **kw) as f:
            yield f
            f.flush()
            try:
                os.fchmod(f.fileno(), perm)
            except OSError:  # a file system without permissions
                pass
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


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

    Every field is checked (types, shapes, values), so that a damaged or
    hand-edited file is refused with a message naming the field instead of
    giving a model that predicts nonsense.

    Parameters
    ----------
    d : dict
    cls : type, optional
        Estimator class (default: the class the ``"format"`` field names,
        :class:`fastem.GaussianMixture` or :class:`fastem.GaussianHMM`); a
        class of the other kind is refused.

    Returns
    -------
    GaussianMixture or GaussianHMM

    Raises
    ------
    ModelFileError
        Naming the field that is missing, of the wrong type, shape or value.
    """
    fmt = _check_header(d, cls)
    if fmt == HMM_FORMAT:
        return _hmm_from_dict(d, cls)
    if fmt in _hmm_formats():
        return _other_hmm_from_dict(d, fmt, cls)
    if fmt != FORMAT:
        return _generic_from_dict(d, fmt, cls)
    if cls is None:
        from fastem.models.mixture import GaussianMixture as cls
    params, fitted = _body(d)
    model = _model_from_params(cls, params)
    if fitted is not None:
        _set_fitted(model, fitted)
    elif getattr(model, "means_init", None) is not None:
        _check_init(model, np.shape(model.means_init)[-1])
    return model


def _check_header(d, cls=None):
    """Check ``format`` and ``format_version``; return the format.

    ``cls``, when given, must be the class the format holds.
    """
    from fastem import __version__
    from fastem.models import MODELS

    fmt = d.get("format") if isinstance(d, dict) else None
    formats = (_FORMATS + tuple(f"fastem.{n}" for n in MODELS)
               + _hmm_formats())
    if fmt not in formats:
        raise ModelFileError(
            f"not a fastem model (expected \"format\" to be one of "
            f"{', '.join(repr(f) for f in formats)}; found {_what(fmt)})")
    if cls is not None:
        want = (HMM_FORMAT if _is_hmm_class(cls) else
                _hmm_format(cls) or _generic_format(cls) or FORMAT)
        if fmt != want:
            raise ModelFileError(
                f"the file holds a {fmt}, not a {want}; load it with "
                f"fastem.load (which returns the class the file holds)")
    version = d.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ModelFileError(f"invalid format_version {version!r}: expected "
                             f"an integer from 1 to {FORMAT_VERSION}")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"model format version {version} (written by fastem "
            f"{d.get('fastem_version', '?')}) is newer than this fastem "
            f"{__version__} reads (up to {FORMAT_VERSION}); upgrade fastem")
    return fmt


def _body(d):
    """Return the checked ``params`` and ``fitted`` objects (checks ``metadata``)."""
    params = d.get("params")
    if not isinstance(params, dict):
        raise ModelFileError("model file has no \"params\" object (found "
                             f"{_what(params)})")
    metadata = d.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise ModelFileError(f"metadata: expected an object, found "
                             f"{_what(metadata)}")
    fitted = d.get("fitted")
    if fitted is not None and not isinstance(fitted, dict):
        raise ModelFileError(f"fitted: expected an object or null, found "
                             f"{_what(fitted)}")
    return params, fitted


def _model_from_params(cls, params):
    """Build the estimator with the saved constructor parameters, checked."""
    known = set(cls().get_params())
    ct = params.get("covariance_type", "full")
    if "covariance_type" in known and (not isinstance(ct, str)
                                       or ct not in _SHAPES):
        raise ModelFileError(
            f"parameter 'covariance_type': expected one of "
            f"{', '.join(_SHAPES)}, found {_what(ct)}")
    ndims = {"weights_init": 1, "means_init": 2,
             "precisions_init": len(_SHAPES[ct](1, 1))}
    kwargs = {}
    for k, v in params.items():
        if k not in known:
            continue  # a parameter this version does not have
        if k in _ARRAY_PARAMS and v is not None:
            v = _array(v, f"parameter {k!r}", ndims[k])
        elif not (v is None or isinstance(v, (bool, int, float, str))):
            raise ModelFileError(f"parameter {k!r}: expected a number, a "
                                 f"string, true/false or null, found "
                                 f"{_what(v)}")
        kwargs[k] = v
    return _build(cls, kwargs)


# Relative tolerance of the consistency check of covariances against the
# precision factors: the product U^T C U of a factor and its covariance is
# the identity to ~eps * cond (float64: 1e-16 to 1e-12 in practice, float32
# fits ~2e-7).  The check is there to catch covariances that do not belong
# to the factors (an edited file: errors of order 1), not to reject a
# legitimate ill-conditioned model.
_CONSISTENCY_RTOL = 1e-2
_WEIGHTS_ATOL = 1e-6  # float32 fits normalize their weights to ~1e-7


def _set_fitted(model, f):
    for k in ("weights", "means", "covariances", "precisions_cholesky",
              "converged", "n_iter", "lower_bound"):
        if k not in f:
            raise ModelFileError(f"model file lacks fitted field {k!r}")
    ct = model.covariance_type
    weights = _array(f["weights"], "weights", 1)
    means = _array(f["means"], "means", 2)
    K = weights.shape[0]
    if K < 1:
        raise ModelFileError("weights: expected at least one component, "
                             "found an empty list")
    if K != model.n_components:
        raise ModelFileError(
            f"weights: {K} weights do not match parameter n_components="
            f"{model.n_components}")
    if means.shape[0] != K:
        raise ModelFileError(f"means of shape {means.shape} do not match "
                             f"{K} weights (expected {K} rows)")
    D = means.shape[1]
    if D < 1:
        raise ModelFileError("means: expected at least one feature, found "
                             "empty rows")
    shape = _SHAPES[ct](K, D)
    pc = _array(f["precisions_cholesky"], "precisions_cholesky", len(shape))
    cov = _array(f["covariances"], "covariances", len(shape))
    if pc.shape != shape or cov.shape != shape:
        raise ModelFileError(
            f"covariances/precisions_cholesky of shape {cov.shape}/{pc.shape} "
            f"do not match covariance_type {ct!r} with {K} components and "
            f"{D} features (expected {shape})")
    if not (np.all(np.isfinite(weights)) and weights.min() >= 0):
        raise ModelFileError(
            f"weights: expected finite non-negative values, found "
            f"{float(weights[~(np.isfinite(weights) & (weights >= 0))][0])!r}")
    if not abs(weights.sum() - 1.0) <= _WEIGHTS_ATOL:
        raise ModelFileError(f"weights: expected a sum of 1, found "
                             f"{float(weights.sum())!r}")
    if not np.all(np.isfinite(means)):
        raise ModelFileError("means: expected finite values, found NaN or "
                             "infinity")
    _check_factors(ct, pc, cov, K, D)
    _check_init(model, D)
    converged = f["converged"]
    if not isinstance(converged, bool):
        raise ModelFileError(f"converged: expected true or false, found "
                             f"{_what(converged)}")
    n_iter = f["n_iter"]
    if isinstance(n_iter, bool) or not isinstance(n_iter, int) or n_iter < 0:
        raise ModelFileError(f"n_iter: expected an integer >= 0, found "
                             f"{_what(n_iter)}")
    lower_bound = _number(f["lower_bound"], "lower_bound")
    lower_bounds = _array(f.get("lower_bounds", []), "lower_bounds", 1)
    n_features_in, names = _features_fields(f, D)
    dtype = f.get("dtype", "float64")
    if dtype not in ("float64", "float32"):
        raise ModelFileError(f"dtype: expected 'float64' or 'float32', found "
                             f"{dtype!r}")
    state = {"params": {"weights": weights, "means": means,
                        "precisions_cholesky": pc, "covariances": cov},
             "dtype": dtype, "converged": converged, "n_iter": n_iter,
             "lower_bound": lower_bound,
             "lower_bounds": [float(v) for v in lower_bounds],
             "n_features_in": D, "feature_names_in": names}
    try:  # the model's public persistence protocol (MixtureModel)
        model.import_state(state)
    except (TypeError, ValueError) as e:
        raise ModelFileError(f"invalid fitted parameters: {_one_line(e)}") \
            from None


def _check_factors(ct, pc, cov, K, D):
    """Precision Cholesky factors and covariances: valid and consistent."""
    if not np.all(np.isfinite(pc)):
        raise ModelFileError("precisions_cholesky: expected finite values, "
                             "found NaN or infinity")
    if not np.all(np.isfinite(cov)):
        raise ModelFileError("covariances: expected finite values, found NaN "
                             "or infinity")
    if COVARIANCE_MODELS[ct].square:
        p3, c3 = pc.reshape(-1, D, D), cov.reshape(-1, D, D)
        diag = np.diagonal(p3, axis1=1, axis2=2)
        if not np.all(diag > 0):
            raise ModelFileError(
                "precisions_cholesky: expected a strictly positive diagonal "
                f"(Cholesky factors), found {float(diag[~(diag > 0)][0])!r}")
        # scikit-learn's convention (fastem's too): upper triangular U with
        # U U^T = inv(covariance), zeros below the diagonal.
        scale = np.abs(p3).max(axis=(1, 2))[:, None, None]
        if np.any(np.abs(np.tril(p3, -1)) > 1e-12 * scale):
            raise ModelFileError(
                "precisions_cholesky: expected upper-triangular factors "
                "(zeros below the diagonal, scikit-learn's convention)")
        # loose: covariances of float32 fits are symmetric to ~1e-7
        if not np.allclose(c3, np.swapaxes(c3, 1, 2), rtol=1e-5,
                           atol=1e-7 * np.abs(c3).max()):
            raise ModelFileError("covariances: expected symmetric matrices")
        err = np.abs(np.swapaxes(p3, 1, 2) @ c3 @ p3 - np.eye(D)).max()
    else:
        if not np.all(pc > 0):
            raise ModelFileError(
                "precisions_cholesky: expected positive values, found "
                f"{float(pc[~(pc > 0)][0])!r}")
        err = np.abs(cov * pc ** 2 - 1.0).max()
    if not err <= _CONSISTENCY_RTOL:
        raise ModelFileError(
            "covariances: do not match precisions_cholesky (the covariance "
            "times the precision differs from the identity by "
            f"{err:.3g}); the file was altered or damaged")


def _check_init(model, D):
    """Run the estimator's own checks of the *_init parameters."""
    check = getattr(model, "_check_initial_parameters", None)
    if check is None:
        return
    try:
        check(D)
    except (TypeError, ValueError, np.linalg.LinAlgError) as e:
        raise ModelFileError(f"invalid parameter: {_one_line(e)}") from None


def _features_fields(f, D):
    """Return the checked ``n_features_in`` and ``feature_names_in``."""
    n_features_in = f.get("n_features_in", D)
    if isinstance(n_features_in, bool) or not isinstance(n_features_in, int) \
            or n_features_in != D:
        raise ModelFileError(f"n_features_in: expected {D} (the number of "
                             f"columns of means), found {_what(n_features_in)}")
    names = f.get("feature_names_in")
    if names is not None and not (
            isinstance(names, list) and len(names) == D
            and all(isinstance(n, str) for n in names)):
        raise ModelFileError(f"feature_names_in: expected null or a list of "
                             f"{D} strings, found {_what(names)}"
                             + (f" of length {len(names)}"
                                if isinstance(names, list) else ""))
    return n_features_in, names


def load(path, cls=None):
    """Load a model saved with :func:`save`.

    Parameters
    ----------
    path : str or os.PathLike
    cls : type, optional
        Estimator class (default: the class the file's ``"format"`` field
        names, :class:`fastem.GaussianMixture` or :class:`fastem.GaussianHMM`).

    Returns
    -------
    GaussianMixture or GaussianHMM
        With the saved parameters and fitted attributes, bit-identical.

    Raises
    ------
    ModelFileError
        (a ``ValueError``) when the file is not a fastem model or was written
        by a newer format version; ``OSError`` when it cannot be read.
    """
    path = os.fspath(path)
    d = _read_json(path)
    try:
        return from_dict(d, cls)
    except ModelFileError as e:
        raise ModelFileError(f"{path}: {e}") from None


def _read_json(path):
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ModelFileError(f"{path}: not a fastem model file (not JSON: "
                                 f"{_one_line(e)})") from None
        except RecursionError:
            raise ModelFileError(f"{path}: not a fastem model file (malformed "
                                 "JSON: too deeply nested)") from None


def read_metadata(path):
    """Return the ``"metadata"`` dict stored in a model file.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    dict
    """
    d = _read_json(os.fspath(path))
    meta = d.get("metadata") if isinstance(d, dict) else None
    return dict(meta) if isinstance(meta, dict) else {}


# --------------------------------------------------------------- GaussianHMM
# Constructor parameters that may be arrays (the priors) and those that are
# strings (a string "inf", "-inf" or "nan" in any other is that float).
_HMM_PRIORS = ("startprob_prior", "transmat_prior", "means_prior",
               "means_weight", "covars_prior", "covars_weight")
_HMM_STRINGS = ("covariance_type", "algorithm", "params", "init_params",
                "implementation")
_HMM_FIELDS = ("startprob", "transmat", "means", "covars")


def _is_hmm_class(cls):
    import sys

    hmm = sys.modules.get("fastem.models.hmm")
    return hmm is not None and isinstance(cls, type) and issubclass(
        cls, hmm.GaussianHMM)


def _is_hmm(model):
    return _is_hmm_class(type(model))


# HMMs built on fastem.models.hmm_base.BaseHMM other than GaussianHMM
# (fastem.models.HMMS lists them): the file is hmm_to_dict(model), read
# back by hmm_from_dict (constructor checked, fitted state through
# import_state).
def _hmm_formats():
    from fastem.models import HMMS

    return tuple(f"fastem.{n}" for n in HMMS)


def _hmm_format(cls):
    """``"fastem.<Name>"`` for a registered HMM class (not GaussianHMM)."""
    from fastem.models import HMMS

    if not isinstance(cls, type):
        return None
    for name in HMMS:
        if name in (c.__name__ for c in cls.__mro__):
            return f"fastem.{name}"
    return None


def _other_hmm_from_dict(d, fmt, cls):
    import importlib

    from fastem.models import HMMS
    from fastem.models.hmm_base import hmm_from_dict

    if cls is None:
        name = fmt.split(".", 1)[1]
        cls = getattr(importlib.import_module(HMMS[name]), name)
    try:
        return hmm_from_dict(d, cls, where="the file")
    except (TypeError, ValueError) as e:
        raise ModelFileError(_one_line(e)) from None


def _hmm_param_value(name, value):
    if name in _HMM_PRIORS and np.ndim(value) > 0:
        return _encode(value)
    if isinstance(value, (float, np.floating)) and not math.isfinite(value):
        return repr(float(value))  # tol=-inf: exactly n_iter iterations
    return _param_value(name, value)


def _hmm_to_dict(model, metadata):
    from fastem import __version__

    params = {k: _hmm_param_value(k, v) for k, v in model.get_params().items()}
    fitted = None
    if model.__sklearn_is_fitted__():
        try:  # the model's persistence protocol; checked as predict checks
            st = model.export_state()
        except ValueError as e:
            raise ValueError(f"cannot save this GaussianHMM: its parameters "
                             f"are not usable: {_one_line(e)}") from None
        mon = st["monitor"]
        fitted = {k: _encode(st[k]) for k in _HMM_FIELDS}
        fitted.update(
            n_features_in=int(st["n_features_in"]),
            feature_names_in=st["feature_names_in"],
            monitor=None if mon is None else {
                "history": _encode(mon["history"]), "iter": int(mon["iter"]),
                "converged": bool(mon["converged"])})
    return {"format": HMM_FORMAT, "format_version": FORMAT_VERSION,
            "fastem_version": __version__, "params": params, "fitted": fitted,
            "metadata": dict(metadata or {})}


def _depth(v, name):
    """Nesting depth of a list value (at most 3), for the priors."""
    depth, x = 0, v
    while isinstance(x, list):
        depth += 1
        if depth > 3:
            raise ModelFileError(f"{name}: expected a number or an array of "
                                 "at most 3 dimensions, found lists nested "
                                 "deeper")
        if not x:
            break
        x = x[0]
    return depth


def _hmm_from_dict(d, cls):
    if cls is None:
        from fastem.models.hmm import GaussianHMM as cls
    params, fitted = _body(d)
    known = set(cls().get_params())
    kwargs = {}
    for k, v in params.items():
        if k not in known:
            continue  # a parameter this version does not have
        name = f"parameter {k!r}"
        if k in _HMM_PRIORS and isinstance(v, list):
            v = _array(v, name, max(1, _depth(v, name)))
        elif isinstance(v, str) and k not in _HMM_STRINGS:
            if v not in _SPECIAL:
                raise ModelFileError(f"{name}: expected a number, found "
                                     f"{_what(v)}")
            v = _SPECIAL[v]
        elif not (v is None or isinstance(v, (bool, int, float, str))):
            raise ModelFileError(f"{name}: expected a number, a string, "
                                 f"true/false or null, found {_what(v)}")
        kwargs[k] = v
    model = _build(cls, kwargs)
    if fitted is not None:
        _hmm_set_fitted(model, fitted)
    return model


def _hmm_set_fitted(model, f):
    """Decode the ``fitted`` object and install it with ``import_state``.

    This reads the JSON (the fields present, arrays of the right depth);
    the model's :meth:`~fastem.GaussianHMM.import_state` checks the values
    and names the field that is wrong.
    """
    for k in _HMM_FIELDS:
        if k not in f:
            raise ModelFileError(f"model file lacks fitted field {k!r}")
    ndim = len(_SHAPES[model.covariance_type](1, 1))
    state = {"startprob": _array(f["startprob"], "startprob", 1),
             "transmat": _array(f["transmat"], "transmat", 2),
             "means": _array(f["means"], "means", 2),
             "covars": _array(f["covars"], "covars", ndim)}
    for k in ("n_features_in", "feature_names_in"):
        if k in f:
            state[k] = f[k]
    monitor = f.get("monitor")
    if monitor is not None:
        if not isinstance(monitor, dict):
            raise ModelFileError(f"monitor: expected an object or null, found "
                                 f"{_what(monitor)}")
        state["monitor"] = {
            **{k: monitor[k] for k in ("iter", "converged") if k in monitor},
            "history": _array(monitor.get("history", []), "monitor.history",
                              1)}
    try:
        model.import_state(state)
    except (TypeError, ValueError) as e:
        raise ModelFileError(_one_line(e)) from None


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
    One of mclust's models becomes the scikit-learn type of its layout
    (EII, VII: ``'spherical'``; EEI, VEI, EVI, VVI: ``'diag'``; EEE:
    ``'tied'``; the others ``'full'``): the same fitted density, but
    refitting it in scikit-learn fits the unconstrained type.

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
    ct = params.get("covariance_type")
    if ct in COVARIANCE_MODELS and ct not in SKLEARN_COVARIANCE_TYPES:
        code = COVARIANCE_MODELS[ct].code
        params["covariance_type"] = next(
            t for t in SKLEARN_COVARIANCE_TYPES
            if COVARIANCE_MODELS[t].code == code)
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
    if cls is None:
        from fastem.models.mixture import GaussianMixture as cls
    if not hasattr(estimator, "get_params") or not hasattr(estimator,
                                                           "covariance_type"):
        raise TypeError("from_sklearn expects a sklearn.mixture."
                        f"GaussianMixture, got {type(estimator).__name__}")
    params = estimator.get_params()
    known = set(cls().get_params())
    model = cls(**{k: v for k, v in params.items() if k in known})
    if hasattr(estimator, "weights_"):
        names = getattr(estimator, "feature_names_in_", None)
        model.import_state({
            "params": {
                "weights": np.array(estimator.weights_, dtype=np.float64),
                "means": np.array(estimator.means_, dtype=np.float64),
                "precisions_cholesky": np.array(
                    estimator.precisions_cholesky_, dtype=np.float64),
                "covariances": np.array(estimator.covariances_,
                                        dtype=np.float64)},
            "dtype": "float64", "converged": bool(estimator.converged_),
            "n_iter": int(estimator.n_iter_),
            "lower_bound": float(estimator.lower_bound_),
            "lower_bounds": [float(v) for v in
                             getattr(estimator, "lower_bounds_", [])],
            "n_features_in": int(getattr(estimator, "n_features_in_",
                                         estimator.means_.shape[1])),
            "feature_names_in": None if names is None else
            [str(n) for n in names]})
        # The same precisions, not recomputed (they differ in the last bit).
        model.precisions_ = np.array(estimator.precisions_, dtype=np.float64)
    return model


# --------------------------------------------- every other mixture model
# Models built on fastem.models.base.MixtureModel (fastem.models.MODELS
# lists them): the file holds the constructor parameters and the state of
# ``export_state()``; loading validates it through ``import_state()``.
_STATE_SCALARS = ("dtype", "converged", "n_iter", "lower_bound",
                  "lower_bounds", "n_features_in", "feature_names_in")


def _generic_format(cls):
    """``"fastem.<Name>"`` for a registered MixtureModel class, else None."""
    from fastem.models import MODELS
    from fastem.models.base import MixtureModel

    if not (isinstance(cls, type) and issubclass(cls, MixtureModel)):
        return None
    for name in MODELS:
        if name in (c.__name__ for c in cls.__mro__):
            return f"fastem.{name}"
    return None


def _generic_to_dict(model, metadata):
    from fastem import __version__

    params = {}
    for k, v in model.get_params().items():
        if k in _UNSAVED:
            continue
        if isinstance(v, (list, tuple, np.ndarray)):
            params[k] = _encode(v)
        else:
            params[k] = _param_value(k, v)
    fitted = None
    if getattr(model, "__sklearn_is_fitted__", lambda: False)():
        st = model.export_state()
        fitted = {k: _encode(v) for k, v in st["params"].items()}
        for k in _STATE_SCALARS:
            v = st[k]
            fitted[k] = _encode(v) if k.startswith("lower_bound") else v
    return {"format": _generic_format(type(model)),
            "format_version": FORMAT_VERSION, "fastem_version": __version__,
            "params": params, "fitted": fitted,
            "metadata": dict(metadata or {})}


def _build(cls, kwargs):
    """``cls(**kwargs)`` checked by the model's public ``check_params``.

    ``n_threads`` is checked here and set after the checks: a model saved on
    a bigger machine still loads (fitting it there says what to do).
    """
    n_threads = kwargs.pop("n_threads", None)
    if n_threads is not None and (isinstance(n_threads, bool) or not
                                  isinstance(n_threads, int) or n_threads < 1):
        raise ModelFileError(f"parameter 'n_threads': expected a positive "
                             f"integer or null, found {_what(n_threads)}")
    model = cls(**kwargs)
    try:
        model.check_params()
    except (TypeError, ValueError) as e:
        raise ModelFileError(f"invalid parameter: {_one_line(e)}") from None
    if n_threads is not None:
        model.set_params(n_threads=n_threads)
    return model


def _generic_from_dict(d, fmt, cls):
    import importlib

    from fastem.models import MODELS

    if cls is None:
        name = fmt.split(".", 1)[1]
        cls = getattr(importlib.import_module(MODELS[name]), name)
    params, fitted = _body(d)
    known = set(cls().get_params())
    kwargs = {}
    for k, v in params.items():
        if k not in known:
            continue  # a parameter this version does not have
        name = f"parameter {k!r}"
        if isinstance(v, list):
            v = _array(v, name, max(1, _depth(v, name)))
        elif not (v is None or isinstance(v, (bool, int, float, str))):
            raise ModelFileError(f"{name}: expected a number, a string, "
                                 f"true/false or null, found {_what(v)}")
        kwargs[k] = v
    model = _build(cls, kwargs)
    if fitted is None:
        return model
    for k in _STATE_SCALARS:
        if k not in fitted:
            raise ModelFileError(f"model file lacks fitted field {k!r}")
    state = {"params": {}}
    for k, v in fitted.items():
        if k not in _STATE_SCALARS:
            name = f"fitted field {k!r}"
            state["params"][k] = _array(v, name, max(1, _depth(v, name)))
    for k in _STATE_SCALARS:
        state[k] = fitted[k]
    if not isinstance(state["dtype"], str):
        raise ModelFileError(f"fitted field 'dtype': expected a string, "
                             f"found {_what(state['dtype'])}")
    for k in ("n_iter", "n_features_in"):
        v = state[k]
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ModelFileError(f"fitted field {k!r}: expected a "
                                 f"non-negative integer, found {_what(v)}")
    if not isinstance(state["converged"], bool):
        raise ModelFileError(f"fitted field 'converged': expected true or "
                             f"false, found {_what(state['converged'])}")
    state["lower_bound"] = _number(state["lower_bound"],
                                   "fitted field 'lower_bound'")
    state["lower_bounds"] = _array(state["lower_bounds"],
                                   "fitted field 'lower_bounds'", 1).tolist()
    names = state["feature_names_in"]
    if names is not None and not (isinstance(names, list) and all(
            isinstance(n, str) for n in names)):
        raise ModelFileError("fitted field 'feature_names_in': expected a "
                             f"list of strings or null, found {_what(names)}")
    try:
        model.import_state(state)
    except (TypeError, ValueError) as e:
        raise ModelFileError(f"invalid fitted parameters: {_one_line(e)}") \
            from None
    return model
