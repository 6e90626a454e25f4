"""Train models/cifar10_cnn_keras's CNN under Keras' mixed_float16 policy, with loss scaling, on the CPU.

    HALFCONV_DATA_DIR=/work/shared/datasets python models/cifar10_cnn_keras_mixed/train.py [--epochs 15] [--data-dir DIR]

The same script, data, seed, schedule and augmentation as ``models/cifar10_cnn_keras/train.py``,
run with ``--mixed``: ``keras.mixed_precision.set_global_policy("mixed_float16")`` before the
model is built (layers compute in float16, variables stay float32), a float32 softmax
output layer, and a ``LossScaleOptimizer`` around Adam. ``train_log.json`` records the
policy, the loss scale at the end and the training time.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    sys.argv = [sys.argv[0], "--mixed", "--out", str(HERE), *sys.argv[1:]]
    runpy.run_path(str(HERE.parent / "cifar10_cnn_keras" / "train.py"), run_name="__main__")
