"""The default precision policy: which ops, and which op inputs, stay in float32.

This table is the single place where halfconv decides, by default, that an op is not
converted. Every entry carries the one-line reason that ``--explain`` and the report print.
Users extend it with ``--keep-op`` and ``--keep-node``; they cannot silently shrink it,
but ``--no-default-policy`` drops the table for experiments.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_KEEP_INPUTS",
    "DEFAULT_KEEP_OPS",
    "FLOAT_ONLY_DOMAINS",
    "KeepInputRule",
    "KeepOpRule",
    "default_keep_inputs",
    "default_keep_ops",
]

import dataclasses


@dataclasses.dataclass(frozen=True)
class KeepOpRule:
    """Every node of ``op_type`` (in the default ONNX domain) stays float32."""

    op_type: str
    category: str  # "range" (overflow/underflow/accumulation risk) or "kernel" / "precision"
    reason: str


@dataclasses.dataclass(frozen=True)
class KeepInputRule:
    """The named input of ``op_type`` keeps its float32 type even when the node converts."""

    op_type: str
    input_name: str
    reason: str


DEFAULT_KEEP_OPS: tuple[KeepOpRule, ...] = (
    # Range and accumulation risks: float16 tops out at 65504 and its smallest
    # subnormal is 6e-8, so these ops leave the representable range on ordinary data.
    KeepOpRule("Exp", "range", "exp(x) overflows float16 (max 65504) for any x above 11.09"),
    KeepOpRule("Pow", "range", "x**y leaves the float16 range for moderate bases and exponents"),
    KeepOpRule("Log", "range", "inputs below 6e-8 flush to 0 in float16 and log returns -inf"),
    KeepOpRule("ReduceSum", "range", "sums over large axes overflow float16"),
    KeepOpRule("ReduceSumSquare", "range", "sums of squares overflow float16 once values pass 256"),
    KeepOpRule("ReduceMean", "range", "the running sum can overflow float16 before it is divided"),
    KeepOpRule("ReduceProd", "range", "products leave the float16 range after a few factors"),
    KeepOpRule("ReduceL1", "range", "sums of magnitudes over large axes overflow float16"),
    KeepOpRule("ReduceL2", "range", "the sum of squares inside the norm overflows float16"),
    KeepOpRule("ReduceLogSum", "range", "the inner sum overflows float16 on large axes"),
    KeepOpRule("ReduceLogSumExp", "range", "the inner exp/sum overflows float16"),
    KeepOpRule("CumSum", "range", "running sums over long axes overflow float16"),
    # Precision-critical or float32-only operators.
    KeepOpRule("Range", "precision", "float16 rounding of start/limit/delta changes the output length"),
    KeepOpRule("TopK", "precision", "float16 rounding creates ties that change which elements are selected"),
    KeepOpRule("NonMaxSuppression", "kernel", "the ONNX spec defines it for float32 boxes and scores only"),
    KeepOpRule("RoiAlign", "precision", "box coordinates above 2048 are not exact in float16"),
)

DEFAULT_KEEP_INPUTS: tuple[KeepInputRule, ...] = (
    KeepInputRule("Resize", "roi", "region-of-interest coordinates need float32 precision"),
    KeepInputRule("Resize", "scales", "the ONNX spec types scales as float32 only"),
    KeepInputRule("Upsample", "scales", "the ONNX spec types scales as float32 only"),
)

# Operators from these domains are defined for float32/double only (ai.onnx.ml), so every
# node there stays float32.
FLOAT_ONLY_DOMAINS: dict[str, str] = {
    "ai.onnx.ml": "ai.onnx.ml operators are defined for float32/double only",
}


def default_keep_ops() -> dict[str, KeepOpRule]:
    """The default op table keyed by op type."""
    return {rule.op_type: rule for rule in DEFAULT_KEEP_OPS}


def default_keep_inputs() -> dict[tuple[str, str], KeepInputRule]:
    """The default input table keyed by (op type, input name)."""
    return {(rule.op_type, rule.input_name): rule for rule in DEFAULT_KEEP_INPUTS}
