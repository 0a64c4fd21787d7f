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
# # Seed 003: mean-field two-layer ReLU networks
#
# A two-layer network $f(x) = \frac1m \sum_j a_j\, \mathrm{relu}(w_j \cdot x + b_j)$ is a
# cloud of $m$ particles $(a_j, w_j, b_j)$; SGD moves the particles, and as $m$ grows
# their motion becomes a gradient flow on measures (Chizat & Bach 2018).
#
# The seed notebook trains a student of $m = 20$ neurons, started on a small sphere, on
# a teacher of $M = 4$ neurons in $d = 2$ whose $(w, b)$ lie on the unit sphere, draws
# the particles $a_j w_j$ in the plane with the teacher's directions as rays, animates
# the training, and leaves open questions: the initial sphere's radius, the number of
# units, the teacher's configuration. `ef.meanfield` runs whole trainings in C++.
# Figures go to `$EULERFLOW_NOTEBOOK_OUT` (default `notebook_out/`).

# %%
import os
from pathlib import Path

import eulerflow as ef
import numpy as np
from eulerflow import plot
from matplotlib import animation

QUICK = True  # fewer steps and a smaller grid: the whole notebook in a few seconds
STEPS = 4000 if QUICK else 20000
OUT = Path(os.environ.get("EULERFLOW_NOTEBOOK_OUT", "notebook_out")) / "seed003"
OUT.mkdir(parents=True, exist_ok=True)
mf = ef.meanfield


def save(fig, name):
    """Write a figure into OUT (Jupyter shows it below the cell as well)."""
    fig.savefig(OUT / name, dpi=100)


# %% [markdown]
# ## Teacher and student
#
# `TwoLayerReLU.random` draws $a \sim N(0, 1)$ and $(w, b)$ on the unit sphere, as the
# seed; `small_sphere` puts the student's $(w_j, b_j)$ on a sphere of radius 0.05.
# Seed 54 gives a teacher whose four directions are well apart.

# %%
teacher = mf.TwoLayerReLU.random(m=4, d=2, seed=54)
teacher_points = teacher.a[:, None] * teacher.w  # the seed draws a w
print(teacher)
X_test, Y_test = mf.teacher_samples(teacher, 1000, seed=7)
print(f"loss of the zero function: {np.mean(Y_test ** 2) / 2:.4f}")

# %% [markdown]
# ## Training: the seed's learning rate, and ten times it
#
# `fit_teacher` draws fresh Gaussian inputs every step (batch 20), takes `steps` SGD
# steps in C++ and keeps a snapshot of every particle every `snapshot_every` steps,
# with the test loss on 1000 held-out samples.

# %%
runs = {}
for lr in (0.5, 5.0):
    student = mf.TwoLayerReLU.small_sphere(m=20, d=2, radius=0.05, seed=100)
    runs[lr] = student.fit_teacher(teacher, steps=STEPS, batch=20, lr=lr, snapshot_every=10,
                                   seed=200)
    print(f"lr = {lr:g}: {runs[lr]}, student loss on fresh samples "
          f"{student.loss(X_test, Y_test):.2e}")

# %% [markdown]
# The particles $a_j w_j$ with their trajectories fading into the past, the teacher's
# neurons as red points on black rays: from the small sphere, the particles grow
# along the teacher's directions.

# %%
lim = 1.05 * max(np.abs(r.positions()).max() for r in runs.values())
fig, axes = plot.figure_grid(1, 3, figsize=(17.0, 5.6),
                             title=f"20 particles learn a 4-neuron teacher ({STEPS} steps)")
for ax, (lr, run) in zip(axes[:2], runs.items(), strict=True):
    plot.particles(run.positions(), teacher_points, ax=ax, lim=lim,
                   title=f"lr = {lr:g}: particles $a_j w_j$",
                   end_label=f"particles at step {STEPS}")
plot.step_losses({f"lr = {lr:g}": (r.steps, r.test_loss) for lr, r in runs.items()},
                 ax=axes[2], title="Test loss (1000 held-out samples)")
save(fig, "meanfield_particles.png")

# %% [markdown]
# ## The animation
#
# As the seed's `FuncAnimation`, with frames spaced evenly in log(step) because the
# particles move fastest at the start. In Jupyter, `IPython.display.HTML(anim.to_jshtml())`
# plays it in the notebook; here it is saved as a GIF.

# %%
run = runs[0.5]
anim = plot.particles_animation(run.positions(), teacher_points, steps=run.steps,
                                losses=run.test_loss, frames=15 if QUICK else 80,
                                title="20 particles, radius 0.05, lr = 0.5")
anim.save(OUT / "meanfield_particles.gif", writer=animation.PillowWriter(fps=12))

# %% [markdown]
# ## The open questions: initial radius and number of units
#
# With the mean-field $1/m$ each particle moves $O(\text{lr}/m)$ per step, so the
# learning rate grows with $m$ ($\text{lr} = 0.25\,m$) to give every width the same
# mean-field time. The whole grid is one `ef.Ensemble`: every (radius, width) cell is a
# member, all trained by one native call on every core, each bit-identical to its own
# `fit_teacher` (for bigger grids, `ef.sweep` spreads ensembles over processes or a Dask
# cluster).

# %%
radii = (0.01, 0.05, 0.2, 1.0)
widths = (4, 20, 100) if QUICK else (4, 20, 100, 1000)
cells = [(radius, m) for radius in radii for m in widths]
grid = ef.Ensemble(lambda c: mf.TwoLayerReLU.small_sphere(m=cells[c][1], d=2,
                                                          radius=cells[c][0], seed=100),
                   len(cells))
hist = grid.fit_teacher(teacher, steps=2000 if QUICK else 20000,
                        lr=[0.25 * m for _, m in cells], snapshot_every=0, seed=200)
final = hist.loss[-1].reshape(len(radii), len(widths))  # each member's final test loss
print(np.array2string(final, formatter={"float_kind": "{:.1e}".format}))
save(plot.grid_heatmap(final, radii, widths, row_label="initial radius",
                       col_label="number of particles m", colorbar_label="final test loss",
                       title="Final test loss, lr = 0.25 m"),
     "meanfield_heatmap.png")

# %%
print("figures:", ", ".join(sorted(p.name for p in OUT.iterdir())))
