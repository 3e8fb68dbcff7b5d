"""Smoke test of ``python -m fastem.bench`` on tiny sizes.

Asserts only the structure of the report (keys, types, finiteness), never
timings: it exists so that the benchmark script cannot rot.
"""

import dataclasses
import json
import math
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("sklearn")

from fastem import bench  # noqa: E402

SPEED_KEYS = {
    "sklearn_s_per_iter", "fastem_1t_s_per_iter", "fastem_2t_s_per_iter",
    "ratio_sklearn_fastem_2t", "speedup_1t_2t", "floor_s",
    "fastem_2t_over_floor", "lower_bound_sklearn", "lower_bound_fastem",
    "lower_bound_abs_diff", "max_rel_diff_means", "samples_s_per_iter",
}
MEMORY_KEYS = {"fastem_peak_above_data_mib", "data_mib", "memory_method"}
DTYPE_KEYS = {
    "fastem_float64_s_per_iter", "fastem_float32_s_per_iter",
    "speed_ratio_f64_f32", "max_rel_diff_means", "max_rel_diff_covariances",
    "float32_eps", "floor_s", "floor_float32_s",
}


def _finite(x):
    return isinstance(x, float) and math.isfinite(x)


@pytest.fixture(scope="module")
def report():
    return bench.run(["1d", "8d-diag", "mem-1d", "f32-1d"], scale=1e-4,
                     n_iter=2, repeat=2, memory={"1d", "mem-1d"},
                     progress=lambda m: None)


def test_report_structure(report):
    assert set(report) == {"machine", "settings", "results"}
    assert report["settings"]["repeat"] == 2
    names = [r["workload"]["name"] for r in report["results"]]
    assert names == ["1d", "8d-diag", "mem-1d", "f32-1d"]
    for r in report["results"]:
        w = r["workload"]
        full = bench.WORKLOADS[w["name"]].n_samples
        assert w["n_samples"] == max(bench.MIN_SAMPLES, int(full * 1e-4))
        assert w["n_iter"] == 2
        if w["name"] == "1d":
            assert MEMORY_KEYS | {"sklearn_peak_above_data_mib"} <= set(r)
            assert _finite(r["sklearn_peak_above_data_mib"])
        if w["kind"] == "speed":
            assert SPEED_KEYS <= set(r)
            for key in SPEED_KEYS - {"samples_s_per_iter"}:
                assert isinstance(r[key], float), key
            for key in ("sklearn_s_per_iter", "fastem_1t_s_per_iter",
                        "fastem_2t_s_per_iter", "lower_bound_fastem"):
                assert _finite(r[key]), key
            assert set(r["samples_s_per_iter"]) == {
                "sklearn", "fastem_1t", "fastem_2t"}
            assert all(len(v) == 2 for v in r["samples_s_per_iter"].values())
            assert set(r["noisy"]) == set(r["samples_s_per_iter"])
            assert all(isinstance(v, bool) for v in r["noisy"].values())
            assert r["floor_s"] > 0
            assert set(r["floor_by_threads_s"]) <= {"1", "2"}
            assert r["floor_s"] == min(r["floor_by_threads_s"].values())
            # same start, same iterations: the answers agree
            assert r["lower_bound_abs_diff"] < 1e-6
        elif w["kind"] == "memory":
            assert MEMORY_KEYS <= set(r)
            assert "sklearn_s_per_iter" not in r
        else:
            assert DTYPE_KEYS <= set(r)
            assert r["max_rel_diff_means"] < 1e-3
        if w["name"] == "mem-1d":
            assert r["memory_init"].startswith("default")
            assert _finite(r["fastem_peak_em_only_mib"])
        if w["name"] in ("1d", "mem-1d"):
            assert _finite(r["fastem_peak_above_data_mib"])
            assert r["data_mib"] == pytest.approx(
                w["n_samples"] * w["n_features"] * 8 / 2 ** 20)
    json.dumps(report)  # --json must be able to write it


def test_machine_info(report):
    m = report["machine"]
    for key in ("cpu", "cores", "numpy", "numba", "sklearn", "fastem"):
        assert m[key], key


def test_format_table(report):
    text = bench.format_table(report)
    for r in report["results"]:
        assert r["workload"]["title"] in text
    assert "targets (issue 18):" in text
    assert "float32 vs float64" in text


def test_data_and_start_are_deterministic():
    w = bench.WORKLOADS["8d-full"]
    w = dataclasses.replace(w, n_samples=500)
    X = bench.make_data(w)
    assert X.shape == (500, 8) and X.flags.c_contiguous
    np.testing.assert_array_equal(X, bench.make_data(w))
    assert bench.make_data(w, np.float32).dtype == np.float32
    for ct, shape in (("full", (8, 8, 8)), ("tied", (8, 8)), ("diag", (8, 8)),
                      ("spherical", (8,))):
        init = bench.initial_params(X, 8, ct)
        assert init["precisions_init"].shape == shape
        assert init["means_init"].shape == (8, 8)
        assert init["weights_init"].sum() == pytest.approx(1.0)


def test_unknown_workload():
    with pytest.raises(ValueError, match="unknown workload"):
        bench.run(["nope"], memory=False)


