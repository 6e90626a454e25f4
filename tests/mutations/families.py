"""The mutation families: byte-level, tensor, external data, graph, metadata, data files, CLI values, paths.

Every case is generated deterministically from the seeds (``seeds.py``) and a fixed random
seed, so a broken case reproduces by its family and name. ``all_cases`` is the full run;
``fast_cases`` is the subset CI runs: each structured case once, and fewer byte flips.
"""

from __future__ import annotations

import copy
import io
import os
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .runner import Case
from .seeds import Seeds, write_seeds

Setup = Callable[[Path], None]
FAST_TIMING = ("--latency-batch-sizes", "1", "--iters", "2", "--warmup", "0", "--quiet", "--provider", "cpu")
CONVERT = ("convert", "m.onnx", "-o", "out.onnx")
CONVERT_UNCHECKED = (*CONVERT, "--no-validate")
EVALUATE = ("evaluate", "m.onnx", "--dataset", "data.npz", "--limit", "32", "--report-dir", "rep", *FAST_TIMING)
RUN = ("run", "m.onnx", "--dataset", "data.npz", "--report-dir", "rep", *FAST_TIMING)
MODEL_COMMANDS = {"convert": CONVERT, "no-validate": CONVERT_UNCHECKED, "evaluate": EVALUATE}


# -- setting a case folder up -------------------------------------------------------------------


def _copy(source: Path, name: str | None = None) -> Setup:
    return lambda folder: (folder / (name or source.name)).write_bytes(source.read_bytes())


def _bytes(name: str, data: bytes) -> Setup:
    return lambda folder: (folder / name).write_bytes(data)


def _all(*setups: Setup) -> Setup:
    def setup(folder: Path) -> None:
        for step in setups:
            step(folder)

    return setup


def _cases(family: str, name: str, setup: Setup, commands: dict[str, tuple[str, ...]]) -> list[Case]:
    return [Case(family, f"{name} [{label}]", argv, setup) for label, argv in commands.items()]


# -- byte level --------------------------------------------------------------------------------


def _mutate_bytes(data: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
    buffer = bytearray(data)
    kind = ["flip", "zero", "swap", "varint", "truncate", "insert", "append", "dup"][int(rng.integers(8))]
    at = int(rng.integers(len(buffer)))
    if kind == "flip":
        buffer[at] ^= 1 << int(rng.integers(8))
    elif kind == "zero":
        buffer[at : at + int(rng.integers(1, 9))] = bytes(min(len(buffer) - at, 8))
    elif kind == "swap":
        other = int(rng.integers(len(buffer)))
        buffer[at], buffer[other] = buffer[other], buffer[at]
    elif kind == "varint":
        buffer[at:at] = b"\xff" * int(rng.integers(5, 12))
    elif kind == "truncate":
        del buffer[at:]
    elif kind == "insert":
        buffer[at:at] = rng.integers(0, 256, int(rng.integers(1, 16)), dtype=np.uint8).tobytes()
    elif kind == "append":
        buffer += rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8).tobytes()
    else:
        length = int(rng.integers(1, 32))
        buffer[at:at] = buffer[at : at + length]
    return f"{kind}@{at}", bytes(buffer)


def byte_cases(seeds: Seeds, count: int) -> list[Case]:
    """``count`` random byte mutations, spread over the seed models, most of them converted."""
    rng = np.random.default_rng(20261202)
    sources = [seeds.control, seeds.classifier, seeds.external]
    cases = []
    for k in range(count):
        source = sources[k % len(sources)]
        extra: list[Setup] = []
        target = source
        if source == seeds.external:
            data_file = seeds.folder / "external.onnx.data"
            if k % 2:
                target = data_file
                extra.append(_copy(source, "m.onnx"))
            else:
                extra.append(_copy(data_file))
        what, data = _mutate_bytes(target.read_bytes(), rng)
        name = "m.onnx" if target == source else target.name
        setup = _all(_bytes(name, data), *extra, _copy(seeds.data), _copy(seeds.sample))
        command = EVALUATE if k % 5 == 4 else CONVERT_UNCHECKED if k % 7 == 3 else CONVERT
        cases.append(Case("bytes", f"#{k} {target.name} {what}", command, setup))
    return cases


