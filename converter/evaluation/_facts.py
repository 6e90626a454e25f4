"""What a model file says about itself: its digest, its weights' precision, its conversion."""

from __future__ import annotations

__all__ = ["conversion_facts", "converted_role", "mixed_training_note", "precision", "sha256"]

import hashlib
import json
import math
from pathlib import Path

import onnx

from ..core import CALIBRATION_KEY, CONVERSION_KEY, EXPORT_KEY, SOURCE_MODEL_KEY
from ._results import MIXED_TRAINING_MARK, CalibrationFacts, Comparison, ConversionFacts, MeasuredNode, TrialFacts

_FLOAT_NAMES: dict[int, str] = {
    onnx.TensorProto.FLOAT: "float32",
    onnx.TensorProto.FLOAT16: "float16",
    onnx.TensorProto.BFLOAT16: "bfloat16",
}


def sha256(path: Path) -> str:
    """The file's sha256, read 1 MiB at a time."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _float_weight_counts(proto: onnx.ModelProto) -> dict[int, int]:
    counts: dict[int, int] = {}
    for tensor in proto.graph.initializer:
        if tensor.data_type in _FLOAT_NAMES:
            counts[tensor.data_type] = counts.get(tensor.data_type, 0) + math.prod(tensor.dims)
    return counts


def precision(proto: onnx.ModelProto) -> str:
    """The element type of the float weights: "float16", or "float16 (97.3% of float weights)"."""
    counts = _float_weight_counts(proto)
    if not counts:
        return "none"
    total = sum(counts.values())
    dominant, elements = max(counts.items(), key=lambda item: item[1])
    name = _FLOAT_NAMES[dominant]
    return name if elements == total else f"{name} ({elements / total:.1%} of float weights)"


def conversion_facts(proto: onnx.ModelProto) -> ConversionFacts | None:
    """What ``halfconv convert`` recorded in the model's metadata, or None."""
    metadata = {p.key: p.value for p in proto.metadata_props}
    if CONVERSION_KEY not in metadata:
        return None
    try:
        facts = json.loads(metadata[CONVERSION_KEY])
        return ConversionFacts(
            source_model=metadata.get(SOURCE_MODEL_KEY),
            target=str(facts["target"]),
            nodes_total=int(facts["nodes_total"]),
            nodes_kept_fp32=int(facts["nodes_kept_fp32"]),
            casts_inserted=int(facts["casts_inserted"]),
            kept_ops=tuple(str(op) for op in facts.get("kept_ops", ())),
            measured=tuple(
                MeasuredNode(str(k["node"]), str(k["op_type"]), str(k["source"]), str(k["reason"]))
                for k in facts.get("measured_kept", ())
            ),
            calibration=_calibration_facts(metadata.get(CALIBRATION_KEY)),
        )
    except (KeyError, TypeError, ValueError, AttributeError, json.JSONDecodeError):
        return None


def _calibration_facts(text: str | None) -> CalibrationFacts | None:
    """The calibration record of a calibrated conversion; None without one (or one this version cannot read)."""
    if text is None:
        return None
    try:
        record = json.loads(text)
        data = record["data"]
        return CalibrationFacts(
            dataset=str(data["dataset"]),
            split=str(data["split"]),
            calibration_images=int(data["calibration_images"]),
            validation_images=int(data["validation_images"]),
            seed=int(data["seed"]),
            overlap=bool(data.get("overlap", False)),
            files=tuple((str(f["name"]), str(f["sha256"])) for f in data["files"]),
            budget_pp=float(record["budget_pp"]),
            range_limit=float(record["range_limit"]),
            fp32_accuracy=float(record["fp32_accuracy"]),
            accuracy=float(record["accuracy"]),
            target=str(record.get("target", "fp16")),
            switchable_nodes=int(record["switchable_nodes"]),
            sessions=int(record["sessions"]),
            trials=tuple(
                TrialFacts(str(t["stage"]), int(t["kept_fp32"]), float(t["accuracy"]), float(t["drop_pp"]), bool(t["within_budget"]))
                for t in record["trials"]
            ),
        )
    except (KeyError, TypeError, ValueError, AttributeError, json.JSONDecodeError):
        return None


def converted_role(proto: onnx.ModelProto) -> str:
    """How reports name a converted model: "bf16" when its float weights are mostly bfloat16, else "fp16"."""
    facts = conversion_facts(proto)
    if facts is not None and facts.target in ("fp16", "bf16"):
        return facts.target
    return "bf16" if precision(proto).startswith("bfloat16") else "fp16"


def _trained_mixed(proto: onnx.ModelProto) -> str | None:
    """The type an exported model computes in when it is not float32 (it was trained mixed); None otherwise."""
    metadata = {p.key: p.value for p in proto.metadata_props}
    if CONVERSION_KEY in metadata or EXPORT_KEY not in metadata:
        return None
    try:
        compute = json.loads(metadata[EXPORT_KEY])["compute_dtype"]
    except (KeyError, TypeError, ValueError, json.JSONDecodeError):
        return None
    return compute if compute in ("float16", "bfloat16") else None


def mixed_training_note(proto: onnx.ModelProto, name: str, comparison: Comparison | None) -> str | None:
    """What a report says of a model exported from mixed-precision training, with the change it measured."""
    compute = _trained_mixed(proto)
    if compute is None:
        return None
    text = (
        f"{name} was exported from a model {MIXED_TRAINING_MARK}: it computes in {compute} "
        f"and stores its weights as {precision(proto)}, with no halfconv conversion."
    )
    if comparison is None:
        return text + " Pass the float32 rebuild of its weights (halfconv export --fp32-baseline) as --baseline to compare."
    low, high = comparison.delta_ci95_pp
    return text + (
        " The baseline holds the same trained weights in float32. Mixed precision at training time gives the "
        "accuracy of float32 training; this comparison checks what the exported model computes: in "
        f"{compute}, the weights change the accuracy by {comparison.accuracy_delta_pp:+.2f} pp against float32 "
        f"(95% interval {low:+.2f} to {high:+.2f} pp)."
    )
