"""Run-time instruction-set dispatch (cpp/include/eulerflow/multiversion.hpp): every kernel
variant this CPU runs gives the baseline's results.

Each workload below runs once per variant (``_core.set_isa``). ``x86-64-v3`` (AVX2 + FMA)
and ``x86-64-v4`` (AVX-512) use the same 32-byte vectors, the same summation order and
the same fused multiply-adds, so they must agree bit for bit. The baseline (SSE2, no FMA)
rounds each product before its sum where the others fuse them, so it agrees to a few
ulps per operation; where the core is compiled with ``-ffp-contract=off`` (the native
fields' fast paths, the ensembles' solver arithmetic) nothing is fused and all
variants agree bit for bit.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import eulerflow as ef
import numpy as np
import pytest
from eulerflow import _core
from eulerflow.nn import ACTIVATIONS

VARIANTS = _core.isa_available()
LOWEST = VARIANTS[0]  # "baseline" ("native" in a -march=native build, its only variant)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def restore_isa():
    """Every test leaves the variant selected at import in place."""
    before = _core.isa_selected()
    yield
    _core.set_isa(before)


def _rng(seed=0):
    return np.random.default_rng(seed)


# ---------------------------------------------------------------- workloads
# Each returns a list of arrays; the same inputs under every variant.

DENSE_SHAPES = [(1, 1, 1), (3, 7, 5), (17, 16, 33), (64, 40, 9), (5, 2, 15)]  # (n, n_in, n_out)


def dense(dtype):
    out = []
    for n, n_in, n_out in DENSE_SHAPES:
        rng = _rng(n * 1000 + n_in * 10 + n_out)
        layer = ef.Dense(n_in, n_out, seed=n_in + n_out, dtype=dtype)
        x = rng.standard_normal((n, n_in)).astype(dtype)
        gy = rng.standard_normal((n, n_out)).astype(dtype)
        out.append(layer(x))
        out.append(layer.backward(gy))
        out += layer.gradients()
    return out


def activations(dtype):
    # both signs, tiny and large values, the softplus threshold, exact zeros
    x = np.concatenate([np.linspace(-30.0, 30.0, 997), _rng(1).standard_normal(1003),
                        [0.0, -0.0, 1e-300, 20.0, 20.5, -700.0]]).astype(dtype)
    gy = _rng(2).standard_normal(x.shape).astype(dtype)
    out = []
    for name in sorted(ACTIVATIONS):
        act = ef.Activation(name)
        out.append(act(x[:, None]))
        out.append(act.backward(gy[:, None]))
    return out


def _regression(n=60, d_in=3, d_out=2, seed=3):
    rng = _rng(seed)
    X = rng.standard_normal((n, d_in))
    Y = np.column_stack([np.sin(X[:, 0]) + X[:, 1], X[:, 2] ** 2 - X[:, 0]])[:, :d_out]
    return X, Y


def losses():
    """Two epochs per loss (the loss kernels and their gradients drive the updates)."""
    X, Y = _regression()
    Xc, yc = ef.data.spiral_classes(n_per_class=30, seed=0)
    out = []
    for loss, data, sizes in (("mse", (X, Y), [3, 8, 2]), ("half_se", (X, Y), [3, 8, 2]),
                              ("cross_entropy", (Xc, yc), [2, 8, 3])):
        net = ef.mlp(sizes, "tanh", seed=4)
        hist = net.fit(*data, loss=loss, optimizer=ef.optim.SGD(0.05), epochs=2,
                       batch_size=16, seed=1)
        out += [np.asarray(hist.loss), *net.parameters()]
    return out


OPTIMIZERS = {
    "sgd": lambda: ef.optim.SGD(0.05),
    "sgd-momentum": lambda: ef.optim.SGD(0.05, momentum=0.9, weight_decay=1e-3),
    "sgd-nesterov": lambda: ef.optim.SGD(0.05, momentum=0.9, nesterov=True),
    "adam": lambda: ef.optim.Adam(1e-2, weight_decay=1e-3),
    "nadam": lambda: ef.optim.Nadam(3e-3),
}


def optimizers():
    X, Y = _regression()
    out = []
    for name in sorted(OPTIMIZERS):
        net = ef.mlp([3, 6, 2], "elu", seed=5)
        net.fit(X, Y, optimizer=OPTIMIZERS[name](), epochs=3, batch_size=20, seed=2)
        out += net.parameters()
    return out


def network_fit(dtype):
    """W4's setting, shortened: atan network, cross entropy, full batches."""
    X, y = ef.data.spiral_classes(n_per_class=100, seed=0)
    net = ef.mlp([2, 15, 15, 3], "atan", seed=0, dtype=dtype)
    hist = net.fit(X, y, loss="cross_entropy", optimizer=ef.optim.SGD(1.0), epochs=30,
                   batch_size=300, shuffle=False)
    return [np.asarray(hist.loss), *net.parameters()]


