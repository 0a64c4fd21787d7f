"""Plain NumPy reference for Neural ODEs ``dz/dt = f_theta(z)`` trained through their solver.

Written from the definitions, independently of eulerflow's C++ core:

* the field is a network of ``nn_reference`` (its forward/backward are the textbook ones);
* the solver is the explicit Runge-Kutta unroll with the literature tableaus of
  ``rk_reference.TABLEAUS`` (Hairer-Norsett-Wanner, Bogacki-Shampine), one step

      Y_s = y + h sum_{j<s} a_sj K_j,   K_s = f(Y_s),   y' = y + h sum_s b_s K_s ;

* the window loss is seed 002's ``F.mse_loss`` of the final state: ``mean_i (z_i - y_i)^2``
  over the d components, with ``dL/dz = 2 (z - y) / d``;
* its gradient is computed twice, by two different algorithms that share nothing but the
  field's forward/backward:

  ``window_gradient``         reverse mode: a backward sweep through the stored steps.
                              With ``ybar = dL/dy'`` of one step, the stage adjoints are
                                  Kbar_s = h b_s ybar + sum_{r>s} h a_rs Ybar_r,
                                  Ybar_s = J(Y_s)^T Kbar_s,
                                  thetabar += (df/dtheta at Y_s)^T Kbar_s,
                              and the adjoint of the step's input is ybar + sum_s Ybar_s.
  ``window_gradient_forward`` forward mode: the sensitivity matrix S = dy/dtheta (d x P) is
                              carried through every stage,
                                  dY_s = S + h sum_{j<s} a_sj dK_j,
                                  dK_s = J_z(Y_s) dY_s + J_theta(Y_s),
                                  S' = S + h sum_s b_s dK_s,
                              with the Jacobians assembled row by row from d backward passes;
                              the gradient is (dL/dz)^T S.

The step schedule inside each interval [t_a, t_b] is the documented one: ``k`` equal steps
(``steps_per_interval=k``), or steps of ``step_size`` whose start times are
``t_a + j h`` with the last one shortened to land on ``t_b`` (``rk_reference``'s rule), or
one step per interval when neither is given.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from reference import nn_reference as nnref
from reference import rk_reference as rkref

FIXED = rkref.FIXED


def tableau(method: str) -> rkref.Tableau:
    return rkref.TABLEAUS[method]


def schedule(ta: float, tb: float, steps_per_interval: int | None = None,
             step_size: float | None = None) -> list[tuple[float, float]]:
    """The (start time, step) pairs taken from ta to tb."""
    if steps_per_interval is not None and step_size is not None:
        raise ValueError("give steps_per_interval or step_size, not both")
    if steps_per_interval is not None:
        k = int(steps_per_interval)
        h = (tb - ta) / k
        out = []
        for j in range(k):
            tc = ta + j * h
            out.append((tc, tb - tc if j == k - 1 else h))
        return out
    return rkref.steps_in_interval(ta, tb, step_size)


def window_schedule(t: Sequence[float], steps_per_interval=None, step_size=None):
    t = np.asarray(t, dtype=float)
    return [s for i in range(1, t.size)
            for s in schedule(float(t[i - 1]), float(t[i]), steps_per_interval, step_size)]


# --------------------------------------------------------------------------------------
# The field: a network applied to one state (shape (d,))
# --------------------------------------------------------------------------------------


def field(net, y: np.ndarray) -> np.ndarray:
    return net.forward(np.asarray(y, dtype=float).reshape(1, -1))[0]


def field_vjp(net, y: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """(J_z(y)^T v, [(df/dtheta_k)^T v for every parameter]) at the state y."""
    net.forward(np.asarray(y, dtype=float).reshape(1, -1))
    gx = net.backward(np.asarray(v, dtype=float).reshape(1, -1))[0]
    return gx, [g.copy() for g in net.gradients()]


def field_jacobians(net, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """J_z (d, d) and J_theta (d, P) at y, row i from the backward pass of e_i."""
    d = np.size(y)
    rows_z, rows_p = [], []
    for i in range(d):
        e = np.zeros(d)
        e[i] = 1.0
        gx, gp = field_vjp(net, y, e)
        rows_z.append(gx)
        rows_p.append(np.concatenate([g.ravel() for g in gp]))
    return np.array(rows_z), np.array(rows_p)


def flat_to_list(flat: np.ndarray, like: Sequence[np.ndarray]) -> list[np.ndarray]:
    out, k = [], 0
    for p in like:
        out.append(np.array(flat[k:k + p.size]).reshape(p.shape))
        k += p.size
    return out


# --------------------------------------------------------------------------------------
# Forward unroll and loss
# --------------------------------------------------------------------------------------


def stages(net, tab: rkref.Tableau, y: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray]:
    """The stage inputs Y (s, d) and slopes K (s, d) of one step from y."""
    s = tab.stages
    Y = np.zeros((s, y.size))
    K = np.zeros((s, y.size))
    for i in range(s):
        Y[i] = y + h * (tab.a[i, :i] @ K[:i]) if i else y
        K[i] = field(net, Y[i])
    return Y, K


def step(net, tab, y, h):
    _, K = stages(net, tab, y, h)
    return y + h * (tab.b @ K)


def trajectory(net, method: str, z0, t, steps_per_interval=None, step_size=None) -> np.ndarray:
    """States at every t[i] from z0 (shape (d,))."""
    tab = tableau(method)
    t = np.asarray(t, dtype=float)
    y = np.array(z0, dtype=float)
    out = [y.copy()]
    for i in range(1, t.size):
        for _, h in schedule(float(t[i - 1]), float(t[i]), steps_per_interval, step_size):
            y = step(net, tab, y, h)
        out.append(y.copy())
    return np.array(out)


def mse(z: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """torch mse_loss of one state: mean over the d components, and dL/dz."""
    e = z - target
    return float(np.mean(e * e)), 2.0 * e / e.size


def window_loss(net, method, z0, target, t, steps_per_interval=None, step_size=None) -> float:
    z = trajectory(net, method, z0, t, steps_per_interval, step_size)[-1]
    return mse(z, np.asarray(target, dtype=float))[0]


# --------------------------------------------------------------------------------------
# Gradients
# --------------------------------------------------------------------------------------


def window_gradient(net, method, z0, target, t, steps_per_interval=None, step_size=None):
    """Reverse mode through the unroll: (loss, [dL/dtheta per parameter], dL/dz0)."""
    tab = tableau(method)
    hs = [h for _, h in window_schedule(t, steps_per_interval, step_size)]
    ys = [np.array(z0, dtype=float)]
    for h in hs:
        ys.append(step(net, tab, ys[-1], h))
    loss, ybar = mse(ys[-1], np.asarray(target, dtype=float))
    params = net.parameters()
    gtheta = [np.zeros_like(p) for p in params]
    s = tab.stages
    for n in range(len(hs) - 1, -1, -1):
        h, y = hs[n], ys[n]
        Y, _ = stages(net, tab, y, h)
        Ybar = np.zeros_like(Y)
        for i in range(s - 1, -1, -1):
            Kbar = h * tab.b[i] * ybar
            for r in range(i + 1, s):
                Kbar = Kbar + h * tab.a[r, i] * Ybar[r]
            gx, gp = field_vjp(net, Y[i], Kbar)
            Ybar[i] = gx
            for acc, g in zip(gtheta, gp, strict=True):
                acc += g
        ybar = ybar + Ybar.sum(axis=0)
    return loss, gtheta, ybar


def window_gradient_forward(net, method, z0, target, t, steps_per_interval=None,
                            step_size=None):
    """Forward mode (sensitivity matrix) through the unroll: (loss, [dL/dtheta])."""
    tab = tableau(method)
    params = net.parameters()
    P = sum(p.size for p in params)
    y = np.array(z0, dtype=float)
    S = np.zeros((y.size, P))
    s = tab.stages
    for _, h in window_schedule(t, steps_per_interval, step_size):
        Y = np.zeros((s, y.size))
        K = np.zeros((s, y.size))
        dK = np.zeros((s, y.size, P))
        for i in range(s):
            Y[i] = y + h * (tab.a[i, :i] @ K[:i]) if i else y
            dY = S + h * np.tensordot(tab.a[i, :i], dK[:i], axes=1) if i else S
            K[i] = field(net, Y[i])
            Jz, Jp = field_jacobians(net, Y[i])
            dK[i] = Jz @ dY + Jp
        y = y + h * (tab.b @ K)
        S = S + h * np.tensordot(tab.b, dK, axes=1)
    loss, zbar = mse(y, np.asarray(target, dtype=float))
    return loss, flat_to_list(zbar @ S, params)


def finite_difference_gradient(loss_fn, params: Sequence[np.ndarray], eps: float = 1e-6,
                               order: int = 4) -> list[np.ndarray]:
    """Central differences of ``loss_fn()`` with respect to every entry of the arrays in
    ``params`` (perturbed in place and restored); order 2 or 4."""
    grads = []
    for p in params:
        g = np.zeros_like(p)
        flat, gflat = p.reshape(-1), g.reshape(-1)
        for k in range(flat.size):
            v = flat[k]

            def at(delta, flat=flat, k=k, v=v):
                flat[k] = v + delta
                return loss_fn()

            if order == 2:
                gflat[k] = (at(eps) - at(-eps)) / (2 * eps)
            else:
                gflat[k] = (-at(2 * eps) + 8 * at(eps) - 8 * at(-eps) + at(-2 * eps)) / (12 * eps)
            flat[k] = v
        grads.append(g)
    return grads


# --------------------------------------------------------------------------------------
# Training on windows (seed 002)
# --------------------------------------------------------------------------------------


def windows(data: np.ndarray, t: np.ndarray, window: int):
    """(z0, target, times) of every window, in order."""
    return [(data[i], data[i + window], t[i:i + window + 1]) for i in range(t.size - window)]


def mean_window_loss(net, method, data, t, window, steps_per_interval=None, step_size=None):
    return float(np.mean([window_loss(net, method, z0, y, tt, steps_per_interval, step_size)
                          for z0, y, tt in windows(data, t, window)]))


def mean_window_gradient(net, method, data, t, window, steps_per_interval=None,
                         step_size=None):
    """(mean loss, mean gradient) over all windows."""
    ws = windows(data, t, window)
    total = [np.zeros_like(p) for p in net.parameters()]
    losses = []
    for z0, y, tt in ws:
        loss, g, _ = window_gradient(net, method, z0, y, tt, steps_per_interval, step_size)
        losses.append(loss)
        for acc, gi in zip(total, g, strict=True):
            acc += gi
    return float(np.mean(losses)), [g / len(ws) for g in total]


def fit_full_batch(net, method, data, t, window, epochs, optimizer,
                   steps_per_interval=None, step_size=None) -> np.ndarray:
    """One optimizer step per epoch on the mean gradient of all windows (the order of the
    windows does not matter then); returns the per-epoch mean loss taken before the step.
    ``optimizer`` is an ``nn_reference`` optimizer; the net's parameters move in place."""
    losses = []
    for _ in range(epochs):
        loss, g = mean_window_gradient(net, method, data, t, window, steps_per_interval,
                                       step_size)
        losses.append(loss)
        optimizer.step(net.parameters(), g)
    return np.array(losses)


