"""Recursive checkpointing and regularized Neural ODEs (issue 12, items 5-6).

References: plain backprop (``gradient="checkpoint"`` must give its gradient: bit for bit
with the fixed-step methods), central finite differences of the penalized loss, the NumPy
quadrature of ``reference/node_reference.window_penalty`` (Jacobians from the reference
network's backward passes), and closed forms for a linear field ``f(z) = A z``.
"""

from __future__ import annotations

import eulerflow as ef
import numpy as np
import pytest
from reference import node_reference as nref

FIXED = ("euler", "midpoint", "heun", "rk4", "rk38")
ADAPTIVE = ("bosh3", "dopri5", "tsit5")


def tanh_field(seed=3):
    return ef.mlp([2, 6, 2], "tanh", seed=seed)


def twin(net):
    specs = [("dense", 2, 6), ("act", "tanh"), ("dense", 6, 2)]
    return nref.twin(net, specs)


def rel_err(actual, expected):
    scale = max(float(np.abs(e).max()) for e in expected)
    return max(float(np.abs(a - e).max()) for a, e in zip(actual, expected, strict=True)) / scale


Z0 = np.array([0.7, -0.4])
TARGET = np.array([0.1, 0.5])
T3 = np.array([0.0, 0.4, 0.9, 1.5])


# --------------------------------------------------------------------------------------
# Recursive checkpointing
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", FIXED)
@pytest.mark.parametrize("stepping", [{"steps_per_interval": 1}, {"steps_per_interval": 7},
                                      {"step_size": 0.013}])
def test_checkpoint_gradient_equals_backprop_bit_for_bit_fixed(method, stepping):
    net = tanh_field()
    model = ef.NeuralODE(net, method, **stepping)
    loss_b, grads_b, _ = model.loss_and_gradient(Z0, TARGET, T3, gradient="backprop")
    loss_c, grads_c, _ = model.loss_and_gradient(Z0, TARGET, T3, gradient="checkpoint")
    assert loss_c == loss_b
    for gc, gb in zip(grads_c, grads_b, strict=True):
        np.testing.assert_array_equal(gc, gb)


@pytest.mark.parametrize("method", ADAPTIVE)
def test_checkpoint_gradient_equals_backprop_adaptive(method):
    net = tanh_field(5)
    model = ef.NeuralODE(net, method, rtol=1e-10, atol=1e-10)
    loss_b, grads_b, _ = model.loss_and_gradient(Z0, TARGET, T3, gradient="backprop")
    loss_c, grads_c, _ = model.loss_and_gradient(Z0, TARGET, T3, gradient="checkpoint")
    assert loss_c == loss_b
    assert rel_err(grads_c, grads_b) <= 1e-12


@pytest.mark.parametrize("steps", [1, 2, 3, 5, 64, 1000])
def test_checkpoint_with_penalties_equals_backprop(steps):
    net = tanh_field(7)
    model = ef.NeuralODE(net, "rk4", steps_per_interval=steps)
    t = np.array([0.0, 1.0])
    kw = {"kinetic_energy": 0.3, "jacobian_frobenius": 0.05}
    loss_b, grads_b, _ = model.loss_and_gradient(Z0, TARGET, t, gradient="backprop", **kw)
    loss_c, grads_c, _ = model.loss_and_gradient(Z0, TARGET, t, gradient="checkpoint", **kw)
    assert loss_c == pytest.approx(loss_b, rel=1e-14)
    assert rel_err(grads_c, grads_b) <= 1e-12


def test_checkpoint_memory_grows_like_log_steps():
    net = tanh_field()
    t = np.array([0.0, 1.0])
    sizes = {}
    for how in ("backprop", "checkpoint", "adjoint"):
        for steps in (16, 256, 4096):
            model = ef.NeuralODE(net, "rk4", steps_per_interval=steps)
            sizes[how, steps] = model.loss_and_gradient(Z0, TARGET, t, gradient=how)[2]
    # backprop stores (t, h, y) per step: 16x the steps, about 16x the bytes
    assert sizes["backprop", 4096] > 10 * sizes["backprop", 256]
    # checkpointing stores one state (2 values, 16 bytes) per bisection level: 16x the
    # steps add 4 levels
    assert sizes["checkpoint", 4096] - sizes["checkpoint", 256] == 4 * 2 * 8
    assert sizes["checkpoint", 256] - sizes["checkpoint", 16] == 4 * 2 * 8
    # the adjoint's scratch does not depend on the steps
    assert sizes["adjoint", 4096] == sizes["adjoint", 16]


def test_checkpoint_training_equals_backprop_training():
    rng = np.random.default_rng(0)
    t = np.linspace(0.0, 2.0, 12)
    data = np.column_stack([np.cos(t), np.sin(t)]) + 0.01 * rng.standard_normal((12, 2))
    hists, params = [], []
    for how in ("backprop", "checkpoint"):
        net = tanh_field(9)
        model = ef.NeuralODE(net, "heun", steps_per_interval=3)
        hists.append(model.fit(data, t, epochs=5, window=3, batch_size=2, gradient=how,
                               optimizer=ef.optim.Adam(1e-2), kinetic_energy=0.01))
        params.append([p.copy() for p in net.parameters()])
    np.testing.assert_array_equal(hists[0].loss, hists[1].loss)
    for a, b in zip(*params, strict=True):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------------------
