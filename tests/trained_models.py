"""Small classifiers trained inside the tests on the real training splits, as ONNX models.

Each builder also returns the numpy forward pass, so tests can compute accuracy
independently of halfconv and ONNX Runtime.
"""

from __future__ import annotations

from collections.abc import Callable

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
