"""Shared helpers for the engine tests: building, saving, running and inspecting models.

Models are written in the ONNX text format (``onnx.parser``) inside the tests; weights
are attached with :func:`model`, so every test shows its whole graph and no binary
.onnx file is ever committed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import onnx
import onnx.parser
import onnxruntime as ort
from onnx import numpy_helper

from halfconv.conversion import ConversionResult, ConvertOptions, convert

FLOAT = "FLOAT"
FLOAT16 = "FLOAT16"
BFLOAT16 = "BFLOAT16"
DOUBLE = "DOUBLE"

_ORT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
}


# -- building -------------------------------------------------------------------------------


def model(text: str, **initializers: np.ndarray) -> onnx.ModelProto:
    """Parse ``text`` and append ``initializers`` (name -> array) to the main graph.

    The arrays keep their numpy dtype, so pass float32 arrays for float weights.
    """
    proto = onnx.parser.parse_model(text)
    for name, array in initializers.items():
        proto.graph.initializer.append(numpy_helper.from_array(np.asarray(array), name))
    return proto


def rand(*shape: int, seed: int = 0, low: float = -1.0, high: float = 1.0) -> np.ndarray:
    """Deterministic float32 values in [low, high)."""
    rng = np.random.default_rng(seed)
    return rng.uniform(low, high, size=shape).astype(np.float32)


def save(model_proto: onnx.ModelProto, tmp_path: Path, name: str = "model.onnx") -> Path:
    """Check ``model_proto`` with the full checker and write it to ``tmp_path / name``."""
    onnx.checker.check_model(model_proto, full_check=True)
    path = Path(tmp_path) / name
    onnx.save(model_proto, str(path))
    return path


def convert_model(
    model_proto: onnx.ModelProto,
    tmp_path: Path,
    name: str = "model",
    *,
    status: str | None = "passed",
    **options: object,
) -> tuple[Path, Path, ConversionResult]:
    """Save ``model_proto`` as NAME.onnx, convert it to NAME.out.onnx; returns (source, output, result).

    Asserts that the built-in validation ended with ``status`` (None: any) and that the
    conversion left no staging folder behind.
    """
    source = save(model_proto, tmp_path, f"{name}.onnx")
    output = Path(tmp_path) / f"{name}.out.onnx"
    result = convert(source, ConvertOptions(output=output, **options))  # type: ignore[arg-type]
    assert output.is_file()
    assert not [p for p in Path(tmp_path).iterdir() if ".halfconv-" in p.name], "staging folder left behind"
    if status is not None:
        assert result.validation.status == status, result.validation
    return source, output, result


# -- running --------------------------------------------------------------------------------


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_ort(path: Path, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run ``path`` on ORT's CPU provider; feeds are cast to the declared input types."""
    session = _session(path)
    cast: dict[str, np.ndarray] = {}
    for model_input in session.get_inputs():
        value = np.asarray(feeds[model_input.name])
        dtype = _ORT_TYPES.get(model_input.type)
        cast[model_input.name] = value.astype(dtype) if dtype is not None else value
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, cast)))


