"""mclust's fourteen covariance models (Celeux & Govaert 1995).

Each component's covariance is ``Sigma_k = lambda_k D_k A_k D_k^T``: a
volume ``lambda_k`` (a scalar, ``det(Sigma_k) ** (1/D)``), a shape ``A_k``
(diagonal, ``det(A_k) = 1``) and an orientation ``D_k`` (orthogonal).  The
three letters of a model's name say, in that order, whether the volume, the
shape and the orientation are Equal across components, Variable, or the
Identity (shape ``I``: spherical; orientation ``I``: the axes)::

    EII VII              spherical layout   covariances_ (K,)
    EEI VEI EVI VVI      diag layout        covariances_ (K, D)
    EEE                  tied layout        covariances_ (D, D)
    VEE EVE VVE EEV VEV EVV VVV
                         full layout        covariances_ (K, D, D)

Every model runs on one of the four compiled E-step layouts (the layout
gives its statistics: the per-component scatter diagonals, the pooled
scatter, or the per-component scatter matrices ``W_k``); only the M-step
differs.  A shared model (EII, EEI) keeps scikit-learn's per-component
shapes, its rows equal.  scikit-learn's four names are aliases of four of
them and run the very same code: ``'full'`` = VVV, ``'tied'`` = EEE,
``'diag'`` = VVI, ``'spherical'`` = VII (a model given as ``'VVV'`` keeps that
name in ``covariance_type`` and in saved files; its fit is bit-identical to
``'full'``'s).

The M-steps are mclust's (version 6.0.0, ``mstep``/``me`` and their Fortran
``ms*``/``me*`` routines).  Closed forms: EII, VII, EEI, VVI, EEE, EVI, EEV,
EVV, VVV.  The others have none and iterate conditional updates inside the
M-step, as mclust does (tolerance :data:`MSTEP_TOL`, mclust's
``emControl()$tol[2] = sqrt(eps)``, with the same convergence measure):

* VEI -- scales given the shape, then the shape given the scales;
* VEE -- the common matrix ``C = D A D^T`` given the scales, then the scales;
* VEV -- orientations from each ``W_k``'s eigenvectors, then scales and
  shape alternately (on ``W_k``'s eigenvalues);
* EVE, VVE -- the common orientation by the two MM steps of Browne &
  McNicholas (2014), then the shapes (and volumes) given it.

Each update maximizes the expected complete log-likelihood over its block
of parameters given the others (the MM steps do not decrease it), so an
M-step started from the *current* parameters never decreases it: EM is then
a Generalized EM and the log-likelihood never decreases.  ``estimate``'s
``previous`` argument carries the current covariances; without them
(initialization from labels or responsibilities) the iterations start where
mclust's ``mstep`` starts: unit scales and shapes (VEI, VEE: the
equal-volume estimate), the summed eigenvalues (VEV), the identity
orientation and unit shapes (EVE, VVE).

``reg_covar`` enters the new models through the scatter: each component's
``W_k`` becomes ``W_k + reg_covar * n_k * I`` (its sample covariance gets
``reg_covar`` on the diagonal) before the constrained estimate.  For
scikit-learn's four types that is exactly their ``reg_covar`` (added to the
diagonal of the covariances), and ``reg_covar=0`` gives mclust's estimates.

With one feature the shape and orientation are 1: every name is mclust's
univariate ``"E"`` (EII, EEI, EVI, EEE, EVE, EEV, EVV: one variance) or
``"V"`` (VII, VEI, VVI, VEE, VVE, VEV, VVV: a variance per component), with
mclust's parameter counts.

VVE differs from mclust in one point: mclust updates the common orientation
by minimizing ``sum_k tr(W_k D A_k^-1 D^T)``, dropping the volumes
``lambda_k`` (``msvve``), which is not the likelihood's objective when the
volumes differ (its M-step can then decrease the expected log-likelihood).
fastem weights each ``W_k`` by ``1 / lambda_k``, so that the M-step is a
monotone GEM step; the two agree when the volumes are equal.
"""

import numpy as np

from fastem.families.covariances import (
    COVARIANCE_MODELS,
    MCLUST_COVARIANCE_TYPES,
    Diag,
    Full,
    Spherical,
    Tied,
)

__all__ = ["MCLUST_MODELS", "MSTEP_MAX_ITER", "MSTEP_TOL"]

#: Tolerance of the iterative M-steps (mclust's ``emControl()$tol[2]``).
MSTEP_TOL = float(np.sqrt(np.finfo(np.float64).eps))
#: Most inner iterations of one M-step (mclust's default is unlimited).
MSTEP_MAX_ITER = 10_000


# ---------------------------------------------------------------- helpers
def _eye_add(W, value):
    """``W + value[k] * I`` for a stack (K, D, D) (a new array)."""
    D = W.shape[-1]
    out = W.copy()
    idx = np.arange(D)
    out[..., idx, idx] += value[..., None]
    return out


