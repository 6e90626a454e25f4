"""halfconv: convert float32 ONNX models to float16, keep sensitive ops in float32, prove accuracy.

The package is built from one subpackage per concept (``ls -R`` shows the design):
``core`` (errors, sessions and providers, model files), ``numerics`` (fp16 storage
emulated on the CPU), ``conversion``, ``datasets``, ``evaluation``, ``calibration``
(fp32 decisions measured on training images, within an accuracy budget), ``report`` and
``exporters``; ``run`` composes them and ``cli`` is a thin layer over this public surface.
"""

from __future__ import annotations

__all__ = [
    "AccuracyGateError",
    "ConversionError",
    "ConversionResult",
    "ConversionStats",
    "ConvertOptions",
    "Dataset",
    "DatasetError",
    "EvaluateOptions",
    "EvaluationReport",
    "ExportError",
    "ExportOptions",
    "ExportResult",
    "HalfconvError",
    "IncompatibleModelError",
    "InputNotFoundError",
    "InvalidModelError",
    "MissingDependencyError",
    "ModelEvaluation",
    "NothingToConvertError",
    "OutputError",
    "ProviderError",
    "RunOptions",
    "RunOutcome",
    "UsageError",
    "ValidationFailedError",
    "ValidationReport",
    "__version__",
    "convert",
    "cpu_model",
    "evaluate",
    "export",
    "load_dataset",
    "run",
    "write_report",
]

from typing import TYPE_CHECKING

from .conversion import ConversionResult, ConversionStats, ConvertOptions, ValidationReport
from .core import (
    AccuracyGateError,
    ConversionError,
    DatasetError,
    ExportError,
    HalfconvError,
    IncompatibleModelError,
    InputNotFoundError,
    InvalidModelError,
    MissingDependencyError,
    NothingToConvertError,
    OutputError,
    ProviderError,
    UsageError,
    ValidationFailedError,
    __version__,
    lazy_exports,
)
from .datasets import Dataset, load_dataset
from .evaluation import EvaluateOptions, EvaluationReport, ModelEvaluation
from .exporters import ExportOptions, ExportResult
from .report import write_report

if TYPE_CHECKING:
    from ._run import RunOptions, RunOutcome, run
    from .conversion import convert
    from .core import cpu_model
    from .evaluation import evaluate
    from .exporters import export

__getattr__, __dir__ = lazy_exports(__name__, (".conversion", ".core", ".evaluation", ".exporters", "._run"))