# Penalty values
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["euler", "heun", "rk4", "rk38"])
def test_penalty_equals_numpy_quadrature(method):
    net = tanh_field(11)
    model = ef.NeuralODE(net, method, steps_per_interval=3)
    base = model.loss_and_gradient(Z0, TARGET, T3)[0]
    for kin, jac in [(0.7, 0.0), (0.0, 0.2), (0.5, 0.3)]:
        loss = model.loss_and_gradient(Z0, TARGET, T3, kinetic_energy=kin,
                                       jacobian_frobenius=jac)[0]
        ref = nref.window_penalty(twin(net), method, Z0, T3, kin, jac, steps_per_interval=3)
        assert loss - base == pytest.approx(ref, rel=1e-12)


def test_linear_field_penalties_have_closed_forms():
    # f(z) = A z: ||J||_F^2 = ||A||_F^2 everywhere, so the Jacobian penalty is
    # jacobian * ||A||_F^2 * (t1 - t0) exactly for any solver; with Euler steps the kinetic
    # one is kinetic * h * sum_m ||A z_m||^2 over the Euler iterates z_m.
    net = ef.Dense(2, 2, bias=False, seed=4)
    A = net.parameters()[0]
    t = np.array([0.0, 0.3, 1.1])
    for method in ("euler", "rk4", "dopri5"):
        kw = {} if method == "dopri5" else {"step_size": 0.05}
        model = ef.NeuralODE(net, method, **kw)
        base = model.loss_and_gradient(Z0, TARGET, t)[0]
        loss = model.loss_and_gradient(Z0, TARGET, t, jacobian_frobenius=0.25)[0]
        assert loss - base == pytest.approx(0.25 * np.sum(A * A) * 1.1, rel=1e-13)
    model = ef.NeuralODE(net, "euler", step_size=0.05)
    z, kin = Z0.copy(), 0.0
    for ta, tb in [(0.0, 0.3), (0.3, 1.1)]:
        for _, h in nref.schedule(ta, tb, step_size=0.05):
            kin += h * float((A @ z) @ (A @ z))
            z = z + h * (A @ z)
    loss = model.loss_and_gradient(Z0, TARGET, t, kinetic_energy=2.0)[0]
    base = model.loss_and_gradient(Z0, TARGET, t)[0]
    assert loss - base == pytest.approx(2.0 * kin, rel=1e-12)


# --------------------------------------------------------------------------------------
# Exact gradients of the penalized loss
# --------------------------------------------------------------------------------------


ACTIVATIONS = ["tanh", "atan", "sigmoid", "softplus", "elu"]


@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("gradient", ["backprop", "checkpoint"])
def test_penalized_gradient_equals_finite_differences(act, gradient):
    net = ef.mlp([2, 5, 5, 2], act, seed=21)
    # elu is only C^1 at 0: keep its pre-activations away from the kink
    z0 = Z0 + (3.0 if act == "elu" else 0.0)
    model = ef.NeuralODE(net, "rk4", steps_per_interval=2)
    kw = {"kinetic_energy": 0.4, "jacobian_frobenius": 0.15}
    _, grads, _ = model.loss_and_gradient(z0, TARGET, T3, gradient=gradient, **kw)
    fd = nref.finite_difference_gradient(
        lambda: model.loss_and_gradient(z0, TARGET, T3, **kw)[0], net.parameters(), eps=1e-4)
    assert rel_err(grads, fd) < 1e-8


def test_jacobian_penalty_gradient_with_shared_and_biasless_layers():
    shared = ef.Dense(2, 2, seed=5)
    net = ef.Sequential([shared, ef.Activation("tanh"), ef.Dense(2, 2, bias=False, seed=6),
                         ef.Activation("atan"), shared])
    model = ef.NeuralODE(net, "midpoint", steps_per_interval=4)
    kw = {"jacobian_frobenius": 0.3}
    _, grads, _ = model.loss_and_gradient(Z0, TARGET, T3, **kw)
    fd = nref.finite_difference_gradient(
        lambda: model.loss_and_gradient(Z0, TARGET, T3, **kw)[0], net.parameters(), eps=1e-4)
    assert rel_err(grads, fd) < 1e-8


def test_adjoint_with_penalties_converges_to_backprop():
    # the adjoint solves the continuous adjoint equations with the penalty's rate
    # r = k ||f||^2 + j ||J||_F^2 (a' = -J^T (a + 2 k f) - j dP/dz): at tight tolerance it
    # approaches the discrete gradient, and the error falls with the tolerance
    net = tanh_field(13)
    kw = {"kinetic_energy": 0.5, "jacobian_frobenius": 0.2}
    errs = []
    for tol in (1e-5, 1e-9):
        model = ef.NeuralODE(net, "dopri5", rtol=tol, atol=tol)
        _, gb, _ = model.loss_and_gradient(Z0, TARGET, T3, gradient="backprop", **kw)
        _, ga, _ = model.loss_and_gradient(Z0, TARGET, T3, gradient="adjoint", **kw)
        errs.append(rel_err(ga, gb))
    assert errs[1] < 1e-7
    assert errs[1] < errs[0] / 100


