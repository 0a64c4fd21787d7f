"""W7b dopri8: the Arenstorf orbit over one period at rtol = atol = 1e-12 with eighth-order methods.

The problem of W7 (w7_adaptive.py: the restricted three-body problem, mu = 0.012277471,
from Y0 = (0.994, 0, 0, -2.00158510637908252240537862224) over one period
T = 17.0652165601579625588917206249; Hairer, Norsett & Wanner, Solving ODEs I, II.0).
Unit: one solve (0 -> T, only the end point requested). Quality: the end-point error
|y(T) - Y0| (Euclidean norm; the orbit is periodic, so this is the global error), function
evaluations (nfev; diffrax's are estimated from its step counts) and steps.

Implementations: eulerflow ``method="dopri8"`` (Hairer's DOP853) on the native field
ef.fields.Arenstorf() (impl ``eulerflow``) and on the same pure-Python rhs scipy uses
(``eulerflow_pyfunc``); eulerflow dopri5 for context; scipy solve_ivp DOP853 with that
Python rhs; diffrax Dopri8 and Tsit5 under jax.jit in float64 (compile time reported apart,
as ``compile_seconds``).

The target: reach scipy DOP853's end-point error at rtol 1e-12 at least 10x faster than
diffrax's Tsit5 and Dopri8. Every record at tolerance tol carries scipy DOP853's error at
that tolerance (``scipy_dop853_end_error``) and whether its own error reaches it. The
diffrax solvers run twice: at tol (``diffrax_tsit5``, ``diffrax_dopri8``), and at the
loosest tolerance tol * 10^(-k/4) that reaches scipy DOP853's error
(``diffrax_tsit5_at_dop853_error``, ..., with ``tol_used``): the target compares the time
to reach that error.

    python benchmarks/w7b_dopri8.py [--tols 1e-12] [--repeats 7] [--impl ...]
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

import harness  # noqa: E402
import numpy as np  # noqa: E402
import w7_adaptive as w7  # noqa: E402 - the problem, scipy's and diffrax's set-ups

WORKLOAD = "w7b_dopri8"
UNITS = "solve"
TOLS = (1e-12,)


def workload_name(tol: float) -> str:
    return f"{WORKLOAD}_tol{tol:.0e}"


def eulerflow_impl(ef, method, python_field=False):
    if python_field:
        def func(t, y):
            return np.array(w7.rhs(t, y))
    else:
        func = ef.fields.Arenstorf(w7.MU)
    y0 = np.array(w7.Y0)

    def make(tol):
        def solve():
            ys, info = ef.odeint(func, y0, [0.0, w7.PERIOD], method=method, rtol=tol, atol=tol,
                                 max_steps=w7.MAX_STEPS, full_output=True)
            return ys[-1], info
        return solve

    field = "python rhs -> np.array" if python_field else "ef.fields.Arenstorf()"
    return make, f"ef.odeint({field}, Y0, [0, T], method='{method}', rtol=atol=tol)"


def at_error(make, compile_times, targets):
    """``make`` at the loosest tolerance ``tol * 10**(-k/4)``, k = 0 .. 8, whose end-point
    error reaches ``targets[tol]`` (scipy DOP853's error at ``tol``); returns the new
    ``make`` and a function giving the extra quality figures (the tolerance used and its
    compile time) of a tolerance."""
    used = {}

    def make_at(tol):
        for k in range(9):
            tol_k = tol * 10.0 ** (-k / 4)
            solve = make(tol_k)
            y, _ = solve()
            if w7.end_error(y) <= targets[tol]:
                used[tol] = tol_k
                return solve
        raise RuntimeError(f"no tolerance down to {tol * 1e-2:g} reaches {targets[tol]:.3g}")

    def extra(tol):
        return {"tol_used": used.get(tol), "compile_seconds": compile_times.get(used.get(tol))}

    return make_at, extra


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tols", type=float, nargs="*", default=list(TOLS))
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--budget", type=float, default=10.0,
                    help="seconds of timed repeats per implementation and tolerance")
    ap.add_argument("--impl", nargs="*", default=None, help="only these (prefixes)")
    args, unknown = ap.parse_known_args(argv)
    if unknown:
        print(f"{WORKLOAD}: ignoring {unknown}", file=sys.stderr)

    ef, ef_reason = harness.optional_import("eulerflow")
    ivp, ivp_reason = harness.optional_import("scipy.integrate")
    records = []

    # scipy DOP853's error at each tolerance: the error to reach
    dop853 = {}
    if ivp is not None:
        for tol in args.tols:
            y, info = w7.scipy_impl(ivp.solve_ivp, "DOP853")(tol)()
            dop853[tol] = (info["nfev"], w7.end_error(y))

    impls = []  # (name, make, note, extra quality figures of a tolerance or None)
    for name, method, py in (("eulerflow", "dopri8", False), ("eulerflow_pyfunc", "dopri8", True),
                             ("eulerflow_dopri5", "dopri5", False)):
        if not harness.selected(name, args.impl):
            continue
        if ef is None:
            records.append(harness.skip(WORKLOAD, name, ef_reason, units=UNITS))
            continue
        make, note = eulerflow_impl(ef, method, python_field=py)
        impls.append((name, make, note, None))
    if harness.selected("scipy_DOP853", args.impl):
        if ivp is None:
            records.append(harness.skip(WORKLOAD, "scipy_DOP853", ivp_reason, units=UNITS))
        else:
            import scipy

            impls.append(("scipy_DOP853", w7.scipy_impl(ivp.solve_ivp, "DOP853"),
                          f"scipy {scipy.__version__} solve_ivp(pure-Python rhs returning a "
                          "list, method='DOP853', rtol=atol=tol)", None))
    for solver_name in ("Dopri8", "Tsit5"):
        # at the same tolerance, and at the loosest tolerance reaching scipy DOP853's error
        name = f"diffrax_{solver_name.lower()}"
        name_at = f"{name}_at_dop853_error"
        if not harness.any_selected((name, name_at), args.impl):
            continue
        jax, reason = harness.optional_import("jax")
        diffrax, reason2 = harness.optional_import("diffrax")
        if jax is None or diffrax is None:
            records.append(harness.skip(WORKLOAD, name, reason or reason2, units=UNITS))
            continue
        jax.config.update("jax_enable_x64", True)
        make, compile_times, note = w7.diffrax_impl(jax, diffrax, solver_name)
        if harness.selected(name, args.impl):
            impls.append((name, make, note,
                          lambda tol, c=compile_times: {"compile_seconds": c.get(tol)}))
        if harness.selected(name_at, args.impl) and dop853:
            make_at, extra = at_error(make, compile_times,
                                      {tol: err for tol, (_, err) in dop853.items()})
            impls.append((name_at, make_at, note + "; at the loosest tolerance tol * "
                          "10^(-k/4) whose end-point error reaches scipy DOP853's at tol",
                          extra))

    for tol in args.tols:
        print(f"== {workload_name(tol)}", file=sys.stderr, flush=True)
        start = len(records)
        for name, make, note, extra in impls:
            try:
                solve = make(tol)  # diffrax compiles here, before timing
            except Exception as exc:  # noqa: BLE001
                records.append(harness.failed(workload_name(tol), name, exc, units=UNITS))
                continue
            reps = w7.calibrate(solve)

            def run(solve=solve, reps=reps):
                out = None
                for _ in range(reps):
                    out = solve()
                return out

            def quality(result, extra=extra, tol=tol):
                y, info = result
                figures = {k: int(v) for k, v in info.items()}
                figures["end_error"] = w7.end_error(y)
                if tol in dop853:
                    figures["scipy_dop853_nfev"], figures["scipy_dop853_end_error"] = dop853[tol]
                    figures["reaches_scipy_dop853_error"] = figures["end_error"] <= dop853[tol][1]
                if extra is not None:
                    figures.update(extra(tol))
                return figures

            records.append(harness.measure(
                workload_name(tol), name, run, quality=quality, units=UNITS, n_units=reps,
                repeats=args.repeats, budget_s=args.budget,
                notes=f"{note}; tol={tol:g}; {reps} solves per timed repeat"))
        harness.print_ratios(records[start:])
        for r in records[start:]:
            q = r["quality"]
            if r["seconds"]:
                nfev = q.get("nfev", q.get("nfev_est"))
                more = (f", compile {q['compile_seconds']:.2f} s"
                        if q.get("compile_seconds") is not None else "")
                if q.get("tol_used") is not None:
                    more += f", at tol {q['tol_used']:.3g}"
                print(f"  {r['impl']}: {r['seconds'] * 1e3:.3f} ms, nfev {nfev}, "
                      f"|y(T) - Y0| = {q['end_error']:.3e}{more}", file=sys.stderr)
    return records


if __name__ == "__main__":
    main()
