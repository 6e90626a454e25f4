"""The report's plots: accuracy per class, latency against batch size, logit differences.

Each plot is drawn with matplotlib's Agg backend (no display needed) into a PNG at 1.5x
the CSS size, so it stays sharp on high-DPI screens; the HTML page embeds them as base64.
matplotlib is imported only when plots are drawn, so importing this module stays cheap.
"""

from __future__ import annotations

__all__ = ["Plot", "render_plots"]

import dataclasses
import io
import math
from typing import Any, Literal

from ..evaluation import EvaluationReport
from ._format import (
    CPU_PROVIDER,
    format_ms,
    format_percent,
    latency_point,
    report_batch_sizes,
    report_class_names,
)

_MODEL_COLOURS = {"fp32": "#3b6ea5", "fp16": "#e07b28", "bf16": "#e07b28", "model": "#3b6ea5"}


@dataclasses.dataclass(frozen=True)
class Plot:
    """One drawn plot: the PNG, its display size, and the texts the page shows with it."""

    png: bytes
    width: int  # CSS pixels; the PNG has 1.5x as many, so it stays sharp on high-DPI screens
    height: int
    alt: str
    caption: str


_FIGURE_WIDTH = 9.5  # inches: 912 CSS pixels, inside the page's 1100-pixel column
_CSS_DPI = 96
_PNG_DPI = 144

# Each function below draws into a matplotlib Figure (typed Any: matplotlib is imported only
# when plots are drawn) and returns the plot's alt text and caption, or None to draw nothing.


def render_plots(report: EvaluationReport) -> dict[str, Plot]:
    """The plots, keyed by the report section that shows them: "accuracy", "latency", "logit_diff".

    A plot with nothing to draw (no latency measured, no baseline to compare with) is left out.
    """
    import matplotlib

    matplotlib.use("Agg")  # no display, and no GUI backend that might fail to start
    import matplotlib.pyplot as plt

    plots: dict[str, Plot] = {}
    for name, draw in (("accuracy", _accuracy_plot), ("latency", _latency_plot), ("logit_diff", _logit_plot)):
        figure = plt.figure(layout="constrained")
        try:
            texts = draw(report, figure)
            if texts is None:
                continue
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png", dpi=_PNG_DPI, metadata={"Software": None})
            width, height = (round(inches * _CSS_DPI) for inches in figure.get_size_inches())
            plots[name] = Plot(buffer.getvalue(), width, height, *texts)
        finally:
            plt.close(figure)
    return plots


def _delta_panel(axes: Any, x: Any, values: list[list[float]], role: str, count: int) -> Any:
    """The lower panel of the accuracy plot: the converted model minus fp32, per class."""
    import numpy as np

    delta = np.array(values[1]) - np.array(values[0])
    axes.bar(x, delta, 0.6, color=["#b2302a" if d < 0 else "#2f8a3a" for d in np.nan_to_num(delta)])
    axes.axhline(0, color="black", linewidth=0.8)
    limit = max(0.1, float(np.nanmax(np.abs(delta))) * 1.4) if np.isfinite(delta).any() else 0.1
    axes.set_ylim(-limit, limit)
    if count <= 30:
        for position, change in zip(x, delta, strict=True):
            if math.isfinite(change) and round(change, 2) != 0:
                axes.annotate(
                    f"{change:+.2f}", (position, change), ha="center", va="bottom" if change > 0 else "top",
                    fontsize=8, xytext=(0, 2 if change > 0 else -2), textcoords="offset points",
                )  # fmt: skip
    axes.set_ylabel(f"{role} - fp32 (pp)")
    axes.grid(axis="y", alpha=0.3)
    return axes


