"""The evaluation report: Markdown, a self-contained HTML page, a console table and JSON.

Everything here is rendered from :class:`~converter._eval_results.EvaluationReport` alone.
The content is first built once as plain sections and tables, then written out as
Markdown or HTML, so the two files always say the same thing. Only the HTML page has
plots; they are PNGs embedded as base64 so the page works offline and can be mailed.
"""

from __future__ import annotations

__all__ = [
    "report_json_text",
    "ReportPaths",
    "format_console",
    "load_schema",
    "render_html",
    "render_markdown",
    "write_report",
]

import base64
import dataclasses
import html
import importlib.resources
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from converter import _report_plots
from converter._errors import OutputError
from converter._eval_results import EvaluationReport, ModelEvaluation
from converter._report_format import (
    CPU_PROVIDER,
    format_bytes,
    format_class_list,
    format_floats,
    format_ms,
    format_percent,
    format_pp,
    format_ratio,
    format_scale,
    format_speed,
    format_speedup,
    format_threads,
    format_yes_no,
    latency_point,
    report_batch_sizes,
    report_class_names,
)


# -- warnings -----------------------------------------------------------------------------------


def _fell_back(report: EvaluationReport) -> bool:
    provider = report.provider
    return provider.fallback_reason is not None or (provider.requested != "cpu" and provider.actual == CPU_PROVIDER)


def _warnings(report: EvaluationReport) -> list[str]:
    provider = report.provider
    found = []
    if _fell_back(report):
        reason = provider.fallback_reason or "no reason was recorded"
        found.append(
            f"CPU FALLBACK: requested '{provider.requested}' but ran on {provider.actual} - {reason}. "
            "All latency figures are CPU figures, not GPU figures."
        )
    for model in report.models:
        if model.nonfinite_outputs:
            found.append(
                f"{model.role} ({Path(model.path).name}) produced {model.nonfinite_outputs:,} "
                "non-finite output values (inf or NaN)."
            )
    return found


# -- content, shared by Markdown and HTML -------------------------------------------------------


class _Code(str):
    """A table cell or item shown as code: paths, hashes, op types."""


@dataclasses.dataclass(frozen=True)
class _Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: tuple[int, ...] = ()  # columns aligned right


@dataclasses.dataclass(frozen=True)
class _Bullets:
    items: tuple[str, ...]


_Block = str | _Table | _Bullets


@dataclasses.dataclass(frozen=True)
class _Section:
    title: str
    blocks: tuple[_Block, ...]
    plot: str | None = None  # the HTML page shows this plot at the top of the section


def _title(report: EvaluationReport) -> str:
    names = " vs ".join(Path(m.path).name for m in reversed(report.models))
    return f"halfconv evaluation: {names} on {report.dataset.name} {report.dataset.split}"


def _summary(report: EvaluationReport) -> str:
    fp32, fp16, comparison = report.model("fp32"), report.model("fp16"), report.comparison
    provider = report.provider.actual
    images = f"{report.dataset.num_images:,} {report.dataset.name} {report.dataset.split} images"
    if fp32 is not None and fp16 is not None and comparison is not None:
        text = (
            f"The fp16 model reaches {format_percent(fp16.accuracy)} top-1 accuracy against "
            f"{format_percent(fp32.accuracy)} for fp32 ({format_pp(comparison.accuracy_delta_pp)}); "
            f"the two agree on {format_percent(comparison.agreement)} of {images}. "
            f"It is {format_ratio(comparison.size_ratio)} the size "
            f"({format_bytes(fp16.size_bytes)} vs {format_bytes(fp32.size_bytes)})."
        )
        for batch, ratio in comparison.latency_ratio[:1]:
            slow, fast = latency_point(fp32, batch), latency_point(fp16, batch)
            if slow is not None and fast is not None:
                text += (
                    f" At batch {batch}, its p50 latency is {format_ms(fast.p50_ms)} ms"
                    f" against {format_ms(slow.p50_ms)} ms"
                    f" ({format_speedup(ratio)}) on {provider}."
                )
        return text
    model = report.models[0]
    text = (
        f"{Path(model.path).name} reaches {format_percent(model.accuracy)} top-1 accuracy "
        f"({model.correct:,}/{model.total:,}) on {images}; it is {format_bytes(model.size_bytes)}."
    )
    if model.latency:
        point = model.latency[0]
        text += f" At batch {point.batch_size}, its p50 latency is {format_ms(point.p50_ms)} ms on {provider}."
    return text + " There is no baseline to compare with."


