"""``ef.sweep``: a function over a grid of points, on local processes or a Dask cluster.

The reference is the plain loop ``[fn(p) for p in points]`` in this process: every
parallel run (two loky workers, a real two-process Dask ``LocalCluster`` on loopback,
reached through its Client or its address string) must return the same results bit for
bit, in grid order, for sweeps of seeded eulerflow trainings (``ef.mlp`` fits and an
``ef.NeuralODE`` fit on the spiral). Failures are reported per point; bad arguments and
missing optional packages raise clear errors.

The functions sent to the workers are defined at module level here: loky and Dask pickle
them with cloudpickle, by reference to this module, which the worker processes import
(they start with this process's ``sys.path``).
"""

from __future__ import annotations

import itertools
import os
import pickle
import sys
import time

import eulerflow as ef
import numpy as np
import pytest

# ----------------------------------------------------------------------------- workers


def _regression_data():
    rng = np.random.default_rng(7)
    X = rng.uniform(-2.0, 2.0, size=(64, 2))
    Y = np.stack([np.sin(X[:, 0]) * X[:, 1], np.tanh(X[:, 0] - X[:, 1])], axis=1)
    return X, Y


def fit_mlp(point):
    """A small seeded MLP fit: the per-epoch losses and the final weights."""
    X, Y = _regression_data()
    net = ef.mlp([2, 8, 2], "tanh", seed=point["seed"])
    hist = net.fit(X, Y, optimizer=ef.optim.Adam(lr=point["lr"]), epochs=20, batch_size=16,
                   seed=point["seed"])
    return hist.loss, [np.array(p, copy=True) for p in net.parameters()]


def fit_node(lr):
    """Seed 002's LinearODE on the first 20 points of the spiral."""
    t, data = ef.data.spiral_ode()
    field = ef.Dense(2, 2, bias=False, seed=3)
    node = ef.NeuralODE(field, method="euler", steps_per_interval=5)
    hist = node.fit(data[:20], t[:20], epochs=30, optimizer=ef.optim.SGD(lr, momentum=0.95),
                    seed=1)
    return hist.loss, [np.array(field.parameters()[0], copy=True)]


def fails_on_odd(point):
    if point % 2:
        raise ValueError(f"odd point {point}")
    return point * 10


def slower_first(point):
    """Earlier points finish later: completion order is not grid order."""
    time.sleep(0.05 * (4 - point))
    return point, os.getpid()


class Unpicklable(Exception):
    """An exception that cannot be rebuilt from its pickle."""

    def __init__(self, message, extra):
        super().__init__(message)
        self.extra = extra

    def __reduce__(self):
        raise pickle.PicklingError("not this one")


def raises_unpicklable(point):
    raise Unpicklable(f"bad {point}", extra=point)


def identity(point):
    return point


MLP_POINTS = ef.sweep_grid(lr=[3e-3, 1e-2, 3e-2], seed=[0, 1])
NODE_POINTS = [3e-3, 1e-2, 2e-2]


def assert_same_bits(results, expected):
    assert len(results) == len(expected)
    for i, ((loss, params), (loss_e, params_e)) in enumerate(zip(results, expected,
                                                                 strict=True)):
        assert loss.tobytes() == loss_e.tobytes(), f"point {i}: losses differ"
        for p, q in zip(params, params_e, strict=True):
            assert p.dtype == q.dtype and p.shape == q.shape
            assert p.tobytes() == q.tobytes(), f"point {i}: parameters differ"


@pytest.fixture(scope="module")
def reference():
    """The plain loop in this process."""
    return {"mlp": [fit_mlp(p) for p in MLP_POINTS], "node": [fit_node(p) for p in NODE_POINTS]}


# ----------------------------------------------------------------------------- grid


