"""W1 node-spiral and W1b node-spiral-mlp (seed 002): a Neural ODE trained on the spiral.

Data: seed 002's spiral, A = [[-0.1, -1], [1, -0.1]], a0 = (0.6, 0.3), 100 points on
t = linspace(0, 10, 100) (ef.data.spiral_ode()). Windows of one interval (99 windows),
Euler with 5 equal steps per interval, MSE over the 2 components, SGD lr = 1e-2 with
momentum 0.95, one window per step, windows shuffled each epoch, 500 epochs. Unit: one
epoch (99 windows: forward, backward through the 5 Euler steps, update).

  W1  (workload w1_node_spiral):      field LinearODE, W z with W 2x2, no bias;
                                      W0 ~ U[0,1) (np.random.RandomState(1).rand(2, 2)).
  W1b (workload w1b_node_spiral_mlp): field NonLinearODE, Linear(2,4)-ReLU-Linear(4,2);
                                      weights of ef.mlp([2, 4, 2], "relu", seed=0).
Every implementation starts from the same weights.

Implementations: eulerflow (ef.NeuralODE(field, "euler", steps_per_interval=5).fit: the
whole run in one call); torch_seed_1thread, seed 002's own loop (ode_solve / unfold_ode /
Experience.training, in float64, torch.set_num_threads(1)); torchdiffeq_euler_1thread, the
same loop with odeint(method="euler", options=dict(step_size=(t[i+1]-t[i])/5)) in place of
unfold_ode; jax_jit, one jitted lax.scan per epoch (the shuffled window order passed in,
float64, XLA on one thread, compile time reported apart); jax_jit_run, the same but the
whole run (500 epochs, all orders passed in) in one jitted call; diffrax_euler, diffrax's
Euler solver (diffeqsolve per window, dt0 = (t[i+1]-t[i])/5) inside the same jitted epoch.
The slow peers (torch, torchdiffeq, diffrax) are timed on fewer epochs (--slow-epochs) and
reported per epoch; their notes say so.

Quality. In the timed runs each implementation shuffles with its own generator, so their
trajectories through parameter space differ (a batch of one with momentum 0.95 never
settles on one point: the last epochs still move W by ~1e-4). The comparison therefore
runs every implementation again, untimed, on the SAME window orders: eulerflow's own
(its xoshiro256** / Fisher-Yates shuffle is replicated here bit for bit, checked by the
agreement), for the full 500 epochs: ``loss`` (mean window loss of the last epoch) and
``param_maxdiff_vs_eulerflow`` (max |theta - theta_eulerflow| over all parameters) must
agree to 1e-6. An order-independent check runs too: --fullbatch-epochs epochs with one
batch of all 99 windows (``fullbatch_loss``, ``fullbatch_param_maxdiff_vs_eulerflow``).
The timed run's own-order result is reported as ``own_order_loss`` (when it ran all the
epochs), and for W1 ``w_maxdiff_vs_A``: the learned matrix against the truth A (Euler at 5
steps biases it: the seed's -0.1199 on the diagonal).

    python benchmarks/w1_node_spiral.py [--epochs 500] [--slow-epochs 50] [--repeats 5]
                                        [--workloads w1 w1b] [--impl eulerflow torch ...]
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(_var, None)
# JAX and numba on one thread, float64 (set before they are imported)
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false "
                                   "intra_op_parallelism_threads=1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("JAX_ENABLE_X64", "1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import harness  # noqa: E402
import numpy as np  # noqa: E402

WORKLOADS = {"w1": "w1_node_spiral", "w1b": "w1b_node_spiral_mlp"}
UNITS = "epoch"
EPOCHS = 500
NSTEPS = 5          # Euler steps per interval
LR, MOMENTUM = 1e-2, 0.95
SEED = 0            # eulerflow's shuffle seed
A_TRUE = np.array([[-0.1, -1.0], [1.0, -0.1]])
AGREE = 1e-6
MASK64 = (1 << 64) - 1


# ---- eulerflow's window orders, replicated (cpp/include/eulerflow/rng.hpp) -------------------

class XoshiroOrders:
    """xoshiro256** seeded by splitmix64, Lemire's bounded integers, Fisher-Yates on one
    index array shuffled again every epoch: the order NeuralOde::fit visits the windows."""

    def __init__(self, seed: int):
        z = seed & MASK64
        self.s = []
        for _ in range(4):
            z = (z + 0x9E3779B97F4A7C15) & MASK64
            r = z
            r = ((r ^ (r >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
            r = ((r ^ (r >> 27)) * 0x94D049BB133111EB) & MASK64
            self.s.append(r ^ (r >> 31))

    @staticmethod
    def _rotl(x, k):
        return ((x << k) | (x >> (64 - k))) & MASK64

    def next(self) -> int:
        s = self.s
        result = (self._rotl((s[1] * 5) & MASK64, 7) * 9) & MASK64
        t = (s[1] << 17) & MASK64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = self._rotl(s[3], 45)
        return result

    def below(self, bound: int) -> int:
        m = self.next() * bound
        low = m & MASK64
        if low < bound:
            threshold = ((1 << 64) - bound) % bound
            while low < threshold:
                m = self.next() * bound
                low = m & MASK64
        return m >> 64

    def orders(self, n: int, epochs: int) -> np.ndarray:
        idx = list(range(n))
        out = np.empty((epochs, n), dtype=np.int64)
        for e in range(epochs):
            for i in range(n, 1, -1):
                j = self.below(i)
                idx[i - 1], idx[j] = idx[j], idx[i - 1]
            out[e] = idx
        return out


# ---- the problem --------------------------------------------------------------------------

def make_problem(ef, kind: str):
    """(t, data, params0, note): params0 a list of float64 arrays in torch's layout
    (weights (out, in), biases (out,)), the order of ef's parameters() and torch's."""
    if ef is not None:
        t, data = ef.data.spiral_ode()
        data_note = "data: ef.data.spiral_ode()"
    else:  # the seed's own generator
        from scipy.linalg import expm
        t = np.linspace(0.0, 10.0, 100)
        data = np.array([expm(ti * A_TRUE) @ np.array([0.6, 0.3]) for ti in t])
        data_note = "data: expm(t A) a0 (eulerflow not importable)"
    t = np.ascontiguousarray(t, dtype=np.float64)
    data = np.ascontiguousarray(data, dtype=np.float64)
    if kind == "w1":
        params0 = [np.random.RandomState(1).rand(2, 2)]
        note = "LinearODE 2x2 no bias, W0 = np.random.RandomState(1).rand(2, 2)"
    else:
        if ef is None:
            raise RuntimeError("W1b takes its initial weights from ef.mlp([2, 4, 2], seed=0)")
        params0 = [np.array(p, dtype=np.float64, copy=True)
                   for p in ef.mlp([2, 4, 2], "relu", seed=0).parameters()]
        note = "NonLinearODE Linear(2,4)-ReLU-Linear(4,2), weights of ef.mlp([2,4,2], seed=0)"
    return t, data, params0, f"{note}; {data_note}"


def flops_per_epoch(params0, n_windows: int, batch: int = 1) -> float:
    """Arithmetic of one epoch: per window and Euler step the field's forward (F flops:
    2 per multiply-add, + bias adds) and the axpy (2d), the backward's input and weight
    gradients (2F) and its axpy (2d); the MSE (3d) per window; per step of SGD with
    momentum 4 flops per parameter."""
    d = 2
    F = sum(2.0 * p.size if p.ndim == 2 else float(p.size) for p in params0)
    P = sum(p.size for p in params0)
    per_window = NSTEPS * (3.0 * F + 4.0 * d) + 3.0 * d
    return n_windows * per_window + (n_windows / batch) * 4.0 * P


# ---- implementations: train(epochs, orders=None, batch_size=1) -> (params, losses) ----------
# orders: (epochs, n_windows) window order per epoch; None = the implementation's own shuffle.

def batches_of(order, batch_size):
    return [order[k:k + batch_size] for k in range(0, len(order), batch_size)]


def eulerflow_impl(ef, kind, t, data, params0):
    field = ef.Dense(2, 2, bias=False) if kind == "w1" else ef.mlp([2, 4, 2], "relu", seed=0)
    node = ef.NeuralODE(field, method="euler", steps_per_interval=NSTEPS)

    def train(epochs, orders=None, batch_size=1):
        if orders is not None:
            raise ValueError("eulerflow shuffles with its own seeded generator (seed=0)")
        ef.set_num_threads(1)
        for p, p0 in zip(field.parameters(), params0, strict=True):
            p[...] = p0
        hist = node.fit(data, t, epochs=epochs, optimizer=ef.optim.SGD(LR, momentum=MOMENTUM),
                        window=1, batch_size=batch_size, seed=SEED)
        return [np.array(p, copy=True) for p in field.parameters()], np.asarray(hist.loss)

    name = "Dense(2, 2, bias=False)" if kind == "w1" else "mlp([2, 4, 2], 'relu')"
    return train, (f"ef.NeuralODE({name}, method='euler', steps_per_interval=5).fit(data, t, "
                   "epochs, SGD(1e-2, momentum=0.95), window=1, batch_size=1, seed=0): the "
                   "whole run in one call; ef.set_num_threads(1)")


def torch_impl(torch, kind, t, data, params0, use_torchdiffeq=None):
    """Seed 002's classes and training loop, float64. With ``use_torchdiffeq`` (the module),
    odeint(method='euler') replaces the seed's unfold_ode in the same loop."""
    th, nn, F = torch, torch.nn, torch.nn.functional

    def ode_solve(x0, t0, t1, f, n_steps=1):
        eps = (t1 - t0) / n_steps
        tt = t0
        h = x0
        for _ in range(n_steps):
            h = h + eps * f(h)
            tt = tt + eps
        return h

    class ODEFunction(nn.Module):
        def unfold_ode(self, z0, times, nsteps=1):
            bs, *z_shape = z0.size()
            time_len = times.size(0)
            zs = th.zeros(time_len, bs, *z_shape).to(z0)
            zs[0] = z0
            for i_t in range(time_len - 1):
                z0 = ode_solve(z0, times[i_t], times[i_t + 1], self.network, nsteps)
                zs[i_t + 1] = z0
            return zs

        def forward(self, tt, z):  # torchdiffeq's f(t, y)
            return self.network(z)

    def make_model():
        model = ODEFunction()
        if kind == "w1":
            model.network = nn.Linear(2, 2, bias=False)
        else:
            model.network = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 2))
        model.double()
        with th.no_grad():
            for p, p0 in zip(model.parameters(), params0, strict=True):
                p.copy_(th.from_numpy(p0))
        return model

    data_t = th.from_numpy(data.copy())
    time_t = th.from_numpy(t.copy())
    h_window = [float((t[i + 1] - t[i]) / NSTEPS) for i in range(len(t) - 1)]
    nw = len(t) - 1
    odeint = use_torchdiffeq.odeint if use_torchdiffeq is not None else None

    def window_out(model, i):
        x = data_t[i]
        if odeint is None:
            return model.unfold_ode(x, time_t[i:i + 2], NSTEPS)[-1]
        return odeint(model, x, time_t[i:i + 2], method="euler",
                      options=dict(step_size=h_window[i]))[-1]

    def train(epochs, orders=None, batch_size=1):
        th.set_num_threads(1)
        model = make_model()
        optimizer = th.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
        with th.no_grad():  # as the seed's Experience.training does first
            model.unfold_ode(data_t[0], time_t)
        indices = np.arange(nw)
        rs = np.random.RandomState(1)
        losses = np.zeros(epochs)
        for e in range(epochs):
            if orders is None:
                rs.shuffle(indices)
                order = indices
            else:
                order = orders[e]
            ave_loss = th.zeros(1, dtype=th.float64)
            if batch_size == 1:  # the seed's loop
                for i in order:
                    out = window_out(model, i)
                    loss = F.mse_loss(out, data_t[i + 1].detach())
                    ave_loss += loss
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
            else:  # each step averages a batch of windows
                for chunk in batches_of(order, batch_size):
                    wl = [F.mse_loss(window_out(model, i), data_t[i + 1]) for i in chunk]
                    loss = th.stack(wl).sum()
                    ave_loss += loss.detach()
                    optimizer.zero_grad()
                    (loss / len(chunk)).backward()
                    optimizer.step()
            losses[e] = ave_loss.item() / nw
        return [p.detach().numpy().copy() for p in model.parameters()], losses

    if odeint is None:
        note = (f"torch {torch.__version__}, seed 002's ode_solve/unfold_ode/Experience.training "
                "loop in float64 (the seed's th.Tensor is float32; ave_loss float64 too), "
                "set_num_threads(1), np shuffle")
    else:
        note = (f"torch {torch.__version__}, torchdiffeq {use_torchdiffeq.__version__} "
                "odeint(f, x, t[i:i+2], method='euler', options=dict(step_size=(t[i+1]-t[i])/5))"
                " in the seed's loop (a global step_size=dt/5 makes torchdiffeq take a 6th, "
                "~1e-16 step in about half the windows), set_num_threads(1)")
    return train, note


