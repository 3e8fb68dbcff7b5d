"""Saving and loading GaussianHMM: exact round trips, validated files."""

import json
import os

import numpy as np
import pytest

import fastem
import fastem.io as fio
from fastem import GaussianHMM, GaussianMixture

TYPES = ("spherical", "diag", "full", "tied")
LENGTHS = [120, 80, 100]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2))
    X[60:120] += 5
    X[150:220] -= 4
    X[:, 1] += 0.5 * X[:, 0]
    return X


@pytest.fixture(scope="module")
def models(data):
    return {ct: GaussianHMM(3, covariance_type=ct, random_state=1,
                            n_iter=15).fit(data, LENGTHS) for ct in TYPES}


@pytest.mark.parametrize("ct", TYPES)
def test_round_trip_is_bit_identical(tmp_path, models, data, ct):
    m = models[ct]
    path = tmp_path / "hmm.json"
    assert m.save(path, metadata={"note": "x"}) == str(path)
    back = fastem.load(path)
    assert type(back) is GaussianHMM
    assert back.get_params() == m.get_params()
    for attr in ("startprob_", "transmat_", "means_", "covars_", "_covars_"):
        np.testing.assert_array_equal(getattr(back, attr), getattr(m, attr))
    assert back.n_features_in_ == m.n_features_in_ == 2
    np.testing.assert_array_equal(back.predict(data, LENGTHS),
                                  m.predict(data, LENGTHS))
    np.testing.assert_array_equal(back.predict_proba(data, LENGTHS),
                                  m.predict_proba(data, LENGTHS))
    assert back.score(data, LENGTHS) == m.score(data, LENGTHS)
    assert back.decode(data, LENGTHS, algorithm="map")[0] == \
        m.decode(data, LENGTHS, algorithm="map")[0]
    assert back.bic(data, LENGTHS) == m.bic(data, LENGTHS)
    assert list(back.monitor_.history) == list(m.monitor_.history)
    assert back.monitor_.iter == m.monitor_.iter
    assert back.monitor_.converged == m.monitor_.converged
    assert fio.read_metadata(path) == {"note": "x"}
    # the class method gives the same model
    again = GaussianHMM.load(path)
    np.testing.assert_array_equal(again.means_, m.means_)
    # sampling with the same seed gives the same sequence
    np.testing.assert_array_equal(back.sample(50, random_state=3)[0],
                                  m.sample(50, random_state=3)[0])


def test_file_is_versioned_json(tmp_path, models):
    path = tmp_path / "hmm.json"
    models["full"].save(path)
    d = json.loads(path.read_text())
    assert d["format"] == "fastem.GaussianHMM"
    assert d["format_version"] == 1
    assert d["fastem_version"] == fastem.__version__
    assert set(d["fitted"]) >= {"startprob", "transmat", "means", "covars",
                                "n_features_in", "monitor"}
    assert np.shape(d["fitted"]["covars"]) == (3, 2, 2)
    # covars in the type's own layout
    models["diag"].save(path)
    assert np.shape(json.loads(path.read_text())["fitted"]["covars"]) == (3, 2)
    models["tied"].save(path)
    assert np.shape(json.loads(path.read_text())["fitted"]["covars"]) == (2, 2)
    models["spherical"].save(path)
    assert np.shape(json.loads(path.read_text())["fitted"]["covars"]) == (3,)


def test_unfitted_model_and_array_priors(tmp_path, data):
    m = GaussianHMM(2, covariance_type="full", tol=-np.inf, n_iter=3,
                    transmat_prior=np.array([[2.0, 1.0], [1.0, 2.0]]),
                    means_weight=np.array([0.5, 1.0]), random_state=4)
    path = tmp_path / "u.json"
    m.save(path)
    back = fastem.load(path)
    assert not hasattr(back, "means_")
    assert back.tol == -np.inf
    np.testing.assert_array_equal(back.transmat_prior, m.transmat_prior)
    np.testing.assert_array_equal(back.means_weight, m.means_weight)
    # and it fits to the same model
    a = m.fit(data)
    b = back.fit(data)
    np.testing.assert_array_equal(a.means_, b.means_)
    assert b.monitor_.iter == 3