def test_grid_is_the_cartesian_product_last_axis_fastest():
    points = ef.sweep_grid(lr=[0.1, 0.01], seed=range(3), method=("euler",))
    assert points == [{"lr": lr, "seed": s, "method": "euler"}
                      for lr, s in itertools.product([0.1, 0.01], range(3))]
    assert points[:2] == [{"lr": 0.1, "seed": 0, "method": "euler"},
                          {"lr": 0.1, "seed": 1, "method": "euler"}]
    assert ef.sweep_grid(lr=np.array([1.0, 2.0])) == [{"lr": 1.0}, {"lr": 2.0}]


def test_grid_bad_axes():
    with pytest.raises(ValueError, match="sweep_grid needs at least one axis"):
        ef.sweep_grid()
    with pytest.raises(TypeError, match="'method'.*string"):
        ef.sweep_grid(method="euler")
    with pytest.raises(TypeError, match="'lr' must be iterable"):
        ef.sweep_grid(lr=0.1)


# ----------------------------------------------------------------------------- local


def test_sequential_equals_the_plain_loop(reference):
    assert_same_bits(ef.sweep(fit_mlp, MLP_POINTS, n_jobs=1, progress=False), reference["mlp"])
    assert_same_bits(ef.sweep(fit_node, NODE_POINTS, n_jobs=1, progress=False), reference["node"])


@pytest.mark.parametrize("backend", [None, "processes", "local"])
def test_two_processes_equal_one_bit_for_bit(reference, backend):
    assert_same_bits(ef.sweep(fit_mlp, MLP_POINTS, backend=backend, n_jobs=2, progress=False),
                     reference["mlp"])
    assert_same_bits(ef.sweep(fit_node, NODE_POINTS, backend=backend, n_jobs=2, progress=False),
                     reference["node"])


def test_all_cores_by_default(reference):
    assert_same_bits(ef.sweep(fit_node, NODE_POINTS, progress=False), reference["node"])


def test_results_in_grid_order_whatever_the_completion_order():
    out = ef.sweep(slower_first, range(5), n_jobs=2, progress=False)
    assert [p for p, _ in out] == list(range(5))
    assert all(pid != os.getpid() for _, pid in out)  # really ran in the workers
    # any iterable of points, read once
    assert ef.sweep(identity, (x * x for x in range(4)), n_jobs=2, progress=False) == [0, 1, 4, 9]


def test_progress_bar(capsys):
    assert ef.sweep(identity, [1, 2, 3], n_jobs=1, progress=True) == [1, 2, 3]
    assert "sweep:" in capsys.readouterr().err  # tqdm redraws at most every 0.1 s
    assert ef.sweep(identity, [1, 2, 3], n_jobs=1, progress=False) == [1, 2, 3]
    assert capsys.readouterr().err == ""


# ----------------------------------------------------------------------------- failures


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_failing_points_are_reported_and_the_others_kept(n_jobs):
    with pytest.raises(ef.SweepError) as info:
        ef.sweep(fails_on_odd, [0, 1, 2, 3, 4], n_jobs=n_jobs, progress=False)
    err = info.value
    assert isinstance(err, RuntimeError)
    message = str(err)
    assert "2 of 5 grid points failed" in message
    assert "grid[1] = 1: ValueError: odd point 1" in message
    assert "grid[3] = 3: ValueError: odd point 3" in message
    assert err.results == [0, None, 20, None, 40]
    assert [(i, p, type(e), str(e)) for i, p, e in err.failures] == [
        (1, 1, ValueError, "odd point 1"), (3, 3, ValueError, "odd point 3")]
    assert err.__cause__ is err.failures[0][2]
    assert len(err.tracebacks) == 2 and "fails_on_odd" in err.tracebacks[0]


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_errors_return_puts_the_exceptions_in_the_results(n_jobs):
    out = ef.sweep(fails_on_odd, [0, 1, 2], n_jobs=n_jobs, progress=False, errors="return")
    assert out[0] == 0 and out[2] == 20
    assert isinstance(out[1], ValueError) and str(out[1]) == "odd point 1"


