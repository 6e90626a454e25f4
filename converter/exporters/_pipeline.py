"""``halfconv export``: a trained Keras or PyTorch model to a validated float32 ONNX model.

The framework back ends are ``_keras`` (with ``_saved_model`` and ``_tensorflow``) and
``_torch`` (with ``_torch_export`` and ``_torch_factory``); they are the only modules that
import TensorFlow or torch, and ``_load`` imports them only when an export runs.
This module detects the framework, records the preprocessing in the model's metadata, and
validates every export: the framework model and ONNX Runtime (CPU) run the same inputs
(dataset images when ``--dataset`` is given) and must agree within a tolerance.
"""

from __future__ import annotations

__all__ = ["FrameworkModel", "detect_framework", "export", "preprocessing_metadata"]

import json
import math
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import onnx

from .. import core
from ..core import (
    EXPORT_KEY,
    PREPROCESS_KEY,
    ExportError,
    HalfconvError,
    InputNotFoundError,
    MissingDependencyError,
    UsageError,
    one_line,
)
from ._options import DATASET_IMAGE_SHAPES, ExportOptions
from ._results import BaselineExport, ExportResult

if TYPE_CHECKING:
    from ..datasets import Dataset

# The ONNX model must reproduce the framework's outputs to within this share of the
# largest output magnitude. Float32 exporters agree to about 1e-6. A model that computes
# in float16 or bfloat16 (a Keras mixed_float16 policy) rounds every value between layers
# to that type, and so does its export by its types; ONNX Runtime's CPU provider, which
# runs the check, computes float16 nodes in float32 and rounds less. The two may differ by
# a few units of roundoff per layer: the bound is 20 units of roundoff of the type (2**-11
# for float16, 2**-8 for bfloat16), which is 0.98% and 7.8%.
RELATIVE_TOLERANCE = 1e-4
COMPUTE_TOLERANCES = {"float32": RELATIVE_TOLERANCE, "float16": 20 * 2.0**-11, "bfloat16": 20 * 2.0**-8}
VALIDATION_SAMPLES = 64


class FrameworkModel(Protocol):
    """What a back end hands back: a loaded model that can run and be exported."""

    framework: str
    description: str  # e.g. "Keras 3 .keras file", "TorchScript archive"
    input_shape: tuple[int, ...] | None  # per-sample shape the model declares, if it does
    compute_dtype: str  # float32, float16 or bfloat16: the narrowest type a layer computes in
    # A back end whose models can compute in float16 also has ``float32_rebuild() ->
    # FrameworkModel``: the same weights computing in float32 (Keras; a SavedModel refuses).

    def run(self, x: np.ndarray) -> np.ndarray: ...

    def export(self, path: Path, input_shape: tuple[int, ...], opset: int) -> tuple[str, list[str]]:
        """Write the ONNX model with a dynamic batch axis; returns (exporter, notes)."""
        ...


