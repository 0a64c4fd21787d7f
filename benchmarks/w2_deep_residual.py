"""W2 deep-residual (seed 000): a 22-layer width-3 residual net learns the projectile.

Data: X (100,000 x 7), columns (x0, y0, z0, vx0, vy0, vz0, t) = (0, 0, 0, 5, 0, 0.1, t) with
t ~ U[0, 1); Y is the analytic position at t, scaled as the seed scales it.

Reading of seed 000 (its "finalstate" cell, which is what the seed trains on):
    x(t) = x0 + vx0 t - 4.9 t^2        (d2x/dt2 = -9.8, gravity)
    y(t) = y0 + vy0 t + 0.05 t^2       (d2y/dt2 = 0.1, wind)
    z(t) = z0 + vz0 t                  (dz/dt = 0.1 = vz0, constant drift: NO t^2 term)
    Y = (x / 10, 10 y, 10 z)
so with the fixed initial state Y = ((5t - 4.9t^2)/10, 0.5 t^2, t).

Net (the seed's "Regularization By Identities" model, Keras Average = (h + x)/2):
    Dense(7,3)+elu, 20 x Residual(Sequential([Dense(3,3), elu]), mode="average"),
    Dense(3,3)+elu; MSE (mean over all elements); Nadam lr=0.002; batch 200; shuffled.
All implementations start from the same weights (torch.nn.Linear's U(-1/sqrt(in), 1/sqrt(in))
drawn once with np.random.default_rng(0)). Quality: the mean of the 5th epoch's batch losses
(each taken before its step, as Keras and eulerflow's History report it) and the MSE on the
whole data set at the final weights, computed by the same NumPy code for every implementation.
The shuffles differ (eulerflow's seeded permutation, torch.randperm, NumPy's permutation for
JAX), so losses agree only statistically. jax_jit runs all the epochs in one jitted call
(lax.scan over the batches of every epoch, torch.optim.NAdam's update written out, float64,
XLA on one thread, compile time reported apart in its notes).

    python benchmarks/w2_deep_residual.py [--epochs 5] [--repeats 3] [--impl eulerflow torch]
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(_var, None)
# JAX on one thread, float64 (set before it is imported)
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false "
                                   "intra_op_parallelism_threads=1")
os.environ.setdefault("JAX_ENABLE_X64", "1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import harness  # noqa: E402
import numpy as np  # noqa: E402

WORKLOAD = "w2_deep_residual"
UNITS = "epoch"
N = 100_000
BATCH = 200
DEPTH = 20
LR = 0.002
LOSS_REL_TOL = 0.10


def make_data(n=N, seed=0):
    """The seed's data set (see the module docstring), t from default_rng(seed)."""
    rng = np.random.default_rng(seed)
    X = np.zeros((n, 7))
    X[:, 3] = 5.0
    X[:, 5] = 0.1
    X[:, 6] = rng.random(n)
    t = X[:, 6]
    Y = np.stack([X[:, 0] + X[:, 3] * t - 4.9 * t**2,
                  X[:, 1] + X[:, 4] * t + 0.05 * t**2,
                  X[:, 2] + X[:, 5] * t], axis=1)
    Y[:, 0] /= 10
    Y[:, 1] *= 10
    Y[:, 2] *= 10
    return X, Y


def layer_sizes():
    return [(7, 3)] + [(3, 3)] * DEPTH + [(3, 3)]


def initial_weights(seed=0):
    """[W0, b0, W1, b1, ...] in layer order, W (out, in), torch.nn.Linear's default law."""
    rng = np.random.default_rng(seed)
    params = []
    for n_in, n_out in layer_sizes():
        bound = 1.0 / np.sqrt(n_in)
        params.append(rng.uniform(-bound, bound, (n_out, n_in)))
        params.append(rng.uniform(-bound, bound, n_out))
    return params


def flops_per_epoch(n=N):
    """Matrix-product flops (2 per multiply-add): forward, weight and input gradients."""
    w = sum(a * b for a, b in layer_sizes())
    return 2.0 * n * 3 * w