def test_adjoint_penalty_runs_backwards_in_time():
    net = tanh_field(15)
    t = T3[::-1].copy()
    kw = {"kinetic_energy": 0.5, "jacobian_frobenius": 0.2}
    model = ef.NeuralODE(net, "dopri5", rtol=1e-10, atol=1e-10)
    lb, gb, _ = model.loss_and_gradient(Z0, TARGET, t, gradient="backprop", **kw)
    la, ga, _ = model.loss_and_gradient(Z0, TARGET, t, gradient="adjoint", **kw)
    assert la == pytest.approx(lb, rel=1e-12)
    assert rel_err(ga, gb) < 1e-7


# --------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------


def spiral_series(n=20):
    t = np.linspace(0.0, 3.0, n)
    r = np.exp(-0.3 * t)
    return t, np.column_stack([r * np.cos(2 * t), r * np.sin(2 * t)])


def test_fit_reports_nfev_and_penalty_per_epoch():
    t, data = spiral_series()
    net = tanh_field(17)
    model = ef.NeuralODE(net, "dopri5", rtol=1e-6, atol=1e-8)
    hist = model.fit(data, t, epochs=4, window=2, optimizer=ef.optim.Adam(1e-2),
                     kinetic_energy=0.1)
    assert hist.metrics["nfev"].shape == (4,)
    # every window of every epoch: at least one dopri5 step (7 evaluations) per interval
    assert np.all(hist.metrics["nfev"] >= 7 * 2 * (t.size - 2))
    assert np.all(hist.metrics["penalty"] > 0)
    assert np.all(hist.metrics["penalty"] < hist.loss)
    plain = ef.NeuralODE(tanh_field(17), "dopri5", rtol=1e-6, atol=1e-8)
    h0 = plain.fit(data, t, epochs=4, window=2, optimizer=ef.optim.Adam(1e-2))
    np.testing.assert_array_equal(h0.metrics["penalty"], np.zeros(4))


def test_kinetic_penalty_trains_a_slower_field():
    # the same training with and without the kinetic penalty: the penalized field moves
    # the states with less kinetic energy along the data's windows
    t, data = spiral_series()
    fields = []
    for kin in (0.0, 1.0):
        net = tanh_field(19)
        ef.NeuralODE(net, "rk4", steps_per_interval=2).fit(
            data, t, epochs=60, window=2, optimizer=ef.optim.Adam(1e-2), kinetic_energy=kin)
        fields.append(net)
    energy = [float(np.mean(np.sum(f(data) ** 2, axis=1))) for f in fields]
    assert energy[1] < 0.9 * energy[0]


def test_penalized_fit_is_reproducible():
    t, data = spiral_series()
    out = []
    for _ in range(2):
        net = tanh_field(23)
        hist = ef.NeuralODE(net, "bosh3").fit(data, t, epochs=3, window=3, batch_size=4,
                                              optimizer=ef.optim.Adam(1e-2),
                                              kinetic_energy=0.1, jacobian_frobenius=0.01)
        out.append((hist.loss.copy(), [p.copy() for p in net.parameters()]))
    np.testing.assert_array_equal(out[0][0], out[1][0])
    for a, b in zip(out[0][1], out[1][1], strict=True):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kw", [{"kinetic_energy": -1.0}, {"jacobian_frobenius": -0.1},
                                {"kinetic_energy": float("nan")},
                                {"jacobian_frobenius": float("inf")}])
def test_bad_penalty_weights(kw):
    model = ef.NeuralODE(tanh_field(), "rk4")
    name = next(iter(kw))
    with pytest.raises(ValueError, match=name):
        model.loss_and_gradient(Z0, TARGET, T3, **kw)
    t, data = spiral_series()
    with pytest.raises(ValueError, match=name):
        model.fit(data, t, epochs=1, **kw)


def test_jacobian_penalty_refuses_unsupported_fields():
    net = ef.Sequential([ef.Dense(2, 2, seed=1), ef.Residual(ef.Dense(2, 2, seed=2))])
    model = ef.NeuralODE(net, "rk4")
    with pytest.raises(ValueError, match="jacobian_frobenius.*Dense and activation"):
        model.loss_and_gradient(Z0, TARGET, T3, jacobian_frobenius=0.1)
    # the kinetic penalty needs only the field's own backward pass
    model.loss_and_gradient(Z0, TARGET, T3, kinetic_energy=0.1)


def test_unknown_gradient_names_the_choices():
    model = ef.NeuralODE(tanh_field(), "rk4")
    with pytest.raises(ValueError, match="checkpoint"):
        model.loss_and_gradient(Z0, TARGET, T3, gradient="recursive")
