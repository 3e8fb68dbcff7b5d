"""scikit-learn estimator conventions without importing scikit-learn."""

import inspect


class BaseEstimator:
    """Parameter handling and repr following scikit-learn's conventions.

    ``get_params`` / ``set_params`` / ``repr`` as scikit-learn defines them, so
    that ``sklearn.base.clone``, pipelines and grid search work, while
    ``import fastem`` never imports scikit-learn.
    """

    _estimator_type = "DensityEstimator"

    @classmethod
    def _get_param_names(cls):
        sig = inspect.signature(cls.__init__)
        return sorted(p.name for p in sig.parameters.values()
                      if p.name != "self" and p.kind != p.VAR_KEYWORD)

    def get_params(self, deep=True):
        """Get parameters for this estimator.

        Parameters
        ----------
        deep : bool, default=True
            Also return the parameters of contained estimators (none here).

        Returns
        -------
        dict
            Parameter names mapped to their values.
        """
        out = {}
        for name in self._get_param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                for k, v in value.get_params().items():
                    out[f"{name}__{k}"] = v
            out[name] = value
        return out

    def set_params(self, **params):
        """Set the parameters of this estimator.

        Parameters
        ----------
        **params : dict
            Estimator parameters.

        Returns
        -------
        self
        """
        valid = self._get_param_names()
        for key, value in params.items():
            if key not in valid:
                raise ValueError(
                    f"Invalid parameter {key!r} for estimator "
                    f"{type(self).__name__}. Valid parameters are: {valid!r}.")
            setattr(self, key, value)
        return self

    def __repr__(self):
        init = inspect.signature(type(self).__init__).parameters
        changed = []
        for name in self._get_param_names():
            value = getattr(self, name)
            default = init[name].default
            try:
                same = value is default or bool(value == default)
            except Exception:  # arrays and the like
                same = False
            if not same:
                changed.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(changed)})"

    def __sklearn_tags__(self):
        # Only ever called by scikit-learn, so importing it here is free.
        from sklearn.base import BaseEstimator as _SkBase

        tags = _SkBase.__sklearn_tags__(self)
        tags.estimator_type = "density_estimator"
        return tags
