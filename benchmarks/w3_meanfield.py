"""W3 meanfield (seed 003): mean-field SGD of a two-layer ReLU student on a ReLU teacher.

Teacher: M = 4 neurons in d = 2, ``(w, b)`` on the unit sphere, ``a ~ N(0, 1)``
(ef.meanfield.TwoLayerReLU.random(4, 2, seed=0)). Student: m particles in
{20, 1000, 10000} with ``(w, b)`` on the sphere of radius 0.05
(TwoLayerReLU.small_sphere(m, 2, 0.05, seed=1)). Output ``f(x) = mean_j a_j relu(w_j . x +
b_j)``; loss ``mean_i (f(x_i) - y_i)^2 / 2``; plain SGD with its exact gradient (the 1/m
included, relu'(0) = 1 as the seed's drelu), tau = 0.5, batch 20, 1000 steps, each step on
20 fresh standard Gaussian inputs labelled by the teacher inside the step. Unit: one step
(teacher labels + forward + backward + update). One workload per m: w3_meanfield_m{m}.

Same samples, same start. The 1000 batches X (1000 x 20 x 2) are drawn ONCE and handed to
every implementation (eulerflow's fit_teacher takes them as x=): they are the stream
eulerflow's fit_teacher(seed=2) draws itself (ef.meanfield.teacher_samples(teacher, 20000,
seed=2), Box-Muller on eulerflow's seeded generator), so eulerflow_draws, which draws them
in the timed run, trains on the same numbers too. This is
checked, not assumed: the final particles are compared bit for bit with a Python loop of
``student.step(X[s], teacher(X[s]), 0.5)`` on the pre-drawn X (eulerflow_step_loop). All
implementations start from the same student. Quality: ``test_loss``, the loss of the final
particles on a fixed test set (1000 Gaussian inputs from np.random.default_rng(12345)),
computed by one NumPy evaluator for everyone; it must agree to 1e-9 across
implementations. ``param_maxdiff_vs_eulerflow`` is the largest difference of any final
particle coordinate from eulerflow's.

Implementations:
  eulerflow              student.fit_teacher(teacher, steps, batch=20, lr=0.5,
                         snapshot_every=0, seed=2, n_test=1, x=X): the whole run in C++ on
                         the peers' inputs X, labelled by the teacher in each step as the
                         peers do (the same work); the reference of the ratios
                         on one thread (ef.set_num_threads(1)); for m >= 1000 also on two
                         threads, as workload w3_meanfield_m{m}_2threads beside a copy of
                         the one-thread record (eulerflow_1thread), the particles checked
                         equal to one thread's bit for bit
  eulerflow_draws        the same without x: fit_teacher draws its own inputs (the same
                         numbers as X, see above), their cost in the time: what a user's
                         fit_teacher call costs, and more work than the peers do
  eulerflow_step_loop    a Python loop of student.step(X[s], teacher(X[s]), 0.5)
  eulerflow_fit_data     student.fit(X_all, teacher(X_all), 0.5, batch=20): the whole run in
                         C++ on the given samples; fit records the training loss over all
                         20,000 samples at the start and the end (extra work, in the time)
  seed_loop              seed 003's Network/Neuron classes as written (batch_step on labels
                         from the teacher Network's output); very slow: timed on a few
                         steps (--seed-steps) and reported per step; when it runs all the
                         steps (m = 20 by default) its test loss is compared too
  numpy_vectorized       the seed's formulas on (20, m) arrays, one BLAS thread
  numpy_vectorized_buffers  the same into arrays allocated once (out=): steadier at m=10,000
  torch_1thread          the same with float64 tensors, manual gradient, no_grad
  torch_autograd_1thread the forward in torch, loss.backward() (relu written as
                         where(z >= 0, z, 0) so that relu'(0) = 1)
  jax_jit                the whole run in one jitted lax.scan over the 1000 batches, jax.grad
                         of the loss (same relu), float64, XLA on one thread; compile apart
  jax_jit_manual         the same with the seed's gradient written by hand
  numba                  the whole run in one @njit call, loops over the particles
                         element-wise on (m,) arrays; no fastmath (exact IEEE order);
                         compile apart
  numba_fastmath         the same kernel with fastmath=True

Each peer uses the array layout that ran fastest here: NumPy and torch (20, m) (particles
along the rows was slower for both), JAX (m, 20) (XLA ran (20, m) about 3x slower at
m = 10,000), numba element-wise loops over (m,) arrays with w split into its columns (a
per-particle loop over the batch was 2-3x slower). What the eulerflow records do besides
training: eulerflow_draws draws its 40 normals per step (Box-Muller with log, sin and cos
in vector lanes: about 1.1k of the 6.0k instructions and a third of the time of a step at
m = 20, under 1% at m = 10,000); fit_data's two loss passes over the 20,000
samples cost about two student forwards of 20,000 samples (~0.35 us per step at m = 20,
~60 us at m = 10,000).
    python benchmarks/w3_meanfield.py [--m 20 1000 10000] [--steps 1000] [--repeats 5]
                                      [--seed-steps N] [--impl eulerflow numba ...]
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(_var, None)
# every peer on one thread, float64 (set before NumPy, JAX and numba are imported)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false "
                                   "intra_op_parallelism_threads=1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("JAX_ENABLE_X64", "1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import harness  # noqa: E402
import numpy as np  # noqa: E402

UNITS = "step"
D, M_TEACHER, RADIUS = 2, 4, 0.05
LR, BATCH, STEPS = 0.5, 20, 1000
TEACHER_SEED, STUDENT_SEED, SAMPLE_SEED, TEST_SEED = 0, 1, 2, 12345
N_TEST = 1000
WIDTHS = (20, 1000, 10000)
TWO_THREADS_FROM = 1000  # widths timed on two threads too (m = 20 is one chunk: one thread)
LOSS_TOL = 1e-9


def workload_name(m: int) -> str:
    return f"w3_meanfield_m{m}"


def flops_per_step(m: int, n: int = BATCH) -> float:
    """Arithmetic of one step, the algorithmic minimum: per (sample, particle) pair the
    forward z = b + w.x (4), a relu(z) summed (2) and the backward c relu(z) summed (2),
    t = c a (1), gb += t (1), gw += t x (4); per particle the update (2 x 4); the teacher's
    labels (6 per pair of its M neurons). Comparisons and the O(n) residual not counted."""
    return float(n * m * 14 + 8 * m + n * M_TEACHER * 6)


# ---- the problem: teacher, initial student, samples, test set --------------------------------

def draw_network(m: int, d: int, radius: float, seed: int):
    """Seed 003's draw (a, then w, then b, neuron by neuron; (w, b) scaled to norm
    ``radius``) with np.random.default_rng(seed), as ef.meanfield.TwoLayerReLU does; the
    fallback when eulerflow is not importable."""
    rng = np.random.default_rng(seed)
    a, w, b = np.empty(m), np.empty((m, d)), np.empty(m)
    for j in range(m):
        a[j] = rng.normal()
        w[j] = rng.normal(size=d)
        b[j] = rng.normal()
    norm = np.sqrt(np.sum(w**2, axis=1) + b**2) / radius
    return a, w / norm[:, None], b / norm


def forward_np(a, w, b, x):
    """f(x) = mean_j a_j relu(w_j . x + b_j) for x (n, d)."""
    return np.maximum(x @ w.T + b, 0.0) @ a / a.shape[0]


class Problem:
    """Everything the implementations share for one student width m."""

    def __init__(self, m: int, steps: int, ef):
        self.m, self.steps, self.ef = m, steps, ef
        if ef is not None:
            T = ef.meanfield.TwoLayerReLU.random(M_TEACHER, D, seed=TEACHER_SEED)
            S = ef.meanfield.TwoLayerReLU.small_sphere(m, D, RADIUS, seed=STUDENT_SEED)
            self.teacher_net, self.student_net = T, S
            self.teacher = (T.a.copy(), T.w.copy(), T.b.copy())
            self.student0 = (S.a.copy(), S.w.copy(), S.b.copy())
            X, _ = ef.meanfield.teacher_samples(T, steps * BATCH, seed=SAMPLE_SEED)
            self.data_note = (f"samples: ef.meanfield.teacher_samples(teacher, {steps}*20, "
                              f"seed={SAMPLE_SEED}) = fit_teacher(seed={SAMPLE_SEED})'s stream")
        else:
            self.teacher_net = self.student_net = None
            self.teacher = draw_network(M_TEACHER, D, 1.0, TEACHER_SEED)
            self.student0 = draw_network(m, D, RADIUS, STUDENT_SEED)
            X = np.random.default_rng(SAMPLE_SEED).standard_normal((steps * BATCH, D))
            self.data_note = f"samples: np.random.default_rng({SAMPLE_SEED}) (no eulerflow)"
        self.X = np.ascontiguousarray(X.reshape(steps, BATCH, D))
        rng = np.random.default_rng(TEST_SEED)
        self.X_test = rng.standard_normal((N_TEST, D))
        self.Y_test = forward_np(*self.teacher, self.X_test)

    def initial(self):
        """Fresh copies of the initial particles (a (m,), w (m, d), b (m,))."""
        return tuple(p.copy() for p in self.student0)

    def test_loss(self, a, w, b) -> float:
        """The common yardstick: mean (f(x) - y)^2 / 2 on the fixed test set."""
        a, w, b = (np.asarray(p, dtype=np.float64) for p in (a, w, b))
        f = np.empty(N_TEST)
        for i in range(0, N_TEST, 250):  # (250, m) blocks: bounded memory at m = 10,000
            f[i:i + 250] = forward_np(a, w, b, self.X_test[i:i + 250])
        return float(0.5 * np.mean((f - self.Y_test) ** 2))


def maxdiff(p, q) -> float:
    return max(float(np.max(np.abs(np.asarray(u) - np.asarray(v))))
               for u, v in zip(p, q, strict=True))


# ---- implementations: run(steps) -> final (a, w, b), each run from the same start ------------

def eulerflow_fit_teacher_impl(pb: Problem, threads: int = 1, draws: bool = False):
    """fit_teacher on the peers' pre-drawn inputs (x=X[:steps], labelled by the teacher in
    each step, as every peer does), or drawing them itself (draws=True: the same numbers,
    plus the cost of drawing them)."""
    T, S, ef, X = pb.teacher_net, pb.student_net, pb.ef, pb.X

    def run(steps):
        s = S.copy()
        old = ef.get_num_threads()
        ef.set_num_threads(threads)
        try:
            s.fit_teacher(T, steps=steps, batch=BATCH, lr=LR, snapshot_every=0,
                          seed=SAMPLE_SEED, n_test=1, x=None if draws else X[:steps])
        finally:
            ef.set_num_threads(old)
        return s.a, s.w, s.b

    how = ("its own sampling (Box-Muller on its seeded generator, in the time)" if draws
           else "x=X[:steps], the peers' inputs, labelled by the teacher in each step")
    return run, (f"student.fit_teacher(teacher, steps, batch=20, lr=0.5, snapshot_every=0, "
                 f"seed={SAMPLE_SEED}, n_test=1): whole run in C++, {how}, "
                 f"ef.set_num_threads({threads})")


def eulerflow_draws_impl(pb: Problem):
    return eulerflow_fit_teacher_impl(pb, draws=True)


def eulerflow_step_loop_impl(pb: Problem):
    T, S, X = pb.teacher_net, pb.student_net, pb.X

    def run(steps):
        s = S.copy()
        for k in range(steps):
            xk = X[k]
            s.step(xk, T(xk), LR)
        return s.a, s.w, s.b

    return run, "Python loop: student.step(X[s], teacher(X[s]), 0.5) per step"


def eulerflow_fit_data_impl(pb: Problem):
    T, S, X = pb.teacher_net, pb.student_net, pb.X

    def run(steps):
        s = S.copy()
        xs = X[:steps].reshape(steps * BATCH, D)
        s.fit(xs, T(xs), LR, batch=BATCH, epochs=1, shuffle=False, snapshot_every=0)
        return s.a, s.w, s.b

    return run, ("student.fit(X, teacher(X), 0.5, batch=20, epochs=1, shuffle=False): whole "
                 "run in C++ on the given samples; includes fit's training-loss evaluations "
                 "over all samples at start and end")


# -- seed 003's loop code, as written (d is the module-level dimension the seed uses); the
# -- methods this workload does not call are left out, gen_sample_from is gen_sample on given X
d = D


def relu(x):
    if x >= 0:
        return x
    return 0.


def drelu(x):
    if x >= 0:
        return 1.
    return 0.


class Neuron:
    def __init__(self):
        a = np.random.normal()
        w = np.random.normal(size = d)
        b = np.random.normal()
        norm = np.linalg.norm(np.concatenate([np.array([b]), w]), 2)
        self.a = a
        self.w = w / norm
        self.b = b / norm
    def set_weights(self, a, w, b):
        self.a = a
        self.w = w.copy()
        self.b = b
    def forward(self, x):
        return self.a * relu(self.w.dot(x) + self.b)


class Network:
    def __init__(self, width):
        self.width = width
        self.neurons = [Neuron() for i in range(width)]
    def output(self, x):
        return np.mean([n.forward(x) for n in self.neurons])
    def loss(self, x, y):
        return .5*(self.output(x) - y)**2
    def grad(self, x, y):
        d = (self.output(x) - y)
        s = np.array([relu(n.w.dot(x) + n.b) for n in self.neurons])
        ds = np.array([drelu(n.w.dot(x) + n.b) for n in self.neurons])
        ga = 1./self.width * d * s
        gb = 1./self.width * d * np.array([self.neurons[i].a*ds[i] for i in range(self.width)])
        gw = np.array([gb[i] * x for i in range(self.width)]) # shape m * d
        return ga, gw, gb
    def batch_step(self, X, Y, tau):
        ba = X.shape[0]
        Ga, Gw, Gb = np.zeros((ba, self.width)), np.zeros((ba, self.width, d)), \
            np.zeros((ba, self.width))
        for i in range(ba):
            Ga[i], Gw[i], Gb[i] = self.grad(X[i], Y[i])
        ga, gw, gb = Ga.mean(axis = 0), Gw.mean(axis = 0), Gb.mean(axis = 0)
        for i in range(self.width):
            nr = self.neurons[i]
            a_new = nr.a - tau * ga[i]
            w_new = nr.w - tau * gw[i]
            b_new = nr.b - tau * gb[i]
            nr.set_weights(a_new, w_new, b_new)
    def gen_sample_from(self, X):
        """The seed's gen_sample, labelling given inputs instead of drawing them."""
        Y = np.zeros(X.shape[0])
        for i in range(X.shape[0]):
            Y[i] = self.output(X[i])
        return X, Y
    def give_weights(self):
        la, lw, lb = np.zeros(self.width), np.zeros((self.width, d)), np.zeros(self.width)
        for i in range(self.width):
            nr = self.neurons[i]
            la[i] = nr.a
            lw[i] = nr.w
            lb[i] = nr.b
        return la, lw, lb
