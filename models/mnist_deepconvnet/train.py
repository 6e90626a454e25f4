"""Train DeepConvNet (``model.py``) on the MNIST training split, deterministically, on the CPU.

    HALFCONV_DATA_DIR=/work/shared/datasets python models/mnist_deepconvnet/train.py [--epochs 12] [--data-dir DIR]

The training loop of ``models/mnist_mlp_torch/train.py`` with this folder's model: Adam,
learning rate 1e-3 with cosine decay, batch 100, cross-entropy, ``torch.manual_seed(0)``
and deterministic algorithms, pixels scaled to [0, 1] without mean/std. It writes
``model.pt`` (the state_dict) and ``train_log.json`` here; the test split is read once,
after training, to record ``test_accuracy_native``.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    defaults = ["--factory", f"{HERE / 'model.py'}:make_model", "--out", str(HERE), "--epochs", "12", "--batch-size", "100"]
    sys.argv = [sys.argv[0], *defaults, *sys.argv[1:]]
    runpy.run_path(str(HERE.parent / "mnist_mlp_torch" / "train.py"), run_name="__main__")
