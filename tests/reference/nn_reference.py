"""A plain NumPy reference for eulerflow's networks, losses, optimizers and fit loop.

Written from the definitions (API contract, PyTorch's documented formulas and
``torch.optim``'s single-tensor update code), independently of eulerflow's C++ core.
Everything is float64 and favours readability over speed: each forward sits beside
its backward, every formula is the textbook one.

Conventions: a batch is a 2-D array ``x`` of shape ``(n, features)``; every
``backward(gy)`` takes ``gy = dL/dy`` of shape ``(n, out)``, returns ``dL/dx`` and stores
the parameter gradients summed over the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

# --------------------------------------------------------------------------------------
# Activations: value and derivative, element-wise, with PyTorch's definitions.
# --------------------------------------------------------------------------------------


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)), evaluated without overflow on either side."""
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    e = np.exp(x[~pos])
    out[~pos] = e / (1.0 + e)
    return out


def activation_functions(
    name: str, **kw: float
) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]:
    """Return ``(f, df)`` for the activation ``name`` (torch definitions and defaults).

    leaky_relu(x) = x if x > 0 else slope * x               (slope = 0.01)
    elu(x)        = x if x > 0 else alpha * (exp(x) - 1)    (alpha = 1)
    softplus(x)   = log(1 + exp(beta x)) / beta if beta x <= threshold else x
                                                             (beta = 1, threshold = 20)
    Derivatives at the kinks follow torch's backward: relu'(0) = 0, leaky_relu'(0) = slope,
    elu'(0) = alpha.
    """
    if name == "identity":
        return (lambda x: x.copy()), (lambda x: np.ones_like(x))
    if name == "relu":
        return (lambda x: np.where(x > 0, x, 0.0)), (lambda x: np.where(x > 0, 1.0, 0.0))
    if name == "leaky_relu":
        slope = kw.get("slope", 0.01)
        return (
            (lambda x: np.where(x > 0, x, slope * x)),
            (lambda x: np.where(x > 0, 1.0, slope)),
        )
    if name == "elu":
        alpha = kw.get("alpha", 1.0)
        return (
            (lambda x: np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))),
            (lambda x: np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0.0)))),
        )
    if name == "tanh":
        return np.tanh, (lambda x: 1.0 - np.tanh(x) ** 2)
    if name == "atan":
        return np.arctan, (lambda x: 1.0 / (1.0 + x * x))
    if name == "sigmoid":
        return _sigmoid, (lambda x: _sigmoid(x) * (1.0 - _sigmoid(x)))
    if name == "softplus":
        beta = kw.get("beta", 1.0)
        threshold = kw.get("threshold", 20.0)

        def softplus(x: np.ndarray) -> np.ndarray:
            bx = beta * x
            smooth = np.log1p(np.exp(np.minimum(bx, threshold))) / beta
            return np.where(bx > threshold, x, smooth)

        def dsoftplus(x: np.ndarray) -> np.ndarray:
            bx = beta * x
            return np.where(bx > threshold, 1.0, _sigmoid(np.minimum(bx, threshold)))

        return softplus, dsoftplus
    raise ValueError(f"unknown activation {name!r}")


ACTIVATION_NAMES = (
    "identity", "relu", "leaky_relu", "elu", "tanh", "atan", "sigmoid", "softplus",
)


# --------------------------------------------------------------------------------------
# Modules
# --------------------------------------------------------------------------------------


