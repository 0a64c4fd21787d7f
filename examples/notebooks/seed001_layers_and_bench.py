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
# # Seed 001: layers from scratch, online learning and NNBench
#
# The seed notebook writes a layer protocol by hand (forward; backprop that returns
# the input gradient and updates the parameters with a rate $\alpha$), cascades
# layers into a network, learns online from `(x, expected)` facts, and builds
# *NNBench*: checkpoint and rollback, a seeded generator of facts, per-fact loss
# curves on a log scale, a "learning potential" $-\ln(\text{loss})$ and an interactive
# plot with sliders. Its affine backprop multiplies by $M$ where it needs $M^T$, and its
# learning potential prints `nan`.
#
# eulerflow's layers, `learn` and `ef.bench.LearningBench` do all of this, with exact
# gradients. Figures go to `$EULERFLOW_NOTEBOOK_OUT` (default `notebook_out/`).

# %%
import os
from pathlib import Path

import eulerflow as ef
import numpy as np
from eulerflow import plot

QUICK = True  # fewer learning rates in the sweep
OUT = Path(os.environ.get("EULERFLOW_NOTEBOOK_OUT", "notebook_out")) / "seed001"
OUT.mkdir(parents=True, exist_ok=True)


def save(fig, name):
    """Write a figure into OUT (Jupyter shows it below the cell as well)."""
    fig.savefig(OUT / name, dpi=100)


# %% [markdown]
# ## Layers: forward and backward side by side
#
# `ef.Dense(n_in, n_out)` is the seed's affine layer, $y = W x + b$ (on row batches:
# `x @ W.T + b`); `ef.Map(fun, dfun)` its element-wise map layer, from any vectorized
# function and its derivative; `ef.Sequential` the cascade. `net.backward(dL/dy)`
# returns $dL/dx$ and fills `net.gradients()`; a finite difference checks it.

# %%
net = ef.Sequential([ef.Dense(2, 3, seed=0),
                     ef.Map(np.tanh, lambda x: 1.0 - np.tanh(x) ** 2),
                     ef.Dense(3, 2, seed=1)])
print(net)
x = np.array([[0.3, -0.7]])
y = net(x)                        # forward
gy = np.array([[1.0, -2.0]])      # dL/dy for the loss L = y . gy
gx = net.backward(gy)             # backward: dL/dx
eps = 1e-6
fd = [((net(x + eps * e) - net(x - eps * e)) @ gy.T).item() / (2 * eps) for e in np.eye(2)]
print("dL/dx by backward:", gx.ravel(), " by finite differences:", np.round(fd, 10))

# %% [markdown]
# ## Online learning: one SGD step per fact
#
# `layer.learn((X, Y), lr)` takes one plain SGD step per fact on
# $\|W x + b - \text{expected}\|^2 / 2$ and returns the loss of every fact, taken
# before its step. Can one affine layer learn to swap two coordinates? With the right
# gradient ($W^T$, not $W$) it can, to machine precision.

# %%
V = np.random.default_rng(3).standard_normal((300, 2))  # a seeded stream of inputs
curves = {}
for lr in (0.01, 0.03, 0.1):
    layer = ef.Dense(2, 2, seed=0)
    curves[f"lr = {lr:g}"] = layer.learn((V, V[:, ::-1]), lr=lr)
print("learned W", layer.W.round(6).tolist(), "b", layer.b.round(6).tolist())
save(plot.fact_losses(curves, smooth=5.0), "swap_fact_losses.png")
save(plot.weights_image(layer, title="Swap learned online (lr = 0.1): $W^T$ and bias"),
     "swap_weights.png")

# %% [markdown]
# ## XOR
#
# The classic: a 2-2-1 `tanh` network, full batch, SGD with momentum on the seed's
# loss $\|y - t\|^2/2$ (`loss="half_se"`). The output map shows the two decision
# lines a hidden layer of two units can draw.

# %%
X, Y = ef.data.xor()
xor = ef.mlp([2, 2, 1], "tanh", seed=0)
hist = xor.fit(X, Y, loss="half_se", optimizer=ef.optim.SGD(0.2, momentum=0.9),
               epochs=1000, batch_size=4, shuffle=False)
print("outputs", xor(X).ravel().round(6), "final loss", f"{hist.loss[-1]:.2e}")
save(plot.output_map(xor, X, Y, title="XOR: output of the trained 2-2-1 network"),
     "xor_output.png")

# %% [markdown]
# ## The learning bench
#
# `ef.bench.LearningBench(net, ideal, seed)` holds a network, the function it should
# learn and a seeded generator of facts `(x, ideal(x))`. `checkpoint()` / `rollback()`
# restore the weights bit for bit; `learning_potential(n, lr)` is $-\ln$ of the last
# fact's loss (a diverging run is $-\infty$ with a warning, never `nan`).

# %%
bench = ef.bench.LearningBench(ef.Dense(2, 2, seed=0), lambda v: v[::-1], seed=3)
losses = bench.learn(100, lr=0.1)
print(f"after 100 facts: loss {losses[-1]:.2e}")
bench.rollback()  # back to the weights of the checkpoint
print(f"learning potential at lr = 0.1: {bench.learning_potential(100, lr=0.1):.2f}")

# %% [markdown]
# Gradient descent is Euler's method on the gradient flow, stable only for
# $\text{lr} < 2/\lambda_{\max}$ ($\lambda_{\max}$ the top eigenvalue of the Hessian).
# `sharpness()` finds it by power iteration on Hessian-vector products;
# `sweep_lr` measures the potential over many learning rates (as one ensemble call).

# %%
lam = bench.sharpness(n=100)
result = bench.sweep_lr(np.geomspace(1e-3, 30, 16 if QUICK else 40), n=100)
print(f"lambda_max = {lam:.3f}, 2/lambda_max = {2 / lam:.3f}, best lr {result.best_lr:.3g}, "
      f"{int(result.diverged.sum())} rates diverged")
save(result.plot(sharpness=lam), "lr_sweep.png")

# %% [markdown]
# ## The knobs plot
#
# Seed 001's interactive plot: a learning-rate slider, a fact-count slider, a reseed
# button, a raw / low-pass switch, and the weights as an image. Every change rolls the
# network back to the checkpoint and learns again.
#
# **For live sliders in Jupyter, first run `%matplotlib widget`** (needs `ipympl`,
# installed by `pip install "eulerflow[notebooks]"`), then run the cell below. Without
# it the plot is a still picture; the cell also turns the knobs from code, which works
# anywhere, even headless.

# %%
knobs = bench.knobs(n=100, lr=0.1)
knobs.save(OUT / "knobs.png")
knobs.lr_slider.set_val(np.log10(0.5))  # what dragging the slider does
knobs.set_filter("low-pass")            # what the radio button does
print(f"lr = {knobs.lr:.3g}, n = {knobs.n}, last loss {knobs.losses[-1]:.3g}")
knobs.save(OUT / "knobs_lowpass.png")

# %%
print("figures:", ", ".join(sorted(p.name for p in OUT.glob("*.png"))))
