"""Paired statistics of two classifiers on the same images: flips, McNemar's exact test, and a
95% confidence interval for the accuracy change."""

from __future__ import annotations

__all__ = ["PairedAccuracy", "accuracy_gate", "paired_accuracy"]

import dataclasses
import math

import numpy as np

from ..core import AccuracyGateError, UsageError
from ._results import EvaluationReport

_Z95 = 1.959963984540054  # the standard normal's 97.5th percentile


@dataclasses.dataclass(frozen=True)
class PairedAccuracy:
    to_wrong: int  # images the baseline classifies right and the model wrong
    to_right: int  # images the baseline classifies wrong and the model right
    mcnemar_p: float  # exact two-sided McNemar test on the discordant images
    delta_ci95_pp: tuple[float, float]  # 95% interval for (model - baseline) accuracy, percentage points


def _exact_mcnemar(to_wrong: int, to_right: int) -> float:
    """Two-sided exact McNemar p: the binomial test of the smaller count among the discordant pairs, p = 1/2."""
    discordant = to_wrong + to_right
    if discordant == 0:
        return 1.0
    smaller = min(to_wrong, to_right)
    log_half = -discordant * math.log(2.0)
    logs = [math.lgamma(discordant + 1) - math.lgamma(k + 1) - math.lgamma(discordant - k + 1) + log_half for k in range(smaller + 1)]
    top = max(logs)
    tail = math.exp(top) * sum(math.exp(x - top) for x in logs)
    return min(1.0, 2.0 * tail)


def _agresti_min_interval(to_wrong: int, to_right: int, total: int) -> tuple[float, float]:
    """Agresti and Min's (2005) Wald interval for a difference of paired proportions, with half a count added to each cell."""
    b, c, n = to_wrong + 0.5, to_right + 0.5, total + 2.0
    delta = (c - b) / n
    spread = _Z95 * math.sqrt(max((b + c) - (c - b) ** 2 / n, 0.0)) / n
    return (max(-1.0, delta - spread) * 100.0, min(1.0, delta + spread) * 100.0)


def paired_accuracy(labels: np.ndarray, baseline_predictions: np.ndarray, model_predictions: np.ndarray) -> PairedAccuracy:
    baseline_right = baseline_predictions == labels
    model_right = model_predictions == labels
    to_wrong = int(np.count_nonzero(baseline_right & ~model_right))
    to_right = int(np.count_nonzero(~baseline_right & model_right))
    return PairedAccuracy(
        to_wrong, to_right, _exact_mcnemar(to_wrong, to_right), _agresti_min_interval(to_wrong, to_right, len(labels))
    )


def accuracy_gate(report: EvaluationReport, max_drop_pp: float) -> None:
    """Raise AccuracyGateError when the converted model is more than ``max_drop_pp`` points below fp32."""
    if not 0 <= max_drop_pp <= 100:
        raise UsageError(f"--max-drop must be from 0 to 100 percentage points, got {max_drop_pp:g}", "e.g. --max-drop 0.5")
    baseline, converted, comparison = report.baseline, report.converted, report.comparison
    if baseline is None or converted is None or comparison is None:
        raise UsageError("--max-drop needs a float32 baseline to compare with", "pass --baseline FP32.onnx")
    # From the image counts, so that a drop of exactly the limit passes despite float rounding.
    drop = (baseline.correct - converted.correct) * 100.0 / baseline.total
    if round(drop, 9) > max_drop_pp:
        low, high = comparison.delta_ci95_pp
        raise AccuracyGateError(
            f"{converted.role} accuracy {converted.accuracy:.2%} is {drop:.2f} pp below fp32 {baseline.accuracy:.2%}, "
            f"more than --max-drop {max_drop_pp:g} (95% interval of the change {low:+.2f} to {high:+.2f} pp, "
            f"McNemar p = {comparison.mcnemar_p:.3g})",
            "keep the sensitive nodes in float32 (see halfconv convert --explain); the report was written",
        )
