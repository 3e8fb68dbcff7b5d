"""GaussianHMM's public protocol: export_state / import_state (what
fastem.io saves and loads), check_params, check_data and n_parameters."""

import numpy as np
import pytest

from fastem import GaussianHMM
from fastem._validation import NotFittedError
from fastem.stats import ComponentCollapseError

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


def assert_states_equal(a, b):
    assert a.keys() == b.keys()
    for k in ("startprob", "transmat", "means", "covars"):
        assert a[k].dtype == b[k].dtype == np.float64
        np.testing.assert_array_equal(a[k], b[k])
    for k in ("n_features_in", "feature_names_in", "monitor"):
        assert a[k] == b[k]


@pytest.mark.parametrize("ct", TYPES)
def test_round_trip_is_exact(models, data, ct):
    h = models[ct]
    st = h.export_state()
    # the same constructor parameters (monitor_.converged follows from
    # tol and n_iter, as after fastem.load)
    back = GaussianHMM(**h.get_params()).import_state(st)
    assert_states_equal(back.export_state(), st)
    for attr in ("startprob_", "transmat_", "means_", "covars_"):
        np.testing.assert_array_equal(getattr(back, attr), getattr(h, attr))
    assert back.n_features_in_ == back.n_features == 2
    assert list(back.monitor_.history) == list(h.monitor_.history)
    assert back.monitor_.iter == h.monitor_.iter
    assert back.monitor_.converged == h.monitor_.converged
    np.testing.assert_array_equal(back.predict_proba(data, LENGTHS),
                                  h.predict_proba(data, LENGTHS))
    assert back.score(data, LENGTHS) == h.score(data, LENGTHS)


@pytest.mark.parametrize("ct", TYPES)
def test_state_is_plain_values_in_the_types_layout(models, ct):
    st = models[ct].export_state()
    assert set(st) == {"startprob", "transmat", "means", "covars",
                       "n_features_in", "feature_names_in", "monitor"}
    assert st["covars"].shape == {"spherical": (3,), "diag": (3, 2),
                                  "full": (3, 2, 2), "tied": (2, 2)}[ct]
    assert type(st["n_features_in"]) is int
    assert st["feature_names_in"] is None
    mon = st["monitor"]
    assert set(mon) == {"history", "iter", "converged"}
    assert all(type(v) is float for v in mon["history"])
    assert type(mon["iter"]) is int and type(mon["converged"]) is bool
    # copies: changing the state changes neither model
    before = models[ct].means_.copy()
    st["means"][:] = 0
    np.testing.assert_array_equal(models[ct].means_, before)
    back = GaussianHMM(3, covariance_type=ct).import_state(
        models[ct].export_state())
    st2 = models[ct].export_state()
    back_means = back.means_.copy()
    st2["means"][:] = 7
    np.testing.assert_array_equal(back.means_, back_means)


def test_feature_names_and_a_model_set_by_hand(data):
    m = GaussianHMM(2, covariance_type="full")
    m.startprob_ = [0.3, 0.7]
    m.transmat_ = [[0.9, 0.1], [0.2, 0.8]]
    m.means_ = [[0.0, 1.0], [2.0, 3.0]]
    m.covars_ = [np.eye(2), 2 * np.eye(2)]
    m.feature_names_in_ = np.array(["a", "b"], dtype=object)
    st = m.export_state()
    assert st["monitor"] is None and st["feature_names_in"] == ["a", "b"]
    back = GaussianHMM(2, covariance_type="full").import_state(st)
    assert not hasattr(back, "monitor_")
    assert list(back.feature_names_in_) == ["a", "b"]
    assert_states_equal(back.export_state(), st)


