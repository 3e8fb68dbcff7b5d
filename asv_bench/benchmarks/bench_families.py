"""asv benchmarks of the models beyond GaussianMixture, against their peers.

* ``BayesianGaussianMixture`` against scikit-learn's (issue 16's two
  workloads at a tenth of their sizes);
* ``PoissonMixture`` against a vectorized NumPy EM of the same model
  (issue 17's workload at a tenth: 100,000 rows, D = 8, K = 8);
* ``PoissonHMM`` against hmmlearn's (K = 4, D = 3, 200,000 steps as one
  sequence and as 200 of 1,000);
* ``GMMHMM`` against hmmlearn's (K = 4, n_mix = 2, D = 4, diag and full,
  the same two layouts);
* ``CategoricalMixture`` alone (no peer in Python: R's poLCA).

Every fit does a fixed number of iterations from the same start (``tol=0``
or ``-inf``); the ``timer`` divides by it, so the figures are seconds per
iteration.  Skipped (NotImplementedError) when the fastem being benchmarked
has no such model, or the peer is not installed.
"""

import warnings

import numpy as np

from .common import iteration_timer

ITERS = 10
HMM_ITERS = 5


def _fastem(name):
    import fastem

    try:
        return getattr(fastem, name)
    except AttributeError:
        raise NotImplementedError(f"this fastem has no {name}") from None


