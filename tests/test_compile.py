"""Ahead-of-time compilation, the first-run notice, read-only inputs."""

import io
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastem
from fastem import GaussianMixture
from fastem._compile import NOTICE, CompileListener, CompileNotice
from fastem._validation import check_array, check_sample_weight

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JIT = os.environ.get("NUMBA_DISABLE_JIT", "0") in ("", "0")


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=REPO, **extra)
    return env


def _probe(module="fastem._probe"):
    """A new tiny njit function whose module is ``module`` (not cached)."""
    from numba import njit

    def f(x):
        return x + 1

    f.__module__ = module
    return njit(f)


# ------------------------------------------------------------ the notice
@pytest.mark.skipif(not JIT, reason="needs numba's compiler")
def test_listener_counts_only_fastem_dispatchers():
    with CompileListener() as listener:
        assert _probe()(1) == 2
        assert _probe("somebody_else")(1) == 2
    assert listener.n_compiled == 1
    assert listener.kernels == {"fastem._probe." + "_probe.<locals>.f"}
    # uninstalled: nothing counted any more
    _probe()(1)
    assert listener.n_compiled == 1


@pytest.mark.skipif(not JIT, reason="needs numba's compiler")
def test_failed_compile_is_not_counted():
    from numba import njit
    from numba.core.errors import TypingError

    def g(x):
        return x.no_such_attribute

    g.__module__ = "fastem._probe"
    with CompileListener() as listener:
        with pytest.raises(TypingError):
            njit(g)(1)
    assert listener.n_compiled == 0 and listener.t_first is not None


@pytest.mark.skipif(not JIT, reason="needs numba's compiler")
def test_notice_only_when_compiling():
    out = io.StringIO()
    notice = CompileNotice(out, interactive=False).install()
    f = _probe()
    f(1)
    f(2)  # compiled already: no event
    notice.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == NOTICE
    assert lines[1].startswith("fastem: compiled 1 kernel in ")
    assert len(lines) == 2

    quiet = io.StringIO()
    notice = CompileNotice(quiet, interactive=False).install()
    f(3)  # nothing to compile
    notice.close()
    assert quiet.getvalue() == ""

    tty = io.StringIO()
    notice = CompileNotice(tty, interactive=True, interval=0.01).install()
    _probe()(1)
    notice.close()
    text = tty.getvalue()
    assert text.startswith("\r" + NOTICE) and "1 kernel compiled" in text
    # the final line overwrites the notice (padded over it) and ends it
    assert text.endswith("\n")
    assert text.rstrip().endswith(" (cached for the next runs)")


PROBE = '''
import importlib.util, sys
from fastem._compile import CompileNotice

notice = CompileNotice(sys.stderr, interactive=False).install()
assert "numba" not in sys.modules  # installed lazily, when numba comes
spec = importlib.util.spec_from_file_location("fastem._probe", {path!r})
mod = importlib.util.module_from_spec(spec)
sys.modules["fastem._probe"] = mod  # numba's cache imports it by name
spec.loader.exec_module(mod)
assert mod.f(1) == 2
notice.close()
'''


