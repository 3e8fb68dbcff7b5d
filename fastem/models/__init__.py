"""Estimators: thin classes over the core and a family.

* :mod:`~fastem.models.mixture` -- :class:`GaussianMixture`;
* :mod:`~fastem.models.hmm_base` -- :class:`BaseHMM`, everything an HMM
  emission gets for free (its docstring is the emission interface);
* :mod:`~fastem.models.hmm` -- :class:`GaussianHMM`;
* :mod:`~fastem.models.poisson_hmm` -- :class:`PoissonHMM`;
* :mod:`~fastem.models.categorical_hmm` -- :class:`CategoricalHMM`;
* :mod:`~fastem.models.multinomial_hmm` -- :class:`MultinomialHMM`;
* :mod:`~fastem.models.gmm_hmm` -- :class:`GMMHMM`;
* :mod:`~fastem.models.base` -- :class:`MixtureModel`, everything a mixture
  family gets for free;
* :mod:`~fastem.models.poisson` -- :class:`PoissonMixture`;
* :mod:`~fastem.models.categorical` -- :class:`CategoricalMixture` and
  :class:`BernoulliMixture` (latent classes; missing entries marginalized);
* :mod:`~fastem.models.bayesian` -- :class:`BayesianGaussianMixture`
  (variational).

``MODELS`` registers the models built on :class:`MixtureModel` (name ->
module), for :mod:`fastem.io` (file format ``"fastem.<name>"``) and the
command line.  A new model is one module plus one line here.  ``HMMS``
registers the HMMs built on :class:`~fastem.models.hmm_base.BaseHMM`
other than :class:`GaussianHMM` (whose file format :mod:`fastem.io`
writes itself); their files are :func:`~fastem.models.hmm_base.hmm_to_dict`
(``"format": "fastem.<name>"``).
"""

MODELS = {
    "PoissonMixture": "fastem.models.poisson",
    "BayesianGaussianMixture": "fastem.models.bayesian",
    "CategoricalMixture": "fastem.models.categorical",
    "BernoulliMixture": "fastem.models.categorical",
}

HMMS = {
    "PoissonHMM": "fastem.models.poisson_hmm",
    "CategoricalHMM": "fastem.models.categorical_hmm",
    "MultinomialHMM": "fastem.models.multinomial_hmm",
    "GMMHMM": "fastem.models.gmm_hmm",
}
