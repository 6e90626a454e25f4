"""MNIST, CIFAR-10 and .npz datasets, verified against the publishers' checksums.

A split is looked up in the candidate data directories (``--data-dir``,
``$HALFCONV_DATA_DIR``, ``~/.cache/halfconv/datasets``, in that order); the first one
that holds every file the split needs wins. Each file is checked against the sha256 table
below before it is parsed, so a truncated download or an edited file is refused instead of
being evaluated. When no directory holds the files, they are downloaded (see
:mod:`converter._download`) into the first writable candidate, normally the cache.
"""

from __future__ import annotations

__all__ = [
    "DATASETS",
    "DATA_DIR_ENV",
    "Dataset",
    "data_dir_candidates",
    "load_dataset",
]

import dataclasses
import gzip
import hashlib
import io
import os
import pickle
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from converter._download import CIFAR_URLS, MNIST_URLS, Checksum, DownloadFailed, fetch, write_atomically
from converter._errors import DatasetError, UsageError
from converter._eval_results import FileDigest

DATASETS: tuple[str, ...] = ("mnist", "cifar10")
DATA_DIR_ENV = "HALFCONV_DATA_DIR"
_SPLITS = ("test", "train")

_MNIST_DIR = "mnist"
_CIFAR_DIR = "cifar-10-batches-py"
_CIFAR_ARCHIVE = "cifar-10-python.tar.gz"

_ARCHIVE_READ_BYTES = 8 << 20  # the CIFAR-10 archive is hashed 8 MiB at a time


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
_CHECKSUMS: dict[str, Checksum] = {
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
    _CIFAR_ARCHIVE: Checksum(None, "c58f30108f718f92721af3b95e74349a", None),
}

# The files each split needs, and how many images it holds.
_SPLIT_FILES: dict[tuple[str, str], tuple[tuple[str, ...], int]] = {
    ("mnist", "test"): (("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"), 10000),
    ("mnist", "train"): (("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"), 60000),
    ("cifar10", "test"): (("test_batch", "batches.meta"), 10000),
    ("cifar10", "train"): (tuple(f"data_batch_{i}" for i in range(1, 6)) + ("batches.meta",), 50000),
}
_CIFAR_MEMBERS = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta")

_REFETCH_HINT = "delete it and run again to download it afresh, or restore the original file"


def data_dir_candidates(data_dir: Path | None) -> list[Path]:
    """The directories searched for dataset files, in order: --data-dir, $HALFCONV_DATA_DIR, cache."""
    candidates = []
    if data_dir is not None:
        candidates.append(Path(data_dir).expanduser())
    if os.environ.get(DATA_DIR_ENV):
        candidates.append(Path(os.environ[DATA_DIR_ENV]).expanduser())
    candidates.append(Path.home() / ".cache" / "halfconv" / "datasets")
    unique: list[Path] = []
    for candidate in candidates:
        if all(os.path.abspath(candidate) != os.path.abspath(seen) for seen in unique):
            unique.append(candidate)
    return unique


def load_dataset(
    name: str,
    split: str = "test",
    *,
    data_dir: Path | None = None,
    download: bool = True,
    progress: bool = False,
) -> Dataset:
    """Load a split of MNIST or CIFAR-10, or the arrays of an .npz file.

    Every file is verified against the publishers' sha256 before it is parsed. Missing
    MNIST/CIFAR-10 files are downloaded when ``download`` is true (a progress bar on stderr
    when ``progress`` is true). Raises :class:`DatasetError` for missing or broken files
    and :class:`UsageError` for an unknown dataset or split.
    """
    if split not in _SPLITS:
        raise UsageError(f"unknown split '{split}'", "use test or train")
    if str(name).lower().endswith(".npz"):
        return _load_npz(Path(name), split)
    if name not in DATASETS:
        raise UsageError(
            f"unknown dataset '{name}'", "use mnist, cifar10 or a path to an .npz with arrays x and y"
        )

    candidates = data_dir_candidates(data_dir)
    for directory in candidates:
        source = _find(name, split, directory)
        if source is not None:
            return _read(name, split, source)

    target = _download_target(data_dir, candidates)
    hint_dir = target if target is not None else candidates[-1]
    what = f"{_describe_split(name, split)} not found in {', '.join(str(d) for d in candidates)}"
    if not download:
        raise DatasetError(what, _placement_hint(name, hint_dir))
    if target is None:
        reason = "no writable data directory"
    else:
        try:
            _download_split(name, split, target, progress)
        except DownloadFailed as exc:
            reason = str(exc)
        else:
            source = _find(name, split, target)
            if source is not None:
                return _read(name, split, source)
            reason = f"the downloaded files in {target} do not hold the {split} split"
    raise DatasetError(f"{what}; download failed ({reason})", _placement_hint(name, hint_dir))