def test_import_replaces_the_whole_state(models, data):
    m = GaussianHMM(3, covariance_type="diag", random_state=0)
    m.partial_fit(data[:150]).partial_fit(data[150:])
    m.feature_names_in_ = np.array(["a", "b"], dtype=object)
    st = models["diag"].export_state()
    st["monitor"] = None
    m.import_state(st)
    assert not hasattr(m, "monitor_")
    assert not hasattr(m, "feature_names_in_")
    assert not hasattr(m, "n_batches_")
    # partial_fit starts its running statistics afresh from the new model
    m.partial_fit(data[:100])
    assert m.n_batches_ == 1


def test_export_needs_a_usable_model(models):
    with pytest.raises(NotFittedError):
        GaussianHMM(3).export_state()
    m = GaussianHMM(**models["full"].get_params())
    for attr in ("startprob_", "transmat_", "means_", "_covars_"):
        setattr(m, attr, getattr(models["full"], attr))
    m.set_params(covariance_type="diag")   # full matrices, diag model
    with pytest.raises(ValueError, match="covars_ for covariance_type='diag'"):
        m.export_state()


BAD = [
    # (covariance type, field, new value, error type, message)
    ("diag", "startprob", [0.5, 0.4, 0.3], ValueError, "startprob: .*sum of 1"),
    ("diag", "startprob", [1.2, -0.2, 0.0], ValueError,
     "startprob: .*non-negative"),
    ("diag", "startprob", [np.nan, 0.5, 0.5], ValueError, "startprob: .*finite"),
    ("diag", "startprob", [0.5, 0.5], ValueError,
     "startprob: 2 values .*n_components=3"),
    ("diag", "startprob", [[1.0, 0, 0]], ValueError, "startprob: expected shape"),
    ("diag", "startprob", "abc", ValueError, "startprob must be numbers"),
    ("diag", "transmat", [[0.5, 0.5, 0.0], [0.2, 0.2, 0.2], [0, 0, 1]],
     ValueError, "transmat: .*row 1"),
    ("diag", "transmat", [[1.0, 0.0, 0.0]], ValueError, "transmat: .*shape"),
    ("diag", "transmat", [[1.5, -0.5, 0.0], [0, 1, 0], [0, 0, 1]], ValueError,
     "transmat: .*non-negative"),
    ("diag", "means", [[0, 0], [1, np.inf], [2, 2]], ValueError,
     "means: .*finite"),
    ("diag", "means", [[0, 0], [1, 1]], ValueError, "means: 2 rows"),
    ("diag", "means", [0, 1, 2], ValueError, "means: expected shape"),
    ("diag", "means", np.zeros((3, 0)), ValueError, "means: .*one feature"),
    ("diag", "covars", [[1, 1], [1, -1], [1, 1]], ComponentCollapseError,
     "covars: .*positive"),
    ("diag", "covars", [[1, 1], [1, 1]], ValueError, "covars of shape"),
    ("spherical", "covars", [1, 0, 1], ComponentCollapseError,
     "covars: .*positive"),
    ("full", "covars", [[[1, 0.5], [0, 1]], np.eye(2), np.eye(2)], ValueError,
     "covars: .*symmetric"),
    ("full", "covars", [[[1, 2], [2, 1]], np.eye(2), np.eye(2)],
     ComponentCollapseError, "covars: .*positive definite"),
    ("tied", "covars", [np.eye(2)], ValueError, "covars of shape"),
    ("tied", "covars", np.zeros((2, 2)), ValueError, "covars: "),
    ("diag", "n_features_in", 3, ValueError, "n_features_in: expected 2"),
    ("diag", "n_features_in", True, ValueError, "n_features_in: expected 2"),
    ("diag", "feature_names_in", ["a"], ValueError,
     "feature_names_in: .*length 1"),
    ("diag", "feature_names_in", ["a", 3], ValueError, "feature_names_in: "),
    ("diag", "monitor", [1], ValueError, "monitor: expected a dict"),
    ("diag", "monitor", {"history": [1.0, 2.0], "iter": 99}, ValueError,
     "monitor.iter: expected 2"),
    ("diag", "monitor", {"history": [1.0, np.nan]}, ValueError,
     "monitor.history: .*finite"),
    ("diag", "monitor", {"history": [1.0], "converged": "yes"}, ValueError,
     "monitor.converged"),
]


