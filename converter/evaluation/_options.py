"""The options of an evaluation, declared once with their defaults and their checks."""

from __future__ import annotations

__all__ = ["DEFAULT_LATENCY_BATCH_SIZES", "LAYOUTS", "MAX_BATCH_SIZE", "MAX_RUNS", "EvaluateOptions"]

import dataclasses
from pathlib import Path

from ..core import PROVIDERS, UsageError, choices_text
from ..numerics import NUMERICS

LAYOUTS = ("auto", "nchw", "nhwc", "flat")
DEFAULT_LATENCY_BATCH_SIZES = (1, 32, 256)
MAX_BATCH_SIZE = 65_536  # images in one session.run, where one batch is held in memory
MAX_RUNS = 1_000_000  # timed or warm-up runs per batch size


@dataclasses.dataclass(frozen=True)
class EvaluateOptions:
    """Options of ``halfconv evaluate``; the CLI flags map one to one onto these fields."""

    dataset: str  # mnist | cifar10 | PATH.npz
    baseline: Path | None = None  # the float32 model to compare with (found automatically if None)
    provider: str = "auto"  # one of PROVIDERS
    batch_size: int = 256  # images per session.run during the accuracy pass
    limit: int | None = None  # evaluate only the first N test images
    data_dir: Path | None = None  # where the dataset files are (before $HALFCONV_DATA_DIR and the cache)
    layout: str = "auto"  # one of LAYOUTS
    mean: tuple[float, ...] | None = None  # per-channel mean after scaling to [0, 1]
    std: tuple[float, ...] | None = None
    latency_batch_sizes: tuple[int, ...] = DEFAULT_LATENCY_BATCH_SIZES
    warmup: int = 10  # untimed runs before each latency measurement
    iters: int = 50  # timed runs per batch size
    progress: bool = False  # progress bars on stderr
    numerics: str = "auto"  # one of NUMERICS: on the CPU, "auto" emulates fp16 storage for the accuracy figures
    strict_provider: bool = False  # on CUDA, refuse a model of which ORT would run any node on the CPU

    def check(self) -> None:
        """Raise UsageError for a value out of range."""
        for flag, value in (("--batch-size", self.batch_size), *(("--latency-batch-sizes", b) for b in self.latency_batch_sizes)):
            if value > MAX_BATCH_SIZE:
                raise UsageError(f"{flag} {value:,} is more than {MAX_BATCH_SIZE:,} images in one run", "try 256")
        for flag, value in (("--iters", self.iters), ("--warmup", self.warmup)):
            if value > MAX_RUNS:
                raise UsageError(f"{flag} {value:,} is more than {MAX_RUNS:,} runs", "try 50")
        if self.limit is not None and self.limit <= 0:
            raise UsageError(f"--limit must be a positive number of images, got {self.limit}", "omit it to use the whole test set")
        if self.batch_size <= 0:
            raise UsageError(f"--batch-size must be positive, got {self.batch_size}", "try 256")
        if self.iters <= 0:
            raise UsageError(f"--iters must be positive, got {self.iters}", "try 50")
        if self.warmup < 0:
            raise UsageError(f"--warmup cannot be negative, got {self.warmup}", "try 10")
        if not self.latency_batch_sizes or any(b <= 0 for b in self.latency_batch_sizes):
            raise UsageError("--latency-batch-sizes needs positive sizes", "e.g. --latency-batch-sizes 1,32,256")
        if self.strict_provider and self.provider == "cpu":
            raise UsageError("--strict-provider keeps every node on CUDA; it does not apply to --provider cpu", "use --provider cuda")
        if self.provider not in PROVIDERS:
            raise UsageError(f"unknown provider '{self.provider}'", "use " + choices_text(PROVIDERS))
        if self.numerics not in NUMERICS:
            raise UsageError(f"unknown numerics '{self.numerics}'", "use " + choices_text(NUMERICS))
        if self.layout not in LAYOUTS:
            raise UsageError(f"unknown layout '{self.layout}'", "use " + choices_text(LAYOUTS))
