"""Writing a model at an IR version the installed ONNX Runtime reads.

onnx writes new models at its newest IR version by default, which an older ONNX Runtime
refuses although the model uses nothing of that version. IR versions only add what a model
may hold, so a model that uses none of the additions is the same model at an older
version. What each version added, as far as a converted model can hold it, is element
types (onnx.proto's Version enum): those are looked for in every value, weight, constant
and dtype attribute. A model that holds one that the installed runtime cannot read is
refused before anything is converted.
"""

from __future__ import annotations

__all__ = ["check_readable_ir", "lower_ir"]

import onnx_ir as ir

from .. import core
from ..core import DTYPE_ATTRIBUTES, IncompatibleModelError, all_graphs, graph_values

ALWAYS_READ_IR = 10  # every ONNX Runtime halfconv supports reads IR 10

# The element types added after IR 10, with the IR version that added each.
_TYPE_IR: dict[int, int] = {
    23: 11,  # FLOAT4E2M1
    24: 12,  # FLOAT8E8M0
    25: 13,  # UINT2
    26: 13,  # INT2
    27: 14,  # FLOAT6E2M3
    28: 14,  # FLOAT6E3M2
}


def _type_codes(value_type: ir.TypeProtocol | None) -> list[int]:
    codes: list[int] = []
    while value_type is not None:
        if isinstance(value_type, ir.TensorType):
            return [*codes, int(value_type.dtype)]
        value_type = getattr(value_type, "elem_type", None)
    return codes


def _codes_in(model: ir.Model) -> set[int]:
    codes: set[int] = set()
    for graph in all_graphs(model):
        for value in graph_values(graph):
            codes.update(_type_codes(value.type))
        for node in graph:
            for attr in node.attributes.values():
                if attr.type == ir.AttributeType.TENSOR:
                    codes.add(int(attr.as_tensor().dtype))
            rule = DTYPE_ATTRIBUTES.get(node.op_type) if node.domain == "" else None
            named = node.attributes.get(rule.attribute) if rule else None
            if named is not None and named.type == ir.AttributeType.INT:
                codes.add(named.as_int())
    return codes


def _needed(model: ir.Model) -> tuple[int, str]:
    """The oldest IR version that holds every element type ``model`` uses, and the newest such type."""
    needed, because = ALWAYS_READ_IR, ""
    for code in sorted(_codes_in(model)):
        version = _TYPE_IR.get(code, 0)
        if version > needed:
            needed, because = version, ir.DataType(code).name
    return needed, because


def _newest_readable(model: ir.Model) -> int | None:
    """The newest IR the installed ONNX Runtime reads, when ``model``'s is newer; else None (no ORT probe for IR <= 10)."""
    if model.ir_version <= ALWAYS_READ_IR:
        return None
    newest = core.max_ir_version()
    return newest if model.ir_version > newest else None


def check_readable_ir(model: ir.Model, path: object) -> None:
    """Refuse a model of a newer IR than ONNX Runtime reads when it uses what that IR added."""
    newest = _newest_readable(model)
    if newest is None:
        return
    needed, because = _needed(model)
    if needed > newest:
        raise IncompatibleModelError(
            f"{path} is IR version {model.ir_version} and holds {because} tensors, which need IR {needed}; "
            f"the installed ONNX Runtime reads IR {newest} at most",
            "upgrade onnxruntime, or convert on a machine with a newer one",
        )


def lower_ir(model: ir.Model) -> tuple[str, ...]:
    """Write a model of a newer IR than ONNX Runtime reads at the newest one it does (checked readable first)."""
    newest = _newest_readable(model)
    if newest is None:
        return ()
    original, model.ir_version = model.ir_version, newest
    return (f"written at IR version {newest}, the newest the installed ONNX Runtime reads (the input is IR {original})",)
