"""Small synthetic data sets for the seed experiments.

Every data set is a pair ``(X, Y)`` of NumPy arrays whose rows are samples; every time
series is a pair ``(t, ys)`` with ``ys.shape == (len(t), d)``. Random data sets take a
``seed`` and draw from ``np.random.default_rng(seed)`` only, so the same seed gives the
same bits on the same machine. The time series are integrated by :func:`eulerflow.odeint`
on the native fields of :mod:`eulerflow.fields` (no SciPy needed).
"""

from __future__ import annotations

import numbers

import numpy as np

from . import fields
from ._validate import positive_int, real_array, real_scalar
from .ode import ADAPTIVE_METHODS, METHODS, odeint

__all__ = [
    "PROJECTILE_Y0",
    "euler_grid",
    "lorenz",
    "projectile",
    "projectile_euler",
    "spiral_classes",
    "spiral_ode",
    "xor",
]


def _check_seed(seed: object) -> None:
    """Accept what ``np.random.default_rng`` accepts as a seed, refuse the rest by name."""
    if seed is None or isinstance(seed, (np.random.Generator, np.random.SeedSequence)):
        return
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(
            f"seed must be None, a non-negative integer or a numpy Generator, "
            f"got {type(seed).__name__} {seed!r}"
        )
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")


def spiral_classes(
    n_per_class: int = 100, k: int = 3, noise: float = 0.2, seed: object = 0
) -> tuple[np.ndarray, np.ndarray]:
    r"""Points on ``k`` interleaved spiral arms, one class per arm (seed 004).

    Class :math:`j \in \{0, \dots, k-1\}` has ``n_per_class`` points :math:`i = 0, \dots,
    n_0 - 1` with

    .. math::

        r_i = \frac{i}{n_0 - 1}, \qquad
        t_i = 4j + \frac{4 i}{n_0 - 1} + \sigma \varepsilon_i, \qquad
        x_i = (r_i \sin t_i,\; r_i \cos t_i),

    where :math:`\varepsilon_i \sim \mathcal N(0, 1)` and :math:`\sigma` is ``noise``:
    the radius grows linearly from 0 to 1 while the angle sweeps 4 radians, shifted by
    4 radians per class, with Gaussian noise on the angle only. The seed notebook stores
    class ``j`` at rows ``n0*(j-1) ... n0*j - 1`` (negative indices for ``j = 0``); here
    class ``j`` fills rows ``j*n0 ... (j+1)*n0 - 1``.

    Parameters
    ----------
    n_per_class : int
        Points per class, ``n_0 >= 1`` (with one point, ``r = 0``).
    k : int
        Number of classes, ``k >= 1``.
    noise : float
        Standard deviation of the angular noise, ``>= 0``.
    seed : int, None or numpy.random.Generator
        Seed of ``np.random.default_rng``; the noise is drawn class after class.

    Returns
    -------
    X : ndarray, shape (n_per_class * k, 2), float64
        The points.
    y : ndarray, shape (n_per_class * k,), int64
        Class index of each point, ``y[j*n0:(j+1)*n0] == j``.

    Examples
    --------
    >>> X, y = spiral_classes(100, 3, noise=0.2, seed=0)
    >>> X.shape, y.shape, int(y.max())
    ((300, 2), (300,), 2)
    """
    n0 = positive_int(n_per_class, "n_per_class")
    k = positive_int(k, "k")
    noise = real_scalar(noise, "noise", min_value=0.0)
    _check_seed(seed)
    rng = np.random.default_rng(seed)

    X = np.empty((n0 * k, 2), dtype=np.float64)
    y = np.empty(n0 * k, dtype=np.int64)
    r = np.linspace(0.0, 1.0, n0)
    for j in range(k):
        rows = slice(j * n0, (j + 1) * n0)
        t = np.linspace(4.0 * j, 4.0 * (j + 1), n0) + noise * rng.standard_normal(n0)
        X[rows, 0] = r * np.sin(t)
        X[rows, 1] = r * np.cos(t)
        y[rows] = j
    return X, y


