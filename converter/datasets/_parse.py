"""Parsing the verified bytes of MNIST (IDX), CIFAR-10 (pickled batches) and .npz datasets."""

from __future__ import annotations

__all__ = ["load_npz", "parse_cifar", "parse_mnist"]

import gzip
import hashlib
import io
import os
import pickle
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ..core import DatasetError, check_npz, one_line, read_npz_bytes
from ._files import REFETCH_HINT, Dataset, FileDigest

_Parsed = tuple[np.ndarray, np.ndarray, tuple[str, ...]]  # images, labels, class names


def parse_mnist(blobs: dict[str, bytes], needed: tuple[str, ...]) -> _Parsed:
    images_file, labels_file = needed
    images = _parse_idx(blobs[images_file], images_file, magic=2051, ndim=3)
    labels = _parse_idx(blobs[labels_file], labels_file, magic=2049, ndim=1)
    if images.shape[1:] != (28, 28):
        raise DatasetError(f"{images_file} holds {images.shape[1:]} images, expected 28x28", REFETCH_HINT)
    labels = _check_labels(labels.astype(np.int64), labels_file, 10)
    return images, labels, tuple(str(i) for i in range(10))


def _parse_idx(data: bytes, file_name: str, *, magic: int, ndim: int) -> np.ndarray:
    try:
        raw = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(f"{file_name} is not a valid gzip file ({one_line(exc)})", REFETCH_HINT) from exc
    header_bytes = 4 * (1 + ndim)
    if len(raw) < header_bytes:
        raise DatasetError(f"{file_name} is too short for an IDX header", REFETCH_HINT)
    found_magic, *dims = struct.unpack(f">{1 + ndim}i", raw[:header_bytes])
    if found_magic != magic:
        raise DatasetError(f"{file_name} has IDX magic {found_magic}, expected {magic}", REFETCH_HINT)
    promised = int(np.prod(dims))
    if len(raw) - header_bytes != promised:
        raise DatasetError(
            f"{file_name} holds {len(raw) - header_bytes} bytes of data, its header promises {promised}",
            REFETCH_HINT,
        )
    # A copy, so callers get a writable array rather than a view of immutable bytes.
    array: np.ndarray = np.frombuffer(raw, dtype=np.uint8, offset=header_bytes).reshape(dims).copy()
    return array


def parse_cifar(blobs: dict[str, bytes], needed: tuple[str, ...]) -> _Parsed:
    *batch_files, meta_file = needed
    images, labels = [], []
    for file_name in batch_files:
        batch = _unpickle(blobs[file_name], file_name)
        data, batch_labels = batch.get(b"data"), batch.get(b"labels")
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.shape[1:] != (3072,):
            raise DatasetError(f"{file_name} has no uint8 b'data' array of 3072-byte rows", REFETCH_HINT)
        if not isinstance(batch_labels, list) or len(batch_labels) != len(data):
            raise DatasetError(f"{file_name} has no b'labels' list with one label per image", REFETCH_HINT)
        # Rows are stored channel-major (R, G, B planes of 32x32); the dataset is HWC.
        images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.append(np.asarray(batch_labels, dtype=np.int64))
    meta = _unpickle(blobs[meta_file], meta_file)
    label_names = meta.get(b"label_names")
    if not isinstance(label_names, list) or len(label_names) != 10:
        raise DatasetError(f"{meta_file} has no b'label_names' list of 10 names", REFETCH_HINT)
    class_names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in label_names)
    all_images = np.ascontiguousarray(np.concatenate(images))
    return all_images, _check_labels(np.concatenate(labels), batch_files[0], 10), class_names


def _unpickle(data: bytes, file_name: str) -> dict[Any, Any]:
    # Unpickling can run arbitrary code. It is safe here only because ``data`` already
    # matched the publisher's sha256 in _verify; never call this on unverified bytes.
    try:
        batch = pickle.loads(data, encoding="bytes")
    except Exception as exc:  # pickle raises many types for malformed input
        what = f"{file_name} is not a readable CIFAR-10 pickle ({type(exc).__name__})"
        raise DatasetError(what, REFETCH_HINT) from exc
    if not isinstance(batch, dict):
        raise DatasetError(f"{file_name} does not hold a CIFAR-10 dict", REFETCH_HINT)
    return batch


def _check_labels(labels: np.ndarray, file_name: str, num_classes: int) -> np.ndarray:
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DatasetError(
            f"{file_name} has labels in [{labels.min()}, {labels.max()}], expected 0 to {num_classes - 1}",
            REFETCH_HINT,
        )
    return labels


# -- .npz datasets ----------------------------------------------------------------------------

MAX_CLASSES = 100_000  # the per-class table is sized by the largest label
def load_npz(path: Path, split: str) -> Dataset:
    hint = "save it with numpy.savez(path, x=images, y=labels, class_names=names)"
    data = read_npz_bytes(path, "dataset file", hint, DatasetError)
    digest = FileDigest(os.path.abspath(path), hashlib.sha256(data).hexdigest(), len(data))
    check_npz(data, path, hint, DatasetError)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            missing = [key for key in ("x", "y") if key not in npz.files]
            if missing:
                raise DatasetError(f"{path} has no array {' or '.join(repr(k) for k in missing)}", hint)
            images, labels = npz["x"], npz["y"]
            names = npz["class_names"] if "class_names" in npz.files else None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        # allow_pickle=False: object arrays are refused rather than unpickled.
        raise DatasetError(f"{path} is not a readable .npz file ({one_line(exc)})", hint) from exc

    if images.dtype.kind not in "biuf":
        raise DatasetError(f"{path}: x must hold numbers, not {images.dtype}", hint)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]  # Keras stores labels as (N, 1)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DatasetError(f"{path}: y must be a 1-D integer array, got {labels.dtype} {labels.shape}", hint)
    if images.ndim < 1 or len(images) != len(labels):
        num_images = len(images) if images.ndim else 0
        raise DatasetError(f"{path}: x holds {num_images} images but y holds {len(labels)} labels", hint)
    if len(labels) == 0:
        raise DatasetError(f"{path} holds no images", hint)
    if labels.min() < 0:
        raise DatasetError(f"{path}: y holds a negative label ({labels.min()})", hint)
    if labels.max() >= MAX_CLASSES:
        raise DatasetError(f"{path}: y holds label {labels.max():,}; halfconv takes at most {MAX_CLASSES:,} classes", hint)
    if names is None:
        class_names = tuple(str(i) for i in range(int(labels.max()) + 1))
    else:
        if names.ndim != 1 or names.dtype.kind not in "US":
            raise DatasetError(f"{path}: class_names must be a 1-D array of strings", hint)
        class_names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names.tolist())
        if labels.max() >= len(class_names):
            what = f"{path}: y holds label {labels.max()} but class_names has only {len(class_names)} names"
            raise DatasetError(what, hint)
    return Dataset(path.stem, split, images, labels.astype(np.int64), class_names, (digest,))
