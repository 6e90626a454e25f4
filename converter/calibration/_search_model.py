"""The search model: one float32 model in which each node's fp16 rounding is switched by an input.

Built from the float32 model and the conversion's plan, it computes every node in float32
and, where the converted model would store a value in the target type, rounds it with a
Cast pair (as the numerics model does). Each rounding is chosen by ``Where(switch, rounded,
unrounded)``, and the switches of one main-graph node are one element of a boolean input
vector. A trial of any choice of fp16 nodes is then a run of one session with another
vector: all switches off computes the float32 model exactly, all on computes the numerics
model of the plain conversion, and any mix computes the numerics model of that conversion
with the switched-off nodes kept float32.

Rounding is applied where the converted model rounds: a node that converts rounds the
outputs it stores in the target type, and every float32 value it takes in the target type
(a weight, or the output of a float32 node, cast on the boundary). Rounding a value twice
changes nothing, so a value between two converted nodes is rounded once in effect. Nodes
in If/Loop/Scan bodies share the switch of the main-graph node that holds them. Every
float32 value of the main graph is also exposed as an output, for range and error statistics.
"""

from __future__ import annotations

__all__ = ["ExposedValue", "SearchModel", "Switch", "build_search_model"]

import dataclasses

import numpy as np
import onnx_ir as ir

from ..conversion import RoundingSlots
from ..core import UniqueNames

_FLOAT = ir.DataType.FLOAT
MASK_NAME = "halfconv_fp16_switches"


@dataclasses.dataclass(frozen=True)
class Switch:
    """One main-graph node whose fp16 rounding the search turns on or off."""

    node_index: int  # position in the main graph of the model file
    name: str
    op_type: str
    inputs: tuple[str, ...]  # the exposed float32 values it reads
    outputs: tuple[str, ...]  # the exposed float32 values it produces


@dataclasses.dataclass(frozen=True)
class ExposedValue:
    """A float32 value of the main graph, exposed as an output of the search model."""

    name: str
    producer: int | None  # index into the switches of the node producing it, None if that node has no switch
    consumers: tuple[int, ...]  # indices into the switches of the nodes that read it (in their bodies too)


@dataclasses.dataclass(frozen=True)
class SearchModel:
    mask_name: str
    outputs: tuple[str, ...]  # the model's own outputs, first in the search model's outputs
    switches: tuple[Switch, ...]
    exposed: tuple[ExposedValue, ...]  # exposed node outputs, after the model's own outputs
    input_values: tuple[ExposedValue, ...]  # float32 graph inputs (their statistics come from the data)


def _is_float(value: ir.Value | None) -> bool:
    return value is not None and isinstance(value.type, ir.TensorType) and value.type.dtype == _FLOAT


