"""The numerics model: fp16 (or bf16) storage emulated on a provider that computes in float32.

ONNX Runtime's CPU provider has few float16 kernels. It runs a float16 node by casting its
inputs to float32, computing, and casting back, and the cast pairs it inserts between
consecutive nodes cancel, so a float16 model's intermediate values are never rounded to
float16 there: overflow past 65504, rounding between ops and subnormal flushes are all
invisible. The numerics model makes them visible. Built from a converted model, it
computes every node in float32 and rounds each value that the converted model stores in
float16 (or bfloat16) to that type right after the node that produces it, with an explicit
Cast pair (ORT keeps the Casts that are in a model). Weights and constants hold their
float16 values, exactly, in float32. What it does not model is a kernel's internal
accumulation: it accumulates in float32, as float16 GPU kernels with float32 accumulation do.

The model keeps the converted model's inputs and outputs (names and types), so it is a
drop-in replacement for running the converted model.
"""

from __future__ import annotations

__all__ = ["STORED_TYPES", "emulation_model", "stored_types"]

from typing import Any

import numpy as np
import onnx_ir as ir

from ..core import DTYPE_ATTRIBUTES, UniqueNames, all_graphs
from ._types import RoundedValue

_FLOAT = ir.DataType.FLOAT
STORED_TYPES = frozenset({ir.DataType.FLOAT16, ir.DataType.BFLOAT16})


def _dtype(value: ir.Value | None) -> ir.DataType | None:
    return value.type.dtype if value is not None and isinstance(value.type, ir.TensorType) else None


def stored_types(model: ir.Model) -> frozenset[ir.DataType]:
    """The 16-bit float types that ``model`` stores values in (empty for a float32 model)."""
    found: set[ir.DataType] = set()
    for graph in all_graphs(model):
        for value in (*graph.inputs, *graph.initializers.values()):
            found.add(_dtype(value) or _FLOAT)
        for node in graph:
            found.update(_dtype(v) or _FLOAT for v in node.outputs)
    return frozenset(found & STORED_TYPES)


