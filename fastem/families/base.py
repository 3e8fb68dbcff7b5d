"""What a mixture family supplies, and the additive statistics most families use.

A *family* is an object (one per setting: a Poisson family with its
``reg_rate``, a Gaussian family with its covariance layout and
``reg_covar``) with these methods; :class:`fastem.models.base.MixtureModel`
builds every estimator feature -- in-memory, chunked, online and Dask
fitting, sample weights, ``n_init``, warm start, prediction, sampling,
save/load, BIC/AIC and :func:`fastem.select` -- from them alone.

``name``
    Short name, used in files and messages.
``check_data(X, where)``
    Raise a clear ``ValueError`` when validated float data is outside the
    family's support (negative counts for Poisson, ...).
``stats(params, X, w)``
    The additive statistics of one chunk (one kernel pass): they must
    support ``a + b`` (with ``None`` as zero), ``scale(f)`` and expose
    ``loglik``, ``weight_sum``, ``n_samples`` and ``mean_loglik``.
``outputs(params, X, lse, resp, label)``
    Per-row log-likelihood, responsibilities and label (each or None).
``m_step(stats, params)``
    The next parameters (``params`` are the current ones: a component that
    lost all its weight keeps its previous values).
``stats_from_labels(X, w, labels, K)``
    Statistics of hard assignments (initialization from k-means or chosen
    rows).
``n_parameters(params)``
    Free parameters, for BIC and AIC.
``sample_component(params, k, n, rng)``
    ``n`` draws from component ``k``.
``to_fields(params)`` / ``from_fields(fields)``
    The parameters as named float64 arrays (for :mod:`fastem.io`) and
    back, validated, raising ``ValueError`` naming the field.
``n_components(params)`` / ``n_features(params)``

Parameters are any object with a ``weights`` array (K,); the rest is the
family's.
"""

from dataclasses import dataclass, field

import numpy as np

__all__ = ["OutputsFromPass", "SumStats"]


@dataclass
class SumStats:
    """Additive statistics: named arrays that add elementwise.

    Enough for every family whose statistics are plain sums of per-row
    terms (Poisson, Bernoulli, categorical counts).

    Attributes
    ----------
    arrays : dict of str to ndarray
        The sums, e.g. ``nk`` (K,) and ``sums`` (K, D).
    loglik : float
        Sum over rows of ``w_i log p(x_i)``.
    weight_sum : float
        Sum of the sample weights of the rows seen.
    n_samples : int
        Rows seen.
    """

    arrays: dict = field(default_factory=dict)
    loglik: float = 0.0
    weight_sum: float = 0.0
    n_samples: int = 0

    def __getitem__(self, name):
        return self.arrays[name]

    def __add__(self, other):
        if other is None:
            return self
        if not isinstance(other, SumStats):
            return NotImplemented
        if self.arrays.keys() != other.arrays.keys() or any(
                self.arrays[k].shape != other.arrays[k].shape
                for k in self.arrays):
            raise ValueError(
                "cannot add statistics of different shapes: "
                f"{ {k: v.shape for k, v in self.arrays.items()} } and "
                f"{ {k: v.shape for k, v in other.arrays.items()} }.")
        return SumStats({k: v + other.arrays[k] for k, v in self.arrays.items()},
                        self.loglik + other.loglik,
                        self.weight_sum + other.weight_sum,
                        self.n_samples + other.n_samples)

    __radd__ = __add__

    def scale(self, factor):
        """Return the statistics multiplied by ``factor`` (decayed averages).

        Parameters
        ----------
        factor : float

        Returns
        -------
        SumStats
        """
        f = float(factor)
        return SumStats({k: v * f for k, v in self.arrays.items()},
                        self.loglik * f, self.weight_sum * f, self.n_samples)

    @property
    def mean_loglik(self):
        """Weighted mean log-likelihood per row (the lower bound)."""
        return self.loglik / self.weight_sum if self.weight_sum > 0 else -np.inf


def mixing_weights(nk):
    """Mixing weights from responsibilities, guarded against empty components.

    scikit-learn's ``10 * eps`` guard, scaled by the mean weight so that
    sample weights of any magnitude give the same fit.

    Parameters
    ----------
    nk : ndarray of shape (K,)

    Returns
    -------
    nk_guarded, weights : ndarray of shape (K,)
    """
    total = float(nk.sum())
    scale = total / nk.shape[0] if total > 0 else 1.0
    nk = nk + 10 * np.finfo(np.float64).eps * scale
    return nk, nk / nk.sum()


class OutputsFromPass:
    """``outputs`` for a family whose kernel pass also writes per-row outputs.

    The family defines ``_pass(params, X, w, want_stats, lse, resp, label)``
    (the outputs are written where their length is not zero) and
    ``n_components(params)``; this mixin gives it :meth:`outputs`.
    """

    def outputs(self, params, X, lse=False, resp=False, label=False):
        """Per-row log-likelihood, responsibilities and labels.

        Parameters
        ----------
        params : the family's parameters
        X : ndarray of shape (n, D)
        lse, resp, label : bool
            Which outputs to compute.

        Returns
        -------
        tuple
            ``(lse, resp, label)``, None for those not asked for.
        """
        N, K = X.shape[0], self.n_components(params)
        out = (np.empty(N) if lse else np.empty(0),
               np.empty((N, K)) if resp else np.empty((0, K)),
               np.empty(N, dtype=np.int64) if label else np.empty(0, np.int64))
        self._pass(params, X, np.empty(0), False, *out)
        return tuple(o if want else None
                     for o, want in zip(out, (lse, resp, label)))
