"""Option groups shared by several commands, declared once, and their mapping onto the library's options.

Each ``add_*`` function declares one group on a parser; the matching ``*_options``
function turns the parsed arguments into the library's options object. Choices come from
the library's own constants, so the CLI never offers what the library refuses.
"""

from __future__ import annotations

__all__ = [
    "add_calibration_options",
    "add_conversion_options",
    "add_data_dir_option",
    "add_export_options",
    "add_layout_option",
    "add_measurement_options",
    "add_numerics_option",
    "add_preprocessing_options",
    "calibration_options",
    "conversion_options",
    "evaluation_options",
    "export_options",
    "progress_enabled",
]

import argparse
import sys
from pathlib import Path
from typing import Any

from ..calibration import DEFAULT_BUDGET_PP, DEFAULT_CALIBRATION_SIZE, DEFAULT_VALIDATION_SIZE, CalibrationOptions
from ..conversion import ENGINES, TARGETS, ConvertOptions
from ..core import PROVIDERS, UsageError
from ..datasets import DATA_DIR_ENV
from ..evaluation import DEFAULT_LATENCY_BATCH_SIZES, LAYOUTS, EvaluateOptions
from ..exporters import DEFAULT_OPSET, FRAMEWORKS, ExportOptions
from ..numerics import NUMERICS

_DATA_DIR_HELP = f"dataset folder (default: ${DATA_DIR_ENV}, then ~/.cache/halfconv/datasets)"


