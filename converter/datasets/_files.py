"""The dataset files: their publishers' checksums, which split needs which, and verified reads.

Each file is checked against the sha256 table below before it is parsed, so a truncated
download or an edited file is refused instead of being evaluated.
"""

from __future__ import annotations

__all__ = [
    "ARCHIVE_MEMBERS",
    "CHECKSUMS",
    "CIFAR_ARCHIVE",
    "CIFAR_DIR",
    "DATA_DIR_ENV",
    "MNIST_DIR",
    "REFETCH_HINT",
    "SPLITS",
    "SPLIT_FILES",
    "Dataset",
    "FileDigest",
    "archive_members",
    "read_archive",
    "read_verified",
]

import dataclasses
import gzip
import hashlib
import os
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..core import DatasetError, one_line
from ._download import Checksum

DATA_DIR_ENV = "HALFCONV_DATA_DIR"
SPLITS = ("test", "train")

MNIST_DIR = "mnist"
CIFAR_DIR = "cifar-10-batches-py"
CIFAR_ARCHIVE = "cifar-10-python.tar.gz"

_ARCHIVE_READ_BYTES = 8 << 20  # the CIFAR-10 archive is hashed 8 MiB at a time


@dataclasses.dataclass(frozen=True)
class FileDigest:
    """A file that was read, with its sha256 and size."""

    path: str
    sha256: str
    size_bytes: int


@dataclasses.dataclass(frozen=True)
class Dataset:
    name: str  # "mnist", "cifar10", or the .npz file's stem
    split: str  # "test" or "train"
    images: np.ndarray  # MNIST uint8 (N, 28, 28); CIFAR-10 uint8 (N, 32, 32, 3); npz 'x' as stored
    labels: np.ndarray  # int64 (N,)
    class_names: tuple[str, ...]
    files: tuple[FileDigest, ...]  # every file read, with its sha256 and size


# The publishers' checksums (see shared/datasets/README.md), the one place they are kept.
# Keys are file names, which are unique across both datasets.
CHECKSUMS: dict[str, Checksum] = {
    "train-images-idx3-ubyte.gz": Checksum(
        9912422,
        "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    ),
    "train-labels-idx1-ubyte.gz": Checksum(
        28881,
        "d53e105ee54ea40749a09fcbcd1e9432",
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    ),
    "t10k-images-idx3-ubyte.gz": Checksum(
        1648877,
        "9fb629c4189551a2d022fa330f9573f3",
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    ),
    "t10k-labels-idx1-ubyte.gz": Checksum(
        4542,
        "ec29112dd5afa0611ce80d1b7f02629c",
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    ),
    "data_batch_1": Checksum(
        31035704,
        "c99cafc152244af753f735de768cd75f",
        "54636561a3ce25bd3e19253c6b0d8538147b0ae398331ac4a2d86c6d987368cd",
    ),
    "data_batch_2": Checksum(
        31035320,
        "d4bba439e000b95fd0a9bffe97cbabec",
        "766b2cef9fbc745cf056b3152224f7cf77163b330ea9a15f9392beb8b89bc5a8",
    ),
    "data_batch_3": Checksum(
        31035999,
        "54ebc095f3ab1f0389bbae665268c751",
        "0f00d98ebfb30b3ec0ad19f9756dc2630b89003e10525f5e148445e82aa6a1f9",
    ),
    "data_batch_4": Checksum(
        31035696,
        "634d18415352ddfa80567beed471001a",
        "3f7bb240661948b8f4d53e36ec720d8306f5668bd0071dcb4e6c947f78e9682b",
    ),
    "data_batch_5": Checksum(
        31035623,
        "482c414d41f54cd18b22e5b47cb7c3cb",
        "d91802434d8376bbaeeadf58a737e3a1b12ac839077e931237e0dcd43adcb154",
    ),
    "test_batch": Checksum(
        31035526,
        "40351d587109b95175f43aff81a1287e",
        "f53d8d457504f7cff4ea9e021afcf0e0ad8e24a91f3fc42091b8adef61157831",
    ),
    "batches.meta": Checksum(
        158,
        "5ff9c542aee3614f3951f8cda6e48888",
        "f962466ef690d46b226450fb9aadc74ba4bc64a76aa526b5827fe4bc5c7125cb",
    ),
    # Only the md5 of the archive is published; its members are still checked by sha256.
    CIFAR_ARCHIVE: Checksum(None, "c58f30108f718f92721af3b95e74349a", None),
}

# The files each split needs, and how many images it holds.
SPLIT_FILES: dict[tuple[str, str], tuple[tuple[str, ...], int]] = {
    ("mnist", "test"): (("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"), 10000),
    ("mnist", "train"): (("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"), 60000),
    ("cifar10", "test"): (("test_batch", "batches.meta"), 10000),
    ("cifar10", "train"): (tuple(f"data_batch_{i}" for i in range(1, 6)) + ("batches.meta",), 50000),
}
ARCHIVE_MEMBERS = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta")

REFETCH_HINT = "delete it and run again to download it afresh, or restore the original file"




def read_verified(path: Path, file_name: str) -> tuple[bytes, FileDigest]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror or exc}", "check its permissions") from exc
    return data, _verify(data, file_name, os.path.abspath(path))


