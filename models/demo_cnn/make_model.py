"""Regenerate models/demo_cnn/model.onnx: a small MNIST-shaped CNN with fixed random weights.

    python models/demo_cnn/make_model.py

The weights are seeded, so the file is reproducible byte for byte. It exercises the
common CNN ops (Conv, BatchNormalization, Relu, MaxPool, GlobalAveragePool, Gemm,
Softmax) and is the default model of the README's first command. It is not trained.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def build() -> onnx.ModelProto:
    rng = np.random.default_rng(2026)

    def weight(name: str, *shape: int, scale: float = 0.2) -> onnx.TensorProto:
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    initializers = [
        weight("conv1.w", 8, 1, 3, 3),
        weight("conv1.b", 8, scale=0.05),
        numpy_helper.from_array(np.ones(8, np.float32), "bn1.scale"),
        weight("bn1.bias", 8, scale=0.05),
        weight("bn1.mean", 8, scale=0.05),
        numpy_helper.from_array((1.0 + rng.random(8)).astype(np.float32), "bn1.var"),
        weight("conv2.w", 16, 8, 3, 3, scale=0.1),
        weight("conv2.b", 16, scale=0.05),
        weight("fc.w", 10, 16, scale=0.3),
        weight("fc.b", 10, scale=0.05),
    ]
    nodes = [
        helper.make_node("Conv", ["input", "conv1.w", "conv1.b"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "bn1.scale", "bn1.bias", "bn1.mean", "bn1.var"], ["b1"], name="bn1"),
        helper.make_node("Relu", ["b1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "conv2.w", "conv2.b"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc.w", "fc.b"], ["logits"], name="fc", transB=1),
        helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "demo_cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 10])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8, producer_name="halfconv-demo")
    onnx.checker.check_model(model, full_check=True)
    return model


if __name__ == "__main__":
    out = Path(__file__).with_name("model.onnx")
    onnx.save(build(), str(out))
    print(f"wrote {out}")
