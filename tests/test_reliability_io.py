"""Reliability of fastem's files and command line.

Ctrl-C during a CLI fit, outputs that are inputs, atomic and thread-safe
saves, saving after ``set_params(covariance_type=...)``, malformed model
files, and data "files" that never end (``/dev/zero``) or are binary.
Everything that could abort, hang or eat the memory runs in a subprocess
with a timeout.
"""

import json
import os
import resource
import signal
import stat
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pytest

import fastem.io as fio
from fastem import GaussianMixture
from fastem.cli import main
from fastem.cli.readers import MAX_LINE_BYTES, DataError, read_table

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, PYTHONPATH=REPO + os.pathsep
           + os.environ.get("PYTHONPATH", ""))
ENV.pop("FASTEM_DEBUG", None)


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line_error(rc, err, *fragments):
    assert rc == 1, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("fastem: error: "), lines[0]
    for frag in fragments:
        assert frag in lines[0], lines[0]


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@pytest.fixture(scope="module")
def X():
    rng = np.random.default_rng(0)
    return np.vstack([rng.normal(0.0, 1.0, (150, 2)),
                      rng.normal(5.0, 1.0, (150, 2))])


@pytest.fixture
def csv(tmp_path, X):
    path = tmp_path / "data.csv"
    np.savetxt(path, X, delimiter=",", header="x,y", comments="", fmt="%.17g")
    return path


@pytest.fixture(scope="module")
def model_text(tmp_path_factory, X):
    path = tmp_path_factory.mktemp("m") / "m.json"
    fio.save(GaussianMixture(2, random_state=0).fit(X), path)
    return path.read_text()


