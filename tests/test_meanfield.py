"""``ef.meanfield`` (seed 003) against independent numbers.

References: the NumPy transcription of seed 003's ``Neuron``/``Network`` in
tests/reference/meanfield_reference.py (forward, ``grad``, ``batch_step``, the draws),
central finite differences of its loss (which check the reference itself), the closed
form of a single particle at a ReLU kink, and a measured training outcome (m = 1000 on a
small sphere learns a teacher to a test loss below 1e-3).
"""

from __future__ import annotations

import math

import eulerflow as ef
import numpy as np
import pytest
from conftest import assert_close
from reference import meanfield_reference as ref

TwoLayerReLU = ef.meanfield.TwoLayerReLU
teacher_samples = ef.meanfield.teacher_samples

DIMS = (1, 2, 3, 4, 5, 6)  # 1-4 have their own kernels in the core, 5 and 6 the generic one
WIDTHS = (1, 3, 4, 7, 17, 64)  # below, at and around the 4-wide vector of particles
BATCHES = (1, 2, 7, 20)


def random_particles(m, d, seed=0, scale=1.0):
    """Order-one particles (about half the ReLUs active on Gaussian inputs)."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(m) * scale, rng.standard_normal((m, d)) * scale,
            rng.standard_normal(m) * scale)


def batch(n, d, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.standard_normal(n)


def net_of(a, w, b):
    return TwoLayerReLU(a.copy(), w.copy(), b.copy())


def params_close(net, expected, err_msg=""):
    for name, actual, want in zip("awb", (net.a, net.w, net.b), expected, strict=True):
        assert actual.shape == np.shape(want), name
        assert_close(actual, want, err_msg=f"{name} {err_msg}")


# ----------------------------------------------------------------------------- reference


def test_reference_gradient_matches_finite_differences():
    """The transcribed ``grad`` is the gradient of the transcribed loss (away from kinks)."""
    m, d = 5, 3
    a, w, b = random_particles(m, d, seed=3)
    X, Y = batch(4, d, seed=4)
    ga, gw, gb = ref.batch_grad(a, w, b, X, Y)
    eps = 1e-6
    for grad, which in ((ga, 0), (gw, 1), (gb, 2)):
        for idx in np.ndindex(grad.shape):
            plus = [p.copy() for p in (a, w, b)]
            minus = [p.copy() for p in (a, w, b)]
            plus[which][idx] += eps
            minus[which][idx] -= eps
            fd = (ref.loss(*plus, X, Y) - ref.loss(*minus, X, Y)) / (2 * eps)
            assert abs(fd - grad[idx]) < 1e-8, (which, idx, fd, grad[idx])


# ----------------------------------------------------------------------------- construction


@pytest.mark.parametrize("d", DIMS)
@pytest.mark.parametrize("m", (1, 4, 9))
def test_random_draws_as_the_seed(m, d):
    net = TwoLayerReLU.random(m, d, seed=7)
    a, w, b = ref.draw(m, d, seed=7)
    assert (net.m, net.d) == (m, d)
    np.testing.assert_array_equal(net.a, a)  # a untouched: the very draw
    assert_close(net.w, w)
    assert_close(net.b, b)
    assert_close(np.sqrt(np.sum(net.w**2, axis=1) + net.b**2), np.ones(m))


@pytest.mark.parametrize("radius", (1e-3, 0.05, 1.0, 3.5))
@pytest.mark.parametrize("d", (1, 2, 5))
def test_small_sphere_draws_as_the_seed(radius, d):
    m = 11
    net = TwoLayerReLU.small_sphere(m, d, radius, seed=3)
    a, w, b = ref.draw(m, d, seed=3, radius=radius)
    np.testing.assert_array_equal(net.a, a)
    assert_close(net.w, w, rtol=1e-12, atol=1e-15)
    assert_close(net.b, b, rtol=1e-12, atol=1e-15)
    assert_close(np.sqrt(np.sum(net.w**2, axis=1) + net.b**2), np.full(m, radius))
    # the same a and the same directions as the teacher drawn from that seed
    teacher = TwoLayerReLU.random(m, d, seed=3)
    np.testing.assert_array_equal(net.a, teacher.a)
    assert_close(net.w / radius, teacher.w)


def test_same_seed_same_network_and_different_seed_differs():
    one, two = TwoLayerReLU.random(6, 3, seed=5), TwoLayerReLU.random(6, 3, seed=5)
    other = TwoLayerReLU.random(6, 3, seed=6)
    for x, y, z in zip((one.a, one.w, one.b), (two.a, two.w, two.b),
                       (other.a, other.w, other.b), strict=True):
        np.testing.assert_array_equal(x, y)
        assert not np.array_equal(x, z)


def test_constructor_copies_and_exposes_writable_arrays():
    a, w, b = random_particles(5, 2)
    net = TwoLayerReLU(a, w, b)
    a[0] = 99.0
    assert net.a[0] != 99.0
    x = np.array([[0.3, -0.2]])
    before = net(x)[0]
    net.a[:] = 2 * net.a  # the network's own arrays: output doubles
    assert_close(net(x)[0], 2 * before)
    assert repr(net) == "TwoLayerReLU(m=5, d=2)"


# ----------------------------------------------------------------------------- forward


@pytest.mark.parametrize("d", DIMS)
@pytest.mark.parametrize("m", WIDTHS)
def test_forward_and_loss_match_reference(m, d):
    a, w, b = random_particles(m, d, seed=m + 10 * d)
    X, Y = batch(13, d, seed=d)
    net = net_of(a, w, b)
    out = net(X)
    assert out.shape == (13,)
    assert_close(out, ref.forward(a, w, b, X))
    assert_close(net.loss(X, Y), ref.loss(a, w, b, X, Y))
    single = net(X[0])
    assert isinstance(single, float)
    assert_close(single, ref.output(a, w, b, X[0]))


def test_forward_many_particles_generic_kernel():
    """More particles than one block of the core (512), d = 5 (the generic path)."""
    a, w, b = random_particles(1030, 5, seed=2)
    X, _ = batch(3, 5)
    assert_close(TwoLayerReLU(a, w, b)(X), ref.forward(a, w, b, X))


def test_forward_accepts_ints_and_float32():
    a, w, b = random_particles(4, 2)
    net = net_of(a, w, b)
    Xi = np.array([[1, -2], [0, 3]])
    assert_close(net(Xi), ref.forward(a, w, b, Xi.astype(float)))
    Xf = np.array([[0.5, -0.25]], dtype=np.float32)
    assert_close(net(Xf), ref.forward(a, w, b, Xf.astype(float)))


# ----------------------------------------------------------------------------- one step


@pytest.mark.parametrize("n", BATCHES)
@pytest.mark.parametrize("d", DIMS)
@pytest.mark.parametrize("m", WIDTHS)
def test_step_matches_seed_batch_step(m, d, n):
    a, w, b = random_particles(m, d, seed=100 + m + d)
    X, Y = batch(n, d, seed=n)
    lr = 0.7 * m  # order-one moves in the mean-field scaling
    net = net_of(a, w, b)
    loss_before = net.step(X, Y, lr)
    assert_close(loss_before, ref.loss(a, w, b, X, Y))
    params_close(net, ref.batch_step(a, w, b, X, Y, lr), f"m={m} d={d} n={n}")


@pytest.mark.parametrize("d", (2, 5))
def test_step_many_particles(d):
    m = 600  # more than one block of 512 in the generic kernel
    a, w, b = random_particles(m, d, seed=9)
    X, Y = batch(5, d, seed=9)
    net = net_of(a, w, b)
    net.step(X, Y, 50.0)
    params_close(net, ref.batch_step(a, w, b, X, Y, 50.0))


def test_step_relu_derivative_at_zero_is_one():
    """A particle at the kink (w = 0, b = 0: z = 0) moves in b and w as the seed's
    ``drelu(0) = 1`` says, and not in a (relu(0) = 0)."""
    a, w, b = np.array([1.5, -0.5]), np.array([[0.0, 0.0], [0.3, 0.2]]), np.array([0.0, 0.4])
    x, y, lr = np.array([[0.8, -1.1]]), np.array([2.0]), 0.3
    net = net_of(a, w, b)
    net.step(x, y, lr)
    params_close(net, ref.batch_step(a, w, b, x, y, lr))
    r = (a[1] * (w[1] @ x[0] + b[1])) / 2 - y[0]  # only the second particle is active
    gb0 = r * a[0] / 2
    assert_close(net.a[0], a[0])
    assert_close(net.b[0], -lr * gb0)
    assert_close(net.w[0], -lr * gb0 * x[0])


def test_step_with_zero_rate_changes_nothing():
    a, w, b = random_particles(7, 3)
    X, Y = batch(5, 3)
    net = net_of(a, w, b)
    net.step(X, Y, 0.0)
    for got, want in zip((net.a, net.w, net.b), (a, w, b), strict=True):
        np.testing.assert_array_equal(got, want)


# ----------------------------------------------------------------------------- fit on data


@pytest.mark.parametrize(("n", "bs", "epochs"), [(40, 20, 1), (40, 8, 3), (23, 5, 2),
                                                 (10, 1, 1), (6, 50, 2)])
@pytest.mark.parametrize("d", (1, 2, 5))
def test_fit_equals_consecutive_reference_steps(n, bs, epochs, d):
    m = 9
    a, w, b = random_particles(m, d, seed=n + d)
    X, Y = batch(n, d, seed=bs)
    lr = 2.0
    net = net_of(a, w, b)
    run = net.fit(X, Y, lr=lr, batch=bs, epochs=epochs, shuffle=False, snapshot_every=1)
    ra, rw, rb, hist = ref.sgd(a, w, b, X, Y, lr, min(bs, n), epochs)
    params_close(net, (ra, rw, rb))
    steps = epochs * math.ceil(n / min(bs, n))
    assert len(hist) == steps
    assert run.snapshots.shape == (steps + 1, m, d + 2)
    np.testing.assert_array_equal(run.steps, np.arange(steps + 1))
    start = np.column_stack([a, w, b])
    assert_close(run.snapshots[0], start)
    for k, (ha, hw, hb) in enumerate(hist, start=1):
        assert_close(run.snapshots[k], np.column_stack([ha, hw, hb]), err_msg=f"step {k}")
        assert_close(run.train_loss[k], ref.loss(ha, hw, hb, X, Y), err_msg=f"step {k}")
    assert_close(run.train_loss[0], ref.loss(a, w, b, X, Y))
    assert run.loss is run.train_loss


def test_fit_default_snapshots_are_start_and_end():
    a, w, b = random_particles(5, 2)
    X, Y = batch(30, 2)
    net = net_of(a, w, b)
    run = net.fit(X, Y, lr=1.0, batch=10, epochs=2)
    assert run.snapshots.shape == (2, 5, 4)
    np.testing.assert_array_equal(run.steps, [0, 6])
    assert_close(run.snapshots[-1], np.column_stack([net.a, net.w, net.b]))


def test_fit_full_batch_shuffle_is_one_full_step():
    """With one batch of all rows, shuffling only reorders the sum."""
    a, w, b = random_particles(6, 3)
    X, Y = batch(17, 3)
    net = net_of(a, w, b)
    net.fit(X, Y, lr=1.5, batch=17, epochs=1, shuffle=True, seed=4)
    params_close(net, ref.batch_step(a, w, b, X, Y, 1.5))


def test_fit_shuffle_is_seeded():
    a, w, b = random_particles(6, 2)
    X, Y = batch(40, 2)
    nets = [net_of(a, w, b) for _ in range(4)]
    for net, (shuffle, seed) in zip(nets, [(True, 1), (True, 1), (True, 2), (False, 1)],
                                    strict=True):
        net.fit(X, Y, lr=2.0, batch=5, epochs=2, shuffle=shuffle, seed=seed)
    np.testing.assert_array_equal(nets[0].w, nets[1].w)
    assert not np.array_equal(nets[0].w, nets[2].w)
    assert not np.array_equal(nets[0].w, nets[3].w)


# ------------------------------------------------- whole runs against the step, bit for bit


@pytest.mark.parametrize("d", (1, 2, 4, 5))
@pytest.mark.parametrize("m", (1, 4, 7, 64, 1030))
def test_whole_runs_take_the_bits_of_consecutive_steps(m, d, each_isa_variant):
    """fit and fit_teacher fuse each update with the next batch's forward pass (one pass over
    the particles per step); ``step`` runs the three passes apart. Their particles and losses
    must agree to the bit, under every kernel variant, at widths that fill no vector (1, 7),
    whole vectors (4, 64) and more than one block of particles (1030), and for the generic
    particle loop (d = 5)."""
    teacher = TwoLayerReLU.random(3, d, seed=0)
    start = TwoLayerReLU.small_sphere(m, d, 0.5, seed=1)
    steps, bs, lr = 9, 6, 1.0
    X, _ = teacher_samples(teacher, steps * bs, seed=4)  # bs * d even: fit_teacher's batches
    Xd, Yd = batch(23, d, seed=m)  # 23 samples in batches of 6: the last batch has 5
    for variant in each_isa_variant():
        Y = teacher(X)  # labelled by this variant's kernels, as fit_teacher labels them
        looped = start.copy()
        losses = [looped.step(X[s * bs:(s + 1) * bs], Y[s * bs:(s + 1) * bs], lr)
                  for s in range(steps)]
        whole = start.copy()
        run = whole.fit_teacher(teacher, steps=steps, batch=bs, lr=lr, snapshot_every=0, seed=4,
                                n_test=1)
        for p, q in zip((whole.a, whole.w, whole.b), (looped.a, looped.w, looped.b),
                        strict=True):
            np.testing.assert_array_equal(p, q, err_msg=f"fit_teacher, {variant}")
        assert run.steps[-1] == steps and np.all(np.isfinite(losses))

        looped = start.copy()
        for _ in range(2):  # two epochs: the first batch of the second follows the ragged last
            for s in range(0, 23, 6):
                looped.step(Xd[s:s + 6], Yd[s:s + 6], lr)
        whole = start.copy()
        run = whole.fit(Xd, Yd, lr=lr, batch=6, epochs=2, shuffle=False, snapshot_every=0)
        for p, q in zip((whole.a, whole.w, whole.b), (looped.a, looped.w, looped.b),
                        strict=True):
            np.testing.assert_array_equal(p, q, err_msg=f"fit, {variant}")
        assert_close(run.train_loss[-1], looped.loss(Xd, Yd))


# ----------------------------------------------------------------------------- fit_teacher


def test_fit_teacher_equals_reference_steps_on_its_sample_stream():
    """``fit_teacher`` draws each batch from the seeded Gaussian stream that
    ``teacher_samples`` reads (when batch * d is even, consecutive batches are consecutive
    pieces of one stream) and takes the seed's ``batch_step`` on it."""
    teacher = TwoLayerReLU.random(3, 2, seed=0)
    student = TwoLayerReLU.small_sphere(5, 2, 0.5, seed=1)
    a, w, b = student.a.copy(), student.w.copy(), student.b.copy()
    steps, bs, lr = 7, 10, 3.0
    run = student.fit_teacher(teacher, steps=steps, batch=bs, lr=lr, snapshot_every=1, seed=4,
                              n_test=50)
    X, _ = teacher_samples(teacher, steps * bs, seed=4)
    Y = ref.forward(teacher.a, teacher.w, teacher.b, X)
    ra, rw, rb, hist = ref.sgd(a, w, b, X, Y, lr, bs)
    params_close(student, (ra, rw, rb))
    Xt, _ = teacher_samples(teacher, 50, seed=5)
    Yt = ref.forward(teacher.a, teacher.w, teacher.b, Xt)
    for k, (ha, hw, hb) in enumerate(hist, start=1):
        assert_close(run.snapshots[k], np.column_stack([ha, hw, hb]))
        assert_close(run.test_loss[k], ref.loss(ha, hw, hb, Xt, Yt))