def test_cli_help():
    out = subprocess.run([sys.executable, "-m", "fastem.bench", "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "--quick" in out and "--workloads" in out and "--json" in out


def test_import_fastem_does_not_import_sklearn():
    code = ("import sys, fastem, fastem.bench; "
            "assert not any(m == 'sklearn' or m.startswith('sklearn.') "
            "for m in sys.modules), 'sklearn imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("init", ["explicit", "default"])
def test_memory_child_in_process(init, capsys):
    w = dataclasses.replace(bench.WORKLOADS["mem-1d"], n_samples=3000,
                            n_iter=1)
    spec = json.dumps({"library": "fastem", "workload": dataclasses.asdict(w),
                       "dtype": "float64", "threads": 1, "init": init})
    bench._memory_child(spec)
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(out) == {"increase_mib", "peak_mib", "data_mib", "method",
                        "lower_bound"}
    assert out["data_mib"] == pytest.approx(3000 * 8 / 2 ** 20)
    assert math.isfinite(out["lower_bound"])


def test_main_json_and_table(tmp_path, capsys):
    # mem-1d without memory measurements runs nothing: exercises the CLI only
    args = ["--workloads", "mem-1d", "--no-memory", "--repeat", "1"]
    assert bench.main(args + ["--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["results"][0]["workload"]["name"] == "mem-1d"
    path = tmp_path / "report.json"
    assert bench.main(args + ["--quick", "--json", str(path)]) == 0
    assert "targets (issue 18):" in capsys.readouterr().out
    assert json.loads(path.read_text())["settings"]["quick"] is True
    with pytest.raises(ValueError, match="repeat"):
        bench.run(["mem-1d"], repeat=0, memory=False)


def test_main_without_sklearn(monkeypatch, capsys):
    def missing():
        raise RuntimeError(bench.SKLEARN_MISSING)

    monkeypatch.setattr(bench, "_require_sklearn", missing)
    assert bench.main(["--no-memory"]) == 2
    assert "pip install scikit-learn" in capsys.readouterr().err


def test_extras_structure():
    # Missing-values, GaussianHMM, PoissonMixture, PoissonHMM and
    # BayesianGaussianMixture rows of the side-by-side benchmark: structure
    # only, timings are not asserted.
    from fastem.bench import extras, format_extras

    rows = extras(quick=True, repeat=1)
    assert len(rows) == 16
    for r in rows:
        assert set(r) == {"name", "reference", "fastem", "ratio"}
        assert np.isfinite(r["fastem"])
    assert "missing" in rows[0]["name"] and "hmmlearn" in rows[1]["name"]
    assert "PoissonMixture" in rows[3]["name"] and "NumPy" in rows[3]["name"]
    assert all("PoissonHMM" in r["name"] for r in rows[4:6])
    assert all("BayesianGaussianMixture" in r["name"] for r in rows[6:8])
    assert all("CategoricalHMM" in r["name"] for r in rows[8:10])
    assert all("MultinomialHMM" in r["name"] for r in rows[10:12])
    assert all("GMMHMM" in r["name"] for r in rows[12:])
    text = format_extras(rows)
    assert text.count("\n") == 16


def test_fma_peak_and_flops():
    peak = bench.fma_peak(threads=(1,), chains=(64,), n=1000, calls=1)
    assert set(peak) == {"1", "max", "chains"}
    assert _finite(peak["1"]) and peak["1"] > 0 and peak["chains"] == 64
    # 2 D (D + 1) flops per row and component
    assert bench.em_flops(10, 3, 2) == 2 * 3 * 4 * 10 * 2


def test_peer_and_fma_lines(report):
    rep = json.loads(json.dumps(report))
    rep["fma_peak"] = {"1": 50.0, "2": 100.0, "max": 100.0, "chains": 128}
    r = next(r for r in rep["results"] if r["workload"]["name"] == "1d")
    r.update(onedal_s_per_iter=2 * r["fastem_2t_s_per_iter"],
             ratio_onedal_fastem_2t=2.0, onedal_version="2024.7.0",
             onedal_threads=2, onedal_lower_bound_abs_diff=0.0,
             onedal_max_rel_diff_means=0.0)
    r["workload"]["target_onedal"] = 3
    bench._add_gflops(rep)
    text = bench.format_table(rep)
    assert "oneDAL 2024.7.0" in text and "dal/fe2T" in text
    assert "oneDAL/fastem(2T)" in text
    assert "FMA peak (float64, 128 independent chains)" in text


def test_onedal_peer_reports_a_failing_child():
    # this interpreter has no daal4py (or the data is refused): the error
    # carries the child's stderr
    pytest.importorskip("sklearn")
    try:
        import daal4py  # noqa: F401
        pytest.skip("daal4py importable here")
    except ImportError:
        pass
    X = np.zeros((10, 2))
    init = bench.initial_params(np.random.default_rng(0).normal(size=(50, 2)),
                                2, "full")
    with pytest.raises(RuntimeError, match="oneDAL subprocess failed"):
        bench.OneDALPeer(sys.executable, X, init, "full", 1, 2, 1)
    with pytest.raises(ValueError, match="'full' and 'diag'"):
        bench.OneDALPeer(sys.executable, X, init, "tied", 1, 2, 1)
