"""Mean-field trainings on several threads (issue 9, deliverable 3).

A step's particles are summed in fixed chunks of 512 whose partial sums are added in
their order, so the chunks can run on any thread: ``fit_teacher`` and
``fit`` share them out among a team of threads that stays awake through the run,
and the held-out or training loss at each snapshot is shared out by samples. The
results must be the same bits whatever the thread count, and the bits of
``step`` taken one batch at a time (which runs on one thread)."""
import eulerflow as ef
import numpy as np
import pytest
from eulerflow import _core
from eulerflow.meanfield import TwoLayerReLU, teacher_samples


@pytest.fixture
def threads():
    """Sets the thread count for the test body and restores it afterwards."""
    before = ef.get_num_threads()
    yield ef.set_num_threads
    ef.set_num_threads(before)


def params(net):
    return net.a.copy(), net.w.copy(), net.b.copy()


def assert_same_bits(p, q, what):
    for u, v, name in zip(p, q, "awb", strict=True):
        np.testing.assert_array_equal(u, v, err_msg=f"{what}: {name}")


def fit_teacher_run(start, teacher, steps, every=3):
    net = start.copy()
    run = net.fit_teacher(teacher, steps=steps, batch=7, lr=2.0, snapshot_every=every, seed=5,
                          n_test=37)
    return params(net), run.test_loss.copy(), run.snapshots.copy()


# widths around the chunk of 512 and the vector of 4: one chunk, a chunk and a
# particle, ragged chunks, and more chunks than threads
WIDTHS = (3, 512, 513, 1030, 2051, 5000)


@pytest.mark.parametrize("d", (1, 2, 3, 4, 6))
@pytest.mark.parametrize("m", WIDTHS)
def test_fit_teacher_bits_do_not_depend_on_the_thread_count(m, d, threads):
    teacher = TwoLayerReLU.random(3, d, seed=0)
    start = TwoLayerReLU.small_sphere(m, d, 0.5, seed=1)
    results = {}
    for n in (1, 2, 3):
        threads(n)
        results[n] = fit_teacher_run(start, teacher, steps=8)
    for n in (2, 3):
        assert_same_bits(results[n][0], results[1][0], f"m={m} d={d} threads={n}")
        np.testing.assert_array_equal(results[n][1], results[1][1])  # held-out losses
        np.testing.assert_array_equal(results[n][2], results[1][2])  # snapshots


@pytest.mark.parametrize("d", (2, 4, 7))
@pytest.mark.parametrize("m", (513, 2051))
def test_threaded_runs_take_the_bits_of_single_steps(m, d, threads, each_isa_variant):
    """Two threads against ``step`` one batch at a time (one thread), under every kernel
    variant: the chunked sums are part of the step's definition, not of the threading
    (d > 4: blocks of 512 particles whose dot products are added in order)."""
    teacher = TwoLayerReLU.random(3, d, seed=0)
    start = TwoLayerReLU.small_sphere(m, d, 0.5, seed=1)
    steps, bs, lr = 6, 8, 1.5
    X, _ = teacher_samples(teacher, steps * bs, seed=4)
    threads(2)
    for variant in each_isa_variant():
        Y = teacher(X)
        looped = start.copy()
        for s in range(steps):
            looped.step(X[s * bs:(s + 1) * bs], Y[s * bs:(s + 1) * bs], lr)
        whole = start.copy()
        whole.fit_teacher(teacher, steps=steps, batch=bs, lr=lr, snapshot_every=0, seed=4,
                          n_test=1)
        assert_same_bits(params(whole), params(looped), f"fit_teacher {variant}")


@pytest.mark.parametrize("shuffle", (False, True))
@pytest.mark.parametrize("m", (600, 3000))
def test_fit_on_data_bits_do_not_depend_on_the_thread_count(m, shuffle, threads):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((45, 2))
    Y = np.sin(X[:, 0]) * X[:, 1]
    start = TwoLayerReLU.small_sphere(m, 2, 0.5, seed=2)
    out = {}
    for n in (1, 2, 4):
        threads(n)
        net = start.copy()
        run = net.fit(X, Y, lr=3.0, batch=10, epochs=3, shuffle=shuffle, seed=1, snapshot_every=2)
        out[n] = (params(net), run.train_loss.copy())
    for n in (2, 4):
        assert_same_bits(out[n][0], out[1][0], f"fit m={m} threads={n}")
        np.testing.assert_array_equal(out[n][1], out[1][1])


def test_the_chunked_sums_match_the_reference_forward_pass():
    """More particles than one chunk: the forward pass (chunked sums) agrees with a plain
    NumPy mean to rounding."""
    net = TwoLayerReLU.small_sphere(5003, 3, 1.0, seed=7)
    X = np.random.default_rng(8).standard_normal((31, 3))
    expect = np.maximum(X @ net.w.T + net.b, 0.0) @ net.a / net.m
    np.testing.assert_allclose(net(X), expect, rtol=1e-12, atol=1e-15)


def test_ensemble_members_on_threads_keep_their_separate_bits(threads):
    """Members of an ensemble run on threads of their own and must not also take the team
    (it would add threads beyond those asked for); each still ends as its separate run,
    which itself used the team."""
    threads(2)
    teacher = TwoLayerReLU.random(3, 2, seed=0)
    widths = (700, 1200, 600)

    def make(i):
        return TwoLayerReLU.small_sphere(widths[i], 2, 0.5, seed=i)

    alone = [fit_teacher_run(make(i), teacher, steps=5) for i in range(3)]
    for n in (1, 2):
        ens = ef.Ensemble(make, 3)
        hist = ens.fit_teacher(teacher, steps=5, batch=7, lr=2.0, snapshot_every=3, seed=5,
                               n_test=37, threads=n)
        for i, (p, losses, snaps) in enumerate(alone):
            assert_same_bits(params(ens.members[i]), p, f"member {i}, {n} threads")
            np.testing.assert_array_equal(hist.runs[i].snapshots, snaps)
            np.testing.assert_array_equal(hist.loss[:, i], losses)


# ------------------------------------------------------------------------------- the team


@pytest.mark.parametrize("want", (1, 2, 3, 8))
def test_a_team_runs_every_chunk_once_per_call(want, threads):
    threads(3)
    calls, chunks = 200, 16
    size, nested, ids, runs, caller = _core._team_probe(want, calls, chunks, 2000)
    assert size == min(want, 3)
    assert np.all(runs == 1)  # every chunk of every call, once
    used = set(ids.ravel().tolist())
    assert caller in used and len(used) <= size
    if size > 1:
        # 3,200 chunks of a few microseconds: a worker took some of them
        assert len(used) > 1
    assert nested == 1  # a team made while one runs gets no worker
    # the pool is free again after the team: a new one gets its threads back
    assert _core._team_probe(want, 1, 1, 0)[0] == size


def test_a_team_is_one_thread_when_one_is_set(threads):
    threads(1)
    size, nested, ids, runs, caller = _core._team_probe(4, 3, 5, 0)
    assert (size, nested) == (1, 1) and np.all(ids == caller) and np.all(runs == 1)
