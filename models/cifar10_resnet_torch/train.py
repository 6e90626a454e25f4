"""Train ResNet-20 on the CIFAR-10 training split, deterministically, on the CPU.

    python models/cifar10_resnet_torch/train.py [--epochs 30] [--data-dir DIR]

Reads the 50,000 training images through halfconv's dataset loader (the test split is
never touched here), trains with SGD + Nesterov momentum, a one-cycle learning rate,
label smoothing, random crops (4-pixel zero padding) and horizontal flips, and writes
``model.pt`` (the state_dict; ``model.py:make_model`` rebuilds the module) and
``train_log.json`` beside this script. Export and evaluation are separate steps:
``halfconv export models/cifar10_resnet_torch/model.pt --torch-factory
models/cifar10_resnet_torch/model.py:make_model --dataset cifar10 ...``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from model import make_model  # noqa: E402

from halfconv import load_dataset  # noqa: E402

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)


def augment(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random 32x32 crops of the 4-pixel zero-padded images, and random horizontal flips."""
    count = batch.shape[0]
    padded = nn.functional.pad(batch, (4, 4, 4, 4))
    offsets = torch.randint(0, 9, (count, 2), generator=generator)
    flips = torch.rand(count, generator=generator) < 0.5
    out = torch.empty_like(batch)
    for i in range(count):
        dy, dx = int(offsets[i, 0]), int(offsets[i, 1])
        crop = padded[i, :, dy : dy + 32, dx : dx + 32]
        out[i] = crop.flip(-1) if flips[i] else crop
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--max-lr", type=float, default=0.2)
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count() or 1)
    generator = torch.Generator().manual_seed(0)
    data = load_dataset("cifar10", "train", data_dir=args.data_dir)
    images = torch.from_numpy(data.images).permute(0, 3, 1, 2).float().div_(255.0)
    images = (images - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    labels = torch.from_numpy(data.labels)

    model = make_model().to(memory_format=torch.channels_last)
    steps_per_epoch = (len(labels) + args.batch_size - 1) // args.batch_size
    optimizer = torch.optim.SGD(model.parameters(), lr=args.max_lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=args.max_lr, epochs=args.epochs, steps_per_epoch=steps_per_epoch, pct_start=0.25
    )
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    log: dict[str, object] = {"epochs": [], "args": {k: str(v) for k, v in vars(args).items()}}
    started = time.perf_counter()
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(labels), generator=generator)
        total_loss, correct = 0.0, 0
        for step in range(steps_per_epoch):
            idx = order[step * args.batch_size : (step + 1) * args.batch_size]
            x = augment(images[idx], generator).contiguous(memory_format=torch.channels_last)
            y = labels[idx]
            logits = model(x)
            loss = loss_fn(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total_loss += float(loss) * len(idx)
            correct += int((logits.argmax(1) == y).sum())
        elapsed = time.perf_counter() - started
        entry = {"epoch": epoch + 1, "train_loss": total_loss / len(labels), "train_accuracy": correct / len(labels), "elapsed_s": round(elapsed, 1)}
        log["epochs"].append(entry)  # type: ignore[union-attr]
        print(json.dumps(entry), flush=True)
    log["training_seconds"] = round(time.perf_counter() - started, 1)
    log["threads"] = torch.get_num_threads()
    log["torch"] = torch.__version__
    model.eval()
    torch.save(model.state_dict(), args.out / "model.pt")
    (args.out / "train_log.json").write_text(json.dumps(log, indent=2) + "\n")
    print(f"wrote {args.out / 'model.pt'} after {log['training_seconds']} s")


if __name__ == "__main__":
    main()
