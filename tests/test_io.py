"""Saved models (JSON), pickling, and conversion to/from scikit-learn."""

import json
import pickle

import numpy as np
import pytest

import fastem.io as fio
from fastem import GaussianMixture

COV_TYPES = ("full", "tied", "diag", "spherical")
FITTED = ("weights_", "means_", "covariances_", "precisions_",
          "precisions_cholesky_")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return np.vstack([rng.normal(0.0, 1.0, (200, 3)),
                      rng.normal(4.0, 2.0, (200, 3)) + [0.0, 3.0, 0.0]])


@pytest.fixture(scope="module")
def models(data):
    return {ct: GaussianMixture(3, covariance_type=ct, random_state=0).fit(data)
            for ct in COV_TYPES}


def assert_same_model(a, b, X):
    for attr in FITTED:
        np.testing.assert_array_equal(getattr(a, attr), getattr(b, attr),
                                      err_msg=attr)
    assert a.converged_ == b.converged_
    assert a.n_iter_ == b.n_iter_
    assert a.lower_bound_ == b.lower_bound_
    assert a.lower_bounds_ == b.lower_bounds_
    assert a.n_features_in_ == b.n_features_in_
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    np.testing.assert_array_equal(a.score_samples(X), b.score_samples(X))
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


@pytest.mark.parametrize("ct", COV_TYPES)
def test_save_load_round_trip_is_exact(tmp_path, models, data, ct):
    gm = models[ct]
    path = tmp_path / "model.json"
    assert fio.save(gm, path) == str(path)
    loaded = fio.load(path)
    assert type(loaded) is GaussianMixture
    assert_same_model(gm, loaded, data)
    params = gm.get_params()
    params.pop("callback")
    loaded_params = loaded.get_params()
    loaded_params.pop("callback")
    assert loaded_params == params


def test_file_is_versioned_json(tmp_path, models):
    import fastem

    path = tmp_path / "m.json"
    fio.save(models["full"], path, metadata={"data": "x.csv"})
    d = json.loads(path.read_text())
    assert d["format"] == "fastem.GaussianMixture"
    assert d["format_version"] == fio.FORMAT_VERSION == 1
    assert d["fastem_version"] == fastem.__version__
    assert d["params"]["covariance_type"] == "full"
    assert np.array(d["fitted"]["means"]).shape == (3, 3)
    assert d["metadata"] == {"data": "x.csv"}
    assert fio.read_metadata(path) == {"data": "x.csv"}
    # Floats are written with repr: the text reads back bit for bit.
    assert d["fitted"]["weights"] == models["full"].weights_.tolist()


def test_unfitted_model_round_trip(tmp_path):
    gm = GaussianMixture(4, covariance_type="diag", tol=1e-5, max_iter=7,
                         means_init=[[0.0], [1.0], [2.0], [3.0]],
                         random_state=np.random.RandomState(0))
    fio.save(gm, tmp_path / "u.json")
    back = fio.load(tmp_path / "u.json")
    assert not hasattr(back, "weights_")
    assert back.n_components == 4 and back.tol == 1e-5 and back.max_iter == 7
    np.testing.assert_array_equal(back.means_init, gm.means_init)
    # A RandomState cannot be written to JSON: it is saved as null.
    assert back.random_state is None


def test_feature_names_and_non_finite_values(tmp_path):
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(1)
    df = pd.DataFrame(rng.normal(size=(100, 2)), columns=["a", "b"])
    gm = GaussianMixture(2, random_state=0).fit(df)
    gm.lower_bounds_ = [-np.inf] + list(gm.lower_bounds_)
    fio.save(gm, tmp_path / "n.json")
    back = fio.load(tmp_path / "n.json")
    assert list(back.feature_names_in_) == ["a", "b"]
    assert back.lower_bounds_[0] == -np.inf
    assert back.lower_bounds_[1:] == gm.lower_bounds_[1:]
    np.testing.assert_array_equal(back.predict_proba(df), gm.predict_proba(df))
    # The file is strict JSON (no bare Infinity).
    json.loads((tmp_path / "n.json").read_text(),
               parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))


