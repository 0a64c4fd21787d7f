"""Depth as time (seed 000, issue 7): ResidualFlow, bias and activity penalties.

``ef.ResidualFlow(f, depth, t_end)`` is explicit Euler on dx/dt = f(x) with step
t_end/depth and one shared field: its hidden states are compared with ``ef.odeint``'s
Euler run, its gradients with finite differences, with an untied copy and with torch
autograd, and its output with a tight dopri5 solution as the depth grows (first order).
The penalties (Keras ``bias_regularizer`` and ``activity_regularizer``) are checked
against a NumPy recomputation of the penalised loss written here from the definitions,
its finite differences, and torch autograd.
"""

from __future__ import annotations

import eulerflow as ef
import numpy as np
import pytest

# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def make_field(kind: str, d: int = 3, seed: int = 0) -> ef.Module:
    """Fields of equal input and output width, with O(1) weights."""
    if kind == "tanh":
        return ef.mlp([d, 8, d], "tanh", seed=seed)
    if kind == "elu2":
        return ef.mlp([d, 5, 5, d], "elu", seed=seed)
    if kind == "linear":
        return ef.Dense(d, d, seed=seed)
    if kind == "nested":  # a field that is itself a residual net
        inner = ef.Residual(ef.Sequential([ef.Dense(d, d, seed=seed), ef.Activation("atan")]),
                            mode="average")
        return ef.Sequential([inner, ef.Dense(d, d, bias=False, seed=seed + 1)])
    if kind == "activation":  # no weights, any width: dx/dt = tanh(x)
        return ef.Activation("tanh")
    raise AssertionError(kind)


FIELDS = ["tanh", "elu2", "linear", "nested", "activation"]


def same_values(src: ef.Module, dst: ef.Module) -> None:
    for p, q in zip(src.parameters(), dst.parameters(), strict=True):
        q[...] = p


def untied_copy(field_kind: str, field: ef.Module, depth: int, t_end: float, d: int = 3):
    """``Sequential([Residual(f_k, "step", h)])`` with per-block copies of ``field``."""
    blocks = []
    for _ in range(depth):
        f_k = make_field(field_kind, d, seed=99)
        same_values(field, f_k)
        blocks.append(ef.Residual(f_k, mode="step", h=t_end / depth))
    return ef.Sequential(blocks)


def rel_err(actual, expected) -> float:
    a = np.concatenate([np.ravel(x) for x in actual])
    e = np.concatenate([np.ravel(x) for x in expected])
    return float(np.max(np.abs(a - e)) / max(np.max(np.abs(e)), 1e-300))


# --------------------------------------------------------------------------------------
# A NumPy reference of a network and of Keras' penalised loss, from the definitions
# --------------------------------------------------------------------------------------

_ACT = {
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
    "tanh": np.tanh,
    "atan": np.arctan,
    "identity": lambda x: x,
}


def np_forward(module, x: np.ndarray, acts: list) -> np.ndarray:
    """Forward of an eulerflow module in NumPy, reading only its weights and settings;
    appends every ActivityPenalty's ``(l1, l2, activity)`` to ``acts``."""
    if isinstance(module, ef.Dense):
        y = x @ module.W.T
        return y + module.b if module.bias else y
    if isinstance(module, ef.Activation):
        assert module.params in ({}, {"alpha": 1.0}), module.params
        return _ACT[module.name](x)
    if isinstance(module, ef.ActivityPenalty):
        acts.append((module.l1, module.l2, x))
        return x
    if isinstance(module, ef.Residual):
        f = np_forward(module.block, x, acts)
        return {"average": (f + x) / 2, "add": x + f, "step": x + module.h * f}[module.mode]
    if isinstance(module, ef.Sequential):  # ResidualFlow included: a chain of steps
        for layer in module.layers:
            x = np_forward(layer, x, acts)
        return x
    raise AssertionError(module)


def dense_layers(module) -> list:
    """Every distinct Dense layer inside ``module``, in order."""
    out: list = []

    def walk(m):
        if isinstance(m, ef.Dense):
            if all(m is not d for d in out):
                out.append(m)
        elif isinstance(m, ef.Residual):
            walk(m.block)
        elif isinstance(m, ef.Sequential):
            for layer in m.layers:
                walk(layer)

    walk(module)
    return out