# -- end of the seed's code --------------------------------------------------------------------


def set_seed_weights(net: Network, a, w, b) -> Network:
    for j, nr in enumerate(net.neurons):
        nr.set_weights(float(a[j]), w[j], float(b[j]))
    return net


def seed_loop_impl(pb: Problem):
    gen_net = set_seed_weights(Network(M_TEACHER), *pb.teacher)
    net = Network(pb.m)  # built once: the seed's Neuron() draws cost more than a reset
    X = pb.X

    def run(steps):
        set_seed_weights(net, *pb.initial())
        for k in range(steps):
            xk, yk = gen_net.gen_sample_from(X[k])
            net.batch_step(xk, yk, LR)
        return net.give_weights()

    return run, ("seed 003 Network/Neuron classes as written: batch_step(X, Y, tau=0.5) with Y "
                 "from the teacher Network's output (gen_sample on the pre-drawn inputs)")


def numpy_sgd_step(a, w, b, x, teacher, lr) -> None:
    """One SGD step of the seed's formulas on (n, m) arrays, in place: the teacher's labels
    of the batch x (n, d), the student's forward, its exact gradient, the update."""
    ta, tw, tb = teacher
    m, n = a.shape[0], x.shape[0]
    y = np.maximum(x @ tw.T + tb, 0.0) @ ta / ta.shape[0]
    z = x @ w.T + b                      # (n, m)
    h = np.maximum(z, 0.0)
    c = (h @ a / m - y) / (m * n)        # residual / (m n)
    g = (z >= 0.0) * c[:, None]          # c_i relu'(z_ij)
    ga = c @ h
    gb = a * g.sum(axis=0)
    gw = (g.T @ x) * a[:, None]
    a -= lr * ga
    b -= lr * gb
    w -= lr * gw


