"""TensorFlow ops that tf2onnx has no handler for, written with ONNX ops.

Keras computes some built-in activations with them: ``gelu`` with ``Erfc``, ``celu`` with
``Expm1``. ONNX has neither op, so tf2onnx leaves them unconverted and the export fails.
Each handler here rewrites one as the ONNX ops that compute it. tf2onnx keeps its handlers
in one registry per process; importing this module adds these to it (``Model.export``
builds on the same registry).

This module imports tf2onnx and raises ImportError when it is missing.
"""

from __future__ import annotations

__all__ = ["Erfc", "Expm1"]

from typing import Any

import numpy as np
from tf2onnx import utils
from tf2onnx.handler import tf_op


def _one_minus(ctx: Any, node: Any, rewritten: str, sign: int) -> None:
    """Turn ``node`` into ``1 - rewritten(x)`` (sign 1) or ``rewritten(x) - 1`` (sign -1)."""
    dtype = utils.map_onnx_to_numpy_type(ctx.get_dtype(node.input[0]))
    one = ctx.make_const(utils.make_name(f"{node.name}_one"), np.array(1, dtype=dtype))
    inner = ctx.make_node(rewritten, [node.input[0]], op_name_scope=node.name)
    node.type = "Sub"
    ends = [one.output[0], inner.output[0]]
    ctx.replace_inputs(node, ends if sign == 1 else ends[::-1])


@tf_op("Erfc")
class Erfc:
    """erfc(x) = 1 - erf(x); ONNX has Erf from opset 9."""

    @classmethod
    def version_9(cls, ctx: Any, node: Any, **kwargs: Any) -> None:
        _one_minus(ctx, node, "Erf", 1)


@tf_op("Expm1")
class Expm1:
    """expm1(x) = exp(x) - 1."""

    @classmethod
    def version_1(cls, ctx: Any, node: Any, **kwargs: Any) -> None:
        _one_minus(ctx, node, "Exp", -1)
