"""Covariance models of the Gaussian family: each layout in one place.

A covariance model says, for one ``covariance_type``, everything the
Python side needs: which compiled E-step layout it runs on (``code``: 0
full, 1 tied, 2 diag, 3 spherical, see :mod:`fastem.kernels.gaussian`), the
shape of its covariances, its free-parameter count, its M-step
(:meth:`estimate`, covariances from the centred weighted scatter), the
Cholesky factors of its precisions and back, the kernel's view of those
factors, how its statistics re-centre, its degeneracy test and its
sampling.  :data:`COVARIANCE_MODELS` registers them by name.

A new covariance type whose E-step is one of the four layouts is a new
class here, or in a module of its own, plus one line in
:data:`COVARIANCE_MODELS`: mclust's fourteen models (EII ... VVV, see
:mod:`fastem.families.mclust`) are registered that way, beside
scikit-learn's four names (aliases of VVV, EEE, VVI and VII).
"""

import numpy as np

__all__ = ["ALIASES", "COVARIANCE_MODELS", "ComponentCollapseError",
           "CovarianceModel", "MCLUST_COVARIANCE_TYPES",
           "SKLEARN_COVARIANCE_TYPES"]


class ComponentCollapseError(ValueError):
    """A component's covariance is not positive definite after the M-step."""


def collapse_error(bad):
    """Return the error for components ``bad`` (covariance not usable)."""
    return ComponentCollapseError(
        "Fitting the mixture model failed because some components have "
        "ill-defined empirical covariance (for instance caused by singleton "
        "or collapsed samples). Try to decrease the number of components, "
        f"increase reg_covar, or scale the input data. (Component(s) {bad}.)")


def _cholesky_ok(c):
    try:
        L = np.linalg.cholesky(c)
    except np.linalg.LinAlgError:
        return False
    return bool(np.isfinite(L).all() and (np.diag(L) > 0).all())


def _tri_inv_lower(L):
    """Inverses of a stack (K, D, D) of lower-triangular matrices.

    Forward substitution, row by row for all K matrices at once (D NumPy
    operations instead of K * D).
    """
    K, D, _ = L.shape
    inv = np.zeros_like(L)
    diag = np.diagonal(L, axis1=1, axis2=2)
    for i in range(D):
        inv[:, i, i] = 1.0 / diag[:, i]
        if i:
            row = np.matmul(L[:, i:i + 1, :i], inv[:, :i, :i])[:, 0]
            inv[:, i, :i] = -row / diag[:, i:i + 1]
    return inv


