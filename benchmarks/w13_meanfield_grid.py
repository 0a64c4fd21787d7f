"""W13 meanfield grid (seed 003's open question): the radius x width grid as one ensemble.

Two workloads: ``w13_meanfield_grid`` (the demo's radius x width grid, below) and
``w13_meanfield_lrs`` (32 students of m = 20, radius 0.05, student seeds 0..31, at 32
learning rates geomspace(0.5, 20), the same teacher and sample stream: a learning-rate
ensemble of one width, where one jax.vmap covers every member).

The grid of ``eulerflow demo meanfield`` (demos.meanfield_sweep): teacher M = 4 neurons in
d = 2 (TwoLayerReLU.random(4, 2, seed=54)); students small_sphere(m, 2, radius, seed=100)
for radius in {0.01, 0.05, 0.2, 1} x m in {4, 20, 100, 1000} (16 members of four widths);
each trains ``steps`` SGD steps of 20 fresh Gaussian samples (fit_teacher's stream of seed
200, the same for every member) at lr = 0.25 m (the same mean-field time for every width).
Unit: one member-step (teacher labels + forward + backward + update of one member),
averaged over the grid: the m = 1000 members do most of the work.

Same samples, same starts: the samples are drawn once (ef.meanfield.teacher_samples(teacher,
steps * 20, seed=200) = fit_teacher(seed=200)'s stream) and handed to the peers. The
ensemble draws them once too (its members share teacher and seed); the separate fits each
draw their own, as separate calls must.

Implementations:
  eulerflow                    ef.Ensemble(students, 16).fit_teacher(teacher, steps, lr=0.25 m,
                               snapshot_every=0, seed=200, n_test=1, threads=2): one native
                               call, the members on a pool of 2 threads (the default: every
                               core; widest members first), each bit-identical to its own
                               fit_teacher; the reference of the ratios
  eulerflow_ensemble_1thread   the same call with threads=1
  eulerflow_separate           16 student.fit_teacher(...) calls, one after another, one core
  numba                        w3's whole-run @njit kernel (no fastmath) called once per
                               member on the pre-drawn samples, compile apart
  numba_fastmath               the same kernel with fastmath=True
  jax_vmap                     per width, jax.jit(jax.vmap(whole run)) over the members of
                               that width (one lax.scan over the batches, jax.grad of the
                               loss, float64, XLA on one thread): the natural JAX peer, as
                               members of different widths cannot share one vmap; compile
                               apart
  numpy_loop                   the seed's formulas on (20, m) arrays, member after member,
                               one BLAS thread

Quality: every member's final test loss on a fixed test set (1000 Gaussian inputs from
np.random.default_rng(12345)), computed by one NumPy evaluator for every implementation:
``geomean_test_loss`` over the grid, ``max_test_loss_rel_diff_vs_separate`` (rounding-level
for the peers, 0 for the ensembles) and, for the ensembles, ``max_param_diff_vs_separate``
(0: bit-identical).

    python benchmarks/w13_meanfield_grid.py [--steps 2000] [--repeats 5] [--impl ...]
                                            [--workload grid lrs]
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(_var, None)
# every peer on one thread, float64 (set before NumPy, JAX and numba are imported)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
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
from w3_meanfield import forward_np, numba_kernel, numpy_sgd_step  # noqa: E402

UNITS = "member-step"
RADII = (0.01, 0.05, 0.2, 1.0)  # demos.MEANFIELD_RADII
WIDTHS = (4, 20, 100, 1000)     # demos.MEANFIELD_WIDTHS
TEACHER_SEED, STUDENT_SEED, SAMPLE_SEED, TEST_SEED = 54, 100, 200, 12345
LR0, BATCH, D, N_TEST = 0.25, 20, 2, 1000
# members as (radius, width m, learning rate, student seed)
WORKLOADS = {
    "grid": [(r, m, LR0 * m, STUDENT_SEED) for r in RADII for m in WIDTHS],
    "lrs": [(0.05, 20, float(lr), i) for i, lr in enumerate(np.geomspace(0.5, 20.0, 32))],
}


class Grid:
    """What every implementation shares: teacher, the members' starts and rates, samples,
    the test set."""

    def __init__(self, ef, steps: int, cells: list):
        mf = ef.meanfield
        self.ef, self.steps, self.cells = ef, steps, cells
        self.teacher = mf.TwoLayerReLU.random(4, D, seed=TEACHER_SEED)
        self.lrs = np.array([lr for _, _, lr, _ in cells])
        self.widths = sorted({m for _, m, _, _ in cells})
        self.starts = [mf.TwoLayerReLU.small_sphere(m, D, r, seed=seed)
                       for r, m, _, seed in cells]
        X, _ = mf.teacher_samples(self.teacher, steps * BATCH, seed=SAMPLE_SEED)
        self.X = np.ascontiguousarray(X.reshape(steps, BATCH, D))
        self.T = (self.teacher.a, self.teacher.w, self.teacher.b)
        self.X_test = np.random.default_rng(TEST_SEED).standard_normal((N_TEST, D))
        self.Y_test = forward_np(*self.T, self.X_test)

    def initial(self, i: int):
        s = self.starts[i]
        return s.a.copy(), s.w.copy(), s.b.copy()

    def test_losses(self, finals) -> np.ndarray:
        return np.array([0.5 * np.mean((forward_np(a, w, b, self.X_test) - self.Y_test) ** 2)
                         for a, w, b in finals])


# ---- implementations: run() -> the members' final (a, w, b), in the order of g.cells -----------

def ensemble_impl(g: Grid, threads: int):
    def run():
        ens = g.ef.Ensemble(lambda i: g.starts[i].copy(), len(g.cells))
        ens.fit_teacher(g.teacher, steps=g.steps, batch=BATCH, lr=g.lrs, snapshot_every=0,
                        seed=SAMPLE_SEED, n_test=1, threads=threads)
        return [(s.a, s.w, s.b) for s in ens.members]
    return run


def separate_impl(g: Grid):
    def run():
        finals = []
        for i, lr in enumerate(g.lrs):
            s = g.starts[i].copy()
            s.fit_teacher(g.teacher, steps=g.steps, batch=BATCH, lr=lr, snapshot_every=0,
                          seed=SAMPLE_SEED, n_test=1)
            finals.append((s.a, s.w, s.b))
        return finals
    return run


def numba_impl(numba, g: Grid, fastmath: bool):
    train = numba_kernel(numba, fastmath)
    ta, tw, tb = g.T

    def run():
        finals = []
        for i, lr in enumerate(g.lrs):
            a, w, b = g.initial(i)
            w0, w1 = w[:, 0].copy(), w[:, 1].copy()
            train(a, w0, w1, b, ta, tw, tb, g.X, lr)
            finals.append((a, np.stack([w0, w1], axis=1), b))
        return finals

    start = time.perf_counter()
    train(*(p.copy() for p in (g.starts[0].a, g.starts[0].w[:, 0], g.starts[0].w[:, 1],
                               g.starts[0].b)), ta, tw, tb, g.X[:1], 0.0)
    return run, time.perf_counter() - start


def jax_impl(jax, g: Grid):
    """jax.vmap over the members of one width (their radii), one jitted program per width."""
    jnp, lax = jax.numpy, jax.lax
    ta, tw, tb = (jnp.asarray(p) for p in g.T)
    mt = g.T[0].shape[0]
    Xj = jnp.asarray(g.X)

    def labels(x):
        return jnp.maximum(x @ tw.T + tb, 0.0) @ ta / mt

    def loss(p, x, y):  # particles along the first axis, z (m, n): XLA's faster layout (w3)
        a, w, b = p
        z = w @ x.T + b[:, None]
        f = a @ jnp.where(z >= 0.0, z, 0.0) / a.shape[0]
        return 0.5 * jnp.mean((f - y) ** 2)

    grad = jax.grad(loss)

    def train_one(p, lr):
        def body(p, x):
            gp = grad(p, x, labels(x))
            return tuple(q - lr * gq for q, gq in zip(p, gp, strict=True)), None

        p, _ = lax.scan(body, p, Xj)
        return p

    trainer = jax.jit(jax.vmap(train_one))
    by_width = {m: [i for i, c in enumerate(g.cells) if c[1] == m] for m in g.widths}
    inputs = {}
    for m, idx in by_width.items():
        starts = [g.initial(i) for i in idx]
        inputs[m] = (tuple(jnp.asarray(np.stack([s[k] for s in starts])) for k in range(3)),
                     jnp.asarray(g.lrs[idx]))

    def run():
        finals = [None] * len(g.cells)
        for m, idx in by_width.items():
            a, w, b = (np.asarray(q) for q in jax.block_until_ready(trainer(*inputs[m])))
            for k, i in enumerate(idx):
                finals[i] = (a[k], w[k], b[k])
        return finals

    start = time.perf_counter()
    run()  # one compile per width
    return run, time.perf_counter() - start


def numpy_impl(g: Grid):
    def run():
        finals = []
        for i, lr in enumerate(g.lrs):
            a, w, b = g.initial(i)
            for x in g.X:
                numpy_sgd_step(a, w, b, x, g.T, lr)
            finals.append((a, w, b))
        return finals
    return run


# ---- driver -----------------------------------------------------------------------------------

def run_workload(workload: str, g: Grid, args) -> list[dict]:
    n_units = len(g.cells) * args.steps
    reference = separate_impl(g)()
    ref_params = [np.array(p, copy=True) for f in reference for p in f]
    ref_losses = g.test_losses(reference)
    records = []
    shape = (f"radii {RADII} x widths {WIDTHS}, lr = 0.25 m" if workload.endswith("grid")
             else f"{len(g.cells)} students m = 20 at lr geomspace(0.5, 20)")

    def quality(finals, exact: bool = False, compile_s: float | None = None) -> dict:
        losses = g.test_losses(finals)
        figures = {"geomean_test_loss": float(np.exp(np.mean(np.log(losses)))),
                   "max_test_loss_rel_diff_vs_separate": float(np.max(np.abs(
                       losses - ref_losses) / ref_losses))}
        if exact:
            got = [p for f in finals for p in f]
            figures["max_param_diff_vs_separate"] = max(
                float(np.max(np.abs(np.asarray(p) - q))) for p, q in zip(got, ref_params,
                                                                         strict=True))
        if compile_s is not None:
            figures["compile_seconds"] = round(compile_s, 3)
        return figures

    def timed(impl, run, note, **kw):
        records.append(harness.measure(
            workload, impl, run, units=UNITS, n_units=n_units, repeats=args.repeats,
            budget_s=args.budget, quality=lambda r: quality(r, **kw),
            notes=f"{note}; {shape}, {args.steps} steps"))

    n = len(g.cells)
    for name, threads in (("eulerflow", 2), ("eulerflow_ensemble_1thread", 1)):
        if harness.selected(name, args.impl):
            timed(name, ensemble_impl(g, threads),
                  f"ef.Ensemble({n} students).fit_teacher(..., threads={threads}): one native "
                  "call", exact=True)
    if harness.selected("eulerflow_separate", args.impl):
        timed("eulerflow_separate", separate_impl(g),
              f"{n} separate TwoLayerReLU.fit_teacher calls, one core", exact=True)
    if harness.any_selected(("numba", "numba_fastmath"), args.impl):
        numba, reason = harness.optional_import("numba")
        for name, fastmath in (("numba", False), ("numba_fastmath", True)):
            if not harness.selected(name, args.impl):
                continue
            if numba is None:
                records.append(harness.skip(workload, name, reason, units=UNITS))
                continue
            run, compile_s = numba_impl(numba, g, fastmath)
            timed(name, run, f"numba {numba.__version__} @njit whole run (w3's kernel, "
                  f"fastmath={fastmath}) once per member", compile_s=compile_s)
    if harness.selected("jax_vmap", args.impl):
        jax, reason = harness.optional_import("jax")
        if jax is None:
            records.append(harness.skip(workload, "jax_vmap", reason, units=UNITS))
        else:
            run, compile_s = jax_impl(jax, g)
            timed("jax_vmap", run, f"jax {jax.__version__}: jit(vmap(whole run)) over the "
                  "members of each width, jax.grad, float64, one thread", compile_s=compile_s)
    if harness.selected("numpy_loop", args.impl):
        timed("numpy_loop", numpy_impl(g), f"NumPy {np.__version__}: (20, m) arrays, member "
              "after member, OPENBLAS_NUM_THREADS=1")
    harness.print_ratios(records)
    for r in records:
        if r["seconds"]:
            q = r["quality"]
            print(f"{workload} {r['impl']}: {r['seconds'] * 1e6:.3g} us/member-step, all "
                  f"members {r['seconds'] * n_units:.3f} s, geomean test loss "
                  f"{q['geomean_test_loss']:.6g}, max rel diff vs separate "
                  f"{q['max_test_loss_rel_diff_vs_separate']:.2g}", file=sys.stderr)
    return records


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--budget", type=float, default=30.0,
                    help="seconds of timed repeats per implementation (at least one repeat)")
    ap.add_argument("--impl", nargs="*", default=None, help="only these (prefixes)")
    ap.add_argument("--workload", nargs="*", default=list(WORKLOADS), choices=list(WORKLOADS))
    args, unknown = ap.parse_known_args(argv)
    if unknown:
        print(f"w13_meanfield_grid: ignoring {unknown}", file=sys.stderr)
    ef, why = harness.optional_import("eulerflow")
    for key in args.workload:
        workload = f"w13_meanfield_{key}"
        if ef is None or not hasattr(ef, "meanfield"):
            harness.skip(workload, "eulerflow", why or "no eulerflow.meanfield", units=UNITS)
            continue
        run_workload(workload, Grid(ef, args.steps, WORKLOADS[key]), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
