"""Training checkpoints: weights, optimizer state, generator state and history
in one .npz, written atomically, so that a resumed run ends bit-identical to
an uninterrupted one."""

from __future__ import annotations

import json

import numpy as np

from ._files import atomic_savez, read_npz
from .history import History
from .optim import Optimizer

_FORMAT = "eulerflow-checkpoint"
_VERSION = 1


def _optimizer_config(opt: Optimizer) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in sorted(vars(opt).items())
            if not k.startswith("_") and k not in ("buffers", "step_count", "mu_product")}


def write(path, params: list[np.ndarray], optimizer: Optimizer, rng_state: np.ndarray,
          epochs_done: int, hist: History, setup: dict) -> None:
    """Writes the state of a training run after ``epochs_done`` epochs."""
    b1, b2 = optimizer.buffers
    arrays = {
        "format": np.array(_FORMAT),
        "version": np.array(_VERSION, dtype=np.int64),
        "setup": np.array(json.dumps(setup, sort_keys=True)),
        "optimizer": np.array(json.dumps({"type": type(optimizer).__name__,
                                          "config": _optimizer_config(optimizer)},
                                         sort_keys=True)),
        "opt_step": np.array(optimizer.step_count, dtype=np.int64),
        "opt_mu_product": np.array(optimizer.mu_product, dtype=np.float64),
        "opt_buf1": b1,
        "opt_buf2": b2,
        "rng_state": np.asarray(rng_state, dtype=np.uint64),
        "epochs_done": np.array(epochs_done, dtype=np.int64),
        "loss": hist.loss,
        "n_params": np.array(len(params), dtype=np.int64),
    }
    for name, values in hist.metrics.items():
        arrays[f"metric_{name}"] = values
    for i, p in enumerate(params):
        arrays[f"param_{i}"] = p
    atomic_savez(path, arrays)


def restore(path, params: list[np.ndarray], optimizer: Optimizer, setup: dict
            ) -> tuple[np.ndarray, int, History]:
    """Loads a checkpoint into ``params`` and ``optimizer`` (in place) after
    checking that it belongs to this training run; returns the generator
    state, the epochs done and the history so far."""
    data = read_npz(path, "eulerflow checkpoint")

    def refuse(why: str) -> ValueError:
        return ValueError(f"{path} cannot resume this training: {why}")

    if str(data.get("format", "")) != _FORMAT:
        raise refuse("not an eulerflow checkpoint (missing or foreign 'format' marker)")
    if int(data.get("version", -1)) != _VERSION:
        raise refuse(f"unsupported checkpoint version {data.get('version')}")
    try:
        saved_setup = json.loads(str(data["setup"]))
        saved_opt = json.loads(str(data["optimizer"]))
        n_params = int(data["n_params"])
        epochs_done = int(data["epochs_done"])
        rng_state = np.array(data["rng_state"], dtype=np.uint64)
        loss = np.array(data["loss"], dtype=np.float64)
    except (KeyError, ValueError, TypeError) as exc:
        raise refuse(f"malformed checkpoint ({exc})") from None
    mismatched = {k: (saved_setup.get(k), v) for k, v in setup.items()
                  if k != "epochs" and saved_setup.get(k) != v}
    if mismatched:
        raise refuse("it was written by a different training run: " + ", ".join(
            f"{k} was {a!r}, now {b!r}" for k, (a, b) in sorted(mismatched.items())))
    expected_opt = {"type": type(optimizer).__name__, "config": _optimizer_config(optimizer)}
    if saved_opt != json.loads(json.dumps(expected_opt, sort_keys=True)):
        raise refuse(f"the optimizer differs: saved {saved_opt}, now {expected_opt}")
    if n_params != len(params):
        raise refuse(f"{n_params} parameter arrays saved, the network has {len(params)}")
    if rng_state.shape != (4,) or not 0 <= epochs_done <= setup["epochs"] or loss.shape != (
            epochs_done,):
        raise refuse("inconsistent generator state, epoch count or history")
    saved = []
    for i, p in enumerate(params):
        a = data.get(f"param_{i}")
        if a is None or a.shape != p.shape or a.dtype != p.dtype:
            raise refuse(f"parameter {i} has shape {None if a is None else a.shape} / dtype "
                         f"{None if a is None else a.dtype}, expected {p.shape} / {p.dtype}")
        saved.append(a)
    b1, b2 = optimizer._state_for(params)
    if data["opt_buf1"].shape != b1.shape or data["opt_buf2"].shape != b2.shape:
        raise refuse("the optimizer state has the wrong size")
    metrics = {k[len("metric_"):]: v for k, v in data.items() if k.startswith("metric_")}
    # everything checked: now write into the live objects
    for p, a in zip(params, saved, strict=True):
        p[...] = a
    b1[...] = data["opt_buf1"]
    b2[...] = data["opt_buf2"]
    optimizer.step_count = int(data["opt_step"])
    optimizer.mu_product = float(data["opt_mu_product"])
    return rng_state, epochs_done, History(loss, metrics)