def elu(u):
    return np.where(u > 0, u, np.expm1(np.minimum(u, 0.0)))


def forward(params, X):
    """The common yardstick: the W2 net in NumPy."""
    W, b = params[0::2], params[1::2]
    h = elu(X @ W[0].T + b[0])
    for i in range(1, DEPTH + 1):
        h = (elu(h @ W[i].T + b[i]) + h) / 2
    return elu(h @ W[-1].T + b[-1])


def full_mse(params, X, Y):
    return float(np.mean((forward(params, X) - Y) ** 2))


# ---- implementations: run(epochs) -> (final params, per-epoch mean batch losses, epoch times)

def eulerflow_impl(ef, X, Y, init, threads):
    def build():
        layers = [ef.Dense(7, 3), ef.Activation("elu")]
        for _ in range(DEPTH):
            layers.append(ef.Residual(ef.Sequential([ef.Dense(3, 3), ef.Activation("elu")]),
                                      mode="average"))
        layers += [ef.Dense(3, 3), ef.Activation("elu")]
        return ef.Sequential(layers)

    net = build()

    def run(epochs, seed=0):
        ef.set_num_threads(threads)
        params = net.parameters()
        assert len(params) == len(init), (len(params), len(init))
        for p, v in zip(params, init, strict=True):
            p[...] = v
        stamps = [time.perf_counter()]

        def stamp(epoch, loss):
            stamps.append(time.perf_counter())

        hist = net.fit(X, Y, loss="mse", optimizer=ef.optim.Nadam(lr=LR), epochs=epochs,
                       batch_size=BATCH, shuffle=True, seed=seed, callbacks=(stamp,))
        return ([np.array(p, copy=True) for p in net.parameters()],
                [float(v) for v in hist.loss], list(np.diff(stamps)))

    return run, f"ef.set_num_threads({threads}); fit(..., shuffle=True, seed=0)"


def torch_impl(torch, X, Y, init, threads):
    nn = torch.nn
    F = nn.functional

    class ResidualNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = nn.Linear(7, 3, dtype=torch.float64)
            self.blocks = nn.ModuleList(nn.Linear(3, 3, dtype=torch.float64)
                                        for _ in range(DEPTH))
            self.out = nn.Linear(3, 3, dtype=torch.float64)

        def forward(self, x):
            x = F.elu(self.inp(x))
            for block in self.blocks:
                x = (F.elu(block(x)) + x) / 2
            return F.elu(self.out(x))

    Xt = torch.from_numpy(X)
    Yt = torch.from_numpy(Y)
    gen = torch.Generator().manual_seed(0)

    def run(epochs):
        torch.set_num_threads(threads)
        net = ResidualNet()
        params = list(net.parameters())
        assert len(params) == len(init)
        with torch.no_grad():
            for p, v in zip(params, init, strict=True):
                p.copy_(torch.from_numpy(v))
        opt = torch.optim.NAdam(net.parameters(), lr=LR)
        gen.manual_seed(0)
        epoch_losses, times = [], []
        for _ in range(epochs):
            start = time.perf_counter()
            perm = torch.randperm(N, generator=gen)
            batch_losses = []
            for i in range(0, N, BATCH):
                idx = perm[i:i + BATCH]
                opt.zero_grad(set_to_none=True)
                loss = F.mse_loss(net(Xt[idx]), Yt[idx])
                loss.backward()
                opt.step()
                batch_losses.append(loss.detach())
            epoch_losses.append(float(torch.stack(batch_losses).mean()))
            times.append(time.perf_counter() - start)
        return [p.detach().numpy().copy() for p in params], epoch_losses, times

    return run, (f"torch {torch.__version__}, set_num_threads({threads}), nn.Module + "
                 "torch.optim.NAdam(lr=0.002), hand batching with torch.randperm")