def test_teacher_samples_are_standard_gaussian_and_labelled():
    stats = pytest.importorskip("scipy.stats")
    teacher = TwoLayerReLU.random(4, 3, seed=2)
    X, Y = teacher_samples(teacher, 20000, seed=9)
    assert X.shape == (20000, 3) and Y.shape == (20000,)
    assert stats.kstest(X.reshape(-1), "norm").pvalue > 1e-3
    assert abs(X.mean()) < 0.02 and abs(X.std() - 1) < 0.02
    assert abs(np.corrcoef(X[:, 0], X[:, 1])[0, 1]) < 0.03
    assert_close(Y[:50], ref.forward(teacher.a, teacher.w, teacher.b, X[:50]))
    X2, _ = teacher_samples(teacher, 20000, seed=9)
    np.testing.assert_array_equal(X, X2)


@pytest.mark.parametrize(("steps", "every"), [(30, 10), (31, 10), (30, 7), (5, 1), (12, 0)])
def test_fit_teacher_snapshots_and_test_loss(steps, every):
    teacher = TwoLayerReLU.random(4, 2, seed=0)
    student = TwoLayerReLU.small_sphere(8, 2, 0.05, seed=1)
    start = np.column_stack([student.a, student.w, student.b])
    X_test, Y_test = teacher_samples(teacher, 300, seed=3 + 1)  # held out: seed + 1
    loss0 = student.loss(X_test, Y_test)
    run = student.fit_teacher(teacher, steps=steps, batch=20, lr=4.0, snapshot_every=every,
                              seed=3, n_test=300)
    k = 1 + steps // every if every else 2
    assert run.snapshots.shape == (k, 8, 4)
    assert run.test_loss.shape == (k,)
    np.testing.assert_array_equal(run.snapshots[0], start)
    np.testing.assert_array_equal(run.steps, np.arange(k) * (every or steps))
    assert_close(run.test_loss[0], loss0)
    assert_close(run.test_loss[0], ref.loss(*ref_params(start), X_test, Y_test))
    last = run.snapshots[-1]
    assert_close(run.test_loss[-1], ref.loss(*ref_params(last), X_test, Y_test))
    if run.steps[-1] == steps:  # the last snapshot is the student's final state
        np.testing.assert_array_equal(last, np.column_stack([student.a, student.w, student.b]))
        assert_close(run.test_loss[-1], student.loss(X_test, Y_test))
    assert_close(run.positions(), run.snapshots[:, :, :1] * run.snapshots[:, :, 1:3])
    assert run.loss is run.test_loss
    assert "snapshots of 8 particles in d=2" in repr(run)


