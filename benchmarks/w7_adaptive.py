"""W7 adaptive: the Arenstorf orbit over one period with dopri5 at rtol = atol = tol.

The restricted three-body problem (Earth-Moon mass ratio mu = 0.012277471) from
Y0 = (0.994, 0, 0, -2.00158510637908252240537862224) over one period
T = 17.0652165601579625588917206249 (Hairer, Norsett & Wanner, Solving ODEs I, II.0);
tol in {1e-6, 1e-9, 1e-12}. Unit: one solve (0 -> T, only the end point requested).
Quality: function evaluations (nfev), steps, and the end-point error |y(T) - Y0|
(Euclidean norm over the 4 components; the orbit is periodic, so this is the global error).

One workload per tolerance: w7_adaptive_tol1e-06, w7_adaptive_tol1e-09, w7_adaptive_tol1e-12.
eulerflow runs the native field ef.fields.Arenstorf() (and, as eulerflow_pyfunc, the same
Python rhs the scipy peers use). Peers: scipy solve_ivp RK45 and DOP853 with a pure-Python
rhs written the way a scipy user writes it; torchdiffeq odeint(method="dopri5") on one
thread; a numba @njit Dormand-Prince 5(4) (Hairer's DOPRI5 controller and initial step);
diffrax Dopri5 / Tsit5 / Dopri8 under jax.jit with a PIDController (compile time apart).

The target "eulerflow reaches RK45's end-point error with no more function evaluations" is
read two ways, both in eulerflow's records: at the same tolerance (nfev and error side by
side), and on the work-precision curve: an untimed sweep of eulerflow over tolerances
1e-3 .. 1e-13 (8 per decade) gives the evaluations eulerflow needs to reach RK45's error at
each tolerance (log-log interpolation at the crossing after which the error stays below it):
``nfev_to_reach_rk45_error`` and its ratio to RK45's nfev. The sweeps of eulerflow and the
scipy methods are also printed as records of workload ``w7_adaptive_work_precision``
(``seconds`` null, ``quality.curve`` = [[tol, nfev, error], ...]).

    python benchmarks/w7_adaptive.py [--tols 1e-6 1e-9 1e-12] [--repeats 7] [--impl ...]
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(_var, None)
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false "
                                   "intra_op_parallelism_threads=1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("JAX_ENABLE_X64", "1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import argparse  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import harness  # noqa: E402
import numpy as np  # noqa: E402

WORKLOAD = "w7_adaptive"
UNITS = "solve"
MU = 0.012277471
MUP = 1.0 - MU
PERIOD = 17.0652165601579625588917206249
Y0 = (0.994, 0.0, 0.0, -2.00158510637908252240537862224)
TOLS = (1e-6, 1e-9, 1e-12)
SWEEP = [10.0 ** (-3 - k / 8) for k in range(81)]  # 1e-3 .. 1e-13
MAX_STEPS = 1_000_000


def workload_name(tol: float) -> str:
    return f"{WORKLOAD}_tol{tol:.0e}"


def rhs(t, y):
    """The Arenstorf field as a scipy user writes it: unpack, return a list."""
    x, yy, vx, vy = y
    d1 = ((x + MU) ** 2 + yy * yy) ** 1.5
    d2 = ((x - MUP) ** 2 + yy * yy) ** 1.5
    return [vx, vy,
            x + 2.0 * vy - MUP * (x + MU) / d1 - MU * (x - MUP) / d2,
            yy - 2.0 * vx - MUP * yy / d1 - MU * yy / d2]


def end_error(y_end) -> float:
    return float(np.linalg.norm(np.asarray(y_end, dtype=np.float64) - np.array(Y0)))


def calibrate(solve, target_s=0.1):
    """How many solves make one timed repeat of about ``target_s`` seconds."""
    start = time.perf_counter()
    solve()
    one = time.perf_counter() - start
    return max(1, min(2000, int(target_s / max(one, 1e-9))))


def nfev_to_reach(curve, target):
    """Evaluations needed to reach error ``target`` on a sweep ``[(tol, nfev, err), ...]``
    ordered from loose to tight: log-log interpolation at the last crossing from above to
    below ``target`` (after it, every tighter run stays below). None if never reached."""
    i = len(curve)
    while i > 0 and curve[i - 1][2] <= target:
        i -= 1
    if i == len(curve):
        return None
    if i == 0:
        return float(curve[0][1])
    (_, n0, e0), (_, n1, e1) = curve[i - 1], curve[i]
    if e0 <= 0 or e1 <= 0 or e0 == e1:
        return float(n1)
    w = (math.log(target) - math.log(e0)) / (math.log(e1) - math.log(e0))
    return float(math.exp(math.log(n0) + w * (math.log(n1) - math.log(n0))))


# ---- implementations: make(tol) -> solve() returning (y_end, stats dict) -----------------

def eulerflow_impl(ef, python_field=False):
    if python_field:
        def func(t, y):
            return np.array(rhs(t, y))
    else:
        func = ef.fields.Arenstorf(MU)
    y0 = np.array(Y0)

    def make(tol):
        def solve():
            ys, info = ef.odeint(func, y0, [0.0, PERIOD], method="dopri5", rtol=tol, atol=tol,
                                 max_steps=MAX_STEPS, full_output=True)
            return ys[-1], info
        return solve

    if python_field:
        return make, "ef.odeint(python rhs -> np.array, method='dopri5', rtol=atol=tol)"
    return make, "ef.odeint(ef.fields.Arenstorf(), Y0, [0, T], method='dopri5', rtol=atol=tol)"


def scipy_impl(solve_ivp, method):
    def make(tol):
        def solve():
            sol = solve_ivp(rhs, (0.0, PERIOD), Y0, method=method, rtol=tol, atol=tol)
            if sol.status != 0:
                raise RuntimeError(sol.message)
            # solve_ivp reports accepted steps only (len(t) - 1); rejected ones are not counted
            return sol.y[:, -1], {"nfev": int(sol.nfev), "naccepted": len(sol.t) - 1}
        return solve
    return make


def torchdiffeq_impl(torch, torchdiffeq):
    counter = [0]

    class Arenstorf(torch.nn.Module):
        def forward(self, t, y):
            counter[0] += 1
            x, yy, vx, vy = y.unbind()
            d1 = ((x + MU) ** 2 + yy * yy) ** 1.5
            d2 = ((x - MUP) ** 2 + yy * yy) ** 1.5
            return torch.stack([vx, vy,
                                x + 2.0 * vy - MUP * (x + MU) / d1 - MU * (x - MUP) / d2,
                                yy - 2.0 * vx - MUP * yy / d1 - MU * yy / d2])

    func = Arenstorf()

    def make(tol):
        def solve():
            torch.set_num_threads(1)
            counter[0] = 0
            with torch.no_grad():
                ys = torchdiffeq.odeint(func, torch.tensor(Y0, dtype=torch.float64),
                                        torch.tensor([0.0, PERIOD], dtype=torch.float64),
                                        method="dopri5", rtol=tol, atol=tol,
                                        options=dict(max_num_steps=MAX_STEPS))
            return ys[-1].numpy().copy(), {"nfev": counter[0]}
        return solve

    return make, (f"torch {torch.__version__}, torchdiffeq {torchdiffeq.__version__} "
                  "odeint(method='dopri5', rtol=atol=tol), set_num_threads(1), no_grad, "
                  "f an nn.Module with unbind/stack; nfev counted in f")


def numba_impl(numba):
    njit = numba.njit
    # Dormand-Prince 5(4): a (row i = stage i+1), b (5th order), e = b - b_hat
    A = np.zeros((7, 7))
    A[1, 0] = 1 / 5
    A[2, :2] = [3 / 40, 9 / 40]
    A[3, :3] = [44 / 45, -56 / 15, 32 / 9]
    A[4, :4] = [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729]
    A[5, :5] = [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656]
    A[6, :6] = [35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84]
    C = np.array([0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0])
    E = np.array([71 / 57600, 0.0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40])

    @njit
    def f(t, y, out):
        x, yy, vx, vy = y[0], y[1], y[2], y[3]
        d1 = ((x + MU) ** 2 + yy * yy) ** 1.5
        d2 = ((x - MUP) ** 2 + yy * yy) ** 1.5
        out[0] = vx
        out[1] = vy
        out[2] = x + 2.0 * vy - MUP * (x + MU) / d1 - MU * (x - MUP) / d2
        out[3] = yy - 2.0 * vx - MUP * yy / d1 - MU * yy / d2

    @njit
    def dopri5(y0, t0, t1, rtol, atol, max_steps):
        n = y0.shape[0]
        y = y0.copy()
        ynew = np.empty(n)
        ytmp = np.empty(n)
        k = np.empty((7, n))
        t = t0
        f(t, y, k[0])
        nfev = 1
        # initial step (Hairer's HINIT, order 5)
        d0 = 0.0
        d1 = 0.0
        for i in range(n):
            sk = atol + rtol * abs(y[i])
            d0 += (y[i] / sk) ** 2
            d1 += (k[0, i] / sk) ** 2
        d0 = math.sqrt(d0 / n)
        d1 = math.sqrt(d1 / n)
        h0 = 1e-6 if (d0 < 1e-5 or d1 < 1e-5) else 0.01 * d0 / d1
        h0 = min(h0, t1 - t0)
        for i in range(n):
            ytmp[i] = y[i] + h0 * k[0, i]
        f(t + h0, ytmp, k[1])
        nfev += 1
        d2 = 0.0
        for i in range(n):
            sk = atol + rtol * abs(y[i])
            d2 += ((k[1, i] - k[0, i]) / sk) ** 2
        d2 = math.sqrt(d2 / n) / h0
        dm = max(d1, d2)
        h1 = max(1e-6, h0 * 1e-3) if dm <= 1e-15 else (0.01 / dm) ** 0.2
        h = min(100.0 * h0, h1, t1 - t0)
        facold = 1e-4
        beta = 0.04
        expo1 = 0.2 - beta * 0.75
        reject = False
        nsteps = 0
        naccept = 0
        while t < t1:
            if nsteps >= max_steps:
                raise RuntimeError("max_steps exceeded")
            if t + 1.01 * h >= t1:
                h = t1 - t
            nsteps += 1
            for s in range(1, 7):
                for i in range(n):
                    acc = 0.0
                    for j in range(s):
                        acc += A[s, j] * k[j, i]
                    ytmp[i] = y[i] + h * acc
                f(t + C[s] * h, ytmp, k[s])
            nfev += 6
            for i in range(n):
                ynew[i] = ytmp[i]  # stage 7 is evaluated at y_{n+1} (FSAL)
            err = 0.0
            for i in range(n):
                sk = atol + rtol * max(abs(y[i]), abs(ynew[i]))
                e = 0.0
                for j in range(7):
                    e += E[j] * k[j, i]
                err += (h * e / sk) ** 2
            err = math.sqrt(err / n)
            fac11 = err ** expo1
            fac = fac11 / facold ** beta
            fac = max(0.1, min(5.0, fac / 0.9))
            hnew = h / fac
            if err <= 1.0:
                facold = max(err, 1e-4)
                naccept += 1
                t = t + h
                for i in range(n):
                    y[i] = ynew[i]
                    k[0, i] = k[6, i]
                if reject:
                    hnew = min(hnew, h)
                reject = False
                h = hnew
            else:
                hnew = h / min(5.0, fac11 / 0.9)
                reject = True
                h = hnew
        return y, nfev, nsteps, naccept

    y0 = np.array(Y0)
    start = time.perf_counter()
    dopri5(y0, 0.0, PERIOD, 1e-6, 1e-6, MAX_STEPS)
    compile_s = time.perf_counter() - start

    def make(tol):
        def solve():
            y, nfev, nsteps, nacc = dopri5(y0, 0.0, PERIOD, tol, tol, MAX_STEPS)
            return y, {"nfev": int(nfev), "nsteps": int(nsteps), "naccepted": int(nacc),
                       "nrejected": int(nsteps - nacc)}
        return solve

    return make, compile_s, (f"numba {numba.__version__} @njit Dormand-Prince 5(4) written for "
                             "this benchmark: FSAL, RMS error norm, Hairer's DOPRI5 step "
                             "controller (beta=0.04, safety 0.9) and HINIT first step")


def diffrax_impl(jax, diffrax, solver_name):
    jnp = jax.numpy

    def vf(t, y, args):
        x, yy, vx, vy = y[0], y[1], y[2], y[3]
        d1 = ((x + MU) ** 2 + yy * yy) ** 1.5
        d2 = ((x - MUP) ** 2 + yy * yy) ** 1.5
        return jnp.stack([vx, vy,
                          x + 2.0 * vy - MUP * (x + MU) / d1 - MU * (x - MUP) / d2,
                          yy - 2.0 * vx - MUP * yy / d1 - MU * yy / d2])

    term = diffrax.ODETerm(vf)
    solver = getattr(diffrax, solver_name)()
    tab = solver.tableau
    per_step = tab.num_stages - (1 if tab.fsal else 0)
    y0 = jnp.array(Y0, dtype=jnp.float64)
    compile_times = {}

    def make(tol):
        @jax.jit
        def run(y0):
            sol = diffrax.diffeqsolve(term, solver, t0=0.0, t1=PERIOD, dt0=None, y0=y0,
                                      saveat=diffrax.SaveAt(t1=True),
                                      stepsize_controller=diffrax.PIDController(rtol=tol,
                                                                                atol=tol),
                                      max_steps=100_000)
            return sol.ys[-1], sol.stats["num_steps"], sol.stats["num_accepted_steps"]

        start = time.perf_counter()
        run(y0)[0].block_until_ready()
        compile_times[tol] = time.perf_counter() - start

        def solve():
            y, nsteps, nacc = run(y0)
            y = np.asarray(y.block_until_ready())
            nsteps, nacc = int(nsteps), int(nacc)
            # evaluations are not counted by diffrax: stages per step (FSAL counted once),
            # + the first evaluation + 2 for the initial step selection (dt0=None)
            return y, {"nfev_est": per_step * nsteps + 1 + 2, "nsteps": nsteps,
                       "naccepted": nacc, "nrejected": nsteps - nacc}
        return solve

    return make, compile_times, (f"diffrax {diffrax.__version__} {solver_name}, "
                                 "PIDController(rtol=atol=tol) (default coefficients: "
                                 "I-controller), dt0=None, SaveAt(t1=True), jax.jit; "
                                 "nfev_est estimated from the step counts")


# ---- driver -------------------------------------------------------------------------------

def sweep(make, tols):
    out = []
    for tol in tols:
        y, info = make(tol)()
        out.append((tol, int(info.get("nfev", info.get("nfev_est", 0))), end_error(y)))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tols", type=float, nargs="*", default=list(TOLS))
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--budget", type=float, default=10.0,
                    help="seconds of timed repeats per implementation and tolerance")
    ap.add_argument("--no-sweep", action="store_true",
                    help="skip the work-precision sweeps (and nfev_to_reach_rk45_error)")
    ap.add_argument("--impl", nargs="*", default=None, help="only these (prefixes)")
    args, unknown = ap.parse_known_args(argv)
    if unknown:
        print(f"{WORKLOAD}: ignoring {unknown}", file=sys.stderr)
    tols = args.tols

    ef, ef_reason = harness.optional_import("eulerflow")
    ivp, ivp_reason = harness.optional_import("scipy.integrate")
    records = []

    # scipy RK45's result at each tolerance (deterministic: the timed runs give the same)
    rk45 = {}
    if ivp is not None:
        for tol in tols:
            y, info = scipy_impl(ivp.solve_ivp, "RK45")(tol)()
            rk45[tol] = (info["nfev"], end_error(y))
    ef_curve = None
    if ef is not None and not args.no_sweep:
        make, _ = eulerflow_impl(ef)
        ef_curve = sweep(make, SWEEP)

    def timed(impl, make, note, tol, *, compile_s=None):
        solve = make(tol)
        reps = calibrate(solve)

        def run():
            out = None
            for _ in range(reps):
                out = solve()
            return out

        def quality(result):
            y, info = result
            figures = {k: int(v) for k, v in info.items()}
            figures["end_error"] = end_error(y)
            if impl == "eulerflow" and tol in rk45:
                n45, e45 = rk45[tol]
                figures["rk45_nfev"] = n45
                figures["rk45_end_error"] = e45
                figures["nfev_ratio_same_tol_vs_rk45"] = info["nfev"] / n45
                if ef_curve is not None:
                    need = nfev_to_reach(ef_curve, e45)
                    figures["nfev_to_reach_rk45_error"] = need
                    figures["nfev_ratio_at_rk45_error"] = None if need is None else need / n45
            if compile_s is not None:
                figures["compile_seconds"] = compile_s
            return figures

        rec = harness.measure(workload_name(tol), impl, run, quality=quality, units=UNITS,
                              n_units=reps, repeats=args.repeats, budget_s=args.budget,
                              notes=f"{note}; tol={tol:g}; {reps} solves per timed repeat")
        records.append(rec)

    impls = []  # (name, make, note, compile seconds per tol or None)
    if harness.any_selected(("eulerflow", "eulerflow_pyfunc"), args.impl):
        if ef is None:
            records.append(harness.skip(WORKLOAD, "eulerflow", ef_reason, units=UNITS))
        else:
            for name, py in (("eulerflow", False), ("eulerflow_pyfunc", True)):
                if harness.selected(name, args.impl):
                    make, note = eulerflow_impl(ef, python_field=py)
                    impls.append((name, make, note, None))
    for method in ("RK45", "DOP853"):
        name = f"scipy_{method}"
        if not harness.selected(name, args.impl):
            continue
        if ivp is None:
            records.append(harness.skip(WORKLOAD, name, ivp_reason, units=UNITS))
            continue
        import scipy

        impls.append((name, scipy_impl(ivp.solve_ivp, method),
                      f"scipy {scipy.__version__} solve_ivp(pure-Python rhs returning a list, "
                      f"method='{method}', rtol=atol=tol)", None))
    if harness.selected("torchdiffeq_dopri5_1thread", args.impl):
        name = "torchdiffeq_dopri5_1thread"
        torch, reason = harness.optional_import("torch")
        tde, reason2 = harness.optional_import("torchdiffeq")
        if torch is None or tde is None:
            records.append(harness.skip(WORKLOAD, name, reason or reason2, units=UNITS))
        else:
            make, note = torchdiffeq_impl(torch, tde)
            impls.append((name, make, note, None))
    if harness.selected("numba_dopri5", args.impl):
        numba, reason = harness.optional_import("numba")
        if numba is None:
            records.append(harness.skip(WORKLOAD, "numba_dopri5", reason, units=UNITS))
        else:
            make, compile_s, note = numba_impl(numba)
            impls.append(("numba_dopri5", make, note, {tol: compile_s for tol in tols}))
    diffrax_names = [f"diffrax_{s.lower()}" for s in ("Dopri5", "Tsit5", "Dopri8")]
    if harness.any_selected(diffrax_names, args.impl):
        jax, reason = harness.optional_import("jax")
        diffrax, reason2 = harness.optional_import("diffrax")
        for solver_name in ("Dopri5", "Tsit5", "Dopri8"):
            name = f"diffrax_{solver_name.lower()}"
            if not harness.selected(name, args.impl):
                continue
            if jax is None or diffrax is None:
                records.append(harness.skip(WORKLOAD, name, reason or reason2, units=UNITS))
                continue
            make, compile_times, note = diffrax_impl(jax, diffrax, solver_name)
            impls.append((name, make, note, compile_times))

    for tol in tols:
        print(f"== {workload_name(tol)}", file=sys.stderr, flush=True)
        start = len(records)
        for name, make, note, compile_times in impls:
            try:
                solve = make(tol)  # diffrax compiles here, before timing
            except Exception as exc:  # noqa: BLE001
                records.append(harness.failed(workload_name(tol), name, exc, units=UNITS))
                continue
            timed(name, lambda _tol, s=solve: s, note, tol,
                  compile_s=None if compile_times is None else compile_times.get(tol))
        harness.print_ratios(records[start:])
        for r in records[start:]:
            q = r["quality"]
            if r["seconds"]:
                nfev = q.get("nfev", q.get("nfev_est"))
                steps = q.get("nsteps", f"{q.get('naccepted')} accepted")
                print(f"  {r['impl']}: nfev {nfev}, steps {steps}, "
                      f"|y(T) - Y0| = {q['end_error']:.3e}", file=sys.stderr)
        ref = next((r for r in records[start:] if r["impl"] == "eulerflow" and r["seconds"]),
                   None)
        if ref is not None and "rk45_nfev" in ref["quality"]:
            q = ref["quality"]
            print(f"  eulerflow vs RK45 at tol {tol:g}: nfev {q['nfev']} vs {q['rk45_nfev']} "
                  f"({q['nfev_ratio_same_tol_vs_rk45']:.3f}x), error {q['end_error']:.3e} vs "
                  f"{q['rk45_end_error']:.3e}", file=sys.stderr)
            if q.get("nfev_to_reach_rk45_error") is not None:
                print(f"  eulerflow needs {q['nfev_to_reach_rk45_error']:.0f} evaluations to "
                      f"reach RK45's error {q['rk45_end_error']:.3e} "
                      f"({q['nfev_ratio_at_rk45_error']:.3f}x RK45's {q['rk45_nfev']})",
                      file=sys.stderr)

    if not args.no_sweep:
        curves = {}
        if ef_curve is not None and harness.selected("eulerflow", args.impl):
            curves["eulerflow"] = ef_curve
        if ivp is not None:
            for method in ("RK45", "DOP853"):
                if harness.selected(f"scipy_{method}", args.impl):
                    curves[f"scipy_{method}"] = sweep(scipy_impl(ivp.solve_ivp, method),
                                                      SWEEP[::2])
        for impl, curve in curves.items():
            records.append(harness.emit(harness.make_record(
                f"{WORKLOAD}_work_precision", impl, seconds=None, units=UNITS, n_units=0,
                repeats=0, quality={"curve": [list(p) for p in curve]},
                notes="work-precision sweep, untimed: curve = [[tol, nfev, end_error], ...]")))
        if curves:
            print("work-precision (untimed sweeps): nfev / end error", file=sys.stderr)
            for impl, curve in curves.items():
                pts = [p for p in curve if any(math.isclose(p[0], t, rel_tol=1e-9)
                                               for t in (1e-4, 1e-6, 1e-8, 1e-10, 1e-12, 1e-13))]
                print(f"  {impl:<14}" + "  ".join(f"{p[0]:.0e}: {p[1]} / {p[2]:.2e}"
                                                   for p in pts), file=sys.stderr)
    return records


if __name__ == "__main__":
    main()