def xor() -> tuple[np.ndarray, np.ndarray]:
    r"""The four points of the XOR truth table.

    .. math::

        Y = x_1 \oplus x_2 = x_1 + x_2 - 2 x_1 x_2, \qquad x \in \{0, 1\}^2 .

    No straight line separates the two classes, so a network needs a hidden layer
    (seed 001).

    Returns
    -------
    X : ndarray, shape (4, 2), float64
        ``[[0, 0], [0, 1], [1, 0], [1, 1]]``.
    Y : ndarray, shape (4, 1), float64
        ``[[0], [1], [1], [0]]``.
    """
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    Y = (X[:, :1] + X[:, 1:] - 2.0 * X[:, :1] * X[:, 1:]).astype(np.float64)
    return X, Y


# ----------------------------------------------------------------------------- ODE data

#: Tolerances of the adaptive integrations behind the time series (dopri5).
_TIGHT = 1e-12
#: Step budget of those integrations, far above what they need (the spiral takes ~540 steps).
_MAX_ADAPTIVE_STEPS = 10_000_000
#: Largest Euler grid :func:`projectile_euler` builds (rows of 6 float64: 480 MB).
_MAX_EULER_STEPS = 10_000_000


def _time_grid(t_end: object, n_points: object) -> np.ndarray:
    t_end = real_scalar(t_end, "t_end", min_value=0.0, min_inclusive=False)
    n_points = positive_int(n_points, "n_points")
    return np.linspace(0.0, t_end, n_points)


def _vector(value: object, name: str, d: int) -> np.ndarray:
    arr = real_array(value, name, np.float64, ndim=(1,))
    if arr.shape != (d,):
        raise ValueError(f"{name} must have shape ({d},), got {arr.shape}")
    return arr


