"""Fuzzing the boundary: every public entry point, fed random shapes, dtypes, memory
layouts, empty arrays, NaN/inf and impossible sizes, either returns its documented
result (checked against the call on the contiguous array of the network's dtype) or
raises ValueError/TypeError/MemoryError whose message names the argument. Never a
crash.

The array fuzzers hand weird strides to the C++ core, so each one runs in a child
process (``_run_in_child``): a segfault there fails one test and shows the last input
the child printed, instead of killing pytest. Impossible sizes and corrupt files run in
children too, under an address-space limit so that a huge allocation fails the same way
whatever the machine's overcommit policy. Hypothesis runs derandomized: the same
examples every run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import zipfile

import eulerflow as ef
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

TESTS = os.path.dirname(os.path.abspath(__file__))
# under .ci/sanitize (AddressSanitizer preloaded, inherited by the children): ASan maps
# terabytes of shadow memory, so no address-space limit can be set, and it reports a
# C++ `new` beyond its maximum size as a fatal error of its own instead of bad_alloc
UNDER_ASAN = "asan" in os.environ.get("LD_PRELOAD", "")
F64 = np.dtype(np.float64)
REFUSALS = (ValueError, TypeError, MemoryError)
REFUSED = object()  # what `outcome` returns for a correct refusal


def fuzz_settings(n: int):
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


# --- arrays of every dtype and layout ------------------------------------------------------

NUMERIC = ("float64", "float32", "int8", "int32", "int64", "uint16")
FOREIGN = ("complex128", "object", "bool", "str")
# misaligned data pointers used to reach the core (UndefinedBehaviorSanitizer reported
# them); they are realigned at the boundary now, and under the sanitizers the fuzzers
# leave them to their own test
LAYOUTS = ("C", "F", "step", "negative", "broadcast", "list") + (() if UNDER_ASAN
                                                                else ("unaligned",))
SPECIALS = (np.nan, np.inf, -np.inf)


def sometimes(rare, common, one_in: int):
    """``rare`` about once in ``one_in`` draws, else ``common``."""
    return st.integers(0, one_in - 1).flatmap(lambda i: rare if i == one_in - 1 else common)


def _materialize(base: np.ndarray, kind: str) -> np.ndarray:
    return np.asarray(_convert(np.asarray(base), kind))


def _convert(base: np.ndarray, kind: str):
    if kind == "str":
        return np.round(base, 2).astype(str)  # numeric strings: must not be parsed
    if kind == "object":
        return base.astype(object)
    if kind == "bool":
        return base > 0
    if kind == "complex128":
        return base.astype(np.complex128)  # zero imaginary part: still refused
    dt = np.dtype(kind)
    if dt.kind in "iu":
        clean = np.nan_to_num(np.round(base * 3), nan=0.0, posinf=0.0, neginf=0.0)
        return (np.abs(clean) if dt.kind == "u" else clean).astype(dt)
    return base.astype(dt)


def _lay_out(a: np.ndarray, layout: str):
    """The same values as ``a`` (except "broadcast": rows repeat the first) held in
    the given memory layout."""
    if layout == "list":
        return a.tolist()
    if layout == "F":
        return np.asfortranarray(a)
    if layout == "step":  # every other element of a larger array: positive strides
        big = a
        for axis in range(a.ndim):
            big = np.repeat(big, 2, axis=axis)
        return big[(slice(None, None, 2),) * a.ndim]
    if layout == "negative":
        flip = (slice(None, None, -1),) * a.ndim
        return np.ascontiguousarray(a[flip])[flip]
    if layout == "broadcast" and a.ndim and a.shape[0]:  # zero stride, read-only
        return np.broadcast_to(a[:1], a.shape)
    if layout == "unaligned" and a.dtype.kind in "iufcb" and a.dtype.itemsize > 1 and a.size:
        buf = np.zeros(a.nbytes + 1, np.uint8)
        out = np.frombuffer(buf.data, a.dtype, count=a.size, offset=1).reshape(a.shape)
        out[...] = a
        return out
    return np.ascontiguousarray(a)


@st.composite
def arrays(draw, shapes, kinds=NUMERIC + FOREIGN, fill: str = "normal", scale: float = 1.0):
    """An array (or nested list) of a drawn shape, dtype and layout; ``fill="time"``
    gives mostly strictly monotone values."""
    shape = draw(shapes)
    numeric = [k for k in kinds if k in NUMERIC]
    foreign = [k for k in kinds if k not in NUMERIC]
    kind = draw(sometimes(st.sampled_from(foreign), st.sampled_from(numeric), 6) if foreign
                else st.sampled_from(numeric))
    layout = draw(st.sampled_from(LAYOUTS))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    size = int(np.prod(shape))
    if fill == "time":
        order = draw(st.sampled_from(["up", "up", "down", "repeat", "random"]))
        base = np.cumsum(rng.uniform(0.1, 0.5, size)) + rng.uniform(-1, 1)
        if order == "down":
            base = -base
        elif order == "repeat" and size >= 2:
            base[1] = base[0]
        elif order == "random":
            base = rng.standard_normal(size)
        base = base.reshape(shape)
    else:
        base = rng.standard_normal(shape) * scale
    special = draw(sometimes(st.sampled_from(SPECIALS), st.none(), 8))
    if special is not None and size:
        base.flat[draw(st.integers(0, size - 1))] = special
    return _lay_out(_materialize(np.asarray(base, dtype=np.float64), kind), layout)


def shapes(*valid):
    """Mostly one of the ``valid`` shapes, otherwise any shape of up to 3 small dims
    (empty ones included)."""
    return sometimes(st.lists(st.integers(0, 4), max_size=3).map(tuple),
                     st.sampled_from(valid), 4)


def as_array(value) -> np.ndarray:
    return value if isinstance(value, np.ndarray) else np.asarray(value)


def contiguous(value, dtype=F64) -> np.ndarray:
    return np.ascontiguousarray(as_array(value), dtype=dtype)


def describe(value) -> str:
    if not isinstance(value, np.ndarray):
        return f"{type(value).__name__} of shape {np.shape(value)}"
    return (f"{value.dtype}{value.shape} strides={value.strides} "
            f"aligned={value.flags.aligned} C={value.flags.c_contiguous}")


# --- the oracle: what the boundary must do with an array -----------------------------------

def array_error(value, dtype=F64, ndims=(1, 2), shape_ok=lambda s: True):
    """The exception the boundary must raise for ``value`` (None: it must accept it),
    as documented: non-real kinds are a TypeError; wrong ndim, empty, non-finite
    (after conversion to ``dtype``) or wrongly shaped arrays a ValueError."""
    arr = as_array(value)
    if arr.dtype.kind not in "iuf":
        return TypeError
    if arr.ndim not in ndims or arr.size == 0:
        return ValueError
    with np.errstate(all="ignore"):
        if not np.isfinite(arr.astype(dtype)).all():
            return ValueError
    if not shape_ok(arr.shape):
        return ValueError
    return None


def monotone(value) -> bool:
    dt = np.diff(as_array(value).astype(np.float64))
    return bool(np.all(dt > 0) or np.all(dt < 0))


def first_error(*checks):
    """The first (exception, names) whose exception is not None, or (None, "")."""
    for exc, names in checks:
        if exc is not None:
            return exc, names
    return None, ""


def outcome(fn, expected, names: str):
    """Calls ``fn``. With ``expected`` None it must return (its result is returned);
    otherwise it must raise ``expected`` with a message matching the regex ``names``."""
    try:
        result = fn()
    except REFUSALS as exc:
        if expected is None:
            raise AssertionError(f"refused a valid input: {type(exc).__name__}: {exc}") from exc
        assert isinstance(exc, expected), (
            f"expected {expected.__name__}, got {type(exc).__name__}: {exc}")
        assert re.search(names, str(exc)), f"the message does not name {names!r}: {exc}"
        return REFUSED
    assert expected is None, f"accepted an input that must raise {expected.__name__}"
    return result


def same_bits(a, b) -> None:
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, a.shape, b.dtype, b.shape)
    np.testing.assert_array_equal(a, b)


def same_parameters(net, twin) -> None:
    for p, q in zip(net.parameters(), twin.parameters(), strict=True):
        same_bits(p, q)


def log(*parts) -> None:
    print(*parts, flush=True)  # the child's last line names the input of a crash


# --- running a fuzzer in a child process ---------------------------------------------------

def _run_in_child(code: str, timeout: float = 300.0, memory_limit_gb: float | None = None):
    """Runs ``code`` in a fresh interpreter (warnings as errors, as pytest runs here)."""
    prelude = f"import sys\nsys.path.insert(0, {TESTS!r})\n"
    if memory_limit_gb is not None and not UNDER_ASAN:
        limit = int(memory_limit_gb * 2**30)
        prelude += ("import resource\n"
                    f"resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))\n")
    return subprocess.run([sys.executable, "-W", "error", "-c", prelude + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=timeout, cwd=TESTS)


def _assert_no_signal(proc) -> None:
    if proc.returncode < 0:
        tail = "\n".join(proc.stdout.splitlines()[-5:])
        pytest.fail(f"the child was killed by signal {-proc.returncode}; its last lines:\n{tail}"
                    f"\nstderr:\n{proc.stderr[-2000:]}")


def run_fuzzer(name: str) -> None:
    proc = _run_in_child(f"import test_fuzz\ntest_fuzz.{name}()\nprint('FUZZ-DONE')")
    _assert_no_signal(proc)
    assert proc.returncode == 0 and "FUZZ-DONE" in proc.stdout, (
        f"{name} failed in its child process:\n{proc.stderr[-6000:]}")


# --- the networks under test ----------------------------------------------------------------

def _residual_net():
    return ef.Sequential([
        ef.Dense(3, 3, seed=0), ef.Activation("elu"),
        ef.Residual(ef.Sequential([ef.Dense(3, 3, seed=1), ef.Activation("tanh")]),
                    mode="average"),
        ef.Residual(ef.Dense(3, 3, seed=2), mode="step", h=0.3),
        ef.Dense(3, 2, seed=3)])


def _flow_net():
    return ef.Sequential([ef.ResidualFlow(ef.mlp([3, 3], seed=0), depth=3, t_end=0.5),
                          ef.Activation("softplus"), ef.ActivityPenalty(l1=0.01, l2=0.02),
                          ef.Dense(3, 2, bias=False, seed=1)])


NETS = {  # every builder makes identical twins; all but "elementwise" map 3 -> 2
    "mlp": lambda: ef.mlp([3, 4, 2], "tanh", seed=0),
    "mlp32": lambda: ef.mlp([3, 4, 2], "leaky_relu", seed=0, dtype=np.float32),
    "residual": _residual_net,
    "flow": _flow_net,
    "elementwise": lambda: ef.Sequential([ef.Activation("sigmoid")]),  # any width
}
TRAINABLE = ("mlp", "mlp32", "residual", "flow")


# --- fuzzers (each runs inside a child process) ---------------------------------------------

@fuzz_settings(300)
@given(name=st.sampled_from(sorted(NETS)), data=st.data())
def fuzz_network_calls(name, data):
    """net(x), net.hidden_states(x) and net.backward(gy)."""
    net, twin = NETS[name](), NETS[name]()
    width = net.in_features or data.draw(st.integers(1, 4))
    x = data.draw(arrays(shapes((2, width), (5, width), (1, width), (width,))))
    log("network", name, "x:", describe(x))
    exp = array_error(x, net.dtype, (1, 2),
                      lambda s: net.in_features is None or s[-1] == net.in_features)
    y = outcome(lambda: net(x), exp, r"\bx\b")
    if y is REFUSED:
        return
    xc = contiguous(x, net.dtype)
    single = xc.ndim == 1
    k = net.out_features or xc.shape[-1]
    assert y.dtype == net.dtype and y.shape == ((k,) if single else (xc.shape[0], k))
    same_bits(y, twin(xc))
    for h, h_ref in zip(net.hidden_states(x), twin.hidden_states(xc), strict=True):
        same_bits(h, h_ref)

    gy = data.draw(arrays(shapes(y.shape, y.shape, (1, k), (3, k))))
    log("  gy:", describe(gy))
    n = 1 if single else xc.shape[0]
    exp = array_error(gy, net.dtype, (1, 2),
                      lambda s: s == (n, k) or (single and s == (k,)))
    gx = outcome(lambda: net.backward(gy), exp, r"\bgy\b")
    if gx is REFUSED:
        return
    same_bits(gx, twin.backward(contiguous(gy, net.dtype)))
    for g, g_ref in zip(net.gradients(), twin.gradients(), strict=True):
        same_bits(g, g_ref)


def _fit_targets_error(Y, loss: str, n: int, dtype, k: int = 2):
    arr = as_array(Y)
    if loss == "cross_entropy" and arr.ndim == 1:
        if arr.dtype.kind not in "iu":
            return TypeError
        labels = arr.astype(np.int64)
        if labels.shape[0] != n or (labels.size and (labels.min() < 0 or labels.max() >= k)):
            return ValueError
        return None
    return array_error(Y, dtype, (1, 2), lambda s: s == (n, k))


@fuzz_settings(300)
@given(name=st.sampled_from(TRAINABLE), loss=st.sampled_from(["mse", "half_se", "cross_entropy"]),
       data=st.data())
def fuzz_fit(name, loss, data):
    """net.fit(X, Y): the same bits as the fit on contiguous arrays of the net's dtype."""
    net, twin = NETS[name](), NETS[name]()
    n = data.draw(st.integers(1, 6))
    X = data.draw(arrays(shapes((n, 3), (n, 3), (n, 2), (n,))))
    if loss == "cross_entropy" and data.draw(st.booleans()):
        Y = data.draw(arrays(shapes((n,), (n,), (n + 1,)), scale=0.4))  # class indices
    else:
        Y = data.draw(arrays(shapes((n, 2), (n, 2), (n, 1), (n,))))
    log("fit", name, loss, "X:", describe(X), "Y:", describe(Y))
    Xa = as_array(X)
    exp, names = first_error(
        (array_error(X, net.dtype, (2,), lambda s: s[1] == 3), r"\bX\b"),
        (_fit_targets_error(Y, loss, Xa.shape[0] if Xa.ndim else -1, net.dtype), r"\bY\b"))
    kwargs = {"loss": loss, "optimizer": ef.optim.SGD(0.05, momentum=0.5), "epochs": 2,
              "batch_size": 4, "seed": 3}
    hist = outcome(lambda: net.fit(X, Y, **kwargs), exp, names)
    if hist is REFUSED:
        same_parameters(net, twin)  # a refused fit leaves the weights alone
        return
    Ya = as_array(Y)
    Yc = (np.ascontiguousarray(Ya, dtype=np.int64) if loss == "cross_entropy" and Ya.ndim == 1
          else contiguous(Y, net.dtype))
    ref = twin.fit(contiguous(X, net.dtype), Yc, **kwargs)
    same_bits(hist.loss, ref.loss)
    assert hist.loss.shape == (2,) and hist.loss.dtype == F64
    same_parameters(net, twin)


