"""The numerics model of a model file, written where ONNX Runtime can load it."""

from __future__ import annotations

__all__ = ["EmulatedModel", "emulated_copy"]

import contextlib
import dataclasses
import tempfile
from collections.abc import Iterator
from pathlib import Path

import onnx_ir as ir

from .. import core
from ._emulate import emulation_model, stored_types
from ._types import RoundedValue


@dataclasses.dataclass(frozen=True)
class EmulatedModel:
    path: Path  # the numerics model, in a temporary folder
    rounded: tuple[RoundedValue, ...]  # the main graph's rounded values, in graph order
    stored: str  # "fp16" or "bf16": the type it emulates (the first, should a model mix them)
    external_data: bool  # its weights are in an external data file


def _ensure_types(model: ir.Model) -> None:
    """Element types for values the file does not annotate (a model from another tool), so every stored value is found."""
    if all(v.type is not None for g in core.all_graphs(model) for n in g for v in n.outputs if v.name):
        return
    core.infer_shapes_leniently(model)  # what stays unknown is not rounded


@contextlib.contextmanager
def emulated_copy(path: Path) -> Iterator[EmulatedModel | None]:
    """The numerics model of the model at ``path``, in a temporary folder, for the duration.

    Yields None when the model stores no float16 or bfloat16 value (a float32 model is its
    own numerics model). The model at ``path`` is read, never written.
    """
    loaded = core.load_model(path)
    _ensure_types(loaded.model)
    stored = stored_types(loaded.model)
    if not stored:
        yield None
        return
    rounded = emulation_model(loaded.model)
    with tempfile.TemporaryDirectory(prefix="halfconv-numerics-") as folder:
        target = Path(folder) / path.name
        external = core.save_for_runtime(loaded.model, target, bool(loaded.external_files))
        yield EmulatedModel(target, rounded, "fp16" if ir.DataType.FLOAT16 in stored else "bf16", external)
