"""From measurements to decisions: which ranges keep a node float32, and how the rest rank by error.

**The range margin.** A value whose largest magnitude on the calibration images passes
*half* the target's largest finite value (32,752 for float16) keeps the node that produces
it and the nodes that read it float32. The factor of two is one binade of headroom: the
calibration images are a sample, and the largest value of a few hundred images
underestimates what the test set and later inputs reach; a value already within a factor
two of overflow on the sample overflows on inputs only slightly off it. Values in the
thousands, far inside the range, keep their fp16 (ModelOpt AutoCast's default threshold of
512 would keep them float32 for nothing). The budget search, which measures accuracy,
covers what a range cannot show.

A value whose magnitude lies mostly (more than half of the sum of its magnitudes) in
elements below the target's smallest normal number keeps its nodes float32 too: there
float16 holds only a few significant bits. Counting magnitude, not elements, leaves alone
the tiny probabilities of a softmax, which are most of its elements but none of its mass.
"""

from __future__ import annotations

__all__ = ["RANGE_MARGIN", "SUBNORMAL_SHARE_LIMIT", "introduced_errors", "range_decisions"]

import numpy as np

from ..core import format_magnitude
from ._results import Decision
from ._search_model import ExposedValue, SearchModel
from ._stats import ErrorStats, RangeStats

RANGE_MARGIN = 2.0
SUBNORMAL_SHARE_LIMIT = 0.5


def _verdict(stats: RangeStats, index: int, target_name: str, largest: float) -> str | None:
    """Why this value's range does not fit the target, in figures, or None."""
    images = stats.images
    if stats.beyond[index]:
        hit = int(stats.images_beyond[index])
        return (
            f"absmax {stats.absmax[index]:.3g}, beyond {format_magnitude(stats.limit)} (half {target_name}'s largest, "
            f"{format_magnitude(largest)}) on {hit / images:.0%} of {images} calibration images"
        )
    mass = float(stats.mass[index])
    if mass > 0 and stats.below_normal_mass[index] / mass > SUBNORMAL_SHARE_LIMIT:
        share = stats.below_normal_mass[index] / mass
        return (
            f"holds {share:.0%} of its magnitude in values below {target_name}'s normal range "
            f"({stats.smallest_normal:.2g}; {stats.below_normal[index]:,} of {stats.elements[index]:,} elements) "
            f"on {images} calibration images"
        )
    return None


def range_decisions(
    model: SearchModel,
    outputs: RangeStats,
    inputs: RangeStats,
    target_name: str,
    largest: float,
) -> dict[int, Decision]:
    """The switches whose values do not fit the target, each with its figure (the producer's first)."""
    decided: dict[int, Decision] = {}

    def keep(switch: int, role: str, value: ExposedValue, verdict: str) -> None:
        if switch not in decided:
            node = model.switches[switch]
            reason = f"{role} '{value.value}' {verdict}"
            decided[switch] = Decision(node.node_index, node.name, node.op_type, "activations", reason)

    for stats, values in ((outputs, model.exposed), (inputs, model.input_values)):
        for index, value in enumerate(values):
            verdict = _verdict(stats, index, target_name, largest)
            if verdict is None:
                continue
            if value.producer is not None:
                keep(value.producer, "output", value, verdict)
            for consumer in value.consumers:
                keep(consumer, "input", value, verdict)
    return dict(sorted(decided.items()))


def introduced_errors(model: SearchModel, errors: ErrorStats) -> np.ndarray:
    """Per switch: the relative error at its outputs minus the largest at its inputs (at least 0).

    That is the error the node's own rounding adds; a node whose outputs turn non-finite
    while its inputs are finite introduces an infinite error.
    """
    relative = dict(zip(errors.names, errors.relative_error()))
    introduced = np.zeros(len(model.switches), dtype=np.float64)
    for index, switch in enumerate(model.switches):
        out = max((relative.get(name, 0.0) for name in switch.outputs), default=0.0)
        into = max((relative.get(name, 0.0) for name in switch.inputs), default=0.0)
        if np.isinf(out):
            introduced[index] = 0.0 if np.isinf(into) else np.inf
        else:
            introduced[index] = max(0.0, out - into) if np.isfinite(into) else 0.0
    return introduced
