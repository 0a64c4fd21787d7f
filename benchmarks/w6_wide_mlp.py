"""W6 wide-mlp: one training step of an MLP 784-1024-1024-10 (tanh) on a batch of 256.

One unit is one step: forward, softmax cross-entropy on 10 classes (mean over the batch),
backward and a plain SGD update (lr 0.01) of all weights and biases, the same in every
implementation, from the same initial weights and the same random batch (fixed seed).
Run in float64 and float32; workloads ``w6_wide_mlp_f64`` / ``_f32`` compare one thread
each, ``w6_wide_mlp_f64_2threads`` / ``_f32_2threads`` two threads (there
``eulerflow_1thread`` repeats the one-thread figure, so the ratio is the speed-up).

  eulerflow          ef.mlp(...).fit(X, y, loss="cross_entropy", optimizer=SGD(0.01),
                     batch_size=256): one native call, one step per epoch
  numpy_Nthread(s)   hand-written forward/backward with ``@`` (OpenBLAS), threads limited
                     with threadpoolctl
  torch_Nthread(s)   PyTorch eager, autograd, torch.set_num_threads(N)
  jax_jit            the whole step under jax.jit, XLA on one thread (the XLA_FLAGS below,
                     set before jax is imported, and the process pinned to one CPU while
                     JAX starts and runs: see measure_jax_one_core)

Quality: ``grad_max_rel_diff_vs_numpy``: the largest over the parameters of
max|g - g_ref| / max|g_ref| between eulerflow's gradient (one backward at the initial
weights) and the NumPy reference computed in float64 from the same weights.
``flops_per_unit`` counts the multiply-adds of the three matrix products per layer
(the first layer's input gradient is not needed) as 2 flops each.

Each implementation (eulerflow, NumPy, PyTorch, JAX) runs in a process of its own, one
after the other, importing only its own library: the two-thread figures need the second
core free, and a peer's threads in the same process (OpenBLAS's and PyTorch's OpenMP workers,
which spin for a while after each call; XLA's threads, pinned to the first CPU by
measure_jax_one_core) or a library that changes the process's CPU mask would skew the
others. ``--in-process`` runs them all in this process instead.

    python benchmarks/w6_wide_mlp.py [--steps 5] [--repeats 5] [--dtype f64 f32] [--impl ...]
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(_var, None)
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false "
                                   "intra_op_parallelism_threads=1")
os.environ.setdefault("JAX_ENABLE_X64", "1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import argparse  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import harness  # noqa: E402
import numpy as np  # noqa: E402

WORKLOAD = "w6_wide_mlp"
SIZES = (784, 1024, 1024, 10)
BATCH = 256
LR = 0.01
DTYPES = {"f64": np.float64, "f32": np.float32}
# implementation families, each measured in its own process: (family, implementations)
FAMILIES = (("eulerflow", ("eulerflow",)),
            ("numpy", ("numpy_1thread", "numpy_2threads")),
            ("torch", ("torch_1thread", "torch_2threads")),
            ("jax", ("jax_jit",)))


def step_flops(sizes=SIZES, n=BATCH) -> float:
    """Flops of one step: forward W x, weight gradient and (but for the first layer)
    input gradient, 2 flops per multiply-add."""
    macs = 0
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        macs += (2 if i == 0 else 3) * a * b * n
    return 2.0 * macs


def make_data(dtype, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((BATCH, SIZES[0])).astype(dtype)
    y = rng.integers(0, SIZES[-1], BATCH)
    return X, y


# --- NumPy reference: forward, backward, SGD -------------------------------------------

def numpy_grads(params, X, y):
    """Gradients of the mean softmax cross-entropy, hand-written; params [W1, b1, ...]
    with W (out, in)."""
    n = X.shape[0]
    hs = [X]
    h = X
    layers = len(params) // 2
    for i in range(layers):
        z = h @ params[2 * i].T + params[2 * i + 1]
        h = np.tanh(z) if i < layers - 1 else z
        hs.append(h)
    z = hs[-1]
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(n), y] -= 1
    g = p / n
    grads = [None] * len(params)
    for i in reversed(range(layers)):
        grads[2 * i] = g.T @ hs[i]
        grads[2 * i + 1] = g.sum(axis=0)
        if i > 0:
            g = (g @ params[2 * i]) * (1 - hs[i] ** 2)
    return grads


def numpy_step(params, X, y):
    for p, g in zip(params, numpy_grads(params, X, y), strict=True):
        p -= LR * g


# --- peers --------------------------------------------------------------------------------

def torch_step_fn(torch, params, X, y):
    ps = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    F = torch.nn.functional

    def step():
        h = Xt
        for i in range(len(ps) // 2):
            h = F.linear(h, ps[2 * i], ps[2 * i + 1])
            if i < len(ps) // 2 - 1:
                h = torch.tanh(h)
        loss = F.cross_entropy(h, yt)
        for p in ps:
            p.grad = None
        loss.backward()
        with torch.no_grad():
            for p in ps:
                p -= LR * p.grad
        return ps

    return step


def jax_step_fn(jax, params, X, y):
    jnp = jax.numpy

    def loss(ps, X, y):
        h = X
        for i in range(len(ps) // 2):
            h = h @ ps[2 * i].T + ps[2 * i + 1]
            if i < len(ps) // 2 - 1:
                h = jnp.tanh(h)
        z = h - jax.scipy.special.logsumexp(h, axis=1, keepdims=True)
        return -jnp.mean(jnp.take_along_axis(z, y[:, None], axis=1))

    @jax.jit
    def step(ps, X, y):
        grads = jax.grad(loss)(ps, X, y)
        return [p - LR * g for p, g in zip(ps, grads, strict=True)]

    state = {"ps": [jnp.asarray(p) for p in params]}
    Xj, yj = jnp.asarray(X), jnp.asarray(y)

    def run(steps):
        ps = state["ps"]
        for _ in range(steps):
            ps = step(ps, Xj, yj)
        jax.block_until_ready(ps)
        state["ps"] = ps
        return ps

    return run


# --- eulerflow ------------------------------------------------------------------------------

def ef_net(ef, dtype):
    return ef.mlp(list(SIZES), activation="tanh", seed=0, dtype=dtype)


def ef_grad_quality(ef, dtype, X, y):
    net = ef_net(ef, dtype)
    params = [p.copy() for p in net.parameters()]
    z = net(X).astype(np.float64)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1
    net.backward((p / len(y)).astype(dtype))
    ref = numpy_grads([q.astype(np.float64) for q in params], X.astype(np.float64), y)
    diff = max(float(np.max(np.abs(g.astype(np.float64) - r)) / np.max(np.abs(r)))
               for g, r in zip(net.gradients(), ref, strict=True))
    return {"grad_max_rel_diff_vs_numpy": diff}


def measure_jax_one_core(jax, workload, params, X, y, steps, common):
    """JAX jit on one core. With XLA's CPU flags alone a float64 step took 30 ms here
    (82 GFLOP/s, above one core's peak: XLA still ran on both cores), so the process is
    pinned to one CPU while JAX starts (its threads keep that affinity) and while it is
    timed; stderr reports the CPU-seconds per second it used."""
    import time

    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if cpus:
        os.sched_setaffinity(0, {min(cpus)})
    try:
        run_jax = jax_step_fn(jax, params, X, y)
        t0 = time.perf_counter()
        run_jax(1)
        compile_s = time.perf_counter() - t0
        c0, w0 = time.process_time(), time.perf_counter()
        rec = harness.measure(workload, "jax_jit", lambda: run_jax(steps),
                              notes=f"XLA_FLAGS={os.environ.get('XLA_FLAGS')!r}, pinned to one "
                                    f"CPU; first call (compile + 1 step) {compile_s:.2f} s",
                              **common)
        used = (time.process_time() - c0) / (time.perf_counter() - w0)
        print(f"jax_jit used {used:.2f} CPU-s/s while timed", file=sys.stderr)
        return rec
    finally:
        if cpus:
            os.sched_setaffinity(0, cpus)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5, help="steps per timed repeat")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--dtype", nargs="*", default=["f64", "f32"], choices=list(DTYPES))
    ap.add_argument("--impl", nargs="*", help="only these implementations (prefixes)")
    ap.add_argument("--in-process", action="store_true",
                    help="run every implementation in this process (default: one process each)")
    ap.add_argument("--family", choices=[f for f, _ in FAMILIES], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if not args.in_process and args.family is None:
        return run_isolated(args)
    steps, repeats = args.steps, args.repeats
    flops = step_flops()

    def wanted(family):
        return args.family in (None, family)

    # only the libraries of the implementations this process runs
    ef, why = harness.optional_import("eulerflow")
    threadpoolctl, why_tp = (harness.optional_import("threadpoolctl") if wanted("numpy")
                             else (None, ""))
    torch, why_t = harness.optional_import("torch") if wanted("torch") else (None, "")
    jax, why_j = harness.optional_import("jax") if wanted("jax") else (None, "")

    for tag in args.dtype:
        dtype = DTYPES[tag]
        one, two = f"{WORKLOAD}_{tag}", f"{WORKLOAD}_{tag}_2threads"
        X, y = make_data(dtype)
        base = ef_net(ef, dtype).parameters() if ef is not None else None
        if base is None:
            rng = np.random.default_rng(0)
            base = []
            for a, b in zip(SIZES[:-1], SIZES[1:], strict=True):
                base += [(rng.standard_normal((b, a)) / np.sqrt(a)).astype(dtype),
                         np.zeros(b, dtype)]
        base = [p.copy() for p in base]
        common = dict(units="step", n_units=steps, repeats=repeats, flops_per_unit=flops)

        # eulerflow on 1 and 2 threads
        ef_one = None
        if not wanted("eulerflow"):
            pass
        elif ef is None:
            harness.skip(one, "eulerflow", why, units="step")
        else:
            quality = ef_grad_quality(ef, dtype, X, y)
            old = ef.get_num_threads()
            try:
                for threads, workload in ((1, one), (2, two)):
                    if not harness.selected("eulerflow", args.impl):
                        continue
                    ef.set_num_threads(threads)
                    net = ef_net(ef, dtype)

                    def run(net=net, X=X, y=y):
                        return net.fit(X, y, loss="cross_entropy", optimizer=ef.optim.SGD(LR),
                                       epochs=steps, batch_size=BATCH, shuffle=False)

                    rec = harness.measure(workload, "eulerflow", run,
                                          quality=lambda _, q=quality: q,
                                          notes=f"{threads} thread(s)", **common)
                    if threads == 1:
                        ef_one = rec
                    elif ef_one is not None and ef_one["seconds"]:
                        harness.emit(dict(ef_one, workload=two, impl="eulerflow_1thread",
                                          notes="the one-thread figure of this run"))
            finally:
                ef.set_num_threads(old)

        # NumPy (OpenBLAS) on 1 and 2 threads
        for threads, workload in ((1, one), (2, two)):
            name = f"numpy_{threads}thread" + ("s" if threads > 1 else "")
            if not wanted("numpy") or not harness.selected(name, args.impl):
                continue
            if threadpoolctl is None:
                harness.skip(workload, name, why_tp, units="step")
                continue
            params = [p.copy() for p in base]

            def run(params=params, X=X, y=y):
                for _ in range(steps):
                    numpy_step(params, X, y)

            with threadpoolctl.threadpool_limits(threads):
                harness.measure(workload, name, run, notes=f"BLAS limited to {threads} thread(s)",
                                **common)

        # PyTorch eager on 1 and 2 threads
        for threads, workload in ((1, one), (2, two)):
            name = f"torch_{threads}thread" + ("s" if threads > 1 else "")
            if not wanted("torch") or not harness.selected(name, args.impl):
                continue
            if torch is None:
                harness.skip(workload, name, why_t, units="step")
                continue
            torch.set_num_threads(threads)
            step = torch_step_fn(torch, base, X, y)

            def run(step=step):
                for _ in range(steps):
                    step()

            harness.measure(workload, name, run, notes=f"torch.set_num_threads({threads})",
                            **common)

        # JAX jit, one thread
        if wanted("jax") and harness.selected("jax_jit", args.impl):
            if jax is None:
                harness.skip(one, "jax_jit", why_j, units="step")
            else:
                measure_jax_one_core(jax, one, base, X, y, steps, common)
    return 0


def run_isolated(args) -> int:
    """Runs each selected implementation family in a child process of this script, one
    after the other; their JSON lines go straight to this process's stdout."""
    status = 0
    for family, impls in FAMILIES:
        if not harness.any_selected(impls, args.impl):
            continue
        cmd = [sys.executable, __file__, "--family", family, "--steps", str(args.steps),
               "--repeats", str(args.repeats), "--dtype", *args.dtype]
        if args.impl:
            cmd += ["--impl", *args.impl]
        sys.stdout.flush()
        code = subprocess.run(cmd).returncode
        if code:
            print(f"{family} process failed with exit status {code}", file=sys.stderr)
            status = status or code
    return status


if __name__ == "__main__":
    sys.exit(main())