def _sym(S):
    return 0.5 * (S + np.swapaxes(S, -1, -2))


def _geomean(v, axis=-1):
    """Geometric mean along ``axis`` (``det ** (1/D)`` of a diagonal)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.exp(np.log(v).mean(axis=axis))


def _root_det(S):
    """``det(S) ** (1/D)`` for a stack of symmetric matrices."""
    with np.errstate(divide="ignore", invalid="ignore"):
        sign, logdet = np.linalg.slogdet(S)
        return np.where(sign > 0, np.exp(logdet / S.shape[-1]), np.nan)


def _compose(D, diag):
    """``D diag(a) D^T`` for stacks: ``D`` (..., p, p), ``diag`` (..., p)."""
    return _sym(np.matmul(D * diag[..., None, :], np.swapaxes(D, -1, -2)))


def _diag_scatter(nk, delta, scatter, reg_covar):
    """Diagonals (K, D) of the centred (regularized) scatter ``W_k``."""
    return scatter - nk[:, None] * delta * delta + reg_covar * nk[:, None]


def _full_scatter(nk, delta, scatter, reg_covar):
    """Return the centred (regularized) scatter matrices ``W_k`` (K, D, D)."""
    W = scatter - nk[:, None, None] * np.einsum("ki,kj->kij", delta, delta)
    return _eye_add(_sym(W), reg_covar * nk)


def _rel_change(new, old):
    return float(np.max(np.abs(new - old) / (1.0 + np.abs(new))))


def _common_orientation(cov):
    """Return an orientation shared by the stack ``cov`` (K, p, p).

    Eigenvectors of a generic positive combination of the (commuting)
    covariances: they diagonalize every one of them, even when one of them
    has tied eigenvalues.
    """
    K = cov.shape[0]
    scale = _root_det(cov)
    c = 1.0 + np.sqrt(2.0) * np.arange(K) / max(K, 1)
    M = np.einsum("k,kij->ij", c / scale, cov)
    return np.linalg.eigh(_sym(M))[1]


# ------------------------------------------------ models on the diag layout
class _Mclust:
    """Marks a model as one of mclust's (and carries its parameter count)."""

    mclust = True
    iterative = False

    def _count(self, K, D):
        raise NotImplementedError

    def n_parameters(self, K, D):
        return int(self._count(int(K), int(D)))


class EII(_Mclust, Spherical):
    """One variance shared by every component and feature (mclust EII)."""

    name, shared = "EII", True

    def _count(self, K, D):
        return 1

    def estimate(self, nk, delta, scatter, reg_covar, previous=None):
        w = _diag_scatter(nk, delta, scatter, reg_covar)
        D = w.shape[1]
        return np.full(nk.shape[0], w.sum() / (nk.sum() * D))


class VII(Spherical):
    """One variance per component (mclust VII, scikit-learn 'spherical')."""

    name = "VII"
    mclust = True


class EEI(_Mclust, Diag):
    """One diagonal covariance shared by every component (mclust EEI)."""

    name, shared = "EEI", True

    def _count(self, K, D):
        return D

    def estimate(self, nk, delta, scatter, reg_covar, previous=None):
        w = _diag_scatter(nk, delta, scatter, reg_covar)
        return np.tile(w.sum(axis=0) / nk.sum(), (nk.shape[0], 1))


class VEI(_Mclust, Diag):
    """Diagonal, variable volumes, one shape (mclust VEI; iterative)."""

    name, iterative = "VEI", True

    def _count(self, K, D):
        return K + D - 1

    def estimate(self, nk, delta, scatter, reg_covar, previous=None,
                 tol=None, max_iter=None, info=None):
        w = _diag_scatter(nk, delta, scatter, reg_covar)
        K, D = w.shape
        tol = MSTEP_TOL if tol is None else tol
        max_iter = MSTEP_MAX_ITER if max_iter is None else max_iter
        if previous is not None and np.shape(previous) == (K, D):
            prev = np.asarray(previous, dtype=np.float64)
            scale = _geomean(prev)
            shape = _geomean(prev / scale[:, None], axis=0)
            shape = shape / _geomean(shape)
        else:  # mclust's msvei: unit scales and shape
            scale, shape = np.ones(K), np.ones(D)
        it, err = 0, np.inf
        with np.errstate(all="ignore"):
            while True:
                it += 1
                old_scale, old_shape = scale, shape
                scale = (w / shape).sum(axis=1) / (D * nk)
                shape = (w / scale[:, None]).sum(axis=0)
                shape = shape / _geomean(shape)
                err = max(_rel_change(scale, old_scale),
                          _rel_change(shape, old_shape))
                if not (err > tol and it <= max_iter):
                    break
        if info is not None:
            info.update(n_iter=it, error=err)
        return scale[:, None] * shape


