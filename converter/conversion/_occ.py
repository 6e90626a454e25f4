"""onnxconverter-common's float16 converter, run with the same keep lists, for comparison.

It is called with its own defaults (its default op block list, values clipped to
[1e-7, 1e4] in magnitude), so the comparison shows what users of that tool get. The
statistics are measured on its output; values it clipped count as *clamped*.
"""

from __future__ import annotations

__all__ = ["OCC_MAX_FINITE", "OCC_MIN_POSITIVE", "convert_with_occ"]

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from ..core import all_graph_protos
from ._results import ConversionStats, KeptNode, TensorRangeReport

OCC_MIN_POSITIVE = 1e-7
OCC_MAX_FINITE = 1e4


def _all_nodes(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    return [node for sub in all_graph_protos(graph) for node in sub.node]


def _initializers(graph: onnx.GraphProto) -> list[onnx.TensorProto]:
    return [tensor for sub in all_graph_protos(graph) for tensor in sub.initializer]


def _clipped(
    source_floats: dict[str, onnx.TensorProto], converted: onnx.ModelProto
) -> tuple[int, list[TensorRangeReport]]:
    """Elements of the weights it converted, and per weight the values its clip changed."""
    converted_elements = 0
    reports: list[TensorRangeReport] = []
    for tensor in _initializers(converted.graph):
        source = source_floats.get(tensor.name)
        if source is None or tensor.data_type != onnx.TensorProto.FLOAT16:
            continue
        values = np.abs(numpy_helper.to_array(source))
        converted_elements += values.size
        clipped = int(np.count_nonzero((values > OCC_MAX_FINITE) & np.isfinite(values)))
        clipped += int(np.count_nonzero((values > 0) & (values < OCC_MIN_POSITIVE)))
        if clipped:
            reports.append(TensorRangeReport(tensor.name, int(values.size), clipped, 0))
    return converted_elements, reports


def convert_with_occ(
    model_path: Path, *, keep_ops: tuple[str, ...], keep_nodes: tuple[str, ...], keep_io_types: bool
) -> tuple[onnx.ModelProto, ConversionStats]:
    """Convert with onnxconverter-common; returns the float16 proto and its statistics."""
    from onnxconverter_common import float16  # imported here: it pulls in heavy modules

    original = onnx.load(str(model_path))
    source_nodes = _all_nodes(original.graph)
    block_ops = [*float16.DEFAULT_OP_BLOCK_LIST, *keep_ops]
    source_floats = {
        t.name: t for t in _initializers(original.graph) if t.data_type == onnx.TensorProto.FLOAT
    }
    already_half = sum(int(np.prod(t.dims)) for t in _initializers(original.graph) if t.data_type == onnx.TensorProto.FLOAT16)
    converted = float16.convert_float_to_float16(
        original,
        keep_io_types=keep_io_types,
        op_block_list=block_ops,
        node_block_list=list(keep_nodes) or None,
        disable_shape_infer=False,
    )
    out_nodes = _all_nodes(converted.graph)
    kept = tuple(
        KeptNode(
            n.name,
            n.op_type,
            n.domain,
            "main",
            "in onnxconverter-common's block list" if n.op_type in block_ops else "kept by --keep-node",
            "keep-op" if n.op_type in keep_ops else ("keep-node" if n.name in keep_nodes else "policy"),
        )
        for n in source_nodes
        if n.op_type in block_ops or n.name in keep_nodes
    )
    float_elements = sum(int(np.prod(t.dims)) for t in source_floats.values())
    converted_elements, reports = _clipped(source_floats, converted)
    casts_before = sum(1 for n in source_nodes if n.op_type == "Cast")
    casts_after = sum(1 for n in out_nodes if n.op_type == "Cast")
    stats = ConversionStats(
        nodes_total=len(source_nodes),
        nodes_converted=len(source_nodes) - len(kept),
        nodes_kept_fp32=len(kept),
        nodes_without_float=0,
        float_weight_elements=float_elements,
        converted_weight_elements=converted_elements,
        casts_inserted=max(casts_after - casts_before, 0),
        casts_removed=0,
        clamped_values=sum(r.clamped for r in reports),
        flushed_values=0,
        range_reports=tuple(reports),
        kept_nodes=kept,
        notes=(
            "onnxconverter-common clips weights to [1e-7, 1e4] in magnitude; clipped values are counted as clamped",
        ),
        target_weight_elements=already_half,
    )
    return converted, stats
