"""The accuracy-budget search: the shortest ranked prefix of nodes that, kept float32, meets the budget.

The float32 model is trial one and the candidate (every switchable node fp16 except those
its ranges keep) trial two. When the candidate drops more than the budget, the other nodes
are ranked by the error each introduces, worst first, and nodes move to float32 in that
order: a bisection over the prefix length finds the shortest prefix that meets the
budget, in ⌈log2 N⌉ trials for N ranked nodes. The search so ends after at most
2 + ⌈log2 N⌉ ≤ 2 + K·⌈log2 N⌉ trials, for the K nodes it keeps.

A node moves with the nodes that produce its inputs: a float32 node still reads a value
that its producer stores in fp16, so keeping the node alone would leave the rounding it
suffers from in place (a Sub that cancels two large values needs them unrounded).

Keeping every switchable node float32 computes the float32 model exactly, so the whole
ranking meets any budget without a trial: the search always ends on a set that met it.
"""

from __future__ import annotations

__all__ = ["Trial", "search"]

import dataclasses
from collections.abc import Callable, Sequence


@dataclasses.dataclass(frozen=True)
class Trial:
    """One evaluation of a choice of float32 nodes on the validation images."""

    stage: str  # "float32", "candidate" or "bisection"
    kept_fp32: int  # switchable nodes kept float32
    accuracy: float
    drop_pp: float  # float32's accuracy minus this one, in percentage points
    within_budget: bool


class _Trials:
    def __init__(self, accuracy_of: Callable[[frozenset[int]], float], fp32_accuracy: float, budget_pp: float) -> None:
        self.accuracy_of = accuracy_of
        self.fp32_accuracy = fp32_accuracy
        self.budget_pp = budget_pp
        self.done: list[Trial] = []

    def passes(self, kept: frozenset[int], stage: str) -> bool:
        accuracy = self.accuracy_of(kept)
        drop = (self.fp32_accuracy - accuracy) * 100.0
        within = drop <= self.budget_pp + 1e-9
        self.done.append(Trial(stage, len(kept), accuracy, drop, within))
        return within


def _union(groups: Sequence[frozenset[int]]) -> frozenset[int]:
    return frozenset().union(*groups)


def _shortest_prefix(trials: _Trials, fixed: frozenset[int], ranked: Sequence[frozenset[int]], low: int, every: int) -> int:
    """The smallest k in (low, len(ranked)] for which ``fixed`` plus ``ranked[:k]`` passes.

    The first prefix that keeps all ``every`` switches float32 is known to pass (it is the
    float32 model), and ``ranked[:low]`` to fail.
    """
    high, covered = len(ranked), set(fixed)
    for k, group in enumerate(ranked, 1):
        covered |= group
        if len(covered) == every:
            high = k
            break
    while high - low > 1:
        middle = (low + high) // 2
        if trials.passes(fixed | _union(ranked[:middle]), "bisection"):
            high = middle
        else:
            low = middle
    return high


def search(
    accuracy_of: Callable[[frozenset[int]], float],
    fp32_accuracy: float,
    budget_pp: float,
    base: frozenset[int],
    rank: Callable[[], Sequence[frozenset[int]]],
    switch_count: int,
) -> tuple[frozenset[int], list[Trial]]:
    """The switches to keep float32, and every trial run.

    ``accuracy_of`` evaluates a set of switches kept float32; ``base`` is the candidate's
    set (kept by their ranges); ``rank`` orders the other switches, worst first, each with
    the switches that must move with it, and is called only when the candidate misses the
    budget.
    """
    trials = _Trials(accuracy_of, fp32_accuracy, budget_pp)
    trials.done.append(Trial("float32", switch_count, fp32_accuracy, 0.0, True))
    if trials.passes(base, "candidate"):
        return base, trials.done
    ranked = list(rank())
    length = _shortest_prefix(trials, base, ranked, 0, switch_count)  # the candidate (no ranked node kept) failed
    return base | _union(ranked[:length]), trials.done
