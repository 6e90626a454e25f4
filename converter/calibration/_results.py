"""What a calibration measured and decided, as reported by convert, run and the report."""

from __future__ import annotations

__all__ = ["CalibratedConversion", "CalibrationReport", "Decision", "RankedNode"]

import dataclasses
from pathlib import Path
from typing import Any

from ..conversion import ConversionResult
from ._data import CalibrationProvenance
from ._search import Trial


@dataclasses.dataclass(frozen=True)
class Decision:
    """A node kept float32 by a measurement, with its figure."""

    node_index: int
    name: str
    op_type: str
    source: str  # "activations" or "accuracy"
    reason: str


@dataclasses.dataclass(frozen=True)
class RankedNode:
    """A node of the error ranking: the relative error its fp16 rounding introduces on the calibration images."""

    name: str
    op_type: str
    introduced_error: float


@dataclasses.dataclass(frozen=True)
class CalibrationReport:
    provenance: CalibrationProvenance
    target: str  # "fp16" or "bf16"
    budget_pp: float
    range_limit: float  # a value whose calibration magnitude passes this keeps its nodes float32
    largest_finite: float  # the target's largest finite value
    switchable_nodes: int  # main-graph nodes whose rounding the search could switch
    decisions: tuple[Decision, ...]
    trials: tuple[Trial, ...]  # the first is the float32 model
    fp32_accuracy: float  # on the validation images
    accuracy: float  # of the chosen conversion, on the validation images (emulated fp16 storage)
    ranking: tuple[RankedNode, ...]  # the worst first, when the search needed one; else empty
    sessions: int  # ONNX Runtime sessions the calibration created
    model_runs: int  # session.run calls
    time_s: float
    phase_s: dict[str, float]

    @property
    def drop_pp(self) -> float:
        return (self.fp32_accuracy - self.accuracy) * 100.0

    def to_json_dict(self, *, timings: bool = True) -> dict[str, Any]:
        """The record as JSON; ``timings=False`` leaves out what varies from run to run (the model's metadata)."""
        provenance = self.provenance
        record = {
            "data": {
                "dataset": provenance.dataset,
                "split": provenance.split,
                "available": provenance.available,
                "calibration_images": provenance.calibration_images,
                "validation_images": provenance.validation_images,
                "seed": provenance.seed,
                "overlap": provenance.overlap,
                "files": [{"name": Path(f.path).name, "sha256": f.sha256, "size_bytes": f.size_bytes} for f in provenance.files],
                "preprocessing": dataclasses.asdict(provenance.preprocessing),
            },
            "target": self.target,
            "budget_pp": self.budget_pp,
            "range_limit": self.range_limit,
            "largest_finite": self.largest_finite,
            "switchable_nodes": self.switchable_nodes,
            "decisions": [dataclasses.asdict(d) for d in self.decisions],
            "trials": [dataclasses.asdict(t) for t in self.trials],
            "evaluations": len(self.trials),
            "fp32_accuracy": self.fp32_accuracy,
            "accuracy": self.accuracy,
            "drop_pp": round(self.drop_pp, 6),
            "ranking": [dataclasses.asdict(r) for r in self.ranking],
            "sessions": self.sessions,
            "model_runs": self.model_runs,
        }
        if timings:
            record["time_s"] = round(self.time_s, 4)
            record["phase_s"] = {k: round(v, 4) for k, v in self.phase_s.items()}
        return record


@dataclasses.dataclass(frozen=True)
class CalibratedConversion:
    conversion: ConversionResult
    calibration: CalibrationReport

    def to_json_dict(self) -> dict[str, Any]:
        return {**self.conversion.to_json_dict(), "calibration": self.calibration.to_json_dict()}
