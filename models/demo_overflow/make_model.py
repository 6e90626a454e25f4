"""Regenerate models/demo_overflow/model.onnx: a trained MNIST MLP whose second layer overflows fp16.

    python models/demo_overflow/make_model.py [--data-dir DIR]

A 784-64-64-10 ReLU MLP, trained by three epochs of seeded SGD on the first 12,000 MNIST
training images, then rescaled: the second layer by 2**15 and the third by 2**-15. ReLU
commutes with a positive scale, so the float32 function is the same (exact in float32: a
power of two), but the second hidden layer's activations, at most about 9 before, now
reach about 3e5, past float16's largest finite value, 65504. Converted without data, the
model fails validation on the overflow; ``halfconv convert --calibration mnist`` finds
the nodes that must stay float32 by measuring them, and keeps the first layer, which
holds most of the weights, in fp16.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from halfconv import load_dataset

SCALE = np.float32(2.0**15)
SIZES = (784, 64, 64, 10)


def train(data_dir: Path | None) -> list[np.ndarray]:
    """[W1, b1, W2, b2, W3, b3] of the ReLU MLP, by three epochs of SGD at rate 0.5, batch 200."""
    data = load_dataset("mnist", "train", data_dir=data_dir)
    x = data.images[:12000].reshape(-1, 784).astype(np.float32) / 255
    y = data.labels[:12000]
    rng = np.random.default_rng(0)
    weights = [(rng.standard_normal((a, b)) * np.sqrt(2 / a)).astype(np.float32) for a, b in itertools.pairwise(SIZES)]
    biases = [np.zeros(b, np.float32) for b in SIZES[1:]]
    for _ in range(3):
        for start in range(0, len(x), 200):
            xb, yb = x[start : start + 200], y[start : start + 200]
            activations = [xb]
            for w, b in zip(weights[:-1], biases[:-1]):
                activations.append(np.maximum(activations[-1] @ w + b, 0))
            z = activations[-1] @ weights[-1] + biases[-1]
            p = np.exp(z - z.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            p[np.arange(len(yb)), yb] -= 1
            grad = p / len(yb)
            for layer in reversed(range(len(weights))):
                below = activations[layer]
                step_w, step_b = below.T @ grad, grad.sum(axis=0)
                if layer:
                    grad = (grad @ weights[layer].T) * (below > 0)
                weights[layer] -= 0.5 * step_w
                biases[layer] -= 0.5 * step_b
    return [a for pair in zip(weights, biases) for a in pair]


def build(data_dir: Path | None) -> onnx.ModelProto:
    w1, b1, w2, b2, w3, b3 = train(data_dir)
    weights = {"W1": w1, "b1": b1, "W2": w2 * SCALE, "b2": b2 * SCALE, "W3": w3 / SCALE, "b3": b3}
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["input", "W1", "b1"], ["H1"], name="fc1"),
            helper.make_node("Relu", ["H1"], ["R1"], name="relu1"),
            helper.make_node("Gemm", ["R1", "W2", "b2"], ["H2"], name="fc2"),
            helper.make_node("Relu", ["H2"], ["R2"], name="relu2"),
            helper.make_node("Gemm", ["R2", "W3", "b3"], ["logits"], name="fc3"),
            helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=-1),
        ],
        "overflow_mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 784])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 10])],
        [numpy_helper.from_array(a, n) for n, a in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)
    onnx.checker.check_model(model, full_check=True)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, help="the dataset folder (default: $HALFCONV_DATA_DIR)")
    args = parser.parse_args()
    path = Path(__file__).with_name("model.onnx")
    onnx.save(build(args.data_dir), str(path))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
