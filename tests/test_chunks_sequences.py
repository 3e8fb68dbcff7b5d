"""fastem.chunks.sequence_chunks: a chunk source of whole sequences for
GaussianHMM.fit_chunks.

Tolerance: a chunked fit adds the chunks' statistics where ``fit`` computes
them in one pass, so the two differ only in the order of floating-point
additions (~1e-14 relative), which EM does not amplify over a few
iterations: 1e-10 relative on every iteration's log-likelihood and on the
fitted parameters (as tests/test_hmm_outofcore.py).
"""

import numpy as np
import pytest

from fastem import GaussianHMM
from fastem.chunks import sequence_chunks

COVARIANCE_TYPES = ("spherical", "diag", "full", "tied")
RTOL = 1e-10
LENGTHS = [50, 120, 400, 30, 200, 90, 10, 260, 1, 39]

STARTPROB = np.array([0.6, 0.3, 0.1])
TRANSMAT = np.array([[0.85, 0.10, 0.05],
                     [0.10, 0.80, 0.10],
                     [0.05, 0.15, 0.80]])
MEANS = np.array([[0.0, 0.0], [3.0, 1.0], [1.0, 4.0]])
COVS = np.array([[[1.0, 0.3], [0.3, 0.6]],
                 [[0.8, -0.2], [-0.2, 1.2]],
                 [[0.5, 0.0], [0.0, 0.9]]])


def in_layout(full, ct):
    if ct == "full":
        return full.copy()
    if ct == "tied":
        return full.mean(axis=0)
    if ct == "diag":
        return np.array([np.diag(c) for c in full])
    return np.array([np.trace(c) / c.shape[0] for c in full])


def model(ct, start="poor", **kw):
    m = GaussianHMM(3, covariance_type=ct, init_params="", **kw)
    if start == "true":
        m.startprob_, m.transmat_, m.means_ = STARTPROB, TRANSMAT, MEANS
        m.covars_ = in_layout(COVS, ct)
    else:  # a poor but valid start, so that EM moves
        m.startprob_ = np.full(3, 1 / 3)
        m.transmat_ = np.full((3, 3), 1 / 3)
        m.means_ = np.array([[0.5, 0.5], [2.0, 2.0], [0.0, 3.0]])
        m.covars_ = in_layout(np.tile(np.eye(2), (3, 1, 1)), ct)
    return m


@pytest.fixture(scope="module")
def data():
    gen = model("full", start="true")
    X = np.concatenate([gen.sample(n, random_state=i)[0]
                        for i, n in enumerate(LENGTHS)])
    return X, LENGTHS


def test_chunks_hold_whole_sequences_of_about_chunk_rows(data):
    X, lengths = data
    make_chunks = sequence_chunks(X, lengths, 300)
    chunks = list(make_chunks())
    got = [c[1].tolist() for c in chunks]
    # greedy: at most 300 rows unless one sequence is longer (400)
    assert got == [[50, 120], [400], [30, 200], [90, 10], [260, 1, 39]]
    assert all(c[0].shape == (sum(c[1]), 2) for c in chunks)
    np.testing.assert_array_equal(np.concatenate([c[0] for c in chunks]), X)
    # a fresh iterator each call, the same chunks
    again = list(make_chunks())
    assert [c[1].tolist() for c in again] == got
    # large chunk_rows: one chunk; lengths=None: one sequence, one chunk
    assert len(list(sequence_chunks(X, lengths, 10_000)())) == 1
    (Xc, lc), = sequence_chunks(X, None, 100)()
    assert lc.tolist() == [len(X)] and Xc.shape == X.shape


@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_fit_chunks_of_sequence_chunks_equals_fit(data, ct):
    X, lengths = data
    ref = model(ct, n_iter=6, tol=-np.inf).fit(X, lengths)
    got = model(ct, n_iter=6, tol=-np.inf).fit_chunks(
        sequence_chunks(X, lengths, 300))
    assert got.monitor_.iter == ref.monitor_.iter == 6
    np.testing.assert_allclose(list(got.monitor_.history),
                               list(ref.monitor_.history), rtol=RTOL)
    for attr in ("startprob_", "transmat_", "means_", "covars_"):
        np.testing.assert_allclose(getattr(got, attr), getattr(ref, attr),
                                   rtol=RTOL, atol=1e-12)


def test_any_row_sliceable_array(tmp_path, data):
    X, lengths = data
    path = tmp_path / "x.npy"
    np.save(path, X)
    mm = np.load(path, mmap_mode="r")
    chunks = list(sequence_chunks(mm, lengths, 300)())
    assert all(type(c[0]) is np.ndarray for c in chunks)
    np.testing.assert_array_equal(np.concatenate([c[0] for c in chunks]), X)
    # nested lists are accepted too
    (Xc, _), = sequence_chunks(X[:5].tolist(), None)()
    np.testing.assert_array_equal(Xc, X[:5])


@pytest.mark.parametrize("chunk_rows", [0, -3, 2.5, True, "10"])
def test_bad_chunk_rows(data, chunk_rows):
    X, lengths = data
    with pytest.raises(ValueError, match="chunk_rows must be a positive int"):
        sequence_chunks(X, lengths, chunk_rows)


def test_bad_lengths_and_shapes(data):
    X, lengths = data
    with pytest.raises(ValueError, match="doesn't sum to"):
        sequence_chunks(X, lengths[:-1], 300)
    with pytest.raises(ValueError, match="positive integers"):
        sequence_chunks(X, [0] + lengths, 300)
    with pytest.raises(ValueError, match="X must be 2-D"):
        sequence_chunks(X[:, 0], None)
