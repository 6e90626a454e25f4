"""The framework-independent part of ``halfconv export``: detection, validation, errors."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import parser

import halfconv.exporters
from halfconv.cli import main
from halfconv.core import one_line
from halfconv.exporters import ExportOptions, detect_framework, export
from halfconv.exporters import _pipeline as _export

# The back-end modules that import torch, and those that import TensorFlow.
TORCH_BACK_END = ("_torch", "_torch_export", "_torch_factory")
KERAS_BACK_END = ("_keras", "_saved_model", "_tensorflow")


class FakeModel:
    """A framework model whose ONNX export is y = 2x, while the framework computes ``factor`` * x."""

    framework = "torch"
    description = "fake model"
    input_shape = (4,)

    def __init__(self, factor: float, compute_dtype: str = "float32") -> None:
        self.factor = factor
        self.compute_dtype = compute_dtype

    def float32_rebuild(self) -> FakeModel:
        return FakeModel(2.0)

    def run(self, x: np.ndarray) -> np.ndarray:
        return (x * self.factor).astype(np.float32)

    def export(self, path: Path, input_shape: tuple[int, ...], opset: int) -> tuple[str, list[str]]:
        model = parser.parse_model(
            """<ir_version: 8, opset_import: ["" : 17]>
            g (float[N,4] input) => (float[N,4] logits) {
              two = Constant <value = float {2.0}> ()
              logits = Mul(input, two)
            }"""
        )
        onnx.save(model, str(path))
        return "fake exporter", []


def test_export_validates_against_the_framework(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "m.pt"
    source.write_bytes(b"weights")
    monkeypatch.setattr(_export, "_load", lambda path, framework, options: FakeModel(2.0))
    result = export(source, ExportOptions(output=tmp_path / "m.onnx"))
    assert result.max_abs_diff == 0.0 and result.validation_inputs == "random" and result.validation_samples == 64
    assert result.input_shape == (4,) and result.exporter == "fake exporter"
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
    assert meta["halfconv.preprocess"] == '{"layout": "flat", "mean": [0.0], "scale": 0.00392156862745098, "std": [1.0]}'
    assert meta["halfconv.export"] == '{"compute_dtype": "float32", "framework": "torch"}'


def test_tolerance_fits_the_precision_the_model_computes_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    """A 0.5% difference fails at float32's tolerance and passes at float16's, which also writes the baseline."""
    source = tmp_path / "m.pt"
    source.write_bytes(b"weights")
    monkeypatch.setattr(_export, "_load", lambda path, framework, options: FakeModel(2.01, "float32"))
    assert main(["export", str(source), "-o", str(tmp_path / "a.onnx")]) == 11
    assert "(tolerance 0.0002 for a model that computes in float32)" in capfd.readouterr().err
    monkeypatch.setattr(_export, "_load", lambda path, framework, options: FakeModel(2.01, "float16"))
    result = export(source, ExportOptions(output=tmp_path / "b.onnx", fp32_baseline=True))
    assert result.compute_dtype == "float16" and result.tolerance == pytest.approx(2.01 * 20 * 2**-11, rel=0.01)
    assert result.baseline is not None and result.baseline.max_abs_diff == 0.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.fp32.onnx", "b.onnx", "m.pt"]


def test_export_that_diverges_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "m.pt"
    source.write_bytes(b"weights")
    monkeypatch.setattr(_export, "_load", lambda path, framework, options: FakeModel(2.01))
    code = main(["export", str(source), "-o", str(tmp_path / "m.onnx")])
    err = capfd.readouterr().err
    assert code == 11
    assert err.startswith("Error: the ONNX export differs from the torch model by up to ")
    assert err.rstrip().endswith("- the exporter mistranslated an op; try another --opset")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]


def _unload(monkeypatch: pytest.MonkeyPatch, modules: tuple[str, ...]) -> None:
    """Forget the imported back-end modules, so that the next export imports them again."""
    for name in modules:
        monkeypatch.delitem(sys.modules, f"halfconv.exporters.{name}", raising=False)
        monkeypatch.delattr(halfconv.exporters, name, raising=False)  # an earlier import binds it on the package


def test_missing_torch_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "m.pt"
    source.write_bytes(b"\x80\x02")  # a legacy torch.save pickle header
    monkeypatch.setitem(sys.modules, "torch", None)  # importing torch now raises ImportError
    _unload(monkeypatch, TORCH_BACK_END)
    code = main(["export", str(source)])
    err = capfd.readouterr().err
    assert code == 12
    assert err == "Error: exporting PyTorch models needs torch and onnxscript (torch is missing) - pip install torch 'halfconv[torch]'\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]


def test_missing_keras_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "m.keras"
    source.write_bytes(b"not a zip")
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    _unload(monkeypatch, KERAS_BACK_END)
    code = main(["export", str(source), "--framework", "keras"])
    err = capfd.readouterr().err
    assert code == 12
    assert err.startswith("Error: exporting Keras models needs TensorFlow and tf2onnx (")
    assert err.endswith("- pip install 'halfconv[keras]'\n")


@pytest.mark.parametrize(
    ("name", "content", "framework"),
    [
        ("m.h5", b"\x89HDF\r\n\x1a\n", "keras"),
        ("m.keras", b"not a zip", "keras"),
        ("m.pt2", b"x", "torch"),
        ("m.pth", b"\x80\x02", "torch"),
    ],
)
def test_detect_framework(tmp_path: Path, name: str, content: bytes, framework: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert detect_framework(path) == framework


def test_unknown_file_and_bad_options(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    assert main(["export", str(path)]) == 11
    assert capfd.readouterr().err.startswith(f"Error: {path} is neither a Keras model")
    assert main(["export", str(path), "--framework", "torch", "--opset", "3"]) == 2
    assert capfd.readouterr().err == "Error: --opset 3 is out of range - use an opset from 7 to 23; 17 or 18 suits most models\n"
    assert main(["export", str(tmp_path / "none.pt")]) == 3


def test_a_torch_export_failure_reads_as_its_summary() -> None:
    """torch.export's report is long and coloured; the error message quotes its summary line."""
    error = RuntimeError(
        "Failed to export the model with torch.export. \x1b[96mThis is step 1/3\x1b[0m of exporting.\n\n"
        "## Exception summary\n\n<class 'torch._dynamo.exc.Unsupported'>: Dynamic control flow\n\nmore\n"
    )
    assert one_line(error) == "Unsupported: Dynamic control flow"