def jax_impl(jax, kind, t, data, params0, diffrax=None):
    """Returns (train_epochwise, train_wholerun, compile_seconds of the epoch function, note)."""
    jnp, lax = jax.numpy, jax.lax
    nw = len(t) - 1
    data_j = jnp.asarray(data)
    t_j = jnp.asarray(t)

    def field(params, z):
        if len(params) == 1:
            return params[0] @ z
        W1, b1, W2, b2 = params
        return W2 @ jax.nn.relu(W1 @ z + b1) + b2

    if diffrax is None:
        def end_state(params, z0, i):
            h = (t_j[i + 1] - t_j[i]) / NSTEPS
            z = z0
            for _ in range(NSTEPS):
                z = z + h * field(params, z)
            return z
    else:
        term = diffrax.ODETerm(lambda tt, y, args: field(args, y))
        solver = diffrax.Euler()

        def end_state(params, z0, i):
            t0, t1 = t_j[i], t_j[i + 1]
            sol = diffrax.diffeqsolve(term, solver, t0=t0, t1=t1, dt0=(t1 - t0) / NSTEPS, y0=z0,
                                      args=params, saveat=diffrax.SaveAt(t1=True),
                                      stepsize_controller=diffrax.ConstantStepSize(),
                                      max_steps=NSTEPS + 3)
            return sol.ys[-1]

    def window_loss(params, i):
        z = end_state(params, data_j[i], i)
        return jnp.mean((z - data_j[i + 1]) ** 2)

    vg = jax.value_and_grad(window_loss)

    def batch_vg(params, chunk):  # chunk: (m,) window indices
        if chunk.shape[0] == 1:
            return vg(params, chunk[0])
        Ls, gs = jax.vmap(vg, in_axes=(None, 0))(params, chunk)
        return Ls.sum(), jax.tree_util.tree_map(lambda g: g.mean(axis=0), gs)

    def epoch(params, buf, order):  # order: (n_batches, m)
        def body(carry, chunk):
            params, buf = carry
            L, g = batch_vg(params, chunk)
            buf = jax.tree_util.tree_map(lambda b, gi: MOMENTUM * b + gi, buf, g)
            params = jax.tree_util.tree_map(lambda p, b: p - LR * b, params, buf)
            return (params, buf), L

        (params, buf), Ls = lax.scan(body, (params, buf), order)
        return params, buf, Ls.sum() / nw

    epoch_jit = jax.jit(epoch)

    @jax.jit
    def run_jit(params, buf, orders):  # orders: (epochs, n_batches, m)
        def body(carry, order):
            params, buf, loss = epoch(*carry, order)
            return (params, buf), loss

        (params, buf), losses = lax.scan(body, (params, buf), orders)
        return params, buf, losses

    p0 = tuple(jnp.asarray(p) for p in params0)
    b0 = tuple(jnp.zeros_like(p) for p in p0)

    def shaped(order, batch_size):
        order = np.asarray(order)
        if order.shape[-1] % batch_size:
            raise ValueError("batch_size must divide the number of windows here")
        return jnp.asarray(order.reshape(*order.shape[:-1], -1, batch_size))

    def own_orders(epochs):
        rs = np.random.RandomState(1)
        return np.stack([rs.permutation(nw) for _ in range(epochs)]) if epochs else \
            np.empty((0, nw), dtype=np.int64)

    def finish(params, losses):
        return [np.asarray(p).copy() for p in params], np.asarray(losses, dtype=np.float64)

    def train_epochwise(epochs, orders=None, batch_size=1):
        rs = np.random.RandomState(1)
        params, buf = p0, b0
        losses = []
        for e in range(epochs):
            order = rs.permutation(nw) if orders is None else orders[e]
            params, buf, L = epoch_jit(params, buf, shaped(order, batch_size))
            losses.append(L)
        return finish(params, [float(L) for L in losses])

    def train_wholerun(epochs, orders=None, batch_size=1):
        orders = own_orders(epochs) if orders is None else orders[:epochs]
        params, buf, losses = run_jit(p0, b0, shaped(orders, batch_size))
        return finish(jax.block_until_ready(params), losses)

    # compile time of the epoch function (the whole-run function compiles per number of
    # epochs: the caller times its first call)
    start = time.perf_counter()
    jax.block_until_ready(epoch_jit(p0, b0, shaped(np.arange(nw), 1)))
    compile_s = time.perf_counter() - start
    if diffrax is None:
        note = (f"jax {jax.__version__} jit: one lax.scan over the epoch's windows per call "
                "(order from np.random.RandomState(1).permutation passed in), Euler unrolled, "
                "value_and_grad, SGD momentum in the scan; float64, XLA on one thread")
    else:
        note = (f"jax {jax.__version__}, diffrax {diffrax.__version__}: diffeqsolve(Euler(), "
                "dt0=(t1-t0)/5, ConstantStepSize, SaveAt(t1=True), max_steps=8) per window, "
                "value_and_grad (RecursiveCheckpointAdjoint), one jitted lax.scan per epoch; "
                "float64, XLA on one thread")
    return train_epochwise, train_wholerun, compile_s, note


