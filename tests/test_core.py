"""The EM core (fastem.core): driver, monitors, data sources, import graph."""

import ast
import pathlib
from collections import deque
from functools import partial

import numpy as np
import pytest

from fastem import _config
from fastem.core import (
    ArraySource,
    ChunkSource,
    ConvergenceMonitor,
    LowerBoundMonitor,
    run_em,
)
from fastem.families.gaussian import GaussianFamily
from fastem.models.mixture import GaussianMixture
from fastem.stats import GaussianParams

ROOT = pathlib.Path(__file__).resolve().parents[1]


# ------------------------------------------------------- a 1-D toy model
class ToyStats:
    """Additive statistics of a two-Gaussian 1-D mixture (NumPy only)."""

    def __init__(self, n, sx, sxx, loglik, rows):
        self.n, self.sx, self.sxx = n, sx, sxx
        self.loglik, self.rows = loglik, rows

    def __add__(self, other):
        if other is None:
            return self
        return ToyStats(self.n + other.n, self.sx + other.sx,
                        self.sxx + other.sxx, self.loglik + other.loglik,
                        self.rows + other.rows)

    __radd__ = __add__

    @property
    def objective(self):
        return self.loglik / self.rows


def toy_chunk_stats(params, x, w):
    x = x[:, 0]
    pi, mu, var = params
    logp = (np.log(pi) - 0.5 * np.log(2 * np.pi * var)
            - 0.5 * (x[:, None] - mu) ** 2 / var)
    m = logp.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(logp - m).sum(axis=1))
    r = np.exp(logp - lse[:, None])
    return ToyStats(r.sum(0), r.T @ x, r.T @ x ** 2, lse.sum(), x.shape[0])


def toy_m_step(stats, params):
    n = stats.n
    mu = stats.sx / n
    var = np.maximum(stats.sxx / n - mu ** 2, 1e-6)
    return (n / n.sum(), mu, var)


def toy_init(rng):
    mu = np.sort(rng.normal(0.0, 3.0, size=2))
    return (np.array([0.5, 0.5]), mu, np.array([1.0, 1.0]))


@pytest.fixture(scope="module")
def toy_x():
    rng = np.random.RandomState(0)
    return np.concatenate([rng.normal(-2, 1, 600),
                           rng.normal(3, 0.5, 400)])[:, None]


def toy_e_step(x):
    src = ArraySource(x)
    return lambda params: src.map_sum(partial(toy_chunk_stats, params))


def run_toy(x, **kw):
    kw.setdefault("monitor", LowerBoundMonitor(1e-8))
    kw.setdefault("max_iter", 200)
    kw.setdefault("rng", np.random.RandomState(1))
    return run_em(toy_init, toy_e_step(x), toy_m_step, kw.pop("monitor"),
                  **kw)


def test_toy_converges_to_the_two_components(toy_x):
    res = run_toy(toy_x)
    assert res.converged and res.n_iter < 200
    assert np.allclose(np.sort(res.params[1]), [-2, 3], atol=0.2)
    assert len(res.history) == res.n_iter
    assert res.history[-1] == res.objective
    assert np.all(np.diff(res.history) > -1e-12)   # EM never decreases


def test_n_init_keeps_the_best_run(toy_x):
    rng = np.random.RandomState(5)
    singles = [run_toy(toy_x, rng=rng, max_iter=3) for _ in range(4)]
    best = run_toy(toy_x, rng=np.random.RandomState(5), n_init=4, max_iter=3)
    objs = [r.objective for r in singles]
    assert best.objective == max(objs)
    assert best.init == int(np.argmax(objs))
    assert best.history == singles[best.init].history


def test_warm_start_skips_init_and_continues(toy_x):
    first = run_toy(toy_x, max_iter=5, monitor=LowerBoundMonitor(0.0))

    def no_init(rng):
        raise AssertionError("init called on a warm start")

    e = toy_e_step(toy_x)
    more = run_em(no_init, e, toy_m_step, LowerBoundMonitor(0.0), n_init=3,
                  max_iter=5, start=first.params,
                  start_objective=first.objective)
    ten = run_toy(toy_x, max_iter=10, monitor=LowerBoundMonitor(0.0))
    assert more.history == ten.history[5:]
    assert more.n_iter == 5


def test_tol_and_max_iter(toy_x):
    res = run_toy(toy_x, max_iter=7, monitor=LowerBoundMonitor(0.0))
    assert res.n_iter == 7 and not res.converged and len(res.history) == 7
    loose = run_toy(toy_x, monitor=LowerBoundMonitor(1e-1))
    tight = run_toy(toy_x, monitor=LowerBoundMonitor(1e-10))
    assert loose.converged and tight.converged
    assert loose.n_iter < tight.n_iter
    assert abs(loose.history[-1] - loose.history[-2]) < 1e-1
    zero = run_toy(toy_x, max_iter=0)
    assert zero.n_iter == 0 and zero.history == []