def ref_params(snapshot):
    return snapshot[:, 0], snapshot[:, 1:-1], snapshot[:, -1]


def test_fit_teacher_reproducible_bits():
    teacher = TwoLayerReLU.random(4, 3, seed=0)

    def train(seed):
        student = TwoLayerReLU.small_sphere(50, 3, 0.1, seed=1)
        run = student.fit_teacher(teacher, steps=200, batch=16, lr=20.0, snapshot_every=50,
                                  seed=seed)
        return student, run

    s1, r1 = train(11)
    s2, r2 = train(11)
    s3, r3 = train(12)
    np.testing.assert_array_equal(r1.snapshots, r2.snapshots)
    np.testing.assert_array_equal(r1.test_loss, r2.test_loss)
    np.testing.assert_array_equal(s1.w, s2.w)
    assert not np.array_equal(r1.snapshots[-1], r3.snapshots[-1])
    assert not np.array_equal(r1.test_loss[1:], r3.test_loss[1:])


@pytest.mark.parametrize("m", (20, 1030))
def test_fit_teacher_on_given_inputs(m):
    """``x=``: the steps learn from the given inputs, labelled by the teacher step by step.
    The seed's own stream given as x gives fit_teacher(seed)'s bits (held-out set and
    losses too); other inputs give the bits of ``step`` on them, batch after batch."""
    teacher = TwoLayerReLU.random(4, 3, seed=0)
    start = TwoLayerReLU.small_sphere(m, 3, 0.1, seed=1)
    steps, batch, lr = 30, 8, 5.0
    drawn = start.copy()
    run = drawn.fit_teacher(teacher, steps=steps, batch=batch, lr=lr, snapshot_every=10,
                            seed=7)
    X, _ = teacher_samples(teacher, steps * batch, seed=7)
    for shape in ((steps, batch, 3), (steps * batch, 3)):
        given = start.copy()
        run2 = given.fit_teacher(teacher, steps=steps, batch=batch, lr=lr, snapshot_every=10,
                                 seed=7, x=X.reshape(shape))
        np.testing.assert_array_equal(run2.snapshots, run.snapshots)
        np.testing.assert_array_equal(run2.test_loss, run.test_loss)
        np.testing.assert_array_equal(given.w, drawn.w)

    U = np.random.default_rng(3).uniform(-2, 2, (steps * batch, 3))  # not Gaussian
    given = start.copy()
    given.fit_teacher(teacher, steps=steps, batch=batch, lr=lr, snapshot_every=0, x=U)
    looped = start.copy()
    for s in range(steps):
        xs = U[s * batch:(s + 1) * batch]
        looped.step(xs, teacher(xs), lr)
    for p, q in ((given.a, looped.a), (given.w, looped.w), (given.b, looped.b)):
        np.testing.assert_array_equal(p, q)
    assert not np.array_equal(given.w, drawn.w)