def _key_figures(report: EvaluationReport) -> _Table:
    """The comparison at a glance; the console prints the same table."""
    models, comparison = report.models, report.comparison
    change = comparison is not None
    header = ("", *(m.role for m in models), *(("fp16 vs fp32",) if change else ()))

    def row(label: str, cells: Iterable[str], delta: str = "") -> tuple[str, ...]:
        return (label, *cells, *((delta,) if change else ()))

    rows = [
        row(
            "accuracy",
            (format_percent(m.accuracy) for m in models),
            format_pp(comparison.accuracy_delta_pp) if comparison else "",
        ),
        row(
            "correct",
            (f"{m.correct:,}/{m.total:,}" for m in models),
            f"agreement {format_percent(comparison.agreement)}" if comparison else "",
        ),
        row(
            "non-finite",
            (f"{m.nonfinite_outputs:,}" for m in models),
            f"{comparison.disagreements:,} predictions differ" if comparison else "",
        ),
        row(
            "size",
            (format_bytes(m.size_bytes) for m in models),
            format_ratio(comparison.size_ratio) if comparison else "",
        ),
    ]
    ratios = dict(comparison.latency_ratio) if comparison else {}
    batch_sizes = report_batch_sizes(report)
    for batch in batch_sizes:
        cells = ((f"{format_ms(p.p50_ms)} ms" if (p := latency_point(m, batch)) else "-") for m in models)
        rows.append(row(f"p50 batch {batch}", cells, format_speed(ratios[batch]) if batch in ratios else ""))
    if batch_sizes:
        batch = batch_sizes[-1]
        cells = ((f"{p.throughput:,.0f} img/s" if (p := latency_point(m, batch)) else "-") for m in models)
        rows.append(row(f"throughput batch {batch}", cells))
    if comparison:
        rows.append(
            row(
                "|logit diff|",
                ("" for _ in models),
                f"max {comparison.max_abs_logit_diff:.3g}, mean {comparison.mean_abs_logit_diff:.3g}",
            )
        )
    return _Table(header, tuple(rows), numeric=tuple(range(1, len(models) + 1)))


def _setup_sections(report: EvaluationReport) -> list[_Section]:
    dataset, provider, pre = report.dataset, report.provider, report.preprocessing
    dataset_table = _Table(
        ("", ""),
        (
            ("dataset", dataset.name),
            ("split", dataset.split),
            ("images evaluated", f"{dataset.num_images:,} of {dataset.num_available:,}"),
            ("classes", format_class_list(dataset.class_names)),
        ),
    )
    files = _Table(
        ("file", "sha256", "size"),
        tuple((_Code(f.path), _Code(f.sha256), format_bytes(f.size_bytes)) for f in dataset.files),
        numeric=(2,),
    )
    provider_rows: list[tuple[str, ...]] = [
        ("provider requested", provider.requested),
        ("provider actual", provider.actual),
    ]
    if _fell_back(report):
        provider_rows.append(("CPU FALLBACK", provider.fallback_reason or "no reason was recorded"))
    provider_rows += [
        ("onnxruntime", provider.ort_version),
        ("GPU", provider.device_name or "-"),
        ("CPU", f"{provider.cpu_model} ({provider.cpu_count} logical cores)"),
        (
            "threads",
            f"intra-op {format_threads(provider.intra_op_threads)}, "
            f"inter-op {format_threads(provider.inter_op_threads)}",
        ),
        ("IO binding", format_yes_no(provider.io_binding)),
        ("host/device copies timed", format_yes_no(provider.copies_timed)),
    ]
    pre_table = _Table(
        ("", ""),
        (
            ("layout", pre.layout),
            ("input shape", "[" + ", ".join(str(d) for d in pre.input_shape) + "]"),
            ("input type", pre.input_dtype),
            ("pixel scale", format_scale(pre.scale)),
            ("mean", format_floats(pre.mean)),
            ("std", format_floats(pre.std)),
            ("taken from", pre.source),
            ("fixed batch size", str(pre.fixed_batch) if pre.fixed_batch is not None else "none (dynamic)"),
        ),
    )
    return [
        _Section("Dataset", (dataset_table, files) if dataset.files else (dataset_table,)),
        _Section("Device and runtime", (_Table(("", ""), tuple(provider_rows)),)),
        _Section("Preprocessing", (pre_table,)),
    ]


