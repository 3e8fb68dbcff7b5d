"""Side-by-side benchmark: PoissonMixture against pomegranate's mixture.

pomegranate 1.x (``GeneralMixtureModel`` of ``Poisson`` distributions, on
PyTorch) is the general-purpose peer for non-Gaussian mixtures.  It needs
PyTorch, so it usually lives in an environment of its own: give its Python
with ``--python`` (for example ``python -m venv /work/venv-pom &&
/work/venv-pom/bin/pip install pomegranate``).

Same data (1,000,000 rows of 8 count features from 8 components, the
workload of ``python -m fastem.bench --extras``), same start (weights and
rates), per iteration by differencing 12- and 2-iteration fits, medians;
both use all of the machine's threads.  Run as ``python -m
fastem.bench_pomegranate --python /work/venv-pom/bin/python``.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

POM_CODE = """
import sys, time, numpy, torch
from pomegranate.gmm import GeneralMixtureModel
from pomegranate.distributions import Poisson
torch.set_num_threads({threads})
d = numpy.load(sys.argv[1])
X = torch.from_numpy(d["X"])
w0, r0 = d["w0"], d["r0"]

def fit(n_iter):
    dists = [Poisson(lambdas=torch.from_numpy(r.copy())) for r in r0]
    m = GeneralMixtureModel(dists, priors=torch.from_numpy(w0.copy()),
                            max_iter=n_iter, tol=-numpy.inf)
    t = time.perf_counter(); m.fit(X); return time.perf_counter() - t

fit(1)
per = [(fit(12) - fit(2)) / 10 for _ in range({repeat})]
import pomegranate
print(numpy.median(per), pomegranate.__version__, torch.__version__)
"""


def main(argv=None):
    """Run the comparison and print per-iteration times and the ratio."""
    p = argparse.ArgumentParser(prog="python -m fastem.bench_pomegranate",
                                description=__doc__.splitlines()[0])
    p.add_argument("--python", required=True,
                   help="the Python that has pomegranate installed")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--rows", type=int, default=1_000_000)
    args = p.parse_args(argv)
    import numba

    from fastem.bench_mclust import cpu_name
    from fastem.models.poisson import PoissonMixture

    rng = np.random.default_rng(0)
    N, D, K = args.rows, 8, 8
    lam = rng.uniform(0.5, 12.0, (K, D))
    X = rng.poisson(lam[rng.integers(0, K, N)]).astype(np.float64)
    w0 = np.full(K, 1.0 / K)
    r0 = X[rng.choice(N, K, replace=False)] + 0.5

    def fit(n_iter):
        pm = PoissonMixture(K, weights_init=w0, rates_init=r0, tol=0.0,
                            max_iter=n_iter)
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tol=0: never "converges"
            pm.fit(X)
        return time.perf_counter() - t

    fit(1)
    fe = float(np.median([(fit(12) - fit(2)) / 10
                          for _ in range(args.repeat)]))
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "data.npz")
        np.savez(path, X=X, w0=w0, r0=r0)
        code = POM_CODE.format(threads=numba.get_num_threads(),
                               repeat=args.repeat)
        out = subprocess.run([args.python, "-c", code, path],
                             capture_output=True, text=True)
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["(no message)"])[-1]
        print(f"pomegranate could not run under {args.python}: {last}. "
              "Install it there: python -m pip install pomegranate",
              file=sys.stderr)
        return 1
    pom, pver, tver = out.stdout.split()[-3:]
    pom = float(pom)
    print(f"Poisson mixture, {N:,} rows x {D} counts, K={K}, same start, "
          f"per iteration, medians of {args.repeat}")
    print(f"CPU: {cpu_name()}; {numba.get_num_threads()} threads each")
    print(f"pomegranate {pver} (torch {tver}): {pom * 1e3:.1f} ms")
    print(f"fastem: {fe * 1e3:.1f} ms  ({pom / fe:.1f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
