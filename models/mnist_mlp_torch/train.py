"""Train a 784-256-10 MLP on the MNIST training split, deterministically, on the CPU.

    HALFCONV_DATA_DIR=/work/shared/datasets python models/mnist_mlp_torch/train.py [--epochs 8] [--data-dir DIR]

Reads the 60,000 training images through halfconv's dataset loader, scales the pixels to
[0, 1] (no mean/std normalisation, matching halfconv's default preprocessing), trains with
Adam and a cosine learning-rate decay on cross-entropy, and writes ``model.pt`` (the
state_dict; ``model.py:make_model`` rebuilds the module, input (N, 1, 28, 28)) and
``train_log.json`` beside this script. Training never reads the test split; after the last
epoch the test split is read once, to record ``test_accuracy_native`` in the log (no
model selection or early stopping is done on it). Export and evaluation are separate
steps: ``halfconv export models/mnist_mlp_torch/model.pt --torch-factory
models/mnist_mlp_torch/model.py:make_model --dataset mnist ...``.

``--amp`` trains the same model with automatic mixed precision, as
``models/mnist_mlp_torch_amp/train.py`` does: the forward pass and the loss run under
``torch.autocast``, and ``torch.amp.GradScaler`` scales the loss before the backward pass
and unscales the gradients before each step. On the CPU, autocast computes in bfloat16
(float16 autocast is for GPUs); the parameters, the optimizer state and the saved
state_dict stay float32.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from halfconv import cpu_model, load_dataset

HERE = Path(__file__).resolve().parent


def load_factory(spec: str) -> Callable[[], nn.Module]:
    """``path/to/model.py:function``, as ``halfconv export --torch-factory`` takes it."""
    path, _, name = spec.rpartition(":")
    module_spec = importlib.util.spec_from_file_location(f"factory_{Path(path).parent.name}", path)
    if module_spec is None or module_spec.loader is None:
        raise SystemExit(f"cannot import {path}")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return getattr(module, name)  # type: ignore[no-any-return]


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28) in [0, 1]."""
    return torch.from_numpy(images).float().div_(255.0).unsqueeze(1)


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000) -> float:
    model.eval()
    correct = 0
    for start in range(0, len(labels), batch_size):
        logits = model(images[start : start + batch_size])
        correct += int((logits.argmax(1) == labels[start : start + batch_size]).sum())
    return correct / len(labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--factory", default=f"{HERE / 'model.py'}:make_model", help="the model to train, as PATH.py:FUNCTION")
    parser.add_argument("--amp", action="store_true", help="train with torch.autocast (bfloat16 on the CPU) and a GradScaler")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()

    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    data = load_dataset("mnist", "train", data_dir=args.data_dir)
    images = to_tensor(data.images)
    labels = torch.from_numpy(data.labels)

    model = load_factory(args.factory)()
    steps_per_epoch = (len(labels) + args.batch_size - 1) // args.batch_size
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs * steps_per_epoch)
    loss_fn = nn.CrossEntropyLoss()
    scaler = torch.amp.GradScaler("cpu", enabled=args.amp)
    log: dict[str, object] = {"epochs": [], "args": {k: str(v) for k, v in vars(args).items()}}
    load_at_start = os.getloadavg()[0]  # other jobs sharing the CPU slow the wall time down
    started = time.perf_counter()
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(labels), generator=generator)
        total_loss, correct = 0.0, 0
        for step in range(steps_per_epoch):
            idx = order[step * args.batch_size : (step + 1) * args.batch_size]
            x, y = images[idx], labels[idx]
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.amp):
                logits = model(x)
                loss = loss_fn(logits, y)
            scaler.scale(loss).backward()
            scaler.step(optimizer)  # unscales the gradients first; skips a step whose gradients overflowed
            scaler.update()
            schedule.step()
            total_loss += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == y).sum())
        elapsed = time.perf_counter() - started
        entry = {"epoch": epoch + 1, "train_loss": total_loss / len(labels), "train_accuracy": correct / len(labels), "elapsed_s": round(elapsed, 1)}
        log["epochs"].append(entry)  # type: ignore[union-attr]
        print(json.dumps(entry), flush=True)
    log["training_seconds"] = round(time.perf_counter() - started, 1)
    log["threads"] = torch.get_num_threads()
    log["machine"] = {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "load_average_at_start": round(load_at_start, 2),
        "load_average_at_end": round(os.getloadavg()[0], 2),
    }
    log["train_files"] = [dataclasses.asdict(f) for f in data.files]
    log["torch"] = torch.__version__
    if args.amp:
        log["amp"] = {"autocast_dtype": "bfloat16", "grad_scale_at_end": float(scaler.get_scale())}
    model.eval()
    torch.save(model.state_dict(), args.out / "model.pt")

    # The one and only read of the test split: a sanity check of the finished model.
    test = load_dataset("mnist", "test", data_dir=args.data_dir)
    log["test_accuracy_native"] = accuracy(model, to_tensor(test.images), torch.from_numpy(test.labels))
    (args.out / "train_log.json").write_text(json.dumps(log, indent=2) + "\n")
    print(f"wrote {args.out / 'model.pt'} after {log['training_seconds']} s; test accuracy {log['test_accuracy_native']:.4f}")


if __name__ == "__main__":
    main()
