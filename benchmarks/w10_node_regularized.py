"""W10 regularized Neural ODE (issue 12): does the penalty keep the solver's work flat?

Task: Lorenz (``ef.data.lorenz``, 101 points on [0, 5], each coordinate normalised),
field ``ef.mlp([3, 32, 32, 3], "tanh", seed=0)``, dopri5 with rtol 1e-5, atol 1e-7,
windows of 3 intervals, 16 windows per optimizer step (each window its own solve, the
gradients averaged), Adam(3e-3), shuffled windows. Unit: one epoch.

Implementations:
  eulerflow_plain       ``fit`` without penalty
  eulerflow_penalized   ``fit(..., kinetic_energy=0.005, jacobian_frobenius=0.005)``
                        (exact gradients: the Jacobian penalty by forward-over-reverse)
  torchdiffeq_penalized the same objective in PyTorch: torchdiffeq's dopri5 on the state
                        augmented with the two integrals (the Jacobian by 3 vector-Jacobian
                        products with create_graph, so its gradient is exact too), the same
                        window loop, backprop through the solver, one thread; timed on
                        --slow-epochs epochs from the same start.
Quality: forward field evaluations per epoch (first epoch, the largest, the last) and the
final data loss (the loss without the penalty). The claim checked: with the penalty the
evaluations per epoch stay near their first value while without it they grow.

    python benchmarks/w10_node_regularized.py [--epochs 300] [--slow-epochs 3]
"""

from __future__ import annotations

import argparse
import sys

import harness
import numpy as np

WORKLOAD = "w10_node_regularized"
WEIGHTS = (0.005, 0.005)
RTOL, ATOL, WINDOW, BATCH, LR = 1e-5, 1e-7, 3, 16, 3e-3


def lorenz_data(ef):
    t, ys = ef.data.lorenz(n_points=101, t_end=5.0)
    return t, (ys - ys.mean(axis=0)) / ys.std(axis=0)


def run_eulerflow(ef, epochs, weights):
    t, z = lorenz_data(ef)
    model = ef.NeuralODE(ef.mlp([3, 32, 32, 3], "tanh", seed=0), "dopri5", rtol=RTOL,
                         atol=ATOL)
    return model.fit(z, t, epochs=epochs, window=WINDOW, batch_size=BATCH,
                     optimizer=ef.optim.Adam(LR), kinetic_energy=weights[0],
                     jacobian_frobenius=weights[1])


def eulerflow_quality(hist):
    nfev = hist.metrics["nfev"]
    return {"nfev_first": float(nfev[0]), "nfev_max": float(nfev.max()),
            "nfev_last": float(nfev[-1]), "nfev_growth": float(nfev[-1] / nfev[0]),
            "data_loss": float(hist.loss[-1] - hist.metrics["penalty"][-1]),
            "epochs": int(hist.epochs)}


def run_torchdiffeq(ef, torch, tdq, epochs, weights):
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    t_np, z_np = lorenz_data(ef)
    net = ef.mlp([3, 32, 32, 3], "tanh", seed=0)
    W1, b1, W2, b2, W3, b3 = (torch.tensor(p.copy(), requires_grad=True)
                              for p in net.parameters())
    params = [W1, b1, W2, b2, W3, b3]
    kin, jac = weights
    nfev = [0]

    def f(z):
        return torch.tanh(torch.tanh(z @ W1.T + b1) @ W2.T + b2) @ W3.T + b3

    def aug_field(t, s):
        nfev[0] += 1
        with torch.enable_grad():
            z = s[:3]
            if not z.requires_grad:
                z = z.requires_grad_(True)
            fz = f(z)
            jac_sq = 0.0
            for i in range(3):
                row, = torch.autograd.grad(fz[i], z, create_graph=True)
                jac_sq = jac_sq + (row * row).sum()
        return torch.cat([fz, (kin * (fz * fz).sum()).reshape(1), (jac * jac_sq).reshape(1)])

    opt = torch.optim.Adam(params, lr=LR)
    t = torch.tensor(t_np)
    z = torch.tensor(z_np)
    n_windows = t_np.size - WINDOW
    rng = np.random.default_rng(0)
    per_epoch = []
    for _ in range(epochs):
        nfev[0] = 0
        order = rng.permutation(n_windows)
        for start in range(0, n_windows, BATCH):
            opt.zero_grad()
            idx = order[start:start + BATCH]
            total = 0.0
            for i in idx:
                s0 = torch.cat([z[i], torch.zeros(2)])
                s = tdq.odeint(aug_field, s0, t[i:i + WINDOW + 1], method="dopri5", rtol=RTOL,
                               atol=ATOL)
                end = s[-1]
                loss = ((end[:3] - z[i + WINDOW]) ** 2).mean() + end[3] + end[4]
                total = total + loss / len(idx)
            total.backward()
            opt.step()
        per_epoch.append(nfev[0])
    return np.array(per_epoch, dtype=float)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--slow-epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--impl", nargs="*", default=None, help="only these (prefixes)")
    args = ap.parse_args(argv)
    ef, why = harness.optional_import("eulerflow")
    for name, weights in (("eulerflow_plain", (0.0, 0.0)), ("eulerflow_penalized", WEIGHTS)):
        if not harness.selected(name, args.impl):
            continue
        if ef is None:
            harness.skip(WORKLOAD, name, why, units="epoch")
            continue
        harness.measure(WORKLOAD, name, lambda w=weights: run_eulerflow(ef, args.epochs, w),
                        units="epoch", n_units=args.epochs, repeats=args.repeats,
                        warmup=lambda w=weights: run_eulerflow(ef, 2, w),
                        quality=eulerflow_quality,
                        notes=f"NeuralODE(dopri5).fit, kinetic_energy, jacobian_frobenius = "
                              f"{weights}, {args.epochs} epochs")
    name = "torchdiffeq_penalized"
    if harness.selected(name, args.impl):
        torch, why_t = harness.optional_import("torch")
        tdq, why_d = harness.optional_import("torchdiffeq")
        if ef is None or torch is None or tdq is None:
            harness.skip(WORKLOAD, name, why or why_t or why_d, units="epoch")
        else:
            harness.measure(
                WORKLOAD, name, lambda: run_torchdiffeq(ef, torch, tdq, args.slow_epochs,
                                                        WEIGHTS),
                units="epoch", n_units=args.slow_epochs, repeats=1,
                warmup=lambda: None,
                quality=lambda nf: {"nfev_first": float(nf[0]), "nfev_last": float(nf[-1]),
                                    "epochs": int(nf.size)},
                notes=f"torchdiffeq.odeint(dopri5) on the augmented state, exact Jacobian "
                      f"penalty by autograd, {args.slow_epochs} epochs, 1 thread")
    return 0


if __name__ == "__main__":
    sys.exit(main())
