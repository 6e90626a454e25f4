"""What convert and run print about a calibration: its data, the budget, and (with --explain) every trial."""

from __future__ import annotations

__all__ = ["NOT_CALIBRATED", "format_calibration", "format_calibration_details"]

from typing import TYPE_CHECKING

from ..core import format_magnitude

if TYPE_CHECKING:
    from ..calibration import CalibrationReport

NOT_CALIBRATED = "not measured: activation ranges and accuracy were not checked on data (pass --calibration)"


def format_calibration(report: CalibrationReport) -> list[str]:
    """The summary's lines: the data, the budget and what was kept."""
    data = report.provenance
    split = f"{data.dataset} {data.split} split" if data.split == "train" else data.dataset
    overlap = ", the same images (the file is small)" if data.overlap else ""
    lines = [
        f"  calibration    {split}: {data.calibration_images:,} images measured, {data.validation_images:,} validate"
        f"{overlap} (seed {data.seed}); {report.sessions} sessions, {report.model_runs} runs, {report.time_s:.2f} s",
        f"  budget         top-1 {report.fp32_accuracy:.2%} fp32 -> {report.accuracy:.2%} {report.target} "
        f"({report.target} storage emulated): drop {report.drop_pp:.2f} pp, budget {report.budget_pp:g} pp; {len(report.trials)} evaluations",
    ]
    by_source = {s: sum(1 for d in report.decisions if d.source == s) for s in ("activations", "accuracy")}
    lines.append(
        f"  measured       {len(report.decisions)} of {report.switchable_nodes} convertible nodes kept float32: "
        f"{by_source['activations']} by activation range (limit {format_magnitude(report.range_limit)}), "
        f"{by_source['accuracy']} by the accuracy search"
    )
    return lines


def format_calibration_details(report: CalibrationReport) -> list[str]:
    """For --explain: every trial, and the ranking when the search needed one."""
    lines = ["", "trials on the validation images:"]
    for number, trial in enumerate(report.trials, 1):
        lines.append(
            f"  {number:>2}. {trial.stage:<10} {trial.kept_fp32:>5} node(s) float32  top-1 {trial.accuracy:.2%}  "
            f"drop {trial.drop_pp:+.2f} pp  {'within' if trial.within_budget else 'over'} budget"
        )
    if report.ranking:
        lines += ["", "nodes ranked by the error their fp16 rounding introduces (largest first):"]
        for node in report.ranking:
            lines.append(f"  {node.name or '(unnamed)'} ({node.op_type}): relative error {node.introduced_error:.3g}")
    return lines