def detect_framework(path: Path) -> str:
    """keras or torch, from the file's format; raises ExportError when it is neither."""
    if path.is_dir():
        if (path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file():
            return "keras"
        raise ExportError(f"{path} is a directory but not a TensorFlow SavedModel (no saved_model.pb)", "pass a .keras, .h5, .pt or .pt2 file")
    if not path.exists():
        raise InputNotFoundError(f"{path}: no such file", "check the path")
    suffix = path.suffix.lower()
    with path.open("rb") as handle:
        head = handle.read(8)
    if head.startswith(b"\x89HDF"):
        return "keras"
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except zipfile.BadZipFile:
            raise ExportError(f"{path} is a damaged zip archive", "re-save the model") from None
        if "config.json" in names and any(n.endswith(".weights.h5") or n == "model.weights.h5" for n in names):
            return "keras"
        if suffix == ".keras":
            return "keras"
        if any(n.endswith("data.pkl") or n.endswith("constants.pkl") or "/code/" in n or n.endswith(".json") for n in names):
            return "torch"
    if head[:1] == b"\x80" and suffix in (".pt", ".pth", ".bin"):
        return "torch"  # a legacy (non-zip) torch.save pickle
    if suffix in (".pt", ".pth", ".pt2"):
        return "torch"
    if suffix in (".keras", ".h5"):
        return "keras"
    raise ExportError(
        f"{path} is neither a Keras model (.keras, .h5, SavedModel folder) nor a PyTorch model (.pt, .pth, .pt2)",
        "pass --framework if the extension is unusual",
    )


def _load(path: Path, framework: str, options: ExportOptions) -> FrameworkModel:
    if framework == "keras":
        try:
            from . import _keras
        except ImportError as error:
            raise MissingDependencyError(
                f"exporting Keras models needs TensorFlow and tf2onnx ({error.name} is missing)",
                "pip install 'halfconv[keras]'",
            ) from None
        return _keras.load(path)
    try:
        from . import _torch
    except ImportError as error:
        raise MissingDependencyError(
            f"exporting PyTorch models needs torch and onnxscript ({error.name} is missing)",
            "pip install torch 'halfconv[torch]'",
        ) from None
    return _torch.load(path, factory=options.torch_factory, trust_pickle=options.trust_pickle)


def layout_of(input_shape: tuple[int, ...]) -> str | None:
    """The evaluate layout that a per-sample input shape implies, or None when unsure."""
    if len(input_shape) == 1:
        return "flat"
    if len(input_shape) == 2:
        return "hw"
    if len(input_shape) == 3:
        if input_shape[0] in (1, 3) and input_shape[2] not in (1, 3):
            return "nchw"
        if input_shape[2] in (1, 3):
            return "nhwc"
    return None


def preprocessing_metadata(
    input_shape: tuple[int, ...], dataset: str | None, mean: tuple[float, ...] | None, std: tuple[float, ...] | None, class_names: tuple[str, ...] | None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"scale": 1.0 / 255.0, "mean": list(mean or (0.0,)), "std": list(std or (1.0,))}
    layout = layout_of(input_shape)
    if layout is not None:
        meta["layout"] = layout
    if dataset is not None:
        meta["dataset"] = dataset
    if class_names:
        meta["class_names"] = list(class_names)
    return meta


def _sample_images(
    options: ExportOptions, test_set: Dataset | None
) -> tuple[np.ndarray | None, tuple[str, ...] | None, str]:
    if options.dataset is None:
        return None, None, "random"
    from ..datasets import load_dataset

    data = test_set or load_dataset(options.dataset, "test", data_dir=options.data_dir)
    return data.images[:VALIDATION_SAMPLES], data.class_names, f"{options.dataset} test images"


def _model_inputs(images: np.ndarray | None, input_shape: tuple[int, ...], meta: dict[str, Any]) -> np.ndarray:
    """Validation inputs: random, or dataset images through evaluate's own preprocessing."""
    if images is None:
        rng = np.random.default_rng(0)
        return rng.random((VALIDATION_SAMPLES, *input_shape), dtype=np.float32)
    from ..evaluation import Preprocessing, preprocess

    layout = meta.get("layout")
    single_channel = images.ndim == 3 or images.shape[-1] == 1
    if layout is None and single_channel and math.prod(images.shape[1:]) == math.prod(input_shape):
        layout = "reshape"  # a single-channel image reshapes unambiguously
    x = None
    if layout is not None:
        plan = Preprocessing(
            layout=str(layout),
            input_shape=("N", *input_shape),
            input_dtype="float32",
            scale=float(meta["scale"]),
            mean=tuple(meta["mean"]),
            std=tuple(meta["std"]),
            source="options",
            fixed_batch=None,
        )
        x = preprocess(images, plan)
    if x is None or tuple(x.shape[1:]) != tuple(input_shape):
        raise ExportError(
            f"{meta.get('dataset', 'dataset')} images of shape {tuple(images.shape[1:])} do not fit the model's input shape {input_shape}",
            "pass --input-shape, or export without --dataset",
        )
    return np.ascontiguousarray(x)


def _resolve_input_shape(model: FrameworkModel, options: ExportOptions) -> tuple[int, ...]:
    declared = model.input_shape
    if options.input_shape is not None:
        if declared is not None and tuple(declared) != tuple(options.input_shape):
            raise ExportError(
                f"--input-shape {','.join(map(str, options.input_shape))} contradicts the model's input shape {','.join(map(str, declared))}",
                "drop --input-shape or fix it",
            )
        return tuple(options.input_shape)
    if declared is not None:
        return tuple(declared)
    if options.dataset is not None:
        height, width, channels = DATASET_IMAGE_SHAPES[options.dataset]
        candidates = [(channels, height, width), (height, width, channels), (height * width * channels,)]
        if channels == 1:
            candidates.append((height, width))
        for shape in candidates:
            try:
                model.run(np.zeros((2, *shape), np.float32))
            except Exception:  # any framework error means "not this shape"
                continue
            return shape
        raise ExportError(
            f"the model accepts none of the {options.dataset} input shapes {', '.join(str(c) for c in candidates)}",
            "pass --input-shape",
        )
    raise UsageError("the model does not declare its input shape", "pass --input-shape (e.g. 1,28,28) or --dataset")


def export(model_path: str | Path, options: ExportOptions, *, test_set: Dataset | None = None) -> ExportResult:
    """Export ``model_path`` to ONNX, validate it against the framework, and write it atomically.

    ``test_set`` is the already loaded test split of ``options.dataset``, when the caller has it.
    """
    started = time.perf_counter()
    options.check()
    model_path = Path(model_path)
    if not model_path.exists():
        raise InputNotFoundError(f"{model_path}: no such file or directory", "check the path")
    framework = options.framework or detect_framework(model_path)
    named = model_path if model_path.name else model_path.resolve()  # "." has no name
    output = options.output or named.with_name((named.name if named.is_dir() else named.stem) + ".onnx")
    core.check_output_path(model_path, output, options.force, ())
    model = _load(model_path, framework, options)
    input_shape = _resolve_input_shape(model, options)
    images, class_names, inputs_from = _sample_images(options, test_set)
    meta = preprocessing_metadata(input_shape, options.dataset, options.mean, options.std, class_names)
    x = _model_inputs(images, input_shape, meta)
    reference = _reference_outputs(model, x)

    baseline_output = output.with_name(output.stem + ".fp32.onnx")
    if options.fp32_baseline and model.compute_dtype != "float32":
        core.check_output_path(model_path, baseline_output, options.force, ())
    with core.AtomicOutput(output) as staged:
        exporter, notes, max_abs, tolerance = _export_checked(model, staged.model_path, input_shape, options.opset, meta, x, reference)
        baseline = None
        if options.fp32_baseline and model.compute_dtype == "float32":
            notes.append("--fp32-baseline: the model computes in float32 already, so its export is the baseline")
        elif options.fp32_baseline:
            baseline = _export_baseline(model, baseline_output, input_shape, options.opset, meta, x)
        staged.commit()
    if model.compute_dtype != "float32" and baseline is None:
        notes.append(
            f"the model computes in {model.compute_dtype}: --fp32-baseline on its .keras file also writes its float32 rebuild"
        )
    return ExportResult(
        input_path=str(model_path),
        output_path=str(output),
        framework=framework,
        source_format=model.description,
        exporter=exporter,
        opset=options.opset,
        input_shape=input_shape,
        preprocessing=meta,
        validation_inputs=inputs_from,
        validation_samples=int(x.shape[0]),
        max_abs_diff=max_abs,
        tolerance=tolerance,
        notes=tuple(notes),
        wall_time_s=time.perf_counter() - started,
        compute_dtype=model.compute_dtype,
        baseline=baseline,
    )


def _export_checked(
    model: FrameworkModel,
    path: Path,
    input_shape: tuple[int, ...],
    opset: int,
    meta: dict[str, Any],
    x: np.ndarray,
    reference: np.ndarray,
) -> tuple[str, list[str], float, float]:
    """Export to ``path`` with the preprocessing recorded; (exporter, notes, max abs diff, tolerance)."""
    exporter, notes = model.export(path, input_shape, opset)
    proto = onnx.load(str(path))
    facts = {"framework": model.framework, "compute_dtype": model.compute_dtype}
    for key, value in ((PREPROCESS_KEY, meta), (EXPORT_KEY, facts)):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value, sort_keys=True)
    onnx.save(proto, str(path))
    max_abs = _validate(path, x, reference)
    relative = COMPUTE_TOLERANCES.get(model.compute_dtype, RELATIVE_TOLERANCE)
    tolerance = relative * max(1.0, float(np.abs(reference).max()))
    if not max_abs <= tolerance:
        raise ExportError(
            f"the ONNX export differs from the {model.framework} model by up to {max_abs:.3g} "
            f"(tolerance {tolerance:.3g} for a model that computes in {model.compute_dtype})",
            "the exporter mistranslated an op; try another --opset",
        )
    return exporter, list(notes), max_abs, tolerance


