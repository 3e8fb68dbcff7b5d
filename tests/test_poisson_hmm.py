"""PoissonHMM: the HMM emission plug-in (fastem/models/poisson_hmm.py).

Parity with hmmlearn's PoissonHMM from the same start (every iteration's
log-likelihood and the final parameters to 1e-8 relative, the same Viterbi
paths), the fit paths against each other, save/load, errors; the lattice
kernels (log-emissions given as an (N, K) matrix) against the fused Gaussian
path; and hmmlearn's own test_poisson_hmm.py run against fastem.
"""


import numpy as np
import pytest
from conftest import run_hmmlearn_test_file

from fastem import GaussianHMM, PoissonHMM
from fastem.families.base import SumStats
from fastem.kernels.hmm import LATTICE
from fastem.models.hmm_base import (
    HMMStats,
    _Model,
    _Workspace,
    check_lengths,
    lattice_sequence_stats,
    run_e_step,
)

RTOL = 1e-8     # the brief's bound; the differences measured are ~1e-13
K, D = 3, 2
TRUE_LAMBDAS = np.array([[1.0, 5.0], [8.0, 2.0], [20.0, 15.0]])
TRUE_TRANSMAT = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])
TRUE_STARTPROB = np.array([0.5, 0.3, 0.2])
START = dict(startprob_=np.array([0.4, 0.3, 0.3]),
             transmat_=np.full((K, K), 1.0 / K),
             lambdas_=np.array([[2.0, 3.0], [6.0, 6.0], [15.0, 10.0]]))
LENGTHS = [500, 700, 300]
SHORT = [30] * 50          # many short sequences: the grouped kernel path


def _set(model, params=START):
    for name, value in params.items():
        setattr(model, name, np.array(value, dtype=np.float64))
    return model


def _true_model(cls):
    return _set(cls(K, init_params=""), dict(
        startprob_=TRUE_STARTPROB, transmat_=TRUE_TRANSMAT,
        lambdas_=TRUE_LAMBDAS))


@pytest.fixture(scope="module")
def hmmlearn_hmm():
    return pytest.importorskip("hmmlearn.hmm")


@pytest.fixture(scope="module")
def data():
    X, z = _true_model(PoissonHMM).sample(1500, random_state=1)
    return X.astype(np.float64), z


def _pair(hmmlearn_hmm, **kw):
    kw = dict(init_params="", n_iter=8, tol=-np.inf, **kw)
    return (_set(hmmlearn_hmm.PoissonHMM(K, **kw)),
            _set(PoissonHMM(K, **kw)))


def _close(a, b, rtol=RTOL):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=0)


@pytest.mark.parametrize("lengths", [None, LENGTHS, SHORT])
@pytest.mark.parametrize("priors", [False, True])
def test_fit_parity_with_hmmlearn(hmmlearn_hmm, data, lengths, priors):
    X = data[0]
    kw = {}
    if priors:
        kw = dict(startprob_prior=2.0, transmat_prior=1.5,
                  lambdas_prior=np.array([[0.5], [1.0], [2.0]]),
                  lambdas_weight=3.0)
    h, f = _pair(hmmlearn_hmm, **kw)
    h.fit(X, lengths)
    f.fit(X, lengths)
    _close(np.array(f.monitor_.history), np.array(h.monitor_.history))
    for name in ("startprob_", "transmat_", "lambdas_"):
        np.testing.assert_allclose(getattr(f, name), getattr(h, name),
                                   rtol=RTOL, atol=1e-14)
    assert np.array_equal(f.predict(X, lengths), h.predict(X, lengths))
    lp_f, path_f = f.decode(X, lengths)
    lp_h, path_h = h.decode(X, lengths)
    _close(lp_f, lp_h)
    assert np.array_equal(path_f, path_h)
    ll_f, post_f = f.score_samples(X, lengths)
    ll_h, post_h = h.score_samples(X, lengths)
    _close(ll_f, ll_h)
    np.testing.assert_allclose(post_f, post_h, rtol=0, atol=1e-10)
    map_f = f.decode(X, lengths, algorithm="map")
    map_h = h.decode(X, lengths, algorithm="map")
    _close(map_f[0], map_h[0])
    assert np.array_equal(map_f[1], map_h[1])


