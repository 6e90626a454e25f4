"""MNIST, CIFAR-10 and .npz datasets, verified against the publishers' checksums.

A split is looked up in the candidate data directories (``--data-dir``,
``$HALFCONV_DATA_DIR``, ``~/.cache/halfconv/datasets``, in that order); the first one
that holds every file the split needs wins. Each file is checked against the sha256 table
below before it is parsed, so a truncated download or an edited file is refused instead of
being evaluated. The MNIST test split also ships with the package (``bundled/``), so
that evaluating on it works offline; it is looked up after those directories. When no
directory holds the files, they are downloaded (see :mod:`._download`) into the first
writable candidate, normally the cache.
"""

from __future__ import annotations

__all__ = ["BUNDLED_DIR", "DATASETS", "data_dir_candidates", "load_dataset"]

import dataclasses
import os
from pathlib import Path

from ..core import DatasetError, DatasetUnavailableError, UsageError
from ._download import CIFAR_URLS, MNIST_URLS, DownloadFailed, fetch, write_atomically
from ._files import (
    ARCHIVE_MEMBERS,
    CHECKSUMS,
    CIFAR_ARCHIVE,
    CIFAR_DIR,
    DATA_DIR_ENV,
    MNIST_DIR,
    REFETCH_HINT,
    SPLIT_FILES,
    SPLITS,
    Dataset,
    archive_members,
    read_archive,
    read_verified,
)
from ._parse import load_npz, parse_cifar, parse_mnist

DATASETS: tuple[str, ...] = ("mnist", "cifar10")
# The splits that ship with the package, verified like any other file: the MNIST test set.
BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"


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
    if split not in SPLITS:
        raise UsageError(f"unknown split '{split}'", "use test or train")
    if str(name).lower().endswith(".npz"):
        return load_npz(Path(name), split)
    if name not in DATASETS:
        raise UsageError(
            f"unknown dataset '{name}'", "use mnist, cifar10 or a path to an .npz with arrays x and y"
        )

    candidates = data_dir_candidates(data_dir)
    for directory in candidates:
        source = _find(name, split, directory)
        if source is not None:
            return _read(name, split, source)
    source = _find(name, split, BUNDLED_DIR)
    if source is not None:
        return _read(name, split, source)

    target = _download_target(data_dir, candidates)
    hint_dir = target if target is not None else candidates[-1]
    what = f"{_describe_split(name, split)} not found in {', '.join(str(d) for d in candidates)}"
    if not download:
        raise DatasetUnavailableError(what, _placement_hint(name, hint_dir))
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
    raise DatasetUnavailableError(f"{what}; download failed ({reason})", _placement_hint(name, hint_dir))


# -- finding files ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Source:
    directory: Path
    files: dict[str, Path]  # file name -> loose file; empty when the archive is read
    archive: Path | None  # cifar-10-python.tar.gz, read when the loose files are incomplete


def _find(name: str, split: str, directory: Path) -> _Source | None:
    """Where ``directory`` holds every file the split needs, or None."""
    needed, _ = SPLIT_FILES[(name, split)]
    subdir = directory / (MNIST_DIR if name == "mnist" else CIFAR_DIR)
    files: dict[str, Path] = {}
    for file_name in needed:
        # The publisher's folder first, then the file placed flat in the data directory.
        path = next((p for p in (subdir / file_name, directory / file_name) if p.is_file()), None)
        if path is None:
            break
        files[file_name] = path
    else:
        return _Source(directory, files, None)
    archive = directory / CIFAR_ARCHIVE
    if name == "cifar10" and archive.is_file():
        return _Source(directory, {}, archive)
    return None


def _describe_split(name: str, split: str) -> str:
    needed, _ = SPLIT_FILES[(name, split)]
    if name == "cifar10":
        return f"CIFAR-10 {split} files ({', '.join(needed)}, or {CIFAR_ARCHIVE})"
    return f"MNIST {split} files ({', '.join(needed)})"


def _placement_hint(name: str, directory: Path) -> str:
    if name == "mnist":
        place = f"put the files in {directory / MNIST_DIR}/"
    else:
        place = f"put {CIFAR_ARCHIVE} in {directory}/ or its files in {directory / CIFAR_DIR}/"
    return f"{place} or set {DATA_DIR_ENV} to a folder that holds them"


# -- reading and verifying --------------------------------------------------------------------


def _read(name: str, split: str, source: _Source) -> Dataset:
    needed, num_images = SPLIT_FILES[(name, split)]
    if source.archive is not None:
        blobs, digests = read_archive(source.archive, needed)
    else:
        blobs, digests = {}, []
        for file_name in needed:
            data, digest = read_verified(source.files[file_name], file_name)
            blobs[file_name] = data
            digests.append(digest)
    if name == "mnist":
        images, labels, class_names = parse_mnist(blobs, needed)
    else:
        images, labels, class_names = parse_cifar(blobs, needed)
    if len(images) != num_images or len(labels) != num_images:
        raise DatasetError(
            f"{_describe_split(name, split)} hold {len(images)} images and {len(labels)} labels,"
            f" expected {num_images}",
            REFETCH_HINT,
        )
    return Dataset(name, split, images, labels, class_names, tuple(digests))


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
        needed, _ = SPLIT_FILES[(name, split)]
        for file_name in needed:
            if not (target / MNIST_DIR / file_name).is_file():
                urls = [u.format(file_name) for u in MNIST_URLS]
                fetch(file_name, urls, target / MNIST_DIR, CHECKSUMS[file_name], progress)
        return
    fetch(CIFAR_ARCHIVE, list(CIFAR_URLS), target, CHECKSUMS[CIFAR_ARCHIVE], progress)
    archive = target / CIFAR_ARCHIVE
    # Extracted once, so later loads read the loose files instead of decompressing 170 MB.
    # Each member is placed atomically; until all are, the verified archive stays and is read.
    destination = target / CIFAR_DIR
    try:
        for file_name, data, _ in archive_members(archive, ARCHIVE_MEMBERS):
            if not (destination / file_name).is_file():
                write_atomically(destination, file_name, [data], CHECKSUMS[file_name])
        archive.unlink()
    except OSError as exc:
        raise DownloadFailed(f"cannot extract {archive}: {exc}") from exc