def spiral_ode(
    A: object = ((-0.1, -1.0), (1.0, -0.1)),
    a0: object = (0.6, 0.3),
    t_end: float = 10.0,
    n_points: int = 100,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Seed 002's linear spiral: the flow of :math:`\dot a = A a` sampled at ``n_points`` times.

    .. math::

        t_i = \frac{i\, t_{\mathrm{end}}}{n - 1}, \qquad a(t_i) = e^{t_i A} a_0 .

    With the default :math:`A = \begin{pmatrix} -0.1 & -1 \\ 1 & -0.1 \end{pmatrix}`,
    :math:`e^{tA} = e^{-0.1 t} R(t)` (:math:`R(t)` the rotation by angle :math:`t`), so
    :math:`a_0` spirals inwards anticlockwise, about 1.6 turns over ``t_end = 10``.
    The seed computes ``scipy.linalg.expm(t_i * A) @ a0``; here the same flow is
    integrated by :func:`eulerflow.odeint` on ``eulerflow.fields.Linear(A)`` with dopri5
    at ``rtol = atol = 1e-12``, which agrees with the matrix exponential to about
    ``1e-12`` (no SciPy needed).

    Parameters
    ----------
    A : array_like, shape (d, d)
        The matrix of the linear field.
    a0 : array_like, shape (d,)
        The state at ``t = 0``.
    t_end : float
        Last time, ``> 0``.
    n_points : int
        Number of sample times, ``>= 1`` (one point is just ``a0`` at ``t = 0``).

    Returns
    -------
    t : ndarray, shape (n_points,)
        ``np.linspace(0, t_end, n_points)``.
    ys : ndarray, shape (n_points, d)
        ``ys[i]`` is :math:`e^{t_i A} a_0`; ``ys[0] == a0``.

    Examples
    --------
    >>> t, ys = spiral_ode()
    >>> t.shape, ys.shape
    ((100,), (100, 2))
    """
    A = real_array(A, "A", np.float64, ndim=(2,))
    if A.shape[0] != A.shape[1]:
        raise ValueError(f"A must be a square matrix, got shape {A.shape}")
    a0 = _vector(a0, "a0", A.shape[0])
    t = _time_grid(t_end, n_points)
    ys = odeint(fields.Linear(A), a0, t, method="dopri5", rtol=_TIGHT, atol=_TIGHT,
                max_steps=_MAX_ADAPTIVE_STEPS)
    return t, ys


def lorenz(
    n_points: int = 1000,
    t_end: float = 10.0,
    y0: object = (1.0, 1.0, 1.0),
    sigma: float = 10.0,
    rho: float = 28.0,
    beta: float = 8.0 / 3.0,
    method: str = "rk4",
) -> tuple[np.ndarray, np.ndarray]:
    r"""A trajectory of the Lorenz system sampled at ``n_points`` equally spaced times.

    .. math::

        \dot x = \sigma (y - x), \qquad \dot y = x (\rho - z) - y, \qquad
        \dot z = x y - \beta z .

    Integrated by :func:`eulerflow.odeint` on the native field
    ``eulerflow.fields.Lorenz(sigma, rho, beta)``. A fixed-step ``method``
    (``"euler"``, ``"midpoint"``, ``"heun"``, ``"rk4"``, ``"rk38"``) takes exactly one
    step per output interval, :math:`h = t_{\mathrm{end}} / (n - 1)`: ``method="euler"``
    is seed 002's ``LorenzData`` loop (``x += sigma*(y - x)*dt``, ...). An adaptive
    method (``"bosh3"``, ``"dopri5"``) uses ``rtol = atol = 1e-12`` and interpolates the
    sample times. The system is chaotic: different methods agree for a few time units,
    then part ways (the attractor stays the same).

    Parameters
    ----------
    n_points : int
        Number of sample times, ``>= 1``.
    t_end : float
        Last time, ``> 0``.
    y0 : array_like, shape (3,)
        The state ``(x, y, z)`` at ``t = 0``. (Seed 002 started at ``(0.01, 0, 0)``.)
    sigma, rho, beta : float
        The Lorenz parameters (classical values 10, 28, 8/3).
    method : str
        One of ``eulerflow.ode.METHODS``.

    Returns
    -------
    t : ndarray, shape (n_points,)
        ``np.linspace(0, t_end, n_points)``.
    ys : ndarray, shape (n_points, 3)
        The states; ``ys[0] == y0``.

    Examples
    --------
    >>> t, ys = lorenz(1000, 10.0)
    >>> ys.shape
    (1000, 3)
    """
    t = _time_grid(t_end, n_points)
    y0 = _vector(y0, "y0", 3)
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    field = fields.Lorenz(sigma, rho, beta)
    if method in ADAPTIVE_METHODS:
        ys = odeint(field, y0, t, method=method, rtol=_TIGHT, atol=_TIGHT,
                    max_steps=_MAX_ADAPTIVE_STEPS)
    else:  # one step per output interval: no step_size
        ys = odeint(field, y0, t, method=method, max_steps=max(1, t.size - 1))
    return t, ys


#: Seed 000's initial state ``(x0, y0, z0, vx0, vy0, vz0)``; x is the height.
PROJECTILE_Y0 = (0.0, 0.0, 0.0, 5.0, 0.0, 0.1)


def projectile(n: int = 100_000, seed: object = 0) -> tuple[np.ndarray, np.ndarray]:
    r"""Seed 000's data set: initial state and time -> scaled analytic final position.

    Each row of ``X`` is :math:`(x_0, y_0, z_0, v_{x,0}, v_{y,0}, v_{z,0}, t) =
    (0, 0, 0, 5, 0, 0.1, t)` with :math:`t \sim U[0, 1)`, and ``Y`` is the position
    reached at time :math:`t` under gravity :math:`-9.8` along x (the height), a
    constant wind :math:`0.1` along y and the constant drift :math:`\dot z = v_{z,0}`,

    .. math::

        x = x_0 + v_{x,0} t - 4.9 t^2, \qquad
        y = y_0 + v_{y,0} t + 0.05 t^2, \qquad
        z = z_0 + v_{z,0} t,

    scaled as the seed scales it: ``Y = (x / 10, 10 y, 10 z)``, i.e. here
    ``Y = ((5 t - 4.9 t^2) / 10, 0.5 t^2, t)``. The seed draws ``np.random.rand(n, 7)``
    and overwrites the first six columns; here the times are
    ``np.random.default_rng(seed).random(n)`` (the rest of the draw was unused).

    Parameters
    ----------
    n : int
        Number of samples, ``>= 1``.
    seed : int, None or numpy.random.Generator
        Seed of ``np.random.default_rng``.

    Returns
    -------
    X : ndarray, shape (n, 7), float64
        Initial states and times.
    Y : ndarray, shape (n, 3), float64
        Scaled final positions.

    Examples
    --------
    >>> X, Y = projectile(5, seed=0)
    >>> X.shape, Y.shape
    ((5, 7), (5, 3))
    """
    n = positive_int(n, "n")
    _check_seed(seed)
    rng = np.random.default_rng(seed)
    X = np.empty((n, 7), dtype=np.float64)
    X[:, :6] = PROJECTILE_Y0
    X[:, 6] = rng.random(n)
    x0, y0, z0, vx, vy, vz, t = X.T
    Y = np.column_stack([
        (x0 + vx * t - 4.9 * t**2) / 10.0,
        (y0 + vy * t + 0.05 * t**2) * 10.0,
        (z0 + vz * t) * 10.0,
    ])
    return X, Y


def euler_grid(h: float, t_end: float = 1.0) -> np.ndarray:
    r"""The times :math:`0, h, 2h, \dots, t_{\mathrm{end}}` of an Euler run with step ``h``.

    :math:`t_i = i h` for :math:`i < n` and :math:`t_n = t_{\mathrm{end}}`, where
    :math:`n = \lceil t_{\mathrm{end}} / h \rceil` is the number of steps (a quotient
    within :math:`10^{-9}` of an integer counts as that integer, so ``h = 0.1`` takes 10
    steps to 1); when ``h`` does not divide ``t_end`` the last step is shortened.
    Returns an array of ``n + 1`` times.
    """
    h = real_scalar(h, "h", min_value=0.0, min_inclusive=False)
    t_end = real_scalar(t_end, "t_end", min_value=0.0, min_inclusive=False)
    q = t_end / h
    n = round(q) if abs(q - round(q)) <= 1e-9 * max(1.0, q) else int(np.ceil(q))
    n = max(n, 1)
    if n > _MAX_EULER_STEPS:
        raise ValueError(f"h = {h:g} needs {n} steps to reach t_end = {t_end:g}; at most "
                         f"{_MAX_EULER_STEPS} are allowed (choose a larger h)")
    t = np.arange(n + 1, dtype=np.float64) * h
    t[-1] = t_end
    return t


def projectile_euler(h: float, t_end: float = 1.0) -> np.ndarray:
    r"""Seed 000's projectile integrated by the explicit Euler method with step ``h``.

    The state is :math:`s = (x, y, z, v_x, v_y, v_z)` (position, then velocity), from
    :math:`s_0 = (0, 0, 0, 5, 0, 0.1)`, with the field
    ``eulerflow.fields.Projectile()``: :math:`\dot{\mathbf x} = \mathbf v`,
    :math:`\dot{\mathbf v} = (-9.8, 0.1, 0)`. Each Euler step is

    .. math::

        \mathbf x_{n+1} = \mathbf x_n + h\, \mathbf v_n, \qquad
        \mathbf v_{n+1} = \mathbf v_n + h\, (-9.8, 0.1, 0),

    computed by ``eulerflow.odeint(..., method="euler", step_size=h)`` on the grid
    :func:`euler_grid` ``(h, t_end)``, one step per interval.

    Seed 000's hand-written update, ``x + h vx - 9.8 h^2`` (and ``y + h vy + 0.1 h^2``),
    is *not* this Euler method: it equals :math:`x_n + h\, v_{x,n+1}`, the position moved
    with the *updated* velocity, i.e. the semi-implicit (symplectic) Euler method. Both
    are first order; on this field explicit Euler ends at :math:`x(1) = 0.1 + 4.9 h` and
    the seed's update at :math:`0.1 - 4.9 h` (exact: 0.1). Their average, the Taylor step
    :math:`x + h v_x - 4.9 h^2`, is exact for a constant acceleration, and so is every
    Runge-Kutta method of order two or more (midpoint, rk4, ...).

    Parameters
    ----------
    h : float
        Step size, ``> 0``; at most ten million steps.
    t_end : float
        Last time, ``> 0``; when ``h`` does not divide it the last step is shortened.

    Returns
    -------
    states : ndarray, shape (k, 6)
        ``states[i]`` is the state at time ``euler_grid(h, t_end)[i]`` (``i h`` for
        ``i < k - 1``, ``t_end`` last); ``k`` is the number of steps plus one and
        ``states[0]`` the initial state.

    Examples
    --------
    >>> states = projectile_euler(0.1)
    >>> states.shape, round(float(states[-1, 0]), 12)
    ((11, 6), 0.59)
    """
    t = euler_grid(h, t_end)
    return odeint(fields.Projectile(), np.array(PROJECTILE_Y0), t, method="euler",
                  step_size=float(h), max_steps=t.size)