@pytest.mark.parametrize("params", ["l", "st", "tl"])
def test_frozen_parameters_match_hmmlearn(hmmlearn_hmm, data, params):
    X = data[0]
    h, f = _pair(hmmlearn_hmm, params=params)
    h.fit(X, LENGTHS)
    f.fit(X, LENGTHS)
    _close(np.array(f.monitor_.history), np.array(h.monitor_.history))
    np.testing.assert_allclose(f.lambdas_, h.lambdas_, rtol=RTOL, atol=1e-14)
    np.testing.assert_allclose(f.transmat_, h.transmat_, rtol=RTOL,
                               atol=1e-14)


def test_default_initialization_matches_hmmlearn(hmmlearn_hmm, data):
    """Integer seed: the same Dirichlet draws for 's' and 't' and gamma
    draws (method of moments) for 'l', so the whole fit agrees."""
    X = data[0]
    h = hmmlearn_hmm.PoissonHMM(K, random_state=3, n_iter=5, tol=-np.inf)
    f = PoissonHMM(K, random_state=3, n_iter=5, tol=-np.inf)
    h.fit(X, LENGTHS)
    f.fit(X, LENGTHS)
    _close(np.array(f.monitor_.history), np.array(h.monitor_.history))
    _close(f.lambdas_, h.lambdas_)


def test_sample_matches_hmmlearn(hmmlearn_hmm):
    h = _true_model(hmmlearn_hmm.PoissonHMM)
    f = _true_model(PoissonHMM)
    Xh, zh = h.sample(200, random_state=7)
    Xf, zf = f.sample(200, random_state=7)
    assert np.array_equal(Xh, Xf) and np.array_equal(zh, zf)
    Xh, zh = h.sample(50, random_state=8, currstate=2)
    Xf, zf = f.sample(50, random_state=8, currstate=2)
    assert np.array_equal(Xh, Xf) and np.array_equal(zh, zf)


def test_n_parameters_and_criteria_match_hmmlearn(hmmlearn_hmm, data):
    X = data[0]
    h = _true_model(hmmlearn_hmm.PoissonHMM)
    f = _true_model(PoissonHMM)
    h.n_features = D
    assert f.n_parameters() == h._get_n_fit_scalars_per_param()["s"] + \
        h._get_n_fit_scalars_per_param()["t"] + \
        h._get_n_fit_scalars_per_param()["l"] == K - 1 + K * (K - 1) + K * D
    _close(f.bic(X), h.bic(X))
    _close(f.aic(X), h.aic(X))


# ------------------------------------------------------------ fit paths
def _fit(lengths, X, how, **kw):
    m = _set(PoissonHMM(K, init_params="", tol=-np.inf, **kw))
    if how == "fit":
        return m.fit(X, lengths)
    starts = check_lengths(lengths, len(X))
    parts = [(X[a:b], [b - a]) for a, b in zip(starts[:-1], starts[1:])]
    return m.fit_chunks(lambda: iter(parts))


@pytest.mark.parametrize("lengths", [LENGTHS, SHORT])
def test_fit_chunks_equals_fit(data, lengths):
    X = data[0]
    a = _fit(lengths, X, "fit", n_iter=6)
    b = _fit(lengths, X, "chunks", n_iter=6)
    np.testing.assert_allclose(b.monitor_.history, a.monitor_.history,
                               rtol=1e-12)
    np.testing.assert_allclose(b.lambdas_, a.lambdas_, rtol=1e-12)
    np.testing.assert_allclose(b.transmat_, a.transmat_, rtol=1e-12)


def test_partial_fit_on_all_data_is_one_em_iteration(data):
    X = data[0]
    a = _fit(LENGTHS, X, "fit", n_iter=1)
    b = _set(PoissonHMM(K, init_params="")).partial_fit(X, LENGTHS)
    for name in ("startprob_", "transmat_", "lambdas_"):
        np.testing.assert_allclose(getattr(b, name), getattr(a, name),
                                   rtol=1e-12)
    np.testing.assert_allclose(b.batch_log_likelihood_,
                               a.monitor_.history[0], rtol=1e-12)
    # later batches continue from the fitted model
    b.partial_fit(X[:700], [700])
    assert b.n_batches_ == 2


def test_dask_fit_equals_fit(data):
    da = pytest.importorskip("dask.array")
    X = data[0]
    a = _fit(LENGTHS, X, "fit", n_iter=4)
    m = _set(PoissonHMM(K, init_params="", tol=-np.inf, n_iter=4))
    m.fit(da.from_array(X, chunks=(tuple(LENGTHS), D)), LENGTHS)
    np.testing.assert_allclose(m.monitor_.history, a.monitor_.history,
                               rtol=1e-12)
    np.testing.assert_allclose(m.lambdas_, a.lambdas_, rtol=1e-12)


