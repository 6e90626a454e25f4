"""Reading models safely (writing them is ``_model_save``).

``load_model`` turns every way a file can fail to be a model into an
:class:`InvalidModelError` or :class:`InputNotFoundError` with one clear sentence.
"""

from __future__ import annotations

__all__ = [
    "LoadedModel",
    "check_input_model",
    "load_model",
    "model_size_bytes",
    "read_model_proto",
]

import dataclasses
import functools
import logging
import math
import os
from collections.abc import Iterator
from pathlib import Path

import onnx
import onnx_ir as ir
from google.protobuf.message import DecodeError

from ._errors import InputNotFoundError, InvalidModelError
from ._graphs import all_graph_protos
from ._text import one_line

_MAGIC = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"PK\x03\x04": "a zip archive (a .keras or TorchScript file?)",
    b"\x1f\x8b": "a gzip file",
    b"%PDF": "a PDF document",
    b"\x89HDF": "an HDF5 file (a Keras .h5 model?)",
    b"\x80\x02": "a Python pickle",
    b"GIF8": "a GIF image",
}


@dataclasses.dataclass(frozen=True)
class LoadedModel:
    path: Path
    model: ir.Model
    external_files: tuple[Path, ...]


def _check_input_file(path: Path) -> None:
    if not path.exists():
        raise InputNotFoundError(f"{path}: no such file", "check the path")
    if path.is_dir():
        raise InputNotFoundError(f"{path} is a directory, not an ONNX file", "pass the path of a .onnx file")
    if not os.access(path, os.R_OK):
        raise InputNotFoundError(f"{path} is not readable", "check its permissions")
    if path.stat().st_size == 0:
        raise InvalidModelError(f"{path} is empty (0 bytes)", "re-export or re-download the model")


