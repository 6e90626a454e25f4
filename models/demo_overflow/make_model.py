"""Regenerate models/demo_overflow/model.onnx: a trained MNIST MLP whose hidden layer overflows fp16.

    python models/demo_overflow/make_model.py [--data-dir DIR]

A 784-64-10 ReLU MLP, trained by three epochs of seeded SGD on the first 12,000 MNIST
training images (about 91.5% test accuracy), then rescaled: the first layer by 2**15 and
the second by 2**-15. ReLU commutes with a positive scale, so the float32 function is the
same (exact in float32: a power of two), but the hidden activations, at most about 7
before, now reach about 2e5, past float16's largest finite value, 65504. Converted
without data, it loses most of its accuracy in fp16; ``halfconv convert --calibration
mnist`` finds the three nodes that must stay float32 by measuring them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from halfconv import load_dataset

SCALE = np.float32(2.0**15)


def train(data_dir: Path | None) -> tuple[np.ndarray, ...]:
    data = load_dataset("mnist", "train", data_dir=data_dir)
    x = data.images[:12000].reshape(-1, 784).astype(np.float32) / 255
    y = data.labels[:12000]
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


def build(data_dir: Path | None) -> onnx.ModelProto:
    w1, b1, w2, b2 = train(data_dir)
    weights = {"W1": w1 * SCALE, "b1": b1 * SCALE, "W2": w2 / SCALE, "b2": b2}
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["input", "W1", "b1"], ["H"], name="fc1"),
            helper.make_node("Relu", ["H"], ["R"], name="relu1"),
            helper.make_node("Gemm", ["R", "W2", "b2"], ["logits"], name="fc2"),
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
