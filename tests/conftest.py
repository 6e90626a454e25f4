"""pytest configuration: the shared fixtures, and ``tests/`` importable for ``helpers`` and ``environment``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from environment import require_datasets  # noqa: E402


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The canonical datasets; skipped without them, and a failure in CI."""
    return require_datasets()
