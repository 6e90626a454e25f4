"""The AMP-trained MLP's fp16 model against the plain MLP's, image by image, on the MNIST test split.

    HALFCONV_DATA_DIR=/work/shared/datasets python models/mnist_mlp_torch_amp/compare.py

Both fp16 models are the ones in ``reports/`` (``halfconv run`` wrote them); each runs as its
numerics model (fp16 storage emulated on ONNX Runtime's CPU provider), so the figures are
what fp16 computes. Prints both accuracies and the paired comparison: the images one model
gets right and the other wrong, the exact McNemar p-value and the 95% interval of the
difference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from halfconv import load_dataset
from halfconv.evaluation import paired_accuracy
from halfconv.numerics import emulated_copy

REPO = Path(__file__).resolve().parents[2]


def predictions(model: Path, x: np.ndarray) -> np.ndarray:
    with emulated_copy(model) as emulated:
        path = model if emulated is None else emulated.path
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {session.get_inputs()[0].name: x})[0].argmax(axis=1)


def main() -> None:
    test = load_dataset("mnist", "test")
    x = (test.images.astype(np.float32) / np.float32(255.0))[:, None]
    plain = predictions(REPO / "reports" / "mnist_mlp_torch" / "model.fp16.onnx", x)
    amp = predictions(REPO / "reports" / "mnist_mlp_torch_amp" / "model.fp16.onnx", x)
    paired = paired_accuracy(test.labels, plain, amp)
    low, high = paired.delta_ci95_pp
    print(f"plain MLP, fp16: {np.mean(plain == test.labels):.2%}; AMP-trained MLP, fp16: {np.mean(amp == test.labels):.2%}")
    print(
        f"AMP right where plain is wrong: {paired.to_right}; the reverse: {paired.to_wrong}; "
        f"McNemar p = {paired.mcnemar_p:.3g}; 95% interval of AMP - plain {low:+.2f} to {high:+.2f} pp"
    )


if __name__ == "__main__":
    main()
