"""The side-by-side scripts against mclust and pomegranate (small runs).

No timing is asserted: these check that the scripts run, report and fail
cleanly; the figures come from running them by hand (see the README).
"""

import shutil
import sys

import numpy as np
import pytest

from fastem import bench_mclust, bench_pomegranate


def test_mclust_bench_data_cpu_and_fastem_side():
    X = bench_mclust.make_data(3000)
    assert X.shape == (3000, 4) and np.isfinite(X).all()
    np.testing.assert_array_equal(X, bench_mclust.make_data(3000))
    assert "logical CPUs" in bench_mclust.cpu_name()
    wall, cpu, label, bic = bench_mclust.run_fastem(X)
    assert wall > 0 and cpu >= 0 and np.isfinite(bic)
    model, k = label.split(",")
    assert model in ("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE",
                     "EVE", "VVE", "EEV", "VEV", "EVV", "VVV")
    assert 1 <= int(k) <= 9


def test_mclust_bench_without_r(monkeypatch, capsys):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert bench_mclust.main(["--rows", "500"]) == 2
    assert "r-cran-mclust" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("Rscript") is None,
                    reason="R is not installed (apt-get install r-cran-mclust)")
def test_mclust_bench_small_run(capsys):
    assert bench_mclust.main(["--rows", "1500"]) == 0
    out = capsys.readouterr().out
    assert "speed-up:" in out and "mclust" in out and "same chosen model" \
        in out


def test_pomegranate_bench_reports_a_missing_peer(capsys):
    # this interpreter has no pomegranate: the script says so and fails
    code = bench_pomegranate.main(["--python", sys.executable, "--rows",
                                   "2000", "--repeat", "1"])
    if code == 0:  # pomegranate happens to be installed here
        assert "pomegranate" in capsys.readouterr().out
    else:
        assert code == 1
        assert "pomegranate" in capsys.readouterr().err
