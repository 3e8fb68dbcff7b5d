"""GaussianHMM through the EM core: additive statistics (HMMStats),
out-of-core fits (fit_chunks), Dask fits and online EM (partial_fit).

Tolerances.  The statistics of a partition of the sequences differ from the
statistics of the whole only in the order of the floating-point additions
(and in which E-step kernel ran: per-group or row-chunked), so they agree to
~1e-14 relative; 1e-12 is asserted.  Merging statistics around different
references re-centres one operand (exact algebra, evaluated in floating
point), asserted to 1e-10.  A chunked or Dask fit from the same start
differs from ``fit`` only by those rounding differences, which EM does not
amplify over a few iterations: 1e-10 relative on the log-likelihood of
every iteration and on the parameters.
"""

import pickle
from functools import partial

import numpy as np
import pytest

from fastem.core.sequences import sequence_blocks
from fastem.models.hmm import (
    GaussianHMM,
    HMMStats,
    _check_lengths,
    _sequence_stats,
    _Workspace,
)

COVARIANCE_TYPES = ("spherical", "diag", "full", "tied")
K, D = 3, 2
RTOL = 1e-10
STATS_RTOL = 1e-12

TRUE_STARTPROB = np.array([0.6, 0.3, 0.1])
TRUE_TRANSMAT = np.array([[0.85, 0.10, 0.05],
                          [0.10, 0.80, 0.10],
                          [0.05, 0.15, 0.80]])
TRUE_MEANS = np.array([[0.0, 0.0], [3.0, 1.0], [1.0, 4.0]])
TRUE_COVS = np.array([[[1.0, 0.3], [0.3, 0.6]],
                      [[0.8, -0.2], [-0.2, 1.2]],
                      [[0.5, 0.0], [0.0, 0.9]]])


def covars_in_layout(full, ct):
    if ct == "full":
        return full.copy()
    if ct == "tied":
        return full.mean(axis=0)
    if ct == "diag":
        return np.array([np.diag(c) for c in full])
    return np.array([np.trace(c) / c.shape[0] for c in full])


def set_start(model, startprob, transmat, means, full_covs):
    model.startprob_ = np.array(startprob, dtype=float)
    model.transmat_ = np.array(transmat, dtype=float)
    model.means_ = np.array(means, dtype=float)
    model.covars_ = covars_in_layout(np.asarray(full_covs, dtype=float),
                                     model.covariance_type)
    return model


def true_model(ct="full", **kw):
    return set_start(GaussianHMM(K, covariance_type=ct, init_params="", **kw),
                     TRUE_STARTPROB, TRUE_TRANSMAT, TRUE_MEANS, TRUE_COVS)


def poor_start(model):
    """A deliberately poor but valid starting point for EM."""
    return set_start(model, np.full(K, 1 / K), np.full((K, K), 1 / K),
                     [[0.5, 0.5], [2.0, 2.0], [0.0, 3.0]],
                     np.tile(np.eye(D), (K, 1, 1)))


@pytest.fixture(scope="module")
def sequences():
    """Sequences of the true model: one length-1 sequence, short and long."""
    rng = np.random.RandomState(0)
    lengths = [1, 5] + rng.randint(20, 120, size=14).tolist()
    gen = true_model()
    return [gen.sample(n, random_state=i)[0] for i, n in enumerate(lengths)]


def concat(seqs):
    return np.concatenate(seqs), [len(s) for s in seqs]


def make_chunks_of(seqs, sizes):
    """Chunks of consecutive sequences, ``sizes`` sequences per chunk; a
    chunk of one sequence is given as a bare array, and an empty chunk is
    thrown in (it is skipped)."""
    def make_chunks():
        i = 0
        for n in sizes:
            group = seqs[i:i + n]
            i += n
            if n == 1:
                yield group[0]
            else:
                yield concat(group)
            if i == n:
                yield np.empty((0, D)), []
    assert sum(sizes) == len(seqs)
    return make_chunks


def _stats(model, X, lengths, ref=None, plan="auto"):
    X = np.ascontiguousarray(X, dtype=np.float64)
    starts = _check_lengths(lengths, len(X))
    m = model._model(X.shape[1])
    return model._e_step(X, starts, m, _Workspace(len(X), K, starts, plan),
                         gamma=True, stats=True, xi=True,
                         ref=m.means if ref is None else ref)


