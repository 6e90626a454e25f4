"""Weights the target type cannot hold, found without data: their consumers stay float32.

A float32 weight with finite values beyond the target's largest (65504 for float16), or
whose non-zero values mostly become zero in the target, would change the model's function
once converted: clamping to ±65504 or flushing is a different weight. By default the nodes
that use such a weight stay float32, each with its figure as the reason; ``--clamp-weights``
converts them anyway, clamping and counting as before.
"""

from __future__ import annotations

__all__ = ["FLUSH_SHARE_LIMIT", "weight_range_reasons"]


import numpy as np
import onnx_ir as ir

from ..core import LARGEST_FINITE, SMALLEST_SUBNORMAL, all_graphs

# A weight whose non-zero values flush to zero in the target at more than this share keeps
# its consumers float32 (a few flushed outliers of a normal weight matter little).
FLUSH_SHARE_LIMIT = 0.01
_CHUNK_ELEMENTS = 1 << 22  # weights are scanned in slices, so memory stays bounded
_FLOAT = ir.DataType.FLOAT
_TARGET_NAMES = {ir.DataType.FLOAT16: "float16", ir.DataType.BFLOAT16: "bfloat16"}


def _limits(target: ir.DataType) -> tuple[float, float]:
    """(largest finite value, the magnitude below which a non-zero value rounds to zero)."""
    name = _TARGET_NAMES[target]
    return LARGEST_FINITE[name], SMALLEST_SUBNORMAL[name] / 2


def _scan(array: np.ndarray, largest: float, smallest: float) -> tuple[int, int, int, float]:
    """(values beyond the range, non-zero values, non-zero values that flush, largest magnitude)."""
    flat = array.reshape(-1)
    beyond = nonzero = flushed = 0
    peak = 0.0
    for start in range(0, flat.size, _CHUNK_ELEMENTS):
        chunk = np.abs(np.asarray(flat[start : start + _CHUNK_ELEMENTS], dtype=np.float32))
        finite = np.isfinite(chunk)
        beyond += int(np.count_nonzero(finite & (chunk > largest)))
        nonzero += int(np.count_nonzero(chunk))
        flushed += int(np.count_nonzero((chunk > 0) & (chunk < smallest)))
        if finite.any():
            peak = max(peak, float(chunk[finite].max()))
    return beyond, nonzero, flushed, peak


def _reason(name: str, array: np.ndarray, target: ir.DataType) -> str | None:
    largest, smallest = _limits(target)
    beyond, nonzero, flushed, peak = _scan(array, largest, smallest)
    target_name = _TARGET_NAMES[target]
    if beyond:
        return f"weight '{name}' has {beyond:,} of {array.size:,} values beyond {target_name}'s {largest:.6g} (max |value| {peak:.3g})"
    if nonzero and flushed / nonzero > FLUSH_SHARE_LIMIT:
        return f"weight '{name}': {flushed / nonzero:.1%} of its non-zero values flush to zero in {target_name}"
    return None


def _constant_array(node: ir.Node) -> np.ndarray | None:
    if node.op_type != "Constant" or node.domain != "":
        return None
    attributes = node.attributes
    if "value" in attributes:
        tensor = attributes["value"].as_tensor()
        return tensor.numpy() if tensor.dtype == _FLOAT else None
    if "value_float" in attributes:
        return np.asarray(attributes["value_float"].as_float(), dtype=np.float32)
    if "value_floats" in attributes:
        return np.asarray(attributes["value_floats"].as_floats(), dtype=np.float32)
    return None


def weight_range_reasons(model: ir.Model, target: ir.DataType) -> dict[ir.Node, str]:
    """The nodes that use a weight or constant the target cannot hold, each with why."""
    reasons: dict[ir.Node, str] = {}
    for graph in all_graphs(model):
        for value in graph.initializers.values():
            tensor = value.const_value
            if tensor is None or tensor.dtype != _FLOAT or not tensor.size:
                continue
            _keep_users(value, _reason(value.name or "(unnamed)", tensor.numpy(), target), reasons)
            release = getattr(tensor, "release", None)
            if release is not None:
                release()  # unmap external data again: the cast reads it once more, a tensor at a time
        for node in graph:
            array = _constant_array(node)
            if array is not None and array.size:
                _keep_users(node.outputs[0], _reason(node.outputs[0].name or "(unnamed)", array, target), reasons)
    return reasons


def _keep_users(value: ir.Value, reason: str | None, reasons: dict[ir.Node, str]) -> None:
    if reason is not None:
        for usage in value.uses():
            reasons.setdefault(usage.node, reason)