def _iter_tensor_protos(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    for sub in all_graph_protos(graph):
        yield from sub.initializer
        for node in sub.node:
            for attr in node.attribute:
                if attr.HasField("t"):
                    yield attr.t
                yield from attr.tensors


def _check_external_data(path: Path, proto: onnx.ModelProto) -> tuple[Path, ...]:
    base = path.parent.resolve()
    files: dict[Path, None] = {}
    for tensor in _iter_tensor_protos(proto.graph):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        info = {entry.key: entry.value for entry in tensor.external_data}
        location = info.get("location", "")
        if "\x00" in location:
            raise InvalidModelError(f"tensor '{tensor.name}' has an external data location with a NUL byte", "re-export the model")
        if not location or os.path.isabs(location):
            raise InvalidModelError(
                f"tensor '{tensor.name}' has external data location '{location}', which is not relative to the model",
                "keep external data files next to the model",
            )
        data_path = (base / location).resolve()
        if base not in data_path.parents:
            raise InvalidModelError(
                f"tensor '{tensor.name}' points at external data '{location}' outside the model's directory",
                "halfconv refuses such paths; move the data file next to the model",
            )
        if not data_path.is_file():
            raise InvalidModelError(
                f"external data file '{location}' for tensor '{tensor.name}' is missing",
                f"put it in {base}",
            )
        offset, length = (_external_int(tensor, info, key) for key in ("offset", "length"))
        needed = _tensor_nbytes(tensor)
        if "length" in info and needed is not None and length != needed:
            raise InvalidModelError(
                f"tensor '{tensor.name}' has {length:,} bytes of external data, but its shape {list(tensor.dims)} takes {needed:,}",
                "the data file belongs to another model, or the model was written wrongly; re-export it",
            )
        if offset + (length if "length" in info else needed or 0) > data_path.stat().st_size:
            raise InvalidModelError(
                f"external data file '{location}' is shorter than tensor '{tensor.name}' needs",
                "the data file is truncated or belongs to another model",
            )
        files[data_path] = None
    return tuple(files)


_TP = onnx.TensorProto
_TENSOR_TYPES = frozenset(t for t in _TP.DataType.values() if t != _TP.UNDEFINED)
_HALF_BYTE_TYPES = frozenset(getattr(_TP, n) for n in ("INT4", "UINT4", "FLOAT4E2M1", "INT2", "UINT2") if hasattr(_TP, n))
_COMPLEX_TYPES = frozenset({_TP.COMPLEX64, _TP.COMPLEX128})
_TYPED_FIELDS: dict[int, str] = {  # where the spec keeps a type's values when raw_data is not used
    _TP.FLOAT: "float_data",
    _TP.COMPLEX64: "float_data",
    _TP.DOUBLE: "double_data",
    _TP.COMPLEX128: "double_data",
    _TP.INT64: "int64_data",
    _TP.UINT32: "uint64_data",
    _TP.UINT64: "uint64_data",
    _TP.STRING: "string_data",
}


def _check_tensor(tensor: onnx.TensorProto) -> None:
    """Refuse a tensor whose type is unknown or whose data does not hold what its dims declare.

    Checked on the protobuf, before any array is made, so a tensor that claims
    [2**31, 2**31] while holding 10 values never reaches an allocation.
    """
    name = tensor.name or "(unnamed)"
    if tensor.data_type not in _TENSOR_TYPES:
        raise InvalidModelError(f"tensor '{name}' has data type {tensor.data_type}, which ONNX does not define", "re-export the model")
    if any(d < 0 for d in tensor.dims):
        raise InvalidModelError(f"tensor '{name}' has a negative dimension {list(tensor.dims)}", "re-export the model")
    count = math.prod(tensor.dims)
    # Each read of a bytes field copies it: read its length once.
    held_bytes = len(tensor.raw_data) if tensor.HasField("raw_data") else 0
    if held_bytes:
        needed = _tensor_nbytes(tensor) or 0
        if held_bytes != needed:
            type_name = _TP.DataType.Name(tensor.data_type)
            raise InvalidModelError(
                f"tensor '{name}' holds {held_bytes:,} bytes, but {type_name} of shape {list(tensor.dims)} takes {needed:,}",
                "the file is damaged or was written wrongly; re-export the model",
            )
        return
    field = _TYPED_FIELDS.get(tensor.data_type, "int32_data")
    held = len(getattr(tensor, field))
    if tensor.data_type in _COMPLEX_TYPES:
        held //= 2
    elif tensor.data_type in _HALF_BYTE_TYPES:
        held *= 2
    if held < count or (held > count and tensor.data_type not in _HALF_BYTE_TYPES):
        raise InvalidModelError(
            f"tensor '{name}' holds {held:,} values, but its shape {list(tensor.dims)} takes {count:,}",
            "the file is damaged or was written wrongly; re-export the model",
        )


def _check_tensors(proto: onnx.ModelProto) -> None:
    for tensor in _iter_tensor_protos(proto.graph):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            _check_tensor(tensor)


def _external_int(tensor: onnx.TensorProto, info: dict[str, str], key: str) -> int:
    text = info.get(key, "0")
    if not text.isdigit():
        raise InvalidModelError(f"tensor '{tensor.name}' has external data {key} '{text[:40]}', not a number of bytes", "re-export the model")
    return int(text)


def _tensor_nbytes(tensor: onnx.TensorProto) -> int | None:
    """The bytes a tensor's data takes, or None for a type without a fixed size (strings)."""
    if tensor.data_type not in _TENSOR_TYPES or tensor.data_type == _TP.STRING:
        return None
    count = int(math.prod(tensor.dims))
    if tensor.data_type in _HALF_BYTE_TYPES:
        return -(-count // 2)
    return count * _itemsize(tensor.data_type)


@functools.cache
def _itemsize(data_type: int) -> int:
    return int(onnx.helper.tensor_dtype_to_np_dtype(data_type).itemsize)


def _check_opsets(path: Path, proto: onnx.ModelProto) -> None:
    known = onnx.defs.onnx_opset_version()
    for opset in proto.opset_import:
        if opset.domain in ("", "ai.onnx") and not 1 <= opset.version <= known:
            raise InvalidModelError(
                f"{path} imports opset {opset.version} of the ONNX domain; onnx {onnx.__version__} knows opsets 1 to {known}",
                "export the model at an opset this onnx knows",
            )


class _CollectWarnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def read_model_proto(path: str | os.PathLike[str]) -> tuple[onnx.ModelProto, tuple[Path, ...]]:
    """The model's protobuf without external tensor data, and its external data files.

    Raises InputNotFoundError / InvalidModelError with one clear sentence for every way
    the file can fail to be an ONNX model.
    """
    path = Path(path)
    _check_input_file(path)
    with path.open("rb") as handle:
        head = handle.read(8)
    for magic, what in _MAGIC.items():
        if head.startswith(magic):
            raise InvalidModelError(f"{path} is {what}, not an ONNX model", "pass an .onnx file")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except (DecodeError, RuntimeError, ValueError, UnicodeDecodeError) as error:
        raise InvalidModelError(
            f"{path} is not a valid ONNX protobuf ({type(error).__name__}: {one_line(error)})",
            "the file may be truncated or not an ONNX model; re-export it",
        ) from None
    if not proto.HasField("graph") or len(proto.graph.output) == 0 or proto.ir_version <= 0:
        raise InvalidModelError(
            f"{path} parsed as protobuf but holds no ONNX graph",
            "the file is truncated or not an ONNX model; re-export it",
        )
    _check_opsets(path, proto)
    external = _check_external_data(path, proto)
    _check_tensors(proto)
    return proto, external


def load_model(path: str | os.PathLike[str]) -> LoadedModel:
    """Load ``path`` as an onnx-ir model with lazily mapped external data."""
    path = Path(path)
    proto, external = read_model_proto(path)
    # onnx-ir logs a warning and carries on for some malformed graphs (a node input that
    # nothing defines); collect those instead of printing them, and let the checker decide.
    serde_logger = logging.getLogger("onnx_ir.serde")
    collected = _CollectWarnings()
    serde_logger.addHandler(collected)
    propagate, serde_logger.propagate = serde_logger.propagate, False
    try:
        model = ir.serde.deserialize_model(proto)
    except Exception as error:  # the deserializer raises plain exceptions on malformed graphs
        raise InvalidModelError(f"{path} cannot be read as an ONNX graph: {one_line(error)}", "re-export the model") from None
    finally:
        serde_logger.removeHandler(collected)
        serde_logger.propagate = propagate
    if collected.count:
        check_input_model(path)
    if external:  # a walk over every tensor, for models that have external ones
        ir.external_data.set_base_dir(model.graph, path.parent)
    return LoadedModel(path, model, external)


def check_input_model(path: Path, *, full: bool = False) -> None:
    """Run the ONNX checker on an input model; raises InvalidModelError if it fails.

    Called when a converted model fails the checker, or the conversion of a model fails,
    to tell a problem that the input already had from one that conversion introduced.
    ``full`` adds strict shape inference (a branch with the wrong number of outputs).
    """
    try:
        onnx.checker.check_model(str(path), full_check=full)
    except Exception as error:  # the checker raises several exception types
        # Some checker messages continue on the next lines ("of node: \nname: ..."); one line.
        raise InvalidModelError(
            f"{path} fails the ONNX checker: {one_line(error, 1000, join=True)}", "fix or re-export the model"
        ) from None


def model_size_bytes(path: Path, external_files: tuple[Path, ...]) -> int:
    """Bytes on disk of the model file and its external data files (as ``read_model_proto`` found them)."""
    return path.stat().st_size + sum(f.stat().st_size for f in external_files)
