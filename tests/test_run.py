"""``halfconv run``: export (unless ONNX), convert, evaluate, report, in one command.

The runs call ``halfconv.cli.main`` in-process with ``capfd``: ONNX Runtime writes to file
descriptor 2 directly, which ``capsys`` would not see. The expectations are this machine's:
the CPU provider, and no usable CUDA.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import halfconv
from environment import require_module
from halfconv.cli import main

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "models" / "mnist_mlp_torch" / "model.onnx"
TIMING = ["--latency-batch-sizes", "1,16", "--iters", "3", "--warmup", "1", "--quiet"]


@pytest.fixture(scope="module")
def fast(data_dir: Path) -> list[str]:
    """Few latency runs, no progress bar, and the canonical datasets."""
    return [*TIMING, "--data-dir", str(data_dir)]


def run(capfd: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capfd.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def mnist_onnx(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import onnx

    from halfconv.datasets import load_dataset
    from trained_models import linear_classifier, train_softmax_regression

    train = load_dataset("mnist", "train", data_dir=data_dir)
    weights, bias = train_softmax_regression(train.images[:20000], train.labels[:20000], epochs=1)
    path = tmp_path_factory.mktemp("run") / "lr.onnx"
    onnx.save(linear_classifier(weights, bias, ["N", 1, 28, 28]), str(path))
    return path


@pytest.fixture(scope="module")
def cuda_reason() -> str:
    """Why ONNX Runtime cannot create a CUDA session: this machine has no usable CUDA."""
    from halfconv.core import cuda_unavailable_reason

    reason = cuda_unavailable_reason()
    assert reason is not None, "these tests pin a machine without CUDA, but a CUDA session could be created here"
    return reason


def test_run_on_onnx_model(mnist_onnx: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str], fast: list[str]) -> None:
    report_dir = tmp_path / "report"
    before = mnist_onnx.read_bytes()
    code, out, err = run(capfd, "run", str(mnist_onnx), "--dataset", "mnist", "--limit", "500", "--provider", "cpu", "--report-dir", str(report_dir), *fast)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[:8] == [
        f"[1/2] converted {mnist_onnx} -> {report_dir / 'lr.fp16.onnx'} (3 nodes converted, 0 kept float32, 2 casts; validation passed)",
        "      calibrated on 512 mnist train images, budget checked on 2,000: 0 node(s) kept float32 by measurement, "
        "validation drop -0.05 pp (budget 0.1 pp), 2 evaluations",
        "[2/2] evaluated on mnist test (500 images, CPUExecutionProvider)",
        "",
        "accuracy   fp32 90.20%   fp16 90.20%   change 0.00 pp   agreement 100.00%",
        "paired     0 right to wrong, 0 wrong to right; 95% interval -0.39 to +0.39 pp; McNemar p = 1",
        "numerics   fp16 storage emulated on CPUExecutionProvider",
        # The fp16 size includes its metadata: the path to the source (../../run0/lr.onnx) and the calibration record.
        "size       0.55x of fp32 (17,500 vs 31,614 bytes)",
    ]
    # The latency ratio is the one figure that varies from run to run.
    assert re.fullmatch(r"latency    \d+\.\d\dx of fp32 at batch 16 \(p50, CPUExecutionProvider\)", lines[8]), lines[8]
    assert lines[9:] == [f"report     {report_dir / 'report.html'}"]
    assert sorted(p.name for p in report_dir.iterdir()) == ["lr.fp16.onnx", "report.html", "report.json", "report.md"]
    report = json.loads((report_dir / "report.json").read_text())
    assert report["dataset"]["num_images"] == 500 and report["baseline_source"] == "--baseline"
    assert report["fp32"]["path"] == str(mnist_onnx)
    assert (report["fp32"]["correct"], report["fp16"]["correct"], report["accuracy_delta_pp"]) == (451, 451, 0.0)
    assert mnist_onnx.read_bytes() == before  # the input is never touched

    # A rerun replaces the folder's previous results without --force.
    code, _, err = run(capfd, "run", str(mnist_onnx), "--dataset", "mnist", "--limit", "100", "--provider", "cpu", "--report-dir", str(report_dir), *fast)
    assert (code, err) == (0, "")
    assert json.loads((report_dir / "report.json").read_text())["dataset"]["num_images"] == 100


def test_run_auto_provider_reports_the_fallback(
    mnist_onnx: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str], fast: list[str], cuda_reason: str
) -> None:
    code, out, err = run(capfd, "run", str(mnist_onnx), "--dataset", "mnist", "--limit", "64", "--report-dir", str(tmp_path / "r"), *fast)
    assert code == 0
    # One line, and nothing from ONNX Runtime's failed CUDA session on the descriptor.
    assert err == f"Warning: ran on CPUExecutionProvider: CUDA unavailable: {cuda_reason}\n"
    assert out.splitlines()[2] == "[2/2] evaluated on mnist test (64 images, CPUExecutionProvider)"
    assert "CPU FALLBACK" in (tmp_path / "r" / "report.md").read_text()


def test_run_bad_dataset_leaves_no_report(mnist_onnx: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str], fast: list[str]) -> None:
    code, out, err = run(capfd, "run", str(mnist_onnx), "--dataset", "cifar10", "--provider", "cpu", "--report-dir", str(tmp_path / "r"), *fast)
    assert code == 13
    assert out == ""  # the calibration on cifar10's training split finds the mismatch before anything is converted
    assert err.count("\n") == 1 and err.startswith("Error: lr.onnx expects input (N, 1, 28, 28) but cifar10 images are 32x32x3")
    assert not (tmp_path / "r").exists()


def test_run_missing_model(tmp_path: Path, capfd: pytest.CaptureFixture[str], fast: list[str]) -> None:
    missing = tmp_path / "none.onnx"
    code, out, err = run(capfd, "run", str(missing), "--dataset", "mnist", "--report-dir", str(tmp_path / "r"), *fast)
    assert (code, out) == (3, "")
    assert err == f"Error: {missing}: no such file or directory - check the path\n"
    assert sorted(tmp_path.iterdir()) == []


@pytest.mark.torch
def test_run_exports_a_torch_state_dict(tmp_path: Path, capfd: pytest.CaptureFixture[str], fast: list[str]) -> None:
    torch = require_module("torch")
    require_module("onnxscript")
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
        capfd, "run", str(tmp_path / "net.pt"), "--dataset", "mnist", "--torch-factory", f"{factory}:make_model",
        "--limit", "200", "--provider", "cpu", "--report-dir", str(report_dir), *fast,
    )
    assert code == 0, err
    assert out.splitlines()[0].startswith(f"[1/3] exported {tmp_path / 'net.pt'} -> {report_dir / 'net.onnx'} (state_dict")
    assert out.splitlines()[1].startswith("[2/3] converted")
    assert out.splitlines()[2].startswith("      calibrated on 512 mnist train images")
    assert out.splitlines()[3] == "[3/3] evaluated on mnist test (200 images, CPUExecutionProvider)"
    assert sorted(p.name for p in report_dir.iterdir()) == ["net.fp16.onnx", "net.onnx", "report.html", "report.json", "report.md"]
    metadata = json.loads(__import__("onnx").load(str(report_dir / "net.onnx")).metadata_props[0].value)
    assert metadata["dataset"] == "mnist" and metadata["layout"] == "nchw"


def test_run_on_reference_model(tmp_path: Path, capfd: pytest.CaptureFixture[str], fast: list[str]) -> None:
    """End to end on the bundled reference model, like the README's first command (with --limit).

    A copy beside the report folder: the converted model records the relative path to its
    source (here ../model.onnx), and so its size does not depend on where the checkout is.
    """
    model = tmp_path / "model.onnx"
    shutil.copyfile(REFERENCE, model)
    code, out, err = run(capfd, "run", str(model), "--dataset", "mnist", "--limit", "1000", "--provider", "cpu", "--report-dir", str(tmp_path / "r"), *fast)
    assert (code, err) == (0, "")
    assert out.splitlines()[4:8] == [
        "accuracy   fp32 97.80%   fp16 97.80%   change 0.00 pp   agreement 100.00%",
        "paired     0 right to wrong, 0 wrong to right; 95% interval -0.20 to +0.20 pp; McNemar p = 1",
        "numerics   fp16 storage emulated on CPUExecutionProvider",
        "size       0.51x of fp32 (414,032 vs 819,578 bytes)",
    ]
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert (report["fp32"]["correct"], report["fp16"]["correct"], report["accuracy_delta_pp"]) == (978, 978, 0.0)
    assert (report["fp32"]["size_bytes"], report["fp16"]["size_bytes"]) == (819_578, 414_032)


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No network, no cache and an empty $HALFCONV_DATA_DIR: only the bundled MNIST test set is there."""
    from halfconv.datasets import _download

    def unreachable(url: str, timeout_s: float) -> None:
        raise OSError("network is unreachable")

    monkeypatch.setattr(_download, "_open_url", unreachable)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HALFCONV_DATA_DIR", str(tmp_path / "empty"))
    (tmp_path / "empty").mkdir()


