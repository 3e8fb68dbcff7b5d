"""MultinomialHMM: an HMM emission module on BaseHMM (models/multinomial_hmm.py).

Parity with hmmlearn's MultinomialHMM from the same start (every iteration's
log-likelihood and the final parameters to 1e-8 relative, the same Viterbi
paths, the same seeded initialization and samples), the fit paths against
each other, save/load, errors, and hmmlearn's own test_multinomial_hmm.py
run against fastem.
"""


import numpy as np
import pytest
from conftest import run_hmmlearn_test_file

import fastem
from fastem import MultinomialHMM
from fastem.models.hmm_base import check_lengths

RTOL = 1e-8     # the bound; the differences measured are ~1e-13
K, M, NT = 3, 5, 6
TRUE_E = np.array([[0.6, 0.2, 0.1, 0.05, 0.05], [0.05, 0.1, 0.7, 0.1, 0.05],
                   [0.1, 0.1, 0.1, 0.2, 0.5]])
TRUE_T = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])
TRUE_S = np.array([0.5, 0.3, 0.2])
START = dict(startprob_=np.array([0.4, 0.3, 0.3]),
             transmat_=np.full((K, K), 1.0 / K),
             emissionprob_=np.array([[0.3, 0.3, 0.2, 0.1, 0.1],
                                     [0.1, 0.2, 0.4, 0.2, 0.1],
                                     [0.2, 0.1, 0.2, 0.2, 0.3]]))
LENGTHS = [500, 700, 300]
SHORT = [30] * 50          # many short sequences: the grouped kernel path


def _set(model, params=START):
    for name, value in params.items():
        setattr(model, name, np.array(value, dtype=np.float64))
    return model


@pytest.fixture(scope="module")
def hmmlearn_hmm():
    return pytest.importorskip("hmmlearn.hmm")


@pytest.fixture(scope="module")
def data():
    gen = _set(MultinomialHMM(K, n_trials=NT, init_params=""), dict(
        startprob_=TRUE_S, transmat_=TRUE_T, emissionprob_=TRUE_E))
    X, z = gen.sample(1500, random_state=1)
    return X.astype(np.int64), z


def _pair(hmmlearn_hmm, **kw):
    kw = dict(init_params="", n_iter=8, tol=-np.inf, n_trials=NT, **kw)
    return (_set(hmmlearn_hmm.MultinomialHMM(K, **kw)),
            _set(MultinomialHMM(K, **kw)))


def _close(a, b, rtol=RTOL):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-14)


@pytest.mark.parametrize("lengths", [None, LENGTHS, SHORT])
@pytest.mark.parametrize("prior", [1.0, 1.5])
def test_fit_parity_with_hmmlearn(hmmlearn_hmm, data, lengths, prior):
    X = data[0]
    h, f = _pair(hmmlearn_hmm, transmat_prior=prior, startprob_prior=prior)
    h.fit(X, lengths)
    f.fit(X, lengths)
    _close(f.monitor_.history, h.monitor_.history)
    for name in ("startprob_", "transmat_", "emissionprob_"):
        _close(getattr(f, name), getattr(h, name))
    assert np.array_equal(f.predict(X, lengths), h.predict(X, lengths))
    assert np.array_equal(f.decode(X, lengths, algorithm="map")[1],
                          h.decode(X, lengths, algorithm="map")[1])
    _close(f.score(X, lengths), h.score(X, lengths))


def test_seeded_initialization_and_sample_match_hmmlearn(hmmlearn_hmm, data):
    X = data[0]
    h = hmmlearn_hmm.MultinomialHMM(K, n_trials=NT, random_state=3,
                                    n_iter=5).fit(X, LENGTHS)
    f = MultinomialHMM(K, n_trials=NT, random_state=3, n_iter=5).fit(
        X, LENGTHS)
    assert f.n_features == h.n_features == M
    _close(f.emissionprob_, h.emissionprob_)
    _close(f.monitor_.history, h.monitor_.history)
    Xf, zf = f.sample(50, random_state=7)
    Xh, zh = h.sample(50, random_state=7)
    assert np.array_equal(Xf, Xh)
    assert np.array_equal(zf, zh)
    assert f.n_parameters() == sum(h._get_n_fit_scalars_per_param().values())
    _close(f.bic(X, LENGTHS), h.bic(X, LENGTHS))


def _fit(lengths, X, how, **kw):
    m = _set(MultinomialHMM(K, init_params="", tol=-np.inf, n_trials=NT,
                            **kw))
    if how == "fit":
        return m.fit(X, lengths)
    starts = check_lengths(lengths, len(X))
    parts = [(X[a:b], [b - a]) for a, b in zip(starts[:-1], starts[1:])]
    return m.fit_chunks(lambda: iter(parts))


def test_fit_paths_and_threads_agree(data):
    X = data[0]
    a = _fit(LENGTHS, X, "fit", n_iter=5)
    b = _fit(LENGTHS, X, "chunks", n_iter=5)
    np.testing.assert_allclose(b.monitor_.history, a.monitor_.history,
                               rtol=1e-12)
    np.testing.assert_allclose(b.emissionprob_, a.emissionprob_, rtol=1e-12)
    c = _fit(LENGTHS, X, "fit", n_iter=5, n_threads=1)
    d = _fit(LENGTHS, X, "fit", n_iter=5, n_threads=2)
    assert c.monitor_.history == d.monitor_.history
    assert np.array_equal(c.emissionprob_, d.emissionprob_)
    one = _fit(LENGTHS, X, "fit", n_iter=1)
    online = _set(MultinomialHMM(K, init_params="", n_trials=NT)).partial_fit(
        X, LENGTHS)
    np.testing.assert_allclose(online.emissionprob_, one.emissionprob_,
                               rtol=1e-12)
    da = pytest.importorskip("dask.array")
    e = _set(MultinomialHMM(K, init_params="", tol=-np.inf, n_iter=5,
                            n_trials=NT))
    e.fit(da.from_array(X.astype(float), chunks=(tuple(LENGTHS), M)),
          LENGTHS)
    np.testing.assert_allclose(e.monitor_.history, a.monitor_.history,
                               rtol=1e-12)


def test_save_load_round_trip(tmp_path, data):
    X = data[0]
    m = _fit(LENGTHS, X, "fit", n_iter=3)
    m2 = fastem.load(m.save(tmp_path / "c.json"))
    assert type(m2) is MultinomialHMM and m2.n_features == M
    assert np.array_equal(m2.emissionprob_, m.emissionprob_)
    assert m2.score(X, LENGTHS) == m.score(X, LENGTHS)


@pytest.mark.parametrize("X, kw, match", [
    (np.array([[1, 2], [3, 0], [2, 2]]), dict(n_trials=3),
     "row 2 sums to 4, but n_trials is 3"),
    (np.array([[1.0, 2.0], [1.5, 1.5]]), {}, "row 1 is \\[1.5, 1.5\\]"),
    (np.array([[1, 2], [-1, 4]]), {}, "non-negative integers"),
])
def test_bad_counts_get_a_clear_error(X, kw, match):
    with pytest.raises(ValueError, match=match):
        MultinomialHMM(2, **kw).fit(X)


def test_hmmlearn_multinomial_hmm_test_file_passes(tmp_path, hmmlearn_hmm):
    run_hmmlearn_test_file(tmp_path, "test_multinomial_hmm.py")
