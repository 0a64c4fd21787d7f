"""32 spiral classifiers (seed 004's task), one learning rate each, as one ensemble.

Data: ``ef.data.spiral_classes(100)`` (300 points, 3 arms). Member i: ``ef.mlp([2, 16, 3],
"tanh", seed=i)``, cross-entropy, Adam with lr[i] (geometric from 1e-3 to 1e-1), batches
of 32 in a shuffled order, 100 epochs. Unit: one member-epoch (10 Adam steps).

  eulerflow_ensemble_Nthreads  ef.Ensemble(make, 32).fit(X, y, lr=lrs, threads=N): one
                               native call, the members on a pool of N threads, each
                               bit-identical to its own fit
  eulerflow_separate           32 separate Module.fit calls, one after another
  torch_separate_1thread       the same trainings in PyTorch eager (torch.optim.Adam), one
                               thread, from the same initial weights; timed on
                               --slow-members members
  jax_vmap                     jax.vmap over the members of the whole training (lax.scan
                               over epochs and batches, Adam written out) in one jit call,
                               float64, XLA on one thread, the same batch orders as the
                               torch peer; compile time reported apart

Quality: ``max_param_diff_vs_separate`` (0: the ensemble's members are bit-identical to
the separate fits), the mean final loss and the mean final accuracy over the members.

    python benchmarks/w12_network_ensemble.py [--members 32] [--epochs 100] [--repeats 3]
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(_var, None)
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false "
                                   "intra_op_parallelism_threads=1")
os.environ.setdefault("JAX_ENABLE_X64", "1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import harness  # noqa: E402
import numpy as np  # noqa: E402

WORKLOAD = "w12_network_ensemble"
BATCH = 32


def lrs_for(n):
    return np.geomspace(1e-3, 1e-1, n)


def eulerflow_ensemble(ef, X, y, n, epochs, threads):
    ens = ef.Ensemble(lambda i: ef.mlp([2, 16, 3], "tanh", seed=i), n)
    hist = ens.fit(X, y, loss="cross_entropy", optimizer=ef.optim.Adam(), epochs=epochs,
                   batch_size=BATCH, lr=lrs_for(n), seed=np.arange(n), threads=threads)
    return ens, hist


def eulerflow_separate(ef, X, y, n, epochs):
    nets, hists = [], []
    for i, lr in enumerate(lrs_for(n)):
        net = ef.mlp([2, 16, 3], "tanh", seed=i)
        hists.append(net.fit(X, y, loss="cross_entropy", optimizer=ef.optim.Adam(lr),
                             epochs=epochs, batch_size=BATCH, seed=i))
        nets.append(net)
    return nets, hists


def batch_orders(n_members, epochs, n, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([np.stack([rng.permutation(n) for _ in range(epochs)])
                     for _ in range(n_members)])


def torch_separate(torch, ef, X, y, n, epochs, orders):
    torch.set_num_threads(1)
    Xt, yt = torch.tensor(X), torch.tensor(y)
    losses = []
    for i, lr in enumerate(lrs_for(n)):
        W1, b1, W2, b2 = (torch.tensor(p.copy(), requires_grad=True)
                          for p in ef.mlp([2, 16, 3], "tanh", seed=i).parameters())
        opt = torch.optim.Adam([W1, b1, W2, b2], lr=float(lr))
        for e in range(epochs):
            order = orders[i, e]
            for s in range(0, len(order), BATCH):
                idx = order[s:s + BATCH]
                opt.zero_grad()
                z = torch.tanh(Xt[idx] @ W1.T + b1) @ W2.T + b2
                loss = torch.nn.functional.cross_entropy(z, yt[idx])
                loss.backward()
                opt.step()
        with torch.no_grad():
            z = torch.tanh(Xt @ W1.T + b1) @ W2.T + b2
            losses.append(float(torch.nn.functional.cross_entropy(z, yt)))
    return np.array(losses)


def jax_vmap_trainer(jax, jnp, X, y, epochs):
    n = X.shape[0]
    n_batches = -(-n // BATCH)
    pad = n_batches * BATCH - n
    Xj, yj = jnp.asarray(X), jnp.asarray(y)

    def loss_fn(params, idx, mask):
        W1, b1, W2, b2 = params
        z = jnp.tanh(Xj[idx] @ W1.T + b1) @ W2.T + b2
        logp = z - jax.scipy.special.logsumexp(z, axis=1, keepdims=True)
        nll = -jnp.take_along_axis(logp, yj[idx][:, None], axis=1)[:, 0]
        return jnp.sum(nll * mask) / jnp.sum(mask)

    grad_fn = jax.grad(loss_fn)

    def train_one(params, lr, orders):
        state = (params, [jnp.zeros_like(p) for p in params],
                 [jnp.zeros_like(p) for p in params], 0)

        def step(state, batch):
            params, m, v, t = state
            idx, mask = batch
            g = grad_fn(params, idx, mask)
            t = t + 1
            m = [0.9 * mi + 0.1 * gi for mi, gi in zip(m, g, strict=True)]
            v = [0.999 * vi + 0.001 * gi * gi for vi, gi in zip(v, g, strict=True)]
            params = [p - lr * (mi / (1 - 0.9 ** t)) / (jnp.sqrt(vi / (1 - 0.999 ** t)) + 1e-8)
                      for p, mi, vi in zip(params, m, v, strict=True)]
            return (params, m, v, t), None

        def epoch(state, order):
            idx = jnp.concatenate([order, jnp.zeros(pad, dtype=order.dtype)])
            mask = jnp.concatenate([jnp.ones(n), jnp.zeros(pad)])
            batches = (idx.reshape(n_batches, BATCH), mask.reshape(n_batches, BATCH))
            state, _ = jax.lax.scan(step, state, batches)
            return state, None

        state, _ = jax.lax.scan(epoch, state, orders)
        params = state[0]
        return params, loss_fn(params, jnp.arange(n), jnp.ones(n))

    return jax.jit(jax.vmap(train_one))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=32)
    ap.add_argument("--slow-members", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--impl", nargs="*", default=None, help="only these (prefixes)")
    args = ap.parse_args(argv)
    n, epochs = args.members, args.epochs
    units = n * epochs
    ef, why = harness.optional_import("eulerflow")
    if ef is None:
        harness.skip(WORKLOAD, "eulerflow", why, units="member-epoch")
        return 0
    X, y = ef.data.spiral_classes(100)
    separate = eulerflow_separate(ef, X, y, n, epochs)
    ref = [p for net in separate[0] for p in net.parameters()]

    def quality_ensemble(result):
        ens, hist = result
        got = [p for ps in ens.parameters() for p in ps]
        diff = max(float(np.max(np.abs(a - b))) for a, b in zip(got, ref, strict=True))
        return {"max_param_diff_vs_separate": diff,
                "mean_final_loss": float(np.mean(hist.loss[-1])),
                "mean_final_accuracy": float(np.mean(hist.metrics["accuracy"][-1]))}

    for threads in (1, 2):
        name = f"eulerflow_ensemble_{threads}thread{'s' if threads > 1 else ''}"
        if harness.selected(name, args.impl):
            harness.measure(WORKLOAD, name,
                            lambda t=threads: eulerflow_ensemble(ef, X, y, n, epochs, t),
                            units="member-epoch", n_units=units, repeats=args.repeats,
                            quality=quality_ensemble,
                            notes=f"ef.Ensemble(mlp 2-16-3 tanh, {n}).fit(..., threads={threads})")
    if harness.selected("eulerflow_separate", args.impl):
        harness.measure(WORKLOAD, "eulerflow_separate",
                        lambda: eulerflow_separate(ef, X, y, n, epochs), units="member-epoch",
                        n_units=units, repeats=args.repeats,
                        quality=lambda r: {"mean_final_loss": float(np.mean(
                            [h.loss[-1] for h in r[1]]))},
                        notes=f"{n} separate Module.fit calls, one core")
    orders = batch_orders(n, epochs, len(y))
    if harness.selected("torch_separate_1thread", args.impl):
        torch, why_t = harness.optional_import("torch")
        if torch is None:
            harness.skip(WORKLOAD, "torch_separate_1thread", why_t, units="member-epoch")
        else:
            torch.set_default_dtype(torch.float64)
            m = args.slow_members
            harness.measure(WORKLOAD, "torch_separate_1thread",
                            lambda: torch_separate(torch, ef, X, y, m, epochs, orders),
                            units="member-epoch", n_units=m * epochs, repeats=1,
                            warmup=lambda: torch_separate(torch, ef, X, y, 1, 2, orders),
                            quality=lambda losses: {"mean_final_loss": float(np.mean(losses))},
                            notes=f"PyTorch eager, {m} members timed, 1 thread")
    if harness.selected("jax_vmap", args.impl):
        jax, why_j = harness.optional_import("jax")
        if jax is None:
            harness.skip(WORKLOAD, "jax_vmap", why_j, units="member-epoch")
        else:
            import jax.numpy as jnp

            params = [jnp.asarray(np.stack([ef.mlp([2, 16, 3], "tanh", seed=i).parameters()[k]
                                            for i in range(n)])) for k in range(4)]
            trainer = jax_vmap_trainer(jax, jnp, X, y, epochs)
            lrs, ords = jnp.asarray(lrs_for(n)), jnp.asarray(orders)
            start = time.perf_counter()
            jax.block_until_ready(trainer(params, lrs, ords))
            compile_s = time.perf_counter() - start

            def run_jax():
                return jax.block_until_ready(trainer(params, lrs, ords))

            harness.measure(WORKLOAD, "jax_vmap", run_jax, units="member-epoch", n_units=units,
                            repeats=args.repeats, warmup=lambda: None,
                            quality=lambda r: {"mean_final_loss": float(np.mean(r[1])),
                                               "compile_seconds": round(compile_s, 2)},
                            notes="jax.jit(jax.vmap(whole training)), float64, one thread")
    return 0


if __name__ == "__main__":
    sys.exit(main())
