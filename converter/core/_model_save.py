"""Writing a model: the output checks, the staging folder that commits all or nothing, and the save.

Nothing partial is ever left at the output path: a conversion writes into a staging
folder beside it, and ``AtomicOutput.commit`` moves the files into place only once the
whole conversion and its validation succeeded.
"""

from __future__ import annotations

__all__ = [
    "EXTERNAL_DATA_THRESHOLD_BYTES",
    "AtomicOutput",
    "SaveTimings",
    "check_output_path",
    "data_file_for",
    "save_for_runtime",
    "save_model",
    "tensor_bytes",
]

import dataclasses
import os
import shutil
import time
import uuid
from pathlib import Path

import onnx_ir as ir

from ._errors import InvalidModelError, OutputError
from ._graphs import all_graphs
from ._text import one_line

# Models whose tensors add up to more than this are written with external data, well
# below protobuf's 2 GiB message limit.
EXTERNAL_DATA_THRESHOLD_BYTES = 1536 * 1024 * 1024
# Tensors of at most this many bytes stay in the model file when the rest is external (ir.save's default).
_INLINE_TENSOR_BYTES = 256
# Threads that cast and write external tensors: one casts the next tensor while one writes.
_WRITERS = 2


def check_output_path(input_path: Path, output_path: Path, force: bool, input_external: tuple[Path, ...]) -> None:
    if output_path.resolve() == input_path.resolve():
        raise OutputError(f"output {output_path} is the input model", "choose another path with -o; the input is never modified")
    data_path = data_file_for(output_path)
    if data_path.resolve() in {p.resolve() for p in input_external}:
        raise OutputError(f"output data file {data_path} is the input's external data", "choose another output path with -o")
    if output_path.is_dir():
        raise OutputError(f"output {output_path} is a directory", "pass a file path with -o")
    if not output_path.parent.is_dir():
        raise OutputError(f"output directory {output_path.parent} does not exist", "create it or choose another path")
    if not force:
        for existing in (output_path, data_path):
            if existing.exists():
                raise OutputError(f"{existing} already exists", "pass --force to overwrite it")
    if not os.access(output_path.parent, os.W_OK):
        raise OutputError(f"cannot write to {output_path.parent}", "choose a writable directory with -o")


def data_file_for(output_path: Path) -> Path:
    return output_path.with_name(output_path.name + ".data")


class AtomicOutput:
    """A staging folder beside ``final_path``; ``commit`` renames its files into place."""

    def __init__(self, final_path: Path) -> None:
        self.final_path = final_path
        self.staging = final_path.parent / f".{final_path.name}.halfconv-{uuid.uuid4().hex[:8]}"
        self.model_path = self.staging / final_path.name
        self.data_name = data_file_for(final_path).name

    def __enter__(self) -> AtomicOutput:
        try:
            self.staging.mkdir()
        except OSError as error:
            raise OutputError(f"cannot write to {self.final_path.parent}: {error.strerror}", "choose a writable directory with -o") from None
        return self

    def commit(self) -> Path | None:
        """Move the staged files into place; returns the external data path, if any."""
        staged_data = self.staging / self.data_name
        final_data = data_file_for(self.final_path)
        moved_data = False
        if staged_data.exists() and staged_data.stat().st_size == 0:
            # onnx-ir writes an empty data file when every tensor is under its size
            # threshold; the model references nothing in it, so it is not kept.
            staged_data.unlink()
        if staged_data.exists():
            os.replace(staged_data, final_data)
            moved_data = True
        elif final_data.exists():
            # A stale data file of an earlier run would otherwise sit beside the new model.
            final_data.unlink()
        try:
            os.replace(self.model_path, self.final_path)
        except BaseException:
            if moved_data:
                final_data.unlink(missing_ok=True)
            raise
        return final_data if moved_data else None

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


@dataclasses.dataclass(frozen=True)
class SaveTimings:
    serialise_s: float  # onnx-ir to protobuf bytes, casting the weights the model file holds
    write_s: float  # the files on disk; external weights are cast as they are written


def save_model(model: ir.Model, output: AtomicOutput, use_external_data: bool) -> SaveTimings:
    """Write ``model`` into the staging folder of ``output``; the model's tensors become external when asked."""
    started = time.perf_counter()
    try:
        if use_external_data:
            # As ir.save does, with one worker casting the next tensor while one is written.
            ir.external_data.unload_from_model(
                model, output.staging, output.data_name, size_threshold_bytes=_INLINE_TENSOR_BYTES, max_workers=_WRITERS
            )
        external_s = time.perf_counter() - started
        started = time.perf_counter()
        data = ir.serde.serialize_model(model).SerializeToString()
        serialise_s = time.perf_counter() - started
        started = time.perf_counter()
        _write_bytes(output.model_path, data)
    except OSError as error:
        raise OutputError(f"cannot write {output.final_path}: {error.strerror}", "check free disk space and permissions") from None
    except ir.serde.SerdeError as error:
        # The input parsed, but holds a field protobuf cannot write back (e.g. a name that is not UTF-8).
        cause = error.__cause__ or error
        raise InvalidModelError(
            f"the model holds a value that cannot be written back: {type(cause).__name__}: {one_line(cause)}",
            "the input is damaged; check it with onnx.checker or re-export it",
        ) from None
    return SaveTimings(serialise_s, external_s + time.perf_counter() - started)


def _write_bytes(path: Path, data: bytes) -> None:
    with path.open("wb") as handle:
        handle.write(data)


def save_for_runtime(model: ir.Model, path: Path, external: bool) -> bool:
    """Write a model that halfconv runs itself (a numerics or search model) where ORT can load it.

    Its weights go to ``PATH.data`` when the source had external data or when they pass
    protobuf's limit (float32 copies of float16 weights take twice the bytes). Returns
    whether they did.
    """
    external = external or tensor_bytes(model) > EXTERNAL_DATA_THRESHOLD_BYTES
    if external:
        ir.save(model, path, external_data=f"{path.name}.data")
    else:
        ir.save(model, path)
    return external


def tensor_bytes(model: ir.Model) -> int:
    total = 0
    for graph in all_graphs(model):
        for value in graph.initializers.values():
            if value.const_value is not None:
                total += value.const_value.nbytes
    return total
