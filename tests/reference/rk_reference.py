"""Plain NumPy explicit Runge-Kutta reference, written from the literature.

The Butcher tableaus below are typed in from the textbooks, not read from eulerflow:
Hairer, Norsett & Wanner, Solving Ordinary Differential Equations I (2nd ed.), II.1
(Table 1.1: Euler, midpoint, Heun; Table 1.2: the classical RK4 and Kutta's 3/8 rule)
and II.5 (Table 5.2: Dormand-Prince 5(4)); Bogacki & Shampine, Appl. Math. Lett. 2
(1989) 321-325 (the 3(2) pair).

``odeint_fixed`` steps with the same rule as ``eulerflow.odeint`` for the fixed-step
methods: per output interval [t[i-1], t[i]], ``k = ceil(|span| / h)`` steps whose start
times are ``t[i-1] + j * h`` (computed from the interval start, not accumulated), the
last step taking what is left so that it lands exactly on ``t[i]``; a remainder below
a relative 1e-9 of h is absorbed into the last step instead of being taken as a sliver
step. Without a step size: one step per output interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tableau:
    a: np.ndarray          # (s, s), strictly lower triangular
    b: np.ndarray          # (s,)
    c: np.ndarray          # (s,)
    order: int
    b_hat: np.ndarray | None = None   # embedded weights (adaptive pairs)
    error_order: int = 0

    @property
    def stages(self) -> int:
        return self.b.size


def _t(a, b, c, order, b_hat=None, error_order=0) -> Tableau:
    return Tableau(np.array(a, dtype=float), np.array(b, dtype=float), np.array(c, dtype=float),
                   order, None if b_hat is None else np.array(b_hat, dtype=float), error_order)


TABLEAUS: dict[str, Tableau] = {
    "euler": _t([[0.0]], [1.0], [0.0], 1),
    # explicit midpoint rule (Runge 1895)
    "midpoint": _t([[0, 0], [1 / 2, 0]], [0, 1], [0, 1 / 2], 2),
    # Heun's method (explicit trapezoidal rule)
    "heun": _t([[0, 0], [1, 0]], [1 / 2, 1 / 2], [0, 1], 2),
    # "the" Runge-Kutta method (Kutta 1901)
    "rk4": _t([[0, 0, 0, 0], [1 / 2, 0, 0, 0], [0, 1 / 2, 0, 0], [0, 0, 1, 0]],
              [1 / 6, 1 / 3, 1 / 3, 1 / 6], [0, 1 / 2, 1 / 2, 1], 4),
    # Kutta's 3/8 rule
    "rk38": _t([[0, 0, 0, 0], [1 / 3, 0, 0, 0], [-1 / 3, 1, 0, 0], [1, -1, 1, 0]],
               [1 / 8, 3 / 8, 3 / 8, 1 / 8], [0, 1 / 3, 2 / 3, 1], 4),
    # Bogacki-Shampine 3(2), FSAL
    "bosh3": _t([[0, 0, 0, 0], [1 / 2, 0, 0, 0], [0, 3 / 4, 0, 0], [2 / 9, 1 / 3, 4 / 9, 0]],
                [2 / 9, 1 / 3, 4 / 9, 0], [0, 1 / 2, 3 / 4, 1], 3,
                b_hat=[7 / 24, 1 / 4, 1 / 3, 1 / 8], error_order=2),
    # Dormand-Prince 5(4), FSAL
    "dopri5": _t(
        [[0, 0, 0, 0, 0, 0, 0],
         [1 / 5, 0, 0, 0, 0, 0, 0],
         [3 / 40, 9 / 40, 0, 0, 0, 0, 0],
         [44 / 45, -56 / 15, 32 / 9, 0, 0, 0, 0],
         [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729, 0, 0, 0],
         [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656, 0, 0],
         [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0]],
        [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0],
        [0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1, 1], 5,
        b_hat=[5179 / 57600, 0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40],
        error_order=4),
}

FIXED = ("euler", "midpoint", "heun", "rk4", "rk38")


def rk_step(tab: Tableau, f, t: float, y: np.ndarray, h: float) -> np.ndarray:
    """One explicit RK step: ``y + h * sum_j b_j k_j`` with
    ``k_i = f(t + c_i h, y + h * sum_{j<i} a_ij k_j)``."""
    s = tab.stages
    k = np.zeros((s, *y.shape))
    for i in range(s):
        yi = y + h * np.tensordot(tab.a[i, :i], k[:i], axes=1) if i else y
        k[i] = np.asarray(f(t + tab.c[i] * h, yi), dtype=float)
    return y + h * np.tensordot(tab.b, k, axes=1)


def steps_in_interval(t0: float, t1: float, step_size: float | None) -> list[tuple[float, float]]:
    """The (start time, step) pairs taken from t0 to t1."""
    span = t1 - t0
    if step_size is None:
        return [(t0, span)]
    k = max(1, math.ceil(abs(span) / step_size * (1.0 - 1e-9)))
    h = math.copysign(step_size, span)
    out = []
    for j in range(k):
        tc = t0 + j * h
        out.append((tc, t1 - tc if j == k - 1 else h))
    return out


def odeint_fixed(f, y0, t, method: str, step_size: float | None = None):
    """Integrates dy/dt = f(t, y) with a fixed-step method; returns (ys, nsteps)."""
    tab = TABLEAUS[method]
    y = np.array(y0, dtype=float)
    t = np.asarray(t, dtype=float)
    ys = [y.copy()]
    nsteps = 0
    for i in range(1, t.size):
        for tc, h in steps_in_interval(float(t[i - 1]), float(t[i]), step_size):
            y = rk_step(tab, f, tc, y, h)
            nsteps += 1
        ys.append(y.copy())
    return np.array(ys), nsteps


# --- order conditions (Butcher's rooted trees), to check the tableaus themselves ---

def rooted_trees(order: int) -> list[tuple]:
    """All rooted trees with ``order`` nodes; a tree is the sorted tuple of its subtrees."""
    if order == 1:
        return [()]
    trees = set()

    def forests(n: int, min_tree=None):
        # multisets of trees with n nodes in total, in non-decreasing canonical order
        if n == 0:
            yield ()
            return
        for m in range(1, n + 1):
            for tr in rooted_trees(m):
                key = (m, tr)
                if min_tree is not None and key < min_tree:
                    continue
                for rest in forests(n - m, key):
                    yield (tr,) + rest

    for forest in forests(order - 1):
        trees.add(tuple(sorted(forest, key=repr)))
    return sorted(trees, key=repr)


def tree_order(tree: tuple) -> int:
    return 1 + sum(tree_order(s) for s in tree)


def tree_density(tree: tuple) -> int:
    """gamma(t) = |t| * prod gamma(subtrees)."""
    return tree_order(tree) * math.prod(tree_density(s) for s in tree)


def stage_weights(a: np.ndarray, tree: tuple) -> np.ndarray:
    """g(t)_i = prod over subtrees u of (a @ g(u))_i; g(leaf) = 1."""
    g = np.ones(a.shape[0])
    for sub in tree:
        g = g * (a @ stage_weights(a, sub))
    return g


def order_defects(a: np.ndarray, b: np.ndarray, order: int) -> list[float]:
    """|b . g(t) - 1/gamma(t)| for every rooted tree with at most ``order`` nodes."""
    return [abs(float(b @ stage_weights(a, tr)) - 1.0 / tree_density(tr))
            for n in range(1, order + 1) for tr in rooted_trees(n)]
