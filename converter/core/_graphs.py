"""Listing a model's graphs (the main graph and every nested subgraph), in onnx-ir or protobuf form."""

from __future__ import annotations

__all__ = ["all_graph_protos", "all_graphs"]

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