def assert_stats_close(a, b, rtol=STATS_RTOL):
    assert (a.n_rows, a.n_sequences) == (b.n_rows, b.n_sequences)
    np.testing.assert_allclose(a.loglik, b.loglik, rtol=rtol)
    np.testing.assert_allclose(a.stats.loglik, b.stats.loglik, rtol=rtol)
    for name in ("xi", "start"):
        x, y = getattr(a, name), getattr(b, name)
        np.testing.assert_allclose(x, y, rtol=rtol, atol=rtol * abs(y).max(),
                                   err_msg=name)
    np.testing.assert_array_equal(a.stats.ref, b.stats.ref)
    for name in ("nk", "sums", "scatter"):
        x, y = getattr(a.stats, name), getattr(b.stats, name)
        np.testing.assert_allclose(x, y, rtol=rtol, atol=rtol * abs(y).max(),
                                   err_msg=name)


def assert_same_fit(a, b, rtol=RTOL):
    assert len(a.monitor_.history) == len(b.monitor_.history)
    np.testing.assert_allclose(list(a.monitor_.history),
                               list(b.monitor_.history), rtol=rtol)
    np.testing.assert_allclose(a.startprob_, b.startprob_, rtol=rtol,
                               atol=1e-13)
    np.testing.assert_allclose(a.transmat_, b.transmat_, rtol=rtol,
                               atol=1e-13)
    np.testing.assert_allclose(a.means_, b.means_, rtol=rtol, atol=1e-13)
    np.testing.assert_allclose(a.covars_, b.covars_, rtol=rtol, atol=1e-13)


# ------------------------------------------------- additive statistics
@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_split_then_merge_equals_whole(sequences, ct):
    """The stats of all sequences equal the sum of the stats of any grouping
    of them, whichever E-step kernel ran (per group or row-chunked)."""
    model = true_model(ct)
    model.means_ = TRUE_MEANS + 0.2
    X, lengths = concat(sequences)
    whole = _stats(model, X, lengths, plan="groups")
    assert (whole.n_rows, whole.n_sequences) == (len(X), len(lengths))
    assert_stats_close(_stats(model, X, lengths, plan="rows"), whole)
    rng = np.random.RandomState(1)
    for n_groups in (2, 5, len(sequences)):
        label = rng.randint(0, n_groups, size=len(sequences))
        label[:n_groups] = np.arange(n_groups)      # no group is empty
        parts = []
        for g in range(n_groups):
            Xg, lg = concat([s for s, k in zip(sequences, label) if k == g])
            parts.append(_stats(model, Xg, lg, plan="rows" if g % 2 else
                                "auto"))
        total = sum(parts, start=None)
        assert isinstance(total, HMMStats)
        assert_stats_close(total, whole)
        assert_stats_close(sum(reversed(parts), start=None), whole)


@pytest.mark.parametrize("ct", ["full", "diag"])
def test_merge_recentres_a_different_reference(sequences, ct):
    model = true_model(ct)
    X, lengths = concat(sequences)
    whole = _stats(model, X, lengths)
    Xa, la = concat(sequences[:7])
    Xb, lb = concat(sequences[7:])
    a = _stats(model, Xa, la)
    b = _stats(model, Xb, lb, ref=TRUE_MEANS + [[0.5, -1.0]])
    assert not np.array_equal(a.stats.ref, b.stats.ref)
    assert_stats_close(a + b, whole, rtol=1e-10)           # b moved to a's ref
    ba = b + a
    np.testing.assert_array_equal(ba.stats.ref, b.stats.ref)
    assert_stats_close(ba.shift(whole.stats.ref), whole, rtol=1e-10)