# -- proto level: tensors, external data, graphs, metadata ---------------------------------------


def _proto_case(family: str, name: str, seed: Path, mutate: Callable[[onnx.ModelProto], None], seeds: Seeds, commands: dict[str, tuple[str, ...]] | None = None, extra: Iterable[Setup] = ()) -> list[Case]:
    proto = onnx.load(str(seed), load_external_data=False)
    mutate(proto)
    setup = _all(_bytes("m.onnx", proto.SerializeToString()), _copy(seeds.data), _copy(seeds.sample), *extra)
    return _cases(family, name, setup, commands or MODEL_COMMANDS)


def _initializer(proto: onnx.ModelProto, name: str) -> TensorProto:
    return next(t for t in proto.graph.initializer if t.name == name)


def _set(tensor_name: str, **fields: object) -> Callable[[onnx.ModelProto], None]:
    def mutate(proto: onnx.ModelProto) -> None:
        tensor = _initializer(proto, tensor_name)
        for key, value in fields.items():
            if key == "dims":
                del tensor.dims[:]
                tensor.dims.extend(value)  # type: ignore[arg-type]
            else:
                setattr(tensor, key, value)

    return mutate


def _raw(name: str, change: Callable[[bytes], bytes]) -> Callable[[onnx.ModelProto], None]:
    def mutate(proto: onnx.ModelProto) -> None:
        tensor = _initializer(proto, name)
        tensor.raw_data = change(tensor.raw_data)

    return mutate


def _input_dims(*dims: int) -> Callable[[onnx.ModelProto], None]:
    def mutate(proto: onnx.ModelProto) -> None:
        shape = proto.graph.input[0].type.tensor_type.shape
        del shape.dim[:]
        for d in dims:
            shape.dim.add().dim_value = d

    return mutate


def _constant_dims(*dims: int) -> Callable[[onnx.ModelProto], None]:
    def mutate(proto: onnx.ModelProto) -> None:
        tensor = proto.graph.node[0].attribute[0].t
        del tensor.dims[:]
        tensor.dims.extend(dims)

    return mutate


def tensor_cases(seeds: Seeds) -> list[Case]:
    c, k = seeds.classifier, seeds.control
    table: list[tuple[str, Path, Callable[[onnx.ModelProto], None]]] = [
        ("data_type 99", c, _set("W2", data_type=99)),
        ("data_type 0", c, _set("B1", data_type=0)),
        ("data_type STRING with raw data", c, _set("B1", data_type=TensorProto.STRING)),
        ("data_type FLOAT16, float32 bytes", c, _set("W2", data_type=TensorProto.FLOAT16)),
        ("raw_data one byte short", c, _raw("W2", lambda b: b[:-1])),
        ("raw_data one byte long", c, _raw("W2", lambda b: b + b"\0")),
        ("raw_data empty", c, _raw("W1", lambda b: b"")),
        ("dims 2^31 x 2^31", c, _set("W2", dims=[2**31, 2**31])),
        ("dims 2^62", c, _set("B1", dims=[2**62])),
        ("dims negative", c, _set("B1", dims=[-16])),
        ("dims zero", c, _set("B1", dims=[0])),
        ("dims swapped", c, _set("W2", dims=[10, 16])),
        ("dims extra axis", c, _set("W2", dims=[16, 10, 1])),
        ("Constant dims 2^31 x 2^31", k, _constant_dims(2**31, 2**31)),
        ("Constant dims 2^40", k, _constant_dims(2**40)),
        ("Constant dims negative", k, _constant_dims(-2, 4)),
        ("input dims 2^62", c, _input_dims(2**62, 1, 28, 28)),
        ("input dims 2^40", c, _input_dims(2, 2**40, 7, 5)),
        ("input dims zero", c, _input_dims(0, 1, 28, 28)),
        ("input dims wrong rank", c, _input_dims(1, 28, 28)),
        ("input dims 10^6 batch", c, _input_dims(1_000_000, 1, 28, 28)),
        ("float_data and raw_data", c, lambda p: _initializer(p, "B1").float_data.extend([1.0] * 16)),
        ("float_data too short", c, _float_data("B1", 3)),
        ("int64 data in a float tensor", c, lambda p: (_initializer(p, "B1").ClearField("raw_data"), _initializer(p, "B1").int64_data.extend([1] * 16))),
        ("NaN weights", c, _raw("W2", lambda b: np.full(160, np.nan, np.float32).tobytes())),
        ("huge weights", c, _raw("W2", lambda b: np.full(160, 3e38, np.float32).tobytes())),
        ("initializer without a name", c, _set("B1", name="")),
        ("duplicate initializer", c, lambda p: p.graph.initializer.append(copy.deepcopy(_initializer(p, "B1")))),
        ("segment set", c, lambda p: _initializer(p, "B1").segment.__setattr__("begin", 3)),
    ]
    cases: list[Case] = []
    for name, seed, mutate in table:
        cases += _proto_case("tensor", name, seed, mutate, seeds)
    return cases


