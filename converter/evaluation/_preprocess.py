"""Turning dataset images into what a model's input expects.

The layout is inferred from the model's input shape: MNIST fits (N,1,28,28), (N,28,28,1),
(N,28,28), (N,784) or any other per-sample shape of 784 elements (fed by reshaping);
CIFAR-10 fits (N,3,32,32), (N,32,32,3) or (N,3072) ("flat": the channels-last image
flattened, as Keras' Flatten does). Pixels are scaled to [0, 1] by default, then
normalised by ``--mean``/``--std``; preprocessing that ``halfconv export`` wrote into the
model's metadata is used when present, and explicit options win over it.
"""

from __future__ import annotations

__all__ = ["ModelSignature", "plan_preprocessing", "preprocess", "read_signature"]

import dataclasses
import json
import math

import numpy as np
import onnxruntime as ort

from ..core import ORT_NUMPY_TYPES, PREPROCESS_KEY, DatasetError, IncompatibleModelError, UsageError, choices_text
from ._options import LAYOUTS, MAX_BATCH_SIZE
from ._results import Preprocessing

# The input types images can be fed as.
_IMAGE_INPUT_TYPES = ("tensor(float)", "tensor(float16)", "tensor(double)", "tensor(uint8)")


@dataclasses.dataclass(frozen=True)
class ModelSignature:
    input_name: str
    input_shape: tuple[int | str | None, ...]
    input_type: str
    output_name: str
    output_shape: tuple[int | str | None, ...]
    metadata: dict[str, str]


def read_signature(session: ort.InferenceSession, model_name: str, *, ignore: frozenset[str] = frozenset()) -> ModelSignature:
    """The image input and the class output of a classifier; ``ignore`` names inputs and outputs halfconv added."""
    inputs = [i for i in session.get_inputs() if i.name not in ignore]
    outputs = [o for o in session.get_outputs() if o.name not in ignore]
    if len(inputs) != 1:
        raise IncompatibleModelError(
            f"{model_name} has {len(inputs)} inputs ({', '.join(i.name for i in inputs)})",
            "halfconv evaluates image classifiers with one input",
        )
    if len(outputs) != 1:
        raise IncompatibleModelError(
            f"{model_name} has {len(outputs)} outputs ({', '.join(o.name for o in outputs)})",
            "halfconv evaluates classifiers with a single (N, classes) output",
        )
    output_shape = tuple(outputs[0].shape) if outputs[0].shape is not None else ()
    if len(output_shape) != 2:
        raise IncompatibleModelError(
            f"{model_name}'s output '{outputs[0].name}' has shape {_shape_text(output_shape)}, not (N, classes)",
            "halfconv evaluates classifiers that output logits or probabilities per class",
        )
    if inputs[0].type not in _IMAGE_INPUT_TYPES:
        raise IncompatibleModelError(
            f"{model_name}'s input '{inputs[0].name}' is {inputs[0].type}",
            "halfconv feeds images as float32, float16, double or uint8",
        )
    metadata = dict(session.get_modelmeta().custom_metadata_map)
    return ModelSignature(
        inputs[0].name, tuple(inputs[0].shape), inputs[0].type, outputs[0].name, output_shape, metadata
    )


def _shape_text(shape: tuple[object, ...]) -> str:
    return "(" + ", ".join("N" if i == 0 and not isinstance(d, int) else str(d) for i, d in enumerate(shape)) + ")"


def _matches(declared: tuple[int | str | None, ...], wanted: tuple[int, ...]) -> bool:
    if len(declared) != len(wanted):
        return False
    return all(not isinstance(d, int) or d == w for d, w in zip(declared, wanted))


