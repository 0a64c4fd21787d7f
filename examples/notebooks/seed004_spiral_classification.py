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
# # Seed 004: a numerical tour of neural networks (spiral classification)
#
# The seed notebook builds a multi-layer perceptron by hand,
# $x_{r+1} = \rho(A_r x_r + b_r)$ with $\rho = \arctan$, trains it by gradient
# descent on the multi-class logistic loss (a stabilised log-sum-exp) and draws the
# class probabilities over the plane. It then asks how the number of layers matters,
# and checks its hand-written gradient.
#
# Here every step is one eulerflow call: the data set, the network, the whole
# training loop (in C++), the figures. Open this file in Jupyter with jupytext
# (`pip install "eulerflow[notebooks]"`), or run it as a script: the figures go to
# `$EULERFLOW_NOTEBOOK_OUT` (default `notebook_out/`).

# %%
import os
import time
from pathlib import Path

import eulerflow as ef
import numpy as np
from eulerflow import plot

QUICK = True  # fewer epochs and coarser grids: the whole notebook in a few seconds
EPOCHS = 1000 if QUICK else 5000
GRID = 100 if QUICK else 200
OUT = Path(os.environ.get("EULERFLOW_NOTEBOOK_OUT", "notebook_out")) / "seed004"
OUT.mkdir(parents=True, exist_ok=True)


def save(fig, name):
    """Write a figure into OUT (Jupyter shows it below the cell as well)."""
    fig.savefig(OUT / name, dpi=100)


# %% [markdown]
# ## The data: three interleaved spirals
#
# `ef.data.spiral_classes(n_per_class, k, noise, seed)` draws the seed's spirals
# (k classes of n0 points, angular noise 0.2). Labels are class indices `0..k-1`; the
# seed's indexing bug (class 0's points at a negative offset) is not copied.

# %%
X, y = ef.data.spiral_classes(n_per_class=100, k=3, noise=0.2, seed=0)
print(X.shape, y.shape, np.bincount(y))
save(plot.scatter_classes(X, y, title="Spiral data: 3 classes x 100 points"), "spiral_data.png")

# %% [markdown]
# ## The network and its training
#
# `ef.mlp([2, 15, 3], "atan")` is Dense(2, 15), atan, Dense(15, 3): the last layer
# gives one logit per class. `fit` with `loss="cross_entropy"` minimises
# $\frac1n\sum_i \log\sum_j e^{z_{ij}} - z_{i,y_i}$, PyTorch's definition, and with
# `batch_size=len(X)` and `shuffle=False` each epoch is one full-batch gradient step,
# as in the seed. The whole loop runs in one native call.

# %%
net = ef.mlp([2, 15, 3], activation="atan", seed=0)
print(net)
start = time.perf_counter()
hist = net.fit(X, y, loss="cross_entropy", optimizer=ef.optim.SGD(lr=1.0),
               epochs=EPOCHS, batch_size=len(X), shuffle=False)
seconds = time.perf_counter() - start
accuracy = np.mean(net(X).argmax(axis=1) == y)
print(f"{EPOCHS} epochs in {seconds * 1e3:.0f} ms: final loss {hist.loss[-1]:.4f}, "
      f"training accuracy {accuracy:.1%}")

# %%
fig = plot.history(hist)
fig.axes[0].set_title("mlp [2,15,3], atan: loss and accuracy per epoch")
save(fig, "classify_loss.png")

# %% [markdown]
# ## The class-probability map
#
# Each pixel mixes the class colours by the softmax probabilities of the network's
# logits: pure colours where the network is sure, blends along the boundaries.

# %%
save(plot.classification_map(net, X, y, grid=GRID,
                             title=f"Class probabilities, accuracy {accuracy:.1%}"),
     "classify_map.png")

# %% [markdown]
# ## The gradient, checked
#
# The seed compared its hand-written backpropagation with automatic differentiation.
# `net.backward(g)` takes $g = \partial L / \partial z$ (for the mean cross-entropy,
# $(\mathrm{softmax}(z) - \mathrm{onehot}(y)) / n$), fills `net.gradients()` and
# returns $\partial L/\partial x$. Central finite differences on a few weights agree.

# %%
def loss_of(model):
    z = model(X)
    zmax = z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z - zmax).sum(axis=1)) + zmax[:, 0]
    return float(np.mean(lse - z[np.arange(len(y)), y]))


z = net(X)
net.backward((plot.softmax(z) - np.eye(3)[y]) / len(y))
W0, grad_W0 = net.parameters()[0], net.gradients()[0]
eps = 1e-6
for i, j in [(0, 0), (4, 1), (14, 0)]:
    keep = W0[i, j]
    W0[i, j] = keep + eps
    up = loss_of(net)
    W0[i, j] = keep - eps
    down = loss_of(net)
    W0[i, j] = keep
    print(f"dL/dW[{i},{j}]: backward {grad_W0[i, j]:+.8f}, "
          f"finite differences {(up - down) / (2 * eps):+.8f}")

# %% [markdown]
# ## Influence of the number of layers
#
# The seed's exercise: the same training for deeper networks. Deeper nets drop the
# loss sooner but, at this step size, train less smoothly.

# %%
runs = []
for sizes in ([2, 15, 3], [2, 15, 15, 3], [2, 8, 8, 8, 3], [2, 4, 5, 8, 4, 3]):
    model = ef.mlp(sizes, "atan", seed=0)
    h = model.fit(X, y, loss="cross_entropy", optimizer=ef.optim.SGD(1.0), epochs=EPOCHS,
                  batch_size=len(X), shuffle=False)
    runs.append((str(sizes).replace(" ", ""), model, h))
    print(f"{sizes}: final loss {h.loss[-1]:.4f}, "
          f"accuracy {np.mean(model(X).argmax(axis=1) == y):.1%}")
save(plot.layers_comparison(runs, X, y, grid=GRID // 2 + 50,
                            title=f"Influence of the number of layers ({EPOCHS} epochs)"),
     "classify_depth.png")

# %% [markdown]
# ## Where training ended: the loss landscape
#
# `ef.landscape.scan_2d` evaluates the loss on a plane through the trained weights,
# spanned by two random filter-normalized directions (Li et al. 2018); the parameters
# are restored bit for bit afterwards.

# %%
axis = np.linspace(-1.0, 1.0, 21 if QUICK else 51)
scan = ef.landscape.scan_2d(net, (X, y), axis, axis, loss="cross_entropy", seed=0)
print(f"{scan.loss.size} points in {scan.seconds * 1e3:.1f} ms, "
      f"loss at the trained weights {scan.origin_loss:.4f}")
save(plot.landscape_2d(scan), "landscape_2d.png")

# %%
print("figures:", ", ".join(sorted(p.name for p in OUT.glob("*.png"))))
