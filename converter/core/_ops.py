"""The ops whose output type is an attribute, which conversion and the numerics model rewrite."""

from __future__ import annotations

__all__ = ["DTYPE_ATTRIBUTES", "DtypeAttribute"]

import dataclasses

import onnx_ir as ir


@dataclasses.dataclass(frozen=True)
class DtypeAttribute:
    """An op whose output element type is named by an attribute."""

    attribute: str
    # The type when the attribute is absent; None means "the first input's type".
    default: ir.DataType | None


# Conversion rewrites these attributes when the output becomes float16, type inference
# reads them, and the numerics model turns them back to float32.
DTYPE_ATTRIBUTES: dict[str, DtypeAttribute] = {
    "Cast": DtypeAttribute("to", None),
    "RandomNormal": DtypeAttribute("dtype", ir.DataType.FLOAT),
    "RandomUniform": DtypeAttribute("dtype", ir.DataType.FLOAT),
    "Multinomial": DtypeAttribute("dtype", ir.DataType.INT32),
    "RandomNormalLike": DtypeAttribute("dtype", None),
    "RandomUniformLike": DtypeAttribute("dtype", None),
    "EyeLike": DtypeAttribute("dtype", None),
    "Bernoulli": DtypeAttribute("dtype", None),
}
