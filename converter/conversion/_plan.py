"""Deciding, for every node, which of its float32 slots take the target type.

The decision is made from the ONNX operator schemas, so a converted node is always typed
as its spec allows: slots are grouped by their type parameter (``T``, ``T1``...), and a
parameter converts only when its type constraint admits the target type. The default
policy table and the user's keep lists then hold back whole nodes or single inputs.
Nothing here edits the model.
"""

from __future__ import annotations

__all__ = ["DecisionOptions", "NodePlan", "Plan", "Requirement", "decide", "subgraphs", "value_kind"]

import dataclasses
import enum
import functools
from collections.abc import Callable

import onnx_ir as ir

from ..core import named_subgraphs
from . import _policy
from ._results import KeptNode
from ._schemas import Signature, signature


class Requirement(enum.Enum):
    """What a node needs on one input slot after conversion."""

    ORIGINAL = "original"  # the value's original type (float32 for float slots)
    TARGET = "target"  # the target type (float16 or bfloat16)


@dataclasses.dataclass(frozen=True)
class DecisionOptions:
    target: ir.DataType
    keep_ops: frozenset[str] = frozenset()
    keep_nodes: frozenset[str] = frozenset()
    use_default_policy: bool = True
    # Nodes kept float32 for a measured reason, with (reason, source): a weight the target
    # cannot hold ("weights"), a calibration range or the accuracy search ("activations", "accuracy").
    measured: dict[ir.Node, tuple[str, str]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class NodePlan:
    converted: bool
    # Per input slot: a requirement, or None where any type is accepted or the slot is not float32.
    input_requirements: list[Requirement | None]
    # Per output slot: True where the output becomes the target type.
    output_to_target: list[bool]
    path: str = "main"


@dataclasses.dataclass
class Plan:
    nodes: dict[ir.Node, NodePlan]
    kept: list[KeptNode]
    # Per subgraph: which of its inputs become the target type (Loop/Scan bodies).
    graph_input_to_target: dict[ir.Graph, list[bool]]
    # Per subgraph: what the parent node needs of each graph output.
    graph_output_requirements: dict[ir.Graph, list[Requirement | None]]
    unmatched_keep_nodes: frozenset[str]

    def requirement(self, node: ir.Node, index: int) -> Requirement | None:
        """What ``node`` needs on input ``index``; None for nodes and slots without a float32 requirement."""
        node_plan = self.nodes.get(node)
        if node_plan is None or index >= len(node_plan.input_requirements):
            return None
        return node_plan.input_requirements[index]


_FLOAT = ir.DataType.FLOAT
_CONTROL_FLOW = frozenset({"If", "Loop", "Scan"})
# Ops whose first input only lends its shape (or is the value being cast): any type goes.
_FREE_FIRST_INPUT = frozenset(
    {"Cast", "CastLike", "RandomNormalLike", "RandomUniformLike", "EyeLike", "Shape", "Size"}
)


def value_kind(value: ir.Value | None) -> str:
    """'absent', 'unknown', 'float' (float32 tensor), 'container' (sequence/optional of float32) or 'other'."""
    if value is None:
        return "absent"
    value_type = value.type
    if value_type is None:
        return "unknown"
    if isinstance(value_type, ir.TensorType):
        return "float" if value_type.dtype == _FLOAT else "other"
    if isinstance(value_type, (ir.SequenceType, ir.OptionalType)):
        return "container" if value_type.dtype == _FLOAT else "other"
    return "other"


def _target_type_str(target: ir.DataType) -> str:
    return "tensor(float16)" if target == ir.DataType.FLOAT16 else "tensor(bfloat16)"


def _target_name(target: ir.DataType) -> str:
    return "float16" if target == ir.DataType.FLOAT16 else "bfloat16"


class _Decider:
    def __init__(self, model: ir.Model, options: DecisionOptions) -> None:
        self.model = model
        self.options = options
        self.opsets = {("" if d == "ai.onnx" else d): v for d, v in model.opset_imports.items()}
        self.functions = {(f.domain, f.name) for f in model.functions.values()}
        self.keep_ops_policy = _policy.default_keep_ops() if options.use_default_policy else {}
        self.keep_inputs_policy = _policy.default_keep_inputs() if options.use_default_policy else {}
        self.target_type_str = _target_type_str(options.target)
        self.plan = Plan({}, [], {}, {}, frozenset())
        self.matched_keep_nodes: set[str] = set()
        # Values are not edited while planning, so each value's kind is computed once.
        self.kind = functools.lru_cache(maxsize=None)(value_kind)

    # -- entry -------------------------------------------------------------------------

    def run(self) -> Plan:
        self._graph(self.model.graph, "main", parent_kept=None)
        self.plan.unmatched_keep_nodes = frozenset(self.options.keep_nodes - self.matched_keep_nodes)
        return self.plan

    def _graph(self, graph: ir.Graph, path: str, parent_kept: str | None) -> None:
        for node in graph:
            self._node(node, path, parent_kept)

    # -- one node ----------------------------------------------------------------------

    def _keep(self, node: ir.Node, path: str, reason: str, source: str) -> None:
        float_inputs = [self.kind(v) == "float" for v in node.inputs]
        self.plan.nodes[node] = NodePlan(
            converted=False,
            input_requirements=[Requirement.ORIGINAL if f else None for f in float_inputs],
            output_to_target=[False] * len(node.outputs),
            path=path,
        )
        self.plan.kept.append(KeptNode(node.name or "", node.op_type, node.domain, path, reason, source))

    def _touches_float(self, node: ir.Node) -> bool:
        kinds = [self.kind(v) for v in (*node.inputs, *node.outputs)]
        if any(k in ("float", "container") for k in kinds):
            return True
        if node.op_type in _CONTROL_FLOW and node.domain == "":
            return any(self._subgraph_touches_float(g) for g in subgraphs(node))
        return False

    def _subgraph_touches_float(self, graph: ir.Graph) -> bool:
        if any(self.kind(v) in ("float", "container") for v in (*graph.inputs, *graph.outputs)):
            return True
        return any(self._touches_float(n) for n in graph)

    def _node(self, node: ir.Node, path: str, parent_kept: str | None) -> None:
        name = node.name or ""
        if name and name in self.options.keep_nodes:
            self.matched_keep_nodes.add(name)
        if not self._touches_float(node):
            # Untouched; subgraphs may still hold float work (e.g. an If over int outputs).
            self._recurse(node, path, parent_kept)
            return
        reason, source = self._keep_reason(node, parent_kept)
        if reason is not None:
            self._keep(node, path, reason, source)
            self._recurse(node, path, parent_kept or f"inside {node.op_type} node '{name}', which stays float32")
            return
        if node.domain == "" and node.op_type in _CONTROL_FLOW:
            self._control_flow(node, path)
            return
        self._regular(node, path)

    def _recurse(self, node: ir.Node, path: str, parent_kept: str | None) -> None:
        for attr_name, graph in named_subgraphs(node):
            sub_path = f"{path}/{node.name or node.op_type}:{attr_name}"
            self._graph(graph, sub_path, parent_kept)

    def _keep_reason(self, node: ir.Node, parent_kept: str | None) -> tuple[str | None, str]:
        options = self.options
        if parent_kept is not None:
            return parent_kept, "parent"
        if node.name and node.name in options.keep_nodes:
            return "kept by --keep-node", "keep-node"
        if node in options.measured:
            return options.measured[node]
        if node.op_type in options.keep_ops:
            return "kept by --keep-op", "keep-op"
        if node.domain in _policy.FLOAT_ONLY_DOMAINS:
            return _policy.FLOAT_ONLY_DOMAINS[node.domain], "policy"
        if node.domain == "" and node.op_type in self.keep_ops_policy:
            return self.keep_ops_policy[node.op_type].reason, "policy"
        if (node.domain, node.op_type) in self.functions:
            return "calls a model-local function whose body halfconv leaves float32", "custom-domain"
        if node.domain not in ("", "ai.onnx"):
            return (
                f"no ONNX schema for {node.domain}::{node.op_type}, so its float16 typing is unknown",
                "custom-domain",
            )
        if any(self.kind(v) == "container" for v in (*node.inputs, *node.outputs)):
            return "sequence and optional values cannot be cast, so nodes on them stay float32", "sequence"
        if named_subgraphs(node) and node.op_type not in _CONTROL_FLOW:
            return f"{node.op_type} carries a subgraph that halfconv does not convert", "spec"
        return None, ""

    def _signature(self, node: ir.Node) -> Signature | None:
        opset = self.opsets.get(node.domain, None)
        if opset is None:
            return None
        return signature(node.domain, node.op_type, opset, len(node.inputs), len(node.outputs))

    def _regular(self, node: ir.Node, path: str) -> None:
        signature = self._signature(node)
        if signature is None:
            self._keep(node, path, f"no schema for {node.op_type} at the model's opset", "spec")
            return
        binding = _bind(node, signature, self.kind, self.target_type_str, self.options.target, self.keep_inputs_policy)
        if binding is None:
            self._keep(node, path, "an input's type is unknown after type inference", "unknown-type")
            return
        if not binding.converted and not binding.kept and binding.free is not None:
            # e.g. Cast from float32 to int64: the input takes whatever type arrives.
            self.plan.nodes[node] = NodePlan(True, [None] * len(node.inputs), [False] * len(node.outputs), path)
            return
        if not binding.converted:
            reason = "; ".join(sorted(set(binding.kept.values()))) or "no float32 slot can take the target type"
            self._keep(node, path, reason, "spec")
            return
        requirements, kept_inputs, kept_reasons = _input_requirements(node, signature, binding, self.kind)
        outputs = [
            self.kind(v) in ("float", "unknown") and signature.output_types[i] in binding.converted
            for i, v in enumerate(node.outputs)
        ]
        self.plan.nodes[node] = NodePlan(True, requirements, outputs, path)
        if kept_inputs:
            reason = "; ".join(dict.fromkeys(kept_reasons))
            self.plan.kept.append(
                KeptNode(node.name or "", node.op_type, node.domain, path, reason, "policy", tuple(kept_inputs))
            )

    # -- If / Loop / Scan ----------------------------------------------------------------

    def _control_flow(self, node: ir.Node, path: str) -> None:
        op = node.op_type
        is_float = [self.kind(v) == "float" for v in node.outputs]
        if op == "If":
            self.plan.nodes[node] = NodePlan(True, [None] * len(node.inputs), list(is_float), path)
            for attr_name, graph in named_subgraphs(node):
                self.plan.graph_output_requirements[graph] = [
                    Requirement.TARGET if f else None for f in is_float
                ]
                self._graph(graph, f"{path}/{node.name or op}:{attr_name}", None)
            return
        body = node.attributes["body"].as_graph()
        if op == "Loop":
            n_carried = len(node.inputs) - 2
            carried = [
                self.kind(node.inputs[2 + k]) == "float" or self.kind(body.inputs[2 + k]) == "float"
                for k in range(n_carried)
            ]
            scan_out = [self.kind(v) == "float" for v in body.outputs[1 + n_carried :]]
            self.plan.nodes[node] = NodePlan(
                True,
                [None, None, *(Requirement.TARGET if c else None for c in carried)],
                [*carried, *scan_out],
                path,
            )
            self.plan.graph_input_to_target[body] = [False, False, *carried]
            self.plan.graph_output_requirements[body] = [
                None,
                *(Requirement.TARGET if c else None for c in carried),
                *(Requirement.TARGET if s else None for s in scan_out),
            ]
        else:  # Scan
            if self.opsets.get("", 0) < 9:
                self._keep(node, path, "Scan-8 takes sequence lengths first; halfconv converts Scan-9 and later", "spec")
                self._recurse(node, path, f"inside Scan node '{node.name}', which stays float32")
                return
            slot_float = [
                self.kind(node.inputs[i]) == "float" or self.kind(body.inputs[i]) == "float"
                for i in range(len(node.inputs))
            ]
            out_float = [
                self.kind(node.outputs[i]) == "float" or self.kind(body.outputs[i]) == "float"
                for i in range(len(node.outputs))
            ]
            self.plan.nodes[node] = NodePlan(
                True, [Requirement.TARGET if f else None for f in slot_float], out_float, path
            )
            self.plan.graph_input_to_target[body] = list(slot_float)
            self.plan.graph_output_requirements[body] = [
                Requirement.TARGET if f else None for f in out_float
            ]
        self._graph(body, f"{path}/{node.name or op}:body", None)


@dataclasses.dataclass(frozen=True)
class _Binding:
    """Which type parameters of one node convert, which stay float32 (with why), and the free one."""

    converted: frozenset[str]
    kept: dict[str, str]
    free: str | None  # a parameter whose slot takes any type (Cast's input)


def _bind(
    node: ir.Node,
    signature: Signature,
    kind: Callable[[ir.Value | None], str],
    target_type_str: str,
    target: ir.DataType,
    keep_inputs_policy: dict[tuple[str, str], _policy.KeepInputRule],
) -> _Binding | None:
    """Bind each type parameter to the kinds of its slots; None when an input's type is unknown."""
    free = signature.input_types[0] if node.op_type in _FREE_FIRST_INPUT and node.inputs else None
    converted: set[str] = set()
    kept: dict[str, str] = {}  # param -> reason
    for param, members in signature.slots:
        if param not in signature.allowed or param == free:
            continue  # a fixed type such as tensor(float) or tensor(int64), or any type
        if "float" not in [kind(node.inputs[i] if side == "in" else node.outputs[i]) for side, i in members]:
            continue
        if "unknown" in [kind(node.inputs[i]) for side, i in members if side == "in"]:
            return None
        if target_type_str not in signature.allowed[param]:
            kept[param] = f"{node.op_type}-{signature.since_version} does not accept {_target_name(target)} for {param}"
            continue
        policy_inputs = [
            signature.input_names[i]
            for side, i in members
            if side == "in" and (node.op_type, signature.input_names[i]) in keep_inputs_policy
        ]
        if policy_inputs:
            kept[param] = keep_inputs_policy[(node.op_type, policy_inputs[0])].reason
            continue
        converted.add(param)
    return _Binding(frozenset(converted), kept, free)


def _input_requirements(
    node: ir.Node, signature: Signature, binding: _Binding, kind: Callable[[ir.Value | None], str]
) -> tuple[list[Requirement | None], list[str], list[str]]:
    """Per input slot what a converting node needs, and which inputs stay float32 and why."""
    requirements: list[Requirement | None] = []
    kept_inputs: list[str] = []
    kept_reasons: list[str] = []
    for i, value in enumerate(node.inputs):
        type_str = signature.input_types[i]
        if kind(value) != "float" or type_str == binding.free:
            requirements.append(None)
        elif type_str in binding.converted:
            requirements.append(Requirement.TARGET)
        else:
            requirements.append(Requirement.ORIGINAL)
            kept_inputs.append(signature.input_names[i])
            default = f"the ONNX spec types {signature.input_names[i]} as {type_str}"
            kept_reasons.append(binding.kept.get(type_str, default))
    return requirements, kept_inputs, kept_reasons


def subgraphs(node: ir.Node) -> list[ir.Graph]:
    """The graphs in ``node``'s attributes."""
    return [g for _, g in named_subgraphs(node)]


def decide(model: ir.Model, options: DecisionOptions) -> Plan:
    """Plan the conversion of ``model``; the model is not modified."""
    return _Decider(model, options).run()
