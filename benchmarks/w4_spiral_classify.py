"""W4 spiral-classify (seed 004): full-batch gradient descent on a 2-15-3 atan network.

k = 3 classes, 100 points per class, p = 2, D = [2, 15, 3]; atan after EVERY layer, the
output included (the seed's ForwardNN: x_{r+1} = atan(A_r x_r + b_r)); the seed's
multi-class logistic loss SUMMED over the samples (= n * mean cross_entropy); gradient
descent with step tau = 0.01 on that sum (= lr 0.01*n on the mean), 10,000 iterations.
jax_jit runs the whole training in one jitted lax.fori_loop (float64, XLA on one thread,
compile time reported apart in its notes).

Every implementation starts from the same weights (standard normal drawn once with
np.random.seed(0) in the seed's order A0, b0, A1, b1) and the same data, so final losses
must agree to round-off. The final loss of every implementation is evaluated by the same
NumPy code from its final weights. scikit-learn's MLPClassifier is a looser peer: tanh
hidden layer, linear+softmax output, its own initial weights; its quality is reported only.

    python benchmarks/w4_spiral_classify.py [--iters 10000] [--repeats 5] [--impl eulerflow torch]
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(_var, None)
# JAX on one thread, float64 (set before it is imported)
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false "
                                   "intra_op_parallelism_threads=1")
os.environ.setdefault("JAX_ENABLE_X64", "1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import harness  # noqa: E402
import numpy as np  # noqa: E402
import peers_seed004 as seed  # noqa: E402

WORKLOAD = "w4_spiral_classify"
UNITS = "iteration"
N0, K, P = 100, 3, 2
D = [P, 15, K]
TAU = 0.01  # step on the summed loss
LOSS_TOL = 1e-6


def flops_per_iteration(n: int) -> float:
    """Multiply-adds of the matrix products (2 flops each): forward, weight gradients, and
    the hidden-layer gradient; element-wise work not counted."""
    w = sum(D[r] * D[r + 1] for r in range(len(D) - 1))
    return 2.0 * n * (w + w + D[1] * D[2])


def make_data(ef):
    """X (n, 2) float64, y (n,) int64: ef.data.spiral_classes when eulerflow imports, else
    the seed's generator (indexing fixed) with RandomState(0)."""
    if ef is not None:
        X, y = ef.data.spiral_classes(N0, K, 0.2, seed=0)
        return np.ascontiguousarray(X, dtype=np.float64), np.asarray(y, dtype=np.int64), \
            "data: ef.data.spiral_classes(100, 3, 0.2, seed=0)"
    x, y, _ = seed.make_data(N0, P, K, 0.2, seed=0)
    return np.ascontiguousarray(x.T), y[0].astype(np.int64), \
        "data: seed 004 generator (indexing fixed), RandomState(0)"


def initial_weights():
    """The seed's initialisation, A[r] ~ N(0,1) (d_{r+1}, d_r), b[r] ~ N(0,1) (d_{r+1},),
    drawn once with np.random.seed(0) in the seed's order A0, b0, A1, b1."""
    rs = np.random.RandomState(0)
    A, b = [], []
    for r in range(len(D) - 1):
        A.append(rs.randn(D[r + 1], D[r]))
        b.append(rs.randn(D[r + 1], 1)[:, 0])
    return A, b


def evaluate(A, b, X, y):
    """The common yardstick: mean and summed multi-class logistic loss and accuracy of the
    atan-everywhere network with weights A, b (row-sample layout, stable log-sum-exp)."""
    z = X
    for Ar, br in zip(A, b, strict=True):
        z = np.arctan(z @ np.asarray(Ar).T + np.asarray(br).reshape(-1))
    m = z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z - m).sum(axis=1)) + m[:, 0]
    per_sample = lse - z[np.arange(len(y)), y]
    return {
        "loss": float(per_sample.mean()),
        "loss_sum": float(per_sample.sum()),
        "accuracy": float((z.argmax(axis=1) == y).mean()),
    }


# ---- implementations: each returns a function run(iters) -> (A, b, last recorded loss) ----

def eulerflow_impl(ef, X, y, A0, b0, threads):
    n = len(y)
    net = ef.Sequential([ef.Dense(2, 15), ef.Activation("atan"),
                         ef.Dense(15, 3), ef.Activation("atan")])

    def run(iters):
        ef.set_num_threads(threads)
        params = net.parameters()
        params[0][...] = A0[0]
        params[1][...] = b0[0]
        params[2][...] = A0[1]
        params[3][...] = b0[1]
        hist = net.fit(X, y, loss="cross_entropy", optimizer=ef.optim.SGD(lr=TAU * n),
                       epochs=iters, batch_size=n, shuffle=False)
        p = [np.array(a, copy=True) for a in net.parameters()]
        return [p[0], p[2]], [p[1], p[3]], float(hist.loss[-1])

    return run, f"ef.set_num_threads({threads}); fit(epochs=iters, batch_size=n, SGD lr=0.01*n)"


