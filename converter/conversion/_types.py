"""Fast element-type inference for values the model does not annotate.

The conversion only needs element types, not shapes. Propagating them through the
operator schemas' type parameters costs microseconds per node, where a round trip through
``onnx.shape_inference`` costs seconds on graphs of tens of thousands of nodes. Values this
cannot resolve are left for the caller's fallback to full ONNX inference.
"""

from __future__ import annotations

import functools

__all__ = ["ensure_element_types", "infer_element_types"]

import onnx_ir as ir

from ..core import DTYPE_ATTRIBUTES, all_graphs, infer_shapes_leniently
from ._schemas import op_schema

_TYPE_STR = {
    f"tensor({name})": dtype
    for name, dtype in (
        ("float", ir.DataType.FLOAT),
        ("float16", ir.DataType.FLOAT16),
        ("bfloat16", ir.DataType.BFLOAT16),
        ("double", ir.DataType.DOUBLE),
        ("int64", ir.DataType.INT64),
        ("int32", ir.DataType.INT32),
        ("int16", ir.DataType.INT16),
        ("int8", ir.DataType.INT8),
        ("uint64", ir.DataType.UINT64),
        ("uint32", ir.DataType.UINT32),
        ("uint16", ir.DataType.UINT16),
        ("uint8", ir.DataType.UINT8),
        ("bool", ir.DataType.BOOL),
        ("string", ir.DataType.STRING),
    )
}


@functools.lru_cache(maxsize=4096)
def _formals(domain: str, op_type: str, opset: int) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """The type strings of the op's formal inputs and outputs (asked once per op and opset)."""
    schema = op_schema(domain, op_type, opset)
    if schema is None:
        return None
    return tuple(f.type_str for f in schema.inputs), tuple(f.type_str for f in schema.outputs)


def _slot(types: tuple[str, ...], index: int) -> str | None:
    if index < len(types):
        return types[index]
    return types[-1] if types else None


def _constant_dtype(node: ir.Node) -> ir.DataType | None:
    attributes = node.attributes
    if "value" in attributes:
        return attributes["value"].as_tensor().dtype
    if "value_float" in attributes or "value_floats" in attributes:
        return ir.DataType.FLOAT
    if "value_int" in attributes or "value_ints" in attributes:
        return ir.DataType.INT64
    if "value_string" in attributes or "value_strings" in attributes:
        return ir.DataType.STRING
    return None


def _node_output_dtypes(node: ir.Node, opset: int) -> list[ir.DataType | None]:
    op = node.op_type
    outputs: list[ir.DataType | None] = [None] * len(node.outputs)
    if op == "Constant":
        return [_constant_dtype(node)]
    if op == "ConstantOfShape":
        attr = node.attributes.get("value")
        return [attr.as_tensor().dtype if attr is not None else ir.DataType.FLOAT]
    if op in DTYPE_ATTRIBUTES:
        rule = DTYPE_ATTRIBUTES[op]
        attr = node.attributes.get(rule.attribute)
        if attr is not None:
            return [ir.DataType(attr.as_int())] + outputs[1:]
        if rule.default is not None:
            return [rule.default] + outputs[1:]
        first = node.inputs[0] if node.inputs else None
        return [first.dtype if first is not None else None] + outputs[1:]
    if op == "CastLike":
        other = node.inputs[1] if len(node.inputs) > 1 else None
        return [other.dtype if other is not None else None]
    if op in ("If", "Loop", "Scan"):
        return [None] * len(node.outputs)  # left to the fallback: body outputs carry the types
    formals = _formals(node.domain, op, opset)
    if formals is None:
        return outputs
    input_types, output_types = formals
    bound: dict[str, ir.DataType] = {}
    for i, value in enumerate(node.inputs):
        type_str = _slot(input_types, i)
        if value is None or type_str is None or not isinstance(value.type, ir.TensorType):
            continue
        bound.setdefault(type_str, value.type.dtype)
    for i in range(len(node.outputs)):
        type_str = _slot(output_types, i)
        if type_str is None:
            continue
        if type_str in _TYPE_STR:
            outputs[i] = _TYPE_STR[type_str]
        elif type_str in bound:
            outputs[i] = bound[type_str]
    return outputs


def infer_element_types(model: ir.Model) -> bool:
    """Fill in missing tensor element types in place; True when every node output has one."""
    opsets = {("" if d == "ai.onnx" else d): v for d, v in model.opset_imports.items()}
    complete = True
    for graph in all_graphs(model):
        for node in graph:
            if all(v.type is not None for v in node.outputs if v.name):
                continue
            opset = opsets.get(node.domain)
            if opset is None:
                complete = False
                continue
            for value, dtype in zip(node.outputs, _node_output_dtypes(node, opset)):
                if value.type is not None or not value.name:
                    continue
                if dtype is None:
                    complete = False
                else:
                    value.type = ir.TensorType(dtype)
    return complete


def ensure_element_types(model: ir.Model) -> None:
    """Make sure every node output has an element type before planning."""
    if infer_element_types(model):
        return
    infer_shapes_leniently(model)  # what stays unknown keeps its nodes float32
    infer_element_types(model)