@fuzz_settings(200)
@given(name=st.sampled_from(TRAINABLE), data=st.data())
def fuzz_learn(name, data):
    """net.learn((X, Y), lr) with 2-D arrays of any dtype and layout."""
    net, twin = NETS[name](), NETS[name]()
    n = data.draw(st.integers(1, 4))
    X = np.asarray(data.draw(arrays(st.sampled_from([(n, 3), (n, 2), (n, 0)]),
                                    kinds=NUMERIC + ("complex128", "bool"))))
    Y = data.draw(arrays(shapes((n, 2), (n, 2), (n, 3), (n + 1, 2))))
    log("learn", name, "X:", describe(X), "Y:", describe(Y))
    exp, _ = first_error(  # both arrays, then their row counts, then their widths
        (array_error(X, net.dtype, (2,)), ""), (array_error(Y, net.dtype, (2,)), ""),
        (ValueError if (X.shape[1], np.shape(Y)) != (3, (n, 2)) else None, ""))
    losses = outcome(lambda: net.learn((X, Y), lr=0.01), exp, r"facts")
    if losses is REFUSED:
        return
    same_bits(losses, twin.learn((contiguous(X, net.dtype), contiguous(Y, net.dtype)), lr=0.01))
    same_parameters(net, twin)


FIELDS = {  # name -> (builder, state dimension or None for any)
    "lorenz": (lambda: ef.fields.Lorenz(), 3),
    "linear": (lambda: ef.fields.Linear([[0.0, 1.0], [-1.0, -0.1]], [0.1, 0.0]), 2),
    "vanderpol": (lambda: ef.fields.VanDerPol(0.5), 2),
    "network": (lambda: ef.mlp([2, 3, 2], "tanh", seed=0), 2),
    "callable": (lambda: (lambda t, y: -0.5 * y + np.sin(t)), None),
}


