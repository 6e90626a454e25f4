"""Listing a model's graphs (the main graph and every nested subgraph), in onnx-ir or protobuf form."""

from __future__ import annotations

__all__ = ["UniqueNames", "all_graph_protos", "all_graphs", "graph_values", "infer_shapes_leniently", "named_subgraphs"]

import contextlib
from collections.abc import Iterator

import onnx
import onnx_ir as ir

_GRAPH_ATTRIBUTES = (ir.AttributeType.GRAPH, ir.AttributeType.GRAPHS)


def all_graphs(model: ir.Model) -> list[ir.Graph]:
    """The main graph followed by its subgraphs, outer before inner.

    Equivalent to ``[model.graph, *model.graph.subgraphs()]`` but it only looks at nodes
    that carry attributes, which keeps it fast on graphs of tens of thousands of nodes.
    """
    graphs = [model.graph]
    index = 0
    while index < len(graphs):
        for node in graphs[index]:
            if not node.attributes:
                continue
            for attr in node.attributes.values():
                if attr.type == ir.AttributeType.GRAPH:
                    graphs.append(attr.as_graph())
                elif attr.type == ir.AttributeType.GRAPHS:
                    graphs.extend(attr.as_graphs())
        index += 1
    return graphs


def all_graph_protos(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    """``graph`` and every subgraph nested in its nodes' attributes, outer before inner."""
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("g"):
                yield from all_graph_protos(attr.g)
            for sub in attr.graphs:
                yield from all_graph_protos(sub)


def graph_values(graph: ir.Graph) -> list[ir.Value]:
    """The graph's inputs, initializers and node outputs (not those of its subgraphs)."""
    values: list[ir.Value] = [*graph.inputs, *graph.initializers.values()]
    for node in graph:
        values.extend(node.outputs)
    return values


class UniqueNames:
    """Value and node names in use in a model; hands out new ones that clash with none (SSA)."""

    def __init__(self, model: ir.Model | None = None) -> None:
        self._taken: set[str] = set()
        for graph in all_graphs(model) if model is not None else ():
            self._taken.update(v.name for v in graph_values(graph) if v.name)
            self._taken.update(n.name for n in graph if n.name)

    def add(self, name: str) -> None:
        self._taken.add(name)

    def unique(self, base: str) -> str:
        name = base
        counter = 1
        while name in self._taken:
            name = f"{base}_{counter}"
            counter += 1
        self._taken.add(name)
        return name


def infer_shapes_leniently(model: ir.Model) -> None:
    """ONNX shape inference where it succeeds, in place and silently; only what is missing is filled in.

    Lenient, because a model ONNX Runtime runs may still fail strict inference. A value
    without a type takes the inferred one whole, so a sequence stays a sequence (onnx-ir's
    own pass sets the element type only, which turns it into a tensor). Weights over
    1 KiB travel as typed inputs, so a model of any size infers from a small protobuf.
    """
    try:
        with _large_weights_as_inputs(model.graph):
            proto = ir.serde.serialize_model(model)
        inferred = onnx.shape_inference.infer_shapes(proto, check_type=False, strict_mode=False, data_prop=False)
        inferred_model = ir.serde.deserialize_model(inferred)
    except Exception:  # whatever inference cannot do stays unknown
        return
    for graph, inferred_graph in zip(all_graphs(model), all_graphs(inferred_model)):
        found = {v.name: v for v in graph_values(inferred_graph) if v.name}
        for value in graph_values(graph):
            other = found.get(value.name or "")
            if other is None or other.type is None:
                continue
            if value.type is None:
                value.type = other.type
            if value.shape is None and other.shape is not None and value.type == other.type:
                value.shape = other.shape


_INLINE_WEIGHT_BYTES = 1024


@contextlib.contextmanager
def _large_weights_as_inputs(graph: ir.Graph) -> Iterator[None]:
    """Within the block, initializers over 1 KiB (or without data) are graph inputs, not weights."""
    moved = [
        v
        for v in graph.initializers.values()
        if v.const_value is None or v.const_value.nbytes > _INLINE_WEIGHT_BYTES
    ]
    listed = {id(v) for v in graph.inputs}
    added = [v for v in moved if id(v) not in listed]
    for value in moved:
        if value.const_value is not None:
            value.shape = value.shape or value.const_value.shape  # type: ignore[assignment]
            value.dtype = value.dtype or value.const_value.dtype
        graph.initializers.pop(value.name or "")
    n_inputs = len(graph.inputs)
    graph.inputs.extend(added)
    try:
        yield
    finally:
        # One pop at a time: a slice deletion would leave each value marked as a graph input.
        while len(graph.inputs) > n_inputs:
            graph.inputs.pop()
        for value in moved:
            graph.initializers[value.name or ""] = value


def named_subgraphs(node: ir.Node) -> list[tuple[str, ir.Graph]]:
    """The graphs in ``node``'s attributes, each with its attribute's name (``branches[1]`` for a list)."""
    found: list[tuple[str, ir.Graph]] = []
    for attr in node.attributes.values():
        if attr.type == ir.AttributeType.GRAPH:
            found.append((attr.name, attr.as_graph()))
        elif attr.type == ir.AttributeType.GRAPHS:
            found.extend((f"{attr.name}[{i}]", g) for i, g in enumerate(attr.as_graphs()))
    return found
