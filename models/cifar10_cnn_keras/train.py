"""Train a small Keras CNN on the CIFAR-10 training split, deterministically, on the CPU.

    HALFCONV_DATA_DIR=/work/shared/datasets python models/cifar10_cnn_keras/train.py [--epochs 15] [--data-dir DIR]

Model (Keras 3, TensorFlow back end; the classic TensorFlow-tutorial CNN, about 0.12 M
parameters): Input(32, 32, 3) -> Conv2D(32, 3, relu) -> MaxPool2D -> Conv2D(64, 3, relu)
-> MaxPool2D -> Conv2D(64, 3, relu) -> Flatten -> Dense(64, relu) -> Dense(10); input
float32 NHWC pixels in [0, 1] (no mean/std normalisation, matching halfconv's default
preprocessing), output logits (no softmax). Reads the 50,000 training images through
halfconv's dataset loader, trains with Adam (cosine learning-rate decay) on sparse
categorical cross-entropy, with random horizontal flips drawn afresh each epoch from a
seeded numpy generator (the augmentation is outside the model, so the saved graph holds
only inference layers), and writes ``model.keras`` and ``train_log.json`` beside this
script. Seeds are fixed (``keras.utils.set_random_seed(0)``) and TensorFlow's op
determinism is on, so a rerun on the same machine and thread count gives the same weights.
Training never reads the test split; after the last epoch the test split is read once, to
record ``test_accuracy_native`` in the log (no model selection or early stopping is done on
it). ``--holdout N`` keeps the last N training images out of training and reports accuracy
on them per epoch, for choosing hyper-parameters without the test split (nothing is
written then). Export and evaluation are separate steps (``halfconv export
models/cifar10_cnn_keras/model.keras --dataset cifar10 ...``).

``--mixed`` trains the same network under Keras' ``mixed_float16`` policy, as
``models/cifar10_cnn_keras_mixed/train.py`` does: every layer computes in float16 and keeps
its variables in float32, a final ``Activation("softmax", dtype="float32")`` layer gives
float32 probabilities as Keras recommends (the loss then takes probabilities, not
logits), and the optimizer is a ``LossScaleOptimizer`` around Adam, which scales the loss
up before the gradients are taken and skips a step whose gradients overflowed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np

from halfconv import (
    cpu_model,
    load_dataset,
)

HERE = Path(__file__).resolve().parent


def build_model(keras, mixed: bool = False):  # type: ignore[no-untyped-def]
    layers = keras.layers
    output = [layers.Activation("softmax", dtype="float32", name="probabilities")] if mixed else []
    return keras.Sequential(
        [
            keras.Input(shape=(32, 32, 3), name="image"),
            layers.Conv2D(32, 3, activation="relu", name="conv1"),
            layers.MaxPooling2D(name="pool1"),
            layers.Conv2D(64, 3, activation="relu", name="conv2"),
            layers.MaxPooling2D(name="pool2"),
            layers.Conv2D(64, 3, activation="relu", name="conv3"),
            layers.Flatten(name="flatten"),
            layers.Dense(64, activation="relu", name="hidden"),
            layers.Dense(10, name="logits"),
            *output,
        ],
        name="cifar10_cnn_keras_mixed" if mixed else "cifar10_cnn_keras",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--no-flip", action="store_true", help="train without random horizontal flips")
    parser.add_argument("--holdout", type=int, default=0, help="hold the last N training images out (nothing is written)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--mixed", action="store_true", help="train under the mixed_float16 policy, with loss scaling")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    keras.utils.set_random_seed(0)
    tf.config.experimental.enable_op_determinism()
    rng = np.random.default_rng(0)  # the flips

    data = load_dataset("cifar10", "train", data_dir=args.data_dir)
    x = data.images.astype(np.float32) / 255.0  # (N, 32, 32, 3)
    y = data.labels.astype(np.int64)
    validation = None
    if args.holdout:
        x, y, validation = x[: -args.holdout], y[: -args.holdout], (x[-args.holdout :], y[-args.holdout :])

    if args.mixed:
        keras.mixed_precision.set_global_policy("mixed_float16")
    model = build_model(keras, args.mixed)
    steps_per_epoch = (len(y) + args.batch_size - 1) // args.batch_size
    schedule = keras.optimizers.schedules.CosineDecay(args.lr, decay_steps=args.epochs * steps_per_epoch)
    optimizer = keras.optimizers.Adam(learning_rate=schedule)
    model.compile(
        optimizer=keras.optimizers.LossScaleOptimizer(optimizer) if args.mixed else optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=not args.mixed),
        metrics=["accuracy"],
    )

    log: dict[str, object] = {"epochs": [], "args": {k: str(v) for k, v in vars(args).items()}}
    load_at_start = os.getloadavg()[0]  # other jobs sharing the CPU slow the wall time down
    started = time.perf_counter()
    for epoch in range(args.epochs):
        if args.no_flip:
            x_epoch = x
        else:
            flips = rng.random(len(x)) < 0.5
            x_epoch = np.where(flips[:, None, None, None], x[:, :, ::-1, :], x)
        history = model.fit(
            x_epoch, y, batch_size=args.batch_size, epochs=1, shuffle=True, verbose=0, validation_data=validation
        ).history
        entry = {
            "epoch": epoch + 1,
            "train_loss": float(history["loss"][-1]),
            "train_accuracy": float(history["accuracy"][-1]),
            **({"holdout_accuracy": float(history["val_accuracy"][-1])} if "val_accuracy" in history else {}),
            "elapsed_s": round(time.perf_counter() - started, 1),
        }
        log["epochs"].append(entry)  # type: ignore[union-attr]
        print(json.dumps(entry), flush=True)
        del x_epoch
    log["training_seconds"] = round(time.perf_counter() - started, 1)
    log["threads"] = {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(), "inter_op": tf.config.threading.get_inter_op_parallelism_threads()}
    log["machine"] = {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "load_average_at_start": round(load_at_start, 2),
        "load_average_at_end": round(os.getloadavg()[0], 2),
    }
    log["train_files"] = [dataclasses.asdict(f) for f in data.files]
    log["tensorflow"] = tf.__version__
    log["keras"] = keras.__version__
    log["parameters"] = int(model.count_params())
    log["dtype_policy"] = model.dtype_policy.name
    if args.mixed:
        log["loss_scale_at_end"] = float(keras.ops.convert_to_numpy(model.optimizer.scale_loss(1.0)))
    if args.holdout:
        print("holdout run: nothing written", flush=True)
        return
    model.save(args.out / "model.keras")

    # The one and only read of the test split: a sanity check of the finished model.
    test = load_dataset("cifar10", "test", data_dir=args.data_dir)
    logits = model.predict(test.images.astype(np.float32) / 255.0, batch_size=1000, verbose=0)
    log["test_accuracy_native"] = float(np.mean(logits.argmax(axis=1) == test.labels))
    (args.out / "train_log.json").write_text(json.dumps(log, indent=2) + "\n")
    print(f"wrote {args.out / 'model.keras'} after {log['training_seconds']} s; test accuracy {log['test_accuracy_native']:.4f}")


if __name__ == "__main__":
    main()
