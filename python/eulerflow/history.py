"""Training histories."""

from __future__ import annotations

import numpy as np

__all__ = ["History"]


class History:
    """Per-epoch record of a training run.

    ``loss[e]`` is the mean of epoch e's batch losses, each taken before its
    optimizer step (as Keras and the seed notebooks report); ``metrics`` maps a
    name (e.g. ``"accuracy"``) to an array of the same length.
    """

    def __init__(self, loss=(), metrics: dict | None = None):
        self.loss = np.asarray(loss, dtype=np.float64).reshape(-1)
        self.metrics = {k: np.asarray(v, dtype=np.float64).reshape(-1)
                        for k, v in (metrics or {}).items()}

    @property
    def epochs(self) -> int:
        """The number of epochs recorded."""
        return int(self.loss.size)

    def extend(self, other: History) -> None:
        """Appends the epochs of ``other`` (a later run of the same training)."""
        self.loss = np.concatenate([self.loss, other.loss])
        for k, v in other.metrics.items():
            self.metrics[k] = np.concatenate([self.metrics.get(k, np.zeros(0)), v])

    def plot(self, ax=None):
        """Draws the loss per epoch (log scale); returns the matplotlib Axes."""
        from . import plot

        fig = plot.history(self, ax=ax)
        return ax if ax is not None else fig.axes[0]

    def __len__(self) -> int:
        return self.epochs

    def __repr__(self) -> str:
        last = f", final loss {self.loss[-1]:.6g}" if self.loss.size else ""
        names = f", metrics {sorted(self.metrics)}" if self.metrics else ""
        return f"History({self.epochs} epochs{last}{names})"
