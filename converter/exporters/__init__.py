"""Export: a trained Keras or PyTorch model to a validated float32 ONNX model.

The back ends (``_keras``, ``_saved_model`` and ``_tensorflow``; ``_torch``,
``_torch_export`` and ``_torch_factory``) are the only modules that import TensorFlow or
torch, and they are imported only when an export runs.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_OPSET",
    "FRAMEWORKS",
    "ExportOptions",
    "ExportResult",
    "FrameworkModel",
    "detect_framework",
    "export",
    "preprocessing_metadata",
]

from typing import TYPE_CHECKING

from ..core import lazy_exports
from ._options import DEFAULT_OPSET, FRAMEWORKS, ExportOptions
from ._results import ExportResult

if TYPE_CHECKING:
    from ._pipeline import FrameworkModel, detect_framework, export, preprocessing_metadata

__getattr__, __dir__ = lazy_exports(__name__, ("._pipeline",))
