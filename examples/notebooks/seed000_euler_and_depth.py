# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Seed 000: neural nets understood through the Euler method
#
# The seed notebook integrates a projectile with wind by Euler's method, then trains
# deep narrow ELU networks (width 3, up to 40 layers, plain or residual) to map an
# initial state and a time to the final position, hoping that the state after layer
# $l$ of $L$ would be the position at time $l/L$: "depth as time". It says it
# "attempts (and fails)".
#
# This notebook reruns the experiment with eulerflow and then makes the claim work: a
# residual network with tied weights and step $1/L$ *is* Euler's method on an ODE, and
# converges to that ODE's flow as $L$ grows. Figures go to
# `$EULERFLOW_NOTEBOOK_OUT` (default `notebook_out/`).

# %%
import os
from pathlib import Path

import eulerflow as ef
import numpy as np
from eulerflow import plot

QUICK = True  # smaller data and fewer epochs: the whole notebook in a few seconds
OUT = Path(os.environ.get("EULERFLOW_NOTEBOOK_OUT", "notebook_out")) / "seed000"
OUT.mkdir(parents=True, exist_ok=True)


def save(fig, name):
    """Write a figure into OUT (Jupyter shows it below the cell as well)."""
    fig.savefig(OUT / name, dpi=100)


# %% [markdown]
# ## Euler's method on the projectile
#
# From the origin at velocity $(5, 0, 0.1)$, under gravity $-9.8$ along $x$ (the
# height) and a wind of $0.1$ along $y$. `ef.data.projectile_euler(h)` takes explicit
# Euler steps of size $h$ on the state (position, velocity);
# `ef.fields.Projectile().analytic` is the exact solution.

# %%
field = ef.fields.Projectile()
y0 = np.array(ef.data.PROJECTILE_Y0)
exact = field.analytic(y0, np.linspace(0.0, 1.0, 201))
runs = {f"Euler, h = {h:g}": ef.data.projectile_euler(h) for h in (0.1, 0.01, 0.001)}
for label, states in runs.items():
    error = np.abs(states[-1, :3] - exact[-1, :3]).max()
    print(f"{label}: {len(states) - 1} steps, error at t = 1: {error:.2e}")
save(plot.trajectories_3d(runs, reference=exact, order=(2, 1, 0), view=(7, 297),
                          labels=("x (height)", "y (wind)", "z (drift)"),
                          title="Projectile: Euler steps against the analytic trajectory"),
     "euler_trajectories.png")

# %% [markdown]
# ## Orders of convergence
#
# `ef.odeint(f, y0, t, method=..., step_size=h)` runs any explicit Runge-Kutta method.
# On the linear spiral $a' = Aa$ of seed 002 the end-point error falls like $h^p$ with
# $p = 1, 2, 4$ for Euler, midpoint and RK4 (the projectile, quadratic in $t$, is
# integrated exactly by every method of order 2 or more).

# %%
A = np.array([[-0.1, -1.0], [1.0, -0.1]])
a0 = np.array([0.6, 0.3])
c, s = np.cos(1.0), np.sin(1.0)
spiral_exact = np.exp(-0.1) * np.array([[c, -s], [s, c]]) @ a0  # exp(A) a0
steps = 2.0 ** -np.arange(1, 9)
errors = {m: np.array([np.abs(ef.odeint(ef.fields.Linear(A), a0, [0.0, 1.0], method=m,
                                        step_size=h)[-1] - spiral_exact).max()
                       for h in steps])
          for m in ("euler", "midpoint", "rk4")}
print({m: round(plot.loglog_slope(steps, e)[0], 2) for m, e in errors.items()})
save(plot.convergence(steps, errors, orders={"euler": 1, "midpoint": 2, "rk4": 4},
                      ylabel="max-norm error at t = 1",
                      title="Linear spiral: error against step size"),
     "euler_convergence.png")

# %% [markdown]
# ## The seed's deep narrow networks
#
# `ef.data.projectile(n)` is the seed's data set: inputs $(0, 0, 0, 5, 0, 0.1, t)$,
# targets the position at $t$, scaled as $(x/10, 10y, 10z)$. The seed stacks
# `Dense(3, 3)` + ELU layers after a first `Dense(7, 3)`; here 5 of them, as residual
# averages $(f(x) + x)/2$ (Keras' `Average`), trained with Nadam, float64.

# %%
X, Y = ef.data.projectile(10_000 if QUICK else 100_000, seed=0)
depth = 5
layers = [ef.Dense(7, 3, seed=0), ef.Activation("elu")]
for k in range(depth - 1):
    block = ef.Sequential([ef.Dense(3, 3, seed=k + 1), ef.Activation("elu")])
    layers.append(ef.Residual(block, mode="average"))
