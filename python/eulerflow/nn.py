"""Networks: Dense layers, activations, residual blocks and Sequential containers.

Every module is a network in its own right: it can be called on a batch,
differentiated with ``backward``, trained with ``fit`` and saved. The weights
are NumPy arrays owned by the Dense layers; the C++ core reads and updates
them in place, so ``parameters()`` returns the real weights, not copies.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable
from collections.abc import Sequence as SequenceABC

import numpy as np

from . import _checkpoint, _core
from ._errors import DivergenceError
from ._training import check_callbacks, diverged, epoch_hook
from ._validate import (
    float_dtype,
    nonneg_int,
    positive_int,
    real_array,
    real_scalar,
    seed_value,
)
from .history import History
from .optim import Adam, Optimizer

__all__ = ["Module", "Dense", "Activation", "Map", "Residual", "Sequential", "ResidualFlow",
           "ActivityPenalty", "mlp", "LOSSES", "ACTIVATIONS"]

# name -> (core code, default parameters in order)
ACTIVATIONS: dict[str, tuple[int, dict[str, float]]] = {
    "identity": (0, {}),
    "relu": (1, {}),
    "leaky_relu": (2, {"slope": 0.01}),
    "elu": (3, {"alpha": 1.0}),
    "tanh": (4, {}),
    "atan": (5, {}),
    "sigmoid": (6, {}),
    "softplus": (7, {"beta": 1.0, "threshold": 20.0}),
}

LOSSES = {"mse": 0, "half_se": 1, "cross_entropy": 2}

_BLOCK_MODES = {"plain": 0, "average": 1, "add": 2, "step": 3}

_BUILD_LOCK = threading.RLock()


class Module:
    """Base of every network piece. Subclasses describe themselves to the core
    through ``_items()``; everything else (call, backward, fit, save) is shared.
    """

    #: Input width, or None for element-wise layers that take any width.
    in_features: int | None = None
    #: Output width, or None for element-wise layers (same as the input).
    out_features: int | None = None

    # --- description -----------------------------------------------------
    def _items(self) -> list[tuple]:
        """The core's description of this module as a sequence of layers."""
        raise NotImplementedError

    def _dense_layers(self) -> list[Dense]:
        """Every Dense layer inside, in order (repeated if shared)."""
        return []

    @property
    def dtype(self) -> np.dtype:
        """The network's floating dtype (float64 unless built with float32)."""
        dtypes = {d.dtype for d in self._dense_layers()}
        return dtypes.pop() if dtypes else np.dtype(np.float64)

    def _native(self):
        net = self.__dict__.get("_net")
        if net is None:
            with _BUILD_LOCK:  # two threads' first calls must share one native network
                net = self.__dict__.get("_net")
                if net is None:
                    keep = [a for d in self._dense_layers() for a in d._arrays()]
                    cls = _core.Net64 if self.dtype == np.float64 else _core.Net32
                    net = cls(self._items(), keep)
                    self.__dict__["_net"] = net
        return net

    # --- parameters --------------------------------------------------------
    def parameters(self) -> list[np.ndarray]:
        """The weights, as writable arrays that ARE the network's storage:
        ``[W0, b0, W1, b1, ...]`` (each shared array once)."""
        out, seen = [], set()
        for d in self._dense_layers():
            for p in d._params():
                if id(p) not in seen:
                    seen.add(id(p))
                    out.append(p)
        return out

    def gradients(self) -> list[np.ndarray]:
        """Gradients matching ``parameters()``, from the last ``backward``
        (summed over the batch)."""
        out, seen = [], set()
        for d in self._dense_layers():
            for p, g in zip(d._params(), d._grads(), strict=True):
                if id(p) not in seen:
                    seen.add(id(p))
                    out.append(g)
        return out

    def n_parameters(self) -> int:
        """The number of trainable scalars (shared arrays counted once)."""
        return int(sum(p.size for p in self.parameters()))

    # --- running -----------------------------------------------------------
    def _input(self, x, name: str = "x") -> tuple[np.ndarray, bool]:
        x = real_array(x, name, self.dtype, ndim=(1, 2))
        single = x.ndim == 1
        if single:
            x = x.reshape(1, -1)
        if self.in_features is not None and x.shape[1] != self.in_features:
            raise ValueError(f"{name} has {x.shape[1]} features but the network expects "
                             f"{self.in_features} ({name} shape {x.shape})")
        return x, single

    def __call__(self, x) -> np.ndarray:
        """Forward pass: ``x`` of shape (n, in) -> (n, out); a 1-D ``x`` of shape
        (in,) is one sample and gives shape (out,)."""
        x2, single = self._input(x)
        y = self._native().forward(x2)
        self.__dict__["_last_single"] = single
        return y[0] if single else y

    forward = __call__

    def backward(self, gy) -> np.ndarray:
        """Backward pass after ``net(x)``: ``gy = dLoss/dy`` with the shape of the
        last output; fills ``gradients()`` (summed over the batch) and returns
        ``dLoss/dx``."""
        if "_net" not in self.__dict__ or "_last_single" not in self.__dict__:
            raise ValueError("backward needs a forward first: call net(x) before net.backward(gy)")
        gy = real_array(gy, "gy", self.dtype, ndim=(1, 2))
        single = self.__dict__["_last_single"]
        if single and gy.ndim == 1:
            gy = gy.reshape(1, -1)
        gx = self._native().backward(gy)
        return gx[0] if single else gx

    def hidden_states(self, x) -> list[np.ndarray]:
        """``[x, output of layer 1, ..., final output]`` for the top-level layers
        (a Residual or nested Sequential counts as one layer)."""
        x2, single = self._input(x)
        states = self._native().hidden_states(x2)
        self.__dict__["_last_single"] = single
        return [s[0] for s in states] if single else list(states)

    # --- training ----------------------------------------------------------
    def fit(self, X, Y, loss: str = "mse", optimizer: Optimizer | None = None, epochs: int = 1,
            batch_size: int = 32, shuffle: bool = True, seed: int = 0, l1: float = 0.0,
            l2: float = 0.0, callbacks: Iterable[Callable] = (), progress=None,
            checkpoint=None, checkpoint_every: int = 1, resume=None) -> History:
        """Trains the network in place; the whole loop runs in the C++ core.

        Each epoch visits the rows of ``X`` in a seeded random order (or in order
        with ``shuffle=False``) in batches of ``batch_size`` (the last one may be
        smaller); each batch makes one optimizer step on
        ``loss(net(X_b), Y_b) + l1 * sum|W| + l2 * sum W^2`` (the penalties over
        Dense weight matrices, as Keras kernel regularizers).

        Losses: ``"mse"`` (mean of (y-t)^2 over all elements), ``"half_se"``
        (mean over the batch of ||y-t||^2/2), ``"cross_entropy"`` (mean over the
        batch of logsumexp(z) - z[target]; ``Y`` as int class indices of shape
        (n,) or probabilities of shape (n, k)).

        ``callbacks`` are called once per epoch as ``cb(epoch, loss)``; one that
        returns True stops the training. ``progress=True`` shows a tqdm bar.
        Returns a :class:`History`; ``hist.loss[e]`` is the mean of the epoch's
        batch losses, each taken before its step. A non-finite loss stops the
        run with :class:`DivergenceError`.

        ``checkpoint=PATH`` writes, every ``checkpoint_every`` epochs and at the
        end, the weights, the optimizer state, the generator state and the
        history to PATH atomically (temporary file, fsync, rename: a crash leaves
        the previous checkpoint intact). ``resume=PATH`` loads such a file
        (refusing one from a different run or a corrupt one) and continues;
        the result is bit-identical to an uninterrupted run.
        """
        X, Yc, cfg, optimizer = self._fit_setup(X, Y, loss, optimizer, epochs, batch_size,
                                                shuffle, l1, l2)
        seed = seed_value(seed)
        epochs, batch_size, l1, l2 = cfg.epochs, cfg.batch_size, cfg.l1, cfg.l2
        callbacks = check_callbacks(callbacks)
        params = self.parameters()
        buf1, buf2 = optimizer._state_for(params)

        checkpoint_every = positive_int(checkpoint_every, "checkpoint_every")
        setup = {"loss": loss, "batch_size": batch_size, "shuffle": bool(shuffle), "seed": seed,
                 "l1": l1, "l2": l2, "epochs": epochs, "X_shape": list(X.shape),
                 "Y_shape": list(np.shape(Yc)), "dtype": str(self.dtype)}
        rng_state = _core.rng_state(seed)
        hist = History([], {"accuracy": []} if loss == "cross_entropy" else {})
        done = 0
        if resume is not None:
            rng_state, done, hist = _checkpoint.restore(resume, params, optimizer, setup)
        scalars = optimizer._scalars()
        optim_config = optimizer._config()
        with epoch_hook(callbacks, progress, epochs, "fit") as on_epoch:
            hook = None if on_epoch is None else (lambda e, v: on_epoch(done + e, v))
            while done < epochs:
                chunk = epochs - done if checkpoint is None else min(checkpoint_every,
                                                                     epochs - done)
                cfg.epochs = chunk
                losses, accs, status = self._native().fit(
                    X, Yc, cfg, optim_config, scalars, buf1, buf2, rng_state, hook)
                optimizer._store(scalars)
                ran = int(status.epochs_done)
                metrics = {"accuracy": accs[:ran]} if loss == "cross_entropy" else {}
                hist.extend(History(losses[:ran], metrics))
                if status.diverged:
                    status_epoch = done + int(status.bad_epoch)
                    raise diverged(status, optimizer.lr, hist, epoch=status_epoch)
                done += ran
                if checkpoint is not None:
                    _checkpoint.write(checkpoint, params, optimizer, rng_state, done, hist, setup)
                if status.stopped:
                    break
        return hist

    def _fit_setup(self, X, Y, loss, optimizer, epochs, batch_size, shuffle, l1, l2):
        """``fit``'s checked data, its core configuration and its optimizer (default
        Adam): ``(X, Y, config, optimizer)``."""
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {loss!r}")
        cfg = _core.FitConfig()
        cfg.loss = LOSSES[loss]
        cfg.epochs = nonneg_int(epochs, "epochs")
        cfg.batch_size = positive_int(batch_size, "batch_size")
        cfg.shuffle = bool(shuffle)
        cfg.l1 = real_scalar(l1, "l1", min_value=0.0)
        cfg.l2 = real_scalar(l2, "l2", min_value=0.0)
        if optimizer is None:
            optimizer = Adam()
        if not isinstance(optimizer, Optimizer):
            raise TypeError("optimizer must be an eulerflow.optim optimizer, got "
                            f"{type(optimizer).__name__}")
        X = real_array(X, "X", self.dtype, ndim=(2,), contiguous=True)
        if self.in_features is not None and X.shape[1] != self.in_features:
            raise ValueError(f"X has {X.shape[1]} features but the network expects "
                             f"{self.in_features} (X shape {X.shape})")
        Yc = self._targets(Y, loss, X.shape[0], X.shape[1])
        if not self.parameters():
            raise ValueError("this network has no parameters to train")
        return X, Yc, cfg, optimizer

    def _targets(self, Y, loss: str, n: int, n_in: int) -> np.ndarray:
        k = self.out_features
        if loss == "cross_entropy":
            arr = np.asarray(Y) if not isinstance(Y, np.ndarray) else Y
            if arr.ndim == 1:
                if arr.dtype.kind not in "iu":
                    raise TypeError("Y must hold integer class indices for cross_entropy, got "
                                    f"dtype {arr.dtype} with shape {arr.shape}")
                labels = np.require(arr, dtype=np.int64, requirements=["C", "A"])
                if labels.shape[0] != n:
                    raise ValueError(f"X has {n} rows but Y has {labels.shape[0]} "
                                     f"(Y shape {arr.shape})")
                width = k if k is not None else n_in
                if labels.size and (labels.min() < 0 or labels.max() >= width):
                    raise ValueError(f"Y class indices must lie in [0, {width}), got values in "
                                     f"[{labels.min()}, {labels.max()}]")
                return labels
        Yc = real_array(Y, "Y", self.dtype, ndim=(1, 2))
        if Yc.ndim == 1:
            if (k if k is not None else n_in) != 1:
                raise ValueError(f"Y must be 2-D (n, {k}), got shape {Yc.shape}")
            Yc = Yc.reshape(-1, 1)
        if Yc.shape[0] != n:
            raise ValueError(f"X has {n} rows but Y has {Yc.shape[0]} (Y shape {Yc.shape})")
        width = k if k is not None else n_in
        if Yc.shape[1] != width:
            raise ValueError(f"Y has {Yc.shape[1]} columns but the network outputs {width} "
                             f"(Y shape {Yc.shape})")
        return np.ascontiguousarray(Yc)

    def learn(self, facts, lr: float) -> np.ndarray:
        """Seed 001's online learning: for each fact ``(x, expected)`` one plain
        SGD step of rate ``lr`` on ``||net(x) - expected||^2 / 2``. ``facts`` is an
        iterable of pairs or a tuple ``(X, Y)`` of 2-D arrays. Returns the
        per-fact losses, each taken before its step."""
        lr = real_scalar(lr, "lr", min_value=0.0)
        X, Y = self._facts(facts)
        losses, bad = self._native().learn(X, Y, lr)
        if bad >= 0:
            raise DivergenceError(f"online learning diverged at fact {bad}: the loss became "
                                  f"{losses[bad]}; try a smaller learning rate than lr={lr}",
                                  epoch=0, batch=int(bad), loss=float(losses[bad]))
        return losses

    def _facts(self, facts) -> tuple[np.ndarray, np.ndarray]:
        """``(X, Y)`` of ``learn``'s facts, checked against the network's widths."""
        if (isinstance(facts, tuple) and len(facts) == 2 and isinstance(facts[0], np.ndarray)
                and np.ndim(facts[0]) == 2):
            X, Y = facts
        else:
            pairs = list(facts)
            if not pairs:
                raise ValueError("facts is empty")
            try:
                X = [np.ravel(p[0]) for p in pairs]
                Y = [np.ravel(p[1]) for p in pairs]
            except (TypeError, IndexError):
                raise TypeError("facts must be (x, expected) pairs") from None
            try:
                X, Y = np.stack(X), np.stack(Y)
            except ValueError:
                raise ValueError("all facts must have the same input and output sizes") from None
        X = np.ascontiguousarray(real_array(X, "facts' inputs", self.dtype, ndim=(2,)))
        Y = np.ascontiguousarray(real_array(Y, "facts' expected outputs", self.dtype, ndim=(2,)))
        if X.shape[0] != Y.shape[0]:
            raise ValueError(f"facts: {X.shape[0]} inputs but {Y.shape[0]} expected outputs")
        if self.in_features is not None and X.shape[1] != self.in_features:
            raise ValueError(f"facts' inputs have {X.shape[1]} features but the network expects "
                             f"{self.in_features} (shape {X.shape})")
        width = self.out_features if self.out_features is not None else X.shape[1]
        if Y.shape[1] != width:
            raise ValueError(f"facts' expected outputs have {Y.shape[1]} values but the network "
                             f"outputs {width} (shape {Y.shape})")
        return X, Y

    # --- persistence -------------------------------------------------------
    def save(self, path) -> None:
        """Writes the architecture and weights to an .npz file (atomically, no
        pickle); ``eulerflow.load`` reads it back bit for bit."""
        from .io import save

        save(self, path)

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_net", None)
        return state


