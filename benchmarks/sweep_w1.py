"""Sweep of W1 (seed 002): 64 Neural ODE trainings, one per learning rate, on 1 vs 2 workers.

Each training is the W1 workload of w1_node_spiral.py (its problem reused from there):
seed 002's LinearODE (ef.Dense(2, 2, bias=False), W0 = np.random.RandomState(1).rand(2, 2))
on the spiral (ef.data.spiral_ode(): 100 points, 99 windows of one interval), Euler with 5
steps per interval, SGD with momentum 0.95, one window per step, 500 epochs, shuffle seed
0; only the learning rate changes: 64 values geometrically spaced over [1e-3, 5e-2] (all
converge). ef.sweep runs them with the local backend (joblib's loky process pool) on
n_jobs=1 (in this process, one after the other) and on n_jobs=2. Unit: one training.

Timing: the two settings alternate, repeat after repeat, so that a change in the machine's
load hits both; ``seconds`` is the median over the repeats of (wall time of the sweep / 64),
after one untimed warm-up of each (the warm-up of n_jobs=2 starts the worker pool, which
ef.sweep reuses afterwards: its time is reported as ``first_call_seconds``).
``other_load`` is the CPU-seconds per second that processes OUTSIDE this benchmark used
while its repeats ran: the machine's busy time (/proc/stat) minus the CPU time of this
process and of its descendants (the loky workers), per second of wall time. The machine
has 2 cores: n_jobs=2 cannot be faster than 2x, and any other load (> ~0.2) takes its
share from the workers.

Quality: the 64 final losses and learned matrices of every repeat of both settings must
equal those of the first n_jobs=1 sweep bit for bit (``final_loss_maxabsdiff_vs_1job``
and ``W_maxabsdiff_vs_1job`` are 0; ``bit_identical`` true). The record of n_jobs=2 holds
the speed-up (median 1-job time / median 2-job time) and the issue's target (>= 1.8x).

    python benchmarks/sweep_w1.py [--epochs 500] [--repeats 5] [--trainings 64]
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(_var, None)

import argparse  # noqa: E402
import functools  # noqa: E402
import gc  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import harness  # noqa: E402
import numpy as np  # noqa: E402
from w1_node_spiral import EPOCHS, LR, MOMENTUM, NSTEPS, SEED, make_problem  # noqa: E402

WORKLOAD = "sweep_w1_node_spiral"
UNITS = "training"
N_TRAININGS = 64
LR_RANGE = (1e-3, 5e-2)
TARGET_SPEEDUP = 1.8  # issue 8: two workers at least 1.8x faster than one
IMPLS = {1: "eulerflow_sweep_1job", 2: "eulerflow_sweep_2jobs"}


def train_w1(problem, lr):
    """One W1 training at learning rate ``lr``: (final epoch's loss, learned W). Runs in a
    worker process: sent there by value (cloudpickle) with ``problem``."""
    import eulerflow as ef

    field = ef.Dense(2, 2, bias=False)
    field.parameters()[0][...] = problem["W0"]
    node = ef.NeuralODE(field, method="euler", steps_per_interval=NSTEPS)
    hist = node.fit(problem["data"], problem["t"], epochs=problem["epochs"],
                    optimizer=ef.optim.SGD(float(lr), momentum=MOMENTUM), window=1,
                    batch_size=1, seed=SEED)
    return float(hist.loss[-1]), np.array(field.parameters()[0], copy=True)


# ---- CPU accounting: this process and its descendants (the worker pool) ------------------

def _family_cpu_seconds() -> float | None:
    """CPU-seconds used so far by this process and every live descendant (Linux /proc)."""
    try:
        table = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:  # ended meanwhile
                continue
            fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
            table[int(entry)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
        family, grew = {os.getpid()}, True
        while grew:
            more = {pid for pid, (ppid, _) in table.items() if ppid in family} - family
            family |= more
            grew = bool(more)
        return sum(table[p][1] for p in family if p in table) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


class Clock:
    """Wall times of the repeats of one setting, and the CPU that others used meanwhile."""

    def __init__(self):
        self.times: list[float] = []
        self.wall = self.busy = self.own = 0.0
        self.accounted = True

    def run(self, fn):
        gc.collect()
        gc.disable()
        busy0, own0 = harness._machine_busy_seconds(), _family_cpu_seconds()
        start = time.perf_counter()
        try:
            result = fn()
        finally:
            elapsed = time.perf_counter() - start
            gc.enable()
        busy1, own1 = harness._machine_busy_seconds(), _family_cpu_seconds()
        self.times.append(elapsed)
        if None in (busy0, busy1, own0, own1):
            self.accounted = False
        else:
            self.wall += elapsed
            self.busy += busy1 - busy0
            self.own += own1 - own0
        return result

    def other_load(self) -> float | None:
        if not self.accounted or self.wall <= 0:
            return None
        return round(max(0.0, self.busy - self.own) / self.wall, 2)

    def own_cpu_per_second(self) -> float | None:
        return round(self.own / self.wall, 2) if self.accounted and self.wall > 0 else None


def max_diff(results, reference) -> tuple[float, float]:
    loss = max(abs(a[0] - b[0]) for a, b in zip(results, reference, strict=True))
    w = max(float(np.max(np.abs(a[1] - b[1]))) for a, b in zip(results, reference,
                                                                 strict=True))
    return float(loss), w


def same_bits(results, reference) -> bool:
    return all(a[0] == b[0] and a[1].tobytes() == b[1].tobytes()
               for a, b in zip(results, reference, strict=True))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--trainings", type=int, default=N_TRAININGS)
    args, unknown = ap.parse_known_args(argv)
    if unknown:
        print(f"{WORKLOAD}: ignoring {unknown}", file=sys.stderr)

    ef, reason = harness.optional_import("eulerflow")
    if ef is not None:
        try:
            import joblib  # noqa: F401 - the local parallel backend
        except ImportError as exc:
            ef, reason = None, f"ef.sweep's local backend unavailable ({exc})"
    if ef is None:
        return [harness.skip(WORKLOAD, impl, reason, units=UNITS) for impl in IMPLS.values()]

    t, data, params0, problem_note = make_problem(ef, "w1")
    problem = {"t": t, "data": data, "W0": params0[0], "epochs": args.epochs}
    fn = functools.partial(train_w1, problem)
    lrs = np.geomspace(*LR_RANGE, args.trainings)
    n = len(lrs)
    ef.set_num_threads(1)

    def run(jobs):
        return ef.sweep(fn, lrs, n_jobs=jobs, progress=False)

    reference = run(1)  # warm-up of n_jobs=1, and the reference results
    start = time.perf_counter()
    run(2)              # warm-up of n_jobs=2: starts the worker pool
    first_call = time.perf_counter() - start
    clocks = {1: Clock(), 2: Clock()}
    identical = True
    worst = {1: (0.0, 0.0), 2: (0.0, 0.0)}
    for _ in range(max(1, args.repeats)):
        for jobs in (1, 2):
            results = clocks[jobs].run(lambda jobs=jobs: run(jobs))
            identical = identical and same_bits(results, reference)
            d = max_diff(results, reference)
            worst[jobs] = (max(worst[jobs][0], d[0]), max(worst[jobs][1], d[1]))

    median = {jobs: statistics.median(c.times) for jobs, c in clocks.items()}
    speedup = median[1] / median[2]
    losses = np.array([r[0] for r in reference])
    at_w1_lr = int(np.argmin(np.abs(lrs - LR)))
    workload_note = (f"{n} W1 trainings (LinearODE, Euler 5 steps/interval, SGD momentum "
                     f"{MOMENTUM}, {args.epochs} epochs, seed {SEED}), lr = "
                     f"geomspace({LR_RANGE[0]}, {LR_RANGE[1]}, {n}); {problem_note}")
    records = []
    for jobs, impl in IMPLS.items():
        clock = clocks[jobs]
        quality = {
            "final_loss_maxabsdiff_vs_1job": worst[jobs][0],
            "W_maxabsdiff_vs_1job": worst[jobs][1],
            "bit_identical": identical,
            "final_loss_min": float(losses.min()),
            "final_loss_max": float(losses.max()),
            f"final_loss_at_lr_{lrs[at_w1_lr]:.3g}": float(losses[at_w1_lr]),
            "own_cpu_per_second": clock.own_cpu_per_second(),
            "sweep_seconds_median": median[jobs],
            "sweep_seconds_all": [round(x, 4) for x in clock.times],
        }
        if jobs == 2:
            quality.update({"speedup_vs_1job": speedup, "target_speedup": TARGET_SPEEDUP,
                            "target_met": bool(speedup >= TARGET_SPEEDUP),
                            "first_call_seconds": first_call})
        how = ("in this process, one after the other" if jobs == 1 else
               "2 loky worker processes (pool started in the warm-up)")
        record = harness.make_record(
            WORKLOAD, impl, seconds=median[jobs] / n, units=UNITS, n_units=n,
            repeats=len(clock.times), quality=quality,
            notes=f"ef.sweep(train, lrs, n_jobs={jobs}, progress=False): {how}; repeats "
                  f"alternate between n_jobs=1 and 2; {workload_note}")
        record["other_load"] = clock.other_load()
        records.append(harness.emit(record))

    print(f"== {WORKLOAD}: n_jobs=1 {median[1]:.3f} s, n_jobs=2 {median[2]:.3f} s per sweep of "
          f"{n}: speed-up {speedup:.2f}x (target {TARGET_SPEEDUP}x: "
          f"{'met' if speedup >= TARGET_SPEEDUP else 'NOT met'}); other_load "
          f"{clocks[1].other_load()} / {clocks[2].other_load()}; results bit-identical: "
          f"{identical} (max |loss diff| {max(worst[1][0], worst[2][0]):.1e})", file=sys.stderr)
    return records


if __name__ == "__main__":
    main()
