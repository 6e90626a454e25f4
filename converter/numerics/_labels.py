"""How a report says which numerics produced its figures."""

from __future__ import annotations

__all__ = ["NOT_ROUNDED", "NUMERICS", "native_label", "numerics_label"]

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx

# auto: emulate 16-bit storage where the provider computes in float32 (the CPU), run
# natively elsewhere; emulated / native: always that.
NUMERICS = ("auto", "emulated", "native")
# What the label of ORT's own CPU numbers says, and what reports warn about.
NOT_ROUNDED = "activations were not rounded"


def numerics_label(emulated: bool, provider: str, stored: str = "fp16") -> str:
    """"native (CUDAExecutionProvider)" or "fp16 storage emulated on CPUExecutionProvider"."""
    if emulated:
        return f"{stored} storage emulated on {provider}"
    if provider == "CPUExecutionProvider":
        return f"native ({provider}; {stored} {NOT_ROUNDED})"
    return f"native ({provider})"


# onnx.TensorProto.FLOAT16 and BFLOAT16, without importing onnx to parse options.
_SIXTEEN_BIT = {10: "fp16", 16: "bf16"}


def native_label(proto: onnx.ModelProto, provider: str) -> str:
    """The label of a model's own numbers: "float32 on P", or native 16-bit numbers on P."""
    graph = proto.graph
    types = {t.data_type for t in graph.initializer}
    types |= {v.type.tensor_type.elem_type for v in (*graph.input, *graph.output, *graph.value_info)}
    stored = next((name for code, name in _SIXTEEN_BIT.items() if code in types), None)
    return numerics_label(False, provider, stored) if stored else f"float32 on {provider}"
