"""The package's design, checked by reading its imports.

- A subpackage imports only the subpackages below it in ``LAYERS``, and from another
  subpackage only its public ``__init__`` (``halfconv.evaluation``, never
  ``halfconv.evaluation._preprocess``).
- ``core``, the shared kernel, imports no other subpackage.
- Only the export back ends import a training framework.
- Every module is small enough to read, and says what it exports.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "converter"
PACKAGE = "halfconv"
# What each subpackage may import besides itself; the order is the layering.
LAYERS: dict[str, frozenset[str]] = {
    "core": frozenset(),
    "numerics": frozenset({"core"}),
    "conversion": frozenset({"core", "numerics"}),
    "datasets": frozenset({"core"}),
    "evaluation": frozenset({"core", "datasets", "numerics"}),
    "calibration": frozenset({"core", "conversion", "datasets", "evaluation", "numerics"}),
    "report": frozenset({"core", "datasets", "evaluation", "numerics"}),
    "exporters": frozenset({"core", "datasets", "evaluation"}),
}
# The top: run composes the steps, the CLI is a thin layer over the public surface.
TOP = {"_run", "cli", "__init__", "__main__"}
FRAMEWORKS = {"torch", "tensorflow", "keras", "tf2onnx", "onnxscript", "absl"}
# The Keras and TensorFlow back end, and the PyTorch one.
FRAMEWORK_MODULES = ("exporters._keras", "exporters._saved_model", "exporters._tensorflow", "exporters._tf_ops", "exporters._torch")


def _modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(SOURCE.rglob("*.py")):
        parts = list(path.relative_to(SOURCE).with_suffix("").parts)
        found.append((".".join(parts), path))
    return found


def _imports(dotted: str, path: Path) -> list[tuple[str, int]]:
    """Absolute names of the halfconv modules (and other top-level modules) that ``path`` imports."""
    is_package = path.name == "__init__.py"
    package_parts = [PACKAGE, *dotted.split(".")][: None if is_package else -1]
    if is_package:
        package_parts = package_parts[:-1]  # "x.__init__" is the package x
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module == PACKAGE or (node.level and not node.module):
                # "from .. import core": each name may itself be a subpackage.
                names += [(f"{module}.{alias.name}", node.lineno) for alias in node.names]
            else:
                names.append((module, node.lineno))
    return names


def _subpackage(dotted: str) -> str:
    return dotted.split(".")[0]


def test_every_module_is_accounted_for() -> None:
    unknown = {_subpackage(d) for d, _ in _modules()} - set(LAYERS) - TOP
    assert unknown == set(), "add new subpackages to LAYERS"


@pytest.mark.parametrize(("dotted", "path"), _modules(), ids=[d for d, _ in _modules()])
def test_imports_follow_the_layers(dotted: str, path: Path) -> None:
    own = _subpackage(dotted)
    problems = []
    for name, line in _imports(dotted, path):
        parts = name.split(".")
        root = parts[0]
        if root in FRAMEWORKS and not dotted.startswith(FRAMEWORK_MODULES):
            problems.append(f"line {line}: imports {name}; only {', '.join(FRAMEWORK_MODULES)} may")
        if root != PACKAGE or len(parts) == 1:
            continue
        target = parts[1]
        if own in TOP:
            if target in LAYERS and len(parts) > 2:
                problems.append(f"line {line}: imports {name}; import the public halfconv.{target} instead")
            continue
        if target == own:
            continue
        if target not in LAYERS[own]:
            problems.append(f"line {line}: {own} may not import {target} (allowed: {sorted(LAYERS[own]) or 'nothing'})")
        elif len(parts) > 2:
            problems.append(f"line {line}: imports {name}; import the public halfconv.{target} instead")
    assert problems == []


@pytest.mark.parametrize(("dotted", "path"), _modules(), ids=[d for d, _ in _modules()])
def test_modules_are_small_and_declare_their_exports(dotted: str, path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    too_big = [f"module: {len(text.splitlines())} lines"] if len(text.splitlines()) > 400 else []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60:
            too_big.append(f"function {node.name}: {node.end_lineno - node.lineno + 1} lines")
        if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno >= 200:
            too_big.append(f"class {node.name}: {node.end_lineno - node.lineno + 1} lines")
    assert too_big == []
    if path.name != "__main__.py":
        declared = [n for n in tree.body if isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in n.targets)]
        assert declared, "every module says what is public with __all__"


def test_no_assert_guards_runtime_invariants() -> None:
    # assert vanishes under python -O; the package raises instead.
    found = [
        f"{dotted}:{node.lineno}"
        for dotted, path in _modules()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Assert)
    ]
    assert found == []


def test_every_subpackage_is_packaged() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    listed = set(tomllib.loads((SOURCE.parent / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"])
    folders = {f"{PACKAGE}.{p.parent.name}" for p in SOURCE.glob("*/__init__.py")} | {PACKAGE}
    assert listed == folders
