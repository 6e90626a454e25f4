"""The ``halfconv`` command line: each command parses its options, calls one library function and prints the result."""

from __future__ import annotations

__all__ = ["build_parser", "main"]

from ._main import build_parser, main