def _init_rng(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        return np.random.default_rng()
    return np.random.default_rng(seed_value(seed))


class Dense(Module):
    """Fully connected layer ``y = x W^T + b`` with ``W`` of shape
    (n_out, n_in) and ``b`` of shape (n_out,).

    Initialised as ``torch.nn.Linear``: W and b uniform in
    [-1/sqrt(n_in), 1/sqrt(n_in)], drawn from ``numpy.random.default_rng(seed)``
    (``seed`` may also be a Generator). ``bias_l1``/``bias_l2`` add
    ``bias_l1 sum|b| + bias_l2 sum b^2`` to the training loss (Keras
    ``bias_regularizer``), with its gradient inside ``fit``.
    """

    def __init__(self, n_in: int, n_out: int, bias: bool = True, seed=None, dtype=np.float64,
                 bias_l1: float = 0.0, bias_l2: float = 0.0):
        n_in = positive_int(n_in, "n_in")
        n_out = positive_int(n_out, "n_out")
        dt = float_dtype(dtype)
        rng = _init_rng(seed)
        bound = 1.0 / math.sqrt(n_in)
        self.in_features, self.out_features = n_in, n_out
        self._W = rng.uniform(-bound, bound, size=(n_out, n_in)).astype(dt)
        self._b = rng.uniform(-bound, bound, size=n_out).astype(dt) if bias else None
        self._gW = np.zeros_like(self._W)
        self._gb = np.zeros_like(self._b) if bias else None
        self._bias_l1 = real_scalar(bias_l1, "bias_l1", min_value=0.0)
        self._bias_l2 = real_scalar(bias_l2, "bias_l2", min_value=0.0)
        if not bias and (self._bias_l1 or self._bias_l2):
            raise ValueError("bias_l1/bias_l2 need a bias (bias=True)")

    @property
    def W(self) -> np.ndarray:
        """The weight matrix (n_out, n_in); assigning copies into it."""
        return self._W

    @W.setter
    def W(self, value) -> None:
        v = real_array(value, "W", self._W.dtype, ndim=(2,))
        if v.shape != self._W.shape:
            raise ValueError(f"W must have shape {self._W.shape}, got {v.shape}")
        self._W[...] = v

    @property
    def b(self) -> np.ndarray | None:
        """The bias (n_out,), or None without bias; assigning copies into it."""
        return self._b

    @b.setter
    def b(self, value) -> None:
        if self._b is None:
            raise ValueError("this Dense layer has no bias (built with bias=False)")
        v = real_array(value, "b", self._b.dtype, ndim=(1,))
        if v.shape != self._b.shape:
            raise ValueError(f"b must have shape {self._b.shape}, got {v.shape}")
        self._b[...] = v

    @property
    def bias(self) -> bool:
        """Whether the layer has a bias ``b``."""
        return self._b is not None

    # penalties are part of the layer's definition (the core copies them when a
    # network is built): read-only, build a new layer to change them
    @property
    def bias_l1(self) -> float:
        """Weight of ``sum|b|`` added to the training loss."""
        return self._bias_l1

    @property
    def bias_l2(self) -> float:
        """Weight of ``sum b^2`` added to the training loss."""
        return self._bias_l2

    @property
    def dtype(self) -> np.dtype:
        """The layer's floating dtype (that of ``W``)."""
        return self._W.dtype

    def _params(self) -> list[np.ndarray]:
        return [self._W] if self._b is None else [self._W, self._b]

    def _grads(self) -> list[np.ndarray]:
        return [self._gW] if self._b is None else [self._gW, self._gb]

    def _arrays(self) -> list[np.ndarray]:
        return self._params() + self._grads()

    def _item(self) -> tuple:
        return (0, self._W, self._b, self._gW, self._gb, self.bias_l1, self.bias_l2)

    def _items(self) -> list[tuple]:
        return [self._item()]

    def _dense_layers(self) -> list[Dense]:
        return [self]

    def __repr__(self) -> str:
        extra = "" if self.bias else ", bias=False"
        extra += "" if self.dtype == np.float64 else f", dtype={self.dtype}"
        extra += f", bias_l1={self.bias_l1}" if self.bias_l1 else ""
        extra += f", bias_l2={self.bias_l2}" if self.bias_l2 else ""
        return f"Dense({self.in_features}, {self.out_features}{extra})"


class Activation(Module):
    """Element-wise activation, defined as in PyTorch:
    ``identity``, ``relu`` (max(x, 0)), ``leaky_relu`` (x or slope*x; slope=0.01),
    ``elu`` (x or alpha*(e^x - 1); alpha=1), ``tanh``, ``atan``, ``sigmoid``
    (1/(1+e^-x)), ``softplus`` (log(1+e^(beta x))/beta, linear above
    ``threshold``; beta=1, threshold=20).
    """

    def __init__(self, name: str, **params: float):
        if not isinstance(name, str) or name not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")
        code, defaults = ACTIVATIONS[name]
        unknown = set(params) - set(defaults)
        if unknown:
            raise TypeError(f"activation {name!r} takes parameters {sorted(defaults) or 'none'}, "
                            f"got {sorted(unknown)}")
        values = dict(defaults)
        for key, v in params.items():
            values[key] = real_scalar(v, key)
        if name == "softplus" and values["beta"] <= 0:
            raise ValueError(f"softplus beta must be > 0, got {values['beta']}")
        self.name, self.params, self._code = name, values, code

    def _items(self) -> list[tuple]:
        vals = list(self.params.values()) + [0.0, 0.0]
        return [(1, self._code, float(vals[0]), float(vals[1]))]

    def __repr__(self) -> str:
        changed = {k: v for k, v in self.params.items() if v != ACTIVATIONS[self.name][1][k]}
        extra = "".join(f", {k}={v}" for k, v in changed.items())
        return f'Activation("{self.name}"{extra})'


class Map(Module):
    """Element-wise layer from any vectorized Python function and its
    derivative: ``y = fun(x)``, ``dy/dx = dfun(x)`` (seed 001's MapLayer).
    Slower than the built-in activations: each pass calls back into Python."""

    def __init__(self, fun: Callable, dfun: Callable):
        if not callable(fun) or not callable(dfun):
            raise TypeError("Map needs two callables: fun and its derivative dfun")
        self.fun, self.dfun = fun, dfun

    def _items(self) -> list[tuple]:
        return [(2, self.fun, self.dfun)]

    def __repr__(self) -> str:
        name = getattr(self.fun, "__name__", "fun")
        return f"Map({name})"


class ActivityPenalty(Module):
    """Identity layer that adds ``(l1 sum|x| + l2 sum x^2) / batch`` of the
    activity ``x`` flowing through it to the training loss (Keras
    ``activity_regularizer``: place it after the layer whose output is
    penalised). Its gradient is part of ``fit``'s native loop; outside training
    (``net(x)``, ``net.backward``) it is the identity."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        self._l1 = real_scalar(l1, "l1", min_value=0.0)
        self._l2 = real_scalar(l2, "l2", min_value=0.0)

    @property
    def l1(self) -> float:
        """Weight of ``sum|x|`` in the penalty."""
        return self._l1

    @property
    def l2(self) -> float:
        """Weight of ``sum x^2`` in the penalty."""
        return self._l2

    def _items(self) -> list[tuple]:
        return [(4, self._l1, self._l2)]

    def __repr__(self) -> str:
        return f"ActivityPenalty(l1={self.l1}, l2={self.l2})"


def _widths(layers: SequenceABC[Module]) -> tuple[int | None, int | None]:
    """Input and output widths of a chain, checking that neighbours agree."""
    w_in: int | None = None
    w: int | None = None
    for i, layer in enumerate(layers):
        if layer.in_features is not None:
            if w is not None and layer.in_features != w:
                raise ValueError(f"layer {i} ({layer!r}) expects {layer.in_features} input "
                                 f"features but layer {i - 1} outputs {w}")
            if w is None and w_in is None:
                w_in = layer.in_features
        if layer.out_features is not None:
            w = layer.out_features
    return w_in, w


class Sequential(Module):
    """A chain of layers: ``y = f_L(...f_2(f_1(x)))``."""

    def __init__(self, layers: Iterable[Module]):
        layers = list(layers) if not isinstance(layers, Module) else [layers]
        if not layers:
            raise ValueError("Sequential needs at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"layer {i} must be an eulerflow module, got "
                                f"{type(layer).__name__}")
        self.layers = tuple(layers)
        self.in_features, self.out_features = _widths(self.layers)
        if self.out_features is None:
            self.out_features = self.in_features
        dtypes = {d.dtype for d in self._dense_layers()}
        if len(dtypes) > 1:
            raise ValueError(f"all layers must share one dtype, got {sorted(map(str, dtypes))}")

    def _items(self) -> list[tuple]:
        items = []
        for layer in self.layers:
            sub = layer._items()
            if isinstance(layer, Sequential):
                items.append((3, _BLOCK_MODES["plain"], 1.0, sub))
            else:
                items.extend(sub)
        return items

    def _dense_layers(self) -> list[Dense]:
        return [d for layer in self.layers for d in layer._dense_layers()]

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i):
        return self.layers[i]

    def __iter__(self):
        return iter(self.layers)

    def __repr__(self) -> str:
        inner = ",\n".join("  " + repr(layer).replace("\n", "\n  ") for layer in self.layers)
        return f"Sequential([\n{inner}\n])"


class Residual(Module):
    """A residual block around ``block`` (any module with equal input and output
    widths): ``mode="average"``: (f(x) + x)/2; ``"add"``: x + f(x);
    ``"step"``: x + h f(x), one explicit Euler step of dx/dt = f(x)."""

    def __init__(self, block: Module, mode: str = "step", h: float = 0.1):
        if not isinstance(block, Module):
            raise TypeError(f"block must be an eulerflow module, got {type(block).__name__}")
        if mode not in ("average", "add", "step"):
            raise ValueError(f"mode must be 'average', 'add' or 'step', got {mode!r}")
        self._h = real_scalar(h, "h")
        if (block.in_features is not None and block.out_features is not None
                and block.in_features != block.out_features):
            raise ValueError(f"a residual block needs equal input and output widths, got "
                             f"{block.in_features} -> {block.out_features}")
        self._block, self._mode = block, mode
        width = block.in_features if block.in_features is not None else block.out_features
        self.in_features = width
        self.out_features = self.in_features

    # the definition of the block is fixed once built (the core copies it)
    @property
    def block(self) -> Module:
        """The inner module f."""
        return self._block

    @property
    def mode(self) -> str:
        """``"average"``, ``"add"`` or ``"step"``."""
        return self._mode

    @property
    def h(self) -> float:
        """The step of ``mode="step"``: x + h f(x)."""
        return self._h

    def _items(self) -> list[tuple]:
        return [(3, _BLOCK_MODES[self._mode], self._h, self._block._items())]

    def _dense_layers(self) -> list[Dense]:
        return self.block._dense_layers()

    def __repr__(self) -> str:
        h = f", h={self.h}" if self.mode == "step" else ""
        return f'Residual({self.block!r}, mode="{self.mode}"{h})'


class ResidualFlow(Sequential):
    """Depth as time: ``depth`` residual blocks ``x <- x + (t_end/depth) f(x)``
    sharing one field ``f`` (any eulerflow module of equal input and output
    width). The network is explicit Euler on ``dx/dt = f(x)`` over
    ``[0, t_end]``: ``hidden_states(x)`` equals
    ``odeint(f, x, linspace(0, t_end, depth + 1), method="euler")``, and as
    ``depth`` grows it converges to the flow of the ODE. The gradient of the
    shared weights sums over the blocks. An untied variant (own weights per
    block) is ``Sequential([Residual(f_k, mode="step", h=t_end/depth) ...])``.
    """

    def __init__(self, field: Module, depth: int, t_end: float = 1.0):
        if not isinstance(field, Module):
            raise TypeError(f"field must be an eulerflow module, got {type(field).__name__}")
        self._depth = positive_int(depth, "depth")
        self._t_end = real_scalar(t_end, "t_end", min_value=0.0, min_inclusive=False)
        self._field = field
        step = Residual(field, mode="step", h=self._t_end / self._depth)
        super().__init__([step] * self._depth)

    @property
    def field(self) -> Module:
        """The shared field f."""
        return self._field

    @property
    def depth(self) -> int:
        """The number of Euler blocks."""
        return self._depth

    @property
    def t_end(self) -> float:
        """The time the blocks cover; each steps by ``t_end / depth``."""
        return self._t_end

    def __repr__(self) -> str:
        return f"ResidualFlow({self.field!r}, depth={self.depth}, t_end={self.t_end})"


def mlp(sizes: SequenceABC[int], activation: str = "relu", seed=None, dtype=np.float64,
        bias: bool = True, **activation_params: float) -> Sequential:
    """Multi-layer perceptron ``Dense(sizes[0], sizes[1]), act, ..., Dense(sizes[-2],
    sizes[-1])``: an activation after every Dense but the last (linear output).
    The layers draw their weights in order from one generator seeded by ``seed``."""
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, SequenceABC):
        raise TypeError(f"sizes must be a sequence of ints, got {type(sizes).__name__}")
    sizes = [positive_int(s, f"sizes[{i}]") for i, s in enumerate(sizes)]
    if len(sizes) < 2:
        raise ValueError(f"sizes needs at least an input and an output size, got {sizes}")
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    rng = _init_rng(seed)
    layers: list[Module] = []
    for i in range(len(sizes) - 1):
        layers.append(Dense(sizes[i], sizes[i + 1], bias=bias, seed=rng, dtype=dtype))
        if i < len(sizes) - 2:
            layers.append(Activation(activation, **activation_params))
    return Sequential(layers)
