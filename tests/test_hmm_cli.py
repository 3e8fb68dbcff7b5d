"""The ``fastem hmm`` command group (fastem/cli/hmm.py) on real files.

``fastem hmm`` is registered in :data:`fastem.cli.COMMANDS` for each test
(the registration :mod:`fastem.cli` is to make), so the commands run through
``fastem.cli.main``: its parser, error handling and exit codes.
"""

import argparse
import json

import numpy as np
import pytest

import fastem
from fastem import GaussianHMM, GaussianMixture, cli
from fastem.cli.hmm import HELP, add_parser, register, run_hmm

LENGTHS = [260, 200, 240]


def three_state_model():
    m = GaussianHMM(3, covariance_type="diag")
    m.startprob_ = np.array([1.0, 0.0, 0.0])
    m.transmat_ = np.array([[0.9, 0.05, 0.05], [0.05, 0.9, 0.05],
                            [0.05, 0.05, 0.9]])
    m.means_ = np.array([[0.0, 0.0], [4.0, 4.0], [-4.0, 4.0]])
    m.covars_ = np.ones((3, 2))
    return m


@pytest.fixture(autouse=True)
def hmm_registered(monkeypatch):
    monkeypatch.setitem(cli.COMMANDS, "hmm", (run_hmm, HELP))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("hmm")
    m = three_state_model()
    parts = [m.sample(n, random_state=i)[0] for i, n in enumerate(LENGTHS)]
    X = np.concatenate(parts)
    with open(d / "seq.csv", "w") as f:
        f.write("subject,x,y\n")
        for i, p in enumerate(parts):
            for r in p:
                f.write(f"patient_{i},{float(r[0])!r},{float(r[1])!r}\n")
    (d / "lengths.txt").write_text("\n".join(map(str, LENGTHS)) + "\n")
    np.save(d / "x.npy", X)
    with open(d / "shuffled.csv", "w") as f:
        f.write("id,x,y\n")
        for i, r in enumerate(X):
            f.write(f"{i % 2},{float(r[0])!r},{float(r[1])!r}\n")
    return d, X


def run(capsys, *argv):
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_fit_with_sequence_column_then_predict(tmp_path, capsys, files):
    d, X = files
    model = tmp_path / "m.json"
    rc, out, err = run(capsys, "hmm", "fit", d / "seq.csv", "-k", 3,
                       "--sequence-column", "subject", "--out", model,
                       "--seed", 0)
    assert rc == 0, err
    assert "700 rows in 3 sequences x 2 features" in out
    assert "transition probabilities" in out
    assert f"model saved to {model}" in err
    m = fastem.load(model)
    assert isinstance(m, GaussianHMM) and m.n_components == 3
    assert list(m.feature_names_in_) == ["x", "y"]
    meta = fastem.io.read_metadata(model)
    assert meta["n_sequences"] == 3 and meta["n_samples"] == 700
    assert meta["log_likelihood"] == pytest.approx(m.score(X, LENGTHS))
    # three well-separated states are found
    assert sorted(np.round(m.means_[:, 1]).tolist()) == [0.0, 4.0, 4.0]

    rc, out, err = run(capsys, "hmm", "predict", model, d / "seq.csv",
                       "--sequence-column", "subject")
    assert rc == 0, err
    lines = out.split()
    assert lines[0] == "state"
    np.testing.assert_array_equal(np.array(lines[1:], dtype=int),
                                  m.predict(X, LENGTHS))
    # the same through a lengths file and a .npy without names
    out_file = tmp_path / "states.csv"
    rc, out, err = run(capsys, "hmm", "predict", model, d / "x.npy",
                       "--lengths", d / "lengths.txt", "--out", out_file)
    assert rc == 0, err
    assert out == ""
    assert "700 rows (3 sequences)" in err
    np.testing.assert_array_equal(
        np.loadtxt(out_file, skiprows=1, dtype=int), m.predict(X, LENGTHS))
    # posteriors
    rc, out, err = run(capsys, "hmm", "predict", model, d / "seq.csv",
                       "--sequence-column", "subject", "--proba", "--json")
    assert rc == 0, err
    proba = np.array(json.loads(out)["proba"])
    np.testing.assert_allclose(proba, m.predict_proba(X, LENGTHS), rtol=1e-12)
    # one sequence, by default
    rc, out, err = run(capsys, "hmm", "predict", model, d / "x.npy", "--json")
    assert rc == 0, err
    np.testing.assert_array_equal(json.loads(out)["states"], m.predict(X))


