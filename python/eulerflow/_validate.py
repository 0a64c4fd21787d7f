"""Checks at the boundary: every public entry point converts its arrays here."""

from __future__ import annotations

import numbers

import numpy as np

_REAL_KINDS = "iuf"


def shape_of(a) -> str:
    return str(tuple(np.shape(a)))


def real_array(value, name: str, dtype, *, ndim: tuple[int, ...] | None = None,
               finite: bool = True, allow_empty: bool = False,
               contiguous: bool = False) -> np.ndarray:
    """Converts ``value`` to an array of ``dtype`` after checking its kind.

    Complex, object, string and bool arrays are refused with TypeError (a plain
    cast would drop imaginary parts or parse strings); ints and other floats are
    converted. Strides are kept when no conversion is needed, unless
    ``contiguous``: then the result is C-contiguous, made by one copy at most.
    """
    if isinstance(value, np.ndarray):
        arr = value
    else:
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError) as exc:  # ragged lists and the like
            raise ValueError(f"{name} could not be read as an array: {exc}") from None
    if arr.dtype.kind not in _REAL_KINDS:
        raise TypeError(f"{name} must hold real numbers (int or float), got dtype {arr.dtype}"
                        f" with shape {arr.shape}")
    if ndim is not None and arr.ndim not in ndim:
        want = " or ".join(f"{d}-D" for d in ndim)
        raise ValueError(f"{name} must be {want}, got shape {arr.shape}")
    if not allow_empty and arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    if arr.dtype != dtype or (contiguous and not arr.flags.c_contiguous):
        # (an array already as asked for passes as it is: the cast would return it)
        with np.errstate(over="ignore"):  # a value beyond float32 becomes inf, refused below
            arr = arr.astype(dtype, order="C" if contiguous else "K", copy=False)
    if not arr.flags.aligned:  # the core reads whole machine words: realign views into bytes
        arr = arr.copy()
    if finite and not np.isfinite(arr).all():
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} NaN or infinite value(s) (shape {arr.shape})")
    return arr


# counts (epochs, steps, sizes) beyond this cannot be meant and would overflow the core
_MAX_COUNT = 2**62


def positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    if value > _MAX_COUNT:
        raise ValueError(f"{name} is too large: {value} > 2**62")
    return int(value)


def nonneg_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    if value > _MAX_COUNT:
        raise ValueError(f"{name} is too large: {value} > 2**62")
    return int(value)


def real_scalar(value, name: str, *, min_value: float | None = None,
                min_inclusive: bool = True, max_value: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    v = float(value)
    if not np.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    if min_value is not None:
        if (v < min_value) if min_inclusive else (v <= min_value):
            op = ">=" if min_inclusive else ">"
            raise ValueError(f"{name} must be {op} {min_value}, got {v}")
    if max_value is not None and v > max_value:
        raise ValueError(f"{name} must be <= {max_value}, got {v}")
    return v


def seed_value(seed, name: str = "seed") -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(seed).__name__}")
    if seed < 0 or seed >= 2**64:
        raise ValueError(f"{name} must be in [0, 2**64), got {seed}")
    return int(seed)


def float_dtype(dtype) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype must be float64 or float32, got {dtype!r}") from exc
    if dt not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise TypeError(f"dtype must be float64 or float32, got {dt}")
    return dt
