"""ONNX Runtime sessions: the one session factory, the one CUDA probe, and ORT's errors.

ONNX Runtime falls back to the CPU, with only a log line, when the CUDA provider cannot be
created (missing CUDA or cuDNN libraries, no GPU). halfconv never lets that pass silently:
``--provider cuda`` fails with ORT's own reason, and ``--provider auto`` records the reason
in the report and prints it. ORT writes its log to file descriptor 2 from native code, so
every session is built with that descriptor captured: nothing of ORT's log reaches the
user's terminal, and what it said becomes part of an error message where it explains one.
"""

from __future__ import annotations

__all__ = [
    "CUDNN_CONV_ALGO_SEARCH",
    "ORT_ERRORS",
    "ORT_NUMPY_TYPES",
    "cpu_model",
    "create_session",
    "cuda_unavailable_reason",
    "gpu_and_driver",
    "max_ir_version",
    "resolve_provider",
]

import contextlib
import functools
import os
import platform
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np
import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as _ort_errors

from ._errors import HalfconvError, InvalidModelError, ProviderError, UsageError
from ._providers import CPU_PROVIDER, CUDA_PROVIDER, PROVIDERS, ResolvedProvider
from ._text import choices_text, one_line

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

# How cuDNN picks a convolution algorithm on CUDA: it times every one on the first run of
# each input shape, which the latency warm-up covers (ORT's default, stated in reports).
CUDNN_CONV_ALGO_SEARCH = "EXHAUSTIVE"

# What ORT raises for a model it cannot load or run (the pybind classes derive from Exception only).
ORT_ERRORS: tuple[type[Exception], ...] = (
    _ort_errors.Fail,
    _ort_errors.InvalidGraph,
    _ort_errors.InvalidArgument,
    _ort_errors.NoSuchFile,
    _ort_errors.NotImplemented,
    _ort_errors.RuntimeException,
)
# ORT raises this when a provider has no kernel for a node's types (a bfloat16 model on the CPU).
_ORT_NO_KERNEL: type[Exception] = _ort_errors.NotImplemented
_CUDA_HINT = "install the CUDA and cuDNN libraries (pip install 'halfconv[cuda]') or use --provider cpu"


class _Fd2Capture:
    """File descriptor 2 sent to one temporary file while any session is being built.

    Sessions may be built in several threads at once (validation builds the converted
    model's session beside the numerics model's): the first capture redirects the
    descriptor, the last one restores it, and each reads back what was written meanwhile.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._saved: int | None = None
        self._sink: IO[bytes] | None = None

    def _start(self) -> int | None:
        with self._lock:
            if self._users == 0:
                try:
                    saved = os.dup(2)
                except OSError:  # no usable stderr (a daemon): nothing to capture
                    return None
                self._sink = tempfile.TemporaryFile()
                os.dup2(self._sink.fileno(), 2)
                self._saved = saved
            self._users += 1
            current = self._sink
            return os.lseek(current.fileno(), 0, os.SEEK_END) if current is not None else None

    def _stop(self, start: int) -> str:
        with self._lock:
            sink = self._sink
            text = ""
            if sink is not None:
                end = os.lseek(sink.fileno(), 0, os.SEEK_END)
                text = os.pread(sink.fileno(), end - start, start).decode(errors="replace")
            self._users -= 1
            if self._users == 0 and self._saved is not None:
                os.dup2(self._saved, 2)
                os.close(self._saved)
                if sink is not None:
                    sink.close()
                self._saved, self._sink = None, None
            return text

    @contextlib.contextmanager
    def __call__(self) -> Iterator[list[str]]:
        """Capture what native code writes to file descriptor 2; the text is in the list afterwards."""
        captured: list[str] = []
        start = self._start()
        if start is None:
            yield captured
            return
        try:
            yield captured
        finally:
            captured.append(self._stop(start))


_captured_fd2 = _Fd2Capture()


def _reason_from_log(log: str) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", log)
    patterns = (
        r"with error: ([^\n]+)",
        r"Failed to create CUDAExecutionProvider\. ([^\n]+)",
        r"\] ([^\n]*CUDA[^\n]*)",
    )
    for pattern in patterns:
        match = re.search(pattern, text)
        if match:
            return match.group(1).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "ONNX Runtime did not say why"


def _probe_model(ir_version: int = 8) -> bytes:
    """A one-node float model: enough for ORT to load the CUDA libraries, or to show the IR it reads."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=ir_version)
    data: bytes = model.SerializeToString()
    return data


@functools.lru_cache(maxsize=1)
def max_ir_version() -> int:
    """The newest ONNX IR version the installed ONNX Runtime reads (asked of it once, with a tiny model)."""
    import onnx

    newest = int(onnx.IR_VERSION)
    options = ort.SessionOptions()
    options.log_severity_level = 4
    try:
        with _captured_fd2():
            ort.InferenceSession(_probe_model(newest), options, providers=[CPU_PROVIDER])
    except ORT_ERRORS as error:
        match = re.search(r"max supported IR version: (\d+)", str(error))
        if match:
            return int(match.group(1))
    return newest


_PROBE_LOCK = threading.Lock()


def cuda_unavailable_reason() -> str | None:
    """None when a CUDA provider session can really be created here, else ORT's reason (probed once)."""
    with _PROBE_LOCK:  # validation may ask from two threads at once
        return _probe_cuda()


