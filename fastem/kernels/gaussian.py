"""Private Numba kernels: the fused E-step + sufficient-statistics pass.

Arrays and scalars in, arrays out.  No validation, no strings, no warnings:
the Python layer (:mod:`fastem.stats`, :mod:`fastem.mixture`) does that.

Layouts (``K`` components, ``D`` features), by covariance code:

============  =====================  =====================
code          ``prec`` (precision     ``scatter``
              Cholesky factors)
============  =====================  =====================
0 full        (K, D, D) upper         (K, D, D)
1 tied        (1, D, D) upper         (1, D, D)
2 diag        (K, 1, D)               (K, 1, D)
3 spherical   (K, 1, 1)               (K, 1, D)
============  =====================  =====================

``sums`` (K, D) and ``scatter`` are accumulated around a per-component
reference point ``ref`` (K, D) -- normally the means of the parameters used
in the E-step -- so that second moments keep full precision far from the
origin.  Only the upper triangle of full/tied scatter is accumulated; it is
mirrored after the reduction.

Every kernel that depends on the layout is compiled once per layout, and
only when first called: a fit with one covariance type compiles that
layout's code alone.  Such a kernel is written once, as a *template* -- a
plain function named ``_t_<name>`` that reads the layout from the global
``LAYOUT`` and calls the other templates by their ``_t_`` names.
:func:`_specialize` turns each template into one numba dispatcher per
layout, ``_<name>_full``, ``_<name>_tied``, ``_<name>_diag`` and
``_<name>_spherical``, whose globals hold that layout's ``LAYOUT`` and that
layout's dispatchers.  numba reads globals as compile-time constants and
prunes the branches of the other layouts before typing them, so their
helpers are neither typed nor compiled.  The products are module globals
with their own qualified names, so numba's disk cache keeps one entry per
layout (and float type).  ``_em_pass``, ``_block_logp`` and
``_block_accumulate`` with the layout ``code`` as their first argument
remain, as run-time dispatchers over the four layouts (the HMM kernels use
them).  The per-chunk partials are allocated and summed in NumPy
(:mod:`fastem.kernels.partials`): nothing to compile.
"""

import functools
import types

import numpy as np
from numba import njit

from fastem._config import BLOCK_PAD, JIT, JIT_NO_REASSOC, run_workers
from fastem.kernels import fastmath as _fm
from fastem.kernels import micro as _micro
from fastem.kernels import partials as _partials

FULL, TIED, DIAG, SPHERICAL = 0, 1, 2, 3
LAYOUT_NAMES = ("full", "tied", "diag", "spherical")

# The layout a template is compiled for: each specialization's globals hold
# its own value (this module-level one is never compiled).
LAYOUT = -1
# Whether the layout's scatter is square, (D, D): full and tied.
SQUARE = False
# Which triangular quadratic form the full/tied block log-density calls:
# 0 chooses by D at run time (so both variants are compiled; the run-time
# dispatchers use these), 1 the 512-bit loops over rows (_tri_quadratic), 2
# the register-blocked micro-kernel (_tri_logp_micro; the mixture's and the
# HMM's passes pick their variant in Python: one compiled, not both).
QUAD = 0
_TEMPLATES = []


def _layout_template(options):
    """Register a ``_t_`` template, compiled per layout with ``options``."""
    def register(fn):
        _TEMPLATES.append((fn, options))
        return fn
    return register


def _specialize(quad=0, codes=(FULL, TIED, DIAG, SPHERICAL), suffix="",
                only=None, base=None):
    """Compile nothing; create every template's dispatcher for each layout.

    Parameters
    ----------
    quad : {0, 1, 2}
        The ``QUAD`` constant of these specializations.
    codes : sequence of int
        The layouts.
    suffix : str
        Appended to the dispatchers' names (distinct disk-cache entries).
    only, base : set of str, list of dict, optional
        Re-create only the templates named in ``only``; the others are
        ``base``'s dispatchers of the same layout (shared, compiled once).

    Returns
    -------
    list of dict
        Per layout of ``codes``, template name -> that layout's dispatcher.
    """
    out = []
    for code in codes:
        lname = LAYOUT_NAMES[code]
        g = dict(globals())
        g["LAYOUT"] = code
        g["SQUARE"] = code in (FULL, TIED)
        g["QUAD"] = quad
        if base is not None:
            g.update(base[code])
        for tmpl, options in _TEMPLATES:
            if only is not None and tmpl.__name__ not in only:
                continue
            name = f"{tmpl.__name__[2:]}_{lname}{suffix}"
            fn = types.FunctionType(tmpl.__code__, g, name,
                                    tmpl.__defaults__, tmpl.__closure__)
            # the qualified name names the disk-cache files: one per layout
            fn.__qualname__ = name
            fn.__doc__ = tmpl.__doc__
            g[tmpl.__name__] = njit(**options)(fn)
        out.append({tmpl.__name__: g[tmpl.__name__]
                    for tmpl, _ in _TEMPLATES})
    return out

@njit(inline="always", **JIT)
def _load_block(X, b0, nb, xt):
    """Copy rows ``b0 .. b0 + nb`` of ``X`` (N, D) transposed into ``xt``.

    Eight rows at a time through :func:`_fastmath.transpose_tile`: whole
    rows for 2 to 7 features (from memory, 2-D 2.8 -> 0.6 ns per row, 7-D
    4.5 -> 2.1), 8 x 8 tiles from 8 features up (8-D 3.8 -> 2.4, 32-D
    31 -> 21; the whole 8-D E-step pass 1.16x (diag) to 1.2x (full) faster
    at 1 thread).  The remaining columns and rows are copied element by
    element.
    """
    _fm.wide_simd()
    D = X.shape[1]
    if D == 1:
        for i in range(nb):
            xt[0, i] = X[b0 + i, 0]
        return
    n8 = nb - nb % 8
    D8 = D - D % 8
    for i0 in range(0, n8, 8):
        r0 = b0 + i0
        # the tile width must be a literal: one branch per narrow shape
        if D == 2:
            _fm.transpose_tile(X, r0, 0, xt, i0, 2)
        elif D == 3:
            _fm.transpose_tile(X, r0, 0, xt, i0, 3)
        elif D == 4:
            _fm.transpose_tile(X, r0, 0, xt, i0, 4)
        elif D == 5:
            _fm.transpose_tile(X, r0, 0, xt, i0, 5)
        elif D == 6:
            _fm.transpose_tile(X, r0, 0, xt, i0, 6)
        elif D == 7:
            _fm.transpose_tile(X, r0, 0, xt, i0, 7)
        else:
            for c0 in range(0, D8, 8):
                _fm.transpose_tile(X, r0, c0, xt, i0, 8)
    if D > 8 and D8 < D:
        for i in range(n8):
            for j in range(D8, D):
                xt[j, i] = X[b0 + i, j]
    for i in range(n8, nb):
        for j in range(D):
            xt[j, i] = X[b0 + i, j]