def _float_data(name: str, count: int) -> Callable[[onnx.ModelProto], None]:
    def mutate(proto: onnx.ModelProto) -> None:
        tensor = _initializer(proto, name)
        tensor.ClearField("raw_data")
        tensor.float_data.extend([0.5] * count)

    return mutate


def _external(**entries: str) -> Callable[[onnx.ModelProto], None]:
    def mutate(proto: onnx.ModelProto) -> None:
        tensor = _initializer(proto, "W2")
        current = {e.key: e.value for e in tensor.external_data}
        current.update(entries)
        del tensor.external_data[:]
        for key, value in current.items():
            if value != "<drop>":
                entry = tensor.external_data.add()
                entry.key, entry.value = key, value

    return mutate


def external_cases(seeds: Seeds) -> list[Case]:
    data = seeds.folder / "external.onnx.data"
    w2 = _initializer(onnx.load(str(seeds.external), load_external_data=False), "W2")
    entry = {e.key: e.value for e in w2.external_data}
    offset, length = int(entry.get("offset", "0")), int(entry["length"])
    table: list[tuple[str, Callable[[onnx.ModelProto], None], list[Setup]]] = [
        ("location with NUL", _external(location="external.onnx.data\0x"), []),
        ("location outside the folder", _external(location="../external.onnx.data"), []),
        ("location absolute", _external(location="/etc/hostname"), []),
        ("location a folder", _external(location="sub"), [lambda f: (f / "sub").mkdir()]),
        ("location missing", _external(location="gone.data"), []),
        ("location empty", _external(location=""), []),
        ("location /dev/zero", _external(location="/dev/zero"), []),
        ("location a FIFO", _external(location="pipe"), [lambda f: os.mkfifo(f / "pipe")]),
        ("offset 1e3", _external(offset="1e3"), []),
        ("offset negative", _external(offset="-4"), []),
        ("offset beyond the file", _external(offset=str(10**9)), []),
        ("offset 2^63", _external(offset=str(2**63)), []),
        ("offset not a number", _external(offset="abc"), []),
        ("length 1e3", _external(length="1e3"), []),
        ("length short by 4", _external(length=str(length - 4)), []),
        ("length long by 4", _external(length=str(length + 4)), []),
        ("length zero", _external(length="0"), []),
        ("length 2^62", _external(length=str(2**62)), []),
        ("length dropped", _external(length="<drop>"), []),
        ("offset and length past the end", _external(offset=str(offset + length), length=str(length)), []),
        ("unknown key", _external(checksum="00"), []),
        ("data location but inline data too", lambda p: _initializer(p, "W2").__setattr__("raw_data", b"\0" * 640), []),
        ("data file truncated", lambda p: None, [lambda f: (f / data.name).write_bytes(data.read_bytes()[:100])]),
        ("data file empty", lambda p: None, [lambda f: (f / data.name).write_bytes(b"")]),
    ]
    cases: list[Case] = []
    for name, mutate, extra in table:
        has_data = any(n.startswith("data file") for n in [name])
        setups = extra if has_data else [_copy(data), *extra]
        cases += _proto_case("external", name, seeds.external, mutate, seeds, extra=setups)
    return cases


