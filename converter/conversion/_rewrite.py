"""halfconv's conversion engine: an in-place onnx-ir pass from float32 to float16/bfloat16.

Steps, each linear in the size of the graph:
1. ``_plan.decide`` plans which node slots take the target type;
2. values produced by converted slots, converted subgraph inputs and (without
   keep-io-types) graph inputs are retyped;
3. initializers and Constant nodes convert only when every use wants the target type,
   so a weight shared with a float32 region keeps its precision there;
4. one Cast per (value, type, graph) is inserted where a use needs a type the value
   does not have, which is only ever on a float32/target boundary; subgraphs reuse a
   Cast of an enclosing graph, and a graph output reuses a Cast made for a node;
5. Casts of the original model that became no-ops are removed.
Tensor data is converted lazily (see ``_tensors``) when the model is written.
"""

from __future__ import annotations

__all__ = ["EngineOptions", "FloatConversionPass", "FloatConversionResult", "convert_in_place"]

import dataclasses
import math

import numpy as np
import onnx_ir as ir

from ..core import all_graphs
from . import _plan
from ._plan import Requirement, value_kind
from ._results import ConversionStats, KeptNode
from ._schemas import DTYPE_ATTRIBUTES
from ._tensors import RangeRecorder, eager_cast_tensor, lazy_cast_tensor

_FLOAT = ir.DataType.FLOAT
_SUFFIX = {ir.DataType.FLOAT16: "fp16", ir.DataType.BFLOAT16: "bf16", ir.DataType.FLOAT: "fp32"}


@dataclasses.dataclass(frozen=True)
class EngineOptions:
    target: ir.DataType = ir.DataType.FLOAT16
    keep_ops: frozenset[str] = frozenset()
    keep_nodes: frozenset[str] = frozenset()
    keep_io_types: bool = True
    use_default_policy: bool = True


@dataclasses.dataclass
class FloatConversionResult(ir.passes.PassResult):
    stats: ConversionStats | None = None
    recorder: RangeRecorder | None = None


class FloatConversionPass(ir.passes.InPlacePass):
    """Converts float32 to the target type in place. Tensor data converts when it is read."""

    def __init__(self, options: EngineOptions) -> None:
        super().__init__()
        self.options = options

    def call(self, model: ir.Model) -> FloatConversionResult:
        recorder = RangeRecorder()
        stats = _Rewriter(model, self.options, recorder).run()
        modified = stats.nodes_converted > 0 or stats.converted_weight_elements > 0
        return FloatConversionResult(model, modified, stats, recorder)


def convert_in_place(model: ir.Model, options: EngineOptions) -> tuple[ConversionStats, RangeRecorder]:
    """Convert ``model`` in place; returns the statistics and the range recorder.

    The clamp/flush counts in the recorder fill in as lazy tensors are materialised
    (when the model is saved); ``stats`` carries the counts of eagerly converted tensors.
    """
    result = FloatConversionPass(options)(model)
    assert isinstance(result, FloatConversionResult) and result.stats and result.recorder
    return result.stats, result.recorder