def keras_loss(net, X, Y, l1=0.0, l2=0.0) -> float:
    """Keras' training loss of one batch: mse (mean over all elements)
    + kernel regularizers l1 sum|W| + l2 sum W^2 over every Dense W (fit's l1, l2)
    + bias regularizers bias_l1 sum|b| + bias_l2 sum b^2 of each Dense
    + activity regularizers (l1 sum|a| + l2 sum a^2) / batch of each ActivityPenalty
    (tf.keras divides the activity loss by the batch size). A shared layer counts its
    weight penalty once and its activity penalty at every use."""
    acts: list = []
    y = np_forward(net, np.asarray(X, dtype=np.float64), acts)
    loss = float(np.mean((y - Y) ** 2))
    for d in dense_layers(net):
        loss += l1 * np.abs(d.W).sum() + l2 * (d.W**2).sum()
        if d.bias:
            loss += d.bias_l1 * np.abs(d.b).sum() + d.bias_l2 * (d.b**2).sum()
    n = X.shape[0]
    for a1, a2, a in acts:
        loss += (a1 * np.abs(a).sum() + a2 * (a**2).sum()) / n
    return loss


def fd_gradient(fun, params, eps=1e-6) -> list[np.ndarray]:
    """Central finite differences of ``fun()`` with respect to every entry of ``params``
    (arrays changed in place and restored)."""
    grads = []
    for p in params:
        g = np.zeros_like(p)
        flat, gflat = p.reshape(-1), g.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            up = fun()
            flat[i] = old - eps
            down = fun()
            flat[i] = old
            gflat[i] = (up - down) / (2 * eps)
        grads.append(g)
    return grads


def seed_layer(n_in, seed, penalty, residual=None):
    """One of seed 000's layers: Dense + ELU with its Keras regularizers, optionally
    wrapped in a residual block."""
    b1, b2, a1, a2 = penalty
    layers = [ef.Dense(n_in, 3, seed=seed, bias_l1=b1, bias_l2=b2), ef.Activation("elu")]
    if a1 or a2:
        layers.append(ef.ActivityPenalty(l1=a1, l2=a2))
    if residual is None:
        return layers
    return [ef.Residual(ef.Sequential(layers), mode=residual, h=0.3)]


def penalised_net(form: str, penalty=(0.01, 0.02, 0.03, 0.04)) -> ef.Sequential:
    """A small seed-000-style network with every penalty switched on, in each form."""
    layers = seed_layer(7, 1, penalty)
    if form == "plain":
        layers += seed_layer(3, 2, penalty) + seed_layer(3, 3, penalty)
    elif form in ("average", "add", "step"):
        layers += seed_layer(3, 2, penalty, form) + seed_layer(3, 3, penalty, form)
    elif form == "flow":
        field = ef.Sequential(seed_layer(3, 2, penalty) + [ef.Dense(3, 3, seed=4)])
        layers += [ef.ResidualFlow(field, depth=3, t_end=0.9)]
    else:
        raise AssertionError(form)
    # scale the weights so that activities sit on both sides of 0 (ELU's kink, |a|'s kink)
    rng = np.random.default_rng(7)
    for p in ef.Sequential(layers).parameters():
        p[...] = rng.uniform(-1.0, 1.0, p.shape)
    return ef.Sequential(layers)


FORMS = ["plain", "average", "add", "step", "flow"]


@pytest.fixture
def torch64():
    """torch with float64 as its default dtype: NAdam then keeps its scalar state
    (mu_product) in float64 as eulerflow does (in float32 the steps differ by ~1e-8)."""
    torch = pytest.importorskip("torch")
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield torch
    torch.set_default_dtype(old)


def projectile_batch(n: int = 24, seed: int = 3):
    X, Y = ef.data.projectile(n, seed=seed)
    X = X + np.random.default_rng(seed).normal(0.0, 0.3, X.shape)  # every input matters
    return X, Y