def numpy_impl(pb: Problem):
    X = pb.X

    def run(steps):
        a, w, b = pb.initial()
        for k in range(steps):
            numpy_sgd_step(a, w, b, X[k], pb.teacher, LR)
        return a, w, b

    return run, (f"NumPy {np.__version__}: the seed's formulas on (20, m) arrays (fresh "
                 "temporaries each step), OPENBLAS_NUM_THREADS=1")


def numpy_buffers_impl(pb: Problem):
    """The same arithmetic into arrays allocated once: at m = 10,000 the (20, m) temporaries
    are 1.6 MB each, and whether malloc hands them back from its heap or maps fresh pages
    (page faults) swung the plain version between ~0.5 and ~1.5 ms per step."""
    ta, tw, tb = pb.teacher
    X = pb.X
    m, n = pb.m, BATCH
    mt = ta.shape[0]

    def run(steps):
        a, w, b = pb.initial()
        z, h, g = np.empty((n, m)), np.empty((n, m)), np.empty((n, m))
        on = np.empty((n, m), dtype=bool)
        ga, gb, gw = np.empty(m), np.empty(m), np.empty((m, D))
        for k in range(steps):
            x = X[k]
            y = np.maximum(x @ tw.T + tb, 0.0) @ ta / mt
            np.matmul(x, w.T, out=z)
            z += b
            np.maximum(z, 0.0, out=h)
            c = (h @ a / m - y) / (m * n)
            np.greater_equal(z, 0.0, out=on)
            np.multiply(on, c[:, None], out=g)
            np.matmul(c, h, out=ga)
            np.sum(g, axis=0, out=gb)
            gb *= a
            np.matmul(g.T, x, out=gw)
            gw *= a[:, None]
            ga *= LR
            a -= ga
            gb *= LR
            b -= gb
            gw *= LR
            w -= gw
        return a, w, b

    return run, (f"NumPy {np.__version__}: as numpy_vectorized, every (20, m) and (m,) array "
                 "allocated once (out=), OPENBLAS_NUM_THREADS=1")


