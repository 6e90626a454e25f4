"""Casting float32 tensor data to float16/bfloat16, counting what the target cannot hold.

Policy for values the target cannot represent (documented in the README):
- finite magnitudes above the target's largest finite value (65504 for float16) are
  clamped to +-max and counted as *clamped*; infinities and NaN pass through unchanged;
- non-zero magnitudes that round to zero (below half the smallest float16 subnormal,
  about 3e-8) become signed zero and are counted as *flushed*. Subnormals the target can
  hold are kept, by IEEE round-to-nearest-even.
"""

from __future__ import annotations

__all__ = ["RangeRecorder", "cast_array", "lazy_cast_tensor", "numpy_dtype"]

import threading
from collections.abc import Callable

import ml_dtypes
import numpy as np
import onnx_ir as ir

from converter._results import TensorRangeReport

# Work through big tensors in slices so that temporaries stay small (16 Mi elements).
_CHUNK_ELEMENTS = 1 << 24


def numpy_dtype(target: ir.DataType) -> np.dtype:
    if target == ir.DataType.FLOAT16:
        return np.dtype(np.float16)
    if target == ir.DataType.BFLOAT16:
        return np.dtype(ml_dtypes.bfloat16)
    raise ValueError(f"unsupported target {target}")


def cast_array(source: np.ndarray, target: ir.DataType) -> tuple[np.ndarray, int, int]:
    """Return ``(converted, clamped, flushed)`` for a float32 array."""
    out_dtype = numpy_dtype(target)
    max_finite = np.float32(ml_dtypes.finfo(out_dtype).max)
    flat_source = source.reshape(-1)
    result = np.empty(flat_source.shape, dtype=out_dtype)
    clamped = 0
    flushed = 0
    for start in range(0, max(flat_source.size, 1), _CHUNK_ELEMENTS):
        chunk = np.asarray(flat_source[start : start + _CHUNK_ELEMENTS], dtype=np.float32)
        if chunk.size == 0:
            break
        magnitude = np.abs(chunk)
        too_big = (magnitude > max_finite) & np.isfinite(chunk)
        n_big = int(np.count_nonzero(too_big))
        if n_big:
            chunk = np.where(too_big, np.copysign(max_finite, chunk), chunk)
            clamped += n_big
        converted = chunk.astype(out_dtype)
        flushed += int(np.count_nonzero((converted == 0) & (chunk != 0)))
        result[start : start + chunk.size] = converted
    return result.reshape(source.shape), clamped, flushed


class RangeRecorder:
    """Collects per-tensor clamp/flush counts; safe to call from writer threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reports: dict[str, TensorRangeReport] = {}
        self.converted_elements = 0

    def record(self, name: str, elements: int, clamped: int, flushed: int) -> None:
        with self._lock:
            # A tensor may be materialised more than once (save, then validation):
            # keyed by name so counts are not doubled.
            self._reports[name] = TensorRangeReport(name, elements, clamped, flushed)

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
    source: ir.TensorProtocol, name: str, target: ir.DataType, recorder: RangeRecorder
) -> ir.LazyTensor:
    """A tensor that casts ``source`` only when written, so one tensor is in memory at a time."""

    def materialise() -> ir.TensorProtocol:
        array = source.numpy()
        converted, clamped, flushed = cast_array(array, target)
        recorder.record(name, int(array.size), clamped, flushed)
        del array
        release: Callable[[], None] | None = getattr(source, "release", None)
        if release is not None:
            # Unmap the float32 pages of external data once they are converted.
            release()
        return ir.Tensor(converted, dtype=target, name=name)

    return ir.LazyTensor(materialise, dtype=target, shape=source.shape, name=name)


def eager_cast_tensor(
    source: ir.TensorProtocol, name: str, target: ir.DataType, recorder: RangeRecorder
) -> ir.Tensor:
    array = source.numpy()
    converted, clamped, flushed = cast_array(array, target)
    recorder.record(name, int(array.size), clamped, flushed)
    return ir.Tensor(converted, dtype=target, name=name)
