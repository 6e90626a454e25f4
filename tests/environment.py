"""Where the tests find the datasets and the optional extras, and what happens when they are missing.

On a developer's machine a missing extra or dataset skips the tests that need it. When CI
runs (``CI=true``) it fails them instead: a broken install must turn CI red, not into skips.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType

import pytest

# $HALFCONV_DATA_DIR (CI sets it), else the shared folder beside the checkout.
DATA_DIR = Path(os.environ.get("HALFCONV_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "datasets")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    """Skip on a developer's machine; fail in CI, where everything must be installed."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a missing extra or dataset fails the run)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def require_module(name: str) -> ModuleType:
    """``pytest.importorskip`` that fails in CI."""
    try:
        return importlib.import_module(name)
    except ImportError as error:
        unavailable(f"{name} is not importable ({error})")
        raise  # unreachable: unavailable() raises


def require_datasets() -> Path:
    """The folder with the canonical MNIST and CIFAR-10 files."""
    if not (DATA_DIR / "mnist").is_dir() or not (DATA_DIR / "cifar-10-batches-py").is_dir():
        unavailable(f"MNIST and CIFAR-10 are not in {DATA_DIR}; set HALFCONV_DATA_DIR (the tests never download)")
    return DATA_DIR