@pytest.mark.skipif(not JIT, reason="needs numba's compiler")
def test_notice_cold_then_warm_cache(tmp_path):
    """A fresh process on an empty cache says so; on the warm cache not."""
    path = tmp_path / "probe.py"
    path.write_text(textwrap.dedent("""
        from numba import njit

        @njit(cache=True)
        def f(x):
            return x + 1
    """))
    code = PROBE.format(path=str(path))
    env = _env(NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    cold = subprocess.run([sys.executable, "-c", code], env=env,
                          capture_output=True, text=True, timeout=300)
    assert cold.returncode == 0, cold.stderr
    lines = cold.stderr.splitlines()
    assert lines[0] == NOTICE and "compiled 1 kernel" in lines[1]
    warm = subprocess.run([sys.executable, "-c", code], env=env,
                          capture_output=True, text=True, timeout=300)
    assert warm.returncode == 0, warm.stderr
    assert warm.stderr == ""


def test_cli_compile_command(monkeypatch, capsys):
    import fastem._compile as fc
    from fastem.cli import main

    calls = []
    monkeypatch.setattr(fc, "compile",
                        lambda **kw: calls.append(kw) or {"errors": []})
    assert main(["compile", "--quiet"]) == 0
    assert main(["compile"]) == 0
    assert calls == [{"verbose": False}, {"verbose": True}]


def test_compile_is_exported_lazily():
    from fastem._compile import compile as compile_all

    assert fastem.compile is compile_all
    assert "compile" in fastem.__all__
    with pytest.raises(ValueError, match="kinds"):
        fastem.compile(kinds=("mixtures",))
    with pytest.raises(TypeError, match="sequence"):
        fastem.compile(dtypes="float64")


COMPILE = '''
import fastem
r = fastem.compile(kinds=("mixture",), dtypes=("float64",),
                   covariance_types=("diag",), verbose=True)
print(r["n_compiled"])
'''


@pytest.mark.skipif(not JIT, reason="needs numba's compiler")
def test_compile_second_run_compiles_nothing():
    """One subset (diagonal mixtures, float64), twice in fresh processes
    sharing the default cache: the second run finds everything cached."""
    runs = [subprocess.run([sys.executable, "-c", COMPILE], env=_env(),
                           capture_output=True, text=True, timeout=900)
            for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stderr
        assert "fastem compile: [1/1] GaussianMixture diag float64" in r.stderr
    assert runs[1].stdout.strip() == "0"
    summary = runs[1].stderr.splitlines()[-1]
    assert "nothing to compile: every kernel was already cached" in summary
    assert "s CPU" in summary and "cache: " in summary


def test_compile_report_in_process():
    r = fastem.compile(kinds=("mixture",), dtypes=("float64",),
                       covariance_types=("spherical",),
                       layouts=("read-only",))
    assert r.n_steps == 1 and r["wall_s"] >= 0 and r.cpu_s >= 0
    assert r.errors == []
    assert r.n_kernels == len(r.kernels) <= r.n_compiled
    assert os.path.isabs(r.cache_dir)
    assert r.summary().startswith("fastem compile: ")


# ------------------------------------------------------ read-only inputs
def _dispatchers():
    from numba.core.registry import CPUDispatcher

    out = []
    for name, mod in list(sys.modules.items()):
        if name.startswith("fastem") and mod is not None:
            out.extend(v for v in vars(mod).values()
                       if isinstance(v, CPUDispatcher))
    return out


def _n_signatures():
    return sum(len(d.signatures) for d in _dispatchers())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_read_only_input_is_a_writeable_view_without_copy(tmp_path, dtype):
    X = np.random.default_rng(0).normal(size=(50, 3)).astype(dtype)
    np.save(tmp_path / "x.npy", X)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    ro = X.copy()
    ro.setflags(write=False)
    for arr in (mm, ro):
        v = check_array(arr)
        assert v.flags.writeable and v.flags.c_contiguous
        assert v.dtype == dtype and v.shape == arr.shape
        assert np.shares_memory(v, arr)  # no copy
        assert not arr.flags.writeable
        np.testing.assert_array_equal(v, X)
    # writeable arrays are passed through as before
    assert check_array(X) is X
    # other layouts are copied anyway (and the copy is writeable)
    f = np.asfortranarray(np.random.rand(4, 3))
    f.setflags(write=False)
    assert check_array(f).flags.writeable
    w = np.ones(50)
    w.setflags(write=False)
    sw = check_sample_weight(w, 50)
    assert sw.flags.writeable and np.shares_memory(sw, w)


def test_view_keeps_the_memory_alive(tmp_path):
    np.save(tmp_path / "x.npy", np.arange(12.0).reshape(6, 2))
    v = check_array(np.load(tmp_path / "x.npy", mmap_mode="r"))
    import gc

    gc.collect()
    np.testing.assert_array_equal(v, np.arange(12.0).reshape(6, 2))


@pytest.mark.skipif(not JIT, reason="needs numba's compiler")
@pytest.mark.parametrize("ct", ["full", "diag"])
def test_read_only_fit_compiles_nothing_new(tmp_path, ct):
    rng = np.random.default_rng(1)
    X = np.vstack([rng.normal(0, 1, (100, 2)), rng.normal(5, 1, (100, 2))])
    np.save(tmp_path / "x.npy", X)
    kw = dict(covariance_type=ct, random_state=0, max_iter=5)
    nan = X.copy()
    nan[::9, 1] = np.nan

    def fit_all(Z, Znan):
        gm = GaussianMixture(2, **kw).fit(Z, sample_weight=np.ones(len(Z)))
        gm.predict_proba(Z)
        gm.score_samples(Z)
        GaussianMixture(2, nan_policy="marginalize", **kw).fit(Znan)
        return gm

    ref = fit_all(X, nan)  # writeable: compiles (or loads) what it needs
    n_sig = _n_signatures()
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    nan_ro = nan.copy()
    nan_ro.setflags(write=False)
    sw = np.ones(len(X))
    sw.setflags(write=False)
    with CompileListener() as listener:
        gm = fit_all(mm, nan_ro)
        GaussianMixture(2, **kw).fit(mm, sample_weight=sw)
        gm2 = fit_all(X, nan)  # and the writeable ones again
    assert listener.n_compiled == 0, listener.kernels
    assert _n_signatures() == n_sig  # no read-only specialization loaded
    np.testing.assert_array_equal(gm.means_, ref.means_)
    np.testing.assert_array_equal(gm2.means_, ref.means_)
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy"), X)
    assert not mm.flags.writeable and not nan_ro.flags.writeable


# ------------------------------------- one specialization per kernel (HMM)
HMM_AFTER_COMPILE = '''
import gc, json
import numpy as np
import fastem
from fastem import GaussianHMM, GaussianMixture
from fastem._compile import CompileListener
from numba.core import types
from numba.core.dispatcher import Dispatcher

fastem.compile(kinds=("hmm",), dtypes=("float64",),
               covariance_types=("diag",))
rng = np.random.default_rng(0)
X = np.vstack([rng.normal(0, 1, (150, 2)), rng.normal(4, 1, (150, 2))])
X = X.astype(np.float32).astype(np.float64)  # float32 values, both dtypes
fits = {}
with CompileListener() as listener:
    for lengths in (None, [100, 100, 100], [20] * 15):  # the last: grouped
        for impl in ("log", "scaling"):
            for dtype in (np.float64, np.float32):
                h = GaussianHMM(2, covariance_type="diag", n_iter=3,
                                implementation=impl, random_state=0)
                h.fit(X.astype(dtype), lengths)
                fits[str((lengths and len(lengths), impl, dtype.__name__))] \\
                    = [list(h.monitor_.history), h.means_.tolist(),
                       h.predict(X.astype(dtype), lengths).tolist()]
literal = sorted(
    d.py_func.__qualname__ for d in gc.get_objects()
    if isinstance(d, Dispatcher)
    and (d.py_func.__module__ or "").startswith("fastem")
    and any(isinstance(t, (types.Literal, types.Omitted))
            for sig in d.signatures for t in sig))
print(json.dumps({"compiled": sorted(listener.kernels), "literal": literal,
                  "fits": fits}))
'''


@pytest.mark.skipif(not JIT, reason="needs numba's compiler")
def test_hmm_compile_covers_every_path_and_float32_adds_nothing(tmp_path):
    """On an empty cache, ``fastem compile`` of GaussianHMM (diag, float64)
    covers one sequence, several long ones and many short ones (the grouped
    pass) in both implementations; float32 data then compiles nothing (it
    is read into float64, as hmmlearn does) and fits as its float64 copy;
    no kernel was compiled for a literal (constant) argument type, which
    would compile it once more per value."""
    import json

    r = subprocess.run([sys.executable, "-c", HMM_AFTER_COMPILE],
                       env=_env(NUMBA_CACHE_DIR=str(tmp_path / "cache")),
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["compiled"] == []
    assert out["literal"] == []
    fits = out["fits"]
    assert len(fits) == 12
    for key, value in fits.items():
        if "float32" in key:
            assert value == fits[key.replace("float32", "float64")], key


@pytest.mark.skipif(not JIT, reason="needs numba's compiler")
def test_float32_missing_values_share_the_float64_pass():
    """The missing-data pass reads float32 data into float64 (it computes
    in float64): one compiled specialization serves both dtypes, and the
    float32 fit equals the fit of the same float32 values as float64."""
    from fastem.kernels.missing import _MISSING_PASS

    rng = np.random.default_rng(3)
    X = np.vstack([rng.normal(0, 1, (80, 3)), rng.normal(4, 1, (80, 3))])
    X[::5, 1] = np.nan
    X32 = X.astype(np.float32)
    kw = dict(covariance_type="full", nan_policy="marginalize",
              init_params="random", random_state=0, max_iter=4, tol=0.0)
    a = GaussianMixture(2, **kw).fit(X32.astype(np.float64))
    b = GaussianMixture(2, **kw).fit(X32)
    assert len(_MISSING_PASS[0].signatures) == 1
    np.testing.assert_allclose(b.lower_bounds_, a.lower_bounds_, rtol=1e-6)
    np.testing.assert_allclose(b.means_, a.means_, rtol=1e-5, atol=1e-6)


def _layout_dispatchers(code):
    """Every dispatcher of layout ``code`` (mixture and HMM kernels)."""
    from fastem.kernels import gaussian as kg
    from fastem.kernels import hmm as kh

    tables = [kg._SPECIALIZED[code], kh._SPECIALIZED[code]]
    for by_quad in (kg._BY_QUAD, kh._BY_QUAD):
        for variants in by_quad.values():
            if code in variants:
                tables.append(variants[code])
    return [d for t in tables for d in t.values()
            if hasattr(d, "signatures")]


@pytest.mark.skipif(not JIT, reason="needs numba's compiler")
def test_tied_and_spherical_run_on_the_full_and_diag_layouts():
    """Tied and spherical fits (mixture, HMM, with sample weights and
    predict) never compile or load a kernel of their own layout: no
    dispatcher of the TIED or SPHERICAL layout gets a signature, whether the
    kernels come from the disk cache or are compiled; and their statistics
    have the covariance type's shapes."""
    from fastem import GaussianHMM
    from fastem.kernels.gaussian import SPHERICAL, TIED

    rng = np.random.default_rng(2)
    X = np.vstack([rng.normal(0, 1, (120, 3)), rng.normal(4, 1, (120, 3))])
    for ct in ("tied", "spherical"):
        for dtype in (np.float64, np.float32):
            gm = GaussianMixture(2, covariance_type=ct, max_iter=3,
                                 random_state=0)
            gm.fit(X.astype(dtype), sample_weight=np.ones(len(X)))
            gm.predict_proba(X.astype(dtype))
        h = GaussianHMM(2, covariance_type=ct, n_iter=3, random_state=0)
        h.fit(X, [80, 80, 80])
        h.fit(X, [20] * 12)  # the grouped pass
        h.predict(X)
        assert gm.covariances_.shape == ((3, 3) if ct == "tied" else (2,))
        assert h.covars_.shape == (2, 3, 3)
    for code in (TIED, SPHERICAL):
        used = [d.py_func.__name__ for d in _layout_dispatchers(code)
                if d.signatures]
        assert used == []


# --------------------------- compiled here == loaded from the cache, bitwise
FRESH_THEN_CACHED = '''
import hashlib, json, re, sys, warnings
sys.path.insert(0, "tests")
import numpy as np
from fastem import GaussianHMM, GaussianMixture, PoissonMixture
from fastem._compile import CompileListener
from test_compile import _dispatchers

warnings.simplefilter("ignore")  # max_iter is reached on purpose
rng = np.random.default_rng(0)
X = np.concatenate([rng.normal(m, 1.0, size=(400, 3)) for m in (-3, 0, 3)])
C = rng.poisson(np.repeat([[1.0, 4.0], [6.0, 2.0]], 300, axis=0))
fits = {}
with CompileListener() as listener:
    for name, est, data in [
            ("mixture", GaussianMixture(3, covariance_type="diag",
                                        max_iter=15, tol=0, random_state=0),
             X),
            ("hmm", GaussianHMM(3, covariance_type="diag", n_iter=10, tol=0,
                                random_state=0), X),
            ("poisson", PoissonMixture(2, max_iter=15, tol=0,
                                       random_state=0), C)]:
        est.fit(data)
        h = hashlib.sha1()
        for key, value in sorted(vars(est).items()):
            if key.endswith("_") and isinstance(value, np.ndarray):
                h.update(key.encode() + np.ascontiguousarray(value).tobytes())
        fits[name] = h.hexdigest()
# Calls left in the compiled code to helpers defined linkonce_odr (numba's
# linked copies of other kernels); NRT_ is numba's runtime, not a kernel.
calls = []
for d in _dispatchers():
    for cres in d.overloads.values():
        ir = cres.library.get_llvm_str()
        linked = set(re.findall(r'define linkonce_odr [^@]*@"?([^\\s("]+)', ir))
        called = set(re.findall(r'call [^@]*@"?([^\\s("]+)', ir))
        calls += sorted(d.__name__ + " -> " + c[:80] for c in called & linked
                        if "NRT_" not in c)
print(json.dumps({"fits": fits, "n_compiled": listener.n_compiled,
                  "calls": calls}))
'''


@pytest.mark.skipif(not JIT, reason="needs numba's compiler")
def test_fit_compiled_in_process_equals_fit_loaded_from_cache(tmp_path):
    """The same fits in two processes sharing an empty kernel cache: the
    first compiles the kernels, the second loads them; the fitted
    parameters are bit-identical.  They differed in the last bits when a
    helper kernel (``_normalize_two``, ``_diag_quadratic``, the forward
    and backward passes, ...) stayed a call: fresh, it resolved to the
    helper's own compiled copy, cached to the caller's re-optimized one.
    So the first process also checks that no compiled kernel calls
    another (every helper calls ``fastmath.inline_into_callers``)."""
    import json

    env = _env(NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    runs = []
    for _ in range(2):
        r = subprocess.run([sys.executable, "-c", FRESH_THEN_CACHED],
                           env=env, capture_output=True, text=True,
                           timeout=900)
        assert r.returncode == 0, r.stderr
        runs.append(json.loads(r.stdout.strip().splitlines()[-1]))
    fresh, cached = runs
    assert fresh["n_compiled"] > 0 and cached["n_compiled"] == 0
    assert fresh["calls"] == []
    assert set(fresh["fits"]) == {"mixture", "hmm", "poisson"}
    assert cached["fits"] == fresh["fits"]