@functools.lru_cache(maxsize=1)
def _probe_cuda() -> str | None:
    if CUDA_PROVIDER not in ort.get_available_providers():
        return f"this onnxruntime build ({ort.__version__}) has no CUDA provider; install onnxruntime-gpu"
    options = ort.SessionOptions()
    options.log_severity_level = 1
    error_text = ""
    providers: list[str] = []
    with _captured_fd2() as log:
        try:
            providers = ort.InferenceSession(_probe_model(), options, providers=[CUDA_PROVIDER]).get_providers()
        except Exception as error:
            error_text = str(error)
    if CUDA_PROVIDER in providers:
        return None
    return _reason_from_log((log[0] if log else "") + "\n" + error_text)


@functools.lru_cache(maxsize=1)
def gpu_and_driver() -> tuple[str | None, str | None]:
    """The first GPU's name and the NVIDIA driver's version, from nvidia-smi (asked once); Nones where there is none."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None, None
    try:
        done = subprocess.run(
            [smi, "--query-gpu=name,driver_version", "--format=csv,noheader"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None, None
    rows = [line.split(",") for line in done.stdout.splitlines() if line.count(",") == 1]
    return (rows[0][0].strip(), rows[0][1].strip()) if rows else (None, None)


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name, for reports."""
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
        raise UsageError(f"unknown provider '{requested}'", "use " + choices_text(PROVIDERS))
    if requested == "cpu":
        return ResolvedProvider(requested, CPU_PROVIDER, "cpu", None, None)
    reason = cuda_unavailable_reason()
    if reason is None:
        return ResolvedProvider(requested, CUDA_PROVIDER, "cuda", None, gpu_and_driver()[0])
    if requested == "cuda":
        raise ProviderError(f"the CUDA execution provider cannot be created: {reason}", _CUDA_HINT)
    return ResolvedProvider(requested, CPU_PROVIDER, "cpu", f"CUDA unavailable: {reason}", None)


def create_session(
    path: Path,
    provider: ResolvedProvider,
    *,
    optimize: bool = True,
    intra_op_threads: int = 0,
    inter_op_threads: int = 0,
    strict: bool = False,
    profile_prefix: str | None = None,
) -> ort.InferenceSession:
    """An ORT session for ``path`` on exactly ``provider``, with ORT's log kept off the terminal.

    ``optimize=False`` turns ORT's graph optimisations off: they only fuse and fold, so they
    change neither which kernels must exist nor the results, and on big float16 graphs the
    CPU provider spends most of its session build in them.

    ``strict`` forbids ORT to place any node on the CPU when ``provider`` is CUDA (its
    ``session.disable_cpu_ep_fallback`` option): a fallback inside a float16 model costs
    copies and casts on every run. On CUDA, cuDNN searches every convolution algorithm
    (``CUDNN_CONV_ALGO_SEARCH``) on the first run of each input shape.

    Raises ProviderError when the provider has no kernel for a node (a bfloat16 model on
    the CPU, a node that strict placement cannot keep on CUDA) or ORT placed the model
    elsewhere, and InvalidModelError when ORT refuses the model itself.
    """
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = inter_op_threads
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    if profile_prefix is not None:  # ORT's own record of each node's provider (see ``_placement``)
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    providers: list[str | tuple[str, dict[str, str]]] = [CPU_PROVIDER]
    if provider.actual == CUDA_PROVIDER:
        providers = [(CUDA_PROVIDER, {"cudnn_conv_algo_search": CUDNN_CONV_ALGO_SEARCH}), CPU_PROVIDER]
        if strict:
            options.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    try:
        with _captured_fd2():
            session = ort.InferenceSession(str(path), options, providers=providers)
    except (*ORT_ERRORS, UnicodeDecodeError) as error:  # type: ignore[misc]  # a starred tuple of classes
        raise _load_error(path, provider, strict, error) from None
    if session.get_providers()[0] != provider.actual:
        raise ProviderError(
            f"ONNX Runtime ran {path.name} on {session.get_providers()[0]} instead of {provider.actual}",
            "use --provider cpu",
        )
    return session


def _load_error(path: Path, provider: ResolvedProvider, strict: bool, error: Exception) -> HalfconvError:
    """What a session that ORT would not build means: a provider without a kernel, a strict placement refused, or a bad model."""
    if isinstance(error, _ORT_NO_KERNEL):
        bfloat16 = "bfloat16" in str(error).lower() or "bfloat16" in _element_types(path)
        return ProviderError(
            f"{provider.actual} cannot run {path.name}: {one_line(error)}",
            "bfloat16 needs --provider cuda"
            if bfloat16 and provider.actual == CPU_PROVIDER
            else "ONNX Runtime has no kernel for that op at the model's opset: re-export it at a newer opset",
        )
    if strict and "fallback" in str(error).lower():
        return ProviderError(
            f"strict placement: ONNX Runtime would run part of {path.name} on the CPU: {one_line(error)}",
            "drop --strict-provider to allow it, or keep that node float32 where CUDA has a kernel",
        )
    # A model that parses but that ORT refuses (shapes that do not fit, an unknown op).
    return InvalidModelError(f"ONNX Runtime cannot load {path.name}: {one_line(error)}", "check the model with onnx.checker or re-export it")


def _element_types(path: Path) -> str:
    """The element types of the model's weights, as text ("float bfloat16"); empty when it cannot be read."""
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception:  # the caller reports ORT's own error
        return ""
    return " ".join(sorted({onnx.TensorProto.DataType.Name(t.data_type).lower() for t in proto.graph.initializer}))