@pytest.mark.usefixtures("offline")
def test_run_without_dataset_writes_nothing(mnist_onnx: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    report_dir = tmp_path / "r"
    code, out, err = run(capfd, "run", str(mnist_onnx), "--dataset", "cifar10", "--report-dir", str(report_dir), "--quiet")
    assert (code, out) == (9, "")
    assert err.startswith("Error: CIFAR-10 test files (test_batch, batches.meta, or cifar-10-python.tar.gz) not found in ")
    assert err.count("\n") == 1
    assert not report_dir.exists()


@pytest.mark.usefixtures("offline")
def test_the_first_run_works_offline_on_the_bundled_mnist_test_set(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """The README's first command: the test set ships with halfconv; the default calibration, which needs the training split, is skipped and says so."""
    report_dir = tmp_path / "r"
    code, out, err = run(capfd, "run", str(REFERENCE), "--dataset", "mnist", "--report-dir", str(report_dir), *TIMING)
    assert code == 0, err
    note = out.splitlines()[1]
    assert note.startswith("      note: not calibrated: MNIST train files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz) not found in ")
    assert "download failed" in note and note.endswith("(pass --data-dir with the training split, or --no-calibration)")
    report = json.loads((report_dir / "report.json").read_text())
    assert report["dataset"]["num_images"] == 10_000
    assert [Path(f["path"]).parent.parent.name for f in report["dataset"]["files"]] == ["bundled", "bundled"]
    assert report["fp16"]["conversion"]["calibration"] is None
    assert any(n.startswith("not calibrated: MNIST train files") for n in report["notes"])
    # Asked for explicitly, the calibration is not dropped: nothing is written.
    code, out, err = run(capfd, "run", str(REFERENCE), "--dataset", "mnist", "--calibration", "mnist", "--report-dir", str(tmp_path / "c"), *TIMING)
    assert (code, out) == (9, "")
    assert err.startswith("Error: MNIST train files") and err.count("\n") == 1
    assert not (tmp_path / "c").exists()


def test_run_calibrates_on_the_training_split_and_notes_the_time(
    mnist_onnx: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str], fast: list[str]
) -> None:
    code, out, _ = run(capfd, "run", str(mnist_onnx), "--dataset", "mnist", "--limit", "64", "--provider", "cpu", "--report-dir", str(tmp_path / "r"), *fast)
    assert code == 0
    assert out.splitlines()[1].startswith("      calibrated on 512 mnist train images, budget checked on 2,000:")
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    calibration = report["fp16"]["conversion"]["calibration"]
    assert (calibration["dataset"], calibration["split"], calibration["calibration_images"]) == ("mnist", "train", 512)
    assert [t["stage"] for t in calibration["trials"]] == ["float32", "candidate"]
    assert any(n.startswith("the calibration took ") for n in report["notes"])


def test_run_without_calibration_says_so(mnist_onnx: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str], fast: list[str], data_dir: Path) -> None:
    code, out, _ = run(capfd, "run", str(mnist_onnx), "--dataset", "mnist", "--limit", "64", "--provider", "cpu", "--no-calibration", "--report-dir", str(tmp_path / "r"), *fast)
    assert code == 0
    assert out.splitlines()[0] == "note: activation ranges and accuracy are not measured before conversion (--no-calibration)"
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["fp16"]["conversion"]["calibration"] is None
    assert "Activation ranges and accuracy were not measured" in (tmp_path / "r" / "report.md").read_text()
    # An .npz has no training split: no calibration unless one is named.
    test = halfconv.load_dataset("mnist", "test", data_dir=data_dir)
    npz = tmp_path / "few.npz"
    np.savez(npz, x=test.images[:64], y=test.labels[:64])
    code, out, _ = run(capfd, "run", str(mnist_onnx), "--dataset", str(npz), "--provider", "cpu", "--report-dir", str(tmp_path / "n"), *fast)
    assert code == 0
    assert out.splitlines()[0] == f"note: activation ranges and accuracy are not measured before conversion ({npz} has no training split; pass --calibration)"
    code, _, err = run(capfd, "run", str(mnist_onnx), "--dataset", "mnist", "--calibration", "mnist", "--no-calibration", *fast)
    assert code == 2 and "contradict" in err


