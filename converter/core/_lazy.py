"""Lazy public names for a package whose implementation imports heavy libraries.

A package's ``__init__`` lists which public name lives in which private module; the module
is imported on first access. ``halfconv --help`` then builds its parser from the packages'
constants without importing onnxruntime, onnx-ir or matplotlib.
"""

from __future__ import annotations

__all__ = ["lazy_exports"]

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``; ``exports`` maps a name to its relative module."""

    def __getattr__(name: str) -> Any:
        module_name = exports.get(name)
        if module_name is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module_name, package), name)
        setattr(sys.modules[package], name, value)  # later look-ups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *exports})

    return __getattr__, __dir__