def jax_impl(jax, X, Y, init):
    """All epochs in one jitted call: lax.scan over every batch of every epoch (the
    permutations drawn with NumPy beforehand and passed in), NAdam as torch.optim.NAdam
    computes it (momentum_decay 4e-3, eps 1e-8, betas 0.9/0.999)."""
    jnp, lax = jax.numpy, jax.lax
    jax.config.update("jax_enable_x64", True)
    b1, b2, eps, psi = 0.9, 0.999, 1e-8, 4e-3
    Xj, Yj = jnp.asarray(X), jnp.asarray(Y)

    def net(params, x):
        W, b = params[0::2], params[1::2]
        h = jax.nn.elu(x @ W[0].T + b[0])
        for i in range(1, DEPTH + 1):
            h = (jax.nn.elu(h @ W[i].T + b[i]) + h) / 2
        return jax.nn.elu(h @ W[-1].T + b[-1])

    vg = jax.value_and_grad(lambda p, x, y: jnp.mean((net(p, x) - y) ** 2))

    def step(carry, idx):
        params, m, v, t, mu_prod = carry
        loss, g = vg(params, Xj[idx], Yj[idx])
        t = t + 1.0
        mu = b1 * (1.0 - 0.5 * 0.96 ** (t * psi))
        mu_next = b1 * (1.0 - 0.5 * 0.96 ** ((t + 1.0) * psi))
        mu_prod = mu_prod * mu
        bc2 = 1.0 - b2 ** t
        m = [mi + (1.0 - b1) * (gi - mi) for mi, gi in zip(m, g, strict=True)]
        v = [b2 * vi + (1.0 - b2) * gi * gi for vi, gi in zip(v, g, strict=True)]
        new = []
        for p, gi, mi, vi in zip(params, g, m, v, strict=True):
            denom = jnp.sqrt(vi / bc2) + eps
            p = p - LR * (1.0 - mu) / (1.0 - mu_prod) * gi / denom
            new.append(p - LR * mu_next / (1.0 - mu_prod * mu_next) * mi / denom)
        return (new, m, v, t, mu_prod), loss

    @jax.jit
    def train(params, batches):  # batches: (epochs * N / BATCH, BATCH) row indices
        zeros = [jnp.zeros_like(p) for p in params]
        carry = (list(params), zeros, zeros, jnp.zeros(()), jnp.ones(()))
        (params, *_), losses = lax.scan(step, carry, batches)
        return params, losses

    p0 = [jnp.asarray(a) for a in init]
    rng = np.random.default_rng(0)

    def batches(epochs):
        return jnp.asarray(np.concatenate([rng.permutation(N) for _ in range(epochs)])
                           .reshape(-1, BATCH))

    def run(epochs):
        idx = batches(epochs)
        start = time.perf_counter()
        params, losses = jax.block_until_ready(train(p0, idx))
        per_epoch = np.asarray(losses).reshape(epochs, -1).mean(axis=1)
        seconds = (time.perf_counter() - start) / epochs
        return ([np.asarray(p) for p in params], [float(x) for x in per_epoch],
                [seconds] * epochs)

    compiled = {}

    def warmup_and_run(epochs):
        if epochs not in compiled:  # each epoch count is its own shape: compile untimed
            start = time.perf_counter()
            jax.block_until_ready(train(p0, batches(epochs)))
            compiled[epochs] = time.perf_counter() - start
        return run(epochs)

    return warmup_and_run, compiled, (f"jax {jax.__version__} jit: every epoch in one "
                                      "lax.scan, NAdam written out, float64, one thread")


