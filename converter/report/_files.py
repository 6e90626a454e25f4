"""Writing report.md, report.json and report.html, all or nothing, and the JSON Schema."""

from __future__ import annotations

__all__ = ["ReportPaths", "default_report_dir", "load_schema", "report_json_text", "write_report"]

import dataclasses
import importlib.resources
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..core import OutputError, model_stem
from ..evaluation import EvaluationReport
from ._html import render_html
from ._markdown import render_markdown

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
    text = importlib.resources.files(__package__ or "halfconv.report").joinpath("schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def default_report_dir(model_path: Path) -> Path:
    """Where a model's report goes unless the user names a folder: ``reports/<model stem>/``."""
    return Path("reports") / model_stem(model_path)