def _export_baseline(
    model: FrameworkModel, output: Path, input_shape: tuple[int, ...], opset: int, meta: dict[str, Any], x: np.ndarray
) -> BaselineExport:
    """The float32 rebuild of ``model``, exported and checked at float32's tolerance, then committed."""
    rebuild = getattr(model, "float32_rebuild", None)
    if rebuild is None:
        raise ExportError(f"a {model.description} cannot be rebuilt to compute in float32", "export the model's float32 version")
    rebuilt: FrameworkModel = rebuild()
    with core.AtomicOutput(output) as staged:
        _, _, max_abs, tolerance = _export_checked(rebuilt, staged.model_path, input_shape, opset, meta, x, _reference_outputs(rebuilt, x))
        staged.commit()
    return BaselineExport(str(output), max_abs, tolerance)


def _reference_outputs(model: FrameworkModel, x: np.ndarray) -> np.ndarray:
    """What the framework computes for ``x``, which the ONNX model must reproduce."""
    try:
        return np.asarray(model.run(x), dtype=np.float32)
    except Exception as error:  # the framework's own error, in one line
        raise ExportError(
            f"the model fails on inputs of shape {tuple(x.shape)}: {one_line(error)}",
            "pass the --input-shape the model was trained with",
        ) from None


def _validate(path: Path, x: np.ndarray, reference: np.ndarray) -> float:
    try:
        onnx.checker.check_model(str(path), full_check=True)
        session = core.create_session(path, core.resolve_provider("cpu"))
        if len(session.get_inputs()) != 1 or len(session.get_outputs()) != 1:
            raise ExportError(
                f"the exported model has {len(session.get_inputs())} inputs and {len(session.get_outputs())} outputs",
                "halfconv exports classifiers with one input and one output",
            )
        outputs = session.run(None, {session.get_inputs()[0].name: x})
    except ExportError:
        raise
    except Exception as error:  # checker, load and run errors come as several types
        message = error.what if isinstance(error, HalfconvError) else one_line(error)
        raise ExportError(
            f"the exported model does not load or run in ONNX Runtime: {message}",
            "try another --opset",
        ) from None
    result = np.asarray(outputs[0], dtype=np.float32)
    if result.shape != reference.shape:
        raise ExportError(
            f"the exported model outputs shape {result.shape}, the framework {reference.shape}",
            "check the batch axis of the model",
        )
    return float(np.max(np.abs(result - reference))) if result.size else 0.0

