"""The evaluate pipeline: dataset, sessions, accuracy, latency, comparison, report."""

from __future__ import annotations

__all__ = ["EvaluateOptions", "EvaluationOutcome", "evaluate", "find_baseline"]

import dataclasses
import datetime
import hashlib
import json
import os
import platform
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from converter import __version__, _datasets, _measure, _model_io, _preprocess, _runtime
from converter._errors import IncompatibleModelError, UsageError
from converter._metadata import CONVERSION_KEY, SOURCE_MODEL_KEY
from converter._eval_results import (
    ConversionFacts,
    DatasetInfo,
    EvaluationReport,
    ModelEvaluation,
    Preprocessing,
    ProviderInfo,
)


@dataclasses.dataclass(frozen=True)
class EvaluateOptions:
    """Options of ``halfconv evaluate``; the CLI flags map one to one onto these fields."""

    dataset: str  # mnist | cifar10 | PATH.npz
    baseline: Path | None = None  # the float32 model to compare with (found automatically if None)
    provider: str = "auto"  # auto | cuda | cpu
    batch_size: int = 256  # images per session.run during the accuracy pass
    limit: int | None = None  # evaluate only the first N test images
    data_dir: Path | None = None  # where the dataset files are (before $HALFCONV_DATA_DIR and the cache)
    layout: str = "auto"  # auto | nchw | nhwc | flat
    mean: tuple[float, ...] | None = None  # per-channel mean after scaling to [0, 1]
    std: tuple[float, ...] | None = None
    latency_batch_sizes: tuple[int, ...] = (1, 32, 256)
    warmup: int = 10  # untimed runs before each latency measurement
    iters: int = 50  # timed runs per batch size
    report_dir: Path | None = None  # default: reports/<model stem>/
    progress: bool = False  # progress bars on stderr

    def check(self) -> None:
        if self.limit is not None and self.limit <= 0:
            raise UsageError(f"--limit must be a positive number of images, got {self.limit}", "omit it to use the whole test set")
        if self.batch_size <= 0:
            raise UsageError(f"--batch-size must be positive, got {self.batch_size}", "try 256")
        if self.iters <= 0:
            raise UsageError(f"--iters must be positive, got {self.iters}", "try 50")
        if self.warmup < 0:
            raise UsageError(f"--warmup cannot be negative, got {self.warmup}", "try 10")
        if not self.latency_batch_sizes or any(b <= 0 for b in self.latency_batch_sizes):
            raise UsageError("--latency-batch-sizes needs positive sizes", "e.g. --latency-batch-sizes 1,32,256")
        if self.provider not in _runtime.PROVIDERS:
            raise UsageError(f"unknown provider '{self.provider}'", "use auto, cuda or cpu")
        if self.layout not in _preprocess.LAYOUTS:
            raise UsageError(f"unknown layout '{self.layout}'", "use auto, nchw, nhwc or flat")


@dataclasses.dataclass(frozen=True)
class EvaluationOutcome:
    report: EvaluationReport
    report_dir: Path


@dataclasses.dataclass(frozen=True)
class _Candidate:
    role: str
    path: Path
    proto: onnx.ModelProto
    external_files: tuple[Path, ...]


def find_baseline(model_path: Path, proto: onnx.ModelProto) -> tuple[Path | None, str | None]:
    """The float32 source of a converted model: from its metadata, else a sibling file."""
    metadata = {p.key: p.value for p in proto.metadata_props}
    if SOURCE_MODEL_KEY in metadata:
        candidate = Path(os.path.normpath(model_path.parent / metadata[SOURCE_MODEL_KEY]))
        if candidate.is_file() and candidate.resolve() != model_path.resolve():
            return candidate, "model metadata"
    for suffix in (".fp16.onnx", ".bf16.onnx"):
        if model_path.name.endswith(suffix):
            sibling = model_path.with_name(model_path.name[: -len(suffix)] + ".onnx")
            if sibling.is_file():
                return sibling, "sibling file"
    return None, None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _precision(proto: onnx.ModelProto) -> str:
    counts: dict[int, int] = {}
    for tensor in proto.graph.initializer:
        if tensor.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16):
            counts[tensor.data_type] = counts.get(tensor.data_type, 0) + int(np.prod(tensor.dims))
    if not counts:
        return "none"
    total = sum(counts.values())
    dominant, elements = max(counts.items(), key=lambda item: item[1])
    name = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.FLOAT16: "float16", onnx.TensorProto.BFLOAT16: "bfloat16"}[dominant]
    return name if elements == total else f"{name} ({elements / total:.1%} of float weights)"


