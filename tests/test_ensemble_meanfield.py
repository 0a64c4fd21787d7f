"""ef.Ensemble of mean-field TwoLayerReLU networks: fit_teacher and fit train every member
(widths may differ: the radius x width grid) in one native call on a pool of threads;
each member must end bit-identical to its own separate fit_teacher / fit (particles,
snapshots, losses) whatever the thread count. The separate runs themselves are checked
against the NumPy reference in test_meanfield.py."""

import warnings

import eulerflow as ef
import numpy as np
import pytest
from eulerflow.ensemble import EnsembleDivergenceWarning
from eulerflow.meanfield import TwoLayerReLU, teacher_samples

WIDTHS = (3, 8, 20, 33, 5)
RADII = (0.01, 0.05, 0.2, 1.0, 0.5)
LRS = (0.5, 2.0, 5.0, 9.0, 1.0)
SEEDS = (2, 7, 2, 11, 3)


def student(i, d=2):
    return TwoLayerReLU.small_sphere(WIDTHS[i], d, RADII[i], seed=100 + i)


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def assert_member_is_run(ens, hist, i, net, run):
    """Member i of the ensemble is the separately trained ``net`` with record ``run``."""
    mine = ens.members[i]
    for p, q in ((mine.a, net.a), (mine.w, net.w), (mine.b, net.b)):
        assert same_bits(p, q)
    got = hist.runs[i]
    assert same_bits(got.snapshots, run.snapshots)
    assert same_bits(got.loss, run.loss) and got.loss_name == run.loss_name
    assert same_bits(got.steps, run.steps)
    assert same_bits(hist.loss[:, i], run.loss)


