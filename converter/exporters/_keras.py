"""The Keras / TensorFlow back end of ``halfconv export``: ``load`` and Keras model files.

Three formats load: Keras ``.keras`` archives and legacy ``.h5`` files (here, through
``keras.models.load_model``), and TensorFlow SavedModel folders (in ``_saved_model``).
Keras models go to ONNX through Keras' own ``Model.export(format="onnx")``, which is
tf2onnx underneath; ``tf2onnx.convert.from_keras`` is not used because it fails on Keras 3
models.

This module, ``_saved_model`` and ``_tensorflow`` are the ones that import TensorFlow;
importing them raises ImportError when TensorFlow, Keras or tf2onnx is missing, which
``_pipeline._load`` reports as a missing extra.
"""

from __future__ import annotations

__all__ = ["KerasModel", "load"]

import contextlib
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..core import ExportError, one_line
from ._saved_model import SavedModel, load_saved_model
from ._tensorflow import (
    INPUT_NAME,
    check_opset,
    exporter_failed,
    finish_onnx,
    keras,
    on_cpu,
    per_sample_shape,
    quiet,
    run_batched,
    tf,
    tf2onnx,
)

_HDF5_MAGIC = b"\x89HDF"


class KerasModel:
    """A loaded Keras model; satisfies ``_pipeline.FrameworkModel``."""

    framework = "keras"

    def __init__(self, model: Any, description: str) -> None:
        self._model = model
        self.description = description
        self.input_shape: tuple[int, ...] | None = None
        self.compute_dtype = _compute_dtype(model)
        inputs = _model_tensors(model, "inputs")
        outputs = _model_tensors(model, "outputs")
        if inputs is not None and len(inputs) != 1:
            raise ExportError(f"the Keras model has {len(inputs)} inputs", "halfconv exports classifiers with one input")
        if outputs is not None and len(outputs) != 1:
            raise ExportError(f"the Keras model has {len(outputs)} outputs", "halfconv exports classifiers with one output")
        if inputs:
            dtype = str(getattr(inputs[0], "dtype", "float32"))
            if "float32" not in dtype:
                raise ExportError(
                    f"the Keras model's input is {dtype}, not float32",
                    "halfconv exports classifiers that take float32 images",
                )
            self.input_shape = per_sample_shape(inputs[0].shape)

    def run(self, x: np.ndarray) -> np.ndarray:
        return run_batched(lambda batch: self._model(batch, training=False), x)

    def float32_rebuild(self) -> KerasModel:
        """Every layer cloned under the float32 policy, with this model's weights.

        A mixed_float16 model keeps its variables in float32 and only computes in float16,
        so the rebuild holds exactly the trained weights and computes them in float32.
        """
        try:
            with quiet(), on_cpu():
                rebuilt = keras.models.clone_model(self._model, clone_function=_float32_layer)
                rebuilt.set_weights(self._model.get_weights())
        except Exception as error:  # Keras raises anything for a layer that does not clone
            raise ExportError(
                f"cannot rebuild the Keras model under the float32 policy: {one_line(error)}",
                "rebuild it yourself with keras.mixed_precision.set_global_policy('float32') and load the weights",
            ) from None
        return KerasModel(rebuilt, f"{self.description}, rebuilt under the float32 policy")

    def export(self, path: Path, input_shape: tuple[int, ...], opset: int) -> tuple[str, list[str]]:
        check_opset(opset)
        spec = tf.TensorSpec(shape=(None, *input_shape), dtype=tf.float32, name=INPUT_NAME)
        try:
            with quiet(), on_cpu():
                self._model.export(str(path), format="onnx", input_signature=[spec], opset_version=opset, verbose=False)
        except Exception as error:  # tf2onnx raises anything for an op it cannot translate
            raise exporter_failed("the Keras model", error) from None
        finish_onnx(path)
        notes = []
        policy = getattr(getattr(self._model, "dtype_policy", None), "name", "float32")
        if policy != "float32":
            notes.append(f"the model's dtype policy is {policy}; its ONNX export computes in that precision")
        return f"keras {keras.__version__} Model.export(format='onnx') via tf2onnx {tf2onnx.__version__}, opset {opset}", notes


