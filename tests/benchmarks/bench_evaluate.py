"""Overhead of halfconv's evaluation loop over a bare batched ``session.run`` loop.

    python tests/benchmarks/bench_evaluate.py [--data-dir DIR] [--repeats 3]

For MNIST (models/demo_cnn) and CIFAR-10 (a generated CNN of the same shape class), both
sides start from the uint8 test images and end with top-1 predictions, on the same ORT
CPU session and batch size (256):
- bare: scale to [0, 1] with numpy, reshape to NCHW, ``session.run`` per batch, argmax;
- halfconv: ``_preprocess.plan_preprocessing`` + ``preprocess`` + ``_measure.run_dataset``
  + ``_measure.top1``, the code ``halfconv evaluate`` runs for its accuracy pass.
Best of ``--repeats`` runs each; figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from converter import _datasets, _measure, _preprocess, _runtime

REPO = Path(__file__).resolve().parents[2]
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


def bare(session, input_name: str, images: np.ndarray) -> np.ndarray:
    x = images.astype(np.float32) / 255.0
    x = x[:, np.newaxis] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
    x = np.ascontiguousarray(x)
    outputs = [session.run(None, {input_name: x[i : i + BATCH]})[0] for i in range(0, len(x), BATCH)]
    return np.concatenate(outputs).argmax(axis=1)


def halfconv(session, images: np.ndarray, labels: np.ndarray, dataset: str) -> np.ndarray:
    signature = _preprocess.read_signature(session, "model")
    plan = _preprocess.plan_preprocessing(signature, images.shape[1:], dataset_name=dataset, model_name="model")
    x = _preprocess.preprocess(images, plan)
    logits = _measure.run_dataset(session, signature, x, BATCH, plan.fixed_batch, _measure.ProgressBar("", 0, False))
    predictions, _, _ = _measure.top1(logits, labels, 10)
    return predictions


def best_of(repeats: int, run) -> tuple[float, np.ndarray]:
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
    provider = _runtime.resolve_provider("cpu")
    with tempfile.TemporaryDirectory() as tmp:
        cifar_path = Path(tmp) / "cifar_cnn.onnx"
        onnx.save(cifar_cnn(), str(cifar_path))
        print(f"{'dataset':<9} {'model':<14} {'bare s':>8} {'halfconv s':>11} {'overhead':>9}")
        for dataset, model_path in (("mnist", REPO / "models" / "demo_cnn" / "model.onnx"), ("cifar10", cifar_path)):
            data = _datasets.load_dataset(dataset, "test", data_dir=args.data_dir, download=False)
            session = _runtime.create_session(model_path, provider)
            name = session.get_inputs()[0].name
            bare(session, name, data.images[:512])  # warm the session up
            # Alternate the two so that drift in machine load hits both alike.
            bare_s = ours_s = float("inf")
            for _ in range(args.repeats):
                seconds, bare_pred = best_of(1, lambda: bare(session, name, data.images))
                bare_s = min(bare_s, seconds)
                seconds, ours_pred = best_of(1, lambda: halfconv(session, data.images, data.labels, dataset))
                ours_s = min(ours_s, seconds)
            assert np.array_equal(bare_pred, ours_pred), "both loops must predict the same classes"
            print(f"{dataset:<9} {model_path.stem[:14]:<14} {bare_s:>8.3f} {ours_s:>11.3f} {100 * (ours_s / bare_s - 1):>+8.1f}%")
    print(f"\n{len(data.labels):,} images per pass, batch {BATCH}, best of {args.repeats}; CPUExecutionProvider; "
          f"{os.cpu_count()} cores, python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