def _integers(text: str, what: str, example: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not {what}, e.g. {example}") from None
    if not values:
        raise argparse.ArgumentTypeError(f"give {what}, e.g. {example}")
    return values


def _batch_sizes(text: str) -> tuple[int, ...]:
    return _integers(text, "a comma-separated list of integers", "1,32,256")


def _shape(text: str) -> tuple[int, ...]:
    return _integers(text.replace("x", ","), "a shape", "1,28,28")


def _percentage_points(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of percentage points, e.g. 0.5") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"{value:g} is not from 0 to 100 percentage points")
    return value


def _floats(values: list[float] | None) -> tuple[float, ...] | None:
    return tuple(values) if values else None


def progress_enabled(args: argparse.Namespace) -> bool:
    """Progress bars only on a terminal, and never with --quiet."""
    return not getattr(args, "quiet", False) and sys.stderr.isatty()


# -- conversion -------------------------------------------------------------------------------


def add_conversion_options(parser: argparse.ArgumentParser) -> None:
    """What to convert and how to check it; shared by convert and run."""
    parser.add_argument("--target", choices=TARGETS, default=TARGETS[0], help=f"target type (default: {TARGETS[0]})")
    parser.add_argument(
        "--keep-op", action="append", default=[], metavar="OP", help="keep every node of this op type in float32 (repeatable)"
    )
    parser.add_argument("--keep-node", action="append", default=[], metavar="NAME", help="keep this node in float32 (repeatable)")
    parser.add_argument(
        "--keep-io-types",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep float32 graph inputs and outputs (default: keep)",
    )
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default=ENGINES[0],
        help=f"conversion engine (default: {ENGINES[0]}); {ENGINES[1]} runs for comparison",
    )
    parser.add_argument(
        "--no-validate",
        dest="validate",
        action="store_false",
        help="skip the checker, ORT load and numeric check (e.g. a model too big to run here)",
    )
    parser.add_argument(
        "--sample", type=Path, metavar="FILE.npz", help="real inputs for the numeric check, one array per input name"
    )
    parser.add_argument("--allow-nonfinite", action="store_true", help="accept inf/NaN outputs that appear only after conversion")
    parser.add_argument(
        "--clamp-weights",
        action="store_true",
        help="convert weights the target cannot hold (beyond 65504, or flushing to zero), clamping them, "
        "instead of keeping the nodes that use them in float32",
    )
    parser.add_argument(
        "--no-default-policy",
        dest="use_default_policy",
        action="store_false",
        help="drop the default keep-float32 table (see 'halfconv policy'); keep lists still apply",
    )


def _destination(args: argparse.Namespace) -> dict[str, Any]:
    """-o and --force, which run does not have: it chooses its files itself."""
    return {"output": getattr(args, "output", None), "force": getattr(args, "force", False)}


def add_numerics_option(parser: argparse.ArgumentParser) -> None:
    """How the converted model's numbers are computed; shared by convert, evaluate and run."""
    parser.add_argument(
        "--numerics",
        choices=NUMERICS,
        default=NUMERICS[0],
        help=(
            "auto: on the CPU provider, emulate fp16 storage (round every stored value) so the figures are "
            "what fp16 computes; on CUDA, run natively. native: ORT's own result (on the CPU, fp16 activations "
            "are not rounded). emulated: always emulate"
        ),
    )


def conversion_options(args: argparse.Namespace) -> ConvertOptions:
    return ConvertOptions(
        **_destination(args),
        target=args.target,
        keep_ops=tuple(args.keep_op),
        keep_nodes=tuple(args.keep_node),
        keep_io_types=args.keep_io_types,
        engine=args.engine,
        validate=args.validate,
        sample=args.sample,
        allow_nonfinite=args.allow_nonfinite,
        use_default_policy=args.use_default_policy,
        clamp_weights=args.clamp_weights,
        numerics=args.numerics,
        diagnose=getattr(args, "explain", False),
    )


# -- calibration ------------------------------------------------------------------------------


def add_calibration_options(parser: argparse.ArgumentParser, *, run: bool) -> None:
    """Calibration data and the accuracy budget; shared by convert and run (where it is on by default)."""
    default = "the training split of --dataset (mnist, cifar10)" if run else "none: only weights and rules decide"
    parser.add_argument(
        "--calibration",
        metavar="DATA",
        help=f"measure the model on mnist or cifar10 (their training split) or FILE.npz (x, y) to decide "
        f"which nodes stay float32 (default: {default})",
    )
    if run:
        parser.add_argument("--no-calibration", action="store_true", help="decide by weights and rules only, without data")
    parser.add_argument(
        "--calibration-size",
        type=int,
        metavar="N",
        help=f"images whose ranges and errors are measured (default: {DEFAULT_CALIBRATION_SIZE})",
    )
    parser.add_argument(
        "--validation-size",
        type=int,
        metavar="N",
        help=f"further training images on which the accuracy budget is checked (default: {DEFAULT_VALIDATION_SIZE})",
    )
    parser.add_argument(
        "--accuracy-budget",
        type=_percentage_points,
        metavar="PP",
        help=f"top-1 on the validation images may drop at most PP percentage points below float32 (default: {DEFAULT_BUDGET_PP})",
    )


def calibration_options(args: argparse.Namespace, source: str | None) -> CalibrationOptions | None:
    """The calibration of ``source`` (None: no calibration; then its size and budget options are refused)."""
    given = [
        flag
        for flag, value in (
            ("--calibration-size", args.calibration_size),
            ("--validation-size", args.validation_size),
            ("--accuracy-budget", args.accuracy_budget),
        )
        if value is not None
    ]
    if source is None:
        if given:
            raise UsageError(f"{given[0]} needs calibration data", "pass --calibration mnist, cifar10 or FILE.npz")
        return None
    return CalibrationOptions(
        source=source,
        size=args.calibration_size if args.calibration_size is not None else DEFAULT_CALIBRATION_SIZE,
        validation_size=args.validation_size if args.validation_size is not None else DEFAULT_VALIDATION_SIZE,
        budget_pp=args.accuracy_budget if args.accuracy_budget is not None else DEFAULT_BUDGET_PP,
        data_dir=args.data_dir,
        layout=getattr(args, "layout", "auto"),
        mean=_floats(args.mean),
        std=_floats(args.std),
        progress=progress_enabled(args),
    )


# -- preprocessing and export -----------------------------------------------------------------


def add_preprocessing_options(parser: argparse.ArgumentParser) -> None:
    """The normalisation a model expects; shared by export, evaluate and run."""
    parser.add_argument("--mean", type=float, nargs="+", metavar="M", help="per-channel mean, applied after scaling pixels to [0, 1]")
    parser.add_argument("--std", type=float, nargs="+", metavar="S", help="per-channel standard deviation, applied after --mean")


def add_export_options(parser: argparse.ArgumentParser) -> None:
    """How to load and export a Keras or PyTorch model; shared by export and run."""
    parser.add_argument("--framework", choices=FRAMEWORKS, help="the model's framework (default: detected from the file)")
    parser.add_argument(
        "--input-shape", type=_shape, metavar="D,D,...", help="per-sample input shape without the batch axis, e.g. 1,28,28"
    )
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset of the export (default: {DEFAULT_OPSET})")
    parser.add_argument(
        "--torch-factory",
        metavar="MODULE:FUNCTION",
        help="builds the nn.Module for a state_dict: pkg.module:make_model or path/to/file.py:make_model",
    )
    parser.add_argument(
        "--trust-pickle", action="store_true", help="allow loading a fully pickled nn.Module (unpickling can execute code)"
    )
    add_preprocessing_options(parser)


def export_options(args: argparse.Namespace) -> ExportOptions:
    return ExportOptions(
        **_destination(args),
        framework=args.framework,
        input_shape=args.input_shape,
        opset=args.opset,
        dataset=getattr(args, "export_dataset", None),
        mean=_floats(args.mean),
        std=_floats(args.std),
        torch_factory=args.torch_factory,
        trust_pickle=args.trust_pickle,
        data_dir=args.data_dir,
        fp32_baseline=getattr(args, "fp32_baseline", False),
    )


# -- measurement ------------------------------------------------------------------------------


def add_measurement_options(parser: argparse.ArgumentParser) -> None:
    """The dataset, the accuracy pass and latency; shared by evaluate and run."""
    parser.add_argument("--dataset", required=True, help="mnist, cifar10, or PATH.npz with arrays x and y")
    parser.add_argument(
        "--provider", choices=PROVIDERS, default=PROVIDERS[0], help="execution provider (default: auto = CUDA if usable, else CPU)"
    )
    parser.add_argument(
        "--strict-provider",
        action="store_true",
        help="on CUDA, refuse a model of which ONNX Runtime would run any node on the CPU (a fallback costs copies every run)",
    )
    parser.add_argument("--batch-size", type=int, default=256, help="images per run in the accuracy pass (default: 256)")
    parser.add_argument("--limit", type=int, help="evaluate only the first N test images")
    add_data_dir_option(parser)
    default_sizes = ",".join(map(str, DEFAULT_LATENCY_BATCH_SIZES))
    parser.add_argument(
        "--latency-batch-sizes",
        type=_batch_sizes,
        default=DEFAULT_LATENCY_BATCH_SIZES,
        metavar="B,B,...",
        help=f"batch sizes to time (default: {default_sizes})",
    )
    parser.add_argument("--warmup", type=int, default=10, help="untimed runs before each latency measurement (default: 10)")
    parser.add_argument("--iters", type=int, default=50, help="timed runs per batch size (default: 50)")
    parser.add_argument("--report-dir", type=Path, help="where to write the report (default: reports/<model stem>/)")
    parser.add_argument(
        "--max-drop",
        type=_percentage_points,
        metavar="PP",
        help="exit 14 (after writing the report) when the converted model's accuracy is more than PP percentage points below fp32's",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def add_data_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, help=_DATA_DIR_HELP)


def add_layout_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--layout", choices=LAYOUTS, default=LAYOUTS[0], help="input layout (default: from the model's input shape)")


def evaluation_options(args: argparse.Namespace, *, preprocessing: bool = True) -> EvaluateOptions:
    """The evaluate options; ``preprocessing=False`` leaves layout, mean and std to the caller (run)."""
    return EvaluateOptions(
        dataset=args.dataset,
        baseline=getattr(args, "baseline", None),
        provider=args.provider,
        batch_size=args.batch_size,
        limit=args.limit,
        data_dir=args.data_dir,
        layout=args.layout if preprocessing else LAYOUTS[0],
        mean=_floats(args.mean) if preprocessing else None,
        std=_floats(args.std) if preprocessing else None,
        latency_batch_sizes=args.latency_batch_sizes,
        warmup=args.warmup,
        iters=args.iters,
        progress=progress_enabled(args),
        numerics=args.numerics,
        strict_provider=args.strict_provider,
    )
