"""Vectorizable ``exp`` and ``log`` for the hot loops.

Without Intel's SVML, LLVM cannot vectorize loops that call ``math.exp`` or
``math.log`` (each element becomes a libm call).  These versions are plain
arithmetic (range reduction, polynomial, exponent bit manipulation), so a loop
over them compiles to SIMD code.  Accuracy is about 1 ulp over the ranges
used; ``tests/test_fastmath.py`` checks them against NumPy over the whole
input range.

Also the kernels' other low-level helpers, written as LLVM intrinsics:
``wide_simd`` (the 512-bit vector hint), ``transpose_tile`` (block transposes
in registers) and ``fetch_add`` (the atomic counter of the chunk queue).
"""

import math
import struct

import numpy as np
from llvmlite import ir
from numba import config, njit, types
from numba.core import cgutils
from numba.core.extending import intrinsic, overload

from fastem._config import JIT

# No 'reassoc' here: it would fold the two-constant range reduction back into
# one product and cost ~100 ulps.
_JIT = dict(JIT, fastmath={"nsz", "arcp", "contract"})


@intrinsic
def _i64_as_f64(typingctx, x):
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


@intrinsic
def _f64_as_i64(typingctx, x):
    sig = types.int64(types.float64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return sig, codegen


@intrinsic
def _pow2_f32(typingctx, n):
    """``2**n`` for a float32 ``n`` holding an integer in [-126, 127].

    Built from the exponent bits; the conversion is to int32, which AVX2
    vectorizes (int64 conversion needs AVX-512).
    """
    sig = types.float32(types.float32)

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        k = builder.fptosi(args[0], i32)
        k = builder.add(k, ir.Constant(i32, 127))
        k = builder.shl(k, ir.Constant(i32, 23))
        return builder.bitcast(k, ir.FloatType())

    return sig, codegen


@intrinsic
def _mant32(typingctx, x):
    """Mantissa of a positive normal float32 ``x``, as a float32 in [1, 2)."""
    sig = types.float32(types.float32)

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        b = builder.bitcast(args[0], i32)
        b = builder.and_(b, ir.Constant(i32, 0x007FFFFF))
        b = builder.or_(b, ir.Constant(i32, 0x3F800000))
        return builder.bitcast(b, ir.FloatType())

    return sig, codegen


@intrinsic
def _expo32(typingctx, x):
    """Unbiased binary exponent of a positive normal float32, as a float32."""
    sig = types.float32(types.float32)

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        b = builder.bitcast(args[0], i32)
        b = builder.lshr(b, ir.Constant(i32, 23))
        b = builder.sub(b, ir.Constant(i32, 127))
        return builder.sitofp(b, ir.FloatType())

    return sig, codegen


# Preferred SIMD width of the hot loops, in bits.  LLVM's default for recent
# Intel server cores (Ice Lake and later: "prefer-256-bit") leaves the 512-bit
# AVX-512 registers unused; these loops are arithmetic-bound: a loop of exp
# measured 1.6x faster with them, the whole E-step pass 1.08x (8-D diag) to
# 1.16x (1-D) at 1 thread.  On a processor without AVX-512 the hint is
# capped at what the hardware has, so it is harmless everywhere.
SIMD_BITS = 512


@intrinsic
def wide_simd(typingctx):
    """Ask LLVM to vectorize the calling function with ``SIMD_BITS`` registers.

    Adds the ``"prefer-vector-width"`` attribute to the function being
    compiled (the caller: an intrinsic is emitted inline).  Every kernel
    with vectorizable loops calls it first -- helpers are optimized on their
    own before inlining, so the attribute must be on each of them, and on
    the body of each ``prange`` loop (an outlined function of its own).
    """
    sig = types.none()

    def codegen(context, builder, signature, args):
        # llvmlite validates only LLVM's enum attributes; a string attribute
        # is written into the IR verbatim
        set.add(builder.function.attributes,
                f'"prefer-vector-width"="{SIMD_BITS}"')
        return context.get_dummy_value()

    return sig, codegen



@intrinsic
def inline_into_callers(typingctx):
    """Make LLVM inline the calling function into every kernel that calls it.

    Adds LLVM's ``alwaysinline`` attribute to the function being compiled.
    Without it a helper that LLVM chose not to inline stays a call, and
    the call resolves to whichever copy of the helper the process loaded
    first: numba compiles the helper once on its own and links a second
    copy, optimized again, into each caller's (cached) object code.  The
    two copies may round reassociated sums differently, so a fit compiled
    in this process and the same fit loaded from the cache differed in the
    last bits.  Inlined, the caller's compiled code is the whole kernel:
    what the cache stores is what ran when it was compiled.  The helper's
    loops are vectorized in its own module first (with its own vector
    width) and are not vectorized again.  Every kernel called from another
    kernel calls this (``tests/test_compile.py`` checks that no compiled
    kernel calls another).
    """
    sig = types.none()

    def codegen(context, builder, signature, args):
        builder.function.attributes.add("alwaysinline")
        return context.get_dummy_value()

    return sig, codegen


def _shuffle(builder, a, b, idx):
    """Elements ``idx`` of the concatenation of the vectors ``a`` and ``b``."""
    mask = ir.Constant(ir.VectorType(ir.IntType(32), len(idx)), idx)
    return builder.shuffle_vector(a, b, mask)


# The three stages of an 8 x 8 transpose as two-input shuffles: pairs of rows
# (even / odd columns), then pairs of pairs, then the two halves.
_TR_STAGES = (([0, 8, 2, 10, 4, 12, 6, 14], [1, 9, 3, 11, 5, 13, 7, 15]),
              ([0, 1, 8, 9, 4, 5, 12, 13], [2, 3, 10, 11, 6, 7, 14, 15]),
              ([0, 1, 2, 3, 8, 9, 10, 11], [4, 5, 6, 7, 12, 13, 14, 15]))



@intrinsic
def transpose_tile(typingctx, X, r0, c0, xt, i0, width):
    """``xt[c0 + b, i0 + a] = X[r0 + a, c0 + b]``, ``a`` < 8, ``b`` < ``width``.

    One tile of a block transpose, in registers.  ``width`` is a literal
    integer from 1 to 8:

    * 8: eight row loads, 24 two-input shuffles (LLVM lowers them to
      ``vunpck``/``vpermt2``/``vshuf``), eight row stores.  A loop of scalar
      copies makes 64 loads and 64 strided stores; 8-D rows measured 3.4 ->
      1.3 ns each from L1.
    * below 8: the tile must be whole rows (``c0 = 0``, ``width`` columns):
      eight C-contiguous rows are one ``8 width`` vector, loaded at once and
      split into its columns by ``width`` shuffles.  2-D rows measured 2.7
      -> 0.25 ns each from L1, 7-D 4.4 -> 1.5.

    ``X`` and ``xt`` are float32 or float64, not necessarily the same (the
    values are converted, as an element assignment would); a C-contiguous
    array is read or written as whole vectors, any other layout element by
    element.  No bounds checks: the caller keeps the tile inside both arrays.
    """
    if not (isinstance(X, types.Array) and isinstance(xt, types.Array)
            and X.ndim == 2 and xt.ndim == 2
            and isinstance(X.dtype, types.Float)
            and isinstance(xt.dtype, types.Float)
            and isinstance(width, types.IntegerLiteral)
            and 1 <= width.literal_value <= 8):
        return None
    sig = types.none(X, r0, c0, xt, i0, width)
    W = width.literal_value

    def codegen(context, builder, signature, args):
        xty, r0ty, c0ty, tty, i0ty = signature.args[:5]
        ity = ir.IntType(64)
        r0v, c0v, i0v = (context.cast(builder, v, t, types.int64)
                         for v, t in ((args[1], r0ty), (args[2], c0ty),
                                      (args[4], i0ty)))
        lty = context.get_data_type(xty.dtype)
        align = context.get_abi_alignment(lty)
        out_lty = context.get_data_type(tty.dtype)
        out_align = context.get_abi_alignment(out_lty)

        def convert(vec):
            # float32 rows into a float64 block (or back): one vector cvt
            if out_lty == lty:
                return vec
            vty = ir.VectorType(out_lty, vec.type.count)
            if xty.dtype.bitwidth < tty.dtype.bitwidth:
                return builder.fpext(vec, vty)
            return builder.fptrunc(vec, vty)

        def index(v, a):
            return builder.add(v, ir.Constant(ity, a))

        def item(aty, arr, i, j):
            return cgutils.get_item_pointer2(
                context, builder, data=arr.data,
                shape=cgutils.unpack_tuple(builder, arr.shape),
                strides=cgutils.unpack_tuple(builder, arr.strides),
                layout=aty.layout, inds=[i, j], wraparound=False)

        def vload(ptr, n):
            ptr = builder.bitcast(ptr, ir.VectorType(lty, n).as_pointer())
            return convert(builder.load(ptr, align=align))

        def gather(rows, cols):
            # element loads, for layouts without contiguous rows
            vec = ir.Constant(ir.VectorType(lty, len(rows)), ir.Undefined)
            for e, (i, j) in enumerate(zip(rows, cols)):
                val = builder.load(item(xty, xa, i, j))
                vec = builder.insert_element(vec, val, ir.Constant(ity, e))
            return convert(vec)

        xa = context.make_array(xty)(context, builder, args[0])
        ta = context.make_array(tty)(context, builder, args[3])
        rows = [index(r0v, a) for a in range(8)]
        if W == 8:
            if xty.layout == "C":
                v = [vload(item(xty, xa, row, c0v), 8) for row in rows]
            else:
                cols = [index(c0v, b) for b in range(8)]
                v = [gather([row] * 8, cols) for row in rows]
            # the vectors 1, 2, then 4 apart are paired; after the last
            # stage v[b] holds column b of the tile
            for step, (lo, hi) in zip((1, 2, 4), _TR_STAGES):
                w = list(v)
                for a in range(8):
                    if not a & step:
                        w[a] = _shuffle(builder, v[a], v[a + step], lo)
                        w[a + step] = _shuffle(builder, v[a], v[a + step], hi)
                v = w
        elif xty.layout == "C":
            flat = vload(item(xty, xa, r0v, c0v), 8 * W)
            undef = ir.Constant(flat.type, ir.Undefined)
            v = [_shuffle(builder, flat, undef, [b + W * a for a in range(8)])
                 for b in range(W)]
        else:
            v = [gather(rows, [index(c0v, b)] * 8) for b in range(W)]
        for b, vec in enumerate(v):
            dst = index(c0v, b)
            if tty.layout == "C":
                ptr = builder.bitcast(item(tty, ta, dst, i0v),
                                      vec.type.as_pointer())
                builder.store(vec, ptr, align=out_align)
                continue
            for a in range(8):
                builder.store(builder.extract_element(vec, ir.Constant(ity, a)),
                              item(tty, ta, dst, index(i0v, a)))
        return context.get_dummy_value()

    return sig, codegen



@intrinsic
def fetch_add(typingctx, counter, value):
    """Atomically add ``value`` to ``counter[0]`` (int64); return the old value.

    A work queue for ``prange`` loops: each worker takes the next chunk
    index, so a thread that starts late or runs slow (another tenant on its
    core, a core waking from idle) takes fewer chunks instead of holding up
    the whole pass.  Relaxed ordering: the counter only hands out indices.
    """
    if not (isinstance(counter, types.Array) and counter.dtype == types.int64
            and isinstance(value, types.Integer)):
        return None
    sig = types.int64(counter, value)

    def codegen(context, builder, signature, args):
        arr = context.make_array(signature.args[0])(context, builder, args[0])
        v = context.cast(builder, args[1], signature.args[1], types.int64)
        return builder.atomic_rmw("add", arr.data, v, "monotonic")

    return sig, codegen

if config.DISABLE_JIT:  # pure-Python twins, for coverage runs (NUMBA_DISABLE_JIT=1)

    def _i64_as_f64(x):  # noqa: F811
        # wrap to 64 bits as the compiled shift does (Python ints are unbounded)
        return struct.unpack("<d", struct.pack("<Q", int(x) & (2**64 - 1)))[0]

    def _f64_as_i64(x):  # noqa: F811
        return struct.unpack("<q", struct.pack("<d", float(x)))[0]

    def _pow2_f32(n):  # noqa: F811
        if n != n:  # NaN in, NaN out (the compiled conversion gives garbage
            return np.float32(np.nan)  # that the caller's NaN absorbs)
        return np.float32(2.0) ** np.float32(int(n))

    def _mant32(x):  # noqa: F811
        return np.float32(2.0 * np.frexp(np.float32(x))[0])

    def _expo32(x):  # noqa: F811
        return np.float32(np.frexp(np.float32(x))[1] - 1)

    def wide_simd():  # noqa: F811
        return None

    def inline_into_callers():  # noqa: F811
        return None

    def fetch_add(counter, value):  # noqa: F811
        old = int(counter[0])
        counter[0] += value
        return old

    def transpose_tile(X, r0, c0, xt, i0, width):  # noqa: F811
        xt[c0:c0 + width, i0:i0 + 8] = X[r0:r0 + 8, c0:c0 + width].T


_LOG2E = 1.4426950408889634
_ROUND = 6755399441055744.0  # 1.5 * 2**52
_LN2_HI = 6.93145751953125e-1
_LN2_LO = 1.42860682030941723212e-6
_LN2 = 0.6931471805599453
_SQRT2 = 1.4142135623730951

# Results below 2**-1022 are flushed to zero: in a responsibility they are
# negligible, and subnormal arithmetic is slow.
EXP_MIN = -708.0


@njit(**_JIT)
def exp(x):
    """``exp(x)`` for ``x <= 709``; returns 0.0 below ``EXP_MIN`` (and for -inf).

    Range reduction ``x = n ln2 + r`` with ``|r| <= ln2 / 2`` and a degree-11
    polynomial fitted to ``exp`` on that interval (relative approximation
    error 4e-18, far below rounding; Taylor would need degree 13).
    """
    xc = max(x, EXP_MIN)
    # n = round(xc / ln 2) without float -> int conversions: adding 1.5 2^52
    # rounds to an integer held in the low mantissa bits of t (exact, as
    # this module's fastmath flags exclude reassociation).
    t = xc * _LOG2E + _ROUND
    n = t - _ROUND
    r = xc - n * _LN2_HI - n * _LN2_LO
    p = 2.5024569257258993e-08
    p = p * r + 2.7631124886367544e-07
    p = p * r + 2.7557507524804155e-06
    p = p * r + 2.4801490347967785e-05
    p = p * r + 0.00019841269596843818
    p = p * r + 0.0013888888946676798
    p = p * r + 0.00833333333345157
    p = p * r + 0.04166666666651633
    p = p * r + 0.16666666666666483
    p = p * r + 0.5000000000000012
    p = p * r + 1.0
    p = p * r + 1.0
    # 2^n from the low bits of t: (bits(t) + 1023) << 52 keeps n + 1023
    scale = _i64_as_f64((_f64_as_i64(t) + 1023) << 52)
    return 0.0 if x < EXP_MIN else p * scale


@njit(**_JIT)
def log(x):
    """``log(x)`` for positive normal ``x`` (not for 0, subnormals, inf, NaN).

    ``x = m 2^e`` with ``m`` in [sqrt(2)/2, sqrt(2)), then
    ``log(m) = 2 atanh(s)``, ``s = (m - 1) / (m + 1)``, ``|s| <= 0.172``,
    by its odd series to ``s^21``.
    """
    bits = _f64_as_i64(x)
    e = ((bits >> 52) & 0x7FF) - 1023
    m = _i64_as_f64((bits & 0xFFFFFFFFFFFFF) | 0x3FF0000000000000)
    if m > _SQRT2:
        m *= 0.5
        e += 1
    s = (m - 1.0) / (m + 1.0)
    z = s * s
    p = 1.0 / 21.0
    p = p * z + 1.0 / 19.0
    p = p * z + 1.0 / 17.0
    p = p * z + 1.0 / 15.0
    p = p * z + 1.0 / 13.0
    p = p * z + 1.0 / 11.0
    p = p * z + 1.0 / 9.0
    p = p * z + 1.0 / 7.0
    p = p * z + 1.0 / 5.0
    p = p * z + 1.0 / 3.0
    p = p * z + 1.0
    return e * _LN2 + 2.0 * s * p


# ---------------------------------------------------------------- float32
EXP_MIN32 = np.float32(-87.0)  # exp(-87) ~ 1.6e-38, still a normal float32
_LOG2E32 = np.float32(1.4426950408889634)
_LN2_HI32 = np.float32(0.693359375)  # exact in float32 (Cephes' split)
_LN2_LO32 = np.float32(-2.12194440e-4)
_F32 = [np.float32(1.0 / math.factorial(i)) for i in range(8)]
_C2, _C3, _C4, _C5, _C6, _C7 = _F32[2:]
_ONE32 = np.float32(1.0)
_HALF32 = np.float32(0.5)
_ZERO32 = np.float32(0.0)


@njit(**_JIT)
def exp32(x):
    """float32 ``exp(x)`` for ``x <= 88``; 0 below ``EXP_MIN32`` (and -inf).

    All arithmetic in float32 (eight lanes per AVX2 register): range
    reduction with a two-part ln 2 and a degree-7 Taylor polynomial
    (truncation below 5e-9 relative); about 1 ulp of float32.
    """
    xc = max(x, EXP_MIN32)
    n = np.floor(xc * _LOG2E32 + _HALF32)
    r = xc - n * _LN2_HI32 - n * _LN2_LO32
    p = _C7
    p = p * r + _C6
    p = p * r + _C5
    p = p * r + _C4
    p = p * r + _C3
    p = p * r + _C2
    p = p * r + _ONE32
    p = p * r + _ONE32
    return _ZERO32 if x < EXP_MIN32 else p * _pow2_f32(n)


_SQRT2_32 = np.float32(1.4142135623730951)
_LN2_HI32L = np.float32(0.693145751953125)  # few mantissa bits: e * hi exact
_LN2_LO32L = np.float32(1.428606765330187e-06)
_TWO32 = np.float32(2.0)
_L3, _L5, _L7, _L9 = (np.float32(1.0 / d) for d in (3.0, 5.0, 7.0, 9.0))


@njit(**_JIT)
def log32(x):
    """float32 ``log(x)`` for positive normal float32 ``x``.

    ``x = m 2^e``, ``m`` in [sqrt(2)/2, sqrt(2)), ``log(m) = 2 atanh(s)`` with
    ``s = (m - 1) / (m + 1)`` by its odd series to ``s^9``; about 1 ulp.
    """
    m = _mant32(x)
    e = _expo32(x)
    if m > _SQRT2_32:
        m *= _HALF32
        e += _ONE32
    s = (m - _ONE32) / (m + _ONE32)
    z = s * s
    p = _L9
    p = p * z + _L7
    p = p * z + _L5
    p = p * z + _L3
    p = p * z + _ONE32
    return e * _LN2_HI32L + (e * _LN2_LO32L + _TWO32 * s * p)


def vlog(x):
    """Return ``log(x)`` in the precision of ``x`` (see :func:`vexp`)."""
    if isinstance(x, np.float32):
        return log32(x)
    return log(x)


def vexp(x):
    """Return ``exp(x)`` in the precision of ``x``.

    :func:`exp32` for float32, else :func:`exp`; dispatched at compile time
    inside kernels.
    """
    if isinstance(x, np.float32):
        return exp32(x)
    return exp(x)


def put(dst, c, src):
    """``dst[c] = src`` for a 1-, 2- or 3-D ``src``, as element copies.

    numba's array-into-slice assignment checks the shapes at run time and, on
    a mismatch, raises an error whose message is built from the shapes
    (integer formatting and string joins compiled into every caller: seconds
    of compile time per shape rank).  The callers' shapes match by
    construction; this copies without the check.
    """
    dst[c] = src


def as_float64(xt, nb, buf, convert):
    """``xt`` (D, B) itself if it is float64, else ``buf`` (float64).

    For float32 ``xt``, when ``convert``, its first ``nb`` columns are
    converted into ``buf`` first (exactly).  Lets float32 data reach a
    float64-only helper (one compiled specialization instead of two) where
    the helper would promote every element to float64 anyway.
    """
    if xt.dtype == np.float64:
        return xt
    if convert:
        buf[:, :nb] = xt[:, :nb]
    return buf


def typed(value, like):
    """Return the constant ``value`` as the float type of ``like``'s elements.

    Python float literals are float64 in Numba; multiplying a float32 by one
    would promote the whole expression (and halve the SIMD width).
    """
    return like.dtype.type(value)


if not config.DISABLE_JIT:

    @overload(vexp, jit_options=_JIT)
    def _vexp_impl(x):
        if isinstance(x, types.Float) and x.bitwidth == 32:
            return lambda x: exp32(x)
        return lambda x: exp(x)

    @overload(vlog, jit_options=_JIT)
    def _vlog_impl(x):
        if isinstance(x, types.Float) and x.bitwidth == 32:
            return lambda x: log32(x)
        return lambda x: log(x)

    @overload(put, jit_options=JIT)
    def _put_impl(dst, c, src):
        if src.ndim == 1:
            def put1(dst, c, src):
                inline_into_callers()
                for i in range(src.shape[0]):
                    dst[c, i] = src[i]
            return put1
        if src.ndim == 2:
            def put2(dst, c, src):
                inline_into_callers()
                for i in range(src.shape[0]):
                    for j in range(src.shape[1]):
                        dst[c, i, j] = src[i, j]
            return put2
        if src.ndim == 3:
            def put3(dst, c, src):
                inline_into_callers()
                for i in range(src.shape[0]):
                    for j in range(src.shape[1]):
                        for k in range(src.shape[2]):
                            dst[c, i, j, k] = src[i, j, k]
            return put3

    @overload(as_float64, jit_options=_JIT, inline="always")
    def _as_float64_impl(xt, nb, buf, convert):
        if xt.dtype == types.float64:
            return lambda xt, nb, buf, convert: xt

        def convert_into(xt, nb, buf, convert):
            if convert:
                for a in range(xt.shape[0]):
                    for i in range(nb):
                        buf[a, i] = xt[a, i]
            return buf
        return convert_into

    @overload(typed, jit_options=_JIT)
    def _typed_impl(value, like):
        if like.dtype == types.float32:
            return lambda value, like: np.float32(value)
        return lambda value, like: np.float64(value)
