"""Measured fp32 decisions against the anchors, side by side in one run.

    python tests/benchmarks/bench_calibration.py [--data-dir DIR] [--models NAME,...]

For every model, four conversions:
- halfconv: ``calibrated_convert`` with the defaults (512 MNIST/CIFAR-10 training images
  measured, 2,000 more validating, budget 0.1 pp);
- all-fp16: halfconv without the policy table or the weight check, every node fp16;
- onnxconverter-common's ``auto_convert_mixed_precision`` on the same 512 calibration
  images, with the tolerances of its documented example (rtol 0.01, atol 0.001);
- ModelOpt AutoCast's ``convert_to_mixed_precision`` with the same 512 images as its
  calibration data and its defaults (data_max 512, init_max 65504), when ``modelopt`` is
  installed in this environment (``pip install 'nvidia-modelopt[onnx]'`` after the CPU
  build of torch; it is never a halfconv dependency).

Each output is then measured the same way: top-1 on the whole *test* split, computed by
its numerics model (fp16 storage emulated, on ORT's CPU provider), and the share of its
float weight elements stored in fp16. The evaluations column counts the runs of the model
over a set of images that the method made to decide (halfconv: trials on the validation
images; onnxconverter-common: its fp32 reference, every attempt and its final check;
AutoCast: its reference run); the sessions column counts every ONNX Runtime session the
method created, validation included. Wall time is the method's alone.

Models: a trained MLP whose hidden layer is rescaled past 65504 (overflow) or into the
thousands (headroom), the same MLP with its first layer scaled by 1e-6 and its second by
1e6 (weights that flush and weights beyond 65504), logits shifted by 1500 and back
(precision: only the accuracy search sees it), the bundled models/demo_overflow (its
second of three layers rescaled past 65504) and the four reference models.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

import halfconv
from halfconv.calibration import CalibrationOptions, calibrated_convert
from halfconv.numerics import emulated_copy

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
import trained_models  # noqa: E402

REFERENCES = {
    "demo_overflow": ("mnist", REPO / "models/demo_overflow/model.onnx"),
    "mnist_mlp_torch": ("mnist", REPO / "models/mnist_mlp_torch/model.onnx"),
    "mnist_mlp_keras": ("mnist", REPO / "models/mnist_mlp_keras/model.onnx"),
    "cifar10_cnn_keras": ("cifar10", REPO / "models/cifar10_cnn_keras/model.onnx"),
    "cifar10_resnet_torch": ("cifar10", REPO / "models/cifar10_resnet_torch/model.onnx"),
}


class Counter:
    """Counts ONNX Runtime sessions created while it is active."""

    def __init__(self) -> None:
        self.sessions = 0
        self._init = ort.InferenceSession.__init__

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        original = self._init

        def counting(session: ort.InferenceSession, *args: object, **kwargs: object) -> None:
            self.sessions += 1
            original(session, *args, **kwargs)  # type: ignore[arg-type]

        ort.InferenceSession.__init__ = counting  # type: ignore[method-assign]
        try:
            yield
        finally:
            ort.InferenceSession.__init__ = original  # type: ignore[method-assign]


# -- models -------------------------------------------------------------------------------------


def _mlp(weights: tuple[np.ndarray, ...], first: float, second: float, path: Path) -> Path:
    w1, b1, w2, b2 = weights
    onnx.save(trained_models.mlp_model(w1 * np.float32(first), b1 * np.float32(first), w2 * np.float32(second), b2), str(path))
    return path


def _cancelling(data_dir: Path, path: Path) -> Path:
    train = halfconv.load_dataset("mnist", "train", data_dir=data_dir)
    w, b = trained_models.train_softmax_regression(train.images, train.labels, epochs=1)
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["X", "W", "b"], ["Z"], name="fc"),
            helper.make_node("Add", ["Z", "C"], ["S"], name="shift"),
            helper.make_node("Sub", ["S", "C"], ["L"], name="unshift"),
        ],
        "cancel",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 784])],
        [helper.make_tensor_value_info("L", TensorProto.FLOAT, ["N", 10])],
        [numpy_helper.from_array(a, n) for n, a in (("W", w), ("b", b), ("C", np.array(1500.0, np.float32)))],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10), str(path))
    return path


def build_models(data_dir: Path, folder: Path) -> dict[str, tuple[str, Path]]:
    weights = trained_models.train_mlp(data_dir)
    built = {
        "overflow_mlp": ("mnist", _mlp(weights, 2.0**15, 2.0**-15, folder / "overflow.onnx")),
        "weight_range_mlp": ("mnist", _mlp(weights, 1e-6, 1e6, folder / "weight_range.onnx")),
        "headroom_mlp": ("mnist", _mlp(weights, 300.0, 1 / 300.0, folder / "headroom.onnx")),
        "cancelling_linear": ("mnist", _cancelling(data_dir, folder / "cancel.onnx")),
    }
    return {**built, **REFERENCES}


# -- the inputs every method sees -----------------------------------------------------------------


def model_inputs(path: Path, dataset: str, data_dir: Path, split: str, count: int | None, seed: int | None) -> tuple[str, np.ndarray, np.ndarray]:
    """(input name, pre-processed images, labels), fed the way halfconv evaluate feeds them."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    signature = halfconv.evaluation.read_signature(session, path.name)
    data = halfconv.load_dataset(dataset, split, data_dir=data_dir)
    index = np.arange(len(data.labels)) if seed is None else np.random.default_rng(seed).permutation(len(data.labels))
    index = index[:count] if count else index
    plan = halfconv.evaluation.plan_preprocessing(
        signature, tuple(int(d) for d in data.images.shape[1:]), dataset_name=dataset, model_name=path.name
    )
    return signature.input_name, halfconv.evaluation.preprocess(data.images[index], plan), data.labels[index]


