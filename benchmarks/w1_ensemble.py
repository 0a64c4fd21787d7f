"""64 W1 trainings (seed 002's LinearODE on the spiral), one learning rate each.

The W1 workload (benchmarks/w1_node_spiral.py: Euler with 5 steps per interval, windows
of one interval, SGD momentum 0.95, one window per step, 99 windows per epoch) trained
64 times from the same W0, member i with learning rate lrs[i] (geometric from 2e-3 to
2e-2) and the same shuffling seed. Unit: one member-epoch.

  eulerflow_ensemble   ef.Ensemble(make, 64).fit(..., lr=lrs): one native call, the 64
                       members in SIMD lanes
  eulerflow_separate   64 separate NeuralODE.fit calls, one after another, one core
  jax_vmap             jax.vmap over the 64 trainings of the whole run (lax.scan over
                       epochs and windows) in one jit call, float64, XLA on one thread,
                       the same window orders (eulerflow's shuffle replicated); compile
                       time reported apart

Quality: ``max_param_diff_vs_separate`` (the ensemble's members against the separate
fits: 0 means bit-identical), ``jax_max_param_diff_vs_eulerflow`` (same orders, so the
two must agree to rounding), and the mean and spread of the final losses.

    python benchmarks/w1_ensemble.py [--members 64] [--epochs 500] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys

import harness
import numpy as np
import w1_node_spiral as w1  # sets the JAX/XLA environment before JAX is imported

WORKLOAD = "w1_ensemble"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--budget", type=float, default=60.0)
    ap.add_argument("--impl", nargs="*", default=None, help="only these (prefixes)")
    args = ap.parse_args(argv)

    ef, reason = harness.optional_import("eulerflow")
    if ef is None:
        harness.skip(WORKLOAD, "eulerflow_ensemble", reason)
        return 1
    n, epochs = args.members, args.epochs
    t, data, params0, _ = w1.make_problem(ef, "w1")
    W0 = params0[0]
    lrs = np.geomspace(2e-3, 2e-2, n)
    units = n * epochs
    unit = "member-epoch"
    flops = w1.flops_per_epoch(params0, len(t) - 1)
    ef.set_num_threads(1)

    def make(i):
        field = ef.Dense(2, 2, bias=False)
        field.W[...] = W0
        return ef.NeuralODE(field, method="euler", steps_per_interval=w1.NSTEPS)

    def run_ensemble():
        ens = ef.Ensemble(make, n)
        hist = ens.fit(data, t, epochs=epochs, optimizer=ef.optim.SGD(w1.LR, momentum=w1.MOMENTUM),
                       lr=lrs, seed=w1.SEED)
        return np.stack([m.field.W.copy() for m in ens.members]), hist.loss[-1]

    def run_separate():
        Ws, last = [], []
        for i in range(n):
            node = make(i)
            opt = ef.optim.SGD(lrs[i], momentum=w1.MOMENTUM)
            hist = node.fit(data, t, epochs=epochs, optimizer=opt, seed=w1.SEED)
            Ws.append(node.field.W.copy())
            last.append(hist.loss[-1])
        return np.stack(Ws), np.array(last)

    results = {}
    if harness.selected("eulerflow_ensemble", args.impl):
        times, (W_ens, loss_ens) = harness.time_repeats(run_ensemble, repeats=args.repeats,
                                                        budget_s=args.budget)
        results["ens"] = (W_ens, loss_ens)
        harness.emit(harness.make_record(
            WORKLOAD, "eulerflow", seconds=float(np.median(times)) / units, units=unit,
            n_units=units, repeats=len(times), flops_per_unit=flops,
            quality={"final_loss_mean": float(loss_ens.mean()),
                     "final_loss_min": float(loss_ens.min()),
                     "final_loss_max": float(loss_ens.max())},
            notes=f"ef.Ensemble({n} x NeuralODE(Dense(2,2,bias=False), euler, 5 steps)).fit("
                  f"epochs={epochs}, lr=geomspace(2e-3, 2e-2, {n}), seed=0); one core")
            | {"other_load": harness.last_other_load})
    if harness.selected("eulerflow_separate", args.impl):
        times, (W_sep, loss_sep) = harness.time_repeats(run_separate, repeats=args.repeats,
                                                        budget_s=args.budget)
        quality = {"final_loss_mean": float(loss_sep.mean())}
        if "ens" in results:
            quality["max_param_diff_vs_ensemble"] = float(np.max(np.abs(W_sep - results["ens"][0])))
        harness.emit(harness.make_record(
            WORKLOAD, "eulerflow_separate_1core", seconds=float(np.median(times)) / units,
            units=unit, n_units=units, repeats=len(times), flops_per_unit=flops, quality=quality,
            notes=f"{n} separate NeuralODE.fit calls, one after another")
            | {"other_load": harness.last_other_load})
    if harness.selected("jax_vmap", args.impl):
        jax, why = harness.optional_import("jax")
        if jax is None:
            harness.skip(WORKLOAD, "jax_vmap", why, units=unit)
        else:
            run_jax_vmap(jax, args, t, data, W0, lrs, results, flops)
    return 0


def run_jax_vmap(jax, args, t, data, W0, lrs, results, flops):
    import time

    jax.config.update("jax_enable_x64", True)
    jnp, lax = jax.numpy, jax.lax
    n, epochs = lrs.size, args.epochs
    nw = len(t) - 1
    orders = jnp.asarray(w1.XoshiroOrders(w1.SEED).orders(nw, epochs))  # eulerflow's order
    data_j, t_j = jnp.asarray(data), jnp.asarray(t)

    def window_loss(W, i):
        h = (t_j[i + 1] - t_j[i]) / w1.NSTEPS
        z = data_j[i]
        for _ in range(w1.NSTEPS):
            z = z + h * (W @ z)
        return jnp.mean((z - data_j[i + 1]) ** 2)

    vg = jax.value_and_grad(window_loss)

    def train(lr):
        def window(carry, i):
            W, buf = carry
            L, g = vg(W, i)
            buf = w1.MOMENTUM * buf + g
            return (W - lr * buf, buf), L

        def epoch(carry, order):
            carry, Ls = lax.scan(window, carry, order)
            return carry, Ls.sum() / nw

        (W, _), losses = lax.scan(epoch, (jnp.asarray(W0), jnp.zeros((2, 2))), orders)
        return W, losses[-1]

    run = jax.jit(jax.vmap(train))
    lrs_j = jnp.asarray(lrs)
    start = time.perf_counter()
    jax.block_until_ready(run(lrs_j))
    compile_s = time.perf_counter() - start
    times, (W, last) = harness.time_repeats(lambda: jax.block_until_ready(run(lrs_j)),
                                            repeats=args.repeats, budget_s=args.budget)
    units = n * epochs
    quality = {"final_loss_mean": float(np.mean(last))}
    if "ens" in results:
        diff = np.abs(np.asarray(W) - results["ens"][0])
        quality["max_param_diff_vs_eulerflow"] = float(diff.max())
    harness.emit(harness.make_record(
        WORKLOAD, "jax_vmap", seconds=float(np.median(times)) / units, units="member-epoch",
        n_units=units, repeats=len(times), flops_per_unit=flops, quality=quality,
        notes=f"jax {jax.__version__}: jit(vmap(train over lr)) of the whole run (lax.scan "
              f"over epochs and windows, Euler unrolled), eulerflow's window orders; float64, "
              f"XLA on one thread; compile {compile_s:.2f} s (first call) not included")
        | {"other_load": harness.last_other_load, "compile_seconds": compile_s})


if __name__ == "__main__":
    sys.exit(main())