def test_stats_scale_and_empty_sum(sequences):
    model = true_model("full")
    X, lengths = concat(sequences)
    s = _stats(model, X, lengths)
    assert s + None is s and None + s is s
    mix = s.scale(0.25) + s.scale(0.75)      # counts of rows seen add up
    assert (mix.n_rows, mix.n_sequences) == (2 * s.n_rows, 2 * s.n_sequences)
    mix.n_rows, mix.n_sequences = s.n_rows, s.n_sequences
    assert_stats_close(mix, s)
    half = s.scale(0.5)
    assert (half.n_rows, half.n_sequences) == (s.n_rows, s.n_sequences)
    np.testing.assert_allclose(half.xi, s.xi / 2, rtol=1e-15)
    assert half.objective == s.loglik / 2
    other = GaussianHMM(2, covariance_type="full", init_params="")
    set_start(other, [0.5, 0.5], [[0.5, 0.5], [0.5, 0.5]], TRUE_MEANS[:2],
              TRUE_COVS[:2])
    with pytest.raises(ValueError, match="with 3 and 2 states"):
        s + _stats_k2(other, X, lengths)


def _stats_k2(model, X, lengths):
    starts = _check_lengths(lengths, len(X))
    m = model._model(D)
    return model._e_step(X, starts, m, _Workspace(len(X), 2, starts),
                         gamma=True, stats=True, xi=True)


# ------------------------------------------------------- fit_chunks
@pytest.mark.parametrize("ct", COVARIANCE_TYPES)
def test_fit_chunks_equals_fit_from_the_same_start(sequences, ct):
    X, lengths = concat(sequences)
    kw = dict(covariance_type=ct, n_iter=6, tol=-np.inf, init_params="",
              transmat_prior=1.5, means_weight=0.5, covars_prior=0.05)
    full = poor_start(GaussianHMM(K, **kw)).fit(X, lengths)
    chunked = poor_start(GaussianHMM(K, **kw)).fit_chunks(
        make_chunks_of(sequences, [3, 1, 5, 1, 6]))
    assert_same_fit(full, chunked)
    assert full.monitor_.history[-1] > full.monitor_.history[0]
    assert chunked.n_features_in_ == D


def test_fit_chunks_own_initialization(sequences):
    """init_size >= the rows: the sample is all rows in order, so even the
    k-means initialization equals fit's.  A smaller sample is a seeded
    reservoir sample: reproducible, and its k-means lands near fit's."""
    X, lengths = concat(sequences)
    kw = dict(covariance_type="diag", n_iter=8, tol=-np.inf, random_state=0)
    full = GaussianHMM(K, **kw).fit(X, lengths)
    chunks = make_chunks_of(sequences, [4, 4, 4, 4])
    assert_same_fit(full, GaussianHMM(K, **kw).fit_chunks(chunks))
    small = GaussianHMM(K, **kw).fit_chunks(chunks, init_size=300)
    assert_same_fit(small, GaussianHMM(K, **kw).fit_chunks(chunks,
                                                           init_size=300))
    assert not np.allclose(small.means_, full.means_, rtol=1e-6)
    kw["n_iter"] = 0                    # the initial means themselves
    a = GaussianHMM(K, **kw).fit(X, lengths).means_
    b = GaussianHMM(K, **kw).fit_chunks(chunks, init_size=300).means_
    assert not np.allclose(a, b, rtol=1e-6)
    np.testing.assert_allclose(a[np.argsort(a[:, 0])], b[np.argsort(b[:, 0])],
                               atol=0.1)


def test_fit_chunks_resets_online_state_and_keeps_model_on_error(sequences):
    X, lengths = concat(sequences)
    m = GaussianHMM(K, random_state=0, n_iter=3).fit(X, lengths)
    before = m.means_.copy()

    def bad_second_pass():
        calls[0] += 1
        yield from (sequences[:3] if calls[0] > 1 else sequences[:4])

    calls = [0]
    with pytest.raises(ValueError, match="on pass 2 over the data"):
        m.fit_chunks(bad_second_pass)
    np.testing.assert_array_equal(m.means_, before)


