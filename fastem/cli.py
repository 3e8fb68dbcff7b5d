"""The ``fastem`` command line.

Subcommands register themselves in :data:`COMMANDS` with :func:`command`;
adding one is a function plus a decorator.
"""

import argparse
import sys
from time import perf_counter

COMMANDS = {}


def command(name, help):
    """Register ``func(args)`` as subcommand ``name``.

    ``func.configure(parser)``, if set, adds the subcommand's arguments.
    """

    def deco(func):
        COMMANDS[name] = (func, help)
        return func

    return deco


def demo_data(random_state=0):
    """Generate the classic example.

    4,000 points from N(20, 5) and 8,000 from N(40, 5), shuffled.

    Parameters
    ----------
    random_state : int
        Seed.

    Returns
    -------
    ndarray of shape (12000, 1)
    """
    import numpy as np

    rng = np.random.default_rng(random_state)
    x = np.concatenate([rng.normal(20.0, 5.0, 4000), rng.normal(40.0, 5.0, 8000)])
    rng.shuffle(x)
    return x.reshape(-1, 1)


def _configure_demo(p):
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


@command("demo", "fit a 2-component mixture to the classic 20/40 example")
def run_demo(args):
    """Run ``fastem demo``."""
    import numpy as np

    from .mixture import GaussianMixture

    X = demo_data(args.seed)
    print("fastem demo: 4,000 points from N(20, 5) and 8,000 from N(40, 5)")
    gm = GaussianMixture(n_components=2, random_state=args.seed)
    t0 = perf_counter()
    gm.fit(X)
    t = perf_counter() - t0
    order = np.argsort(gm.means_[:, 0])
    print(f"{'component':>10} {'weight':>8} {'mean':>9} {'std':>8}")
    for i, k in enumerate(order):
        print(f"{i:>10d} {gm.weights_[k]:8.4f} {gm.means_[k, 0]:9.4f} "
              f"{np.sqrt(gm.covariances_[k, 0, 0]):8.4f}")
    print("truth: weights 0.3333/0.6667, means 20/40, std 5/5")
    print(f"iterations: {gm.n_iter_} (converged: {gm.converged_})")
    print(f"final log-likelihood: {gm.lower_bound_ * X.shape[0]:.4f} "
          f"(mean per point {gm.lower_bound_:.6f})")
    print(f"fit time: {t:.4f} s (includes loading compiled kernels on the "
          "first run in a process)")
    return 0


run_demo.configure = _configure_demo


def build_parser():
    """Return the argument parser with every registered subcommand."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="fastem", description="Numba-compiled EM for Gaussian mixtures.")
    parser.add_argument("--version", action="version",
                        version=f"fastem {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (func, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        configure = getattr(func, "configure", None)
        if configure is not None:
            configure(p)
    return parser


def main(argv=None):
    """Entry point of the ``fastem`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return COMMANDS[args.command][0](args)


if __name__ == "__main__":
    sys.exit(main())
