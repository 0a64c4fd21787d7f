"""W9 stiff Van der Pol (issue 12): y1' = y2, y2' = ((1 - y1^2) y2 - y1) / eps with
eps = 1e-6 from (2, 0) to t = 2, rtol = atol = 1e-6; Hairer's reference
y(2) = (1.706167732170493, -0.892809701024786). Unit: one solve.

Implementations: eulerflow (ef.odeint(method="radau5")), scipy solve_ivp Radau, BDF and
LSODA, all with the same Python function for the field (so each pays the same Python
call per evaluation). Quality: the error at t = 2 against the reference and the number
of function evaluations.

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


def vdp(t, y):
    return np.array([y[1], ((1 - y[0] ** 2) * y[1] - y[0]) / EPS])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--budget", type=float, default=30.0)
    ap.add_argument("--impl", nargs="*", default=None, help="only these (prefixes)")
    args = ap.parse_args(argv)

    ef, why = harness.optional_import("eulerflow")
    if harness.selected("eulerflow", args.impl):
        if ef is None:
            harness.skip(WORKLOAD, "eulerflow", why, units="solve")
        else:
            def run_ef():
                return ef.odeint(vdp, [2.0, 0.0], [0.0, T_END], method="radau5", rtol=TOL,
                                 atol=TOL, full_output=True)

            harness.measure(WORKLOAD, "eulerflow", run_ef, units="solve", n_units=1,
                            repeats=args.repeats, budget_s=args.budget,
                            quality=lambda r: {"error": float(np.abs(r[0][-1] - REFERENCE).max()),
                                               "nfev": r[1]["nfev"], "steps": r[1]["naccepted"]},
                            notes="ef.odeint(f, y0, [0, 2], method='radau5', rtol=atol=1e-6)")
    integrate, why = harness.optional_import("scipy.integrate")
    for method in ("Radau", "BDF", "LSODA"):
        name = f"scipy_{method}"
        if not harness.selected(name, args.impl):
            continue
        if integrate is None:
            harness.skip(WORKLOAD, name, why, units="solve")
            continue

        def run_scipy(method=method):
            return integrate.solve_ivp(vdp, (0.0, T_END), [2.0, 0.0], method=method, rtol=TOL,
                                       atol=TOL)

        harness.measure(WORKLOAD, name, run_scipy, units="solve", n_units=1,
                        repeats=args.repeats, budget_s=args.budget,
                        quality=lambda s: {"error": float(np.abs(s.y[:, -1] - REFERENCE).max()),
                                           "nfev": int(s.nfev), "steps": int(len(s.t) - 1)},
                        notes=f"scipy.integrate.solve_ivp(method='{method}', rtol=atol=1e-6)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
