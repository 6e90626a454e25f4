"""halfconv's conversion engine: an in-place onnx-ir pass from float32 to float16/bfloat16.

Steps, each linear in the size of the graph:
1. ``_plan.decide`` plans which node slots take the target type;
2. values produced by converted slots, converted subgraph inputs and (without
   keep-io-types) graph inputs are retyped;
3. initializers and Constant nodes convert only when every use wants the target type
   (``_weights``);
4. Casts go on the float32/target boundaries, and the model's own Casts that became
   no-ops are removed (``_casts``).
Tensor data is converted lazily (see ``_tensors``) when the model is written.
"""

from __future__ import annotations

__all__ = [
    "TARGET_TYPES",
    "EngineOptions", "FloatConversionPass", "FloatConversionResult", "convert_in_place", "measured_reasons"]

import dataclasses
import time

import onnx_ir as ir

from ..core import ConversionError, UniqueNames, all_graphs, graph_values
from . import _plan
from ._casts import CastPlacer
from ._context import RewriteContext
from ._options import ConvertOptions
from ._plan import value_kind
from ._results import ConversionStats, MeasuredKeep
from ._tensors import RangeRecorder
from ._weight_ranges import weight_range_reasons
from ._weights import WeightConverter, target_weight_elements

TARGET_TYPES = {"fp16": ir.DataType.FLOAT16, "bf16": ir.DataType.BFLOAT16}


@dataclasses.dataclass(frozen=True)
class EngineOptions:
    target: ir.DataType = ir.DataType.FLOAT16
    keep_ops: frozenset[str] = frozenset()
    keep_nodes: frozenset[str] = frozenset()
    keep_io_types: bool = True
    use_default_policy: bool = True
    clamp_weights: bool = False  # convert weights the target cannot hold (clamped) instead of keeping their users
    measured: tuple[MeasuredKeep, ...] = ()  # main-graph nodes a calibration keeps float32

    @classmethod
    def of(cls, options: ConvertOptions, measured: tuple[MeasuredKeep, ...] = ()) -> EngineOptions:
        """The engine's share of a conversion's options."""
        return cls(
            target=TARGET_TYPES[options.target],
            keep_ops=frozenset(options.keep_ops),
            keep_nodes=frozenset(options.keep_nodes),
            keep_io_types=options.keep_io_types,
            use_default_policy=options.use_default_policy,
            clamp_weights=options.clamp_weights,
            measured=measured,
        )


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
        stats, recorder = convert_in_place(model, self.options)
        modified = stats.nodes_converted > 0 or stats.converted_weight_elements > 0
        return FloatConversionResult(model, modified, stats, recorder)


def convert_in_place(
    model: ir.Model, options: EngineOptions, phases: dict[str, float | None] | None = None
) -> tuple[ConversionStats, RangeRecorder]:
    """Convert ``model`` in place; returns the statistics and the range recorder.

    The clamp/flush counts in the recorder fill in as lazy tensors are materialised
    (when the model is saved); ``stats`` carries the counts of eagerly converted tensors.
    ``phases``, when given, gets the seconds of planning (``plan_s``, the weight-range scan
    included) and of rewriting (``rewrite_s``).
    """
    recorder = RangeRecorder()
    started = time.perf_counter()
    rewriter = _Rewriter(model, options, recorder)
    stats = rewriter.run()
    if phases is not None:
        phases["plan_s"] = rewriter.plan_s
        phases["rewrite_s"] = time.perf_counter() - started - rewriter.plan_s
    return stats, recorder


def measured_reasons(model: ir.Model, options: EngineOptions) -> dict[ir.Node, tuple[str, str]]:
    """The nodes kept float32 by a measurement: weights the target cannot hold, then calibration's.

    A calibration names nodes by their position in the main graph; one that is not there
    (another file than the one measured) is a ConversionError, never a silent mismatch.
    """
    reasons: dict[ir.Node, tuple[str, str]] = {}
    if not options.clamp_weights:
        reasons.update((node, (reason, "weights")) for node, reason in weight_range_reasons(model, options.target).items())
    if options.measured:
        nodes = list(model.graph)
        for keep in options.measured:
            node = nodes[keep.index] if 0 <= keep.index < len(nodes) else None
            if node is None or node.op_type != keep.op_type or (node.name or "") != keep.name:
                raise ConversionError(
                    f"the calibration measured a {keep.op_type} node '{keep.name}' at position {keep.index}, "
                    "which this model does not have",
                    "calibrate the model that is converted",
                )
            reasons.setdefault(node, (keep.reason, keep.source))
    return reasons


