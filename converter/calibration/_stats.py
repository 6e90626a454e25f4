"""Statistics streamed over calibration batches: ranges of float32 values, and fp16's error on them.

Each accumulator keeps a few numbers per value, updated batch by batch, so memory stays
bounded however many images are calibrated on.
"""

from __future__ import annotations

__all__ = ["ErrorStats", "RangeStats"]

import numpy as np

_CHUNK = 1 << 22  # elements per slice of a value, so temporaries stay bounded too


def _rows(array: np.ndarray, batch: int) -> np.ndarray:
    """``array`` as (images, elements) when its first axis is the batch, else one row for the whole batch."""
    if array.ndim >= 1 and array.shape[0] == batch and batch > 0:
        return array.reshape(batch, -1)
    return array.reshape(1, -1)


class RangeStats:
    """Per value: the largest finite magnitude, elements beyond a limit, and elements below the normal range."""

    def __init__(self, names: tuple[str, ...], limit: float, smallest_normal: float) -> None:
        self.names = names
        self.limit = limit
        self.smallest_normal = smallest_normal
        count = len(names)
        self.absmax = np.zeros(count, dtype=np.float64)
        self.elements = np.zeros(count, dtype=np.int64)
        self.beyond = np.zeros(count, dtype=np.int64)  # finite elements above ``limit``
        self.images_beyond = np.zeros(count, dtype=np.int64)  # images with at least one such element
        self.nonzero = np.zeros(count, dtype=np.int64)
        self.below_normal = np.zeros(count, dtype=np.int64)  # non-zero elements below the smallest normal
        self.mass = np.zeros(count, dtype=np.float64)  # the sum of the finite magnitudes
        self.below_normal_mass = np.zeros(count, dtype=np.float64)  # the part of it below the smallest normal
        self.images = 0

    def update(self, arrays: list[np.ndarray], batch: int) -> None:
        for index, array in enumerate(arrays):
            rows = _rows(np.asarray(array), batch)
            row_beyond = np.zeros(rows.shape[0], dtype=bool)
            step = max(1, _CHUNK // rows.shape[0])
            for start in range(0, rows.shape[1], step):
                part = np.abs(rows[:, start : start + step].astype(np.float32, copy=False))
                finite = np.isfinite(part)
                above = finite & (part > self.limit)
                row_beyond |= above.any(axis=1)
                nonzero = finite & (part > 0)
                self.beyond[index] += int(above.sum())
                self.nonzero[index] += int(nonzero.sum())
                tiny = nonzero & (part < self.smallest_normal)
                self.below_normal[index] += int(tiny.sum())
                self.mass[index] += float(part[finite].sum(dtype=np.float64))
                self.below_normal_mass[index] += float(part[tiny].sum(dtype=np.float64))
                if finite.any():
                    self.absmax[index] = max(self.absmax[index], float(part[finite].max()))
                self.elements[index] += part.size
            self.images_beyond[index] += batch if rows.shape[0] != batch else int(row_beyond.sum())
        self.images += batch


class ErrorStats:
    """Per value: the relative L2 error of a candidate against float32, and the non-finite values it adds."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        count = len(names)
        self.squared_error = np.zeros(count, dtype=np.float64)
        self.squared_reference = np.zeros(count, dtype=np.float64)
        self.new_nonfinite = np.zeros(count, dtype=np.int64)

    def update(self, reference: list[np.ndarray], candidate: list[np.ndarray]) -> None:
        for index, (ref, out) in enumerate(zip(reference, candidate)):
            ref64 = np.asarray(ref, dtype=np.float64).reshape(-1)
            out64 = np.asarray(out, dtype=np.float64).reshape(-1)
            ref_finite = np.isfinite(ref64)
            both = ref_finite & np.isfinite(out64)
            self.new_nonfinite[index] += int((ref_finite & ~np.isfinite(out64)).sum())
            self.squared_error[index] += float(np.square(out64[both] - ref64[both]).sum())
            self.squared_reference[index] += float(np.square(ref64[both]).sum())

    def relative_error(self) -> np.ndarray:
        """Per value: ||candidate - fp32|| / ||fp32||; infinite where the candidate added inf or NaN."""
        with np.errstate(divide="ignore", invalid="ignore"):
            relative = np.sqrt(self.squared_error / self.squared_reference)
        relative[self.squared_reference == 0] = np.where(self.squared_error[self.squared_reference == 0] > 0, np.inf, 0.0)
        relative[self.new_nonfinite > 0] = np.inf
        return relative
