"""Train a three-layer MLP on the MNIST training split with a TensorFlow GradientTape loop, on the CPU.

    HALFCONV_DATA_DIR=/work/shared/datasets python models/mnist_mlp3_tf/train.py [--epochs 10] [--data-dir DIR]

Model (Keras 3, TensorFlow back end, 535,818 parameters): Input(784) -> Dense(512, relu)
-> Dense(256, relu) -> Dense(10), logits; input the 28x28 pixels flattened, scaled to
[0, 1], no mean/std. Training is a hand-written loop, as TensorFlow's own tutorials write
one: each step runs the model under ``tf.GradientTape``, takes the sparse categorical
cross-entropy of the logits, and applies Adam's update (learning rate 1e-3) to the
gradients the tape gives; batches of 128, reshuffled every epoch by a seeded numpy
generator. The step is a ``tf.function``. Seeds are fixed (``keras.utils.set_random_seed(0)``)
and TensorFlow's op determinism is on. It writes ``model.keras`` and ``train_log.json``
beside this script; the test split is read once, after training, to record
``test_accuracy_native``.
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

from halfconv import cpu_model, load_dataset

HERE = Path(__file__).resolve().parent


def build_model(keras):  # type: ignore[no-untyped-def]
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input(shape=(784,), name="pixels"),
            layers.Dense(512, activation="relu", name="hidden1"),
            layers.Dense(256, activation="relu", name="hidden2"),
            layers.Dense(10, name="logits"),
        ],
        name="mnist_mlp3_tf",
    )


def flat(images: np.ndarray) -> np.ndarray:
    return images.reshape(len(images), -1).astype(np.float32) / np.float32(255.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    keras.utils.set_random_seed(0)
    tf.config.experimental.enable_op_determinism()
    rng = np.random.default_rng(0)

    data = load_dataset("mnist", "train", data_dir=args.data_dir)
    x, y = flat(data.images), data.labels.astype(np.int64)
    model = build_model(keras)
    optimizer = keras.optimizers.Adam(learning_rate=args.lr)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def train_step(images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            logits = model(images, training=True)
            loss = loss_fn(labels, logits)
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, axis=1), labels), tf.int64))
        return loss, correct

    log: dict[str, object] = {"epochs": [], "args": {k: str(v) for k, v in vars(args).items()}}
    load_at_start = os.getloadavg()[0]  # other jobs sharing the CPU slow the wall time down
    started = time.perf_counter()
    for epoch in range(args.epochs):
        order = rng.permutation(len(y))
        total_loss, correct = 0.0, 0
        for start in range(0, len(y), args.batch_size):
            idx = order[start : start + args.batch_size]
            loss, hits = train_step(tf.constant(x[idx]), tf.constant(y[idx]))
            total_loss += float(loss) * len(idx)
            correct += int(hits)
        entry = {
            "epoch": epoch + 1,
            "train_loss": total_loss / len(y),
            "train_accuracy": correct / len(y),
            "elapsed_s": round(time.perf_counter() - started, 1),
        }
        log["epochs"].append(entry)  # type: ignore[union-attr]
        print(json.dumps(entry), flush=True)
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
    model.save(args.out / "model.keras")

    # The one and only read of the test split: a sanity check of the finished model.
    test = load_dataset("mnist", "test", data_dir=args.data_dir)
    logits = model.predict(flat(test.images), batch_size=1000, verbose=0)
    log["test_accuracy_native"] = float(np.mean(logits.argmax(axis=1) == test.labels))
    (args.out / "train_log.json").write_text(json.dumps(log, indent=2) + "\n")
    print(f"wrote {args.out / 'model.keras'} after {log['training_seconds']} s; test accuracy {log['test_accuracy_native']:.4f}")


if __name__ == "__main__":
    main()
