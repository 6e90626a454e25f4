"""``halfconv run``: export (unless already ONNX), convert, evaluate, report, in one command.

The exported and converted models are written into the report folder beside the report
that describes them, so the input is never touched and a second run simply replaces
the folder's previous results.
"""

from __future__ import annotations

__all__ = ["RunOptions", "RunOutcome", "run"]

import dataclasses
from collections.abc import Callable
from pathlib import Path

from converter._convert import ConvertOptions, convert
from converter import _datasets
from converter._model_io import model_stem
from converter._errors import InputNotFoundError, UsageError
from converter._evaluate import EvaluateOptions, EvaluationOutcome, evaluate
from converter._export import ExportOptions, ExportResult, export
from converter._results import ConversionResult


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """The export, convert and evaluate options that matter for one end-to-end run."""

    dataset: str  # mnist | cifar10 | PATH.npz
    report_dir: Path | None = None  # default: reports/<model stem>/
    # export
    framework: str | None = None
    input_shape: tuple[int, ...] | None = None
    opset: int = 18
    torch_factory: str | None = None
    trust_pickle: bool = False
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    # convert
    target: str = "fp16"
    keep_ops: tuple[str, ...] = ()
    keep_nodes: tuple[str, ...] = ()
    keep_io_types: bool = True
    # evaluate
    provider: str = "auto"
    batch_size: int = 256
    limit: int | None = None
    data_dir: Path | None = None
    latency_batch_sizes: tuple[int, ...] = (1, 32, 256)
    warmup: int = 10
    iters: int = 50
    progress: bool = False


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    exported: ExportResult | None
    conversion: ConversionResult
    evaluation: EvaluationOutcome


def run(model_path: str | Path, options: RunOptions, echo: Callable[[str], None] = lambda _: None) -> RunOutcome:
    """Run the whole pipeline; ``echo`` receives one line per finished step."""
    model_path = Path(model_path)
    if options.dataset not in ("mnist", "cifar10") and not options.dataset.endswith(".npz"):
        raise UsageError(f"unknown dataset '{options.dataset}'", "use mnist, cifar10 or a path to an .npz")
    report_dir = options.report_dir or Path("reports") / model_stem(model_path)
    if not model_path.exists():
        raise InputNotFoundError(f"{model_path}: no such file or directory", "check the path")
    # Fail on a missing or corrupt dataset (and download it) before anything is written.
    # It is then handed to export and evaluate, so the files are read and hashed once.
    test_set = _datasets.load_dataset(options.dataset, "test", data_dir=options.data_dir, progress=options.progress)
    created_dir = not report_dir.exists()
    written: list[Path] = []
    try:
        return _run_steps(model_path, options, report_dir, test_set, written, echo)
    except BaseException:
        # Leave nothing of a failed run behind: the models it wrote, and a folder it made.
        for path in written:
            path.unlink(missing_ok=True)
        if created_dir and report_dir.is_dir() and not any(report_dir.iterdir()):
            report_dir.rmdir()
        raise


def _run_steps(
    model_path: Path,
    options: RunOptions,
    report_dir: Path,
    test_set: _datasets.Dataset,
    written: list[Path],
    echo: Callable[[str], None],
) -> RunOutcome:
    report_dir.mkdir(parents=True, exist_ok=True)
    is_onnx = model_path.suffix.lower() == ".onnx" and model_path.is_file()
    steps = 2 if is_onnx else 3
    step = 0

    exported: ExportResult | None = None
    fp32_path = model_path
    if not is_onnx:
        step += 1
        fp32_path = report_dir / f"{model_stem(model_path)}.onnx"
        if not fp32_path.exists():
            written.append(fp32_path)
        exported = export(
            model_path,
            ExportOptions(
                output=fp32_path,
                framework=options.framework,
                input_shape=options.input_shape,
                opset=options.opset,
                dataset=options.dataset if options.dataset in ("mnist", "cifar10") else None,
                mean=options.mean,
                std=options.std,
                torch_factory=options.torch_factory,
                trust_pickle=options.trust_pickle,
                force=True,
                data_dir=options.data_dir,
            ),
            test_set=test_set,
        )
        echo(
            f"[{step}/{steps}] exported {model_path} -> {fp32_path} ({exported.source_format}; {exported.exporter}; "
            f"max abs diff {exported.max_abs_diff:.2g} on {exported.validation_samples} {exported.validation_inputs})"
        )
        for note in exported.notes:
            echo(f"      note: {note}")

    step += 1
    converted_path = report_dir / f"{model_stem(fp32_path)}.{options.target}.onnx"
    if not converted_path.exists():
        written.append(converted_path)
    conversion = convert(
        fp32_path,
        ConvertOptions(
            output=converted_path,
            target=options.target,
            keep_ops=options.keep_ops,
            keep_nodes=options.keep_nodes,
            keep_io_types=options.keep_io_types,
            force=True,
        ),
    )
    stats = conversion.stats
    echo(
        f"[{step}/{steps}] converted {fp32_path} -> {converted_path} ({stats.nodes_converted} nodes converted, "
        f"{stats.nodes_kept_fp32} kept float32, {stats.casts_inserted} casts; validation {conversion.validation.status})"
    )

    step += 1
    evaluation = evaluate(
        converted_path,
        EvaluateOptions(
            dataset=options.dataset,
            baseline=fp32_path,
            provider=options.provider,
            batch_size=options.batch_size,
            limit=options.limit,
            data_dir=options.data_dir,
            mean=None if exported is not None else options.mean,
            std=None if exported is not None else options.std,
            latency_batch_sizes=options.latency_batch_sizes,
            warmup=options.warmup,
            iters=options.iters,
            report_dir=report_dir,
            progress=options.progress,
        ),
        test_set=test_set,
    )
    report = evaluation.report
    echo(
        f"[{step}/{steps}] evaluated on {report.dataset.name} {report.dataset.split} "
        f"({report.dataset.num_images:,} images, {report.provider.actual})"
    )
    return RunOutcome(exported, conversion, evaluation)
