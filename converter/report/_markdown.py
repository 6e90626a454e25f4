"""The report as GitHub-flavoured Markdown (no plots; those are in the HTML page)."""

from __future__ import annotations

__all__ = ["render_markdown"]

from collections.abc import Iterable

from ..evaluation import EvaluationReport
from ._content import Bullets, Code, Table, report_warnings, sections, title

# -- Markdown -----------------------------------------------------------------------------------


def _md_text(text: str) -> str:
    if isinstance(text, Code):
        fence = "``" if "`" in text else "`"
        return f"{fence}{text}{fence}" if text else ""
    out = text.replace("\\", "\\\\")
    for char in "*_`|<>#":
        out = out.replace(char, "\\" + char)
    return out.replace("\n", " ")


def _md_table(table: Table) -> str:
    def cell(text: str) -> str:
        # A pipe ends a cell even inside a code span, so it is escaped there too.
        return _md_text(text).replace("|", "\\|") if isinstance(text, Code) else _md_text(text)

    def line(cells: Iterable[str]) -> str:
        return "| " + " | ".join(cell(c) for c in cells) + " |"

    align = ["---:" if i in table.numeric else "---" for i in range(len(table.header))]
    return "\n".join([line(table.header), "| " + " | ".join(align) + " |", *(line(r) for r in table.rows)])


def render_markdown(report: EvaluationReport) -> str:
    """The report as GitHub-flavoured Markdown (no plots; those are in the HTML page)."""
    parts = [f"# {_md_text(title(report))}", f"Created {_md_text(report.created)}."]
    parts += [f"> **Warning:** {_md_text(w)}" for w in report_warnings(report)]
    for section in sections(report):
        parts.append(f"## {_md_text(section.title)}")
        for block in section.blocks:
            if isinstance(block, Table):
                parts.append(_md_table(block))
            elif isinstance(block, Bullets):
                parts.append("\n".join(f"- {_md_text(item)}" for item in block.items))
            else:
                parts.append(_md_text(block))
    return "\n\n".join(parts) + "\n"