seed_net = ef.Sequential(layers)
hist = seed_net.fit(X, Y, loss="mse", optimizer=ef.optim.Nadam(lr=0.002),
                    epochs=40 if QUICK else 100, batch_size=200, seed=0)
print(f"final training loss {hist.loss[-1]:.2e}")

# %% [markdown]
# The seed's figure: the state after every layer for the input $t = 1$. The net hits
# the target, but nothing ties layer $l$ to time $l/L$: each layer has its own weights
# and there is no step size, so the path in between wanders.

# %%
x_one = np.array([[*ef.data.PROJECTILE_Y0, 1.0]])
states = seed_net.hidden_states(x_one)  # the input, then the output of every layer
# the seed's start (0, 0, 0), then the state after the first ELU and after each block
path = np.vstack([np.zeros(3), *(s[0] for s in states[2:])])
scaled = ef.fields.Projectile(gravity=-0.98, wind=1.0)  # the seed's scaled coordinates
y0_scaled = np.array([0.0, 0.0, 0.0, 0.5, 0.0, 1.0])
truth = scaled.analytic(y0_scaled, np.linspace(0.0, 1.0, 101))
print("last state", path[-1].round(3), "target", truth[-1, :3].round(3))
save(plot.trajectories_3d({f"state after layer l = 0..{depth}": path}, reference=truth,
                          order=(2, 1, 0), view=(7, 297), markers=True,
                          labels=("x/10 (height)", "10 y (wind)", "10 z (drift)"),
                          reference_label="analytic trajectory, t in [0, 1]",
                          title="The seed's hope: layer l at time l/L?"),
     "seed_hidden_states.png")

# %% [markdown]
# ## Depth as time, made to work
#
# A residual block $x \leftarrow x + h f(x)$ is one Euler step of $\dot x = f(x)$.
# `ef.ResidualFlow(f, L)` stacks $L$ such blocks with $h = 1/L$, all sharing one field
# $f$. Trained to map a state of the (scaled) projectile to the state one time unit
# later, its field learns the projectile's dynamics.

# %%
rng = np.random.default_rng(1)
n = 3_000 if QUICK else 20_000
S0 = np.column_stack([rng.uniform(-1, 1, (n, 3)), rng.uniform(-1, 1, n),
                      rng.uniform(-0.5, 1.5, n), rng.uniform(0, 2, n)])
S1 = ef.odeint(scaled, S0, [0.0, 1.0], method="rk4")[-1]  # exact: quadratic in t
flow_net = ef.ResidualFlow(ef.mlp([6, 32, 6], "tanh", seed=0), depth=20)
flow_hist = flow_net.fit(S0, S1, optimizer=ef.optim.Nadam(lr=0.002),
                         epochs=10 if QUICK else 40, batch_size=100, seed=0)
print(f"ResidualFlow, L = 20: final loss {flow_hist.loss[-1]:.2e}")

# %% [markdown]
# One trained field $f$, run at any depth $L$: the hidden states are exactly Euler's
# steps, so they approach `ef.odeint`'s flow of $f$ with error $O(1/L)$, a slope of
# $-1$ on log-log axes.

# %%
f = flow_net.field
depths = np.array([5, 10, 20, 40, 80, 160, 320])
distances = []
for L in depths:
    t = np.linspace(0.0, 1.0, L + 1)
    hidden = np.array(ef.ResidualFlow(f, int(L)).hidden_states(y0_scaled))
    flow = ef.odeint(f, y0_scaled, t, rtol=1e-12, atol=1e-12)
    distances.append(np.linalg.norm(hidden - flow, axis=1).max())
print("fitted slope", round(plot.loglog_slope(depths, distances)[0], 3))
save(plot.depth_convergence(depths, {"hidden path to the ODE flow of f": distances},
                            ylabel="max distance over t in [0, 1]"),
     "depth_convergence.png")

# %%
t1 = np.linspace(0.0, 1.0, 101)
paths = {f"L = {L} blocks": np.array(ef.ResidualFlow(f, L).hidden_states(y0_scaled))
         for L in (5, 20, 80)}
paths["ODE flow of f (dopri5)"] = ef.odeint(f, y0_scaled, t1)
save(plot.trajectories_3d(paths, reference=scaled.analytic(y0_scaled, t1), order=(2, 1, 0),
                          view=(7, 297), labels=("x/10 (height)", "10 y (wind)", "10 z (drift)"),
                          reference_label="analytic trajectory",
                          title="Hidden state after every block, from the seed's start"),
     "depth_as_time.png")

# %%
print("figures:", ", ".join(sorted(p.name for p in OUT.glob("*.png"))))