def _accuracy_plot(report: EvaluationReport, figure: Any) -> tuple[str, str] | None:
    import numpy as np

    models = report.models
    labels = ["overall", *report_class_names(report)]
    values = [
        [m.accuracy * 100]
        + [m.per_class_accuracy[i] * 100 if i < len(m.per_class_accuracy) else np.nan for i in range(len(labels) - 1)]
        for m in models
    ]
    delta_panel = report.comparison is not None and len(models) == 2
    # Rotate the class names only when the longest would not fit under its group of bars.
    rotate = max(len(label) for label in labels) * 0.075 > 0.9 * (_FIGURE_WIDTH - 1.0) / len(labels)
    figure.set_size_inches(_FIGURE_WIDTH, (5.6 if delta_panel else 3.8) + (0.5 if rotate else 0))
    axes = figure.subplots(
        2 if delta_panel else 1, 1, sharex=True, squeeze=False, height_ratios=[2, 1] if delta_panel else None
    )
    top = axes[0][0]
    x = np.arange(len(labels))
    width = 0.8 / len(models)
    for index, (model, row) in enumerate(zip(models, values, strict=True)):
        offset = (index - (len(models) - 1) / 2) * width
        label = f"{model.role}: {format_percent(model.accuracy)} overall"
        top.bar(x + offset, row, width, label=label, color=_MODEL_COLOURS.get(model.role))
    finite = [v for row in values for v in row if math.isfinite(v)]
    # Accuracies near 100% differ by tenths of a point; from 0 every bar would look the same.
    floor = max(0.0, math.floor((min(finite, default=0.0) - 2) / 10) * 10)
    top.set_ylim(floor, 101.5)
    top.set_ylabel("top-1 accuracy (%)")
    for axes_row in axes:
        axes_row[0].axvline(0.5, color="#888", linewidth=0.8)  # "overall" is not a class
    top.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncols=len(models), frameon=False, fontsize=9)
    top.grid(axis="y", alpha=0.3)
    bottom = top
    bottom = _delta_panel(axes[1][0], x, values, models[1].role, len(labels)) if delta_panel else top
    step = math.ceil(len(labels) / 50)  # at most 50 class names, upright when there are many
    rotation = 0 if not rotate else 90 if len(labels[::step]) > 20 else 35
    bottom.set_xticks(x[::step])
    bottom.set_xticklabels(
        labels[::step], rotation=rotation, ha="right" if rotation == 35 else "center", fontsize=9,
        rotation_mode="anchor" if rotation == 35 else "default",
    )  # fmt: skip
    roles = " and ".join(m.role for m in models)
    alt = f"Bar chart of top-1 accuracy, overall and for each of {len(labels) - 1} classes, for {roles}"
    caption = f"Top-1 accuracy overall and per class for {roles}; the y axis starts at {floor:.0f}%."
    if delta_panel:
        role = models[1].role
        alt += f", with a second panel of the {role} minus fp32 change in percentage points"
        caption += f" The lower panel shows {role} - fp32 in percentage points (red: {role} worse)."
    return alt + ".", caption


def _latency_plot(report: EvaluationReport, figure: Any) -> tuple[str, str] | None:
    batch_sizes = report_batch_sizes(report)
    if not batch_sizes:
        return None
    if len(batch_sizes) == 1:
        return _single_batch_plot(report, figure, batch_sizes[0])
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter

    figure.set_size_inches(_FIGURE_WIDTH, 4.0)
    latency_axes, throughput_axes = figure.subplots(1, 2)
    styles: tuple[tuple[str, str, Literal["-", "--", ":"], float], ...] = (
        ("p50", "o", "-", 1.0),
        ("p90", "^", "--", 0.75),
        ("p99", "v", ":", 0.75),
    )
    for model in report.models:
        points = sorted(model.latency, key=lambda p: p.batch_size)
        colour = _MODEL_COLOURS.get(model.role)
        sizes = [p.batch_size for p in points]
        for percentile, marker, linestyle, alpha in styles:
            times = [getattr(p, f"{percentile}_ms") for p in points]
            latency_axes.plot(
                sizes, times, marker=marker, linestyle=linestyle, color=colour, alpha=alpha,
                markersize=5 if percentile == "p50" else 4,
            )  # fmt: skip
        throughput_axes.plot(sizes, [p.throughput for p in points], "o-", color=colour)
    log_x = batch_sizes[-1] / batch_sizes[0] > 10
    for axes, ylabel in ((latency_axes, "latency per batch (ms)"), (throughput_axes, "throughput (images/s)")):
        values = [y for line in axes.get_lines() for y in line.get_ydata() if y > 0]
        if values and max(values) / min(values) > 10:
            axes.set_yscale("log")
            axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        else:
            axes.set_ylim(bottom=0)
        if log_x:
            axes.set_xscale("log")
        axes.set_xticks(batch_sizes)
        axes.set_xticklabels([str(b) for b in batch_sizes])
        axes.minorticks_off()
        axes.set_xlabel("batch size")
        axes.set_ylabel(ylabel)
        axes.grid(alpha=0.3)
    latency_axes.set_title("latency per batch", fontsize=10)
    throughput_axes.set_title("throughput", fontsize=10)
    # One legend for both panels: colour says which model, line style which percentile.
    handles = [Line2D([], [], color=_MODEL_COLOURS.get(m.role), linewidth=6, label=m.role) for m in report.models]
    handles += [
        Line2D([], [], color="#444", marker=marker, linestyle=linestyle, label=f"{name} latency")
        for name, marker, linestyle, _ in styles
    ]
    figure.legend(handles=handles, loc="outside upper center", ncols=len(handles), frameon=False, fontsize=9)
    roles = " and ".join(m.role for m in report.models)
    batches = ", ".join(str(b) for b in batch_sizes)
    alt = f"Line charts of p50, p90 and p99 latency and of throughput against batch size ({batches}) for {roles}."
    caption = f"Latency percentiles (left) and throughput (right) against batch size on {report.provider.actual}."
    return alt, caption + _copies_note(report)