def _node(proto: onnx.ModelProto, name: str) -> onnx.NodeProto:
    return next(n for n in proto.graph.node if n.name == name)


def _attribute(node: onnx.NodeProto, name: str) -> onnx.AttributeProto:
    return next(a for a in node.attribute if a.name == name)


def _body_to_float(proto: onnx.ModelProto) -> None:
    body = _attribute(_node(proto, "loop"), "body")
    body.ClearField("g")
    body.type = onnx.AttributeProto.FLOAT
    body.f = 1.5


def _opset(version: int) -> Callable[[onnx.ModelProto], None]:
    def mutate(proto: onnx.ModelProto) -> None:
        proto.opset_import[0].version = version

    return mutate


def graph_cases(seeds: Seeds) -> list[Case]:
    c, k = seeds.classifier, seeds.control
    table: list[tuple[str, Path, Callable[[onnx.ModelProto], None]]] = [
        ("Loop body a float", k, _body_to_float),
        ("If branch lost its output", k, lambda p: _attribute(_node(p, "if"), "then_branch").g.ClearField("output")),
        ("If branch lost its node", k, lambda p: _attribute(_node(p, "if"), "else_branch").g.ClearField("node")),
        ("If branch with an extra output", k, lambda p: _attribute(_node(p, "if"), "then_branch").g.output.append(helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4]))),
        ("Loop body lost an input", k, lambda p: _attribute(_node(p, "loop"), "body").g.input.pop()),
        ("Loop body lost an output", k, lambda p: _attribute(_node(p, "loop"), "body").g.output.pop()),
        ("If without branches", k, lambda p: _node(p, "if").ClearField("attribute")),
        ("opset 10000", c, _opset(10000)),
        ("opset 2^62", c, _opset(2**62)),
        ("opset 0", c, _opset(0)),
        ("opset negative", c, _opset(-3)),
        ("no opset import", c, lambda p: p.ClearField("opset_import")),
        ("unknown domain", c, lambda p: p.graph.node[3].__setattr__("domain", "com.example")),
        ("unknown op", c, lambda p: p.graph.node[3].__setattr__("op_type", "NoSuchOp")),
        ("empty op type", c, lambda p: p.graph.node[3].__setattr__("op_type", "")),
        ("dangling input", c, lambda p: p.graph.node[3].input.__setitem__(0, "nowhere")),
        ("output produced twice", c, lambda p: p.graph.node[3].output.__setitem__(0, "h")),
        ("cycle", c, lambda p: p.graph.node[1].input.__setitem__(0, "r")),
        ("graph output never produced", c, lambda p: p.graph.output[0].__setattr__("name", "nothing")),
        ("no graph output", c, lambda p: p.graph.ClearField("output")),
        ("no nodes", c, lambda p: p.graph.ClearField("node")),
        ("attribute of the wrong type", c, lambda p: _attribute(p.graph.node[5], "axis").__setattr__("type", onnx.AttributeProto.STRING)),
        ("Cast to an unknown type", k, lambda p: p.graph.node.append(helper.make_node("Cast", ["y"], ["z"], name="cast", to=99))),
        ("input without a type", c, lambda p: p.graph.input[0].ClearField("type")),
        ("ir_version 0", c, lambda p: p.__setattr__("ir_version", 0)),
        ("ir_version 99", c, lambda p: p.__setattr__("ir_version", 99)),
        ("ir_version 3", c, lambda p: p.__setattr__("ir_version", 3)),
        ("unused string initializer", c, lambda p: p.graph.initializer.append(numpy_helper.from_array(np.array([b"a", b"b"], dtype=object), "S"))),
        ("extra optional output", c, _optional_output),
        ("sequence output", c, _sequence_output),
        ("two nodes of one name", c, lambda p: p.graph.node[4].__setattr__("name", "fc1")),
        ("model-local function", c, _local_function),
    ]
    cases: list[Case] = []
    for name, seed, mutate in table:
        cases += _proto_case("graph", name, seed, mutate, seeds)
    cases += _proto_case("graph", "unused string initializer, OCC", c, table[-4][2], seeds, {"occ": (*CONVERT, "--engine", "onnxconverter-common")})
    cases += _proto_case("graph", "extra optional output, OCC", c, _optional_output, seeds, {"occ": (*CONVERT, "--engine", "onnxconverter-common")})
    return cases


