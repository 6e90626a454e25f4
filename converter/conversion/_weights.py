"""Weights and constants: cast to the target type where every use wants it, counted either way.

An initializer or Constant converts only if *every* use wants the target type, so a weight
shared with a float32 region keeps its precision there and the converted uses get a Cast.
Initializer data converts lazily, tensor by tensor, when the model is written.
"""

from __future__ import annotations

__all__ = ["WeightConverter"]

import math

import numpy as np
import onnx_ir as ir

from ..core import DTYPE_ATTRIBUTES
from . import _plan
from ._context import RewriteContext
from ._plan import Requirement, value_kind
from ._results import KeptNode
from ._tensors import eager_cast_tensor, lazy_cast_tensor

_FLOAT = ir.DataType.FLOAT


def target_weight_elements(graphs: list[ir.Graph], target: ir.DataType) -> int:
    """Weight elements (initializers and Constant tensors) the model stores in ``target`` already."""
    total = 0
    for graph in graphs:
        for value in graph.initializers.values():
            if value.const_value is not None and value.const_value.dtype == target:
                total += value.const_value.size
        for node in graph:
            if node.op_type == "Constant" and node.domain == "" and "value" in node.attributes:
                tensor = node.attributes["value"].as_tensor()
                total += tensor.size if tensor.dtype == target else 0
    return total


class WeightConverter:
    def __init__(self, context: RewriteContext) -> None:
        self.context = context
        self.float_elements = 0
        self.converted_elements = 0

    def settle_constants(self, plan: _plan.Plan) -> None:
        """A Constant converts only if every use wants the target type, like an initializer.

        So does a Cast of the model: converted, it would hand float16-rounded values to
        float32 consumers through a second Cast (float32 -> float16 -> float32).
        """
        for node, node_plan in plan.nodes.items():
            if node.op_type == "Constant" and node.domain == "" and value_kind(node.outputs[0]) == "float":
                self.float_elements += _constant_elements(node)
            if node.op_type not in ("Constant", "ConstantOfShape", "Cast") or node.domain != "":
                continue
            if not (node_plan.converted and node_plan.output_to_target[0]):
                continue  # kept already, or e.g. a Cast from float32 to int64: nothing to settle
            output = node.outputs[0]
            wants = {plan.requirement(usage.node, usage.idx) for usage in output.uses()}
            if output.is_graph_output():
                wants.add(Requirement.ORIGINAL if self.context.keeps_io(output.graph) else Requirement.TARGET)
            wants.discard(None)
            if wants == {Requirement.TARGET}:
                continue
            node_plan.converted = False
            node_plan.output_to_target = [False] * len(node.outputs)
            reason = (
                "its consumers stay float32"
                if Requirement.TARGET not in wants
                else "it feeds both float32 and converted nodes; converted uses get a Cast"
            )
            plan.kept.append(KeptNode(node.name or "", node.op_type, node.domain, node_plan.path, reason, "consumers"))

    def update_dtype_attributes(self, node: ir.Node, node_plan: _plan.NodePlan) -> None:
        if node.domain != "" or not any(node_plan.output_to_target):
            return
        op = node.op_type
        target = int(self.context.target)
        if op in DTYPE_ATTRIBUTES:
            name = DTYPE_ATTRIBUTES[op].attribute
            node.attributes[name] = ir.AttrInt64(name, target)
        elif op == "Constant":
            self._convert_constant_attribute(node)
        elif op == "ConstantOfShape":
            attr = node.attributes.get("value")
            if attr is None:
                # The default fill is a float32 zero; state it in the target type.
                zero = ir.Tensor(np.zeros((1,), dtype=np.float32))
                tensor = eager_cast_tensor(zero, f"{node.name}.value", self.context.target, self.context.recorder)
            else:
                tensor = eager_cast_tensor(attr.as_tensor(), f"{node.name or 'ConstantOfShape'}.value", self.context.target, self.context.recorder)
            node.attributes["value"] = ir.AttrTensor("value", tensor)

    def _convert_constant_attribute(self, node: ir.Node) -> None:
        label = node.outputs[0].name or node.name or "Constant"
        if "value" in node.attributes:
            source = node.attributes["value"].as_tensor()
        elif "value_float" in node.attributes:
            source = ir.Tensor(np.asarray(node.attributes.pop("value_float").as_float(), dtype=np.float32))
        elif "value_floats" in node.attributes:
            source = ir.Tensor(np.asarray(node.attributes.pop("value_floats").as_floats(), dtype=np.float32))
        else:
            return
        self.converted_elements += math.prod(source.shape.numpy())
        node.attributes.pop("value", None)
        node.attributes["value"] = ir.AttrTensor("value", eager_cast_tensor(source, label, self.context.target, self.context.recorder))

    def convert_initializers(self, plan: _plan.Plan, graphs: list[ir.Graph]) -> None:
        for graph in graphs:
            for value in graph.initializers.values():
                # The original type: an input with a default may already be retyped.
                if self.context.original_dtype.get(value) != _FLOAT or value.const_value is None:
                    continue
                tensor = value.const_value
                shape = tensor.shape  # built anew on every access for protobuf-backed tensors
                elements = math.prod(shape.numpy())
                self.float_elements += elements
                if value.is_graph_input():
                    # An input with a default value takes the input's type: float32 with
                    # keep-io-types, else the target type that _retype_graph_inputs gave it.
                    if self.context.keeps_io(graph):
                        continue
                elif self._initializer_wants(plan, graph, value) != {Requirement.TARGET}:
                    continue
                value.const_value = lazy_cast_tensor(tensor, shape, value.name or "", self.context.target, self.context.recorder)
                self.context.retype(value)
                self.converted_elements += elements

    def _initializer_wants(self, plan: _plan.Plan, graph: ir.Graph, value: ir.Value) -> set[Requirement]:
        wants = {plan.requirement(usage.node, usage.idx) for usage in value.uses()}
        if value.is_graph_output():
            wants.add(Requirement.ORIGINAL if self.context.keeps_io(graph) else Requirement.TARGET)
        return {w for w in wants if w is not None}



def _constant_elements(node: ir.Node) -> int:
    if "value" in node.attributes:
        return math.prod(node.attributes["value"].as_tensor().shape.numpy())
    if "value_floats" in node.attributes:
        return len(node.attributes["value_floats"].as_floats())
    return 1 if "value_float" in node.attributes else 0
