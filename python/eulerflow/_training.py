"""What every native training loop shares on the Python side: the once-per-epoch
hook (callbacks and progress bar) and the divergence error."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from ._errors import DivergenceError
from .history import History


def check_callbacks(callbacks: Iterable[Callable]) -> list[Callable]:
    callbacks = list(callbacks) if callbacks else []
    for cb in callbacks:
        if not callable(cb):
            raise TypeError(f"callbacks must be callables, got {type(cb).__name__}")
    return callbacks


@contextmanager
def epoch_hook(callbacks: list[Callable], progress, epochs: int,
               desc: str) -> Iterator[Callable[[int, float], bool] | None]:
    """Yields the function the core calls once per epoch (or None when there is
    nothing to call, so the core never takes the GIL): it advances the progress
    bar and runs the callbacks ``cb(epoch, loss)``; any returning True stops."""
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs, desc=desc, unit="epoch", leave=False)
    on_epoch = None
    if callbacks or bar is not None:
        def on_epoch(epoch: int, value: float) -> bool:
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{value:.4g}")
            stop = False
            for cb in callbacks:
                stop = bool(cb(epoch, value)) or stop
            return stop
    try:
        yield on_epoch
    finally:
        if bar is not None:
            bar.close()


def diverged(status, lr: float, hist: History, epoch: int | None = None) -> DivergenceError:
    """The error for a run whose loss became non-finite (``epoch`` overrides the
    status's epoch when the run was split into several native calls)."""
    epoch = int(status.bad_epoch) if epoch is None else epoch
    return DivergenceError(
        f"training diverged at epoch {epoch} (batch {status.bad_batch}): the loss became "
        f"{status.bad_loss}; try a smaller learning rate than lr={lr}",
        epoch=epoch, batch=int(status.bad_batch), loss=float(status.bad_loss), history=hist)