# Up to this many features the triangular quadratic form runs as
# _tri_quadratic (loops over rows, 512-bit); above it as the register-blocked
# micro-kernel (_tri_logp_micro).  Measured per 256-row block, K=16, 1
# thread, Intel Xeon (Rocket Lake, AVX-512): D=4 3.6 vs 8.0 us, D=8 9.6 vs
# 10.6, D=16 48.8 vs 23.7, D=32 158 vs 64 (the loops over rows keep the
# running columns of U^T d in memory; the micro-kernel in registers).
WIDE_TRI_MAX_D = 8


@njit(**JIT)
def _tri_quadratic(xt, nb, mu, U, dt, t, q):
    """``q[i] = |U^T (x_i - mu)|^2`` for upper-triangular ``U`` (D, D).

    Register-tiled: columns of ``y = U^T d`` are produced four at a time so
    that each loaded row of ``d`` feeds four multiply-adds.  ``d = x - mu``
    is formed from ``xt`` where it is read; ``dt`` (overwritten) holds the
    tile of ``y`` columns being built, from the last tile down.  Compiled
    with the 512-bit hint; for ``D > WIDE_TRI_MAX_D`` the log-density uses
    :func:`_tri_logp_micro` instead.
    """
    _fm.inline_into_callers()
    _fm.wide_simd()
    _tri_quadratic_body(xt, nb, mu, U, dt, t, q)


@njit(**JIT)
def _tri_logp_micro(xt, nb, means, prec, logconst, lp, q, tied):
    """``lp[k, i] = logconst[k] - |U_k^T (x_i - mu_k)|^2 / 2``, micro-kernel.

    :func:`fastem.kernels.micro.tri_quadratic_rows` on groups of rows
    (components inside, so the group's rows stay in L1 while every
    component's factor streams past).  A last partial group is taken as the
    group ending at row ``nb`` (rows computed twice come out the same: rows
    are vector lanes and never mix); a block of fewer rows than one group
    goes through a zero-padded copy.  So every row gets the same arithmetic
    wherever it sits.  ``tied``: one factor ``prec[0]`` for every component.
    """
    _fm.inline_into_callers()
    _fm.wide_simd()
    K, D = means.shape
    G = _micro.GROUP64
    if xt.itemsize == 4:
        G = _micro.GROUP32
    half = _fm.typed(0.5, lp)
    if nb < G:
        pad = np.zeros((D, G), xt.dtype)
        for a in range(D):
            for i in range(nb):
                pad[a, i] = xt[a, i]
        qq = np.empty(G, xt.dtype)
        for k in range(K):
            kk = 0 if tied else k
            _micro.tri_quadratic_rows(pad, 0, means[k], prec[kk], qq)
            c = logconst[k]
            for i in range(nb):
                lp[k, i] = c - half * qq[i]
        return
    n_groups = (nb + G - 1) // G
    for g in range(n_groups):
        i0 = min(g * G, nb - G)
        for k in range(K):
            kk = 0 if tied else k
            _micro.tri_quadratic_rows(xt, i0, means[k], prec[kk], q)
            c = logconst[k]
            for i in range(i0, i0 + G):
                lp[k, i] = c - half * q[i]


@njit(inline="always", **JIT)
def _tri_quadratic_body(xt, nb, mu, U, dt, t, q):
    """Run the loops of :func:`_tri_quadratic` (inlined there).

    The centred rows ``d_a = x_a - mu_a`` are formed where they are read
    (from ``xt``; the additions run on the add ports, beside the FMAs)
    rather than in a pass of their own: ``dt`` holds only the columns of
    ``y`` being built.  The same subtractions, so bit-identical to a separate
    centring pass, without its D loads and D stores per row: the 32-D
    product 1.16x and the 8-D one 1.11x faster (one block, 1 thread, Zen 4).
    """
    D = xt.shape[0]
    for i in range(nb):
        q[i] = 0.0
    D4 = D - D % 4
    # the last D % 4 columns, one at a time (rows of d four at a time)
    for j in range(D - 1, D4 - 1, -1):
        A4 = (j + 1) - (j + 1) % 4
        for i in range(nb):
            t[i] = 0.0
        for a0 in range(0, A4, 4):
            u0 = U[a0, j]
            u1 = U[a0 + 1, j]
            u2 = U[a0 + 2, j]
            u3 = U[a0 + 3, j]
            m0 = mu[a0]
            m1 = mu[a0 + 1]
            m2 = mu[a0 + 2]
            m3 = mu[a0 + 3]
            for i in range(nb):
                t[i] += ((xt[a0, i] - m0) * u0 + (xt[a0 + 1, i] - m1) * u1
                         + (xt[a0 + 2, i] - m2) * u2
                         + (xt[a0 + 3, i] - m3) * u3)
        for a in range(A4, j + 1):
            u = U[a, j]
            ma = mu[a]
            for i in range(nb):
                t[i] += (xt[a, i] - ma) * u
        for i in range(nb):
            q[i] += t[i] * t[i]
    # four columns j0..j0+3 at a time, last tile first
    for j0 in range(D4 - 4, -1, -4):
        u00 = U[j0, j0]
        u01 = U[j0, j0 + 1]
        u02 = U[j0, j0 + 2]
        u03 = U[j0, j0 + 3]
        u11 = U[j0 + 1, j0 + 1]
        u12 = U[j0 + 1, j0 + 2]
        u13 = U[j0 + 1, j0 + 3]
        u22 = U[j0 + 2, j0 + 2]
        u23 = U[j0 + 2, j0 + 3]
        u33 = U[j0 + 3, j0 + 3]
        n0 = mu[j0]
        n1 = mu[j0 + 1]
        n2 = mu[j0 + 2]
        n3 = mu[j0 + 3]
        if j0 == 0:
            for i in range(nb):
                d0 = xt[0, i] - n0
                d1 = xt[1, i] - n1
                d2 = xt[2, i] - n2
                d3 = xt[3, i] - n3
                y0 = d0 * u00
                y1 = d0 * u01 + d1 * u11
                y2 = d0 * u02 + d1 * u12 + d2 * u22
                y3 = d0 * u03 + d1 * u13 + d2 * u23 + d3 * u33
                q[i] += y0 * y0 + y1 * y1 + y2 * y2 + y3 * y3
            continue
        for i in range(nb):
            d0 = xt[j0, i] - n0
            d1 = xt[j0 + 1, i] - n1
            d2 = xt[j0 + 2, i] - n2
            d3 = xt[j0 + 3, i] - n3
            dt[j0, i] = d0 * u00
            dt[j0 + 1, i] = d0 * u01 + d1 * u11
            dt[j0 + 2, i] = d0 * u02 + d1 * u12 + d2 * u22
            dt[j0 + 3, i] = d0 * u03 + d1 * u13 + d2 * u23 + d3 * u33
        for a0 in range(0, j0, 4):
            v00 = U[a0, j0]
            v01 = U[a0, j0 + 1]
            v02 = U[a0, j0 + 2]
            v03 = U[a0, j0 + 3]
            v10 = U[a0 + 1, j0]
            v11 = U[a0 + 1, j0 + 1]
            v12 = U[a0 + 1, j0 + 2]
            v13 = U[a0 + 1, j0 + 3]
            v20 = U[a0 + 2, j0]
            v21 = U[a0 + 2, j0 + 1]
            v22 = U[a0 + 2, j0 + 2]
            v23 = U[a0 + 2, j0 + 3]
            v30 = U[a0 + 3, j0]
            v31 = U[a0 + 3, j0 + 1]
            v32 = U[a0 + 3, j0 + 2]
            v33 = U[a0 + 3, j0 + 3]
            m0 = mu[a0]
            m1 = mu[a0 + 1]
            m2 = mu[a0 + 2]
            m3 = mu[a0 + 3]
            if a0 + 4 < j0:
                for i in range(nb):
                    d0 = xt[a0, i] - m0
                    d1 = xt[a0 + 1, i] - m1
                    d2 = xt[a0 + 2, i] - m2
                    d3 = xt[a0 + 3, i] - m3
                    dt[j0, i] += d0 * v00 + d1 * v10 + d2 * v20 + d3 * v30
                    dt[j0 + 1, i] += (d0 * v01 + d1 * v11 + d2 * v21
                                      + d3 * v31)
                    dt[j0 + 2, i] += (d0 * v02 + d1 * v12 + d2 * v22
                                      + d3 * v32)
                    dt[j0 + 3, i] += (d0 * v03 + d1 * v13 + d2 * v23
                                      + d3 * v33)
            else:
                for i in range(nb):
                    d0 = xt[a0, i] - m0
                    d1 = xt[a0 + 1, i] - m1
                    d2 = xt[a0 + 2, i] - m2
                    d3 = xt[a0 + 3, i] - m3
                    y0 = dt[j0, i] + d0 * v00 + d1 * v10 + d2 * v20 + d3 * v30
                    y1 = (dt[j0 + 1, i] + d0 * v01 + d1 * v11 + d2 * v21
                          + d3 * v31)
                    y2 = (dt[j0 + 2, i] + d0 * v02 + d1 * v12 + d2 * v22
                          + d3 * v32)
                    y3 = (dt[j0 + 3, i] + d0 * v03 + d1 * v13 + d2 * v23
                          + d3 * v33)
                    q[i] += y0 * y0 + y1 * y1 + y2 * y2 + y3 * y3