@fuzz_settings(300)
@given(field=st.sampled_from(sorted(FIELDS)),
       method=st.sampled_from(["euler", "midpoint", "rk4", "bosh3", "dopri5"]), data=st.data())
def fuzz_odeint(field, method, data):
    """ef.odeint(func, y0, t) on native fields, networks and Python callables."""
    make, dim = FIELDS[field]
    d = dim or data.draw(st.integers(1, 3))
    y0 = data.draw(arrays(shapes((d,), (2, d), (1, d))))
    t = data.draw(arrays(shapes((4,), (2,), (1,)), fill="time"))
    log("odeint", field, method, "y0:", describe(y0), "t:", describe(t))
    exp, names = first_error(  # odeint checks y0, then t, then y0 against the field
        (array_error(y0, F64, (1, 2)), r"\by0\b"),
        (array_error(t, F64, (1,), lambda s: monotone(t)), r"\bt\b"),
        (ValueError if dim is not None and as_array(y0).ndim in (1, 2)
         and as_array(y0).shape[-1] != d else None,
         r"\by0\b|field"))
    try:
        ys = outcome(lambda: ef.odeint(make(), y0, t, method=method), exp, names)
    except ef.IntegrationError:
        # a valid input the solver cannot finish (Lorenz backwards in time blows up):
        # the documented outcome, raised identically for the contiguous copy
        with pytest.raises(ef.IntegrationError):
            ef.odeint(make(), contiguous(y0), contiguous(t), method=method)
        return
    if ys is REFUSED:
        return
    y0c, tc = contiguous(y0), contiguous(t)
    assert ys.shape == (tc.size, *y0c.shape) and ys.dtype == F64
    same_bits(ys[0], y0c)
    same_bits(ys, ef.odeint(make(), y0c, tc, method=method))


@fuzz_settings(200)
@given(field=st.sampled_from(["lorenz", "linear", "vanderpol"]), data=st.data())
def fuzz_native_fields(field, data):
    """ef.fields.Linear(A, b) and field(t, y) of every native field."""
    make, d = FIELDS[field]
    y = data.draw(arrays(shapes((d,), (3, d), (d + 1,))))
    log("field", field, "y:", describe(y))
    exp = array_error(y, F64, (1, 2), lambda s: s[-1] == d)
    out = outcome(lambda: make()(0.5, y), exp, r"\by\b")
    if out is not REFUSED:
        same_bits(out, make()(0.5, contiguous(y)))
    A = data.draw(arrays(shapes((2, 2), (3, 3), (2, 3))))
    b = data.draw(st.one_of(st.none(), arrays(shapes((2,), (3,)))))
    log("Linear A:", describe(A), "b:", describe(b) if b is not None else None)
    Aa = as_array(A)
    exp, names = first_error(
        (array_error(A, F64, (2,), lambda s: s[0] == s[1]), r"\bA\b"),
        (None if b is None else
         array_error(b, F64, (1,), lambda s: Aa.ndim == 2 and s == (Aa.shape[0],)), r"\bb\b"))
    lin = outcome(lambda: ef.fields.Linear(A, b), exp, names)
    if lin is not REFUSED:
        ref = ef.fields.Linear(contiguous(A), None if b is None else contiguous(b))
        v = np.arange(lin.dim, dtype=np.float64)
        same_bits(lin(0.0, v), ref(0.0, v))


@fuzz_settings(200)
@given(data=st.data())
def fuzz_callable_field_results(data):
    """A Python field returning arrays of any dtype, shape and layout: real arrays of
    y's shape are used (the exact solution of a constant field is checked), other
    kinds are a TypeError, other shapes a ValueError, NaN an IntegrationError."""
    d = data.draw(st.integers(1, 3))
    batched = data.draw(st.booleans())
    yshape = (2, d) if batched else (d,)
    r = data.draw(arrays(shapes(yshape, yshape, (d + 1,), ())))
    method = data.draw(st.sampled_from(["euler", "rk4", "dopri5"]))
    log("callable returns", describe(r), "y0 shape", yshape, method)
    ra = as_array(r)
    t = np.array([0.0, 0.5, 1.0])

    def run():
        return ef.odeint(lambda t, y: r, np.zeros(yshape), t, method=method)

    if ra.dtype.kind not in "iuf":
        outcome(run, TypeError, r"func")
        return
    if ra.shape != yshape:
        outcome(run, ValueError, r"func")
        return
    rf = ra.astype(np.float64)
    if not np.isfinite(rf).all():
        with pytest.raises(ef.IntegrationError):  # the adaptive ones say "step size underflow"
            run()
        return
    ys = run()
    np.testing.assert_allclose(ys, t.reshape(-1, *([1] * len(yshape))) * rf, rtol=1e-12,
                               atol=1e-12)


NODE_FIELDS = {"dense": lambda: ef.Dense(2, 2, seed=0),
               "mlp": lambda: ef.mlp([2, 3, 2], "tanh", seed=0)}
NODE_SOLVERS = {"euler": {"method": "euler"},
                "rk4x2": {"method": "rk4", "steps_per_interval": 2},
                "heun-h": {"method": "heun", "step_size": 0.2},
                "dopri5": {"method": "dopri5"}}


@fuzz_settings(250)
@given(field=st.sampled_from(sorted(NODE_FIELDS)), solver=st.sampled_from(sorted(NODE_SOLVERS)),
       data=st.data())
