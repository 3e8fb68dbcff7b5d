"""The ``fastem`` command line and its file readers."""

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fastem.io as fio
from fastem import GaussianMixture
from fastem.cli import Progress, main
from fastem.cli.readers import DataError, peek_columns, read_table

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def X():
    rng = np.random.default_rng(0)
    a = rng.multivariate_normal([0, 0, 0], [[1, 0.6, 0], [0.6, 1, 0],
                                            [0, 0, 1]], 200)
    b = rng.normal([5, 5, 5], 1.0, (200, 3))
    return np.vstack([a, b])


@pytest.fixture(scope="module")
def files(tmp_path_factory, X):
    d = tmp_path_factory.mktemp("data")
    paths = {
        "csv": d / "data.csv", "noheader": d / "noheader.csv",
        "tsv": d / "data.tsv", "npy": d / "data.npy",
        "mixed": d / "mixed.csv",
    }
    np.savetxt(paths["csv"], X, delimiter=",", header="x,y,z", comments="",
               fmt="%.17g")
    np.savetxt(paths["noheader"], X, delimiter=",", fmt="%.17g")
    np.savetxt(paths["tsv"], X, delimiter="\t", header="x\ty\tz",
               comments="", fmt="%.17g")
    np.save(paths["npy"], X)
    with open(paths["mixed"], "w") as f:
        f.write("id,name,x,y\n")
        for i, row in enumerate(X[:50]):
            f.write(f"{i},n{i},{float(row[0])!r},{float(row[1])!r}\n")
    return {k: str(v) for k, v in paths.items()}


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line_error(rc, err, *fragments):
    assert rc != 0
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("fastem")
    for frag in fragments:
        assert frag in lines[0], lines[0]


# ---------------------------------------------------------------- readers
def test_readers_agree(files, X):
    for key in ("csv", "noheader", "tsv", "npy"):
        data, names = read_table(files[key])
        np.testing.assert_array_equal(data, X)
        assert names == (["x", "y", "z"] if key in ("csv", "tsv") else None)
    data, names = read_table(files["csv"], ["z", "0"])
    np.testing.assert_array_equal(data, X[:, [2, 0]])
    assert names == ["z", "x"]
    data, _ = read_table(files["npy"], [1])
    np.testing.assert_array_equal(data, X[:, [1]])
    assert peek_columns(files["csv"]) == (["x", "y", "z"], 3)
    assert peek_columns(files["npy"]) == (None, 3)
    data, names = read_table(files["mixed"], ["x", "y"])
    np.testing.assert_array_equal(data, X[:50, :2])