def _layout_shapes(image_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """Per-sample shapes of each layout for an (H, W) or (H, W, C) image, or an already flat (F,) one."""
    if len(image_shape) == 1:
        return {"flat": image_shape}  # e.g. an .npz of flattened images
    height, width = image_shape[:2]
    channels = image_shape[2] if len(image_shape) == 3 else 1
    shapes = {
        "nchw": (channels, height, width),
        "nhwc": (height, width, channels),
        "flat": (height * width * channels,),
    }
    if channels == 1:
        shapes["hw"] = (height, width)
    return shapes


def _recorded(signature: ModelSignature) -> dict[str, object]:
    """The preprocessing that ``halfconv export`` recorded in the model's metadata, or {}."""
    try:
        loaded = json.loads(signature.metadata.get(PREPROCESS_KEY, "{}"))
    except json.JSONDecodeError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _choose_layout(
    signature: ModelSignature, image_shape: tuple[int, ...], layout: str, recorded: object, dataset_name: str, model_name: str
) -> str:
    sample_shape = signature.input_shape[1:]
    shapes = _layout_shapes(image_shape)
    if layout == "auto" and isinstance(recorded, str) and recorded in shapes and _matches(sample_shape, shapes[recorded]):
        # The recorded layout only decides among shapes that fit; images that fit none get
        # the shape mismatch error below, not one about a --layout the user never gave.
        return recorded
    if layout == "auto":
        found = [name for name, shape in shapes.items() if _matches(sample_shape, shape)]
        fixed_dims = [d for d in sample_shape if isinstance(d, int)]
        if not found and len(fixed_dims) == len(sample_shape) and math.prod(fixed_dims) == math.prod(image_shape):
            # A single-channel image has one pixel order, so any reshaping of it is unambiguous.
            found = ["reshape"] if len(image_shape) < 3 or image_shape[2] == 1 else []
        if not found:
            raise IncompatibleModelError(
                f"{model_name} expects input {_shape_text(signature.input_shape)} but {dataset_name} images are "
                f"{'x'.join(map(str, image_shape))} (fits {', '.join(_shape_text(('N', *s)) for s in shapes.values())})",
                "pick the dataset the model was trained on, or pass --layout",
            )
        return found[0]
    if layout in shapes and not _matches(sample_shape, shapes[layout]):
        raise IncompatibleModelError(
            f"--layout {layout} gives {dataset_name} samples of shape {_shape_text(('N', *shapes[layout]))} "
            f"but {model_name} expects {_shape_text(signature.input_shape)}",
            "use --layout auto or the layout the model was trained with",
        )
    return layout


def _normalisation(
    signature: ModelSignature,
    meta: dict[str, object],
    mean: tuple[float, ...] | None,
    std: tuple[float, ...] | None,
    channels: int,
    dataset_name: str,
    model_name: str,
) -> tuple[float, tuple[float, ...], tuple[float, ...], str]:
    """(scale, mean, std, where they came from): options over recorded metadata over defaults."""
    source = "default"
    scale = 1.0 if signature.input_type == "tensor(uint8)" else 1.0 / 255.0
    mean_values: tuple[float, ...] = (0.0,)
    std_values: tuple[float, ...] = (1.0,)
    if meta:
        source = "metadata"
        scale = _recorded_floats(meta, "scale", (scale,), model_name)[0]
        mean_values = _recorded_floats(meta, "mean", mean_values, model_name)
        std_values = _recorded_floats(meta, "std", std_values, model_name)
    if mean is not None or std is not None:
        source = "options"
        # An option replaces only its own setting; the other keeps its metadata/default value.
        mean_values = mean if mean is not None else mean_values
        std_values = std if std is not None else std_values
    for name, values in (("--mean", mean_values), ("--std", std_values)):
        if len(values) not in (1, channels):
            expected = "1 value" if channels == 1 else f"1 or {channels} values"
            raise UsageError(f"{name} takes {expected} for {dataset_name}, got {len(values)}", "pass one value per channel")
    if not all(math.isfinite(v) for v in (*mean_values, *std_values)):
        raise UsageError("--mean and --std must be finite numbers", "pass the mean and standard deviation used in training")
    if any(v == 0 for v in std_values):
        raise UsageError("--std values must be non-zero", "pass the standard deviations used in training")
    return scale, mean_values, std_values, source


def plan_preprocessing(
    signature: ModelSignature,
    image_shape: tuple[int, ...],
    *,
    layout: str = "auto",
    mean: tuple[float, ...] | None = None,
    std: tuple[float, ...] | None = None,
    dataset_name: str,
    model_name: str,
) -> Preprocessing:
    """Choose layout and normalisation; raises IncompatibleModelError when the model cannot take the images."""
    if layout not in LAYOUTS:
        raise UsageError(f"unknown layout '{layout}'", "use " + choices_text(LAYOUTS))
    if len(image_shape) not in (1, 2, 3):
        raise DatasetError(
            f"{dataset_name} samples have shape {_shape_text(image_shape)}, not (H, W), (H, W, C) or flat (F,)",
            "store the images as (N, H, W), (N, H, W, C) or (N, F)",
        )
    meta = _recorded(signature)
    chosen = _choose_layout(signature, image_shape, layout, meta.get("layout"), dataset_name, model_name)
    channels = image_shape[2] if len(image_shape) == 3 else 1
    scale, mean_values, std_values, source = _normalisation(signature, meta, mean, std, channels, dataset_name, model_name)
    fixed = signature.input_shape[0] if signature.input_shape and isinstance(signature.input_shape[0], int) else None
    if fixed is not None and not 1 <= fixed <= MAX_BATCH_SIZE:
        # Each run pads its batch to this size: it bounds the memory one batch takes.
        raise IncompatibleModelError(
            f"{model_name}'s input declares a fixed batch of {fixed:,} images",
            f"export it with a dynamic batch axis, or a fixed batch from 1 to {MAX_BATCH_SIZE:,}",
        )
    return Preprocessing(
        layout=chosen,
        input_shape=tuple(d if isinstance(d, int) else str(d) for d in signature.input_shape),
        input_dtype=str(np.dtype(ORT_NUMPY_TYPES[signature.input_type])),
        scale=scale,
        mean=mean_values,
        std=std_values,
        source=source,
        fixed_batch=fixed,
    )


def _recorded_floats(meta: dict[str, object], key: str, default: tuple[float, ...], model_name: str) -> tuple[float, ...]:
    """A number or list of numbers from the recorded preprocessing; a clear error for anything else."""
    value = meta.get(key)
    if value is None:
        return default
    values = value if isinstance(value, list) else [value]
    numbers = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if not numbers or len(numbers) != len(values) or not all(math.isfinite(v) for v in numbers):
        raise IncompatibleModelError(
            f"{model_name}'s recorded preprocessing ({PREPROCESS_KEY}) has {key} {json.dumps(value)[:80]}, not finite numbers",
            "pass --mean and --std, or re-export the model with halfconv export",
        )
    return tuple(numbers)


def preprocess(images: np.ndarray, plan: Preprocessing) -> np.ndarray:
    """All images at once, in the model's layout and dtype (a float32 copy of the test set is ~120 MB)."""
    x = images.astype(np.float32)
    if x.ndim == 3:
        x = x[..., np.newaxis]  # (N, H, W) -> (N, H, W, 1)
    x *= np.float32(plan.scale)
    mean = np.asarray(plan.mean, dtype=np.float32)
    std = np.asarray(plan.std, dtype=np.float32)
    if mean.any() or (std != 1).any():
        x = (x - mean) / std  # broadcasts over the channel axis (last)
    count = x.shape[0]
    if plan.layout == "nchw":
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    elif plan.layout == "hw":
        x = x[..., 0]
    elif plan.layout == "flat":
        x = x.reshape(count, -1)
    elif plan.layout == "reshape":
        x = x.reshape(count, *(int(d) for d in plan.input_shape[1:]))
    dtype = np.dtype(plan.input_dtype)
    if dtype == np.uint8:
        return np.clip(np.rint(x), 0, 255).astype(np.uint8)
    return x.astype(dtype, copy=False)