def test_fit_json_with_lengths_file(capsys, files):
    d, X = files
    rc, out, err = run(capsys, "hmm", "fit", d / "seq.csv", "-k", 2,
                       "--lengths", d / "lengths.txt", "--columns", "x,y",
                       "--covariance", "full", "--json", "--n-init", 1)
    assert rc == 0, err
    res = json.loads(out)
    assert res["n_sequences"] == 3 and res["n_components"] == 2
    assert np.shape(res["covars"]) == (2, 2, 2)
    alone = GaussianHMM(2, covariance_type="full", random_state=0,
                        n_iter=100).fit(X, LENGTHS)
    assert res["log_likelihood"] == pytest.approx(alone.score(X, LENGTHS))
    assert res["bic"] == pytest.approx(alone.bic(X, LENGTHS))


def test_select_prints_a_table_and_saves_the_best(tmp_path, capsys, files):
    d, X = files
    model = tmp_path / "best.json"
    rc, out, err = run(capsys, "hmm", "select", d / "seq.csv", "-k", "1-5",
                       "--sequence-column", "subject", "--out", model)
    assert rc == 0, err
    assert "BIC (lower is better)" in out
    assert "best: K=3 states" in out
    assert isinstance(fastem.load(model), GaussianHMM)
    assert fastem.io.read_metadata(model)["selected_by"] == "bic"
    rc, out, err = run(capsys, "hmm", "select", d / "x.npy", "-k", "2-4",
                       "--lengths", d / "lengths.txt", "--criterion", "cv",
                       "--cv", 3, "--json")
    assert rc == 0, err
    res = json.loads(out)
    assert res["best"]["n_components"] == 3
    assert res["cv"] == 3 and len(res["results"]) == 3
    assert all(r["cv"] is not None for r in res["results"])