# --------------------------------------------- 3: Ctrl-C during a CLI fit
def _interrupt_fit(tmp_path, delay):
    """Start ``fastem fit big.npy -k 6``, Ctrl-C it mid-fit, return the run.

    The progress display (``--progress``) tells when EM is running: the
    signal is sent ``delay`` seconds after its first line.
    """
    out = tmp_path / "m.json"
    p = subprocess.Popen(
        [sys.executable, "-m", "fastem", "fit", str(tmp_path / "big.npy"),
         "-k", "6", "--tol", "0", "--max-iter", "400", "--progress",
         "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, cwd=tmp_path)
    err = b""
    try:
        while b"iteration" not in err:
            chunk = os.read(p.stderr.fileno(), 4096)
            if not chunk:
                break
            err += chunk
        assert b"iteration" in err, err  # EM started and is running
        time.sleep(delay)
        assert p.poll() is None, "the fit ended before the interrupt"
        p.send_signal(signal.SIGINT)
        rest_out, rest_err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return p.returncode, rest_out.decode(), (err + rest_err).decode(), out


@pytest.mark.parametrize("delay", [0.0, 0.4, 1.0])
def test_ctrl_c_during_fit_exits_130_with_one_line(tmp_path, delay):
    # 300,000 x 4 standard normal rows, 6 components, tol 0: ~10 ms per EM
    # iteration, 400 iterations (seconds) -- mid-fit whatever the delay.
    rng = np.random.default_rng(0)
    np.save(tmp_path / "big.npy", rng.normal(size=(300_000, 4)))
    rc, out, err, model = _interrupt_fit(tmp_path, delay)
    assert rc == 130, err
    assert "Traceback" not in err and "internal error" not in err, err
    # The progress line is erased (carriage returns); what is left on the
    # screen is one line.
    shown = err.split("\r")[-1]
    assert shown == "fastem: interrupted\n", repr(err)
    assert err.count("\n") == 1, repr(err)
    assert out == ""
    assert not model.exists()
    assert sorted(os.listdir(tmp_path)) == ["big.npy"]  # no temporary left


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ctrl_c_during_select_exits_130_with_one_line(tmp_path, jobs):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "big.npy", rng.normal(size=(200_000, 4)))
    out = tmp_path / "best.json"
    p = subprocess.Popen(
        [sys.executable, "-m", "fastem", "select", str(tmp_path / "big.npy"),
         "-k", "4-6", "--covariance", "full", "--jobs", jobs, "--tol", "0",
         "--max-iter", "150", "-q", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        time.sleep(1.5)
        assert p.poll() is None, p.communicate()
        p.send_signal(signal.SIGINT)
        stdout, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    # With --jobs 2 the queued fits are cancelled and the running ones stop
    # at their next kernel boundary (measured: exit 0.5 s after SIGINT).
    assert p.returncode == 130, err
    assert err == "fastem: interrupted\n" and stdout == ""
    assert sorted(os.listdir(tmp_path)) == ["big.npy"]


def test_ctrl_c_while_writing_predictions_leaves_no_file(tmp_path, csv, X,
                                                         capsys, monkeypatch):
    model = tmp_path / "m.json"
    GaussianMixture(2, random_state=0).fit(X).save(model)
    out = tmp_path / "labels.csv"
    out.write_text("previous content\n")
    real = np.savetxt

    def interrupted(f, *a, **k):
        f.write("label\n0\n1\n")  # half the output, then Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savetxt", interrupted)
    rc, _, err = run(capsys, "predict", model, csv, "--out", out)
    monkeypatch.setattr(np, "savetxt", real)
    assert rc == 130 and err == "fastem: interrupted\n"
    assert out.read_text() == "previous content\n"  # not half-written
    assert sorted(os.listdir(tmp_path)) == ["data.csv", "labels.csv", "m.json"]


# ------------------------------------------- 4: an output that is an input
def _snapshot(*paths):
    return [p.read_bytes() for p in paths]


def test_fit_out_same_file_as_data_is_refused(tmp_path, csv, capsys):
    before = _snapshot(csv)
    (tmp_path / "sub").mkdir()
    os.link(csv, tmp_path / "hard.csv")
    os.symlink(csv, tmp_path / "soft.csv")
    for out in (csv, tmp_path / "sub" / ".." / "data.csv",
                tmp_path / "hard.csv", tmp_path / "soft.csv"):
        rc, stdout, err = run(capsys, "fit", csv, "-k", 2, "--out", out)
        assert_one_line_error(rc, err, f"--out {out}", "input DATA",
                              "choose another output file")
        assert stdout == ""
        assert _snapshot(csv) == before
    # and the other way round: a link as the data, the file as the output
    rc, _, err = run(capsys, "select", tmp_path / "soft.csv", "-k", "1-2",
                     "--out", csv)
    assert_one_line_error(rc, err, "is the input DATA")
    assert _snapshot(csv) == before


def test_predict_out_same_file_as_an_input_is_refused(tmp_path, csv, X,
                                                      capsys):
    model = tmp_path / "m.json"
    GaussianMixture(2, random_state=0).fit(X).save(model)
    before = _snapshot(csv, model)
    rc, _, err = run(capsys, "predict", model, csv, "--out", csv)
    assert_one_line_error(rc, err, "is the input DATA")
    rc, _, err = run(capsys, "predict", model, csv, "--out", model)
    assert_one_line_error(rc, err, "is the input MODEL")
    assert _snapshot(csv, model) == before
    # an unrelated output is fine, written with open()'s permissions
    rc, _, _ = run(capsys, "predict", model, csv, "--out",
                   tmp_path / "p.csv", "-q")
    assert rc == 0
    assert (tmp_path / "p.csv").read_text().startswith("label\n0\n") or \
        (tmp_path / "p.csv").read_text().startswith("label\n1\n")
    assert stat.S_IMODE(os.stat(tmp_path / "p.csv").st_mode) \
        == 0o666 & ~_umask()
    assert sorted(os.listdir(tmp_path)) == ["data.csv", "m.json", "p.csv"]


def test_fit_select_outputs_are_written_atomically(tmp_path, csv, capsys,
                                                   monkeypatch):
    out = tmp_path / "m.json"
    out.write_text("the previous model\n")
    os.chmod(out, 0o640)

    def broken(*a, **k):
        raise OSError(28, "No space left on device")

    # a failure while writing the model leaves the previous file as it was
    monkeypatch.setattr(fio, "_dumps", lambda d: "{}")
    monkeypatch.setattr(os, "fsync", broken)
    rc, _, err = run(capsys, "fit", csv, "-k", 2, "--out", out)
    monkeypatch.undo()
    assert rc == 1 and "no space left" in err.lower()
    assert out.read_text() == "the previous model\n"
    assert sorted(os.listdir(tmp_path)) == ["data.csv", "m.json"]
    rc, _, _ = run(capsys, "select", csv, "-k", "1-2", "--covariance",
                   "diag", "--out", out, "-q")
    assert rc == 0 and fio.load(out).n_components in (1, 2)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o640  # kept on replace
    assert sorted(os.listdir(tmp_path)) == ["data.csv", "m.json"]


# -------------------------------------------------- 5: concurrent saves
def test_concurrent_saves_and_loads_to_one_path(tmp_path, X):
    path = tmp_path / "m.json"
    models = [GaussianMixture(k, random_state=0, max_iter=5).fit(X)
              for k in (1, 2, 3)]
    fio.save(models[0], path)
    errors, loaded = [], []
    stop = threading.Event()

    def saver(i):
        try:
            for j in range(20):
                fio.save(models[(i + j) % 3], path, metadata={"i": i, "j": j})
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    def loader():
        while not stop.is_set():
            try:
                m = fio.load(path)
                K = m.n_components
                assert m.weights_.shape == (K,) and m.means_.shape == (K, 2)
                loaded.append(K)
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)
                return

    lt = threading.Thread(target=loader)
    lt.start()
    savers = [threading.Thread(target=saver, args=(i,)) for i in range(8)]
    for t in savers:
        t.start()
    for t in savers:
        t.join()
    stop.set()
    lt.join()
    assert errors == []
    assert loaded, "the loader never ran"
    assert fio.load(path).n_components in (1, 2, 3)
    assert os.listdir(tmp_path) == ["m.json"]  # no temporary file left
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~_umask()


def test_save_keeps_permissions_and_survives_interruption(tmp_path, X,
                                                          monkeypatch):
    gm = GaussianMixture(2, random_state=0).fit(X)
    path = tmp_path / "m.json"
    gm.save(path)
    os.chmod(path, 0o600)
    before = path.read_bytes()

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fio.save(GaussianMixture(3, random_state=0).fit(X), path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.json"]
    fio.save(gm, path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    # through a symbolic link: the target is replaced, the link stays
    os.symlink(path, tmp_path / "link.json")
    fio.save(GaussianMixture(3, random_state=0).fit(X), tmp_path / "link.json")
    assert os.path.islink(tmp_path / "link.json")
    assert fio.load(path).n_components == 3


# ------------------------------- 6: save after set_params(covariance_type)
@pytest.mark.parametrize("fitted, new", [("full", "diag"), ("spherical", "full"),
                                         ("tied", "diag"), ("diag", "tied")])
def test_save_after_changing_covariance_type_saves_the_fitted_model(
        tmp_path, fitted, new):
    # 2 components, 2 features: tied (D, D) and diag (K, D) shapes coincide
    rng = np.random.default_rng(1)
    X = np.vstack([rng.normal(0, 1, (100, 2)), rng.normal(4, 1, (100, 2))])
    gm = GaussianMixture(2, covariance_type=fitted, random_state=0).fit(X)
    expected = gm.predict_proba(X)
    gm.set_params(covariance_type=new)
    with pytest.warns(UserWarning, match=f"fitted with '{fitted}'"):
        fio.save(gm, tmp_path / "m.json")
    back = fio.load(tmp_path / "m.json")
    assert back.covariance_type == fitted
    np.testing.assert_array_equal(back.precisions_cholesky_,
                                  np.asarray(gm.precisions_cholesky_))
    np.testing.assert_allclose(back.predict_proba(X), expected, rtol=0,
                               atol=1e-12)
    # an unchanged model saves without a warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fio.save(back, tmp_path / "again.json")


# ------------------------------------------------- 9: malformed model files
def _edit(d, where, value):
    obj = d
    for k in where[:-1]:
        obj = obj[k]
    if value is _DELETE:
        del obj[where[-1]]
    else:
        obj[where[-1]] = value(obj[where[-1]]) if callable(value) else value


_DELETE = object()
_DEEP = "[" * 100_000 + "]" * 100_000


def _full_pc(pc, fn):
    pc = np.array(pc)
    fn(pc)
    return pc.tolist()


MALFORMED = {
    "nan_weight": (("fitted", "weights"), lambda w: ["nan"] + w[1:],
                   "weights"),
    "negative_weight": (("fitted", "weights"), lambda w: [-w[0], w[1] + 2 * w[0]],
                        "weights"),
    "weights_not_summing_to_1": (("fitted", "weights"), lambda w: [0.5, 0.6],
                                 "weights"),
    "weights_a_string": (("fitted", "weights"), "0.5, 0.5", "weights"),
    "weights_a_special_string": (("fitted", "weights"), "nan", "weights"),
    "weights_with_a_boolean": (("fitted", "weights"), [True, 0.0], "weights"),
    "zero_precision_factor": (
        ("fitted", "precisions_cholesky"),
        lambda pc: _full_pc(pc, lambda a: a.__setitem__((0, 1, 1), 0.0)),
        "precisions_cholesky"),
    "lower_triangular_factor": (
        ("fitted", "precisions_cholesky"),
        lambda pc: _full_pc(pc, lambda a: a.__setitem__((1, 1, 0), 0.3)),
        "precisions_cholesky"),
    "infinite_factor": (
        ("fitted", "precisions_cholesky"),
        lambda pc: _full_pc(pc, lambda a: a.__setitem__((0, 0, 1), np.inf)),
        "precisions_cholesky"),
    "factor_of_wrong_shape": (("fitted", "precisions_cholesky"),
                              lambda pc: pc[:1], "precisions_cholesky"),
    "nan_mean": (("fitted", "means"), lambda m: [["nan", m[0][1]], m[1]],
                 "means"),
    "ragged_means": (("fitted", "means"), lambda m: [m[0], m[1][:1]], "means"),
    "huge_integer_mean": (("fitted", "means"), lambda m: [[10 ** 400, 0], m[1]],
                          "means"),
    "means_nested_too_deep": (("fitted", "means"), [[[0.0, 1.0]], [[1.0, 2.0]]],
                              "means"),
    "covariances_inconsistent": (
        ("fitted", "covariances"),
        lambda c: (4.0 * np.array(c)).tolist(), "covariances"),
    "covariances_nan": (
        ("fitted", "covariances"),
        lambda c: _full_pc(c, lambda a: a.__setitem__((0, 0, 0), np.nan)),
        "covariances"),
    "lower_bound_unknown_string": (("fitted", "lower_bound"), "abc",
                                   "lower_bound"),
    "n_iter_a_string": (("fitted", "n_iter"), "12", "n_iter"),
    "converged_a_number": (("fitted", "converged"), 1, "converged"),
    "missing_means": (("fitted", "means"), _DELETE, "'means'"),
    "feature_names_of_wrong_length": (("fitted", "feature_names_in"), ["a"],
                                      "feature_names_in"),
    "n_features_in_mismatch": (("fitted", "n_features_in"), 3, "n_features_in"),
    "fitted_a_list": (("fitted",), [1, 2], "fitted"),
    "n_components_mismatch": (("params", "n_components"), 3, "n_components"),
    "n_components_a_string": (("params", "n_components"), "two",
                              "n_components"),
    "covariance_type_a_list": (("params", "covariance_type"), ["full"],
                               "covariance_type"),
    "negative_tol": (("params", "tol"), -1.0, "tol"),
    "init_params_unknown": (("params", "init_params"), "magic", "init_params"),
    "params_value_an_object": (("params", "reg_covar"), {"a": 1}, "reg_covar"),
    "means_init_of_wrong_shape": (("params", "means_init"), [[0.0]],
                                  "means_init"),
    "format_version_a_boolean": (("format_version",), True, "format_version"),
    "metadata_a_list": (("metadata",), [1, 2], "metadata"),
}


@pytest.mark.parametrize("case", list(MALFORMED) + ["deeply_nested"])
def test_malformed_model_files_are_refused_naming_the_field(tmp_path, case,
                                                            model_text, X):
    path = tmp_path / "bad.json"
    if case == "deeply_nested":
        d = json.loads(model_text)
        text = json.dumps(d).replace('"weights": [', '"weights": [' + _DEEP
                                     + ", ", 1)
        path.write_text(text)
        field = "too deeply nested"
    else:
        where, value, field = MALFORMED[case]
        d = json.loads(model_text)
        _edit(d, where, value)
        path.write_text(json.dumps(d))
    with pytest.raises(fio.ModelFileError) as info:
        fio.load(path)
    msg = str(info.value)
    assert isinstance(info.value, ValueError)
    assert field in msg, msg
    assert msg.startswith(f"{path}: ") and "\n" not in msg


def test_the_valid_file_of_the_malformed_cases_loads(tmp_path, model_text, X):
    path = tmp_path / "ok.json"
    path.write_text(model_text)
    gm = fio.load(path)
    assert gm.predict(X).shape == (300,)


def test_predict_with_a_malformed_model_exits_1(tmp_path, csv, model_text,
                                                capsys):
    d = json.loads(model_text)
    d["fitted"]["weights"] = ["nan", "nan"]  # predictions were rows of 0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(d))
    rc, out, err = run(capsys, "predict", bad, csv)
    assert_one_line_error(rc, err, "bad.json", "weights")
    assert out == ""
    bad.write_text('{"format": "fastem.GaussianMixture", "format_version": 1,'
                   ' "params": {}, "fitted": ' + _DEEP + "}")
    rc, out, err = run(capsys, "predict", bad, csv)
    assert_one_line_error(rc, err, "too deeply nested")
    rc, out, err = run(capsys, "info", bad)
    assert_one_line_error(rc, err, "too deeply nested")


# ---------------------------------- 14: endless and binary "data files"
def _run_bounded(argv, limit_gib=2):
    """``main(argv)`` in a child process limited to ``limit_gib`` GiB of
    address space; returns (exit status, stderr, peak RSS in MB).
    """
    # The child's own high-water mark (VmHWM, kB): ru_maxrss survives
    # execve on Linux, so it would report the forking pytest process's peak
    # (about 1 GB late in the suite) instead of the child's.
    code = ("import re, sys\n"
            "from fastem.cli import main\n"
            f"rc = main({argv!r})\n"
            "status = open('/proc/self/status').read()\n"
            "print(re.search(r'VmHWM:\\s*(\\d+)', status).group(1))\n"
            "sys.exit(rc)\n")

    def limit():
        lim = limit_gib * 2 ** 30
        resource.setrlimit(resource.RLIMIT_AS, (lim, lim))

    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", code], capture_output=True,
                       text=True, env=ENV, timeout=60, preexec_fn=limit)
    elapsed = time.perf_counter() - t0
    peak_mb = int(p.stdout.split()[-1]) / 1024 if p.stdout.strip() else None
    return p.returncode, p.stderr, peak_mb, elapsed


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_dev_zero_is_refused_at_once():
    # Before: read until the memory ran out (here: the 2 GiB limit).
    rc, err, peak, _ = _run_bounded(["fit", "/dev/zero", "-k", "1"])
    assert_one_line_error(rc, err, "/dev/zero: is a character device",
                          "not a regular file")
    assert peak < 300


def test_file_of_nul_bytes_is_refused_early(tmp_path):
    path = tmp_path / "zeros.csv"
    with open(path, "wb") as f:
        f.truncate(50 * 2 ** 20)  # 50 MiB of NUL bytes (sparse)
    # Before: 467 MB peak to say "no data rows".  Measured after: ~55 MB peak
    # RSS for the whole child (Python, numpy, fastem's CLI); only the first
    # 1 MiB block is read.  300 MB is generous, and not a timing assertion.
    rc, err, peak, _ = _run_bounded(["fit", str(path), "-k", "1"])
    assert_one_line_error(rc, err, "not a text CSV file: found NUL bytes at "
                          "byte 0", "fastem reads CSV text")
    assert peak < 300, peak
    # a NUL further in: its byte offset is given
    with open(path, "wb") as f:
        f.write(b"x,y\n1,2\n3,4\n\0\0")
    with pytest.raises(DataError, match="NUL bytes at byte 12"):
        read_table(path)


def test_overlong_line_is_refused_naming_it(tmp_path):
    path = tmp_path / "long.csv"
    with open(path, "wb") as f:
        f.write(b"x,y\n1,2\n" + b"3" * (MAX_LINE_BYTES + 1) + b",4\n5,6\n")
    with pytest.raises(DataError, match=r"line 3 is longer than 16 MiB"):
        read_table(path)
    # the same with carriage returns as line ends (old Mac files)
    with open(path, "wb") as f:
        f.write(b"x,y\r1,2\r3,4\r")
    X, names = read_table(path)
    assert names == ["x", "y"] and X.tolist() == [[1, 2], [3, 4]]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes")
def test_a_pipe_is_read_once(tmp_path, X):
    # Before: the header was read from the pipe, then the pipe was opened a
    # second time for the rows, and that open waited for a writer forever.
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    text = "x,y\n" + "".join(f"{a!r},{b!r}\n" for a, b in X.tolist())
    code = ("import sys\nfrom fastem.cli.readers import read_table\n"
            f"X, names = read_table({str(fifo)!r})\n"
            "print(names, X.shape, repr(float(X.sum())))\n")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=ENV)

    def write():
        with open(fifo, "w") as f:
            f.write(text)

    threading.Thread(target=write, daemon=True).start()
    try:
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
            # unblock the writer if the reader never opened the pipe
            os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
    assert p.returncode == 0, err
    assert out.split() == ["['x',", "'y']", "(300,", "2)",
                           repr(float(X.sum()))]
