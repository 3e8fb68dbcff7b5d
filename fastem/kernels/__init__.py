"""numba kernels: arrays and scalars in, arrays out; no validation, no strings.

* :mod:`~fastem.kernels.gaussian` -- the fused Gaussian E-step (block
  log-densities, responsibilities, additive statistics), compiled per
  covariance layout;
* :mod:`~fastem.kernels.missing` -- the same pass with missing values
  marginalized, per missingness pattern;
* :mod:`~fastem.kernels.hmm` -- parallel forward-backward and Viterbi fed by
  a family's log-densities;
* :mod:`~fastem.kernels.kmeans` -- k-means++ seeding and Lloyd's
  iterations;
* :mod:`~fastem.kernels.fastmath` -- vectorizable exp/log and the block
  helpers they share.

Python callers validate first; see CONTRIBUTING.md for the rules a kernel
follows (fixed block split, fixed-order reduction, no exceptions).
"""
