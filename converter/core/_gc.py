"""Python's cycle collector, paused while a model's graph is built, edited and written.

An in-memory graph is about ten Python objects per node (node, values, usage lists,
attributes) that live until the conversion ends. Every few thousand allocations the
collector walks all the objects it tracks, so on a graph of 16,000 nodes its passes take
about a tenth of a conversion and free nothing. Reference counting still frees every
object that is not part of a cycle; the cycles left are collected once the collector is
resumed.
"""

from __future__ import annotations

__all__ = ["paused_gc"]

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cycle collector for the block; it is resumed as it was, also on errors."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
