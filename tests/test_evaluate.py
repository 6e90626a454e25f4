"""``halfconv evaluate`` on the real MNIST and CIFAR-10 test sets, checked against numpy.

Softmax regressions are trained inside the session on the real training splits (see
``trained_models.py``), saved as ONNX and converted to fp16 with ``halfconv.convert``. Every
accuracy halfconv reports is recomputed here with plain numpy on the same images. Runs go
through ``halfconv.cli.main`` so exit codes and the exact lines on stdout/stderr are
checked too. Errors must leave no report behind.

The datasets are read from ``$HALFCONV_DATA_DIR`` (CI sets it), else ``../shared/datasets``
beside the repository. The network is never touched: the dataset downloader
(``halfconv.datasets._download._open_url``) is replaced by one that fails.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import io
import json
import os
import re
import shutil
import urllib.error
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import trained_models
from environment import require_datasets
from halfconv.cli import main
from halfconv.conversion import ConvertOptions, convert
from halfconv.core import AccuracyGateError, ProviderError, UsageError, _runtime
from halfconv.datasets import _download
from halfconv.datasets import _load as _datasets
from halfconv.evaluation import EvaluateOptions, evaluate
from halfconv.report import load_schema

DATA_DIR = require_datasets()
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
MNIST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
# Few timed runs and small batches: the latency figures are checked for shape, not speed.
FAST = ("--iters", "3", "--warmup", "1", "--latency-batch-sizes", "1,16", "--quiet")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
IMG = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
CPU = "CPUExecutionProvider"
CPU_FP16_NOTE = (
    "ONNX Runtime's CPU provider has few float16 kernels and runs most float16 ops through casts to float32, "
    "so float16 models are usually slower on the CPU; the speed-up of float16 shows on a GPU (--provider cuda)"
)


# -- models and data ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Trained:
    fp32: Path
    fp16: Path
    weights: np.ndarray
    bias: np.ndarray


def save(model: onnx.ModelProto, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def save_and_convert(model: onnx.ModelProto, path: Path, **options: Any) -> Path:
    """Save the fp32 model at ``path`` and convert it; returns the fp16 path."""
    save(model, path)
    result = convert(path, ConvertOptions(**options))
    return Path(result.output_path)


@pytest.fixture(scope="session")
def mnist_test() -> _datasets.Dataset:
    return _datasets.load_dataset("mnist", "test", data_dir=DATA_DIR, download=False)


@pytest.fixture(scope="session")
def cifar_test() -> _datasets.Dataset:
    return _datasets.load_dataset("cifar10", "test", data_dir=DATA_DIR, download=False)


@pytest.fixture(scope="session")
def mnist_train() -> _datasets.Dataset:
    return _datasets.load_dataset("mnist", "train", data_dir=DATA_DIR, download=False)


@pytest.fixture(scope="session")
def mnist(tmp_path_factory: pytest.TempPathFactory, mnist_train: _datasets.Dataset) -> Trained:
    """Softmax regression, one epoch on the 60,000 MNIST training images, input (N, 784)."""
    weights, bias = trained_models.train_softmax_regression(mnist_train.images, mnist_train.labels, epochs=1)
    folder = tmp_path_factory.mktemp("mnist")
    fp32 = folder / "model.onnx"
    fp16 = save_and_convert(trained_models.linear_classifier(weights, bias, ["N", 784]), fp32)
    assert fp16 == folder / "model.fp16.onnx"
    return Trained(fp32, fp16, weights, bias)


@pytest.fixture(scope="session")
def cifar(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """Softmax regression, one epoch on the 50,000 CIFAR-10 training images as flat HWC (N, 3072)."""
    train = _datasets.load_dataset("cifar10", "train", data_dir=DATA_DIR, download=False)
    weights, bias = trained_models.train_softmax_regression_at_rate(train.images, train.labels, learning_rate=0.01)
    del train
    folder = tmp_path_factory.mktemp("cifar")
    fp32 = folder / "cifar.onnx"
    fp16 = save_and_convert(trained_models.linear_classifier(weights, bias, ["N", 3072]), fp32)
    return Trained(fp32, fp16, weights, bias)


@pytest.fixture(scope="session")
def normalised(tmp_path_factory: pytest.TempPathFactory, mnist_train: _datasets.Dataset) -> Trained:
    """A MNIST model trained on (pixels / 255 - 0.1307) / 0.3081: it needs --mean/--std."""
    # train_softmax_regression divides by 255, so the normalisation is baked in before that.
    baked = ((mnist_train.images.astype(np.float32) / 255.0 - MNIST_MEAN) / MNIST_STD) * 255.0
    weights, bias = trained_models.train_softmax_regression(baked, mnist_train.labels, epochs=1)
    folder = tmp_path_factory.mktemp("normalised")
    fp32 = folder / "normalised.onnx"
    fp16 = save_and_convert(trained_models.linear_classifier(weights, bias, ["N", 784]), fp32)
    return Trained(fp32, fp16, weights, bias)


def normalised_forward(weights: np.ndarray, bias: np.ndarray) -> trained_models.Forward:
    def forward(images: np.ndarray) -> np.ndarray:
        x = images.reshape(len(images), -1).astype(np.float32) / np.float32(255.0)
        return ((x - np.float32(MNIST_MEAN)) / np.float32(MNIST_STD)) @ weights + bias

    return forward


def fp16_forward(weights: np.ndarray, bias: np.ndarray) -> trained_models.Forward:
    """The fp16 model in numpy: inputs, weights and result rounded to float16."""
    w16 = weights.astype(np.float16).astype(np.float32)
    b16 = bias.astype(np.float16).astype(np.float32)

    def forward(images: np.ndarray) -> np.ndarray:
        x = (images.reshape(len(images), -1).astype(np.float32) / 255.0).astype(np.float16).astype(np.float32)
        return (x @ w16 + b16).astype(np.float16).astype(np.float32)

    return forward


# -- helpers ----------------------------------------------------------------------------------




@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Datasets from DATA_DIR, the default report folder inside tmp_path, and no network."""
    monkeypatch.setenv("HALFCONV_DATA_DIR", str(DATA_DIR))
    monkeypatch.chdir(tmp_path)

    def no_network(url: str, timeout_s: float) -> Any:
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(_download, "_open_url", no_network)


def run(capfd: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main(["evaluate", *(str(a) for a in argv)])
    captured = capfd.readouterr()
    return code, captured.out, captured.err


def evaluate_ok(capfd: pytest.CaptureFixture[str], model: Path, report_dir: Path, *argv: object) -> dict[str, Any]:
    """Run evaluate with FAST settings on the CPU; returns report.json."""
    if "--provider" not in argv:
        argv = (*argv, "--provider", "cpu")
    code, out, err = run(capfd, model, "--report-dir", report_dir, *FAST, *argv)
    assert code == 0, err
    assert err == ""
    assert out.splitlines()[-1] == f"report: {report_dir / 'report.html'} (also report.md, report.json)"
    return json.loads((report_dir / "report.json").read_text(encoding="utf-8"))


def assert_valid(report: dict[str, Any]) -> None:
    jsonschema.validate(report, load_schema(), cls=jsonschema.Draft202012Validator)


def assert_fails(
    capfd: pytest.CaptureFixture[str], tmp_path: Path, argv: list[object], code: int, message: str
) -> None:
    """Exactly one 'Error: ...' line, the exit code, and no report folder or file anywhere."""
    report_dir = tmp_path / "report"
    got, out, err = run(capfd, "--report-dir", report_dir, *FAST, *argv)  # argv last: its options win
    assert (got, err) == (code, f"Error: {message}\n")
    assert out == ""
    assert not report_dir.exists()
    assert not (tmp_path / "reports").exists()
    assert not list(tmp_path.rglob("report.*"))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ambiguous(logits: np.ndarray, margin: float = 1e-3) -> np.ndarray:
    """Images whose top two logits are so close that float rounding may swap the argmax."""
    top2 = np.sort(logits, axis=1)[:, -2:]
    return (top2[:, 1] - top2[:, 0]) < margin


def assert_matches_numpy(model: dict[str, Any], logits: np.ndarray, labels: np.ndarray) -> None:
    """Accuracy, correct/total and per-class accuracy equal numpy's, up to near-ties."""
    correct = logits.argmax(axis=1) == labels
    ties = ambiguous(logits)
    assert model["total"] == len(labels)
    assert abs(model["correct"] - int(correct.sum())) <= int(ties.sum())
    assert model["accuracy"] == pytest.approx(model["correct"] / len(labels), abs=1e-12)
    classes = logits.shape[1]
    assert len(model["per_class_accuracy"]) == classes
    for c in range(classes):
        members = labels == c
        expected = int(correct[members].sum())
        assert abs(model["per_class_accuracy"][c] * members.sum() - expected) <= int(ties[members].sum()) + 1e-6


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits.argmax(axis=1) == labels).mean())