# ---- driver -------------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--budget", type=float, default=40.0,
                    help="seconds of timed repeats per implementation (at least one repeat)")
    ap.add_argument("--spread-seeds", type=int, default=10,
                    help="eulerflow reruns with shuffle seeds 0..K-1 (untimed) to show how "
                         "much the loss moves with the shuffle alone; 0 to skip")
    ap.add_argument("--impl", nargs="*", default=None, help="only these (prefixes)")
    # unknown options are ignored: run.py forwards one argument list to every workload
    args, unknown = ap.parse_known_args(argv)
    if unknown:
        print(f"{WORKLOAD}: ignoring {unknown}", file=sys.stderr)
    epochs = args.epochs

    X, Y = make_data()
    init = initial_weights()
    flops = flops_per_epoch()
    data_note = "data: default_rng(0) t ~ U[0,1), n=100000; init: default_rng(0) U(+-1/sqrt(in))"
    records = []

    def timed(impl, run, note, spread_seeds=0):
        def quality(result):
            params, losses, times = result
            figures = {
                "loss_epoch_last": losses[-1],
                "mse_full_final": full_mse(params, X, Y),
                "loss_per_epoch": losses,
                "epoch_seconds_last_run": [float(t) for t in times],
            }
            if spread_seeds:
                # how much the loss after `epochs` moves with the shuffle alone (same init,
                # same optimizer): the yardstick for comparing with a peer's shuffle
                last = sorted(run(epochs, seed)[1][-1] for seed in range(spread_seeds))
                figures["loss_epoch_last_shuffle_seeds"] = spread_seeds
                figures["loss_epoch_last_seed_min"] = last[0]
                figures["loss_epoch_last_seed_median"] = float(np.median(last))
                figures["loss_epoch_last_seed_max"] = last[-1]
            return figures

        rec = harness.measure(WORKLOAD, impl, lambda: run(epochs), quality=quality,
                              units=UNITS, n_units=epochs,
                              repeats=args.repeats, warmup=lambda: run(1),
                              budget_s=args.budget, notes="; ".join([note, data_note]),
                              flops_per_unit=flops)
        records.append(rec)

    if harness.any_selected(("eulerflow", "eulerflow_2threads"), args.impl):
        ef, reason = harness.optional_import("eulerflow")
        if ef is None:
            records.append(harness.skip(WORKLOAD, "eulerflow", reason, units=UNITS))
        else:
            for threads, name in ((1, "eulerflow"), (2, "eulerflow_2threads")):
                if harness.selected(name, args.impl):
                    run, note = eulerflow_impl(ef, X, Y, init, threads)
                    timed(name, run, note,
                          spread_seeds=args.spread_seeds if threads == 1 else 0)

    if harness.any_selected(("torch_1thread", "torch_2threads"), args.impl):
        torch, reason = harness.optional_import("torch")
        for threads, name in ((1, "torch_1thread"), (2, "torch_2threads")):
            if not harness.selected(name, args.impl):
                continue
            if torch is None:
                records.append(harness.skip(WORKLOAD, name, reason, units=UNITS))
            else:
                run, note = torch_impl(torch, X, Y, init, threads)
                timed(name, run, note)

    if harness.selected("jax_jit", args.impl):
        jax, reason = harness.optional_import("jax")
        if jax is None:
            records.append(harness.skip(WORKLOAD, "jax_jit", reason, units=UNITS))
        else:
            run, compiled, note = jax_impl(jax, X, Y, init)
            run(epochs)  # compiles for the timed shape before the clock runs
            timed("jax_jit", run, f"{note}; compile {compiled[epochs]:.2f} s (not timed)")

    harness.print_ratios(records)
    ref = next((r for r in records if r["impl"] == "eulerflow" and r["seconds"]), None)
    if ref is not None:
        for r in records:
            if r is ref or not r["seconds"]:
                continue
            a, b = ref["quality"]["loss_epoch_last"], r["quality"]["loss_epoch_last"]
            rel = abs(a - b) / abs(b)
            verdict = "OK" if rel <= LOSS_REL_TOL else "MISMATCH"
            print(f"loss after {epochs} epochs: eulerflow {a:.6g} vs {r['impl']} {b:.6g}: "
                  f"rel diff {rel:.1%} {verdict} (tol {LOSS_REL_TOL:.0%})", file=sys.stderr)
        q = ref["quality"]
        if "loss_epoch_last_seed_min" in q:
            print(f"eulerflow loss after {epochs} epochs over shuffle seeds "
                  f"0..{q['loss_epoch_last_shuffle_seeds'] - 1}: min "
                  f"{q['loss_epoch_last_seed_min']:.6g}, median "
                  f"{q['loss_epoch_last_seed_median']:.6g}, max "
                  f"{q['loss_epoch_last_seed_max']:.6g}", file=sys.stderr)
    return records


if __name__ == "__main__":
    main()