def twin(ef_net, specs) -> nnref.Sequential:
    """An ``nn_reference`` network from layer specs ``("dense", n_in, n_out[, bias])`` /
    ``("act", name)`` holding a copy of the parameter values of ``ef_net`` (in order)."""
    layers = []
    for spec in specs:
        if spec[0] == "dense":
            bias = spec[3] if len(spec) > 3 else True
            layers.append(nnref.Dense(np.zeros((spec[2], spec[1])),
                                      np.zeros(spec[2]) if bias else None))
        elif spec[0] == "act":
            layers.append(nnref.Activation(spec[1]))
        else:
            raise ValueError(spec)
    net = nnref.Sequential(layers)
    src = [np.asarray(p) for p in ef_net.parameters()]
    dst = net.parameters()
    if [p.shape for p in src] != [p.shape for p in dst]:
        raise ValueError(f"shapes differ: {[p.shape for p in src]} vs {[p.shape for p in dst]}")
    for p, q in zip(src, dst, strict=True):
        q[...] = p
    return net


# --------------------------------------------------------------------------------------
# Regularized objective (Kelly et al. 2020, Finlay et al. 2020)
# --------------------------------------------------------------------------------------


def window_penalty(net, method, z0, t, kinetic=0.0, jacobian=0.0, steps_per_interval=None,
                   step_size=None) -> float:
    """kinetic * int ||f||^2 dt + jacobian * int ||J_z||_F^2 dt along the window's unroll,
    by the solver's quadrature: each step adds |h| sum_s b_s (kinetic ||K_s||^2 +
    jacobian ||J_z(Y_s)||_F^2), the integral an extra state component would carry."""
    tab = tableau(method)
    y = np.array(z0, dtype=float)
    total = 0.0
    for _, h in window_schedule(t, steps_per_interval, step_size):
        Y, K = stages(net, tab, y, h)
        for s in range(tab.stages):
            if tab.b[s] == 0.0:
                continue
            Jz, _ = field_jacobians(net, Y[s])
            total += abs(h) * tab.b[s] * (kinetic * float(K[s] @ K[s])
                                          + jacobian * float(np.sum(Jz * Jz)))
        y = y + h * (tab.b @ K)
    return total
