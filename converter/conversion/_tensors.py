"""Casting float32 tensor data to float16/bfloat16, counting what the target cannot hold.

Policy for values the target cannot represent (documented in the README):
- finite values that would round to infinity (magnitude 65520 and above for float16) are
  clamped to +-max (65504) and counted as *clamped*; values between 65504 and 65520 round
  to 65504 as IEEE rounding does; infinities and NaN pass through unchanged;
- non-zero magnitudes that round to zero (below half the smallest float16 subnormal,
  about 3e-8) become signed zero and are counted as *flushed*. Subnormals the target can
  hold are kept, by IEEE round-to-nearest-even.
"""

from __future__ import annotations

__all__ = ["RangeRecorder", "cast_array", "lazy_cast_tensor", "numpy_dtype"]

import threading
from collections.abc import Callable
from typing import Any

import ml_dtypes
import numpy as np
import onnx_ir as ir

from ..core import LARGEST_FINITE
from ._results import TensorRangeReport

# Work through big tensors in slices so that temporaries stay small (16 Mi elements).
_CHUNK_ELEMENTS = 1 << 24


_NUMPY_TARGETS: dict[ir.DataType, np.dtype[Any]] = {
    ir.DataType.FLOAT16: np.dtype(np.float16),
    ir.DataType.BFLOAT16: np.dtype(ml_dtypes.bfloat16),
}
# The largest finite value of each target (float16: 65504; bfloat16: about 3.39e38).
_MAX_FINITE: dict[np.dtype[Any], float] = {
    _NUMPY_TARGETS[ir.DataType.FLOAT16]: LARGEST_FINITE["float16"],
    _NUMPY_TARGETS[ir.DataType.BFLOAT16]: LARGEST_FINITE["bfloat16"],
}


# The exponent field of each target: a magnitude at or above it is infinite or NaN.
_EXPONENT_BITS: dict[np.dtype[Any], int] = {
    _NUMPY_TARGETS[ir.DataType.FLOAT16]: 0x7C00,
    _NUMPY_TARGETS[ir.DataType.BFLOAT16]: 0x7F80,
}


def numpy_dtype(target: ir.DataType) -> np.dtype[Any]:
    """The numpy dtype of a conversion target."""
    return _NUMPY_TARGETS[target]


def cast_array(source: np.ndarray, target: ir.DataType) -> tuple[np.ndarray, int, int]:
    """Return ``(converted, clamped, flushed)`` for a float32 array."""
    out_dtype = numpy_dtype(target)
    flat_source = source.reshape(-1)
    if flat_source.size <= _CHUNK_ELEMENTS:
        converted, clamped, flushed = _cast_chunk(np.asarray(flat_source, dtype=np.float32), out_dtype)
        return converted.reshape(source.shape), clamped, flushed
    result = np.empty(flat_source.shape, dtype=out_dtype)
    clamped = flushed = 0
    for start in range(0, flat_source.size, _CHUNK_ELEMENTS):
        chunk = np.asarray(flat_source[start : start + _CHUNK_ELEMENTS], dtype=np.float32)
        converted, n_clamped, n_flushed = _cast_chunk(chunk, out_dtype)
        result[start : start + chunk.size] = converted
        clamped += n_clamped
        flushed += n_flushed
    return result.reshape(source.shape), clamped, flushed


def _cast_chunk(chunk: np.ndarray, out_dtype: np.dtype) -> tuple[np.ndarray, int, int]:
    with np.errstate(over="ignore"):
        converted = chunk.astype(out_dtype)
    # Both targets are 16-bit: the magnitude's bits tell zeros and non-finite values apart
    # without float16 comparisons, which numpy computes an element at a time.
    magnitude = converted.view(np.uint16) & np.uint16(0x7FFF)
    clamped = 0
    # Overflow shows up as new infinities; checking for any non-finite first keeps the common case cheap.
    if int(magnitude.max(initial=0)) >= _EXPONENT_BITS[out_dtype]:
        overflowed = np.isinf(converted) & np.isfinite(chunk)
        clamped = int(np.count_nonzero(overflowed))
        if clamped:
            max_finite = _MAX_FINITE[out_dtype]
            converted[overflowed] = np.copysign(max_finite, chunk[overflowed]).astype(out_dtype)
    flushed = int(np.count_nonzero(chunk)) - int(np.count_nonzero(magnitude))
    return converted, clamped, flushed


class RangeRecorder:
    """Collects per-tensor clamp/flush counts; safe to call from writer threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reports: dict[object, TensorRangeReport] = {}

    def record(self, name: str, elements: int, clamped: int, flushed: int, key: object = None) -> None:
        with self._lock:
            # A tensor may be materialised more than once (save, then validation): keyed by
            # ``key`` (default: the name) so counts are not doubled. Tensors of one name in
            # sibling subgraphs pass distinct keys, so neither count is lost.
            self._reports[name if key is None else key] = TensorRangeReport(name, elements, clamped, flushed)

    def reports(self) -> tuple[TensorRangeReport, ...]:
        with self._lock:
            return tuple(
                r for r in sorted(self._reports.values(), key=lambda r: r.name) if r.clamped or r.flushed
            )

    def totals(self) -> tuple[int, int]:
        with self._lock:
            return (
                sum(r.clamped for r in self._reports.values()),
                sum(r.flushed for r in self._reports.values()),
            )


def lazy_cast_tensor(
    source: ir.TensorProtocol, shape: ir.ShapeProtocol, name: str, target: ir.DataType, recorder: RangeRecorder
) -> ir.LazyTensor:
    """A tensor that casts ``source`` only when written, so one tensor is in memory at a time."""
    key = object()  # one report per tensor, however often it is materialised

    def materialise() -> ir.TensorProtocol:
        array = source.numpy()
        converted, clamped, flushed = cast_array(array, target)
        recorder.record(name, int(array.size), clamped, flushed, key)
        del array
        release: Callable[[], None] | None = getattr(source, "release", None)
        if release is not None:
            # Unmap the float32 pages of external data once they are converted.
            release()
        return ir.Tensor(converted, dtype=target, name=name)

    # The Shape itself, not a copy: protobuf-backed tensors build a new one on every access.
    return ir.LazyTensor(materialise, dtype=target, shape=shape if isinstance(shape, ir.Shape) else ir.Shape(shape.numpy()), name=name)


def eager_cast_tensor(
    source: ir.TensorProtocol, name: str, target: ir.DataType, recorder: RangeRecorder
) -> ir.TensorProtocol:
    array = source.numpy()
    converted, clamped, flushed = cast_array(array, target)
    recorder.record(name, int(array.size), clamped, flushed, object())
    return ir.Tensor(converted, dtype=target, name=name)