@njit(**JIT_NO_REASSOC)
def _diag_quadratic(xt, nb, mu, p, q):
    """``q[i] = sum_j ((x_ij - mu_j) p_j)^2``, four features per pass.

    ``(x - mu) p`` is formed as one fused multiply-add, ``x p + (-mu p)``:
    two operations per feature instead of three.  The product ``x p`` is
    exact inside the FMA; only ``mu p`` is rounded, an absolute error of at
    most one ulp of ``|mu p|`` -- relative 1e-10 of the result for data a
    million standard deviations from the origin.  Compiled without the
    'reassoc' flag: with it LLVM factors the FMA back into ``(x - mu) p``
    (a subtraction and a multiplication), and the squares are summed into
    ``q`` as a chain of four FMAs.  Twelve vector operations per four
    features become eight.
    """
    _fm.inline_into_callers()
    _fm.wide_simd()
    D = xt.shape[0]
    for i in range(nb):
        q[i] = 0.0
    D4 = D - D % 4
    for j0 in range(0, D4, 4):
        p0 = p[j0]
        p1 = p[j0 + 1]
        p2 = p[j0 + 2]
        p3 = p[j0 + 3]
        c0 = -mu[j0] * p0
        c1 = -mu[j0 + 1] * p1
        c2 = -mu[j0 + 2] * p2
        c3 = -mu[j0 + 3] * p3
        for i in range(nb):
            v0 = xt[j0, i] * p0 + c0
            v1 = xt[j0 + 1, i] * p1 + c1
            v2 = xt[j0 + 2, i] * p2 + c2
            v3 = xt[j0 + 3, i] * p3 + c3
            q[i] = q[i] + v0 * v0 + v1 * v1 + v2 * v2 + v3 * v3
    for j in range(D4, D):
        pj = p[j]
        cj = -mu[j] * pj
        for i in range(nb):
            v = xt[j, i] * pj + cj
            q[i] += v * v


@njit(inline="always", **JIT)
def _sq_distance(xt, nb, mu, q):
    """``q[i] = |x_i - mu|^2``, four features per pass."""
    _fm.wide_simd()
    D = xt.shape[0]
    for i in range(nb):
        q[i] = 0.0
    D4 = D - D % 4
    for j0 in range(0, D4, 4):
        m0 = mu[j0]
        m1 = mu[j0 + 1]
        m2 = mu[j0 + 2]
        m3 = mu[j0 + 3]
        for i in range(nb):
            v0 = xt[j0, i] - m0
            v1 = xt[j0 + 1, i] - m1
            v2 = xt[j0 + 2, i] - m2
            v3 = xt[j0 + 3, i] - m3
            q[i] += v0 * v0 + v1 * v1 + v2 * v2 + v3 * v3
    for j in range(D4, D):
        mj = mu[j]
        for i in range(nb):
            v = xt[j, i] - mj
            q[i] += v * v


@_layout_template(JIT)
def _t_block_logp(xt, nb, means, prec, logconst, lp, dt, t, q):
    """``lp[k, i] = log w_k + log N(x_i | k)`` for the block ``xt`` (D, B).

    Rows are the innermost loop everywhere so that the loops vectorize.
    ``dt`` and ``t`` are scratch.
    """
    _fm.inline_into_callers()
    _fm.wide_simd()
    K = means.shape[0]
    half = _fm.typed(0.5, q)
    if xt.shape[0] == 1:
        # one feature: every covariance type is a scalar precision, and the
        # whole log-density is one loop (measured 2x faster than the general
        # helpers' D = 1 paths, which go through q)
        for k in range(K):
            kk = k
            if LAYOUT == TIED:
                kk = 0
            p = prec[kk, 0, 0]
            m0 = means[k, 0]
            c = logconst[k]
            for i in range(nb):
                v = (xt[0, i] - m0) * p
                lp[k, i] = c - half * (v * v)
        return
    if SQUARE:
        # full and tied above WIDE_TRI_MAX_D features: the micro-kernel
        # (statements on QUAD, not an expression: see CONTRIBUTING)
        if QUAD == 2:
            _tri_logp_micro(xt, nb, means, prec, logconst, lp, q,
                            LAYOUT == TIED)
            return
        elif QUAD == 0:
            if xt.shape[0] > WIDE_TRI_MAX_D:
                _tri_logp_micro(xt, nb, means, prec, logconst, lp, q,
                                LAYOUT == TIED)
                return
    for k in range(K):
        if LAYOUT == DIAG:
            _diag_quadratic(xt, nb, means[k], prec[k, 0], q)
        elif LAYOUT == SPHERICAL:
            _sq_distance(xt, nb, means[k], q)
            p2 = prec[k, 0, 0] * prec[k, 0, 0]
            for i in range(nb):
                q[i] *= p2
        else:
            kk = k
            if LAYOUT == TIED:
                kk = 0
            if QUAD != 2:
                _tri_quadratic(xt, nb, means[k], prec[kk], dt, t, q)
        c = logconst[k]
        for i in range(nb):
            lp[k, i] = c - half * q[i]