# ---- driver -------------------------------------------------------------------------------

def max_param_diff(a, b) -> float:
    return max(float(np.max(np.abs(np.asarray(u) - np.asarray(v)))) for u, v in
               zip(a, b, strict=True))


def run_workload(kind, args, ef, ef_reason):
    workload = WORKLOADS[kind]
    epochs = args.epochs
    slow_epochs = min(args.slow_epochs, epochs)
    t, data, params0, problem_note = make_problem(ef, kind)
    nw = len(t) - 1
    full = nw  # full batch: every window in one step
    flops = flops_per_epoch(params0, nw)
    same_orders = XoshiroOrders(SEED).orders(nw, epochs)
    ident_orders = np.tile(np.arange(nw), (args.fullbatch_epochs, 1))
    records = []
    ref = {}  # eulerflow's results: "same" (params, losses), "full" (params, losses)

    def quality_runs(impl, train, can_take_orders=True):
        """The untimed comparisons: same orders as eulerflow for all epochs, and full batch."""
        figures = {}
        if can_take_orders:
            params, losses = train(epochs, same_orders)
        else:
            params, losses = train(epochs)
        figures["loss"] = float(losses[-1])
        if kind == "w1":
            figures["W"] = np.asarray(params[0]).tolist()
            figures["w_maxdiff_vs_A"] = float(np.max(np.abs(params[0] - A_TRUE)))
        if impl == "eulerflow":
            ref["same"] = (params, losses)
        elif "same" in ref:
            figures["param_maxdiff_vs_eulerflow"] = max_param_diff(params, ref["same"][0])
            figures["loss_curve_maxdiff_vs_eulerflow"] = float(
                np.max(np.abs(np.asarray(losses) - ref["same"][1])))
        if args.fullbatch_epochs:
            fe = args.fullbatch_epochs
            params, losses = (train(fe, ident_orders, batch_size=full) if can_take_orders
                              else train(fe, batch_size=full))
            figures["fullbatch_loss"] = float(losses[-1])
            if impl == "eulerflow":
                ref["full"] = (params, losses)
            elif "full" in ref:
                figures["fullbatch_param_maxdiff_vs_eulerflow"] = max_param_diff(
                    params, ref["full"][0])
        return figures

    def timed(impl, train, note, *, slow=False, compile_s=None, can_take_orders=True,
              warm_epochs=None):
        n = slow_epochs if slow else epochs
        try:
            figures = quality_runs(impl, train, can_take_orders)
        except Exception as exc:  # noqa: BLE001 - report, keep benchmarking the others
            records.append(harness.failed(workload, impl, exc, units=UNITS, n_units=n))
            return

        def quality(result):
            params, losses = result
            q = dict(figures)
            q["epochs_timed"] = n
            q["own_order_loss_last_timed_epoch"] = float(losses[-1])
            if n == epochs and impl != "eulerflow":
                q["own_order_loss"] = float(losses[-1])
                if "same" in ref:
                    q["own_order_param_maxdiff_vs_eulerflow"] = max_param_diff(
                        params, ref["same"][0])
            if compile_s is not None:
                q["compile_seconds"] = compile_s
            return q

        full_note = f"{note}; {problem_note}"
        if slow:
            full_note += (f"; SLOW PEER: timed on {n} epochs, not {epochs}; per-epoch time "
                          f"(the quality runs are full {epochs}-epoch runs)")
        rec = harness.measure(workload, impl, lambda: train(n), quality=quality, units=UNITS,
                              n_units=n, repeats=args.repeats,
                              warmup=lambda: train(warm_epochs or min(n, 5)),
                              budget_s=args.budget, notes=full_note, flops_per_unit=flops)
        records.append(rec)

    if harness.selected("eulerflow", args.impl):
        if ef is None:
            records.append(harness.skip(workload, "eulerflow", ef_reason, units=UNITS))
        else:
            train, note = eulerflow_impl(ef, kind, t, data, params0)
            # eulerflow's own order IS same_orders (seed 0): check the replica once
            timed("eulerflow", train, note, can_take_orders=False, warm_epochs=epochs)

    torch_names = ("torch_seed_1thread", "torchdiffeq_euler_1thread")
    if harness.any_selected(torch_names, args.impl):
        torch, reason = harness.optional_import("torch")
        if harness.selected("torch_seed_1thread", args.impl):
            if torch is None:
                records.append(harness.skip(workload, "torch_seed_1thread", reason, units=UNITS))
            else:
                train, note = torch_impl(torch, kind, t, data, params0)
                timed("torch_seed_1thread", train, note, slow=True)
        if harness.selected("torchdiffeq_euler_1thread", args.impl):
            tde, reason2 = harness.optional_import("torchdiffeq")
            if torch is None or tde is None:
                records.append(harness.skip(workload, "torchdiffeq_euler_1thread",
                                            reason or reason2, units=UNITS))
            else:
                train, note = torch_impl(torch, kind, t, data, params0, use_torchdiffeq=tde)
                timed("torchdiffeq_euler_1thread", train, note, slow=True)

    jax_names = ("jax_jit", "jax_jit_run", "diffrax_euler")
    if harness.any_selected(jax_names, args.impl):
        jax, reason = harness.optional_import("jax")
        if jax is not None:
            jax.config.update("jax_enable_x64", True)
        if harness.any_selected(("jax_jit", "jax_jit_run"), args.impl):
            if jax is None:
                for name in ("jax_jit", "jax_jit_run"):
                    if harness.selected(name, args.impl):
                        records.append(harness.skip(workload, name, reason, units=UNITS))
            else:
                ep, whole, compile_s, note = jax_impl(jax, kind, t, data, params0)
                if harness.selected("jax_jit", args.impl):
                    timed("jax_jit", ep, note, compile_s=compile_s)
                if harness.selected("jax_jit_run", args.impl):
                    start = time.perf_counter()
                    whole(epochs)  # compiles for (epochs, nw, 1)
                    compile_run = time.perf_counter() - start
                    timed("jax_jit_run", whole,
                          note.replace("one lax.scan over the epoch's windows per call "
                                       "(order from",
                                       "the whole run in one call: lax.scan over epochs of "
                                       "lax.scan over windows (all orders from")
                          + f"; first call (compile + one run) {compile_run:.2f} s",
                          compile_s=compile_run, warm_epochs=epochs)
        if harness.selected("diffrax_euler", args.impl):
            diffrax, reason2 = harness.optional_import("diffrax")
            if jax is None or diffrax is None:
                records.append(harness.skip(workload, "diffrax_euler", reason or reason2,
                                            units=UNITS))
            else:
                ep, _, compile_s, note = jax_impl(jax, kind, t, data, params0,
                                                     diffrax=diffrax)
                timed("diffrax_euler", ep, note, compile_s=compile_s, slow=True)

    print(f"== {workload}", file=sys.stderr)
    harness.print_ratios(records)
    for r in records:
        q = r["quality"]
        if not r["seconds"] or r["impl"] == "eulerflow":
            continue
        for key in ("param_maxdiff_vs_eulerflow", "fullbatch_param_maxdiff_vs_eulerflow"):
            if key in q:
                verdict = "OK" if q[key] <= AGREE else "MISMATCH"
                print(f"{r['impl']}: {key} = {q[key]:.2e} {verdict} (tol {AGREE:g})",
                      file=sys.stderr)
        ref_rec = next((x for x in records if x["impl"] == "eulerflow" and x["seconds"]), None)
        if ref_rec is not None and "loss" in q:
            diff = abs(q["loss"] - ref_rec["quality"]["loss"])
            print(f"{r['impl']}: final loss {q['loss']:.12g} vs eulerflow "
                  f"{ref_rec['quality']['loss']:.12g}, |diff| = {diff:.2e}", file=sys.stderr)
    return records


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--slow-epochs", type=int, default=50,
                    help="epochs timed for the slow peers (torch, torchdiffeq, diffrax)")
    ap.add_argument("--fullbatch-epochs", type=int, default=10,
                    help="epochs of the order-independent full-batch check (0: skip)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--budget", type=float, default=30.0,
                    help="seconds of timed repeats per implementation (at least one repeat)")
    ap.add_argument("--workloads", nargs="*", default=list(WORKLOADS), choices=list(WORKLOADS))
    ap.add_argument("--impl", nargs="*", default=None, help="only these (prefixes)")
    args, unknown = ap.parse_known_args(argv)
    if unknown:
        print(f"w1_node_spiral: ignoring {unknown}", file=sys.stderr)
    ef, ef_reason = harness.optional_import("eulerflow")
    records = []
    for kind in args.workloads:
        records.extend(run_workload(kind, args, ef, ef_reason))
    return records


if __name__ == "__main__":
    main()
