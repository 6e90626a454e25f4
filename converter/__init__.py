"""halfconv: convert float32 ONNX models to float16, keep sensitive ops in float32, prove accuracy."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = [
    "ConversionResult",
    "ConvertOptions",
    "HalfconvError",
    "__version__",
    "convert",
]

from typing import TYPE_CHECKING, Any

from converter._errors import HalfconvError

if TYPE_CHECKING:
    from converter._convert import ConvertOptions, convert
    from converter._results import ConversionResult


def __getattr__(name: str) -> Any:
    # Lazy, so that importing the package (and `halfconv --help`) does not load onnxruntime.
    if name in ("ConvertOptions", "convert"):
        from converter import _convert

        return getattr(_convert, name)
    if name == "ConversionResult":
        from converter._results import ConversionResult

        return ConversionResult
    raise AttributeError(name)