def meanfield():
    """Both particle paths: d <= 4 (particles in registers) and the blocked one (d = 6)."""
    out = []
    for m, d in ((203, 3), (130, 6)):
        student = ef.meanfield.TwoLayerReLU.random(m, d, seed=1)
        teacher = ef.meanfield.TwoLayerReLU.random(5, d, seed=2)
        run = student.fit_teacher(teacher, steps=40, batch=20, lr=0.5, snapshot_every=10,
                                  seed=3, n_test=100)
        out += [run.loss, student.a, student.w, student.b]
    return out


def native_rk4():
    """The native fields' fixed-step fast path: one trajectory and a batch of lanes."""
    t = np.linspace(0.0, 2.0, 11)
    out = [ef.odeint(ef.fields.Lorenz(), np.array([1.0, 2.0, 20.0]), t, method="rk4",
                     step_size=1e-3)]
    y0 = 1.0 + 3.0 * _rng(6).standard_normal((37, 3))
    out.append(ef.odeint(ef.fields.Lorenz(), y0, t, method="rk4", step_size=1e-3))
    A = _rng(7).standard_normal((3, 3)) - np.eye(3)
    out.append(ef.odeint(ef.fields.Linear(A), _rng(8).standard_normal((19, 3)), t,
                         method="rk38", step_size=1e-2))
    return out


def native_adaptive():
    """The native fields' adaptive loop (dopri5, dopri8), with dense output."""
    y0 = np.array(ef.fields.Arenstorf.Y0)
    t = np.linspace(0.0, 17.0652165601579625588917206249, 9)
    return [ef.odeint(ef.fields.Arenstorf(), y0, t, method=m, rtol=1e-10, atol=1e-10)
            for m in ("dopri5", "dopri8")]


def ensemble_nodes():
    """Neural ODE members in lanes (dense_forward_lanes, the lanes solver arithmetic,
    optim_step_lanes)."""
    t = np.linspace(0.0, 5.0, 15)
    A = np.array([[-0.1, -1.0], [1.0, -0.1]])
    data = ef.odeint(ef.fields.Linear(A), np.array([0.6, 0.3]), t, method="rk4",
                     step_size=0.01)
    ens = ef.Ensemble(lambda i: ef.NeuralODE(ef.mlp([2, 5, 2], "tanh", seed=i), method="rk4",
                                             steps_per_interval=2), 5)
    hist = ens.fit(data, t, optimizer=ef.optim.Adam(1e-2), epochs=3, window=2, batch_size=3,
                   lr=np.geomspace(2e-3, 2e-2, 5), seed=[1, 2, 3, 4, 5])
    return [hist.loss] + [p for m in ens.members for p in m.field.parameters()]


def ensemble_euler_window():
    """Neural ODE members in lanes through the one-kernel Euler window
    (small_euler_window_lanes): a tanh field 2 -> 3 -> 2 and seed 002's linear one."""
    t = np.linspace(0.0, 5.0, 15)
    A = np.array([[-0.1, -1.0], [1.0, -0.1]])
    data = ef.odeint(ef.fields.Linear(A), np.array([0.6, 0.3]), t, method="rk4",
                     step_size=0.01)
    out = []
    for field in (lambda i: ef.mlp([2, 3, 2], "tanh", seed=i),
                  lambda i: ef.Dense(2, 2, bias=False, seed=i)):
        ens = ef.Ensemble(lambda i, field=field: ef.NeuralODE(field(i), steps_per_interval=3), 5)
        hist = ens.fit(data, t, epochs=3, lr=np.geomspace(2e-3, 2e-2, 5), seed=[1, 2, 3, 4, 5])
        out += [hist.loss] + [p for m in ens.members for p in m.field.parameters()]
    return out