@pytest.mark.parametrize("argv, match", [
    (["fit", "{d}/shuffled.csv", "-k", 2, "--sequence-column", "id"],
     "rows of sequence 0 .* are not consecutive: data rows 1-1 and 3-3"),
    (["fit", "{d}/seq.csv", "-k", 2, "--sequence-column", "nope"],
     "column 'nope' not found"),
    (["fit", "{d}/x.npy", "-k", 2, "--lengths", "{d}/bad_lengths.txt"],
     "add up to 10, but the data has 700 rows"),
    (["fit", "{d}/x.npy", "-k", 2, "--lengths", "{d}/text_lengths.txt"],
     "line 3: expected one positive integer per line"),
    (["fit", "{d}/x.npy", "-k", 2, "--lengths", "{d}/missing.txt"],
     "no such file"),
    (["fit", "{d}/x.npy", "-k", 800], "more states than the 700 rows"),
    (["fit", "{d}/seq.csv", "-k", 2, "--out", "{d}/seq.csv"],
     "is the input DATA"),
    (["fit", "{d}/x.npy", "-k", 2, "--lengths", "{d}/lengths.txt", "--out",
      "{d}/lengths.txt"], "is the input LENGTHS"),
    (["predict", "{d}/gm.json", "{d}/x.npy"], "not a hidden Markov model"),
    (["predict", "{d}/nothing.json", "{d}/x.npy"], "no such model file"),
    (["predict", "{d}/hmm.json", "{d}/x.npy", "--out", "{d}/hmm.json"],
     "is the input MODEL"),
    (["predict", "{d}/hmm.json", "{d}/x.npy", "--out", "{d}/x.npy"],
     "is the input DATA"),
    (["predict", "{d}/hmm1.json", "{d}/x.npy"], "expects 1 feature, "),
    (["predict", "{d}/broken.json", "{d}/x.npy"], "transmat: "),
    (["select", "{d}/x.npy", "-k", "800-801"], "every -k value exceeds"),
    (["select", "{d}/x.npy", "--cv", 1, "--criterion", "cv"],
     "at least 2 folds"),
])
def test_user_errors_are_one_line(tmp_path, capsys, files, argv, match):
    d, X = files
    (tmp_path / "bad_lengths.txt").write_text("4\n6\n")
    (tmp_path / "text_lengths.txt").write_text("# lengths\n100\nmany\n")
    GaussianMixture(2, random_state=0).fit(X).save(tmp_path / "gm.json")
    m = GaussianHMM(2, n_iter=5, random_state=0).fit(X)
    m.save(tmp_path / "hmm.json")
    GaussianHMM(2, n_iter=5, random_state=0).fit(X[:, :1]).save(
        tmp_path / "hmm1.json")
    bad = json.loads((tmp_path / "hmm.json").read_text())
    bad["fitted"]["transmat"][0] = [0.5, 0.6]
    (tmp_path / "broken.json").write_text(json.dumps(bad))
    for name in ("seq.csv", "x.npy", "shuffled.csv", "lengths.txt"):
        (tmp_path / name).write_bytes((d / name).read_bytes())
    argv = [str(a).format(d=tmp_path) for a in argv]
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    rc, out, err = run(capsys, "hmm", *argv)
    assert rc == 1, (out, err)
    assert err.startswith("fastem: error: ")
    assert err.count("\n") == 1, err
    import re

    assert re.search(match, err), err
    # nothing was overwritten
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()
            if p.name in before} == before


def test_usage_errors_exit_2(capsys, files):
    d, _ = files
    rc, out, err = run(capsys, "hmm")
    assert rc == 2 and "fit" in err and "select" in err
    rc, out, err = run(capsys, "hmm", "fit", d / "x.npy")  # no -k
    assert rc == 2
    rc, out, err = run(capsys, "hmm", "fit", d / "x.npy", "-k", 2,
                       "--lengths", d / "lengths.txt", "--sequence-column",
                       "0")
    assert rc == 2 and "not allowed with" in err
    rc, out, err = run(capsys, "hmm", "select", d / "x.npy", "--criterion",
                       "icl")
    assert rc == 2


def test_registration_functions(capsys, files):
    d, _ = files
    # on a parser of one's own
    parser = argparse.ArgumentParser(prog="fastem")
    sub = parser.add_subparsers(dest="command")
    add_parser(sub)
    args = parser.parse_args(["hmm", "fit", str(d / "x.npy"), "-k", "2",
                              "--json", "--n-init", "1"])
    assert args.func(args) == 0
    assert json.loads(capsys.readouterr().out)["n_components"] == 2
    # with fastem.cli's command decorator
    registry = {}

    def command(name, help):
        def deco(func):
            registry[name] = (func, help)
            return func
        return deco

    assert register(command) is run_hmm
    assert registry == {"hmm": (run_hmm, HELP)}
    assert "hmm" in cli.build_parser().format_help()


def test_print_info(tmp_path, capsys, files):
    from fastem.cli.hmm import print_info

    d, X = files
    model = tmp_path / "m.json"
    assert run(capsys, "hmm", "fit", d / "seq.csv", "-k", 2,
               "--sequence-column", "subject", "--out", model, "-q")[0] == 0
    m = fastem.load(model)
    assert print_info(str(model), m, fastem.io.read_metadata(model)) == 0
    out = capsys.readouterr().out
    assert "hidden Markov model" in out
    assert "model: 2 states, covariance 'diag', 2 features: x, y" in out
    assert "(700 rows in 3 sequences)" in out
    assert "transition probabilities" in out
    print_info("u.json", GaussianHMM(4))
    assert "not fitted" in capsys.readouterr().out
