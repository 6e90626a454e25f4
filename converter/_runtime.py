"""Choosing the ONNX Runtime execution provider and saying which one actually ran.

ONNX Runtime falls back to the CPU, with only a log line, when the CUDA provider cannot be
created (missing CUDA or cuDNN libraries, no GPU). halfconv never lets that pass silently:
``--provider cuda`` fails with ORT's own reason, and ``--provider auto`` records the reason
in the report and prints it.
"""

from __future__ import annotations

__all__ = [
    "ORT_ERRORS",
    "ORT_NUMPY_TYPES",
    "PROVIDERS",
    "ResolvedProvider",
    "cpu_model",
    "create_session",
    "cuda_unavailable_reason",
    "ort_error_text",
    "resolve_provider",
]

import contextlib
import dataclasses
import functools
import os
import platform
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as _ort_errors

from converter._errors import InvalidModelError, ProviderError, UsageError

PROVIDERS = ("auto", "cuda", "cpu")
# ONNX Runtime's tensor type strings and the numpy dtypes of their values.
ORT_NUMPY_TYPES: dict[str, type[np.generic]] = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int16)": np.int16,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(uint16)": np.uint16,
    "tensor(uint32)": np.uint32,
    "tensor(uint64)": np.uint64,
    "tensor(bool)": np.bool_,
}
_CUDA = "CUDAExecutionProvider"
_CPU = "CPUExecutionProvider"


@dataclasses.dataclass(frozen=True)
class ResolvedProvider:
    requested: str
    actual: str  # the ORT provider name that runs the models
    device: str  # "cuda" or "cpu", for OrtValue placement
    fallback_reason: str | None
    device_name: str | None


@contextlib.contextmanager
def _captured_stderr() -> Iterator[list[str]]:
    """Capture what native code writes to file descriptor 2 (ORT logs there, not to sys.stderr)."""
    captured: list[str] = []
    with tempfile.TemporaryFile() as sink:
        saved = os.dup(2)
        try:
            os.dup2(sink.fileno(), 2)
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.append(sink.read().decode(errors="replace"))


def _reason_from_log(log: str) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", log)
    for pattern in (r"with error: ([^\n]+)", r"Failed to create CUDAExecutionProvider\. ([^\n]+)", r"\] ([^\n]*CUDA[^\n]*)"):
        match = re.search(pattern, text)
        if match:
            return match.group(1).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "ONNX Runtime did not say why"


def _probe_model() -> bytes:
    """A one-node float model: enough for ORT to load the CUDA libraries."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    return model.SerializeToString()


@functools.lru_cache(maxsize=1)
def cuda_unavailable_reason() -> str | None:
    """None when a CUDA provider session can really be created here, else ORT's reason."""
    if _CUDA not in ort.get_available_providers():
        return f"this onnxruntime build ({ort.__version__}) has no CUDA provider; install onnxruntime-gpu"
    options = ort.SessionOptions()
    options.log_severity_level = 1
    with _captured_stderr() as log:
        try:
            session = ort.InferenceSession(_probe_model(), options, providers=[_CUDA])
            providers = session.get_providers()
        except Exception as error:  # noqa: BLE001 - ORT raises several types
            providers = []
            log_text_error = str(error)
        else:
            log_text_error = ""
    if _CUDA in providers:
        return None
    return _reason_from_log((log[0] if log else "") + "\n" + log_text_error)


def _gpu_name() -> str | None:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        completed = subprocess.run(
            [smi, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    names = [line.strip() for line in completed.stdout.splitlines() if line.strip()]
    return names[0] if names else None


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def resolve_provider(requested: str) -> ResolvedProvider:
    """Decide once which provider runs the models; raises ProviderError for an unusable cuda."""
    if requested not in PROVIDERS:
        raise UsageError(f"unknown provider '{requested}'", "use auto, cuda or cpu")
    if requested == "cpu":
        return ResolvedProvider(requested, _CPU, "cpu", None, None)
    reason = cuda_unavailable_reason()
    if reason is None:
        return ResolvedProvider(requested, _CUDA, "cuda", None, _gpu_name())
    if requested == "cuda":
        raise ProviderError(
            f"the CUDA execution provider cannot be created: {reason}",
            "install the CUDA and cuDNN libraries (pip install 'halfconv[cuda]') or use --provider cpu",
        )
    return ResolvedProvider(requested, _CPU, "cpu", f"CUDA unavailable: {reason}", None)


# What ORT raises for a model it cannot load or run (the pybind classes derive from Exception only).
ORT_ERRORS = (
    _ort_errors.Fail,
    _ort_errors.InvalidGraph,
    _ort_errors.InvalidArgument,
    _ort_errors.NotImplemented,
    _ort_errors.RuntimeException,
)


def ort_error_text(error: Exception) -> str:
    """ORT's message on one line, without its "[ONNXRuntimeError] : 1 : FAIL : " prefix."""
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", str(error).strip())
    return text.splitlines()[0] if text else type(error).__name__


def create_session(
    path: Path, provider: ResolvedProvider, *, intra_op_threads: int = 0, inter_op_threads: int = 0
) -> ort.InferenceSession:
    """An ORT session on exactly the resolved provider; raises ProviderError if ORT swapped it."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = inter_op_threads
    providers = [provider.actual] if provider.actual == _CPU else [provider.actual, _CPU]
    try:
        session = ort.InferenceSession(str(path), options, providers=providers)
    except ORT_ERRORS as error:
        # A model that parses but that ORT refuses (shapes that do not fit, an unknown op).
        raise InvalidModelError(
            f"ONNX Runtime cannot load {path.name}: {ort_error_text(error)}", "check the model with onnx.checker or re-export it"
        ) from None
    if session.get_providers()[0] != provider.actual:
        raise ProviderError(
            f"ONNX Runtime ran {path.name} on {session.get_providers()[0]} instead of {provider.actual}",
            "use --provider cpu",
        )
    return session
