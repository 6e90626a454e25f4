"""Listing a model's graphs (the main graph and every nested subgraph) cheaply."""

from __future__ import annotations

__all__ = ["all_graphs"]

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