class _Rewriter:
    def __init__(self, model: ir.Model, options: EngineOptions, recorder: RangeRecorder) -> None:
        self.model = model
        self.options = options
        self.context = RewriteContext(model, options.target, options.keep_io_types, recorder, names=UniqueNames(model))
        self.weights = WeightConverter(self.context)
        self.parent_graphs: dict[int, ir.Graph] = {}  # id(subgraph) -> the graph of its node
        self.casts = CastPlacer(self.context, self.parent_graphs)
        self.notes: list[str] = []
        self.plan_s = 0.0
        self.target_elements = 0

    def run(self) -> ConversionStats:
        graphs = all_graphs(self.model)
        self.target_elements = target_weight_elements(graphs, self.options.target)
        self._lift_initializer_inputs()
        self._record_types(graphs)
        started = time.perf_counter()
        plan = _plan.decide(
            self.model,
            _plan.DecisionOptions(
                target=self.options.target,
                keep_ops=self.options.keep_ops,
                keep_nodes=self.options.keep_nodes,
                use_default_policy=self.options.use_default_policy,
                measured=measured_reasons(self.model, self.options),
            ),
        )
        self.plan_s = time.perf_counter() - started
        for name in sorted(plan.unmatched_keep_nodes):
            self.notes.append(f"--keep-node {name} matched no node in the model")
        original_nodes = [n for g in graphs for n in g]
        self._rename_duplicate_nodes(graphs)
        self.weights.settle_constants(plan)
        self._retype_outputs(plan)
        self._retype_graph_inputs(plan)
        self.weights.convert_initializers(plan, graphs)
        self.casts.insert_casts(plan, graphs)
        self.casts.remove_noop_casts(plan)
        return self._stats(plan, original_nodes)

    def _record_types(self, graphs: list[ir.Graph]) -> None:
        """Each value's type before conversion, and each subgraph's parent graph."""
        context = self.context
        for graph in graphs:
            for value in graph_values(graph):
                if isinstance(value.type, ir.TensorType):
                    context.original_dtype[value] = value.type.dtype
            for node in graph:
                for subgraph in _plan.subgraphs(node):
                    self.parent_graphs[id(subgraph)] = graph

    # -- IR < 4: initializers listed as graph inputs ---------------------------------------------

    def _lift_initializer_inputs(self) -> None:
        """Before IR 4 every initializer had to be listed as a graph input; those are weights.

        From IR 4 on, an input that is also an initializer is an input with a default value,
        which a caller may override: it stays an input (see ``_convert_initializers``).
        """
        graph = self.model.graph
        if self.model.ir_version >= 4:
            return
        lifted = [v for v in graph.inputs if v.is_initializer()]
        if not lifted:
            return
        for value in lifted:
            graph.inputs.remove(value)
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
                    node.name = self.context.names.unique(node.name)
                    renamed += 1
                seen.add(node.name)
        if renamed:
            self.notes.append(
                f"{renamed} node(s) renamed because an earlier node had the same name, "
                "which ONNX Runtime does not accept"
            )

    # -- retyping ---------------------------------------------------------------------------------

    def _retype_outputs(self, plan: _plan.Plan) -> None:
        for node, node_plan in plan.nodes.items():
            if not node_plan.converted:
                continue
            for value, to_target in zip(node.outputs, node_plan.output_to_target):
                if to_target:
                    self.context.retype(value)
            self.weights.update_dtype_attributes(node, node_plan)

    def _retype_graph_inputs(self, plan: _plan.Plan) -> None:
        if not self.options.keep_io_types:
            for value in self.model.graph.inputs:
                if value_kind(value) == "float":
                    self.context.retype(value)
        for graph, flags in plan.graph_input_to_target.items():
            for value, to_target in zip(graph.inputs, flags):
                if to_target and value_kind(value) == "float":
                    self.context.retype(value)

    # -- statistics ------------------------------------------------------------------------------

    def _stats(self, plan: _plan.Plan, original_nodes: list[ir.Node]) -> ConversionStats:
        converted = sum(1 for n in original_nodes if n in plan.nodes and plan.nodes[n].converted)
        kept = sum(1 for n in original_nodes if n in plan.nodes and not plan.nodes[n].converted)
        recorder = self.context.recorder
        clamped, flushed = recorder.totals()
        return ConversionStats(
            nodes_total=len(original_nodes),
            nodes_converted=converted,
            nodes_kept_fp32=kept,
            nodes_without_float=len(original_nodes) - converted - kept,
            float_weight_elements=self.weights.float_elements,
            converted_weight_elements=self.weights.converted_elements,
            casts_inserted=self.casts.inserted,
            casts_removed=self.casts.removed,
            clamped_values=clamped,
            flushed_values=flushed,
            range_reports=recorder.reports(),
            kept_nodes=tuple(plan.kept),
            notes=tuple(self.notes),
            target_weight_elements=self.target_elements,
        )
