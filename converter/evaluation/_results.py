"""Typed results of ``halfconv evaluate``; reports are rendered from these alone."""

from __future__ import annotations

__all__ = [
    "MIXED_TRAINING_MARK",
    "REPORT_SCHEMA_VERSION",
    "CalibrationFacts",
    "Comparison",
    "ConversionFacts",
    "DatasetInfo",
    "EvaluationReport",
    "LatencyPoint",
    "MeasuredNode",
    "ModelEvaluation",
    "Preprocessing",
    "ProviderInfo",
    "TrialFacts",
]

import dataclasses
from typing import Any

from ..core import Placement
from ..datasets import FileDigest

REPORT_SCHEMA_VERSION = 1


# The words by which a report note says a model arrived from mixed-precision training; the
# report lifts that note into its summary.
MIXED_TRAINING_MARK = "trained under mixed precision"


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    name: str  # "mnist", "cifar10", or the .npz file name
    split: str  # "test" or "train"
    num_images: int  # images evaluated (after --limit)
    num_available: int  # images in the split
    class_names: tuple[str, ...]
    files: tuple[FileDigest, ...]


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    layout: str  # "nchw", "nhwc", "flat", "hw" (N,28,28) or "reshape" (another 784-element shape)
    input_shape: tuple[int | str, ...]  # the model input's declared shape
    input_dtype: str  # "float32", "float16", ...
    scale: float  # pixels are multiplied by this (1/255 for [0, 1])
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str  # "metadata" (written by halfconv export), "options" or "default"
    fixed_batch: int | None  # a batch size the model requires, or None when dynamic


@dataclasses.dataclass(frozen=True)
class ProviderInfo:
    requested: str  # auto | cuda | cpu
    actual: str  # the ORT execution provider that ran, e.g. "CPUExecutionProvider"
    fallback_reason: str | None  # why CUDA was not used when auto fell back to CPU
    ort_version: str
    device_name: str | None  # the GPU's name when CUDA ran
    cpu_model: str
    cpu_count: int
    intra_op_threads: int  # 0 = ORT's default (one per physical core)
    inter_op_threads: int
    io_binding: bool  # latency runs use IO binding
    copies_timed: bool  # whether host<->device copies are inside the timed region
    cudnn_conv_algo_search: str | None = None  # how cuDNN chose convolution algorithms (CUDA only)
    device_driver: str | None = None  # the NVIDIA driver's version when CUDA ran
    strict_provider: bool = False  # whether a CPU fallback of any node was refused


@dataclasses.dataclass(frozen=True)
class LatencyPoint:
    batch_size: int
    iters: int
    mean_ms: float
    min_ms: float
    max_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    throughput: float  # images per second, batch_size / mean latency


@dataclasses.dataclass(frozen=True)
class MeasuredNode:
    """A node the conversion kept float32 because of a measurement, with its figure."""

    node: str
    op_type: str
    source: str  # "weights", "activations" or "accuracy"
    reason: str


@dataclasses.dataclass(frozen=True)
class TrialFacts:
    """One evaluation of the accuracy-budget search, on the validation images of the training split."""

    stage: str  # "float32", "candidate" or "bisection"
    kept_fp32: int
    accuracy: float
    drop_pp: float
    within_budget: bool


@dataclasses.dataclass(frozen=True)
class CalibrationFacts:
    """What a calibrated ``halfconv convert`` measured before converting, from the model's metadata."""

    dataset: str
    split: str  # "train", or "file" for an .npz
    calibration_images: int
    validation_images: int
    seed: int
    overlap: bool  # the split was too small for two disjoint sets: both are all of it
    files: tuple[tuple[str, str], ...]  # (file name, sha256)
    budget_pp: float
    range_limit: float
    fp32_accuracy: float  # on the validation images
    accuracy: float  # of the converted model there, its 16-bit storage emulated
    target: str  # "fp16" or "bf16"
    switchable_nodes: int
    sessions: int
    trials: tuple[TrialFacts, ...]


@dataclasses.dataclass(frozen=True)
class ConversionFacts:
    """What ``halfconv convert`` recorded in the converted model's metadata."""

    source_model: str | None
    target: str
    nodes_total: int
    nodes_kept_fp32: int
    casts_inserted: int
    kept_ops: tuple[str, ...]  # op types of the nodes kept in float32
    measured: tuple[MeasuredNode, ...] = ()  # nodes kept float32 by a measurement
    calibration: CalibrationFacts | None = None  # None: converted without calibration data


