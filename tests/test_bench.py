"""LearningBench (seed 001's NNBench): seeded facts, online learning against a NumPy
loop, bit-for-bit checkpoints, learning potential and sweeps, sharpness against exact
Hessians, the 2/lambda_max stability threshold of gradient descent, and the knobs plot
driven headless."""

from __future__ import annotations

import os
import warnings

import eulerflow as ef
import numpy as np
import pytest
from eulerflow import bench
from eulerflow.bench import DivergenceWarning, LearningBench, SweepResult

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

A_TRUE = np.array([[1.0, -2.0, 0.5], [0.3, 0.0, -1.0]])
C_TRUE = np.array([0.2, -0.7])


def affine(x):
    return A_TRUE @ x + C_TRUE


def swap(v):
    return np.array([v[1], v[0]])


def params_of(net):
    return [p.copy() for p in net.parameters()]


def assert_same_bits(net, saved):
    params = net.parameters()
    assert len(params) == len(saved)
    for p, s in zip(params, saved, strict=True):
        assert p.dtype == s.dtype and p.shape == s.shape
        np.testing.assert_array_equal(p.view(np.uint8), s.view(np.uint8))


@pytest.fixture
def plt():
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


# ----------------------------------------------------------------------------- facts


def test_facts_are_seeded_standard_normal_inputs_with_ideal_outputs():
    b = LearningBench(ef.Dense(3, 2, seed=0), affine, seed=7)
    X, Y = b.facts(50)
    assert X.shape == (50, 3) and Y.shape == (50, 2)
    assert X.dtype == Y.dtype == np.float64
    np.testing.assert_array_equal(X, np.random.default_rng(7).standard_normal((50, 3)))
    np.testing.assert_array_equal(Y, np.stack([affine(x) for x in X]))
    X2, Y2 = b.facts(50)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(Y, Y2)
    X20, _ = b.facts(20)  # facts(m) is the beginning of facts(n)
    np.testing.assert_array_equal(X20, X[:20])
    assert b.reseed() == 8 and b.seed == 8
    assert not np.array_equal(b.facts(50)[0], X)
    assert b.reseed(7) == 7
    np.testing.assert_array_equal(b.facts(50)[0], X)
    # a vectorized ideal gives the same facts
    bv = LearningBench(ef.Dense(3, 2, seed=0), lambda X: X @ A_TRUE.T + C_TRUE, seed=7,
                       vectorized=True)
    Xv, Yv = bv.facts(50)
    np.testing.assert_array_equal(Xv, X)
    np.testing.assert_allclose(Yv, Y, rtol=1e-15, atol=1e-15)


def test_scalar_ideal_for_one_output_and_n_in_from_argument():
    net = ef.Sequential([ef.Activation("tanh"), ef.Dense(2, 1, seed=0)])
    b = LearningBench(net, lambda v: float(v.sum()), seed=1)
    assert (b.n_in, b.n_out) == (2, 1)
    X, Y = b.facts(5)
    np.testing.assert_array_equal(Y[:, 0], X.sum(axis=1))
    b2 = LearningBench(net, lambda v: v.sum(), seed=1, n_in=2)
    np.testing.assert_array_equal(b2.facts(5)[1], Y)


# ----------------------------------------------------------------------------- learning


def numpy_online_sgd(W, b, X, Y, lr):
    """Seed 001's AffinityLayer.learn: one SGD step per fact on ||Wx + b - y||^2 / 2."""
    W, b = W.copy(), b.copy()
    losses = []
    for x, y in zip(X, Y, strict=True):
        e = W @ x + b - y
        losses.append(0.5 * e @ e)
        W -= lr * np.outer(e, x)
        b -= lr * e
    return np.array(losses), W, b