# -- finding files ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Source:
    directory: Path
    files: dict[str, Path]  # file name -> loose file; empty when the archive is read
    archive: Path | None  # cifar-10-python.tar.gz, read when the loose files are incomplete


def _find(name: str, split: str, directory: Path) -> _Source | None:
    """Where ``directory`` holds every file the split needs, or None."""
    needed, _ = _SPLIT_FILES[(name, split)]
    subdir = directory / (_MNIST_DIR if name == "mnist" else _CIFAR_DIR)
    files: dict[str, Path] = {}
    for file_name in needed:
        # The publisher's folder first, then the file placed flat in the data directory.
        path = next((p for p in (subdir / file_name, directory / file_name) if p.is_file()), None)
        if path is None:
            break
        files[file_name] = path
    else:
        return _Source(directory, files, None)
    archive = directory / _CIFAR_ARCHIVE
    if name == "cifar10" and archive.is_file():
        return _Source(directory, {}, archive)
    return None


def _describe_split(name: str, split: str) -> str:
    needed, _ = _SPLIT_FILES[(name, split)]
    if name == "cifar10":
        return f"CIFAR-10 {split} files ({', '.join(needed)}, or {_CIFAR_ARCHIVE})"
    return f"MNIST {split} files ({', '.join(needed)})"


def _placement_hint(name: str, directory: Path) -> str:
    if name == "mnist":
        place = f"put the files in {directory / _MNIST_DIR}/"
    else:
        place = f"put {_CIFAR_ARCHIVE} in {directory}/ or its files in {directory / _CIFAR_DIR}/"
    return f"{place} or set {DATA_DIR_ENV} to a folder that holds them"


# -- reading and verifying --------------------------------------------------------------------


def _read(name: str, split: str, source: _Source) -> Dataset:
    needed, num_images = _SPLIT_FILES[(name, split)]
    if source.archive is not None:
        blobs, digests = _read_archive(source.archive, needed)
    else:
        blobs, digests = {}, []
        for file_name in needed:
            data, digest = _read_verified(source.files[file_name], file_name)
            blobs[file_name] = data
            digests.append(digest)
    if name == "mnist":
        images, labels, class_names = _parse_mnist(blobs, needed)
    else:
        images, labels, class_names = _parse_cifar(blobs, needed)
    if len(images) != num_images or len(labels) != num_images:
        raise DatasetError(
            f"{_describe_split(name, split)} hold {len(images)} images and {len(labels)} labels,"
            f" expected {num_images}",
            _REFETCH_HINT,
        )
    return Dataset(name, split, images, labels, class_names, tuple(digests))


def _read_verified(path: Path, file_name: str) -> tuple[bytes, FileDigest]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror or exc}", "check its permissions") from exc
    return data, _verify(data, file_name, os.path.abspath(path))


def _verify(data: bytes, file_name: str, where: str) -> FileDigest:
    """Refuse ``data`` unless it matches the published sha256 of ``file_name``."""
    expected = _CHECKSUMS[file_name]
    actual = hashlib.sha256(data).hexdigest()
    if expected.sha256 is not None and actual != expected.sha256:
        size_note = ""
        if expected.size_bytes is not None and expected.size_bytes != len(data):
            size_note = f", {len(data)} bytes instead of {expected.size_bytes}"
        raise DatasetError(
            f"{where} has the wrong checksum (sha256 {actual[:16]}..., expected"
            f" {expected.sha256[:16]}...{size_note}) and was not used",
            _REFETCH_HINT,
        )
    return FileDigest(where, actual, len(data))


