"""Register-blocked micro-kernels for the O(N K D^2) work of full covariances.

Written as LLVM intrinsics (like :func:`fastem.kernels.fastmath.transpose_tile`)
because numba has no vector type: a tile of running sums must stay in vector
registers across the whole reduction, which LLVM's loop vectorizer does not
arrange for a loop nest written in Python -- it vectorizes the innermost loop
and keeps the running columns in memory.

The tile shape is chosen for the target's vector registers (numba compiles
for the host CPU, or for ``NUMBA_CPU_NAME`` / ``NUMBA_CPU_FEATURES``): with
AVX-512 (32 registers of 512 bits) a tile of 3 row vectors by 8 columns
keeps 24 accumulators, 3 rows and a broadcast in registers; with AVX2 or
less (16 registers of 256 bits or narrower), 2 row vectors by 6 columns
(12 accumulators).
Narrower hardware gets the same LLVM vectors split into what it has:
correct everywhere, fast where the tile fits.

Each kernel's arithmetic is a fixed sequence of multiply-adds per row (rows
are vector lanes and never mix), so a row's result does not depend on its
position in a block, on the block size or on the thread count.
"""

import llvmlite.binding as _ll
import numpy as np
from llvmlite import ir
from numba.core import cgutils, config, types
from numba.core.extending import intrinsic

__all__ = ["ROW_VECTORS", "VECTOR_BYTES", "group_rows", "tri_quadratic_rows"]


def _target_has_avx512():
    """Whether numba compiles for a CPU with AVX-512F (32 vector registers)."""
    feats = config.CPU_FEATURES
    if feats is None:
        feats = _ll.get_host_cpu_features().flatten()
    return "+avx512f" in feats.split(",")


AVX512 = _target_has_avx512()
# Bytes per vector register, and the tile: rows of ROW_VECTORS vectors by
# TILE_COLUMNS columns of the product.
VECTOR_BYTES = 64 if AVX512 else 32
ROW_VECTORS = 3 if AVX512 else 2
TILE_COLUMNS = 8 if AVX512 else 6


def group_rows(itemsize):
    """Rows one call of a micro-kernel covers, for items of ``itemsize`` bytes."""
    return ROW_VECTORS * (VECTOR_BYTES // itemsize)


# group_rows for float64 and float32, as constants for the kernels
GROUP64 = group_rows(8)
GROUP32 = group_rows(4)


def _i64(v):
    return ir.Constant(ir.IntType(64), v)


def _plus(builder, v, c):
    """Return ``v + c`` for an i64 value ``v`` and an i64 value or int."""
    return builder.add(v, c if isinstance(c, ir.Value) else _i64(c))


def _splat(builder, scalar, lanes):
    """Return a vector of ``lanes`` copies of ``scalar`` (a broadcast)."""
    vty = ir.VectorType(scalar.type, lanes)
    v = builder.insert_element(ir.Constant(vty, ir.Undefined), scalar,
                               _i64(0))
    return builder.shuffle_vector(
        v, ir.Constant(vty, ir.Undefined),
        ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes))


def _arrays(context, builder, signature, args, which):
    """Return the array structures of the arguments at the indices ``which``."""
    return [context.make_array(signature.args[k])(context, builder, args[k])
            for k in which]


def _muladd(builder, a, b, c):
    """Return ``a * b + c``, contractible into one FMA where the target has it."""
    p = builder.fmul(a, b)
    p.flags.append("contract")
    s = builder.fadd(p, c)
    s.flags.append("contract")
    return s