def test_fit_chunks_errors(sequences):
    X, lengths = concat(sequences[:4])
    m = GaussianHMM(K, random_state=0)
    with pytest.raises(TypeError, match="make_chunks must be a callable"):
        m.fit_chunks(iter([X]))
    with pytest.raises(TypeError, match="must return an iterator"):
        m.fit_chunks(lambda: 5)
    with pytest.raises(ValueError, match="no chunks with rows"):
        m.fit_chunks(lambda: iter([]))
    with pytest.raises(ValueError, match=r"chunk 1 of make_chunks\(\) is a "
                       r"tuple of 3 items; a chunk is \(X_chunk, lengths"):
        m.fit_chunks(lambda: iter([X, (X, lengths, None)]))
    # lengths that do not add up: the chunk and its first row are named
    with pytest.raises(ValueError, match=r"In chunk 1 of make_chunks\(\) "
                       rf"\(its rows start at row {len(X)} of the stream\): "
                       "lengths array .* doesn't sum to"):
        m.fit_chunks(lambda: iter([(X, lengths), (X, lengths[:-1])]))
    with pytest.raises(ValueError, match="In chunk 2 .* X has 1 features, but "
                       "GaussianHMM is expecting 2"):
        m.fit_chunks(lambda: iter([X, X, X[:, :1]]))
    Xn = X.copy()
    Xn[5, 1] = np.nan
    with pytest.raises(ValueError, match=r"In chunk 1 .*NaN.* the first in "
                       rf"row {len(X) + 5}\. "):
        m.fit_chunks(lambda: iter([X, Xn]))
    with pytest.raises(ValueError, match="init_size=2 is too small"):
        m.fit_chunks(lambda: iter([X]), init_size=2)
    with pytest.raises(ValueError, match="init_size must be"):
        m.fit_chunks(lambda: iter([X]), init_size=0)
    with pytest.raises(ValueError, match="n_samples=2 should be >= "
                       "n_clusters=3"):
        m.fit_chunks(lambda: iter([X[:1], X[1:2]]))


# --------------------------------------------------------------- dask
@pytest.fixture(scope="module")
def da():
    return pytest.importorskip(
        "dask.array", reason="dask is not installed (pip install "
        "'fastem[dask]'); the Dask fit of GaussianHMM is not tested")


@pytest.mark.parametrize("ct", ["full", "diag"])
def test_dask_fit_equals_in_memory(da, sequences, ct):
    import dask

    X, lengths = concat(sequences)
    blocks = sequence_blocks(lengths, 250)
    assert len(blocks) >= 4 and sum(blocks) == len(X)
    dX = da.from_array(X, chunks=(blocks, D))
    kw = dict(covariance_type=ct, n_iter=6, tol=-np.inf, init_params="",
              transmat_prior=1.5)
    full = poor_start(GaussianHMM(K, **kw)).fit(X, lengths)
    with dask.config.set(scheduler="threads"):
        dfit = poor_start(GaussianHMM(K, **kw)).fit(dX, lengths)
    assert_same_fit(full, dfit)
    # its own initialization: a sample of every row (N < 100,000), in order
    kw = dict(covariance_type=ct, n_iter=4, random_state=0)
    with dask.config.set(scheduler="sync"):
        dfit = GaussianHMM(K, **kw).fit(dX, lengths)
    assert_same_fit(GaussianHMM(K, **kw).fit(X, lengths), dfit)


def test_dask_statistics_function_pickles(sequences):
    """A distributed cluster ships the per-block function to its workers."""
    model = true_model("full")
    X, lengths = concat(sequences[:3])
    fn = partial(_sequence_stats, "full", model._model(D), True, True)
    back = pickle.loads(pickle.dumps(fn))
    starts = _check_lengths(lengths, len(X))
    assert_stats_close(back(X, starts), fn(X, starts), rtol=0)


def test_dask_sequence_across_blocks_is_refused(da, sequences):
    X, lengths = concat(sequences)
    dX = da.from_array(X, chunks=(200, D))
    m = GaussianHMM(K, n_iter=2, random_state=0)
    with pytest.raises(ValueError, match=r"needs every row-block of X to hold "
                       r"whole sequences, but sequence \d+ \(rows \d+ to \d+\) "
                       r"crosses the boundary between blocks 0 and 1 at row "
                       r"200 .* X = X.rechunk\(\{0: ") as e:
        m.fit(dX, lengths)
    assert not hasattr(m, "means_")
    # the suggested rechunk (printed when short) makes the fit work
    spec = str(e.value).split("X.rechunk({0: ")[1].rsplit("})", 1)[0]
    if spec.startswith("("):
        sizes = tuple(int(v) for v in spec.strip("()").split(",") if v.strip())
    else:
        sizes = sequence_blocks(lengths, 200)
    m.fit(dX.rechunk({0: sizes}), lengths)
    ref = GaussianHMM(K, n_iter=2, random_state=0).fit(X, lengths)
    assert_same_fit(ref, m)
    # one sequence (lengths=None) over several blocks
    with pytest.raises(ValueError, match="sequence 0 .* crosses"):
        GaussianHMM(K).fit(dX)
    with pytest.raises(ValueError, match="doesn't sum to"):
        GaussianHMM(K).fit(dX, lengths[:-1])
    # a NaN in the initialization sample: the workers' validation names it
    Xn = X.copy()
    row = len(X) - 10
    Xn[row, 0] = np.nan
    with pytest.raises(ValueError, match=rf"NaN value\(s\) in 1 row\(s\), the "
                       rf"first in row {row}\. Drop or impute those rows, and "
                       "shorten the lengths of their sequences to match "
                       r"\(GaussianHMM does not accept missing values\)"):
        GaussianHMM(K, n_iter=1).fit(da.from_array(Xn, chunks=(sizes, D)),
                                     lengths)


