"""What an export produced, as ``halfconv export --json`` prints it."""

from __future__ import annotations

__all__ = ["ExportResult"]

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class ExportResult:
    input_path: str
    output_path: str
    framework: str
    source_format: str
    exporter: str
    opset: int
    input_shape: tuple[int, ...]
    preprocessing: dict[str, Any]
    validation_inputs: str  # "mnist test images" or "random"
    validation_samples: int
    max_abs_diff: float
    tolerance: float
    notes: tuple[str, ...]
    wall_time_s: float

    def to_json_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["input_shape"] = list(self.input_shape)
        data["notes"] = list(self.notes)
        return data
