"""Vectorizable ``exp`` and ``log`` for the hot loops.

Without Intel's SVML, LLVM cannot vectorize loops that call ``math.exp`` or
``math.log`` (each element becomes a libm call).  These versions are plain
arithmetic (range reduction, polynomial, exponent bit manipulation), so a loop
over them compiles to SIMD code.  Accuracy is about 1 ulp over the ranges
used; ``tests/test_fastmath.py`` checks them against NumPy over the whole
input range.
"""

import math
import struct

from llvmlite import ir
from numba import config, njit, types
from numba.core.extending import intrinsic

from ._config import JIT

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


if config.DISABLE_JIT:  # pure-Python twins, for coverage runs (NUMBA_DISABLE_JIT=1)

    def _i64_as_f64(x):  # noqa: F811
        return struct.unpack("<d", struct.pack("<q", int(x)))[0]

    def _f64_as_i64(x):  # noqa: F811
        return struct.unpack("<q", struct.pack("<d", float(x)))[0]


_LOG2E = 1.4426950408889634
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

    Range reduction ``x = n ln2 + r`` with ``|r| <= ln2 / 2`` and a degree-13
    Taylor polynomial (truncation error below 1e-17 relative).
    """
    xc = max(x, EXP_MIN)
    n = math.floor(xc * _LOG2E + 0.5)
    r = xc - n * _LN2_HI - n * _LN2_LO
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    scale = _i64_as_f64((int(n) + 1023) << 52)
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