def test_statistics_add_across_sequences(data):
    """Split, then merge, equals whole (the HMMStats of a Poisson emission)."""
    X = data[0]
    m = _set(PoissonHMM(K, init_params=""))
    model = m._model(D)
    fn = m._stats_function()
    whole = fn(model, True, True, X, check_lengths(LENGTHS, len(X)))
    a = fn(model, True, True, X[:500], check_lengths([500], 500))
    b = fn(model, True, True, X[500:], check_lengths(LENGTHS[1:], 1000))
    both = a + b
    assert isinstance(whole, HMMStats) and isinstance(whole.stats, SumStats)
    np.testing.assert_allclose(both.loglik, whole.loglik, rtol=1e-13)
    np.testing.assert_allclose(both.xi, whole.xi, rtol=1e-12)
    np.testing.assert_allclose(both.stats["obs"], whole.stats["obs"],
                               rtol=1e-12)
    assert both.n_sequences == 3 and both.n_rows == len(X)


def test_thread_count_does_not_change_results(data):
    X = data[0]
    a = _fit(LENGTHS, X, "fit", n_iter=3, n_threads=1)
    b = _fit(LENGTHS, X, "fit", n_iter=3, n_threads=2)
    assert a.monitor_.history == b.monitor_.history
    assert np.array_equal(a.lambdas_, b.lambdas_)


