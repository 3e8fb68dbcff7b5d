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
        i64 = ir.IntType(64)
        fty = context.get_data_type(dty.dtype)
        align = context.get_abi_alignment(fty)
        L = VECTOR_BYTES // (dty.dtype.bitwidth // 8)
        R = ROW_VECTORS
        C = TILE_COLUMNS
        vty = ir.VectorType(fty, L)
        zero = ir.Constant(vty, [0.0] * L)
        da = context.make_array(dty)(context, builder, args[0])
        ma = context.make_array(mty)(context, builder, args[2])
        ua = context.make_array(uty)(context, builder, args[3])
        qa = context.make_array(qty)(context, builder, args[4])
        row0 = context.cast(builder, args[1], ity_, types.int64)
        D, B = cgutils.unpack_tuple(builder, da.shape)
        DU = cgutils.unpack_tuple(builder, ua.shape)[1]
        # C-contiguous: element (a, i) is data + a * ncols + i; the tile's
        # vectors and broadcasts are constant offsets from one row pointer
        d0 = builder.gep(da.data, [row0])

        def const(v):
            return ir.Constant(i64, v)

        def add(v, c):
            return builder.add(v, c if isinstance(c, ir.Value) else const(c))

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
            u = builder.load(builder.gep(base, [const(c)]))
            v = builder.insert_element(ir.Constant(vty, ir.Undefined), u,
                                       const(0))
            return builder.shuffle_vector(
                v, ir.Constant(vty, ir.Undefined),
                ir.Constant(ir.VectorType(ir.IntType(32), L), [0] * L))

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
