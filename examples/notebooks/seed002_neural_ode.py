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
# # Seed 002: Neural ODEs for dynamical systems
#
# The seed notebook generates a spiral from the linear ODE $a' = Aa$ with
# $A = \begin{pmatrix}-0.1 & -1\\ 1 & -0.1\end{pmatrix}$, unfolds an Euler solver over
# the time grid, and trains a LinearODE $z' = Wz$ (with or without a bias) and a
# NonLinearODE (Linear(2, 4), ReLU, Linear(4, 2)) on consecutive windows with SGD and
# momentum. It prints a learned diagonal of $-0.1199$ where the truth is $-0.1$,
# explores the loss landscape, and trains from extreme starts.
#
# With eulerflow a Neural ODE is `ef.NeuralODE(field, method)`; its whole training
# loop runs in C++. This notebook also explains the seed's $-0.1199$: it is Euler's
# bias, which RK4 does not have. Figures go to `$EULERFLOW_NOTEBOOK_OUT` (default
# `notebook_out/`).

# %%
import os
from pathlib import Path

import eulerflow as ef
import numpy as np
from eulerflow import plot

QUICK = True  # fewer epochs: the whole notebook in a few seconds
EPOCHS = 500  # the seed's budget
OUT = Path(os.environ.get("EULERFLOW_NOTEBOOK_OUT", "notebook_out")) / "seed002"
OUT.mkdir(parents=True, exist_ok=True)


def save(fig, name):
    """Write a figure into OUT (Jupyter shows it below the cell as well)."""
    fig.savefig(OUT / name, dpi=100)


# %% [markdown]
# ## The data
#
# `ef.data.spiral_ode()` integrates $a' = Aa$ from $a_0 = (0.6, 0.3)$ at 100 times in
# $[0, 10]$ (dopri5 at tolerance $10^{-12}$: the matrix exponential, without SciPy).

# %%
A = np.array([[-0.1, -1.0], [1.0, -0.1]])
t, ys = ef.data.spiral_ode(A, (0.6, 0.3), t_end=10.0, n_points=100)
h = t[1] - t[0]
print(t.shape, ys.shape, f"h = {h:.4f}")

# %% [markdown]
# ## The seed's three models
#
# A window starts at `data[i]`, integrates to `t[i+1]` (5 Euler steps) and its loss is
# the MSE against `data[i+1]`. The seed's start is uniform in $[0, 1)$.

# %%
def seed_start(bias=False):
    rng = np.random.default_rng(1)
    layer = ef.Dense(2, 2, bias=bias)
    layer.W = rng.random((2, 2))
    if bias:
        layer.b = rng.random(2)
    return layer


fields = {"LinearODE": seed_start(),
          "LinearODE with bias": seed_start(bias=True),
          "NonLinearODE, mlp([2, 4, 2], relu)": ef.mlp([2, 4, 2], "relu", seed=0)}
models, histories = {}, {}
for name, field in fields.items():
    models[name] = ef.NeuralODE(field, "euler", steps_per_interval=5)
    histories[name] = models[name].fit(ys, t, epochs=EPOCHS,
                                       optimizer=ef.optim.SGD(1e-2, momentum=0.95))
    print(f"{name}: final window loss {histories[name].loss[-1]:.2e}")
print("learned W of the LinearODE:\n", fields["LinearODE"].W.round(4))

# %%
fig, (ax_fit, ax_loss) = plot.figure_grid(1, 2, figsize=(12.0, 5.0),
                                          title="Neural ODEs on the spiral (Euler, 5 steps)")
plot.node_fit(ys, {k: m.trajectory(ys[0], t) for k, m in models.items()}, ax=ax_fit,
              title="Predicted (from the first point) vs real points")
plot.loss_curves(histories, ax=ax_loss, ylabel="mean window loss (MSE)")
save(fig, "node_spiral.png")

# %% [markdown]
# ## Which matrix does it learn?
#
# Five Euler steps of size $h/5$ map $z$ to $(I + \tfrac h5 W)^5 z$, and the data obey
# $z(t+h) = e^{hA} z(t)$. The loss is zero at
# $M_h = \tfrac 5h (e^{hA/5} - I) = A + \tfrac{h}{10}A^2 + \dots$, not at $A$. The
# matrix exponential comes from `ef.odeint` on a batch: the columns of the identity.
# A LinearODE trained with `"rk4"` instead recovers $A$ itself.

# %%
expm = ef.odeint(ef.fields.Linear(A), np.eye(2), [0.0, h / 5], rtol=1e-13, atol=1e-13)[-1].T
M_h = (expm - np.eye(2)) / (h / 5)
long = 1000 if QUICK else 2000
learned = {}
for method in ("euler", "rk4"):
    field = seed_start()
    ef.NeuralODE(field, method, steps_per_interval=5).fit(ys, t, epochs=long)
    learned[method] = field.W
    print(f"{method}: W = {field.W.round(5).tolist()}, max|W - A| = "
          f"{np.abs(field.W - A).max():.1e}, max|W - M_h| = {np.abs(field.W - M_h).max():.1e}")