@intrinsic
def tri_quadratic_rows(typingctx, d, i0, mu, U, q):
    """``q[i] = |U^T d[:, i]|^2`` for the rows ``i0 .. i0 + group_rows``.

    ``d`` (D, B) holds centred rows as columns (C-contiguous), ``U`` (D, D)
    is upper triangular (its lower triangle is not read) and ``q`` (B,)
    receives the squared norms; all three of one float type.  The caller
    keeps ``i0 + group_rows(itemsize) <= B`` and ``len(q)``.

    ``y = U^T d`` is built a tile of ``TILE_COLUMNS`` columns at a time, in
    registers: for each feature ``a`` above the tile, ``ROW_VECTORS`` row
    vectors of ``d[a]`` and one broadcast ``U[a, j]`` per column make
    ``ROW_VECTORS x TILE_COLUMNS`` multiply-adds; the tile's triangle is
    unrolled.  Then ``q += y_j^2`` column by column.  Nothing is stored but
    ``q``: the loop order ``j``-tile, ``a``, then rows, keeps the partial
    columns in registers, where a vectorized loop over rows would store and
    reload them for every ``a``.  Per row, ``y_j`` sums ``a = 0 .. j`` in
    order and ``q`` sums ``j = 0 .. D - 1`` in order.
    """
    if not (isinstance(d, types.Array) and isinstance(U, types.Array)
            and isinstance(q, types.Array) and d.ndim == 2 and U.ndim == 2
            and isinstance(mu, types.Array) and mu.ndim == 1
            and q.ndim == 1 and isinstance(d.dtype, types.Float)
            and d.dtype == U.dtype == q.dtype == mu.dtype
            and d.layout == U.layout == q.layout == mu.layout == "C"):
        return None
    sig = types.none(d, i0, mu, U, q)

    def codegen(context, builder, signature, args):
        dty, ity_, mty, uty, qty = signature.args
        fty = context.get_data_type(dty.dtype)
        align = context.get_abi_alignment(fty)
        L = VECTOR_BYTES // (dty.dtype.bitwidth // 8)
        R = ROW_VECTORS
        C = TILE_COLUMNS
        vty = ir.VectorType(fty, L)
        zero = ir.Constant(vty, [0.0] * L)
        da, ma, ua, qa = _arrays(context, builder, signature, args,
                                 (0, 2, 3, 4))
        row0 = context.cast(builder, args[1], ity_, types.int64)
        D, B = cgutils.unpack_tuple(builder, da.shape)
        DU = cgutils.unpack_tuple(builder, ua.shape)[1]
        # C-contiguous: element (a, i) is data + a * ncols + i; the tile's
        # vectors and broadcasts are constant offsets from one row pointer
        d0 = builder.gep(da.data, [row0])

        const = _i64

        def add(v, c):
            return _plus(builder, v, c)

        def load_rows(a):
            # d[a] - mu[a] for the tile's rows
            base = builder.gep(d0, [builder.mul(a, B)])
            m = splat(builder.gep(ma.data, [a]), 0)
            out = []
            for r in range(R):
                p = builder.bitcast(builder.gep(base, [const(r * L)]),
                                    vty.as_pointer())
                out.append(builder.fsub(builder.load(p, align=align), m))
            return out

        def u_row(a, j0):
            return builder.gep(ua.data, [builder.add(builder.mul(a, DU), j0)])

        def splat(base, c):
            return _splat(builder, builder.load(builder.gep(base, [const(c)])),
                          L)

        qacc = [cgutils.alloca_once_value(builder, zero) for _ in range(R)]
        acc = [[cgutils.alloca_once(builder, vty) for _ in range(C)]
               for _ in range(R)]

        def tile(j0, width):
            # columns j0 .. j0 + width - 1 of y, then their squares into q
            for r in range(R):
                for c in range(width):
                    builder.store(zero, acc[r][c])
            with cgutils.for_range(builder, j0) as loop:
                a = loop.index
                rows = load_rows(a)
                ub = u_row(a, j0)
                for c in range(width):
                    u = splat(ub, c)
                    for r in range(R):
                        builder.store(
                            _muladd(builder, rows[r], u,
                                    builder.load(acc[r][c])), acc[r][c])
            for s in range(width):  # the triangle: a = j0 + s, j >= a
                a = add(j0, s)
                rows = load_rows(a)
                ub = u_row(a, j0)
                for c in range(s, width):
                    u = splat(ub, c)
                    for r in range(R):
                        builder.store(
                            _muladd(builder, rows[r], u,
                                    builder.load(acc[r][c])), acc[r][c])
            for r in range(R):
                # the tile's squares summed as a tree (a chain of
                # ``width`` dependent multiply-adds would stall), then
                # added to the row's total
                sq = []
                for c in range(width):
                    y = builder.load(acc[r][c])
                    sq.append(builder.fmul(y, y))
                while len(sq) > 1:
                    sq = [builder.fadd(sq[i], sq[i + 1])
                          if i + 1 < len(sq) else sq[i]
                          for i in range(0, len(sq), 2)]
                builder.store(builder.fadd(builder.load(qacc[r]), sq[0]),
                              qacc[r])

        n_full = builder.udiv(D, const(C))
        with cgutils.for_range(builder, n_full) as loop:
            tile(builder.mul(loop.index, const(C)), C)
        rem = builder.urem(D, const(C))
        j_last = builder.mul(n_full, const(C))
        if C > 1:
            bb_end = builder.append_basic_block("tri_rem_end")
            sw = builder.switch(rem, bb_end)
            for w in range(1, C):
                bb = builder.append_basic_block(f"tri_rem_{w}")
                sw.add_case(const(w), bb)
                builder.position_at_end(bb)
                tile(j_last, w)
                builder.branch(bb_end)
            builder.position_at_end(bb_end)
        q0 = builder.gep(qa.data, [row0])
        for r in range(R):
            p = builder.bitcast(builder.gep(q0, [const(r * L)]),
                                vty.as_pointer())
            builder.store(builder.load(qacc[r]), p, align=align)
        return context.get_dummy_value()

    return sig, codegen




