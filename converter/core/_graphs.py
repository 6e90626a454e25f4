"""Listing a model's graphs (the main graph and every nested subgraph), in onnx-ir or protobuf form."""

from __future__ import annotations

__all__ = ["UniqueNames", "all_graph_protos", "all_graphs", "graph_values", "infer_shapes_leniently", "named_subgraphs"]

import logging
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
    """ONNX shape inference where it succeeds, in place and silently.

    Lenient, because a model ONNX Runtime runs may still fail strict inference; onnx-ir
    logs such a failure with its traceback, which is not the caller's to print.
    """
    from onnx_ir.passes.common import ShapeInferencePass

    logger = logging.getLogger("onnx_ir.passes.common.shape_inference")
    disabled, logger.disabled = logger.disabled, True
    try:
        ShapeInferencePass(check_type=False, strict_mode=False, data_prop=False)(model)
    finally:
        logger.disabled = disabled


def named_subgraphs(node: ir.Node) -> list[tuple[str, ir.Graph]]:
    """The graphs in ``node``'s attributes, each with its attribute's name (``branches[1]`` for a list)."""
    found: list[tuple[str, ir.Graph]] = []
    for attr in node.attributes.values():
        if attr.type == ir.AttributeType.GRAPH:
            found.append((attr.name, attr.as_graph()))
        elif attr.type == ir.AttributeType.GRAPHS:
            found.extend((f"{attr.name}[{i}]", g) for i, g in enumerate(attr.as_graphs()))
    return found