def _conversion_facts(proto: onnx.ModelProto) -> ConversionFacts | None:
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
        )
    except (KeyError, TypeError, ValueError, json.JSONDecodeError):
        return None


def _signature_text(signature: _preprocess.ModelSignature) -> str:
    def dims(shape: tuple[object, ...]) -> str:
        return "(" + ", ".join(str(d) if isinstance(d, int) else "N" for d in shape) + ")"

    return f"input {dims(signature.input_shape)}, output {dims(signature.output_shape)}"


def _check_same_signature(
    baseline: _preprocess.ModelSignature, model: _preprocess.ModelSignature, baseline_path: Path, model_path: Path
) -> None:
    def core(signature: _preprocess.ModelSignature) -> tuple[object, ...]:
        strip = lambda shape: tuple(d if isinstance(d, int) else None for d in shape[1:])  # noqa: E731
        return strip(signature.input_shape), strip(signature.output_shape)

    if core(baseline) != core(model):
        raise IncompatibleModelError(
            f"baseline {baseline_path.name} has {_signature_text(baseline)} but {model_path.name} has {_signature_text(model)}",
            "pass the float32 model that this model was converted from",
        )


def _tool_versions() -> dict[str, str]:
    import onnx_ir

    return {
        "halfconv": __version__,
        "onnx": onnx.__version__,
        "onnx_ir": onnx_ir.__version__,
        "onnxruntime": ort.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def evaluate(
    model_path: str | Path, options: EvaluateOptions, *, test_set: _datasets.Dataset | None = None
) -> EvaluationOutcome:
    """Evaluate ``model_path`` (and its float32 baseline) on a test set and write the report.

    ``test_set`` is the already loaded test split of ``options.dataset``, when the caller has it.
    Raises a ``HalfconvError`` subclass for every user-facing failure; the report files are
    written only when everything succeeded.
    """
    from converter._report import write_report

    options.check()
    model_path = Path(model_path)
    proto, external = _model_io.read_model_proto(model_path)
    notes: list[str] = []
    baseline_path, baseline_source = options.baseline, "--baseline" if options.baseline else None
    if baseline_path is None:
        baseline_path, baseline_source = find_baseline(model_path, proto)
        if baseline_path is not None:
            notes.append(f"baseline {baseline_path} found through the {baseline_source}")
    candidates: list[_Candidate] = []
    if baseline_path is not None:
        baseline_proto, baseline_external = _model_io.read_model_proto(baseline_path)
        candidates.append(_Candidate("fp32", Path(baseline_path), baseline_proto, baseline_external))
    candidates.append(_Candidate("fp16" if baseline_path is not None else "model", model_path, proto, external))

    provider = _runtime.resolve_provider(options.provider)
    if provider.fallback_reason:
        notes.append(f"requested provider '{options.provider}' ran on the CPU: {provider.fallback_reason}")
    sessions = [_runtime.create_session(c.path, provider) for c in candidates]
    signatures = [_preprocess.read_signature(s, c.path.name) for s, c in zip(sessions, candidates)]
    if len(candidates) == 2:
        _check_same_signature(signatures[0], signatures[1], candidates[0].path, candidates[1].path)

    dataset = test_set or _datasets.load_dataset(
        options.dataset, "test", data_dir=options.data_dir, progress=options.progress
    )
    available = int(dataset.labels.shape[0])
    count = min(options.limit, available) if options.limit else available
    images, labels = dataset.images[:count], dataset.labels[:count].astype(np.int64)
    classes = len(dataset.class_names)
    image_shape = tuple(int(d) for d in images.shape[1:])

    evaluations: list[ModelEvaluation] = []
    logits_by_role: dict[str, np.ndarray] = {}
    predictions_by_role: dict[str, np.ndarray] = {}
    plans: list[Preprocessing] = []
    for candidate, session, signature in zip(candidates, sessions, signatures):
        plan = _preprocess.plan_preprocessing(
            signature,
            image_shape,
            layout=options.layout,
            mean=options.mean,
            std=options.std,
            dataset_name=dataset.name,
            model_name=candidate.path.name,
        )
        plans.append(plan)
        x = _preprocess.preprocess(images, plan)
        bar = _measure.ProgressBar(f"{candidate.role} accuracy", count, options.progress)
        try:
            logits = _measure.run_dataset(session, signature, x, options.batch_size, plan.fixed_batch, bar)
        except _runtime.ORT_ERRORS as error:
            raise IncompatibleModelError(
                f"ONNX Runtime failed to run {candidate.path.name} on {dataset.name} images: {_runtime.ort_error_text(error)}",
                "check that the model takes the dataset's images",
            ) from None
        finally:
            bar.close()
        if logits.shape[1] != classes:
            raise IncompatibleModelError(
                f"{candidate.path.name} outputs {logits.shape[1]} classes but {dataset.name} has {classes}",
                "pick the dataset the model was trained on",
            )
        predictions, accuracy, per_class = _measure.top1(logits, labels, classes)
        sizes = tuple(options.latency_batch_sizes)
        latency_note = None
        if plan.fixed_batch is not None:
            if sizes != (plan.fixed_batch,):
                latency_note = f"the model takes batches of exactly {plan.fixed_batch}; latency measured at that size only"
            sizes = (plan.fixed_batch,)
        latency_bar = _measure.ProgressBar(f"{candidate.role} latency", len(sizes), options.progress)
        points = []
        for size in sizes:
            points.append(_measure.measure_latency(session, signature, x, size, provider.device, options.warmup, options.iters))
            latency_bar.update(1)
        latency_bar.close()
        evaluations.append(
            ModelEvaluation(
                role=candidate.role,
                path=str(candidate.path),
                sha256=_sha256(candidate.path),
                size_bytes=_model_io.model_size_bytes(candidate.path, candidate.external_files),
                precision=_precision(candidate.proto),
                accuracy=accuracy,
                correct=int((predictions == labels).sum()),
                total=count,
                per_class_accuracy=per_class,
                nonfinite_outputs=int((~np.isfinite(logits)).sum()),
                latency=tuple(points),
                latency_note=latency_note,
                conversion=_conversion_facts(candidate.proto),
            )
        )
        logits_by_role[candidate.role] = logits
        predictions_by_role[candidate.role] = predictions
        del x

    if provider.device == "cpu" and any(m.precision.startswith(("float16", "bfloat16")) for m in evaluations):
        notes.append(
            "ONNX Runtime's CPU provider has few float16 kernels and runs most float16 ops through "
            "casts to float32, so float16 models are usually slower on the CPU; the speed-up of "
            "float16 shows on a GPU (--provider cuda)"
        )
    comparison = None
    if len(evaluations) == 2:
        comparison = _measure.compare(
            evaluations[0],
            evaluations[1],
            logits_by_role["fp32"],
            logits_by_role["fp16"],
            predictions_by_role["fp32"],
            predictions_by_role["fp16"],
        )
        if plans[0] != plans[1]:
            notes.append("the two models were fed differently: " + "; ".join(f"{c.role}: {p.layout}, {p.input_dtype}" for c, p in zip(candidates, plans)))

    options_used = sessions[-1].get_session_options()
    report = EvaluationReport(
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        tool_versions=_tool_versions(),
        dataset=DatasetInfo(dataset.name, dataset.split, count, available, dataset.class_names, dataset.files),
        provider=ProviderInfo(
            requested=options.provider,
            actual=provider.actual,
            fallback_reason=provider.fallback_reason,
            ort_version=ort.__version__,
            device_name=provider.device_name,
            cpu_model=_runtime.cpu_model(),
            cpu_count=_cpu_count(),
            intra_op_threads=options_used.intra_op_num_threads,
            inter_op_threads=options_used.inter_op_num_threads,
            io_binding=True,
            copies_timed=False,
        ),
        preprocessing=plans[-1],
        models=tuple(evaluations),
        comparison=comparison,
        baseline_source=baseline_source,
        notes=tuple(notes),
    )
    report_dir = options.report_dir or Path("reports") / _model_io.model_stem(model_path)
    write_report(report, report_dir)
    return EvaluationOutcome(report, report_dir)


def _cpu_count() -> int:
    return os.cpu_count() or 1

