"""The Keras / TensorFlow back end of ``halfconv export``.

Three formats load: Keras ``.keras`` archives and legacy ``.h5`` files (through
``keras.models.load_model``), and TensorFlow SavedModel folders (through
``tf.saved_model.load``, using the ``serving_default`` signature or the ``serve``
endpoint that ``Model.export`` writes). Keras models go to ONNX through Keras' own
``Model.export(format="onnx")``; SavedModels through ``tf2onnx.convert.from_function``.
Both are tf2onnx underneath; ``tf2onnx.convert.from_keras`` is not used because it fails
on Keras 3 models.

This is one of the two modules that import TensorFlow. Importing it raises ImportError
when TensorFlow, Keras or tf2onnx is missing, which ``_export`` reports as a missing extra.
"""

from __future__ import annotations

__all__ = ["load"]

import contextlib
import logging
import os
import shutil
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from ..core import ExportError, UsageError, one_line

# Batches of this many samples keep ``run`` from holding a whole dataset in TensorFlow.
_RUN_BATCH = 256
_INPUT_NAME = "input"
_OUTPUT_NAME = "output"
_BATCH_DIM = "batch"
_HDF5_MAGIC = b"\x89HDF"


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null for the duration.

    TensorFlow's C++ runtime prints oneDNN and CUDA notices while it loads, before
    absl logging is initialised, so TF_CPP_MIN_LOG_LEVEL cannot hold them back.
    """
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no usable stderr (a daemon, a closed descriptor): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    """Set environment variables for the duration, then restore what was there."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _import_frameworks() -> tuple[Any, Any, Any]:
    # TF_CPP_MIN_LOG_LEVEL holds back TensorFlow's C++ start-up notices; KERAS_BACKEND makes
    # Keras, which picks its backend when first imported, drive TensorFlow whatever
    # ~/.keras/keras.json says. Both apply to the import only and are restored after it.
    with _environment(TF_CPP_MIN_LOG_LEVEL="2", KERAS_BACKEND="tensorflow"), _stderr_silenced():
        import keras
        import tensorflow as tf
        import tf2onnx
        import tf2onnx.constants
        import tf2onnx.convert
    return tf, keras, tf2onnx


tf, keras, tf2onnx = _import_frameworks()
_QUIET_LOGGERS = ("tensorflow", "tf2onnx", "absl")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Hold back TensorFlow's, tf2onnx's and Keras' warnings and log records, then restore the levels."""
    loggers = [logging.getLogger(name) for name in _QUIET_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            # Keras' tf2onnx numpy-2 patch probes np.object, which numpy 2 warns about.
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


@contextlib.contextmanager
def _on_cpu() -> Iterator[None]:
    """Run TensorFlow on the CPU.

    Exports are compared with ONNX Runtime on the CPU, and a GPU would run TF32 matmuls that
    differ from float32 by more than the tolerance. TensorFlow also reserves a GPU's whole
    memory when it first touches it, which would starve ONNX Runtime's CUDA provider later
    in the same process; memory growth (settable only before TensorFlow starts, and then
    for the rest of the process) makes it reserve only what it uses, which on the CPU is nothing.
    """
    for gpu in tf.config.list_physical_devices("GPU"):
        with contextlib.suppress(RuntimeError, ValueError):  # TensorFlow already started
            tf.config.experimental.set_memory_growth(gpu, True)
    with tf.device("/CPU:0"):
        yield


def _tf2onnx_max_opset() -> int:
    return max(tf2onnx.constants.OPSET_TO_IR_VERSION)


def _check_opset(opset: int) -> None:
    highest = _tf2onnx_max_opset()
    if opset > highest:
        raise UsageError(
            f"tf2onnx {tf2onnx.__version__} exports ONNX opsets up to {highest}, not {opset}",
            f"use --opset {highest} or lower for Keras and TensorFlow models",
        )


def _exporter_failed(what: str, error: Exception) -> ExportError:
    return ExportError(
        f"tf2onnx cannot convert {what}: {one_line(error)}",
        f"try another --opset (tf2onnx supports up to {_tf2onnx_max_opset()}); custom layers may have no ONNX translation",
    )


def _per_sample_shape(shape: Any) -> tuple[int, ...] | None:
    """The shape without its batch axis, or None unless every other axis is known."""
    dims = tuple(shape)
    if len(dims) < 2 or any(d is None for d in dims[1:]):
        return None
    return tuple(int(d) for d in dims[1:])


def _finish_onnx(path: Path) -> None:
    """Name the input, output and batch axis plainly, and check the model's interface.

    tf2onnx names them after TensorFlow tensors ("Identity:0", "unk__21"); the checks
    make sure the rest of halfconv gets one input and one output with a symbolic batch.
    """
    proto = onnx.load(str(path))
    graph = proto.graph
    initializers = {tensor.name for tensor in graph.initializer}
    inputs = [value for value in graph.input if value.name not in initializers]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise ExportError(
            f"the exported model has {len(inputs)} inputs and {len(graph.output)} outputs",
            "halfconv exports classifiers with one input and one output",
        )
    batch_names: set[str] = set()
    for value in (inputs[0], graph.output[0]):
        dims = value.type.tensor_type.shape.dim
        if not dims or dims[0].HasField("dim_value"):
            raise ExportError(
                f"the exported model's {value.name!r} has a fixed batch size",
                "the model must accept any batch size; re-save it with a None batch axis",
            )
        if dims[0].dim_param:
            batch_names.add(dims[0].dim_param)
    for value in (*graph.input, *graph.output, *graph.value_info):
        for dim in value.type.tensor_type.shape.dim:
            if dim.HasField("dim_param") and dim.dim_param in batch_names:
                dim.dim_param = _BATCH_DIM
    for value in (inputs[0], graph.output[0]):
        dims = value.type.tensor_type.shape.dim
        if not dims[0].dim_param:
            dims[0].dim_param = _BATCH_DIM
    _rename_value(graph, graph.output[0].name, _OUTPUT_NAME)
    onnx.save(proto, str(path))


def _rename_value(graph: onnx.GraphProto, old: str, new: str) -> None:
    taken = any(new in (*node.input, *node.output) for node in graph.node)
    # A subgraph may refer to the value by its old name; such models keep their names.
    has_subgraphs = any(attr.HasField("g") or attr.graphs for node in graph.node for attr in node.attribute)
    if old == new or taken or has_subgraphs:
        return
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]
    for value in (*graph.input, *graph.output, *graph.value_info):
        if value.name == old:
            value.name = new


