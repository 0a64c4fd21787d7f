"""Work against precision of the adaptive methods on the Arenstorf orbit.

The restricted three-body problem (Earth-Moon mass ratio mu = 0.012277471) has a periodic
orbit from y0 = (0.994, 0, 0, -2.00158510637908252240537862224) with period
T = 17.0652165601579625588917206249 (Hairer, Norsett & Wanner, Solving ODEs I, II.0), so
|y(T) - y0| is the global error of an integration over one period. For dopri5, tsit5 and
dopri8 (Hairer's DOP853, order 8) and rtol = atol from 1e-4 to 1e-12 (four per decade;
one with ``--quick``), this prints the function evaluations and the end-point error, writes
them to ``summary.md`` and draws error against evaluations (log-log) into
``work_precision.png`` when matplotlib is installed. scipy's DOP853 is added when scipy is
installed. Runs in a few seconds (``eulerflow demo euler`` draws the same figure).

    python examples/ode_work_precision.py [--out DIR] [--quick]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import eulerflow as ef
import numpy as np

MU = 0.012277471
Y0 = np.array([0.994, 0.0, 0.0, -2.00158510637908252240537862224])
PERIOD = 17.0652165601579625588917206249
METHODS = ("dopri5", "tsit5", "dopri8")


def arenstorf(t, y):
    """The same field in Python, for scipy."""
    x, yy, vx, vy = y
    d1 = ((x + MU) ** 2 + yy * yy) ** 1.5
    d2 = ((x - 1.0 + MU) ** 2 + yy * yy) ** 1.5
    return [vx, vy,
            x + 2.0 * vy - (1.0 - MU) * (x + MU) / d1 - MU * (x - 1.0 + MU) / d2,
            yy - 2.0 * vx - (1.0 - MU) * yy / d1 - MU * yy / d2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/ode_work_precision"),
                        help="output directory (default: %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help="one tolerance per decade instead of four")
    args = parser.parse_args()
    per_decade = 1 if args.quick else 4
    tols = [10.0 ** (-4 - k / per_decade) for k in range(8 * per_decade + 1)]
    args.out.mkdir(parents=True, exist_ok=True)

    field = ef.fields.Arenstorf(MU)
    curves = {}
    for method in METHODS:
        nfev, errors = [], []
        for tol in tols:
            ys, info = ef.odeint(field, Y0, [0.0, PERIOD], method=method, rtol=tol, atol=tol,
                                 max_steps=1_000_000, full_output=True)
            nfev.append(info["nfev"])
            errors.append(float(np.linalg.norm(ys[-1] - Y0)))
        curves[method] = (np.array(nfev), np.array(errors))
    try:
        from scipy.integrate import solve_ivp
    except ImportError:
        solve_ivp = None
    if solve_ivp is not None:
        nfev, errors = [], []
        for tol in tols:
            sol = solve_ivp(arenstorf, (0.0, PERIOD), Y0, method="DOP853", rtol=tol, atol=tol)
            nfev.append(sol.nfev)
            errors.append(float(np.linalg.norm(sol.y[:, -1] - Y0)))
        curves["scipy DOP853"] = (np.array(nfev), np.array(errors))

    rows = ["| rtol = atol | " + " | ".join(f"{m}: nfev, error" for m in curves) + " |",
            "|---|" + "---|" * len(curves)]
    for i, tol in enumerate(tols):
        rows.append(f"| {tol:.2g} | " + " | ".join(f"{int(n[i])}, {e[i]:.2e}"
                                                     for n, e in curves.values()) + " |")
    print("\n".join(rows))
    (args.out / "summary.md").write_text(
        "# Work-precision on the Arenstorf orbit\n\nEnd-point error |y(T) - y0| after one "
        "period and function evaluations.\n\n" + "\n".join(rows) + "\n", encoding="utf-8")

    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed: no figure")
        return
    matplotlib.use("Agg")  # files only
    from eulerflow import plot

    fig = plot.work_precision(curves, ylabel="end-point error |y(T) - y0|",
                              title="Arenstorf orbit over one period, rtol = atol 1e-4 .. "
                                    "1e-12:\nend-point error against function evaluations")
    fig.savefig(args.out / "work_precision.png", dpi=120, bbox_inches="tight")
    print(f"figure: {args.out / 'work_precision.png'}")


if __name__ == "__main__":
    main()