@pytest.mark.parametrize("ct, field, value, error, match", BAD)
def test_bad_state_raises_naming_the_field(models, ct, field, value, error,
                                           match):
    st = models[ct].export_state()
    st[field] = value
    m = GaussianHMM(3, covariance_type=ct)
    with pytest.raises(error, match=match):
        m.import_state(st)
    assert not hasattr(m, "means_")     # nothing installed


def test_bad_state_leaves_a_fitted_model_unchanged(models):
    m = GaussianHMM(3, covariance_type="diag").import_state(
        models["diag"].export_state())
    before = m.export_state()
    st = models["diag"].export_state()
    st["means"] = st["means"] + 1
    st["transmat"] = np.ones((3, 3))
    with pytest.raises(ValueError, match="transmat: "):
        m.import_state(st)
    assert_states_equal(m.export_state(), before)


def test_state_must_fit_the_parameters(models):
    st = models["diag"].export_state()
    with pytest.raises(ValueError, match="startprob: 3 values .*n_components=2"):
        GaussianHMM(2).import_state(st)
    with pytest.raises(ValueError, match="covars of shape"):
        GaussianHMM(3, covariance_type="full").import_state(st)
    with pytest.raises(ValueError, match="invalid parameter: means_weight"):
        GaussianHMM(3, means_weight=[1.0, 2.0]).import_state(st)
    with pytest.raises(ValueError, match="n_iter"):
        GaussianHMM(3, n_iter=-1).import_state(st)
    with pytest.raises(ValueError, match=r"lacks the field\(s\) \['covars'\]"):
        GaussianHMM(3).import_state({k: v for k, v in st.items()
                                     if k != "covars"})
    with pytest.raises(TypeError, match="state must be a dict"):
        GaussianHMM(3).import_state([st])
    # the optional fields may be left out
    back = GaussianHMM(3).import_state(
        {k: st[k] for k in ("startprob", "transmat", "means", "covars")})
    assert back.n_features_in_ == 2 and not hasattr(back, "monitor_")


def test_n_parameters(models):
    m = models["full"]
    # 2 + 6 transitions, 6 means, 3 x 3 covariance entries
    assert m.n_parameters() == m._n_parameters() == 2 + 6 + 6 + 9
    assert GaussianHMM(3, covariance_type="full").n_parameters(n_features=2) \
        == m.n_parameters()
    assert GaussianHMM(2, covariance_type="tied").n_parameters(3) == \
        1 + 2 + 6 + 6
    with pytest.raises(NotFittedError):
        GaussianHMM(3).n_parameters()
    with pytest.raises(ValueError, match="n_features"):
        GaussianHMM(3).n_parameters(0)
    with pytest.raises(ValueError, match="covariance_type"):
        GaussianHMM(3, covariance_type="round").n_parameters(2)


def test_check_params_and_check_data(data):
    GaussianHMM(3).check_params()
    with pytest.raises(ValueError, match="n_iter"):
        GaussianHMM(3, n_iter=-1).check_params()
    # the priors' shapes depend on the number of features
    m = GaussianHMM(3, covariance_type="full", covars_prior=np.eye(2))
    m.check_params()
    m.check_params(n_features=2)
    with pytest.raises(ValueError, match="covars_prior"):
        m.check_params(n_features=3)
    X, lengths = GaussianHMM(3).check_data(data.tolist(), LENGTHS)
    assert X.dtype == np.float64 and X.shape == (300, 2)
    assert lengths.dtype == np.int64 and lengths.tolist() == LENGTHS
    bad = data.copy()
    bad[7, 1] = np.nan
    with pytest.raises(ValueError, match="first in row 7"):
        GaussianHMM(3).check_data(bad)
    with pytest.raises(ValueError, match="doesn't sum to 300"):
        GaussianHMM(3).check_data(data, [100, 100])
