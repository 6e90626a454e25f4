"""The evaluate pipeline: dataset, sessions, accuracy, latency, comparison, into one report."""

from __future__ import annotations

__all__ = ["evaluate", "find_baseline"]

import contextlib
import dataclasses
import datetime
import os
import platform
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from .. import core
from ..core import (
    CPU_PROVIDER,
    CUDA_PROVIDER,
    ORT_ERRORS,
    IncompatibleModelError,
    ProviderError,
    ResolvedProvider,
    one_line,
)
from ..datasets import Dataset, load_dataset
from ..numerics import emulated_copy, native_label, numerics_label
from . import _measure, _preprocess
from ._facts import conversion_facts, converted_role, mixed_training_note, precision, sha256
from ._options import EvaluateOptions
from ._results import DatasetInfo, EvaluationReport, ModelEvaluation, Preprocessing, ProviderInfo

_CPU_FP16_NOTE = (
    "ONNX Runtime's CPU provider has few float16 kernels and runs most float16 ops through "
    "casts to float32, so float16 models are usually slower on the CPU; the speed-up of "
    "float16 shows on a GPU (--provider cuda)"
)


@dataclasses.dataclass(frozen=True)
class _Candidate:
    """A model to evaluate, loaded and with its session."""

    role: str  # fp32 | fp16 | bf16 | model
    path: Path
    proto: onnx.ModelProto
    external_files: tuple[Path, ...]
    session: ort.InferenceSession | None  # the model itself, timed for latency; None where it cannot run
    numbers: ort.InferenceSession  # what computes its accuracy: the session, or its numerics model's
    numerics: str  # what the numbers are, in words
    signature: _preprocess.ModelSignature


@dataclasses.dataclass(frozen=True)
class _Measured:
    evaluation: ModelEvaluation
    logits: np.ndarray
    predictions: np.ndarray
    plan: Preprocessing


def find_baseline(model_path: Path, proto: onnx.ModelProto) -> tuple[Path | None, str | None]:
    """The float32 source of a converted model: from its metadata, else a sibling file."""
    metadata = {p.key: p.value for p in proto.metadata_props}
    if core.SOURCE_MODEL_KEY in metadata:
        candidate = Path(os.path.normpath(model_path.parent / metadata[core.SOURCE_MODEL_KEY]))
        if candidate.is_file() and candidate.resolve() != model_path.resolve():
            return candidate, "model metadata"
    for suffix in (".fp16.onnx", ".bf16.onnx"):
        if model_path.name.endswith(suffix):
            sibling = model_path.with_name(model_path.name[: -len(suffix)] + ".onnx")
            if sibling.is_file():
                return sibling, "sibling file"
    return None, None


def _signature_text(signature: _preprocess.ModelSignature) -> str:
    def dims(shape: tuple[object, ...]) -> str:
        return "(" + ", ".join(str(d) if isinstance(d, int) else "N" for d in shape) + ")"

    return f"input {dims(signature.input_shape)}, output {dims(signature.output_shape)}"


def _check_same_signature(baseline: _Candidate, model: _Candidate) -> None:
    def core_dims(signature: _preprocess.ModelSignature) -> tuple[object, ...]:
        def strip(shape: tuple[object, ...]) -> tuple[object, ...]:
            return tuple(d if isinstance(d, int) else None for d in shape[1:])

        return strip(signature.input_shape), strip(signature.output_shape)

    if core_dims(baseline.signature) != core_dims(model.signature):
        raise IncompatibleModelError(
            f"baseline {baseline.path.name} has {_signature_text(baseline.signature)} "
            f"but {model.path.name} has {_signature_text(model.signature)}",
            "pass the float32 model that this model was converted from",
        )


def _candidate(
    role: str, path: Path, provider: ResolvedProvider, options: EvaluateOptions, stack: contextlib.ExitStack
) -> _Candidate:
    numerics = options.numerics
    proto, external = core.read_model_proto(path)
    emulate = numerics == "emulated" or (numerics == "auto" and provider.actual == CPU_PROVIDER)
    emulation = stack.enter_context(emulated_copy(path)) if emulate else None
    try:
        session: ort.InferenceSession | None = core.create_session(path, provider, strict=options.strict_provider)
    except ProviderError:
        if emulation is None:
            raise
        session = None  # e.g. bfloat16 on the CPU: its numbers can be emulated, its speed not measured
    if emulation is not None:
        numbers = core.create_session(emulation.path, provider)
        label = numerics_label(True, provider.actual, emulation.stored)
    elif session is not None:
        numbers = session
        label = native_label(proto, provider.actual)
    else:
        raise ProviderError(f"{provider.actual} cannot run {path.name}", "pass --numerics auto or emulated")
    signature = _preprocess.read_signature(numbers, path.name)
    return _Candidate(role, path, proto, external, session, numbers, label, signature)


