"""Where a conversion would store values in the target type, without converting anything.

A calibration needs to know, for every node the conversion converts, which of its inputs
it takes in float16 (or bfloat16) and which of its outputs it stores so: those are the
values the converted model rounds. The answer comes from the same planner the engine
uses, with the same policy, keep lists and weight checks, so a model built from it rounds
exactly where the converted model does.
"""

from __future__ import annotations

__all__ = ["RoundingSlots", "rounding_slots"]

import dataclasses

import onnx_ir as ir

from . import _plan
from ._options import ConvertOptions
from ._plan import value_kind
from ._rewrite import EngineOptions, measured_reasons
from ._types import ensure_element_types


@dataclasses.dataclass(frozen=True)
class RoundingSlots:
    """The slots of one converted node that hold the target type."""

    inputs: tuple[int, ...]  # input indices the node takes in the target type (float32 values, cast)
    outputs: tuple[int, ...]  # output indices it stores in the target type


def rounding_slots(model: ir.Model, options: ConvertOptions) -> dict[ir.Node, RoundingSlots]:
    """For every node of every graph that ``options`` would convert, its target-type slots.

    Element types are inferred first where the model does not annotate them (``model`` is
    the caller's copy); nothing else is changed. Nodes that stay float32 are absent.
    """
    ensure_element_types(model)
    engine = EngineOptions.of(options)
    plan = _plan.decide(
        model,
        _plan.DecisionOptions(
            target=engine.target,
            keep_ops=engine.keep_ops,
            keep_nodes=engine.keep_nodes,
            use_default_policy=engine.use_default_policy,
            measured=measured_reasons(model, engine),
        ),
    )
    slots: dict[ir.Node, RoundingSlots] = {}
    for node, node_plan in plan.nodes.items():
        if not node_plan.converted:
            continue
        inputs = tuple(
            i
            for i, requirement in enumerate(node_plan.input_requirements)
            if requirement is _plan.Requirement.TARGET and value_kind(node.inputs[i]) == "float"
        )
        outputs = tuple(i for i, to_target in enumerate(node_plan.output_to_target) if to_target)
        if inputs or outputs or _plan.subgraphs(node):
            slots[node] = RoundingSlots(inputs, outputs)
    return slots
