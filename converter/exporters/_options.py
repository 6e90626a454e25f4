"""The options of an export, declared once with their defaults and their checks."""

from __future__ import annotations

__all__ = ["DATASET_IMAGE_SHAPES", "DEFAULT_OPSET", "FRAMEWORKS", "MAX_SAMPLE_ELEMENTS", "ExportOptions"]

import dataclasses
import math
from pathlib import Path

from ..core import UsageError

FRAMEWORKS = ("keras", "torch")
DATASET_IMAGE_SHAPES = {"mnist": (28, 28, 1), "cifar10": (32, 32, 3)}
DEFAULT_OPSET = 18


# An export checks its ONNX output against the framework on 64 samples of this shape.
MAX_SAMPLE_ELEMENTS = 1 << 24


@dataclasses.dataclass(frozen=True)
class ExportOptions:
    """Options of ``halfconv export``; the CLI flags map one to one onto these fields."""

    output: Path | None = None  # default: MODEL's stem + .onnx beside it
    framework: str | None = None  # keras | torch; detected from the file when None
    input_shape: tuple[int, ...] | None = None  # per-sample shape without the batch axis
    opset: int = DEFAULT_OPSET
    dataset: str | None = None  # mnist | cifar10: records the preprocessing, validates on its images
    mean: tuple[float, ...] | None = None  # per-channel normalisation the model expects
    std: tuple[float, ...] | None = None
    torch_factory: str | None = None  # "pkg.module:function" or "path/to/file.py:function"
    trust_pickle: bool = False  # allow loading a fully pickled nn.Module (can execute code)
    force: bool = False
    data_dir: Path | None = None
    # Also write OUTPUT's stem + .fp32.onnx: the model rebuilt under the float32 policy with the
    # same weights, the baseline of a model that computes in float16 (Keras mixed_float16).
    fp32_baseline: bool = False

    def check(self) -> None:
        if self.framework is not None and self.framework not in FRAMEWORKS:
            raise UsageError(f"unknown framework '{self.framework}'", "use keras or torch")
        if self.dataset is not None and self.dataset not in DATASET_IMAGE_SHAPES:
            raise UsageError(f"unknown dataset '{self.dataset}'", "use mnist or cifar10")
        if self.input_shape is not None and (not self.input_shape or any(d <= 0 for d in self.input_shape)):
            raise UsageError(f"--input-shape {self.input_shape} has a non-positive dimension", "e.g. --input-shape 1,28,28")
        if self.input_shape is not None and math.prod(self.input_shape) > MAX_SAMPLE_ELEMENTS:
            raise UsageError(
                f"--input-shape {','.join(map(str, self.input_shape))} has {math.prod(self.input_shape):,} elements per sample, "
                f"more than {MAX_SAMPLE_ELEMENTS:,}",
                "pass the per-sample shape without the batch axis, e.g. 1,28,28",
            )
        if not 7 <= self.opset <= 23:
            raise UsageError(f"--opset {self.opset} is out of range", "use an opset from 7 to 23; 17 or 18 suits most models")
        if self.torch_factory is not None and ":" not in self.torch_factory:
            raise UsageError(f"--torch-factory '{self.torch_factory}' has no ':'", "write it as pkg.module:function or file.py:function")