def test_a_diverging_training_comes_back_whole_from_a_worker(reference):
    lrs = [NODE_POINTS[0], 1e5, NODE_POINTS[1]]
    with pytest.raises(ef.SweepError, match=r"grid\[1\] = 100000.0: DivergenceError: training "
                                         r"diverged at epoch 0") as info:
        ef.sweep(fit_node, lrs, n_jobs=2, progress=False)
    (index, point, exc), = info.value.failures
    assert (index, point) == (1, 1e5)
    direct = pytest.raises(ef.DivergenceError, fit_node, 1e5).value
    assert type(exc) is ef.DivergenceError
    assert (exc.epoch, exc.batch, str(exc)) == (direct.epoch, direct.batch, str(direct))
    assert np.array_equal(exc.history.loss, direct.history.loss)
    assert_same_bits([info.value.results[0], info.value.results[2]], reference["node"][:2])


def test_failure_message_names_the_point_by_repr_and_shortens_it():
    point = {"lr": 0.5, "name": "x" * 500}
    with pytest.raises(ef.SweepError, match=r"grid\[0\] = \{'lr': 0.5, 'name': 'xxx.*\.\.\.: "
                                         r"KeyError") as info:
        ef.sweep(lambda p: p["missing"], [point], progress=False)
    assert info.value.failures[0][1] is point


def test_many_failures_are_summarized():
    with pytest.raises(ef.SweepError, match=r"^6 of 6 grid points failed.*grid\[2\].*and 3 more$"):
        ef.sweep(fails_on_odd, [1, 3, 5, 7, 9, 11], n_jobs=1, progress=False)


def test_an_unpicklable_exception_from_a_worker_still_names_its_type():
    out = ef.sweep(raises_unpicklable, [0, 1], n_jobs=2, progress=False, errors="return")
    for i, exc in enumerate(out):
        assert type(exc) is RuntimeError
        assert "Unpicklable" in str(exc) and f"bad {i}" in str(exc)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("empty", [[], (), iter([]), ef.sweep_grid(lr=[], seed=[1, 2])],
                         ids=["list", "tuple", "iterator", "grid"])
def test_empty_grid(empty):
    with pytest.raises(ValueError, match="grid is empty"):
        ef.sweep(identity, empty, progress=False)


@pytest.mark.parametrize(("bad", "match"), [
    ({"lr": [0.1, 0.01]}, "mapping.*sweep_grid\\(\\*\\*axes\\)"),
    ("abc", "string"),
    (5, "iterable of points, got int"),
])
def test_grid_that_is_not_a_sequence_of_points(bad, match):
    with pytest.raises(TypeError, match=match):
        ef.sweep(identity, bad, progress=False)


def test_fn_must_be_callable():
    with pytest.raises(TypeError, match="fn must be callable, got list"):
        ef.sweep([1, 2], [1, 2], progress=False)


@pytest.mark.parametrize("n_jobs", [0, -1])
def test_n_jobs_must_be_positive(n_jobs):
    with pytest.raises(ValueError, match=f"n_jobs must be a positive int or None.*{n_jobs}"):
        ef.sweep(identity, [1, 2], n_jobs=n_jobs, progress=False)


@pytest.mark.parametrize("n_jobs", [1.5, "2", True])
def test_n_jobs_must_be_an_int(n_jobs):
    with pytest.raises(TypeError, match="n_jobs must be a positive int or None"):
        ef.sweep(identity, [1, 2], n_jobs=n_jobs, progress=False)


@pytest.mark.parametrize("backend", ["threads", "Dask", 1, ""])
def test_unknown_backend_lists_the_valid_ones(backend):
    with pytest.raises(ValueError, match=r"backend must be one of \[None, 'processes', "
                                         r"'local', 'dask'\]"):
        ef.sweep(identity, [1, 2], backend=backend, progress=False)


