"""The report's content, built once as plain sections and tables from the evaluation alone.

Markdown, HTML and the console render these same blocks, so the files always say the
same thing.
"""

from __future__ import annotations

__all__ = ["Bullets", "Code", "Section", "Table", "key_figures", "report_warnings", "sections", "title"]

from collections.abc import Iterable, Sequence
from pathlib import Path

from ..evaluation import MIXED_TRAINING_MARK, Comparison, EvaluationReport, ModelEvaluation
from ..numerics import NOT_ROUNDED
from ._blocks import Block, Bullets, Code, Section, Table
from ._format import (
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
from ._precision import precision_section

# -- warnings -----------------------------------------------------------------------------------


def _fell_back(report: EvaluationReport) -> bool:
    provider = report.provider
    return provider.fallback_reason is not None or (provider.requested != "cpu" and provider.actual == CPU_PROVIDER)


def report_warnings(report: EvaluationReport) -> list[str]:
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
        if NOT_ROUNDED in model.numerics:
            found.append(
                f"{model.role} ran with --numerics native on {provider.actual}, which never rounds fp16 activations: "
                "its accuracy is not what fp16 computes (overflow and rounding between ops are invisible)."
            )
    return found


# -- content, shared by Markdown and HTML -------------------------------------------------------


def _converted_role(report: EvaluationReport) -> str:
    converted = report.converted
    return converted.role if converted is not None else "model"


def title(report: EvaluationReport) -> str:
    names = " vs ".join(Path(m.path).name for m in reversed(report.models))
    return f"halfconv evaluation: {names} on {report.dataset.name} {report.dataset.split}"


def _summary(report: EvaluationReport) -> str:
    fp32, fp16, comparison = report.baseline, report.converted, report.comparison
    provider = report.provider.actual
    images = f"{report.dataset.num_images:,} {report.dataset.name} {report.dataset.split} images"
    if fp32 is not None and fp16 is not None and comparison is not None:
        text = (
            f"The {fp16.role} model reaches {format_percent(fp16.accuracy)} top-1 accuracy against "
            f"{format_percent(fp32.accuracy)} for fp32 ({format_pp(comparison.accuracy_delta_pp)}); "
            f"the two agree on {format_percent(comparison.agreement)} of {images}. "
            f"{_paired_text(comparison)} "
            f"It is {format_ratio(comparison.size_ratio)} the size "
            f"({format_bytes(fp16.size_bytes)} vs {format_bytes(fp32.size_bytes)})."
        )
        if fp16.numerics:
            text += f" Its accuracy figures: {fp16.numerics}."
        text += "".join(f" {note}" for note in report.notes if MIXED_TRAINING_MARK in note)
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


def _paired_text(comparison: Comparison) -> str:
    low, high = comparison.delta_ci95_pp
    return (
        f"{comparison.flips_to_wrong:,} image(s) went from right to wrong and {comparison.flips_to_right:,} from wrong "
        f"to right (exact McNemar p = {comparison.mcnemar_p:.3g}); the 95% interval of the change is "
        f"{low:+.2f} to {high:+.2f} pp."
    )


def key_figures(report: EvaluationReport) -> Table:
    """The comparison at a glance; the console prints the same table."""
    models, comparison = report.models, report.comparison
    change = comparison is not None
    header = ("", *(m.role for m in models), *((f"{_converted_role(report)} vs fp32",) if change else ()))

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
        *_paired_rows(comparison, len(models)),
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
    return Table(header, tuple(rows), numeric=tuple(range(1, len(models) + 1)))


def _paired_rows(comparison: Comparison | None, count: int) -> list[tuple[str, ...]]:
    if comparison is None:
        return []
    low, high = comparison.delta_ci95_pp
    blank = ("",) * count
    return [
        ("flips", *blank, f"{comparison.flips_to_wrong:,} right to wrong, {comparison.flips_to_right:,} wrong to right"),
        ("95% interval", *blank, f"{low:+.2f} to {high:+.2f} pp, McNemar p {comparison.mcnemar_p:.3g}"),
    ]


def _setup_sections(report: EvaluationReport) -> list[Section]:
    dataset, provider, pre = report.dataset, report.provider, report.preprocessing
    dataset_table = Table(
        ("", ""),
        (
            ("dataset", dataset.name),
            ("split", dataset.split),
            ("images evaluated", f"{dataset.num_images:,} of {dataset.num_available:,}"),
            ("classes", format_class_list(dataset.class_names)),
        ),
    )
    files = Table(
        ("file", "sha256", "size"),
        tuple((Code(f.path), Code(f.sha256), format_bytes(f.size_bytes)) for f in dataset.files),
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
        ("GPU driver", provider.device_driver or "-"),
        ("CPU", f"{provider.cpu_model} ({provider.cpu_count} logical cores)"),
        (
            "threads",
            f"intra-op {format_threads(provider.intra_op_threads)}, "
            f"inter-op {format_threads(provider.inter_op_threads)}",
        ),
        ("IO binding", format_yes_no(provider.io_binding)),
        ("host/device copies timed", format_yes_no(provider.copies_timed)),
        ("cuDNN convolution algorithm search", provider.cudnn_conv_algo_search or "-"),
        ("CPU fallback of nodes", "refused (--strict-provider)" if provider.strict_provider else "allowed"),
    ]
    pre_table = Table(
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
        Section("Dataset", (dataset_table, files) if dataset.files else (dataset_table,)),
        Section("Device and runtime", (Table(("", ""), tuple(provider_rows)),)),
        Section("Preprocessing", (pre_table,)),
    ]


def _models_section(report: EvaluationReport) -> Section:
    models = report.models
    fields: list[tuple[str, Sequence[str]]] = [
        ("file", [Code(m.path) for m in models]),
        ("sha256", [Code(m.sha256) for m in models]),
        ("precision", [m.precision for m in models]),
        ("numerics", [m.numerics or "-" for m in models]),
        ("size", [f"{format_bytes(m.size_bytes)} ({m.size_bytes:,} bytes)" for m in models]),
        ("accuracy", [format_percent(m.accuracy) for m in models]),
        ("correct", [f"{m.correct:,}/{m.total:,}" for m in models]),
        ("non-finite outputs", [f"{m.nonfinite_outputs:,}" for m in models]),
    ]
    rows = tuple((label, *cells) for label, cells in fields)
    blocks: list[Block] = [Table(("", *(m.role for m in models)), rows)]
    if report.baseline_source:
        blocks.append(f"Baseline taken from {report.baseline_source}.")
    return Section("Models", tuple(blocks))


def _comparison_section(report: EvaluationReport) -> Section | None:
    comparison = report.comparison
    if comparison is None:
        return None
    role = _converted_role(report)
    rows: list[tuple[str, str]] = [
        (f"accuracy change ({role} - fp32)", format_pp(comparison.accuracy_delta_pp)),
        ("prediction agreement", format_percent(comparison.agreement)),
        ("predictions that differ", f"{comparison.disagreements:,}"),
        ("max |logit difference|", f"{comparison.max_abs_logit_diff:.3g}"),
        ("mean |logit difference|", f"{comparison.mean_abs_logit_diff:.3g}"),
        (f"size ratio ({role} / fp32)", format_ratio(comparison.size_ratio)),
        (f"fp32 right, {role} wrong", f"{comparison.flips_to_wrong:,}"),
        (f"fp32 wrong, {role} right", f"{comparison.flips_to_right:,}"),
        ("exact McNemar p (two-sided)", f"{comparison.mcnemar_p:.3g}"),
        ("95% interval of the change (Agresti-Min)", f"{comparison.delta_ci95_pp[0]:+.2f} to {comparison.delta_ci95_pp[1]:+.2f} pp"),
    ]
    rows += [(f"p50 latency ratio, batch {b}", format_speed(r)) for b, r in comparison.latency_ratio]
    if comparison.latency_ratio:
        crossover = comparison.crossover_batch
        rows.append(
            (f"smallest batch timed where {role} is faster", f"{crossover:,}" if crossover is not None else "none of those timed")
        )
    return Section("Comparison", (Table(("", ""), tuple(rows)),))


def _latency_section(report: EvaluationReport) -> Section:
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
        return Section("Latency", ("No latency was measured.",))
    header = ("model", "batch", "runs", "p50 ms", "p90 ms", "p99 ms", "mean ms", "images/s")
    blocks: list[Block] = [Table(header, rows, numeric=tuple(range(1, 8)))]
    blocks += [f"{m.role}: {m.latency_note}" for m in report.models if m.latency_note]
    return Section("Latency", tuple(blocks), plot="latency")


_FALLBACKS_LISTED = 20


def _placement_section(report: EvaluationReport) -> Section | None:
    placed = [(m.role, m.placement) for m in report.models if m.placement is not None]
    if not placed:
        return None
    rows = tuple(
        (role, f"{p.total:,}", ", ".join(f"{provider} {count:,}" for provider, count in p.counts), f"{len(p.fallbacks):,}")
        for role, p in placed
    )
    blocks: list[Block] = [Table(("model", "nodes run", "by provider", "fallbacks"), rows, numeric=(1, 3))]
    for role, placement in placed:
        if placement.fallbacks:
            items = tuple(
                f"{n.name} ({n.op_type}, {'/'.join(n.output_types) or 'no output type'}) on {n.provider}"
                for n in placement.fallbacks[:_FALLBACKS_LISTED]
            )
            more = len(placement.fallbacks) - len(items)
            blocks.append(f"{role}: nodes ONNX Runtime ran on another provider (each costs copies on every run):")
            blocks.append(Bullets(items + ((f"and {more:,} more",) if more > 0 else ())))
    blocks.append(
        f"Recorded by {placed[-1][1].source}. The nodes are those ONNX Runtime ran, after its graph optimizations fused some."
    )
    return Section("Node placement", tuple(blocks))


def _per_class_section(report: EvaluationReport) -> Section:
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
    blocks: tuple[Block, ...] = (
        (Table(header, tuple(rows), numeric=tuple(range(1, len(header)))),) if rows else ("No per-class accuracy.",)
    )
    return Section("Accuracy per class", blocks, plot="accuracy")


def _logit_section(report: EvaluationReport) -> Section:
    comparison = report.comparison
    if comparison is None:
        return Section(
            "Logit differences",
            ("No baseline model was evaluated, so there are no logit differences to show.",),
        )
    text = (
        f"|{_converted_role(report)} - fp32| over every output element: max {comparison.max_abs_logit_diff:.3g}, "
        f"mean {comparison.mean_abs_logit_diff:.3g}."
    )
    return Section("Logit differences", (text,), plot="logit_diff")


def sections(report: EvaluationReport) -> list[Section]:
    sections = [Section("Summary", (_summary(report), key_figures(report)))]
    sections += _setup_sections(report)
    sections.append(_models_section(report))
    sections += [s for s in (_comparison_section(report),) if s is not None]
    sections += [s for s in (_placement_section(report),) if s is not None]
    sections += [_per_class_section(report), _latency_section(report), _logit_section(report)]
    sections += [s for s in (precision_section(report),) if s is not None]
    if report.notes:
        sections.append(Section("Notes", (Bullets(tuple(report.notes)),)))
    versions = tuple((name, version) for name, version in sorted(report.tool_versions.items()))
    sections.append(Section("Tool versions", (Table(("tool", "version"), versions),)))
    return sections