def test_fit_teacher_refuses_inputs_of_the_wrong_shape():
    teacher = TwoLayerReLU.random(4, 2, seed=0)
    student = TwoLayerReLU.small_sphere(20, 2, 0.05, seed=1)
    with pytest.raises(ValueError, match=r"x must have shape \(steps, batch, d\) = \(5, 4, 2\)"
                                         r".*got \(5, 4, 3\)"):
        student.fit_teacher(teacher, steps=5, batch=4, x=np.zeros((5, 4, 3)))
    with pytest.raises(ValueError, match=r"got \(19, 2\)"):
        student.fit_teacher(teacher, steps=5, batch=4, x=np.zeros((19, 2)))
    with pytest.raises(ValueError, match="x .*finite|x .*NaN|non-finite"):
        student.fit_teacher(teacher, steps=1, batch=2, x=[[0.0, np.nan], [1.0, 2.0]])
    with pytest.raises(TypeError, match="x must hold real numbers"):
        student.fit_teacher(teacher, steps=1, batch=2, x=np.array([["a", "b"], ["c", "d"]]))
    np.testing.assert_array_equal(student.w, TwoLayerReLU.small_sphere(20, 2, 0.05, seed=1).w)


def test_wide_student_on_small_sphere_learns_the_teacher():
    """m = 1000 particles from a sphere of radius 0.05 learn a 4-neuron teacher in 2-D:
    lr = 100 (= 0.1 m: a particle moves O(lr / m) per step), 2000 steps of 20 samples.
    Measured: test loss 0.053 at the start, about 3e-5 at the end."""
    teacher = TwoLayerReLU.random(4, 2, seed=0)
    student = TwoLayerReLU.small_sphere(1000, 2, 0.05, seed=1)
    run = student.fit_teacher(teacher, steps=2000, batch=20, lr=100.0, snapshot_every=500,
                              seed=2)
    assert run.test_loss[0] > 0.01
    assert run.test_loss[-1] < 1e-3
    assert np.all(np.diff(run.test_loss) < 0)


