"""Choosing the number of states of a GaussianHMM (fastem.hmm_select)."""

import numpy as np
import pytest

from fastem import GaussianHMM, SelectionResult
from fastem.hmm_select import (
    HMMSelectionResult,
    _train_ranges,
    select_states,
    sequence_folds,
)


def three_state_model():
    m = GaussianHMM(3, covariance_type="diag")
    m.startprob_ = np.array([1.0, 0.0, 0.0])
    m.transmat_ = np.array([[0.9, 0.05, 0.05], [0.05, 0.9, 0.05],
                            [0.05, 0.05, 0.9]])
    m.means_ = np.array([[0.0, 0.0], [4.0, 4.0], [-4.0, 4.0]])
    m.covars_ = np.ones((3, 2))
    return m


@pytest.fixture(scope="module")
def series():
    X, _ = three_state_model().sample(1500, random_state=1)
    return X


@pytest.fixture(scope="module")
def sequences():
    m = three_state_model()
    parts = [m.sample(n, random_state=10 + i)[0]
             for i, n in enumerate([150, 220, 180, 200, 170, 160])]
    return np.concatenate(parts), [len(p) for p in parts]


@pytest.mark.parametrize("criterion", ["bic", "aic"])
def test_information_criteria_pick_three_states(series, criterion):
    res = select_states(series, n_components=range(1, 6),
                        criterion=criterion, random_state=0, n_iter=100)
    assert isinstance(res, HMMSelectionResult)
    assert isinstance(res, SelectionResult)
    assert res.best_params == {"n_components": 3, "covariance_type": "diag"}
    assert isinstance(res.best_model, GaussianHMM)
    assert res.best_model.n_components == 3
    assert len(res.results) == 5
    row = next(r for r in res.results if r["n_components"] == 3)
    # the criterion is GaussianHMM's own
    assert row[criterion] == pytest.approx(
        getattr(res.best_model, criterion)(series), rel=1e-12)
    assert res.best_score == row["criterion"] == row[criterion]
    assert np.isnan(row["cv"])
    assert row["n_parameters"] == 2 + 6 + 6 + 6
    assert "*" in res.table()
    assert res.table().startswith(criterion.upper())


def test_cv_on_a_single_sequence_picks_three_states(series):
    res = select_states(series, n_components=range(1, 6), criterion="cv",
                        random_state=0, n_iter=100)
    assert res.best_params["n_components"] == 3
    assert res.cv == 5
    # one sequence: contiguous blocks
    assert [f for fold in res.cv_folds for f in fold] == [
        (0, 300), (300, 600), (600, 900), (900, 1200), (1200, 1500)]
    row = next(r for r in res.results if r["n_components"] == 3)
    assert row["cv"] == pytest.approx(-2 * row["cv_loglik"] * 1500)
    assert row["cv_error"] is None
    assert "held-out log-likelihood of whole sequences, 5 folds" in \
        res.table()


def test_cv_over_sequences_picks_three_states(sequences):
    X, lengths = sequences
    res = select_states(X, lengths, n_components=range(1, 6),
                        covariance_types=("diag", "full"), criterion="cv",
                        cv=3, random_state=0, n_iter=100)
    assert res.best_params["n_components"] == 3
    assert res.n_sequences == 6
    held = sorted(r for fold in res.cv_folds for r in fold)
    starts = np.cumsum([0] + lengths)
    assert held == [(int(a), int(b)) for a, b in zip(starts[:-1], starts[1:])]
    df = res.to_pandas()
    assert len(df) == 10
    assert df.iloc[0]["criterion"] == res.best_score
    assert {"bic", "aic", "cv", "cv_loglik", "error"} <= set(df.columns)


def test_bic_with_lengths_matches_the_model(sequences):
    X, lengths = sequences
    res = select_states(X, lengths, n_components=[2, 3], random_state=0,
                        n_init=1, n_iter=30)
    for (k, t), m in res.models.items():
        row = next(r for r in res.results if r["n_components"] == k)
        assert row["bic"] == pytest.approx(m.bic(X, lengths), rel=1e-12)
        # n_init=1: the fit equals a standalone one
        alone = GaussianHMM(k, covariance_type=t, random_state=0,
                            n_iter=30).fit(X, lengths)
        np.testing.assert_array_equal(alone.means_, m.means_)


def test_results_do_not_depend_on_n_jobs(series):
    kw = dict(n_components=[1, 2, 3], random_state=3, n_iter=20, n_init=2,
              criterion="cv", cv=3)
    a = select_states(series, n_jobs=1, **kw)
    b = select_states(series, n_jobs=2, **kw)
    for ra, rb in zip(a.results, b.results):
        assert ra["cv"] == rb["cv"] and ra["bic"] == rb["bic"]


def test_sequence_folds():
    # whole sequences, seeded
    f1 = sequence_folds([3, 4, 5, 6, 7], 25, 2, random_state=0)
    f2 = sequence_folds([3, 4, 5, 6, 7], 25, 2, random_state=0)
    assert f1 == f2
    assert sorted(r for f in f1 for r in f) == [(0, 3), (3, 7), (7, 12),
                                                (12, 18), (18, 25)]
    assert sorted(len(f) for f in f1) == [2, 3]
    # fewer sequences than folds: contiguous blocks cut at sequence ends
    f = sequence_folds([5, 5], 10, 3)
    assert f == [[(0, 3)], [(3, 5), (5, 7)], [(7, 10)]]
    with pytest.raises(ValueError, match="cv must be an int >= 2"):
        sequence_folds(None, 10, 1)
    with pytest.raises(ValueError, match="at least 4 rows"):
        sequence_folds(None, 3, 4)


def test_train_ranges_split_sequences_around_the_held_out_block():
    starts = [0, 10, 20]
    assert _train_ranges(starts, [(4, 7)]) == [(0, 4), (7, 10), (10, 20)]
    assert _train_ranges(starts, [(8, 12)]) == [(0, 8), (12, 20)]
    assert _train_ranges(starts, [(10, 20)]) == [(0, 10)]


def test_failed_fits_are_recorded(series):
    X = series[:6]
    res = select_states(X, n_components=[1, 2, 50], random_state=0,
                        n_iter=5)
    bad = next(r for r in res.results if r["n_components"] == 50)
    assert bad["error"] and bad["criterion"] == np.inf
    assert "failed" in res.table()
    assert res.best_params["n_components"] in (1, 2)


def test_argument_errors(series):
    with pytest.raises(ValueError, match="criterion"):
        select_states(series, criterion="icl")
    with pytest.raises(TypeError, match="covariance_type"):
        select_states(series, n_components=[2], covariance_type="full")
    with pytest.raises(ValueError, match="n_iter"):
        select_states(series, n_iter=-1)
    with pytest.raises(ValueError, match="lengths"):
        select_states(series, [10, 10])
    with pytest.raises(ValueError, match="n_init"):
        select_states(series, n_init=0)
