"""fp16 and bf16 numbers that are true on a provider that computes in float32.

A converted model's *numerics model* computes in float32 but rounds every value the
converted model stores in float16 (or bfloat16) right after the node that produces it, so
that overflow, rounding and flushes show on ONNX Runtime's CPU provider as they do where
float16 is stored natively.
"""

from __future__ import annotations

__all__ = [
    "NOT_ROUNDED",
    "NUMERICS",
    "RELATIVE_ERROR_LIMIT",
    "STORED_TYPES",
    "EmulatedModel",
    "NodeDivergence",
    "RoundedValue",
    "diverging_nodes",
    "emulated_copy",
    "emulation_model",
    "native_label",
    "numerics_label",
    "stored_types",
]

from typing import TYPE_CHECKING

from ..core import lazy_exports
from ._labels import NOT_ROUNDED, NUMERICS, native_label, numerics_label
from ._types import RELATIVE_ERROR_LIMIT, NodeDivergence, RoundedValue

if TYPE_CHECKING:
    from ._diagnose import diverging_nodes
    from ._emulate import STORED_TYPES, emulation_model, stored_types
    from ._files import EmulatedModel, emulated_copy

__getattr__, __dir__ = lazy_exports(__name__, ("._diagnose", "._emulate", "._files"))
