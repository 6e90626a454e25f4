"""Running a model over a test set: the accuracy pass, latency timing and the comparison.

The accuracy pass hands pre-processed slices straight to ``session.run``; latency runs use
IO binding, with the input bound once on the device and outputs left there, so that
host-device copies are not timed.
"""

from __future__ import annotations

__all__ = ["ProgressBar", "compare", "measure_latency", "run_dataset", "top1"]

import sys
import time

import numpy as np
import onnxruntime as ort

from ..core import IncompatibleModelError
from . import _preprocess
from ._results import Comparison, LatencyPoint, ModelEvaluation
from ._stats import paired_accuracy


class ProgressBar:
    """A tqdm bar on stderr, or nothing (quiet, or stderr is not a terminal)."""

    def __init__(self, description: str, total: int, enabled: bool) -> None:
        self._bar = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=description, unit="img", file=sys.stderr, leave=False)

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, count: int) -> None:
        if self._bar is not None:
            self._bar.update(count)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def run_dataset(
    session: ort.InferenceSession,
    signature: _preprocess.ModelSignature,
    x: np.ndarray,
    batch_size: int,
    fixed_batch: int | None,
    bar: ProgressBar,
) -> np.ndarray:
    if fixed_batch is not None:
        batch_size = fixed_batch
    count = x.shape[0]
    quiet = ort.RunOptions()
    quiet.log_severity_level = 4  # a failing run raises; the caller reports it in one line, ORT's log stays silent
    chunks: list[np.ndarray] = []
    for start in range(0, count, batch_size):
        chunk = x[start : start + batch_size]
        real = chunk.shape[0]
        if fixed_batch is not None and real < fixed_batch:
            # A model with a fixed batch takes full batches only: pad, then drop the padding.
            chunk = np.concatenate([chunk, np.zeros((fixed_batch - real, *chunk.shape[1:]), chunk.dtype)])
        output = session.run([signature.output_name], {signature.input_name: chunk}, quiet)[0]
        chunks.append(output[:real])
        bar.update(real)
    logits = np.concatenate(chunks)
    if logits.ndim != 2 or logits.shape[0] != count:
        raise IncompatibleModelError(
            f"the model's output has shape {logits.shape} for {count} images, not (N, classes)",
            "halfconv evaluates classifiers with one (N, classes) output",
        )
    return logits.astype(np.float32, copy=False)


def measure_latency(
    session: ort.InferenceSession,
    signature: _preprocess.ModelSignature,
    x: np.ndarray,
    batch_size: int,
    device: str,
    warmup: int,
    iters: int,
) -> LatencyPoint:
    """Time ``iters`` runs after ``warmup``, with inputs and outputs bound on the device."""
    reps = -(-batch_size // x.shape[0])
    batch = np.ascontiguousarray(np.concatenate([x] * reps)[:batch_size] if reps > 1 else x[:batch_size])
    binding = session.io_binding()
    bound_input = ort.OrtValue.ortvalue_from_numpy(batch, device, 0)
    binding.bind_ortvalue_input(signature.input_name, bound_input)
    binding.bind_output(signature.output_name, device)
    # On CUDA the first run of each shape includes cuDNN's algorithm search: always warm up.
    for _ in range(max(warmup, 1) if device == "cuda" else warmup):
        session.run_with_iobinding(binding)
    times = np.empty(iters, dtype=np.float64)
    clock = time.perf_counter
    for i in range(iters):
        started = clock()
        session.run_with_iobinding(binding)
        binding.synchronize_outputs()  # the clock stops once the device has finished
        times[i] = clock() - started
    times_ms = times * 1000.0
    p50, p90, p99 = np.percentile(times_ms, [50, 90, 99])
    mean = float(times_ms.mean())
    return LatencyPoint(
        batch_size=batch_size,
        iters=iters,
        mean_ms=mean,
        min_ms=float(times_ms.min()),
        max_ms=float(times_ms.max()),
        p50_ms=float(p50),
        p90_ms=float(p90),
        p99_ms=float(p99),
        throughput=batch_size / (mean / 1000.0) if mean > 0 else float("inf"),
    )


NO_PREDICTION = -1  # a row whose logits are all NaN or -inf names no class, so it is never right


def top1(logits: np.ndarray, labels: np.ndarray, classes: int) -> tuple[np.ndarray, float, tuple[float, ...]]:
    comparable = np.nan_to_num(logits, nan=-np.inf)
    predictions = np.argmax(comparable, axis=1)
    predictions[np.all(comparable == -np.inf, axis=1)] = NO_PREDICTION
    correct = predictions == labels
    per_class = tuple(
        float(correct[labels == c].mean()) if np.any(labels == c) else float("nan") for c in range(classes)
    )
    return predictions, float(correct.mean()), per_class


def compare(
    baseline: ModelEvaluation,
    model: ModelEvaluation,
    baseline_logits: np.ndarray,
    model_logits: np.ndarray,
    baseline_predictions: np.ndarray,
    model_predictions: np.ndarray,
    labels: np.ndarray,
) -> Comparison:
    finite = np.isfinite(baseline_logits) & np.isfinite(model_logits)
    diff = np.abs(model_logits.astype(np.float64) - baseline_logits.astype(np.float64))[finite]
    top = float(diff.max()) if diff.size else 0.0
    counts, edges = np.histogram(diff, bins=40, range=(0.0, top if top > 0 else 1.0))
    p50 = {p.batch_size: p.p50_ms for p in baseline.latency}
    ratios = tuple((p.batch_size, p.p50_ms / p50[p.batch_size]) for p in model.latency if p.batch_size in p50 and p50[p.batch_size] > 0)
    faster = sorted(batch for batch, ratio in ratios if ratio < 1.0)
    agree = baseline_predictions == model_predictions
    paired = paired_accuracy(labels, baseline_predictions, model_predictions)
    return Comparison(
        accuracy_delta_pp=(model.accuracy - baseline.accuracy) * 100.0,
        agreement=float(agree.mean()),
        disagreements=int((~agree).sum()),
        max_abs_logit_diff=top,
        mean_abs_logit_diff=float(diff.mean()) if diff.size else 0.0,
        logit_diff_bins=tuple(float(e) for e in edges),
        logit_diff_counts=tuple(int(c) for c in counts),
        size_ratio=model.size_bytes / baseline.size_bytes if baseline.size_bytes else float("nan"),
        latency_ratio=ratios,
        crossover_batch=faster[0] if faster else None,
        flips_to_wrong=paired.to_wrong,
        flips_to_right=paired.to_right,
        mcnemar_p=paired.mcnemar_p,
        delta_ci95_pp=paired.delta_ci95_pp,
    )


