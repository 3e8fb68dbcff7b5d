#!/usr/bin/env bash
# The project's whole check, run by the README's test command (and so by CI):
#   1. ruff (lint, import order, numpydoc docstrings);
#   2. the test suite with the kernels compiled, under coverage;
#   3. the kernel tests again with NUMBA_DISABLE_JIT=1 (and, from the other
#      families' files, the tests against their NumPy references), so that
#      coverage sees inside the kernels, appended to the same data, with a
#      90% floor on the line coverage of fastem/ for both runs combined;
#   4. asv: every benchmark is well formed (asv check) and runs once
#      (asv run --quick, in this environment; the cold-cache compile
#      benchmark, ~70 s on its own, is left out).
# Before them, R's mclust is installed from Debian where it is missing and
# apt-get can (root): tests/test_mclust_parity.py and tests/test_hc.py
# compare against it, and skip, saying why, where it cannot be installed.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! Rscript -e 'library(mclust); library(jsonlite)' > /dev/null 2>&1; then
    if command -v apt-get > /dev/null && [ "$(id -u)" = 0 ]; then
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends r-cran-mclust \
                r-cran-jsonlite; } \
            > /tmp/fastem-apt-mclust.log 2>&1 \
            || echo "note: R's mclust could not be installed (see" \
                    "/tmp/fastem-apt-mclust.log); its parity tests will skip"
    else
        echo "note: R's mclust is not installed (apt-get install" \
             "r-cran-mclust r-cran-jsonlite, as root); its parity tests" \
             "will skip"
    fi
fi
rm -f .coverage
ruff check .
python -m pytest --cov=fastem --cov-report= --durations=20
NUMBA_DISABLE_JIT=1 python -m pytest -q -p no:cacheprovider \
    -W "ignore::RuntimeWarning" --cov=fastem --cov-append \
    --cov-report=term --cov-fail-under=90 \
    tests/test_kernels.py tests/test_missing.py tests/test_hmm.py \
    "tests/test_hc.py::test_kernel_matches_reference_agglomeration[0]" \
    tests/test_poisson.py::test_matches_numpy_reference_every_iteration \
    tests/test_poisson.py::test_missing_entries_match_numpy_reference_every_iteration \
    "tests/test_categorical.py::test_matches_numpy_reference_every_iteration[missing]" \
    tests/test_gmm_hmm.py::test_component_posteriors_against_numpy \
    "tests/test_gmm_hmm.py::test_fit_parity_with_hmmlearn[diag-lengths1]" \
    "tests/test_gmm_hmm.py::test_fit_parity_with_hmmlearn[full-None]"
(cd asv_bench && asv machine --yes > /dev/null && asv check --python=same \
    && asv run --quick --python=same --launch-method forkserver --show-stderr \
        -b '^(?!.*[Cc]old)')
