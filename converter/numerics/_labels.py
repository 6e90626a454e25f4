"""How a report says which numerics produced its figures."""

from __future__ import annotations

__all__ = ["NUMERICS", "numerics_label"]

# auto: emulate 16-bit storage where the provider computes in float32 (the CPU), run
# natively elsewhere; emulated / native: always that.
NUMERICS = ("auto", "emulated", "native")


def numerics_label(emulated: bool, provider: str, stored: str = "fp16") -> str:
    """"native (CUDAExecutionProvider)" or "fp16 storage emulated on CPUExecutionProvider"."""
    if emulated:
        return f"{stored} storage emulated on {provider}"
    if provider == "CPUExecutionProvider":
        return f"native ({provider}; {stored} activations were not rounded)"
    return f"native ({provider})"