def test_accuracy(path: Path, name: str, x: np.ndarray, labels: np.ndarray) -> float:
    with emulated_copy(path) as emulated:
        target = emulated.path if emulated is not None else path
        session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
        logits = np.concatenate([session.run(None, {name: x[i : i + 500]})[0] for i in range(0, len(x), 500)])
    return float((np.nan_to_num(logits, nan=-np.inf).argmax(axis=1) == labels).mean())


def fp16_weight_share(path: Path) -> float:
    model = onnx.load(str(path))
    sizes = {TensorProto.FLOAT: 0, TensorProto.FLOAT16: 0}
    for tensor in model.graph.initializer:
        if tensor.data_type in sizes:
            sizes[tensor.data_type] += int(np.prod(tensor.dims))
    for node in model.graph.node:
        if node.op_type == "Constant":
            for attribute in node.attribute:
                if attribute.name == "value" and attribute.t.data_type in sizes:
                    sizes[attribute.t.data_type] += int(np.prod(attribute.t.dims))
    total = sum(sizes.values())
    return sizes[TensorProto.FLOAT16] / total if total else 0.0


# -- the methods ------------------------------------------------------------------------------------

Method = Callable[[Path, Path, str, Path, dict[str, np.ndarray]], int]  # -> evaluations


def run_halfconv(source: Path, output: Path, dataset: str, data_dir: Path, feed: dict[str, np.ndarray]) -> int:
    result = calibrated_convert(source, halfconv.ConvertOptions(output=output, force=True), CalibrationOptions(dataset, data_dir=data_dir))
    return len(result.calibration.trials)


def run_all_fp16(source: Path, output: Path, dataset: str, data_dir: Path, feed: dict[str, np.ndarray]) -> int:
    options = halfconv.ConvertOptions(output=output, force=True, use_default_policy=False, clamp_weights=True, validate=False)
    halfconv.convert(source, options)
    return 0


