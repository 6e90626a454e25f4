"""Names derived from a model's path."""

from __future__ import annotations

__all__ = ["model_stem"]

from pathlib import Path

_MODEL_SUFFIXES = (".onnx", ".keras", ".h5", ".pt2", ".pt", ".pth")


def model_stem(path: Path) -> str:
    """The model's name without its model-format suffix: ``model.fp16.onnx`` -> ``model.fp16``."""
    for suffix in _MODEL_SUFFIXES:
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    return path.name
