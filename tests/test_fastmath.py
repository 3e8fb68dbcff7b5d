"""fastem's vectorizable exp/log against NumPy over their whole input range."""

import numpy as np
from numba import njit

from fastem.kernels.fastmath import EXP_MIN, EXP_MIN32, exp, log, vexp, vlog

EPS = np.finfo(np.float64).eps


@njit
def _vexp(x):
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = exp(x[i])
    return out


@njit
def _vlog(x):
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = log(x[i])
    return out


def test_exp_within_two_ulp_over_whole_range():
    x = np.concatenate([np.linspace(EXP_MIN, 709.0, 400_001),
                        np.random.default_rng(0).uniform(-50, 0, 100_000)])
    ref = np.exp(x)
    rel = np.abs(_vexp(x) - ref) / ref
    assert rel.max() <= 2 * EPS  # measured ~1 ulp


def test_exp_edges():
    out = _vexp(np.array([-np.inf, -1000.0, EXP_MIN - 1.0, 0.0]))
    np.testing.assert_array_equal(out, [0.0, 0.0, 0.0, 1.0])


def test_log_accuracy_over_whole_normal_range():
    x = np.exp(np.linspace(-700, 700, 400_001))
    x = np.concatenate([x, np.linspace(1.0, 64.0, 100_001)])  # logsumexp range
    ref = np.log(x)
    err = np.abs(_vlog(x) - ref)
    # ~2 ulp of the result, or of 1 near log(1) = 0 where ulps vanish
    assert np.all(err <= 4 * EPS * np.maximum(np.abs(ref), 1.0))
    assert _vlog(np.array([1.0]))[0] == 0.0


# ---------------------------------------------------------------- float32
EPS32 = np.finfo(np.float32).eps


@njit
def _vexp_any(x):
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = vexp(x[i])
    return out


@njit
def _vlog_any(x):
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = vlog(x[i])
    return out


def test_exp32_within_two_float32_ulp_over_whole_range():
    x = np.concatenate([np.linspace(EXP_MIN32, 88.0, 400_001),
                        np.random.default_rng(1).uniform(-30, 0, 100_000)])
    x = x.astype(np.float32)
    out = _vexp_any(x)
    assert out.dtype == np.float32  # computed and returned in float32
    ref = np.exp(x.astype(np.float64))
    assert (np.abs(out - ref) / ref).max() <= 2 * EPS32  # measured ~1 ulp


def test_exp32_edges():
    out = _vexp_any(np.array([-np.inf, -1000.0, EXP_MIN32 - 1.0, 0.0],
                             dtype=np.float32))
    np.testing.assert_array_equal(out, [0.0, 0.0, 0.0, 1.0])


def test_log32_accuracy_over_whole_normal_range():
    x = np.exp(np.linspace(-87, 88, 400_001))
    x = np.concatenate([x, np.linspace(1.0, 64.0, 100_001)]).astype(np.float32)
    out = _vlog_any(x)
    assert out.dtype == np.float32
    ref = np.log(x.astype(np.float64))
    err = np.abs(out - ref)
    assert np.all(err <= 2 * EPS32 * np.maximum(np.abs(ref), 1.0))
    assert _vlog_any(np.array([1.0], dtype=np.float32))[0] == 0.0


def test_generic_versions_keep_float64_exact():
    """vexp/vlog on float64 are exactly the float64 exp/log."""
    x = np.linspace(-700, 700, 10_001)
    np.testing.assert_array_equal(_vexp_any(x), _vexp(x))
    y = np.exp(np.linspace(-700, 700, 10_001))
    np.testing.assert_array_equal(_vlog_any(y), _vlog(y))


def test_wide_simd_marks_the_function_and_widens_its_vectors():
    """wide_simd() puts the prefer-vector-width attribute on the function
    that calls it (and only there); on a processor with AVX-512 that
    function's loop is then compiled to 512-bit (zmm) instructions."""
    import llvmlite.binding as ll

    from fastem.kernels.fastmath import SIMD_BITS, wide_simd

    @njit(inline="always", fastmath=True)
    def body(a, out):  # inlined: the caller's attribute applies to its loop
        for i in range(a.shape[0]):
            out[i] = vexp(a[i]) * 2.0 + a[i]

    @njit(fastmath=True)
    def wide(a, out):
        wide_simd()
        body(a, out)

    @njit(fastmath=True)
    def plain(a, out):
        body(a, out)

    a = np.linspace(-5.0, 0.0, 1000)
    outs = []
    for f in (wide, plain):
        out = np.empty_like(a)
        f(a, out)
        outs.append(out)
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_allclose(outs[0], np.exp(a) * 2.0 + a, rtol=4 * EPS)
    attr = f'"prefer-vector-width"="{SIMD_BITS}"'
    assert attr in wide.inspect_llvm(wide.signatures[0])
    assert attr not in plain.inspect_llvm(plain.signatures[0])
    ll.initialize_native_target()
    has_avx512 = "+avx512f" in ll.get_host_cpu_features().flatten()
    asm = wide.inspect_asm(wide.signatures[0])
    assert ("zmm" in asm) == has_avx512
