"""The convert pipeline: load, convert, stage, validate, then move into place."""

from __future__ import annotations

__all__ = ["convert", "default_output_path", "provenance"]

import collections
import dataclasses
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir

from .. import core
from ..core import (
    CONVERSION_KEY,
    SOURCE_MODEL_KEY,
    ConversionError,
    NothingToConvertError,
    UsageError,
    ValidationFailedError,
    all_graphs,
    one_line,
)
from ._ir_version import check_readable_ir, lower_ir
from ._options import ConvertOptions
from ._plan import value_kind
from ._results import (
    MEASURED_SOURCES,
    ConversionResult,
    ConversionStats,
    KeptNode,
    MeasuredKeep,
    PhaseTimings,
    ValidationReport,
)
from ._rewrite import EngineOptions, convert_in_place
from ._types import ensure_element_types
from ._validate import ValidationOptions, check_converted, validate_converted


def default_output_path(input_path: Path, target: str) -> Path:
    return input_path.with_name(f"{core.model_stem(input_path)}.{target}.onnx")


def _has_float32(model: ir.Model) -> bool:
    for graph in all_graphs(model):
        if any(value_kind(v) in ("float", "container") for v in (*graph.inputs, *graph.initializers.values())):
            return True
        for node in graph:
            if any(value_kind(v) in ("float", "container") for v in node.outputs):
                return True
            if node.op_type == "Constant" and any(
                a in node.attributes for a in ("value_float", "value_floats")
            ):
                return True
    return False


def convert(
    input_path: str | Path,
    options: ConvertOptions = ConvertOptions(),
    *,
    measured: tuple[MeasuredKeep, ...] = (),
    metadata: dict[str, str] | None = None,
    validation_inputs: Mapping[str, np.ndarray] | None = None,
) -> ConversionResult:
    """Convert the model at ``input_path``; the input is never modified.

    ``measured`` names main-graph nodes that a calibration keeps float32 (see
    ``halfconv.calibration``), and ``metadata`` is recorded in the converted model with
    halfconv's own provenance; ``validation_inputs`` (real inputs, by input name) replace the
    random ones of the numeric check unless ``options.sample`` is given. Raises a ``HalfconvError`` subclass for every user-facing
    failure; nothing is left on disk unless the whole conversion and its validation succeed.
    """
    started = time.perf_counter()
    input_path = Path(input_path)
    with core.paused_gc():
        loaded, output_path = _load_checked(input_path, options, measured)
    phases: dict[str, float | None] = {"load_s": time.perf_counter() - started}
    size_before = core.model_size_bytes(input_path, loaded.external_files)

    with core.AtomicOutput(output_path) as staged:
        stats = _run_engine(_Job(loaded, options, measured, staged, phases, metadata or {}))
        validate_started = time.perf_counter()
        validation = _validate(input_path, staged.model_path, options, validation_inputs)
        phases["validate_s"] = time.perf_counter() - validate_started
        staged_data = staged.staging / staged.data_name
        size_after = core.model_size_bytes(staged.model_path, (staged_data,) if staged_data.exists() else ())
        data_path = staged.commit()

    return ConversionResult(
        input_path=str(input_path),
        output_path=str(output_path),
        external_data_path=str(data_path) if data_path else None,
        target=options.target,
        engine=options.engine,
        keep_io_types=options.keep_io_types,
        stats=stats,
        size_bytes_before=size_before,
        size_bytes_after=size_after,
        validation=validation,
        wall_time_s=time.perf_counter() - started,
        timings=PhaseTimings(**phases),
    )


@dataclasses.dataclass(frozen=True)
class _Job:
    """One conversion as the engines take it: the loaded input, what to do, and where to write."""

    loaded: core.LoadedModel
    options: ConvertOptions
    measured: tuple[MeasuredKeep, ...]
    staged: core.AtomicOutput
    phases: dict[str, float | None]  # filled in with each phase's seconds
    metadata: dict[str, str]