def linear(weights: np.ndarray, bias: np.ndarray, shape: list[int | str]) -> onnx.ModelProto:
    return trained_models.linear_classifier(weights, bias, shape)


# -- the full MNIST test set --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FullRun:
    code: int
    out: str
    err: str
    report_dir: Path
    report: dict[str, Any]


@pytest.fixture(scope="module")
def full_cpu(mnist: Trained, tmp_path_factory: pytest.TempPathFactory) -> FullRun:
    """All 10,000 MNIST test images, fp16 against its fp32 baseline, --provider cpu."""
    report_dir = tmp_path_factory.mktemp("full_cpu") / "report"
    out, err = io.StringIO(), io.StringIO()
    argv = ["evaluate", str(mnist.fp16), "--dataset", "mnist", "--data-dir", str(DATA_DIR), "--provider", "cpu"]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([*argv, "--report-dir", str(report_dir), *FAST])
    report = json.loads((report_dir / "report.json").read_text(encoding="utf-8"))
    return FullRun(code, out.getvalue(), err.getvalue(), report_dir, report)


def test_full_mnist_through_the_cli_with_cpu_fallback(
    mnist: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str], cuda_missing: str
) -> None:
    reason = cuda_missing
    report_dir = tmp_path / "out"
    code, out, err = run(capfd, mnist.fp16, "--dataset", "mnist", "--report-dir", report_dir, *FAST)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "evaluated mnist test: 10,000 of 10,000 images"
    assert lines[1] == f"  provider  {CPU} (requested auto), onnxruntime {ort.__version__}"
    assert lines[2] == f"  numerics  fp16 storage emulated on {CPU}"
    assert lines[3] == (
        f"  WARNING   CPU FALLBACK: requested 'auto' but ran on {CPU} - CUDA unavailable: {reason}. "
        "All latency figures are CPU figures, not GPU figures."
    )
    assert any(line.startswith("  correct ") and line.count("/10,000") == 2 for line in lines)
    assert lines[-1] == f"report: {report_dir / 'report.html'} (also report.md, report.json)"
    assert err == f"Warning: ran on {CPU}: CUDA unavailable: {reason}\n"
    for name in ("report.md", "report.json", "report.html"):
        assert (report_dir / name).is_file()
    assert sorted(p.name for p in report_dir.iterdir()) == ["report.html", "report.json", "report.md"]
    report = json.loads((report_dir / "report.json").read_text(encoding="utf-8"))
    assert_valid(report)
    assert report["provider"]["requested"] == "auto"
    assert report["provider"]["actual"] == CPU
    assert report["provider"]["fallback_reason"] == f"CUDA unavailable: {reason}"
    assert f"requested provider 'auto' ran on the CPU: CUDA unavailable: {reason}" in report["notes"]
    assert report["dataset"]["num_images"] == 10000
    assert "CPU FALLBACK" in (report_dir / "report.html").read_text(encoding="utf-8")
    assert "CPU FALLBACK" in (report_dir / "report.md").read_text(encoding="utf-8")


def test_the_report_states_the_gpu_settings_and_the_crossover(full_cpu: FullRun) -> None:
    report = full_cpu.report
    assert (report["provider"]["cudnn_conv_algo_search"], report["provider"]["strict_provider"]) == (None, False)
    ratios = report["comparison"]["latency_ratio"]
    faster = [batch for batch, ratio in ratios if ratio < 1]
    assert report["comparison"]["crossover_batch"] == (min(faster) if faster else None)
    markdown = (full_cpu.report_dir / "report.md").read_text(encoding="utf-8")
    assert "| cuDNN convolution algorithm search | - |" in markdown
    assert "| CPU fallback of nodes | allowed |" in markdown
    assert "| smallest batch timed where fp16 is faster |" in markdown


def test_node_placement_comes_from_ort_profiling(full_cpu: FullRun, mnist: Trained) -> None:
    placement = full_cpu.report["fp16"]["placement"]
    assert [provider for provider, _ in placement["counts"]] == [CPU] and placement["counts"][0][1] >= 3
    assert placement["fallbacks"] == []
    assert placement["source"] == f"ONNX Runtime {ort.__version__} session profiling, one run of batch 1"
    assert "| fp16 | " in (full_cpu.report_dir / "report.md").read_text(encoding="utf-8").split("## Node placement")[1]


def test_a_cpu_fallback_on_cuda_is_named(tmp_path: Path) -> None:
    """ORT's profile of a CUDA run (recorded here as text): the CPU's nodes are the fallbacks."""
    from halfconv.core import _placement

    def event(name: str, op: str, provider: str, dtype: str) -> dict[str, Any]:
        return {"cat": "Node", "name": f"{name}_kernel_time", "args": {"op_name": op, "provider": provider, "output_type_shape": [{dtype: [1, 10]}]}}

    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps([
        {"cat": "Session", "name": "model_run"},
        event("conv", "Conv", "CUDAExecutionProvider", "float16"),
        event("nms", "NonMaxSuppression", "CPUExecutionProvider", "int64"),
        event("conv", "Conv", "CUDAExecutionProvider", "float16"),  # a second run of the same node
    ]))
    placed = _placement._events(profile)
    assert [(n.name, n.op_type, n.provider, n.output_types) for n in placed] == [
        ("conv", "Conv", "CUDAExecutionProvider", ("float16",)),
        ("nms", "NonMaxSuppression", "CPUExecutionProvider", ("int64",)),
    ]


def test_strict_provider_needs_cuda(
    mnist: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str], cuda_missing: str
) -> None:
    assert_fails(
        capfd, tmp_path, [mnist.fp16, "--dataset", "mnist", "--provider", "cpu", "--strict-provider"], 2,
        "--strict-provider keeps every node on CUDA; it does not apply to --provider cpu - use --provider cuda",
    )
    assert_fails(
        capfd, tmp_path, [mnist.fp16, "--dataset", "mnist", "--strict-provider"], 10,
        f"--strict-provider needs CUDA, and it is unavailable: CUDA unavailable: {cuda_missing} - see halfconv doctor",
    )


