"""Saving and loading networks as .npz files: architecture as JSON, weights as
arrays, no pickle anywhere. Files are written atomically (temporary file,
fsync, rename) and load back bit for bit."""

from __future__ import annotations

import json
import os

import numpy as np

from ._files import atomic_savez, read_npz
from .nn import (
    Activation,
    ActivityPenalty,
    Dense,
    Map,
    Module,
    Residual,
    ResidualFlow,
    Sequential,
)

__all__ = ["save", "load"]

_FORMAT = "eulerflow-network"
_VERSION = 1
_MAX_DEPTH = 1_000_000  # a tampered file must not ask for an unbounded network


def _describe(module: Module, dense_ids: dict[int, int], dense_list: list[Dense]) -> dict:
    if isinstance(module, Dense):
        if id(module) not in dense_ids:
            dense_ids[id(module)] = len(dense_list)
            dense_list.append(module)
        return {"type": "Dense", "ref": dense_ids[id(module)]}
    if isinstance(module, Activation):
        return {"type": "Activation", "name": module.name, "params": module.params}
    if isinstance(module, ActivityPenalty):
        return {"type": "ActivityPenalty", "l1": module.l1, "l2": module.l2}
    if isinstance(module, ResidualFlow):
        return {"type": "ResidualFlow", "depth": module.depth, "t_end": module.t_end,
                "field": _describe(module.field, dense_ids, dense_list)}
    if isinstance(module, Residual):
        return {"type": "Residual", "mode": module.mode, "h": module.h,
                "block": _describe(module.block, dense_ids, dense_list)}
    if isinstance(module, Sequential):
        return {"type": "Sequential",
                "layers": [_describe(m, dense_ids, dense_list) for m in module.layers]}
    if isinstance(module, Map):
        raise TypeError("a network with Map layers cannot be saved: they hold Python functions")
    raise TypeError(f"cannot save a {type(module).__name__}")


def save(module: Module, path) -> None:
    """Writes ``module`` to ``path`` (.npz) atomically."""
    dense_list: list[Dense] = []
    arch = _describe(module, {}, dense_list)
    arrays: dict[str, np.ndarray] = {
        "format": np.array(_FORMAT),
        "version": np.array(_VERSION, dtype=np.int64),
        "architecture": np.array(json.dumps(arch)),
        "dense": np.array(json.dumps([
            {"n_in": d.in_features, "n_out": d.out_features, "bias": d.bias, "dtype": str(d.dtype),
             "bias_l1": d.bias_l1, "bias_l2": d.bias_l2}
            for d in dense_list])),
    }
    for i, d in enumerate(dense_list):
        arrays[f"W{i}"] = d.W
        if d.bias:
            arrays[f"b{i}"] = d.b
    atomic_savez(path, arrays)


def _refuse(path, why: str) -> ValueError:
    return ValueError(f"{path} is not a valid eulerflow network file: {why}")


def _build(desc, dense: list[Dense], path, used: set[int]) -> Module:
    if not isinstance(desc, dict) or "type" not in desc:
        raise _refuse(path, "malformed architecture")
    kind = desc["type"]
    try:
        if kind == "Dense":
            ref = desc["ref"]
            if not isinstance(ref, int) or not 0 <= ref < len(dense):
                raise _refuse(path, f"bad Dense reference {ref!r}")
            used.add(ref)
            return dense[ref]
        if kind == "Activation":
            return Activation(desc["name"], **desc["params"])
        if kind == "ActivityPenalty":
            return ActivityPenalty(desc["l1"], desc["l2"])
        if kind == "ResidualFlow":
            depth = desc["depth"]
            if not isinstance(depth, int) or not 1 <= depth <= _MAX_DEPTH:
                raise _refuse(path, f"ResidualFlow depth {depth!r} is outside [1, {_MAX_DEPTH}]")
            return ResidualFlow(_build(desc["field"], dense, path, used), depth, desc["t_end"])
        if kind == "Residual":
            return Residual(_build(desc["block"], dense, path, used), mode=desc["mode"],
                            h=desc["h"])
        if kind == "Sequential":
            return Sequential([_build(d, dense, path, used) for d in desc["layers"]])
    except (KeyError, TypeError) as exc:
        raise _refuse(path, f"malformed {kind} entry ({exc})") from None
    raise _refuse(path, f"unknown layer type {kind!r}")


def load(path) -> Module:
    """Reads a network written by ``save``. Refuses foreign, truncated or
    tampered files with ValueError (every key, shape and dtype is checked)."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"path must be a file path, got {type(path).__name__}")
    try:
        return _load(path)
    except (TypeError, OverflowError, RecursionError, NotImplementedError, IndexError) as exc:
        # whatever a tampered file makes the parsing trip on is reported as such
        raise _refuse(path, f"malformed content ({type(exc).__name__}: {exc})") from None


def _load(path) -> Module:
    data = read_npz(path, "eulerflow network file")
    if not isinstance(data, dict) or str(data.get("format", "")) != _FORMAT:
        raise _refuse(path, "missing or foreign 'format' marker")
    if int(data.get("version", -1)) != _VERSION:
        raise _refuse(path, f"unsupported version {data.get('version')}")
    try:
        arch = json.loads(str(data["architecture"]))
        dense_desc = json.loads(str(data["dense"]))
    except (KeyError, json.JSONDecodeError) as exc:
        raise _refuse(path, f"bad architecture ({exc})") from None
    if not isinstance(dense_desc, list):
        raise _refuse(path, "bad dense table")
    expected = {"format", "version", "architecture", "dense"}
    dense: list[Dense] = []
    for i, d in enumerate(dense_desc):
        # the sizes must be those of the arrays actually stored, before anything of
        # that size is allocated (a tampered table could ask for terabytes)
        try:
            shape = (int(d["n_out"]), int(d["n_in"]))
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise _refuse(path, f"bad Dense entry {i} ({exc})") from None
        stored = data.get(f"W{i}")
        if stored is None or stored.shape != shape:
            raise _refuse(path, f"Dense entry {i} declares shape {shape} but array W{i} has "
                                f"shape {None if stored is None else stored.shape}")
        try:
            layer = Dense(int(d["n_in"]), int(d["n_out"]), bias=bool(d["bias"]), seed=0,
                          dtype=np.dtype(d["dtype"]), bias_l1=float(d.get("bias_l1", 0.0)),
                          bias_l2=float(d.get("bias_l2", 0.0)))
        except (KeyError, TypeError, ValueError) as exc:
            raise _refuse(path, f"bad Dense entry {i} ({exc})") from None
        names = [f"W{i}"] + ([f"b{i}"] if layer.bias else [])
        for name, target in zip(names, layer._params(), strict=True):
            if name not in data:
                raise _refuse(path, f"missing array {name}")
            arr = data[name]
            if arr.shape != target.shape or arr.dtype != target.dtype:
                raise _refuse(path, f"array {name} has shape {arr.shape} and dtype {arr.dtype}, "
                                    f"expected {target.shape} and {target.dtype}")
            target[...] = arr
            expected.add(name)
        dense.append(layer)
    extra = set(data) - expected
    if extra:
        raise _refuse(path, f"unexpected arrays {sorted(extra)}")
    used: set[int] = set()
    module = _build(arch, dense, path, used)
    if used != set(range(len(dense))):
        raise _refuse(path, f"Dense entries {sorted(set(range(len(dense))) - used)} are never used")
    return module
