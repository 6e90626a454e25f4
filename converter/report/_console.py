"""The report's key figures for the terminal."""

from __future__ import annotations

__all__ = ["format_console"]

from ..evaluation import EvaluationReport
from ._content import key_figures, report_warnings

# -- console ------------------------------------------------------------------------------------


def format_console(report: EvaluationReport) -> str:
    """A compact comparison for the terminal: a header, any warnings, the key figures."""
    dataset, provider = report.dataset, report.provider
    lines = [
        f"evaluated {dataset.name} {dataset.split}: {dataset.num_images:,} of {dataset.num_available:,} images",
        f"  provider  {provider.actual} (requested {provider.requested}), onnxruntime {provider.ort_version}"
        + (f", {provider.device_name}" if provider.device_name else ""),
    ]
    numbers = report.models[-1].numerics
    if numbers:
        lines.append(f"  numerics  {numbers}")
    placement = report.models[-1].placement
    if placement is not None and placement.fallbacks:
        names = ", ".join(f"{n.name or '?'} ({n.op_type})" for n in placement.fallbacks[:5])
        more = f" and {len(placement.fallbacks) - 5:,} more" if len(placement.fallbacks) > 5 else ""
        lines.append(
            f"  placement {len(placement.fallbacks):,} of {placement.total:,} nodes ran on another provider "
            f"than {provider.actual}: {names}{more} (each costs copies on every run; --strict-provider refuses them)"
        )
    lines += [f"  WARNING   {w}" for w in report_warnings(report)]
    table = key_figures(report)
    rows = [table.header, *table.rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(table.header))]
    lines.append("")
    for row in rows:
        cells = [cell.rjust(widths[i]) if i in table.numeric else cell.ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append(("  " + "  ".join(cells)).rstrip())
    return "\n".join(lines)