def _verify(data: bytes, file_name: str, where: str) -> FileDigest:
    """Refuse ``data`` unless it matches the published sha256 of ``file_name``."""
    expected = CHECKSUMS[file_name]
    actual = hashlib.sha256(data).hexdigest()
    if expected.sha256 is not None and actual != expected.sha256:
        size_note = ""
        if expected.size_bytes is not None and expected.size_bytes != len(data):
            size_note = f", {len(data)} bytes instead of {expected.size_bytes}"
        raise DatasetError(
            f"{where} has the wrong checksum (sha256 {actual[:16]}..., expected"
            f" {expected.sha256[:16]}...{size_note}) and was not used",
            REFETCH_HINT,
        )
    return FileDigest(where, actual, len(data))


def read_archive(archive: Path, needed: tuple[str, ...]) -> tuple[dict[str, bytes], list[FileDigest]]:
    """Verified members of cifar-10-python.tar.gz, read without extracting it to disk."""
    archive_digest = _verify_archive(archive)
    blobs: dict[str, bytes] = {}
    member_digests: dict[str, FileDigest] = {}
    for file_name, data, digest in archive_members(archive, needed):
        blobs[file_name], member_digests[file_name] = data, digest
    missing = [f for f in needed if f not in blobs]
    if missing:
        members = ", ".join(f"{CIFAR_DIR}/{f}" for f in missing)
        raise DatasetError(f"{archive} lacks {members}", REFETCH_HINT)
    return blobs, [archive_digest] + [member_digests[f] for f in needed]


def _verify_archive(archive: Path) -> FileDigest:
    expected = CHECKSUMS[CIFAR_ARCHIVE]
    sha256, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    try:
        with archive.open("rb") as f:
            while chunk := f.read(_ARCHIVE_READ_BYTES):
                sha256.update(chunk)
                md5.update(chunk)
                size += len(chunk)
    except OSError as exc:
        raise DatasetError(f"cannot read {archive}: {exc.strerror or exc}", "check its permissions") from exc
    if md5.hexdigest() != expected.md5:
        raise DatasetError(
            f"{archive} has the wrong checksum (md5 {md5.hexdigest()}, expected {expected.md5})"
            " and was not used",
            REFETCH_HINT,
        )
    return FileDigest(os.path.abspath(archive), sha256.hexdigest(), size)


def archive_members(archive: Path, wanted: tuple[str, ...]) -> Iterator[tuple[str, bytes, FileDigest]]:
    """Yield (file name, bytes, digest) for each wanted member, each verified by sha256."""
    # Members are read into memory by name, never extracted by the archive's own paths, so
    # a crafted archive cannot write outside the data directory.
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                directory, _, file_name = member.name.rpartition("/")
                if directory != CIFAR_DIR or file_name not in wanted or not member.isfile():
                    continue
                extracted = tar.extractfile(member)
                if extracted is None:
                    raise DatasetError(f"{archive} member {member.name} has no contents", REFETCH_HINT)
                data = extracted.read()
                yield file_name, data, _verify(data, file_name, f"{os.path.abspath(archive)}/{member.name}")
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DatasetError(f"{archive} is not a readable tar.gz archive ({one_line(exc)})", REFETCH_HINT) from exc