class CovarianceModel:
    """Interface (and the shared code) of a covariance model.

    Attributes
    ----------
    name : str
        The ``covariance_type``.
    code : int
        The compiled E-step layout it runs on.
    square : bool
        Whether covariances are matrices (full, tied) or variances.
    """

    name = None
    code = None
    square = False
    #: the M-step iterates inside (a Generalized EM step, mclust's VEI, ...)
    iterative = False
    #: one of mclust's fourteen model names (fastem.families.mclust)
    mclust = False

    def shape(self, K, D):
        """Shape of the covariances for ``K`` components, ``D`` features."""
        raise NotImplementedError

    def n_parameters(self, K, D):
        """Free parameters of the covariances (scikit-learn's counts)."""
        raise NotImplementedError

    def estimate(self, nk, delta, scatter, reg_covar, previous=None):
        """Return the M-step's covariances, from the statistics.

        ``nk`` (K,) guarded weights, ``delta`` (K, D) new means minus the
        statistics' reference, ``scatter`` the weighted scatter around the
        reference in this layout's statistics shape.  ``previous``: the
        current covariances (this model's shape) or None; an iterative
        M-step starts from them (a closed form ignores them).
        """
        raise NotImplementedError

    def scatter_shape(self, K, D):
        """Shape of the accumulated scatter.

        Full (K, D, D), tied (D, D), otherwise the diagonals (K, D).
        """
        return (K, D)

    def shift_scatter(self, scatter, outer):
        """Scatter around a new reference, given the (K, D, D) correction."""
        return scatter + np.diagonal(outer, axis1=1, axis2=2)

    def precision_cholesky(self, cov):
        """Cholesky factors of the precisions (scikit-learn's ``U``).

        Raises
        ------
        ComponentCollapseError
            If a covariance is not positive definite.
        """
        if self.square:
            c3 = cov.reshape((-1,) + cov.shape[-2:])
            # one LAPACK call for the whole stack; per component only to
            # name the failing ones
            try:
                L = np.linalg.cholesky(c3)
                ok = (np.isfinite(L).all(axis=(1, 2))
                      & (np.diagonal(L, axis1=1, axis2=2) > 0).all(axis=1))
            except np.linalg.LinAlgError:
                ok = np.array([_cholesky_ok(c) for c in c3])
            if not ok.all():
                raise collapse_error(np.flatnonzero(~ok).tolist())
            return np.swapaxes(_tri_inv_lower(L), 1, 2).reshape(cov.shape)
        bad = np.flatnonzero(~(cov > 0).reshape(cov.shape[0], -1).all(axis=1))
        if bad.size:
            raise collapse_error(bad.tolist())
        return 1.0 / np.sqrt(cov)

    def covariances(self, pc):
        """Covariances from the precisions' Cholesky factors."""
        if self.square:
            inv_u = np.linalg.inv(pc)  # cov = inv(U U^T) = inv(U)^T inv(U)
            return np.swapaxes(inv_u, -1, -2) @ inv_u
        return 1.0 / pc ** 2

    def precisions(self, pc):
        """Precisions from their Cholesky factors."""
        return pc ** 2

    def cholesky_of_precisions(self, prec):
        """Cholesky factors of given precisions (upper, ``U U^T = P``)."""
        if not self.square:
            return np.sqrt(prec)
        p3 = prec.reshape((-1,) + prec.shape[-2:])
        out = np.empty_like(p3)
        for k, p in enumerate(p3):
            # P = U U^T with U upper: U = flip(chol(flip(P)))
            L = np.linalg.cholesky(p[::-1, ::-1])
            out[k] = L[::-1, ::-1]
        return out.reshape(prec.shape)

    def kernel_prec(self, pc, K, D):
        """Return ``(prec, logdet)`` as the kernel takes them.

        The factors reshaped for the kernel, (K, D, D) or (K, 1, D): tied
        factors are repeated per component and spherical ones over the
        features, as the full and diag layouts they run on take them; and
        each component's log-determinant (K,).
        """
        raise NotImplementedError

    def variance_range(self, cov):
        """Smallest and largest variance of each component.

        Of the shared covariance for a shared model; used by
        :func:`~fastem.families.gaussian.degenerate_components`.
        """
        if self.square:
            with np.errstate(all="ignore"):
                lam = np.linalg.eigvalsh(cov.reshape((-1,) + cov.shape[-2:]))
            return lam[:, 0], lam[:, -1]
        return cov, cov

    shared = False  # one covariance for all components (degenerate: all)

    def sample(self, rng, mean, cov, k, n):
        """Return ``n`` draws around ``mean`` with component ``k``'s covariance.

        As scikit-learn draws them (the same generator calls).
        """
        return mean + rng.standard_normal(size=(n, mean.shape[0])) * np.sqrt(
            cov[k])


class Full(CovarianceModel):
    """A full covariance matrix per component."""

    name, code, square = "full", 0, True

    def shape(self, K, D):
        return (K, D, D)

    def n_parameters(self, K, D):
        return K * D * (D + 1) // 2

    def scatter_shape(self, K, D):
        return (K, D, D)

    def shift_scatter(self, scatter, outer):
        return scatter + outer

    def estimate(self, nk, delta, scatter, reg_covar, previous=None):
        D = delta.shape[1]
        cov = scatter - nk[:, None, None] * np.einsum("ki,kj->kij", delta,
                                                       delta)
        cov /= nk[:, None, None]
        cov = 0.5 * (cov + np.swapaxes(cov, 1, 2))
        cov[:, np.arange(D), np.arange(D)] += reg_covar
        return cov

    def precisions(self, pc):
        return np.einsum("kij,klj->kil", pc, pc)

    def kernel_prec(self, pc, K, D):
        prec = pc.reshape(K, D, D)
        return prec, np.log(np.diagonal(prec, axis1=1, axis2=2)).sum(axis=1)

    def sample(self, rng, mean, cov, k, n):
        return rng.multivariate_normal(mean, cov[k], int(n))