def _optional_output(proto: onnx.ModelProto) -> None:
    proto.graph.node.append(helper.make_node("Optional", ["probabilities"], ["maybe"], name="optional"))
    proto.graph.output.append(helper.make_value_info("maybe", helper.make_optional_type_proto(helper.make_tensor_type_proto(TensorProto.FLOAT, ["N", 10]))))


def _sequence_output(proto: onnx.ModelProto) -> None:
    proto.graph.node.append(helper.make_node("SequenceConstruct", ["probabilities", "logits"], ["seq"], name="seq"))
    proto.graph.output.append(helper.make_value_info("seq", helper.make_sequence_type_proto(helper.make_tensor_type_proto(TensorProto.FLOAT, None))))


def _local_function(proto: onnx.ModelProto) -> None:
    function = helper.make_function("local", "Double", ["a"], ["b"], [helper.make_node("Add", ["a", "a"], ["b"])], [helper.make_opsetid("", 17)])
    proto.functions.append(function)
    proto.opset_import.append(helper.make_opsetid("local", 1))
    node = proto.graph.node[3]
    node.op_type, node.domain = "Double", "local"


def _metadata(key: str, value: str) -> Callable[[onnx.ModelProto], None]:
    def mutate(proto: onnx.ModelProto) -> None:
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value

    return mutate


def metadata_cases(seeds: Seeds) -> list[Case]:
    preprocess = [
        '{"scale": "abc"}', '{"scale": 1e400}', '{"scale": -1}', '{"mean": [NaN]}', '{"mean": "x"}', '{"std": [0]}',
        '{"std": [1, 2, 3, 4, 5]}', '{"layout": "zzz"}', '{"layout": 5}', '{"class_names": 7}',
        '{"class_names": ["a"]}', '[]', '"text"', "not json", "{" * 10000, '{"dataset": "imagenet"}', "",
        '{"class_names": [' + ",".join(['"c"'] * 200000) + "]}",
    ]
    commands = {"evaluate": EVALUATE, "run": RUN}
    cases: list[Case] = []
    for i, value in enumerate(preprocess):
        cases += _proto_case("metadata", f"preprocess #{i} {value[:30]!r}", seeds.classifier, _metadata("halfconv.preprocess", value), seeds, commands)
    for value in ["{", "[]", '{"source": 5}', "x" * 100000]:
        cases += _proto_case("metadata", f"conversion {value[:20]!r}", seeds.classifier, _metadata("halfconv.conversion", value), seeds, {"evaluate": EVALUATE})
    for value in ["gone.onnx", "sub", "/dev/zero", "data.npz", "m.onnx", "../classifier.onnx", "", "\0"]:
        extra = [lambda f: (f / "sub").mkdir()] if value == "sub" else []
        cases += _proto_case("metadata", f"source model {value!r}", seeds.classifier, _metadata("halfconv.source_model", value), seeds, {"evaluate": EVALUATE}, extra)
    return cases


# -- data files ---------------------------------------------------------------------------------