def test_reader_comments_whitespace_and_1d(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("# a comment\n\n a  b\n1 2\n3 4\n")
    data, names = read_table(p)
    assert names == ["a", "b"] and data.tolist() == [[1, 2], [3, 4]]
    q = tmp_path / "v.npy"
    np.save(q, np.arange(5, dtype=np.int32))
    data, names = read_table(q)
    assert data.shape == (5, 1) and data.dtype == np.float64


def test_parquet(tmp_path, X):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    p = tmp_path / "d.parquet"
    pq.write_table(pa.table({"x": X[:, 0], "y": X[:, 1], "z": X[:, 2],
                             "label": ["a"] * len(X)}), p)
    data, names = read_table(p, ["x", "y", "z"])
    np.testing.assert_array_equal(data, X)
    assert names == ["x", "y", "z"]
    with pytest.raises(DataError, match="'label' is not numeric"):
        read_table(p, ["x", "label"])
    notes = []
    data, names = read_table(p, note=notes.append)  # text column skipped
    np.testing.assert_array_equal(data, X)
    assert names == ["x", "y", "z"]
    assert len(notes) == 1 and "skipped the non-numeric column 'label'" \
        in notes[0]


def test_parquet_without_pyarrow(tmp_path, monkeypatch):
    p = tmp_path / "d.parquet"
    p.write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(DataError, match=r"needs pyarrow: pip install"):
        read_table(p)


@pytest.mark.parametrize("content, columns, match", [
    (None, None, "no such file"),
    ("x,y\n1,2\n3\n", None, "data row 2 has 1 fields, expected 2"),
    ("x,y\n1,\n", None, "empty cell in data row 1, column 1 ('y'); pass "
                        "--nan-policy marginalize"),
    ("x,y\n1,a\n", ["y"], "non-numeric value 'a' in data row 1, column 1 ('y')"),
    ("x,y\na,b\n", None, "no numeric column"),
    ("x,y\n1,2\n", ["q"], "column 'q' not found; available columns: x, y"),
    ("1,2\n", ["q"], "the file has no header"),
    ("x,y\n1,2\n", ["5"], "column index 5 out of range"),
    ("x,y\n1,2\n", ["x", "0"], "selected twice"),
    ("", None, "empty file"),
    ("x,y\n", None, "no data rows"),
])
def test_reader_errors(tmp_path, content, columns, match):
    p = tmp_path / "bad.csv"
    if content is not None:
        p.write_text(content)
    with pytest.raises(DataError, match=match.replace("(", r"\(").replace(
            ")", r"\)")):
        read_table(p, columns)


def test_reader_unknown_type_and_bad_npy(tmp_path):
    p = tmp_path / "d.xlsx"
    p.write_text("x")
    with pytest.raises(DataError, match="unknown file type '.xlsx'"):
        read_table(p)
    q = tmp_path / "s.npy"
    np.save(q, np.array(["a", "b"]))
    with pytest.raises(DataError, match="non-numeric dtype"):
        read_table(q)
    r = tmp_path / "junk.npy"
    r.write_bytes(b"not numpy")
    with pytest.raises(DataError, match="not a numeric .npy"):
        read_table(r)


# -------------------------------------------------------------------- fit
def test_fit_summary(capsys, files, X):
    rc, out, err = run(capsys, "fit", files["csv"], "-k", 2, "--seed", 3)
    assert rc == 0
    gm = GaussianMixture(2, random_state=3).fit(X)
    assert "400 rows x 3 features: x, y, z" in out
    assert f"converged: yes after {gm.n_iter_} iteration" in out
    assert f"BIC: {gm.bic(X):.4f}" in out
    assert f"AIC: {gm.aic(X):.4f}" in out
    assert f"log-likelihood: {gm.score(X) * len(X):.4f}" in out
    assert "weights" in out and "means" in out and "covariances (full)" in out
    assert f"{gm.weights_[0]:.6g}" in out
    assert "time: fit" in out
    assert err == ""  # not a terminal: no progress display


def test_fit_json_matches_the_library(capsys, files, X):
    rc, out, _ = run(capsys, "fit", files["noheader"], "-k", 2,
                     "--covariance", "diag", "--n-init", 2, "--json")
    assert rc == 0
    d = json.loads(out)
    gm = GaussianMixture(2, covariance_type="diag", n_init=2,
                         random_state=0).fit(X)
    np.testing.assert_array_equal(d["means"], gm.means_)
    np.testing.assert_array_equal(d["covariances"], gm.covariances_)
    assert d["n_samples"] == 400 and d["n_features"] == 3
    assert d["converged"] == gm.converged_ and d["n_iter"] == gm.n_iter_
    assert d["bic"] == pytest.approx(gm.bic(X), rel=1e-12)
    assert d["features"] == ["x0", "x1", "x2"]
    assert d["lower_bounds"] == gm.lower_bounds_


@pytest.mark.parametrize("ct", ["tied", "spherical"])
def test_fit_summary_other_types(capsys, files, ct):
    rc, out, _ = run(capsys, "fit", files["npy"], "-k", 2, "--covariance", ct,
                     "--columns", "0", "--columns", "2")
    assert rc == 0
    assert "2 features" in out
    assert ("tied" in out) if ct == "tied" else ("spherical" in out)


def test_fit_out_predict_info(capsys, files, X, tmp_path):
    model = tmp_path / "m.json"
    rc, _, err = run(capsys, "fit", files["csv"], "-k", 2, "--columns", "y,z",
                     "--out", model)
    assert rc == 0 and "model saved to" in err
    gm = fio.load(model)
    assert list(gm.feature_names_in_) == ["y", "z"]
    expected = GaussianMixture(2, random_state=0).fit(X[:, 1:])
    np.testing.assert_array_equal(gm.means_, expected.means_)

    # predict picks the model's columns by name from a 3-column file
    rc, out, _ = run(capsys, "predict", model, files["csv"])
    assert rc == 0
    lines = out.splitlines()
    assert lines[0] == "label"
    assert np.array(lines[1:], dtype=int).tolist() \
        == expected.predict(X[:, 1:]).tolist()

    out_csv = tmp_path / "p.csv"
    rc, _, err = run(capsys, "predict", model, files["csv"], "--proba",
                     "--out", out_csv)
    assert rc == 0 and "written to" in err
    proba = np.loadtxt(out_csv, delimiter=",", skiprows=1)
    np.testing.assert_allclose(proba, expected.predict_proba(X[:, 1:]),
                               rtol=1e-8, atol=1e-12)
    assert out_csv.read_text().splitlines()[0] == "p0,p1"

    rc, out, _ = run(capsys, "predict", model, files["npy"], "--columns",
                     "1,2", "--json")
    assert json.loads(out)["labels"] == expected.predict(X[:, 1:]).tolist()

    rc, out, _ = run(capsys, "info", model)
    assert rc == 0
    assert "2 components, covariance 'full', 2 features: y, z" in out
    assert "format 1" in out and "BIC" in out and "data.csv" in out
    rc, out, _ = run(capsys, "info", model, "--json")
    assert json.loads(out)["fitted"]["means"] == gm.means_.tolist()


def test_fit_plot(capsys, files, tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.patches import Ellipse

    import fastem.plot

    drawn = []
    real = fastem.plot.figure

    def spy(*a, **k):
        fig, ax = real(*a, **k)
        drawn.append(ax)
        return fig, ax

    monkeypatch.setattr(fastem.plot, "figure", spy)
    fig_path = tmp_path / "f.png"
    rc, _, err = run(capsys, "fit", files["csv"], "-k", 2, "--plot", fig_path,
                     "--plot-features", "z,x")
    assert rc == 0 and "picture saved" in err
    assert fig_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ax = drawn[-1]
    assert ax.get_xlabel() == "z" and ax.get_ylabel() == "x"
    assert len([p for p in ax.patches if isinstance(p, Ellipse)]) == 4

    dens = []
    real_density = fastem.plot.density

    def density_spy(*a, **k):
        dens.append(real_density(*a, **k))
        return dens[-1]

    monkeypatch.setattr(fastem.plot, "density", density_spy)
    rc, _, _ = run(capsys, "fit", files["npy"], "-k", 2, "--columns", "0",
                   "--plot", tmp_path / "d.svg")
    assert rc == 0
    # 1-D: density, every column (one here): 2 components and the mixture
    assert len(dens[-1].axes) == 1 and len(dens[-1].axes[0].get_lines()) == 3
    assert (tmp_path / "d.svg").read_text().lstrip().startswith("<?xml")

    rc, _, _ = run(capsys, "fit", files["csv"], "-k", 2, "--plot",
                   tmp_path / "l.png", "--plot-kind", "loglik")
    assert rc == 0 and len(drawn[-1].get_lines()) == 1


def test_warnings_are_one_line(capsys, files):
    rc, out, err = run(capsys, "fit", files["csv"], "-k", 3, "--max-iter", 1,
                       "--tol", 0)
    assert rc == 0
    assert "converged: NO" in out
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("fastem: warning: Best performing "
                               "initialization did not converge")


def test_quiet_and_progress(capsys, files):
    rc, _, err = run(capsys, "fit", files["csv"], "-k", 2, "--quiet",
                     "--progress", "--out", os.devnull)
    assert rc == 0 and err == ""


def test_progress_display():
    s = io.StringIO()
    p = Progress(s, n_init=2, delay=0.0, interval=0.0, ticker=False)
    p(1, -2.0)
    p(2, -1.5)
    text = s.getvalue()
    assert "init 1/2" in text and "iteration 2" in text
    assert "log-lik/point -1.500000" in text and "change +5.00e-01" in text
    assert text.startswith("\r")
    p.close()
    assert s.getvalue().endswith("\r")
    # Quick fits show nothing.
    s = io.StringIO()
    p = Progress(s, delay=60.0)
    p(1, -2.0)
    p.close()
    assert s.getvalue() == ""


def test_progress_display_during_a_fit(capsys, files, monkeypatch):
    import fastem.cli.app as cli

    monkeypatch.setattr(cli, "PROGRESS_DELAY", 0.0)
    monkeypatch.setattr(cli, "PROGRESS_INTERVAL", 0.0)
    rc, _, err = run(capsys, "fit", files["csv"], "-k", 2, "--progress",
                     "--tol", 0, "--max-iter", 5)
    assert rc == 0
    assert "iteration 5" in err


# ----------------------------------------------------------------- select
def test_select(capsys, files, X, tmp_path):
    from fastem.selection import select

    best = tmp_path / "best.json"
    rc, out, err = run(capsys, "select", files["csv"], "-k", "1-3",
                       "--covariance", "full,diag", "--out", best)
    assert rc == 0
    res = select(X, [1, 2, 3], ["full", "diag"], random_state=0)
    assert "BIC (lower is better)" in out
    assert (f"best: K={res.best_params['n_components']}, covariance "
            f"'{res.best_params['covariance_type']}'") in out
    assert "best model saved" in err
    np.testing.assert_array_equal(fio.load(best).means_,
                                  res.best_model.means_)

    rc, out, _ = run(capsys, "select", files["npy"], "-k", "2,1", "--criterion",
                     "icl", "--covariance", "spherical", "--json")
    d = json.loads(out)
    assert d["criterion"] == "icl" and len(d["results"]) == 2
    assert [r["n_components"] for r in d["results"]] == [2, 1]
    assert d["best"]["criterion"] == min(r["icl"] for r in d["results"])


def test_select_plot(capsys, files, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    rc, _, _ = run(capsys, "select", files["csv"], "-k", "1-2", "--covariance",
                   "diag", "--plot", tmp_path / "c.png")
    assert rc == 0 and (tmp_path / "c.png").stat().st_size > 1000


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize("argv, fragments", [
    (["fit", "missing.csv", "-k", "2"], ["missing.csv: no such file"]),
    (["fit", "{mixed}", "-k", "2", "--columns", "x,name"],
     ["non-numeric value 'n0'", "column 1 ('name')", "--columns"]),
    (["fit", "{csv}", "-k", "2", "--columns", "w"], ["column 'w' not found"]),
    (["fit", "{csv}", "-k", "500"], ["more components than the 400 rows"]),
    (["fit", "{csv}", "-k", "2", "--plot", "f.bmpx"],
     ["unsupported picture format .bmpx"]),
    (["fit", "{csv}", "-k", "2", "--out", "/nonexistent/dir/m.json"],
     ["does not exist"]),
    (["predict", "{csv}", "{csv}"], ["not a fastem model file"]),
    (["predict", "missing.json", "{csv}"], ["no such model file"]),
    (["info", "{csv}"], ["not a fastem model file"]),
])
def test_errors_are_one_line(capsys, files, argv, fragments):
    argv = [a.format(**files) for a in argv]
    rc, _, err = run(capsys, *argv)
    assert rc == 1
    assert_one_line_error(rc, err, *fragments)


@pytest.mark.parametrize("argv, fragments", [
    (["fit", "{csv}"], ["required: -k"]),
    (["fit", "{csv}", "-k", "two"], ["invalid value 'two'"]),
    (["fit", "{csv}", "-k", "0"], ["positive integer"]),
    (["fit", "{csv}", "-k", "2", "--covariance", "round"], ["invalid choice"]),
    (["fit", "{csv}", "-k", "2", "--tol", "-1"], ["--tol"]),
    (["select", "{csv}", "-k", "5-2"], ["empty range"]),
    (["select", "{csv}", "--covariance", "full,round"], ["'all' or"]),
    (["nonsense"], ["invalid choice"]),
    (["fit", "{csv}", "-k", "2", "--bogus"], ["unrecognized arguments"]),
    (["fit", "{csv}", "-k", "2", "--nan-policy", "drop"], ["invalid choice"]),
])
def test_bad_options_are_one_line(capsys, files, argv, fragments):
    argv = [a.format(**files) for a in argv]
    rc, _, err = run(capsys, *argv)
    assert rc == 2
    assert_one_line_error(rc, err, *fragments)


def test_predict_column_mismatch(capsys, files, tmp_path):
    model = tmp_path / "m.json"
    assert run(capsys, "fit", files["noheader"], "-k", 2, "--out", model,
               "-q")[0] == 0
    rc, _, err = run(capsys, "predict", model, files["mixed"], "--columns",
                     "x,y")
    assert_one_line_error(rc, err, "expects 3 features", "got 2 columns",
                          "--columns")
    # the text column is skipped; 3 numeric columns are used in order
    rc, out, err = run(capsys, "predict", model, files["mixed"])
    assert rc == 0 and len(out.splitlines()) == 51
    assert "skipped the non-numeric column 'name'" in err
    named = tmp_path / "n.json"
    assert run(capsys, "fit", files["csv"], "-k", 2, "--out", named, "-q")[0] == 0
    rc, _, err = run(capsys, "predict", named, files["mixed"])
    assert_one_line_error(rc, err, "lacks the model's feature(s) 'z'")


def test_demo_unchanged(capsys):
    rc, out, _ = run(capsys, "demo")
    assert rc == 0
    lines = out.splitlines()
    assert lines[0] == ("fastem demo: 4,000 points from N(20, 5) and 8,000 "
                        "from N(40, 5)")
    assert lines[1].split() == ["component", "weight", "mean", "std"]
    assert lines[4].startswith("truth:")
    assert lines[5].startswith("iterations:")


def test_help_and_version(capsys):
    rc, out, _ = run(capsys, "--version")
    assert rc == 0 and out.startswith("fastem ")
    rc, out, _ = run(capsys, "fit", "--help")
    assert rc == 0 and "--covariance" in out and "--columns" in out


def test_subprocess_exit_codes(files, tmp_path):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep
               + os.environ.get("PYTHONPATH", ""))
    bad = subprocess.run(
        [sys.executable, "-m", "fastem", "fit", str(tmp_path / "none.npy"),
         "-k", "2"], capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 1
    assert bad.stdout == ""
    assert bad.stderr.strip() == (f"fastem: error: {tmp_path / 'none.npy'}: "
                                  "no such file")
    ok = subprocess.run(
        [sys.executable, "-m", "fastem", "fit", files["npy"], "-k", "2",
         "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["n_components"] == 2