def _candidates(
    model_path: Path, options: EvaluateOptions, notes: list[str], stack: contextlib.ExitStack
) -> tuple[list[_Candidate], str | None, ResolvedProvider]:
    """The baseline (when there is one) and the model, each with its session, and the provider."""
    proto, _ = core.read_model_proto(model_path)
    baseline_path, baseline_source = options.baseline, "--baseline" if options.baseline else None
    if baseline_path is None:
        baseline_path, baseline_source = find_baseline(model_path, proto)
        if baseline_path is not None:
            notes.append(f"baseline {baseline_path} found through the {baseline_source}")
    if baseline_path is not None:
        core.read_model_proto(baseline_path)  # a missing or broken baseline is named before the provider
    provider = core.resolve_provider(options.provider)
    if options.strict_provider and provider.actual == CPU_PROVIDER:
        raise ProviderError(
            f"--strict-provider needs CUDA, and it is unavailable: {provider.fallback_reason}", "see halfconv doctor"
        )
    if provider.fallback_reason:
        notes.append(f"requested provider '{options.provider}' ran on the CPU: {provider.fallback_reason}")
    if baseline_path is None:
        return [_candidate("model", model_path, provider, options, stack)], None, provider
    baseline = _candidate("fp32", Path(baseline_path), provider, options, stack)
    model = _candidate(converted_role(proto), model_path, provider, options, stack)
    _check_same_signature(baseline, model)
    return [baseline, model], baseline_source, provider


def _latency_sizes(options: EvaluateOptions, plan: Preprocessing) -> tuple[tuple[int, ...], str | None]:
    sizes = tuple(options.latency_batch_sizes)
    if plan.fixed_batch is None:
        return sizes, None
    note = None
    if sizes != (plan.fixed_batch,):
        note = f"the model takes batches of exactly {plan.fixed_batch}; latency measured at that size only"
    return (plan.fixed_batch,), note


def _measure_candidate(
    candidate: _Candidate, images: np.ndarray, labels: np.ndarray, dataset: Dataset, options: EvaluateOptions, provider: ResolvedProvider
) -> _Measured:
    """Accuracy over the images, then latency, of one model."""
    plan = _preprocess.plan_preprocessing(
        candidate.signature,
        tuple(int(d) for d in images.shape[1:]),
        layout=options.layout,
        mean=options.mean,
        std=options.std,
        dataset_name=dataset.name,
        model_name=candidate.path.name,
    )
    x = _preprocess.preprocess(images, plan)
    count, classes = len(labels), len(dataset.class_names)
    try:
        with _measure.ProgressBar(f"{candidate.role} accuracy", count, options.progress) as bar:
            logits = _measure.run_dataset(candidate.numbers, candidate.signature, x, options.batch_size, plan.fixed_batch, bar)
        if logits.shape[1] != classes:
            raise IncompatibleModelError(
                f"{candidate.path.name} outputs {logits.shape[1]} classes but {dataset.name} has {classes}",
                "pick the dataset the model was trained on",
            )
        sizes, latency_note = _latency_sizes(options, plan)
        session = candidate.session
        if session is None:
            sizes, latency_note = (), f"ONNX Runtime cannot run {candidate.path.name} on this provider, so its latency was not measured"
        points = []
        with _measure.ProgressBar(f"{candidate.role} latency", len(sizes), options.progress) as bar:
            for size in sizes:
                points.append(_measure.measure_latency(session, candidate.signature, x, size, provider.device, options.warmup, options.iters))
                bar.update(1)
        placement = None
        if session is not None:
            feeds = {candidate.signature.input_name: np.ascontiguousarray(x[: plan.fixed_batch or 1])}
            placement = core.node_placement(candidate.path, provider, feeds)
    except ORT_ERRORS as error:
        raise IncompatibleModelError(
            f"ONNX Runtime failed to run {candidate.path.name} on {dataset.name} images: {one_line(error)}",
            "check that the model takes the dataset's images",
        ) from None
    predictions, accuracy, per_class = _measure.top1(logits, labels, classes)
    evaluation = ModelEvaluation(
        role=candidate.role,
        path=str(candidate.path),
        sha256=sha256(candidate.path),
        size_bytes=core.model_size_bytes(candidate.path, candidate.external_files),
        precision=precision(candidate.proto),
        accuracy=accuracy,
        correct=int((predictions == labels).sum()),
        total=count,
        per_class_accuracy=per_class,
        nonfinite_outputs=int((~np.isfinite(logits)).sum()),
        latency=tuple(points),
        latency_note=latency_note,
        conversion=conversion_facts(candidate.proto),
        numerics=candidate.numerics,
        placement=placement,
    )
    return _Measured(evaluation, logits, predictions, plan)


