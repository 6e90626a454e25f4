"""``halfconv convert`` and ``halfconv policy``: the commands and the conversion summary they print."""

from __future__ import annotations

__all__ = ["CONVERT", "POLICY", "format_conversion"]

import argparse
import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING

from .. import calibration, conversion
from ..conversion import DEFAULT_KEEP_INPUTS, DEFAULT_KEEP_OPS, FLOAT_ONLY_DOMAINS, ConversionResult
from ..core import UsageError
from ..report import format_bytes
from ._calibration import NOT_CALIBRATED, format_calibration, format_calibration_details
from ._command import Command
from ._options import (
    add_calibration_options,
    add_conversion_options,
    add_data_dir_option,
    add_layout_option,
    add_numerics_option,
    add_preprocessing_options,
    calibration_options,
    conversion_options,
)

if TYPE_CHECKING:
    from ..calibration import CalibrationReport


def _convert_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="the float32 .onnx model (never modified)")
    parser.add_argument("-o", "--output", type=Path, help="output path (default: MODEL.fp16.onnx beside the input)")
    add_conversion_options(parser)
    add_numerics_option(parser)
    add_calibration_options(parser, run=False)
    add_data_dir_option(parser)
    add_layout_option(parser)
    add_preprocessing_options(parser)
    parser.add_argument("--force", action="store_true", help="overwrite an existing output")
    parser.add_argument("--explain", action="store_true", help="list every node that stays float32 and why")
    parser.add_argument("--json", action="store_true", help="print a machine-readable summary on stdout")




def _run_convert(args: argparse.Namespace) -> int:
    options = conversion_options(args)
    calibrate = calibration_options(args, args.calibration)
    if calibrate is None:
        unused = [flag for flag, given in (("--data-dir", args.data_dir), ("--mean", args.mean), ("--std", args.std)) if given]
        unused += ["--layout"] if args.layout != "auto" else []
        if unused:
            raise UsageError(f"{unused[0]} describes calibration data, and none was given", "pass --calibration, or drop it")
        result = conversion.convert(args.model, options)
        summary = result.to_json_dict()
        text = format_conversion(result, explain=args.explain)
    else:
        calibrated = calibration.calibrated_convert(args.model, options, calibrate)
        summary = calibrated.to_json_dict()
        text = format_conversion(calibrated.conversion, explain=args.explain, calibration=calibrated.calibration)
    print(json.dumps(summary, indent=2) if args.json else text)
    return 0


def _weights_line(result: ConversionResult) -> str:
    stats = result.stats
    mixed = "(the model arrived mixed, as a mixed-precision training exports it)"
    if stats.arrived_mixed and stats.float_weight_elements == 0:
        return f"  weights        no float32 weights; all {stats.target_weight_elements:,} were {result.target} already {mixed}"
    line = f"  weights        {stats.converted_weight_share:.1%} of {stats.float_weight_elements:,} float32 elements now {result.target}"
    if stats.arrived_mixed:
        line += f"; {stats.target_weight_elements:,} more were {result.target} already {mixed}"
    return line


def format_conversion(result: ConversionResult, *, explain: bool, calibration: CalibrationReport | None = None) -> str:
    stats = result.stats
    lines = [f"converted {result.input_path} -> {result.output_path} ({result.target}, engine {result.engine})"]
    if result.external_data_path:
        lines.append(f"  external data  {result.external_data_path}")
    lines.append(
        f"  nodes          {stats.nodes_total} total: {stats.nodes_converted} converted, "
        f"{stats.nodes_kept_fp32} kept float32, {stats.nodes_without_float} without float tensors"
    )
    lines.append(_weights_line(result))
    lines.append(f"  casts          {stats.casts_inserted} inserted, {stats.casts_removed} removed")
    lines.append(f"  range          {stats.clamped_values} values clamped, {stats.flushed_values} flushed to zero")
    for report in stats.range_reports[:10]:
        lines.append(f"                 {report.name}: {report.clamped} clamped, {report.flushed} flushed of {report.elements}")
    if len(stats.range_reports) > 10:
        lines.append(f"                 ... {len(stats.range_reports) - 10} more tensors (see --json)")
    ratio = result.size_bytes_after / result.size_bytes_before if result.size_bytes_before else 0.0
    lines.append(
        f"  size           {format_bytes(result.size_bytes_before)} -> {format_bytes(result.size_bytes_after)} ({ratio:.2f}x)"
    )
    validation = result.validation
    if validation.status == "skipped":
        lines.append("  validation     checker ok; NOT LOADED IN ORT, NOT COMPARED (--no-validate)")
    else:
        where = validation.ort_provider or "not loaded in ORT"
        lines.append(f"  validation     {validation.status} (checker ok; {where}; {validation.inputs_from or 'no'} inputs)")
        for output in validation.outputs:
            lines.append(
                f"                 output '{output.name}': "
                + (
                    "no element is finite in both models"
                    if output.max_abs_error is None or output.max_rel_error is None
                    else f"max abs error {output.max_abs_error:.3g}, max rel error {output.max_rel_error:.3g}"
                )
                + (f", {output.nonfinite_introduced} new non-finite" if output.nonfinite_introduced else "")
            )
        if validation.numerics:
            lines.append(f"                 numbers: {validation.numerics}")
        for reason in validation.skipped:
            lines.append(f"                 skipped: {reason}")
    if calibration is None:
        lines.append(f"  calibration    {NOT_CALIBRATED}")
    else:
        lines += format_calibration(calibration)
    for note in stats.notes:
        lines.append(f"  note           {note}")
    lines.append(f"  time           {result.wall_time_s:.2f} s")
    if explain:
        lines.append("")
        lines.append(_explain_table(result))
        if result.validation.divergences:
            lines.append("")
            lines.append(_divergence_table(result))
        if calibration is not None:
            lines += format_calibration_details(calibration)
    return "\n".join(lines)


