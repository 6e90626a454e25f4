"""Reading .npz files that a user hands over (datasets, --sample inputs) without trusting their headers.

An .npz is a zip of .npy arrays, and both layers declare sizes: the zip directory each
member's inflated size, each array's header its shape and dtype. Both are checked against
what the file really holds before numpy allocates anything, so a 3 KB file that claims
2^40 elements, or a zip bomb, is refused with one line instead of exhausting memory.
"""

from __future__ import annotations

__all__ = ["check_npz", "read_npz_bytes"]

import io
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ._errors import HalfconvError
from ._text import one_line

# An archive member may inflate to at most this many times the file's size (zip bombs),
# and no array may declare more bytes than its member holds.
_MAX_INFLATION = 256
_MAX_INFLATED_FLOOR = 64 << 20


def read_npz_bytes(path: Path, what: str, hint: str, error: type[HalfconvError]) -> bytes:
    """The bytes of the file ``path`` (``what`` names it in messages); anything but a regular file is refused."""
    if not path.exists():
        raise error(f"{what} {path} not found", "check the path")
    if not path.is_file():
        raise error(f"{what} {path} is not a regular file", hint)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}", "check its permissions") from None


def check_npz(data: bytes, path: Path | str, hint: str, error: type[HalfconvError]) -> None:
    """Refuse what is not an .npz of plain arrays, and arrays whose headers promise more than the file holds.

    Checked from the zip directory and each array's header, before anything is allocated.
    """
    if data.startswith(b"\x93NUMPY"):
        raise error(f"{path} is a single .npy array, not an .npz archive", hint)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise error(f"{path} is not a readable .npz file ({one_line(exc)})", hint) from None
    budget = max(_MAX_INFLATION * len(data), _MAX_INFLATED_FLOOR)
    if sum(m.file_size for m in members) > budget:
        raise error(f"{path} would inflate to {sum(m.file_size for m in members):,} bytes from {len(data):,}", hint)
    for member in members:
        if not member.filename.endswith(".npy"):
            continue
        try:
            with archive.open(member) as stream:
                version = np.lib.format.read_magic(stream)
                read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, _, dtype = read_header(stream)
                header = stream.tell()
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise error(f"{path}: array {member.filename} is not readable ({one_line(exc)})", hint) from None
        declared = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
        if dtype.hasobject or declared > member.file_size - header:
            detail = "holds objects" if dtype.hasobject else f"declares {declared:,} bytes but holds {member.file_size - header:,}"
            raise error(f"{path}: array {member.filename} {detail}", hint)
