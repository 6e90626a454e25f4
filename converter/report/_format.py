"""How numbers read in the evaluation report, shared by its text and its plots.

Every figure the report prints goes through one of these functions, so the summary, the
tables, the console and the plot labels write a number the same way. The look-ups (class
names, batch sizes, one latency point) read the report the same way for the text and the
plots.
"""

from __future__ import annotations

__all__ = [
    "CPU_PROVIDER",
    "format_bytes",
    "format_class_list",
    "format_floats",
    "format_ms",
    "format_percent",
    "format_pp",
    "format_ratio",
    "format_scale",
    "format_speed",
    "format_speedup",
    "format_threads",
    "format_yes_no",
    "latency_point",
    "report_batch_sizes",
    "report_class_names",
]

import math
from collections.abc import Sequence

from ..core import CPU_PROVIDER
from ..evaluation import EvaluationReport, LatencyPoint, ModelEvaluation


def format_percent(share: float) -> str:
    """A share in [0, 1] as a percentage that never rounds a miss to 100% or a hit to 0%."""
    if not math.isfinite(share):
        return "n/a"  # e.g. a class without images
    text = f"{share * 100:.2f}%"
    if text == "100.00%" and share < 1:
        return ">99.99%"
    if text == "0.00%" and share > 0:
        return "<0.01%"
    return text


def format_pp(delta: float) -> str:
    """A change in percentage points, "-0.02 pp"; a tiny change keeps its sign."""
    if delta == 0:
        return "0.00 pp"
    text = f"{delta:+.2f}"
    if text in ("+0.00", "-0.00"):  # a change too small for two decimals keeps its sign
        text = f"{delta:+.1g}"
    return f"{text} pp"


def format_bytes(count: int) -> str:
    """A size in B, KiB, MiB or GiB: "1.5 MiB"."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"


def format_ms(value: float) -> str:
    """Milliseconds with three decimals below 1, two below 100, one above."""
    if not math.isfinite(value) or value >= 100:
        return f"{value:.1f}"
    return f"{value:.3f}" if value < 1 else f"{value:.2f}"


def format_ratio(value: float) -> str:
    """A ratio as a multiple: "0.50x"."""
    return f"{value:.2f}x"


def format_speedup(ratio: float) -> str:
    """An fp16/fp32 latency ratio in words: "1.61x faster"."""
    if not math.isfinite(ratio) or ratio <= 0:
        return "speed unknown"
    if ratio < 1:
        return f"{1 / ratio:.2f}x faster"
    return f"{ratio:.2f}x slower" if ratio > 1 else "same speed"


def format_speed(ratio: float) -> str:
    """An fp16/fp32 latency ratio as a multiple and in words: "0.62x (1.61x faster)", "1.27x (slower)"."""
    if math.isfinite(ratio) and ratio > 1:
        return f"{format_ratio(ratio)} (slower)"
    return f"{format_ratio(ratio)} ({format_speedup(ratio)})"


def format_threads(count: int) -> str:
    """A thread count, where 0 means ONNX Runtime chooses."""
    return "ORT default" if count == 0 else str(count)


def format_yes_no(flag: bool) -> str:
    """A flag as "yes" or "no"."""
    return "yes" if flag else "no"


def format_scale(scale: float) -> str:
    """A pixel scale, naming the common ones as fractions: "0.00392157 (1/255)"."""
    for divisor in (255, 256, 65535):
        if math.isclose(scale * divisor, 1.0, rel_tol=1e-6):
            return f"{scale:.6g} (1/{divisor})"
    return f"{scale:g}"


def format_floats(values: Sequence[float]) -> str:
    """A tuple of floats: "(0.485, 0.456, 0.406)"."""
    return "(" + ", ".join(f"{v:g}" for v in values) + ")"


def report_class_names(report: EvaluationReport) -> list[str]:
    """One name per class with a per-class accuracy; a class without a name is its index."""
    count = max((len(m.per_class_accuracy) for m in report.models), default=0)
    names = list(report.dataset.class_names)
    return [names[i] if i < len(names) else str(i) for i in range(count)]


def format_class_list(names: Sequence[str]) -> str:
    """The number of classes and the first 20 names."""
    shown = ", ".join(names[:20])
    return f"{len(names)}: {shown}" + (f", ... ({len(names) - 20} more)" if len(names) > 20 else "")


def report_batch_sizes(report: EvaluationReport) -> list[int]:
    """Every batch size timed for any model, smallest first."""
    return sorted({point.batch_size for m in report.models for point in m.latency})


def latency_point(model: ModelEvaluation, batch_size: int) -> LatencyPoint | None:
    """The model's latency at ``batch_size``, or None where it was not timed."""
    return next((p for p in model.latency if p.batch_size == batch_size), None)
