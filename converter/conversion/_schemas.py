"""The one look-up of ONNX operator schemas.

Planning (which slots may take float16) and type inference (which element type a value
has) both read the schemas through :func:`op_schema`, so each (domain, op, opset) is looked
up once per process.
"""

from __future__ import annotations

__all__ = ["Signature", "op_schema", "signature"]

import dataclasses
import functools

import onnx
import onnx.defs


@functools.lru_cache(maxsize=4096)
def op_schema(domain: str, op_type: str, opset: int) -> onnx.defs.OpSchema | None:
    """The schema of ``op_type`` at ``opset``, or None where ONNX defines none."""
    try:
        return onnx.defs.get_schema(op_type, max_inclusive_version=opset, domain=domain)
    except (onnx.defs.SchemaError, TypeError):  # TypeError: an opset beyond a C int
        return None


@dataclasses.dataclass(frozen=True)
class Signature:
    """Per-slot type strings of one operator version, and its type constraints."""

    input_types: tuple[str, ...]
    output_types: tuple[str, ...]
    input_names: tuple[str, ...]
    allowed: dict[str, frozenset[str]]
    since_version: int
    # Each type parameter with the slots it types, ("in" | "out", index), in slot order.
    slots: tuple[tuple[str, tuple[tuple[str, int], ...]], ...] = ()


def _slot_types(formals: list[onnx.defs.OpSchema.FormalParameter], count: int) -> tuple[list[str], list[str]]:
    types: list[str] = []
    names: list[str] = []
    for i in range(count):
        if i < len(formals):
            formal = formals[i]
        elif formals and formals[-1].option == onnx.defs.OpSchema.FormalParameterOption.Variadic:
            formal = formals[-1]
        else:
            types.append("?")
            names.append(f"#{i}")
            continue
        type_str = formal.type_str
        variadic = formal.option == onnx.defs.OpSchema.FormalParameterOption.Variadic
        if variadic and not formal.is_homogeneous:
            # Each slot of a heterogeneous variadic is its own type parameter.
            type_str = f"{type_str}#{i}"
        types.append(type_str)
        names.append(formal.name)
    return types, names


@functools.lru_cache(maxsize=4096)
def signature(domain: str, op_type: str, opset: int, n_inputs: int, n_outputs: int) -> Signature | None:
    schema = op_schema(domain, op_type, opset)
    if schema is None:
        return None
    input_types, input_names = _slot_types(list(schema.inputs), n_inputs)
    output_types, _ = _slot_types(list(schema.outputs), n_outputs)
    allowed = {c.type_param_str: frozenset(c.allowed_type_strs) for c in schema.type_constraints}
    for type_str in (*input_types, *output_types):
        base = type_str.split("#")[0]
        if "#" in type_str and base in allowed:
            allowed[type_str] = allowed[base]
    slots: dict[str, list[tuple[str, int]]] = {}
    for i, type_str in enumerate(input_types):
        slots.setdefault(type_str, []).append(("in", i))
    for i, type_str in enumerate(output_types):
        slots.setdefault(type_str, []).append(("out", i))
    return Signature(
        tuple(input_types),
        tuple(output_types),
        tuple(input_names),
        allowed,
        schema.since_version,
        tuple((param, tuple(members)) for param, members in slots.items()),
    )