def test_run_with_onnxconverter_common_skips_the_default_calibration(
    mnist_onnx: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str], fast: list[str]
) -> None:
    code, out, _ = run(capfd, "run", str(mnist_onnx), "--dataset", "mnist", "--limit", "64", "--provider", "cpu", "--engine", "onnxconverter-common", "--report-dir", str(tmp_path / "r"), *fast)
    assert code == 0
    assert out.splitlines()[0] == "note: activation ranges and accuracy are not measured before conversion (--engine onnxconverter-common takes no calibration)"


def test_a_failed_run_removes_the_folders_it_made(tmp_path: Path, capfd: pytest.CaptureFixture[str], fast: list[str]) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    code, _, err = run(capfd, "run", str(broken), "--dataset", "mnist", "--provider", "cpu", "--report-dir", str(tmp_path / "a" / "b" / "c"), *fast)
    assert code == 4 and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.onnx"]


def test_run_refuses_what_is_not_a_file(tmp_path: Path, capfd: pytest.CaptureFixture[str], fast: list[str]) -> None:
    fifo = tmp_path / "model.onnx"
    os.mkfifo(fifo)
    code, _, err = run(capfd, "run", str(fifo), "--dataset", "mnist", "--report-dir", str(tmp_path / "r"), *fast)
    assert code == 3
    assert err == f"Error: {fifo} is not a regular file or a model folder - pass a model file or a SavedModel folder\n"
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--iters", "1000000000000", "--iters 1,000,000,000,000 is more than 1,000,000 runs"),
        ("--latency-batch-sizes", "99999999999999999999", "--latency-batch-sizes 99,999,999,999,999,999,999 is more than 65,536 images"),
        ("--batch-size", "1000000", "--batch-size 1,000,000 is more than 65,536 images"),
    ],
)
def test_sizes_from_the_command_line_are_bounded(
    mnist_onnx: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str], fast: list[str], flag: str, value: str, message: str
) -> None:
    code, _, err = run(capfd, "run", str(mnist_onnx), "--dataset", "mnist", "--report-dir", str(tmp_path / "r"), *fast, flag, value)
    assert code == 2 and err.startswith(f"Error: {message}") and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_export_bounds_the_input_shape(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capfd, "export", str(REFERENCE.with_suffix(".pt")), "--input-shape", "99999,99999", "-o", str(tmp_path / "x.onnx"))
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("Error: --input-shape 99999,99999 has 9,999,800,001 elements per sample, more than 16,777,216")
    assert not (tmp_path / "x.onnx").exists()