# --------------------------------------------------------------------------------------
# ResidualFlow is explicit Euler
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", FIELDS)
@pytest.mark.parametrize("depth", [1, 3, 17])
@pytest.mark.parametrize("t_end", [0.3, 1.0, 2.5])
def test_hidden_states_are_euler_steps_of_odeint(kind, depth, t_end):
    field = make_field(kind)
    net = ef.ResidualFlow(field, depth, t_end=t_end)
    t = np.linspace(0.0, t_end, depth + 1)
    for batch in (1, 5):
        x = np.random.default_rng(batch).standard_normal((batch, 3))
        states = net.hidden_states(x)
        ys = ef.odeint(field, x, t, method="euler")
        assert len(states) == depth + 1
        np.testing.assert_allclose(np.array(states), ys, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(net(x), ys[-1], rtol=1e-12, atol=1e-12)
    # one sample as a 1-D array
    x1 = np.array([0.3, -0.7, 1.1])
    states = net.hidden_states(x1)
    assert states[-1].shape == (3,)
    np.testing.assert_allclose(np.array(states), ef.odeint(field, x1, t, method="euler"),
                               rtol=1e-12, atol=1e-12)


def test_hidden_states_match_a_hand_written_euler_loop():
    # independent of odeint: x_{k+1} = x_k + h f(x_k) in NumPy
    field = make_field("elu2", d=4, seed=5)
    net = ef.ResidualFlow(field, 6, t_end=1.5)
    x = np.random.default_rng(0).standard_normal((7, 4))
    expected = [x]
    for _ in range(6):
        expected.append(expected[-1] + 0.25 * np_forward(field, expected[-1], []))
    np.testing.assert_allclose(np.array(net.hidden_states(x)), np.array(expected),
                               rtol=1e-12, atol=1e-12)


def test_flow_shares_one_field_and_reads_like_a_sequential():
    field = make_field("tanh")
    net = ef.ResidualFlow(field, 5, t_end=2.0)
    assert isinstance(net, ef.Sequential) and len(net) == 5
    assert net.depth == 5 and net.t_end == 2.0 and net.field is field
    assert all(block.block is field and block.mode == "step" and block.h == 0.4
               for block in net)
    assert net.in_features == net.out_features == 3
    # the parameters are the field's arrays themselves, each once
    assert len(net.parameters()) == len(field.parameters()) == 4
    assert all(p is q for p, q in zip(net.parameters(), field.parameters(), strict=True))
    assert net.n_parameters() == field.n_parameters()
    text = repr(net)
    assert text.startswith("ResidualFlow(") and "depth=5" in text and "t_end=2.0" in text
    # changing the field's weights changes every block (no copies anywhere)
    x = np.ones((2, 3))
    before = net(x)
    field.parameters()[-1][...] += 0.1
    after = net(x)
    np.testing.assert_allclose(after - before, ef.odeint(field, x, [0, 2.0], "euler",
                                                         step_size=0.4)[-1] - before,
                               rtol=1e-12, atol=1e-12)


def test_flow_inside_a_larger_network_counts_as_one_layer():
    field = make_field("tanh")
    net = ef.Sequential([ef.Dense(5, 3, seed=1), ef.ResidualFlow(field, 4), ef.Dense(3, 2)])
    x = np.random.default_rng(2).standard_normal((3, 5))
    states = net.hidden_states(x)
    assert len(states) == 4
    flow = ef.odeint(field, states[1], np.linspace(0, 1, 5), method="euler")
    np.testing.assert_allclose(states[2], flow[-1], rtol=1e-12, atol=1e-12)


def test_float32_flow_follows_the_float64_one():
    f64 = ef.mlp([3, 8, 3], "tanh", seed=4)
    f32 = ef.mlp([3, 8, 3], "tanh", seed=4, dtype=np.float32)
    same_values(f64, f32)
    x = np.random.default_rng(0).standard_normal((4, 3))
    y32 = ef.ResidualFlow(f32, 10)(x)
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, ef.ResidualFlow(f64, 10)(x), rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------------------
# Gradients of the shared weights: the sum over the blocks
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["tanh", "elu2", "linear", "nested"])
def test_tied_gradient_is_the_sum_of_the_untied_block_gradients(kind):
    depth, t_end = 7, 1.3
    field = make_field(kind, seed=1)
    tied = ef.ResidualFlow(field, depth, t_end=t_end)
    untied = untied_copy(kind, field, depth, t_end)
    x = np.random.default_rng(3).standard_normal((6, 3))
    gy = np.random.default_rng(4).standard_normal((6, 3))
    np.testing.assert_array_equal(tied(x), untied(x))
    gx_tied = tied.backward(gy)
    gx_untied = untied.backward(gy)
    np.testing.assert_allclose(gx_tied, gx_untied, rtol=1e-13, atol=1e-13)
    k = len(field.parameters())
    per_block = untied.gradients()
    assert len(per_block) == depth * k
    summed = [sum(per_block[b * k + j] for b in range(depth)) for j in range(k)]
    for g, s in zip(tied.gradients(), summed, strict=True):
        np.testing.assert_allclose(g, s, rtol=1e-12, atol=1e-13)
    # and the blocks really differ: the sum is not depth times one block's gradient
    assert not np.allclose(per_block[0], per_block[(depth - 1) * k])


