"""Typed results passed between the conversion steps and rendered by the CLI."""

from __future__ import annotations

__all__ = [
    "MEASURED_SOURCES",
    "SCHEMA_VERSION",
    "ConversionResult",
    "ConversionStats",
    "KeptNode",
    "MeasuredKeep",
    "OutputDifference",
    "PhaseTimings",
    "TensorRangeReport",
    "ValidationReport",
]

import dataclasses
from typing import Any

from ..numerics import NodeDivergence

SCHEMA_VERSION = 1
# The KeptNode sources that are measurements rather than rules.
MEASURED_SOURCES = ("weights", "activations", "accuracy")


@dataclasses.dataclass(frozen=True)
class KeptNode:
    """A node that stays float32 (fully or in part) and why."""

    name: str
    op_type: str
    domain: str
    graph: str  # "main" or a path such as "main/If_0:then_branch"
    reason: str
    # policy | keep-op | keep-node | weights | activations | accuracy | spec | sequence | unknown-type | custom-domain | parent
    source: str
    kept_inputs: tuple[str, ...] = ()  # set when only some inputs stay float32 (the node converts)


@dataclasses.dataclass(frozen=True)
class MeasuredKeep:
    """A main-graph node that a measurement keeps float32, with the figure that decided it.

    ``index`` is the node's position in the main graph of the model file (names may be
    missing or repeated); ``name`` and ``op_type`` check that it is the node measured.
    """

    index: int
    name: str
    op_type: str
    reason: str
    source: str  # "activations" (a measured range) or "accuracy" (the accuracy-budget search)


@dataclasses.dataclass(frozen=True)
class TensorRangeReport:
    """Values of one tensor that the target type cannot hold."""

    name: str
    elements: int
    clamped: int  # finite values beyond the target's largest finite value, set to +-max
    flushed: int  # non-zero values below the smallest subnormal, which became (signed) zero


@dataclasses.dataclass(frozen=True)
class ConversionStats:
    nodes_total: int
    nodes_converted: int
    nodes_kept_fp32: int
    nodes_without_float: int
    float_weight_elements: int
    converted_weight_elements: int
    casts_inserted: int
    casts_removed: int
    clamped_values: int
    flushed_values: int
    range_reports: tuple[TensorRangeReport, ...]
    kept_nodes: tuple[KeptNode, ...]
    notes: tuple[str, ...]
    # Weight elements the input stored in the target type already: a model trained under
    # mixed precision (Keras mixed_float16) is exported with most of its weights in float16.
    target_weight_elements: int = 0

    @property
    def arrived_mixed(self) -> bool:
        return self.target_weight_elements > 0

    @property
    def converted_weight_share(self) -> float:
        if self.float_weight_elements == 0:
            return 0.0
        return self.converted_weight_elements / self.float_weight_elements


@dataclasses.dataclass(frozen=True)
class OutputDifference:
    """Difference between the float32 and the converted model on one output."""

    name: str
    max_abs_error: float | None  # None when no element is finite in both models
    max_rel_error: float | None  # max |ref - out| divided by max |ref|
    nonfinite_introduced: int  # elements finite in the reference but not in the converted model


@dataclasses.dataclass(frozen=True)
class ValidationReport:
    status: str  # "passed", "partial" (some steps could not run, see skipped) or "skipped"
    checker: bool
    ort_provider: str | None
    outputs: tuple[OutputDifference, ...]
    inputs_from: str | None  # "random" or the --sample path
    skipped: tuple[str, ...]  # steps that did not run, each with its reason
    numerics: str | None = None  # what computed the converted model's numbers, see halfconv.numerics
    divergences: tuple[NodeDivergence, ...] = ()  # every stored value against float32 (--explain, or a failure)


@dataclasses.dataclass(frozen=True)
class PhaseTimings:
    """Seconds spent in each phase of one conversion; None for a phase the engine does not have."""

    load_s: float | None  # reading, checking and parsing the input
    infer_s: float | None  # the element type of every value (halfconv's engine)
    plan_s: float | None  # each node's precision, the weight-range scan included (halfconv's engine)
    rewrite_s: float | None  # editing the graph; onnxconverter-common's whole conversion
    serialise_s: float | None  # the model to protobuf bytes, casting the weights the model file holds (halfconv's engine)
    write_s: float | None  # the files on disk; external weights are cast as they are written
    validate_s: float | None


@dataclasses.dataclass(frozen=True)
class ConversionResult:
    input_path: str
    output_path: str
    external_data_path: str | None
    target: str
    engine: str
    keep_io_types: bool
    stats: ConversionStats
    size_bytes_before: int
    size_bytes_after: int
    validation: ValidationReport
    wall_time_s: float
    timings: PhaseTimings | None = None

    def to_json_dict(self) -> dict[str, Any]:
        stats = self.stats
        return {
            "schema_version": SCHEMA_VERSION,
            "input": self.input_path,
            "output": self.output_path,
            "external_data": self.external_data_path,
            "target": self.target,
            "engine": self.engine,
            "keep_io_types": self.keep_io_types,
            "nodes": {
                "total": stats.nodes_total,
                "converted": stats.nodes_converted,
                "kept_fp32": stats.nodes_kept_fp32,
                "without_float": stats.nodes_without_float,
            },
            "weights": {
                "float_elements": stats.float_weight_elements,
                "converted_elements": stats.converted_weight_elements,
                "converted_share": round(stats.converted_weight_share, 6),
                "target_elements_before": stats.target_weight_elements,
            },
            "casts_inserted": stats.casts_inserted,
            "casts_removed": stats.casts_removed,
            "clamped_values": stats.clamped_values,
            "flushed_values": stats.flushed_values,
            "range_reports": [dataclasses.asdict(r) for r in stats.range_reports],
            "kept_nodes": [
                {**dataclasses.asdict(k), "kept_inputs": list(k.kept_inputs)}
                for k in stats.kept_nodes
            ],
            "notes": list(stats.notes),
            "size_bytes": {
                "before": self.size_bytes_before,
                "after": self.size_bytes_after,
                "ratio": round(self.size_bytes_after / self.size_bytes_before, 6)
                if self.size_bytes_before
                else None,
            },
            "validation": {
                "status": self.validation.status,
                "checker": self.validation.checker,
                "ort_provider": self.validation.ort_provider,
                "inputs_from": self.validation.inputs_from,
                "skipped": list(self.validation.skipped),
                "outputs": [dataclasses.asdict(o) for o in self.validation.outputs],
                "numerics": self.validation.numerics,
                "divergences": [dataclasses.asdict(d) for d in self.validation.divergences],
            },
            "wall_time_s": round(self.wall_time_s, 4),
            "timings": {k: None if v is None else round(v, 4) for k, v in dataclasses.asdict(self.timings).items()}
            if self.timings
            else None,
        }