def _models_section(report: EvaluationReport) -> _Section:
    models = report.models
    fields: list[tuple[str, Sequence[str]]] = [
        ("file", [_Code(m.path) for m in models]),
        ("sha256", [_Code(m.sha256) for m in models]),
        ("precision", [m.precision for m in models]),
        ("size", [f"{format_bytes(m.size_bytes)} ({m.size_bytes:,} bytes)" for m in models]),
        ("accuracy", [format_percent(m.accuracy) for m in models]),
        ("correct", [f"{m.correct:,}/{m.total:,}" for m in models]),
        ("non-finite outputs", [f"{m.nonfinite_outputs:,}" for m in models]),
    ]
    rows = tuple((label, *cells) for label, cells in fields)
    blocks: list[_Block] = [_Table(("", *(m.role for m in models)), rows)]
    if report.baseline_source:
        blocks.append(f"Baseline taken from {report.baseline_source}.")
    return _Section("Models", tuple(blocks))


def _comparison_section(report: EvaluationReport) -> _Section | None:
    comparison = report.comparison
    if comparison is None:
        return None
    rows: list[tuple[str, str]] = [
        ("accuracy change (fp16 - fp32)", format_pp(comparison.accuracy_delta_pp)),
        ("prediction agreement", format_percent(comparison.agreement)),
        ("predictions that differ", f"{comparison.disagreements:,}"),
        ("max |logit difference|", f"{comparison.max_abs_logit_diff:.3g}"),
        ("mean |logit difference|", f"{comparison.mean_abs_logit_diff:.3g}"),
        ("size ratio (fp16 / fp32)", format_ratio(comparison.size_ratio)),
    ]
    rows += [(f"p50 latency ratio, batch {b}", format_speed(r)) for b, r in comparison.latency_ratio]
    return _Section("Comparison", (_Table(("", ""), tuple(rows)),))


def _latency_section(report: EvaluationReport) -> _Section:
    rows = tuple(
        (
            m.role,
            str(p.batch_size),
            f"{p.iters:,}",
            format_ms(p.p50_ms),
            format_ms(p.p90_ms),
            format_ms(p.p99_ms),
            format_ms(p.mean_ms),
            f"{p.throughput:,.0f}",
        )
        for m in report.models
        for p in sorted(m.latency, key=lambda p: p.batch_size)
    )
    if not rows:
        return _Section("Latency", ("No latency was measured.",))
    header = ("model", "batch", "runs", "p50 ms", "p90 ms", "p99 ms", "mean ms", "images/s")
    blocks: list[_Block] = [_Table(header, rows, numeric=tuple(range(1, 8)))]
    blocks += [f"{m.role}: {m.latency_note}" for m in report.models if m.latency_note]
    return _Section("Latency", tuple(blocks), plot="latency")


def _per_class_section(report: EvaluationReport) -> _Section:
    names = report_class_names(report)
    models = report.models
    baseline = report.comparison is not None and len(models) == 2

    def cell(model: ModelEvaluation, index: int) -> str:
        return format_percent(model.per_class_accuracy[index]) if index < len(model.per_class_accuracy) else "-"

    rows = []
    for index, name in enumerate(names):
        row = [name, *(cell(m, index) for m in models)]
        if baseline and all(index < len(m.per_class_accuracy) for m in models):
            row.append(format_pp((models[1].per_class_accuracy[index] - models[0].per_class_accuracy[index]) * 100))
        elif baseline:
            row.append("-")
        rows.append(tuple(row))
    header = ("class", *(m.role for m in models), *(("change",) if baseline else ()))
    blocks: tuple[_Block, ...] = (
        (_Table(header, tuple(rows), numeric=tuple(range(1, len(header)))),) if rows else ("No per-class accuracy.",)
    )
    return _Section("Accuracy per class", blocks, plot="accuracy")


def _logit_section(report: EvaluationReport) -> _Section:
    comparison = report.comparison
    if comparison is None:
        return _Section(
            "Logit differences",
            ("No baseline model was evaluated, so there are no fp16 - fp32 logit differences to show.",),
        )
    text = (
        f"|fp16 - fp32| over every output element: max {comparison.max_abs_logit_diff:.3g}, "
        f"mean {comparison.mean_abs_logit_diff:.3g}."
    )
    return _Section("Logit differences", (text,), plot="logit_diff")