def _npz(**arrays: object) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def _npy_member_claiming(elements: int) -> bytes:
    """An .npz whose x header claims ``elements`` float32 values in a few bytes."""
    header = f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({elements},), }}"
    header_bytes = header.encode() + b" " * (63 - len(header) % 64) + b"\n"
    member = b"\x93NUMPY\x01\x00" + len(header_bytes).to_bytes(2, "little") + header_bytes + b"\0" * 64
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("x.npy", member)
        archive.writestr("y.npy", _npy_bytes(np.zeros(4, np.int64)))
    return buffer.getvalue()


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("x.npy", _npy_bytes(np.zeros((20000, 28, 28), np.uint8)))
        archive.writestr("y.npy", _npy_bytes(np.zeros(20000, np.int64)))
    return buffer.getvalue()


def data_cases(seeds: Seeds) -> list[Case]:
    x = np.random.default_rng(2).integers(0, 256, (16, 28, 28), dtype=np.uint8)
    y = np.arange(16) % 10
    table: list[tuple[str, bytes]] = [
        ("bare .npy", _npy_bytes(x)),
        ("header claims 2^40 elements", _npy_member_claiming(2**40)),
        ("zip bomb", _zip_bomb()),
        ("label 10^9", _npz(x=x, y=np.full(16, 10**9))),
        ("label negative", _npz(x=x, y=-y)),
        ("labels float", _npz(x=x, y=y.astype(np.float32) + 0.5)),
        ("labels objects", _npz(x=x, y=np.array([object()] * 16, dtype=object))),
        ("x objects", _npz(x=np.array([None] * 16, dtype=object), y=y)),
        ("x strings", _npz(x=np.array(["a"] * 16), y=y)),
        ("x NaN", _npz(x=np.full((16, 28, 28), np.nan, np.float32), y=y)),
        ("x and y lengths differ", _npz(x=x, y=y[:5])),
        ("empty arrays", _npz(x=x[:0], y=y[:0])),
        ("x of the wrong shape", _npz(x=np.zeros((16, 5, 5), np.uint8), y=y)),
        ("x one-dimensional", _npz(x=np.zeros(16, np.uint8), y=y)),
        ("no y", _npz(x=x)),
        ("class_names too few", _npz(x=x, y=y, class_names=np.array(["a"]))),
        ("class_names numbers", _npz(x=x, y=y, class_names=np.arange(10))),
        ("truncated", _npz(x=x, y=y)[:300]),
        ("not a zip", b"PK\x03\x04" + b"\0" * 100),
        ("empty file", b""),
        ("x complex", _npz(x=x.astype(np.complex64), y=y)),
        ("y two-dimensional", _npz(x=x, y=y.reshape(4, 4))),
    ]
    commands = {
        "evaluate": ("evaluate", "m.onnx", "--dataset", "bad.npz", "--report-dir", "rep", *FAST_TIMING),
        "calibration": (*CONVERT, "--calibration", "bad.npz"),
        "sample": (*CONVERT, "--sample", "bad.npz"),
        "run": ("run", "m.onnx", "--dataset", "bad.npz", "--report-dir", "rep", *FAST_TIMING),
    }
    sample_table = [
        ("sample of the wrong name", _npz(other=np.zeros((2, 1, 28, 28), np.float32))),
        ("sample of the wrong shape", _npz(input=np.zeros((2, 3), np.float32))),
        ("sample of 2^30 elements claimed", _npy_member_claiming(2**30)),
        ("sample of ints", _npz(input=np.zeros((2, 1, 28, 28), np.int64))),
    ]
    cases: list[Case] = []
    for name, data in table:
        setup = _all(_copy(seeds.classifier, "m.onnx"), _bytes("bad.npz", data))
        cases += _cases("data", name, setup, commands)
    for name, data in sample_table:
        setup = _all(_copy(seeds.classifier, "m.onnx"), _bytes("bad.npz", data))
        cases += _cases("data", name, setup, {"sample": commands["sample"]})
    return cases


# -- command-line values and paths --------------------------------------------------------------