@pytest.mark.parametrize("kind", ["tanh", "elu2", "nested"])
def test_tied_gradient_matches_finite_differences(kind):
    field = make_field(kind, seed=2)
    net = ef.ResidualFlow(field, 5, t_end=1.1)
    x = np.random.default_rng(5).standard_normal((4, 3))
    w = np.random.default_rng(6).standard_normal((4, 3))
    net(x)
    gx = net.backward(w)
    grads = [g.copy() for g in net.gradients()]
    fd = fd_gradient(lambda: float(np.sum(w * net(x))), net.parameters())
    assert rel_err(grads, fd) < 1e-8
    fdx = fd_gradient(lambda: float(np.sum(w * net(x))), [x])
    assert rel_err([gx], fdx) < 1e-8


def test_tied_fit_matches_torch_autograd_with_nadam(torch64):
    torch = torch64
    nn = torch.nn
    depth, t_end = 6, 1.0
    field = ef.mlp([3, 8, 3], "tanh", seed=11)
    net = ef.ResidualFlow(field, depth, t_end=t_end)
    tfield = nn.Sequential(nn.Linear(3, 8, dtype=torch.float64), nn.Tanh(),
                           nn.Linear(8, 3, dtype=torch.float64))
    with torch.no_grad():
        for p, q in zip(net.parameters(), tfield.parameters(), strict=True):
            q.copy_(torch.from_numpy(p.copy()))
    rng = np.random.default_rng(12)
    X, Y = rng.standard_normal((50, 3)), rng.standard_normal((50, 3))
    hist = net.fit(X, Y, optimizer=ef.optim.Nadam(lr=0.002), epochs=3, batch_size=20,
                   shuffle=False)
    opt = torch.optim.NAdam(tfield.parameters(), lr=0.002)
    h = t_end / depth
    losses = []
    for _ in range(3):
        epoch = []
        for start in range(0, 50, 20):
            xb = torch.from_numpy(X[start:start + 20])
            yb = torch.from_numpy(Y[start:start + 20])
            z = xb
            for _ in range(depth):
                z = z + h * tfield(z)
            loss = torch.nn.functional.mse_loss(z, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            epoch.append(loss.item())
        losses.append(np.mean(epoch))
    np.testing.assert_allclose(hist.loss, losses, rtol=1e-12)
    for p, q in zip(net.parameters(), tfield.parameters(), strict=True):
        np.testing.assert_allclose(p, q.detach().numpy(), rtol=1e-11, atol=1e-13)


def test_tied_sgd_step_is_lr_times_the_summed_block_gradients():
    depth, lr = 8, 0.05
    field = make_field("elu2", seed=3)
    tied = ef.ResidualFlow(field, depth)
    untied = untied_copy("elu2", field, depth, 1.0)
    rng = np.random.default_rng(8)
    X, Y = rng.standard_normal((10, 3)), rng.standard_normal((10, 3))
    before = [p.copy() for p in tied.parameters()]
    # the gradient of the mse on the untied copy, summed over blocks
    out = untied(X)
    untied.backward(2.0 * (out - Y) / out.size)
    k = len(before)
    g = [sum(untied.gradients()[b * k + j] for b in range(depth)) for j in range(k)]
    tied.fit(X, Y, optimizer=ef.optim.SGD(lr), epochs=1, batch_size=10, shuffle=False)
    for p0, p1, gj in zip(before, tied.parameters(), g, strict=True):
        np.testing.assert_allclose((p0 - p1) / lr, gj, rtol=1e-10, atol=1e-13)


def test_flow_learns_and_its_field_stays_shared_after_training():
    field = ef.mlp([2, 16, 2], "tanh", seed=0)
    net = ef.ResidualFlow(field, 10)
    A = np.array([[-0.1, -1.0], [1.0, -0.1]])
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (400, 2))
    Y = ef.odeint(ef.fields.Linear(A), X, [0.0, 1.0], rtol=1e-10, atol=1e-12)[-1]
    hist = net.fit(X, Y, optimizer=ef.optim.Adam(lr=0.01), epochs=150, batch_size=40)
    assert hist.loss[-1] < 1e-2 * hist.loss[0]
    assert hist.loss[-1] < 2e-4
    # the trained net is still Euler on its (trained) field
    np.testing.assert_allclose(net(X[:5]), ef.odeint(field, X[:5], [0, 1.0], "euler",
                                                      step_size=0.1)[-1], rtol=1e-12,
                               atol=1e-12)


