"""A two-layer MLP for MNIST: Flatten -> Linear(784, 256) -> ReLU -> Linear(256, 10).

Input (N, 1, 28, 28) float32 pixels in [0, 1]; output (N, 10) logits. About 0.2 M
parameters.

``make_model()`` is the factory that ``halfconv export --torch-factory`` calls.
"""

from __future__ import annotations

from torch import nn


def make_model() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
