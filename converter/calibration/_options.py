"""The options of a calibration, declared once with their defaults and their checks."""

from __future__ import annotations

__all__ = ["DEFAULT_BUDGET_PP", "DEFAULT_CALIBRATION_SIZE", "DEFAULT_VALIDATION_SIZE", "CalibrationOptions"]

import dataclasses
from pathlib import Path

from ..core import UsageError
from ..datasets import DATASETS, Dataset

DEFAULT_CALIBRATION_SIZE = 512
DEFAULT_VALIDATION_SIZE = 2000
DEFAULT_BUDGET_PP = 0.1


@dataclasses.dataclass(frozen=True)
class CalibrationOptions:
    """Where the calibration images come from, how many, and the accuracy budget.

    A dataset name means its *training* split: the images that measure ranges and the
    images that check the budget are drawn from it, disjoint, by a seeded permutation, so
    that the test split a report is written on plays no part in choosing precision. An
    .npz file (arrays ``x`` and ``y``) is the user's own held-out data, split the same way.
    """

    source: str  # mnist | cifar10 | PATH.npz
    size: int = DEFAULT_CALIBRATION_SIZE  # images whose ranges and errors are measured
    validation_size: int = DEFAULT_VALIDATION_SIZE  # further images on which the budget is checked
    budget_pp: float = DEFAULT_BUDGET_PP  # top-1 may drop at most this many percentage points below float32
    data_dir: Path | None = None
    layout: str = "auto"  # the model's input layout, as for evaluate
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    seed: int = 0  # of the permutation that draws the images
    progress: bool = False
    # The training split of ``source``, when the caller has read it already (``run`` does, before writing anything).
    preloaded: Dataset | None = dataclasses.field(default=None, compare=False, repr=False)

    def check(self) -> None:
        """Raise UsageError for a value out of range."""
        if self.source not in DATASETS and not self.source.endswith(".npz"):
            raise UsageError(f"unknown calibration data '{self.source}'", "use mnist, cifar10 or a path to an .npz")
        if not 1 <= self.size <= 1_000_000:
            raise UsageError(f"--calibration-size must be from 1 to 1,000,000 images, got {self.size}", "try 512")
        if not 1 <= self.validation_size <= 1_000_000:
            raise UsageError(
                f"--validation-size must be from 1 to 1,000,000 images, got {self.validation_size}", "try 2000"
            )
        if not 0 <= self.budget_pp <= 100:
            raise UsageError(f"--accuracy-budget must be from 0 to 100 percentage points, got {self.budget_pp:g}", "try 0.1")
