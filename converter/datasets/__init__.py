"""The canonical MNIST and CIFAR-10 files and custom .npz datasets: found, downloaded, verified, parsed."""

from __future__ import annotations

__all__ = ["DATASETS", "DATA_DIR_ENV", "SPLITS", "Dataset", "FileDigest", "data_dir_candidates", "load_dataset"]

from ._files import DATA_DIR_ENV, SPLITS, Dataset, FileDigest
from ._load import DATASETS, data_dir_candidates, load_dataset
