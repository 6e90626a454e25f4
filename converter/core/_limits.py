"""The range of the 16-bit float types, by the names reports use."""

from __future__ import annotations

__all__ = ["LARGEST_FINITE", "SMALLEST_NORMAL", "SMALLEST_SUBNORMAL"]

LARGEST_FINITE = {"float16": 65504.0, "bfloat16": 3.3895313892515355e38}
SMALLEST_SUBNORMAL = {"float16": 2.0**-24, "bfloat16": 2.0**-133}
SMALLEST_NORMAL = {"float16": 2.0**-14, "bfloat16": 2.0**-126}