def test_huge_rate_raises_divergence_error():
    teacher = TwoLayerReLU.random(4, 2, seed=0)
    student = TwoLayerReLU.small_sphere(20, 2, 0.05, seed=1)
    with pytest.raises(ef.DivergenceError, match="lr=1000000"):
        student.fit_teacher(teacher, steps=100, batch=20, lr=1e6, seed=2)
    X, Y = teacher_samples(teacher, 200, seed=3)
    student = TwoLayerReLU.small_sphere(20, 2, 0.05, seed=1)
    with pytest.raises(ef.DivergenceError):
        student.fit(X, Y, lr=1e6, batch=20, epochs=5)


def test_divergence_in_the_last_step_is_reported():
    teacher = TwoLayerReLU.random(4, 2, seed=0)
    student = TwoLayerReLU.small_sphere(20, 2, 0.05, seed=1)
    # the loss is taken before each step, so only the parameters show this blow-up
    with pytest.raises(ef.DivergenceError):
        student.fit_teacher(teacher, steps=1, batch=20, lr=1e300, snapshot_every=1, seed=2)


@pytest.mark.parametrize("fit", ["teacher", "data"])
def test_divergence_in_an_unrecorded_last_step_is_reported(fit):
    teacher = TwoLayerReLU.random(4, 2, seed=0)
    student = TwoLayerReLU.small_sphere(20, 2, 0.05, seed=1)
    X, Y = teacher_samples(teacher, 20, seed=3)
    with pytest.raises(ef.DivergenceError):
        if fit == "teacher":  # 1 step, snapshots every 5: only the start is recorded
            student.fit_teacher(teacher, steps=1, batch=20, lr=1e300, snapshot_every=5, seed=2)
        else:
            student.fit(X, Y, lr=1e300, batch=20, epochs=1, snapshot_every=5)
    # today: no error, the parameters stay finite and student.loss(X, Y) is inf


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("make", [
    lambda: TwoLayerReLU.random(0, 2, seed=0),
    lambda: TwoLayerReLU.random(-3, 2, seed=0),
    lambda: TwoLayerReLU.small_sphere(0, 2, 0.1, seed=0),
])
def test_bad_m(make):
    with pytest.raises(ValueError, match="\\bm\\b"):
        make()


