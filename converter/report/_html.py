"""The report as one self-contained HTML page: no scripts, no external resources, plots as base64 PNGs."""

from __future__ import annotations

__all__ = ["render_html"]

import base64
import html
from collections.abc import Sequence

from ..evaluation import EvaluationReport
from . import _plots
from ._content import Bullets, Code, Table, report_warnings, sections, title

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
    return f"<code>{escaped}</code>" if isinstance(text, Code) else escaped


def _html_table(table: Table) -> str:
    def cells(tag: str, row: Sequence[str]) -> str:
        return "".join(
            f'<{tag} class="num">{_html_text(c)}</{tag}>' if i in table.numeric else f"<{tag}>{_html_text(c)}</{tag}>"
            for i, c in enumerate(row)
        )

    head = f"<thead><tr>{cells('th', table.header)}</tr></thead>" if any(table.header) else ""
    body = "".join(f"<tr>{cells('td', row)}</tr>" for row in table.rows)
    return f"<table>{head}<tbody>{body}</tbody></table>"


def _html_figure(plot: _plots.Plot) -> str:
    data = base64.b64encode(plot.png).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(plot.alt)}" '
        f'width="{plot.width}" height="{plot.height}">'
        f"<figcaption>{html.escape(plot.caption)}</figcaption></figure>"
    )


def render_html(report: EvaluationReport) -> str:
    """One self-contained page: no scripts, no external resources, plots as base64 PNGs."""
    plots = _plots.render_plots(report)
    heading = html.escape(title(report))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{heading}</title><style>{_CSS}</style></head><body>",
        f"<h1>{heading}</h1>",
        f'<p class="created">Created {html.escape(report.created)}</p>',
    ]
    parts += [
        f'<div class="warning" role="alert"><strong>Warning:</strong> {html.escape(warning)}</div>'
        for warning in report_warnings(report)
    ]
    for section in sections(report):
        parts.append(f"<section><h2>{html.escape(section.title)}</h2>")
        if section.plot in plots:
            parts.append(_html_figure(plots[section.plot]))
        for block in section.blocks:
            if isinstance(block, Table):
                parts.append(_html_table(block))
            elif isinstance(block, Bullets):
                parts.append("<ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in block.items) + "</ul>")
            else:
                parts.append(f"<p>{_html_text(block)}</p>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