def torch_impl(torch, pb: Problem):
    ta, tw, tb = (torch.from_numpy(p) for p in pb.teacher)
    Xt = torch.from_numpy(pb.X)
    m, n = pb.m, BATCH
    mt = ta.shape[0]

    def run(steps):
        torch.set_num_threads(1)
        a, w, b = (torch.from_numpy(p) for p in pb.initial())
        with torch.no_grad():
            for k in range(steps):
                x = Xt[k]
                y = torch.relu(x @ tw.T + tb) @ ta / mt
                z = torch.addmm(b, x, w.T)
                h = torch.relu(z)
                c = (h @ a / m - y) / (m * n)
                g = (z >= 0.0) * c[:, None]
                ga = c @ h
                gb = a * g.sum(dim=0)
                gw = (g.T @ x) * a[:, None]
                a.sub_(ga, alpha=LR)
                b.sub_(gb, alpha=LR)
                w.sub_(gw, alpha=LR)
        return a.numpy(), w.numpy(), b.numpy()

    return run, (f"torch {torch.__version__}, set_num_threads(1), float64, manual gradient "
                 "(the seed's formulas), no_grad")


def torch_autograd_impl(torch, pb: Problem):
    ta, tw, tb = (torch.from_numpy(p) for p in pb.teacher)
    Xt = torch.from_numpy(pb.X)
    mt = ta.shape[0]

    def run(steps):
        torch.set_num_threads(1)
        params = [torch.tensor(p, requires_grad=True) for p in pb.initial()]
        a, w, b = params
        zero = torch.zeros((), dtype=torch.float64)
        for k in range(steps):
            x = Xt[k]
            with torch.no_grad():
                y = torch.relu(x @ tw.T + tb) @ ta / mt
            z = torch.addmm(b, x, w.T)
            f = torch.where(z >= 0.0, z, zero) @ a / a.shape[0]
            loss = 0.5 * torch.mean((f - y) ** 2)
            loss.backward()
            with torch.no_grad():
                for p in params:
                    p.sub_(p.grad, alpha=LR)
                    p.grad = None
        return tuple(p.detach().numpy() for p in params)

    return run, (f"torch {torch.__version__}, set_num_threads(1), float64, autograd "
                 "(loss.backward(), relu as where(z >= 0, z, 0)), p -= 0.5 grad")