_DIVERGENCES_SHOWN = 10


def _divergence_table(result: ConversionResult) -> str:
    """The stored values that diverge most from float32 (all diverged ones first, in graph order)."""
    divergences = result.validation.divergences
    diverged = [d for d in divergences if d.diverged]
    shown = diverged[:_DIVERGENCES_SHOWN] or sorted(divergences, key=lambda d: -d.max_rel_error)[:_DIVERGENCES_SHOWN]
    rows = [("NODE", "OP", "VALUE", "MAX |FP32|", "NON-FINITE", "MAX REL ERROR")]
    for d in shown:
        value = f"{d.value} (input)" if d.is_input else d.value
        rows.append((d.node or "(unnamed)", d.op_type, value, f"{d.max_abs_float32:.3g}", str(d.nonfinite), f"{d.max_rel_error:.3g}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    title = (
        f"{len(diverged)} stored value(s) leave the float16 range or diverge by more than 1% from float32:"
        if diverged
        else f"no stored value diverges from float32 by more than 1% ({len(divergences)} compared); the largest:"
    )
    return "\n".join([title, *("  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows)])


def _explain_table(result: ConversionResult) -> str:
    kept = result.stats.kept_nodes
    if not kept:
        return "no node stays float32"
    rows = [("NODE", "OP", "GRAPH", "KEPT", "SOURCE", "REASON")]
    for node in kept:
        what = "inputs " + ",".join(node.kept_inputs) if node.kept_inputs else "node"
        op = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}::{node.op_type}"
        rows.append((node.name or "(unnamed)", op, node.graph, what, node.source, node.reason))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [f"{len(kept)} node(s) keep float32:"]
    for row in rows:
        lines.append("  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:5])) + "  " + row[5])
    return "\n".join(lines)


def _policy_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the table as JSON")




def _run_policy(args: argparse.Namespace) -> int:
    if args.json:
        table = {
            "keep_ops": [dataclasses.asdict(rule) for rule in DEFAULT_KEEP_OPS],
            "keep_inputs": [dataclasses.asdict(rule) for rule in DEFAULT_KEEP_INPUTS],
            "float_only_domains": FLOAT_ONLY_DOMAINS,
        }
        print(json.dumps(table, indent=2))
        return 0
    width = max(len(rule.op_type) for rule in DEFAULT_KEEP_OPS)
    print("ops that stay float32:")
    for rule in DEFAULT_KEEP_OPS:
        print(f"  {rule.op_type.ljust(width)}  {rule.reason}")
    print("inputs that stay float32 when their node converts:")
    for input_rule in DEFAULT_KEEP_INPUTS:
        print(f"  {input_rule.op_type}.{input_rule.input_name}  {input_rule.reason}")
    print("domains that stay float32:")
    for domain, reason in FLOAT_ONLY_DOMAINS.items():
        print(f"  {domain}  {reason}")
    return 0


CONVERT = Command(
    "convert",
    help="convert a float32 ONNX model to float16 or bfloat16",
    description=(
        "Convert a float32 ONNX model to float16 (or bfloat16), keeping numerically "
        "sensitive ops in float32, and validate the result before it is written."
    ),
    arguments=_convert_arguments,
    run=_run_convert,
)


POLICY = Command(
    "policy",
    help="print the default table of ops and inputs that stay float32",
    description="Print the default precision policy: which ops and op inputs stay float32, and why.",
    arguments=_policy_arguments,
    run=_run_policy,
)
