"""Which node first leaves the float16 range or diverges: the float32 model and the numerics
model run once each on the same inputs, with every rounded value exposed as an output."""

from __future__ import annotations

__all__ = ["diverging_nodes"]

import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import helper

from .. import core
from ._types import NodeDivergence, RoundedValue


def _with_outputs(path: Path, names: list[str], folder: Path) -> Path:
    """A copy of the model at ``path`` that also outputs ``names`` (float32 values of its main graph)."""
    proto = onnx.load(str(path))
    present = {o.name for o in proto.graph.output}
    for name in names:
        if name not in present:
            proto.graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    target = folder / f"{len(list(folder.iterdir()))}.onnx"
    onnx.save(proto, str(target))
    return target


def _run(path: Path, names: list[str], feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    session = core.create_session(path, core.resolve_provider("cpu"), optimize=False)
    casted = {i.name: feeds[i.name].astype(core.ORT_NUMPY_TYPES.get(i.type, feeds[i.name].dtype)) for i in session.get_inputs()}
    return dict(zip(names, session.run(names, casted)))


def _divergence(value: RoundedValue, reference: np.ndarray, stored: np.ndarray) -> NodeDivergence:
    ref, out = reference.astype(np.float64), stored.astype(np.float64)
    finite = np.isfinite(ref)
    both = finite & np.isfinite(out)
    scale = float(np.abs(ref[finite]).max()) if finite.any() else 0.0
    diff = float(np.abs(ref[both] - out[both]).max()) if both.any() else 0.0
    rel = diff / scale if scale > 0 else (0.0 if diff == 0 else float("inf"))
    nonfinite = int(np.count_nonzero(finite & ~np.isfinite(out)))
    return NodeDivergence(value.reference, value.node, value.op_type, value.is_input, value.stored, scale, nonfinite, rel)


def diverging_nodes(
    reference_path: Path, numerics_path: Path, rounded: tuple[RoundedValue, ...], feeds: dict[str, np.ndarray]
) -> list[NodeDivergence]:
    """Every rounded value that the float32 model also has, compared, in graph order."""
    fp32_values = _float32_values(reference_path)
    shared = [v for v in rounded if v.reference in fp32_values]
    if not shared:
        return []
    reference_names = list(dict.fromkeys(v.reference for v in shared))
    stored_names = [v.name for v in shared]
    with tempfile.TemporaryDirectory(prefix="halfconv-diagnosis-") as folder:
        reference = _run(_with_outputs(reference_path, reference_names, Path(folder)), reference_names, feeds)
        stored = _run(_with_outputs(numerics_path, stored_names, Path(folder)), stored_names, feeds)
    return [_divergence(v, reference[v.reference], stored[v.name]) for v in shared]


def _float32_values(path: Path) -> set[str]:
    """Names of the float32 model's main-graph values that can be outputs: node outputs and graph inputs."""
    proto = onnx.load(str(path), load_external_data=False)
    initializers = {t.name for t in proto.graph.initializer}
    inputs = {i.name for i in proto.graph.input if i.name not in initializers}
    return inputs | {name for node in proto.graph.node for name in node.output if name}