@pytest.mark.parametrize("make", [
    lambda: TwoLayerReLU.random(3, 0, seed=0),
    lambda: TwoLayerReLU.small_sphere(3, -1, 0.1, seed=0),
])
def test_bad_d(make):
    with pytest.raises(ValueError, match="\\bd\\b"):
        make()


@pytest.mark.parametrize("args", [(2.0, 2), (2, 2.5), (True, 2), ("3", 2)])
def test_non_int_sizes(args):
    with pytest.raises(TypeError, match="\\b[md]\\b"):
        TwoLayerReLU.random(*args, seed=0)


@pytest.mark.parametrize("radius", [0.0, -0.1, math.inf, math.nan])
def test_bad_radius(radius):
    with pytest.raises(ValueError, match="radius"):
        TwoLayerReLU.small_sphere(3, 2, radius, seed=0)


def test_bad_seed():
    with pytest.raises(ValueError, match="seed"):
        TwoLayerReLU.random(3, 2, seed=-1)
    with pytest.raises(TypeError, match="seed"):
        TwoLayerReLU.random(3, 2, seed=1.5)


def test_constructor_bad_shapes():
    with pytest.raises(ValueError, match="must agree on m"):
        TwoLayerReLU(np.ones(3), np.ones((4, 2)), np.ones(4))
    with pytest.raises(ValueError, match="w"):
        TwoLayerReLU(np.ones(3), np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="w"):
        TwoLayerReLU(np.ones(3), np.ones((3, 0)), np.ones(3))  # d = 0
    with pytest.raises(TypeError, match="a"):
        TwoLayerReLU(np.ones(3, dtype=complex), np.ones((3, 2)), np.ones(3))
    with pytest.raises(ValueError, match="b"):
        TwoLayerReLU(np.ones(3), np.ones((3, 2)), np.array([1.0, np.nan, 1.0]))


def test_mismatched_teacher_dimension():
    teacher = TwoLayerReLU.random(4, 3, seed=0)
    student = TwoLayerReLU.small_sphere(5, 2, 0.1, seed=0)
    with pytest.raises(ValueError, match="d=3.*d=2"):
        student.fit_teacher(teacher, steps=10)
    with pytest.raises(TypeError, match="teacher"):
        student.fit_teacher("teacher", steps=10)