def test_sequence_blocks():
    assert sequence_blocks([3, 4, 2, 10, 1], 6) == (3, 6, 10, 1)
    assert sequence_blocks([5], 1) == (5,)
    assert sum(sequence_blocks(np.arange(1, 50), 100)) == 49 * 50 // 2


# ------------------------------------------------------------ online EM
def test_first_partial_fit_is_one_baum_welch_step(sequences):
    """From set parameters, one batch: S = s(batch) / n, and the M-step sees
    S times the batch size, so the update is fit's first iteration exactly
    (priors included)."""
    X, lengths = concat(sequences)
    kw = dict(covariance_type="full", init_params="", transmat_prior=2.0,
              startprob_prior=1.5, means_weight=1.0, covars_prior=0.1)
    one = poor_start(GaussianHMM(K, n_iter=1, **kw)).fit(X, lengths)
    online = poor_start(GaussianHMM(K, **kw)).partial_fit(X, lengths)
    for name in ("startprob_", "transmat_", "means_", "covars_"):
        np.testing.assert_allclose(getattr(online, name), getattr(one, name),
                                   rtol=1e-12, atol=1e-14, err_msg=name)
    assert online.n_batches_ == 1
    assert online.batch_log_likelihood_ == pytest.approx(
        one.monitor_.history[0], rel=1e-12)


def test_partial_fit_on_a_repeated_batch_climbs(sequences):
    """Stepwise EM on one batch, over and over: its log-likelihood rises at
    every update (here; EM-like, not guaranteed in general) and approaches
    the batch fit's."""
    X, lengths = concat(sequences)
    m = poor_start(GaussianHMM(K, covariance_type="diag", init_params=""))
    scores = []
    for _ in range(25):
        m.partial_fit(X, lengths)
        scores.append(m.score(X, lengths))
    assert m.n_batches_ == 25
    assert np.all(np.diff(scores) > -1e-9 * abs(scores[0])), scores
    batch = poor_start(GaussianHMM(K, covariance_type="diag", init_params="",
                                   n_iter=200, tol=1e-6)).fit(X, lengths)
    start = poor_start(GaussianHMM(K, covariance_type="diag")).score(
        X, lengths)
    best = batch.monitor_.history[-1]
    # most of the way from the start to the batch optimum
    assert scores[-1] > best - 0.02 * (best - start)


def _stream(n_batches, seed):
    gen = true_model("full")
    rng = np.random.RandomState(seed)
    for i in range(n_batches):
        lengths = rng.randint(20, 60, size=4)
        yield concat([gen.sample(n, random_state=seed * 1000 + 10 * i + j)[0]
                      for j, n in enumerate(lengths)])


