"""The search model: one float32 model in which each node's fp16 rounding is switched by an input.

Built from the float32 model and the conversion's plan, it computes every node in float32
and rounds, with a Cast pair, each value that the converted model would store in the
target type. The switches of one main-graph node are one element of a boolean input
vector; nodes in If/Loop/Scan bodies share the switch of the main-graph node that holds
them. A trial of any choice of fp16 nodes is then a run of one session with another
vector: all switches off computes the float32 model exactly, and any choice computes the
numerics model of the conversion that keeps the switched-off nodes float32.

Where the converted model rounds: a value is stored in the target type when the node
producing it converts that output; a float32 value is also cast to the target type for
every converted node that takes it in that type. So a node reads a value rounded when its
producer's switch is on, or (for a slot it takes in the target type) its own is:
``If(s_producer or s_reader)`` of the value's Cast pair, else the value itself. Every float32 value of the main graph can also be exposed as an output, for range
and error statistics: the value as it is stored, rounded when its producer's switch is on.
"""

from __future__ import annotations

__all__ = ["ExposedValue", "SearchModel", "Switch", "build_search_model"]

import dataclasses
from collections.abc import Callable

import numpy as np
import onnx_ir as ir

from ..conversion import RoundingPlan, cast_array
from ..core import UniqueNames, all_graphs, named_subgraphs

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
    """A float32 value of the main graph, exposed as an output of the instrumented search model."""

    name: str  # the output's name in the instrumented model
    value: str  # the value's name in the model
    producer: int | None  # index into the switches of the node producing it, None if that node has no switch
    consumers: tuple[int, ...]  # indices into the switches of the nodes that read it (in their bodies too)


@dataclasses.dataclass(frozen=True)
class SearchModel:
    mask_name: str
    outputs: tuple[str, ...]  # the model's own outputs
    switches: tuple[Switch, ...]
    exposed: tuple[ExposedValue, ...]  # node outputs, exposed by the instrumented model
    input_values: tuple[ExposedValue, ...]  # float32 graph inputs (their statistics come from the data)


def _is_float(value: ir.Value | None) -> bool:
    return value is not None and isinstance(value.type, ir.TensorType) and value.type.dtype == _FLOAT


def _subgraphs(node: ir.Node) -> list[ir.Graph]:
    return [graph for _, graph in named_subgraphs(node)]


class _Nodes:
    """Makes the search model's nodes: switched roundings, switch disjunctions, weights as converted."""

    def __init__(self, model: ir.Model, target: ir.DataType) -> None:
        self.target = target
        self.names = UniqueNames(model)
        self.weights: dict[int, ir.Value] = {}  # id(weight) -> its values as the conversion casts them
        self.prefix: list[ir.Node] = []  # switches and their disjunctions, first in the main graph
        self.either: dict[tuple[int, int], ir.Value] = {}

    def node(self, op_type: str, inputs: list[ir.Value | None], name: str, dtype: ir.DataType, **attributes: int) -> ir.Node:
        node = ir.Node(
            "", op_type, inputs, attributes=[ir.AttrInt64(k, v) for k, v in attributes.items()], name=self.names.unique(f"search_{name}")
        )
        node.outputs[0].name = self.names.unique(name)
        node.outputs[0].type = ir.TensorType(dtype)
        return node

    def switched(self, switch: ir.Value, value: ir.Value, name: str) -> ir.Node:
        """``If(switch)``: ``value`` rounded to the target type (a Cast pair), else ``value`` itself.

        An If, not a Where: ONNX Runtime runs only the branch taken, and its Where with a
        scalar condition is several times slower than the two Casts.
        """
        weight = self._cast_weight(value)
        if weight is not None:
            rounding = [self.node("Identity", [weight], f"{name}.rounded", _FLOAT)]
        else:
            down = self.node("Cast", [value], f"{name}.stored", self.target, to=int(self.target))
            rounding = [down, self.node("Cast", [down.outputs[0]], f"{name}.rounded", _FLOAT, to=int(_FLOAT))]
        same = self.node("Identity", [value], f"{name}.unrounded", _FLOAT)
        for node in (*rounding, same):
            node.outputs[0].shape = value.shape
        branches = [
            ir.AttrGraph(attribute, ir.Graph([], [nodes[-1].outputs[0]], nodes=nodes, name=self.names.unique(f"{name}.{attribute}")))
            for attribute, nodes in (("then_branch", rounding), ("else_branch", [same]))
        ]
        node = ir.Node("", "If", [switch], attributes=branches, name=self.names.unique(f"search_{name}"))
        node.outputs[0].name = self.names.unique(name)
        node.outputs[0].type = ir.TensorType(_FLOAT)
        node.outputs[0].shape = value.shape
        return node

    def _cast_weight(self, value: ir.Value) -> ir.Value | None:
        """A weight's values as the conversion writes them (clamped as it clamps), in float32; None for other values.

        Computed once, with the engine's own cast: a weight is constant, and the runtime
        Cast would give inf where ``--clamp-weights`` writes 65504.
        """
        tensor = value.const_value
        if tensor is None or not value.is_initializer() or value.is_graph_input() or value.graph is None:
            return None
        if id(value) not in self.weights:
            rounded = cast_array(np.asarray(tensor.numpy(), dtype=np.float32), self.target)[0].astype(np.float32)
            copy = ir.Value(name=self.names.unique(f"{value.name}.as_converted"), const_value=ir.tensor(rounded))
            copy.type, copy.shape = ir.TensorType(_FLOAT), value.shape
            value.graph.register_initializer(copy)
            self.weights[id(value)] = copy
        return self.weights[id(value)]

    def either_of(self, first: ir.Value, second: ir.Value) -> ir.Value:
        """``first or second``, one node per pair of switches."""
        if first is second:
            return first
        key = (id(first), id(second))
        if key not in self.either:
            node = self.node("Or", [first, second], f"{first.name}_or_{second.name}", ir.DataType.BOOL)
            node.outputs[0].shape = ir.Shape([])
            self.prefix.append(node)
            self.either[key] = node.outputs[0]
        return self.either[key]