def _read_archive(archive: Path, needed: tuple[str, ...]) -> tuple[dict[str, bytes], list[FileDigest]]:
    """Verified members of cifar-10-python.tar.gz, read without extracting it to disk."""
    archive_digest = _verify_archive(archive)
    blobs: dict[str, bytes] = {}
    member_digests: dict[str, FileDigest] = {}
    for file_name, data, digest in _archive_members(archive, needed):
        blobs[file_name], member_digests[file_name] = data, digest
    missing = [f for f in needed if f not in blobs]
    if missing:
        members = ", ".join(f"{_CIFAR_DIR}/{f}" for f in missing)
        raise DatasetError(f"{archive} lacks {members}", _REFETCH_HINT)
    return blobs, [archive_digest] + [member_digests[f] for f in needed]


def _verify_archive(archive: Path) -> FileDigest:
    expected = _CHECKSUMS[_CIFAR_ARCHIVE]
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
            _REFETCH_HINT,
        )
    return FileDigest(os.path.abspath(archive), sha256.hexdigest(), size)


def _archive_members(archive: Path, wanted: tuple[str, ...]) -> Iterator[tuple[str, bytes, FileDigest]]:
    """Yield (file name, bytes, digest) for each wanted member, each verified by sha256."""
    # Members are read into memory by name, never extracted by the archive's own paths, so
    # a crafted archive cannot write outside the data directory.
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                directory, _, file_name = member.name.rpartition("/")
                if directory != _CIFAR_DIR or file_name not in wanted or not member.isfile():
                    continue
                extracted = tar.extractfile(member)
                assert extracted is not None  # a regular file always has contents
                data = extracted.read()
                yield file_name, data, _verify(data, file_name, f"{os.path.abspath(archive)}/{member.name}")
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DatasetError(f"{archive} is not a readable tar.gz archive ({exc})", _REFETCH_HINT) from exc


# -- parsing ----------------------------------------------------------------------------------


_Parsed = tuple[np.ndarray, np.ndarray, tuple[str, ...]]  # images, labels, class names


def _parse_mnist(blobs: dict[str, bytes], needed: tuple[str, ...]) -> _Parsed:
    images_file, labels_file = needed
    images = _parse_idx(blobs[images_file], images_file, magic=2051, ndim=3)
    labels = _parse_idx(blobs[labels_file], labels_file, magic=2049, ndim=1)
    if images.shape[1:] != (28, 28):
        raise DatasetError(f"{images_file} holds {images.shape[1:]} images, expected 28x28", _REFETCH_HINT)
    labels = _check_labels(labels.astype(np.int64), labels_file, 10)
    return images, labels, tuple(str(i) for i in range(10))


def _parse_idx(data: bytes, file_name: str, *, magic: int, ndim: int) -> np.ndarray:
    try:
        raw = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(f"{file_name} is not a valid gzip file ({exc})", _REFETCH_HINT) from exc
    header_bytes = 4 * (1 + ndim)
    if len(raw) < header_bytes:
        raise DatasetError(f"{file_name} is too short for an IDX header", _REFETCH_HINT)
    found_magic, *dims = struct.unpack(f">{1 + ndim}i", raw[:header_bytes])
    if found_magic != magic:
        raise DatasetError(f"{file_name} has IDX magic {found_magic}, expected {magic}", _REFETCH_HINT)
    promised = int(np.prod(dims))
    if len(raw) - header_bytes != promised:
        raise DatasetError(
            f"{file_name} holds {len(raw) - header_bytes} bytes of data, its header promises {promised}",
            _REFETCH_HINT,
        )
    # A copy, so callers get a writable array rather than a view of immutable bytes.
    return np.frombuffer(raw, dtype=np.uint8, offset=header_bytes).reshape(dims).copy()


def _parse_cifar(blobs: dict[str, bytes], needed: tuple[str, ...]) -> _Parsed:
    *batch_files, meta_file = needed
    images, labels = [], []
    for file_name in batch_files:
        batch = _unpickle(blobs[file_name], file_name)
        data, batch_labels = batch.get(b"data"), batch.get(b"labels")
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.shape[1:] != (3072,):
            raise DatasetError(f"{file_name} has no uint8 b'data' array of 3072-byte rows", _REFETCH_HINT)
        if not isinstance(batch_labels, list) or len(batch_labels) != len(data):
            raise DatasetError(f"{file_name} has no b'labels' list with one label per image", _REFETCH_HINT)
        # Rows are stored channel-major (R, G, B planes of 32x32); the dataset is HWC.
        images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.append(np.asarray(batch_labels, dtype=np.int64))
    meta = _unpickle(blobs[meta_file], meta_file)
    label_names = meta.get(b"label_names")
    if not isinstance(label_names, list) or len(label_names) != 10:
        raise DatasetError(f"{meta_file} has no b'label_names' list of 10 names", _REFETCH_HINT)
    class_names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in label_names)
    all_images = np.ascontiguousarray(np.concatenate(images))
    return all_images, _check_labels(np.concatenate(labels), batch_files[0], 10), class_names