# %% [markdown]
# ## Two gradients
#
# `gradient="backprop"` differentiates the discrete solver exactly;
# `gradient="adjoint"` integrates the adjoint ODE backwards with memory that does not
# grow with the number of steps. For RK4 they agree to the solver's accuracy.

# %%
model = ef.NeuralODE(ef.mlp([2, 16, 2], "tanh", seed=0), "rk4", steps_per_interval=5)
window = t[:11]
for gradient in ("backprop", "adjoint"):
    loss, grads, _ = model.loss_and_gradient(ys[0], ys[10], window, gradient=gradient)
    print(f"{gradient:>8}: loss {loss:.6e}, dL/dW1[0] = {grads[0][0].round(8)}")

# %% [markdown]
# ## The loss landscape
#
# `ef.landscape.shift_scan` moves every parameter (or one column of $W$) by $\alpha$
# and records the loss, as the seed's `exploreLandscape`; with `retrain_epochs` it also
# retrains from each shifted start. The parameters are restored afterwards.

# %%
trained = models["LinearODE"]
alphas = np.linspace(-2.0, 2.0, 41)
scans = {name: ef.landscape.shift_scan(trained, ys, t, alphas, column=col)
         for name, col in (("every parameter", None), ("column 0", 0), ("column 1", 1))}
retrain = ef.landscape.shift_scan(trained, ys, t, np.linspace(-10, 10, 6 if QUICK else 21),
                                  retrain_epochs=100 if QUICK else EPOCHS)
print("retrained losses:", ", ".join(f"{v:.1e}" for v in retrain.loss_retrained))
fig, (ax_a, ax_b) = plot.figure_grid(1, 2, figsize=(12.0, 4.6),
                                     title="Loss landscape of the trained LinearODE")
plot.landscape({k: (s.alphas, s.loss) for k, s in scans.items()}, ax=ax_a, log=False,
               title=r"$L(W^* + \alpha d)$: a parabola near the minimum")
plot.landscape({"every parameter": (retrain.alphas, retrain.loss_retrained),
                "every parameter (before)": (retrain.alphas, retrain.loss)}, ax=ax_b,
               title="Retrained from each shifted start\n(dashed: before retraining)")
save(fig, "node_landscape.png")

# %% [markdown]
# ## Many trainings in one call: `ef.Ensemble`
#
# The seed tuned its learning rate by hand. `ef.Ensemble(make, n)` trains $n$ copies of
# one architecture in one native call, member $i$ with its own learning rate; each ends
# bit-identical to its own `fit`.

# %%
rates = np.geomspace(1e-4, 3e-2, 16)
ensemble = ef.Ensemble(lambda i: ef.NeuralODE(seed_start(), "euler", steps_per_interval=5),
                       len(rates))
ens_hist = ensemble.fit(ys, t, epochs=100 if QUICK else 300, lr=rates, seed=0)
print("final losses:", ", ".join(f"{v:.1e}" for v in ens_hist.loss[-1]))
save(plot.ensemble_lr(ens_hist), "ensemble_lr.png")

# %% [markdown]
# ## Lorenz
#
# The seed's second data set: the Lorenz attractor, here learned by a NonLinearODE with
# an MLP field `ef.mlp([3, 32, 3], "tanh")` integrated by RK4 and trained with Adam on
# normalised data. Chaos limits how long a free run can follow the data.

# %%
_, warm = ef.data.lorenz(n_points=2, t_end=15.0, method="dopri5")  # onto the attractor
lt, lys = ef.data.lorenz(n_points=400, t_end=4.0, y0=warm[-1], method="dopri5")
mu, sd = lys.mean(axis=0), lys.std(axis=0)
lorenz = ef.NeuralODE(ef.mlp([3, 32, 3], "tanh", seed=0), "rk4")
stages = 100 if QUICK else 300
hist = lorenz.fit((lys - mu) / sd, lt, epochs=stages, optimizer=ef.optim.Adam(1e-2),
                  batch_size=4)
hist.extend(lorenz.fit((lys - mu) / sd, lt, epochs=stages, optimizer=ef.optim.Adam(1e-3),
                       batch_size=4, seed=1))
pred = lorenz.trajectory((lys[0] - mu) / sd, lt) * sd + mu
print(f"final window loss {hist.loss[-1]:.2e}")
fig, (ax_3d, ax_loss) = plot.figure_grid(1, 2, figsize=(12.0, 5.0), projections=("3d", None),
                                         title="Lorenz learned by a Neural ODE")
plot.trajectories_3d({"Neural ODE from the first point": pred}, lys, ax=ax_3d,
                     reference_label="data (400 points)", title=f"t in [0, {lt[-1]:g}]")
plot.loss_curves({"Adam(1e-2), then Adam(1e-3)": hist}, ax=ax_loss,
                 ylabel="mean window loss (normalised data)")
save(fig, "node_lorenz.png")

# %%
print("figures:", ", ".join(sorted(p.name for p in OUT.glob("*.png"))))
