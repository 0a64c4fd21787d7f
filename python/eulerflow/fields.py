"""Native vector fields: dy/dt = f(t, y) evaluated in the C++ core, so that an
integration makes no Python call per step. Each field is also callable from
Python, ``field(t, y)``, on one state (d,) or a batch (n, d)."""

from __future__ import annotations

import numpy as np

from . import _core
from ._validate import real_array, real_scalar

__all__ = ["NativeField", "Linear", "Lorenz", "Projectile", "VanDerPol", "Arenstorf"]


class NativeField:
    """Base class of the native fields; ``dim`` is the state dimension."""

    _core_field: _core.Field

    @property
    def dim(self) -> int:
        """The state dimension d."""
        return int(self._core_field.dim)

    def __call__(self, t: float, y) -> np.ndarray:
        """``f(t, y)`` evaluated natively, for one state (d,) or a batch (n, d)."""
        y = real_array(y, "y", np.float64, ndim=(1, 2))
        if y.shape[-1] != self.dim:
            raise ValueError(f"y must have {self.dim} values per state, got shape {y.shape}")
        return self._core_field(float(t), np.ascontiguousarray(y))

    def jacobian(self, t: float, y) -> np.ndarray:
        """The analytic Jacobian ``df/dy`` at ``(t, y)``: shape (d, d) for one state (d,),
        (n, d, d) for a batch (n, d). ``method="radau5"`` uses it instead of finite
        differences."""
        y = real_array(y, "y", np.float64, ndim=(1, 2))
        if y.shape[-1] != self.dim:
            raise ValueError(f"y must have {self.dim} values per state, got shape {y.shape}")
        J = self._core_field.jacobian(float(t), np.ascontiguousarray(y))
        return J[0] if y.ndim == 1 else J


class Linear(NativeField):
    """The linear field ``dy/dt = A y + b`` (``A`` of shape (d, d), ``b`` of
    shape (d,) or None); its flow is ``y(t) = expm(t A) y0`` when b is None."""

    def __init__(self, A, b=None):
        A = real_array(A, "A", np.float64, ndim=(2,))
        if A.shape[0] != A.shape[1]:
            raise ValueError(f"A must be square, got shape {A.shape}")
        if b is not None:
            b = real_array(b, "b", np.float64, ndim=(1,))
            if b.shape != (A.shape[0],):
                raise ValueError(f"b must have shape ({A.shape[0]},), got {b.shape}")
        self.A, self.b = A.copy(), None if b is None else b.copy()
        self._core_field = _core.LinearField(self.A, self.b)

    def __repr__(self) -> str:
        return f"Linear(A={self.A.tolist()}, b={None if self.b is None else self.b.tolist()})"


class Lorenz(NativeField):
    """Lorenz (1963): ``x' = sigma (y - x)``, ``y' = x (rho - z) - y``,
    ``z' = x y - beta z``."""

    def __init__(self, sigma: float = 10.0, rho: float = 28.0, beta: float = 8.0 / 3.0):
        self.sigma = real_scalar(sigma, "sigma")
        self.rho = real_scalar(rho, "rho")
        self.beta = real_scalar(beta, "beta")
        self._core_field = _core.LorenzField(self.sigma, self.rho, self.beta)

    def __repr__(self) -> str:
        return f"Lorenz(sigma={self.sigma}, rho={self.rho}, beta={self.beta})"


class Projectile(NativeField):
    """Seed 000's projectile as a first-order system on the state
    ``(x, y, z, vx, vy, vz)``: ``d(position)/dt = velocity``,
    ``d(velocity)/dt = (gravity, wind, drift)``. The seed's defaults: gravity
    -9.8 along x (height), a constant wind 0.1 along y, and no acceleration
    along z, where the initial vz = 0.1 gives the constant drift dz/dt = 0.1.
    """

    def __init__(self, gravity: float = -9.8, wind: float = 0.1, drift: float = 0.0):
        self.gravity = real_scalar(gravity, "gravity")
        self.wind = real_scalar(wind, "wind")
        self.drift = real_scalar(drift, "drift")
        self._core_field = _core.ProjectileField(self.gravity, self.wind, self.drift)

    def analytic(self, y0, t) -> np.ndarray:
        """The exact state at times ``t`` from ``y0`` (shape (len(t), 6))."""
        y0 = real_array(y0, "y0", np.float64, ndim=(1,))
        if y0.shape != (6,):
            raise ValueError(f"y0 must have shape (6,), got {y0.shape}")
        t = real_array(t, "t", np.float64, ndim=(1,))[:, None]
        acc = np.array([self.gravity, self.wind, self.drift])
        pos = y0[:3] + y0[3:] * t + 0.5 * acc * t**2
        vel = y0[3:] + acc * t
        return np.concatenate([pos, vel], axis=1)

    def __repr__(self) -> str:
        return f"Projectile(gravity={self.gravity}, wind={self.wind}, drift={self.drift})"


class VanDerPol(NativeField):
    """Van der Pol oscillator: ``y0' = y1``, ``y1' = mu (1 - y0^2) y1 - y0``."""

    def __init__(self, mu: float = 1.0):
        self.mu = real_scalar(mu, "mu")
        self._core_field = _core.VanDerPolField(self.mu)

    def __repr__(self) -> str:
        return f"VanDerPol(mu={self.mu})"


class Arenstorf(NativeField):
    """The Arenstorf orbit (restricted three-body problem, Earth-Moon mass ratio
    ``mu``) on ``(x, y, vx, vy)``; ``PERIOD`` and ``Y0`` give the periodic orbit
    of Hairer, Norsett & Wanner (Solving ODEs I, II.0)."""

    #: The Earth-Moon mass ratio of the classic orbit.
    MU = 0.012277471
    #: The period of the orbit from ``Y0``.
    PERIOD = 17.0652165601579625588917206249
    #: The initial state (x, y, vx, vy) of the periodic orbit.
    Y0 = (0.994, 0.0, 0.0, -2.00158510637908252240537862224)

    def __init__(self, mu: float = MU):
        self.mu = real_scalar(mu, "mu")
        self._core_field = _core.ArenstorfField(self.mu)

    def __repr__(self) -> str:
        return f"Arenstorf(mu={self.mu})"