def fuzz_neural_ode(field, solver, data):
    """NeuralODE.trajectory, loss_and_gradient and fit."""
    def make():
        return ef.NeuralODE(NODE_FIELDS[field](), **NODE_SOLVERS[solver])

    node, twin = make(), make()
    z0 = data.draw(arrays(shapes((2,), (3, 2), (3,))))
    t = data.draw(arrays(shapes((3,), (2,), (1,)), fill="time"))
    log("node", field, solver, "z0:", describe(z0), "t:", describe(t))
    exp, names = first_error(
        (array_error(z0, F64, (1, 2), lambda s: s[-1] == 2), r"\bz0\b"),
        (array_error(t, F64, (1,), lambda s: monotone(t)), r"\bt\b"))
    zs = outcome(lambda: node.trajectory(z0, t), exp, names)
    if zs is not REFUSED:
        same_bits(zs, twin.trajectory(contiguous(z0), contiguous(t)))

    target = data.draw(arrays(shapes((2,), (2,), (1, 2))))
    log("  target:", describe(target))
    z0a, ta = as_array(z0), as_array(t)
    exp, names = first_error(
        (array_error(z0, F64, (1, 2), lambda s: s[-1] == 2), r"\bz0\b"),
        (array_error(target, F64, (1, 2), lambda s: s[-1] == 2), r"\btarget\b"),
        (ValueError if z0a.ndim != 1 or as_array(target).ndim != 1 else None, r"z0|target"),
        (array_error(t, F64, (1,), lambda s: monotone(t)), r"\bt\b"),
        (ValueError if ta.size < 2 else None, r"\bt\b"))
    res = outcome(lambda: node.loss_and_gradient(z0, target, t), exp, names)
    if res is not REFUSED:
        loss, grads, _ = res
        ref_loss, ref_grads, _ = twin.loss_and_gradient(contiguous(z0), contiguous(target),
                                                        contiguous(t))
        assert loss == ref_loss
        for g, g_ref in zip(grads, ref_grads, strict=True):
            same_bits(g, g_ref)

    series = data.draw(arrays(shapes((ta.size, 2) if ta.ndim == 1 else (3, 2), (4, 2), (3, 3))))
    log("  data:", describe(series))
    exp, names = first_error(
        (array_error(t, F64, (1,), lambda s: monotone(t)), r"\bt\b"),
        (array_error(series, F64, (2,), lambda s: s == (ta.size, 2)), r"\bdata\b|\bt\b"),
        (ValueError if ta.size < 2 else None, r"\bwindow\b"))
    kwargs = {"epochs": 2, "optimizer": ef.optim.SGD(0.01), "window": 1, "seed": 5}
    hist = outcome(lambda: node.fit(series, t, **kwargs), exp, names)
    if hist is not REFUSED:
        ref = twin.fit(contiguous(series), contiguous(t), **kwargs)
        same_bits(hist.loss, ref.loss)
        same_parameters(node.field, twin.field)


@fuzz_settings(250)
@given(data=st.data())
def fuzz_meanfield(data):
    """TwoLayerReLU(a, w, b), net(x), loss, step and fit."""
    m = data.draw(st.integers(1, 4))
    w = data.draw(arrays(shapes((m, 2), (m, 2), (m + 1, 2))))
    a = data.draw(arrays(shapes((m,), (m,), (m, 1))))
    b = data.draw(arrays(shapes((m,), (m,), (m + 1,))))
    log("meanfield a:", describe(a), "w:", describe(w), "b:", describe(b))
    wa = as_array(w)
    exp, names = first_error(
        (array_error(w, F64, (2,)), r"\bw\b"),
        (array_error(a, F64, (1,)), r"\ba\b"),
        (array_error(b, F64, (1,)), r"\bb\b"))
    if exp is None and not (as_array(a).shape[0] == wa.shape[0] == as_array(b).shape[0]):
        exp, names = ValueError, r"\bm\b"
    net = outcome(lambda: ef.meanfield.TwoLayerReLU(a, w, b), exp, names)
    if net is REFUSED:
        net = ef.meanfield.TwoLayerReLU.random(3, 2, seed=0)
    else:
        for arr, src in ((net.a, a), (net.w, w), (net.b, b)):
            same_bits(arr, contiguous(src))
            assert arr.flags.c_contiguous and arr.flags.writeable
            assert not np.shares_memory(arr, as_array(src))
    twin = net.copy()
    d = net.d

    x = data.draw(arrays(shapes((4, d), (d,), (4, d + 1))))
    log("  x:", describe(x))
    out = outcome(lambda: net(x), array_error(x, F64, (1, 2), lambda s: s[-1] == d), r"\bx\b")
    if out is not REFUSED:
        ref = twin(contiguous(x))
        assert out == ref if as_array(x).ndim == 1 else np.array_equal(out, ref)

    n = data.draw(st.integers(1, 5))
    X = data.draw(arrays(shapes((n, d), (n, d), (n,))))
    Y = data.draw(arrays(shapes((n,), (n, 1), (n + 1,))))
    log("  X:", describe(X), "Y:", describe(Y))
    Xa = as_array(X)
    exp, names = first_error(
        (array_error(X, F64, (1, 2), lambda s: s[-1] == d), r"\bX\b"),
        (array_error(Y, F64, (1, 2), lambda s: int(np.prod(s)) == (Xa.shape[0] if Xa.ndim == 2
                                                                   else 1)), r"\bY\b"))
    loss = outcome(lambda: net.loss(X, Y), exp, names)
    if loss is REFUSED:
        return
    Xc, Yc = contiguous(X), contiguous(Y)
    assert loss == twin.loss(Xc, Yc)
    assert net.step(X, Y, 0.1) == twin.step(Xc, Yc, 0.1)
    run = net.fit(X, Y, 0.1, batch=2, epochs=2, shuffle=True, seed=4, snapshot_every=1)
    ref = twin.fit(Xc, Yc, 0.1, batch=2, epochs=2, shuffle=True, seed=4, snapshot_every=1)
    same_bits(run.snapshots, ref.snapshots)
    same_bits(run.loss, ref.loss)
    for arr, arr_ref in ((net.a, twin.a), (net.w, twin.w), (net.b, twin.b)):
        same_bits(arr, arr_ref)