def _run_batched(call: Callable[[Any], Any], x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    outputs = []
    for start in range(0, max(len(x), 1), _RUN_BATCH):
        with _quiet(), _on_cpu():
            result = call(tf.constant(x[start : start + _RUN_BATCH]))
        flat = tf.nest.flatten(result)
        if len(flat) != 1:
            raise ExportError(f"the model returns {len(flat)} outputs", "halfconv exports classifiers with one output")
        outputs.append(np.asarray(flat[0], dtype=np.float32))
    return np.concatenate(outputs) if len(outputs) > 1 else outputs[0]


# -- Keras models ---------------------------------------------------------------------------


class KerasModel:
    framework = "keras"

    def __init__(self, model: Any, description: str) -> None:
        self._model = model
        self.description = description
        self.input_shape = None
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
            self.input_shape = _per_sample_shape(inputs[0].shape)

    def run(self, x: np.ndarray) -> np.ndarray:
        return _run_batched(lambda batch: self._model(batch, training=False), x)

    def export(self, path: Path, input_shape: tuple[int, ...], opset: int) -> tuple[str, list[str]]:
        _check_opset(opset)
        spec = tf.TensorSpec(shape=(None, *input_shape), dtype=tf.float32, name=_INPUT_NAME)
        try:
            with _quiet(), _on_cpu():
                self._model.export(str(path), format="onnx", input_signature=[spec], opset_version=opset, verbose=False)
        except Exception as error:  # noqa: BLE001 - tf2onnx raises anything for an op it cannot translate
            raise _exporter_failed("the Keras model", error) from None
        _finish_onnx(path)
        notes = []
        policy = getattr(getattr(self._model, "dtype_policy", None), "name", "float32")
        if policy != "float32":
            notes.append(f"the model's dtype policy is {policy}; its ONNX export computes in that precision")
        return f"keras {keras.__version__} Model.export(format='onnx') via tf2onnx {tf2onnx.__version__}, opset {opset}", notes


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
            with _quiet(), _on_cpu():
                model = keras.models.load_model(str(source), compile=False)
        except Exception as error:  # noqa: BLE001 - Keras raises anything from a bad file
            raise ExportError(f"cannot load Keras model {path}: {one_line(error)}", _load_hint(str(error))) from None
    if not isinstance(model, keras.Model):
        raise ExportError(f"cannot load Keras model {path}: it holds a {type(model).__name__}, not a model", "save the whole model")
    return KerasModel(model, description)


# -- SavedModel folders ---------------------------------------------------------------------


class SavedModel:
    framework = "keras"
    description = "TensorFlow SavedModel"

    def __init__(self, path: Path, loaded: Any) -> None:
        self._loaded = loaded  # keeps the variables alive while the functions are used
        call, spec, endpoint = _endpoint(path, loaded)
        self._call = call
        self._endpoint = endpoint
        if spec.dtype != tf.float32:
            raise ExportError(
                f"the SavedModel's {endpoint} takes {spec.dtype.name}, not float32",
                "halfconv exports classifiers that take float32 images",
            )
        if spec.shape.rank is None or spec.shape.rank < 2:
            self.input_shape = None
        else:
            if spec.shape[0] is not None:
                raise ExportError(
                    f"the SavedModel's {endpoint} has a fixed batch size of {spec.shape[0]}",
                    "re-export it with a None batch axis, e.g. keras Model.export(dir)",
                )
            self.input_shape = _per_sample_shape(spec.shape.as_list())

    def run(self, x: np.ndarray) -> np.ndarray:
        return _run_batched(self._call, x)

    def export(self, path: Path, input_shape: tuple[int, ...], opset: int) -> tuple[str, list[str]]:
        _check_opset(opset)
        call = self._call

        @tf.function
        def forward(x: Any) -> Any:
            return tf.nest.flatten(call(x))[0]

        spec = tf.TensorSpec(shape=(None, *input_shape), dtype=tf.float32, name=_INPUT_NAME)
        try:
            with _quiet(), _on_cpu():
                _patch_tf2onnx_for_numpy2()
                tf2onnx.convert.from_function(forward, input_signature=[spec], opset=opset, output_path=str(path))
        except Exception as error:  # noqa: BLE001 - tf2onnx raises anything for an op it cannot translate
            raise _exporter_failed("the SavedModel", error) from None
        _finish_onnx(path)
        return f"tf2onnx {tf2onnx.__version__} convert.from_function, opset {opset}", [f"exported the SavedModel's {self._endpoint}"]


def _patch_tf2onnx_for_numpy2() -> None:
    # tf2onnx 1.17 still calls numpy APIs that numpy 2 removed; Keras ships the fix that
    # its own ONNX export applies, so SavedModels get the same one.
    try:
        from keras.src.export.tf2onnx_lib import patch_tf2onnx
    except ImportError:
        return
    patch_tf2onnx()


def _endpoint(path: Path, loaded: Any) -> tuple[Callable[[Any], Any], Any, str]:
    """The function to call, its input spec, and its name for messages."""
    signatures = getattr(loaded, "signatures", {})
    signature = signatures.get("serving_default") if signatures else None
    if signature is not None:
        _, kwargs = signature.structured_input_signature
        outputs = signature.structured_outputs
        if len(kwargs) != 1:
            raise ExportError(
                f"the SavedModel's serving_default signature takes {len(kwargs)} inputs",
                "halfconv exports classifiers with one input",
            )
        if len(tf.nest.flatten(outputs)) != 1:
            raise ExportError(
                f"the SavedModel's serving_default signature returns {len(tf.nest.flatten(outputs))} outputs",
                "halfconv exports classifiers with one output",
            )
        (name, spec), = kwargs.items()
        return (lambda x: signature(**{name: x})), spec, "serving_default signature"
    serve = getattr(loaded, "serve", None)
    functions = list(getattr(serve, "concrete_functions", ()) or ())
    if len(functions) == 1:
        function = functions[0]
        args, kwargs = function.structured_input_signature
        flat = tf.nest.flatten((args, kwargs))
        if len(flat) != 1 or kwargs:
            raise ExportError(f"the SavedModel's serve endpoint takes {len(flat)} inputs", "halfconv exports classifiers with one input")
        return (lambda x: function(x)), flat[0], "serve endpoint"
    raise ExportError(
        f"the SavedModel {path} has no serving_default signature and no serve endpoint with one traced function",
        "save it with keras Model.export(dir), or tf.saved_model.save(obj, dir, signatures=...)",
    )


def _load_saved_model(path: Path) -> SavedModel:
    try:
        with _quiet(), _on_cpu():
            loaded = tf.saved_model.load(str(path))
    except Exception as error:  # noqa: BLE001 - TensorFlow raises many types for a bad folder
        raise ExportError(
            f"cannot load TensorFlow SavedModel {path}: {one_line(error)}",
            "the folder is incomplete or was written by a newer TensorFlow; re-export it",
        ) from None
    return SavedModel(path, loaded)


def load(path: Path) -> KerasModel | SavedModel:
    """Load a .keras or .h5 file, or a SavedModel folder; raises ExportError if it cannot."""
    path = Path(path)
    if keras.backend.backend() != "tensorflow":
        raise ExportError(
            f"Keras was imported with the {keras.backend.backend()} backend before halfconv loaded it",
            "set KERAS_BACKEND=tensorflow; halfconv exports Keras models through TensorFlow",
        )
    if path.is_dir():
        return _load_saved_model(path)
    return _load_keras_file(path)
