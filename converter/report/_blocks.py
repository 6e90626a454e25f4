"""The blocks a report is built from: Markdown, HTML and the console render the same ones."""

from __future__ import annotations

__all__ = ["Block", "Bullets", "Code", "Section", "Table"]

import dataclasses


class Code(str):
    """A table cell or item shown as code: paths, hashes, op types."""


@dataclasses.dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: tuple[int, ...] = ()  # columns aligned right


@dataclasses.dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


Block = str | Table | Bullets


@dataclasses.dataclass(frozen=True)
class Section:
    title: str
    blocks: tuple[Block, ...]
    plot: str | None = None  # the HTML page shows this plot at the top of the section