class EVI(_Mclust, Diag):
    """Diagonal, one volume, variable shapes (mclust EVI)."""

    name = "EVI"

    def _count(self, K, D):
        return 1 + K * (D - 1)

    def estimate(self, nk, delta, scatter, reg_covar, previous=None):
        w = _diag_scatter(nk, delta, scatter, reg_covar)
        g = _geomean(w)  # det(diag W_k) ** (1/D)
        return (g.sum() / nk.sum()) * (w / g[:, None])


class VVI(Diag):
    """A diagonal covariance per component (mclust VVI, 'diag')."""

    name = "VVI"
    mclust = True


# ------------------------------------------- models on the tied / full layout
class EEE(Tied):
    """One full covariance shared by every component (mclust EEE, 'tied')."""

    name = "EEE"
    mclust = True


class VVV(Full):
    """A full covariance per component (mclust VVV, 'full')."""

    name = "VVV"
    mclust = True


class _FullModel(_Mclust, Full):
    """A constrained model on the full layout (statistics ``W_k``)."""

    def estimate(self, nk, delta, scatter, reg_covar, previous=None,
                 tol=None, max_iter=None, info=None):
        W = _full_scatter(nk, delta, scatter, reg_covar)
        K, D = delta.shape
        prev = None
        if previous is not None and np.shape(previous) == (K, D, D):
            prev = np.asarray(previous, dtype=np.float64)
            if not np.all(np.isfinite(prev)):
                prev = None
        kw = {}
        if self.iterative:
            kw = {"tol": MSTEP_TOL if tol is None else tol,
                  "max_iter": MSTEP_MAX_ITER if max_iter is None else max_iter,
                  "info": info}
        with np.errstate(all="ignore"):
            return self._estimate(nk, W, prev, **kw)

    def _estimate(self, nk, W, prev, **kw):
        raise NotImplementedError


class EEV(_FullModel):
    """One volume and shape, variable orientations (mclust EEV)."""

    name = "EEV"

    def _count(self, K, D):
        return 1 + (D - 1) + K * D * (D - 1) // 2

    def _estimate(self, nk, W, prev):
        omega, Q = np.linalg.eigh(W)  # the same (ascending) order for all k
        return _compose(Q, np.broadcast_to(omega.sum(axis=0) / nk.sum(),
                                           omega.shape))


class EVV(_FullModel):
    """One volume, variable shapes and orientations (mclust EVV)."""

    name = "EVV"

    def _count(self, K, D):
        return 1 + K * (D - 1) + K * D * (D - 1) // 2

    def _estimate(self, nk, W, prev):
        r = _root_det(W)
        return (r.sum() / nk.sum()) * (W / r[:, None, None])


class VEE(_FullModel):
    """Variable volumes, one shape and orientation (mclust VEE; iterative)."""

    name, iterative = "VEE", True

    def _count(self, K, D):
        return K + (D - 1) + D * (D - 1) // 2

    def _estimate(self, nk, W, prev, tol, max_iter, info):
        K, D = W.shape[:2]
        scale = _root_det(prev) if prev is not None else np.ones(K)
        it, err, target = 0, np.inf, None
        while True:
            it += 1
            C = np.einsum("kij,k->ij", W, 1.0 / scale)
            C = _sym(C) / _geomean(np.linalg.eigvalsh(C))
            Ci = np.linalg.inv(C)
            scale = np.einsum("kij,ji->k", W, Ci) / (D * nk)
            new = nk.sum() * D + D * float(np.sum(np.log(scale) * nk))
            err = (np.inf if target is None
                   else abs(new - target) / (1.0 + abs(new)))
            target = new
            if not (err > tol and it < max_iter):
                break
        if info is not None:
            info.update(n_iter=it, error=err)
        return scale[:, None, None] * _sym(C)


class VEV(_FullModel):
    """Variable volumes and orientations, one shape (mclust VEV; iterative)."""

    name, iterative = "VEV", True

    def _count(self, K, D):
        return K + (D - 1) + K * D * (D - 1) // 2

    def _estimate(self, nk, W, prev, tol, max_iter, info):
        K, D = W.shape[:2]
        omega, Q = np.linalg.eigh(W)
        omega, Q = omega[:, ::-1], Q[:, :, ::-1]  # descending (mclust: SVD)
        if prev is not None:
            lam = np.linalg.eigvalsh(prev)[:, ::-1]
            shape = _geomean(lam / _geomean(lam)[:, None], axis=0)
        else:  # mclust's msvev: the summed eigenvalues
            shape = omega.sum(axis=0)
        shape = shape / _geomean(shape)
        scale = np.full(K, np.nan)
        it, err = 0, np.inf
        while max_iter > 0:
            old_shape, old_scale = shape, scale
            scale = (omega / shape).sum(axis=1) / (nk * D)
            shape = (omega / scale[:, None]).sum(axis=0)
            shape = shape / _geomean(shape)
            it += 1
            err = max(_rel_change(shape, old_shape),
                      _rel_change(scale, old_scale)) if it > 1 else np.inf
            if not (err >= tol and it < max_iter):
                break
        if info is not None:
            info.update(n_iter=it, error=err)
        return _compose(Q, scale[:, None] * shape)


