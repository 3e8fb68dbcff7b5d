"""Side-by-side benchmark: ``fastem.select`` against R's ``mclust::Mclust``.

Both select over mclust's 14 covariance models and K = 1..9 on the same
data (by default 100,000 rows in 4-D drawn from a seeded four-component
mixture), from mclust's start (hierarchical agglomeration of a 2,000-row
subset) with mclust's stopping rule.  Reported: wall time of each, the
ratio, the chosen model of each, both versions and the CPU.  R runs on one
thread (mclust's Fortran); fastem on all of ``numba``'s threads.

Run as ``python -m fastem.bench_mclust [--rows N] [--repeat R]``; needs
``Rscript`` with mclust (``apt-get install r-cran-mclust``).
"""

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

R_CODE = """
suppressMessages(library(mclust))
X <- as.matrix(read.csv("{path}", header = FALSE))
set.seed(1)
t <- system.time(m <- Mclust(X, G = 1:9, verbose = FALSE))
cat(t[["elapsed"]], t[["user.self"]] + t[["sys.self"]], m$modelName, m$G,
    m$bic, as.character(packageVersion("mclust")), R.version$major,
    R.version$minor, "\\n")
"""


def make_data(n_rows, seed=2026):
    """Four ellipsoidal clusters of different sizes and shapes in 4-D."""
    rng = np.random.default_rng(seed)
    D = 4
    means = np.array([[0, 0, 0, 0], [4, 4, 0, 0], [0, 5, 5, 2], [5, 0, 3, 5]],
                     dtype=float)
    counts = rng.multinomial(n_rows, [0.4, 0.3, 0.2, 0.1])
    parts = []
    for k, c in enumerate(counts):
        B = rng.normal(size=(D, D))
        parts.append(rng.multivariate_normal(means[k], B @ B.T / D
                                             + 0.3 * np.eye(D), size=c))
    X = np.vstack(parts)
    rng.shuffle(X)
    return X


def cpu_name():
    """Return the CPU model and its widest vector extension (/proc/cpuinfo)."""
    model, flags = platform.processor() or platform.machine(), set()
    fam = num = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and not flags:
                    model = value.strip()
                elif key.strip() == "cpu family" and fam is None:
                    fam = value.strip()
                elif key.strip() == "model" and num is None:
                    num = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    vec = ("AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags
           else "no AVX2")
    ident = f"family {fam} model {num}, " if fam and num else ""
    return f"{model} ({ident}{vec}, {os.cpu_count()} logical CPUs)"


def run_fastem(X):
    """One ``select``; returns (wall s, cpu s, label, mclust-sign BIC)."""
    import fastem

    t0, c0 = time.perf_counter(), os.times()
    res = fastem.select(X, range(1, 10), covariance_types="mclust",
                        random_state=0, bic_sign="mclust")
    c1, t1 = os.times(), time.perf_counter()
    top = res.top_models(1)[0]
    cpu = (c1.user - c0.user) + (c1.system - c0.system)
    return t1 - t0, cpu, top["label"], top["bic"]


def run_mclust(path):
    """One ``Mclust``; returns (wall s, cpu s, label, BIC, versions)."""
    with tempfile.NamedTemporaryFile("w", suffix=".R", delete=False) as f:
        f.write(R_CODE.format(path=path))
    try:
        out = subprocess.run(["Rscript", f.name], capture_output=True,
                             text=True, check=True).stdout.split()
    finally:
        os.unlink(f.name)
    wall, cpu, model, G, bic, ver, rmaj, rmin = out[:8]
    return (float(wall), float(cpu), f"{model},{G}", float(bic),
            f"mclust {ver}, R {rmaj}.{rmin}")


def main(argv=None):
    """Run the comparison and print a table (medians over ``--repeat``)."""
    p = argparse.ArgumentParser(prog="python -m fastem.bench_mclust",
                                description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=1,
                   help="runs of each (medians reported; R takes minutes)")
    args = p.parse_args(argv)
    if shutil.which("Rscript") is None:
        print("Rscript not found: apt-get install r-cran-mclust",
              file=sys.stderr)
        return 2
    import numba

    import fastem

    X = make_data(args.rows)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "x.csv")
        np.savetxt(path, X, delimiter=",", fmt="%.17g")
        run_fastem(X[:3000])  # compile (and load) the kernels first
        fe, rr = [], []
        for _ in range(args.repeat):
            rr.append(run_mclust(path))
            fe.append(run_fastem(X))
    fw = float(np.median([r[0] for r in fe]))
    fc = float(np.median([r[1] for r in fe]))
    rw = float(np.median([r[0] for r in rr]))
    rc = float(np.median([r[1] for r in rr]))
    print(f"select over 14 models x K=1..9, {args.rows:,} rows x 4, "
          f"medians of {args.repeat}")
    print(f"CPU: {cpu_name()}; fastem {fastem.__version__} on "
          f"{numba.get_num_threads()} threads (numba {numba.__version__}); "
          f"{rr[0][4]} (one thread)")
    print(f"{'':8}{'wall s':>9}{'CPU s':>9}  chosen   BIC (mclust's sign)")
    print(f"{'mclust':8}{rw:9.2f}{rc:9.2f}  {rr[0][2]:8} {rr[0][3]:.3f}")
    print(f"{'fastem':8}{fw:9.2f}{fc:9.2f}  {fe[0][2]:8} {fe[0][3]:.3f}")
    print(f"speed-up: {rw / fw:.1f}x wall, {rc / fc:.1f}x CPU; same chosen "
          f"model: {'yes' if rr[0][2] == fe[0][2] else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