# The weighted scatter's tile: SCATTER_ROW_TILE rows ``a`` (one vector's
# lanes, so that tiles start on a vector boundary) by SCATTER_VECTORS
# vectors of columns ``b``: 8 x 3 = 24 accumulators with AVX-512, 4 x 3 =
# 12 with 4-lane vectors.
SCATTER_VECTORS = 3


def scatter_columns(D):
    """Columns of the micro-kernel's row-major panels for ``D`` features.

    ``D`` rounded up to a whole number of vectors (the padding is zeros).
    """
    L = VECTOR_BYTES // 8
    return -(-D // L) * L


@intrinsic
def scatter_rows(typingctx, wd, e, n, S, sums):
    """Add ``sum_i wd[i, a] e[i, b]`` to ``S[a, b]`` (``b >= a``), and sums.

    Also ``sums[a] += sum_i wd[i, a]``; rows ``i < n``, float64.

    ``wd`` and ``e`` (P, C) are row-major panels of the weighted and the
    plain centred rows, ``C = scatter_columns(D)``; what their columns from
    ``D`` hold is not used.  ``S`` (D, D) and ``sums`` (D,) are
    C-contiguous.

    A tile of ``L`` rows ``a`` (from a vector boundary) by
    ``SCATTER_VECTORS`` vectors of columns ``b`` keeps its sums in vector
    registers over all ``n`` rows: per row, ``SCATTER_VECTORS`` vector loads
    of ``e``, ``L`` broadcasts of ``wd`` and ``L x SCATTER_VECTORS``
    multiply-adds, and no horizontal sums -- the vectors run along ``b``.
    Tiles cover the upper triangle by whole vectors: the few products below
    the diagonal inside a diagonal block are computed and added too (the
    caller mirrors the upper triangle over them).  Each chunk also sums the
    tile's columns of ``wd`` (one more vector add per row), kept from the
    tile's first chunk for ``sums``.  The last tile's rows from ``D`` and the
    last vector's columns from ``D`` are computed and not stored: one tile
    shape, so little code to compile.  A fixed sequence of operations for
    given ``D`` and ``n``.
    """
    if not (isinstance(wd, types.Array) and isinstance(e, types.Array)
            and isinstance(S, types.Array) and isinstance(sums, types.Array)
            and wd.ndim == e.ndim == S.ndim == 2 and sums.ndim == 1
            and wd.dtype == e.dtype == S.dtype == sums.dtype == types.float64
            and wd.layout == e.layout == S.layout == sums.layout == "C"):
        return None
    sig = types.none(wd, e, n, S, sums)

    def codegen(context, builder, signature, args):
        wty, ety, nty, sty, uty = signature.args
        i64 = ir.IntType(64)
        fty = ir.DoubleType()
        L = VECTOR_BYTES // 8
        A = L
        BV = SCATTER_VECTORS
        vty = ir.VectorType(fty, L)
        zero = ir.Constant(vty, [0.0] * L)
        wa, ea, sa, ua = _arrays(context, builder, signature, args,
                                 (0, 1, 3, 4))
        nrows = context.cast(builder, args[2], nty, types.int64)
        C = cgutils.unpack_tuple(builder, ea.shape)[1]
        CW = cgutils.unpack_tuple(builder, wa.shape)[1]
        D = cgutils.unpack_tuple(builder, sa.shape)[0]
        n_vec = builder.udiv(C, ir.Constant(i64, L))

        const = _i64

        def add(v, c):
            return _plus(builder, v, c)

        def splat(ptr):
            return _splat(builder, builder.load(ptr), L)

        acc = [[cgutils.alloca_once(builder, vty) for _ in range(BV)]
               for _ in range(A)]
        acc_s = cgutils.alloca_once(builder, vty)
        # the tile, spilled for a clipped store (the last rows or columns)
        spill = cgutils.alloca_once(builder, ir.ArrayType(vty, A * BV))

        def add_vector(ptr, val):
            p = builder.bitcast(ptr, vty.as_pointer())
            builder.store(builder.fadd(builder.load(p, align=8), val), p,
                          align=8)

        def lane_ptr(k):
            # element pointer to vector k of the spilled tile
            return builder.bitcast(
                builder.gep(spill, [const(0), const(k)]), fty.as_pointer())

        def add_clipped_vector(ptr, val, count):
            # ptr[0 .. count) += the first ``count`` lanes of val
            builder.store(val, builder.gep(spill, [const(0), const(0)]))
            with cgutils.for_range(builder, count) as lp:
                q = builder.gep(ptr, [lp.index])
                x = builder.load(builder.gep(lane_ptr(0), [lp.index]))
                builder.store(builder.fadd(builder.load(q), x), q)

        def chunk(a0, vb, bw, first):
            # rows a0 .. a0 + A (those from D have zero weights: padding),
            # columns vb * L .. (vb + bw) * L
            for r in range(A):
                for c in range(bw):
                    builder.store(zero, acc[r][c])
            builder.store(zero, acc_s)
            col0 = builder.mul(vb, const(L))
            with cgutils.for_range(builder, nrows) as loop:
                i = loop.index
                erow = builder.gep(ea.data, [add(builder.mul(i, C), col0)])
                ev = [builder.load(builder.bitcast(
                    builder.gep(erow, [const(c * L)]), vty.as_pointer()),
                    align=8) for c in range(bw)]
                wrow = builder.gep(wa.data, [add(builder.mul(i, CW), a0)])
                # wd's rows of the tile, summed for ``sums`` (kept from the
                # first chunk only)
                wv = builder.load(builder.bitcast(wrow, vty.as_pointer()),
                                  align=8)
                builder.store(builder.fadd(builder.load(acc_s), wv), acc_s)
                for r in range(A):
                    w = splat(builder.gep(wrow, [const(r)]))
                    for c in range(bw):
                        builder.store(_muladd(builder, w, ev[c],
                                              builder.load(acc[r][c])),
                                      acc[r][c])
            with builder.if_then(first):
                left = builder.sub(D, a0)
                val = builder.load(acc_s)
                with builder.if_else(builder.icmp_signed(
                        ">=", left, const(L))) as (then, other):
                    with then:
                        add_vector(builder.gep(ua.data, [a0]), val)
                    with other:
                        add_clipped_vector(builder.gep(ua.data, [a0]), val,
                                           left)
            inside = builder.and_(
                builder.icmp_signed("<=", add(a0, A), D),
                builder.icmp_signed("<=", add(col0, bw * L), D))
            with builder.if_else(inside) as (then, other):
                with then:
                    for r in range(A):
                        srow = builder.gep(sa.data, [
                            builder.add(builder.mul(add(a0, r), D), col0)])
                        for c in range(bw):
                            add_vector(builder.gep(srow, [const(c * L)]),
                                       builder.load(acc[r][c]))
                with other:
                    # the last rows or columns: element by element from
                    # the spilled tile, rows below D, columns below D
                    for r in range(A):
                        for c in range(bw):
                            builder.store(builder.load(acc[r][c]),
                                          builder.gep(spill, [
                                              const(0), const(r * BV + c)]))
                    n_r = builder.sub(D, a0)
                    n_r = builder.select(builder.icmp_signed(
                        "<", n_r, const(A)), n_r, const(A))
                    n_c = builder.sub(D, col0)
                    n_c = builder.select(builder.icmp_signed(
                        "<", n_c, const(bw * L)), n_c, const(bw * L))
                    with cgutils.for_range(builder, n_r) as lr:
                        srow = builder.gep(sa.data, [builder.add(
                            builder.mul(add(a0, lr.index), D), col0)])
                        trow = builder.gep(lane_ptr(0), [
                            builder.mul(lr.index, const(BV * L))])
                        with cgutils.for_range(builder, n_c) as lc:
                            q = builder.gep(srow, [lc.index])
                            x = builder.load(builder.gep(trow, [lc.index]))
                            builder.store(builder.fadd(builder.load(q), x), q)

        def tile(a0):
            v0 = builder.udiv(a0, const(L))
            nv = builder.sub(n_vec, v0)
            n_ch = builder.udiv(nv, const(BV))
            with cgutils.for_range(builder, n_ch) as loop:
                chunk(a0, add(v0, builder.mul(loop.index, const(BV))), BV,
                      builder.icmp_unsigned("==", loop.index, const(0)))
            rem = builder.urem(nv, const(BV))
            vlast = add(v0, builder.mul(n_ch, const(BV)))
            end = builder.append_basic_block("sc_cols_end")
            sw = builder.switch(rem, end)
            for w in range(1, BV):
                bb = builder.append_basic_block(f"sc_cols_{w}")
                sw.add_case(const(w), bb)
                builder.position_at_end(bb)
                chunk(a0, vlast, w,
                      builder.icmp_unsigned("==", n_ch, const(0)))
                builder.branch(end)
            builder.position_at_end(end)

        # tiles of A rows from 0; rows from D are the zero padding of wd
        n_at = builder.udiv(add(D, A - 1), const(A))
        with cgutils.for_range(builder, n_at) as loop:
            tile(builder.mul(loop.index, const(A)))
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def centre_rows(typingctx, xr, p0, n, rf, wr, e, wd):
    """``e[i] = xr[p0 + i] - rf`` and ``wd[i] = wr[p0 + i] e[i]``, ``i < n``.

    Rows of ``C = scatter_columns(D)`` columns, float64, C-contiguous (``rf``
    too, zero past ``D`` as ``xr`` is, so the padding stays zero); ``wr``
    (float32 or float64) is converted exactly.  Whole vectors, with no
    run-time alias checks: written as a loop, one check per row cost more
    than the row's arithmetic.
    """
    if not (isinstance(xr, types.Array) and isinstance(e, types.Array)
            and isinstance(wd, types.Array) and isinstance(rf, types.Array)
            and isinstance(wr, types.Array) and xr.ndim == e.ndim == wd.ndim
            == 2 and rf.ndim == wr.ndim == 1
            and xr.dtype == e.dtype == wd.dtype == rf.dtype == types.float64
            and isinstance(wr.dtype, types.Float)
            and xr.layout == e.layout == wd.layout == rf.layout == "C"):
        return None
    sig = types.none(xr, p0, n, rf, wr, e, wd)

    def codegen(context, builder, signature, args):
        xty, pty, nty, rty, wty, ety, dty = signature.args
        i64 = ir.IntType(64)
        L = VECTOR_BYTES // 8
        vty = ir.VectorType(ir.DoubleType(), L)
        xa, ra, wa, ea, da = _arrays(context, builder, signature, args,
                                     (0, 3, 4, 5, 6))
        row0 = context.cast(builder, args[1], pty, types.int64)
        nrows = context.cast(builder, args[2], nty, types.int64)
        C = cgutils.unpack_tuple(builder, ea.shape)[1]
        XC = cgutils.unpack_tuple(builder, xa.shape)[1]
        DC = cgutils.unpack_tuple(builder, da.shape)[1]
        n_vec = builder.udiv(C, ir.Constant(i64, L))

        def vptr(base, off):
            return builder.bitcast(builder.gep(base, [off]), vty.as_pointer())

        with cgutils.for_range(builder, nrows) as loop:
            i = loop.index
            src = builder.add(row0, i)
            w = builder.load(builder.gep(wa.data, [src]))
            if wty.dtype.bitwidth < 64:
                w = builder.fpext(w, ir.DoubleType())
            wv = _splat(builder, w, L)
            xrow = builder.gep(xa.data, [builder.mul(src, XC)])
            erow = builder.gep(ea.data, [builder.mul(i, C)])
            drow = builder.gep(da.data, [builder.mul(i, DC)])
            with cgutils.for_range(builder, n_vec) as vloop:
                off = builder.mul(vloop.index, ir.Constant(i64, L))
                d = builder.fsub(builder.load(vptr(xrow, off), align=8),
                                 builder.load(vptr(ra.data, off), align=8))
                builder.store(d, vptr(erow, off), align=8)
                builder.store(builder.fmul(d, wv), vptr(drow, off), align=8)
        return context.get_dummy_value()

    return sig, codegen

if config.DISABLE_JIT:  # a pure-Python twin, for coverage runs

    def tri_quadratic_rows(d, i0, mu, U, q):  # noqa: F811
        G = group_rows(d.itemsize)
        D = d.shape[0]
        dd = d[:, i0:i0 + G] - mu[:, None]
        total = np.zeros(G, d.dtype)
        for j0 in range(0, D, TILE_COLUMNS):
            j1 = min(j0 + TILE_COLUMNS, D)
            y = [np.zeros(G, d.dtype) for _ in range(j0, j1)]
            for a in range(j1):
                for c in range(max(j0, a), j1):
                    y[c - j0] = dd[a] * U[a, c] + y[c - j0]
            sq = [v * v for v in y]
            while len(sq) > 1:
                sq = [sq[i] + sq[i + 1] if i + 1 < len(sq) else sq[i]
                      for i in range(0, len(sq), 2)]
            total = total + sq[0]
        q[i0:i0 + G] = total

    def centre_rows(xr, p0, n, rf, wr, e, wd):  # noqa: F811
        e[:n] = xr[p0:p0 + n] - rf
        wd[:n] = e[:n] * wr[p0:p0 + n, None].astype(np.float64)

    def scatter_rows(wd, e, n, S, sums):  # noqa: F811
        D = S.shape[0]
        up = np.triu_indices(D)
        S[up] += (wd[:n, :D].T @ e[:n, :D])[up]
        sums += wd[:n, :D].sum(axis=0)
