"""Names of the ONNX Runtime execution providers halfconv chooses between.

Kept apart from the session code so that option parsing can offer the choices without
importing onnxruntime.
"""

from __future__ import annotations

__all__ = ["CPU_PROVIDER", "CUDA_PROVIDER", "PROVIDERS", "ResolvedProvider"]

import dataclasses

PROVIDERS = ("auto", "cuda", "cpu")
CUDA_PROVIDER = "CUDAExecutionProvider"
CPU_PROVIDER = "CPUExecutionProvider"


@dataclasses.dataclass(frozen=True)
class ResolvedProvider:
    """The provider that runs the models, decided once per command."""

    requested: str  # auto | cuda | cpu
    actual: str  # the ORT provider name that runs the models
    device: str  # "cuda" or "cpu", for OrtValue placement
    fallback_reason: str | None  # why auto did not get CUDA
    device_name: str | None  # the GPU's name when CUDA runs