@pytest.mark.parametrize("threads", [1, 2, 3, 4])
def test_fit_teacher_members_equal_separate_runs(threads):
    teacher = TwoLayerReLU.random(4, 2, seed=0)
    n = len(WIDTHS)
    ens = ef.Ensemble(student, n)
    hist = ens.fit_teacher(teacher, steps=120, batch=20, lr=LRS, snapshot_every=13, seed=SEEDS,
                           n_test=150, threads=threads)
    assert hist.loss.shape == (1 + 120 // 13, n)
    assert not hist.diverged.any() and list(hist.seeds) == list(SEEDS)
    assert np.array_equal(hist.lr, LRS)
    for i in range(n):
        net = student(i)
        run = net.fit_teacher(teacher, steps=120, batch=20, lr=LRS[i], snapshot_every=13,
                              seed=SEEDS[i], n_test=150)
        assert_member_is_run(ens, hist, i, net, run)
        assert hist.member(i) is hist.runs[i]
    # and the training did something: every member's test loss fell
    assert np.all(hist.loss[-1] < hist.loss[0])


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_fit_teacher_with_one_teacher_per_member_and_shared_settings(threads):
    teachers = [TwoLayerReLU.random(k, 3, seed=k) for k in (2, 4, 2)]
    teachers[2] = teachers[0]  # a teacher shared by two members
    make = lambda i: TwoLayerReLU.small_sphere((4, 16, 9)[i], 3, 0.1, seed=i)  # noqa: E731
    ens = ef.Ensemble(make, 3)
    hist = ens.fit_teacher(teachers, steps=50, batch=7, lr=3.0, snapshot_every=0, seed=5,
                           n_test=40, threads=threads)
    assert hist.loss.shape == (2, 3)
    for i in range(3):
        net = make(i)
        run = net.fit_teacher(teachers[i], steps=50, batch=7, lr=3.0, snapshot_every=0, seed=5,
                              n_test=40)
        assert_member_is_run(ens, hist, i, net, run)


@pytest.mark.parametrize("threads", [1, 2])
def test_members_sharing_their_samples_in_any_dimension(threads):
    """Members of one teacher and seed learn from one sample stream drawn once for all (d = 5
    takes the general particle loops, batch * d odd leaves Box-Muller's last value unused)."""
    teacher = TwoLayerReLU.random(3, 5, seed=1)
    make = lambda i: TwoLayerReLU.small_sphere((6, 11, 6, 2)[i], 5, 0.3, seed=i)  # noqa: E731
    seeds, lrs = [4, 4, 9, 4], [1.0, 2.0, 3.0, 0.5]
    ens = ef.Ensemble(make, 4)
    hist = ens.fit_teacher(teacher, steps=40, batch=9, lr=lrs, snapshot_every=5, seed=seeds,
                           n_test=30, threads=threads)
    for i in range(4):
        net = make(i)
        run = net.fit_teacher(teacher, steps=40, batch=9, lr=lrs[i], snapshot_every=5,
                              seed=seeds[i], n_test=30)
        assert_member_is_run(ens, hist, i, net, run)


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_fit_on_data_members_equal_separate_runs(shuffle, threads):
    teacher = TwoLayerReLU.random(3, 2, seed=4)
    X, Y = teacher_samples(teacher, 90, seed=8)
    n = len(WIDTHS)
    ens = ef.Ensemble(student, n)
    hist = ens.fit(X, Y, LRS, batch=16, epochs=3, shuffle=shuffle, seed=SEEDS,
                   snapshot_every=4, threads=threads)
    for i in range(n):
        net = student(i)
        run = net.fit(X, Y, LRS[i], batch=16, epochs=3, shuffle=shuffle, seed=SEEDS[i],
                      snapshot_every=4)
        assert_member_is_run(ens, hist, i, net, run)
        assert run.loss_name == "train_loss"


def test_a_diverging_member_stops_as_its_own_run_and_is_named():
    teacher = TwoLayerReLU.random(4, 2, seed=0)
    lrs = [0.5, 1e6, 2.0]
    ens = ef.Ensemble(student, 3)
    with pytest.warns(EnsembleDivergenceWarning, match=r"member 1 \(lr=1e\+06\) at step"):
        hist = ens.fit_teacher(teacher, steps=100, lr=lrs, snapshot_every=10, seed=2, n_test=50)
    assert list(hist.diverged) == [False, True, False]
    for i in (0, 2):
        net = student(i)
        run = net.fit_teacher(teacher, steps=100, lr=lrs[i], snapshot_every=10, seed=2,
                              n_test=50)
        assert_member_is_run(ens, hist, i, net, run)
    # the diverged member: the step its own run names, its particles as that run left them,
    # its record up to there and NaN after
    net = student(1)
    with pytest.raises(ef.DivergenceError) as info:
        net.fit_teacher(teacher, steps=100, lr=lrs[1], snapshot_every=10, seed=2, n_test=50)
    assert hist.bad_epoch[1] == info.value.batch
    for p, q in ((ens.members[1].a, net.a), (ens.members[1].w, net.w), (ens.members[1].b, net.b)):
        assert same_bits(p, q)
    k = hist.runs[1].loss.shape[0]
    assert 1 <= k < hist.loss.shape[0]
    assert np.all(np.isnan(hist.loss[k:, 1]))
    assert same_bits(hist.loss[:k, 1], hist.runs[1].loss)


def test_a_diverging_member_of_fit_on_data():
    teacher = TwoLayerReLU.random(4, 2, seed=0)
    X, Y = teacher_samples(teacher, 200, seed=3)
    ens = ef.Ensemble(student, 2)
    with pytest.warns(EnsembleDivergenceWarning, match="member 0"):
        hist = ens.fit(X, Y, [1e6, 1.0], batch=20, epochs=5, threads=2)
    net = student(0)
    with pytest.raises(ef.DivergenceError) as info:
        net.fit(X, Y, 1e6, batch=20, epochs=5)
    assert hist.bad_epoch[0] == info.value.batch and hist.bad_epoch[1] == -1
    assert same_bits(ens.members[0].w, net.w)
    net = student(1)
    assert_member_is_run(ens, hist, 1, net, net.fit(X, Y, 1.0, batch=20, epochs=5))


def test_every_member_diverging_raises():
    teacher = TwoLayerReLU.random(4, 2, seed=0)
    ens = ef.Ensemble(student, 2)
    with pytest.raises(ef.DivergenceError, match="every member"):
        ens.fit_teacher(teacher, steps=50, lr=[1e6, 1e7], n_test=10)


def test_bad_input_is_refused_clearly():
    teacher = TwoLayerReLU.random(4, 2, seed=0)
    ens = ef.Ensemble(student, 3)
    with pytest.raises(ValueError, match=r"lr must be one value or one per member \(3\), got "
                                         r"shape \(2,\)"):
        ens.fit_teacher(teacher, steps=5, lr=[0.1, 0.2])
    with pytest.raises(ValueError, match="lr must be non-negative and finite"):
        ens.fit_teacher(teacher, steps=5, lr=[0.1, -0.2, 0.1])
    with pytest.raises(ValueError, match="lr must be non-negative and finite"):
        ens.fit_teacher(teacher, steps=5, lr=[0.1, np.nan, 0.1])
    with pytest.raises(ValueError, match=r"seed must be one value or one per member \(3\)"):
        ens.fit_teacher(teacher, steps=5, seed=[1, 2])
    with pytest.raises(ValueError, match="steps"):
        ens.fit_teacher(teacher, steps=0)
    with pytest.raises(ValueError, match="threads"):
        ens.fit_teacher(teacher, steps=5, threads=0)
    with pytest.raises(TypeError, match="teacher must be a TwoLayerReLU, got ndarray"):
        ens.fit_teacher(np.zeros(3), steps=5)
    with pytest.raises(ValueError, match="teacher has dimension d=3 but every member has d=2"):
        ens.fit_teacher(TwoLayerReLU.random(4, 3, seed=0), steps=5)
    with pytest.raises(ValueError, match="teacher has dimension d=3 but member 2 has d=2"):
        ens.fit_teacher([teacher, teacher, TwoLayerReLU.random(4, 3, seed=0)], steps=5)
    with pytest.raises(ValueError, match=r"one TwoLayerReLU or one per member \(3\), got 2"):
        ens.fit_teacher([teacher, teacher], steps=5)
    X, Y = teacher_samples(teacher, 30, seed=1)
    with pytest.raises(ValueError, match=r"X must have 2 features .* got shape \(30, 3\)"):
        ens.fit(np.zeros((30, 3)), Y, 0.5)
    with pytest.raises(ValueError, match=r"one value per row of X \(30\), got 29"):
        ens.fit(X, Y[:29], 0.5)
    with pytest.raises(TypeError, match="complex"):
        ens.fit(X.astype(complex), Y, 0.5)
    with pytest.raises(TypeError, match="learn trains networks; TwoLayerReLU members"):
        ens.learn((X, Y[:, None]), 0.1)
    # nothing above trained anything
    for i in range(3):
        assert same_bits(ens.members[i].w, student(i).w)


def test_members_must_share_d_and_kind_and_be_distinct():
    with pytest.raises(ValueError, match="member 1 has d=3 but member 0 has d=2"):
        ef.Ensemble(lambda i: TwoLayerReLU.small_sphere(4, 2 + i, 0.1, seed=i), 2)
    with pytest.raises(TypeError, match="member 1 is a Sequential, not a TwoLayerReLU"):
        ef.Ensemble(lambda i: student(0) if i == 0 else ef.mlp([2, 3, 1]), 2)
    one = student(0)
    with pytest.raises(ValueError, match="same model for two members"):
        ef.Ensemble(lambda: one, 2)
    net_ens = ef.Ensemble(lambda i: ef.mlp([2, 3, 1], seed=i), 2)
    with pytest.raises(TypeError, match="fit_teacher trains TwoLayerReLU members, got "
                                        "Sequential"):
        net_ens.fit_teacher(TwoLayerReLU.random(4, 2, seed=0), steps=5)


def test_a_member_in_use_elsewhere_is_refused():
    ens = ef.Ensemble(student, 2)
    with ens.members[1]._using(), pytest.raises(RuntimeError, match="already running"):
        ens.fit_teacher(TwoLayerReLU.random(4, 2, seed=0), steps=5)
    # the claims taken before the refusal were given back
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ens.fit_teacher(TwoLayerReLU.random(4, 2, seed=0), steps=5, n_test=10)


def test_parameters_are_the_members_arrays():
    ens = ef.Ensemble(student, 2)
    params = ens.parameters()
    assert params[1][0] is ens.members[1].a and params[1][1] is ens.members[1].w
    assert params[1][2] is ens.members[1].b


def test_sweep_spreads_ensembles_over_processes():
    """The bench demo's sweep: ef.sweep over chunks of the radius x width grid, each chunk
    one ensemble; every point's loss is its separate run's, on one or two processes."""
    pytest.importorskip("joblib")
    from eulerflow import demos

    points = ef.sweep_grid(radius=[0.05, 1.0], m=[4, 30], steps=[60])
    chunks = [[p for p in points if p["radius"] == r] for r in (0.05, 1.0)]
    teacher = TwoLayerReLU.random(4, 2, seed=demos.MEANFIELD_TEACHER_SEED)
    separate = []
    for p in points:
        net = TwoLayerReLU.small_sphere(p["m"], 2, p["radius"], seed=demos.MEANFIELD_STUDENT_SEED)
        run = net.fit_teacher(teacher, steps=60, batch=20, lr=0.5,
                              seed=demos.MEANFIELD_SAMPLE_SEED)
        separate.append(float(run.test_loss[-1]))
    for n_jobs in (1, 2):
        out = ef.sweep(demos._sweep_chunk, chunks, n_jobs=n_jobs, progress=False)
        assert [loss for chunk in out for loss in chunk] == separate
    with pytest.raises(ValueError, match="share their steps"):
        demos._sweep_chunk([{"radius": 0.1, "m": 4, "steps": 5}, {"radius": 0.1, "m": 4,
                                                                  "steps": 6}])