def test_full_run_accuracy_agrees_with_numpy(full_cpu: FullRun, mnist: Trained, mnist_test: _datasets.Dataset) -> None:
    assert full_cpu.code == 0
    assert full_cpu.err == ""  # --provider cpu: no fallback warning
    assert "CPU FALLBACK" not in full_cpu.out
    report, labels = full_cpu.report, mnist_test.labels
    fp32_logits = trained_models.numpy_forward(mnist.weights, mnist.bias)(mnist_test.images)
    fp16_logits = fp16_forward(mnist.weights, mnist.bias)(mnist_test.images)
    fp32, fp16 = report["fp32"], report["fp16"]

    assert accuracy(fp32_logits, labels) > 0.88  # the model really learned MNIST
    assert_matches_numpy(fp32, fp32_logits, labels)
    assert fp32["total"] == fp16["total"] == 10000
    assert fp16["correct"] == round(fp16["accuracy"] * 10000)
    # fp16: within 0.1 pp of numpy's float16 emulation, and per class within 1 pp.
    assert abs(fp16["correct"] - int((fp16_logits.argmax(1) == labels).sum())) <= 10
    for c in range(10):
        members = labels == c
        assert fp16["per_class_accuracy"][c] == pytest.approx((fp16_logits[members].argmax(1) == c).mean(), abs=0.01)

    numpy_agreement = float((fp16_logits.argmax(1) == fp32_logits.argmax(1)).mean())
    comparison = report["comparison"]
    assert report["agreement"] == pytest.approx(1 - comparison["disagreements"] / 10000, abs=1e-12)
    assert report["agreement"] >= 0.99
    assert report["agreement"] == pytest.approx(numpy_agreement, abs=0.002)
    assert report["accuracy_delta_pp"] == pytest.approx((fp16["accuracy"] - fp32["accuracy"]) * 100, abs=1e-9)
    assert abs(report["accuracy_delta_pp"]) < 0.2
    assert 0 < comparison["mean_abs_logit_diff"] <= comparison["max_abs_logit_diff"] < 0.05
    assert sum(comparison["logit_diff_counts"]) == 10000 * 10
    assert len(comparison["logit_diff_bins"]) == len(comparison["logit_diff_counts"]) + 1
    assert fp32["nonfinite_outputs"] == fp16["nonfinite_outputs"] == 0


def test_full_run_report_json(full_cpu: FullRun, mnist: Trained) -> None:
    report = full_cpu.report
    assert_valid(report)
    assert report["schema_version"] == 1
    assert report["tool_versions"]["onnxruntime"] == ort.__version__
    assert report["dataset"] == {
        "name": "mnist",
        "split": "test",
        "num_images": 10000,
        "num_available": 10000,
        "class_names": [str(i) for i in range(10)],
        "files": [
            {
                "path": os.path.abspath(DATA_DIR / "mnist" / name),
                "sha256": sha256(DATA_DIR / "mnist" / name),
                "size_bytes": (DATA_DIR / "mnist" / name).stat().st_size,
            }
            for name in MNIST_FILES
        ],
    }
    assert report["dataset"]["files"][1]["sha256"] == "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"
    provider = report["provider"]
    assert (provider["requested"], provider["actual"], provider["fallback_reason"]) == ("cpu", CPU, None)
    assert provider["io_binding"] is True and provider["copies_timed"] is False
    assert provider["device_name"] is None
    assert report["preprocessing"] == {
        "layout": "flat",
        "input_shape": ["N", 784],
        "input_dtype": "float32",
        "scale": pytest.approx(1 / 255),
        "mean": [0.0],
        "std": [1.0],
        "source": "default",
        "fixed_batch": None,
    }
    assert report["baseline_source"] == "model metadata"
    assert report["notes"] == [f"baseline {mnist.fp32.resolve()} found through the model metadata", CPU_FP16_NOTE]

    fp32, fp16 = report["fp32"], report["fp16"]
    assert (fp32["role"], fp16["role"]) == ("fp32", "fp16")
    assert fp32["path"] == str(mnist.fp32.resolve()) and fp16["path"] == str(mnist.fp16)
    assert fp32["sha256"] == sha256(mnist.fp32) and fp16["sha256"] == sha256(mnist.fp16)
    assert fp32["size_bytes"] == mnist.fp32.stat().st_size and fp16["size_bytes"] == mnist.fp16.stat().st_size
    assert (fp32["precision"], fp16["precision"]) == ("float32", "float16")
    assert fp32["conversion"] is None
    assert fp16["conversion"]["source_model"] == "model.onnx"
    assert fp16["conversion"]["target"] == "fp16"
    comparison = report["comparison"]
    assert comparison["size_ratio"] == pytest.approx(fp16["size_bytes"] / fp32["size_bytes"])
    assert 0.4 < comparison["size_ratio"] < 0.6
    for model in (fp32, fp16):
        assert model["latency_note"] is None
        assert [p["batch_size"] for p in model["latency"]] == [1, 16]
        for point in model["latency"]:
            assert point["iters"] == 3
            assert 0 < point["min_ms"] <= point["p50_ms"] <= point["p90_ms"] <= point["p99_ms"] <= point["max_ms"]
            assert point["throughput"] == pytest.approx(point["batch_size"] / point["mean_ms"] * 1000)
    assert comparison["latency_ratio"] == [
        [b, pytest.approx(fp16["latency"][i]["p50_ms"] / fp32["latency"][i]["p50_ms"])] for i, b in enumerate((1, 16))
    ]


def test_full_run_html_and_markdown(full_cpu: FullRun) -> None:
    page = (full_cpu.report_dir / "report.html").read_text(encoding="utf-8")
    images = IMG.findall(page)
    assert len(images) == 3  # accuracy, latency, logit differences
    for data in images:
        assert base64.b64decode(data).startswith(PNG_MAGIC)
    assert "<script" not in page and "http://" not in page and "https://" not in page
    markdown = (full_cpu.report_dir / "report.md").read_text(encoding="utf-8")
    assert "CPU FALLBACK" not in markdown and "CPU FALLBACK" not in page
    summary = re.search(r"The fp16 model reaches (\d+\.\d\d)% top-1 accuracy against (\d+\.\d\d)% for fp32", markdown)
    assert summary is not None
    assert float(summary.group(1)) == pytest.approx(full_cpu.report["fp16"]["accuracy"] * 100, abs=0.005)
    assert float(summary.group(2)) == pytest.approx(full_cpu.report["fp32"]["accuracy"] * 100, abs=0.005)


def test_classes_without_images_are_null(mnist: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str], mnist_test: _datasets.Dataset) -> None:
    report = evaluate_ok(capfd, mnist.fp16, tmp_path / "r", "--dataset", "mnist", "--limit", "5")
    assert_valid(report)
    present = set(mnist_test.labels[:5].tolist())
    assert present == {7, 2, 1, 0, 4}
    for c in range(10):
        assert (report["fp32"]["per_class_accuracy"][c] is None) == (c not in present)
    assert report["fp32"]["total"] == 5


def test_json_flag_prints_the_report(mnist: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    report_dir = tmp_path / "r"
    # 5 images leave classes without images: NaN accuracies, which strict JSON writes as null.
    code, out, err = run(capfd, mnist.fp16, "--dataset", "mnist", "--limit", "5", "--provider", "cpu", "--json", "--report-dir", report_dir, *FAST)
    assert (code, err) == (0, "")

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    printed = json.loads(out, parse_constant=refuse)
    assert printed == json.loads((report_dir / "report.json").read_text(encoding="utf-8"), parse_constant=refuse)
    assert None in printed["fp32"]["per_class_accuracy"]


# -- baselines ----------------------------------------------------------------------------------


def test_baseline_from_a_sibling_file(mnist: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str], mnist_test: _datasets.Dataset) -> None:
    # Converted from orig.onnx, which is then renamed: the metadata points nowhere, but
    # model.onnx sits beside model.fp16.onnx.
    original = shutil.copy(mnist.fp32, tmp_path / "orig.onnx")
    fp16 = Path(convert(original, ConvertOptions(output=tmp_path / "model.fp16.onnx")).output_path)
    assert {p.key: p.value for p in onnx.load(str(fp16)).metadata_props}["halfconv.source_model"] == "orig.onnx"
    Path(original).rename(tmp_path / "model.onnx")
    report = evaluate_ok(capfd, fp16, tmp_path / "r", "--dataset", "mnist", "--limit", "500")
    assert_valid(report)
    assert report["baseline_source"] == "sibling file"
    assert report["fp32"]["path"] == str(tmp_path / "model.onnx")
    assert f"baseline {tmp_path / 'model.onnx'} found through the sibling file" in report["notes"]
    logits = trained_models.numpy_forward(mnist.weights, mnist.bias)(mnist_test.images[:500])
    assert_matches_numpy(report["fp32"], logits, mnist_test.labels[:500])


