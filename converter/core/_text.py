"""The one place where an exception becomes the single line that an error message quotes."""

from __future__ import annotations

__all__ = ["choices_text", "format_magnitude", "one_line"]

import re

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# ONNX Runtime prefixes its messages with "[ONNXRuntimeError] : 1 : FAIL : ".
_ORT_PREFIX = re.compile(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ")
# torch.export prints a report whose gist follows this heading.
_SUMMARY_HEADING = "## Exception summary"
# "<class 'torch._dynamo.exc.Unsupported'>: ..." reads better as "Unsupported: ...".
_CLASS_PREFIX = re.compile(r"^<class '(?:\w+\.)*(\w+)'>: ")

DEFAULT_LIMIT = 300


def one_line(error: BaseException, limit: int = DEFAULT_LIMIT, *, join: bool = False) -> str:
    """The gist of ``error`` on one line of at most ``limit`` characters.

    Its first non-empty line (with ``join``, all its lines joined by spaces, for messages
    such as the ONNX checker's that continue on the next line), without colour codes,
    ONNX Runtime's prefix or a trailing full stop; the line after torch.export's summary
    heading when there is one; the exception's type name when the message is empty.
    """
    lines = [line.strip() for line in _ANSI.sub("", str(error)).splitlines() if line.strip()]
    if join and lines:
        lines = [" ".join(" ".join(lines).split())]
    if _SUMMARY_HEADING in lines:
        lines = lines[lines.index(_SUMMARY_HEADING) + 1 :] or lines
    if not lines:
        return type(error).__name__
    text = _CLASS_PREFIX.sub(r"\1: ", _ORT_PREFIX.sub("", lines[0])).rstrip(". ")
    if not text:
        return type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def choices_text(choices: tuple[str, ...]) -> str:
    """The valid values in words, for an error's hint: "auto, cuda or cpu"."""
    return ", ".join(choices[:-1]) + " or " + choices[-1] if len(choices) > 1 else "".join(choices)


def format_magnitude(value: float) -> str:
    """A range limit: "32,752" for float16's, "1.7e+38" for bfloat16's."""
    return f"{value:,.0f}" if abs(value) < 1e7 else f"{value:.3g}"