def cli_cases(seeds: Seeds) -> list[Case]:
    setup = _all(_copy(seeds.classifier, "m.onnx"), _copy(seeds.data), _copy(seeds.sample))
    evaluate = ("evaluate", "m.onnx", "--dataset", "data.npz", "--report-dir", "rep", "--quiet", "--provider", "cpu")
    values = {
        "--iters": ["1000000000000", "0", "-1", "abc", "1e3"],
        "--warmup": ["-1", "1000000000000"],
        "--latency-batch-sizes": ["99999999999999999999", "0", "-4", "1,,2", "a", ",", "65537"],
        "--batch-size": ["0", "-1", "1000000000000", "99999999999999999999"],
        "--limit": ["0", "-5", "1000000000000"],
        "--mean": ["nan", "inf", "1e400"],
        "--std": ["0", "nan", "-1"],
        "--max-drop": ["nan", "-1", "1e400"],
    }
    cases = []
    for flag, options in values.items():
        for value in options:
            cases.append(Case("cli", f"evaluate {flag} {value}", (*evaluate, flag, value), setup))
    convert_values = {
        "--accuracy-budget": ["nan", "-1", "1e400", "101"],
        "--calibration-size": ["0", "1000000000000", "-3"],
        "--validation-size": ["0", "99999999999999999999"],
        "--keep-op": ["", "NoSuchOp"],
        "--keep-node": ["", "nowhere"],
        "--target": ["fp8", "bf16"],
        "--mean": ["0.5"],
        "--layout": ["nchw"],
    }
    for flag, options in convert_values.items():
        for value in options:
            extra = ("--calibration", "data.npz") if flag.endswith(("budget", "size")) else ()
            cases.append(Case("cli", f"convert {flag} {value}", (*CONVERT, *extra, flag, value), setup))
    for argv in [
        ("export", "m.pt", "--input-shape", "99999,99999"),
        ("export", "m.pt", "--input-shape", "0,1"),
        ("export", "m.pt", "--input-shape", "a"),
        ("export", "m.pt", "--opset", "1000000"),
        ("convert",),
        ("convert", "m.onnx", "--no-such-flag"),
        ("evaluate", "m.onnx"),
        ("run", "m.onnx", "--dataset", "imagenet"),
        ("frobnicate",),
        (),
    ]:
        cases.append(Case("cli", " ".join(argv) or "(nothing)", argv, setup))
    return cases


