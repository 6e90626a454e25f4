"""The calibration images: drawn from the training split, fed as the model expects.

One seeded permutation of the split draws two disjoint sets: the images whose ranges and
errors are measured, and the images on which the accuracy budget is checked. Both are
pre-processed exactly as ``halfconv evaluate`` feeds the test split, a batch at a time, so
that memory beyond the split itself does not grow with their number.
"""

from __future__ import annotations

__all__ = ["CalibrationData", "CalibrationProvenance", "Images", "load_calibration"]

import dataclasses

import numpy as np

from ..core import DatasetError
from ..datasets import DATASETS, FileDigest, load_dataset
from ..evaluation import ModelSignature, Preprocessing, plan_preprocessing, preprocess
from ._options import CalibrationOptions


@dataclasses.dataclass(frozen=True)
class CalibrationProvenance:
    """Where the calibration images came from, so that a decision can be reproduced."""

    dataset: str
    split: str  # "train", or "file" for an .npz
    available: int  # images in the split
    calibration_images: int
    validation_images: int
    seed: int
    overlap: bool  # True when the split was too small for two disjoint sets
    files: tuple[FileDigest, ...]
    preprocessing: Preprocessing


@dataclasses.dataclass(frozen=True)
class Images:
    """Images drawn from a split, pre-processed as the model takes them when a batch is asked for."""

    source: np.ndarray  # the split's images, as stored
    index: np.ndarray  # the drawn ones
    plan: Preprocessing

    def __len__(self) -> int:
        return int(self.index.size)

    def batch(self, start: int, stop: int) -> np.ndarray:
        return preprocess(self.source[self.index[start:stop]], self.plan)


@dataclasses.dataclass(frozen=True)
class CalibrationData:
    calibration: Images  # whose ranges and errors are measured
    validation: Images  # on which the budget is checked
    validation_labels: np.ndarray  # int64
    classes: int
    provenance: CalibrationProvenance


def _draw(available: int, options: CalibrationOptions) -> tuple[np.ndarray, np.ndarray, bool]:
    """Indices of the calibration and validation images; they overlap only in a file too small for both."""
    order = np.random.default_rng(options.seed).permutation(available)
    if available <= options.size:
        return order, order, True
    return order[: options.size], order[options.size : options.size + options.validation_size], False


def load_calibration(options: CalibrationOptions, signature: ModelSignature, model_name: str) -> CalibrationData:
    """Load and pre-process the calibration and validation images for the model with ``signature``."""
    is_named = options.source in DATASETS
    dataset = options.preloaded or load_dataset(options.source, "train", data_dir=options.data_dir, progress=options.progress)
    available = int(dataset.labels.shape[0])
    if available < 2 and not is_named:
        raise DatasetError(f"{options.source} holds {available} image, too few to calibrate on", "pass more images")
    images = dataset.images
    if np.issubdtype(images.dtype, np.floating) and not np.isfinite(images).all():
        raise DatasetError(f"{options.source}: x holds NaN or infinite values", "calibrate on finite images")
    calibration_index, validation_index, overlap = _draw(available, options)
    plan = plan_preprocessing(
        signature,
        tuple(int(d) for d in dataset.images.shape[1:]),
        layout=options.layout,
        mean=options.mean,
        std=options.std,
        dataset_name=dataset.name,
        model_name=model_name,
    )
    provenance = CalibrationProvenance(
        dataset=dataset.name,
        split="train" if is_named else "file",
        available=available,
        calibration_images=int(calibration_index.size),
        validation_images=int(validation_index.size),
        seed=options.seed,
        overlap=overlap,
        files=dataset.files,
        preprocessing=plan,
    )
    return CalibrationData(
        calibration=Images(images, calibration_index, plan),
        validation=Images(images, validation_index, plan),
        validation_labels=dataset.labels[validation_index].astype(np.int64),
        classes=len(dataset.class_names),
        provenance=provenance,
    )