def test_other_bad_arguments():
    with pytest.raises(ValueError, match="errors must be 'raise' or 'return'"):
        ef.sweep(identity, [1], errors="ignore", progress=False)
    with pytest.raises(ValueError, match="n_jobs applies to the local backend"):
        ef.sweep(identity, [1], backend="dask", n_jobs=2, progress=False)
    with pytest.raises(ValueError, match="client applies to backend='dask'"):
        ef.sweep(identity, [1], backend="processes", client="tcp://127.0.0.1:1", progress=False)


# ----------------------------------------------------------------------------- missing packages


def test_missing_joblib_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "joblib", None)  # `import joblib` raises ImportError
    with pytest.raises(ImportError, match=r'pip install "eulerflow\[sweep\]".*pip install '
                                          r"joblib"):
        ef.sweep(identity, [1, 2], n_jobs=2, progress=False)
    # the sequential path needs no joblib
    assert ef.sweep(identity, [1, 2], n_jobs=1, progress=False) == [1, 2]


def test_missing_dask_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r'pip install "eulerflow\[sweep\]".*pip install '
                                          r'"dask\[distributed\]"'):
        ef.sweep(identity, [1, 2], backend="dask", progress=False)


# ----------------------------------------------------------------------------- Dask


@pytest.fixture(scope="module")
def dask_client():
    """A real two-process Dask cluster on loopback, and a Client to it (which is the
    default client while it is open); both shut down after this module."""
    import distributed

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        yield client


def test_dask_client_equals_local_bit_for_bit(reference, dask_client):
    assert_same_bits(ef.sweep(fit_mlp, MLP_POINTS, backend="dask", client=dask_client,
                           progress=False), reference["mlp"])
    # a client alone means backend="dask"
    assert_same_bits(ef.sweep(fit_node, NODE_POINTS, client=dask_client, progress=False),
                     reference["node"])


def test_dask_address_string_equals_local_bit_for_bit(reference, dask_client):
    address = dask_client.scheduler.address
    assert address.startswith("tcp://127.0.0.1:")
    assert_same_bits(ef.sweep(fit_node, NODE_POINTS, backend="dask", client=address,
                           progress=False), reference["node"])


def test_dask_default_client(reference, dask_client):
    assert_same_bits(ef.sweep(fit_node, NODE_POINTS, backend="dask", progress=True),
                     reference["node"])


def test_dask_results_in_grid_order_and_points_as_given(dask_client):
    out = ef.sweep(slower_first, range(5), client=dask_client, progress=False)
    assert [p for p, _ in out] == list(range(5))
    assert all(pid != os.getpid() for _, pid in out)
    # tuples and dicts holding callables are points, not task specs for Dask
    points = [(len, [1, 2]), {"f": sum, "x": [1]}]
    assert ef.sweep(identity, points, client=dask_client, progress=False) == points


def test_dask_failures_are_reported(dask_client):
    with pytest.raises(ef.SweepError, match=r"1 of 3 grid points failed.*grid\[1\] = 1: "
                                         r"ValueError: odd point 1") as info:
        ef.sweep(fails_on_odd, [0, 1, 2], client=dask_client, progress=False)
    assert info.value.results == [0, None, 20]
    out = ef.sweep(raises_unpicklable, [0], client=dask_client, progress=False, errors="return")
    assert type(out[0]) is RuntimeError and "Unpicklable" in str(out[0])


def test_dask_without_a_client(monkeypatch):
    import distributed

    def no_client():
        raise ValueError("No clients found")

    monkeypatch.setattr(distributed, "default_client", no_client)
    with pytest.raises(ValueError, match="found no Dask client: pass client=Client"):
        ef.sweep(identity, [1], backend="dask", progress=False)
    with pytest.raises(TypeError, match="client must be a dask.distributed.Client"):
        ef.sweep(identity, [1], backend="dask", client=42, progress=False)
