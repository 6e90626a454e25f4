"""Downloading a published file: try each mirror, verify the checksum, rename it into place.

The bytes are streamed into a hidden temporary file beside the destination, which is renamed
into place only after its sha256 and md5 matched the publisher's, so a failure or Ctrl-C
leaves nothing partial behind. Which files a dataset needs and where they go is decided in
:mod:`._load`; this module fetches and writes them.
"""

from __future__ import annotations

__all__ = [
    "CIFAR_URLS",
    "MNIST_URLS",
    "Checksum",
    "ChecksumMismatch",
    "DownloadFailed",
    "fetch",
    "write_atomically",
]

import contextlib
import dataclasses
import hashlib
import http.client
import os
import sys
import tempfile
import urllib.error
import urllib.parse
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

# The publishers' mirrors, tried in order. An MNIST URL takes the file name.
MNIST_URLS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/{}",
    "http://yann.lecun.com/exdb/mnist/{}",
)
CIFAR_URLS: tuple[str, ...] = ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",)

_DOWNLOAD_TIMEOUT_S = 30.0
_CHUNK_BYTES = 1 << 20


@dataclasses.dataclass(frozen=True)
class Checksum:
    """What the publisher states about a file."""

    size_bytes: int | None  # None where the publisher does not state it
    md5: str
    sha256: str | None  # None where only the md5 is published (the CIFAR-10 archive)


class DownloadFailed(Exception):
    """Every URL failed; the message says why, in one line."""


class ChecksumMismatch(Exception):
    """What was written does not match the published checksum; the message says how."""


def _open_url(url: str, timeout_s: float) -> BinaryIO:
    """Open ``url`` for reading. Tests replace this to work without a network."""
    import urllib.request

    request = urllib.request.Request(url, headers={"User-Agent": "halfconv"})
    response: BinaryIO = urllib.request.urlopen(request, timeout=timeout_s)
    return response


def fetch(file_name: str, urls: list[str], destination: Path, expected: Checksum, progress: bool) -> None:
    """Download ``file_name`` into ``destination``, trying each URL until one verifies.

    Raises :class:`DownloadFailed`, naming each host and why it failed, when none does.
    """
    failures = []
    for url in urls:
        host = urllib.parse.urlsplit(url).netloc
        try:
            with _open_url(url, _DOWNLOAD_TIMEOUT_S) as response:
                chunks = _read_chunks(response, file_name, expected.size_bytes, progress)
                write_atomically(destination, file_name, chunks, expected)
            return
        except ChecksumMismatch as exc:
            failures.append(f"{host}: wrong checksum, {exc}")
        except urllib.error.HTTPError as exc:
            failures.append(f"{host}: HTTP {exc.code} {exc.reason}")
        except urllib.error.URLError as exc:
            failures.append(f"{host}: {exc.reason}")
        except (OSError, http.client.HTTPException, ValueError) as exc:
            failures.append(f"{host}: {exc}")
    raise DownloadFailed("; ".join(failures))


def _read_chunks(response: BinaryIO, file_name: str, total_bytes: int | None, progress: bool) -> Iterator[bytes]:
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total_bytes, unit="B", unit_scale=True, unit_divisor=1024, desc=file_name, file=sys.stderr)
    try:
        while chunk := response.read(_CHUNK_BYTES):
            if bar is not None:
                bar.update(len(chunk))
            yield chunk
    finally:
        if bar is not None:
            bar.close()


def write_atomically(destination: Path, file_name: str, chunks: Iterable[bytes], expected: Checksum) -> None:
    """Write ``chunks`` to a hidden temporary file, verify it, then rename it into place.

    Raises :class:`ChecksumMismatch` when the bytes do not match ``expected``; then, as on
    any other error or Ctrl-C, the temporary file is removed.
    """
    destination.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=destination, prefix=f".{file_name}.", suffix=".part")
    try:
        sha256, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
                sha256.update(chunk)
                md5.update(chunk)
        if expected.sha256 is not None and sha256.hexdigest() != expected.sha256:
            actual = sha256.hexdigest()
            raise ChecksumMismatch(f"sha256 {actual[:16]}..., expected {expected.sha256[:16]}...")
        if md5.hexdigest() != expected.md5:
            raise ChecksumMismatch(f"md5 {md5.hexdigest()}, expected {expected.md5}")
        os.replace(temporary, destination / file_name)
    except BaseException:  # Ctrl-C included: never leave a partial file behind
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
