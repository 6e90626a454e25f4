"""Overhead of ``halfconv.evaluate`` over a bare batched ``session.run`` loop.

    python tests/benchmarks/bench_evaluate.py [--data-dir DIR] [--repeats 5]

For MNIST (models/demo_cnn) and CIFAR-10 (a generated CNN of the same shape class), both
sides start from the uint8 test images already in memory and end with top-1 predictions,
on ORT's CPU provider at batch size 256:
- bare: an ``onnxruntime.InferenceSession``, scale to [0, 1] with numpy, reshape to NCHW,
  ``session.run`` per batch, argmax;
- halfconv: ``halfconv.evaluate`` of the model alone, with one latency run at batch 1
  (no warm-up): session, preprocessing, the accuracy pass, top-1 and per-class accuracy,
  the file's sha256, and the report object.
Then the cost of true fp16 numbers on the CPU: the same ``halfconv.evaluate`` of each
model converted to fp16, with ``--numerics native`` (ORT's CPU result, whose fp16
activations are never rounded) and with ``--numerics emulated`` (the numerics model,
built in a temporary folder, computes the accuracy; latency still times the fp16 model).
Best of ``--repeats`` runs each, alternating; figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

import halfconv

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")
BATCH = 256


def cifar_cnn() -> onnx.ModelProto:
    rng = np.random.default_rng(0)

    def weight(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array((rng.standard_normal(shape) * 0.1).astype(np.float32), name)

    nodes = [
        helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "fc", "fcb"], ["logits"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "cifar_cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        [weight("w1", 16, 3, 3, 3), weight("b1", 16), weight("w2", 32, 16, 3, 3), weight("b2", 32), weight("fc", 10, 32), weight("fcb", 10)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def bare(model_path: Path, images: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    x = images.astype(np.float32) / 255.0
    x = x[:, np.newaxis] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
    x = np.ascontiguousarray(x)
    outputs = [session.run(None, {input_name: x[i : i + BATCH]})[0] for i in range(0, len(x), BATCH)]
    return np.concatenate(outputs).argmax(axis=1)


def with_halfconv(model_path: Path, data: halfconv.Dataset, numerics: str = "auto") -> float:
    options = halfconv.EvaluateOptions(
        dataset=data.name, provider="cpu", batch_size=BATCH, latency_batch_sizes=(1,), warmup=0, iters=1, numerics=numerics
    )
    return halfconv.evaluate(model_path, options, test_set=data).models[0].accuracy


def best_of(repeats: int, run: Callable[[], T]) -> tuple[float, T]:
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("HALFCONV_DATA_DIR", REPO.parent / "shared" / "datasets")))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cifar_path = Path(tmp) / "cifar_cnn.onnx"
        onnx.save(cifar_cnn(), str(cifar_path))
        print(f"{'dataset':<9} {'model':<14} {'bare s':>8} {'halfconv s':>11} {'overhead':>9}")
        for dataset, model_path in (("mnist", REPO / "models" / "demo_cnn" / "model.onnx"), ("cifar10", cifar_path)):
            data = halfconv.load_dataset(dataset, "test", data_dir=args.data_dir, download=False)
            bare(model_path, data.images[:512])  # load the libraries and warm the caches
            # Alternate the two so that drift in machine load hits both alike.
            bare_s = ours_s = float("inf")
            for _ in range(args.repeats):
                seconds, predictions = best_of(1, lambda path=model_path, d=data: bare(path, d.images))
                bare_s = min(bare_s, seconds)
                seconds, accuracy = best_of(1, lambda path=model_path, d=data: with_halfconv(path, d))
                ours_s = min(ours_s, seconds)
            if not np.isclose(accuracy, float((predictions == data.labels).mean())):
                raise SystemExit("both loops must reach the same accuracy")
            print(f"{dataset:<9} {model_path.stem[:14]:<14} {bare_s:>8.3f} {ours_s:>11.3f} {100 * (ours_s / bare_s - 1):>+8.1f}%")
        print(f"\n{'dataset':<9} {'fp16 model':<14} {'native s':>9} {'emulated s':>11} {'cost':>7}")
        for dataset, model_path in (("mnist", REPO / "models" / "demo_cnn" / "model.onnx"), ("cifar10", cifar_path)):
            data = halfconv.load_dataset(dataset, "test", data_dir=args.data_dir, download=False)
            fp16 = Path(tmp) / f"{model_path.stem}.{dataset}.fp16.onnx"
            halfconv.convert(model_path, halfconv.ConvertOptions(output=fp16, force=True))
            native_s = emulated_s = float("inf")
            for _ in range(args.repeats):
                seconds, _ = best_of(1, lambda path=fp16, d=data: with_halfconv(path, d, "native"))
                native_s = min(native_s, seconds)
                seconds, _ = best_of(1, lambda path=fp16, d=data: with_halfconv(path, d, "emulated"))
                emulated_s = min(emulated_s, seconds)
            print(f"{dataset:<9} {model_path.stem[:14]:<14} {native_s:>9.3f} {emulated_s:>11.3f} {emulated_s / native_s:>6.2f}x")
    print(f"\n{len(data.labels):,} images per pass, batch {BATCH}, best of {args.repeats}; CPUExecutionProvider; "
          f"{os.cpu_count()} cores, python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