def test_newer_format_version_is_refused(tmp_path, models):
    path = tmp_path / "m.json"
    fio.save(models["diag"], path)
    d = json.loads(path.read_text())
    d["format_version"] = 99
    path.write_text(json.dumps(d))
    with pytest.raises(fio.ModelFileError, match="upgrade fastem"):
        fio.load(path)


@pytest.mark.parametrize("text, match", [
    ("not json at all", "not JSON"),
    ('{"format": "something else"}', "not a fastem model"),
    ('[1, 2]', "not a fastem model"),
])
def test_not_a_model_file(tmp_path, text, match):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        fio.load(path)


def test_inconsistent_shapes_are_refused(tmp_path, models):
    path = tmp_path / "m.json"
    fio.save(models["full"], path)
    d = json.loads(path.read_text())
    d["fitted"]["covariances"] = d["fitted"]["covariances"][:2]
    path.write_text(json.dumps(d))
    with pytest.raises(fio.ModelFileError, match="do not match"):
        fio.load(path)


def test_unknown_parameters_from_newer_versions_are_ignored(tmp_path, models):
    path = tmp_path / "m.json"
    fio.save(models["tied"], path)
    d = json.loads(path.read_text())
    d["params"]["some_future_option"] = 3
    path.write_text(json.dumps(d))
    assert fio.load(path).covariance_type == "tied"


@pytest.mark.parametrize("ct", COV_TYPES)
def test_pickle_round_trip(models, data, ct):
    back = pickle.loads(pickle.dumps(models[ct]))
    assert_same_model(models[ct], back, data)


@pytest.mark.parametrize("ct", COV_TYPES)
def test_to_sklearn(models, data, ct):
    pytest.importorskip("sklearn")
    from sklearn.mixture import GaussianMixture as SkGM

    gm = models[ct]
    sk = fio.to_sklearn(gm)
    assert isinstance(sk, SkGM)
    for attr in FITTED:
        np.testing.assert_array_equal(getattr(sk, attr), getattr(gm, attr))
    assert sk.get_params()["covariance_type"] == ct
    assert sk.n_components == 3 and sk.random_state == 0
    np.testing.assert_allclose(sk.predict_proba(data), gm.predict_proba(data),
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(sk.score_samples(data), gm.score_samples(data),
                               rtol=1e-12)
    assert (sk.predict(data) == gm.predict(data)).all()


@pytest.mark.parametrize("ct", COV_TYPES)
def test_from_sklearn(data, ct):
    pytest.importorskip("sklearn")
    from sklearn.mixture import GaussianMixture as SkGM

    sk = SkGM(3, covariance_type=ct, random_state=0, tol=1e-4).fit(data)
    gm = fio.from_sklearn(sk)
    assert type(gm) is GaussianMixture
    assert gm.tol == 1e-4 and gm.covariance_type == ct
    for attr in FITTED:
        np.testing.assert_array_equal(getattr(gm, attr), getattr(sk, attr),
                                      err_msg=attr)
    assert gm.n_iter_ == sk.n_iter_ and gm.converged_ == sk.converged_
    np.testing.assert_allclose(gm.predict_proba(data), sk.predict_proba(data),
                               rtol=0, atol=1e-12)
    # and back again
    back = fio.to_sklearn(gm)
    np.testing.assert_array_equal(back.means_, sk.means_)


def test_unfitted_conversions():
    pytest.importorskip("sklearn")
    sk = fio.to_sklearn(GaussianMixture(5, covariance_type="spherical"))
    assert sk.n_components == 5 and not hasattr(sk, "weights_")
    gm = fio.from_sklearn(sk)
    assert gm.n_components == 5 and not hasattr(gm, "weights_")
    with pytest.raises(TypeError, match="from_sklearn expects"):
        fio.from_sklearn(object())