def test_feature_names_are_kept(tmp_path, models, data):
    m = models["diag"]
    m.feature_names_in_ = np.array(["a", "b"], dtype=object)
    try:
        m.save(tmp_path / "n.json")
    finally:
        del m.feature_names_in_
    back = fastem.load(tmp_path / "n.json")
    assert list(back.feature_names_in_) == ["a", "b"]


def test_load_dispatches_on_format(tmp_path, models):
    gm = GaussianMixture(2, random_state=0).fit(
        np.random.default_rng(0).normal(size=(50, 2)))
    gm.save(tmp_path / "gm.json")
    models["diag"].save(tmp_path / "hmm.json")
    assert type(fastem.load(tmp_path / "gm.json")) is GaussianMixture
    assert type(fastem.load(tmp_path / "hmm.json")) is GaussianHMM
    assert type(fio.load(tmp_path / "hmm.json")) is GaussianHMM
    with pytest.raises(fio.ModelFileError, match="holds a fastem.GaussianHMM"):
        GaussianMixture.load(tmp_path / "hmm.json")
    with pytest.raises(fio.ModelFileError,
                       match="holds a fastem.GaussianMixture"):
        GaussianHMM.load(tmp_path / "gm.json")


def test_newer_version_refused(tmp_path, models):
    path = tmp_path / "m.json"
    models["diag"].save(path)
    d = json.loads(path.read_text())
    d["format_version"] = 7
    path.write_text(json.dumps(d))
    with pytest.raises(fio.ModelFileError, match="upgrade fastem"):
        fastem.load(path)


def _set(d, keys, value):
    for k in keys[:-1]:
        d = d[k]
    if value is _DELETE:
        del d[keys[-1]]
    else:
        d[keys[-1]] = value


_DELETE = object()

