"""The ``halfconv`` command line: parse, call one library function, print the result.

Library modules are imported inside the command functions so that ``halfconv --help``
stays fast and never imports onnxruntime, torch or TensorFlow.
"""

from __future__ import annotations

__all__ = ["build_parser", "main"]

import argparse
import json
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from converter._errors import HalfconvError
from converter._report_format import format_bytes

if TYPE_CHECKING:
    from converter._results import ConversionResult

EXIT_INTERRUPTED = 130


# -- convert ---------------------------------------------------------------------------------


def _add_convert(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="convert a float32 ONNX model to float16 or bfloat16",
        description=(
            "Convert a float32 ONNX model to float16 (or bfloat16), keeping numerically "
            "sensitive ops in float32, and validate the result before it is written."
        ),
    )
    parser.add_argument("model", type=Path, help="the float32 .onnx model (never modified)")
    parser.add_argument("-o", "--output", type=Path, help="output path (default: MODEL.fp16.onnx beside the input)")
    parser.add_argument("--target", choices=("fp16", "bf16"), default="fp16", help="target type (default: fp16)")
    parser.add_argument(
        "--keep-op", action="append", default=[], metavar="OP", help="keep every node of this op type in float32 (repeatable)"
    )
    parser.add_argument(
        "--keep-node", action="append", default=[], metavar="NAME", help="keep this node in float32 (repeatable)"
    )
    parser.add_argument(
        "--keep-io-types",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep float32 graph inputs and outputs (default: keep)",
    )
    parser.add_argument(
        "--engine",
        choices=("halfconv", "onnxconverter-common"),
        default="halfconv",
        help="conversion engine (default: halfconv); onnxconverter-common runs for comparison",
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing output")
    parser.add_argument("--explain", action="store_true", help="list every node that stays float32 and why")
    parser.add_argument("--json", action="store_true", help="print a machine-readable summary on stdout")
    parser.add_argument(
        "--no-validate",
        dest="validate",
        action="store_false",
        help="skip the checker, ORT load and numeric check (e.g. a model too big to run here)",
    )
    parser.add_argument("--sample", type=Path, metavar="FILE.npz", help="real inputs for the numeric check, one array per input name")
    parser.add_argument(
        "--allow-nonfinite", action="store_true", help="accept inf/NaN outputs that appear only after conversion"
    )
    parser.add_argument(
        "--no-default-policy",
        dest="use_default_policy",
        action="store_false",
        help="drop the default keep-float32 table (see 'halfconv policy'); keep lists still apply",
    )
    parser.set_defaults(handler=_run_convert)


def _run_convert(args: argparse.Namespace) -> int:
    from converter._convert import ConvertOptions, convert

    options = ConvertOptions(
        output=args.output,
        target=args.target,
        keep_ops=tuple(args.keep_op),
        keep_nodes=tuple(args.keep_node),
        keep_io_types=args.keep_io_types,
        engine=args.engine,
        force=args.force,
        validate=args.validate,
        sample=args.sample,
        allow_nonfinite=args.allow_nonfinite,
        use_default_policy=args.use_default_policy,
    )
    result = convert(args.model, options)
    if args.json:
        print(json.dumps(result.to_json_dict(), indent=2))
    else:
        print(format_conversion(result, explain=args.explain))
    return 0


def format_conversion(result: ConversionResult, *, explain: bool) -> str:
    stats = result.stats
    lines = [f"converted {result.input_path} -> {result.output_path} ({result.target}, engine {result.engine})"]
    if result.external_data_path:
        lines.append(f"  external data  {result.external_data_path}")
    lines.append(
        f"  nodes          {stats.nodes_total} total: {stats.nodes_converted} converted, "
        f"{stats.nodes_kept_fp32} kept float32, {stats.nodes_without_float} without float tensors"
    )
    lines.append(
        f"  weights        {stats.converted_weight_share:.1%} of {stats.float_weight_elements:,} float32 "
        f"elements now {result.target}"
    )
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
        lines.append("  validation     NOT VALIDATED (--no-validate)")
    else:
        where = validation.ort_provider or "no ORT session"
        lines.append(f"  validation     {validation.status} (checker ok; {where}; {validation.inputs_from or 'no'} inputs)")
        for output in validation.outputs:
            lines.append(
                f"                 output '{output.name}': max abs error {output.max_abs_error:.3g}, "
                f"max rel error {output.max_rel_error:.3g}"
                + (f", {output.nonfinite_introduced} new non-finite" if output.nonfinite_introduced else "")
            )
        for reason in validation.skipped:
            lines.append(f"                 skipped: {reason}")
    for note in stats.notes:
        lines.append(f"  note           {note}")
    lines.append(f"  time           {result.wall_time_s:.2f} s")
    if explain:
        lines.append("")
        lines.append(_explain_table(result))
    return "\n".join(lines)


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


# -- evaluate ----------------------------------------------------------------------------------


def _batch_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of integers, e.g. 1,32,256") from None
    if not sizes:
        raise argparse.ArgumentTypeError("give at least one batch size, e.g. 1,32,256")
    return sizes


def _add_measurement_options(parser: argparse.ArgumentParser) -> None:
    """The dataset pass and latency options shared by evaluate and run."""
    parser.add_argument("--provider", choices=("auto", "cuda", "cpu"), default="auto", help="execution provider (default: auto = CUDA if usable, else CPU)")
    parser.add_argument("--batch-size", type=int, default=256, help="images per run in the accuracy pass (default: 256)")
    parser.add_argument("--limit", type=int, help="evaluate only the first N test images")
    parser.add_argument("--data-dir", type=Path, help="dataset folder (default: $HALFCONV_DATA_DIR, then ~/.cache/halfconv/datasets)")
    parser.add_argument(
        "--latency-batch-sizes", type=_batch_sizes, default=(1, 32, 256), metavar="B,B,...", help="batch sizes to time (default: 1,32,256)"
    )
    parser.add_argument("--warmup", type=int, default=10, help="untimed runs before each latency measurement (default: 10)")
    parser.add_argument("--iters", type=int, default=50, help="timed runs per batch size (default: 50)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_evaluate(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="measure accuracy, size and latency on MNIST/CIFAR-10 and write the report",
        description=(
            "Evaluate a model (and its float32 baseline) on the MNIST or CIFAR-10 test set with "
            "ONNX Runtime, and write report.md, report.json and report.html."
        ),
    )
    parser.add_argument("model", type=Path, help="the .onnx model to evaluate (usually the converted one)")
    parser.add_argument("--dataset", required=True, help="mnist, cifar10, or PATH.npz with arrays x and y")
    parser.add_argument(
        "--baseline", type=Path, help="the float32 model to compare with (default: the source recorded by convert, if present)"
    )
    parser.add_argument("--layout", choices=("auto", "nchw", "nhwc", "flat"), default="auto", help="input layout (default: from the model's input shape)")
    parser.add_argument("--mean", type=float, nargs="+", metavar="M", help="per-channel mean, applied after scaling pixels to [0, 1]")
    parser.add_argument("--std", type=float, nargs="+", metavar="S", help="per-channel standard deviation, applied after --mean")
    parser.add_argument("--report-dir", type=Path, help="where to write the report (default: reports/<model stem>/)")
    parser.add_argument("--json", action="store_true", help="print report.json on stdout instead of the table")
    _add_measurement_options(parser)
    parser.set_defaults(handler=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> int:
    from converter._evaluate import EvaluateOptions, evaluate
    from converter._report import format_console, report_json_text

    options = EvaluateOptions(
        dataset=args.dataset,
        baseline=args.baseline,
        provider=args.provider,
        batch_size=args.batch_size,
        limit=args.limit,
        data_dir=args.data_dir,
        layout=args.layout,
        mean=tuple(args.mean) if args.mean else None,
        std=tuple(args.std) if args.std else None,
        latency_batch_sizes=args.latency_batch_sizes,
        warmup=args.warmup,
        iters=args.iters,
        report_dir=args.report_dir,
        progress=not args.quiet and sys.stderr.isatty(),
    )
    outcome = evaluate(args.model, options)
    if outcome.report.provider.fallback_reason:
        sys.stdout.flush()
        print(f"Warning: ran on {outcome.report.provider.actual}: {outcome.report.provider.fallback_reason}", file=sys.stderr, flush=True)
    if args.json:
        print(report_json_text(outcome.report), end="")
    else:
        print(format_console(outcome.report))
        print(f"report: {outcome.report_dir / 'report.html'} (also report.md, report.json)")
    return 0


# -- export ------------------------------------------------------------------------------------


def _shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a shape like 1,28,28") from None
    if not shape:
        raise argparse.ArgumentTypeError("give a shape like 1,28,28")
    return shape


def _add_export_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--framework", choices=("keras", "torch"), help="the model's framework (default: detected from the file)")
    parser.add_argument("--input-shape", type=_shape, metavar="D,D,...", help="per-sample input shape without the batch axis, e.g. 1,28,28")
    parser.add_argument("--opset", type=int, default=18, help="ONNX opset of the export (default: 18)")
    parser.add_argument("--torch-factory", metavar="MODULE:FUNCTION", help="builds the nn.Module for a state_dict: pkg.module:make_model or path/to/file.py:make_model")
    parser.add_argument("--trust-pickle", action="store_true", help="allow loading a fully pickled nn.Module (unpickling can execute code)")
    parser.add_argument("--mean", type=float, nargs="+", metavar="M", help="per-channel mean the model expects, after scaling pixels to [0, 1]")
    parser.add_argument("--std", type=float, nargs="+", metavar="S", help="per-channel standard deviation the model expects")


def _add_export(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a trained Keras or PyTorch model to a validated float32 ONNX model",
        description=(
            "Export a Keras 3 (.keras, .h5, SavedModel folder) or PyTorch (TorchScript, .pt2 "
            "ExportedProgram, state_dict with --torch-factory) model to ONNX with a dynamic batch "
            "axis, record its preprocessing, and check that ONNX Runtime reproduces its outputs."
        ),
    )
    parser.add_argument("model", type=Path, help="the trained model file or SavedModel folder")
    parser.add_argument("-o", "--output", type=Path, help="output .onnx (default: MODEL's name with .onnx beside it)")
    parser.add_argument("--dataset", choices=("mnist", "cifar10"), help="record this dataset's preprocessing and validate on its test images")
    _add_export_options(parser)
    parser.add_argument("--force", action="store_true", help="overwrite an existing output")
    parser.add_argument("--json", action="store_true", help="print a machine-readable summary on stdout")
    parser.add_argument("--data-dir", type=Path, help="dataset folder (default: $HALFCONV_DATA_DIR, then ~/.cache/halfconv/datasets)")
    parser.set_defaults(handler=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    from converter._export import ExportOptions, export

    result = export(
        args.model,
        ExportOptions(
            output=args.output,
            framework=args.framework,
            input_shape=args.input_shape,
            opset=args.opset,
            dataset=args.dataset,
            mean=tuple(args.mean) if args.mean else None,
            std=tuple(args.std) if args.std else None,
            torch_factory=args.torch_factory,
            trust_pickle=args.trust_pickle,
            force=args.force,
            data_dir=args.data_dir,
        ),
    )
    if args.json:
        print(json.dumps(result.to_json_dict(), indent=2))
        return 0
    print(f"exported {result.input_path} -> {result.output_path}")
    print(f"  source         {result.framework}: {result.source_format}")
    print(f"  exporter       {result.exporter}")
    print(f"  input          (N, {', '.join(map(str, result.input_shape))}) float32, batch axis dynamic")
    print(f"  preprocessing  {json.dumps(result.preprocessing, sort_keys=True)}")
    print(
        f"  validation     max abs diff {result.max_abs_diff:.3g} (tolerance {result.tolerance:.3g}) "
        f"on {result.validation_samples} {result.validation_inputs}"
    )
    for note in result.notes:
        print(f"  note           {note}")
    print(f"  time           {result.wall_time_s:.2f} s")
    return 0


# -- run ---------------------------------------------------------------------------------------


def _add_run(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "run",
        help="export (unless ONNX), convert and evaluate in one command, and write the report",
        description=(
            "From a trained Keras/PyTorch model or an fp32 ONNX model to the report: export, "
            "convert to fp16, evaluate both on the test set, write report.md/json/html. The "
            "exported and converted models are written into the report folder."
        ),
    )
    parser.add_argument("model", type=Path, help="a trained Keras/PyTorch model or an fp32 .onnx model")
    parser.add_argument("--dataset", required=True, help="mnist, cifar10, or PATH.npz with arrays x and y")
    parser.add_argument("--report-dir", type=Path, help="report and model folder (default: reports/<model stem>/)")
    _add_export_options(parser)
    parser.add_argument("--target", choices=("fp16", "bf16"), default="fp16", help="conversion target (default: fp16)")
    parser.add_argument("--keep-op", action="append", default=[], metavar="OP", help="keep every node of this op type in float32 (repeatable)")
    parser.add_argument("--keep-node", action="append", default=[], metavar="NAME", help="keep this node in float32 (repeatable)")
    _add_measurement_options(parser)
    parser.set_defaults(handler=_run_run)


def _run_run(args: argparse.Namespace) -> int:
    from converter._report_format import format_pp
    from converter._run import RunOptions, run

    outcome = run(
        args.model,
        RunOptions(
            dataset=args.dataset,
            report_dir=args.report_dir,
            framework=args.framework,
            input_shape=args.input_shape,
            opset=args.opset,
            torch_factory=args.torch_factory,
            trust_pickle=args.trust_pickle,
            mean=tuple(args.mean) if args.mean else None,
            std=tuple(args.std) if args.std else None,
            target=args.target,
            keep_ops=tuple(args.keep_op),
            keep_nodes=tuple(args.keep_node),
            provider=args.provider,
            batch_size=args.batch_size,
            limit=args.limit,
            data_dir=args.data_dir,
            latency_batch_sizes=args.latency_batch_sizes,
            warmup=args.warmup,
            iters=args.iters,
            progress=not args.quiet and sys.stderr.isatty(),
        ),
        echo=lambda line: print(line, flush=True),
    )
    report = outcome.evaluation.report
    fp32, fp16, comparison = report.model("fp32"), report.model("fp16"), report.comparison
    assert fp32 is not None and fp16 is not None and comparison is not None
    if report.provider.fallback_reason:
        print(f"Warning: ran on {report.provider.actual}: {report.provider.fallback_reason}", file=sys.stderr, flush=True)
    largest = max(p.batch_size for p in fp16.latency)
    ratio = dict(comparison.latency_ratio).get(largest)
    print()
    print(f"accuracy   fp32 {fp32.accuracy:.2%}   {args.target} {fp16.accuracy:.2%}   change {format_pp(comparison.accuracy_delta_pp)}   agreement {comparison.agreement:.2%}")
    print(f"size       {comparison.size_ratio:.2f}x of fp32 ({fp16.size_bytes:,} vs {fp32.size_bytes:,} bytes)")
    if ratio is not None:
        print(f"latency    {ratio:.2f}x of fp32 at batch {largest} (p50, {report.provider.actual})")
    print(f"report     {outcome.evaluation.report_dir / 'report.html'}")
    return 0


# -- policy ------------------------------------------------------------------------------------


def _add_policy(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "policy",
        help="print the default table of ops and inputs that stay float32",
        description="Print the default precision policy: which ops and op inputs stay float32, and why.",
    )
    parser.add_argument("--json", action="store_true", help="print the table as JSON")
    parser.set_defaults(handler=_run_policy)


def _run_policy(args: argparse.Namespace) -> int:
    from converter import _policy

    if args.json:
        print(
            json.dumps(
                {
                    "keep_ops": [vars_of(r) for r in _policy.DEFAULT_KEEP_OPS],
                    "keep_inputs": [vars_of(r) for r in _policy.DEFAULT_KEEP_INPUTS],
                    "float_only_domains": _policy.FLOAT_ONLY_DOMAINS,
                },
                indent=2,
            )
        )
        return 0
    width = max(len(r.op_type) for r in _policy.DEFAULT_KEEP_OPS)
    print("ops that stay float32:")
    for rule in _policy.DEFAULT_KEEP_OPS:
        print(f"  {rule.op_type.ljust(width)}  {rule.reason}")
    print("inputs that stay float32 when their node converts:")
    for input_rule in _policy.DEFAULT_KEEP_INPUTS:
        print(f"  {input_rule.op_type}.{input_rule.input_name}  {input_rule.reason}")
    print("domains that stay float32:")
    for domain, reason in _policy.FLOAT_ONLY_DOMAINS.items():
        print(f"  {domain}  {reason}")
    return 0


def vars_of(rule: object) -> dict[str, Any]:
    import dataclasses

    return dataclasses.asdict(rule)  # type: ignore[call-overload,no-any-return]


# -- entry -------------------------------------------------------------------------------------

_COMMANDS: tuple[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None], ...] = (
    _add_export,
    _add_convert,
    _add_evaluate,
    _add_run,
    _add_policy,
)


def build_parser() -> argparse.ArgumentParser:
    from converter import __version__

    parser = argparse.ArgumentParser(
        prog="halfconv",
        description="Convert fp32 ONNX models to fp16, keep sensitive ops in fp32, and prove accuracy.",
    )
    parser.add_argument("--version", action="version", version=f"halfconv {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for add in _COMMANDS:
        add(subparsers)
    return parser


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so staging folders are cleaned up.
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        return int(args.handler(args))
    except HalfconvError as error:
        print(f"Error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("Error: interrupted - nothing was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