@dataclasses.dataclass(frozen=True)
class ModelEvaluation:
    role: str  # "fp32" (the baseline), "fp16" or "bf16" (the converted model), or "model" (alone)
    path: str
    sha256: str
    size_bytes: int  # the .onnx file plus its external data
    precision: str  # element type of the model's float weights: float32, float16, bfloat16, mixed
    accuracy: float  # top-1, in [0, 1]
    correct: int
    total: int
    per_class_accuracy: tuple[float, ...]
    nonfinite_outputs: int  # elements of the output that were inf or NaN
    latency: tuple[LatencyPoint, ...]
    latency_note: str | None  # e.g. why some batch sizes were not measured
    conversion: ConversionFacts | None
    numerics: str = ""  # what computed its accuracy, see halfconv.numerics (e.g. "fp16 storage emulated on ...")
    # Where ORT placed its nodes, from one profiled run; None where ORT cannot run the model itself.
    placement: Placement | None = None


@dataclasses.dataclass(frozen=True)
class Comparison:
    accuracy_delta_pp: float  # (fp16 - fp32) accuracy in percentage points
    agreement: float  # share of images where both models predict the same class
    disagreements: int
    max_abs_logit_diff: float
    mean_abs_logit_diff: float
    logit_diff_bins: tuple[float, ...]  # histogram edges of |fp16 - fp32| per output element
    logit_diff_counts: tuple[int, ...]
    size_ratio: float  # fp16 bytes / fp32 bytes
    latency_ratio: tuple[tuple[int, float], ...]  # (batch size, fp16 p50 / fp32 p50)
    flips_to_wrong: int = 0  # images fp32 classifies right and the converted model wrong
    flips_to_right: int = 0  # images fp32 classifies wrong and the converted model right
    mcnemar_p: float = 1.0  # exact two-sided McNemar test on the images where exactly one is right
    delta_ci95_pp: tuple[float, float] = (0.0, 0.0)  # 95% interval of the accuracy change (Agresti-Min)
    crossover_batch: int | None = None  # the smallest batch timed at which the converted model's p50 beats fp32's


@dataclasses.dataclass(frozen=True)
class EvaluationReport:
    created: str  # ISO 8601, UTC
    tool_versions: dict[str, str]  # halfconv, onnx, onnxruntime, numpy, python
    dataset: DatasetInfo
    provider: ProviderInfo
    preprocessing: Preprocessing
    models: tuple[ModelEvaluation, ...]  # the baseline first when there is one
    comparison: Comparison | None
    baseline_source: str | None  # "--baseline", "model metadata" or None
    notes: tuple[str, ...]

    def model(self, role: str) -> ModelEvaluation | None:
        """The model evaluated in ``role``, or None."""
        return next((m for m in self.models if m.role == role), None)

    @property
    def baseline(self) -> ModelEvaluation | None:
        """The float32 baseline, when the model was compared with one."""
        return self.model("fp32")

    @property
    def converted(self) -> ModelEvaluation | None:
        """The converted model (fp16 or bf16) compared with the baseline, or None without one."""
        return self.models[-1] if self.baseline is not None and len(self.models) == 2 else None

    def to_json_dict(self) -> dict[str, Any]:
        def plain(obj: Any) -> Any:
            return dataclasses.asdict(obj) if obj is not None else None

        data: dict[str, Any] = {
            "schema_version": REPORT_SCHEMA_VERSION,
            "created": self.created,
            "tool_versions": dict(self.tool_versions),
            "dataset": plain(self.dataset),
            "provider": plain(self.provider),
            "preprocessing": plain(self.preprocessing),
            "baseline_source": self.baseline_source,
            "notes": list(self.notes),
        }
        for model in self.models:
            data[model.role] = plain(model)
        if self.comparison is not None:
            comparison = plain(self.comparison)
            data["agreement"] = comparison.pop("agreement")
            data["accuracy_delta_pp"] = comparison.pop("accuracy_delta_pp")
            data["comparison"] = comparison
        plain_data: dict[str, Any] = _lists(data)
        return plain_data


def _lists(value: Any) -> Any:
    """Tuples become lists, so the JSON mirrors what json.loads gives back."""
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_lists(v) for v in value]
    return value