# --------------------------------------------------- the lattice kernels
@pytest.mark.parametrize("lengths", [[600], [300, 300], [20] * 30])
def test_lattice_kernels_equal_the_fused_gaussian_path(lengths):
    """The LATTICE copies of the HMM kernels, fed the Gaussian
    log-densities, give the fused Gaussian E-step's log-likelihood,
    posteriors and transition counts."""
    rng = np.random.default_rng(0)
    N = sum(lengths)
    X = rng.normal(size=(N, 2)) + np.repeat(rng.normal(0, 3, (N // 20, 2)),
                                            20, axis=0)[:N]
    g = GaussianHMM(3, covariance_type="diag", init_params="")
    g.startprob_ = np.array([0.5, 0.25, 0.25])
    g.transmat_ = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1],
                            [0.2, 0.2, 0.6]])
    g.means_ = np.array([[0.0, 0.0], [3.0, 3.0], [-3.0, 1.0]])
    g.covars_ = np.array([[1.0, 2.0], [1.5, 1.0], [3.0, 3.0]])
    starts = check_lengths(lengths, N)
    model = g._model(2)
    post_g = np.empty((N, 3))
    es = g._e_step(X, starts, model, _Workspace(N, 3, starts), xi=True,
                   out_gamma=post_g)
    logB = g._emission_logb(model, X)
    lat = _Model(LATTICE, model.startprob, model.transmat,
                 model.log_startprob, model.log_transmat, np.zeros((3, 1)),
                 np.zeros((3, 1)), np.zeros(3))
    post_l = np.empty((N, 3))
    ll, _, _, _, _, xi, start = run_e_step(
        logB, starts, lat, _Workspace(N, 3, starts), xi=True,
        out_gamma=post_l, s_rows=1)
    np.testing.assert_allclose(ll, es.loglik, rtol=1e-12)
    np.testing.assert_allclose(post_l, post_g, rtol=0, atol=1e-12)
    np.testing.assert_allclose(xi, es.xi, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(start, es.start, rtol=1e-12, atol=1e-14)


def test_lattice_sequence_stats_is_picklable():
    import pickle

    fn = PoissonHMM(K)._stats_function()
    assert pickle.loads(pickle.dumps(fn)).func is lattice_sequence_stats


# ---------------------------------------------------------- save / load
def test_save_load_round_trip(tmp_path, data):
    X = data[0]
    m = _fit(LENGTHS, X, "fit", n_iter=3)
    m.feature_names_in_ = np.array(["a", "b"], dtype=object)
    path = m.save(tmp_path / "p.json", metadata={"run": 1})
    m2 = PoissonHMM.load(path)
    for name in ("startprob_", "transmat_", "lambdas_"):
        assert np.array_equal(getattr(m2, name), getattr(m, name))
    assert m2.get_params() == m.get_params()
    assert list(m2.monitor_.history) == list(m.monitor_.history)
    assert m2.score(X, LENGTHS) == m.score(X, LENGTHS)
    assert np.array_equal(m2.predict(X, LENGTHS), m.predict(X, LENGTHS))
    assert list(m2.feature_names_in_) == ["a", "b"]
    st = m.export_state()
    assert set(st) >= {"startprob", "transmat", "lambdas"}
    PoissonHMM(K).import_state(st)


def test_load_refuses_damaged_files(tmp_path, data):
    import json

    m = _fit(LENGTHS, data[0], "fit", n_iter=1)
    path = tmp_path / "p.json"
    m.save(path)
    d = json.loads(path.read_text())
    d["fitted"]["lambdas"][0][0] = -1.0
    path.write_text(json.dumps(d))
    with pytest.raises(ValueError, match="lambdas: expected finite "
                       "non-negative rates, found -1.0"):
        PoissonHMM.load(path)
    with pytest.raises(ValueError, match="expected \"format\" "
                       "'fastem.GaussianHMM'"):
        _load_as_gaussian(path)


def _load_as_gaussian(path):
    """The reader of non-Gaussian HMM files, asked for the wrong class."""
    from fastem.models.hmm_base import _load_hmm

    return _load_hmm(GaussianHMM, path)


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize("bad, match", [
    (-1.0, r"X must hold non-negative integers, but it has 1 negative "
           r"value\(s\) \(the first in row 3"),
    (2.5, r"1 non-integer value\(s\) \(the first in row 3"),
])
def test_bad_counts_are_refused(data, bad, match):
    X = data[0][:100].copy()
    X[3, 1] = bad
    for call in (lambda: PoissonHMM(K).fit(X),
                 lambda: _true_model(PoissonHMM).score(X),
                 lambda: _true_model(PoissonHMM).predict(X)):
        with pytest.raises(ValueError, match=match):
            call()
    with pytest.raises(ValueError, match=r"row 53"):
        PoissonHMM(K).fit_chunks(lambda: iter([data[0][:50], X]))


def test_nan_is_refused(data):
    X = data[0][:20].copy()
    X[4, 0] = np.nan
    with pytest.raises(ValueError, match="PoissonHMM does not accept "
                       "missing values"):
        PoissonHMM(K).fit(X)


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match=r"contains \['m'\]; use only 's' "
                       r"\(startprob\), 't' \(transmat\) and 'l' "
                       r"\(lambdas\)"):
        PoissonHMM(K, params="stm").fit(np.ones((10, 1)))
    m = _true_model(PoissonHMM)
    m.lambdas_ = np.ones((2, D))
    with pytest.raises(ValueError, match=r"lambdas_ must have shape "
                       r"\(n_components, n_features\) = \(3, 2\), got "
                       r"\(2, 2\)"):
        m.score(np.ones((5, D)))
    m.lambdas_ = -TRUE_LAMBDAS
    with pytest.raises(ValueError, match="lambdas_ must be finite and "
                       "non-negative"):
        m.predict(np.ones((5, D)))
    with pytest.raises(ValueError, match="lambdas_weight must be finite "
                       "and >= 0"):
        PoissonHMM(K, lambdas_weight=-1.0).fit(np.ones((10, D)))
    with pytest.raises(ValueError, match="broadcastable to "
                       r"\(n_components, n_features\) = \(3, 2\)"):
        PoissonHMM(K, lambdas_prior=np.ones(4)).check_params(n_features=2)


def test_constant_data_cannot_initialize_lambdas():
    with pytest.raises(ValueError, match="positive mean and variance.*"
                       "remove 'l' from init_params"):
        PoissonHMM(2).fit(np.full((10, 2), 3.0))


def test_empty_state_keeps_its_rates_with_a_warning():
    X = np.zeros((50, 1))
    X[::2] = 1
    m = PoissonHMM(2, init_params="", n_iter=1)
    m.startprob_, m.transmat_ = np.array([1.0, 0.0]), np.eye(2)
    m.lambdas_ = np.array([[0.5], [7.0]])
    with pytest.warns(RuntimeWarning, match="State.*1.*keeping their "
                      "previous lambdas") as record:
        m.fit(X)
    assert {w.filename for w in record} == {__file__}
    assert m.lambdas_[1, 0] == 7.0
    np.testing.assert_allclose(m.lambdas_[0, 0], 0.5)


# ------------------------------------------------- hmmlearn's own tests
def test_hmmlearn_poisson_hmm_test_file_passes(tmp_path, hmmlearn_hmm):
    run_hmmlearn_test_file(tmp_path, "test_poisson_hmm.py")
