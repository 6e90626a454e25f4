"""Small classifiers trained inside the tests on the real training splits, as ONNX models.

Each builder also returns the numpy forward pass, so tests can compute accuracy
independently of halfconv and ONNX Runtime.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

Forward = Callable[[np.ndarray], np.ndarray]


def train_softmax_regression(images: np.ndarray, labels: np.ndarray, epochs: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression by minibatch SGD on pixels scaled to [0, 1], at rate 0.5."""
    return train_softmax_regression_at_rate(images, labels, learning_rate=0.5, epochs=epochs, seed=seed)


def linear_classifier(weights: np.ndarray, bias: np.ndarray, input_shape: list[int | str], *, softmax: bool = False) -> onnx.ModelProto:
    """(N, *input_shape) -> Flatten -> MatMul -> Add [-> Softmax]."""
    nodes = [
        helper.make_node("Flatten", ["input"], ["flat"], name="flatten", axis=1),
        helper.make_node("MatMul", ["flat", "W"], ["mm"], name="matmul"),
        helper.make_node("Add", ["mm", "b"], ["logits" if not softmax else "scores"], name="add"),
    ]
    output = "logits"
    if softmax:
        nodes.append(helper.make_node("Softmax", ["scores"], ["logits"], name="softmax", axis=1))
    graph = helper.make_graph(
        nodes,
        "linear",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, input_shape)],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, [input_shape[0], weights.shape[1]])],
        [numpy_helper.from_array(weights, "W"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model, full_check=True)
    return model


def numpy_forward(weights: np.ndarray, bias: np.ndarray) -> Forward:
    def forward(images: np.ndarray) -> np.ndarray:
        x = images.reshape(len(images), -1).astype(np.float32) / 255.0
        return x @ weights + bias

    return forward


def train_softmax_regression_at_rate(
    images: np.ndarray, labels: np.ndarray, *, learning_rate: float, epochs: int = 1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """train_softmax_regression with a chosen learning rate.

    The fixed rate of 0.5 overshoots on CIFAR-10's 3072 inputs (~20% test accuracy); at
    0.01 one epoch of the flattened HWC pixels reaches ~34%.
    """
    rng = np.random.default_rng(seed)
    x = images.reshape(len(images), -1).astype(np.float32) / 255.0
    classes = int(labels.max()) + 1
    weights = np.zeros((x.shape[1], classes), np.float32)
    bias = np.zeros(classes, np.float32)
    onehot = np.eye(classes, dtype=np.float32)[labels]
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x), 128):
            idx = order[start : start + 128]
            logits = x[idx] @ weights + bias
            logits -= logits.max(axis=1, keepdims=True)
            probs = np.exp(logits)
            probs /= probs.sum(axis=1, keepdims=True)
            grad = (probs - onehot[idx]) / len(idx)
            weights -= learning_rate * (x[idx].T @ grad)
            bias -= learning_rate * grad.sum(axis=0)
    return weights, bias


def train_mlp(data_dir: Path) -> tuple[np.ndarray, ...]:
    """784-64-10 ReLU MLP, three epochs of SGD on 12,000 MNIST training images (about 91% test accuracy)."""
    from halfconv import load_dataset

    train = load_dataset("mnist", "train", data_dir=data_dir, download=False)
    x = train.images[:12000].reshape(-1, 784).astype(np.float32) / 255
    y = train.labels[:12000]
    rng = np.random.default_rng(0)
    w1 = (rng.standard_normal((784, 64)) * np.sqrt(2 / 784)).astype(np.float32)
    b1 = np.zeros(64, np.float32)
    w2 = (rng.standard_normal((64, 10)) * 0.1).astype(np.float32)
    b2 = np.zeros(10, np.float32)
    for _ in range(3):
        for start in range(0, len(x), 200):
            xb, yb = x[start : start + 200], y[start : start + 200]
            h = np.maximum(xb @ w1 + b1, 0)
            z = h @ w2 + b2
            p = np.exp(z - z.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            p[np.arange(len(yb)), yb] -= 1
            g = p / len(yb)
            gh = (g @ w2.T) * (h > 0)
            w2 -= 0.5 * (h.T @ g)
            b2 -= 0.5 * g.sum(axis=0)
            w1 -= 0.5 * (xb.T @ gh)
            b1 -= 0.5 * gh.sum(axis=0)
    return w1, b1, w2, b2


def mlp_model(w1: np.ndarray, b1: np.ndarray, w2: np.ndarray, b2: np.ndarray) -> onnx.ModelProto:
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["X", "W1", "b1"], ["H"], name="fc1"),
            helper.make_node("Relu", ["H"], ["R"], name="relu1"),
            helper.make_node("Gemm", ["R", "W2", "b2"], ["Z"], name="fc2"),
            helper.make_node("Softmax", ["Z"], ["P"], name="softmax", axis=-1),
        ],
        "mlp",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 784])],
        [helper.make_tensor_value_info("P", TensorProto.FLOAT, ["N", 10])],
        [numpy_helper.from_array(a, n) for a, n in ((w1, "W1"), (b1, "b1"), (w2, "W2"), (b2, "b2"))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)
    onnx.checker.check_model(model, full_check=True)
    return model
