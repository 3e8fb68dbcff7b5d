"""The CLI's command groups wired together, through the real entry point."""

import subprocess
import sys

import numpy as np
import pytest


def _fastem(*args, cwd):
    return subprocess.run([sys.executable, "-m", "fastem", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    d = tmp_path_factory.mktemp("hmm")
    rng = np.random.default_rng(0)
    states = np.repeat(rng.integers(0, 2, 20), 15)
    x = np.where(states[:, None] == 0, 0.0, 5.0) + rng.normal(size=(300, 2))
    np.savetxt(d / "series.csv", x, delimiter=",", header="a,b", comments="")
    return d


def test_hmm_commands_run_from_the_console_entry_point(series):
    out = _fastem("hmm", "fit", "series.csv", "-k", "2", "--out", "h.json",
                  cwd=series)
    assert out.returncode == 0, out.stderr
    out = _fastem("hmm", "predict", "h.json", "series.csv", "--out", "s.csv",
                  cwd=series)
    assert out.returncode == 0, out.stderr
    states = np.loadtxt(series / "s.csv", delimiter=",", skiprows=1)
    assert set(np.unique(states)) == {0, 1}
    out = _fastem("info", "h.json", cwd=series)
    assert out.returncode == 0 and "GaussianHMM" in out.stdout, out
    # the mixture predict refuses an HMM file, pointing to the right command
    out = _fastem("predict", "h.json", "series.csv", cwd=series)
    assert out.returncode == 1
    assert "use fastem hmm predict" in out.stderr
    assert out.stderr.count("\n") == 1


def test_fit_density_plot_draws_every_column(series):
    pytest.importorskip("matplotlib")
    out = _fastem("fit", "series.csv", "-k", "2", "--plot", "d.png",
                  "--plot-kind", "density", cwd=series)
    assert out.returncode == 0, out.stderr
    from matplotlib.image import imread

    img = imread(series / "d.png")
    # two panels side by side: wider than tall
    assert img.shape[1] > 1.5 * img.shape[0]
