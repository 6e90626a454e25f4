"""``halfconv evaluate`` and ``halfconv run``: the commands and what they print."""

from __future__ import annotations

__all__ = ["EVALUATE", "RUN"]

import argparse
import sys
from pathlib import Path

from .. import core, evaluation
from ..core import UsageError
from ..datasets import DATASETS
from ..evaluation import EvaluationReport
from ..report import default_report_dir, format_console, format_pp, report_json_text, write_report
from ._command import Command
from ._options import (
    add_calibration_options,
    add_conversion_options,
    add_export_options,
    add_layout_option,
    add_measurement_options,
    add_numerics_option,
    add_preprocessing_options,
    calibration_options,
    conversion_options,
    evaluation_options,
    export_options,
)


def _gate(report: EvaluationReport, args: argparse.Namespace) -> None:
    if args.max_drop is not None:
        sys.stdout.flush()
        evaluation.accuracy_gate(report, args.max_drop)


def _warn_fallback(report: EvaluationReport) -> None:
    if report.provider.fallback_reason:
        sys.stdout.flush()
        print(f"Warning: ran on {report.provider.actual}: {report.provider.fallback_reason}", file=sys.stderr, flush=True)


def _evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="the .onnx model to evaluate (usually the converted one)")
    parser.add_argument(
        "--baseline", type=Path, help="the float32 model to compare with (default: the source recorded by convert, if present)"
    )
    add_layout_option(parser)
    add_preprocessing_options(parser)
    parser.add_argument("--json", action="store_true", help="print report.json on stdout instead of the table")
    add_measurement_options(parser)
    add_numerics_option(parser)




def _run_evaluate(args: argparse.Namespace) -> int:
    if args.max_drop is not None and args.baseline is None:
        proto, _ = core.read_model_proto(args.model)
        if evaluation.find_baseline(args.model, proto)[0] is None:
            raise UsageError("--max-drop needs a float32 baseline to compare with", "pass --baseline FP32.onnx")
    report = evaluation.evaluate(args.model, evaluation_options(args))
    report_dir = args.report_dir or default_report_dir(args.model)
    write_report(report, report_dir)
    _warn_fallback(report)
    if args.json:
        print(report_json_text(report), end="")
    else:
        print(format_console(report))
        print(f"report: {report_dir / 'report.html'} (also report.md, report.json)")
    _gate(report, args)
    return 0


def _run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="a trained Keras/PyTorch model or an fp32 .onnx model")
    add_export_options(parser)
    add_conversion_options(parser)
    add_calibration_options(parser, run=True)
    add_measurement_options(parser)
    add_numerics_option(parser)




def _run_run(args: argparse.Namespace) -> int:
    from .. import RunOptions, run  # here: the run pipeline imports every step's libraries

    source = args.calibration
    if args.no_calibration and source is not None:
        raise UsageError("--calibration and --no-calibration contradict each other", "drop one of them")
    default = not args.no_calibration and source is None
    if default and args.dataset in DATASETS and args.engine == "halfconv":
        source = args.dataset  # its training split: the test split is what the report is written on
    options = RunOptions(
        evaluate=evaluation_options(args, preprocessing=False),
        convert=conversion_options(args),
        export=export_options(args),
        report_dir=args.report_dir,
        calibration=calibration_options(args, source),
        calibration_by_default=default,
    )
    if source is None:
        if args.no_calibration:
            why = "--no-calibration"
        elif args.engine != "halfconv":
            why = f"--engine {args.engine} takes no calibration"
        else:
            why = f"{args.dataset} has no training split; pass --calibration"
        print(f"note: activation ranges and accuracy are not measured before conversion ({why})", flush=True)
    elif source == args.dataset and source not in DATASETS:
        print(f"note: calibrating on {source}, the file the report is written on: its accuracy is not independent", flush=True)
    outcome = run(args.model, options, echo=lambda line: print(line, flush=True))
    report = outcome.report
    _warn_fallback(report)
    fp32, converted, comparison = report.baseline, report.converted, report.comparison
    print()
    if fp32 is not None and converted is not None and comparison is not None:
        print(
            f"accuracy   fp32 {fp32.accuracy:.2%}   {converted.role} {converted.accuracy:.2%}   "
            f"change {format_pp(comparison.accuracy_delta_pp)}   agreement {comparison.agreement:.2%}"
        )
        low, high = comparison.delta_ci95_pp
        print(
            f"paired     {comparison.flips_to_wrong} right to wrong, {comparison.flips_to_right} wrong to right; "
            f"95% interval {low:+.2f} to {high:+.2f} pp; McNemar p = {comparison.mcnemar_p:.3g}"
        )
        print(f"numerics   {converted.numerics}")
        print(f"size       {comparison.size_ratio:.2f}x of fp32 ({converted.size_bytes:,} vs {fp32.size_bytes:,} bytes)")
        ratios = dict(comparison.latency_ratio)
        largest = max((p.batch_size for p in converted.latency), default=None)
        if largest is not None and largest in ratios:
            print(f"latency    {ratios[largest]:.2f}x of fp32 at batch {largest} (p50, {report.provider.actual})")
    print(f"report     {outcome.paths.html}")
    _gate(report, args)
    return 0


EVALUATE = Command(
    "evaluate",
    help="measure accuracy, size and latency on MNIST/CIFAR-10 and write the report",
    description=(
        "Evaluate a model (and its float32 baseline) on the MNIST or CIFAR-10 test set with "
        "ONNX Runtime, and write report.md, report.json and report.html."
    ),
    arguments=_evaluate_arguments,
    run=_run_evaluate,
)


RUN = Command(
    "run",
    help="export (unless ONNX), convert and evaluate in one command, and write the report",
    description=(
        "From a trained Keras/PyTorch model or an fp32 ONNX model to the report: export, "
        "convert to fp16, evaluate both on the test set, write report.md/json/html. The "
        "exported and converted models are written into the report folder."
    ),
    arguments=_run_arguments,
    run=_run_run,
)