def numpy_seed_impl(X, y, A0, b0, record_loss=True):
    x = np.ascontiguousarray(X.T)
    Y = np.zeros((K, len(y)))
    Y[y, np.arange(len(y))] = 1.0
    A_init = [a.copy() for a in A0]
    b_init = [c.reshape(-1, 1).copy() for c in b0]

    def run(iters):
        A, b, L = seed.gradient_descent(A_init, b_init, x, Y, tau=TAU, niter=iters,
                                        record_loss=record_loss)
        return A, [c[:, 0] for c in b], float(L[-1, 0]) / len(y)

    if record_loss:
        return run, ("seed 004 ForwardNN/lossF/BackwardNN loop (numerical tours exo1), "
                     "loss recorded every iteration as the seed does")
    return run, ("seed 004 ForwardNN/BackwardNN loop, lossF only at the last iteration "
                 "(the seed's lossF alone costs about as much as a step)")


def torch_impl(torch, X, y, A0, b0, threads):
    F = torch.nn.functional
    Xt = torch.from_numpy(X)
    yt = torch.from_numpy(y)

    def run(iters):
        torch.set_num_threads(threads)
        params = [torch.tensor(a, dtype=torch.float64, requires_grad=True)
                  for a in (A0[0], b0[0], A0[1], b0[1])]
        W1, c1, W2, c2 = params
        loss = None
        for _ in range(iters):
            z = torch.atan(F.linear(torch.atan(F.linear(Xt, W1, c1)), W2, c2))
            loss = F.cross_entropy(z, yt, reduction="sum")
            loss.backward()
            with torch.no_grad():
                for p in params:
                    p.sub_(p.grad, alpha=TAU)
                    p.grad = None
        p = [t.detach().numpy().copy() for t in params]
        return [p[0], p[2]], [p[1], p[3]], float(loss.detach()) / len(y)

    return run, (f"torch {torch.__version__}, set_num_threads({threads}), eager hand loop, "
                 "cross_entropy(reduction='sum'), p -= 0.01*grad")


def jax_impl(jax, X, y, A0, b0):
    """The whole training in one jitted call: lax.fori_loop over value_and_grad of the summed
    loss (jax.nn.logsumexp), p -= 0.01 * grad."""
    jnp, lax = jax.numpy, jax.lax
    jax.config.update("jax_enable_x64", True)
    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    rows = jnp.arange(len(y))

    def loss(params):
        W1, c1, W2, c2 = params
        z = jnp.arctan(jnp.arctan(Xj @ W1.T + c1) @ W2.T + c2)
        return jnp.sum(jax.nn.logsumexp(z, axis=1) - z[rows, yj])

    vg = jax.value_and_grad(loss)

    @jax.jit
    def train(params, iters):
        def body(_, carry):
            p, _ = carry
            L, g = vg(p)
            return tuple(a - TAU * b for a, b in zip(p, g, strict=True)), L
        return lax.fori_loop(0, iters, body, (params, jnp.zeros((), jnp.float64)))

    p0 = tuple(jnp.asarray(a) for a in (A0[0], b0[0], A0[1], b0[1]))
    start = time.perf_counter()
    jax.block_until_ready(train(p0, 1))  # compiles (iters is traced: one compilation)
    compile_s = time.perf_counter() - start

    def run(iters):
        p, L = jax.block_until_ready(train(p0, iters))
        p = [np.asarray(a) for a in p]
        return [p[0], p[2]], [p[1], p[3]], float(L) / len(y)

    return run, (f"jax {jax.__version__} jit: the whole training in one lax.fori_loop, "
                 f"float64, one thread; compile {compile_s:.2f} s (not timed)")