@pytest.mark.parametrize("lr", [math.nan, math.inf, -math.inf])
def test_non_finite_lr(lr):
    teacher = TwoLayerReLU.random(4, 2, seed=0)
    student = TwoLayerReLU.small_sphere(5, 2, 0.1, seed=0)
    X, Y = batch(10, 2)
    for call in (lambda: student.fit_teacher(teacher, steps=10, lr=lr),
                 lambda: student.fit(X, Y, lr=lr),
                 lambda: student.step(X, Y, lr)):
        with pytest.raises(ValueError, match="lr"):
            call()


def test_negative_lr():
    student = TwoLayerReLU.small_sphere(5, 2, 0.1, seed=0)
    X, Y = batch(10, 2)
    with pytest.raises(ValueError, match="lr"):
        student.step(X, Y, -0.5)


@pytest.mark.parametrize("kw", [{"steps": 0}, {"batch": 0}, {"n_test": 0},
                                {"snapshot_every": -1}])
def test_fit_teacher_bad_counts(kw):
    teacher = TwoLayerReLU.random(4, 2, seed=0)
    student = TwoLayerReLU.small_sphere(5, 2, 0.1, seed=0)
    args = {"steps": 10, **kw}
    name = next(iter(kw))
    with pytest.raises(ValueError, match=name):
        student.fit_teacher(teacher, **args)


def test_bad_X_and_Y():
    net = TwoLayerReLU.small_sphere(5, 3, 0.1, seed=0)
    X, Y = batch(10, 3)
    with pytest.raises(ValueError, match="X.*3 features.*\\(10, 2\\)"):
        net.step(X[:, :2], Y, 0.1)
    with pytest.raises(ValueError, match="X"):
        net.fit(X[:, :2], Y, lr=0.1)
    with pytest.raises(ValueError, match="X"):
        net.loss(np.ones((10, 4)), Y)
    with pytest.raises(ValueError, match="x"):
        net(np.ones(4))
    with pytest.raises(ValueError, match="Y.*10"):
        net.step(X, Y[:9], 0.1)
    with pytest.raises(ValueError, match="Y"):
        net.fit(X, np.ones(11), lr=0.1)
    with pytest.raises(ValueError, match="Y"):
        net.loss(X, np.ones(3))
    with pytest.raises(TypeError, match="X"):
        net.step(X.astype(complex), Y, 0.1)
    with pytest.raises(TypeError, match="Y"):
        net.step(X, Y.astype(str), 0.1)
    with pytest.raises(ValueError, match="X"):
        net.step(np.full((2, 3), np.nan), Y[:2], 0.1)
    with pytest.raises(ValueError, match="x must be 1-D or 2-D"):
        net(np.ones((2, 3, 1)))


# ----------------------------------------------------------------------------- demo, figures


def test_mass_near_teacher_and_zero_loss():
    from eulerflow import demos

    teacher = TwoLayerReLU.random(3, 2, seed=0)
    assert demos.mass_near_teacher(teacher.copy(), teacher) == pytest.approx(1.0)
    # the same neurons with a flipped sign of a, or a turned direction, are not near
    flipped = TwoLayerReLU(-teacher.a, teacher.w, teacher.b)
    assert demos.mass_near_teacher(flipped, teacher) == 0.0
    # a student made of the teacher's neurons (weight 1 each) and one stray particle
    # (weight 3, its (w, b) orthogonal to every teacher neuron's)
    stray = np.cross(np.column_stack([teacher.w, teacher.b])[0],
                     np.column_stack([teacher.w, teacher.b])[1])
    stray /= np.linalg.norm(stray)
    mixed = TwoLayerReLU(np.r_[teacher.a[:2], 3.0], np.vstack([teacher.w[:2], stray[:2]]),
                         np.r_[teacher.b[:2], stray[2]])
    weights = np.r_[np.abs(teacher.a[:2]), 3.0]
    assert demos.mass_near_teacher(mixed, teacher) == pytest.approx(weights[:2].sum()
                                                                   / weights.sum())
    _, y = teacher_samples(teacher, 200, seed=6)
    assert demos.zero_loss(teacher, 200, seed=5) == pytest.approx(0.5 * np.mean(y**2))


