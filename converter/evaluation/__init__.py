"""Evaluation: a model and its float32 baseline on a test set, with accuracy, latency and comparison.

``evaluate`` returns an :class:`EvaluationReport`; :mod:`halfconv.report` renders and writes it.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_LATENCY_BATCH_SIZES",
    "LAYOUTS",
    "MIXED_TRAINING_MARK",
    "REPORT_SCHEMA_VERSION",
    "CalibrationFacts",
    "Comparison",
    "ConversionFacts",
    "DatasetInfo",
    "EvaluateOptions",
    "EvaluationReport",
    "LatencyPoint",
    "MeasuredNode",
    "ModelEvaluation",
    "ModelSignature",
    "PairedAccuracy",
    "Preprocessing",
    "ProviderInfo",
    "TrialFacts",
    "accuracy_gate",
    "evaluate",
    "find_baseline",
    "paired_accuracy",
    "plan_preprocessing",
    "preprocess",
    "read_signature",
    "top1",
]

from typing import TYPE_CHECKING

from ..core import lazy_exports
from ._options import DEFAULT_LATENCY_BATCH_SIZES, LAYOUTS, EvaluateOptions
from ._results import (
    MIXED_TRAINING_MARK,
    REPORT_SCHEMA_VERSION,
    CalibrationFacts,
    Comparison,
    ConversionFacts,
    DatasetInfo,
    EvaluationReport,
    LatencyPoint,
    MeasuredNode,
    ModelEvaluation,
    Preprocessing,
    ProviderInfo,
    TrialFacts,
)
from ._stats import PairedAccuracy, accuracy_gate, paired_accuracy

if TYPE_CHECKING:
    from ._measure import top1
    from ._pipeline import evaluate, find_baseline
    from ._preprocess import ModelSignature, plan_preprocessing, preprocess, read_signature

__getattr__, __dir__ = lazy_exports(__name__, ("._measure", "._pipeline", "._preprocess"))
