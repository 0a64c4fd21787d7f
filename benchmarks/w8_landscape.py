"""W8 landscape: a 51 x 51 loss landscape of the W4 classifier (Li et al. 2018 scan).

The network is seed 004's classifier (W4): D = [2, 15, 3], atan after every layer, the
multi-class logistic loss (mean cross entropy), on ef.data.spiral_classes(100, 3, 0.2,
seed=0); it starts from W4's weights (standard normal, np.random.seed(0), order A0, b0,
A1, b1) and is trained briefly by full-batch gradient descent (deterministic). The scan
evaluates L(theta0 + alpha d1 + beta d2) on a grid of 51 x 51 points in [-1, 1]^2, with
d1, d2 the filter-normalized random directions ef.landscape.random_direction(net, 1) and
(net, 2) (biases not moved). Every implementation scans the same directions; the unit
is one grid point (seconds per point; the whole scan is 2601 points).

Implementations:
  eulerflow            ef.landscape.scan_2d(net, (X, y), ..., loss="cross_entropy") on one
                       thread (ef.set_num_threads(1)): the whole grid in one native call
                       (cpp/src/landscape.cpp); per point, W(c) = W0 + a D1 + b D2 of both
                       layers, the network's own dense and atan kernels (fastmath, AVX-512
                       or AVX2 variant), its cross-entropy kernel; no Python per point
  eulerflow_2threads   the same on two threads (the grid points split over the pool; the
                       losses are bit-identical to one thread's)
  eulerflow_callable   ef.landscape.scan_2d with a NumPy callable loss(model): the generic
                       "any model" protocol (parameters moved in place per point)
  numpy_loop           a straightforward NumPy scan: per point, theta = theta0 + a d1 + b d2,
                       forward, stable log-sum-exp loss (the baseline a user writes)
  numpy_seed           the same loop around seed 004's own ForwardNN and lossF (lossF sums
                       with Python's builtin sum)
  numpy_vectorized     an expert's NumPy: blocks of 32 grid points, one batched matmul per
                       layer, in-place atan (what eulerflow did before its native evaluator)
  torch_loop           PyTorch, one thread, no_grad, the straightforward per-point loop

The quality figure is the largest |difference| between an implementation's loss grid and
numpy_loop's (untimed reference run).

    python benchmarks/w8_landscape.py [--grid 51] [--repeats 7] [--impl eulerflow numpy]
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(_var, None)

import argparse  # noqa: E402
import sys  # noqa: E402

import harness  # noqa: E402
import numpy as np  # noqa: E402
import peers_seed004 as seed  # noqa: E402
import w4_spiral_classify as w4  # noqa: E402

WORKLOAD = "w8_landscape"
UNITS = "grid point"
TRAIN_ITERS = 2000  # "trained briefly": full-batch gradient descent, W4's step
SPEED_TARGET = 50.0  # eulerflow vs numpy_loop
AGREE_TOL = 1e-12


def flops_per_point(n: int) -> float:
    """Multiply-adds of one forward (2 flops each); the 5400 atan, 900 exp and 300 log
    per point are not counted (they dominate)."""
    return 2.0 * n * sum(w4.D[r] * w4.D[r + 1] for r in range(len(w4.D) - 1))


def trained_classifier(ef, X, y, iters):
    """W4's network from W4's initial weights, after ``iters`` full-batch GD steps."""
    net = ef.Sequential([ef.Dense(2, 15), ef.Activation("atan"),
                         ef.Dense(15, 3), ef.Activation("atan")])
    A0, b0 = w4.initial_weights()
    for p, v in zip(net.parameters(), (A0[0], b0[0], A0[1], b0[1]), strict=True):
        p[...] = v
    if iters:
        net.fit(X, y, loss="cross_entropy", optimizer=ef.optim.SGD(lr=w4.TAU * len(y)),
                epochs=iters, batch_size=len(y), shuffle=False)
    return net


def mean_ce(z, y):
    """Mean cross entropy of logits z (n, k), stable log-sum-exp."""
    m = z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z - m).sum(axis=1)) + m[:, 0]
    return float(np.mean(lse - z[np.arange(len(y)), y]))


# ---- implementations: each returns run() -> loss grid (len(betas), len(alphas)) -------------

def eulerflow_impl(ef, net, X, y, grid, d1, d2, threads=1):
    def run():
        saved = ef.get_num_threads()
        ef.set_num_threads(threads)
        try:
            scan = ef.landscape.scan_2d(net, (X, y), grid, grid, directions=(d1, d2),
                                        loss="cross_entropy")
        finally:
            ef.set_num_threads(saved)
        return scan.loss

    return run, (f"ef.landscape.scan_2d(net, (X, y), loss='cross_entropy') "
                 f"[evaluation='batched'], ef.set_num_threads({threads})")


def eulerflow_2threads_impl(ef, net, X, y, grid, d1, d2):
    return eulerflow_impl(ef, net, X, y, grid, d1, d2, threads=2)


def eulerflow_callable_impl(ef, net, X, y, grid, d1, d2):
    def loss(model):
        W1, b1, W2, b2 = model.parameters()
        return mean_ce(np.arctan(np.arctan(X @ W1.T + b1) @ W2.T + b2), y)

    def run():
        return ef.landscape.scan_2d(net, loss, grid, grid, directions=(d1, d2)).loss

    return run, "ef.landscape.scan_2d(net, loss_callable): parameters moved in place per point"


def numpy_loop_impl(theta0, X, y, grid, d1, d2):
    def run():
        out = np.empty((grid.size, grid.size))
        for i, b in enumerate(grid):
            for j, a in enumerate(grid):
                W1, b1, W2, b2 = [p + a * u + b * v for p, u, v in zip(theta0, d1, d2,
                                                                       strict=True)]
                z = np.arctan(np.arctan(X @ W1.T + b1) @ W2.T + b2)
                out[i, j] = mean_ce(z, y)
        return out

    return run, "per point: theta0 + a*d1 + b*d2, forward, mean_ce (numpy only)"


def numpy_seed_impl(theta0, X, y, grid, d1, d2):
    x = np.ascontiguousarray(X.T)
    Y = np.zeros((w4.K, len(y)))
    Y[y, np.arange(len(y))] = 1.0
    n = len(y)

    def run():
        out = np.empty((grid.size, grid.size))
        for i, b in enumerate(grid):
            for j, a in enumerate(grid):
                W1, b1, W2, b2 = [p + a * u + b * v for p, u, v in zip(theta0, d1, d2,
                                                                       strict=True)]
                Xs = seed.ForwardNN([W1, W2], [b1[:, None], b2[:, None]], x, 2)
                out[i, j] = seed.lossF(Xs[2], Y) / n
        return out

    return run, "per point: seed 004's ForwardNN and lossF (builtin sum) / n"


def numpy_vectorized_impl(theta0, X, y, grid, d1, d2, block=32):
    n = len(y)
    XT = np.ascontiguousarray(X.T)  # samples as columns, as seed 004 lays them out
    picked = y * n + np.arange(n)   # z[y[i], i] in a flattened (k, n) block
    alphas, betas = np.tile(grid, grid.size), np.repeat(grid, grid.size)

    def run():
        out = np.empty(alphas.size)
        for s in range(0, alphas.size, block):
            a, b = alphas[s:s + block], betas[s:s + block]
            m = a.size
            a3, b3, a2, b2 = a[:, None, None], b[:, None, None], a[:, None], b[:, None]
            W1 = theta0[0] + a3 * d1[0] + b3 * d2[0]                   # (m, 15, 2)
            c1 = (theta0[1] + a2 * d1[1] + b2 * d2[1])[:, :, None]     # (m, 15, 1)
            W2 = theta0[2] + a3 * d1[2] + b3 * d2[2]                   # (m, 3, 15)
            c2 = (theta0[3] + a2 * d1[3] + b2 * d2[3])[:, :, None]
            h = np.matmul(W1, XT)                                      # (m, 15, n)
            h += c1
            np.arctan(h, out=h)
            z = np.matmul(W2, h)                                       # (m, 3, n)
            z += c2
            np.arctan(z, out=z)
            zmax = np.maximum(np.maximum(z[:, 0], z[:, 1]), z[:, 2])
            e = np.exp(z - zmax[:, None, :])
            lse = np.log(e[:, 0] + e[:, 1] + e[:, 2]) + zmax
            out[s:s + m] = (lse - np.take(z.reshape(m, -1), picked, axis=1)).mean(axis=1)
        return out.reshape(grid.size, grid.size)

    return run, (f"an expert's NumPy: blocks of {block} grid points (tuned), one batched "
                 "np.matmul per layer, in-place atan, samples as columns")


def torch_loop_impl(torch, theta0, X, y, grid, d1, d2):
    F = torch.nn.functional
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    t0 = [torch.from_numpy(p) for p in theta0]
    t1 = [torch.from_numpy(p) for p in d1]
    t2 = [torch.from_numpy(p) for p in d2]

    def run():
        torch.set_num_threads(1)
        out = np.empty((grid.size, grid.size))
        with torch.no_grad():
            for i, b in enumerate(grid.tolist()):
                for j, a in enumerate(grid.tolist()):
                    W1, b1, W2, b2 = [p + a * u + b * v for p, u, v in zip(t0, t1, t2,
                                                                           strict=True)]
                    z = torch.atan(F.linear(torch.atan(F.linear(Xt, W1, b1)), W2, b2))
                    out[i, j] = float(F.cross_entropy(z, yt))
        return out

    return run, (f"torch {torch.__version__}, set_num_threads(1), no_grad, per point "
                 "F.linear/atan/F.cross_entropy")


# ---- driver -------------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", type=int, default=51, help="points per axis")
    ap.add_argument("--train-iters", type=int, default=TRAIN_ITERS)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--budget", type=float, default=20.0,
                    help="seconds of timed repeats per implementation (at least one repeat)")
    ap.add_argument("--impl", nargs="*", default=None, help="only these (prefixes)")
    args, unknown = ap.parse_known_args(argv)
    if unknown:
        print(f"{WORKLOAD}: ignoring {unknown}", file=sys.stderr)

    ef, ef_reason = harness.optional_import("eulerflow")
    if ef is None:  # the trained network and its directions come from eulerflow
        return [harness.skip(WORKLOAD, "eulerflow", ef_reason, units=UNITS)]
    X, y, data_note = w4.make_data(ef)
    net = trained_classifier(ef, X, y, args.train_iters)
    theta0 = [p.copy() for p in net.parameters()]
    d1 = ef.landscape.random_direction(net, 1)
    d2 = ef.landscape.random_direction(net, 2)
    grid = np.linspace(-1.0, 1.0, args.grid)
    points = grid.size * grid.size
    flops = flops_per_point(len(y))
    setup = (f"{args.grid}x{args.grid} grid in [-1,1]^2, directions "
             f"random_direction(net, 1/2) (filter-normalized, biases fixed), W4 net after "
             f"{args.train_iters} GD steps; {data_note}")

    reference_run, _ = numpy_loop_impl(theta0, X, y, grid, d1, d2)
    reference = reference_run()  # untimed: the grid every implementation is compared with
    records = []

    def timed(impl, run, note):
        def quality(grid_loss):
            return {
                "max_abs_diff_vs_numpy_loop": float(np.max(np.abs(grid_loss - reference))),
                "origin_loss": float(mean_ce(np.arctan(np.arctan(
                    X @ theta0[0].T + theta0[1]) @ theta0[2].T + theta0[3]), y)),
                "grid_min_loss": float(np.min(grid_loss)),
            }

        rec = harness.measure(WORKLOAD, impl, run, quality=quality, units=UNITS,
                              n_units=points, repeats=args.repeats, budget_s=args.budget,
                              notes=f"{note}; {setup}", flops_per_unit=flops)
        records.append(rec)

    for name, make in (("eulerflow", eulerflow_impl),
                       ("eulerflow_2threads", eulerflow_2threads_impl),
                       ("eulerflow_callable", eulerflow_callable_impl)):
        if harness.selected(name, args.impl):
            run, note = make(ef, net, X, y, grid, d1, d2)
            timed(name, run, note)
    for name, make in (("numpy_loop", numpy_loop_impl), ("numpy_seed", numpy_seed_impl),
                       ("numpy_vectorized", numpy_vectorized_impl)):
        if harness.selected(name, args.impl):
            run, note = make(theta0, X, y, grid, d1, d2)
            timed(name, run, note)
    if harness.selected("torch_loop", args.impl):
        torch, reason = harness.optional_import("torch")
        if torch is None:
            records.append(harness.skip(WORKLOAD, "torch_loop", reason, units=UNITS))
        else:
            run, note = torch_loop_impl(torch, theta0, X, y, grid, d1, d2)
            timed("torch_loop", run, note)

    harness.print_ratios(records)
    base = next((r for r in records if r["impl"] == "numpy_loop" and r["seconds"]), None)
    for impl in ("eulerflow", "eulerflow_2threads"):
        ef_rec = next((r for r in records if r["impl"] == impl and r["seconds"]), None)
        if ef_rec and base:
            ratio = base["seconds"] / ef_rec["seconds"]
            verdict = "met" if ratio >= SPEED_TARGET else "NOT met"
            print(f"target: {impl} >= {SPEED_TARGET:g}x numpy_loop: {ratio:.1f}x, {verdict} "
                  f"(other_load {ef_rec.get('other_load')} / {base.get('other_load')})",
                  file=sys.stderr)
    for r in records:
        if r["seconds"]:
            diff = r["quality"]["max_abs_diff_vs_numpy_loop"]
            verdict = "OK" if diff <= AGREE_TOL else "MISMATCH"
            print(f"{r['impl']}: max |grid - numpy_loop grid| = {diff:.1e} {verdict} "
                  f"(tol {AGREE_TOL:g})", file=sys.stderr)
    return records


if __name__ == "__main__":
    main()