def run_occ(source: Path, output: Path, dataset: str, data_dir: Path, feed: dict[str, np.ndarray]) -> int:
    from onnxconverter_common import auto_mixed_precision

    calls = 0
    original = auto_mixed_precision.get_tensor_values_using_ort

    def counted(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        return original(*args, **kwargs)

    auto_mixed_precision.get_tensor_values_using_ort = counted
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            model = auto_mixed_precision.auto_convert_mixed_precision(
                onnx.load(str(source)), feed, rtol=0.01, atol=0.001, keep_io_types=True
            )
    finally:
        auto_mixed_precision.get_tensor_values_using_ort = original
    onnx.save(model, str(output))
    return calls


def run_autocast(source: Path, output: Path, dataset: str, data_dir: Path, feed: dict[str, np.ndarray]) -> int:
    from modelopt.onnx.autocast import convert_to_mixed_precision

    for name in list(logging.root.manager.loggerDict):
        if name.startswith("modelopt"):
            logging.getLogger(name).setLevel(logging.ERROR)
    calibration = output.with_suffix(".calibration.npz")
    np.savez(calibration, **feed)
    model = convert_to_mixed_precision(onnx_path=str(source), low_precision_type="fp16", keep_io_types=True, calibration_data=str(calibration))
    onnx.save(model, str(output))
    return 1


def methods() -> dict[str, Method | str]:
    found: dict[str, Method | str] = {"halfconv": run_halfconv, "all-fp16": run_all_fp16, "onnxconverter-common": run_occ}
    try:
        import modelopt.onnx.autocast  # noqa: F401

        found["modelopt-autocast"] = run_autocast
    except ImportError as error:
        found["modelopt-autocast"] = f"not installed here ({error}); pip install 'nvidia-modelopt[onnx]' after torch==2.13.0"
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--models", help="comma-separated subset of the models")
    args = parser.parse_args()
    data_dir = args.data_dir
    warnings.simplefilter("ignore")  # onnxconverter-common warns once per value it truncates
    logging.getLogger("modelopt").setLevel(logging.ERROR)
    print(f"onnxruntime {ort.__version__}, halfconv {halfconv.__version__}; fp16 top-1 on the test split, fp16 storage emulated on CPU")
    header = f"{'model':<22} {'method':<21} {'fp32':>7} {'fp16':>7} {'drop pp':>8} {'fp16 weights':>12} {'evals':>6} {'sessions':>8} {'time s':>7}"
    with tempfile.TemporaryDirectory() as folder:
        models = build_models(data_dir, Path(folder))
        chosen = args.models.split(",") if args.models else list(models)
        available = methods()
        for name, message in available.items():
            if isinstance(message, str):
                print(f"{name}: {message}")
        print(header)
        for model_name in chosen:
            dataset, path = models[model_name]
            input_name, x_test, y_test = model_inputs(path, dataset, data_dir, "test", None, None)
            fp32 = test_accuracy(path, input_name, x_test, y_test)
            _, x_cal, _ = model_inputs(path, dataset, data_dir, "train", 512, 0)
            feed = {input_name: x_cal}
            for method_name, method in available.items():
                if isinstance(method, str):
                    continue
                output = Path(folder) / f"{model_name}.{method_name}.onnx"
                counter = Counter()
                started = time.perf_counter()
                try:
                    with counter.active():
                        evaluations = method(path, output, dataset, data_dir, feed)
                except Exception as error:  # an anchor that fails is a row, not a crash
                    print(f"{model_name:<22} {method_name:<21} failed: {type(error).__name__}: {str(error)[:90]}")
                    continue
                seconds = time.perf_counter() - started
                fp16 = test_accuracy(output, input_name, x_test, y_test)
                print(
                    f"{model_name:<22} {method_name:<21} {fp32:>7.2%} {fp16:>7.2%} {(fp32 - fp16) * 100:>8.2f} "
                    f"{fp16_weight_share(output):>12.1%} {evaluations:>6} {counter.sessions:>8} {seconds:>7.2f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
