"""What the numerics model rounds and how a rounded value compares with float32."""

from __future__ import annotations

__all__ = ["RELATIVE_ERROR_LIMIT", "NodeDivergence", "RoundedValue"]

import dataclasses

from ..core import LARGEST_FINITE

# A rounded value whose largest difference from float32 passes this share of its largest
# float32 magnitude has diverged (float16 rounds to about 0.05% per value).
RELATIVE_ERROR_LIMIT = 0.01


@dataclasses.dataclass(frozen=True)
class RoundedValue:
    """A value the numerics model rounds, and where its float32 original is.

    Most are a node's output, which has the same name in the float32 model. A Cast that
    conversion inserted (float32 in, float16 out) is named for what it feeds: its float32
    original is the Cast's input, and the node to keep in float32 is the one it feeds.
    """

    name: str  # in the numerics model
    reference: str  # the float32 value it stands for, in the float32 model
    node: str  # the node to blame ("" when unnamed)
    op_type: str
    stored: str  # "float16" or "bfloat16"
    is_input: bool = False  # True: the value is an input of ``node`` that is cast to 16 bits

@dataclasses.dataclass(frozen=True)
class NodeDivergence:
    """How one stored value of the converted model differs from its float32 original."""

    value: str  # the float32 model's name for it
    node: str
    op_type: str
    is_input: bool
    stored: str  # "float16" or "bfloat16"
    max_abs_float32: float  # the largest magnitude the float32 model computes there
    nonfinite: int  # elements finite in float32 that are inf or NaN once stored in 16 bits
    max_rel_error: float  # max |float32 - stored| over finite elements / max |float32|

    @property
    def out_of_range(self) -> bool:
        return self.max_abs_float32 > LARGEST_FINITE[self.stored]

    @property
    def diverged(self) -> bool:
        return self.nonfinite > 0 or self.out_of_range or self.max_rel_error > RELATIVE_ERROR_LIMIT

    def describe(self) -> str:
        where = f"node '{self.node}' ({self.op_type})" if self.node else f"an unnamed {self.op_type} node"
        what = f"its input '{self.value}'" if self.is_input else f"its output '{self.value}'"
        if self.nonfinite or self.out_of_range:
            return (
                f"{where}: {what} reaches {self.max_abs_float32:.3g} in float32, beyond {self.stored}'s {LARGEST_FINITE[self.stored]:.6g}, "
                f"and has {self.nonfinite} non-finite value(s) once stored in 16 bits"
            )
        return f"{where}: {what} differs from float32 by up to {self.max_rel_error:.2%} of its range in 16 bits"