def path_cases(seeds: Seeds) -> list[Case]:
    model = _copy(seeds.classifier, "m.onnx")
    data = _copy(seeds.data)
    table: list[tuple[str, tuple[str, ...], Setup]] = [
        ("input a folder", ("convert", "sub"), lambda f: (f / "sub").mkdir()),
        ("input a FIFO (convert)", ("convert", "pipe", "-o", "o.onnx"), lambda f: os.mkfifo(f / "pipe")),
        ("input a FIFO (evaluate)", ("evaluate", "pipe", "--dataset", "data.npz"), _all(data, lambda f: os.mkfifo(f / "pipe"))),
        ("input a FIFO (run)", ("run", "pipe", "--dataset", "data.npz", *FAST_TIMING), _all(data, lambda f: os.mkfifo(f / "pipe"))),
        ("input a FIFO named .onnx (run)", ("run", "pipe.onnx", "--dataset", "data.npz", *FAST_TIMING), _all(data, lambda f: os.mkfifo(f / "pipe.onnx"))),
        ("input /dev/null", ("convert", "/dev/null", "-o", "o.onnx"), model),
        ("input /dev/zero", ("convert", "/dev/zero", "-o", "o.onnx"), model),
        ("input missing", ("convert", "gone.onnx"), model),
        ("output = input", ("convert", "m.onnx", "-o", "m.onnx"), model),
        ("output in a missing folder", ("convert", "m.onnx", "-o", "no/such/o.onnx"), model),
        ("output a folder", ("convert", "m.onnx", "-o", "sub"), _all(model, lambda f: (f / "sub").mkdir())),
        ("output exists", ("convert", "m.onnx", "-o", "o.onnx"), _all(model, _bytes("o.onnx", b"keep me"))),
        ("output under a file", ("convert", "m.onnx", "-o", "data.npz/o.onnx"), _all(model, data)),
        ("report-dir a file (run)", ("run", "m.onnx", "--dataset", "data.npz", "--report-dir", "data.npz", *FAST_TIMING), _all(model, data)),
        ("report-dir under a file (run)", ("run", "m.onnx", "--dataset", "data.npz", "--report-dir", "data.npz/r", *FAST_TIMING), _all(model, data)),
        ("report-dir a/b/c, model refused (run)", ("run", "bad.onnx", "--dataset", "data.npz", "--report-dir", "a/b/c", *FAST_TIMING), _all(data, _bytes("bad.onnx", b"not a model"))),
        ("report-dir a file (evaluate)", ("evaluate", "m.onnx", "--dataset", "data.npz", "--report-dir", "data.npz", *FAST_TIMING), _all(model, data)),
        ("failed run, external data", ("run", "ext.onnx", "--dataset", "bad.npz", "--report-dir", "r", *FAST_TIMING), _all(_copy(seeds.external, "ext.onnx"), _copy(seeds.folder / "external.onnx.data"), _bytes("bad.npz", b"junk"))),
        ("dataset a folder", ("evaluate", "m.onnx", "--dataset", "sub.npz", *FAST_TIMING), _all(model, lambda f: (f / "sub.npz").mkdir())),
        ("dataset a FIFO", ("evaluate", "m.onnx", "--dataset", "p.npz", *FAST_TIMING), _all(model, lambda f: os.mkfifo(f / "p.npz"))),
        ("sample a FIFO", ("convert", "m.onnx", "-o", "o.onnx", "--sample", "p.npz"), _all(model, lambda f: os.mkfifo(f / "p.npz"))),
        ("calibration a FIFO", ("convert", "m.onnx", "-o", "o.onnx", "--calibration", "p.npz"), _all(model, lambda f: os.mkfifo(f / "p.npz"))),
        ("baseline a FIFO", ("evaluate", "m.onnx", "--dataset", "data.npz", "--baseline", "p.onnx", *FAST_TIMING), _all(model, data, lambda f: os.mkfifo(f / "p.onnx"))),
        ("data-dir a file", ("evaluate", "m.onnx", "--dataset", "mnist", "--data-dir", "data.npz", *FAST_TIMING), _all(model, data)),
        ("model name with spaces and unicode", ("convert", "m ü.onnx", "-o", "o ü.onnx"), _copy(seeds.classifier, "m ü.onnx")),
        ("factory file missing", ("export", "m.pt", "--torch-factory", "nowhere.py:make"), _bytes("m.pt", b"junk")),
    ]
    return [Case("paths", name, argv, setup) for name, argv, setup in table]


# -- the two selections ----------------------------------------------------------------------------


def _structured(seeds: Seeds) -> list[Case]:
    return [
        *tensor_cases(seeds), *external_cases(seeds), *graph_cases(seeds),
        *metadata_cases(seeds), *data_cases(seeds), *cli_cases(seeds), *path_cases(seeds),
    ]


def all_cases(folder: Path, byte_count: int = 2600) -> list[Case]:
    """Every structured case, and ``byte_count`` byte mutations (about 3,000 cases in all)."""
    seeds = write_seeds(folder)
    return [*_structured(seeds), *byte_cases(seeds, byte_count)]


def fast_cases(folder: Path) -> list[Case]:
    """What CI runs: each structured case with its first command only, and 60 byte mutations."""
    seeds = write_seeds(folder)
    seen: set[tuple[str, str]] = set()
    chosen = []
    for case in _structured(seeds):
        key = (case.family, case.name.split(" [")[0])
        if key not in seen:
            seen.add(key)
            chosen.append(case)
    return [*chosen, *byte_cases(seeds, 60)]