def _tool_versions() -> dict[str, str]:
    import onnx_ir

    return {
        "halfconv": core.__version__,
        "onnx": onnx.__version__,
        "onnx_ir": onnx_ir.__version__,
        "onnxruntime": ort.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def _provider_info(options: EvaluateOptions, provider: ResolvedProvider, session: ort.InferenceSession) -> ProviderInfo:
    session_options = session.get_session_options()
    return ProviderInfo(
        requested=options.provider,
        actual=provider.actual,
        fallback_reason=provider.fallback_reason,
        ort_version=ort.__version__,
        device_name=provider.device_name,
        device_driver=core.gpu_and_driver()[1] if provider.actual == CUDA_PROVIDER else None,
        cpu_model=core.cpu_model(),
        cpu_count=os.cpu_count() or 1,
        intra_op_threads=session_options.intra_op_num_threads,
        inter_op_threads=session_options.inter_op_num_threads,
        io_binding=True,
        copies_timed=False,
        cudnn_conv_algo_search=core.CUDNN_CONV_ALGO_SEARCH if provider.actual == CUDA_PROVIDER else None,
        strict_provider=options.strict_provider,
    )


def evaluate(model_path: str | Path, options: EvaluateOptions, *, test_set: Dataset | None = None) -> EvaluationReport:
    """Evaluate ``model_path`` (and its float32 baseline) on a test set; returns the report.

    ``test_set`` is the already loaded test split of ``options.dataset``, when the caller has it.
    Nothing is written: render or write the report with :mod:`halfconv.report`.
    Raises a ``HalfconvError`` subclass for every user-facing failure.
    """
    options.check()
    model_path = Path(model_path)
    notes: list[str] = []
    with contextlib.ExitStack() as stack:
        candidates, baseline_source, provider = _candidates(model_path, options, notes, stack)
        dataset = test_set or load_dataset(options.dataset, "test", data_dir=options.data_dir, progress=options.progress)
        available = int(dataset.labels.shape[0])
        count = min(options.limit, available) if options.limit else available
        images, labels = dataset.images[:count], dataset.labels[:count].astype(np.int64)
        measured = [_measure_candidate(c, images, labels, dataset, options, provider) for c in candidates]
        session_options = _provider_info(options, provider, candidates[-1].numbers)
    evaluations = tuple(m.evaluation for m in measured)
    if provider.actual == CPU_PROVIDER and any(m.precision.startswith(("float16", "bfloat16")) for m in evaluations):
        notes.append(_CPU_FP16_NOTE)
    comparison = None
    if len(measured) == 2:
        baseline, model = measured
        comparison = _measure.compare(
            baseline.evaluation, model.evaluation, baseline.logits, model.logits, baseline.predictions, model.predictions, labels
        )
        if baseline.plan != model.plan:
            notes.append(
                "the two models were fed differently: "
                + "; ".join(f"{m.evaluation.role}: {m.plan.layout}, {m.plan.input_dtype}" for m in measured)
            )
    mixed = mixed_training_note(candidates[-1].proto, candidates[-1].path.name, comparison)
    if mixed is not None:
        notes.append(mixed)
    return EvaluationReport(
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        tool_versions=_tool_versions(),
        dataset=DatasetInfo(dataset.name, dataset.split, count, available, dataset.class_names, dataset.files),
        provider=session_options,
        preprocessing=measured[-1].plan,
        models=evaluations,
        comparison=comparison,
        baseline_source=baseline_source,
        notes=tuple(notes),
    )
