"""TensorFlow SavedModel folders for the Keras back end.

A folder loads through ``tf.saved_model.load`` and runs its ``serving_default`` signature,
or the ``serve`` endpoint that Keras' ``Model.export`` writes; it goes to ONNX through
``tf2onnx.convert.from_function``.
"""

from __future__ import annotations

__all__ = ["SavedModel", "load_saved_model"]

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..core import ExportError, one_line
from . import _tensorflow as support
from ._tensorflow import tf, tf2onnx


class SavedModel:
    """A loaded SavedModel's endpoint; satisfies ``_pipeline.FrameworkModel``."""

    framework = "keras"
    description = "TensorFlow SavedModel"

    def __init__(self, path: Path, loaded: Any) -> None:
        self._loaded = loaded  # keeps the variables alive while the functions are used
        call, spec, endpoint, function = _endpoint(path, loaded)
        self._call = call
        self._endpoint = endpoint
        self.compute_dtype = _compute_dtype(function)
        if spec.dtype != tf.float32:
            raise ExportError(
                f"the SavedModel's {endpoint} takes {spec.dtype.name}, not float32",
                "halfconv exports classifiers that take float32 images",
            )
        self.input_shape: tuple[int, ...] | None = None
        if spec.shape.rank is not None and spec.shape.rank >= 2:
            if spec.shape[0] is not None:
                raise ExportError(
                    f"the SavedModel's {endpoint} has a fixed batch size of {spec.shape[0]}",
                    "re-export it with a None batch axis, e.g. keras Model.export(dir)",
                )
            self.input_shape = support.per_sample_shape(spec.shape.as_list())

    def run(self, x: np.ndarray) -> np.ndarray:
        return support.run_batched(self._call, x)

    def float32_rebuild(self) -> SavedModel:
        raise ExportError(
            "a SavedModel holds traced functions, not layers, so it cannot be rebuilt under the float32 policy",
            "export the .keras model with --fp32-baseline instead",
        )

    def export(self, path: Path, input_shape: tuple[int, ...], opset: int) -> tuple[str, list[str]]:
        support.check_opset(opset)
        call = self._call

        def forward(x: Any) -> Any:
            return tf.nest.flatten(call(x))[0]

        spec = tf.TensorSpec(shape=(None, *input_shape), dtype=tf.float32, name=support.INPUT_NAME)
        try:
            with support.quiet(), support.on_cpu():
                _patch_tf2onnx_for_numpy2()
                tf2onnx.convert.from_function(tf.function(forward), input_signature=[spec], opset=opset, output_path=str(path))
        except Exception as error:  # tf2onnx raises anything for an op it cannot translate
            raise support.exporter_failed("the SavedModel", error) from None
        support.finish_onnx(path)
        return f"tf2onnx {tf2onnx.__version__} convert.from_function, opset {opset}", [f"exported the SavedModel's {self._endpoint}"]


def _compute_dtype(function: Any) -> str:
    """float16 or bfloat16 when an op of the endpoint (or of a function it calls) is typed so."""
    graph = getattr(function, "graph", None)
    if graph is None:
        return "float32"
    definition = graph.as_graph_def()
    nodes = [*definition.node, *(node for function in definition.library.function for node in function.node_def)]
    types = {value.type for node in nodes for value in node.attr.values()}
    for name, dtype in (("float16", tf.float16), ("bfloat16", tf.bfloat16)):
        if dtype.as_datatype_enum in types:
            return name
    return "float32"


def _patch_tf2onnx_for_numpy2() -> None:
    # tf2onnx 1.17 still calls numpy APIs that numpy 2 removed; Keras ships the fix that
    # its own ONNX export applies, so SavedModels get the same one.
    try:
        from keras.src.export.tf2onnx_lib import patch_tf2onnx
    except ImportError:
        return
    patch_tf2onnx()


def _endpoint(path: Path, loaded: Any) -> tuple[Callable[[Any], Any], Any, str, Any]:
    """The function to call, its input spec, its name for messages, and the traced function it calls."""
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
        ((name, spec),) = kwargs.items()
        return (lambda x: signature(**{name: x})), spec, "serving_default signature", signature
    serve = getattr(loaded, "serve", None)
    functions = list(getattr(serve, "concrete_functions", ()) or ())
    if len(functions) == 1:
        function = functions[0]
        args, kwargs = function.structured_input_signature
        flat = tf.nest.flatten((args, kwargs))
        if len(flat) != 1 or kwargs:
            raise ExportError(f"the SavedModel's serve endpoint takes {len(flat)} inputs", "halfconv exports classifiers with one input")
        return (lambda x: function(x)), flat[0], "serve endpoint", function
    raise ExportError(
        f"the SavedModel {path} has no serving_default signature and no serve endpoint with one traced function",
        "save it with keras Model.export(dir), or tf.saved_model.save(obj, dir, signatures=...)",
    )


def load_saved_model(path: Path) -> SavedModel:
    """Load a SavedModel folder; raises ExportError if it cannot."""
    try:
        with support.quiet(), support.on_cpu():
            loaded = tf.saved_model.load(str(path))
    except Exception as error:  # TensorFlow raises many types for a bad folder
        raise ExportError(
            f"cannot load TensorFlow SavedModel {path}: {one_line(error)}",
            "the folder is incomplete or was written by a newer TensorFlow; re-export it",
        ) from None
    return SavedModel(path, loaded)