def _conversion_section(report: EvaluationReport) -> _Section | None:
    converted = [m for m in report.models if m.conversion is not None]
    if not converted:
        return None
    blocks: list[_Block] = []
    for model in converted:
        facts = model.conversion
        assert facts is not None
        rows = (
            ("model", _Code(model.path)),
            ("converted from", _Code(facts.source_model) if facts.source_model else "-"),
            ("target", facts.target),
            ("nodes", f"{facts.nodes_total:,}"),
            ("nodes kept float32", f"{facts.nodes_kept_fp32:,}"),
            ("casts inserted", f"{facts.casts_inserted:,}"),
            ("op types kept float32", _Code(", ".join(facts.kept_ops)) if facts.kept_ops else "none"),
        )
        blocks.append(_Table(("", ""), rows))
    return _Section("Conversion", tuple(blocks))


def _sections(report: EvaluationReport) -> list[_Section]:
    sections = [_Section("Summary", (_summary(report), _key_figures(report)))]
    sections += _setup_sections(report)
    sections.append(_models_section(report))
    sections += [s for s in (_comparison_section(report),) if s is not None]
    sections += [_per_class_section(report), _latency_section(report), _logit_section(report)]
    sections += [s for s in (_conversion_section(report),) if s is not None]
    if report.notes:
        sections.append(_Section("Notes", (_Bullets(tuple(report.notes)),)))
    versions = tuple((name, version) for name, version in sorted(report.tool_versions.items()))
    sections.append(_Section("Tool versions", (_Table(("tool", "version"), versions),)))
    return sections


# -- Markdown -----------------------------------------------------------------------------------


def _md_text(text: str) -> str:
    if isinstance(text, _Code):
        fence = "``" if "`" in text else "`"
        return f"{fence}{text}{fence}" if text else ""
    out = text.replace("\\", "\\\\")
    for char in "*_`|<>#":
        out = out.replace(char, "\\" + char)
    return out.replace("\n", " ")


def _md_table(table: _Table) -> str:
    def cell(text: str) -> str:
        # A pipe ends a cell even inside a code span, so it is escaped there too.
        return _md_text(text).replace("|", "\\|") if isinstance(text, _Code) else _md_text(text)

    def line(cells: Iterable[str]) -> str:
        return "| " + " | ".join(cell(c) for c in cells) + " |"

    align = ["---:" if i in table.numeric else "---" for i in range(len(table.header))]
    return "\n".join([line(table.header), "| " + " | ".join(align) + " |", *(line(r) for r in table.rows)])


def render_markdown(report: EvaluationReport) -> str:
    """The report as GitHub-flavoured Markdown (no plots; those are in the HTML page)."""
    parts = [f"# {_md_text(_title(report))}", f"Created {_md_text(report.created)}."]
    parts += [f"> **Warning:** {_md_text(w)}" for w in _warnings(report)]
    for section in _sections(report):
        parts.append(f"## {_md_text(section.title)}")
        for block in section.blocks:
            if isinstance(block, _Table):
                parts.append(_md_table(block))
            elif isinstance(block, _Bullets):
                parts.append("\n".join(f"- {_md_text(item)}" for item in block.items))
            else:
                parts.append(_md_text(block))
    return "\n\n".join(parts) + "\n"


# -- console ------------------------------------------------------------------------------------