class _Rewriter:
    def __init__(self, model: ir.Model, options: EngineOptions, recorder: RangeRecorder) -> None:
        self.model = model
        self.options = options
        self.target = options.target
        self.recorder = recorder
        self.notes: list[str] = []
        self.original_dtype: dict[ir.Value, ir.DataType] = {}
        self.names: set[str] = set()
        self.casts: dict[tuple[int, ir.DataType, int], ir.Value] = {}
        self.parent_graphs: dict[int, ir.Graph] = {}  # id(subgraph) -> the graph of its node
        self.casts_inserted = 0
        self.casts_removed = 0
        self.float_weight_elements = 0
        self.converted_weight_elements = 0

    # -- driver ----------------------------------------------------------------------------

    def run(self) -> ConversionStats:
        graphs = all_graphs(self.model)
        self._lift_initializer_inputs()
        for graph in graphs:
            for value in _graph_values(graph):
                if value.name:
                    self.names.add(value.name)
                if isinstance(value.type, ir.TensorType):
                    self.original_dtype[value] = value.type.dtype
            for node in graph:
                if node.name:
                    self.names.add(node.name)
        plan = _plan.decide(
            self.model,
            _plan.DecisionOptions(
                target=self.target,
                keep_ops=self.options.keep_ops,
                keep_nodes=self.options.keep_nodes,
                use_default_policy=self.options.use_default_policy,
            ),
        )
        for name in sorted(plan.unmatched_keep_nodes):
            self.notes.append(f"--keep-node {name} matched no node in the model")
        original_nodes = [n for g in graphs for n in g]
        for graph in graphs:
            for node in graph:
                for subgraph in _plan._subgraphs(node):
                    self.parent_graphs[id(subgraph)] = graph
        self._rename_duplicate_nodes(graphs)
        self._settle_constants(plan)
        self._retype_outputs(plan)
        self._retype_graph_inputs(plan)
        self._convert_initializers(plan, graphs)
        self._insert_casts(plan, graphs)
        self._remove_noop_casts(plan)
        return self._stats(plan, original_nodes)

    # -- IR < 4: initializers listed as graph inputs ---------------------------------------------

    def _lift_initializer_inputs(self) -> None:
        graph = self.model.graph
        lifted = [v for v in graph.inputs if v.is_initializer()]
        if not lifted:
            return
        for value in lifted:
            graph.inputs.remove(value)
        if self.model.ir_version < 4:
            self.model.ir_version = 4
        self.notes.append(
            f"{len(lifted)} graph input(s) were also initializers (IR < 4): converted as weights, "
            "removed from the input list, and the IR version raised to 4"
        )

    def _rename_duplicate_nodes(self, graphs: list[ir.Graph]) -> None:
        """ONNX Runtime refuses a graph with two nodes of one name: the first keeps it, later ones get a suffix.

        Runs after planning, so --keep-node has matched every node of the original name.
        """
        renamed = 0
        for graph in graphs:
            seen: set[str] = set()
            for node in graph:
                if not node.name:
                    continue
                if node.name in seen:
                    node.name = self._unique(node.name)
                    renamed += 1
                seen.add(node.name)
        if renamed:
            self.notes.append(
                f"{renamed} node(s) renamed because an earlier node had the same name, "
                "which ONNX Runtime does not accept"
            )

    # -- planning adjustments -------------------------------------------------------------------

    def _settle_constants(self, plan: _plan.Plan) -> None:
        """A Constant converts only if every use wants the target type, like an initializer.

        So does a Cast of the model: converted, it would hand float16-rounded values to
        float32 consumers through a second Cast (float32 -> float16 -> float32).
        """
        for node, node_plan in plan.nodes.items():
            if node.op_type == "Constant" and node.domain == "" and value_kind(node.outputs[0]) == "float":
                self.float_weight_elements += _constant_elements(node)
            if node.op_type not in ("Constant", "ConstantOfShape", "Cast") or node.domain != "":
                continue
            if not (node_plan.converted and node_plan.output_to_target[0]):
                continue  # kept already, or e.g. a Cast from float32 to int64: nothing to settle
            output = node.outputs[0]
            wants = {self._use_requirement(plan, usage.node, usage.idx) for usage in output.uses()}
            if output.is_graph_output():
                wants.add(Requirement.ORIGINAL if self._keeps_io(output.graph) else Requirement.TARGET)
            wants.discard(None)
            if wants == {Requirement.TARGET}:
                continue
            node_plan.converted = False
            node_plan.output_to_target = [False] * len(node.outputs)
            reason = (
                "its consumers stay float32"
                if Requirement.TARGET not in wants
                else "it feeds both float32 and converted nodes; converted uses get a Cast"
            )
            plan.kept.append(KeptNode(node.name or "", node.op_type, node.domain, node_plan.path, reason, "consumers"))

    def _keeps_io(self, graph: ir.Graph | None) -> bool:
        return graph is self.model.graph and self.options.keep_io_types

    def _use_requirement(self, plan: _plan.Plan, node: ir.Node, index: int) -> Requirement | None:
        node_plan = plan.nodes.get(node)
        if node_plan is None or index >= len(node_plan.input_requirements):
            return None
        return node_plan.input_requirements[index]

    # -- retyping ---------------------------------------------------------------------------------

    def _retype(self, value: ir.Value) -> None:
        value.type = ir.TensorType(self.target)

    def _retype_outputs(self, plan: _plan.Plan) -> None:
        for node, node_plan in plan.nodes.items():
            if not node_plan.converted:
                continue
            for value, to_target in zip(node.outputs, node_plan.output_to_target):
                if to_target:
                    self._retype(value)
            self._update_dtype_attributes(node, node_plan)

    def _update_dtype_attributes(self, node: ir.Node, node_plan: _plan.NodePlan) -> None:
        if node.domain != "" or not any(node_plan.output_to_target):
            return
        op = node.op_type
        target = int(self.target)
        if op in DTYPE_ATTRIBUTES:
            name = DTYPE_ATTRIBUTES[op].attribute
            node.attributes[name] = ir.AttrInt64(name, target)
        elif op == "Constant":
            self._convert_constant_attribute(node)
        elif op == "ConstantOfShape":
            attr = node.attributes.get("value")
            if attr is None:
                # The default fill is a float32 zero; state it in the target type.
                zero = ir.Tensor(np.zeros((1,), dtype=np.float32))
                tensor = eager_cast_tensor(zero, f"{node.name}.value", self.target, self.recorder)
            else:
                tensor = eager_cast_tensor(attr.as_tensor(), f"{node.name or 'ConstantOfShape'}.value", self.target, self.recorder)
            node.attributes["value"] = ir.AttrTensor("value", tensor)

    def _convert_constant_attribute(self, node: ir.Node) -> None:
        label = node.outputs[0].name or node.name or "Constant"
        if "value" in node.attributes:
            source = node.attributes["value"].as_tensor()
        elif "value_float" in node.attributes:
            source = ir.Tensor(np.asarray(node.attributes.pop("value_float").as_float(), dtype=np.float32))
        elif "value_floats" in node.attributes:
            source = ir.Tensor(np.asarray(node.attributes.pop("value_floats").as_floats(), dtype=np.float32))
        else:
            return
        self.converted_weight_elements += math.prod(source.shape.numpy())
        node.attributes.pop("value", None)
        node.attributes["value"] = ir.AttrTensor("value", eager_cast_tensor(source, label, self.target, self.recorder))

    def _retype_graph_inputs(self, plan: _plan.Plan) -> None:
        if not self.options.keep_io_types:
            for value in self.model.graph.inputs:
                if value_kind(value) == "float":
                    self._retype(value)
        for graph, flags in plan.graph_input_to_target.items():
            for value, to_target in zip(graph.inputs, flags):
                if to_target and value_kind(value) == "float":
                    self._retype(value)

    # -- weights -----------------------------------------------------------------------------

    def _convert_initializers(self, plan: _plan.Plan, graphs: list[ir.Graph]) -> None:
        for graph in graphs:
            for value in graph.initializers.values():
                if value_kind(value) != "float" or value.const_value is None:
                    continue
                tensor = value.const_value
                shape = tensor.shape  # built anew on every access for protobuf-backed tensors
                elements = math.prod(shape.numpy())
                self.float_weight_elements += elements
                wants = {self._use_requirement(plan, usage.node, usage.idx) for usage in value.uses()}
                if value.is_graph_output():
                    wants.add(Requirement.ORIGINAL if self._keeps_io(graph) else Requirement.TARGET)
                wants.discard(None)
                if wants != {Requirement.TARGET}:
                    continue
                value.const_value = lazy_cast_tensor(tensor, shape, value.name or "", self.target, self.recorder)
                self._retype(value)
                self.converted_weight_elements += elements

    # -- casts ---------------------------------------------------------------------------------

    def _wanted_dtype(self, value: ir.Value, requirement: Requirement) -> ir.DataType:
        if requirement is Requirement.TARGET:
            return self.target
        assert isinstance(value.type, ir.TensorType)
        return self.original_dtype.get(value, value.type.dtype)

    def _insert_casts(self, plan: _plan.Plan, graphs: list[ir.Graph]) -> None:
        for graph in graphs:
            for node in list(graph):
                node_plan = plan.nodes.get(node)
                if node_plan is None:
                    continue
                for index, requirement in enumerate(node_plan.input_requirements):
                    value = node.inputs[index]
                    if requirement is None or value is None or not isinstance(value.type, ir.TensorType):
                        continue
                    wanted = self._wanted_dtype(value, requirement)
                    if value.type.dtype != wanted:
                        node.replace_input_with(index, self._cast(value, wanted, graph))
            self._fix_graph_outputs(plan, graph)

    def _fix_graph_outputs(self, plan: _plan.Plan, graph: ir.Graph) -> None:
        if graph is self.model.graph:
            requirement = Requirement.ORIGINAL if self.options.keep_io_types else Requirement.TARGET
            requirements: list[Requirement | None] = [
                requirement if v in self.original_dtype and self.original_dtype[v] == _FLOAT else None
                for v in graph.outputs
            ]
        else:
            requirements = plan.graph_output_requirements.get(graph, [])
            if not requirements:
                requirements = [Requirement.ORIGINAL] * len(graph.outputs)
        for index, requirement in enumerate(requirements):
            value = graph.outputs[index]
            if requirement is None or not isinstance(value.type, ir.TensorType):
                continue
            wanted = self._wanted_dtype(value, requirement)
            if value.type.dtype == wanted:
                continue
            # A Cast made for a node of this graph serves the output too.
            existing = self.casts.get((id(value), wanted, id(graph)))
            if existing is not None and existing.is_graph_output():
                existing = None
            if graph is self.model.graph:
                # The output name is the model's interface: the Cast output takes it over.
                public_name = value.name or self._unique("output")
                value.name = self._unique(f"{public_name}_{_SUFFIX[value.type.dtype]}")
                if existing is not None:
                    existing.name = public_name
                    cast_out = existing
                else:
                    cast_out = self._cast(value, wanted, graph, name=public_name, shared=False)
            else:
                cast_out = existing if existing is not None else self._cast(value, wanted, graph, shared=False)
            graph.outputs[index] = cast_out

    def _unique(self, base: str) -> str:
        name = base
        counter = 1
        while name in self.names:
            name = f"{base}_{counter}"
            counter += 1
        self.names.add(name)
        return name

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
        out_name = name or self._unique(f"{base}_{_SUFFIX.get(to, str(to).lower())}")
        node = ir.Node(
            "",
            "Cast",
            [value],
            attributes=[ir.AttrInt64("to", int(to))],
            name=self._unique(f"Cast_{out_name}"),
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
        self.casts_inserted += 1
        if shared:
            self.casts[key] = out
        return out

    def _remove_noop_casts(self, plan: _plan.Plan) -> None:
        """Remove the model's own Casts that conversion turned into identities."""
        for node, node_plan in list(plan.nodes.items()):
            if node.op_type != "Cast" or node.domain != "" or not node_plan.converted:
                continue
            source, output = node.inputs[0], node.outputs[0]
            if source is None or not isinstance(source.type, ir.TensorType):
                continue
            if source.type.dtype != node.attributes["to"].as_int() or output.is_graph_output():
                continue
            output.replace_all_uses_with(source)
            assert node.graph is not None
            node.graph.remove(node, safe=True)
            self.casts_removed += 1

    # -- statistics ------------------------------------------------------------------------------

    def _stats(self, plan: _plan.Plan, original_nodes: list[ir.Node]) -> ConversionStats:
        converted = sum(1 for n in original_nodes if n in plan.nodes and plan.nodes[n].converted)
        kept = sum(1 for n in original_nodes if n in plan.nodes and not plan.nodes[n].converted)
        clamped, flushed = self.recorder.totals()
        return ConversionStats(
            nodes_total=len(original_nodes),
            nodes_converted=converted,
            nodes_kept_fp32=kept,
            nodes_without_float=len(original_nodes) - converted - kept,
            float_weight_elements=self.float_weight_elements,
            converted_weight_elements=self.converted_weight_elements,
            casts_inserted=self.casts_inserted,
            casts_removed=self.casts_removed,
            clamped_values=clamped,
            flushed_values=flushed,
            range_reports=self.recorder.reports(),
            kept_nodes=tuple(plan.kept),
            notes=tuple(self.notes),
        )


def _graph_values(graph: ir.Graph) -> list[ir.Value]:
    values: list[ir.Value] = [*graph.inputs, *graph.initializers.values()]
    for node in graph:
        values.extend(v for v in node.outputs)
    return values


def _constant_elements(node: ir.Node) -> int:
    if "value" in node.attributes:
        return math.prod(node.attributes["value"].as_tensor().shape.numpy())
    if "value_floats" in node.attributes:
        return len(node.attributes["value_floats"].as_floats())
    return 1 if "value_float" in node.attributes else 0