# --------------------------------------------------------------------------------------
# save / load
# --------------------------------------------------------------------------------------


def test_save_load_round_trip_keeps_the_weights_tied(tmp_path):
    field = ef.Sequential([ef.Dense(3, 6, seed=1, bias_l2=1e-3), ef.Activation("elu"),
                           ef.ActivityPenalty(l1=1e-4, l2=2e-4), ef.Dense(6, 3, seed=2)])
    net = ef.Sequential([ef.Dense(4, 3, seed=0), ef.ResidualFlow(field, 9, t_end=0.7)])
    path = tmp_path / "flow.npz"
    net.save(path)
    back = ef.load(path)
    x = np.random.default_rng(0).standard_normal((5, 4))
    np.testing.assert_array_equal(back(x), net(x))
    flow = back[1]
    assert isinstance(flow, ef.ResidualFlow)
    assert (flow.depth, flow.t_end) == (9, 0.7)
    assert repr(back) == repr(net)
    assert len(back.parameters()) == len(net.parameters()) == 6
    assert all(b.block is flow.field for b in flow)
    # same penalised training from the same start: same losses, same weights
    X, Y = np.random.default_rng(1).standard_normal((30, 4)), np.zeros((30, 3))
    h1 = net.fit(X, Y, optimizer=ef.optim.Nadam(), epochs=2, batch_size=8, seed=3)
    h2 = back.fit(X, Y, optimizer=ef.optim.Nadam(), epochs=2, batch_size=8, seed=3)
    np.testing.assert_array_equal(h1.loss, h2.loss)
    for p, q in zip(net.parameters(), back.parameters(), strict=True):
        np.testing.assert_array_equal(p, q)


# --------------------------------------------------------------------------------------
# Convergence to the ODE flow as the depth grows
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["tanh", "elu2", "nested"])
def test_flow_converges_to_dopri5_at_first_order(kind):
    field = make_field(kind, seed=4)
    x = np.random.default_rng(9).standard_normal((4, 3))
    t_end = 1.5
    exact = ef.odeint(field, x, [0.0, t_end], rtol=1e-12, atol=1e-12)[-1]
    depths = 2 ** np.arange(3, 11)
    errors = np.array([np.max(np.abs(ef.ResidualFlow(field, int(L), t_end)(x) - exact))
                       for L in depths])
    assert np.all(np.diff(errors) < 0)
    slope = np.polyfit(np.log(depths), np.log(errors), 1)[0]
    assert -1.05 < slope < -0.95, (slope, errors)
    # first order: doubling the depth halves the error in the end
    assert errors[-2] / errors[-1] == pytest.approx(2.0, rel=0.02)


def test_hidden_path_converges_to_the_flow_at_first_order():
    field = make_field("tanh", seed=6)
    x = np.array([[0.5, -1.0, 0.8]])
    depths = np.array([5, 10, 20, 40, 80, 160])
    dist = []
    for L in depths:
        states = np.array(ef.ResidualFlow(field, int(L)).hidden_states(x))
        path = ef.odeint(field, x, np.linspace(0, 1, L + 1), rtol=1e-12, atol=1e-12)
        dist.append(np.max(np.linalg.norm(states - path, axis=-1)))
    slope = np.polyfit(np.log(depths), np.log(dist), 1)[0]
    assert -1.05 < slope < -0.95, (slope, dist)


