"""W9 stiff Van der Pol (issue 12): y1' = y2, y2' = ((1 - y1^2) y2 - y1) / eps with
eps = 1e-6 from (2, 0) to t = 2, rtol = atol = 1e-6; Hairer's reference
y(2) = (1.706167732170493, -0.892809701024786). Unit: one solve.

Implementations: eulerflow (ef.odeint(method="radau5"), finite-difference Jacobian),
eulerflow_jac (the same with jac=, the analytic Jacobian as a Python function), scipy
solve_ivp Radau and BDF (each without and with jac) and LSODA, all with the same Python
function for the field (so each pays the same Python call per evaluation). Quality: the
error at t = 2 against the reference, nfev and njev as each solver reports them, and
"calls", the field's Python calls counted in the function itself (scipy's nfev leaves out
the calls of its finite-difference Jacobians; eulerflow's includes them).

    python benchmarks/w9_stiff_vdp.py [--repeats 5] [--impl eulerflow scipy_Radau ...]
"""

from __future__ import annotations

import argparse
import sys

import harness
import numpy as np

WORKLOAD = "w9_stiff_vdp"
EPS, T_END, TOL = 1e-6, 2.0, 1e-6
REFERENCE = np.array([1.706167732170493, -0.892809701024786])
CALLS = [0]  # the field's calls in the last run (reset before each timed run)


def vdp(t, y):
    CALLS[0] += 1
    return np.array([y[1], ((1 - y[0] ** 2) * y[1] - y[0]) / EPS])


def vdp_jac(t, y):
    return np.array([[0.0, 1.0], [(-2.0 * y[0] * y[1] - 1.0) / EPS, (1.0 - y[0] ** 2) / EPS]])


def counted(run):
    """run() with the call counter reset first; returns (result, calls)."""
    def wrapped():
        CALLS[0] = 0
        result = run()
        return result, CALLS[0]

    return wrapped


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--budget", type=float, default=30.0)
    ap.add_argument("--impl", nargs="*", default=None, help="only these (prefixes)")
    args = ap.parse_args(argv)

    ef, why = harness.optional_import("eulerflow")
    for name, jac in (("eulerflow", None), ("eulerflow_jac", vdp_jac)):
        if not harness.selected(name, args.impl):
            continue
        if ef is None:
            harness.skip(WORKLOAD, name, why, units="solve")
            continue

        def run_ef(jac=jac):
            return ef.odeint(vdp, [2.0, 0.0], [0.0, T_END], method="radau5", rtol=TOL,
                             atol=TOL, full_output=True, jac=jac)

        harness.measure(WORKLOAD, name, counted(run_ef), units="solve", n_units=1,
                        repeats=args.repeats, budget_s=args.budget,
                        quality=lambda r: {"error": float(np.abs(r[0][0][-1] - REFERENCE).max()),
                                           "nfev": r[0][1]["nfev"], "njev": r[0][1]["njev"],
                                           "calls": r[1], "steps": r[0][1]["naccepted"]},
                        notes="ef.odeint(f, y0, [0, 2], method='radau5', rtol=atol=1e-6"
                              + (", jac=J)" if jac else ")"))
    integrate, why = harness.optional_import("scipy.integrate")
    for method, jac in (("Radau", None), ("Radau", vdp_jac), ("BDF", None), ("BDF", vdp_jac),
                        ("LSODA", None)):
        name = f"scipy_{method}" + ("_jac" if jac else "")
        if not harness.selected(name, args.impl):
            continue
        if integrate is None:
            harness.skip(WORKLOAD, name, why, units="solve")
            continue

        def run_scipy(method=method, jac=jac):
            return integrate.solve_ivp(vdp, (0.0, T_END), [2.0, 0.0], method=method, rtol=TOL,
                                       atol=TOL, jac=jac)

        harness.measure(WORKLOAD, name, counted(run_scipy), units="solve", n_units=1,
                        repeats=args.repeats, budget_s=args.budget,
                        quality=lambda r: {"error": float(np.abs(r[0].y[:, -1] - REFERENCE).max()),
                                           "nfev": int(r[0].nfev), "njev": int(r[0].njev),
                                           "calls": r[1], "steps": int(len(r[0].t) - 1)},
                        notes=f"scipy.integrate.solve_ivp(method='{method}', rtol=atol=1e-6"
                              + (", jac=J)" if jac else ")"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