def ensemble_learn():
    """Seed 001's online learning in lanes (lanes_half_se, lanes_sgd)."""
    rng = _rng(9)
    X = rng.standard_normal((80, 3))
    Y = np.c_[X[:, 1] - X[:, 0], np.tanh(X[:, 2])]
    ens = ef.Ensemble(lambda i: ef.mlp([3, 5, 2], "tanh", seed=i), 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hist = ens.learn((X, Y), np.geomspace(1e-3, 1e-1, 6))
    return [hist.loss] + [p for m in ens.members for p in m.parameters()]


def landscape():
    """A 2-D loss landscape in one native call (landscape.cpp): the first layer applied
    directly (2 inputs) and by linearity (5 inputs), cross entropy and mse."""
    rng = _rng(10)
    out = []
    for width, loss in ((2, "cross_entropy"), (5, "mse")):
        net = ef.mlp([width, 7, 3], "atan", seed=width)
        X = rng.standard_normal((45, width))
        Y = rng.integers(0, 3, 45) if loss == "cross_entropy" else rng.standard_normal((45, 3))
        grid = np.linspace(-1.0, 1.0, 5)
        scan = ef.landscape.scan_2d(net, (X, Y), grid, grid, loss=loss, seed=3)
        out.append(np.append(scan.loss.ravel(), scan.origin_loss))
    return out


# name -> (workload, the baseline's bits equal the FMA variants'?, relative tolerance)
WORKLOADS = {
    "dense-float64": (lambda: dense(np.float64), False, 1e-14),
    "dense-float32": (lambda: dense(np.float32), False, 1e-6),
    "activations-float64": (lambda: activations(np.float64), False, 1e-14),
    "activations-float32": (lambda: activations(np.float32), False, 1e-6),
    "losses": (losses, False, 1e-14),
    "optimizers": (optimizers, False, 1e-14),
    "network-fit-float64": (lambda: network_fit(np.float64), False, 1e-13),
    "network-fit-float32": (lambda: network_fit(np.float32), False, 1e-5),
    "meanfield-fit": (meanfield, False, 1e-14),
    "native-rk4": (native_rk4, True, 0.0),
    "native-adaptive": (native_adaptive, True, 0.0),
    "ensemble-nodes": (ensemble_nodes, False, 1e-14),
    "ensemble-euler-window": (ensemble_euler_window, False, 1e-14),
    "ensemble-learn": (ensemble_learn, False, 1e-14),
    "landscape": (landscape, False, 1e-13),
}


def _run_under(variant, workload):
    _core.set_isa(variant)
    assert _core.isa_selected() == variant
    return workload()


def _assert_same_bits(a, b, what):
    assert len(a) == len(b)
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        assert x.dtype == y.dtype and x.shape == y.shape
        # bit patterns: also tells -0.0 from 0.0 and compares NaNs
        assert np.array_equal(x.view(np.uint8), y.view(np.uint8)), f"{what}: array {i} differs"


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_every_variant_gives_the_baselines_results(name, restore_isa):
    workload, baseline_bits, rtol = WORKLOADS[name]
    results = {v: _run_under(v, workload) for v in VARIANTS}
    base = results[LOWEST]
    for v in VARIANTS[1:]:
        if baseline_bits:
            _assert_same_bits(results[v], base, f"{name}: {v} vs baseline")
        else:
            for i, (x, y) in enumerate(zip(results[v], base, strict=True)):
                np.testing.assert_allclose(x, y, rtol=rtol, atol=rtol * np.max(np.abs(y)),
                                           err_msg=f"{name}: {v} vs baseline, array {i}")
    if "x86-64-v3" in results and "x86-64-v4" in results:
        _assert_same_bits(results["x86-64-v4"], results["x86-64-v3"], f"{name}: v4 vs v3")


def test_the_fma_variants_round_differently_from_the_baseline(restore_isa):
    """The variants really run different code: the baseline's dense products round each
    multiply, the FMA variants fuse them (so the comparison above is not vacuous)."""
    if "x86-64-v3" not in VARIANTS:
        pytest.skip("this CPU runs the baseline only")
    base = _run_under("baseline", lambda: dense(np.float64))
    fma = _run_under("x86-64-v3", lambda: dense(np.float64))
    assert any(not np.array_equal(x, y) for x, y in zip(base, fma, strict=True))


def test_the_variants_and_the_selection(restore_isa):
    assert LOWEST in ("baseline", "native")
    assert VARIANTS == _core.isa_built()[:len(VARIANTS)]
    # at import: the best this CPU runs (unless EULERFLOW_ISA forced a lower one)
    if not os.environ.get("EULERFLOW_ISA"):
        assert _core.isa_selected() == VARIANTS[-1]
    for v in VARIANTS:
        _core.set_isa(v)
        assert _core.isa_selected() == v


def test_an_unknown_or_unavailable_variant_is_refused(restore_isa):
    before = _core.isa_selected()
    with pytest.raises(ValueError, match=f"unknown kernel variant 'avx9000'.*{LOWEST}"):
        _core.set_isa("avx9000")
    for v in _core.isa_built():
        if v not in VARIANTS:  # built but this CPU lacks its instructions
            with pytest.raises(ValueError, match=f"'{v}' needs instructions this CPU lacks"):
                _core.set_isa(v)
    assert _core.isa_selected() == before


def _import_with_isa(value):
    env = dict(os.environ, EULERFLOW_ISA=value)
    code = "import eulerflow as ef; print(ef.show_config()['kernels']['selected'])"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)