def test_explicit_baseline(mnist: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    baseline = Path(shutil.copy(mnist.fp32, tmp_path / "reference.onnx"))
    report = evaluate_ok(capfd, mnist.fp16, tmp_path / "r", "--dataset", "mnist", "--limit", "500", "--baseline", baseline)
    assert_valid(report)
    assert report["baseline_source"] == "--baseline"
    assert report["fp32"]["path"] == str(baseline)
    assert report["fp32"]["sha256"] == sha256(mnist.fp32)
    assert not any(note.startswith("baseline ") for note in report["notes"])


def test_model_alone(mnist: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str], mnist_test: _datasets.Dataset) -> None:
    code, out, err = run(capfd, mnist.fp32, "--dataset", "mnist", "--limit", "700", "--provider", "cpu", *FAST)
    assert (code, err) == (0, "")
    # The default folder: reports/<model stem>/ in the working directory.
    assert out.splitlines()[-1] == "report: reports/model/report.html (also report.md, report.json)"
    report_dir = tmp_path / "reports" / "model"
    report = json.loads((report_dir / "report.json").read_text(encoding="utf-8"))
    assert_valid(report)
    assert report["model"]["role"] == "model"
    for key in ("fp32", "fp16", "comparison", "agreement", "accuracy_delta_pp"):
        assert key not in report
    assert report["baseline_source"] is None
    assert report["notes"] == []
    logits = trained_models.numpy_forward(mnist.weights, mnist.bias)(mnist_test.images[:700])
    assert_matches_numpy(report["model"], logits, mnist_test.labels[:700])
    assert len(IMG.findall((report_dir / "report.html").read_text(encoding="utf-8"))) == 2  # no logit histogram


# -- layouts, batches, dtypes, normalisation -----------------------------------------------------


@pytest.mark.parametrize(
    ("layout", "shape"),
    [
        ("nchw", ["N", 1, 28, 28]),
        ("nhwc", ["N", 28, 28, 1]),
        ("hw", ["N", 28, 28]),
        ("flat", ["N", 784]),
        ("reshape", ["N", 784, 1]),
    ],
)
def test_layouts_give_the_same_accuracy(
    layout: str, shape: list[int | str], mnist: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str], mnist_test: _datasets.Dataset
) -> None:
    fp16 = save_and_convert(linear(mnist.weights, mnist.bias, shape), tmp_path / f"{layout}.onnx")
    report = evaluate_ok(capfd, fp16, tmp_path / "r", "--dataset", "mnist", "--limit", "1000")
    if layout != "reshape":  # see test_reshape_layout_report_validates
        assert_valid(report)
    assert report["preprocessing"]["layout"] == layout
    assert report["preprocessing"]["input_shape"] == shape
    logits = trained_models.numpy_forward(mnist.weights, mnist.bias)(mnist_test.images[:1000])
    assert_matches_numpy(report["fp32"], logits, mnist_test.labels[:1000])
    # The same images in another layout give the same numbers as the (N, 784) model.
    fp16_logits = fp16_forward(mnist.weights, mnist.bias)(mnist_test.images[:1000])
    assert abs(report["fp16"]["correct"] - int((fp16_logits.argmax(1) == mnist_test.labels[:1000]).sum())) <= 2


def test_reshape_layout_report_validates(mnist: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    model = save(linear(mnist.weights, mnist.bias, ["N", 784, 1]), tmp_path / "column.onnx")
    report = evaluate_ok(capfd, model, tmp_path / "r", "--dataset", "mnist", "--limit", "100")
    assert report["preprocessing"]["layout"] == "reshape"
    assert_valid(report)


def test_limit_not_a_multiple_of_the_batch_size(mnist: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str], mnist_test: _datasets.Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = count_calls(monkeypatch, "run")
    report = evaluate_ok(capfd, mnist.fp16, tmp_path / "r", "--dataset", "mnist", "--limit", "1000", "--batch-size", "300")
    assert_valid(report)
    assert len(runs) == 2 * 4  # 300 + 300 + 300 + 100 images, for each model
    assert [len(next(iter(feeds.values()))) for feeds in runs[:4]] == [300, 300, 300, 100]
    assert (report["dataset"]["num_images"], report["dataset"]["num_available"]) == (1000, 10000)
    logits = trained_models.numpy_forward(mnist.weights, mnist.bias)(mnist_test.images[:1000])
    assert_matches_numpy(report["fp32"], logits, mnist_test.labels[:1000])


def test_limit_larger_than_the_test_set(mnist: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str], mnist_test: _datasets.Dataset) -> None:
    npz = tmp_path / "few.npz"
    np.savez(npz, x=mnist_test.images[:50], y=mnist_test.labels[:50])
    report = evaluate_ok(capfd, mnist.fp16, tmp_path / "r", "--dataset", npz, "--limit", "80")
    assert (report["dataset"]["num_images"], report["dataset"]["num_available"]) == (50, 50)
    assert report["fp32"]["total"] == 50


def count_calls(monkeypatch: pytest.MonkeyPatch, method: str) -> list[Any]:
    """Record the feeds (run) or the call (run_with_iobinding) of every InferenceSession.

    The one profiled run that records node placement is not counted: it is not part of the
    accuracy pass or the timing.
    """
    calls: list[Any] = []
    original = getattr(ort.InferenceSession, method)

    def spy(self: ort.InferenceSession, *args: Any, **kwargs: Any) -> Any:
        if not self.get_session_options().enable_profiling:
            calls.append(args[1] if method == "run" else True)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ort.InferenceSession, method, spy)
    return calls