class Dense:
    """y = x W^T + b ; dW = gy^T x, db = sum over the batch of gy, dx = gy W."""

    def __init__(self, W: np.ndarray, b: np.ndarray | None = None):
        self.W = np.array(W, dtype=np.float64)
        self.b = None if b is None else np.array(b, dtype=np.float64)
        self.gW = np.zeros_like(self.W)
        self.gb = None if b is None else np.zeros_like(self.b)

    @property
    def n_in(self) -> int:
        return self.W.shape[1]

    @property
    def n_out(self) -> int:
        return self.W.shape[0]

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        y = x @ self.W.T
        if self.b is not None:
            y = y + self.b
        return y

    def backward(self, gy: np.ndarray) -> np.ndarray:
        self.gW = gy.T @ self.x
        if self.b is not None:
            self.gb = gy.sum(axis=0)
        return gy @ self.W

    def parameters(self) -> list[np.ndarray]:
        return [self.W] if self.b is None else [self.W, self.b]

    def gradients(self) -> list[np.ndarray]:
        return [self.gW] if self.b is None else [self.gW, self.gb]

    def dense_layers(self) -> list[Dense]:
        return [self]


class Activation:
    """y = f(x) element-wise ; dx = gy * f'(x)."""

    def __init__(self, name: str, **kw: float):
        self.f, self.df = activation_functions(name, **kw)

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return self.f(x)

    def backward(self, gy: np.ndarray) -> np.ndarray:
        return gy * self.df(self.x)

    def parameters(self) -> list[np.ndarray]:
        return []

    def gradients(self) -> list[np.ndarray]:
        return []

    def dense_layers(self) -> list[Dense]:
        return []


class Map(Activation):
    """An element-wise function given with its derivative."""

    def __init__(self, fun: Callable, dfun: Callable):
        self.f, self.df = fun, dfun


class Residual:
    """average: (f(x) + x)/2 ; add: x + f(x) ; step: x + h f(x)."""

    def __init__(self, block, mode: str = "step", h: float = 0.1):
        coefficients = {"average": (0.5, 0.5), "add": (1.0, 1.0), "step": (1.0, h)}
        self.block = block
        self.cx, self.cf = coefficients[mode]

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.cx * x + self.cf * self.block.forward(x)

    def backward(self, gy: np.ndarray) -> np.ndarray:
        return self.cx * gy + self.block.backward(self.cf * gy)

    def parameters(self) -> list[np.ndarray]:
        return self.block.parameters()

    def gradients(self) -> list[np.ndarray]:
        return self.block.gradients()

    def dense_layers(self) -> list[Dense]:
        return self.block.dense_layers()


class Sequential:
    """Layers applied in order; backward in reverse order."""

    def __init__(self, layers: Sequence):
        self.layers = list(layers)

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, gy: np.ndarray) -> np.ndarray:
        for layer in reversed(self.layers):
            gy = layer.backward(gy)
        return gy

    def hidden_states(self, x: np.ndarray) -> list[np.ndarray]:
        states = [x]
        for layer in self.layers:
            states.append(layer.forward(states[-1]))
        return states

    def parameters(self) -> list[np.ndarray]:
        return [p for layer in self.layers for p in layer.parameters()]

    def gradients(self) -> list[np.ndarray]:
        return [g for layer in self.layers for g in layer.gradients()]

    def dense_layers(self) -> list[Dense]:
        return [d for layer in self.layers for d in layer.dense_layers()]


# --------------------------------------------------------------------------------------
# Losses: (value, dL/dy)
# --------------------------------------------------------------------------------------


def mse(y: np.ndarray, t: np.ndarray) -> tuple[float, np.ndarray]:
    """mean over all elements of (y - t)^2 (torch.nn.functional.mse_loss)."""
    d = y - t
    return float(np.mean(d * d)), 2.0 * d / d.size


def half_se(y: np.ndarray, t: np.ndarray) -> tuple[float, np.ndarray]:
    """mean over the batch of ||y - t||^2 / 2."""
    d = y - t
    n = y.shape[0]
    return float(0.5 * np.sum(d * d) / n), d / n


def logsumexp(z: np.ndarray) -> np.ndarray:
    """log sum_j exp(z_ij) per row, shifted by the row maximum so it never overflows."""
    m = z.max(axis=1, keepdims=True)
    return (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))[:, 0]


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def one_hot(labels: np.ndarray, k: int) -> np.ndarray:
    T = np.zeros((labels.shape[0], k))
    T[np.arange(labels.shape[0]), labels] = 1.0
    return T