def jax_impl(jax, pb: Problem, manual: bool):
    jnp, lax = jax.numpy, jax.lax
    ta, tw, tb = (jnp.asarray(p) for p in pb.teacher)
    m, n = pb.m, BATCH
    mt = pb.teacher[0].shape[0]

    def labels(x):
        return jnp.maximum(x @ tw.T + tb, 0.0) @ ta / mt

    # particles along the first axis, z (m, n): XLA ran this layout about 3x faster than
    # z (n, m) at m = 10,000
    def loss(p, x, y):
        a, w, b = p
        z = w @ x.T + b[:, None]
        f = a @ jnp.where(z >= 0.0, z, 0.0) / m
        return 0.5 * jnp.mean((f - y) ** 2)

    def grads_manual(p, x, y):
        a, w, b = p
        z = w @ x.T + b[:, None]
        h = jnp.maximum(z, 0.0)
        c = (a @ h / m - y) / (m * n)
        g = jnp.where(z >= 0.0, c[None, :], 0.0)
        return h @ c, (g @ x) * a[:, None], a * g.sum(axis=1)

    grads = grads_manual if manual else jax.grad(loss)

    @jax.jit
    def train(p, X):
        def body(p, x):
            g = grads(p, x, labels(x))
            return tuple(q - LR * gq for q, gq in zip(p, g, strict=True)), None

        p, _ = lax.scan(body, p, X)
        return p

    Xj = jnp.asarray(pb.X)
    compiled = {}

    def fn(steps):
        if steps not in compiled:  # the scan length is part of the compiled program
            start = time.perf_counter()
            out = train(tuple(jnp.asarray(q) for q in pb.initial()), Xj[:steps])
            jax.block_until_ready(out)
            compiled[steps] = time.perf_counter() - start
        return train

    def run(steps):
        p = fn(steps)(tuple(jnp.asarray(q) for q in pb.initial()), Xj[:steps])
        return tuple(np.asarray(q) for q in jax.block_until_ready(p))

    how = "the seed's gradient by hand" if manual else "jax.grad of the loss"
    return run, fn, compiled, (f"jax {jax.__version__} jit, the whole run in one lax.scan over "
                               f"the batches, {how}, float64, XLA on one thread")


