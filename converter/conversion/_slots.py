"""Where a conversion would store values in the target type, without converting anything.

A calibration needs to know, for every node the conversion converts, which of its inputs
it takes in float16 (or bfloat16) and which of its outputs it stores so: those are the
values the converted model rounds. The answer comes from the same planner the engine
uses, with the same policy, keep lists and weight checks, so a model built from it rounds
exactly where the converted model does.
"""

from __future__ import annotations

__all__ = ["RoundingPlan", "RoundingSlots", "rounding_slots"]

import dataclasses

import onnx_ir as ir

from . import _plan
from ._options import ConvertOptions
from ._plan import value_kind
from ._rewrite import EngineOptions, measured_reasons
from ._types import ensure_element_types

# Nodes whose output converts only when every reader takes the target type (see
# ``WeightConverter.settle_constants``): their readers round for themselves.
_SETTLED = frozenset({"Constant", "ConstantOfShape", "Cast"})


@dataclasses.dataclass(frozen=True)
class RoundingSlots:
    """The slots of one converted node that hold the target type."""

    inputs: tuple[int, ...]  # input indices the node takes in the target type (float32 values, cast)
    outputs: tuple[int, ...]  # output indices it stores in the target type


@dataclasses.dataclass(frozen=True)
class RoundingPlan:
    nodes: dict[ir.Node, RoundingSlots]  # every node of every graph that converts
    # Per If/Loop/Scan body: the outputs it gives in the target type, whatever produces them
    # (a Loop's carried values are cast to it at the end of every iteration).
    graph_outputs: dict[ir.Graph, tuple[int, ...]]


def rounding_slots(model: ir.Model, options: ConvertOptions) -> RoundingPlan:
    """For every node of every graph that ``options`` would convert, its target-type slots.

    Element types are inferred first where the model does not annotate them (``model`` is
    the caller's copy); nothing else is changed. Nodes that stay float32 are absent. A
    Constant, ConstantOfShape or Cast stores its output in the target type only when all
    its readers take that type, so none of them stores an output here: each reader that
    converts rounds what it reads, which gives the same numbers whenever the node converts
    and the right ones when a reader stays float32.
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
        if node.op_type in _SETTLED and node.domain == "":
            outputs = ()
        if inputs or outputs or _plan.subgraphs(node):
            slots[node] = RoundingSlots(inputs, outputs)
    graph_outputs = {
        graph: tuple(i for i, requirement in enumerate(requirements) if requirement is _plan.Requirement.TARGET)
        for graph, requirements in plan.graph_output_requirements.items()
    }
    return RoundingPlan(slots, {g: o for g, o in graph_outputs.items() if o})