@pytest.mark.parametrize("batch", [0, 65_537, 2**62])
def test_a_fixed_batch_out_of_bounds_is_refused(
    batch: int, mnist: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Each run pads its batch to the fixed size: a declared 2^62 must not size an array."""
    model = save(linear(mnist.weights, mnist.bias, [batch, 784]), tmp_path / "fixed.onnx")
    assert_fails(
        capfd, tmp_path, [model, "--dataset", "mnist"], 13,
        f"fixed.onnx's input declares a fixed batch of {batch:,} images - export it with a dynamic batch axis, "
        "or a fixed batch from 1 to 65,536",
    )


@pytest.mark.parametrize(("batch", "sizes", "note"), [(1, "1,16", True), (7, "7", False)])
def test_fixed_batch_dimension(
    batch: int, sizes: str, note: bool, mnist: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str],
    mnist_test: _datasets.Dataset, monkeypatch: pytest.MonkeyPatch,
) -> None:
    fp16 = save_and_convert(linear(mnist.weights, mnist.bias, [batch, 784]), tmp_path / f"fixed{batch}.onnx")
    runs = count_calls(monkeypatch, "run")
    report = evaluate_ok(capfd, fp16, tmp_path / "r", "--dataset", "mnist", "--limit", "200", "--latency-batch-sizes", sizes)
    assert_valid(report)
    assert report["preprocessing"]["fixed_batch"] == batch
    assert report["preprocessing"]["input_shape"] == [batch, 784]
    chunks = -(-200 // batch)  # 200 images in chunks of exactly `batch`, the last one padded
    assert len(runs) == 2 * chunks
    assert all(len(feeds["input"]) == batch for feeds in runs)
    expected_note = f"the model takes batches of exactly {batch}; latency measured at that size only" if note else None
    for role in ("fp32", "fp16"):
        assert [p["batch_size"] for p in report[role]["latency"]] == [batch]
        assert report[role]["latency_note"] == expected_note
        assert report[role]["total"] == 200
    logits = trained_models.numpy_forward(mnist.weights, mnist.bias)(mnist_test.images[:200])
    assert_matches_numpy(report["fp32"], logits, mnist_test.labels[:200])
    assert report["comparison"]["latency_ratio"][0][0] == batch


def test_float16_inputs_when_io_types_are_not_kept(mnist: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str], mnist_test: _datasets.Dataset) -> None:
    fp16 = save_and_convert(linear(mnist.weights, mnist.bias, ["N", 784]), tmp_path / "io.onnx", keep_io_types=False)
    assert onnx.load(str(fp16)).graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT16
    report = evaluate_ok(capfd, fp16, tmp_path / "r", "--dataset", "mnist", "--limit", "2000")
    assert_valid(report)
    assert report["preprocessing"]["input_dtype"] == "float16"
    assert "the two models were fed differently: fp32: flat, float32; fp16: flat, float16" in report["notes"]
    labels = mnist_test.labels[:2000]
    assert_matches_numpy(report["fp32"], trained_models.numpy_forward(mnist.weights, mnist.bias)(mnist_test.images[:2000]), labels)
    fp16_logits = fp16_forward(mnist.weights, mnist.bias)(mnist_test.images[:2000])
    assert abs(report["fp16"]["correct"] - int((fp16_logits.argmax(1) == labels).sum())) <= 4
    assert report["agreement"] >= 0.99
    assert report["fp16"]["nonfinite_outputs"] == 0


def test_mean_and_std_are_needed_for_a_normalised_model(normalised: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str], mnist_test: _datasets.Dataset) -> None:
    images, labels = mnist_test.images[:2000], mnist_test.labels[:2000]
    right = normalised_forward(normalised.weights, normalised.bias)(images)
    wrong = trained_models.numpy_forward(normalised.weights, normalised.bias)(images)  # pixels / 255 only
    assert accuracy(right, labels) > accuracy(wrong, labels) + 0.05

    plain = evaluate_ok(capfd, normalised.fp32, tmp_path / "plain", "--dataset", "mnist", "--limit", "2000")
    assert plain["preprocessing"]["source"] == "default"
    assert_matches_numpy(plain["model"], wrong, labels)

    report = evaluate_ok(
        capfd, normalised.fp32, tmp_path / "norm", "--dataset", "mnist", "--limit", "2000",
        "--mean", str(MNIST_MEAN), "--std", str(MNIST_STD),
    )
    assert_valid(report)
    assert (report["preprocessing"]["source"], report["preprocessing"]["mean"], report["preprocessing"]["std"]) == ("options", [MNIST_MEAN], [MNIST_STD])
    assert_matches_numpy(report["model"], right, labels)
    assert report["model"]["accuracy"] > plain["model"]["accuracy"] + 0.05


def test_preprocessing_from_model_metadata(normalised: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str], mnist_test: _datasets.Dataset) -> None:
    model = onnx.load(str(normalised.fp32))
    onnx.helper.set_model_props(model, {"halfconv.preprocess": json.dumps({"mean": [MNIST_MEAN], "std": [MNIST_STD]})})
    path = save(model, tmp_path / "with_meta.onnx")
    images, labels = mnist_test.images[:2000], mnist_test.labels[:2000]
    report = evaluate_ok(capfd, path, tmp_path / "meta", "--dataset", "mnist", "--limit", "2000")
    assert_valid(report)
    preprocessing = report["preprocessing"]
    assert (preprocessing["source"], preprocessing["mean"], preprocessing["std"]) == ("metadata", [MNIST_MEAN], [MNIST_STD])
    assert preprocessing["scale"] == pytest.approx(1 / 255)
    assert_matches_numpy(report["model"], normalised_forward(normalised.weights, normalised.bias)(images), labels)
    # Explicit options win over the metadata.
    overridden = evaluate_ok(capfd, path, tmp_path / "opts", "--dataset", "mnist", "--limit", "2000", "--mean", "0", "--std", "1")
    assert overridden["preprocessing"]["source"] == "options"
    assert_matches_numpy(overridden["model"], trained_models.numpy_forward(normalised.weights, normalised.bias)(images), labels)


# -- other datasets -----------------------------------------------------------------------------


def test_cifar10_flat_hwc(cifar: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str], cifar_test: _datasets.Dataset) -> None:
    report = evaluate_ok(capfd, cifar.fp16, tmp_path / "r", "--dataset", "cifar10", "--limit", "2000")
    assert_valid(report)
    images, labels = cifar_test.images[:2000], cifar_test.labels[:2000]
    logits = trained_models.numpy_forward(cifar.weights, cifar.bias)(images)
    assert accuracy(logits, labels) > 0.25  # well above chance: the HWC flattening matches training
    assert_matches_numpy(report["fp32"], logits, labels)
    fp16_logits = fp16_forward(cifar.weights, cifar.bias)(images)
    assert abs(report["fp16"]["correct"] - int((fp16_logits.argmax(1) == labels).sum())) <= 10
    assert report["preprocessing"]["layout"] == "flat"
    assert report["dataset"]["class_names"] == CIFAR_CLASSES
    folder = DATA_DIR / "cifar-10-batches-py"
    assert [(f["path"], f["sha256"]) for f in report["dataset"]["files"]] == [
        (os.path.abspath(folder / name), sha256(folder / name)) for name in ("test_batch", "batches.meta")
    ]


@pytest.mark.parametrize("flat", [False, True], ids=["hw", "flat"])
def test_custom_npz_dataset(flat: bool, mnist: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str], mnist_test: _datasets.Dataset) -> None:
    images, labels = mnist_test.images[:500], mnist_test.labels[:500]
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    npz = tmp_path / "digits.npz"
    np.savez(npz, x=images.reshape(500, -1) if flat else images, y=labels, class_names=names)
    report = evaluate_ok(capfd, mnist.fp16, tmp_path / "r", "--dataset", npz)
    assert_valid(report)
    assert report["dataset"]["name"] == "digits"
    assert report["dataset"]["class_names"] == names.tolist()
    assert (report["dataset"]["num_images"], report["dataset"]["num_available"]) == (500, 500)
    assert report["dataset"]["files"] == [{"path": os.path.abspath(npz), "sha256": sha256(npz), "size_bytes": npz.stat().st_size}]
    assert report["preprocessing"]["layout"] == "flat"
    assert_matches_numpy(report["fp32"], trained_models.numpy_forward(mnist.weights, mnist.bias)(images), labels)


# -- execution providers --------------------------------------------------------------------------


def test_provider_cuda_fails_with_ort_reason(
    mnist: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str], cuda_missing: str
) -> None:
    reason = cuda_missing
    assert reason != "ONNX Runtime did not say why" and "\n" not in reason
    message = (
        f"the CUDA execution provider cannot be created: {reason} - install the CUDA and cuDNN libraries "
        "(pip install 'halfconv[cuda]') or use --provider cpu"
    )
    assert_fails(capfd, tmp_path, [mnist.fp16, "--dataset", "mnist", "--provider", "cuda"], 10, message)
    with pytest.raises(ProviderError):
        _runtime.resolve_provider("cuda")


def test_provider_auto_falls_back_to_cpu(
    mnist: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str], cuda_missing: str
) -> None:
    reason = cuda_missing
    report_dir = tmp_path / "r"
    code, out, err = run(capfd, mnist.fp16, "--dataset", "mnist", "--limit", "300", "--provider", "auto", "--report-dir", report_dir, *FAST)
    assert code == 0
    assert err == f"Warning: ran on {CPU}: CUDA unavailable: {reason}\n"
    assert "CPU FALLBACK" in out
    report = json.loads((report_dir / "report.json").read_text(encoding="utf-8"))
    assert (report["provider"]["requested"], report["provider"]["actual"]) == ("auto", CPU)
    assert report["provider"]["fallback_reason"] == f"CUDA unavailable: {reason}"


def test_bf16_model_on_the_cpu_runs_through_its_numerics_model(
    mnist: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str], cuda_missing: str
) -> None:
    # The CPU provider has no bfloat16 kernels: the accuracy comes from bfloat16 storage
    # emulated on the CPU, and the model's own latency cannot be measured there.
    bf16 = tmp_path / "model.bf16.onnx"
    convert(mnist.fp32, ConvertOptions(output=bf16, target="bf16"))
    report = evaluate_ok(capfd, bf16, tmp_path / "r", "--dataset", "mnist", "--baseline", mnist.fp32, "--limit", "1000")
    assert_valid(report)
    assert "fp16" not in report
    assert report["bf16"]["numerics"] == f"bf16 storage emulated on {CPU}"
    assert report["fp32"]["numerics"] == f"float32 on {CPU}"
    assert report["bf16"]["latency"] == []
    assert report["bf16"]["latency_note"] == "ONNX Runtime cannot run model.bf16.onnx on this provider, so its latency was not measured"
    assert abs(report["accuracy_delta_pp"]) < 1.0


def test_bf16_model_with_native_numerics_on_the_cpu_is_a_provider_error(
    mnist: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str], cuda_missing: str
) -> None:
    # The model is valid: the CPU provider has no bfloat16 MatMul. That is exit 10, not "invalid model".
    bf16 = tmp_path / "model.bf16.onnx"
    convert(mnist.fp32, ConvertOptions(output=bf16, target="bf16"))
    message = (
        "CPUExecutionProvider cannot run model.bf16.onnx: Could not find an implementation for Gemm(13) node "
        "with name 'matmul/MatMulAddFusion' - bfloat16 needs --provider cuda"
    )
    argv = [bf16, "--dataset", "mnist", "--baseline", mnist.fp32, "--provider", "auto", "--numerics", "native"]
    assert_fails(capfd, tmp_path, argv, 10, message)


def test_latency_uses_io_binding_on_the_cpu(mnist: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    bound = count_calls(monkeypatch, "run_with_iobinding")
    runs = count_calls(monkeypatch, "run")
    devices: list[tuple[Any, ...]] = []
    original = ort.OrtValue.ortvalue_from_numpy

    def spy(*args: Any) -> Any:
        devices.append(args[1:])
        return original(*args)

    monkeypatch.setattr(ort.OrtValue, "ortvalue_from_numpy", staticmethod(spy))
    report = evaluate_ok(capfd, mnist.fp16, tmp_path / "r", "--dataset", "mnist", "--limit", "100", "--batch-size", "32")
    assert report["provider"]["io_binding"] is True
    assert report["provider"]["fallback_reason"] is None
    assert len(bound) == 2 * 2 * (1 + 3)  # 2 models x batch sizes 1,16 x (1 warm-up + 3 timed)
    assert len(runs) == 2 * 4  # the accuracy pass: 100 images in batches of 32, per model
    assert devices == [("cpu", 0)] * 4


@pytest.mark.gpu
def test_real_cuda_run(mnist: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str], mnist_test: _datasets.Dataset) -> None:
    reason = _runtime.cuda_unavailable_reason()
    if reason is not None:
        pytest.skip(f"CUDA unavailable: {reason}")
    report = evaluate_ok(capfd, mnist.fp16, tmp_path / "r", "--dataset", "mnist", "--limit", "2000", "--provider", "cuda")
    assert_valid(report)
    provider = report["provider"]
    assert (provider["requested"], provider["actual"], provider["fallback_reason"]) == ("cuda", "CUDAExecutionProvider", None)
    assert provider["io_binding"] is True
    assert CPU_FP16_NOTE not in report["notes"]
    labels = mnist_test.labels[:2000]
    logits = trained_models.numpy_forward(mnist.weights, mnist.bias)(mnist_test.images[:2000])
    # cuBLAS may round differently (TF32): allow a few images.
    assert abs(report["fp32"]["correct"] - int((logits.argmax(1) == labels).sum())) <= 5
    assert report["agreement"] >= 0.99
    assert [p["batch_size"] for p in report["fp16"]["latency"]] == [1, 16]


# -- errors: one line, the exit code, and no report -------------------------------------------------


def test_cifar_model_on_mnist(cifar: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    message = (
        "cifar.onnx expects input (N, 3072) but mnist images are 28x28 (fits (N, 1, 28, 28), (N, 28, 28, 1), "
        "(N, 784), (N, 28, 28)) - pick the dataset the model was trained on, or pass --layout"
    )
    assert_fails(capfd, tmp_path, [cifar.fp16, "--dataset", "mnist", "--provider", "cpu"], 13, message)


def test_output_that_is_not_n_by_classes(mnist: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    weights = np.concatenate([mnist.weights, mnist.weights], axis=1)
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["input"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "W"], ["mm"]),
            helper.make_node("Reshape", ["mm", "shape"], ["logits"]),
        ],
        "pairs",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 784])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10, 2])],
        [numpy_helper.from_array(weights, "W"), numpy_helper.from_array(np.array([-1, 10, 2], np.int64), "shape")],
    )
    path = save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), tmp_path / "pairs.onnx")
    message = (
        "pairs.onnx's output 'logits' has shape (N, 10, 2), not (N, classes) - "
        "halfconv evaluates classifiers that output logits or probabilities per class"
    )
    assert_fails(capfd, tmp_path, [path, "--dataset", "mnist", "--provider", "cpu"], 13, message)


def test_two_outputs(mnist: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    model = linear(mnist.weights, mnist.bias, ["N", 784])
    model.graph.node.append(helper.make_node("Softmax", ["logits"], ["probs"], axis=1))
    model.graph.output.append(helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 10]))
    path = save(model, tmp_path / "two.onnx")
    message = "two.onnx has 2 outputs (logits, probs) - halfconv evaluates classifiers with a single (N, classes) output"
    assert_fails(capfd, tmp_path, [path, "--dataset", "mnist", "--provider", "cpu"], 13, message)


def test_five_classes_on_mnist(mnist: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    path = save(linear(np.ascontiguousarray(mnist.weights[:, :5]), mnist.bias[:5], ["N", 784]), tmp_path / "five.onnx")
    message = "five.onnx outputs 5 classes but mnist has 10 - pick the dataset the model was trained on"
    assert_fails(capfd, tmp_path, [path, "--dataset", "mnist", "--provider", "cpu", "--limit", "100"], 13, message)


@pytest.mark.parametrize("limit", ["0", "-3"])
def test_limit_must_be_positive(limit: str, mnist: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    message = f"--limit must be a positive number of images, got {limit} - omit it to use the whole test set"
    assert_fails(capfd, tmp_path, [mnist.fp16, "--dataset", "mnist", f"--limit={limit}"], 2, message)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--batch-size", "0"], "--batch-size must be positive, got 0 - try 256"),
        (["--iters", "0"], "--iters must be positive, got 0 - try 50"),
        (["--warmup", "-1"], "--warmup cannot be negative, got -1 - try 10"),
        (["--latency-batch-sizes", "1,0"], "--latency-batch-sizes needs positive sizes - e.g. --latency-batch-sizes 1,32,256"),
        (["--std", "0"], "--std values must be non-zero - pass the standard deviations used in training"),
    ],
)
def test_option_values_out_of_range(options: list[str], message: str, mnist: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    assert_fails(capfd, tmp_path, [mnist.fp32, "--dataset", "mnist", "--provider", "cpu", *options], 2, message)


def test_mean_with_the_wrong_number_of_channels(cifar: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    message = "--mean takes 1 or 3 values for cifar10, got 2 - pass one value per channel"
    argv = [cifar.fp32, "--dataset", "cifar10", "--provider", "cpu", "--mean", "0.5", "0.5"]
    assert_fails(capfd, tmp_path, argv, 2, message)


def test_layout_that_does_not_fit_the_model(mnist: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    message = (
        "--layout nchw gives mnist samples of shape (N, 1, 28, 28) but model.onnx expects (N, 784) - "
        "use --layout auto or the layout the model was trained with"
    )
    assert_fails(capfd, tmp_path, [mnist.fp32, "--dataset", "mnist", "--provider", "cpu", "--layout", "nchw"], 13, message)


def test_unparsable_latency_batch_sizes(mnist: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", str(mnist.fp16), "--dataset", "mnist", "--latency-batch-sizes", "1,x", "--report-dir", str(tmp_path / "r")])
    assert exit_info.value.code == 2
    assert capfd.readouterr().err == (
        "Error: argument --latency-batch-sizes: '1,x' is not a comma-separated list of integers, e.g. 1,32,256"
        " - see 'halfconv evaluate --help'\n"
    )
    assert not (tmp_path / "r").exists()


def test_unknown_dataset(mnist: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    message = "unknown dataset 'fashion' - use mnist, cifar10 or a path to an .npz with arrays x and y"
    assert_fails(capfd, tmp_path, [mnist.fp16, "--dataset", "fashion", "--provider", "cpu"], 2, message)


def test_unknown_provider(mnist: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", str(mnist.fp16), "--dataset", "mnist", "--provider", "tpu", "--report-dir", str(tmp_path / "r")])
    assert exit_info.value.code == 2
    captured = capfd.readouterr()
    assert captured.out == ""
    assert re.fullmatch(
        r"Error: argument --provider: invalid choice: 'tpu' \(choose from '?auto'?, '?cuda'?, '?cpu'?\) - see 'halfconv evaluate --help'\n",
        captured.err,
    )
    assert not (tmp_path / "r").exists() and not (tmp_path / "reports").exists()
    # The library refuses it too, before anything runs.
    with pytest.raises(UsageError) as error:
        evaluate(mnist.fp16, EvaluateOptions(dataset="mnist", provider="tpu"))
    assert (str(error.value), error.value.exit_code) == ("unknown provider 'tpu' - use auto, cuda or cpu", 2)
    assert not (tmp_path / "r").exists()


def test_baseline_with_another_signature(mnist: Trained, cifar: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    message = (
        "baseline cifar.onnx has input (N, 3072), output (N, 10) but model.fp16.onnx has input (N, 784), "
        "output (N, 10) - pass the float32 model that this model was converted from"
    )
    argv = [mnist.fp16, "--dataset", "mnist", "--provider", "cpu", "--baseline", cifar.fp32]
    assert_fails(capfd, tmp_path, argv, 13, message)


def test_missing_dataset_files(mnist: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HALFCONV_DATA_DIR", str(empty))
    monkeypatch.setenv("HOME", str(home))
    attempts: list[str] = []

    def offline(url: str, timeout_s: float) -> Any:
        attempts.append(url)
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(_download, "_open_url", offline)
    monkeypatch.setattr(_datasets, "BUNDLED_DIR", tmp_path / "no-bundle")  # as installed without its package data
    cache = home / ".cache" / "halfconv" / "datasets"
    message = (
        f"MNIST test files (t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) not found in {empty}, {cache}; "
        "download failed (ossci-datasets.s3.amazonaws.com: network disabled in tests; "
        "yann.lecun.com: network disabled in tests) - "
        f"put the files in {empty / 'mnist'}/ or set HALFCONV_DATA_DIR to a folder that holds them"
    )
    argv = [mnist.fp16, "--dataset", "mnist", "--provider", "cpu", "--data-dir", empty]
    assert_fails(capfd, tmp_path, argv, 9, message)
    assert len(attempts) == 2
    assert list(empty.iterdir()) == [] and list(home.iterdir()) == []


def test_corrupt_dataset_file(mnist: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    (data / "mnist").mkdir(parents=True)
    for name in MNIST_FILES:
        shutil.copy(DATA_DIR / "mnist" / name, data / "mnist" / name)
    labels = data / "mnist" / "t10k-labels-idx1-ubyte.gz"
    content = bytearray(labels.read_bytes())
    content[len(content) // 2] ^= 0x01
    labels.write_bytes(bytes(content))
    actual = hashlib.sha256(bytes(content)).hexdigest()
    message = (
        f"{os.path.abspath(labels)} has the wrong checksum (sha256 {actual[:16]}..., expected f7ae60f92e00ec6d...) "
        "and was not used - delete it and run again to download it afresh, or restore the original file"
    )
    argv = [mnist.fp16, "--dataset", "mnist", "--provider", "cpu", "--data-dir", data]
    assert_fails(capfd, tmp_path, argv, 9, message)


def test_model_file_missing(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere.onnx"
    assert_fails(capfd, tmp_path, [missing, "--dataset", "mnist"], 3, f"{missing}: no such file - check the path")


def test_baseline_file_missing(mnist: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "gone.onnx"
    argv = [mnist.fp16, "--dataset", "mnist", "--baseline", missing]
    assert_fails(capfd, tmp_path, argv, 3, f"{missing}: no such file - check the path")


def test_empty_model_file(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    assert_fails(capfd, tmp_path, [empty, "--dataset", "mnist"], 4, f"{empty} is empty (0 bytes) - re-export or re-download the model")


def test_model_that_onnx_runtime_cannot_load(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "W"], ["logits"])],
        "broken",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 784])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        [numpy_helper.from_array(np.zeros((783, 10), np.float32), "W")],  # 783 rows: cannot multiply
    )
    path = save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), tmp_path / "broken.onnx")
    report_dir = tmp_path / "report"
    code, out, err = run(capfd, path, "--dataset", "mnist", "--provider", "cpu", "--report-dir", report_dir, *FAST)
    assert code == 4
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert lines[0].startswith("Error: ONNX Runtime cannot load broken.onnx: ")
    assert "Incompatible dimensions for matrix multiplication" in lines[0]
    assert not report_dir.exists()


def test_model_that_fails_at_run_time(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    # The declared input (N, D) takes any flat image, but the graph reshapes to 780 columns.
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["input", "shape"], ["rows"]), helper.make_node("MatMul", ["rows", "W"], ["logits"])],
        "misfit",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", "D"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        [numpy_helper.from_array(np.zeros((780, 10), np.float32), "W"), numpy_helper.from_array(np.array([-1, 780], np.int64), "shape")],
    )
    path = save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), tmp_path / "misfit.onnx")
    report_dir = tmp_path / "report"
    code, out, err = run(capfd, path, "--dataset", "mnist", "--provider", "cpu", "--limit", "10", "--report-dir", report_dir, *FAST)
    assert (code, out) == (13, "")
    lines = err.splitlines()  # capfd: ORT's own log on file descriptor 2 would show here too
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("Error: ONNX Runtime failed to run misfit.onnx on mnist images: Non-zero status code returned while running Reshape node.")
    assert lines[0].endswith(" - check that the model takes the dataset's images")
    assert not report_dir.exists()


def test_npz_samples_of_an_unusable_shape(mnist: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str], mnist_test: _datasets.Dataset) -> None:
    npz = tmp_path / "odd.npz"
    np.savez(npz, x=mnist_test.images[:20].reshape(20, 1, 1, 28, 28), y=mnist_test.labels[:20])
    message = "odd samples have shape (1, 1, 28, 28), not (H, W), (H, W, C) or flat (F,) - store the images as (N, H, W), (N, H, W, C) or (N, F)"
    assert_fails(capfd, tmp_path, [mnist.fp32, "--dataset", npz, "--provider", "cpu"], 9, message)


def test_recorded_layout_does_not_mask_a_dataset_mismatch(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """A CIFAR-10 model whose metadata records 'nhwc', evaluated on MNIST: the error is the shape mismatch."""
    import onnx
    from onnx import helper

    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("ReduceMax", ["f"], ["y"], axes=[1], keepdims=1)],
        "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 32, 32, 3])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    helper.set_model_props(model, {"halfconv.preprocess": '{"layout": "nhwc", "scale": 0.00392156862745098}'})
    path = tmp_path / "cifar.onnx"
    onnx.save(model, str(path))
    code = main(["evaluate", str(path), "--dataset", "mnist", "--provider", "cpu", "--data-dir", str(DATA_DIR), "--report-dir", str(tmp_path / "r")])
    err = capfd.readouterr().err
    assert code == 13
    assert err.startswith("Error: cifar.onnx expects input (N, 32, 32, 3) but mnist images are 28x28")
    assert not (tmp_path / "r").exists()


# -- fp16 numbers on the CPU --------------------------------------------------------------------


def _rescaled(weights: np.ndarray, bias: np.ndarray, scale: float) -> onnx.ModelProto:
    """The classifier with its logits computed scale times too large, then scaled back.

    With a power of two the float32 function is exactly the same; the hidden values pass
    float16's 65504 once scale times the logits does.
    """
    nodes = [
        helper.make_node("Flatten", ["input"], ["flat"], name="flatten", axis=1),
        helper.make_node("MatMul", ["flat", "W"], ["mm"], name="matmul"),
        helper.make_node("Add", ["mm", "b"], ["big"], name="add"),
        helper.make_node("Mul", ["big", "s"], ["logits"], name="unscale"),
    ]
    graph = helper.make_graph(
        nodes,
        "rescaled",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 784])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        [
            numpy_helper.from_array((weights * scale).astype(np.float32), "W"),
            numpy_helper.from_array((bias * scale).astype(np.float32), "b"),
            numpy_helper.from_array(np.array([1 / scale], np.float32), "s"),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_an_overflowing_model_gets_the_accuracy_fp16_storage_gives(
    mnist: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str], mnist_test: _datasets.Dataset
) -> None:
    from onnx.reference import ReferenceEvaluator

    fp32 = save(_rescaled(mnist.weights, mnist.bias, 2.0**15), tmp_path / "big" / "model.onnx")
    fp16 = Path(convert(fp32, ConvertOptions(allow_nonfinite=True)).output_path)
    limit = 300
    emulated = evaluate_ok(capfd, fp16, tmp_path / "emulated", "--dataset", "mnist", "--limit", str(limit))
    native = evaluate_ok(capfd, fp16, tmp_path / "native", "--dataset", "mnist", "--limit", str(limit), "--numerics", "native")
    assert_valid(emulated)
    assert emulated["fp16"]["numerics"] == f"fp16 storage emulated on {CPU}"
    assert native["fp16"]["numerics"] == f"native ({CPU}; fp16 activations were not rounded)"

    # What fp16 really computes: ONNX's reference evaluator runs every op of the fp16 model in fp16.
    x = mnist_test.images[:limit].reshape(limit, -1).astype(np.float32) / np.float32(255)
    with np.errstate(over="ignore", invalid="ignore"):  # the overflow is the point
        (logits,) = ReferenceEvaluator(str(fp16)).run(None, {"input": x})
    comparable = np.nan_to_num(logits, nan=-np.inf)
    reference = np.where(np.all(comparable == -np.inf, axis=1), -1, np.argmax(comparable, axis=1))  # all NaN: no class
    labels = mnist_test.labels[:limit]
    assert emulated["fp16"]["correct"] == int((reference == labels).sum())
    assert emulated["fp16"]["nonfinite_outputs"] == int((~np.isfinite(logits)).sum()) > 0
    # The float32 model is unchanged by the rescaling; fp16 collapses, and ORT's CPU result hides it.
    assert emulated["fp32"]["correct"] == native["fp32"]["correct"] == native["fp16"]["correct"]
    assert emulated["accuracy_delta_pp"] < -20
    assert emulated["comparison"]["mcnemar_p"] < 1e-6
    assert emulated["comparison"]["delta_ci95_pp"][1] < -20


def test_max_drop_fails_with_exit_14_after_writing_the_report(
    mnist: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    fp32 = save(_rescaled(mnist.weights, mnist.bias, 2.0**15), tmp_path / "big" / "model.onnx")
    fp16 = Path(convert(fp32, ConvertOptions(allow_nonfinite=True)).output_path)
    report_dir = tmp_path / "gate"
    code, out, err = run(capfd, fp16, "--dataset", "mnist", "--limit", "300", "--provider", "cpu", "--report-dir", report_dir, *FAST, "--max-drop", "1")
    assert code == 14
    report = json.loads((report_dir / "report.json").read_text(encoding="utf-8"))
    drop = -report["accuracy_delta_pp"]
    low, high = report["comparison"]["delta_ci95_pp"]
    assert err == (
        f"Error: fp16 accuracy {report['fp16']['accuracy']:.2%} is {drop:.2f} pp below fp32 {report['fp32']['accuracy']:.2%}, "
        f"more than --max-drop 1 (95% interval of the change {low:+.2f} to {high:+.2f} pp, "
        f"McNemar p = {report['comparison']['mcnemar_p']:.3g}) - keep the sensitive nodes in float32 "
        "(see halfconv convert --explain); the report was written\n"
    )
    assert out.splitlines()[-1] == f"report: {report_dir / 'report.html'} (also report.md, report.json)"


def test_max_drop_passes_when_fp16_keeps_its_accuracy(mnist: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    report = evaluate_ok(capfd, mnist.fp16, tmp_path / "r", "--dataset", "mnist", "--limit", "300", "--max-drop", "0")
    assert report["accuracy_delta_pp"] == 0


@pytest.mark.parametrize("value", ["-1", "101", "lots"])
def test_max_drop_out_of_range_is_a_usage_error(mnist: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str], value: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", str(mnist.fp16), "--dataset", "mnist", "--max-drop", value])
    assert exit_info.value.code == 2
    assert "argument --max-drop" in capfd.readouterr().err


def test_a_float32_model_alone_says_it_ran_in_float32(mnist: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    for numerics in ("auto", "native"):
        report = evaluate_ok(capfd, mnist.fp32, tmp_path / numerics, "--dataset", "mnist", "--limit", "100", "--numerics", numerics)
        assert report["model"]["numerics"] == f"float32 on {CPU}"
        assert not any("not rounded" in note for note in report["notes"])


def test_max_drop_without_a_baseline_is_refused_before_anything_runs(
    mnist: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    alone = tmp_path / "alone.onnx"
    shutil.copyfile(mnist.fp32, alone)
    message = "--max-drop needs a float32 baseline to compare with - pass --baseline FP32.onnx"
    assert_fails(capfd, tmp_path, [alone, "--dataset", "mnist", "--max-drop", "1"], 2, message)


def test_a_drop_of_exactly_max_drop_passes(mnist: Trained, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    from halfconv.evaluation import accuracy_gate

    report = evaluate(mnist.fp16, EvaluateOptions(dataset="mnist", provider="cpu", limit=200, iters=1, warmup=0, latency_batch_sizes=(1,)))
    converted = report.converted
    assert converted is not None
    # One image fewer out of 200 is a drop of 0.5 pp, which float arithmetic makes 0.5000000000000004.
    worse = dataclasses.replace(report, models=(report.models[0], dataclasses.replace(converted, correct=report.models[0].correct - 1)))
    accuracy_gate(worse, 0.5)
    with pytest.raises(AccuracyGateError, match=r"is 0\.50 pp below"):
        accuracy_gate(worse, 0.49)
