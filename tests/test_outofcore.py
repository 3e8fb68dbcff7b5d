"""Out-of-core (memmap, chunk sources), online EM, and the Dask backend."""

import os
import signal
import warnings

import numpy as np
import pytest

from fastem import GaussianMixture
from fastem._validation import check_array
from fastem.chunks import array_chunks, npy_chunks

# Iterates of a chunked fit equal the in-memory fit up to the order in which
# per-chunk statistics are added: a few ulps of a mean log-likelihood.
RTOL = 1e-10


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (3000, 2)),
                   rng.normal(4, 0.8, (2000, 2)) @ [[1, 0.3], [0, 1]]])
    rng.shuffle(X)
    return X


@pytest.fixture(scope="module")
def reference(data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = GaussianMixture(2, random_state=0, tol=0, max_iter=3).fit(data)
        kw = dict(n_components=2, tol=0, max_iter=8, weights_init=a.weights_,
                  means_init=a.means_, precisions_init=a.precisions_)
        return kw, GaussianMixture(**kw).fit(data)


def _same_fit(a, b, rtol=RTOL):
    np.testing.assert_allclose(a.lower_bounds_, b.lower_bounds_, rtol=rtol)
    np.testing.assert_allclose(a.means_, b.means_, rtol=rtol, atol=1e-12)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=rtol)
    np.testing.assert_allclose(a.weights_, b.weights_, rtol=rtol)


def test_readonly_memmap_is_not_copied(tmp_path, data):
    path = tmp_path / "x.npy"
    np.save(path, data)
    mm = np.load(path, mmap_mode="r")
    assert np.shares_memory(check_array(mm), mm)  # validated without a copy
    a = GaussianMixture(2, random_state=0).fit(mm)
    b = GaussianMixture(2, random_state=0).fit(data)
    np.testing.assert_array_equal(a.means_, b.means_)