def _single_batch_plot(report: EvaluationReport, figure: Any, batch_size: int) -> tuple[str, str]:
    """One batch size (a fixed-batch model): bars instead of lines against batch size."""
    import numpy as np

    figure.set_size_inches(_FIGURE_WIDTH, 3.2)
    latency_axes, throughput_axes = figure.subplots(1, 2, width_ratios=[2, 1])
    percentiles = ("p50", "p90", "p99")
    points = [(m, p) for m in report.models if (p := latency_point(m, batch_size)) is not None]
    models = [m for m, _ in points]
    width = 0.8 / len(models)
    for index, (model, point) in enumerate(points):
        colour = _MODEL_COLOURS.get(model.role)
        offset = (index - (len(models) - 1) / 2) * width
        times = [getattr(point, f"{name}_ms") for name in percentiles]
        bars = latency_axes.bar(np.arange(3) + offset, times, width, color=colour, label=model.role)
        latency_axes.bar_label(bars, labels=[format_ms(t) for t in times], fontsize=8, padding=2)
        bars = throughput_axes.bar([index], [point.throughput], 0.6, color=colour)
        throughput_axes.bar_label(bars, labels=[f"{point.throughput:,.0f}"], fontsize=8, padding=2)
    latency_axes.set_xticks(np.arange(3), percentiles)
    latency_axes.set_ylabel("latency per batch (ms)")
    latency_axes.set_title(f"latency at batch {batch_size}", fontsize=10)
    latency_axes.margins(y=0.15)
    latency_axes.legend(fontsize=9, loc="upper left")
    throughput_axes.set_xticks(range(len(models)), [m.role for m in models])
    throughput_axes.set_ylabel("throughput (images/s)")
    throughput_axes.set_title(f"throughput at batch {batch_size}", fontsize=10)
    throughput_axes.margins(y=0.15)
    for axes in (latency_axes, throughput_axes):
        axes.grid(axis="y", alpha=0.3)
    roles = " and ".join(m.role for m in models)
    alt = f"Bar charts of p50, p90 and p99 latency and of throughput at batch size {batch_size} for {roles}."
    caption = (
        f"Latency percentiles (left) and throughput (right) at batch size {batch_size}, the only one measured, "
        f"on {report.provider.actual}."
    )
    return alt, caption + _copies_note(report)


def _copies_note(report: EvaluationReport) -> str:
    if report.provider.actual == CPU_PROVIDER:
        return ""
    inside = "inside" if report.provider.copies_timed else "outside"
    return f" Host/device copies are {inside} the timed region."


def _logit_plot(report: EvaluationReport, figure: Any) -> tuple[str, str] | None:
    import numpy as np

    comparison = report.comparison
    if comparison is None or len(comparison.logit_diff_bins) < 2 or not any(comparison.logit_diff_counts):
        return None
    role = report.models[-1].role
    edges = np.asarray(comparison.logit_diff_bins, dtype=float)
    counts = np.asarray(comparison.logit_diff_counts, dtype=float)
    if len(edges) >= 3 and np.isinf(edges[-1]):  # an open last bin ("and above") gets a drawable width
        step = edges[-2] / edges[-3] if edges[-3] > 0 else 2.0
        edges = np.append(edges[:-1], edges[-2] * step if edges[-2] > 0 else edges[-2] + 1.0)
    if not np.isfinite(edges).all() or len(counts) != len(edges) - 1:
        return None
    figure.set_size_inches(_FIGURE_WIDTH, 3.6)
    axes = figure.subplots()
    positive = edges[edges > 0]
    # Edges spread over several decades (e.g. 1e-6 .. 1) only read on a log axis; a first
    # edge of 0 is drawn one step below the next edge.
    log_x = len(positive) >= 2 and positive[-1] / positive[0] > 1000 and (edges >= 0).all()
    if log_x and edges[0] == 0:
        edges = edges.copy()
        edges[0] = positive[0] / max(positive[1] / positive[0], 10.0)
    axes.bar(
        edges[:-1], counts, width=np.diff(edges), align="edge", log=True,
        color="#3b6ea5", edgecolor="white", linewidth=0.5,
    )  # fmt: skip
    if log_x:
        axes.set_xscale("log")
    for value, label, style in (
        (comparison.mean_abs_logit_diff, "mean", "--"),
        (comparison.max_abs_logit_diff, "max", ":"),
    ):
        if math.isfinite(value) and value > 0:
            axes.axvline(value, color="#b2302a", linestyle=style, label=f"{label} {value:.3g}")
    axes.set_xlabel(f"|{role} - fp32| per output element")
    axes.set_ylabel("elements (log scale)")
    axes.grid(alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=9)
    alt = (
        f"Histogram, log-scaled counts, of absolute {role} minus fp32 logit differences over {int(counts.sum()):,} "
        f"output elements; max {comparison.max_abs_logit_diff:.3g}, mean {comparison.mean_abs_logit_diff:.3g}."
    )
    caption = f"Distribution of |{role} - fp32| over every output element (log-scaled counts)."
    if log_x and comparison.logit_diff_bins[0] == 0:
        caption += f" The first bar counts differences from 0 (including exact matches) to {positive[0]:.3g}."
    return alt, caption