def assert_outputs_close(
    fp32_path: Path,
    converted_path: Path,
    feeds: Mapping[str, np.ndarray],
    atol: float,
    rtol: float,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Run both models on ORT CPU with the same feeds and compare every output.

    Returns ``(reference_outputs, converted_outputs)`` for further checks.
    """
    reference = run_ort(fp32_path, feeds)
    converted = run_ort(converted_path, feeds)
    assert list(reference) == list(converted), "output names changed"
    for name, ref in reference.items():
        out = converted[name]
        assert out.shape == ref.shape, f"{name}: shape {out.shape} != {ref.shape}"
        assert np.all(np.isfinite(out) == np.isfinite(ref)), f"{name}: non-finite values differ"
        np.testing.assert_allclose(
            out.astype(np.float64), ref.astype(np.float64), atol=atol, rtol=rtol, err_msg=f"output {name}"
        )
    return reference, converted


# -- inspecting -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class NodeTypes:
    """One node with the element types of its inputs and outputs (after shape inference).

    Types are ``onnx.TensorProto`` names ('FLOAT', 'FLOAT16', 'INT64', ...); an absent
    optional input is ``None`` and an unknown type is ``'?'``.
    """

    graph: str  # "main" or "main/<node>:<attribute>" for subgraphs
    name: str
    op: str
    inputs: tuple[str | None, ...]
    outputs: tuple[str | None, ...]
    proto: onnx.NodeProto = dataclasses.field(compare=False, repr=False)

    def attr(self, name: str) -> object:
        for attribute in self.proto.attribute:
            if attribute.name == name:
                return onnx.helper.get_attribute_value(attribute)
        raise KeyError(name)


def _load(model_or_path: onnx.ModelProto | Path | str) -> onnx.ModelProto:
    if isinstance(model_or_path, onnx.ModelProto):
        return model_or_path
    return onnx.load(str(model_or_path), load_external_data=False)


def _type_name(type_proto: onnx.TypeProto) -> str:
    if type_proto.HasField("tensor_type") and type_proto.tensor_type.elem_type:
        return onnx.TensorProto.DataType.Name(type_proto.tensor_type.elem_type)
    return "?"


def _scope(graph: onnx.GraphProto, outer: Mapping[str, str]) -> dict[str, str]:
    scope = dict(outer)
    for init in graph.initializer:
        scope[init.name] = onnx.TensorProto.DataType.Name(init.data_type)
    for value in (*graph.input, *graph.value_info, *graph.output):
        name = _type_name(value.type)
        if name != "?" or value.name not in scope:
            scope[value.name] = name
    return scope


def _walk(graph: onnx.GraphProto, path: str, outer: Mapping[str, str], found: list[NodeTypes]) -> None:
    scope = _scope(graph, outer)
    for node in graph.node:
        found.append(
            NodeTypes(
                path,
                node.name,
                node.op_type,
                tuple(scope.get(i, "?") if i else None for i in node.input),
                tuple(scope.get(o, "?") if o else None for o in node.output),
                node,
            )
        )
        for attribute in node.attribute:
            label = f"{path}/{node.name or node.op_type}:{attribute.name}"
            if attribute.type == onnx.AttributeProto.GRAPH:
                _walk(attribute.g, label, scope, found)
            for k, sub in enumerate(attribute.graphs):
                _walk(sub, f"{label}[{k}]", scope, found)


def node_types(model_or_path: onnx.ModelProto | Path | str) -> list[NodeTypes]:
    """Every node of the model (subgraphs included, parents first) with its element types."""
    proto = onnx.shape_inference.infer_shapes(_load(model_or_path))
    found: list[NodeTypes] = []
    _walk(proto.graph, "main", {}, found)
    return found


def fp32_nodes(model_or_path: onnx.ModelProto | Path | str, *, casts: bool = False) -> list[NodeTypes]:
    """Nodes with a float32 input (Casts left out unless ``casts``; Shape and Size, which
    read only the shape and take any type, are left out too)."""
    return [
        n
        for n in node_types(model_or_path)
        if FLOAT in n.inputs and (casts or n.op != "Cast") and n.op not in ("Shape", "Size")
    ]


def ops(nodes: Iterable[NodeTypes]) -> list[str]:
    return [n.op for n in nodes]


def nodes_of(model_or_path: onnx.ModelProto | Path | str, op: str) -> list[NodeTypes]:
    return [n for n in node_types(model_or_path) if n.op == op]


def count_cancelling_cast_pairs(model_or_path: onnx.ModelProto | Path | str) -> int:
    """Casts A->B whose output feeds a Cast B->A (a round trip that only loses precision)."""
    nodes = node_types(model_or_path)
    casts_by_output = {n.proto.output[0]: n for n in nodes if n.op == "Cast"}
    pairs = 0
    for second in nodes:
        if second.op != "Cast":
            continue
        first = casts_by_output.get(second.proto.input[0])
        if first is None:
            continue
        a, b = first.inputs[0], first.outputs[0]
        if second.inputs[0] == b and second.outputs[0] == a:
            pairs += 1
    return pairs


def noop_casts(model_or_path: onnx.ModelProto | Path | str) -> list[NodeTypes]:
    """Casts whose input already has the target type."""
    return [n for n in node_types(model_or_path) if n.op == "Cast" and n.inputs[0] == n.outputs[0]]


def initializer_dtypes(model_or_path: onnx.ModelProto | Path | str) -> dict[str, str]:
    """Element type of every initializer of the main graph."""
    proto = _load(model_or_path)
    return {t.name: onnx.TensorProto.DataType.Name(t.data_type) for t in proto.graph.initializer}


def initializer(path: Path, name: str) -> np.ndarray:
    """The value of one main-graph initializer (external data is read)."""
    proto = onnx.load(str(path))
    for tensor in proto.graph.initializer:
        if tensor.name == name:
            return numpy_helper.to_array(tensor)
    raise KeyError(name)


def io_types(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Element types of the graph inputs and of the graph outputs."""
    proto = _load(path)
    return (
        {v.name: _type_name(v.type) for v in proto.graph.input},
        {v.name: _type_name(v.type) for v in proto.graph.output},
    )
