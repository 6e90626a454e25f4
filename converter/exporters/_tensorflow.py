"""TensorFlow for the Keras back end: the import, a quiet CPU to run on, and ONNX files tidied.

This module imports TensorFlow, Keras and tf2onnx, and raises ImportError when one is
missing, which ``_pipeline._load`` reports as a missing extra. Importing it leaves the
process as it was, but for one setting: a GPU's memory grows as TensorFlow uses it
(TensorFlow reserves a whole GPU otherwise). The environment variables it sets for the
import are restored after it, log levels are lowered only while TensorFlow runs, and GPUs
stay visible to the rest of the process.
"""

from __future__ import annotations

__all__ = [
    "INPUT_NAME",
    "check_opset",
    "exporter_failed",
    "finish_onnx",
    "keras",
    "on_cpu",
    "per_sample_shape",
    "quiet",
    "run_batched",
    "tf",
    "tf2onnx",
]

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from ..core import ExportError, UsageError, one_line

INPUT_NAME = "input"
_OUTPUT_NAME = "output"
_BATCH_DIM = "batch"
# Batches of this many samples keep ``run_batched`` from holding a whole dataset in TensorFlow.
_RUN_BATCH = 256
_QUIET_LOGGERS = ("tensorflow", "tf2onnx", "absl")


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null for the duration.

    TensorFlow's C++ runtime prints oneDNN notices while it loads, and CUDA errors
    ("failed call to cuInit") when it first looks for GPUs, before absl logging is
    initialised; TF_CPP_MIN_LOG_LEVEL cannot hold them back.
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

        from . import _tf_ops  # noqa: F401 - registers the handlers of ops tf2onnx lacks

        # Looking for GPUs initialises CUDA, which prints its errors here, silenced.
        # TensorFlow reserves a GPU's whole memory when it first touches it, which would
        # starve ONNX Runtime's CUDA provider later in the same process; memory growth
        # (settable only before TensorFlow starts, and then for the rest of the process)
        # makes it reserve only what it uses, which on the CPU (see ``on_cpu``) is nothing.
        for gpu in tf.config.list_physical_devices("GPU"):
            with contextlib.suppress(RuntimeError, ValueError):  # TensorFlow already started
                tf.config.experimental.set_memory_growth(gpu, True)
    return tf, keras, tf2onnx


tf, keras, tf2onnx = _import_frameworks()


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Hold back TensorFlow's, tf2onnx's and Keras' warnings and log records, then restore the levels."""
    loggers = [logging.getLogger(name) for name in _QUIET_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    # Some of tf2onnx's rewriters warn through logging.warning() itself (mixed-precision models
    # reach its Gemm rewriter): on a root logger without handlers that would install one for
    # good. A handler held for the block, and the root's level, keep them quiet and the process as it was.
    root = logging.getLogger()
    root_level, placeholder = root.level, logging.NullHandler()
    root.addHandler(placeholder)
    root.setLevel(logging.ERROR)
    loggers.append(root)
    levels.append(root_level)
    try:
        with warnings.catch_warnings():
            # Keras' tf2onnx numpy-2 patch probes np.object, which numpy 2 warns about.
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
        root.removeHandler(placeholder)


@contextlib.contextmanager
def on_cpu() -> Iterator[None]:
    """Run TensorFlow on the CPU, without hiding the GPUs from the rest of the process.

    Exports are compared with ONNX Runtime on the CPU, and a GPU would run TF32 matmuls that
    differ from float32 by more than the tolerance.
    """
    with tf.device("/CPU:0"):
        yield


def _tf2onnx_max_opset() -> int:
    return int(max(tf2onnx.constants.OPSET_TO_IR_VERSION))


def check_opset(opset: int) -> None:
    highest = _tf2onnx_max_opset()
    if opset > highest:
        raise UsageError(
            f"tf2onnx {tf2onnx.__version__} exports ONNX opsets up to {highest}, not {opset}",
            f"use --opset {highest} or lower for Keras and TensorFlow models",
        )


def exporter_failed(what: str, error: Exception) -> ExportError:
    return ExportError(
        f"tf2onnx cannot convert {what}: {one_line(error)}",
        f"try another --opset (tf2onnx supports up to {_tf2onnx_max_opset()}); custom layers may have no ONNX translation",
    )


def per_sample_shape(shape: Any) -> tuple[int, ...] | None:
    """The shape without its batch axis, or None unless every other axis is known."""
    dims = tuple(shape)
    if len(dims) < 2 or any(d is None for d in dims[1:]):
        return None
    return tuple(int(d) for d in dims[1:])


def run_batched(call: Callable[[Any], Any], x: np.ndarray) -> np.ndarray:
    """``call`` on the CPU, batch by batch, as one float32 array; the model must have one output."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    outputs = []
    for start in range(0, max(len(x), 1), _RUN_BATCH):
        with quiet(), on_cpu():
            result = call(tf.constant(x[start : start + _RUN_BATCH]))
        flat = tf.nest.flatten(result)
        if len(flat) != 1:
            raise ExportError(f"the model returns {len(flat)} outputs", "halfconv exports classifiers with one output")
        outputs.append(np.asarray(flat[0], dtype=np.float32))
    return np.concatenate(outputs) if len(outputs) > 1 else outputs[0]


def finish_onnx(path: Path) -> None:
    """Name the output and the batch axis plainly, and check the model's interface.

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
    _name_batch_axis(graph, (inputs[0], graph.output[0]))
    _rename_value(graph, graph.output[0].name, _OUTPUT_NAME)
    onnx.save(proto, str(path))


def _name_batch_axis(graph: onnx.GraphProto, interface: tuple[onnx.ValueInfoProto, onnx.ValueInfoProto]) -> None:
    """Call the first axis of the input and the output "batch"; refuse a fixed one."""
    batch_names: set[str] = set()
    for value in interface:
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
    for value in interface:
        dims = value.type.tensor_type.shape.dim
        if not dims[0].dim_param:
            dims[0].dim_param = _BATCH_DIM


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