def format_console(report: EvaluationReport) -> str:
    """A compact comparison for the terminal: a header, any warnings, the key figures."""
    dataset, provider = report.dataset, report.provider
    lines = [
        f"evaluated {dataset.name} {dataset.split}: {dataset.num_images:,} of {dataset.num_available:,} images",
        f"  provider  {provider.actual} (requested {provider.requested}), onnxruntime {provider.ort_version}"
        + (f", {provider.device_name}" if provider.device_name else ""),
    ]
    lines += [f"  WARNING   {w}" for w in _warnings(report)]
    table = _key_figures(report)
    rows = [table.header, *table.rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(table.header))]
    lines.append("")
    for row in rows:
        cells = [cell.rjust(widths[i]) if i in table.numeric else cell.ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append(("  " + "  ".join(cells)).rstrip())
    return "\n".join(lines)


# -- HTML ---------------------------------------------------------------------------------------

_CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d1d1f;
       max-width: 1100px; margin: 2em auto; padding: 0 1.5em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.created { color: #666; margin-top: 0; }
.warning { background: #fdecea; border: 2px solid #b2302a; border-radius: 6px; padding: 0.8em 1em;
           margin: 1em 0; color: #6d1a15; font-size: 1.05em; }
table { border-collapse: collapse; margin: 0.8em 0; }
th, td { border: 1px solid #d6d6d6; padding: 0.3em 0.7em; text-align: left; vertical-align: top; }
th { background: #f3f4f6; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font: 0.85em ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; overflow-wrap: anywhere; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; margin-top: 0.3em; }
"""


def _html_text(text: str) -> str:
    escaped = html.escape(text)
    return f"<code>{escaped}</code>" if isinstance(text, _Code) else escaped


def _html_table(table: _Table) -> str:
    def cells(tag: str, row: Sequence[str]) -> str:
        return "".join(
            f'<{tag} class="num">{_html_text(c)}</{tag}>' if i in table.numeric else f"<{tag}>{_html_text(c)}</{tag}>"
            for i, c in enumerate(row)
        )

    head = f"<thead><tr>{cells('th', table.header)}</tr></thead>" if any(table.header) else ""
    body = "".join(f"<tr>{cells('td', row)}</tr>" for row in table.rows)
    return f"<table>{head}<tbody>{body}</tbody></table>"


def _html_figure(plot: _report_plots.Plot) -> str:
    data = base64.b64encode(plot.png).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(plot.alt)}" '
        f'width="{plot.width}" height="{plot.height}">'
        f"<figcaption>{html.escape(plot.caption)}</figcaption></figure>"
    )


def render_html(report: EvaluationReport) -> str:
    """One self-contained page: no scripts, no external resources, plots as base64 PNGs."""
    plots = _report_plots.render_plots(report)
    title = html.escape(_title(report))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{title}</title><style>{_CSS}</style></head><body>",
        f"<h1>{title}</h1>",
        f'<p class="created">Created {html.escape(report.created)}</p>',
    ]
    parts += [
        f'<div class="warning" role="alert"><strong>Warning:</strong> {html.escape(warning)}</div>'
        for warning in _warnings(report)
    ]
    for section in _sections(report):
        parts.append(f"<section><h2>{html.escape(section.title)}</h2>")
        if section.plot in plots:
            parts.append(_html_figure(plots[section.plot]))
        for block in section.blocks:
            if isinstance(block, _Table):
                parts.append(_html_table(block))
            elif isinstance(block, _Bullets):
                parts.append("<ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in block.items) + "</ul>")
            else:
                parts.append(f"<p>{_html_text(block)}</p>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# -- files --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ReportPaths:
    directory: Path
    markdown: Path
    json: Path
    html: Path


def _finite(value: Any) -> Any:
    """JSON has no inf or NaN; such values (a diverged logit difference) are written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def report_json_text(report: EvaluationReport) -> str:
    """report.json's text: strict JSON, with non-finite numbers written as null."""
    return json.dumps(_finite(report.to_json_dict()), indent=2, allow_nan=False, ensure_ascii=False) + "\n"


def write_report(report: EvaluationReport, directory: Path) -> ReportPaths:
    """Write report.md, report.json and report.html into ``directory``, all or nothing.

    Everything is rendered before the first byte is written. The files are written into a
    hidden staging folder inside ``directory`` (so the renames stay on one file system) and
    then moved into place with ``os.replace``: a reader never sees a half-written file, and
    an error while creating folders or writing leaves no staging folder and no folder this
    call created. Only a failing rename inside one folder, after all writes succeeded,
    could leave old and new files side by side.
    """
    directory = Path(directory)
    contents = {
        "report.md": render_markdown(report),
        "report.json": report_json_text(report),
        "report.html": render_html(report),
    }
    if directory.exists() and not directory.is_dir():
        raise OutputError(f"cannot write the report to {directory}: it is a file", "choose a folder")
    created = [p for p in (directory, *directory.parents) if not p.exists()]
    staging: Path | None = None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".report-staging-", dir=directory))
        for name, text in contents.items():
            (staging / name).write_text(text, encoding="utf-8")
        for name in contents:
            os.replace(staging / name, directory / name)
        staging.rmdir()
    except OSError as error:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        for folder in created:  # deepest first
            try:
                folder.rmdir()
            except OSError:
                break
        reason = error.strerror or type(error).__name__
        raise OutputError(
            f"cannot write the report to {directory}: {reason}", "choose another report directory"
        ) from None
    return ReportPaths(directory, directory / "report.md", directory / "report.json", directory / "report.html")


def load_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) that every report.json satisfies."""
    text = importlib.resources.files("converter").joinpath("report_schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
