"""Lazy public names for a package whose implementation imports heavy libraries.

A package lists its public names in ``__all__`` and imports the light ones eagerly; the
rest are looked up, on first access, in the private modules it names here. ``halfconv
--help`` then builds its parser from the packages' constants without importing
onnxruntime, onnx-ir or matplotlib.
"""

from __future__ import annotations

__all__ = ["lazy_exports"]

import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any


def lazy_exports(package: str, modules: Sequence[str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: a name of its ``__all__`` comes from the first of ``modules`` that exports it."""

    def __getattr__(name: str) -> Any:
        namespace = sys.modules[package]
        if name in getattr(namespace, "__all__", ()):
            for module_name in modules:
                module = importlib.import_module(module_name, package)
                if name in getattr(module, "__all__", ()):
                    value = getattr(module, name)
                    setattr(namespace, name, value)  # later look-ups skip this function
                    return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        namespace = sys.modules[package]
        return sorted({*vars(namespace), *getattr(namespace, "__all__", ())})

    return __getattr__, __dir__