def test_callback_stops_a_run(toy_x):
    seen = []

    def cb(n_iter, obj):
        seen.append((n_iter, obj))
        return n_iter == 3

    res = run_toy(toy_x, callback=cb, monitor=LowerBoundMonitor(0.0))
    assert res.n_iter == 3 and not res.converged
    assert [o for _, o in seen] == res.history


def test_check_and_exceptions_propagate(toy_x):
    def check(obj, n_iter):
        if n_iter == 2:
            raise ValueError("bad objective")

    with pytest.raises(ValueError, match="bad objective"):
        run_toy(toy_x, check=check)


def test_ctrl_c_flag_is_checked_after_each_pass(toy_x):
    e = toy_e_step(toy_x)
    passes = []

    def e_step(params):
        passes.append(1)
        if len(passes) == 2:
            _config._INTERRUPTED[0] = True   # what the SIGINT handler does
        return e(params)

    try:
        with pytest.raises(KeyboardInterrupt):
            run_em(toy_init, e_step, toy_m_step, LowerBoundMonitor(0.0),
                   max_iter=10, rng=np.random.RandomState(0))
    finally:
        _config._INTERRUPTED[0] = False
    assert len(passes) == 2


def test_hmmlearn_monitor_semantics_through_the_driver(toy_x):
    mon = ConvergenceMonitor(1e-3, 50, False)
    res = run_toy(toy_x, monitor=mon, max_iter=50)
    assert isinstance(mon.history, deque) and mon.iter == res.n_iter
    assert res.converged == (mon.iter == 50 or
                             mon.history[-1] - mon.history[-2] < 1e-3)
    mon = ConvergenceMonitor(-np.inf, 4, False)
    res = run_toy(toy_x, monitor=mon, max_iter=4)
    assert mon.iter == 4 and mon.converged   # hmmlearn: n_iter reached


def test_verbose_lower_bound_monitor(toy_x, capsys):
    run_toy(toy_x, monitor=LowerBoundMonitor(1e-3, verbose=2,
                                             verbose_interval=1))
    out = capsys.readouterr().out
    assert "Initialization 0" in out and "ll change" in out
    assert "Initialization converged." in out


# ------------------------------------- estimator state on failure / Ctrl-C
def test_gaussian_mixture_unchanged_after_a_failed_warm_fit(toy_x):
    rng = np.random.RandomState(0)
    X = np.vstack([rng.normal(0, 1, (200, 2)), rng.normal(5, 1, (200, 2))])
    gm = GaussianMixture(2, random_state=0, max_iter=2, tol=0.0).fit(X)
    before = {k: np.copy(v) if isinstance(v, np.ndarray) else v
              for k, v in vars(gm).items() if k.endswith("_")}

    def boom(n_iter, lb):
        if n_iter == 1:
            raise RuntimeError("boom")

    gm.set_params(warm_start=True, callback=boom)
    with pytest.raises(RuntimeError, match="boom"):
        gm.fit(X)
    after = {k: v for k, v in vars(gm).items() if k.endswith("_")}
    assert before.keys() == after.keys()
    for k, v in before.items():
        assert np.array_equal(after[k], v), k


# ------------------------------------------------------------- sources
@pytest.fixture(scope="module")
def blobs():
    rng = np.random.RandomState(3)
    X = np.vstack([rng.normal(0, 1, (700, 3)), rng.normal(4, 0.5, (500, 3))])
    w = rng.uniform(0.5, 2.0, X.shape[0])
    return X, w


def _params(X):
    means = X[[0, -1]].astype(np.float64)
    return GaussianParams(np.array([0.5, 0.5]), means,
                          np.tile(np.eye(3), (2, 1, 1)), "full")


def _chunks(X, w, size):
    def make():
        for a in range(0, X.shape[0], size):
            yield X[a:a + size], w[a:a + size]
    return make


def _close(a, b):
    for name in ("nk", "sums", "scatter"):
        assert np.allclose(getattr(a, name), getattr(b, name), rtol=1e-10,
                           atol=1e-10), name
    assert np.isclose(a.loglik, b.loglik, rtol=1e-12)
    assert a.weight_sum == pytest.approx(b.weight_sum, rel=1e-12)


def test_split_then_merge_equals_whole(blobs):
    X, w = blobs
    params = _params(X)
    fn = partial(GaussianFamily(params.covariance_type).stats, params)
    whole = ArraySource(X, w).map_sum(fn)
    src = ChunkSource(_chunks(X, w, 97)).scan(np.random.RandomState(0), 50)
    assert src.n_rows == X.shape[0] and src.n_features == 3
    assert src.init_sample()[0].shape == (50, 3)
    _close(src.map_sum(fn), whole)
    da = pytest.importorskip("dask.array")
    from fastem.core import DaskSource

    ds = DaskSource(da.from_array(X, chunks=(211, 3))).set_weights(w)
    assert (ds.n_rows, ds.n_features) == X.shape
    _close(ds.map_sum(fn), whole)