class _Builder:
    def __init__(self, model: ir.Model, slots: dict[ir.Node, RoundingSlots], target: ir.DataType) -> None:
        self.model = model
        self.slots = slots
        self.target = target
        self.names = UniqueNames(model)
        self.rounded: dict[tuple[int, int], ir.Value] = {}  # (id(value), id(graph)) -> its rounded copy
        self.chosen: dict[int, ir.Value] = {}  # id(node output) -> the switched value read in its place

    def _node(self, op_type: str, inputs: list[ir.Value | None], name: str, **attributes: int) -> ir.Node:
        node = ir.Node(
            "",
            op_type,
            inputs,
            attributes=[ir.AttrInt64(k, v) for k, v in attributes.items()],
            name=self.names.unique(f"search_{name}"),
        )
        node.outputs[0].name = self.names.unique(name)
        return node

    def _round(self, value: ir.Value, name: str) -> list[ir.Node]:
        """Cast ``value`` to the target type and back: the two nodes, the last giving the rounded value."""
        down = self._node("Cast", [value], f"{name}.stored", to=int(self.target))
        down.outputs[0].type = ir.TensorType(self.target)
        back = self._node("Cast", [down.outputs[0]], f"{name}.rounded", to=int(_FLOAT))
        for node in (down, back):
            node.outputs[0].shape = value.shape
        back.outputs[0].type = ir.TensorType(_FLOAT)
        return [down, back]

    def _choose(self, switch: ir.Value, rounded: ir.Value, unrounded: ir.Value, name: str) -> ir.Node:
        node = self._node("Where", [switch, rounded, unrounded], name)
        node.outputs[0].type = ir.TensorType(_FLOAT)
        node.outputs[0].shape = unrounded.shape
        return node

    def _round_inputs(self, graph: ir.Graph, node: ir.Node, slots: RoundingSlots, switch: ir.Value) -> None:
        for index in slots.inputs:
            value = node.inputs[index]
            if value is None:
                continue
            key = (id(value), id(graph))
            added: list[ir.Node] = []
            if key not in self.rounded:
                pair = self._round(value, f"{value.name or 'value'}.in")
                added += pair
                self.rounded[key] = pair[-1].outputs[0]
            chosen = self._choose(switch, self.rounded[key], value, f"{value.name or 'value'}.for_{node.name or node.op_type}")
            added.append(chosen)
            graph.insert_before(node, added)
            node.replace_input_with(index, chosen.outputs[0])

    def _round_outputs(self, graph: ir.Graph, node: ir.Node, slots: RoundingSlots, switch: ir.Value) -> None:
        for index in slots.outputs:
            value = node.outputs[index]
            uses = list(value.uses())
            was_output = [i for i, output in enumerate(graph.outputs) if output is value]
            name = value.name or self.names.unique("value")
            value.name = self.names.unique(f"{name}.unrounded")
            pair = self._round(value, name)
            chosen = self._choose(switch, pair[-1].outputs[0], value, f"{name}.chosen")
            for use in uses:
                use.node.replace_input_with(use.idx, chosen.outputs[0])
            for position in was_output:
                graph.outputs[position] = chosen.outputs[0]
            chosen.outputs[0].name = name  # the value keeps its name: the same value in every model
            self.chosen[id(value)] = chosen.outputs[0]
            graph.insert_after(node, [*pair, chosen])

    def _apply(self, graph: ir.Graph, node: ir.Node, switch: ir.Value) -> None:
        """Switch the roundings of ``node`` and of every node in its subgraphs."""
        for attribute in node.attributes.values():
            if attribute.type == ir.AttributeType.GRAPH:
                self._graph(attribute.as_graph(), switch)
            elif attribute.type == ir.AttributeType.GRAPHS:
                for subgraph in attribute.as_graphs():
                    self._graph(subgraph, switch)
        slots = self.slots.get(node)
        if slots is not None:
            self._round_inputs(graph, node, slots, switch)
            self._round_outputs(graph, node, slots, switch)

    def _graph(self, graph: ir.Graph, switch: ir.Value) -> None:
        for node in list(graph):
            self._apply(graph, node, switch)

    def _has_rounding(self, node: ir.Node) -> bool:
        if node in self.slots:
            return True
        return any(self._has_rounding(inner) for graph in _subgraphs(node) for inner in graph)

    def build(self) -> SearchModel:
        graph = self.model.graph
        top = list(graph)
        own_outputs = tuple(v.name or "" for v in graph.outputs)
        switched = [(i, node) for i, node in enumerate(top) if self._has_rounding(node)]
        switch_of = {node: k for k, (_, node) in enumerate(switched)}
        reads = _main_reads(graph, top)
        mask = ir.Value(name=self.names.unique(MASK_NAME), type=ir.TensorType(ir.DataType.BOOL), shape=ir.Shape([len(switched)]))
        graph.inputs.append(mask)
        switch_values: list[ir.Value] = []
        gathers: list[ir.Node] = []
        for k in range(len(switched)):
            index = ir.Value(name=self.names.unique(f"switch_{k}.index"), const_value=ir.tensor(np.array(k, dtype=np.int64)))
            graph.register_initializer(index)
            gather = self._node("Gather", [mask, index], f"switch_{k}", axis=0)
            gather.outputs[0].type = ir.TensorType(ir.DataType.BOOL)
            gather.outputs[0].shape = ir.Shape([])
            gathers.append(gather)
            switch_values.append(gather.outputs[0])
        if top:
            graph.insert_before(top[0], gathers)
        produced = {
            id(v): switch_of.get(node) for node in top for v in node.outputs if _is_float(v) and v.name
        }
        for node, k in switch_of.items():
            self._apply(graph, node, switch_values[k])
        exposed = self._expose(graph, top, produced, reads, switch_of)
        inputs = tuple(
            ExposedValue(v.name or "", None, tuple(sorted({switch_of[n] for n in reads.get(id(v), ()) if n in switch_of})))
            for v in graph.inputs
            if _is_float(v) and v is not mask
        )
        switches = tuple(
            Switch(
                node_index=i,
                name=node.name or "",
                op_type=node.op_type,
                inputs=tuple(e.name for e in (*exposed, *inputs) if k in e.consumers),
                outputs=tuple(e.name for e in exposed if e.producer == k),
            )
            for k, (i, node) in enumerate(switched)
        )
        return SearchModel(mask.name or MASK_NAME, own_outputs, switches, exposed, inputs)

    def _expose(
        self,
        graph: ir.Graph,
        top: list[ir.Node],
        produced: dict[int, int | None],
        reads: dict[int, set[ir.Node]],
        switch_of: dict[ir.Node, int],
    ) -> tuple[ExposedValue, ...]:
        """Every float32 output of a main-graph node, as the nodes after it see it, becomes a graph output."""
        exposed: list[ExposedValue] = []
        outputs = {id(v) for v in graph.outputs}
        for node in top:
            for original in node.outputs:
                if id(original) not in produced:
                    continue
                seen = self.chosen.get(id(original), original)
                consumers = tuple(sorted({switch_of[n] for n in reads.get(id(original), ()) if n in switch_of}))
                exposed.append(ExposedValue(seen.name or "", produced[id(original)], consumers))
                if id(seen) not in outputs:
                    graph.outputs.append(seen)
                    outputs.add(id(seen))
        return tuple(exposed)


def _subgraphs(node: ir.Node) -> list[ir.Graph]:
    graphs: list[ir.Graph] = []
    for attribute in node.attributes.values():
        if attribute.type == ir.AttributeType.GRAPH:
            graphs.append(attribute.as_graph())
        elif attribute.type == ir.AttributeType.GRAPHS:
            graphs.extend(attribute.as_graphs())
    return graphs


def _main_reads(graph: ir.Graph, top: list[ir.Node]) -> dict[int, set[ir.Node]]:
    """For each main-graph value (by id), the main-graph nodes that read it, directly or in their bodies."""
    reads: dict[int, set[ir.Node]] = {}

    def visit(holder: ir.Node, node: ir.Node) -> None:
        for value in node.inputs:
            if value is not None:
                reads.setdefault(id(value), set()).add(holder)
        for subgraph in _subgraphs(node):
            for inner in subgraph:
                visit(holder, inner)

    for node in top:
        visit(node, node)
    return reads


def build_search_model(model: ir.Model, slots: dict[ir.Node, RoundingSlots], target: ir.DataType) -> SearchModel:
    """Turn the float32 ``model`` (the caller's copy) into its search model, in place."""
    return _Builder(model, slots, target).build()
