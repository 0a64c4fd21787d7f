"""Optimizers with torch.optim's names, defaults and update rules.

Each optimizer is a small configuration plus its state (step count, momentum
buffers, moment estimates). The state belongs to the parameters it was first
used with and carries over between ``fit`` calls on the same network, as a
torch optimizer does; the arithmetic runs in the C++ core.
"""

from __future__ import annotations

import numpy as np

from . import _core
from ._validate import real_scalar

__all__ = ["Optimizer", "SGD", "Adam", "Nadam"]


class Optimizer:
    """Base class: holds the configuration and the state of one optimizer."""

    _kind = -1

    def __init__(self, lr: float):
        self.lr = real_scalar(lr, "lr", min_value=0.0)
        self.reset()

    def reset(self) -> None:
        """Forgets the state (as a freshly built torch optimizer)."""
        self._owner: tuple[int, ...] | None = None
        self._keep: list[np.ndarray] = []
        self.step_count = 0
        self.mu_product = 1.0
        self.buffers: tuple[np.ndarray, np.ndarray] | None = None

    def _config(self) -> _core.OptimConfig:
        c = _core.OptimConfig()
        c.kind = self._kind
        c.lr = self.lr
        return c

    def _state_for(self, params: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Returns the state buffers for ``params``, starting fresh for new ones."""
        owner = tuple(id(p) for p in params)
        dtype = params[0].dtype if params else np.float64
        if self._owner != owner or self.buffers is None or self.buffers[0].dtype != dtype:
            size = max(1, sum(p.size for p in params))
            self.buffers = (np.zeros(size, dtype), np.zeros(size, dtype))
            self.step_count = 0
            self.mu_product = 1.0
            self._owner = owner
            self._keep = list(params)  # keeps the ids meaningful
        return self.buffers

    def _scalars(self) -> _core.OptimScalars:
        s = _core.OptimScalars()
        s.step = self.step_count
        s.mu_product = self.mu_product
        return s

    def _store(self, s: _core.OptimScalars) -> None:
        self.step_count = int(s.step)
        self.mu_product = float(s.mu_product)

    def state_dict(self) -> dict:
        """The state as plain arrays and numbers (for checkpoints)."""
        b1, b2 = self.buffers if self.buffers is not None else (np.zeros(0), np.zeros(0))
        return {"step": self.step_count, "mu_product": self.mu_product,
                "buf1": b1.copy(), "buf2": b2.copy()}


class SGD(Optimizer):
    """Stochastic gradient descent, as ``torch.optim.SGD``.

    With momentum mu, dampening tau and weight decay lambda, at each step:
    ``g <- g + lambda p``; ``b <- g`` (first step) else ``b <- mu b + (1 - tau) g``;
    ``g <- g + mu b`` (Nesterov) or ``g <- b``; ``p <- p - lr g``.
    """

    _kind = 0

    def __init__(self, lr: float = 1e-2, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        super().__init__(lr)
        self.momentum = real_scalar(momentum, "momentum", min_value=0.0)
        self.dampening = real_scalar(dampening, "dampening")
        self.weight_decay = real_scalar(weight_decay, "weight_decay", min_value=0.0)
        self.nesterov = bool(nesterov)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("nesterov momentum requires a momentum > 0 and zero dampening")

    def _config(self):
        c = super()._config()
        c.momentum, c.dampening = self.momentum, self.dampening
        c.weight_decay, c.nesterov = self.weight_decay, self.nesterov
        return c

    def __repr__(self) -> str:
        return (f"SGD(lr={self.lr}, momentum={self.momentum}, dampening={self.dampening}, "
                f"weight_decay={self.weight_decay}, nesterov={self.nesterov})")


class _AdamBase(Optimizer):
    def __init__(self, lr, betas, eps, weight_decay):
        super().__init__(lr)
        try:
            b1, b2 = betas
        except (TypeError, ValueError):
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}") from None
        self.betas = (real_scalar(b1, "betas[0]", min_value=0.0, max_value=1.0),
                      real_scalar(b2, "betas[1]", min_value=0.0, max_value=1.0))
        if self.betas[0] >= 1.0 or self.betas[1] >= 1.0:
            raise ValueError(f"betas must lie in [0, 1), got {self.betas}")
        self.eps = real_scalar(eps, "eps", min_value=0.0)
        self.weight_decay = real_scalar(weight_decay, "weight_decay", min_value=0.0)

    def _config(self):
        c = super()._config()
        c.beta1, c.beta2 = self.betas
        c.eps, c.weight_decay = self.eps, self.weight_decay
        return c


class Adam(_AdamBase):
    """Adam (Kingma & Ba 2015) as ``torch.optim.Adam``: with bias corrections
    ``c1 = 1 - b1^t``, ``c2 = 1 - b2^t``: ``m <- b1 m + (1-b1) g``,
    ``v <- b2 v + (1-b2) g^2``, ``p <- p - (lr/c1) m / (sqrt(v)/sqrt(c2) + eps)``.
    """

    _kind = 1

    def __init__(self, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(lr, betas, eps, weight_decay)

    def __repr__(self) -> str:
        return (f"Adam(lr={self.lr}, betas={self.betas}, eps={self.eps}, "
                f"weight_decay={self.weight_decay})")


class Nadam(_AdamBase):
    """Nadam (Dozat 2016) as ``torch.optim.NAdam``: momentum schedule
    ``mu_t = b1 (1 - 0.5 * 0.96^(t psi))`` with ``psi = momentum_decay``;
    ``p <- p - lr (1-mu_t)/(1-prod mu) g/d - lr mu_{t+1}/(1-prod mu * mu_{t+1}) m/d``
    with ``d = sqrt(v / (1 - b2^t)) + eps``.
    """

    _kind = 2

    def __init__(self, lr: float = 2e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum_decay: float = 4e-3):
        super().__init__(lr, betas, eps, weight_decay)
        self.momentum_decay = real_scalar(momentum_decay, "momentum_decay", min_value=0.0)

    def _config(self):
        c = super()._config()
        c.momentum_decay = self.momentum_decay
        return c

    def __repr__(self) -> str:
        return (f"Nadam(lr={self.lr}, betas={self.betas}, eps={self.eps}, "
                f"weight_decay={self.weight_decay}, momentum_decay={self.momentum_decay})")