def test_chunk_source_counts_rows_every_pass(blobs):
    X, w = blobs
    calls = [0]

    def shrinking():
        calls[0] += 1
        return iter([X[:-calls[0]]])

    src = ChunkSource(shrinking).scan(np.random.RandomState(0), 10)
    with pytest.raises(ValueError, match="on pass 2"):
        src.map_sum(partial(GaussianFamily().stats, _params(X)))


def test_fits_from_every_source_agree(blobs):
    X, w = blobs
    start = dict(weights_init=[0.5, 0.5], means_init=X[[0, -1]],
                 precisions_init=np.tile(np.eye(3), (2, 1, 1)), tol=1e-8)
    a = GaussianMixture(2, **start).fit(X, sample_weight=w)
    b = GaussianMixture(2, **start).fit_chunks(_chunks(X, w, 113))
    fits = [b]
    try:
        import dask.array as da
    except ImportError:
        da = None
    if da is not None:
        fits.append(GaussianMixture(2, **start).fit(
            da.from_array(X, chunks=(301, 3)), sample_weight=w))
    for f in fits:
        assert f.n_iter_ == a.n_iter_
        assert np.allclose(f.means_, a.means_, rtol=1e-10, atol=1e-10)
        assert np.allclose(f.covariances_, a.covariances_, rtol=1e-10,
                           atol=1e-10)
        assert np.allclose(f.lower_bounds_, a.lower_bounds_, rtol=1e-10)


# --------------------------------------------------------- import graph
def _imports(path):
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:
                out.add(mod)
                out.update(f"{mod}.{a.name}".strip(".") for a in node.names)
            else:
                out.add(mod)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


@pytest.mark.parametrize("path", ["fastem/_dask.py", "fastem/core/__init__.py",
                                  "fastem/core/driver.py",
                                  "fastem/core/monitor.py",
                                  "fastem/core/sources.py",
                                  "fastem/core/_data.py"])
def test_no_back_edge_to_the_estimators(path):
    names = _imports(ROOT / path)
    for name in names:
        assert not name.startswith(("fastem.models", "fastem.mixture",
                                    "fastem.hmm")), (path, name)
        assert name not in ("mixture", "hmm", "models"), (path, name)



@pytest.mark.parametrize("ct", ["full", "tied", "diag", "spherical"])
def test_gaussian_mixture_state_round_trip(ct):
    """GaussianMixture is a MixtureModel: export_state / import_state (the
    persistence protocol every model shares) give back the same model."""
    from fastem import GaussianMixture

    X = np.random.default_rng(0).normal(size=(300, 3))
    X[150:] += 4
    gm = GaussianMixture(2, covariance_type=ct, random_state=0).fit(X)
    st = gm.export_state()
    back = GaussianMixture(2, covariance_type=ct).import_state(st)
    np.testing.assert_array_equal(back.predict_proba(X), gm.predict_proba(X))
    np.testing.assert_allclose(back.covariances_, gm.covariances_, rtol=1e-12)
    assert back.n_parameters() == gm.n_parameters() == gm._n_parameters()
    with pytest.raises(ValueError, match="n_components"):
        GaussianMixture(3, covariance_type=ct).import_state(st)


# ------------------------------------------------ run_workers (the pool)
def test_run_workers_runs_one_copy_per_thread_and_waits():
    """Copies = min(n_tasks, thread setting); all finish before it returns;
    a copy's exception reaches the caller."""
    import threading

    import numba

    from fastem import _config

    seen, lock = [], threading.Lock()

    def worker(counter, n):
        with lock:
            seen.append(threading.get_ident())
        while True:
            with lock:
                c = counter[0]
                counter[0] += 1
            if c >= n:
                return

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs 2 threads")
    with _config.threads(2):
        counter = [0]
        _config.run_workers(worker, (counter, 10), 10)
        assert len(seen) == (1 if numba.config.DISABLE_JIT else 2)
        assert counter[0] >= 10  # every chunk taken before returning
        seen.clear()
        _config.run_workers(worker, ([0], 1), 1)  # one chunk: inline
        assert seen == [threading.get_ident()]
    with _config.threads(1):
        seen.clear()
        _config.run_workers(worker, ([0], 10), 10)
        assert seen == [threading.get_ident()]

    def boom(*args):
        raise RuntimeError("from a worker")

    with _config.threads(2), pytest.raises(RuntimeError, match="from a worker"):
        _config.run_workers(boom, (), 4)
