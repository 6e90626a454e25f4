"""``--torch-factory``: the user's function that builds the model a state_dict belongs to.

``pkg.module:function`` imports a module; ``path/to/file.py:function`` runs a file, with
its folder on ``sys.path`` only while it runs.
"""

from __future__ import annotations

__all__ = ["build_model"]

import contextlib
import importlib
import importlib.util
import re
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import torch  # an ImportError here becomes MissingDependencyError in _pipeline._load

from ..core import ExportError, UsageError, one_line


def build_model(factory: str) -> torch.nn.Module:
    """Call the factory ``MODULE:FUNCTION``; raises UsageError or ExportError in one line."""
    target, _, name = factory.rpartition(":")
    if not target or not name.isidentifier():
        raise UsageError(f"--torch-factory '{factory}' is not MODULE:FUNCTION", "write it as pkg.module:function or file.py:function")
    function = _factory_function(target, name)
    try:
        with _on_sys_path(_factory_folder(target)):
            model = function()
    except Exception as error:  # the factory's own error, in one line
        raise ExportError(f"--torch-factory {factory}: {name}() failed: {one_line(error)}", "the factory must build the model with no arguments") from None
    if not isinstance(model, torch.nn.Module):
        raise ExportError(f"--torch-factory {factory} returned a {type(model).__name__}, not an nn.Module", "return the model from the function")
    return model


def _factory_folder(target: str) -> str | None:
    is_file = target.endswith(".py") or "/" in target or "\\" in target
    return str(Path(target).resolve().parent) if is_file else None


def _factory_function(target: str, name: str) -> Callable[[], object]:
    folder = _factory_folder(target)
    module = _import_module(target) if folder is None else _run_file(Path(target), folder)
    function = getattr(module, name, None)
    if not callable(function):
        raise ExportError(f"--torch-factory: {target} has no function '{name}'", "check the name after the ':'")
    return function  # type: ignore[no-any-return]  # callable() does not narrow Any


def _import_module(target: str) -> ModuleType:
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as error:
        raise ExportError(
            f"--torch-factory: cannot import module '{target}' ({error})",
            "make it importable (check PYTHONPATH and the current folder) or pass path/to/file.py:function",
        ) from None
    except Exception as error:  # the module's own import-time error
        raise ExportError(f"--torch-factory: importing '{target}' failed: {one_line(error)}", "fix the module") from None


def _run_file(file: Path, folder: str) -> ModuleType:
    if not file.is_file():
        raise ExportError(f"--torch-factory: {file} does not exist", "check the path before the ':'")
    # A unique name, registered in sys.modules so that dataclasses and pickling of the
    # module's classes work; the file's folder is importable while it runs.
    stem = re.sub(r"\W", "_", file.stem)
    module_name = f"_halfconv_factory_{stem}_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise ExportError(f"--torch-factory: {file} cannot be imported as a Python file", "pass a .py file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        with _on_sys_path(folder):
            spec.loader.exec_module(module)
    except Exception as error:  # the file's own error, in one line
        del sys.modules[module_name]
        raise ExportError(f"--torch-factory: running {file} failed: {one_line(error)}", "fix the file") from None
    return module


@contextlib.contextmanager
def _on_sys_path(folder: str | None) -> Iterator[None]:
    if folder is None or folder in sys.path:
        yield
        return
    sys.path.insert(0, folder)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(folder)