_numba_kernels: dict[bool, object] = {}


def numba_kernel(numba, fastmath: bool):
    """The whole run as @njit loops on (m,) arrays (w split into its two columns, so that
    the loops over particles are element-wise and LLVM vectorizes them): per step the
    teacher's labels, the outputs as 20 running sums (particles outer, samples inner), then
    sample by sample the gradient accumulated over the particles, then the update. Of the
    layouts tried this one was the fastest with and without fastmath."""
    if fastmath in _numba_kernels:
        return _numba_kernels[fastmath]

    @numba.njit(fastmath=fastmath, cache=False)
    def train(a, w0, w1, b, ta, tw, tb, X, lr):
        steps, n, _ = X.shape
        m, mt = a.shape[0], ta.shape[0]
        y, c, f = np.empty(n), np.empty(n), np.empty(n)
        x0, x1 = np.empty(n), np.empty(n)
        ga, gb, g0, g1 = np.empty(m), np.empty(m), np.empty(m), np.empty(m)
        for s in range(steps):
            for i in range(n):
                x0[i] = X[s, i, 0]
                x1[i] = X[s, i, 1]
                ft = 0.0
                for k in range(mt):
                    ft += ta[k] * max(tb[k] + tw[k, 0] * x0[i] + tw[k, 1] * x1[i], 0.0)
                y[i] = ft / mt
                f[i] = 0.0
            for j in range(m):
                aj, bj, u0, u1 = a[j], b[j], w0[j], w1[j]
                for i in range(n):
                    f[i] += aj * max(bj + u0 * x0[i] + u1 * x1[i], 0.0)
            for i in range(n):
                c[i] = (f[i] / m - y[i]) / (m * n)
            ga[:] = 0.0
            gb[:] = 0.0
            g0[:] = 0.0
            g1[:] = 0.0
            for i in range(n):
                ci, xi0, xi1 = c[i], x0[i], x1[i]
                for j in range(m):
                    z = b[j] + w0[j] * xi0 + w1[j] * xi1
                    ga[j] += ci * max(z, 0.0)
                    t = ci * a[j] if z >= 0.0 else 0.0
                    gb[j] += t
                    g0[j] += t * xi0
                    g1[j] += t * xi1
            for j in range(m):
                a[j] -= lr * ga[j]
                b[j] -= lr * gb[j]
                w0[j] -= lr * g0[j]
                w1[j] -= lr * g1[j]

    _numba_kernels[fastmath] = train
    return train


def numba_impl(numba, pb: Problem, fastmath: bool):
    train = numba_kernel(numba, fastmath)
    ta, tw, tb = pb.teacher

    def run(steps):
        a, w, b = pb.initial()
        w0, w1 = w[:, 0].copy(), w[:, 1].copy()
        train(a, w0, w1, b, ta, tw, tb, pb.X[:steps], LR)
        return a, np.stack([w0, w1], axis=1), b

    start = time.perf_counter()
    run(1)
    compile_s = time.perf_counter() - start
    how = ("fastmath=True (LLVM may reorder the sums)" if fastmath
           else "no fastmath (exact IEEE order)")
    return run, compile_s, (f"numba {numba.__version__} @njit, the whole run in one call: "
                            f"loops over the particles element-wise on (m,) arrays, {how}")


# ---- driver -----------------------------------------------------------------------------------

