"""``halfconv run``: export (unless already ONNX), convert, evaluate, report, in one command.

The exported and converted models are written into the report folder beside the report
that describes them, so the input is never touched and a second run simply replaces
the folder's previous results. A run that fails leaves nothing of its own behind.
"""

from __future__ import annotations

__all__ = ["RunOptions", "RunOutcome", "run"]

import dataclasses
from collections.abc import Callable
from pathlib import Path

from .calibration import CalibrationOptions, CalibrationReport, calibrated_convert
from .conversion import ConversionResult, ConvertOptions, convert
from .core import DatasetUnavailableError, InputNotFoundError, OutputError, UsageError, data_file_for, model_stem
from .datasets import DATASETS, Dataset, load_dataset
from .evaluation import EvaluateOptions, EvaluationReport, evaluate
from .exporters import ExportOptions, ExportResult, export
from .report import ReportPaths, default_report_dir, write_report


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """One end-to-end run: each step's own options, and the folder that receives everything.

    ``export`` applies when the model is not ONNX; its ``mean``/``std`` describe the
    model's preprocessing and reach the evaluation of an ONNX model (``evaluate.mean`` and
    ``evaluate.std`` are not used). The paths between the steps are the run's to choose, so
    ``convert.output``, ``export.output`` and ``evaluate.baseline`` must be left unset.
    """

    evaluate: EvaluateOptions
    convert: ConvertOptions = ConvertOptions()
    export: ExportOptions = ExportOptions()
    report_dir: Path | None = None  # default: reports/<model stem>/
    # Measures the model before converting it (see halfconv.calibration); None: weights and rules only.
    # Its mean and std, like evaluate's, come from the export options or the exported model.
    calibration: CalibrationOptions | None = None
    # True when nobody asked for the calibration (run's default): if its training split is in
    # no data directory and cannot be downloaded (offline), the run goes on without it and says so.
    calibration_by_default: bool = False

    def check(self) -> None:
        """Raise UsageError for options that name a path the run chooses itself."""
        for name, value in (
            ("the converted model's output", self.convert.output),
            ("the exported model's output", self.export.output),
            ("a baseline", self.evaluate.baseline),
        ):
            if value is not None:
                raise UsageError(f"run chooses {name} itself (in the report folder)", "leave that option unset")
        dataset = self.evaluate.dataset
        if dataset not in DATASETS and not dataset.endswith(".npz"):
            raise UsageError(f"unknown dataset '{dataset}'", "use mnist, cifar10 or a path to an .npz")


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    exported: ExportResult | None
    conversion: ConversionResult
    calibration: CalibrationReport | None
    report: EvaluationReport
    paths: ReportPaths


def run(model_path: str | Path, options: RunOptions, echo: Callable[[str], None] = lambda _: None) -> RunOutcome:
    """Run the whole pipeline and write the report; ``echo`` receives one line per finished step."""
    options.check()
    model_path = Path(model_path)
    report_dir = options.report_dir or default_report_dir(model_path)
    if not model_path.exists():
        raise InputNotFoundError(f"{model_path}: no such file or directory", "check the path")
    if not (model_path.is_file() or model_path.is_dir()):
        # A FIFO or a device would be read forever, or not at all.
        raise InputNotFoundError(f"{model_path} is not a regular file or a model folder", "pass a model file or a SavedModel folder")
    # Fail on a missing or corrupt dataset (and download it) before anything is written.
    # It is then handed to export and evaluate, so the files are read and hashed once.
    evaluate_options = options.evaluate
    test_set = load_dataset(
        evaluate_options.dataset, "test", data_dir=evaluate_options.data_dir, progress=evaluate_options.progress
    )
    options, skipped = _with_calibration_data(options)
    created = _missing_folders(report_dir)
    written: list[Path] = []
    try:
        return _Steps(model_path, options, report_dir, test_set, written, echo, skipped).run()
    except BaseException:
        # Leave nothing of a failed run behind: the files it wrote, and the folders it made.
        for path in written:
            path.unlink(missing_ok=True)
        for folder in created:  # the deepest first
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise


def _with_calibration_data(options: RunOptions) -> tuple[RunOptions, str | None]:
    """The options with the calibration's training split read (before anything is written), or without a calibration.

    A calibration that nobody asked for is dropped when its data is unavailable; the second
    value then says why, for the console and the report.
    """
    calibration = options.calibration
    if calibration is None:
        return options, None
    try:
        train = load_dataset(calibration.source, "train", data_dir=calibration.data_dir, progress=calibration.progress)
    except DatasetUnavailableError as error:
        if not options.calibration_by_default:
            raise
        note = (
            f"not calibrated: {error.what}; activation ranges and accuracy were not measured before conversion "
            "(pass --data-dir with the training split, or --no-calibration)"
        )
        return dataclasses.replace(options, calibration=None), note
    return dataclasses.replace(options, calibration=dataclasses.replace(calibration, preloaded=train)), None


def _missing_folders(folder: Path) -> list[Path]:
    """``folder`` and those of its parents that do not exist yet, the deepest first."""
    missing = []
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            break
        missing.append(candidate)
    return missing