def _run_engine(job: _Job) -> ConversionStats:
    """Convert and write the staged model; a failure blames the input when the input is at fault."""
    try:
        with core.paused_gc():
            return _convert_halfconv(job) if job.options.engine == "halfconv" else _convert_occ(job)
    except (NothingToConvertError, ConversionError):
        # An invalid input (unknown op, dangling input) keeps every node float32 or
        # breaks onnxconverter-common: blame the input, as after a failed validation.
        core.check_input_model(job.loaded.path)
        raise
    except Exception:
        # The engine relies on a well-formed graph (an If whose branches give its
        # outputs): a malformed input is named as such; anything else is a bug.
        core.check_input_model(job.loaded.path, full=True)
        raise


def _load_checked(
    input_path: Path, options: ConvertOptions, measured: tuple[MeasuredKeep, ...]
) -> tuple[core.LoadedModel, Path]:
    """The loaded input and the output path, once the options, the output and the input's float32 are checked."""
    options.check()
    if measured and options.engine != "halfconv":
        raise UsageError("calibrated decisions apply to the halfconv engine only", "use --engine halfconv")
    loaded = core.load_model(input_path)
    check_readable_ir(loaded.model, input_path)
    output_path = Path(options.output) if options.output else default_output_path(input_path, options.target)
    core.check_output_path(input_path, output_path, options.force, loaded.external_files)
    if not _has_float32(loaded.model):
        raise NothingToConvertError(
            f"{input_path} has no float32 tensors to convert ({_float_kinds(loaded.model)})",
            "nothing was written",
        )
    return loaded, output_path


def _validate(
    input_path: Path, staged_path: Path, options: ConvertOptions, inputs: Mapping[str, np.ndarray] | None
) -> ValidationReport:
    """Validate the staged model; a failure blames the input when it was already invalid."""
    try:
        if not options.validate:
            check_converted(staged_path)
            return ValidationReport("skipped", True, None, (), None, ("ORT load and numeric check: --no-validate was given",))
        return validate_converted(
            input_path,
            staged_path,
            bfloat16=options.target == "bf16",
            options=ValidationOptions(
                options.sample, options.allow_nonfinite, numerics=options.numerics, diagnose=options.diagnose, feeds=inputs
            ),
        )
    except ValidationFailedError as error:
        # The converted model is checked with strict inference: an input that fails it too was damaged already.
        core.check_input_model(input_path, full=True)
        if options.engine != "halfconv":
            raise ValidationFailedError(
                error.what.replace("the converted model", f"{options.engine}'s output"),
                "use --engine halfconv",
            ) from None
        core.create_session(input_path, core.resolve_provider("cpu"), optimize=False)  # ORT cannot load the input either?
        raise


def provenance(input_path: Path, output_path: Path, stats: ConversionStats, target: str, engine: str) -> dict[str, str]:
    """Metadata for the converted model: where its float32 source is, and what was kept.

    ``halfconv evaluate`` reads it to find the baseline and to report the conversion.
    """
    source = os.path.relpath(input_path.resolve(), output_path.resolve().parent)
    kept_ops = sorted({str(k.op_type) for k in stats.kept_nodes if not k.kept_inputs})
    facts = {
        "target": target,
        "engine": engine,
        "nodes_total": stats.nodes_total,
        "nodes_kept_fp32": stats.nodes_kept_fp32,
        "casts_inserted": stats.casts_inserted,
        "kept_ops": kept_ops,
    }
    measured = [
        {"node": k.name, "op_type": k.op_type, "source": k.source, "reason": k.reason}
        for k in stats.kept_nodes
        if k.source in MEASURED_SOURCES
    ]
    if measured:  # nodes kept float32 by a measurement, each with its figure, for the report
        facts["measured_kept"] = measured
    return {SOURCE_MODEL_KEY: source, CONVERSION_KEY: json.dumps(facts, sort_keys=True)}