def default_seed_steps(m: int, steps: int) -> int:
    """Steps of the seed's loop code to time: all of them at m = 20, a few above."""
    return min(steps, max(2, 20_000 // m))


def two_threads(workload: str, pb: Problem, one_final, records: list[dict], args) -> list[dict]:
    """fit_teacher on two threads (the step's chunks of 512 particles shared out), as workload
    ``<workload>_2threads``: "eulerflow" the two-thread time and "eulerflow_1thread" a copy of
    this run's one-thread record, for the ratio. Its particles must be those of one thread,
    bit for bit."""
    one = next(r for r in records if r["impl"] == "eulerflow")
    run, note = eulerflow_fit_teacher_impl(pb, threads=2)

    def quality(result):
        a, w, b = (np.array(p, copy=True) for p in result)
        return {"test_loss": pb.test_loss(a, w, b),
                "param_maxdiff_vs_1thread": maxdiff((a, w, b), one_final)}

    two = f"{workload}_2threads"
    rec = harness.measure(two, "eulerflow", lambda: run(pb.steps), quality=quality, units=UNITS,
                          n_units=pb.steps, repeats=args.repeats, budget_s=args.budget,
                          notes=note, flops_per_unit=flops_per_step(pb.m))
    copy = harness.emit(dict(one, workload=two, impl="eulerflow_1thread",
                             notes="the one-thread figure of this run"))
    if rec["seconds"]:
        same = rec["quality"]["param_maxdiff_vs_1thread"]
        print(f"{two}: {one['seconds'] / rec['seconds']:.2f}x one thread; particles max |diff| "
              f"vs one thread {same:.3g}" + (" (bit for bit)" if same == 0.0 else " -- NOT EQUAL"),
              file=sys.stderr)
    return [rec, copy]


def run_width(m: int, args, ef, ef_reason: str) -> list[dict]:
    workload = workload_name(m)
    steps = args.steps
    pb = Problem(m, steps, ef)
    flops = flops_per_step(m)
    records = []
    finals = {}        # impl -> final (a, w, b) after all the steps
    step_states = {}   # steps -> eulerflow's (a, w, b) after that many steps (for short runs)

    def eulerflow_after(k):
        if ef is None:
            return None
        if k not in step_states:
            run, _ = eulerflow_step_loop_impl(pb)
            step_states[k] = tuple(np.array(p, copy=True) for p in run(k))
        return step_states[k]

    def timed(impl, run, note, *, n=steps, compile_s=None, warm=None):
        def quality(result):
            a, w, b = (np.array(p, copy=True) for p in result)
            figures = {"steps_run": n}
            if n == steps:
                figures["test_loss"] = pb.test_loss(a, w, b)
                finals[impl] = (a, w, b)
                if "eulerflow" in finals and impl != "eulerflow":
                    figures["param_maxdiff_vs_eulerflow"] = maxdiff((a, w, b), finals["eulerflow"])
            else:
                figures["test_loss_after_steps_run"] = pb.test_loss(a, w, b)
                ref = eulerflow_after(n)
                if ref is not None:
                    figures["param_maxdiff_vs_eulerflow_same_steps"] = maxdiff((a, w, b), ref)
            if compile_s is not None:
                figures["compile_seconds"] = compile_s() if callable(compile_s) else compile_s
            return figures

        full_note = note
        if n != steps:
            full_note += (f"; SLOW PEER: timed on {n} of the {steps} steps, per-step time; "
                          "compared with eulerflow after the same steps")
        rec = harness.measure(workload, impl, lambda: run(n), quality=quality, units=UNITS,
                              n_units=n, repeats=args.repeats,
                              warmup=(lambda: run(warm)) if warm else None,
                              budget_s=args.budget, notes="; ".join([full_note, pb.data_note]),
                              flops_per_unit=flops)
        records.append(rec)
        return rec

    ef_impls = ("eulerflow", "eulerflow_draws", "eulerflow_step_loop", "eulerflow_fit_data")
    if harness.any_selected(ef_impls, args.impl):
        if ef is None:
            records.append(harness.skip(workload, "eulerflow", ef_reason, units=UNITS))
        else:
            makers = (eulerflow_fit_teacher_impl, eulerflow_draws_impl, eulerflow_step_loop_impl,
                      eulerflow_fit_data_impl)
            for name, make in zip(ef_impls, makers, strict=True):
                if harness.selected(name, args.impl):
                    run, note = make(pb)
                    timed(name, run, note)
            if m >= TWO_THREADS_FROM and "eulerflow" in finals:
                records.extend(two_threads(workload, pb, finals["eulerflow"], records, args))
            # the timed native run saw the pre-drawn samples: bit for bit the step loop
            if "eulerflow" in finals:
                loop = finals.get("eulerflow_step_loop") or eulerflow_after(steps)
                same = maxdiff(finals["eulerflow"], loop)
                print(f"{workload}: fit_teacher vs step loop on the pre-drawn samples: max "
                      f"|diff| = {same:.3g}" + (" (bit for bit)" if same == 0.0 else
                                                " -- NOT the same samples?"), file=sys.stderr)

    if harness.selected("seed_loop", args.impl):
        n = min(steps, args.seed_steps or default_seed_steps(m, steps))
        run, note = seed_loop_impl(pb)
        timed("seed_loop", run, note, n=n, warm=1)

    for name, make in (("numpy_vectorized", numpy_impl),
                       ("numpy_vectorized_buffers", numpy_buffers_impl)):
        if harness.selected(name, args.impl):
            run, note = make(pb)
            timed(name, run, note, warm=min(steps, 50))

    if harness.any_selected(("torch_1thread", "torch_autograd_1thread"), args.impl):
        torch, reason = harness.optional_import("torch")
        for name, make in (("torch_1thread", torch_impl),
                           ("torch_autograd_1thread", torch_autograd_impl)):
            if not harness.selected(name, args.impl):
                continue
            if torch is None:
                records.append(harness.skip(workload, name, reason, units=UNITS))
            else:
                run, note = make(torch, pb)
                timed(name, run, note, warm=min(steps, 50))

    if harness.any_selected(("jax_jit", "jax_jit_manual"), args.impl):
        jax, reason = harness.optional_import("jax")
        for name, manual in (("jax_jit", False), ("jax_jit_manual", True)):
            if not harness.selected(name, args.impl):
                continue
            if jax is None:
                records.append(harness.skip(workload, name, reason, units=UNITS))
                continue
            run, fn, compiled, note = jax_impl(jax, pb, manual)
            fn(steps)  # compile before the clock starts
            timed(name, run, note + "; one compile per scan length",
                  compile_s=lambda c=compiled: c[steps])

    if harness.any_selected(("numba", "numba_fastmath"), args.impl):
        numba, reason = harness.optional_import("numba")
        for name, fastmath in (("numba", False), ("numba_fastmath", True)):
            if not harness.selected(name, args.impl):
                continue
            if numba is None:
                records.append(harness.skip(workload, name, reason, units=UNITS))
            else:
                run, compile_s, note = numba_impl(numba, pb, fastmath)
                timed(name, run, note, compile_s=compile_s)

    # summary on stderr: ratios, the fraction of the peak, and the test-loss agreement
    harness.print_ratios(records)
    peak = args.peak_gflops * 1e9
    for r in records:
        if r["seconds"]:
            print(f"{workload} {r['impl']}: {r['seconds'] * 1e6:.3g} us/step, "
                  f"{flops / r['seconds'] / 1e9:.2f} GFLOP/s = {flops / r['seconds'] / peak:.1%} "
                  f"of {args.peak_gflops:g} GFLOP/s", file=sys.stderr)
    ref = next((r for r in records if r["impl"] == "eulerflow" and r["seconds"]), None)
    if ref is not None:
        for r in records:
            q = r["quality"]
            if r is ref or not r["seconds"] or "test_loss" not in q:
                continue
            diff = abs(q["test_loss"] - ref["quality"]["test_loss"])
            print(f"{workload}: test loss eulerflow {ref['quality']['test_loss']:.15g} vs "
                  f"{r['impl']} {q['test_loss']:.15g}: |diff| = {diff:.2e} "
                  f"{'OK' if diff <= LOSS_TOL else 'MISMATCH'} (tol {LOSS_TOL:g}); particles "
                  f"max |diff| {q.get('param_maxdiff_vs_eulerflow', float('nan')):.2e}",
                  file=sys.stderr)
    return records


def cpu_peak_gflops() -> float:
    """16 double-precision flops per cycle (two 256-bit FMA pipes: Zen 4, and AVX2/AVX-512
    cores alike) at the clock /proc/cpuinfo reports; 16 x 3 GHz if it cannot be read."""
    try:
        with open("/proc/cpuinfo") as f:
            mhz = next(float(line.split(":")[1]) for line in f if line.startswith("cpu MHz"))
        return 16 * mhz / 1000.0
    except (OSError, StopIteration, ValueError):
        return 48.0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--m", type=int, nargs="*", default=list(WIDTHS), help="student widths")
    ap.add_argument("--steps", type=int, default=STEPS)
    ap.add_argument("--seed-steps", type=int, default=0,
                    help="steps of the seed's loop code to time (0: all at m=20, 20000/m above)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--budget", type=float, default=20.0,
                    help="seconds of timed repeats per implementation (at least one repeat)")
    ap.add_argument("--peak-gflops", type=float, default=None,
                    help="one core's float64 peak for the fraction-of-peak lines "
                         "(default 16 flops/cycle at the reported clock)")
    ap.add_argument("--impl", nargs="*", default=None, help="only these (prefixes)")
    args, unknown = ap.parse_known_args(argv)
    if unknown:
        print(f"w3_meanfield: ignoring {unknown}", file=sys.stderr)
    if args.peak_gflops is None:
        args.peak_gflops = cpu_peak_gflops()

    ef, ef_reason = harness.optional_import("eulerflow")
    if ef is not None and not hasattr(ef, "meanfield"):
        ef, ef_reason = None, "eulerflow has no meanfield module"
    records = []
    for m in args.m:
        records.extend(run_width(m, args, ef, ef_reason))
    return records


if __name__ == "__main__":
    main()