class _Emulator:
    def __init__(self, model: ir.Model) -> None:
        self.model = model
        self.output_types = [_dtype(v) for v in model.graph.outputs]
        self.names = UniqueNames(model)
        self.rounded: list[RoundedValue] = []

    def _cast(self, value: ir.Value, to: ir.DataType, name: str) -> ir.Node:
        node = ir.Node("", "Cast", [value], attributes=[ir.AttrInt64("to", int(to))], name=self.names.unique(f"numerics_{name}"))
        node.outputs[0].name = self.names.unique(name)  # unique across subgraphs too, as SSA requires
        node.outputs[0].type = ir.TensorType(to)
        node.outputs[0].shape = value.shape
        return node

    def _round_after(self, graph: ir.Graph, anchor: ir.Node, value: ir.Value, stored: ir.DataType, main: bool) -> None:
        """Round ``value`` (now float32) to ``stored`` for every use: Cast to it and back.

        The rounded value takes the original name, so a name means the same value in the
        float32 model, the converted model and this one; the raw kernel output is renamed.
        """
        uses = list(value.uses())  # before the Cast below becomes one of them
        was_output = value.is_graph_output()
        name = value.name or self.names.unique("value")
        value.name = self.names.unique(f"{name}.unrounded")
        to_stored = self._cast(value, stored, f"{name}_to_{stored.name.lower()}")
        back = self._cast(to_stored.outputs[0], _FLOAT, f"{name}_to_float")
        rounded = back.outputs[0]
        for use in uses:
            use.node.replace_input_with(use.idx, rounded)
        if was_output:
            outputs = graph.outputs
            for index, output in enumerate(outputs):
                if output is value:
                    outputs[index] = rounded
        rounded.name = name
        graph.insert_after(anchor, [to_stored, back])
        if main:  # values of the main graph can be exposed as outputs, for diagnosis
            self.rounded.append(self._describe(anchor, name, uses, stored))

    def _describe(self, anchor: ir.Node, name: str, uses: list[Any], stored: ir.DataType) -> RoundedValue:
        stored_name = "bfloat16" if stored == ir.DataType.BFLOAT16 else "float16"
        source = anchor.inputs[0] if anchor.op_type == "Cast" and anchor.inputs else None
        if source is not None and source.name and _dtype(source) == _FLOAT and uses:
            # A float32 value cast to 16 bits for the node it feeds: that node is the one to keep.
            consumer = uses[0].node
            return RoundedValue(name, source.name, consumer.name or "", consumer.op_type, stored_name, is_input=True)
        return RoundedValue(name, name, anchor.name or "", anchor.op_type, stored_name)

    def _widen_tensor(self, tensor: ir.TensorProtocol, name: str) -> ir.TensorProtocol:
        return ir.Tensor(np.asarray(tensor.numpy(), dtype=np.float32), name=name)

    def _node(self, graph: ir.Graph, node: ir.Node, main: bool) -> None:
        if node.domain not in ("", "ai.onnx"):
            return
        rule = DTYPE_ATTRIBUTES.get(node.op_type)
        attribute = rule.attribute if rule is not None else ""
        if rule is not None and attribute in node.attributes:
            if ir.DataType(node.attributes[attribute].as_int()) in STORED_TYPES:
                node.attributes[attribute] = ir.AttrInt64(attribute, int(_FLOAT))
        for name in ("value",):
            attr = node.attributes.get(name)
            if node.op_type in ("Constant", "ConstantOfShape") and attr is not None:
                tensor = attr.as_tensor()
                if tensor.dtype in STORED_TYPES:
                    node.attributes[name] = ir.AttrTensor(name, self._widen_tensor(tensor, tensor.name or name))
        for value in list(node.outputs):
            stored = _dtype(value)
            if stored not in STORED_TYPES:
                continue
            value.type = ir.TensorType(_FLOAT)
            if node.op_type != "Constant":  # a constant holds float16 values already
                self._round_after(graph, node, value, stored, main)

    def _graph(self, graph: ir.Graph, is_main: bool) -> None:
        for value in graph.initializers.values():
            stored = _dtype(value)
            if is_main and value.is_graph_input():
                continue  # an input with a default value keeps the interface's type, like any input
            if stored in STORED_TYPES and value.const_value is not None:
                value.const_value = self._widen_tensor(value.const_value, value.name or "")
                value.type = ir.TensorType(_FLOAT)
        for value in list(graph.inputs):
            stored = _dtype(value)
            if stored not in STORED_TYPES or (value.is_initializer() and not is_main):
                continue
            if is_main:
                # The model's interface stays float16: a Cast to float32 is exact.
                uses = list(value.uses())
                widen = self._cast(value, _FLOAT, f"{value.name}_to_float")
                for use in uses:
                    use.node.replace_input_with(use.idx, widen.outputs[0])
                if len(graph):
                    graph.insert_before(next(iter(graph)), widen)
                else:
                    graph.append(widen)
            else:
                value.type = ir.TensorType(_FLOAT)
        for node in list(graph):
            self._node(graph, node, is_main)
        if is_main:
            self._narrow_outputs(graph)

    def _narrow_outputs(self, graph: ir.Graph) -> None:
        """Outputs that the converted model gives in float16 keep that type (exactly: already rounded)."""
        for index, value in enumerate(list(graph.outputs)):
            original = self.output_types[index]
            if original not in STORED_TYPES or _dtype(value) == original:
                continue  # not 16-bit, or still the model's own 16-bit value (a graph input passed through)
            name = value.name or f"output_{index}"
            value.name = self.names.unique(f"{name}.float")
            narrow = self._cast(value, original, f"{name}_output")
            narrow.outputs[0].name = name
            graph.append(narrow)
            graph.outputs[index] = narrow.outputs[0]

    def run(self) -> tuple[RoundedValue, ...]:
        graphs = all_graphs(self.model)
        for graph in graphs:
            self._graph(graph, graph is self.model.graph)
        return tuple(self.rounded)


def emulation_model(model: ir.Model) -> tuple[RoundedValue, ...]:
    """Turn ``model``, in place, into its numerics model; returns the main graph's rounded values, in order.

    The caller passes a copy it owns (for example freshly loaded): the converted model on
    disk is never touched.
    """
    return _Emulator(model).run()