@njit(**JIT)
def _block_normalize(lp, nb, m, s, lse, scale=True):
    """Responsibilities in place in ``lp`` (K, B) and the row logsumexp.

    A row with no finite log-density gets no responsibility and
    ``lse = max`` (-inf).  With ``scale=False`` the rows of ``lp`` are left
    unnormalized (``exp(lp - max)``) and ``s[i]`` holds the factor that
    normalizes row ``i`` (0 for a row without responsibility), so a caller
    can fold it into the row weights instead of a pass over ``lp``.

    Returns the sum of the block's ``lse``.
    """
    _fm.inline_into_callers()
    _fm.wide_simd()
    K = lp.shape[0]
    if K == 2:
        return _normalize_two(lp, nb, s, lse, scale)
    for i in range(nb):
        m[i] = lp[0, i]
    for k in range(1, K):
        for i in range(nb):
            m[i] = max(m[i], lp[k, i])
    for i in range(nb):
        s[i] = 0.0
        if not (m[i] > -np.inf and m[i] < np.inf):
            lse[i] = m[i]
            m[i] = np.inf  # every exp below becomes exp(-inf) = 0
    for k in range(K):
        for i in range(nb):
            e = _fm.vexp(lp[k, i] - m[i])
            lp[k, i] = e
            s[i] += e
    total = 0.0
    one = _fm.typed(1.0, s)
    for i in range(nb):
        # log of 1 where s = 0, so that the call is unconditional (inlined)
        lg = _fm.vlog(s[i] if s[i] > 0.0 else one)
        if s[i] > 0.0:
            lse[i] = m[i] + lg
        total += lse[i]
    for i in range(nb):
        if s[i] > 0.0:
            s[i] = one / s[i]
    if scale:
        for k in range(K):
            for i in range(nb):
                lp[k, i] *= s[i]
    return total


@njit(**JIT)
def _normalize_two(lp, nb, s, lse, scale):
    """:func:`_block_normalize` for two components: one exponential per row.

    With ``d = |lp_0 - lp_1|`` the larger component's ``exp(lp - max)`` is
    exactly 1 and the smaller one's is ``e = exp(-d)``, so the row needs
    ``e``, ``log(1 + e)`` and ``1 / (1 + e)`` -- the same values, rounded the
    same way, as the general path computes with two exponentials.
    """
    _fm.inline_into_callers()
    _fm.wide_simd()
    one = _fm.typed(1.0, s)
    zero = _fm.typed(0.0, s)
    total = 0.0
    for i in range(nb):
        a = lp[0, i]
        b = lp[1, i]
        first = a >= b
        mx = a if first else b
        d = a - b
        # no finite log-density (or NaN): no responsibility, lse = max
        ok = mx > -np.inf and mx < np.inf and d == d
        # exp and log are called unconditionally and the results selected:
        # a call inside a conditional is not inlined, and the loop would not
        # vectorize
        e = _fm.vexp(-abs(d))
        lg = _fm.vlog(one + e)
        e = e if ok else zero
        r = one / (one + e) if ok else zero
        li = mx + lg if ok else mx
        lse[i] = li
        total += li
        # without ok, e = r = 0: both terms are 0 (the unscaled larger one
        # is selected to 0 too)
        big = r if scale else (one if ok else zero)
        small = e * r if scale else e
        lp[0, i] = big if first else small
        lp[1, i] = small if first else big
        s[i] = r
    return total


@njit(**JIT)
def _cross_products_centred(wd, xt, rf, nb, S):
    """``S[a, b] += sum_i wd[a, i] (xt[b, i] - rf[b])`` for every ``a < b``.

    Register-tiled: a 4 x 4 tile of ``(a, b)`` pairs keeps sixteen running
    sums while each of its eight rows is loaded once per element; left at
    LLVM's default vector width (with 512-bit registers the 32-D full
    workload measured 1.12x slower).  ``xt - rf`` is formed where it is read:
    the same subtractions as the centring loop of
    :func:`_t_block_accumulate` (so bit-identical), which then stores only
    ``wd`` -- D stores per row and component fewer; the subtractions go to
    the add ports beside the FMAs.  32-D accumulate with its products 1.10x
    faster (8.34 -> 7.61 us per 256-row block), 8-D 1.06x (1 thread, Zen 4).
    The missing-data pass gives rows centred already and ``rf = 0`` (``y -
    0.0`` is ``y`` exactly, so its sums are unchanged).
    """
    _fm.inline_into_callers()
    D = wd.shape[0]
    D4 = D - D % 4
    for a0 in range(0, D4, 4):
        # the diagonal tile: the six pairs a < b inside it
        g1 = rf[a0 + 1]
        g2 = rf[a0 + 2]
        g3 = rf[a0 + 3]
        s01 = 0.0
        s02 = 0.0
        s03 = 0.0
        s12 = 0.0
        s13 = 0.0
        s23 = 0.0
        for i in range(nb):
            w0 = wd[a0, i]
            w1 = wd[a0 + 1, i]
            w2 = wd[a0 + 2, i]
            e1 = xt[a0 + 1, i] - g1
            e2 = xt[a0 + 2, i] - g2
            e3 = xt[a0 + 3, i] - g3
            s01 += w0 * e1
            s02 += w0 * e2
            s03 += w0 * e3
            s12 += w1 * e2
            s13 += w1 * e3
            s23 += w2 * e3
        S[a0, a0 + 1] += s01
        S[a0, a0 + 2] += s02
        S[a0, a0 + 3] += s03
        S[a0 + 1, a0 + 2] += s12
        S[a0 + 1, a0 + 3] += s13
        S[a0 + 2, a0 + 3] += s23
        for b0 in range(a0 + 4, D4, 4):
            f0 = rf[b0]
            f1 = rf[b0 + 1]
            f2 = rf[b0 + 2]
            f3 = rf[b0 + 3]
            s00 = 0.0
            s01 = 0.0
            s02 = 0.0
            s03 = 0.0
            s10 = 0.0
            s11 = 0.0
            s12 = 0.0
            s13 = 0.0
            s20 = 0.0
            s21 = 0.0
            s22 = 0.0
            s23 = 0.0
            s30 = 0.0
            s31 = 0.0
            s32 = 0.0
            s33 = 0.0
            for i in range(nb):
                w0 = wd[a0, i]
                w1 = wd[a0 + 1, i]
                w2 = wd[a0 + 2, i]
                w3 = wd[a0 + 3, i]
                e0 = xt[b0, i] - f0
                e1 = xt[b0 + 1, i] - f1
                e2 = xt[b0 + 2, i] - f2
                e3 = xt[b0 + 3, i] - f3
                s00 += w0 * e0
                s01 += w0 * e1
                s02 += w0 * e2
                s03 += w0 * e3
                s10 += w1 * e0
                s11 += w1 * e1
                s12 += w1 * e2
                s13 += w1 * e3
                s20 += w2 * e0
                s21 += w2 * e1
                s22 += w2 * e2
                s23 += w2 * e3
                s30 += w3 * e0
                s31 += w3 * e1
                s32 += w3 * e2
                s33 += w3 * e3
            S[a0, b0] += s00
            S[a0, b0 + 1] += s01
            S[a0, b0 + 2] += s02
            S[a0, b0 + 3] += s03
            S[a0 + 1, b0] += s10
            S[a0 + 1, b0 + 1] += s11
            S[a0 + 1, b0 + 2] += s12
            S[a0 + 1, b0 + 3] += s13
            S[a0 + 2, b0] += s20
            S[a0 + 2, b0 + 1] += s21
            S[a0 + 2, b0 + 2] += s22
            S[a0 + 2, b0 + 3] += s23
            S[a0 + 3, b0] += s30
            S[a0 + 3, b0 + 1] += s31
            S[a0 + 3, b0 + 2] += s32
            S[a0 + 3, b0 + 3] += s33
    # the last D % 4 columns b, against rows a < b four at a time
    for b in range(D4, D):
        fb = rf[b]
        A4 = b - b % 4
        for a0 in range(0, A4, 4):
            s0 = 0.0
            s1 = 0.0
            s2 = 0.0
            s3 = 0.0
            for i in range(nb):
                e = xt[b, i] - fb
                s0 += wd[a0, i] * e
                s1 += wd[a0 + 1, i] * e
                s2 += wd[a0 + 2, i] * e
                s3 += wd[a0 + 3, i] * e
            S[a0, b] += s0
            S[a0 + 1, b] += s1
            S[a0 + 2, b] += s2
            S[a0 + 3, b] += s3
        for a in range(A4, b):
            acc = 0.0
            for i in range(nb):
                acc += wd[a, i] * (xt[b, i] - fb)
            S[a, b] += acc


