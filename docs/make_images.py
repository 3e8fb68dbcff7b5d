"""Regenerate the README pictures in docs/images/ (``python docs/make_images.py``).

Real data: Old Faithful (``tests/data/faithful.csv``, 272 eruptions) and
iris (``sklearn.datasets.load_iris``, shipped with scikit-learn), plus a
2-state Gaussian HMM on a generated series.  Needs matplotlib, pandas and
scikit-learn.
"""

import os
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import fastem.plot as fplot  # noqa: E402
from fastem import GaussianHMM, GaussianMixture, select  # noqa: E402

OUT = os.path.join(HERE, "images")
DPI = 90


def save(fig, name, dpi=DPI):
    """Write ``fig`` to docs/images/``name`` and close it.

    Parameters
    ----------
    fig : matplotlib Figure
    name : str
    dpi : int
    """
    path = os.path.join(OUT, name)
    fig.savefig(path, dpi=dpi, pil_kwargs={"optimize": True})
    plt.close(fig)
    print(f"{path}: {os.path.getsize(path) / 1024:.0f} KB")


def faithful():
    """Return Old Faithful as a DataFrame (eruptions, waiting).

    Returns
    -------
    pandas.DataFrame
    """
    path = os.path.join(os.path.dirname(HERE), "tests", "data", "faithful.csv")
    return pd.read_csv(path, comment="#")


def iris():
    """Return the iris measurements as a DataFrame (four features).

    Returns
    -------
    pandas.DataFrame
    """
    from sklearn.datasets import load_iris

    df = load_iris(as_frame=True).data
    df.columns = [c.replace(" (cm)", "") for c in df.columns]
    return df


def hmm_series(n=600, seed=0):
    """Return a 2-state series: calm and volatile regimes.

    Parameters
    ----------
    n : int
    seed : int

    Returns
    -------
    pandas.DataFrame
        One column, ``value``.
    """
    rng = np.random.default_rng(seed)
    trans = np.array([[0.97, 0.03], [0.05, 0.95]])
    means, sds = np.array([0.0, 3.0]), np.array([0.6, 1.2])
    z = np.empty(n, dtype=int)
    z[0] = 0
    for t in range(1, n):
        z[t] = rng.choice(2, p=trans[z[t - 1]])
    return pd.DataFrame({"value": rng.normal(means[z], sds[z])})


def main():
    """Draw every picture."""
    os.makedirs(OUT, exist_ok=True)
    of = faithful()
    gm = GaussianMixture(2, random_state=0).fit(of)
    save(fplot.density(gm, of), "faithful_density.png")
    save(fplot.classification(gm, of), "faithful_classification.png")
    save(fplot.uncertainty(gm, of), "faithful_uncertainty.png")
    res = select(of, range(1, 7), random_state=0)
    save(fplot.criterion(res), "faithful_bic.png")

    ir = iris()
    res = select(ir, range(1, 7), random_state=0)
    gi = GaussianMixture(3, random_state=0).fit(ir)
    save(fplot.criterion(res), "iris_bic.png")
    save(fplot.pairs(gi, ir), "iris_pairs.png", dpi=75)
    save(fplot.uncertainty(gi, ir, features=("petal length", "petal width")),
         "iris_uncertainty.png")
    save(fplot.density(gi, ir, feature="petal length"),
         "iris_density_petal_length.png")

    series = hmm_series()
    hmm = GaussianHMM(2, random_state=0).fit(series)
    save(fplot.states(hmm, series), "hmm_states.png")
    save(fplot.density(hmm, series), "hmm_density.png")


if __name__ == "__main__":
    main()
