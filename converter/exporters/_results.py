"""What an export produced, as ``halfconv export --json`` prints it."""

from __future__ import annotations

__all__ = ["BaselineExport", "ExportResult"]

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class BaselineExport:
    """The float32 rebuild of a model that computes in float16, exported beside it."""

    output_path: str
    max_abs_diff: float
    tolerance: float


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
    compute_dtype: str = "float32"  # what the framework model computes in; it sets the tolerance
    baseline: BaselineExport | None = None  # with --fp32-baseline, for a model that is not float32

    def to_json_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["input_shape"] = list(self.input_shape)
        data["notes"] = list(self.notes)
        return data
