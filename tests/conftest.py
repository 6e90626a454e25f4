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


@pytest.fixture
def cuda_missing(monkeypatch: pytest.MonkeyPatch) -> str:
    """No CUDA session can be created: ORT's own reason on this machine, or a stand-in where CUDA works.

    Tests of what halfconv does without CUDA then give the same result on every machine.
    """
    from halfconv import core
    from halfconv.core import _runtime

    reason = _runtime.cuda_unavailable_reason() or "libcublasLt.so.13: cannot open shared object file: No such file or directory"
    monkeypatch.setattr(_runtime, "cuda_unavailable_reason", lambda: reason)
    monkeypatch.setattr(core, "cuda_unavailable_reason", lambda: reason)
    return reason