def test_eulerflow_isa_forces_a_variant_at_import():
    proc = _import_with_isa(LOWEST)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == LOWEST
    assert f"kernels:     {LOWEST}" in proc.stdout
    proc = _import_with_isa("x86-64-v5")
    assert proc.returncode != 0
    assert "EULERFLOW_ISA: unknown kernel variant 'x86-64-v5'" in proc.stderr


def test_show_config_reports_the_build_and_the_selection(restore_isa, capsys):
    _core.set_isa(LOWEST)
    config = ef.show_config()
    printed = capsys.readouterr().out
    assert config["version"] == ef.__version__ and f"eulerflow {ef.__version__}" in printed
    assert config["kernels"] == {"selected": LOWEST, "available": VARIANTS,
                                 "built": _core.isa_built()}
    assert f"kernels:     {LOWEST}" in printed
    assert config["compiler"] and config["compiler"] in printed
    assert "-ffp-contract=off" in config["file_flags"]["lanes_kernels.cpp"]
    assert "-march=native" not in config["flags"] or config["kernels"]["built"] == ["native"]
    assert config["num_threads"] == ef.get_num_threads()
    assert config["dtypes"] == ["float64", "float32"]
    if sys.platform == "linux" and os.uname().machine == "x86_64":
        # a variant this build has is available exactly when the CPU has its features (the
        # sanitized build has the baseline only)
        features, built = config["cpu_features"], _core.isa_built()
        if "x86-64-v3" in built:
            assert features["avx2"] == ("x86-64-v3" in VARIANTS)
        if "x86-64-v4" in built:
            assert features["avx512f"] == ("x86-64-v4" in VARIANTS)


def test_the_config_command_prints_it():
    proc = subprocess.run([sys.executable, "-m", "eulerflow", "config"], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    assert "kernels:" in proc.stdout and "compiler:" in proc.stdout


def _build_dir_of_the_tested_module():
    """The CMake build directory whose module is the one imported (editable installs)."""
    loaded = Path(_core.__file__).read_bytes()
    for d in sorted((ROOT / "build").glob("*")):
        modules = list(d.glob("_core*.so"))
        if modules and modules[0].read_bytes() == loaded:
            return d
    return None


def test_no_instruction_beyond_the_baseline_outside_the_variants():
    """Only the functions compiled for x86-64-v3/v4 hold AVX, AVX-512, FMA or BMI
    instructions: a baseline CPU never meets them (tools/check_isa_leaks.py)."""
    if not _core.isa_built()[1:]:
        pytest.skip("a build without ISA variants")
    build = _build_dir_of_the_tested_module()
    if build is None or shutil.which("objdump") is None:
        pytest.skip("needs the build directory of the tested module and objdump")
    spec = importlib.util.spec_from_file_location("check_isa_leaks",
                                                  ROOT / "tools" / "check_isa_leaks.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    in_variants, stray, in_module = tool.check(build)
    assert stray == {}
    assert in_variants > 0 and in_module == in_variants