def test_learn_is_online_sgd_as_a_numpy_loop():
    net = ef.Dense(3, 2, seed=0)
    b = LearningBench(net, affine, seed=3)
    W0, b0 = net.W.copy(), net.b.copy()
    losses = b.learn(80, lr=0.05)
    X, Y = b.facts(80)
    ref_losses, W, bias = numpy_online_sgd(W0, b0, X, Y, 0.05)
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(net.W, W, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(net.b, bias, rtol=1e-12, atol=1e-14)
    assert losses[-1] < 1e-3 * losses[0]  # it learned the affine map
    # the bench's default rate, and the same C++ loop as net.learn
    b.rollback()
    losses = b.learn(80)
    b.rollback()
    np.testing.assert_array_equal(losses, net.learn(b.facts(80), b.lr))


def test_diverging_learn_raises():
    b = LearningBench(ef.Dense(3, 2, seed=0), affine, seed=3)
    with pytest.raises(ef.DivergenceError, match="lr=1000"):
        b.learn(200, lr=1000.0)


# ----------------------------------------------------------------------------- checkpoints


def test_rollback_in_memory_is_bit_for_bit():
    net = ef.mlp([2, 5, 2], "tanh", seed=4)
    arrays = net.parameters()
    b = LearningBench(net, swap, seed=1)  # the constructor takes a checkpoint
    start = params_of(net)
    b.learn(100, lr=0.1)
    assert not np.array_equal(net.parameters()[0], start[0])
    b.rollback()
    assert_same_bits(net, start)
    assert all(p is q for p, q in zip(net.parameters(), arrays, strict=True))  # in place
    b.learn(30, lr=0.1)
    b.checkpoint()
    middle = params_of(net)
    b.learn(30, lr=0.1)
    b.rollback()
    assert_same_bits(net, middle)
    # the same start gives the same run, bit for bit
    first = b.learn(50, 0.1)
    b.rollback()
    np.testing.assert_array_equal(b.learn(50, 0.1), first)


def test_checkpoint_file_round_trip_and_refusals(tmp_path):
    net = ef.mlp([2, 5, 2], "tanh", seed=4)
    b = LearningBench(net, swap, seed=1)
    b.learn(40, lr=0.1)
    path = tmp_path / "bench.npz"
    b.checkpoint(path)
    saved = params_of(net)
    assert sorted(os.listdir(tmp_path)) == ["bench.npz"]  # no temporary file left
    b.learn(40, lr=0.1)
    b.rollback(path)
    assert_same_bits(net, saved)
    # another network of the same architecture takes the weights bit for bit
    other = ef.mlp([2, 5, 2], "tanh", seed=99)
    LearningBench(other, swap, seed=1).rollback(path)
    assert_same_bits(other, saved)
    # an in-memory rollback still goes to the last checkpoint
    b.learn(10, lr=0.1)
    b.rollback()
    assert_same_bits(net, saved)

    wrong = LearningBench(ef.mlp([2, 4, 2], "tanh", seed=0), swap, seed=1)
    with pytest.raises(ValueError, match=r"shape \(5, 2\).*shape \(4, 2\)"):
        wrong.rollback(path)
    single = LearningBench(ef.Dense(2, 2, seed=0), swap, seed=1)
    with pytest.raises(ValueError, match="parameter arrays but the network has 2"):
        single.rollback(path)
    f32 = LearningBench(ef.mlp([2, 5, 2], "tanh", seed=0, dtype=np.float32), swap, seed=1)
    with pytest.raises(ValueError, match="dtype float64.*dtype float32"):
        f32.rollback(path)
    net.save(tmp_path / "net.npz")  # a network file is not a bench checkpoint
    with pytest.raises(ValueError, match="format"):
        b.rollback(tmp_path / "net.npz")
    data = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a valid"):
        b.rollback(tmp_path / "cut.npz")
    assert_same_bits(net, saved)  # refusals leave the weights alone


# ----------------------------------------------------------------------------- potential


def test_learning_potential_is_minus_log_last_loss_and_leaves_the_net():
    net = ef.mlp([2, 4, 2], "tanh", seed=2)
    b = LearningBench(net, swap, seed=5)
    b.learn(20, lr=0.1)  # start somewhere that is not the checkpoint
    here = params_of(net)
    potential = b.learning_potential(100, lr=0.1)
    assert_same_bits(net, here)
    losses = b.learn(100, lr=0.1)
    assert potential == -np.log(losses[-1])
    b.rollback()  # the checkpoint was not moved by learning_potential
    assert not np.array_equal(net.parameters()[0], here[0])


def test_diverging_potential_is_minus_inf_with_a_warning_naming_lr():
    net = ef.Dense(3, 2, seed=0)
    b = LearningBench(net, affine, seed=3)
    here = params_of(net)
    with pytest.warns(DivergenceWarning, match=r"lr=1000\b") as record:
        potential = b.learning_potential(200, lr=1000.0)
    assert potential == -np.inf
    assert issubclass(record[0].category, RuntimeWarning)
    assert_same_bits(net, here)
    # the first fact's loss is finite, but its step overflows the weights
    with pytest.warns(DivergenceWarning, match=r"lr=1e\+308 .*fact 0 of 1: its step overflowed"):
        assert b.learning_potential(1, lr=1e308) == -np.inf
    assert_same_bits(net, here)
    with pytest.raises(ef.DivergenceError, match="overflowed the weights"):
        b.learn(1, lr=1e308)


def test_sweep_lr_matches_single_potentials():
    net = ef.Dense(3, 2, seed=0)
    b = LearningBench(net, affine, seed=3)
    here = params_of(net)
    lrs = np.array([0.01, 0.05, 0.2, 1000.0, 0.1])
    with pytest.warns(DivergenceWarning, match="lr=1000") as record:
        result = b.sweep_lr(lrs, n=60)
    assert len(record) == 1
    assert isinstance(result, SweepResult)
    assert (result.n, result.seed) == (60, 3)
    np.testing.assert_array_equal(result.lrs, lrs)
    np.testing.assert_array_equal(result.diverged, [False, False, False, True, False])
    assert result.potential[3] == -np.inf and not np.isnan(result.potential).any()
    for i in (0, 1, 2, 4):
        assert result.potential[i] == b.learning_potential(60, lrs[i])
        assert result.final_loss[i] == pytest.approx(np.exp(-result.potential[i]), rel=1e-14)
    assert result.best_lr == lrs[np.argmax(np.where(result.diverged, -np.inf, result.potential))]
    assert_same_bits(net, here)


# ----------------------------------------------------------------------------- sharpness


def linear_hessian(X):
    """Hessian of mean_i ||W x_i + b - y_i||^2 / 2 for Dense(3, 2), in parameters() order
    [W (2, 3) row-major, b (2,)]: per output j, [X 1]^T [X 1] / n on (W_j., b_j)."""
    n = X.shape[0]
    Xa = np.column_stack([X, np.ones(n)])
    G = Xa.T @ Xa / n
    H = np.zeros((8, 8))
    for j in range(2):
        idx = [3 * j, 3 * j + 1, 3 * j + 2, 6 + j]
        H[np.ix_(idx, idx)] = G
    return H


def test_sharpness_is_the_top_hessian_eigenvalue_of_linear_least_squares():
    net = ef.Dense(3, 2, seed=0)
    b = LearningBench(net, affine, seed=3)
    here = params_of(net)
    lam, v = b.sharpness(n=64, return_vector=True)
    assert_same_bits(net, here)
    H = linear_hessian(b.facts(64)[0])
    exact = np.linalg.eigvalsh(H)[-1]
    assert lam == pytest.approx(exact, rel=1e-6)
    assert v.shape == (8,) and np.linalg.norm(v) == pytest.approx(1.0)
    np.testing.assert_allclose(H @ v, exact * v, atol=1e-5)
    # the gradient it differentiates is that of the mean loss, exactly
    X, Y = b.facts(64)
    loss, grad = b.loss_gradient(X, Y)
    E = X @ net.W.T + net.b - Y
    assert loss == pytest.approx(0.5 * np.mean(np.sum(E**2, axis=1)), rel=1e-13)
    np.testing.assert_allclose(grad, np.concatenate([(E.T @ X).ravel(), E.sum(0)]) / 64,
                               rtol=1e-12, atol=1e-14)


def test_gradient_descent_is_stable_below_two_over_lambda_max_and_not_above():
    net = ef.Dense(3, 2, seed=0)
    b = LearningBench(net, affine, seed=3)
    n = 64
    lam = b.sharpness(n=n)
    X, Y = b.facts(n)
    finals = {}
    for factor in (0.99, 1.01):
        b.rollback()
        # fit's "half_se" is the loss sharpness() differentiates: mean of ||y - t||^2 / 2
        hist = net.fit(X, Y, loss="half_se", optimizer=ef.optim.SGD(factor * 2 / lam),
                       epochs=1500, batch_size=n, shuffle=False)
        finals[factor] = hist.loss[-1] / hist.loss[0]
    assert finals[0.99] < 1e-12  # converges (to the exact affine map: loss 0)
    assert finals[1.01] > 1e12  # the top mode grows by |1 - lr lambda| > 1 each step


def test_sharpness_of_a_nonlinear_net_matches_second_differences_of_the_loss():
    net = ef.mlp([2, 3, 1], "tanh", seed=6)
    b = LearningBench(net, lambda v: np.sin(v[0]) * v[1], seed=2)
    lam, v = b.sharpness(n=40, return_vector=True)
    X, Y = b.facts(40)
    params = net.parameters()
    theta = np.concatenate([p.ravel() for p in params])
    offsets = np.cumsum([0] + [p.size for p in params])

    def loss_at(vec):  # forward passes only: independent of backward
        for i, p in enumerate(params):
            p[...] = vec[offsets[i]:offsets[i + 1]].reshape(p.shape)
        return 0.5 * np.mean(np.sum((net(X) - Y) ** 2, axis=1))

    h, d = 1e-4, theta.size
    H = np.empty((d, d))
    eye = np.eye(d) * h
    for i in range(d):
        for j in range(i, d):
            H[i, j] = H[j, i] = (loss_at(theta + eye[i] + eye[j]) - loss_at(theta + eye[i] - eye[j])
                                 - loss_at(theta - eye[i] + eye[j])
                                 + loss_at(theta - eye[i] - eye[j])) / (4 * h * h)
    loss_at(theta)
    top = np.linalg.eigvalsh(H)[-1]
    assert lam == pytest.approx(top, rel=1e-5)
    np.testing.assert_allclose(H @ v, top * v, atol=1e-4 * abs(top))


def test_sharpness_finds_the_largest_eigenvalue_when_a_negative_one_dominates():
    # f(x) = (w . x)^2 at w = 0 with y = 1: H = -2 X^T X / n, negative definite; power
    # iteration alone finds -2 lambda_max(C), the largest eigenvalue is -2 lambda_min(C)
    dense = ef.Dense(2, 1, bias=False, seed=0)
    net = ef.Sequential([dense, ef.Map(lambda x: x * x, lambda x: 2 * x)])
    dense.W = np.zeros((1, 2))
    b = LearningBench(net, lambda v: 1.0, seed=4)
    X = b.facts(50)[0]
    C = X.T @ X / 50
    lam = b.sharpness(n=50)
    assert lam == pytest.approx(-2 * np.linalg.eigvalsh(C)[0], rel=1e-6)
    assert lam < 0


def test_sharpness_warns_when_it_does_not_converge():
    b = LearningBench(ef.mlp([2, 4, 2], "tanh", seed=0), swap, seed=0)
    with pytest.warns(RuntimeWarning, match="iters=2"):
        b.sharpness(n=20, iters=2)


# ----------------------------------------------------------------------------- plots


def test_plot_lr_sweep_marks_two_over_lambda_max(plt):
    b = LearningBench(ef.Dense(3, 2, seed=0), affine, seed=3)
    with pytest.warns(DivergenceWarning):
        result = b.sweep_lr(np.geomspace(1e-3, 1e3, 13), n=60)
    lam = b.sharpness(n=60)
    fig = bench.plot_lr_sweep(result, sharpness=lam)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("lambda" in t and "full-batch" in t for t in labels)
    assert any("diverged" in t for t in labels)
    vline = [ln for ln in ax.get_lines() if "lambda" in ln.get_label()][0]
    assert vline.get_xdata()[0] == pytest.approx(2 / lam)
    curve = ax.get_lines()[0]
    finite = ~result.diverged
    np.testing.assert_array_equal(curve.get_ydata()[finite], result.potential[finite])
    fig2, ax2 = plt.subplots()
    assert result.plot(ax=ax2) is fig2


def test_plot_lr_sweep_bad_input(plt):
    b = LearningBench(ef.Dense(3, 2, seed=0), affine, seed=3)
    result = b.sweep_lr([0.01, 0.1], n=10)
    with pytest.raises(TypeError, match="SweepResult"):
        bench.plot_lr_sweep({"lrs": [0.1]})
    with pytest.raises(ValueError, match="sharpness"):
        bench.plot_lr_sweep(result, sharpness=-1.0)
    with pytest.raises(TypeError, match="sharpness"):
        bench.plot_lr_sweep(result, sharpness="big")


def click(knobs, widget_ax):
    """A real left click (press and release) in the middle of ``widget_ax``."""
    from matplotlib.backend_bases import MouseEvent

    canvas = knobs.figure.canvas
    x, y = widget_ax.transAxes.transform((0.5, 0.5))
    for name in ("button_press_event", "button_release_event"):
        canvas.callbacks.process(name, MouseEvent(name, canvas, x, y, button=1))


def direct(b, n, lr):
    """What a knob's callback must show: learning from the checkpoint, directly."""
    b.rollback()
    losses = b.learn(n, lr)
    return losses, params_of(b.net)


def test_knobs_callbacks_roll_back_and_redraw_what_learn_gives(plt, tmp_path):
    net = ef.mlp([2, 4, 2], "tanh", seed=1)
    b = LearningBench(net, swap, seed=3)
    start = params_of(net)
    knobs = b.knobs(n=60, lr=0.05)
    assert knobs.lr == pytest.approx(0.05, rel=1e-14) and knobs.n == 60
    ydata = knobs.line.get_ydata().copy()
    expected, learned = direct(b, 60, knobs.lr)
    np.testing.assert_array_equal(ydata, expected)
    assert f"max loss {expected.max():.4g}" in knobs.ax.get_title()
    assert knobs.ax.get_yscale() == "log"
    assert knobs.ax.get_xlabel() and knobs.ax.get_ylabel()

    knobs.lr_slider.set_val(np.log10(0.2))  # the learning-rate slider holds log10(lr)
    assert knobs.lr == pytest.approx(0.2, rel=1e-14)
    expected, learned = direct(b, 60, knobs.lr)
    b.rollback()
    b.learn(5, 0.3)  # whatever state the net is in, a knob starts from the checkpoint
    knobs.update()
    np.testing.assert_array_equal(knobs.line.get_ydata(), expected)
    assert not np.array_equal(knobs.line.get_ydata(), ydata)
    assert "lr = 0.2," in knobs.ax.get_title()
    assert f"max loss {expected.max():.4g}" in knobs.ax.get_title()
    assert_same_bits(net, learned)  # the net holds the weights of the run shown
    W = knobs._image.get_array()
    np.testing.assert_array_equal(W[:2, :4], net.parameters()[0].T)
    np.testing.assert_array_equal(W[-1, :4], net.parameters()[1])
    assert knobs.lr_slider.valtext.get_text() == "0.2"

    knobs.n_slider.set_val(25)
    expected, _ = direct(b, 25, knobs.lr)
    assert knobs.n == 25 and knobs.line.get_ydata().size == 25
    np.testing.assert_array_equal(knobs.line.get_ydata(), expected)
    assert "n = 25" in knobs.ax.get_title()

    knobs.filter_radio.set_active(1)  # low-pass
    assert knobs.filter == "low-pass"
    smooth = 10 ** ef.plot.gaussian_lowpass(np.log10(expected), knobs.smooth)
    np.testing.assert_allclose(knobs.line.get_ydata(), smooth, rtol=1e-12)
    knobs.filter_radio.set_active(0)
    np.testing.assert_array_equal(knobs.line.get_ydata(), expected)

    seed = b.seed
    click(knobs, knobs.reseed_button.ax)  # the reseed button: new facts
    assert b.seed == seed + 1
    expected, _ = direct(b, 25, knobs.lr)
    np.testing.assert_array_equal(knobs.line.get_ydata(), expected)
    assert f"seed {seed + 1}" in knobs.ax.get_title()

    b.rollback()
    assert_same_bits(net, start)  # the knobs never moved the checkpoint
    path = tmp_path / "knobs.png"
    knobs.save(path)
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 300 and image.shape[1] > 500
    knobs.close()


def test_knobs_show_a_diverging_run_without_raising(plt):
    b = LearningBench(ef.Dense(3, 2, seed=0), affine, seed=3)
    knobs = b.knobs(n=200, lr=1.0, lr_range=(1e-3, 1e3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warnings leak out of a diverging run
        knobs.lr_slider.set_val(3.0)
    assert knobs.diverged_at is not None
    assert f"diverged at fact {knobs.diverged_at}" in knobs.ax.get_title()
    b.rollback()
    with pytest.raises(ef.DivergenceError) as err:
        b.learn(200, knobs.lr)
    assert err.value.batch == knobs.diverged_at
    assert knobs.line.get_ydata().size == knobs.diverged_at  # the finite losses
    knobs.lr_slider.set_val(np.log10(0.01))
    assert knobs.diverged_at is None and "max loss" in knobs.ax.get_title()


def test_knobs_bad_input(plt):
    b = LearningBench(ef.Dense(3, 2, seed=0), affine, seed=3)
    with pytest.raises(ValueError, match="lr_range"):
        b.knobs(n=10, lr=5.0, lr_range=(0.01, 1.0))
    with pytest.raises(ValueError, match="n_max"):
        b.knobs(n=50, lr=0.1, n_max=10)
    with pytest.raises(ValueError, match="lr_range"):
        b.knobs(n=10, lr=0.1, lr_range=0.5)
    knobs = b.knobs(n=10, lr=0.1)
    with pytest.raises(ValueError, match="filter"):
        knobs.set_filter("green")


# ----------------------------------------------------------------------------- bad input


def test_bad_construction():
    with pytest.raises(TypeError, match="net"):
        LearningBench(lambda x: x, swap)
    with pytest.raises(TypeError, match="ideal"):
        LearningBench(ef.Dense(2, 2), "swap")
    with pytest.raises(ValueError, match="no parameters"):
        LearningBench(ef.Activation("tanh"), swap, n_in=2)
    with pytest.raises(ValueError, match=r"n_in=3 .* 2 input"):
        LearningBench(ef.Dense(2, 2), swap, n_in=3)
    with pytest.raises(ValueError, match=r"ideal\(x\) must return shape \(2,\).*got shape "
                                         r"\(3,\) \(x shape \(2,\)\)"):
        LearningBench(ef.Dense(2, 2), lambda v: np.ones(3))
    with pytest.raises(ValueError, match=r"ideal\(X\) must return shape \(1, 2\).*\(1, 3\)"):
        LearningBench(ef.Dense(2, 2), lambda X: np.ones((len(X), 3)), vectorized=True)
    with pytest.raises(TypeError, match=r"ideal\(x\) must hold real numbers"):
        LearningBench(ef.Dense(2, 2), lambda v: ["a", "b"])
    with pytest.raises(TypeError, match=r"ideal\(x\) must hold real numbers"):
        LearningBench(ef.Dense(2, 2), lambda v: v * 1j)
    with pytest.raises(ValueError, match=r"ideal\(x\) contains 1 NaN"):
        LearningBench(ef.Dense(2, 2), lambda v: np.array([np.nan, 0.0]))
    with pytest.raises(TypeError, match="seed"):
        LearningBench(ef.Dense(2, 2), swap, seed=1.5)
    with pytest.raises(ValueError, match="lr"):
        LearningBench(ef.Dense(2, 2), swap, lr=0.0)


def test_bad_arguments():
    net = ef.Dense(2, 2, seed=0)
    b = LearningBench(net, swap, seed=0)
    here = params_of(net)
    for call in (b.learn, b.learning_potential, b.facts):
        with pytest.raises(ValueError, match="n must be positive, got 0"):
            call(0)
        with pytest.raises(TypeError, match="n must be an int"):
            call(2.5)
    for lr in (0.0, -0.1):
        with pytest.raises(ValueError, match="lr must be > 0"):
            b.learn(10, lr)
        with pytest.raises(ValueError, match="lr must be > 0"):
            b.learning_potential(10, lr)
    with pytest.raises(ValueError, match="lr must be finite"):
        b.learn(10, np.nan)
    with pytest.raises(TypeError, match="lr must be a real number"):
        b.learn(10, "0.1")
    with pytest.raises(ValueError, match=r"lrs is empty \(shape \(0,\)\)"):
        b.sweep_lr([], n=10)
    with pytest.raises(ValueError, match=r"lrs must all be > 0, got -1 \(lrs shape \(3,\)\)"):
        b.sweep_lr([0.1, -1.0, 0.2], n=10)
    with pytest.raises(ValueError, match=r"lrs must be 1-D, got shape \(2, 2\)"):
        b.sweep_lr(np.ones((2, 2)), n=10)
    with pytest.raises(TypeError, match="lrs must hold real numbers"):
        b.sweep_lr(["a"], n=10)
    with pytest.raises(ValueError, match="lrs contains 1 NaN"):
        b.sweep_lr([0.1, np.inf], n=10)
    with pytest.raises(ValueError, match="iters must be positive"):
        b.sharpness(n=10, iters=0)
    with pytest.raises(ValueError, match="n must be positive"):
        b.sharpness(n=0)
    with pytest.raises(ValueError, match="eps must be > 0"):
        b.sharpness(n=10, eps=0.0)
    with pytest.raises(ValueError, match="seed must be in"):
        b.reseed(-1)
    with pytest.raises(ValueError, match=r"Y must have shape \(3, 2\)"):
        b.loss_gradient(np.zeros((3, 2)), np.zeros((3, 1)))
    assert_same_bits(net, here)
