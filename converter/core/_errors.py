"""One exception hierarchy for user errors, each class with its own exit code.

``cli.main`` prints a :class:`HalfconvError` as a single line on stderr and exits with
its ``exit_code``. Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = [
    "EXIT_CODES",
    "EXIT_INTERRUPTED",
    "AccuracyGateError",
    "ConversionError",
    "DatasetError",
    "DatasetUnavailableError",
    "ExportError",
    "HalfconvError",
    "IncompatibleModelError",
    "InputNotFoundError",
    "InvalidModelError",
    "MissingDependencyError",
    "NothingToConvertError",
    "OutputError",
    "ProviderError",
    "UsageError",
    "ValidationFailedError",
]


class HalfconvError(Exception):
    """A problem with what the user asked for or gave us, not a bug in halfconv."""

    exit_code: int = 1

    def __init__(self, what: str, hint: str | None = None) -> None:
        self.what = what
        self.hint = hint
        super().__init__(what if hint is None else f"{what} - {hint}")


class UsageError(HalfconvError):
    """Options that make no sense together, or a value out of range."""

    exit_code = 2


class InputNotFoundError(HalfconvError):
    """The input path does not exist, is a directory, or cannot be read."""

    exit_code = 3


class InvalidModelError(HalfconvError):
    """The input is not a loadable ONNX model (empty, truncated, not protobuf, bad external data)."""

    exit_code = 4


class ConversionError(HalfconvError):
    """The model cannot be converted, for a reason stated in the message."""

    exit_code = 5


class ValidationFailedError(HalfconvError):
    """The converted model failed the checker, type inference, the ORT load or the numeric check."""

    exit_code = 6


class OutputError(HalfconvError):
    """The output path exists without --force, equals the input, or cannot be written."""

    exit_code = 7


class NothingToConvertError(HalfconvError):
    """The model holds no float32 tensor that could be converted; no file was written."""

    exit_code = 8


class DatasetError(HalfconvError):
    """A dataset file is missing, corrupt, has a wrong checksum, or does not fit the model."""

    exit_code = 9


class DatasetUnavailableError(DatasetError):
    """A dataset split is in no data directory and could not be downloaded (offline, say)."""


class ProviderError(HalfconvError):
    """The requested ONNX Runtime execution provider cannot be created."""

    exit_code = 10


class ExportError(HalfconvError):
    """A Keras or PyTorch model cannot be loaded or exported, or its export diverges."""

    exit_code = 11


class MissingDependencyError(HalfconvError):
    """An optional extra (keras, torch) is needed for this command but not installed."""

    exit_code = 12


class IncompatibleModelError(HalfconvError):
    """The model cannot take the dataset, is not a classifier, differs from its baseline, or needs a newer runtime."""

    exit_code = 13


# Ctrl-C or SIGTERM: the shell's convention for a process ended by SIGINT.
EXIT_INTERRUPTED = 130

class AccuracyGateError(HalfconvError):
    """The converted model's accuracy is further below float32's than --max-drop allows."""

    exit_code = 14


EXIT_CODES: dict[type[HalfconvError], int] = {
    cls: cls.exit_code
    for cls in (
        UsageError,
        InputNotFoundError,
        InvalidModelError,
        ConversionError,
        ValidationFailedError,
        OutputError,
        NothingToConvertError,
        DatasetError,
        ProviderError,
        ExportError,
        MissingDependencyError,
        IncompatibleModelError,
        AccuracyGateError,
    )
}
