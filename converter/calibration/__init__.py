"""Calibration: the fp16/fp32 decisions measured on training images, within an accuracy budget.

``calibrated_convert`` measures every value's range on calibration images, keeps float32
the nodes whose values the target cannot hold, checks the accuracy budget on further
images of the training split, and, when it is missed, keeps the nodes that introduce the
most error float32, found by bisection in one ONNX Runtime session.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_BUDGET_PP",
    "DEFAULT_CALIBRATION_SIZE",
    "DEFAULT_VALIDATION_SIZE",
    "RANGE_MARGIN",
    "CalibratedConversion",
    "CalibrationOptions",
    "CalibrationProvenance",
    "CalibrationReport",
    "Decision",
    "RankedNode",
    "Trial",
    "calibrated_convert",
]

from typing import TYPE_CHECKING

from ..core import lazy_exports
from ._options import DEFAULT_BUDGET_PP, DEFAULT_CALIBRATION_SIZE, DEFAULT_VALIDATION_SIZE, CalibrationOptions

if TYPE_CHECKING:
    from ._data import CalibrationProvenance
    from ._decide import RANGE_MARGIN
    from ._pipeline import calibrated_convert
    from ._results import CalibratedConversion, CalibrationReport, Decision, RankedNode
    from ._search import Trial

__getattr__, __dir__ = lazy_exports(__name__, ("._data", "._decide", "._pipeline", "._results", "._search"))