MALFORMED = [
    # (covariance type, path of the field, new value, expected message)
    ("diag", ("fitted", "startprob"), [0.5, 0.4, 0.3], "startprob: .*sum of 1"),
    ("diag", ("fitted", "startprob"), [1.2, -0.2, 0.0],
     "startprob: .*non-negative"),
    ("diag", ("fitted", "startprob"), ["nan", 0.5, 0.5],
     "startprob: .*finite"),
    ("diag", ("fitted", "startprob"), [0.5, 0.5], "startprob: .*n_components"),
    ("diag", ("fitted", "startprob"), "abc", "startprob: expected a list"),
    ("diag", ("fitted", "transmat"), [[0.5, 0.5, 0.0], [0.2, 0.2, 0.2],
                                      [0, 0, 1]], "transmat: .*row 1"),
    ("diag", ("fitted", "transmat"), [[1.0, 0.0, 0.0]], "transmat: .*shape"),
    ("diag", ("fitted", "transmat"), [[1.5, -0.5, 0.0], [0, 1, 0], [0, 0, 1]],
     "transmat: .*non-negative"),
    ("diag", ("fitted", "means"), [[0, 0], [1, "inf"], [2, 2]],
     "means: .*finite"),
    ("diag", ("fitted", "means"), [[0, 0], [1, 1]], "means: .*n_components"),
    ("diag", ("fitted", "means"), [[0, 0], [1], [2, 2]], "means: "),
    ("diag", ("fitted", "covars"), [[1, 1], [1, -1], [1, 1]], "covars: "),
    ("diag", ("fitted", "covars"), [[1, 1], [1, 1]], "covars of shape"),
    ("spherical", ("fitted", "covars"), [1, 0, 1], "covars: .*positive"),
    ("full", ("fitted", "covars"),
     [[[1, 0.5], [0, 1]], [[1, 0], [0, 1]], [[1, 0], [0, 1]]],
     "covars: .*symmetric"),
    ("full", ("fitted", "covars"),
     [[[1, 2], [2, 1]], [[1, 0], [0, 1]], [[1, 0], [0, 1]]],
     "covars: .*positive definite"),
    ("tied", ("fitted", "covars"), [[[1, 0], [0, 1]]], "covars: expected"),
    ("tied", ("fitted", "covars"), [[0, 0], [0, 0]], "covars: "),
    ("diag", ("fitted", "n_features_in"), 3, "n_features_in: expected 2"),
    ("diag", ("fitted", "feature_names_in"), ["a"], "feature_names_in"),
    ("diag", ("fitted", "monitor", "iter"), 99, "monitor.iter"),
    ("diag", ("fitted", "monitor", "history"), [1, "x"], "monitor.history"),
    ("diag", ("fitted", "monitor"), [1], "monitor: expected an object"),
    ("diag", ("fitted", "transmat"), _DELETE, "lacks fitted field 'transmat'"),
    ("diag", ("fitted",), [1, 2], "fitted: expected an object"),
    ("diag", ("params", "n_components"), 2, "startprob: .*n_components=2"),
    ("diag", ("params", "covariance_type"), "round",
     "invalid parameter: covariance_type"),
    ("diag", ("params", "n_iter"), -1, "invalid parameter: n_iter"),
    ("diag", ("params", "params"), "xyz", "invalid parameter: params"),
    ("diag", ("params", "algorithm"), 3, "invalid parameter: algorithm"),
    ("diag", ("params", "tol"), "big", "parameter 'tol': expected a number"),
    ("diag", ("params", "means_weight"), [1, 2], "invalid parameter: "
                                                 "means_weight"),
    ("diag", ("params", "n_threads"), 0, "parameter 'n_threads'"),
    ("diag", ("params",), None, "no \"params\" object"),
    ("diag", ("metadata",), [], "metadata: expected an object"),
]


@pytest.mark.parametrize("ct, keys, value, match", MALFORMED)
def test_malformed_files_are_refused_naming_the_field(tmp_path, models, ct,
                                                      keys, value, match):
    path = tmp_path / "bad.json"
    models[ct].save(path)
    d = json.loads(path.read_text())
    _set(d, keys, value)
    path.write_text(json.dumps(d))
    with pytest.raises(fio.ModelFileError, match=match) as info:
        fastem.load(path)
    assert "\n" not in str(info.value)
    assert str(info.value).startswith(str(path))
    with pytest.raises(fio.ModelFileError, match=match):
        GaussianHMM.load(path)


def test_save_is_atomic_and_refuses_unusable_models(tmp_path, models):
    path = tmp_path / "m.json"
    models["diag"].save(path)
    before = path.read_bytes()
    m = GaussianHMM(3, covariance_type="diag")
    m.startprob_ = np.full(3, 1 / 3)
    m.transmat_ = np.full((3, 3), 1 / 3)
    m.means_ = np.zeros((3, 2))
    m._covars_ = np.array([[1.0, 1.0], [1.0, 0.0], [1.0, 1.0]])  # bypass
    with pytest.raises(ValueError, match="cannot save"):
        m.save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.json"]  # no temporary file left


def test_set_params_after_fit_cannot_save_a_broken_file(tmp_path, models):
    m = GaussianHMM(**models["full"].get_params())
    for attr in ("startprob_", "transmat_", "means_", "_covars_"):
        setattr(m, attr, getattr(models["full"], attr))
    m.set_params(covariance_type="diag")
    with pytest.raises(ValueError, match="cannot save"):
        m.save(tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()


def test_pickle_still_works(models, data):
    import pickle

    back = pickle.loads(pickle.dumps(models["tied"]))
    np.testing.assert_array_equal(back.predict(data), models["tied"].predict(data))
