"""Casts on the edges between float32 and target-type regions, and the model's Casts that became no-ops.

One Cast per (value, type, graph) is inserted where a use needs a type the value does not
have, which is only ever on a float32/target boundary; subgraphs reuse a Cast of an
enclosing graph, and a graph output reuses a Cast made for a node.
"""

from __future__ import annotations

__all__ = ["CastPlacer"]

import onnx_ir as ir

from . import _plan
from ._context import RewriteContext
from ._plan import Requirement

_FLOAT = ir.DataType.FLOAT
_SUFFIX = {ir.DataType.FLOAT16: "fp16", ir.DataType.BFLOAT16: "bf16", ir.DataType.FLOAT: "fp32"}


class CastPlacer:
    def __init__(self, context: RewriteContext, parent_graphs: dict[int, ir.Graph]) -> None:
        self.context = context
        self.parent_graphs = parent_graphs  # id(subgraph) -> the graph of its node
        self.casts: dict[tuple[int, ir.DataType, int], ir.Value] = {}
        self.inserted = 0
        self.removed = 0

    def _wanted_dtype(self, value: ir.Value, current: ir.DataType, requirement: Requirement) -> ir.DataType:
        if requirement is Requirement.TARGET:
            return self.context.target
        return self.context.original_dtype.get(value, current)

    def insert_casts(self, plan: _plan.Plan, graphs: list[ir.Graph]) -> None:
        for graph in graphs:
            for node in list(graph):
                node_plan = plan.nodes.get(node)
                if node_plan is None:
                    continue
                for index, requirement in enumerate(node_plan.input_requirements):
                    value = node.inputs[index]
                    if requirement is None or value is None or not isinstance(value.type, ir.TensorType):
                        continue
                    wanted = self._wanted_dtype(value, value.type.dtype, requirement)
                    if value.type.dtype != wanted:
                        node.replace_input_with(index, self._cast(value, wanted, graph))
            self._fix_graph_outputs(plan, graph)

    def _fix_graph_outputs(self, plan: _plan.Plan, graph: ir.Graph) -> None:
        if graph is self.context.model.graph:
            io_requirement = Requirement.ORIGINAL if self.context.keep_io_types else Requirement.TARGET
            requirements: list[Requirement | None] = [
                io_requirement if v in self.context.original_dtype and self.context.original_dtype[v] == _FLOAT else None
                for v in graph.outputs
            ]
        else:
            requirements = plan.graph_output_requirements.get(graph, [])
            if not requirements:
                requirements = [Requirement.ORIGINAL for _ in graph.outputs]
        for index, requirement in enumerate(requirements):
            value = graph.outputs[index]
            if requirement is None or not isinstance(value.type, ir.TensorType):
                continue
            wanted = self._wanted_dtype(value, value.type.dtype, requirement)
            if value.type.dtype == wanted:
                continue
            # A Cast made for a node of this graph serves the output too.
            existing = self.casts.get((id(value), wanted, id(graph)))
            if existing is not None and existing.is_graph_output():
                existing = None
            if graph is self.context.model.graph:
                # The output name is the model's interface: the Cast output takes it over.
                public_name = value.name or self.context.names.unique("output")
                value.name = self.context.names.unique(f"{public_name}_{_SUFFIX[value.type.dtype]}")
                if existing is not None:
                    existing.name = public_name
                    cast_out = existing
                else:
                    cast_out = self._cast(value, wanted, graph, name=public_name, shared=False)
            else:
                cast_out = existing if existing is not None else self._cast(value, wanted, graph, shared=False)
            graph.outputs[index] = cast_out

    def _cast(
        self,
        value: ir.Value,
        to: ir.DataType,
        graph: ir.Graph,
        *,
        name: str | None = None,
        shared: bool = True,
    ) -> ir.Value:
        key = (id(value), to, id(graph))
        if shared:
            # A Cast in this graph or an enclosing one is in scope here: it sits right after
            # the value's producer or at the top of its graph, so before the node that owns
            # this subgraph (inside a Loop body, it then runs once rather than per iteration).
            scope: ir.Graph | None = graph
            while scope is not None:
                found = self.casts.get((id(value), to, id(scope)))
                if found is not None:
                    return found
                scope = self.parent_graphs.get(id(scope))
        base = value.name or "value"
        out_name = name or self.context.names.unique(f"{base}_{_SUFFIX.get(to, str(to).lower())}")
        node = ir.Node(
            "",
            "Cast",
            [value],
            attributes=[ir.AttrInt64("to", int(to))],
            name=self.context.names.unique(f"Cast_{out_name}"),
            num_outputs=1,
        )
        out = node.outputs[0]
        out.name = out_name
        out.type = ir.TensorType(to)
        out.shape = value.shape
        producer = value.producer()
        if producer is not None and producer.graph is graph:
            graph.insert_after(producer, node)
        elif len(graph) > 0:
            graph.insert_before(next(iter(graph)), node)
        else:
            graph.append(node)
        self.inserted += 1
        if shared:
            self.casts[key] = out
        return out

    def remove_noop_casts(self, plan: _plan.Plan) -> None:
        """Remove the model's own Casts that conversion turned into identities."""
        for node, node_plan in list(plan.nodes.items()):
            if node.op_type != "Cast" or node.domain != "" or not node_plan.converted:
                continue
            source, output = node.inputs[0], node.outputs[0]
            if source is None or not isinstance(source.type, ir.TensorType):
                continue
            if source.type.dtype != node.attributes["to"].as_int() or output.is_graph_output():
                continue
            graph = node.graph
            if graph is None:
                continue
            output.replace_all_uses_with(source)
            graph.remove(node, safe=True)
            self.removed += 1