@pytest.mark.parametrize("ct", ["full", "diag"])
def test_fit_chunks_equals_in_memory(data, reference, ct):
    kw, _ = reference
    if ct == "diag":
        kw = dict(kw, covariance_type="diag",
                  precisions_init=np.array([np.diag(p)
                                            for p in kw["precisions_init"]]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = GaussianMixture(**kw).fit(data)
        chunked = GaussianMixture(**kw).fit_chunks(array_chunks(data, 777))
    _same_fit(full, chunked)


def test_fit_chunks_npy_and_weights(tmp_path, data, reference):
    kw, full = reference
    path = tmp_path / "x.npy"
    np.save(path, data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        chunked = GaussianMixture(**kw).fit_chunks(npy_chunks(path, 1000))
        _same_fit(full, chunked)
        w = np.random.default_rng(1).integers(0, 3, len(data)).astype(float)
        a = GaussianMixture(**kw).fit(data, sample_weight=w)
        b = GaussianMixture(**kw).fit_chunks(array_chunks(data, 900,
                                                          sample_weight=w))
    _same_fit(a, b)


def test_fit_chunks_parquet(tmp_path, data, reference):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    from fastem.chunks import parquet_chunks

    kw, full = reference
    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"a": data[:, 0], "b": data[:, 1]}), path,
                   row_group_size=1000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        chunked = GaussianMixture(**kw).fit_chunks(
            parquet_chunks(path, columns=["a", "b"], batch_rows=800))
    _same_fit(full, chunked)


def test_fit_chunks_own_initialization(data):
    gm = GaussianMixture(2, random_state=0).fit_chunks(
        array_chunks(data, 1000), init_size=500)
    order = np.argsort(gm.means_[:, 0])
    np.testing.assert_allclose(gm.means_[order][:, 0], [0, 4], atol=0.15)
    assert gm.converged_
    # the sample is deterministic given random_state
    gm2 = GaussianMixture(2, random_state=0).fit_chunks(
        array_chunks(data, 1000), init_size=500)
    np.testing.assert_array_equal(gm.means_, gm2.means_)


def test_fit_chunks_errors(data):
    with pytest.raises(TypeError, match="callable returning a fresh iterator"):
        GaussianMixture(2).fit_chunks(data)
    with pytest.raises(ValueError, match="no chunks"):
        GaussianMixture(2).fit_chunks(lambda: iter([]))
    with pytest.raises(ValueError, match="features"):
        GaussianMixture(2).fit_chunks(lambda: iter([data[:100],
                                                    data[:100, :1]]))


def test_partial_fit_lands_close_to_batch_fit(data):
    # One pass over the shuffled stream in batches of 250 rows (20 updates).
    batch = GaussianMixture(2, random_state=0).fit(data)
    online = GaussianMixture(2, random_state=0)
    for a in range(0, len(data), 250):
        online.partial_fit(data[a:a + 250])
    assert online.n_batches_ == len(data) // 250
    ob, oo = np.argsort(batch.means_[:, 0]), np.argsort(online.means_[:, 0])
    # Stochastic approximation: within 0.1 of the batch answer on means and
    # 0.05 on weights for 5,000 points (measured: 0.044 and 0.003).
    np.testing.assert_allclose(online.means_[oo], batch.means_[ob], atol=0.1)
    np.testing.assert_allclose(online.weights_[oo], batch.weights_[ob],
                               atol=0.05)
    assert len(online.lower_bounds_) == online.n_batches_


def test_partial_fit_step_size_and_errors(data):
    with pytest.raises(ValueError, match="online_decay"):
        GaussianMixture(2, online_decay=0.5).partial_fit(data)
    gm = GaussianMixture(2, random_state=0).partial_fit(data[:500])
    with pytest.raises(ValueError, match="features"):
        gm.partial_fit(data[:10, :1])
    with pytest.raises(ValueError, match="at least n_components"):
        GaussianMixture(3).partial_fit(data[:2])


# ---------------------------------------------------------------- dask
dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("dask.distributed")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None)
    cl = distributed.Client(cluster)
    yield cl
    cl.close()
    cluster.close()


def test_dask_fit_equals_in_memory(client, data, reference):
    kw, full = reference
    dX = da.from_array(data, chunks=(700, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm = GaussianMixture(**kw).fit(dX)
    _same_fit(full, gm)
    labels = gm.predict(dX)
    assert isinstance(labels, da.Array)  # lazy
    np.testing.assert_array_equal(labels.compute(), full.predict(data))
    proba = gm.predict_proba(dX)
    assert isinstance(proba, da.Array)
    np.testing.assert_allclose(proba.compute(), full.predict_proba(data),
                               atol=1e-12)
    np.testing.assert_allclose(gm.score_samples(dX).compute(),
                               full.score_samples(data), rtol=1e-12)
    assert gm.score(dX) == pytest.approx(full.score(data), rel=1e-12)


def test_dask_own_initialization_and_dataframe(client, data):
    pd = pytest.importorskip("pandas")
    dd = pytest.importorskip("dask.dataframe")
    ddf = dd.from_pandas(pd.DataFrame(data, columns=["a", "b"]), npartitions=4)
    gm = GaussianMixture(2, random_state=0).fit(ddf)
    order = np.argsort(gm.means_[:, 0])
    np.testing.assert_allclose(gm.means_[order][:, 0], [0, 4], atol=0.15)


def test_dask_survives_a_killed_worker(client, data, reference):
    kw, full = reference
    dX = da.from_array(data, chunks=(500, 2))
    pids = list(client.run(os.getpid).values())
    killed = []

    def kill_one(n_iter, lower_bound):
        if n_iter == 3 and not killed:
            os.kill(pids[0], signal.SIGKILL)  # the nanny restarts it
            killed.append(pids[0])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm = GaussianMixture(**kw, callback=kill_one).fit(dX)
    assert killed
    _same_fit(full, gm)