class _CommonOrientation(_FullModel):
    """EVE and VVE: one orientation, by Browne & McNicholas' MM steps."""

    iterative = True
    variable_volume = False
    #: weight each W_k by 1 / lambda_k in the orientation update (VVE); mclust
    #: leaves the weights out (set False to reproduce its msvve exactly)
    volume_weights = False

    def _estimate(self, nk, W, prev, tol, max_iter, info):
        K, D = W.shape[:2]
        if prev is not None:
            Q = _common_orientation(prev)
            d = (Q * np.matmul(prev, Q)).sum(axis=1)  # diag(Q^T S_k Q)
            vol = _geomean(d)
            shape = d / vol[:, None]
        else:  # mclust's start: the axes, unit shapes
            Q, shape, vol = np.eye(D), np.ones((K, D)), np.ones(K)
        # The objective over the orientation is sum_k tr(W_k Q A_k^-1 Q^T)
        # / lambda_k; with equal volumes (EVE) the volumes drop out.
        wt = 1.0 / vol if self.volume_weights else np.ones(K)
        top = np.linalg.eigvalsh(W)[:, -1]  # largest eigenvalue of each W_k
        eye = np.eye(D)
        # W_k - omega_k I, weighted: MM 1's matrices (omega_k >= the largest
        # eigenvalue of the weighted W_k)
        Wt = W * wt[:, None, None]
        Ws = Wt - (top * wt)[:, None, None] * eye
        it, err, target = 0, np.inf, None
        while True:
            it += 1
            inv = 1.0 / shape
            # MM 1: F = sum_k A_k^-1 Q^T (W_k - omega_k I)
            F = (np.matmul(Q.T, Ws) * inv[:, :, None]).sum(axis=0)
            P, _, Rt = np.linalg.svd(F)
            Q = (P @ Rt).T
            # MM 2: F = sum_k W_k Q (A_k^-1 - max(1 / a_k) I)
            F = (np.matmul(Wt, Q)
                 * (inv - inv.max(axis=1)[:, None])[:, None, :]).sum(axis=0)
            P, _, Rt = np.linalg.svd(F)
            Q = P @ Rt
            d = (Q * np.matmul(W, Q)).sum(axis=1)  # diag(Q^T W_k Q)
            if self.variable_volume:
                d = d / nk[:, None]
                vol = _geomean(d)
                shape = d / vol[:, None]
                if self.volume_weights:
                    Wt = W / vol[:, None, None]
                    Ws = Wt - (top / vol)[:, None, None] * eye
                    # the log-determinant part of the objective (its trace
                    # part is D * N at the optimal volumes and shapes)
                    new = float(np.sum(nk * np.log(vol)))
                else:  # mclust's target
                    new = float(np.sum(nk * D * vol))
            else:
                shape = d / _geomean(d)[:, None]
                new = float(np.sum(d / shape))
            err = (np.inf if target is None
                   else abs(new - target) / (1.0 + abs(new)))
            target = new
            if not (err > tol and it < max_iter):
                break
        if not self.variable_volume:
            vol = np.full(K, target / (nk.sum() * D))
        if info is not None:
            info.update(n_iter=it, error=err)
        return _compose(np.broadcast_to(Q, (K, D, D)), vol[:, None] * shape)


class EVE(_CommonOrientation):
    """One volume and orientation, variable shapes (mclust EVE; iterative)."""

    name = "EVE"

    def _count(self, K, D):
        return 1 + K * (D - 1) + D * (D - 1) // 2


class VVE(_CommonOrientation):
    """Variable volumes and shapes, one orientation (mclust VVE; iterative)."""

    name, variable_volume, volume_weights = "VVE", True, True

    def _count(self, K, D):
        return K + K * (D - 1) + D * (D - 1) // 2


#: mclust's fourteen models, by name, in mclust's order.
MCLUST_MODELS = {m.name: m for m in (
    EII(), VII(), EEI(), VEI(), EVI(), VVI(), EEE(), VEE(), EVE(), VVE(),
    EEV(), VEV(), EVV(), VVV())}
assert tuple(MCLUST_MODELS) == MCLUST_COVARIANCE_TYPES
COVARIANCE_MODELS.update(MCLUST_MODELS)
