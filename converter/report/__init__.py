"""The evaluation report: Markdown, a self-contained HTML page, the console table and JSON.

Everything is rendered from an :class:`~halfconv.evaluation.EvaluationReport` alone.
"""

from __future__ import annotations

__all__ = [
    "ReportPaths",
    "default_report_dir",
    "format_bytes",
    "format_console",
    "format_pp",
    "load_schema",
    "render_html",
    "render_markdown",
    "report_json_text",
    "write_report",
]

from ._console import format_console
from ._files import ReportPaths, default_report_dir, load_schema, report_json_text, write_report
from ._format import format_bytes, format_pp
from ._html import render_html
from ._markdown import render_markdown
