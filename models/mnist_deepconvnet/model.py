"""DeepConvNet for MNIST: six 3x3 convolutions in three pairs, each pair max-pooled, then two dense layers.

conv 16 -> conv 16 -> maxpool -> conv 32 -> conv 32 -> maxpool -> conv 64 -> conv 64 ->
maxpool -> dense 50 -> dropout 0.5 -> dense 10, ReLU after every convolution and after the
first dense layer, He initialisation. The parameter shapes are (16,1,3,3), (16,16,3,3),
(32,16,3,3), (32,32,3,3), (64,32,3,3), (64,64,3,3), then (1024, 50) and (50, 10) as the
example writes its dense weights (PyTorch stores them transposed). Every convolution pads
by 1 except the third, which pads by 2, so the maps go 28 -> 14 -> 16 -> 8 -> 4 and the last
pool leaves 64 x 4 x 4 = 1024 features.

Input (N, 1, 28, 28) float32 pixels in [0, 1]; output (N, 10) logits. About 0.12 M parameters (123,552).
``make_model()`` is the factory that ``halfconv export --torch-factory`` calls.
"""

from __future__ import annotations

from torch import nn


def _conv(channels_in: int, channels_out: int, pad: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(channels_in, channels_out, 3, padding=pad), nn.ReLU()]


def make_model() -> nn.Module:
    model = nn.Sequential(
        *_conv(1, 16), *_conv(16, 16), nn.MaxPool2d(2),
        *_conv(16, 32, pad=2), *_conv(32, 32), nn.MaxPool2d(2),
        *_conv(32, 64), *_conv(64, 64), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(1024, 50), nn.ReLU(), nn.Dropout(0.5), nn.Linear(50, 10),
    )  # fmt: skip
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")  # He: std sqrt(2 / fan_in)
            nn.init.zeros_(module.bias)
    return model