def _float_kinds(model: ir.Model) -> str:
    kinds = set()
    for graph in all_graphs(model):
        for value in (*graph.inputs, *graph.initializers.values()):
            if isinstance(value.type, ir.TensorType) and value.type.dtype.is_floating_point():
                kinds.add(str(value.type.dtype.name).lower())
    return "it already holds " + ", ".join(sorted(kinds)) if kinds else "it has no float tensors at all"


def _kept_summary(kept: tuple[KeptNode, ...]) -> str:
    """The reasons nodes stay float32, most frequent first: '3 by sequence: sequence and ... cast'."""
    by_reason = collections.Counter(node.reason for node in kept if not node.kept_inputs)
    if not by_reason:
        return "no node holds float32 work that the target type can take"
    parts = [f"{count} {'node' if count == 1 else 'nodes'}: {reason}" for reason, count in by_reason.most_common(2)]
    if len(by_reason) > 2:
        parts.append(f"{sum(by_reason.values()) - sum(c for _, c in by_reason.most_common(2))} for other reasons")
    return "; ".join(parts)


def _convert_halfconv(job: _Job) -> ConversionStats:
    loaded, options, staged, phases = job.loaded, job.options, job.staged, job.phases
    started = time.perf_counter()
    ensure_element_types(loaded.model)
    phases["infer_s"] = time.perf_counter() - started
    stats, recorder = convert_in_place(loaded.model, EngineOptions.of(options, job.measured), phases)
    if stats.nodes_converted == 0 and stats.converted_weight_elements == 0:
        raise NothingToConvertError(
            f"every float32 node of {loaded.path} stays float32 ({_kept_summary(stats.kept_nodes)})",
            "nothing was written",
        )
    started = time.perf_counter()
    loaded.model.metadata_props.update(
        provenance(loaded.path, staged.final_path, stats, options.target, options.engine)
    )
    loaded.model.metadata_props.update(job.metadata)
    ir_note = lower_ir(loaded.model)
    use_external = bool(loaded.external_files) or (
        core.tensor_bytes(loaded.model) > core.EXTERNAL_DATA_THRESHOLD_BYTES
    )
    phases["rewrite_s"] = (phases["rewrite_s"] or 0.0) + time.perf_counter() - started
    saved = core.save_model(loaded.model, staged, use_external)
    phases.update(serialise_s=saved.serialise_s, write_s=saved.write_s)
    clamped, flushed = recorder.totals()
    return dataclasses.replace(
        stats,
        clamped_values=clamped,
        flushed_values=flushed,
        range_reports=recorder.reports(),
        notes=(*stats.notes, *ir_note),
    )


def _convert_occ(job: _Job) -> ConversionStats:
    loaded, options, staged, phases = job.loaded, job.options, job.staged, job.phases
    from ._occ import convert_with_occ

    started = time.perf_counter()
    try:
        proto, stats = convert_with_occ(
            loaded.path,
            keep_ops=options.keep_ops,
            keep_nodes=options.keep_nodes,
            keep_io_types=options.keep_io_types,
        )
    except Exception as error:
        raise ConversionError(
            f"onnxconverter-common failed: {type(error).__name__}: {one_line(error)}",
            "try --engine halfconv",
        ) from None
    recorded = {**provenance(loaded.path, staged.final_path, stats, options.target, options.engine), **job.metadata}
    for key, value in recorded.items():
        entry = next((p for p in proto.metadata_props if p.key == key), None) or proto.metadata_props.add()
        entry.key, entry.value = key, value
    phases.update(infer_s=None, plan_s=None, rewrite_s=time.perf_counter() - started)
    started = time.perf_counter()
    use_external = bool(loaded.external_files) or proto.ByteSize() > core.EXTERNAL_DATA_THRESHOLD_BYTES
    if use_external:
        onnx.save(proto, str(staged.model_path), save_as_external_data=True, location=staged.data_name)
    else:
        onnx.save(proto, str(staged.model_path))
    # onnx.save serialises and writes in one call: both are write_s.
    phases.update(serialise_s=None, write_s=time.perf_counter() - started)
    return stats