def sklearn_impl(MLPClassifier, X, y):
    n = len(y)

    def run(iters):
        clf = MLPClassifier(hidden_layer_sizes=(15,), activation="tanh", solver="sgd",
                            batch_size=n, learning_rate="constant", learning_rate_init=TAU * n,
                            momentum=0.0, nesterovs_momentum=False, alpha=0.0,
                            max_iter=iters, shuffle=False, tol=0.0,
                            n_iter_no_change=iters + 1, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter
            clf.fit(X, y)
        return clf

    return run


# ---- driver -------------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--budget", type=float, default=30.0,
                    help="seconds of timed repeats per implementation (at least one repeat)")
    ap.add_argument("--impl", nargs="*", default=None, help="only these (prefixes)")
    # unknown options are ignored: run.py forwards one argument list to every workload
    args, unknown = ap.parse_known_args(argv)
    if unknown:
        print(f"{WORKLOAD}: ignoring {unknown}", file=sys.stderr)
    iters = args.iters

    ef, ef_reason = harness.optional_import("eulerflow")
    X, y, data_note = make_data(ef)
    n = len(y)
    A0, b0 = initial_weights()
    flops = flops_per_iteration(n)
    warm = min(iters, 200)
    records = []
    finals = {}  # impl -> (A, b) final weights, for the agreement check

    def compare(quality, A, b):
        ref = next(iter(finals.values()), None)
        if ref is not None:
            quality["max_abs_weight_diff_vs_" + next(iter(finals))] = max(
                float(np.max(np.abs(np.asarray(u) - np.asarray(v))))
                for u, v in zip(list(A) + list(b), list(ref[0]) + list(ref[1]), strict=True))

    def timed(impl, run, note):
        def quality(result):
            A, b, recorded = result
            figures = evaluate(A, b, X, y)
            figures["loss_recorded_last"] = recorded  # the impl's own, before its last step
            compare(figures, A, b)
            finals.setdefault(impl, (A, b))
            return figures

        rec = harness.measure(WORKLOAD, impl, lambda: run(iters), quality=quality,
                              units=UNITS, n_units=iters,
                              repeats=args.repeats, warmup=lambda: run(warm),
                              budget_s=args.budget, notes="; ".join([note, data_note]),
                              flops_per_unit=flops)
        records.append(rec)

    if harness.any_selected(("eulerflow", "eulerflow_2threads"), args.impl):
        if ef is None:
            records.append(harness.skip(WORKLOAD, "eulerflow", ef_reason, units=UNITS))
        else:
            for threads, name in ((1, "eulerflow"), (2, "eulerflow_2threads")):
                if harness.selected(name, args.impl):
                    run, note = eulerflow_impl(ef, X, y, A0, b0, threads)
                    timed(name, run, note)

    for record_loss, name in ((True, "numpy_seed"), (False, "numpy_seed_noloss")):
        if harness.selected(name, args.impl):
            run, note = numpy_seed_impl(X, y, A0, b0, record_loss)
            timed(name, run, note)

    if harness.any_selected(("torch_1thread", "torch_2threads"), args.impl):
        torch, reason = harness.optional_import("torch")
        for threads, name in ((1, "torch_1thread"), (2, "torch_2threads")):
            if not harness.selected(name, args.impl):
                continue
            if torch is None:
                records.append(harness.skip(WORKLOAD, name, reason, units=UNITS))
            else:
                run, note = torch_impl(torch, X, y, A0, b0, threads)
                timed(name, run, note)

    if harness.selected("jax_jit", args.impl):
        jax, reason = harness.optional_import("jax")
        if jax is None:
            records.append(harness.skip(WORKLOAD, "jax_jit", reason, units=UNITS))
        else:
            run, note = jax_impl(jax, X, y, A0, b0)
            timed("jax_jit", run, note)

    if harness.selected("sklearn_mlp_tanh", args.impl):
        name = "sklearn_mlp_tanh"
        mod, reason = harness.optional_import("sklearn.neural_network")
        if mod is None:
            records.append(harness.skip(WORKLOAD, name, reason, units=UNITS))
        else:
            import sklearn

            fit = sklearn_impl(mod.MLPClassifier, X, y)

            def quality(clf):
                proba = clf.predict_proba(X)
                return {
                    "loss": float(-np.mean(np.log(proba[np.arange(n), y]))),
                    "accuracy": float(clf.score(X, y)),
                    "loss_recorded_last": float(clf.loss_curve_[-1]),
                    "iterations_run": int(clf.n_iter_),
                }

            rec = harness.measure(
                WORKLOAD, name, lambda: fit(iters), quality=quality, units=UNITS,
                n_units=iters, repeats=args.repeats,
                warmup=lambda: fit(warm), budget_s=args.budget,
                notes=(f"scikit-learn {sklearn.__version__} MLPClassifier((15,), tanh, sgd, "
                       f"batch_size=n, learning_rate_init=0.01*n, momentum=0, alpha=0, "
                       f"shuffle=False), own init (random_state=0), linear+softmax output: "
                       f"looser peer, quality not comparable; {data_note}"))
            records.append(rec)

    harness.print_ratios(records)
    ref = next((r for r in records if r["impl"] == "eulerflow" and r["seconds"]), None)
    if ref is not None:
        for r in records:
            if r is ref or not r["seconds"] or r["impl"].startswith("sklearn"):
                continue
            diff = abs(r["quality"]["loss"] - ref["quality"]["loss"])
            verdict = "OK" if diff <= LOSS_TOL else "MISMATCH"
            print(f"final loss eulerflow {ref['quality']['loss']:.12g} vs {r['impl']} "
                  f"{r['quality']['loss']:.12g}: |diff| = {diff:.2e} {verdict} "
                  f"(tol {LOSS_TOL:g})", file=sys.stderr)
    return records


if __name__ == "__main__":
    main()
