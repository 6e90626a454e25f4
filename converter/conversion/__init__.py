"""Conversion: plan from op schemas and policy, rewrite with onnx-ir, cast weights, validate.

``convert`` is the pipeline; ``FloatConversionPass`` is the engine as an onnx-ir pass for
in-memory models; the policy table says which ops stay float32 and why.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_KEEP_INPUTS",
    "DEFAULT_KEEP_OPS",
    "ENGINES",
    "FLOAT_ONLY_DOMAINS",
    "SCHEMA_VERSION",
    "TARGETS",
    "TARGET_TYPES",
    "ConversionResult",
    "ConversionStats",
    "ConvertOptions",
    "EngineOptions",
    "FloatConversionPass",
    "KeepInputRule",
    "KeepOpRule",
    "KeptNode",
    "MeasuredKeep",
    "OutputDifference",
    "PhaseTimings",
    "RoundingPlan",
    "RoundingSlots",
    "TensorRangeReport",
    "ValidationReport",
    "cast_array",
    "convert",
    "default_output_path",
    "rounding_slots",
]

from typing import TYPE_CHECKING

from ..core import lazy_exports
from ._options import ENGINES, TARGETS, ConvertOptions
from ._policy import DEFAULT_KEEP_INPUTS, DEFAULT_KEEP_OPS, FLOAT_ONLY_DOMAINS, KeepInputRule, KeepOpRule
from ._results import SCHEMA_VERSION, ConversionResult, ConversionStats, KeptNode, MeasuredKeep
from ._results import OutputDifference as OutputDifference
from ._results import PhaseTimings as PhaseTimings
from ._results import TensorRangeReport as TensorRangeReport
from ._results import ValidationReport as ValidationReport

if TYPE_CHECKING:
    from ._pipeline import convert, default_output_path
    from ._rewrite import TARGET_TYPES, EngineOptions, FloatConversionPass
    from ._slots import RoundingPlan, RoundingSlots, rounding_slots
    from ._tensors import cast_array

__getattr__, __dir__ = lazy_exports(__name__, ("._pipeline", "._rewrite", "._slots", "._tensors"))
