"""``halfconv run``: export (unless ONNX), convert, evaluate, report, in one command."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from halfconv.cli import main

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("HALFCONV_DATA_DIR") or REPO.parent / "shared" / "datasets")
pytestmark = pytest.mark.skipif(not (DATA_DIR / "mnist").is_dir(), reason=f"no datasets in {DATA_DIR}")
FAST = ["--latency-batch-sizes", "1,16", "--iters", "3", "--warmup", "1", "--quiet", "--data-dir", str(DATA_DIR)]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def mnist_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import onnx

    from halfconv.datasets import load_dataset
    from trained_models import linear_classifier, train_softmax_regression

    train = load_dataset("mnist", "train", data_dir=DATA_DIR)
    weights, bias = train_softmax_regression(train.images[:20000], train.labels[:20000], epochs=1)
    path = tmp_path_factory.mktemp("run") / "lr.onnx"
    onnx.save(linear_classifier(weights, bias, ["N", 1, 28, 28]), str(path))
    return path


def test_run_on_onnx_model(mnist_onnx: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report_dir = tmp_path / "report"
    before = mnist_onnx.read_bytes()
    code, out, err = run(capsys, "run", str(mnist_onnx), "--dataset", "mnist", "--limit", "500", "--provider", "cpu", "--report-dir", str(report_dir), *FAST)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"[1/2] converted {mnist_onnx} -> {report_dir / 'lr.fp16.onnx'} (3 nodes converted, 0 kept float32, 2 casts; validation passed)")
    assert lines[1] == "[2/2] evaluated on mnist test (500 images, CPUExecutionProvider)"
    assert lines[2] == ""
    assert re.fullmatch(r"accuracy   fp32 \d+\.\d\d%   fp16 \d+\.\d\d%   change [+-]?\d+\.\d\d pp   agreement \d+\.\d\d%", lines[3])
    assert re.fullmatch(r"size       0\.5\dx of fp32 \([\d,]+ vs [\d,]+ bytes\)", lines[4])
    assert re.fullmatch(r"latency    \d+\.\d\dx of fp32 at batch 16 \(p50, CPUExecutionProvider\)", lines[5])
    assert lines[6] == f"report     {report_dir / 'report.html'}"
    assert err == ""
    assert sorted(p.name for p in report_dir.iterdir()) == ["lr.fp16.onnx", "report.html", "report.json", "report.md"]
    report = json.loads((report_dir / "report.json").read_text())
    assert report["dataset"]["num_images"] == 500 and report["baseline_source"] == "--baseline"
    assert report["fp32"]["path"] == str(mnist_onnx)
    assert abs(report["accuracy_delta_pp"]) <= 0.2
    assert mnist_onnx.read_bytes() == before  # the input is never touched

    # A rerun replaces the folder's previous results without --force.
    code, _, err = run(capsys, "run", str(mnist_onnx), "--dataset", "mnist", "--limit", "100", "--provider", "cpu", "--report-dir", str(report_dir), *FAST)
    assert code == 0, err
    assert json.loads((report_dir / "report.json").read_text())["dataset"]["num_images"] == 100


def test_run_auto_provider_reports_the_fallback(mnist_onnx: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from halfconv.core import cuda_unavailable_reason

    reason = cuda_unavailable_reason()
    if reason is None:
        pytest.skip("CUDA is usable here: no fallback to report")
    code, out, err = run(capsys, "run", str(mnist_onnx), "--dataset", "mnist", "--limit", "64", "--report-dir", str(tmp_path / "r"), *FAST)
    assert code == 0
    assert err == f"Warning: ran on CPUExecutionProvider: CUDA unavailable: {reason}\n"
    assert "CPU FALLBACK" in (tmp_path / "r" / "report.md").read_text()


def test_run_bad_dataset_leaves_no_report(mnist_onnx: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "run", str(mnist_onnx), "--dataset", "cifar10", "--provider", "cpu", "--report-dir", str(tmp_path / "r"), *FAST)
    assert code == 13
    assert err.count("\n") == 1 and err.startswith("Error: lr.onnx expects input (N, 1, 28, 28) but cifar10 images are 32x32x3")
    assert not (tmp_path / "r" / "report.json").exists()


def test_run_missing_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "run", str(tmp_path / "none.onnx"), "--dataset", "mnist", "--report-dir", str(tmp_path / "r"), *FAST)
    assert code == 3
    assert err.startswith("Error: ") and err.count("\n") == 1


@pytest.mark.torch
def test_run_exports_a_torch_state_dict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxscript")
    factory = tmp_path / "net.py"
    factory.write_text(
        "import torch\n\ndef make_model():\n"
        "    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))\n"
    )
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    torch.save(model.state_dict(), tmp_path / "net.pt")
    report_dir = tmp_path / "report"
    code, out, err = run(
        capsys, "run", str(tmp_path / "net.pt"), "--dataset", "mnist", "--torch-factory", f"{factory}:make_model",
        "--limit", "200", "--provider", "cpu", "--report-dir", str(report_dir), *FAST,
    )
    assert code == 0, err
    assert out.splitlines()[0].startswith(f"[1/3] exported {tmp_path / 'net.pt'} -> {report_dir / 'net.onnx'} (state_dict")
    assert out.splitlines()[1].startswith("[2/3] converted")
    assert out.splitlines()[2] == "[3/3] evaluated on mnist test (200 images, CPUExecutionProvider)"
    assert sorted(p.name for p in report_dir.iterdir()) == ["net.fp16.onnx", "net.onnx", "report.html", "report.json", "report.md"]
    metadata = json.loads(__import__("onnx").load(str(report_dir / "net.onnx")).metadata_props[0].value)
    assert metadata["dataset"] == "mnist" and metadata["layout"] == "nchw"


REFERENCE = REPO / "models" / "mnist_mlp_torch" / "model.onnx"


@pytest.mark.skipif(not REFERENCE.exists(), reason="reference model not exported")
def test_run_on_reference_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """End to end on a bundled reference model, like the README's first command (with --limit)."""
    code, out, err = run(capsys, "run", str(REFERENCE), "--dataset", "mnist", "--limit", "1000", "--provider", "cpu", "--report-dir", str(tmp_path / "r"), *FAST)
    assert code == 0, err
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["fp32"]["accuracy"] >= 0.95 and abs(report["accuracy_delta_pp"]) <= 0.1
    assert np.isclose(report["comparison"]["size_ratio"], 0.5, atol=0.02)


def test_run_without_dataset_writes_nothing(mnist_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from halfconv.datasets import _download

    def offline(url: str, timeout_s: float) -> None:
        raise OSError("network is unreachable")

    monkeypatch.setattr(_download, "_open_url", offline)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HALFCONV_DATA_DIR", str(tmp_path / "empty"))
    (tmp_path / "empty").mkdir()
    report_dir = tmp_path / "r"
    code = main(["run", str(mnist_onnx), "--dataset", "mnist", "--report-dir", str(report_dir), "--quiet"])
    err = capsys.readouterr().err
    assert code == 9
    assert err.startswith("Error: MNIST test files (t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) not found in ")
    assert not report_dir.exists()
