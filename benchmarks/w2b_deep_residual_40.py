"""W2b: seed 000's 40-layer residual net (the depth-as-time issue's target).

The W2 workload (see w2_deep_residual.py: projectile data, 100,000 x 7, Nadam lr=0.002,
batch 200, MSE, float64) with 40 residual-average blocks instead of 20. Target: one epoch
at least 20x faster than PyTorch on one thread, loss after 5 epochs within 10% of
PyTorch's.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(_var, None)

import w2_deep_residual as w2  # noqa: E402

w2.WORKLOAD = "w2b_deep_residual_40"
w2.DEPTH = 40

if __name__ == "__main__":
    w2.main()