def _mutate(value, path: list, new):
    """``value`` with the item at ``path`` replaced by ``new`` (None path: deleted)."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        out = dict(value)
        if rest or new is not _DELETE:
            out[head] = _mutate(value[head], rest, new)
        else:
            del out[head]
        return out
    out = list(value)
    if rest or new is not _DELETE:
        out[head] = _mutate(value[head], rest, new)
    else:
        del out[head]
    return out


_DELETE = object()


def _paths(value, prefix=()):
    yield list(prefix)
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))


JSON_VALUES = st.one_of(st.integers(-3, 70), st.floats(-1e3, 1e3), st.sampled_from(
    [None, True, "", "Dense", "Sequential", "Residual", "ResidualFlow", "Activation", "relu",
     "step", "float32", "int64", [], {}, [1], {"type": "Dense", "ref": 0}, float("nan"),
     -1.5e300, float("inf"), _DELETE]))


def _saved_network():
    return ef.Sequential([ef.Dense(3, 4, seed=0), ef.Activation("elu", alpha=0.5),
                          ef.Residual(ef.Dense(4, 4, seed=1), mode="step", h=0.2),
                          ef.ResidualFlow(ef.Dense(4, 4, seed=2), depth=2),
                          ef.ActivityPenalty(l1=0.1), ef.Dense(4, 2, bias=False, seed=3)])


@fuzz_settings(300)
@given(data=st.data())
def fuzz_load_tampered(data):
    """A saved file whose JSON tables or arrays were edited: ef.load returns a working
    network or raises ValueError. (Deep nesting, non-scalar markers and huge sizes have
    their own tests below.)"""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        _load_tampered(data, folder)


def _load_tampered(data, folder: str) -> None:
    good = os.path.join(folder, "good.npz")
    _saved_network().save(good)
    with np.load(good) as f:
        members = {k: f[k] for k in f.files}
    target = data.draw(st.sampled_from(["architecture", "dense", "array", "drop", "add"]))
    if target in ("architecture", "dense"):
        table = json.loads(str(members[target]))
        path = data.draw(st.sampled_from(list(_paths(table))))
        new = data.draw(JSON_VALUES)
        if not path and new is _DELETE:
            new = None
        members[target] = np.array(json.dumps(_mutate(table, path, new)))
        log("load: edit", target, path, repr(new))
    elif target == "array":
        key = data.draw(st.sampled_from([k for k in members if k[0] in "Wb"]))
        members[key] = np.asarray(data.draw(arrays(shapes(members[key].shape, (2, 2), (3,)),
                                                   kinds=NUMERIC + ("complex128", "bool"))))
        log("load: replace", key, describe(members[key]))
    elif target == "drop":
        key = data.draw(st.sampled_from(sorted(members)))
        del members[key]
        log("load: drop", key)
    else:
        members["extra"] = np.zeros(2)
        log("load: add a key")
    bad = os.path.join(folder, "bad.npz")
    np.savez(bad, **members)
    try:
        net = ef.load(bad)
    except ValueError:
        return
    x = np.ones((2, 3))
    try:
        y = net(x)
    except ValueError as exc:  # a width the edit made inconsistent with x
        assert "features" in str(exc)
        return
    assert y.shape[0] == 2


@pytest.mark.parametrize("name", [
    "fuzz_network_calls", "fuzz_fit", "fuzz_learn", "fuzz_odeint", "fuzz_native_fields",
    "fuzz_callable_field_results", "fuzz_neural_ode", "fuzz_meanfield", "fuzz_load_tampered"])
def test_fuzzer_in_a_child_process(name):
    run_fuzzer(name)


def test_unaligned_arrays_give_the_aligned_results_in_a_child():
    """float64 arrays at an odd address (a view into a byte buffer) give the bits of
    the same values in an aligned array, at every entry point that reads them."""
    proc = _run_in_child("""
        import numpy as np, eulerflow as ef

        def unaligned(a):
            a = np.asarray(a, dtype=np.float64)
            buf = np.zeros(a.nbytes + 1, np.uint8)
            out = np.frombuffer(buf.data, np.float64, count=a.size, offset=1).reshape(a.shape)
            out[...] = a
            assert not out.flags.aligned
            return out

        def both(fn, *arrays):
            a = fn(*arrays)
            b = fn(*[unaligned(x) for x in arrays])
            for p, q in zip(np.atleast_1d(a), np.atleast_1d(b)):
                assert np.array_equal(np.asarray(p), np.asarray(q))

        rng = np.random.default_rng(0)
        X, Y = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
        t = np.linspace(0.0, 1.0, 4)
        data = np.stack([np.cos(t), np.sin(t)], 1)
        both(lambda x: ef.mlp([3, 4, 2], seed=0)(x), X)
        both(lambda x, y: ef.mlp([3, 4, 2], seed=0).fit(x, y, epochs=2).loss, X, Y)
        both(lambda x, y: ef.mlp([3, 4, 2], seed=0).learn((x, y), 0.1), X, Y)
        both(lambda y0, tt: ef.odeint(ef.fields.Lorenz(), y0, tt), X[:2], t)
        both(lambda z0, tt: ef.NeuralODE(ef.Dense(2, 2, seed=0)).trajectory(z0, tt), data[0], t)
        both(lambda d, tt: ef.NeuralODE(ef.Dense(2, 2, seed=0)).fit(d, tt, epochs=2).loss, data, t)
        both(lambda x: ef.meanfield.TwoLayerReLU.random(4, 3, seed=0)(x), X)
        both(lambda x, y: ef.meanfield.TwoLayerReLU.random(4, 3, seed=0).fit(x, y, 0.1).loss,
             X, Y[:, 0])
        print("UNALIGNED-OK")
        """)
    _assert_no_signal(proc)
    assert proc.returncode == 0 and "UNALIGNED-OK" in proc.stdout, proc.stderr[-3000:]


# --- scalar arguments (in process: validated in Python before the core) -------------------

INTS = st.one_of(st.integers(-3, 6), st.sampled_from([np.int64(3), np.uint8(2), np.int32(-1)]))
FLOATS = st.floats(-1e6, 1e6).map(lambda v: 0.0 if abs(v) < 1e-100 else v)  # no subnormals
SCALARS = st.one_of(INTS, FLOATS, st.booleans(), st.none(), st.text(max_size=2),
                    st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -0.0, 2.5, np.float32(0.5),
                                     1 + 2j, [1], (2,), np.array(3), np.array([1.0])]))


def _is_int(v) -> bool:
    import numbers

    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


def _is_real(v) -> bool:
    import numbers

    return (isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))
            and bool(np.isfinite(float(v))))


RULES = {
    "posint": lambda v: _is_int(v) and v > 0,
    "nonneg_int": lambda v: _is_int(v) and v >= 0,
    "seed": lambda v: _is_int(v) and v >= 0,
    "real": _is_real,
    "pos_real": lambda v: _is_real(v) and v > 0,
    "nonneg_real": lambda v: _is_real(v) and v >= 0,
    "posint_or_none": lambda v: v is None or (_is_int(v) and v > 0),  # None: the default
    "pos_real_or_none": lambda v: v is None or (_is_real(v) and v > 0),
}

_X, _Y = np.linspace(-1, 1, 12).reshape(4, 3), np.linspace(0, 1, 8).reshape(4, 2)
_T = np.linspace(0.0, 1.0, 4)
_SERIES = np.stack([np.cos(_T), np.sin(_T)], axis=1)
_MF_X = np.linspace(-1, 1, 8).reshape(4, 2)


def _fit(**kw):
    return ef.mlp([3, 4, 2], "tanh", seed=0).fit(_X, _Y, **{"epochs": 1, **kw})


def _node(**kw):
    return ef.NeuralODE(ef.Dense(2, 2, seed=0), **kw).trajectory(_SERIES[0], _T)


def _node_fit(**kw):
    return ef.NeuralODE(ef.Dense(2, 2, seed=0)).fit(_SERIES, _T, **{"epochs": 1, **kw})


def _mf():
    return ef.meanfield.TwoLayerReLU.random(3, 2, seed=0)


SCALAR_ENTRIES = {  # (argument, rule, call)
    "Dense.n_in": ("n_in", "posint", lambda v: ef.Dense(v, 2)),
    "Dense.n_out": ("n_out", "posint", lambda v: ef.Dense(2, v)),
    "Dense.bias_l2": ("bias_l2", "nonneg_real", lambda v: ef.Dense(2, 2, bias_l2=v)),
    "mlp.sizes": (r"sizes\[1\]", "posint", lambda v: ef.mlp([2, v, 1])),
    "Activation.alpha": ("alpha", "real", lambda v: ef.Activation("elu", alpha=v)),
    "Activation.beta": ("beta", "pos_real", lambda v: ef.Activation("softplus", beta=v)),
    "Residual.h": (r"\bh\b", "real", lambda v: ef.Residual(ef.Dense(2, 2), h=v)),
    "ResidualFlow.depth": ("depth", "posint", lambda v: ef.ResidualFlow(ef.Dense(2, 2), v)),
    "ResidualFlow.t_end": ("t_end", "pos_real", lambda v: ef.ResidualFlow(ef.Dense(2, 2), 2, v)),
    "ActivityPenalty.l1": ("l1", "nonneg_real", lambda v: ef.ActivityPenalty(l1=v)),
    "fit.epochs": ("epochs", "nonneg_int", lambda v: _fit(epochs=v)),
    "fit.batch_size": ("batch_size", "posint", lambda v: _fit(batch_size=v)),
    "fit.seed": ("seed", "seed", lambda v: _fit(seed=v)),
    "fit.l2": ("l2", "nonneg_real", lambda v: _fit(l2=v)),
    "SGD.lr": ("lr", "nonneg_real", lambda v: _fit(optimizer=ef.optim.SGD(v))),
    "SGD.momentum": ("momentum", "nonneg_real", lambda v: ef.optim.SGD(0.1, momentum=v)),
    "Adam.eps": ("eps", "nonneg_real", lambda v: ef.optim.Adam(eps=v)),
    "learn.lr": ("lr", "nonneg_real",
                 lambda v: ef.mlp([3, 2], seed=0).learn((_X[:2] * 0.1, _Y[:2]), v)),
    "odeint.rtol": ("rtol", "pos_real",
                    lambda v: ef.odeint(ef.fields.VanDerPol(), [1.0, 0.0], _T, rtol=v)),
    "odeint.step_size": ("step_size", "pos_real_or_none", lambda v: ef.odeint(
        ef.fields.VanDerPol(), [1.0, 0.0], _T, method="rk4", step_size=v)),
    "odeint.max_steps": ("max_steps", "posint", lambda v: ef.odeint(
        ef.fields.VanDerPol(), [1.0, 0.0], _T, method="euler", max_steps=v)),
    "NeuralODE.steps_per_interval": ("steps_per_interval", "posint_or_none",
                                     lambda v: _node(steps_per_interval=v)),
    "NeuralODE.step_size": ("step_size", "pos_real_or_none", lambda v: _node(step_size=v)),
    "NeuralODE.atol": ("atol", "pos_real", lambda v: _node(method="bosh3", atol=v)),
    "NeuralODE.max_steps": ("max_steps", "posint", lambda v: _node(max_steps=v)),
    "NeuralODE.fit.epochs": ("epochs", "nonneg_int", lambda v: _node_fit(epochs=v)),
    "NeuralODE.fit.window": ("window", "posint",  # the series has 4 times: windows 1..3
                             lambda v: _node_fit(window=min(v, 3) if RULES["posint"](v) else v)),
    "NeuralODE.fit.batch_size": ("batch_size", "posint", lambda v: _node_fit(batch_size=v)),
    "NeuralODE.fit.seed": ("seed", "seed", lambda v: _node_fit(seed=v)),
    "meanfield.random.m": (r"\bm\b", "posint", lambda v: ef.meanfield.TwoLayerReLU.random(v, 2)),
    "meanfield.random.d": (r"\bd\b", "posint", lambda v: ef.meanfield.TwoLayerReLU.random(2, v)),
    "meanfield.small_sphere.radius": ("radius", "pos_real",
                                      lambda v: ef.meanfield.TwoLayerReLU.small_sphere(2, 2, v)),
    "meanfield.step.lr": ("lr", "nonneg_real", lambda v: _mf().step(_MF_X, _MF_X[:, 0], v)),
    "meanfield.fit.batch": ("batch", "posint", lambda v: _mf().fit(_MF_X, _MF_X[:, 0], 0.1,
                                                                   batch=v)),
    "meanfield.fit.epochs": ("epochs", "posint", lambda v: _mf().fit(_MF_X, _MF_X[:, 0], 0.1,
                                                                     epochs=v)),
    "meanfield.fit_teacher.steps": ("steps", "posint",
                                    lambda v: _mf().fit_teacher(_mf(), steps=v, n_test=5)),
    "meanfield.fit_teacher.snapshot_every": (
        "snapshot_every", "nonneg_int",
        lambda v: _mf().fit_teacher(_mf(), steps=4, snapshot_every=v, n_test=5)),
    "meanfield.fit_teacher.n_test": ("n_test", "posint",
                                     lambda v: _mf().fit_teacher(_mf(), steps=2, n_test=v)),
    "meanfield.fit_teacher.seed": ("seed", "seed",
                                   lambda v: _mf().fit_teacher(_mf(), steps=2, seed=v, n_test=5)),
    "set_num_threads": (r"\bn\b", "posint", ef.set_num_threads),
}


@pytest.fixture
def restore_threads():
    old = ef.get_num_threads()
    yield
    ef.set_num_threads(old)


@pytest.mark.parametrize("entry", sorted(SCALAR_ENTRIES))
@fuzz_settings(40)
@given(value=SCALARS)
def test_scalar_arguments_are_used_or_refused_by_name(restore_threads, entry, value):
    """Valid values (by the documented rule) are accepted; anything else (bools, None,
    strings, NaN/inf, out of range, arrays, complex) is a ValueError/TypeError that
    names the argument."""
    name, rule, call = SCALAR_ENTRIES[entry]
    valid = RULES[rule](value)
    try:
        call(value)
    except (ef.DivergenceError, ef.IntegrationError):
        assert valid  # a valid but extreme value may make a run diverge, as documented
    except REFUSALS as exc:
        assert not valid, f"{entry} refused the valid value {value!r}: {exc}"
        assert isinstance(exc, (ValueError, TypeError))
        assert re.search(name, str(exc)), f"{entry}: the message does not name {name}: {exc}"
    else:
        assert valid, f"{entry} accepted the invalid value {value!r}"


DTYPE_LIKES = [np.float64, np.float32, "float32", "f8", None, np.float16, np.int32, "int64",
               np.complex128, object, bool, str, "foo", 3, [("a", "f8")]]


@pytest.mark.parametrize("dtype", DTYPE_LIKES, ids=repr)
def test_network_dtype_argument_is_float64_or_float32_or_refused(dtype):
    try:
        wanted = np.dtype(dtype)
    except TypeError:
        wanted = None
    if wanted is not None and wanted in (np.dtype(np.float64), np.dtype(np.float32)):
        assert ef.Dense(2, 2, dtype=dtype).dtype == wanted
        assert ef.mlp([2, 3, 1], dtype=dtype).dtype == wanted
    else:
        with pytest.raises(TypeError, match="dtype"):
            ef.Dense(2, 2, dtype=dtype)


@fuzz_settings(150)
@given(layers=st.lists(st.one_of(
    st.tuples(st.just("dense"), st.integers(1, 3), st.integers(1, 3), st.booleans()),
    st.tuples(st.just("act"), st.sampled_from(sorted(ef.nn.ACTIVATIONS))),
    st.tuples(st.just("res"), st.integers(1, 3), st.integers(1, 3),
              st.sampled_from(["add", "average", "step"])),
    st.tuples(st.just("dense32"), st.integers(1, 3), st.integers(1, 3))), max_size=5))
def test_random_architectures_are_built_and_run_or_refused(layers):
    """Any chain of layers either builds into a network that runs on inputs of its
    width, or is refused with ValueError naming the offending layer."""
    modules, width, widths_ok, dtypes = [], None, True, set()
    for spec in layers:
        kind = spec[0]
        if kind in ("dense", "dense32"):
            dt = np.float32 if kind == "dense32" else np.float64
            mod = ef.Dense(spec[1], spec[2], bias=spec[3] if kind == "dense" else True,
                           seed=0, dtype=dt)
            dtypes.add(np.dtype(dt))
            widths_ok &= width is None or width == spec[1]
            width = spec[2]
        elif kind == "act":
            mod = ef.Activation(spec[1])
        else:
            k_in, k_out = spec[1], spec[2]
            if k_in != k_out:
                with pytest.raises(ValueError, match="width"):
                    ef.Residual(ef.Dense(k_in, k_out), mode=spec[3])
                continue
            mod = ef.Residual(ef.Dense(k_in, k_out, seed=1), mode=spec[3])
            dtypes.add(F64)
            widths_ok &= width is None or width == k_in
            width = k_out
        modules.append(mod)
    if not modules:
        with pytest.raises(ValueError, match="at least one layer"):
            ef.Sequential(modules)
        return
    if not widths_ok:
        with pytest.raises(ValueError, match="layer"):
            ef.Sequential(modules)
        return
    if len(dtypes) > 1:
        with pytest.raises(ValueError, match="dtype"):
            ef.Sequential(modules)
        return
    net = ef.Sequential(modules)
    n_in = net.in_features or 2
    y = net(np.linspace(-1, 1, 3 * n_in).reshape(3, n_in))
    assert y.shape == (3, net.out_features or n_in) and y.dtype == net.dtype


# --- impossible sizes: MemoryError or ValueError, never a crash (children) -----------------

HUGE = {  # name -> code raising MemoryError, or ValueError naming the argument or the size
    "Dense 2**40 x 2**40": "ef.Dense(2**40, 2**40)",
    "mlp width 2**36": "ef.mlp([4, 2**36, 1])",
    "ResidualFlow depth 2**62": "ef.ResidualFlow(ef.Dense(2, 2), depth=2**62)",
    "meanfield m 2**40": "ef.meanfield.TwoLayerReLU.random(2**40, 2)",
    "meanfield d 2**40": "ef.meanfield.TwoLayerReLU.random(2, 2**40)",
    "fit epochs 2**62": ("ef.mlp([2, 2], seed=0).fit(np.ones((3, 2)), np.ones((3, 2)),"
                         " epochs=2**62)"),
    "forward on a (2**40, 3) broadcast": (
        "ef.mlp([3, 2])(np.broadcast_to(np.ones(3), (2**40, 3)))"),
    "fit on a (2**40, 3) broadcast": ("ef.mlp([3, 2]).fit(np.broadcast_to(np.ones(3), (2**40, 3)),"
                                      " np.broadcast_to(np.ones(2), (2**40, 2)))"),
    "forward of a wide element-wise net": (
        "ef.Sequential([ef.Activation('tanh')])(np.broadcast_to(np.ones(1), (2**20, 2**20)))"),
    "odeint y0 (2**40, 3)": (
        "ef.odeint(ef.fields.Lorenz(), np.broadcast_to(np.ones(3), (2**40, 3)), [0, 1])"),
    "odeint output 2**45 values": (
        "ef.odeint(ef.fields.Linear(-np.eye(2)), np.ones((2**22, 2)), np.arange(2**22.0),"
        " method='euler')"),
    "NeuralODE output 2**45 values": (
        "ef.NeuralODE(ef.Dense(2, 2)).trajectory(np.ones((2**22, 2)), np.arange(2**22.0))"),
    "NeuralODE.fit epochs 2**62": (
        "ef.NeuralODE(ef.Dense(2, 2)).fit(np.ones((3, 2)), [0, 1, 2], epochs=2**62)"),
    "meanfield x (2**40, 2)": (
        "ef.meanfield.TwoLayerReLU.random(3, 2)(np.broadcast_to(np.ones(2), (2**40, 2)))"),
    "fit_teacher batch 2**40": (
        "m = ef.meanfield.TwoLayerReLU.random(3, 2)\n"
        "m.fit_teacher(m.copy(), steps=1, batch=2**40)"),
    "fit_teacher 2**62 snapshots": (
        "m = ef.meanfield.TwoLayerReLU.random(3, 2); m.fit_teacher(m.copy(), steps=2**62,"
        " snapshot_every=1)"),
    "teacher_samples 2**40": (
        "ef.meanfield.teacher_samples(ef.meanfield.TwoLayerReLU.random(3, 2), 2**40)"),
}
# numpy refuses a byte count beyond the address space with ValueError("array is too
# big"/"Maximum allowed dimension exceeded") rather than MemoryError: accepted as a
# memory refusal.
MEMORY_VALUE_ERROR = r"array is too big|Maximum allowed dimension|[Mm]emory|too large"


def _child_exception(code: str, limit_gb: float = 8.0) -> tuple[str, str]:
    """Runs ``code`` in a child under an address-space limit; returns the name and the
    message of the exception it raised ("" when it returned)."""
    proc = _run_in_child(f"""
        import numpy as np, eulerflow as ef
        try:
            exec({code!r})
        except BaseException as exc:
            print("RAISED", type(exc).__name__, str(exc).replace("\\n", " ")[:300])
        else:
            print("RETURNED")
        """, timeout=120, memory_limit_gb=limit_gb)
    _assert_no_signal(proc)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [s for s in proc.stdout.splitlines() if s.startswith(("RAISED", "RETURNED"))][-1]
    parts = line.split(" ", 2) + ["", ""]
    return parts[1], parts[2]


CPP_NEW = {"fit_teacher batch 2**40"}  # the impossible buffer is a std::vector


@pytest.mark.parametrize("case", sorted(HUGE))
def test_impossible_sizes_raise_memory_or_value_error_in_a_child(case):
    if UNDER_ASAN and case in CPP_NEW:
        pytest.skip("AddressSanitizer aborts on a huge operator new instead of bad_alloc")
    exc, message = _child_exception(HUGE[case])
    assert exc in ("MemoryError", "_ArrayMemoryError", "ValueError"), (exc, message)
    if exc == "ValueError":
        assert re.search(MEMORY_VALUE_ERROR, message), message


# --- corrupt files for ef.load (children) ---------------------------------------------------

@pytest.fixture(scope="module")
def byte_corruptions(tmp_path_factory):
    """Loads 300 corruptions (bit flips, zeroed runs, truncations, junk appended) of a
    saved network in one child; returns the child and its outcome per corruption:
    "intact" (the original network, bit for bit: the bytes were ones the format
    ignores), "changed", or the name of the exception ef.load raised."""
    good = tmp_path_factory.mktemp("corrupt") / "good.npz"
    _saved_network().save(good)
    proc = _run_in_child(f"""
        import os, numpy as np, eulerflow as ef
        good = {str(good)!r}
        raw = open(good, "rb").read()
        ref = ef.load(good)
        rng = np.random.default_rng(7)
        out = os.path.join(os.path.dirname(good), "bad.npz")
        for i in range(300):
            data = bytearray(raw)
            how = ("flip", "zero", "truncate", "append")[i % 4]
            pos = int(rng.integers(0, len(raw)))
            if how == "flip":
                data[pos] ^= 1 << int(rng.integers(0, 8))
            elif how == "zero":
                end = pos + int(rng.integers(1, 64))
                data[pos:end] = bytes(len(data[pos:end]))
            elif how == "truncate":
                data = data[:pos]
            else:
                data += bytes(rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8))
            open(out, "wb").write(bytes(data))
            print("TRY", i, how, pos, flush=True)
            try:
                net = ef.load(out)
            except Exception as exc:
                result = type(exc).__name__ + ":" + str(exc).replace(chr(10), " ")[:200]
            else:
                same = repr(net) == repr(ref) and all(
                    p.dtype == q.dtype and np.array_equal(p, q)
                    for p, q in zip(net.parameters(), ref.parameters(), strict=True))
                result = "intact" if same else "changed"
            print("OUTCOME", i, how, pos, result, flush=True)
        """)
    outcomes = [line.split(" ", 4)[1:] for line in proc.stdout.splitlines()
                if line.startswith("OUTCOME")]
    return proc, outcomes


def test_byte_level_corruption_never_crashes_the_loader_in_a_child(byte_corruptions):
    """Every corruption gives back the original network or an exception; none kills
    the process, none loads a different network."""
    proc, outcomes = byte_corruptions
    _assert_no_signal(proc)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(outcomes) == 300
    changed = [o for o in outcomes if o[3] == "changed"]
    assert not changed, changed
    assert sum(o[3].startswith("ValueError") for o in outcomes) > 200


def test_byte_level_corruption_is_refused_with_value_error(byte_corruptions):
    _, outcomes = byte_corruptions
    escaped = [o for o in outcomes if o[3] != "intact" and not o[3].startswith("ValueError")]
    assert not escaped, escaped


# --- escapes found by fuzzing, now closed --------------------------------------------------

def _tampered(tmp_path, **changes):
    good = tmp_path / "good.npz"
    ef.mlp([2, 2], seed=0).save(good)
    with np.load(good) as f:
        members = {k: f[k] for k in f.files}
    members.update(changes)
    bad = tmp_path / "bad.npz"
    np.savez(bad, **members)
    return bad


def test_load_refuses_a_non_scalar_version_marker_with_value_error(tmp_path):
    bad = _tampered(tmp_path, version=np.array([1, 1]))
    with pytest.raises(ValueError, match="not a valid eulerflow network file"):
        ef.load(bad)


def test_load_refuses_a_deeply_nested_architecture_with_value_error(tmp_path):
    arch = '{"type": "Dense", "ref": 0}'
    for _ in range(3000):
        arch = '{"type": "Sequential", "layers": [' + arch + "]}"
    bad = _tampered(tmp_path, architecture=np.array(arch))
    with pytest.raises(ValueError, match="not a valid eulerflow network file"):
        ef.load(bad)


@pytest.mark.parametrize("field", ["n_in", "n_out"])
def test_load_refuses_an_infinite_layer_size_with_value_error(tmp_path, field):
    dense = [{"n_in": 2, "n_out": 2, "bias": True, "dtype": "float64", field: float("inf")}]
    bad = _tampered(tmp_path, dense=np.array(json.dumps(dense)))
    with pytest.raises(ValueError, match="not a valid eulerflow network file"):
        ef.load(bad)


LOAD_HUGE = [
    pytest.param("architecture", id="ResidualFlow depth 2**62"),
    pytest.param("dense", id="Dense 2**20 x 2**20"),
    pytest.param("npy", id="npy header shape 2**41"),
]


@pytest.mark.parametrize("what", LOAD_HUGE)
def test_load_refuses_tampered_huge_sizes_with_value_error_in_a_child(tmp_path, what):
    good = tmp_path / "good.npz"
    ef.ResidualFlow(ef.Dense(2, 2, seed=0), depth=2).save(good)
    bad = tmp_path / "bad.npz"
    with np.load(good) as f:
        members = {k: f[k] for k in f.files}
    if what == "architecture":
        arch = json.loads(str(members["architecture"]))
        arch["depth"] = 2**62
        members["architecture"] = np.array(json.dumps(arch))
        np.savez(bad, **members)
    elif what == "dense":
        members["dense"] = np.array(json.dumps(
            [{"n_in": 2**20, "n_out": 2**20, "bias": True, "dtype": "float64"}]))
        np.savez(bad, **members)
    else:
        header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2199023255552,), }"
        head = header.encode("latin1")
        head += b" " * ((64 - (10 + len(head) + 1) % 64) % 64) + b"\n"
        npy = b"\x93NUMPY\x01\x00" + len(head).to_bytes(2, "little") + head + bytes(32)
        with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bad, "w") as zout:
            for item in zin.infolist():
                zout.writestr(item.filename, npy if item.filename == "W0.npy"
                              else zin.read(item.filename))
    exc, message = _child_exception(f"ef.load({str(bad)!r})")
    assert exc == "ValueError" and "not a valid eulerflow network file" in message, (exc,
                                                                                       message)


def test_load_refuses_an_int_path_and_leaves_descriptors_alone(tmp_path):
    path = tmp_path / "some.txt"
    path.write_text("not a network")
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(TypeError):
            ef.load(fd)
        os.fstat(fd)  # still open
    finally:
        try:
            os.close(fd)
        except OSError:
            pass


BIG_INTS = {  # a Python-validated int argument >= 2**63 reaches pybind11
    "fit.epochs": ("epochs", lambda: _fit(epochs=2**64)),
    "fit.batch_size": ("batch_size", lambda: _fit(batch_size=2**64)),
    "odeint.max_steps": ("max_steps", lambda: ef.odeint(ef.fields.VanDerPol(), [1.0, 0.0], _T,
                                                        max_steps=2**63)),
    "NeuralODE.steps_per_interval": ("steps_per_interval",
                                     lambda: ef.NeuralODE(ef.Dense(2, 2),
                                                          steps_per_interval=2**63)),
    "NeuralODE.max_steps": ("max_steps", lambda: ef.NeuralODE(ef.Dense(2, 2), max_steps=2**63)),
    "NeuralODE.fit.epochs": ("epochs", lambda: _node_fit(epochs=2**63)),
    "meanfield.fit_teacher.steps": ("steps", lambda: _mf().fit_teacher(_mf(), steps=2**63)),
    "meanfield.fit_teacher.n_test": ("n_test", lambda: _mf().fit_teacher(_mf(), steps=1,
                                                                         n_test=2**62)),
    "meanfield.fit.batch": ("batch", lambda: _mf().fit(_MF_X, _MF_X[:, 0], 0.1, batch=2**64)),
    "meanfield.fit.snapshot_every": ("snapshot_every", lambda: _mf().fit(
        _MF_X, _MF_X[:, 0], 0.1, snapshot_every=2**63)),
    "ResidualFlow.depth": ("depth", lambda: ef.ResidualFlow(ef.Dense(2, 2), 2**63)),
}


@pytest.mark.parametrize("entry", sorted(BIG_INTS))
def test_integer_arguments_beyond_int64_are_refused_by_name(entry):
    name, call = BIG_INTS[entry]
    with pytest.raises((ValueError, TypeError, MemoryError), match=name) as info:
        call()
    assert "incompatible" not in str(info.value)  # pybind11's dump of the _core signature


def test_meanfield_fit_with_an_overflowing_step_count_is_refused_in_a_child():
    exc, message = _child_exception(
        "m = ef.meanfield.TwoLayerReLU.random(3, 2, seed=0)\n"
        "m.fit(np.ones((8, 2)), np.ones(8), 0.1, batch=1, epochs=2**61,"
        " snapshot_every=1)")
    assert exc in ("ValueError", "MemoryError", "OverflowError"), (exc, message)


def test_float32_network_refuses_an_out_of_range_float64_input_with_value_error():
    net = ef.mlp([2, 2], seed=0, dtype=np.float32)
    with pytest.raises(ValueError, match=r"\bx\b"):
        net(np.full((2, 2), 1e300))


@pytest.mark.parametrize("kind", ["complex128", "str", "object", "bool"])
def test_map_layer_returning_a_non_real_array_is_refused_with_type_error(kind):
    def fun(v):
        return _materialize(np.asarray(v, dtype=np.float64), kind)

    net = ef.Sequential([ef.Dense(2, 2, seed=0), ef.Map(fun, lambda v: np.ones_like(v))])
    with pytest.raises(TypeError, match="Map|fun"):
        net(np.ones((3, 2)))


def test_neural_ode_trajectory_that_overflows_raises_integration_error_like_odeint():
    field = ef.Dense(2, 2, seed=0)
    field.W = [[300.0, 0.0], [0.0, 300.0]]
    t = np.linspace(0.0, 100.0, 50)
    with pytest.raises(ef.IntegrationError):
        ef.odeint(field, np.ones(2), t, method="rk4")
    with pytest.raises(ef.IntegrationError):
        ef.NeuralODE(field, method="rk4").trajectory(np.ones(2), t)


def test_adaptive_solver_reports_an_overflowing_field_as_non_finite():
    with pytest.raises(ef.IntegrationError, match="non-finite"):
        ef.odeint(ef.fields.Lorenz(), np.full(3, 1e308), [0.0, 1.0])
