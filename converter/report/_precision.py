"""The report's precision section: how the converted model was made, and what decided each fp32 node."""

from __future__ import annotations

__all__ = ["precision_section"]

from ..core import format_magnitude
from ..evaluation import CalibrationFacts, ConversionFacts, EvaluationReport
from ._blocks import Block, Bullets, Code, Section, Table
from ._format import format_percent, format_pp

_NOT_MEASURED = (
    "Activation ranges and accuracy were not measured before conversion (no calibration data): "
    "the nodes kept float32 were chosen by the policy, the keep lists and the weights alone."
)


def _conversion_table(path: str, facts: ConversionFacts) -> Table:
    rows = (
        ("model", Code(path)),
        ("converted from", Code(facts.source_model) if facts.source_model else "-"),
        ("target", facts.target),
        ("nodes", f"{facts.nodes_total:,}"),
        ("nodes kept float32", f"{facts.nodes_kept_fp32:,}"),
        ("casts inserted", f"{facts.casts_inserted:,}"),
        ("op types kept float32", Code(", ".join(facts.kept_ops)) if facts.kept_ops else "none"),
    )
    return Table(("", ""), rows)


def _calibration_table(calibration: CalibrationFacts) -> Table:
    split = f"{calibration.dataset}, training split" if calibration.split == "train" else f"{calibration.dataset} (file)"
    drop = (calibration.fp32_accuracy - calibration.accuracy) * 100.0
    rows = (
        ("calibration data", split),
        ("images measured", f"{calibration.calibration_images:,} (ranges and errors)"),
        (
            "images validating",
            f"{calibration.validation_images:,} (the accuracy budget), "
            + ("the same images: the split is small" if calibration.overlap else f"disjoint, seed {calibration.seed}"),
        ),
        *((f"file {name}", Code(digest)) for name, digest in calibration.files),
        ("range limit", f"{format_magnitude(calibration.range_limit)} (half the target's largest finite value)"),
        ("accuracy budget", f"{calibration.budget_pp:g} pp"),
        (
            "validation top-1",
            f"fp32 {format_percent(calibration.fp32_accuracy)}, converted {format_percent(calibration.accuracy)} "
            f"(change {format_pp(-drop)}; {calibration.target} storage emulated)",
        ),
        ("evaluations", f"{len(calibration.trials)} in {calibration.sessions} ONNX Runtime session(s)"),
    )
    return Table(("", ""), rows)


def _trials_table(calibration: CalibrationFacts) -> Table:
    rows = tuple(
        (
            str(number),
            trial.stage,
            f"{trial.kept_fp32:,} of {calibration.switchable_nodes:,}",
            format_percent(trial.accuracy),
            format_pp(-trial.drop_pp),
            "yes" if trial.within_budget else "no",
        )
        for number, trial in enumerate(calibration.trials, 1)
    )
    return Table(("trial", "stage", "nodes float32", "top-1", "change", "within budget"), rows, numeric=(0, 2, 3, 4))


def precision_section(report: EvaluationReport) -> Section | None:
    blocks: list[Block] = []
    for model in report.models:
        facts = model.conversion
        if facts is None:
            continue
        blocks.append(_conversion_table(model.path, facts))
        if facts.calibration is None:
            blocks.append(Bullets((_NOT_MEASURED,)))
        else:
            blocks += ["Calibration, on training images (the test split plays no part in choosing precision):"]
            blocks += [_calibration_table(facts.calibration), _trials_table(facts.calibration)]
        if facts.measured:
            rows = tuple((Code(n.node or "(unnamed)"), Code(n.op_type), n.source, n.reason) for n in facts.measured)
            blocks += ["Nodes kept float32 by a measurement:", Table(("node", "op", "measured", "figure"), rows)]
    return Section("Precision decisions", tuple(blocks)) if blocks else None
