"""Neural ODEs: ``dz/dt = f_theta(z)`` with ``f`` any eulerflow network, trained
through its solver (seed 002)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from . import _core
from ._training import check_callbacks, diverged, epoch_hook
from ._validate import nonneg_int, positive_int, real_array, real_scalar, seed_value
from .history import History
from .nn import Module
from .ode import ADAPTIVE_METHODS, EXPLICIT_METHODS, FIXED_METHODS, _check_times
from .optim import SGD, Optimizer

__all__ = ["NeuralODE"]

_GRADIENTS = {"backprop": 0, "adjoint": 1, "checkpoint": 2}


class NeuralODE:
    """A Neural ODE ``dz/dt = field(z)`` whose field is an eulerflow network of
    equal input and output width d (``ef.Dense(2, 2, bias=False)`` is seed 002's
    LinearODE, ``ef.mlp([2, 4, 2], "relu")`` its NonLinearODE).

    Fixed-step methods take ``steps_per_interval`` equal steps between
    consecutive times, or steps of ``step_size`` (the last one shortened), or one
    step per interval when neither is given; both at once is an error. Adaptive
    methods (``bosh3``, ``dopri5``, ``tsit5``, ``dopri8``) control the local error with
    ``rtol``/``atol`` and land exactly on every time.

    Gradients (``gradient=``): ``"backprop"`` differentiates the discrete solver
    exactly, storing the state at every step; ``"checkpoint"`` gives the same gradient
    (to rounding; bit for bit for the fixed-step methods) with recursive checkpointing:
    the reverse sweep bisects the steps and recomputes the forward from one stored state
    per level, so stored states grow like log2(steps) (adaptive methods also keep each
    step's time and size, two numbers per step) for about log2(steps) times the forward
    work; ``"adjoint"`` integrates the adjoint ODE backwards (Chen et al. 2018) in
    memory independent of the steps, an approximation of the discrete gradient.

    Regularized training (Kelly et al. 2020, Finlay et al. 2020): ``kinetic_energy=k``
    and ``jacobian_frobenius=j`` add ``k * integral ||f(z)||^2 dt + j * integral
    ||df/dz||_F^2 dt`` along each window's trajectory to its loss, by the solver's own
    quadrature (the stages and weights of each step); their gradients are exact (the
    Jacobian penalty's by forward-over-reverse differentiation, for fields of Dense and
    activation layers). Penalized fields stay smooth, so adaptive solvers keep their
    number of evaluations low as training goes on (``hist.metrics["nfev"]``).
    """

    def __init__(self, field: Module, method: str = "euler", step_size: float | None = None,
                 steps_per_interval: int | None = None, rtol: float = 1e-7, atol: float = 1e-9,
                 max_steps: int = 1_000_000):
        if not isinstance(field, Module):
            raise TypeError(f"field must be an eulerflow network, got {type(field).__name__}")
        if field.in_features is None or field.in_features != field.out_features:
            raise ValueError("the field must map d features to d features, got "
                             f"{field.in_features} -> {field.out_features}")
        if field.dtype != np.float64:
            raise TypeError("a Neural ODE field must be float64")
        if not isinstance(method, str) or method not in EXPLICIT_METHODS:
            raise ValueError(f"method must be one of {sorted(EXPLICIT_METHODS)} (a Neural ODE "
                             f"differentiates an explicit Runge-Kutta solver), got {method!r}")
        if step_size is not None and steps_per_interval is not None:
            raise ValueError("give step_size or steps_per_interval, not both")
        if method in ADAPTIVE_METHODS and (step_size is not None or steps_per_interval is not None):
            raise ValueError(f"step_size and steps_per_interval apply to the fixed-step methods "
                             f"{FIXED_METHODS}; {method!r} chooses its steps from rtol and atol")
        self.field, self.method = field, method
        self.step_size = (None if step_size is None else
                          real_scalar(step_size, "step_size", min_value=0.0, min_inclusive=False))
        self.steps_per_interval = (None if steps_per_interval is None
                                   else positive_int(steps_per_interval, "steps_per_interval"))
        self.rtol = real_scalar(rtol, "rtol", min_value=0.0, min_inclusive=False)
        self.atol = real_scalar(atol, "atol", min_value=0.0, min_inclusive=False)
        self.max_steps = positive_int(max_steps, "max_steps")
        self.dim = int(field.in_features)
        self._core = _core.NeuralOde(field._native(), self.dim, method,
                                     self.steps_per_interval or 0, self.step_size or 0.0,
                                     self.rtol, self.atol, self.max_steps)

    def __repr__(self) -> str:
        steps = (f", steps_per_interval={self.steps_per_interval}" if self.steps_per_interval
                 else f", step_size={self.step_size}" if self.step_size else "")
        return f"NeuralODE({self.field!r}, method={self.method!r}{steps})"

    # --- checks ------------------------------------------------------------
    def _times(self, t, name: str = "t") -> np.ndarray:
        t = real_array(t, name, np.float64, ndim=(1,))
        _check_times(t, name)
        return np.ascontiguousarray(t)

    def _states(self, z, name: str) -> np.ndarray:
        z = real_array(z, name, np.float64, ndim=(1, 2))
        if z.shape[-1] != self.dim:
            raise ValueError(f"{name} must have {self.dim} values per state (the field's width), "
                             f"got shape {z.shape}")
        return np.ascontiguousarray(z)

    # --- running -----------------------------------------------------------
    def trajectory(self, z0, t, full_output: bool = False):
        """The states at every ``t[i]`` from ``z0`` (shape (d,) or (batch, d));
        returns shape ``(len(t), *z0.shape)``."""
        z0 = self._states(z0, "z0")
        t = self._times(t)
        batch = 1 if z0.ndim == 1 else z0.shape[0]
        out, info = self._core.trajectory(z0, batch, t)
        zs = out.reshape((t.size, *z0.shape))
        return (zs, dict(info)) if full_output else zs

    def loss_and_gradient(self, z0, target, t, gradient: str = "backprop",
                          kinetic_energy: float = 0.0, jacobian_frobenius: float = 0.0):
        """One window: the loss ``mean((z(t[-1]) - target)^2)`` from ``z(t[0]) = z0``
        (plus the penalties, see the class) and its gradient, a list matching
        ``field.parameters()``. Also returns the scratch memory the gradient held, in
        bytes: ``(loss, grads, nbytes)``."""
        _check_gradient(gradient)
        self._set_penalty(kinetic_energy, jacobian_frobenius)
        z0 = self._states(z0, "z0")
        target = self._states(target, "target")
        if z0.ndim != 1 or target.ndim != 1:
            raise ValueError("z0 and target must be single states of shape (d,)")
        t = self._times(t)
        if t.size < 2:
            raise ValueError("t needs at least two times")
        loss, flat, nbytes, _, _ = self._core.window_gradient(z0, target, t, _GRADIENTS[gradient])
        grads, k = [], 0
        for p in self.field.parameters():
            grads.append(flat[k:k + p.size].reshape(p.shape))
            k += p.size
        return float(loss), grads, int(nbytes)

    def fit(self, data, t, epochs: int = 500, optimizer: Optimizer | None = None, window: int = 1,
            batch_size: int = 1, gradient: str = "backprop", seed: int = 0,
            callbacks: Iterable[Callable] = (), progress=None, kinetic_energy: float = 0.0,
            jacobian_frobenius: float = 0.0) -> History:
        """Trains the field on the windows of ``data`` (shape (len(t), d)), as seed
        002: a window starts at ``data[i]``, integrates over ``t[i], ..., t[i+window]``
        and its loss is the MSE between the state reached and ``data[i+window]``
        (plus the ``kinetic_energy`` and ``jacobian_frobenius`` penalties, see the
        class). Windows are shuffled each epoch (seeded); each optimizer step averages
        ``batch_size`` windows; ``hist.loss[e]`` is the mean window loss of epoch e,
        each taken before its step; ``hist.metrics["nfev"][e]`` counts the field
        evaluations of the epoch's forward integrations and ``hist.metrics["penalty"][e]``
        is the mean window penalty. The epoch loop runs in the C++ core; Python is
        called once per epoch only for ``callbacks`` (``cb(epoch, loss)``, True
        stops) and the progress bar. ``gradient="backprop"`` differentiates the
        discrete solver exactly; ``"checkpoint"`` gives the same gradient storing
        log2(steps) states; ``"adjoint"`` integrates the adjoint ODE backwards with
        memory independent of the number of steps.
        """
        _check_gradient(gradient)
        t = self._times(t)
        data = real_array(data, "data", np.float64, ndim=(2,))
        if data.shape[0] != t.size:
            raise ValueError(f"data has {data.shape[0]} rows but t has {t.size} times "
                             f"(data shape {data.shape})")
        if data.shape[1] != self.dim:
            raise ValueError(f"data has {data.shape[1]} columns but the field's width is "
                             f"{self.dim} (data shape {data.shape})")
        window, epochs, batch_size, optimizer = _training_options(t.size, window, epochs,
                                                                   batch_size, optimizer)
        seed = seed_value(seed)
        callbacks = check_callbacks(callbacks)
        params = self.field.parameters()
        if not params:
            raise ValueError("the field has no parameters to train")
        self._set_penalty(kinetic_energy, jacobian_frobenius)
        buf1, buf2 = optimizer._state_for(params)
        scalars = optimizer._scalars()
        with epoch_hook(callbacks, progress, epochs, "NeuralODE.fit") as on_epoch:
            losses, status, nfev, penalty = self._core.fit(
                np.ascontiguousarray(data), t, window, batch_size, epochs, _GRADIENTS[gradient],
                optimizer._config(), scalars, buf1, buf2, seed, on_epoch)
        optimizer._store(scalars)
        done = int(status.epochs_done)
        hist = History(losses[:done], {"nfev": nfev[:done], "penalty": penalty[:done]})
        if status.diverged:
            raise diverged(status, optimizer.lr, hist)
        return hist


    def _set_penalty(self, kinetic_energy, jacobian_frobenius) -> None:
        kinetic = real_scalar(kinetic_energy, "kinetic_energy", min_value=0.0)
        jacobian = real_scalar(jacobian_frobenius, "jacobian_frobenius", min_value=0.0)
        try:
            self._core.set_penalty(kinetic, jacobian)
        except ValueError as err:
            raise ValueError(f"jacobian_frobenius: {err}") from None


def _check_gradient(gradient) -> None:
    if not isinstance(gradient, str) or gradient not in _GRADIENTS:
        raise ValueError(f"gradient must be one of {sorted(_GRADIENTS)}, got {gradient!r}")


def _training_options(n_times: int, window, epochs, batch_size, optimizer):
    """The checked ``window``, ``epochs``, ``batch_size`` and ``optimizer`` (default the
    seed's SGD(1e-2, momentum 0.95)) of a Neural ODE training on ``n_times`` times."""
    window = positive_int(window, "window")
    if window >= n_times:
        raise ValueError(f"window must be smaller than the series: window={window} with "
                         f"{n_times} times")
    epochs = nonneg_int(epochs, "epochs")
    batch_size = positive_int(batch_size, "batch_size")
    if optimizer is None:
        optimizer = SGD(lr=1e-2, momentum=0.95)
    if not isinstance(optimizer, Optimizer):
        raise TypeError("optimizer must be an eulerflow.optim optimizer, got "
                        f"{type(optimizer).__name__}")
    return window, epochs, batch_size, optimizer
