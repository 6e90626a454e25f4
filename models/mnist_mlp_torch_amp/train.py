"""Train models/mnist_mlp_torch's 784-256-10 MLP with automatic mixed precision, on the CPU.

    HALFCONV_DATA_DIR=/work/shared/datasets python models/mnist_mlp_torch_amp/train.py [--epochs 8] [--data-dir DIR]

The same script, data, seed and schedule as ``models/mnist_mlp_torch/train.py``, run with
``--amp``: ``torch.autocast("cpu", dtype=torch.bfloat16)`` around the forward pass and the
loss, and ``torch.amp.GradScaler("cpu")`` around the backward pass and the step. The
parameters stay float32 throughout, so ``model.pt`` here holds float32 weights, like the
plain model's; ``model.py:make_model`` of ``models/mnist_mlp_torch`` rebuilds the module.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    sys.argv = [sys.argv[0], "--amp", "--out", str(HERE), *sys.argv[1:]]
    runpy.run_path(str(HERE.parent / "mnist_mlp_torch" / "train.py"), run_name="__main__")