@dataclasses.dataclass
class _Steps:
    model_path: Path
    options: RunOptions
    report_dir: Path
    test_set: Dataset
    written: list[Path]
    echo: Callable[[str], None]
    calibration_skipped: str | None = None  # why the default calibration did not run
    step: int = 0

    @property
    def is_onnx(self) -> bool:
        return self.model_path.suffix.lower() == ".onnx" and self.model_path.is_file()

    def _announce(self, text: str) -> None:
        self.step += 1
        self.echo(f"[{self.step}/{2 if self.is_onnx else 3}] {text}")

    def _claim(self, path: Path) -> Path:
        """A model this run writes, and its external data file; removed again if the run fails and they did not exist before."""
        for owned in (path, data_file_for(path)):
            if not owned.exists():
                self.written.append(owned)
        return path

    def run(self) -> RunOutcome:
        if self.report_dir.exists() and not self.report_dir.is_dir():
            raise OutputError(f"cannot write the report to {self.report_dir}: it is a file", "choose a folder")
        try:
            self.report_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise OutputError(
                f"cannot write the report to {self.report_dir}: {error.strerror or type(error).__name__}",
                "choose another report directory",
            ) from None
        exported = None if self.is_onnx else self._export()
        fp32_path = self.model_path if exported is None else Path(exported.output_path)
        conversion, calibration = self._convert(fp32_path, exported)
        report = self._evaluate(Path(conversion.output_path), fp32_path, exported)
        if calibration is not None:
            # The converted model records its calibration without timings (its bytes do not
            # vary from run to run); the report of this run gets them.
            timing = (
                f"the calibration took {calibration.time_s:.2f} s: {len(calibration.trials)} evaluations and "
                f"{calibration.model_runs} runs in {calibration.sessions} ONNX Runtime sessions"
            )
            report = dataclasses.replace(report, notes=(*report.notes, timing))
        if self.calibration_skipped is not None:
            report = dataclasses.replace(report, notes=(*report.notes, self.calibration_skipped))
        paths = write_report(report, self.report_dir)
        return RunOutcome(exported, conversion, calibration, report, paths)

    def _export(self) -> ExportResult:
        dataset = self.options.evaluate.dataset
        output = self._claim(self.report_dir / f"{model_stem(self.model_path)}.onnx")
        exported = export(
            self.model_path,
            dataclasses.replace(
                self.options.export,
                output=output,
                dataset=dataset if dataset in DATASETS else None,
                force=True,
                data_dir=self.options.evaluate.data_dir,
            ),
            test_set=self.test_set,
        )
        self._announce(
            f"exported {self.model_path} -> {output} ({exported.source_format}; {exported.exporter}; "
            f"max abs diff {exported.max_abs_diff:.2g} on {exported.validation_samples} {exported.validation_inputs})"
        )
        for note in exported.notes:
            self.echo(f"      note: {note}")
        return exported

    def _convert(self, fp32_path: Path, exported: ExportResult | None) -> tuple[ConversionResult, CalibrationReport | None]:
        target = self.options.convert.target
        output = self._claim(self.report_dir / f"{model_stem(fp32_path)}.{target}.onnx")
        options = dataclasses.replace(self.options.convert, output=output, force=True)
        calibration = self.options.calibration
        report = None
        if calibration is None:
            conversion = convert(fp32_path, options)
        else:
            export_options = self.options.export
            calibration = dataclasses.replace(
                calibration,
                mean=None if exported is not None else export_options.mean,
                std=None if exported is not None else export_options.std,
            )
            calibrated = calibrated_convert(fp32_path, options, calibration)
            conversion, report = calibrated.conversion, calibrated.calibration
        stats = conversion.stats
        self._announce(
            f"converted {fp32_path} -> {output} ({stats.nodes_converted} nodes converted, "
            f"{stats.nodes_kept_fp32} kept float32, {stats.casts_inserted} casts; validation {conversion.validation.status})"
        )
        if self.calibration_skipped is not None:
            self.echo(f"      note: {self.calibration_skipped}")
        if report is not None:
            data = report.provenance
            self.echo(
                f"      calibrated on {data.calibration_images:,} {data.dataset} {data.split} images, budget checked on "
                f"{data.validation_images:,}: {len(report.decisions)} node(s) kept float32 by measurement, "
                f"validation drop {report.drop_pp:.2f} pp (budget {report.budget_pp:g} pp), {len(report.trials)} evaluations"
            )
        return conversion, report

    def _evaluate(self, converted_path: Path, fp32_path: Path, exported: ExportResult | None) -> EvaluationReport:
        # An exported model carries its preprocessing in its metadata; for an ONNX model it
        # comes from the run's export options.
        export_options = self.options.export
        options = dataclasses.replace(
            self.options.evaluate,
            baseline=fp32_path,
            mean=None if exported is not None else export_options.mean,
            std=None if exported is not None else export_options.std,
        )
        report = evaluate(converted_path, options, test_set=self.test_set)
        self._announce(
            f"evaluated on {report.dataset.name} {report.dataset.split} "
            f"({report.dataset.num_images:,} images, {report.provider.actual})"
        )
        return report
