"""CategoricalHMM: an HMM emission module on BaseHMM (models/categorical_hmm.py).

Parity with hmmlearn's CategoricalHMM from the same start (every iteration's
log-likelihood and the final parameters to 1e-8 relative, the same Viterbi
paths, the same seeded initialization and samples), the fit paths against
each other, save/load, errors, and hmmlearn's own test_categorical_hmm.py
run against fastem.
"""


import numpy as np
import pytest
from conftest import run_hmmlearn_test_file

import fastem
from fastem import CategoricalHMM
from fastem.models.hmm_base import check_lengths

RTOL = 1e-8     # the bound; the differences measured are ~1e-13
K, M = 3, 5
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
    gen = _set(CategoricalHMM(K, init_params=""), dict(
        startprob_=TRUE_S, transmat_=TRUE_T, emissionprob_=TRUE_E))
    X, z = gen.sample(1500, random_state=1)
    return X.astype(np.int64), z


def _pair(hmmlearn_hmm, **kw):
    kw = dict(init_params="", n_iter=8, tol=-np.inf, **kw)
    return (_set(hmmlearn_hmm.CategoricalHMM(K, **kw)),
            _set(CategoricalHMM(K, **kw)))


def _close(a, b, rtol=RTOL):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-14)


@pytest.mark.parametrize("lengths", [None, LENGTHS, SHORT])
@pytest.mark.parametrize("prior", [1.0, 1.5])
def test_fit_parity_with_hmmlearn(hmmlearn_hmm, data, lengths, prior):
    X = data[0]
    h, f = _pair(hmmlearn_hmm, emissionprob_prior=prior,
                 transmat_prior=prior, startprob_prior=prior)
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
    h = hmmlearn_hmm.CategoricalHMM(K, random_state=3, n_iter=5).fit(
        X, LENGTHS)
    f = CategoricalHMM(K, random_state=3, n_iter=5).fit(X, LENGTHS)
    assert f.n_features == h.n_features == M and f.n_features_in_ == 1
    _close(f.emissionprob_, h.emissionprob_)
    _close(f.monitor_.history, h.monitor_.history)
    Xf, zf = f.sample(50, random_state=7)
    Xh, zh = h.sample(50, random_state=7)
    assert np.array_equal(Xf.ravel(), Xh.ravel())
    assert np.array_equal(zf, zh)
    assert f.n_parameters() == sum(h._get_n_fit_scalars_per_param().values())
    _close(f.bic(X, LENGTHS), h.bic(X, LENGTHS))


def _fit(lengths, X, how, **kw):
    m = _set(CategoricalHMM(K, init_params="", tol=-np.inf, **kw))
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
    online = _set(CategoricalHMM(K, init_params="")).partial_fit(X, LENGTHS)
    np.testing.assert_allclose(online.emissionprob_, one.emissionprob_,
                               rtol=1e-12)
    da = pytest.importorskip("dask.array")
    e = _set(CategoricalHMM(K, init_params="", tol=-np.inf, n_iter=5))
    e.fit(da.from_array(X.astype(float), chunks=(tuple(LENGTHS), 1)),
          LENGTHS)
    np.testing.assert_allclose(e.monitor_.history, a.monitor_.history,
                               rtol=1e-12)


def test_save_load_round_trip(tmp_path, data):
    X = data[0]
    m = _fit(LENGTHS, X, "fit", n_iter=3)
    m2 = fastem.load(m.save(tmp_path / "c.json"))
    assert type(m2) is CategoricalHMM and m2.n_features == M
    assert np.array_equal(m2.emissionprob_, m.emissionprob_)
    assert m2.score(X, LENGTHS) == m.score(X, LENGTHS)


@pytest.mark.parametrize("X, kw, match", [
    (np.array([[0], [1], [7]]), dict(n_features=3),
     "n_features = 3, but row 2 holds 7.0.*at least 8"),
    (np.array([[0.0], [1.5], [2.0]]), {}, "row 1 holds 1.5"),
    (np.array([[0], [-1], [2]]), {}, "row 1 holds -1.0"),
    (np.array([[0, 1], [1, 0]]), {}, "shape \\(n_samples, 1\\)"),
])
def test_bad_symbols_get_a_clear_error(X, kw, match):
    with pytest.raises(ValueError, match=match):
        CategoricalHMM(2, **kw).fit(X)


def test_hmmlearn_categorical_hmm_test_file_passes(tmp_path, hmmlearn_hmm):
    run_hmmlearn_test_file(tmp_path, "test_categorical_hmm.py")


def test_unvisited_state_keeps_its_row_with_a_warning(data):
    X = data[0]
    m = CategoricalHMM(K, init_params="", params="e", n_iter=2, tol=-np.inf)
    _set(m, dict(START, startprob_=[1.0, 0.0, 0.0],
                 transmat_=[[0.5, 0.5, 0.0], [0.5, 0.5, 0.0],
                            [0.3, 0.3, 0.4]]))
    with pytest.warns(RuntimeWarning, match=r"State\(s\) \[2\]") as rec:
        m.fit(X)
    assert rec[0].filename == __file__  # points at the caller's fit
    np.testing.assert_array_equal(m.emissionprob_[2],
                                  START["emissionprob_"][2])