# --------------------------------------------------------------------------------------
# Bias and activity penalties (Keras definitions)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
def test_fit_reports_the_keras_penalised_loss(form):
    net = penalised_net(form)
    X, Y = projectile_batch(50)
    l1, l2 = 0.005, 0.007
    batch = 20  # batches of 20, 20, 10: the activity term divides by each batch's size
    expected = np.mean([keras_loss(net, X[s:s + batch], Y[s:s + batch], l1, l2)
                        for s in range(0, 50, batch)])
    before = [p.copy() for p in net.parameters()]
    hist = net.fit(X, Y, optimizer=ef.optim.SGD(lr=1e-300), epochs=1, batch_size=batch,
                   shuffle=False, l1=l1, l2=l2)
    assert hist.loss[0] == pytest.approx(expected, rel=1e-13)
    for p, q in zip(before, net.parameters(), strict=True):
        np.testing.assert_array_equal(p, q)
    # each penalty is really in it: switching one off changes the reported loss
    plain = net.fit(X, Y, optimizer=ef.optim.SGD(lr=1e-300), epochs=1, batch_size=batch,
                    shuffle=False)
    assert plain.loss[0] < hist.loss[0]


@pytest.mark.parametrize("form", FORMS)
def test_penalty_gradients_match_finite_differences_of_the_keras_loss(form):
    net = penalised_net(form)
    X, Y = projectile_batch(16)
    l1, l2, lr = 0.005, 0.007, 1e-4
    before = [p.copy() for p in net.parameters()]
    fd = fd_gradient(lambda: keras_loss(net, X, Y, l1, l2), net.parameters(), eps=1e-6)
    net.fit(X, Y, optimizer=ef.optim.SGD(lr), epochs=1, batch_size=16, shuffle=False,
            l1=l1, l2=l2)
    grads = [(p0 - p1) / lr for p0, p1 in zip(before, net.parameters(), strict=True)]
    assert rel_err(grads, fd) < 1e-6