@pytest.mark.parametrize("threads", [1, 2])
def test_meanfield_sweep_grid(threads):
    from eulerflow import demos

    radii, widths, teachers = (0.05, 1.0), (4, 30), ((2, 0), (3, 1))
    sweep = demos.meanfield_sweep(radii=radii, widths=widths, teachers=teachers, steps=300,
                                  lr0=0.25, n_test=200, snapshots=10, threads=threads)
    assert sweep.final.shape == sweep.reach.shape == sweep.near.shape == (2, 2, 2)
    assert np.all(np.isfinite(sweep.final)) and np.all(sweep.final < sweep.zero[:, None, None])
    assert np.all((sweep.near >= 0) & (sweep.near <= 1))
    assert sweep.snapshot_every == 30
    # each cell (one member of the sweep's ensemble) is bit for bit the separate run it names
    for (t, i, j), _ in np.ndenumerate(sweep.final):
        teacher = TwoLayerReLU.random(teachers[t][0], 2, seed=teachers[t][1])
        student = TwoLayerReLU.small_sphere(widths[j], 2, radii[i],
                                            seed=demos.MEANFIELD_STUDENT_SEED)
        run = student.fit_teacher(teacher, steps=300, batch=20, lr=0.25 * widths[j],
                                  snapshot_every=30, seed=demos.MEANFIELD_SAMPLE_SEED,
                                  n_test=200)
        assert_close(sweep.final[t, i, j], run.test_loss[-1])
        assert sweep.final[t, i, j] == student.loss(*teacher_samples(
            teacher, 200, demos.MEANFIELD_SAMPLE_SEED + 1))
        np.testing.assert_array_equal(sweep.curves[(t, i, j)][1], run.test_loss)
        np.testing.assert_array_equal(sweep.curves[(t, i, j)][0], run.steps)
        assert sweep.near[t, i, j] == demos.mass_near_teacher(student, teacher)


@pytest.fixture
def agg():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


def test_particle_figures(agg, tmp_path):
    teacher = TwoLayerReLU.random(4, 2, seed=54)
    student = TwoLayerReLU.small_sphere(12, 2, 0.05, seed=100)
    run = student.fit_teacher(teacher, steps=200, batch=20, lr=5.0, snapshot_every=10, seed=1)
    tpos = teacher.a[:, None] * teacher.w
    fig = ef.plot.particles(run.positions(), tpos, title="particles")
    ax = fig.axes[0]
    assert ax.get_title() == "particles" and ax.get_xlabel() and ax.get_ylabel()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "teacher directions" in labels and any("teacher neurons" in t for t in labels)
    lim = ax.get_xlim()[1]
    assert lim >= np.abs(run.positions()).max() and lim >= np.abs(tpos).max()
    anim = ef.plot.particles_animation(run.positions(), tpos, steps=run.steps,
                                       losses=run.test_loss, frames=8)
    from matplotlib import animation

    path = tmp_path / "p.gif"
    anim.save(path, writer=animation.PillowWriter(fps=5))
    from PIL import Image

    with Image.open(path) as im:
        assert im.n_frames == 8
    fig = ef.plot.step_losses({"a": run, "b": (run.steps + 1, run.test_loss)}, log_x=True)
    assert fig.axes[0].get_yscale() == "log" and fig.axes[0].get_xscale() == "log"
    fig = ef.plot.grid_heatmap(np.array([[1e-3, np.inf], [2e-5, 4e-4]]), [0.1, 1], [4, 20],
                               row_label="radius", col_label="m", missing="never")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["1.0e-03", "never", "2.0e-05", "4.0e-04"]


def test_particle_figures_bad_input(agg):
    with pytest.raises(ValueError, match="positions"):
        ef.plot.particles(np.zeros((3, 4, 3)))
    with pytest.raises(TypeError, match="positions"):
        ef.plot.particles(np.zeros((3, 4, 2), dtype=complex))
    with pytest.raises(ValueError, match="steps"):
        ef.plot.particles_animation(np.zeros((3, 4, 2)), steps=np.arange(4))
    with pytest.raises(ValueError, match="frames"):
        ef.plot.particles_animation(np.zeros((3, 4, 2)), frames=[0, 5])
    with pytest.raises(ValueError, match="values"):
        ef.plot.grid_heatmap(np.ones((2, 3)), [1, 2], [1, 2])
    with pytest.raises(ValueError, match="curves"):
        ef.plot.step_losses({})


@pytest.mark.slow
def test_demo_meanfield_quick(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from eulerflow import cli, demos

    assert demos.DEMOS["meanfield"] is demos.run_meanfield
    assert cli.main(["demo", "meanfield", "--out", str(tmp_path), "--quick"]) == 0
    names = {p.name for p in tmp_path.iterdir()}
    assert names == {"meanfield_particles.png", "meanfield_particles.gif",
                     "meanfield_heatmap.png", "meanfield_teachers.png", "meanfield_time.png",
                     "meanfield_threads.png", "summary.md"}
    assert (tmp_path / "meanfield_particles.gif").stat().st_size < 2_000_000
    summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert "### Answers" in summary and "lr = 0.25 m" in summary
    assert "## Wide students on the core's threads" in summary
    printed = capsys.readouterr().out
    loss = float(printed.split("final_test_loss_lr5=")[1].split(",")[0])
    assert loss < 1e-3
