"""``halfconv export``: the command and the summary it prints."""

from __future__ import annotations

__all__ = ["EXPORT"]

import argparse
import json
from pathlib import Path

from .. import exporters
from ..datasets import DATASETS
from ._command import Command
from ._options import add_data_dir_option, add_export_options, export_options


def _export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="the trained model file or SavedModel folder")
    parser.add_argument("-o", "--output", type=Path, help="output .onnx (default: MODEL's name with .onnx beside it)")
    parser.add_argument(
        "--dataset",
        dest="export_dataset",
        choices=DATASETS,
        help="record this dataset's preprocessing and validate on its test images",
    )
    add_export_options(parser)
    parser.add_argument(
        "--fp32-baseline",
        action="store_true",
        help="for a model that computes in float16 (Keras mixed_float16): also write OUTPUT's stem + .fp32.onnx, "
        "the same weights rebuilt under the float32 policy, to evaluate the model against",
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing output")
    parser.add_argument("--json", action="store_true", help="print a machine-readable summary on stdout")
    add_data_dir_option(parser)




def _run_export(args: argparse.Namespace) -> int:
    result = exporters.export(args.model, export_options(args))
    if args.json:
        print(json.dumps(result.to_json_dict(), indent=2))
        return 0
    print(f"exported {result.input_path} -> {result.output_path}")
    print(f"  source         {result.framework}: {result.source_format}")
    print(f"  exporter       {result.exporter}")
    print(f"  input          (N, {', '.join(map(str, result.input_shape))}) float32, batch axis dynamic")
    print(f"  preprocessing  {json.dumps(result.preprocessing, sort_keys=True)}")
    print(
        f"  validation     max abs diff {result.max_abs_diff:.3g} (tolerance {result.tolerance:.3g}, "
        f"the model computes in {result.compute_dtype}) on {result.validation_samples} {result.validation_inputs}"
    )
    if result.baseline is not None:
        print(
            f"  fp32 baseline  {result.baseline.output_path}: the same weights under the float32 policy, "
            f"max abs diff {result.baseline.max_abs_diff:.3g} (tolerance {result.baseline.tolerance:.3g})"
        )
    for note in result.notes:
        print(f"  note           {note}")
    print(f"  time           {result.wall_time_s:.2f} s")
    return 0


EXPORT = Command(
    "export",
    help="export a trained Keras or PyTorch model to a validated float32 ONNX model",
    description=(
        "Export a Keras 3 (.keras, .h5, SavedModel folder) or PyTorch (TorchScript, .pt2 "
        "ExportedProgram, state_dict with --torch-factory) model to ONNX with a dynamic batch "
        "axis, record its preprocessing, and check that ONNX Runtime reproduces its outputs."
    ),
    arguments=_export_arguments,
    run=_run_export,
)
