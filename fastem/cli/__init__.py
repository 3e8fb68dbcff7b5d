"""The ``fastem`` command line.

``fastem demo|compile|fit|select|predict|info`` and ``fastem hmm
fit|predict|select``:

* :mod:`~fastem.cli.app` -- the parser, the mixture commands and ``main``;
* :mod:`~fastem.cli.hmm` -- the ``hmm`` command group;
* :mod:`~fastem.cli.readers` -- CSV / TSV / ``.npy`` / Parquet readers with
  clear errors.
"""

from fastem.cli.app import COMMANDS, Progress, build_parser, command, main

__all__ = ["COMMANDS", "Progress", "build_parser", "command", "main"]