@pytest.mark.parametrize("form", FORMS)
def test_penalised_training_matches_torch_autograd(form, torch64):
    torch = torch64
    net = penalised_net(form)
    X, Y = projectile_batch(30)
    l1, l2 = 0.005, 0.007
    tparams = [torch.tensor(p.copy(), requires_grad=True) for p in net.parameters()]
    index = {id(p): i for i, p in enumerate(net.parameters())}

    def tforward(module, x, acts):
        if isinstance(module, ef.Dense):
            y = x @ tparams[index[id(module.W)]].T
            return y + tparams[index[id(module.b)]] if module.bias else y
        if isinstance(module, ef.Activation):
            return {"elu": torch.nn.functional.elu, "tanh": torch.tanh}[module.name](x)
        if isinstance(module, ef.ActivityPenalty):
            acts.append((module.l1, module.l2, x))
            return x
        if isinstance(module, ef.Residual):
            f = tforward(module.block, x, acts)
            return {"average": (f + x) / 2, "add": x + f, "step": x + module.h * f}[module.mode]
        for layer in module.layers:
            x = tforward(layer, x, acts)
        return x

    def tloss(xb, yb):
        acts = []
        y = tforward(net, xb, acts)
        loss = torch.nn.functional.mse_loss(y, yb)
        for d in dense_layers(net):
            W = tparams[index[id(d.W)]]
            loss = loss + l1 * W.abs().sum() + l2 * (W**2).sum()
            if d.bias:
                b = tparams[index[id(d.b)]]
                loss = loss + d.bias_l1 * b.abs().sum() + d.bias_l2 * (b**2).sum()
        for a1, a2, a in acts:
            loss = loss + (a1 * a.abs().sum() + a2 * (a**2).sum()) / xb.shape[0]
        return loss

    opt = torch.optim.NAdam(tparams, lr=0.01)
    losses = []
    for _ in range(2):
        epoch = []
        for s in range(0, 30, 12):
            loss = tloss(torch.from_numpy(X[s:s + 12]), torch.from_numpy(Y[s:s + 12]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            epoch.append(loss.item())
        losses.append(np.mean(epoch))
    hist = net.fit(X, Y, optimizer=ef.optim.Nadam(lr=0.01), epochs=2, batch_size=12,
                   shuffle=False, l1=l1, l2=l2)
    np.testing.assert_allclose(hist.loss, losses, rtol=1e-12)
    for p, q in zip(net.parameters(), tparams, strict=True):
        np.testing.assert_allclose(p, q.detach().numpy(), rtol=1e-11, atol=1e-12)


def test_seed_penalties_change_training_as_keras_would():
    # the seed's L2 settings on a 5-layer plain net: one SGD step equals the step on the
    # mse plus exactly the penalty gradients 2 bias_l2 b and 2 l2_act a da/dp / n
    layers = [ef.Dense(7, 3, seed=0), ef.Activation("elu")]
    for k in range(4):
        layers += [ef.Dense(3, 3, seed=k + 1, bias_l2=1e-4), ef.Activation("elu"),
                   ef.ActivityPenalty(l2=1e-5)]
    net = ef.Sequential(layers)
    X, Y = projectile_batch(40)
    before = [p.copy() for p in net.parameters()]
    fd = fd_gradient(lambda: keras_loss(net, X, Y), net.parameters(), eps=1e-6)
    net.fit(X, Y, optimizer=ef.optim.SGD(1e-4), epochs=1, batch_size=40, shuffle=False)
    grads = [(p0 - p1) / 1e-4 for p0, p1 in zip(before, net.parameters(), strict=True)]
    assert rel_err(grads, fd) < 1e-6


@pytest.mark.parametrize("form", FORMS)
def test_activity_penalty_is_the_identity_outside_fit(form):
    net = penalised_net(form)
    X, Y = projectile_batch(9)

    def strip(module):
        if isinstance(module, ef.ResidualFlow):
            return ef.ResidualFlow(strip(module.field), module.depth, module.t_end)
        if isinstance(module, ef.Residual):
            return ef.Residual(strip(module.block), mode=module.mode, h=module.h)
        if isinstance(module, ef.Sequential):
            return ef.Sequential([strip(m) for m in module.layers
                                  if not isinstance(m, ef.ActivityPenalty)])
        return module  # Dense layers are shared with ``net``

    bare = strip(net)
    for _ in range(2):  # before and after a penalised fit
        gy = np.random.default_rng(1).standard_normal((9, 3))
        np.testing.assert_array_equal(net(X), bare(X))
        gx = net.backward(gy)
        g = [a.copy() for a in net.gradients()]
        bare(X)
        gx_bare = bare.backward(gy)
        np.testing.assert_allclose(gx, gx_bare, rtol=1e-14, atol=1e-15)
        for a, b in zip(g, bare.gradients(), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-15)
        net.fit(X, Y, optimizer=ef.optim.SGD(0.01), epochs=1, batch_size=9)
    # a layer of its own: identity on any width, forward and backward
    pen = ef.Sequential([ef.ActivityPenalty(l1=1.0, l2=1.0)])
    x = np.random.default_rng(2).standard_normal((4, 5))
    np.testing.assert_array_equal(pen(x), x)
    np.testing.assert_array_equal(pen.backward(x), x)


def test_penalties_have_their_keras_defaults_and_reprs():
    d = ef.Dense(3, 2)
    assert (d.bias_l1, d.bias_l2) == (0.0, 0.0)
    p = ef.ActivityPenalty()
    assert (p.l1, p.l2) == (0.0, 0.0)
    assert "bias_l2=0.0001" in repr(ef.Dense(3, 2, bias_l2=1e-4))
    assert repr(ef.ActivityPenalty(l1=1e-8)) == "ActivityPenalty(l1=1e-08, l2=0.0)"


# --------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth, exc", [(0, ValueError), (-3, ValueError), (2.0, TypeError),
                                        (True, TypeError), ("4", TypeError),
                                        (None, TypeError)])
def test_bad_depth_is_refused(depth, exc):
    with pytest.raises(exc, match="depth"):
        ef.ResidualFlow(make_field("tanh"), depth)


@pytest.mark.parametrize("t_end, exc", [(0.0, ValueError), (-1.0, ValueError),
                                        (np.nan, ValueError), (np.inf, ValueError),
                                        ("1", TypeError), (None, TypeError)])
def test_bad_t_end_is_refused(t_end, exc):
    with pytest.raises(exc, match="t_end"):
        ef.ResidualFlow(make_field("tanh"), 4, t_end=t_end)