def _unpickle(data: bytes, file_name: str) -> dict:
    # Unpickling can run arbitrary code. It is safe here only because ``data`` already
    # matched the publisher's sha256 in _verify; never call this on unverified bytes.
    try:
        batch = pickle.loads(data, encoding="bytes")
    except Exception as exc:  # pickle raises many types for malformed input
        what = f"{file_name} is not a readable CIFAR-10 pickle ({type(exc).__name__})"
        raise DatasetError(what, _REFETCH_HINT) from exc
    if not isinstance(batch, dict):
        raise DatasetError(f"{file_name} does not hold a CIFAR-10 dict", _REFETCH_HINT)
    return batch


def _check_labels(labels: np.ndarray, file_name: str, num_classes: int) -> np.ndarray:
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DatasetError(
            f"{file_name} has labels in [{labels.min()}, {labels.max()}], expected 0 to {num_classes - 1}",
            _REFETCH_HINT,
        )
    return labels


# -- .npz datasets ----------------------------------------------------------------------------


def _load_npz(path: Path, split: str) -> Dataset:
    if not path.is_file():
        raise DatasetError(f"dataset file {path} not found", "check the path")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror or exc}", "check its permissions") from exc
    digest = FileDigest(os.path.abspath(path), hashlib.sha256(data).hexdigest(), len(data))
    hint = "save it with numpy.savez(path, x=images, y=labels, class_names=names)"
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise DatasetError(f"{path} is a single .npy array, not an .npz archive", hint)
            missing = [key for key in ("x", "y") if key not in npz.files]
            if missing:
                raise DatasetError(f"{path} has no array {' or '.join(repr(k) for k in missing)}", hint)
            images, labels = npz["x"], npz["y"]
            names = npz["class_names"] if "class_names" in npz.files else None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        # allow_pickle=False: object arrays are refused rather than unpickled.
        raise DatasetError(f"{path} is not a readable .npz file ({exc})", hint) from exc

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


# -- downloading ------------------------------------------------------------------------------


def _download_target(data_dir: Path | None, candidates: list[Path]) -> Path | None:
    """--data-dir when given and writable, else the last writable candidate (normally the cache)."""
    order = [Path(data_dir).expanduser()] if data_dir is not None else []
    order += reversed(candidates)
    return next((d for d in order if _writable(d)), None)


def _writable(directory: Path) -> bool:
    existing = Path(os.path.abspath(directory))
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)


def _download_split(name: str, split: str, target: Path, progress: bool) -> None:
    """Download the files of a split into ``target``; raises DownloadFailed."""
    if name == "mnist":
        needed, _ = _SPLIT_FILES[(name, split)]
        for file_name in needed:
            if not (target / _MNIST_DIR / file_name).is_file():
                urls = [u.format(file_name) for u in MNIST_URLS]
                fetch(file_name, urls, target / _MNIST_DIR, _CHECKSUMS[file_name], progress)
        return
    fetch(_CIFAR_ARCHIVE, list(CIFAR_URLS), target, _CHECKSUMS[_CIFAR_ARCHIVE], progress)
    archive = target / _CIFAR_ARCHIVE
    # Extracted once, so later loads read the loose files instead of decompressing 170 MB.
    # Each member is placed atomically; until all are, the verified archive stays and is read.
    destination = target / _CIFAR_DIR
    try:
        for file_name, data, _ in _archive_members(archive, _CIFAR_MEMBERS):
            if not (destination / file_name).is_file():
                write_atomically(destination, file_name, [data], _CHECKSUMS[file_name])
        archive.unlink()
    except OSError as exc:
        raise DownloadFailed(f"cannot extract {archive}: {exc}") from exc
