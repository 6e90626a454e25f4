"""What the steps of one rewrite share: the model, the target, and each value's original type."""

from __future__ import annotations

__all__ = ["RewriteContext"]

import dataclasses

import onnx_ir as ir

from ..core import UniqueNames
from ._tensors import RangeRecorder


@dataclasses.dataclass
class RewriteContext:
    model: ir.Model
    target: ir.DataType
    keep_io_types: bool
    recorder: RangeRecorder
    original_dtype: dict[ir.Value, ir.DataType] = dataclasses.field(default_factory=dict)
    names: UniqueNames = dataclasses.field(default_factory=UniqueNames)

    def keeps_io(self, graph: ir.Graph | None) -> bool:
        """Whether ``graph``'s inputs and outputs keep their float32 type (the main graph, with keep-io-types)."""
        return graph is self.model.graph and self.keep_io_types

    def retype(self, value: ir.Value) -> None:
        value.type = ir.TensorType(self.target)