def test_field_must_map_a_width_to_itself():
    with pytest.raises(ValueError, match="equal input and output widths"):
        ef.ResidualFlow(ef.Dense(3, 4), 5)
    with pytest.raises(ValueError, match="3 -> 2"):
        ef.ResidualFlow(ef.mlp([3, 8, 2]), 5)
    with pytest.raises(TypeError, match="field"):
        ef.ResidualFlow(lambda x: x, 5)
    with pytest.raises(TypeError, match="field"):
        ef.ResidualFlow(ef.fields.Lorenz(), 5)
    # a flow fed the wrong width says so
    with pytest.raises(ValueError, match="features"):
        ef.ResidualFlow(make_field("tanh"), 3)(np.ones((2, 4)))


@pytest.mark.parametrize("kwargs", [{"bias_l1": -1e-7}, {"bias_l2": -1e-4},
                                    {"bias_l2": np.nan}, {"bias_l1": np.inf}])
def test_bad_bias_penalties_are_refused(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        ef.Dense(3, 3, **kwargs)


def test_bias_penalty_without_a_bias_is_refused():
    with pytest.raises(ValueError, match="bias"):
        ef.Dense(3, 3, bias=False, bias_l2=1e-4)
    with pytest.raises(TypeError, match="bias_l1"):
        ef.Dense(3, 3, bias_l1="1e-7")


@pytest.mark.parametrize("kwargs, exc", [({"l1": -1e-8}, ValueError), ({"l2": -1e-5}, ValueError),
                                         ({"l2": np.nan}, ValueError), ({"l1": "0"}, TypeError),
                                         ({"l2": None}, TypeError)])
def test_bad_activity_penalties_are_refused(kwargs, exc):
    with pytest.raises(exc, match=next(iter(kwargs))):
        ef.ActivityPenalty(**kwargs)


@pytest.mark.parametrize("kwargs", [{"l1": -0.1}, {"l2": -0.1}, {"l2": np.inf}])
def test_bad_kernel_penalties_in_fit_are_refused(kwargs):
    net = ef.ResidualFlow(make_field("tanh"), 3)
    X = np.zeros((4, 3))
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        net.fit(X, X, optimizer=ef.optim.SGD(0.1), **kwargs)


# --------------------------------------------------------------------------------------
# The demo (quick mode): figures, summary and the first-order slope
# --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_demo_depth_quick_writes_figures_and_measures_first_order(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from eulerflow import cli, demos

    assert demos.DEMOS["depth"] is demos.run_depth
    assert cli.main(["demo", "depth", "--out", str(tmp_path), "--quick", "--no-progress"]) == 0
    names = {p.name for p in tmp_path.glob("*.png")}
    assert names == {"depth_seed_losses.png", "depth_seed_hidden_states.png",
                     "depth_as_time.png", "depth_extrapolation.png"}
    summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert "| 40 | average | L2 |" in summary and "Depth as time" in summary
    printed = capsys.readouterr().out
    slope = float(printed.split("slope_path_to_flow_vs_depth=")[1].split(",")[0])
    assert -1.02 < slope < -0.98


def test_seed_depth_net_is_the_seeds_architecture():
    from eulerflow import demos

    for L, form, pen in [(1, "plain", "none"), (5, "average", "L2"), (40, "add", "L1")]:
        net = demos.seed_depth_net(L, form, pen)
        assert net.in_features == 7 and net.out_features == 3
        assert net.n_parameters() == 24 + 12 * (L - 1)
        dense = dense_layers(net)
        assert len(dense) == L
        assert all(np.all(d.b == 0) for d in dense)  # Keras: zero biases
        expected = demos.SEED_PENALTIES[pen]
        assert all((d.bias_l1, d.bias_l2) == expected[:2] for d in dense[1:])
        assert (dense[0].bias_l1, dense[0].bias_l2) == (0.0, 0.0)  # the seed's first layer
        path = demos.layer_path(net, np.array([0, 0, 0, 5, 0, 0.1, 0.5]))
        assert path.shape == (L + 1, 3)
        np.testing.assert_array_equal(path[-1], net(np.array([0, 0, 0, 5, 0, 0.1, 0.5])))
    with pytest.raises(ValueError, match="form"):
        demos.seed_depth_net(5, "step")
    with pytest.raises(ValueError, match="penalty"):
        demos.seed_depth_net(5, "plain", "L3")
