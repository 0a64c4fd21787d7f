"""Stiff Van der Pol with radau5: an analytic Jacobian, the dense output and an event.

    y0' = y1,  y1' = ((1 - y0^2) y1 - y0) / eps,  eps = 1e-6, from (2, 0) over [0, 2]

is far too stiff for an explicit method (dopri5 runs out of max_steps). radau5 takes a few
hundred implicit steps; given ``jac`` it spends no evaluations on finite differences.
``ef.solve`` keeps every step's collocation polynomial, so the solution can be evaluated
anywhere and an event (here y0 falling through 1.5 on the slow branch) is found by root
finding on it; the time is checked against the reduced (eps -> 0) problem.

    python examples/stiff_van_der_pol.py
"""

from __future__ import annotations

import eulerflow as ef
import numpy as np

EPS = 1e-6
REFERENCE = np.array([1.706167732170493, -0.892809701024786])  # Hairer's y(2)


def van_der_pol(t, y):
    return np.array([y[1], ((1 - y[0] ** 2) * y[1] - y[0]) / EPS])


def jacobian(t, y):
    return np.array([[0.0, 1.0], [(-2.0 * y[0] * y[1] - 1.0) / EPS, (1.0 - y[0] ** 2) / EPS]])


def below(t, y):
    return y[0] - 1.75


below.direction = -1  # downwards only
below.terminal = False


def main() -> None:
    common = dict(method="radau5", rtol=1e-6, atol=1e-6)
    ys_fd, fd = ef.odeint(van_der_pol, [2.0, 0.0], [0.0, 2.0], full_output=True, **common)
    ys, info = ef.odeint(van_der_pol, [2.0, 0.0], [0.0, 2.0], full_output=True, jac=jacobian,
                         **common)
    print(f"y(2) with jac:              {ys[-1]}  error {np.abs(ys[-1] - REFERENCE).max():.1e}")
    print(f"  {info['naccepted']} steps, {info['nfev']} evaluations, {info['njev']} Jacobians")
    print(f"finite-difference Jacobian: error {np.abs(ys_fd[-1] - REFERENCE).max():.1e}, "
          f"{fd['nfev']} evaluations (finite-difference columns included)")

    sol = ef.solve(van_der_pol, [2.0, 0.0], [0.0, 2.0], jac=jacobian, events=below, **common)
    t_mid = np.linspace(0.0, 2.0, 9)
    print("dense output y0 at t = 0, 0.25, ..., 2:", np.round(sol.evaluate(t_mid)[:, 0], 6))
    t_event = sol.t_events[0]
    # the slow branch (1 - y0^2) y1 = y0: t(y0) = [ln y - y^2 / 2] from 2 to y0
    t_reduced = (np.log(1.75) - 1.75**2 / 2) - (np.log(2.0) - 2.0)
    print(f"y0 falls through 1.75 at t = {', '.join(f'{te:.9f}' for te in t_event)}")
    print(f"  the first time on the reduced problem: {t_reduced:.9f}")


if __name__ == "__main__":
    main()
