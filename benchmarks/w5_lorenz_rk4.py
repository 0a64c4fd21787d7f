"""W5 lorenz-rk4 (seed 002): 1,000,000 classic RK4 steps of the Lorenz system.

Lorenz sigma=10, rho=28, beta=8/3 from (1, 1, 1), classic RK4 (1/6, 1/3, 1/3, 1/6), step
h = 1e-3, 1,000,000 steps (t = 0 .. 1000), only the end state kept. Unit: one RK4 step
(4 evaluations of the field). eulerflow runs the native field: ef.odeint(ef.fields.Lorenz(),
y0, [0, 1000], method="rk4", step_size=1e-3). Peers, each written the way its users write
it: a NumPy loop on 3-element arrays, a loop on Python floats, torchdiffeq's odeint
(method="rk4", which is Kutta's 3/8 rule, not the classic tableau) on one thread, numba
@njit, JAX jit (lax.fori_loop) and diffrax (a classic-RK4 ButcherTableau, constant step).
Slow peers (NumPy, torchdiffeq, eulerflow with a Python callable) are timed on fewer steps
(--slow-steps, 20,000 by default) and reported per step; their notes say so.

W5b (workload w5b_lorenz_rk4_batch, --batch 1024, 0 to skip): the same RK4 on 1,024
trajectories at once from (1, 1, 1) + 0.1 N(0, I) (fixed seed), --batch-steps steps (10,000
by default); unit: one trajectory-step. eulerflow integrates y0 of shape (1024, 3) in one
call (its fast path steps 16 trajectories side by side in SIMD registers). Peers: numba with
a loop over the trajectories around the W5 loop (numba_rows), numba with the trajectories as
the inner, vectorizable loop of each step (numba_lanes), and JAX jit(vmap) of the
lax.fori_loop solve (jax_vmap). Quality: the largest distance over the rows of the state at
t = 1 to a per-row reference (eulerflow dopri5 at rtol = atol = 1e-12 on the batch, checked
against scipy DOP853 on a few rows). In both workloads eulerflow_generic_loop is eulerflow
with the native field hidden from the fast path (the private _core.OpaqueField): the stepping
loop that calls the field through a virtual function, for the before/after comparison.

Quality: the distance of the state at t = 1 (after the first 1,000 steps, run apart from
the timed run) to a reference solution (scipy DOP853, rtol = atol = 1e-13; its distance to
eulerflow's dopri5 at 1e-12 is printed as a check of the reference). The end state after
1,000,000 steps is NOT a quality figure: the Lorenz flow is chaotic (largest Lyapunov
exponent ~0.9), so a rounding difference of 1e-16 grows by e^(0.9 t) and two correct
implementations whose floating-point operations differ in order (or in FMA contraction)
reach unrelated points of the attractor long before t = 1000. The records still give each
full run's end state, its distance to eulerflow's, and, for the fast implementations, a
divergence profile: the distance to eulerflow's state after T/h steps for T = 1 .. 1000.

    python benchmarks/w5_lorenz_rk4.py [--steps 1000000] [--slow-steps 20000] [--repeats 5]
                                       [--batch 1024] [--batch-steps 10000]
                                       [--impl eulerflow numba ...]
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

WORKLOAD = "w5_lorenz_rk4"
UNITS = "step"
WORKLOAD_BATCH = "w5b_lorenz_rk4_batch"
UNITS_BATCH = "trajectory-step"
BATCH_SEED = 5
SIGMA, RHO, BETA = 10.0, 28.0, 8.0 / 3.0
Y0 = (1.0, 1.0, 1.0)
H = 1e-3
STEPS = 1_000_000
QUALITY_STEPS = 1_000  # t = 1
PROFILE_T = (1, 2, 5, 10, 20, 30, 40, 50, 100, 200, 500, 1000)
# flops of one RK4 step: 4 field evaluations (2 + 3 + 3 = 8 flops each), 3 stage states
# (3 x 3 multiply-adds) and the weighted sum (3 x 7): 32 + 18 + 21
FLOPS_PER_STEP = 71.0


def lorenz_np(y):
    x, yy, z = y
    return np.array([SIGMA * (yy - x), x * (RHO - z) - yy, x * yy - BETA * z])


def reference_t1():
    """The reference state at t = 1 (scipy DOP853, rtol = atol = 1e-13) and a note."""
    from scipy.integrate import solve_ivp

    sol = solve_ivp(lambda t, y: lorenz_np(y), (0.0, QUALITY_STEPS * H), np.array(Y0),
                    method="DOP853", rtol=1e-13, atol=1e-13)
    return sol.y[:, -1].copy(), f"reference: scipy DOP853 rtol=atol=1e-13 ({sol.nfev} evaluations)"


# ---- implementations: run(n) -> end state after n steps (np.ndarray of 3 floats) -----------

def generic_loop_field(ef):
    """The native Lorenz field hidden from odeint's fixed-step fast path (a private wrapper
    of eulerflow's core): the generic RK loop, which calls the field through a virtual
    function per stage - eulerflow before the fast path, for comparison."""
    from eulerflow import _core

    class GenericLoopLorenz(ef.fields.NativeField):
        def __init__(self):
            self._core_field = _core.OpaqueField(ef.fields.Lorenz(SIGMA, RHO, BETA)._core_field)

    return GenericLoopLorenz()


def eulerflow_impl(ef, python_field=False, generic_loop=False):
    field = generic_loop_field(ef) if generic_loop else ef.fields.Lorenz(SIGMA, RHO, BETA)
    if python_field:
        def func(t, y):
            return lorenz_np(y)
    else:
        func = field
    last_info = {}

    def run(n):
        ys, info = ef.odeint(func, np.array(Y0), [0.0, n * H], method="rk4", step_size=H,
                             max_steps=n + 10, full_output=True)
        last_info.update(info)
        if info["nsteps"] != n:
            raise RuntimeError(f"eulerflow took {info['nsteps']} steps for {n}")
        return ys[-1].copy()

    if python_field:
        return run, "ef.odeint(python f(t, y) -> np.array(3), method='rk4', step_size=1e-3)"
    if generic_loop:
        return run, ("ef.odeint with the native Lorenz field hidden from the fixed-step fast "
                     "path (private _core.OpaqueField): the generic RK loop, a virtual call of "
                     "the field per stage")
    return run, ("ef.odeint(ef.fields.Lorenz(), y0, [0, n*h], method='rk4', step_size=1e-3): "
                 "native field, one call")


def numpy_loop_impl():
    def run(n):
        y = np.array(Y0)
        h = H
        for _ in range(n):
            k1 = lorenz_np(y)
            k2 = lorenz_np(y + 0.5 * h * k1)
            k3 = lorenz_np(y + 0.5 * h * k2)
            k4 = lorenz_np(y + h * k3)
            y = y + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        return y

    return run, ("NumPy loop: y a 3-element array, f returns np.array([...]), "
                 "y += h/6 (k1 + 2 k2 + 2 k3 + k4)")


def python_floats_impl():
    def run(n):
        x, y, z = Y0
        h = H
        h2, h6 = 0.5 * h, h / 6.0
        s, r, b = SIGMA, RHO, BETA
        for _ in range(n):
            k1x, k1y, k1z = s * (y - x), x * (r - z) - y, x * y - b * z
            x2, y2, z2 = x + h2 * k1x, y + h2 * k1y, z + h2 * k1z
            k2x, k2y, k2z = s * (y2 - x2), x2 * (r - z2) - y2, x2 * y2 - b * z2
            x3, y3, z3 = x + h2 * k2x, y + h2 * k2y, z + h2 * k2z
            k3x, k3y, k3z = s * (y3 - x3), x3 * (r - z3) - y3, x3 * y3 - b * z3
            x4, y4, z4 = x + h * k3x, y + h * k3y, z + h * k3z
            k4x, k4y, k4z = s * (y4 - x4), x4 * (r - z4) - y4, x4 * y4 - b * z4
            x += h6 * (k1x + 2.0 * k2x + 2.0 * k3x + k4x)
            y += h6 * (k1y + 2.0 * k2y + 2.0 * k3y + k4y)
            z += h6 * (k1z + 2.0 * k2z + 2.0 * k3z + k4z)
        return np.array([x, y, z])

    return run, "pure Python loop on float scalars (no NumPy), classic RK4 written out"


def numba_impl(numba):
    njit = numba.njit

    @njit(cache=False)
    def rk4(n, x, y, z, h, s, r, b):
        h2, h6 = 0.5 * h, h / 6.0
        for _ in range(n):
            k1x, k1y, k1z = s * (y - x), x * (r - z) - y, x * y - b * z
            x2, y2, z2 = x + h2 * k1x, y + h2 * k1y, z + h2 * k1z
            k2x, k2y, k2z = s * (y2 - x2), x2 * (r - z2) - y2, x2 * y2 - b * z2
            x3, y3, z3 = x + h2 * k2x, y + h2 * k2y, z + h2 * k2z
            k3x, k3y, k3z = s * (y3 - x3), x3 * (r - z3) - y3, x3 * y3 - b * z3
            x4, y4, z4 = x + h * k3x, y + h * k3y, z + h * k3z
            k4x, k4y, k4z = s * (y4 - x4), x4 * (r - z4) - y4, x4 * y4 - b * z4
            x += h6 * (k1x + 2.0 * k2x + 2.0 * k3x + k4x)
            y += h6 * (k1y + 2.0 * k2y + 2.0 * k3y + k4y)
            z += h6 * (k1z + 2.0 * k2z + 2.0 * k3z + k4z)
        return x, y, z

    start = time.perf_counter()
    rk4(1, *Y0, H, SIGMA, RHO, BETA)
    compile_s = time.perf_counter() - start

    def run(n):
        return np.array(rk4(n, *Y0, H, SIGMA, RHO, BETA))

    return run, compile_s, (f"numba {numba.__version__} @njit loop on float scalars "
                            "(same code as python_floats), no fastmath")


def jax_impl(jax):
    jnp = jax.numpy
    lax = jax.lax

    def f(y):
        x, yy, z = y[0], y[1], y[2]
        return jnp.stack([SIGMA * (yy - x), x * (RHO - z) - yy, x * yy - BETA * z])

    @jax.jit
    def solve(y0, n):
        def body(_, y):
            k1 = f(y)
            k2 = f(y + 0.5 * H * k1)
            k3 = f(y + 0.5 * H * k2)
            k4 = f(y + H * k3)
            return y + H / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)

        return lax.fori_loop(0, n, body, y0)

    y0 = jnp.array(Y0, dtype=jnp.float64)
    start = time.perf_counter()
    solve(y0, 1).block_until_ready()
    compile_s = time.perf_counter() - start

    def run(n):
        return np.asarray(solve(y0, n).block_until_ready())

    return run, compile_s, (f"jax {jax.__version__} jit, lax.fori_loop (n traced, one compile), "
                            "float64, XLA on one thread")


def diffrax_impl(jax, diffrax):
    jnp = jax.numpy

    class ClassicRK4(diffrax.AbstractERK):
        tableau = diffrax.ButcherTableau(
            c=np.array([0.5, 0.5, 1.0]),
            b_sol=np.array([1 / 6, 1 / 3, 1 / 3, 1 / 6]),
            b_error=np.zeros(4),
            a_lower=(np.array([0.5]), np.array([0.0, 0.5]), np.array([0.0, 0.0, 1.0])),
        )
        interpolation_cls = diffrax.ThirdOrderHermitePolynomialInterpolation.from_k

        def order(self, terms):
            return 4

    def f(t, y, args):
        x, yy, z = y[0], y[1], y[2]
        return jnp.stack([SIGMA * (yy - x), x * (RHO - z) - yy, x * yy - BETA * z])

    term = diffrax.ODETerm(f)
    solver = ClassicRK4()
    solves = {}

    def solve_fn(n):
        if n not in solves:  # t1 and max_steps are part of the compiled solve
            @jax.jit
            def solve(y0):
                sol = diffrax.diffeqsolve(term, solver, t0=0.0, t1=n * H, dt0=H, y0=y0,
                                          saveat=diffrax.SaveAt(t1=True),
                                          stepsize_controller=diffrax.ConstantStepSize(),
                                          max_steps=n + 16)
                return sol.ys[-1], sol.stats["num_steps"]

            solves[n] = solve
        return solves[n]

    y0 = jnp.array(Y0, dtype=jnp.float64)
    steps = {}

    def run(n):
        y, nsteps = solve_fn(n)(y0)
        y = np.asarray(y.block_until_ready())
        steps[n] = int(nsteps)
        return y

    def compile_for(n):
        start = time.perf_counter()
        solve_fn(n)(y0)[0].block_until_ready()
        return time.perf_counter() - start

    return run, compile_for, steps, (
        f"diffrax {diffrax.__version__} diffeqsolve, a classic-RK4 ButcherTableau "
        "(diffrax has no RK4), ConstantStepSize dt0=1e-3, SaveAt(t1=True), jit")


def torchdiffeq_impl(torch, torchdiffeq):
    class Lorenz(torch.nn.Module):
        def forward(self, t, y):
            x, yy, z = y.unbind()
            return torch.stack([SIGMA * (yy - x), x * (RHO - z) - yy, x * yy - BETA * z])

    func = Lorenz()

    def run(n):
        torch.set_num_threads(1)
        with torch.no_grad():
            y0 = torch.tensor(Y0, dtype=torch.float64)
            t = torch.tensor([0.0, n * H], dtype=torch.float64)
            ys = torchdiffeq.odeint(func, y0, t, method="rk4", options=dict(step_size=H))
        return ys[-1].numpy().copy()

    return run, (f"torch {torch.__version__}, torchdiffeq {torchdiffeq.__version__} "
                 "odeint(method='rk4' (Kutta's 3/8 rule), options=dict(step_size=1e-3)), "
                 "set_num_threads(1), no_grad, f an nn.Module with unbind/stack")


# ---- W5b: many trajectories at once: run(n) -> (batch, 3) states after n steps -------------

def batch_y0(batch):
    rng = np.random.default_rng(BATCH_SEED)
    return np.array(Y0) + 0.1 * rng.standard_normal((batch, 3))


def reference_batch_t1(ef, y0):
    """Per-row states at t = 1: eulerflow dopri5 at rtol = atol = 1e-12 on the whole batch,
    and a note with its gap to scipy DOP853 (rtol = atol = 1e-13) on a few rows."""
    ys = ef.odeint(ef.fields.Lorenz(SIGMA, RHO, BETA), y0, [0.0, QUALITY_STEPS * H],
                   method="dopri5", rtol=1e-12, atol=1e-12, max_steps=10**7)
    ref = ys[-1].copy()
    note = "reference: eulerflow dopri5 rtol=atol=1e-12 on the batch"
    try:
        from scipy.integrate import solve_ivp

        rows = np.linspace(0, len(y0) - 1, 4).astype(int)
        gap = max(np.linalg.norm(solve_ivp(lambda t, y: lorenz_np(y), (0.0, QUALITY_STEPS * H),
                                           y0[r], method="DOP853", rtol=1e-13,
                                           atol=1e-13).y[:, -1] - ref[r]) for r in rows)
        note += f" (rows {rows.tolist()}: {gap:.2e} from scipy DOP853 rtol=atol=1e-13)"
    except Exception as exc:  # noqa: BLE001 - scipy missing: no check of the reference
        note += f" (no scipy check: {type(exc).__name__})"
    return ref, note


def eulerflow_batch_impl(ef, y0, generic_loop=False):
    field = generic_loop_field(ef) if generic_loop else ef.fields.Lorenz(SIGMA, RHO, BETA)

    def run(n):
        ys, info = ef.odeint(field, y0, [0.0, n * H], method="rk4", step_size=H,
                             max_steps=n + 10, full_output=True)
        if info["nsteps"] != n:
            raise RuntimeError(f"eulerflow took {info['nsteps']} steps for {n}")
        return ys[-1].copy()

    if generic_loop:
        return run, ("ef.odeint(y0 (batch, 3)) with the native field hidden from the fast path "
                     "(private _core.OpaqueField): the generic RK loop on the whole batch")
    return run, ("ef.odeint(ef.fields.Lorenz(), y0 (batch, 3), [0, n*h], method='rk4', "
                 "step_size=1e-3): one call, 16 trajectories per SIMD block")


def numba_batch_impls(numba, y0):
    """numba_rows: a loop over the trajectories around the W5 loop (each trajectory's steps
    form one dependent chain); numba_lanes: the steps outside, the trajectories the inner
    loop, which LLVM can vectorize (no fastmath either way)."""
    njit = numba.njit

    @njit(cache=False)
    def rows(n, Y, h, s, r, b):
        out = np.empty_like(Y)
        h2, h6 = 0.5 * h, h / 6.0
        for i in range(Y.shape[0]):
            x, y, z = Y[i, 0], Y[i, 1], Y[i, 2]
            for _ in range(n):
                k1x, k1y, k1z = s * (y - x), x * (r - z) - y, x * y - b * z
                x2, y2, z2 = x + h2 * k1x, y + h2 * k1y, z + h2 * k1z
                k2x, k2y, k2z = s * (y2 - x2), x2 * (r - z2) - y2, x2 * y2 - b * z2
                x3, y3, z3 = x + h2 * k2x, y + h2 * k2y, z + h2 * k2z
                k3x, k3y, k3z = s * (y3 - x3), x3 * (r - z3) - y3, x3 * y3 - b * z3
                x4, y4, z4 = x + h * k3x, y + h * k3y, z + h * k3z
                k4x, k4y, k4z = s * (y4 - x4), x4 * (r - z4) - y4, x4 * y4 - b * z4
                x += h6 * (k1x + 2.0 * k2x + 2.0 * k3x + k4x)
                y += h6 * (k1y + 2.0 * k2y + 2.0 * k3y + k4y)
                z += h6 * (k1z + 2.0 * k2z + 2.0 * k3z + k4z)
            out[i, 0], out[i, 1], out[i, 2] = x, y, z
        return out

    @njit(cache=False)
    def lanes(n, X, Y, Z, h, s, r, b):
        h2, h6 = 0.5 * h, h / 6.0
        for _ in range(n):
            for i in range(X.shape[0]):
                x, y, z = X[i], Y[i], Z[i]
                k1x, k1y, k1z = s * (y - x), x * (r - z) - y, x * y - b * z
                x2, y2, z2 = x + h2 * k1x, y + h2 * k1y, z + h2 * k1z
                k2x, k2y, k2z = s * (y2 - x2), x2 * (r - z2) - y2, x2 * y2 - b * z2
                x3, y3, z3 = x + h2 * k2x, y + h2 * k2y, z + h2 * k2z
                k3x, k3y, k3z = s * (y3 - x3), x3 * (r - z3) - y3, x3 * y3 - b * z3
                x4, y4, z4 = x + h * k3x, y + h * k3y, z + h * k3z
                k4x, k4y, k4z = s * (y4 - x4), x4 * (r - z4) - y4, x4 * y4 - b * z4
                X[i] = x + h6 * (k1x + 2.0 * k2x + 2.0 * k3x + k4x)
                Y[i] = y + h6 * (k1y + 2.0 * k2y + 2.0 * k3y + k4y)
                Z[i] = z + h6 * (k1z + 2.0 * k2z + 2.0 * k3z + k4z)

    start = time.perf_counter()
    rows(1, y0, H, SIGMA, RHO, BETA)
    compile_rows = time.perf_counter() - start

    def run_rows(n):
        return rows(n, y0, H, SIGMA, RHO, BETA)

    cols = [np.ascontiguousarray(y0[:, k]) for k in range(3)]
    start = time.perf_counter()
    lanes(1, *[c.copy() for c in cols], H, SIGMA, RHO, BETA)
    compile_lanes = time.perf_counter() - start

    def run_lanes(n):
        X, Y, Z = (c.copy() for c in cols)
        lanes(n, X, Y, Z, H, SIGMA, RHO, BETA)
        return np.stack([X, Y, Z], axis=1)

    version = numba.__version__
    return {
        "numba_rows": (run_rows, compile_rows,
                       f"numba {version} @njit: for each trajectory, the W5 loop (no fastmath)"),
        "numba_lanes": (run_lanes, compile_lanes,
                        f"numba {version} @njit: for each step, a loop over the trajectories "
                        "(x, y, z in three arrays; vectorizable, no fastmath)"),
    }


def jax_batch_impl(jax, y0):
    jnp = jax.numpy
    lax = jax.lax

    def f(y):
        x, yy, z = y[0], y[1], y[2]
        return jnp.stack([SIGMA * (yy - x), x * (RHO - z) - yy, x * yy - BETA * z])

    def solve_one(y, n):
        def body(_, y):
            k1 = f(y)
            k2 = f(y + 0.5 * H * k1)
            k3 = f(y + 0.5 * H * k2)
            k4 = f(y + H * k3)
            return y + H / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)

        return lax.fori_loop(0, n, body, y)

    solve = jax.jit(jax.vmap(solve_one, in_axes=(0, None)))
    yb = jnp.asarray(y0, dtype=jnp.float64)
    start = time.perf_counter()
    solve(yb, 1).block_until_ready()
    compile_s = time.perf_counter() - start

    def run(n):
        return np.asarray(solve(yb, n).block_until_ready())

    return run, compile_s, (f"jax {jax.__version__} jit(vmap(solve)), solve a lax.fori_loop "
                            "over RK4 steps of one state (n traced), float64, one thread")


def run_batch(args, ef, ef_reason):
    """W5b: the records of every implementation on --batch trajectories."""
    batch, n = args.batch, args.batch_steps
    y0 = batch_y0(batch)
    records = []
    if ef is None:
        records.append(harness.skip(WORKLOAD_BATCH, "eulerflow", ef_reason, units=UNITS_BATCH))
        return records
    ref, ref_note = reference_batch_t1(ef, y0)
    print(f"{WORKLOAD_BATCH}: {batch} trajectories, {n} steps each; {ref_note}", file=sys.stderr)
    at_t1 = {}

    def timed(impl, run, note, compile_s=None):
        def quality(end):
            y1 = run(QUALITY_STEPS)
            at_t1[impl] = y1
            figures = {"err_t1_max": float(np.max(np.linalg.norm(y1 - ref, axis=1))),
                       "batch": batch, "steps_timed": n}
            if "eulerflow" in at_t1 and impl != "eulerflow":
                figures["diff_t1_vs_eulerflow_max"] = float(
                    np.max(np.linalg.norm(y1 - at_t1["eulerflow"], axis=1)))
            if compile_s is not None:
                figures["compile_seconds"] = compile_s
            return figures

        records.append(harness.measure(
            WORKLOAD_BATCH, impl, lambda: run(n), quality=quality, units=UNITS_BATCH,
            n_units=n * batch, repeats=args.repeats, warmup=lambda: run(min(n, 100)),
            budget_s=args.budget, notes="; ".join([note, ref_note]),
            flops_per_unit=FLOPS_PER_STEP))

    if harness.selected("eulerflow", args.impl):
        timed("eulerflow", *eulerflow_batch_impl(ef, y0))
    if harness.selected("eulerflow_generic_loop", args.impl):
        timed("eulerflow_generic_loop", *eulerflow_batch_impl(ef, y0, generic_loop=True))
    if harness.any_selected(("numba_rows", "numba_lanes"), args.impl):
        numba, reason = harness.optional_import("numba")
        for impl in ("numba_rows", "numba_lanes"):
            if not harness.selected(impl, args.impl):
                continue
            if numba is None:
                records.append(harness.skip(WORKLOAD_BATCH, impl, reason, units=UNITS_BATCH))
            else:
                run, compile_s, note = numba_batch_impls(numba, y0)[impl]
                timed(impl, run, note, compile_s)
    if harness.selected("jax_vmap", args.impl):
        jax, reason = harness.optional_import("jax")
        if jax is None:
            records.append(harness.skip(WORKLOAD_BATCH, "jax_vmap", reason, units=UNITS_BATCH))
        else:
            run, compile_s, note = jax_batch_impl(jax, y0)
            timed("jax_vmap", run, note, compile_s)
    harness.print_ratios(records)
    for r in records:
        if r["seconds"] and "err_t1_max" in r["quality"]:
            print(f"{r['impl']}: max over rows |y(t=1) - ref| = {r['quality']['err_t1_max']:.3e}",
                  file=sys.stderr)
    return records


# ---- driver -------------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=STEPS)
    ap.add_argument("--slow-steps", type=int, default=20_000,
                    help="steps timed for the slow peers (NumPy, torchdiffeq, Python field)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--budget", type=float, default=20.0,
                    help="seconds of timed repeats per implementation (at least one repeat)")
    ap.add_argument("--no-profile", action="store_true",
                    help="skip the divergence profile (distance to eulerflow at T = 1..1000)")
    ap.add_argument("--batch", type=int, default=1024,
                    help=f"trajectories of {WORKLOAD_BATCH} (0: skip that workload)")
    ap.add_argument("--batch-steps", type=int, default=10_000,
                    help=f"steps per trajectory timed in {WORKLOAD_BATCH}")
    ap.add_argument("--impl", nargs="*", default=None, help="only these (prefixes)")
    args, unknown = ap.parse_known_args(argv)
    if unknown:
        print(f"{WORKLOAD}: ignoring {unknown}", file=sys.stderr)
    steps = args.steps
    slow_steps = min(args.slow_steps, steps)

    try:
        ref, ref_note = reference_t1()
    except Exception as exc:  # noqa: BLE001 - scipy missing: fall back to eulerflow dopri5
        ref, ref_note = None, f"no scipy reference ({type(exc).__name__})"
    ef, ef_reason = harness.optional_import("eulerflow")
    if ef is not None:
        ys = ef.odeint(ef.fields.Lorenz(SIGMA, RHO, BETA), np.array(Y0), [0.0, QUALITY_STEPS * H],
                       method="dopri5", rtol=1e-12, atol=1e-12)
        if ref is None:
            ref, ref_note = ys[-1].copy(), "reference: eulerflow dopri5 rtol=atol=1e-12"
        else:
            gap = np.linalg.norm(ys[-1] - ref)
            ref_note += f"; eulerflow dopri5 1e-12 differs from it by {gap:.2e}"
    print(f"{WORKLOAD}: {ref_note}", file=sys.stderr)

    records = []
    finals = {}      # impl -> end state after `steps` steps (full runs only)
    at_t1 = {}       # impl -> state after 1,000 steps
    profiles = {}    # impl -> {T: state after T/h steps}
    profile_t = [T for T in PROFILE_T if T / H <= steps]

    def timed(impl, run, note, *, slow=False, compile_s=None, profile=False, extra=None):
        n = slow_steps if slow else steps

        def quality(end):
            y1 = run(QUALITY_STEPS)
            at_t1[impl] = y1
            figures = {"err_t1": float(np.linalg.norm(y1 - ref)) if ref is not None else None,
                       "steps_timed": n}
            if "eulerflow" in at_t1 and impl != "eulerflow":
                figures["diff_t1_vs_eulerflow"] = float(np.linalg.norm(y1 - at_t1["eulerflow"]))
            if n == steps:
                finals[impl] = end
                figures.update(end_x=float(end[0]), end_y=float(end[1]), end_z=float(end[2]))
                if "eulerflow" in finals and impl != "eulerflow":
                    figures["end_dist_vs_eulerflow"] = float(
                        np.linalg.norm(end - finals["eulerflow"]))
                if profile and not args.no_profile:
                    profiles[impl] = {T: (end if T * round(1 / H) == steps
                                          else run(int(round(T / H)))) for T in profile_t}
                    base = profiles.get("eulerflow")
                    if base is not None and impl != "eulerflow":
                        figures["divergence_vs_eulerflow"] = {
                            str(T): float(np.linalg.norm(profiles[impl][T] - base[T]))
                            for T in profile_t}
            if compile_s is not None:
                figures["compile_seconds"] = compile_s
            if extra:
                figures.update(extra())
            return figures

        full_note = note
        if slow:
            full_note += (f"; SLOW PEER: timed on {n} steps (t = 0..{n * H:g}), not {steps}; "
                          "per-step time")
        rec = harness.measure(WORKLOAD, impl, lambda: run(n), quality=quality, units=UNITS,
                              n_units=n, repeats=args.repeats,
                              warmup=lambda: run(min(n, 1000)), budget_s=args.budget,
                              notes="; ".join([full_note, ref_note]),
                              flops_per_unit=FLOPS_PER_STEP)
        records.append(rec)

    if harness.any_selected(("eulerflow", "eulerflow_generic_loop", "eulerflow_pyfunc"), args.impl):
        if ef is None:
            records.append(harness.skip(WORKLOAD, "eulerflow", ef_reason, units=UNITS))
        else:
            if harness.selected("eulerflow", args.impl):
                run, note = eulerflow_impl(ef)
                timed("eulerflow", run, note, profile=True)
            if harness.selected("eulerflow_generic_loop", args.impl):
                run, note = eulerflow_impl(ef, generic_loop=True)
                timed("eulerflow_generic_loop", run, note)
            if harness.selected("eulerflow_pyfunc", args.impl):
                run, note = eulerflow_impl(ef, python_field=True)
                timed("eulerflow_pyfunc", run, note, slow=True)

    if harness.selected("numpy_loop", args.impl):
        run, note = numpy_loop_impl()
        timed("numpy_loop", run, note, slow=True)

    if harness.selected("python_floats", args.impl):
        run, note = python_floats_impl()
        timed("python_floats", run, note, profile=True)

    if harness.selected("torchdiffeq_rk4_1thread", args.impl):
        name = "torchdiffeq_rk4_1thread"
        torch, reason = harness.optional_import("torch")
        tde, reason2 = harness.optional_import("torchdiffeq")
        if torch is None or tde is None:
            records.append(harness.skip(WORKLOAD, name, reason or reason2, units=UNITS))
        else:
            run, note = torchdiffeq_impl(torch, tde)
            timed(name, run, note, slow=True)

    if harness.selected("numba", args.impl):
        numba, reason = harness.optional_import("numba")
        if numba is None:
            records.append(harness.skip(WORKLOAD, "numba", reason, units=UNITS))
        else:
            run, compile_s, note = numba_impl(numba)
            timed("numba", run, note, compile_s=compile_s, profile=True)

    if harness.any_selected(("jax_jit", "diffrax_rk4"), args.impl):
        jax, reason = harness.optional_import("jax")
        if harness.selected("jax_jit", args.impl):
            if jax is None:
                records.append(harness.skip(WORKLOAD, "jax_jit", reason, units=UNITS))
            else:
                run, compile_s, note = jax_impl(jax)
                timed("jax_jit", run, note, compile_s=compile_s, profile=True)
        if harness.selected("diffrax_rk4", args.impl):
            diffrax, reason2 = harness.optional_import("diffrax")
            if jax is None or diffrax is None:
                records.append(harness.skip(WORKLOAD, "diffrax_rk4", reason or reason2,
                                            units=UNITS))
            else:
                run, compile_for, nsteps, note = diffrax_impl(jax, diffrax)
                compile_s = compile_for(steps)
                for n in (1000, QUALITY_STEPS):
                    compile_for(n)  # warm-up and quality runs: compiled before timing

                def extra():
                    return {"diffrax_num_steps": nsteps.get(steps)}

                timed("diffrax_rk4", run, note + "; one compile per n (t1, max_steps)",
                      compile_s=compile_s, extra=extra)

    harness.print_ratios(records)
    for r in records:
        q = r["quality"]
        if r["seconds"] and q.get("err_t1") is not None:
            line = f"{r['impl']}: |y(t=1) - ref| = {q['err_t1']:.3e}"
            if "diff_t1_vs_eulerflow" in q:
                line += f", |y(t=1) - eulerflow's| = {q['diff_t1_vs_eulerflow']:.3e}"
            if "end_dist_vs_eulerflow" in q:
                line += (f", end state (t={steps * H:g}) {q['end_dist_vs_eulerflow']:.3g} "
                         "from eulerflow's")
            print(line, file=sys.stderr)
    if profiles.get("eulerflow") is not None and len(profiles) > 1:
        print("divergence from eulerflow's trajectory (distance after T/h steps):",
              file=sys.stderr)
        width = max(len(k) for k in profiles) + 2
        print("  " + "T".ljust(width) + "".join(f"{T:>10}" for T in profile_t), file=sys.stderr)
        for impl, prof in profiles.items():
            if impl == "eulerflow":
                continue
            print("  " + impl.ljust(width) + "".join(
                f"{np.linalg.norm(prof[T] - profiles['eulerflow'][T]):>10.2e}" for T in profile_t),
                file=sys.stderr)
    if args.batch > 0:
        records += run_batch(args, ef, ef_reason)
    return records


if __name__ == "__main__":
    main()
