"""W11 memory of exact Neural ODE gradients (issue 12): backprop, recursive checkpointing
and the adjoint, beside torchdiffeq's backprop and adjoint.

One window gradient of a Neural ODE ``dz/dt = f(z)``, f = ``ef.mlp([2, 16, 2], "tanh",
seed=0)``, z0 = (0.5, -0.3), rk4 with k equal steps over [0, 1], loss MSE against
(0.1, 0.2). Unit: one gradient. For each k and each gradient:
  seconds        median wall time of one gradient;
  scratch_bytes  eulerflow's own account of the memory the gradient held (its tape or
                 checkpoints, stage buffers);
  peak_rss_mib   the growth of the process's peak resident memory (VmHWM) over one
                 gradient, measured in a fresh child process per (implementation, k): what
                 the operating system saw, for every implementation alike;
  max_rel_diff   the gradient's largest difference from eulerflow's backprop, relative.
torchdiffeq (odeint and odeint_adjoint, method "rk4" with step_size 1/k, one thread) runs
up to --torch-max-steps steps.

    python benchmarks/w11_gradient_memory.py [--steps 1000 10000 100000 1000000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import harness
import numpy as np

WORKLOAD = "w11_gradient_memory"
Z0, TARGET = [0.5, -0.3], [0.1, 0.2]

CHILD = r"""
import json, sys, time
import numpy as np

def peak_kib():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0

impl, k = sys.argv[1], int(sys.argv[2])
z0, target = np.array(json.loads(sys.argv[3])), np.array(json.loads(sys.argv[4]))
import eulerflow as ef
net = ef.mlp([2, 16, 2], "tanh", seed=0)
if impl.startswith("eulerflow"):
    how = impl.split("_", 1)[1]
    small = ef.NeuralODE(net, "rk4", steps_per_interval=1)
    small.loss_and_gradient(z0, target, np.array([0.0, 1.0]), gradient=how)
    model = ef.NeuralODE(net, "rk4", steps_per_interval=k)
    before = peak_kib()
    start = time.perf_counter()
    _, grads, nbytes = model.loss_and_gradient(z0, target, np.array([0.0, 1.0]), gradient=how)
    seconds = time.perf_counter() - start
    flat = np.concatenate([g.ravel() for g in grads])
else:
    import torch, torchdiffeq
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    W1, b1, W2, b2 = (torch.tensor(p.copy(), requires_grad=True) for p in net.parameters())

    class Field(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.W1, self.b1 = torch.nn.Parameter(W1.detach()), torch.nn.Parameter(b1.detach())
            self.W2, self.b2 = torch.nn.Parameter(W2.detach()), torch.nn.Parameter(b2.detach())

        def forward(self, t, z):
            return torch.tanh(z @ self.W1.T + self.b1) @ self.W2.T + self.b2

    field = Field()
    solve = torchdiffeq.odeint_adjoint if impl.endswith("adjoint") else torchdiffeq.odeint
    tt = torch.tensor([0.0, 1.0])

    def grad_of(steps):
        for p in field.parameters():
            p.grad = None
        ys = solve(field, torch.tensor(z0), tt, method="rk4", options={"step_size": 1.0 / steps})
        ((ys[-1] - torch.tensor(target)) ** 2).mean().backward()
        return [p.grad.numpy().copy() for p in field.parameters()]

    grad_of(1)
    before = peak_kib()
    start = time.perf_counter()
    grads = grad_of(k)
    seconds = time.perf_counter() - start
    flat = np.concatenate([g.ravel() for g in grads])
    nbytes = None
after = peak_kib()
print(json.dumps({"seconds": seconds, "peak_rss_mib": (after - before) / 1024.0,
                  "scratch_bytes": nbytes, "grad": flat.tolist()}))
"""


def run_child(impl: str, k: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, impl, str(k), json.dumps(Z0),
                          json.dumps(TARGET)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, nargs="*", default=[1000, 10000, 100000, 1000000])
    ap.add_argument("--torch-max-steps", type=int, default=10000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--impl", nargs="*", default=None, help="only these (prefixes)")
    args = ap.parse_args(argv)
    ef, why = harness.optional_import("eulerflow")
    torch, why_t = harness.optional_import("torch")
    tdq, why_d = harness.optional_import("torchdiffeq")
    impls = ["eulerflow_backprop", "eulerflow_checkpoint", "eulerflow_adjoint",
             "torchdiffeq_backprop", "torchdiffeq_adjoint"]
    for k in args.steps:
        reference = None
        for impl in impls:
            name = f"{impl}_{k}"
            if not harness.selected(impl, args.impl):
                continue
            if impl.startswith("eulerflow") and ef is None:
                harness.skip(WORKLOAD, name, why, units="gradient")
                continue
            if impl.startswith("torch"):
                if torch is None or tdq is None:
                    harness.skip(WORKLOAD, name, why_t or why_d, units="gradient")
                    continue
                if k > args.torch_max_steps:
                    harness.skip(WORKLOAD, name, f"more than --torch-max-steps "
                                 f"({args.torch_max_steps}) steps", units="gradient")
                    continue
            runs = []
            for _ in range(args.repeats):
                try:
                    runs.append(run_child(impl, k))
                except subprocess.CalledProcessError as exc:
                    harness.emit(harness.make_record(
                        WORKLOAD, name, seconds=None, units="gradient", n_units=1, repeats=0,
                        notes=f"failed: {exc.stderr.strip().splitlines()[-1]}"))
                    break
            if not runs:
                continue
            grad = np.array(runs[-1]["grad"])
            if reference is None and impl == "eulerflow_backprop":
                reference = grad
            quality = {
                "steps": k,
                "scratch_bytes": runs[-1]["scratch_bytes"],
                "peak_rss_mib": round(float(np.median([r["peak_rss_mib"] for r in runs])), 3),
                "max_rel_diff": (None if reference is None else float(
                    np.max(np.abs(grad - reference)) / np.max(np.abs(reference)))),
            }
            seconds = float(np.median([r["seconds"] for r in runs]))
            harness.emit(harness.make_record(WORKLOAD, name, seconds=seconds, units="gradient",
                                             n_units=1, repeats=len(runs), quality=quality,
                                             notes=f"rk4, {k} steps, child process per run"))
            print(f"{name:32s} {seconds * 1e3:10.2f} ms  rss +{quality['peak_rss_mib']:8.2f} MiB"
                  f"  scratch {quality['scratch_bytes']}  diff {quality['max_rel_diff']}",
                  file=sys.stderr)

    return 0


if __name__ == "__main__":
    sys.exit(main())