def _quiet_fit(est, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(*args, **kw)


class TimeBayesianVsSklearn:
    """Seconds per variational iteration, fastem vs scikit-learn."""

    params = (["1d-K2", "8d-K8-full"], ["fastem", "sklearn"])
    param_names = ["workload", "library"]
    timer = staticmethod(iteration_timer(ITERS))
    number = 1
    repeat = (2, 5, 20.0)
    warmup_time = 0
    timeout = 600

    def setup(self, workload, library):
        n, d, k = {"1d-K2": (200_000, 1, 2),
                   "8d-K8-full": (20_000, 8, 8)}[workload]
        rng = np.random.default_rng(0)
        self.X = (rng.standard_normal((n, d))
                  + 4.0 * rng.integers(0, k, (n, 1)))
        if library == "sklearn":
            try:
                from sklearn.mixture import BayesianGaussianMixture as cls
            except ImportError:
                raise NotImplementedError("scikit-learn is not installed") \
                    from None
        else:
            cls = _fastem("BayesianGaussianMixture")
            _quiet_fit(cls(k, max_iter=1), self.X[:2_000])

        def make(it):
            return cls(n_components=k, init_params="random_from_data",
                       random_state=0, tol=0.0, max_iter=it)

        self.est = make(ITERS)

    def time_fit(self, workload, library):
        _quiet_fit(self.est, self.X)


def _numpy_poisson_em(X, lf, w, rates, n_iter):
    for _ in range(n_iter):
        lp = (np.log(w) - rates.sum(axis=1) + X @ np.log(rates).T
              - lf[:, None])
        m = lp.max(axis=1, keepdims=True)
        lse = m + np.log(np.exp(lp - m).sum(axis=1, keepdims=True))
        R = np.exp(lp - lse)
        nk = R.sum(axis=0)
        w = nk / nk.sum()
        rates = (R.T @ X) / nk[:, None] + 1e-6
    return w, rates


class TimePoissonVsNumpy:
    """Seconds per EM iteration of a Poisson mixture (100,000 x 8, K=8)."""

    params = (["fastem", "numpy"],)
    param_names = ["library"]
    timer = staticmethod(iteration_timer(ITERS))
    number = 1
    repeat = (2, 5, 20.0)
    warmup_time = 0
    timeout = 600

    def setup(self, library):
        rng = np.random.default_rng(0)
        lam = rng.uniform(0.5, 12.0, (8, 8))
        self.X = rng.poisson(lam[rng.integers(0, 8, 100_000)]).astype(float)
        self.w0 = np.full(8, 1.0 / 8)
        self.r0 = self.X[rng.choice(100_000, 8, replace=False)] + 0.5
        if library == "numpy":
            top = int(self.X.max()) + 1
            table = np.concatenate([[0.0],
                                    np.cumsum(np.log(np.arange(1, top)))])
            self.lf = table[self.X.astype(np.int64)].sum(axis=1)
        else:
            cls = _fastem("PoissonMixture")
            _quiet_fit(cls(8, max_iter=1), self.X[:2_000])
            self.est = cls(8, weights_init=self.w0, rates_init=self.r0,
                           tol=0.0, max_iter=ITERS)

    def time_fit(self, library):
        if library == "numpy":
            _numpy_poisson_em(self.X, self.lf, self.w0, self.r0, ITERS)
        else:
            _quiet_fit(self.est, self.X)


class TimePoissonHMMVsHmmlearn:
    """Seconds per Baum-Welch iteration of a Poisson HMM (K=4, D=3)."""

    params = (["1x200000", "200x1000"], ["fastem", "hmmlearn"])
    param_names = ["layout", "library"]
    timer = staticmethod(iteration_timer(HMM_ITERS))
    number = 1
    repeat = (2, 5, 20.0)
    warmup_time = 0
    timeout = 900

    def setup(self, layout, library):
        cls = _fastem("PoissonHMM")
        lams = np.array([[1.0, 4.0, 9.0], [6.0, 1.0, 3.0], [3.0, 8.0, 1.0],
                         [10.0, 5.0, 6.0]])
        trans = np.full((4, 4), 0.1 / 3) + np.eye(4) * (0.9 - 0.1 / 3)
        start = np.full(4, 0.25)
        gen = cls(4, init_params="")
        gen.startprob_, gen.transmat_, gen.lambdas_ = start, trans, lams
        self.X, _ = gen.sample(200_000, random_state=0)
        self.lengths = None if layout == "1x200000" else [1_000] * 200
        if library == "hmmlearn":
            try:
                from hmmlearn.hmm import PoissonHMM as cls
            except ImportError:
                raise NotImplementedError("hmmlearn is not installed") \
                    from None
        else:
            _quiet_fit(cls(4, n_iter=1), self.X[:2_000])
        self.est = cls(4, n_iter=HMM_ITERS, tol=-np.inf, init_params="")
        self.est.startprob_, self.est.transmat_ = start.copy(), trans.copy()
        self.est.lambdas_ = lams * 1.2

    def time_fit(self, layout, library):
        _quiet_fit(self.est, self.X, self.lengths)


class TimeGMMHMMVsHmmlearn:
    """Seconds per Baum-Welch iteration of a Gaussian-mixture HMM (K=4,
    n_mix=2, D=4)."""

    params = (["1x200000", "200x1000"], ["diag", "full"],
              ["fastem", "hmmlearn"])
    param_names = ["layout", "covariance_type", "library"]
    timer = staticmethod(iteration_timer(HMM_ITERS))
    number = 1
    repeat = (2, 5, 20.0)
    warmup_time = 0
    timeout = 900

    def setup(self, layout, covariance_type, library):
        cls = _fastem("GMMHMM")
        K, M, D = 4, 2, 4
        rng = np.random.RandomState(0)
        trans = np.full((K, K), 0.1 / 3) + np.eye(K) * (0.9 - 0.1 / 3)
        start = np.full(K, 0.25)
        weights = np.full((K, M), 0.5)
        means = rng.normal(0.0, 3.0, (K, M, D))
        var = rng.uniform(0.5, 2.0, (K, M, D))
        gen = cls(K, n_mix=M, init_params="")
        gen.startprob_, gen.transmat_ = start, trans
        gen.weights_, gen.means_, gen.covars_ = weights, means, var
        self.X, _ = gen.sample(200_000, random_state=0)
        self.lengths = None if layout == "1x200000" else [1_000] * 200
        cv = var * 1.2
        if covariance_type == "full":
            cv = cv[..., None] * np.eye(D)
        self.start = dict(startprob_=start, transmat_=trans,
                          weights_=weights, means_=means * 1.1, covars_=cv)
        if library == "hmmlearn":
            try:
                from hmmlearn.hmm import GMMHMM as cls
            except ImportError:
                raise NotImplementedError("hmmlearn is not installed") \
                    from None
        else:
            _quiet_fit(cls(K, n_mix=M, covariance_type=covariance_type,
                           n_iter=1), self.X[:2_000])
        self.est = cls(K, n_mix=M, covariance_type=covariance_type,
                       n_iter=HMM_ITERS, tol=-np.inf, init_params="")

    def time_fit(self, layout, covariance_type, library):
        for name, value in self.start.items():
            setattr(self.est, name, value.copy())
        _quiet_fit(self.est, self.X, self.lengths)


class TimeCategoricalMixture:
    """Seconds per EM iteration of a latent class model (100,000 x 8, C=4,
    K=4), with and without 10% missing entries (no Python peer)."""

    params = (["complete", "missing"],)
    param_names = ["data"]
    timer = staticmethod(iteration_timer(ITERS))
    number = 1
    repeat = (2, 5, 20.0)
    warmup_time = 0
    timeout = 600

    def setup(self, data):
        cls = _fastem("CategoricalMixture")
        rng = np.random.default_rng(0)
        self.X = rng.integers(0, 4, (100_000, 8)).astype(float)
        if data == "missing":
            self.X[rng.random(self.X.shape) < 0.1] = np.nan
        _quiet_fit(cls(4, max_iter=1, n_categories=4), self.X[:2_000])
        self.est = cls(4, n_categories=4, init_params="random",
                       random_state=0, tol=0.0, max_iter=ITERS)

    def time_fit(self, data):
        _quiet_fit(self.est, self.X)