def _compute_dtype(model: Any) -> str:
    """The narrowest float type that any layer computes in: float16, bfloat16 or float32."""
    found: set[str] = set()
    pending = [model]
    while pending:
        layer = pending.pop()
        found.add(str(getattr(getattr(layer, "dtype_policy", None), "compute_dtype", "float32")))
        pending.extend(getattr(layer, "layers", ()) if layer is model or isinstance(layer, keras.Model) else ())
    return next((name for name in ("float16", "bfloat16") if name in found), "float32")


def _float32_layer(layer: Any) -> Any:
    config = layer.get_config()
    config["dtype"] = "float32"
    return layer.__class__.from_config(config)


def _model_tensors(model: Any, attribute: str) -> list[Any] | None:
    try:
        tensors = getattr(model, attribute)
    except (AttributeError, ValueError):  # a subclassed or never-built model has none
        return None
    return None if tensors is None else list(tensors)


def _keras_format(path: Path) -> tuple[str, str]:
    """(the suffix keras.models.load_model needs, a description), from the file's bytes."""
    with path.open("rb") as handle:
        head = handle.read(8)
    if head.startswith(_HDF5_MAGIC):
        return ".h5", "Keras HDF5 .h5 file"
    if zipfile.is_zipfile(path):
        return ".keras", "Keras 3 .keras file"
    if path.suffix.lower() == ".keras":
        raise ExportError(
            f"cannot load Keras model {path}: it is not a zip archive, which every .keras file is",
            "the file is truncated or not a Keras model; re-save it with model.save('model.keras')",
        )
    raise ExportError(
        f"cannot load Keras model {path}: it is neither a .keras zip archive nor an HDF5 .h5 file",
        "re-save it with model.save('model.keras')",
    )


def _load_hint(reason: str) -> str:
    if "No model config" in reason:
        return "the file holds weights or data but no model; save the whole model with model.save('model.keras')"
    if "Unknown" in reason or "Could not locate" in reason or "custom_objects" in reason:
        return "register custom layers with @keras.saving.register_keras_serializable() in an importable module"
    if "safe_mode" in reason or "Lambda" in reason:
        return "halfconv loads with safe_mode, which refuses Lambda layers; replace them with registered layers"
    return "the file is damaged or from an incompatible Keras version; re-save it with model.save('model.keras')"


def _load_keras_file(path: Path) -> KerasModel:
    suffix, description = _keras_format(path)
    with contextlib.ExitStack() as stack:
        source = path
        if path.suffix.lower() not in ((suffix, ".hdf5") if suffix == ".h5" else (suffix,)):
            # load_model picks the format by extension; give it a link with the right one.
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="halfconv-")))
            source = folder / f"model{suffix}"
            try:
                source.symlink_to(path.resolve())
            except OSError:
                shutil.copyfile(path, source)
        try:
            with quiet(), on_cpu():
                model = keras.models.load_model(str(source), compile=False)
        except Exception as error:  # Keras raises anything from a bad file
            raise ExportError(f"cannot load Keras model {path}: {one_line(error)}", _load_hint(str(error))) from None
    if not isinstance(model, keras.Model):
        raise ExportError(f"cannot load Keras model {path}: it holds a {type(model).__name__}, not a model", "save the whole model")
    return KerasModel(model, description)


def load(path: Path) -> KerasModel | SavedModel:
    """Load a .keras or .h5 file, or a SavedModel folder; raises ExportError if it cannot."""
    path = Path(path)
    if keras.backend.backend() != "tensorflow":
        raise ExportError(
            f"Keras was imported with the {keras.backend.backend()} backend before halfconv loaded it",
            "set KERAS_BACKEND=tensorflow; halfconv exports Keras models through TensorFlow",
        )
    if path.is_dir():
        return load_saved_model(path)
    return _load_keras_file(path)
