"""Exceptions raised by eulerflow."""

from __future__ import annotations

__all__ = ["DivergenceError"]


class DivergenceError(RuntimeError, FloatingPointError):
    """A training run whose loss became NaN or infinite.

    Attributes: ``epoch`` (0-based), ``batch`` (0-based within the epoch, or the
    fact index for ``learn``), ``loss`` (the non-finite value) and ``history``
    (the :class:`~eulerflow.History` of the completed epochs).
    """

    def __init__(self, message: str, *, epoch: int = -1, batch: int = -1,
                 loss: float = float("nan"), history=None):
        super().__init__(message)
        self.epoch = epoch
        self.batch = batch
        self.loss = loss
        self.history = history