def cross_entropy(z: np.ndarray, t: np.ndarray) -> tuple[float, np.ndarray]:
    """mean over the batch of sum_j t_j (logsumexp(z) - z_j).

    ``t`` holds class indices (n,) or probabilities (n, k); with indices this is
    logsumexp(z) - z[target] (torch.nn.functional.cross_entropy).
    """
    n, k = z.shape
    T = one_hot(np.asarray(t), k) if np.ndim(t) == 1 else np.asarray(t, dtype=np.float64)
    lse = logsumexp(z)
    mass = T.sum(axis=1)
    value = np.mean(lse * mass - (T * z).sum(axis=1))
    grad = (softmax(z) * mass[:, None] - T) / n
    return float(value), grad


LOSSES = {"mse": mse, "half_se": half_se, "cross_entropy": cross_entropy}


def regularization(
    weights: Sequence[np.ndarray], l1: float, l2: float
) -> tuple[float, list[np.ndarray]]:
    """Keras kernel regularizers: l1 * sum|W| + l2 * sum W^2 and its gradient per W.

    The gradient of |w| at w = 0 is taken as 0 (sign).
    """
    value = sum(l1 * np.abs(W).sum() + l2 * (W * W).sum() for W in weights)
    grads = [l1 * np.sign(W) + 2.0 * l2 * W for W in weights]
    return float(value), grads


# --------------------------------------------------------------------------------------
# Optimizers: torch.optim's single-tensor code (maximize=False, no amsgrad), step by step
# --------------------------------------------------------------------------------------


def _lerp(start: np.ndarray, end: np.ndarray, weight: float) -> np.ndarray:
    """torch.lerp: start + weight (end - start), evaluated as ATen does."""
    if abs(weight) < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (1.0 - weight)