class Tied(CovarianceModel):
    """One full covariance matrix shared by all components."""

    name, code, square, shared = "tied", 1, True, True

    def shape(self, K, D):
        return (D, D)

    def n_parameters(self, K, D):
        return D * (D + 1) // 2

    def scatter_shape(self, K, D):
        return (D, D)

    def shift_scatter(self, scatter, outer):
        return scatter + outer.sum(axis=0)

    def estimate(self, nk, delta, scatter, reg_covar, previous=None):
        D = delta.shape[1]
        cov = scatter - np.einsum("k,ki,kj->ij", nk, delta, delta)
        cov /= nk.sum()
        cov = 0.5 * (cov + cov.T)
        cov[np.arange(D), np.arange(D)] += reg_covar
        return cov

    def precisions(self, pc):
        return pc @ pc.T

    def kernel_prec(self, pc, K, D):
        # repeated per component: tied models run on the full layout's
        # kernels (fastem.families.gaussian._code)
        pc = np.asarray(pc, dtype=np.float64).reshape(1, D, D)
        return (np.repeat(pc, K, axis=0),
                np.full(K, np.log(np.diag(pc[0])).sum()))

    def sample(self, rng, mean, cov, k, n):
        return rng.multivariate_normal(mean, cov, int(n))


class Diag(CovarianceModel):
    """A diagonal covariance (a variance per feature) per component."""

    name, code = "diag", 2

    def shape(self, K, D):
        return (K, D)

    def n_parameters(self, K, D):
        return K * D

    def estimate(self, nk, delta, scatter, reg_covar, previous=None):
        return scatter / nk[:, None] - delta * delta + reg_covar

    def kernel_prec(self, pc, K, D):
        return pc.reshape(K, 1, D), np.log(pc).sum(axis=1)

    def variance_range(self, cov):
        return cov.min(axis=1), cov.max(axis=1)


class Spherical(CovarianceModel):
    """One variance per component, the same for every feature."""

    name, code = "spherical", 3

    def shape(self, K, D):
        return (K,)

    def n_parameters(self, K, D):
        return K

    def estimate(self, nk, delta, scatter, reg_covar, previous=None):
        return (scatter / nk[:, None] - delta * delta + reg_covar).mean(axis=1)

    def kernel_prec(self, pc, K, D):
        # repeated over the features: spherical models run on the diag
        # layout's kernels (fastem.families.gaussian._code)
        pc = np.asarray(pc, dtype=np.float64).reshape(K, 1, 1)
        return np.repeat(pc, D, axis=2), D * np.log(pc.reshape(K))


#: scikit-learn's four covariance types.
SKLEARN_COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")

#: The covariance types, by name: scikit-learn's four, then mclust's
#: fourteen (:mod:`fastem.families.mclust`; 'full', 'tied', 'diag' and
#: 'spherical' are the same models as VVV, EEE, VVI and VII).
COVARIANCE_MODELS = {m.name: m for m in (Full(), Tied(), Diag(), Spherical())}

#: mclust's fourteen model names, in mclust's order.
MCLUST_COVARIANCE_TYPES = ("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE",
                           "VEE", "EVE", "VVE", "EEV", "VEV", "EVV", "VVV")

#: Each scikit-learn name and the mclust model it is.
ALIASES = {"full": "VVV", "tied": "EEE", "diag": "VVI", "spherical": "VII"}

# mclust's models derive from the four classes above and add themselves to
# COVARIANCE_MODELS (whichever of the two modules is imported first).
import fastem.families.mclust  # noqa: E402, F401