@njit(inline="always", **JIT)
def _empty_aligned(rows, cols, like):
    """Return an uninitialized C-contiguous (rows, cols) array, 64-byte aligned.

    Of ``like``'s float type.  numba aligns arrays to 32 bytes: half of the
    512-bit loads and stores of a micro-kernel would then cross a cache
    line (row-major panels of 32 columns: 26 -> 17 cycles per row aligned).
    """
    per = 64 // like.itemsize
    buf = np.empty(rows * cols + per, like.dtype)
    off = (per - (buf.ctypes.data // like.itemsize) % per) % per
    return buf[off:off + rows * cols].reshape((rows, cols))


# Bytes of the two row-major panels of _accumulate_micro: the rows of a
# panel are chosen so that both stay in L1 while every tile reads them.
SCATTER_PANEL_BYTES = 32768


@njit(**JIT)
def _accumulate_micro(xt, nb, lp, wb, ref, nk, sums, scatter, wr, tied):
    """:func:`_t_block_accumulate` for full/tied above ``WIDE_TRI_MAX_D``.

    The block is copied once into row-major float64 (exact for float32
    data); then, per component and panel of rows, the centred rows ``e = x
    - ref_k`` and the weighted ones ``wr e`` are written row-major (vectors
    along the features, no reductions; the columns from ``D`` stay zero)
    and :func:`fastem.kernels.micro.scatter_rows` adds their products -- the
    diagonal and ``sums`` included -- with its sums held in registers.  The
    same subtractions and products as the loops over rows, summed in another
    order.
    """
    _fm.inline_into_callers()
    _fm.wide_simd()
    K, D = ref.shape
    L = _micro.VECTOR_BYTES // 8
    C = (D + L - 1) // L * L
    P = max(8, (SCATTER_PANEL_BYTES // (16 * C)) // 8 * 8)
    # row-major float64 copies, zero from column D (so are the centred
    # panels: 0 - 0)
    xr = _empty_aligned(nb, C, ref)
    for i in range(nb):
        for a in range(D):
            xr[i, a] = xt[a, i]
        for a in range(D, C):
            xr[i, a] = 0.0
    rfp = _empty_aligned(1, C, ref)[0]
    rfp[:] = 0.0
    e = _empty_aligned(P, C, ref)
    w2 = _empty_aligned(P, C, ref)
    for k in range(K):
        tot = _weighted_resp(lp, k, nb, wb, wr)
        if tot == 0.0:
            continue
        nk[k] += tot
        kk = 0 if tied else k
        for a in range(D):
            rfp[a] = ref[k, a]
        for p0 in range(0, nb, P):
            pn = min(P, nb - p0)
            _micro.centre_rows(xr, p0, pn, rfp, wr, e, w2)
            _micro.scatter_rows(w2, e, pn, scatter[kk], sums[k])


@_layout_template(JIT)
def _t_block_accumulate(xt, nb, lp, wb, ref, wref, nk, sums, scatter,
                        dt, wd, wr):
    """Add the block's weighted responsibilities ``lp * wb`` to the stats.

    ``wr`` (and ``wb``) have the block's float type.  Diag, spherical and
    one-feature moments are taken about ``wref`` -- ``ref`` in that type --
    with block-local sums in that type (float32 data: 16 lanes, no
    conversions; :func:`_shift_moments` re-centres the totals on ``ref``);
    full and tied products about ``ref``, in float64.
    """
    _fm.inline_into_callers()
    _fm.wide_simd()
    K, D = ref.shape
    if SQUARE:
        # above WIDE_TRI_MAX_D features: row-major panels and the
        # micro-kernel (statements on QUAD, not an expression)
        if QUAD == 2:
            _accumulate_micro(xt, nb, lp, wb, ref, nk, sums, scatter, wr,
                              LAYOUT == TIED)
            return
        elif QUAD == 0:
            if D > WIDE_TRI_MAX_D:
                _accumulate_micro(xt, nb, lp, wb, ref, nk, sums, scatter,
                                  wr, LAYOUT == TIED)
                return
    cross = False
    if SQUARE:
        cross = D > 1
    # the cross products compute in float64: float32 blocks are converted
    # once (exactly) into the float64 scratch ``dt``, so that one compiled
    # _cross_products_centred serves both dtypes (the same subtractions)
    xd = _fm.as_float64(xt, nb, dt, cross)
    for k in range(K):
        tot = _weighted_resp(lp, k, nb, wb, wr)
        if tot == 0.0:
            continue
        nk[k] += tot
        kk = k
        if LAYOUT == TIED:
            kk = 0
        if not cross:
            # diag, spherical, one feature: the (1, D) row kk of scatter
            _diag_moments(xt, nb, wr, wref[k], sums[k], scatter[kk, 0])
            continue
        for a in range(D):
            rf = ref[k, a]
            sa = 0.0
            sq = 0.0
            # keep the weighted centred block for the off-diagonal products
            # (which form the centred rows again from xt)
            for i in range(nb):
                d = xt[a, i] - rf
                v = wr[i] * d
                wd[a, i] = v
                sa += v
                sq += v * d
            sums[k, a] += sa
            scatter[kk, a, a] += sq
        _cross_products_centred(wd, xd, ref[k], nb, scatter[kk])


@njit(inline="always", **JIT)
def _weighted_resp(lp, k, nb, wb, wr):
    """``wr[i] = lp[k, i] wb[i]`` over the block; return their sum.

    The sum runs in the float type of ``wr``.
    """
    _fm.wide_simd()
    tot = _fm.typed(0.0, wr)
    for i in range(nb):
        r = lp[k, i] * wb[i]
        wr[i] = r
        tot += r
    return tot


@njit(inline="always", **JIT)
def _diag_moments(xt, nb, wr, rf, s1, s2):
    """Add the block's first and second moments about ``rf``, per feature.

    ``s1[a] += sum_i wr_i d_ai`` and ``s2[a] += sum_i wr_i d_ai^2`` with
    ``d_ai = xt[a, i] - rf[a]``, four features per pass over the rows: they
    share each load of ``wr`` and the number of loops (each with its own
    set-up and final horizontal sums) drops 4x.  In L1, 8-D diag K = 8:
    8.9 -> 7.6 ns per row; within noise in the whole pass.  The sums over
    the block run in the float type of ``wr`` (``xt``, ``wr`` and ``rf``
    share it) and are added to the float64 ``s1``/``s2`` once per block.
    """
    _fm.wide_simd()
    D = xt.shape[0]
    zero = _fm.typed(0.0, wr)
    D4 = D - D % 4
    for a in range(0, D4, 4):
        r0 = rf[a]
        r1 = rf[a + 1]
        r2 = rf[a + 2]
        r3 = rf[a + 3]
        m0 = zero
        m1 = zero
        m2 = zero
        m3 = zero
        q0 = zero
        q1 = zero
        q2 = zero
        q3 = zero
        for i in range(nb):
            w = wr[i]
            d0 = xt[a, i] - r0
            d1 = xt[a + 1, i] - r1
            d2 = xt[a + 2, i] - r2
            d3 = xt[a + 3, i] - r3
            v0 = w * d0
            v1 = w * d1
            v2 = w * d2
            v3 = w * d3
            m0 += v0
            m1 += v1
            m2 += v2
            m3 += v3
            q0 += v0 * d0
            q1 += v1 * d1
            q2 += v2 * d2
            q3 += v3 * d3
        s1[a] += m0
        s1[a + 1] += m1
        s1[a + 2] += m2
        s1[a + 3] += m3
        s2[a] += q0
        s2[a + 1] += q1
        s2[a + 2] += q2
        s2[a + 3] += q3
    for a in range(D4, D):
        r = rf[a]
        sa = zero
        sq = zero
        for i in range(nb):
            d = xt[a, i] - r
            v = wr[i] * d
            sa += v
            sq += v * d
        s1[a] += sa
        s2[a] += sq


@njit(inline="always", **JIT)
def _write_rows(lp, lse, nb, order, start, out_lse, out_resp, out_label):
    """Copy a block's outputs to their rows.

    Block row ``i`` is row ``order[start + i]`` of the outputs, or
    ``start + i`` when ``order`` is empty; an output of length 0 is not
    written.  One loop per output, behind its flag: a single row loop
    testing the three flags cost ~2 ns per row in a fit, which writes none
    (callers skip the call then).
    """
    K = lp.shape[0]
    ordered = order.shape[0] > 0
    if out_lse.shape[0] > 0:
        for i in range(nb):
            out_lse[order[start + i] if ordered else start + i] = lse[i]
    if out_resp.shape[0] > 0:
        for i in range(nb):
            row = order[start + i] if ordered else start + i
            for k in range(K):
                out_resp[row, k] = lp[k, i]
    if out_label.shape[0] > 0:
        for i in range(nb):
            best = 0
            for k in range(1, K):
                if lp[k, i] > lp[best, i]:
                    best = k
            out_label[order[start + i] if ordered else start + i] = best


@_layout_template(JIT)
def _t_em_worker(next_chunk, X, sw, ref, wmeans, wprec, wlogc, wref,
                 n_chunks, block, want_stats, out_lse, out_resp, out_label,
                 mode, labels, resp, seed, p_nk, p_sums, p_scatter, p_ll,
                 p_ws):
    """One worker of the E-step pass: chunks from the queue until none is left.

    Serial code (``nogil``): :func:`_em_pass_layout` runs it on as many
    threads as the caller's thread setting allows
    (:func:`fastem._config.run_workers`), each taking the next chunk from
    the shared counter ``next_chunk``, so a thread that starts late or runs
    slow takes fewer chunks.  A chunk's partial statistics go to its own
    slot of ``p_*``, whichever thread computed them, and are reduced in
    chunk order by :func:`_finish_partials`: the result does not depend on the
    thread count.  (Python threads rather than a numba ``prange``: the
    parallel-loop lowering cost about 9 s of the full layout's cold
    compile.)

    ``mode`` chooses where the responsibilities come from: -1, the E-step
    (log-densities of ``wmeans``, ``wprec``, ``wlogc``); 0, hard
    ``labels`` (N,) (a negative label leaves the row out); 1, uniform
    random numbers, row-normalized, from :func:`_hash_uniform` seeded by
    ``seed`` (the same numbers for any chunking or thread count); 2, the
    matrix ``resp`` (N, K).  The given modes are the initialization's
    statistics (loglik 0), accumulated row by row in float64 by
    :func:`_t_given_rows`: a branch of this worker rather than a kernel of
    its own, which would cost a second top-level compile.
    """
    _fm.wide_simd()
    if _fm.fetch_add(next_chunk, 0) >= n_chunks:
        return  # queue empty: skip the scratch allocations
    N, D = X.shape
    K = wmeans.shape[0]
    s_rows = p_scatter.shape[1]
    sd1 = p_scatter.shape[2]
    one = _fm.typed(1.0, X)
    has_w = sw.shape[0] > 0
    w_lse = out_lse.shape[0] > 0
    w_resp = out_resp.shape[0] > 0
    w_label = out_label.shape[0] > 0
    w_out = w_lse or w_resp or w_label
    no_order = np.empty(0, np.int64)
    # rows of the 2-D scratch are padded so that they are not 4 KiB apart
    # (cache-set conflicts and 4K aliasing between rows)
    # 64-byte aligned, rows of whole cache lines: the micro-kernels'
    # 512-bit loads do not split
    cols = block + BLOCK_PAD
    cols += (-cols) % (64 // X.itemsize)
    xt = _empty_aligned(D, cols, X)
    dtw = np.empty((D, block + BLOCK_PAD), X.dtype)
    lp = np.empty((K, block + BLOCK_PAD), X.dtype)
    m = np.empty(block, X.dtype)
    s = np.empty(block, X.dtype)
    t = np.empty(block, X.dtype)
    q = _empty_aligned(1, block, X)[0]
    dt = np.empty((D, block + BLOCK_PAD))
    wd = np.empty((D, block + BLOCK_PAD))
    wr = np.empty(block, X.dtype)
    lse = np.empty(block)
    wb = np.ones(block, X.dtype)
    nk = np.empty(K)
    sums = np.empty((K, D))
    scatter = np.empty((s_rows, sd1, D))
    gx = np.empty(D)
    gdiff = np.empty(D)
    gr = np.empty(K)
    while True:
        c = _fm.fetch_add(next_chunk, 1)
        if c >= n_chunks:
            break
        start = c * N // n_chunks
        stop = (c + 1) * N // n_chunks
        nk[:] = 0.0
        sums[:] = 0.0
        scatter[:] = 0.0
        ll = 0.0
        ws = 0.0
        e_stop = stop
        if mode >= 0:  # given responsibilities: no E-step blocks
            ws = _t_given_rows(X, sw, mode, labels, resp, seed, ref, start,
                               stop, nk, sums, scatter, gx, gdiff, gr)
            e_stop = start
        for b0 in range(start, e_stop, block):
            nb = min(block, stop - b0)
            _load_block(X, b0, nb, xt)
            _t_block_logp(xt, nb, wmeans, wprec, wlogc, lp, dtw, t, q)
            # without a responsibility output the normalization is
            # folded into the row weights below (one pass over lp fewer)
            tot = _block_normalize(lp, nb, m, s, lse, w_resp)
            if w_out:
                _write_rows(lp, lse, nb, no_order, b0, out_lse, out_resp,
                            out_label)
            if want_stats:
                if has_w:
                    for i in range(nb):
                        wi = sw[b0 + i]
                        wb[i] = wi if w_resp else wi * s[i]
                        if wi != 0.0:
                            ll += wi * lse[i]
                            ws += wi
                else:
                    for i in range(nb):
                        wb[i] = one if w_resp else s[i]
                    ll += tot
                    ws += nb
                _t_block_accumulate(xt, nb, lp, wb, ref, wref, nk,
                                    sums, scatter, dt, wd, wr)
        _fm.put(p_nk, c, nk)
        _fm.put(p_sums, c, sums)
        _fm.put(p_scatter, c, scatter)
        p_ll[c] = ll
        p_ws[c] = ws


@njit(inline="always", **JIT)
def _hash_uniform(seed, i, k):
    """Counter-based uniform in (0, 1): splitmix64 of (seed, i, k)."""
    z = np.uint64(seed) + np.uint64(i) * np.uint64(0x9E3779B97F4A7C15) \
        + np.uint64(k) * np.uint64(0xD1B54A32D192ED03)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (np.float64(z >> np.uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)


@_layout_template(dict(JIT, inline="always"))
def _t_accumulate(x, wr, k, ref, nk, sums, scatter, diff):
    """Add ``wr`` times row ``x`` to component ``k``'s statistics (float64)."""
    D = x.shape[0]
    nk[k] += wr
    for j in range(D):
        diff[j] = x[j] - ref[k, j]
    if SQUARE:
        kk = k
        if LAYOUT == TIED:
            kk = 0
        for a in range(D):
            da = wr * diff[a]
            sums[k, a] += da
            for b in range(a, D):
                scatter[kk, a, b] += da * diff[b]
    else:
        for a in range(D):
            da = wr * diff[a]
            sums[k, a] += da
            scatter[k, 0, a] += da * diff[a]


@_layout_template(JIT)
def _t_given_rows(X, sw, mode, labels, resp, seed, ref, start, stop, nk,
                  sums, scatter, x, diff, r):
    """Add rows ``start:stop`` with given responsibilities to the statistics.

    See :func:`_t_em_worker` for ``mode``.  Row by row in float64 whatever
    the data's float type: the responsibilities are the caller's, exact,
    and the statistics keep float64 precision (the initialization's
    statistics, once per fit).  Returns the weight of the rows kept.
    """
    _fm.inline_into_callers()
    D = X.shape[1]
    K = nk.shape[0]
    has_w = sw.shape[0] > 0
    ws = 0.0
    for row in range(start, stop):
        wi = sw[row] if has_w else 1.0
        if wi == 0.0:
            continue
        for j in range(D):
            x[j] = X[row, j]
        if mode == 0:
            # a label is a one-hot responsibility (wi * 1.0 is wi exactly):
            # one call site below, so _t_accumulate is inlined once
            lab = labels[row]
            if lab < 0:
                continue
            for k in range(K):
                r[k] = 0.0
            r[lab] = 1.0
        elif mode == 1:
            tot = 0.0
            for k in range(K):
                r[k] = _hash_uniform(seed, row, k)
                tot += r[k]
            for k in range(K):
                r[k] /= tot
        else:
            for k in range(K):
                r[k] = resp[row, k]
        ws += wi
        for k in range(K):
            wr = wi * r[k]
            if wr != 0.0:
                _t_accumulate(x, wr, k, ref, nk, sums, scatter, diff)
    return ws


_SPECIALIZED = _specialize()
# The full and tied layouts once more, with the triangular variant fixed
# (QUAD 1: D <= WIDE_TRI_MAX_D, QUAD 2: larger D, the micro-kernel), for the
# mixture's pass.
# Only the block log-density and the worker that calls it are re-created;
# every other kernel is the layout's shared one.
_BY_QUAD = {q: dict(zip((FULL, TIED), _specialize(
    q, (FULL, TIED), sfx,
    only={"_t_block_logp", "_t_block_accumulate", "_t_em_worker"},
    base=_SPECIALIZED))) for q, sfx in ((1, "_wide"), (2, "_narrow"))}


def _em_pass_layout(code, X, sw, means, prec, logconst, ref, n_chunks, block,
                    want_stats, out_lse, out_resp, out_label, s_rows):
    """One parallel pass: log-densities, logsumexp, responsibilities, statistics.

    Parameters are described in the module docstring.  ``sw`` holds sample
    weights (length 0 means all ones).  ``out_lse`` (N,), ``out_resp`` (N, K)
    and ``out_label`` (N,) are written when they have a non-zero length.
    ``s_rows`` is the number of rows of ``scatter`` (1 for tied, else K).
    The E-step arithmetic runs in X's precision (float32 data: float32
    log-densities and exponentials, twice the SIMD lanes); the statistics
    are totalled in float64 either way.  The work is done by
    :func:`_t_em_worker` on the caller's threads
    (:func:`fastem._config.run_workers`).

    Returns
    -------
    nk, sums, scatter, loglik, weight_sum
    """
    K, D = means.shape
    fns = _fns(code, D)
    parts = _zero_partials(n_chunks, K, D, s_rows, D if code <= TIED else 1)
    wmeans = means.astype(X.dtype, copy=False)
    wprec = prec.astype(X.dtype, copy=False)
    wlogc = logconst.astype(X.dtype, copy=False)
    wref = ref.astype(X.dtype)
    counter = np.zeros(1, np.int64)
    run_workers(fns["_t_em_worker"],
                (counter, X, sw, ref, wmeans, wprec, wlogc, wref, n_chunks,
                 block, want_stats, out_lse, out_resp, out_label, -1,
                 _NO_LABELS, _NO_RESP, 0) + parts, n_chunks)
    nk, sums, scatter, ll, ws = _finish_partials(code, parts)
    if code > TIED or D <= 1:
        _shift_moments(code, nk, sums, scatter, wref, ref)
    return nk, sums, scatter, ll, ws


def _zero_partials(n_chunks, K, D, s_rows, sd1):
    """Per-chunk partials ``nk, sums, scatter, loglik, weight_sum``, zeroed."""
    return _partials.zeros(n_chunks, (K,), (K, D), (s_rows, sd1, D), (), ())


def _finish_partials(code, parts):
    """Sum the partials in chunk order; mirror a full/tied scatter."""
    nk, sums, scatter, ll, ws = _partials.reduce_partials(*parts)
    if code <= TIED:
        _partials.mirror_upper(scatter)
    return nk, sums, scatter, ll, ws


def _shift_moments(code, nk, sums, scatter, wref, ref):
    """Re-centre diag/spherical/one-feature moments from ``wref`` to ``ref``.

    With ``delta = wref - ref`` (exact in float64), ``sum w (x - ref) = S1 +
    delta nk`` and ``sum w (x - ref)^2 = S2 + 2 delta S1 + delta^2 nk``.  For
    float32 data ``wref`` is ``ref`` rounded to float32, ``|delta| <= 6e-8
    |ref|``, so the correction is small and adds no cancellation; for
    float64 data ``delta = 0`` and nothing changes.  In place.
    """
    dl = wref.astype(np.float64) - ref
    if not dl.any():
        return
    if code == TIED:  # one feature, one shared scatter row
        for k in range(ref.shape[0]):
            scatter[0, 0] += dl[k] * (2.0 * sums[k] + dl[k] * nk[k])
            sums[k] += dl[k] * nk[k]
        return
    scatter[:, 0] += dl * (2.0 * sums + dl * nk[:, None])
    sums += dl * nk[:, None]


_NO_LABELS = np.empty(0, np.int64)
_NO_RESP = np.empty((0, 0))
_NO_LSE = np.empty(0)


def _fns(code, D):
    """Return layout ``code``'s dispatchers (full/tied: the variant for ``D``)."""
    if code <= TIED:  # compile one triangular variant, not both
        return _BY_QUAD[1 if D <= WIDE_TRI_MAX_D else 2][code]
    return _SPECIALIZED[code]


(_em_pass_full, _em_pass_tied, _em_pass_diag,
 _em_pass_spherical) = EM_PASS = tuple(
     functools.partial(_em_pass_layout, code) for code in range(4))


def _stats_given_layout(code, X, sw, mode, labels, resp, seed, K, ref,
                        n_chunks, s_rows, block):
    """Statistics from given responsibilities, in one parallel pass.

    The E-step worker with ``mode`` 0 (``labels``), 1 (random, ``seed``) or
    2 (``resp``): see :func:`_t_em_worker`.  ``block`` rows per block, as
    for the E-step.

    Returns
    -------
    nk, sums, scatter, loglik (0), weight_sum
    """
    D = X.shape[1]
    fns = _fns(code, D)
    parts = _zero_partials(n_chunks, K, D, s_rows, D if code <= TIED else 1)
    wref = ref.astype(X.dtype)
    # placeholders of the E-step's types (one compiled worker for both uses)
    wmeans = np.zeros((K, D), X.dtype)
    wprec = np.zeros((1, 1, 1), X.dtype)
    wlogc = np.zeros(K, X.dtype)
    run_workers(fns["_t_em_worker"],
                (np.zeros(1, np.int64), X, sw, ref, wmeans, wprec, wlogc,
                 wref, n_chunks, block, True, _NO_LSE, _NO_RESP, _NO_LABELS,
                 mode, labels, resp, seed) + parts, n_chunks)
    # accumulated in float64 about ref itself: nothing to re-centre
    return _finish_partials(code, parts)


STATS_GIVEN = tuple(functools.partial(_stats_given_layout, code)
                    for code in range(4))
(_block_logp_full, _block_logp_tied, _block_logp_diag,
 _block_logp_spherical) = (d["_t_block_logp"] for d in _SPECIALIZED)
(_block_accumulate_full, _block_accumulate_tied, _block_accumulate_diag,
 _block_accumulate_spherical) = (d["_t_block_accumulate"]
                                 for d in _SPECIALIZED)


# Run-time dispatch over the layouts, for callers whose layout is a run-time
# value (the HMM kernels; tests).  Calling one compiles all four layouts.
@njit(**JIT)
def _block_logp(code, xt, nb, means, prec, logconst, lp, dt, t, q):
    """:func:`_t_block_logp` for the layout ``code``."""
    if code == FULL:
        _block_logp_full(xt, nb, means, prec, logconst, lp, dt, t, q)
    elif code == TIED:
        _block_logp_tied(xt, nb, means, prec, logconst, lp, dt, t, q)
    elif code == DIAG:
        _block_logp_diag(xt, nb, means, prec, logconst, lp, dt, t, q)
    else:
        _block_logp_spherical(xt, nb, means, prec, logconst, lp, dt, t, q)


@njit(**JIT)
def _block_accumulate(code, xt, nb, lp, wb, ref, wref, nk, sums, scatter,
                      dt, wd, wr):
    """:func:`_t_block_accumulate` for the layout ``code``."""
    if code == FULL:
        _block_accumulate_full(xt, nb, lp, wb, ref, wref, nk, sums, scatter,
                               dt, wd, wr)
    elif code == TIED:
        _block_accumulate_tied(xt, nb, lp, wb, ref, wref, nk, sums, scatter,
                               dt, wd, wr)
    elif code == DIAG:
        _block_accumulate_diag(xt, nb, lp, wb, ref, wref, nk, sums, scatter,
                               dt, wd, wr)
    else:
        _block_accumulate_spherical(xt, nb, lp, wb, ref, wref, nk, sums,
                                    scatter, dt, wd, wr)


def _em_pass(code, X, sw, means, prec, logconst, ref, n_chunks, block,
             want_stats, out_lse, out_resp, out_label, s_rows):
    """:func:`_em_pass_layout` for the layout ``code``."""
    return EM_PASS[code](X, sw, means, prec, logconst, ref, n_chunks, block,
                         want_stats, out_lse, out_resp, out_label, s_rows)
