"""What the steps of one rewrite share: the model, the target, and each value's original type."""

from __future__ import annotations

__all__ = ["RewriteContext", "UniqueNames"]

import dataclasses

import onnx_ir as ir

from ._tensors import RangeRecorder


class UniqueNames:
    """Value and node names in use in a model; hands out new ones that clash with none."""

    def __init__(self) -> None:
        self._taken: set[str] = set()

    def add(self, name: str) -> None:
        self._taken.add(name)

    def unique(self, base: str) -> str:
        name = base
        counter = 1
        while name in self._taken:
            name = f"{base}_{counter}"
            counter += 1
        self._taken.add(name)
        return name


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