class _Builder:
    def __init__(self, model: ir.Model, plan: RoundingPlan, target: ir.DataType) -> None:
        self.model = model
        self.slots = plan.nodes
        self.graph_outputs = plan.graph_outputs
        self.make = _Nodes(model, target)
        self.names = self.make.names
        self.graph_switch: dict[int, ir.Value] = {}  # id(body) -> the switch of the main-graph node holding it
        self.switch_of: dict[ir.Node, ir.Value] = {}  # every node (nested ones too) -> its switch
        self.stored: dict[int, ir.Value] = {}  # id(value) -> the switch of the producer that stores it rounded
        self.output_alias: dict[int, str] = {}  # id(value) -> the graph output that gives it as stored
        self.switched_outputs: set[int] = set()  # ids of the graph outputs that are switched roundings

    def _round_body_outputs(self) -> None:
        """Body outputs the converted model gives in the target type, rounded whatever produces them."""
        for graph, positions in self.graph_outputs.items():
            switch = self.graph_switch.get(id(graph))
            if switch is None:
                continue
            for position in positions:
                value = graph.outputs[position]
                if id(value) in self.switched_outputs or not _is_float(value):
                    continue  # already rounded by its producer's switch
                chosen = self.make.switched(switch, value, f"{value.name or 'body_output'}.carried")
                graph.append(chosen)
                graph.outputs[position] = chosen.outputs[0]

    def _assign(self, node: ir.Node, switch: ir.Value) -> None:
        self.switch_of[node] = switch
        for graph in _subgraphs(node):
            self.graph_switch[id(graph)] = switch
            for inner in graph:
                self._assign(inner, switch)

    def _has_rounding(self, node: ir.Node) -> bool:
        return node in self.slots or any(self._has_rounding(inner) for graph in _subgraphs(node) for inner in graph)

    def _reader_switch(self, node: ir.Node, index: int) -> ir.Value | None:
        slots = self.slots.get(node)
        return self.switch_of.get(node) if slots is not None and index in slots.inputs else None

    def _round(self, graph: ir.Graph, value: ir.Value, producer_switch: ir.Value | None) -> None:
        """A switched rounding of ``value`` for every reader that may see it rounded, and for the graph's outputs."""
        uses = [u for u in value.uses() if producer_switch is not None or self._reader_switch(u.node, u.idx) is not None]
        outputs = [i for i, v in enumerate(graph.outputs) if v is value] if producer_switch is not None else []
        name = value.name or self.names.unique("value")
        if producer_switch is not None:
            self.stored[id(value)] = producer_switch
        for use in uses:
            reader = self._reader_switch(use.node, use.idx)
            switch = producer_switch if reader is None else reader if producer_switch is None else self.make.either_of(producer_switch, reader)
            if switch is None:
                continue
            chosen = self.make.switched(switch, value, f"{name}.for_{use.node.name or use.node.op_type}")
            (use.node.graph or graph).insert_before(use.node, [chosen])
            use.node.replace_input_with(use.idx, chosen.outputs[0])
        if outputs and producer_switch is not None:
            chosen = self.make.switched(producer_switch, value, f"{name}.output")
            graph.append(chosen)
            value.name = self.names.unique(f"{name}.unrounded")
            chosen.outputs[0].name = name  # a graph output keeps its name
            for position in outputs:
                graph.outputs[position] = chosen.outputs[0]
            self.output_alias[id(value)] = name
            self.switched_outputs.add(id(chosen.outputs[0]))

    def _graph_values(self, graph: ir.Graph) -> list[tuple[ir.Value, ir.Value | None]]:
        """Every float32 value defined in ``graph``, with the switch of its producer when it stores it rounded."""
        found: list[tuple[ir.Value, ir.Value | None]] = [(v, None) for v in (*graph.inputs, *graph.initializers.values()) if _is_float(v)]
        for node in graph:
            slots = self.slots.get(node)
            for index, value in enumerate(node.outputs):
                if _is_float(value):
                    rounds = slots is not None and index in slots.outputs
                    found.append((value, self.switch_of.get(node) if rounds else None))
        unique: dict[int, tuple[ir.Value, ir.Value | None]] = {}
        for value, switch in found:
            unique.setdefault(id(value), (value, switch))
        return list(unique.values())

    def build(self) -> tuple[SearchModel, Callable[[], None]]:
        graph = self.model.graph
        top = list(graph)
        own_outputs = tuple(v.name or "" for v in graph.outputs)
        switched = [(i, node) for i, node in enumerate(top) if self._has_rounding(node)]
        switch_index = {node: k for k, (_, node) in enumerate(switched)}
        reads = _main_reads(top)
        mask = ir.Value(name=self.names.unique(MASK_NAME), type=ir.TensorType(ir.DataType.BOOL), shape=ir.Shape([len(switched)]))
        graph.inputs.append(mask)
        for k, (_, node) in enumerate(switched):
            index = ir.Value(name=self.names.unique(f"switch_{k}.index"), const_value=ir.tensor(np.array(k, dtype=np.int64)))
            graph.register_initializer(index)
            gather = self.make.node("Gather", [mask, index], f"switch_{k}", ir.DataType.BOOL, axis=0)
            gather.outputs[0].shape = ir.Shape([])
            self.make.prefix.append(gather)
            self._assign(node, gather.outputs[0])
        main_values = self._graph_values(graph)
        names = {id(v): v.name or "" for v, _ in main_values}  # before rounding renames any
        for subgraph in all_graphs(self.model):
            for value, switch in self._graph_values(subgraph) if subgraph is not graph else main_values:
                self._round(subgraph, value, switch)
        self._round_body_outputs()
        if len(graph):
            graph.insert_before(next(iter(graph)), self.make.prefix)
        produced = {id(v): switch_index.get(v.producer()) for v, _ in main_values if v.producer() is not None and v.name}  # type: ignore[arg-type]

        def consumers(value: ir.Value) -> tuple[int, ...]:
            return tuple(sorted({switch_index[n] for n in reads.get(id(value), ()) if n in switch_index}))

        exposure = [
            (ExposedValue(self._exposed_name(v, names[id(v)]), names[id(v)], produced[id(v)], consumers(v)), v)
            for v, _ in main_values
            if id(v) in produced
        ]
        exposed = tuple(entry for entry, _ in exposure)
        inputs = tuple(ExposedValue(v.name or "", v.name or "", None, consumers(v)) for v in graph.inputs if _is_float(v) and v is not mask)
        reads_of: list[list[str]] = [[] for _ in switched]
        writes_of: list[list[str]] = [[] for _ in switched]
        for entry in (*exposed, *inputs):
            for k in entry.consumers:
                reads_of[k].append(entry.name)
            if entry.producer is not None:
                writes_of[entry.producer].append(entry.name)
        switches = tuple(
            Switch(i, node.name or "", node.op_type, tuple(reads_of[k]), tuple(writes_of[k])) for k, (i, node) in enumerate(switched)
        )
        search = SearchModel(mask.name or MASK_NAME, own_outputs, switches, exposed, inputs)
        return search, lambda: self._expose(exposure)

    def _exposed_name(self, value: ir.Value, name: str) -> str:
        """A rounded value is exposed as a Where of its own (or the graph output that is one); any other as itself."""
        if id(value) in self.output_alias:
            return self.output_alias[id(value)]
        if id(value) in self.stored:
            return self.names.unique(f"{name}.as_stored")
        return value.name or ""

    def _expose(self, exposure: list[tuple[ExposedValue, ir.Value]]) -> None:
        """Make every exposed value an output (the instrumented model)."""
        graph = self.model.graph
        outputs = {id(v) for v in graph.outputs}
        for entry, value in exposure:
            if id(value) in self.output_alias:
                continue  # already an output, as stored
            if id(value) in self.stored:
                chosen = self.make.switched(self.stored[id(value)], value, entry.name)
                chosen.outputs[0].name = entry.name
                graph.append(chosen)
                graph.outputs.append(chosen.outputs[0])
            elif id(value) not in outputs:
                graph.outputs.append(value)
                outputs.add(id(value))


def _main_reads(top: list[ir.Node]) -> dict[int, set[ir.Node]]:
    """For each value (by id), the main-graph nodes that read it, directly or in their bodies."""
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


def build_search_model(model: ir.Model, plan: RoundingPlan, target: ir.DataType) -> tuple[SearchModel, Callable[[], None]]:
    """Turn the float32 ``model`` (the caller's copy) into its search model, in place.

    Returns its description and a function that then adds every exposed value as an
    output, turning the same model into the instrumented one (save the model before and
    after it for both).
    """
    return _Builder(model, plan, target).build()
