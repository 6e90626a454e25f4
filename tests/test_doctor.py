"""``halfconv doctor``: the runtime facts, the CUDA verdict and its exit code, the fix it names."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import onnxruntime as ort
import pytest

from halfconv import cli
from halfconv.core import _doctor
from halfconv.core._doctor import CUDA_FIX, LibraryFound, RuntimeFacts

REPO = Path(__file__).resolve().parents[1]


def _facts(**changes: object) -> RuntimeFacts:
    facts = RuntimeFacts(
        package="onnxruntime-gpu",
        version="1.31.1",
        providers=("CUDAExecutionProvider", "CPUExecutionProvider"),
        cuda_reason=None,
        libraries=(LibraryFound("cuBLAS", "13", "/x/libcublasLt.so.13"), LibraryFound("cuDNN", "9", "/x/libcudnn.so.9")),
        gpu="NVIDIA H200",
        driver="580.65",
    )
    return RuntimeFacts(**{**facts.__dict__, **changes})  # type: ignore[arg-type]


def test_on_this_machine(capfd: pytest.CaptureFixture[str], cuda_missing: str) -> None:
    code = cli.main(["doctor"])
    out, err = capfd.readouterr()
    assert (code, err) == (10, "")
    lines = out.splitlines()
    assert lines[0].startswith("onnxruntime      onnxruntime")
    assert lines[1] == f"providers        {', '.join(ort.get_available_providers())}"
    assert lines[2] == f"CUDA session     no: {cuda_missing}"
    assert [line.split()[0] for line in lines[3:6]] == ["cuBLAS", "cuDNN", "CUDA"]
    code = cli.main(["doctor", "--json"])
    record = json.loads(capfd.readouterr().out)
    assert code == 10 and record["cuda_ready"] is False and record["cuda_reason"] == cuda_missing
    assert record["providers"] == ort.get_available_providers()


@pytest.mark.parametrize(
    ("changes", "fix"),
    [
        ({}, None),
        ({"cuda_reason": "libcublasLt.so.13: cannot open shared object file", "libraries": (LibraryFound("cuBLAS", None, None),)}, CUDA_FIX),
        ({"cuda_reason": "no CUDA provider", "package": "onnxruntime", "providers": ("CPUExecutionProvider",)}, "pip uninstall -y onnxruntime && pip install onnxruntime-gpu && " + CUDA_FIX),
        ({"cuda_reason": "CUDA failure 100: no CUDA-capable device is detected", "gpu": None}, None),
    ],
)
def test_the_fix_it_names(changes: dict[str, object], fix: str | None) -> None:
    assert _facts(**changes).fix() == fix


def test_a_working_cuda_exits_0(capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_doctor, "runtime_facts", lambda: _facts())
    assert cli.main(["doctor"]) == 0
    out = capfd.readouterr().out
    assert "CUDA session     yes: --provider cuda works" in out
    assert "GPU              NVIDIA H200" in out and "driver           580.65" in out and "fix" not in out


def test_the_gpu_check_says_when_there_is_no_gpu(tmp_path: Path) -> None:
    """tests/gpu/check on a machine without an NVIDIA GPU: a distinct exit code, and the log says why."""
    if shutil.which("nvidia-smi"):
        pytest.skip("nvidia-smi is here: the check would run for real")
    log = tmp_path / "gpu-check.log"
    done = subprocess.run(
        ["bash", str(REPO / "tests" / "gpu" / "check")], env={**os.environ, "GPU_CHECK_LOG": str(log)},
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert log.read_text().splitlines()[-1] == "no NVIDIA GPU here (nvidia-smi is missing or lists none): nothing to prove on this machine"
