"""Weights the target type cannot hold, found without data: their consumers stay float32.

A float32 weight with finite values beyond the target's largest (65504 for float16), or
whose non-zero values mostly become zero in the target, would change the model's function
once converted: clamping to ±65504 or flushing is a different weight. By default the nodes
that use such a weight stay float32, each with its figure as the reason; ``--clamp-weights``
converts them anyway, clamping and counting as before.
"""

from __future__ import annotations

__all__ = ["FLUSH_SHARE_LIMIT", "weight_range_reasons"]


import functools

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


@functools.cache
def _float32_bits(value: float) -> int:
    return int(np.float32(value).view(np.uint32))


def _scan(array: np.ndarray, largest: float, smallest: float) -> tuple[int, int, int, float]:
    """(values beyond the range, non-zero values, non-zero values that flush, largest finite magnitude).

    Works on the magnitudes' bit patterns, which order as the magnitudes do (NaN above
    infinity): one mask gives the peak and the flush count without float comparisons, and
    the exact counts of non-finite and out-of-range values are only taken when the peak
    shows that there are some.
    """
    flat = array.reshape(-1)
    largest_bits, smallest_bits = _float32_bits(largest), _float32_bits(smallest)
    beyond = nonzero = flushed = 0
    peak = 0.0
    for start in range(0, flat.size, _CHUNK_ELEMENTS):
        chunk = np.asarray(flat[start : start + _CHUNK_ELEMENTS], dtype=np.float32)
        magnitude = chunk.view(np.uint32) & np.uint32(0x7FFFFFFF)
        chunk_nonzero = int(np.count_nonzero(magnitude))
        nonzero += chunk_nonzero
        # Below the smallest representable magnitude, zeros included; then the zeros taken away.
        flushed += int(np.count_nonzero(magnitude < smallest_bits)) - (chunk.size - chunk_nonzero)
        highest = int(magnitude.max())
        if highest <= largest_bits:
            peak = max(peak, float(np.uint32(highest).view(np.float32)))
            continue
        values = np.abs(chunk)
        finite = np.isfinite(values)
        beyond += int(np.count_nonzero(finite & (values > largest)))
        if finite.any():
            peak = max(peak, float(values[finite].max()))
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
            if tensor is None or tensor.dtype != _FLOAT:
                continue
            data = tensor.numpy()  # the tensor's size would build its shape once more
            if data.size:
                _keep_users(value, _reason(value.name or "(unnamed)", data, target), reasons)
            del data
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
