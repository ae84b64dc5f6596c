"""Numpy classifiers for the emotion head: multinomial logistic regression and a one-hidden-layer ReLU MLP.

Both share one forward pass: ``z = (x - mean) * inv_std`` (standardisation baked into the model), then
``logits = z @ W + b`` (logreg) or ``logits = relu(z @ W1 + b1) @ W2 + b2`` (mlp), then a softmax over classes.
Training (:func:`fit`): full softmax cross-entropy with per-class weights (inverse frequency by default), L2 on the
weight matrices (not biases), Adam, mini-batches, early stopping on a validation set (macro-F1, ties broken by
loss), keeping the best epoch's parameters. Deterministic for a given seed.

Pure numpy, float64 internally; :meth:`SoftmaxModel.predict_proba` returns float32 like the ONNX export. Objects
are not shared across threads while training; a trained model's forward pass is read-only.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rtface.errors import ConfigError, DataError

KINDS = ("logreg", "mlp")


@dataclass
class SoftmaxModel:
    """Parameters of a trained head. ``layers`` = [(W, b), ...]; ReLU between layers, softmax after the last."""

    kind: str
    mean: np.ndarray  # (D,) feature means
    inv_std: np.ndarray  # (D,) 1 / feature std (std floored)
    layers: list[tuple[np.ndarray, np.ndarray]]
    classes: tuple[str, ...]
    history: list[dict] = field(default_factory=list)

    @property
    def n_features(self) -> int:
        return int(self.mean.shape[0])

    def logits(self, x: np.ndarray) -> np.ndarray:
        h = (np.asarray(x, dtype=np.float64) - self.mean) * self.inv_std
        for i, (w, b) in enumerate(self.layers):
            h = h @ w + b
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        return h

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """(N, C) float32 class probabilities for (N, D) features."""
        return softmax(self.logits(x)).astype(np.float32)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.argmax(self.logits(x), axis=1)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class TrainOptions:
    kind: str = "mlp"  # "logreg" | "mlp"
    hidden: int = 32  # mlp hidden units
    l2: float = 1e-3  # L2 penalty on weight matrices (per sample, added to the mean loss)
    lr: float = 1e-2  # Adam step size
    epochs: int = 200  # maximum epochs
    batch_size: int = 256
    patience: int = 20  # stop after this many epochs without validation improvement
    class_weights: bool = True  # inverse-frequency class weights in the loss
    seed: int = 0

    def check(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"model kind {self.kind!r} is not one of {KINDS}")
        for f in ("hidden", "epochs", "batch_size", "patience"):
            if getattr(self, f) < 1:
                raise ConfigError(f"training option '{f}' must be >= 1, got {getattr(self, f)}")
        for f in ("l2", "lr"):
            v = getattr(self, f)
            if not (np.isfinite(v) and v >= 0):
                raise ConfigError(f"training option '{f}' must be finite and >= 0, got {v}")


def macro_f1(y: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    """Macro-F1 over the classes present in ``y``."""
    f1s = []
    for c in np.unique(y):
        tp = np.sum((pred == c) & (y == c))
        p = tp / max(1, np.sum(pred == c))
        r = tp / max(1, np.sum(y == c))
        f1s.append(0.0 if p + r == 0 else 2 * p * r / (p + r))
    return float(np.mean(f1s)) if f1s else 0.0


def _init_layers(d: int, c: int, opts: TrainOptions, rng: np.random.Generator) -> list[list[np.ndarray]]:
    if opts.kind == "logreg":
        return [[np.zeros((d, c)), np.zeros(c)]]
    h = opts.hidden
    return [[rng.normal(0, np.sqrt(2.0 / d), (d, h)), np.zeros(h)],
            [rng.normal(0, np.sqrt(1.0 / h), (h, c)), np.zeros(c)]]


def _loss_grad(layers, z, y, sw, l2):
    """Weighted mean cross-entropy + L2 and its gradients (sw = per-sample weights, sum to 1)."""
    acts = [z]
    h = z
    for i, (w, b) in enumerate(layers):
        h = h @ w + b
        if i < len(layers) - 1:
            h = np.maximum(h, 0.0)
        acts.append(h)
    p = softmax(acts[-1])
    n = len(y)
    loss = -float(np.sum(sw * np.log(p[np.arange(n), y] + 1e-12)))
    loss += 0.5 * l2 * sum(float(np.sum(w * w)) for w, _ in layers)
    g = p
    g[np.arange(n), y] -= 1.0
    g *= sw[:, None]
    grads = [None] * len(layers)
    for i in range(len(layers) - 1, -1, -1):
        w, _ = layers[i]
        a_in = acts[i]
        grads[i] = [a_in.T @ g + l2 * w, g.sum(axis=0)]
        if i > 0:
            g = (g @ w.T) * (acts[i] > 0)
    return loss, grads


def fit(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
        classes: tuple[str, ...], opts: TrainOptions = TrainOptions()) -> SoftmaxModel:
    """Train a head on (N, D) features and int labels 0..C-1; early-stop on the validation set."""
    opts.check()
    x_train = np.asarray(x_train, dtype=np.float64)
    x_val = np.asarray(x_val, dtype=np.float64)
    y_train = np.asarray(y_train, dtype=np.int64)
    y_val = np.asarray(y_val, dtype=np.int64)
    c = len(classes)
    if len(x_train) == 0 or len(x_val) == 0:
        raise DataError("training needs non-empty training and validation sets")
    if not (np.isfinite(x_train).all() and np.isfinite(x_val).all()):
        raise DataError("training features contain NaN/inf")
    mean = x_train.mean(axis=0)
    std = np.maximum(x_train.std(axis=0), 1e-3)
    inv_std = 1.0 / std
    zt = (x_train - mean) * inv_std
    counts = np.bincount(y_train, minlength=c).astype(np.float64)
    cw = np.where(counts > 0, counts.sum() / (c * np.maximum(counts, 1)), 0.0) if opts.class_weights \
        else np.ones(c)
    rng = np.random.default_rng(opts.seed)
    layers = _init_layers(x_train.shape[1], c, opts, rng)
    m = [[np.zeros_like(a) for a in lay] for lay in layers]
    v = [[np.zeros_like(a) for a in lay] for lay in layers]
    b1, b2, eps, t = 0.9, 0.999, 1e-8, 0
    model = SoftmaxModel(opts.kind, mean, inv_std, [], classes)
    best = (-1.0, np.inf)
    best_layers = [(w.copy(), b.copy()) for w, b in layers]
    since_best = 0
    n = len(zt)
    for epoch in range(opts.epochs):
        order = rng.permutation(n)
        for s in range(0, n, opts.batch_size):
            idx = order[s:s + opts.batch_size]
            sw = cw[y_train[idx]]
            sw = sw / sw.sum()
            _, grads = _loss_grad(layers, zt[idx], y_train[idx], sw, opts.l2)
            t += 1
            for li, lay in enumerate(layers):
                for pi in range(2):
                    gr = grads[li][pi]
                    m[li][pi] = b1 * m[li][pi] + (1 - b1) * gr
                    v[li][pi] = b2 * v[li][pi] + (1 - b2) * gr * gr
                    mh = m[li][pi] / (1 - b1 ** t)
                    vh = v[li][pi] / (1 - b2 ** t)
                    lay[pi] = lay[pi] - opts.lr * mh / (np.sqrt(vh) + eps)
        model.layers = [(w, b) for w, b in layers]
        pv = model.logits(x_val)
        sw_val = cw[y_val] / cw[y_val].sum()
        val_loss = -float(np.sum(sw_val * np.log(softmax(pv)[np.arange(len(y_val)), y_val] + 1e-12)))
        f1 = macro_f1(y_val, pv.argmax(axis=1), c)
        model.history.append({"epoch": epoch + 1, "val_macro_f1": f1, "val_loss": val_loss})
        if f1 > best[0] + 1e-9 or (abs(f1 - best[0]) <= 1e-9 and val_loss < best[1]):
            best = (f1, val_loss)
            best_layers = [(w.copy(), b.copy()) for w, b in layers]
            since_best = 0
        else:
            since_best += 1
            if since_best >= opts.patience:
                break
    model.layers = best_layers
    return model