class SGD:
    """torch.optim.SGD._single_tensor_sgd."""

    def __init__(self, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        self.lr, self.momentum, self.dampening = lr, momentum, dampening
        self.weight_decay, self.nesterov = weight_decay, nesterov
        self.buffers: dict[int, np.ndarray] = {}

    def step(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> None:
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            if self.weight_decay != 0:
                g = g + self.weight_decay * p
            if self.momentum != 0:
                if i not in self.buffers:
                    buf = g.copy()  # first step: the buffer is the gradient, undamped
                else:
                    buf = self.buffers[i] * self.momentum + (1 - self.dampening) * g
                self.buffers[i] = buf
                g = g + self.momentum * buf if self.nesterov else buf
            p -= self.lr * g


class Adam:
    """torch.optim.Adam._single_tensor_adam (amsgrad=False)."""

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        self.lr, (self.beta1, self.beta2) = lr, betas
        self.eps, self.weight_decay = eps, weight_decay
        self.state: dict[int, dict] = {}

    def step(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> None:
        b1, b2 = self.beta1, self.beta2
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            s = self.state.setdefault(
                i, {"step": 0, "m": np.zeros_like(p), "v": np.zeros_like(p)}
            )
            s["step"] += 1
            if self.weight_decay != 0:
                g = g + self.weight_decay * p
            s["m"] = _lerp(s["m"], g, 1 - b1)
            s["v"] = s["v"] * b2 + (1 - b2) * (g * g)
            step = float(s["step"])
            bias_correction1 = 1 - b1**step
            bias_correction2 = 1 - b2**step
            step_size = self.lr / bias_correction1
            denom = np.sqrt(s["v"]) / bias_correction2**0.5 + self.eps
            p -= step_size * (s["m"] / denom)


class Nadam:
    """torch.optim.NAdam._single_tensor_nadam (decoupled_weight_decay=False).

    mu_t = beta1 (1 - 0.5 * 0.96^(t psi)); the running product of the mu_t is kept in
    float64 (torch keeps it as a tensor of the default dtype).
    """

    def __init__(self, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 momentum_decay=4e-3):
        self.lr, (self.beta1, self.beta2) = lr, betas
        self.eps, self.weight_decay, self.momentum_decay = eps, weight_decay, momentum_decay
        self.state: dict[int, dict] = {}

    def step(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> None:
        b1, b2, psi, lr = self.beta1, self.beta2, self.momentum_decay, self.lr
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            s = self.state.setdefault(
                i, {"step": 0, "mu_product": 1.0, "m": np.zeros_like(p), "v": np.zeros_like(p)}
            )
            s["step"] += 1
            step = float(s["step"])
            bias_correction2 = 1 - b2**step
            if self.weight_decay != 0:
                g = g + self.weight_decay * p
            mu = b1 * (1.0 - 0.5 * (0.96 ** (step * psi)))
            mu_next = b1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * psi)))
            s["mu_product"] *= mu
            s["m"] = _lerp(s["m"], g, 1 - b1)
            s["v"] = s["v"] * b2 + (1 - b2) * (g * g)
            denom = np.sqrt(s["v"] / bias_correction2) + self.eps
            mu_product_next = s["mu_product"] * mu_next
            p += (-lr * (1.0 - mu) / (1.0 - s["mu_product"])) * (g / denom)
            p += ((-lr * mu_next) / (1.0 - mu_product_next)) * (s["m"] / denom)


# --------------------------------------------------------------------------------------
# Training loops
# --------------------------------------------------------------------------------------


def batch_loss(net, X, Y, loss: str, l1: float = 0.0, l2: float = 0.0):
    """Forward and backward on one batch; returns (loss, outputs) and fills gradients.

    The returned gradient list includes the regularizer's gradient on Dense weights.
    """
    out = net.forward(X)
    value, gy = LOSSES[loss](out, Y)
    net.backward(gy)
    grads = [g.copy() for g in net.gradients()]
    if l1 or l2:
        denses = net.dense_layers()
        reg, reg_grads = regularization([d.W for d in denses], l1, l2)
        value += reg
        by_id = {id(d.W): rg for d, rg in zip(denses, reg_grads, strict=True)}
        grads = [g + by_id[id(p)] if id(p) in by_id else g
                 for p, g in zip(net.parameters(), grads, strict=True)]
    return value, out, grads


def fit(net, X, Y, loss: str, optimizer, epochs: int, batch_size: int,
        l1: float = 0.0, l2: float = 0.0) -> dict[str, np.ndarray]:
    """The fit loop with shuffle=False: consecutive batches, the last partial one included.

    Returns {"loss": per-epoch mean of the batch losses taken before each step,
    "accuracy": per-epoch fraction of correct argmax (cross_entropy with class indices)}.
    """
    n = X.shape[0]
    losses, accuracies = [], []
    for _ in range(epochs):
        batch_losses, correct = [], 0
        for start in range(0, n, batch_size):
            xb, yb = X[start:start + batch_size], Y[start:start + batch_size]
            value, out, grads = batch_loss(net, xb, yb, loss, l1, l2)
            batch_losses.append(value)
            if loss == "cross_entropy" and np.ndim(yb) == 1:
                correct += int(np.sum(np.argmax(out, axis=1) == yb))
            optimizer.step(net.parameters(), grads)
        losses.append(np.mean(batch_losses))
        accuracies.append(correct / n)
    return {"loss": np.array(losses), "accuracy": np.array(accuracies)}


def learn(net, facts, lr: float) -> np.ndarray:
    """Online learning: one plain SGD step per (x, expected) fact on ||y - t||^2 / 2.

    Returns the loss of each fact, taken before its step.
    """
    losses = []
    for x, t in facts:
        x = np.asarray(x, dtype=np.float64).reshape(1, -1)
        t = np.asarray(t, dtype=np.float64).reshape(1, -1)
        y = net.forward(x)
        d = y - t
        losses.append(0.5 * float(np.sum(d * d)))
        net.backward(d)
        for p, g in zip(net.parameters(), net.gradients(), strict=True):
            p -= lr * g
    return np.array(losses)