@pytest.mark.parametrize("decay", [0.6, 0.9])
def test_partial_fit_reaches_the_batch_fit_on_stationary_data(decay):
    """One pass of online EM over a stationary stream of 60 batches ends
    close to Baum-Welch on all the data, from the same (poor) start; the
    last updates move the parameters little."""
    stream = list(_stream(60, 1))
    X = np.concatenate([b[0] for b in stream])
    lengths = sum((b[1] for b in stream), [])
    batch = poor_start(GaussianHMM(K, covariance_type="full", init_params="",
                                   n_iter=100, tol=1e-4)).fit(X, lengths)
    online = poor_start(GaussianHMM(K, covariance_type="full", init_params="",
                                    online_decay=decay))
    for Xb, lb in stream:
        online.partial_fit(Xb, lb)
    # the same states (the poor start is close enough to keep their order)
    np.testing.assert_allclose(online.means_, batch.means_, atol=0.06)
    np.testing.assert_allclose(online.transmat_, batch.transmat_, atol=0.04)
    np.testing.assert_allclose(online.covars_, batch.covars_, atol=0.1)
    np.testing.assert_allclose(batch.means_, TRUE_MEANS, atol=0.1)
    held_out, held_lengths = next(_stream(1, 99))
    per_row = len(held_out)
    assert (online.score(held_out, held_lengths) / per_row
            > batch.score(held_out, held_lengths) / per_row - 0.01)


def test_partial_fit_initializes_continues_and_restarts(sequences):
    X, lengths = concat(sequences)
    m = GaussianHMM(K, covariance_type="tied", random_state=0)
    m.partial_fit(sequences[3])         # a batch of one sequence initializes
    assert m.n_batches_ == 1 and m.means_.shape == (K, D)
    m.partial_fit(X, lengths)
    assert m.n_batches_ == 2
    fitted = GaussianHMM(K, covariance_type="diag", random_state=0,
                         n_iter=200, tol=1e-8).fit(X, lengths)
    assert fitted.monitor_.converged
    before = fitted.means_.copy()
    fitted.partial_fit(X, lengths)      # continues from the (fixed) point
    assert fitted.n_batches_ == 1
    np.testing.assert_allclose(fitted.means_, before, atol=1e-5)
    fitted.fit(X, lengths)              # fit starts afresh
    fitted.partial_fit(X, lengths)
    assert fitted.n_batches_ == 1


def test_partial_fit_errors(sequences):
    X, lengths = concat(sequences[:3])
    with pytest.raises(ValueError, match=r"online_decay must be a float in "
                       r"\(0.5, 1\]"):
        GaussianHMM(K, online_decay=0.5).partial_fit(X, lengths)
    m = GaussianHMM(K, random_state=0).partial_fit(X, lengths)
    with pytest.raises(ValueError, match="X has 1 features, but GaussianHMM "
                       "is expecting 2"):
        m.partial_fit(X[:, :1])
    with pytest.raises(ValueError, match="doesn't sum to"):
        m.partial_fit(X, lengths[:-1])
    with pytest.raises(ValueError, match="n_samples=2 should be >= "
                       "n_clusters=3"):
        GaussianHMM(K).partial_fit(X[:2])
    impossible = true_model("diag")
    impossible.startprob_ = np.array([1.0, 0.0, 0.0])
    impossible.transmat_ = np.eye(K)
    # state 0, the only reachable one, has a density that underflows to 0
    # even in log space ((x - mu)^2 overflows)
    impossible.means_ = np.array([[1e200, 1e200], [0, 0], [3, 1.0]])
    with pytest.raises(ValueError, match="log-likelihood is -inf for this "
                       "batch: the model gives .*zero probability"):
        impossible.partial_fit(X, lengths)
    assert impossible.means_[0, 0] == 1e200    # unchanged


@pytest.mark.parametrize("how", ["fit", "fit_chunks", "dask", "partial_fit"])
def test_m_step_warnings_point_at_the_caller(da, how):
    """A never-visited state keeps its parameters with a warning, reported
    at the line that called the fit, whichever path ran."""
    X = np.random.RandomState(0).normal(size=(100, 1))
    m = GaussianHMM(2, init_params="", n_iter=2, covariance_type="full")
    m.startprob_, m.transmat_ = np.array([1.0, 0.0]), np.eye(2)
    m.means_, m.covars_ = np.array([[0.0], [1.0]]), np.ones((2, 1, 1))
    fit = {"fit": lambda: m.fit(X),
           "fit_chunks": lambda: m.fit_chunks(lambda: iter([X])),
           "dask": lambda: m.fit(da.from_array(X)),
           "partial_fit": lambda: m.partial_fit(X)}[how]
    with pytest.warns(RuntimeWarning) as record:
        fit()
    text = " ".join(str(w.message) for w in record)
    assert "no posterior weight" in text and "no expected transitions" in text
    assert {w.filename for w in record} == {__file__}
