"""Bad inputs and failure atomicity: one ``Error:`` line, a documented exit code, nothing on disk.

Every bad input goes through ``halfconv convert`` (``halfconv.cli.main``); the test then
checks that stderr holds exactly one line and no traceback, that the exit code is the one
``halfconv.core`` documents, that the directory holds exactly what it held before (no
output, no ``.NAME.halfconv-*`` staging folder) and that the input is byte-for-byte and
mtime unchanged.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnx.parser
import onnx_ir
import pytest
from onnx import numpy_helper

from halfconv import cli, core
from halfconv.conversion import _pipeline as _convert
from halfconv.conversion import _validate
from halfconv.core import (
    EXIT_CODES,
    InputNotFoundError,
    InvalidModelError,
    NothingToConvertError,
    OutputError,
    ValidationFailedError,
    _model_io,
    _model_save,
)

MODEL = """
<ir_version: 8, opset_import: ["" : 17]>
agraph (float[2,3] X) => (float[2,4] Y)
  <float[3,4] W = {1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0}> {
  H = MatMul(X, W)
  Y = Relu(H)
}
"""

FP16_MODEL = """
<ir_version: 8, opset_import: ["" : 17]>
agraph (float16[2,3] X) => (float16[2,3] Y) <float16[3] B = {15360, 16384, 16896}> {
  Y = Add(X, B)
}
"""

INT_MODEL = """
<ir_version: 8, opset_import: ["" : 17]>
agraph (int64[2,3] X) => (int64[2,3] Y) <int64[1] B = {3}> {
  Y = Add(X, B)
}
"""


def model_proto(text: str = MODEL) -> onnx.ModelProto:
    model = onnx.parser.parse_model(text)
    # raw_data initializers, so that they can move to external data
    for index, tensor in enumerate(model.graph.initializer):
        model.graph.initializer[index].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor), tensor.name))
    onnx.checker.check_model(model, full_check=True)
    return model


def write_model(path: Path, text: str = MODEL) -> Path:
    onnx.save(model_proto(text), str(path))
    return path


def write_external(path: Path, location: str | None = None) -> Path:
    """A model whose weight lives in ``NAME.data``; ``location`` then rewrites the reference."""
    onnx.save(
        copy.deepcopy(model_proto()),
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=path.name + ".data",
        size_threshold=0,
    )
    if location is not None:
        proto = onnx.load(str(path), load_external_data=False)
        for tensor in proto.graph.initializer:
            for entry in tensor.external_data:
                if entry.key == "location":
                    entry.value = location
        onnx.save(proto, str(path))
    return path


def snapshot(directory: Path) -> dict[str, tuple[bytes, int] | None]:
    """Every path under ``directory`` (hidden ones included) with its bytes and mtime."""
    state: dict[str, tuple[bytes, int] | None] = {}
    for path in sorted(directory.rglob("*")):
        key = str(path.relative_to(directory))
        state[key] = (path.read_bytes(), path.stat().st_mtime_ns) if path.is_file() else None
    return state


def staging_folders(directory: Path) -> list[Path]:
    return [p for p in directory.rglob(".*.halfconv-*")]


def run(capfd: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capfd.readouterr()
    return code, captured.out, captured.err


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("Error: "), err
    assert "Traceback" not in err
    return lines[0]


# -- bad inputs ------------------------------------------------------------------------------

# name -> (build the input in the folder and return the path to pass, expected exit code,
#          expected error line or its start, with {path} for the path passed)
Case = tuple[Callable[[Path], Path], int, str]


def _missing(d: Path) -> Path:
    return d / "missing.onnx"


def _directory(d: Path) -> Path:
    (d / "folder.onnx").mkdir()
    return d / "folder.onnx"


def _empty(d: Path) -> Path:
    (d / "empty.onnx").write_bytes(b"")
    return d / "empty.onnx"


def _truncated(d: Path) -> Path:
    data = model_proto().SerializeToString()
    (d / "half.onnx").write_bytes(data[: len(data) // 2])
    return d / "half.onnx"


def _random(d: Path) -> Path:
    (d / "noise.onnx").write_bytes(np.random.default_rng(0).bytes(512))
    return d / "noise.onnx"


def _png(d: Path) -> Path:
    (d / "picture.onnx").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64))
    return d / "picture.onnx"


def _text(d: Path) -> Path:
    (d / "notes.onnx").write_text("this is not a model\n")
    return d / "notes.onnx"


def _missing_external(d: Path) -> Path:
    path = write_external(d / "m.onnx")
    (d / "m.onnx.data").unlink()
    return path


def _escaping_external(d: Path) -> Path:
    sub = d / "sub"
    sub.mkdir()
    path = write_external(sub / "m.onnx", location="../x.data")
    shutil.move(sub / "m.onnx.data", d / "x.data")  # the file exists: only the location is wrong
    return path


def _absolute_external(d: Path) -> Path:
    path = write_external(d / "m.onnx")
    data_path = (d / "m.onnx.data").resolve()
    proto = onnx.load(str(path), load_external_data=False)
    for entry in proto.graph.initializer[0].external_data:
        if entry.key == "location":
            entry.value = str(data_path)
    onnx.save(proto, str(path))
    return path


def _short_external(d: Path) -> Path:
    path = write_external(d / "m.onnx")
    (d / "m.onnx.data").write_bytes(b"\0" * 8)
    return path


def _graph(d: Path, name: str, nodes: list[onnx.NodeProto], opset: int = 17) -> Path:
    from onnx import helper

    weight = numpy_helper.from_array(np.ones((2, 2), np.float32), "W")
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("X", onnx.TensorProto.FLOAT, [2, 2])],
        [helper.make_tensor_value_info("Y", onnx.TensorProto.FLOAT, [2, 2])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
    onnx.save(model, str(d / name))
    return d / name


def _undefined_input(d: Path) -> Path:
    from onnx import helper

    # MatMul converts; Add reads a value that nothing defines.
    return _graph(d, "dangling.onnx", [helper.make_node("MatMul", ["X", "W"], ["H"]), helper.make_node("Add", ["H", "Q"], ["Y"])])


def _undefined_input_only(d: Path) -> Path:
    from onnx import helper

    return _graph(d, "dangling1.onnx", [helper.make_node("Add", ["X", "Q"], ["Y"])])


def _unknown_op(d: Path) -> Path:
    from onnx import helper

    return _graph(d, "unknown.onnx", [helper.make_node("MatMul", ["X", "W"], ["H"]), helper.make_node("NoSuchOp", ["H"], ["Y"])])


def _not_a_model_message(d: Path) -> Path:
    # A serialized TensorProto: valid protobuf, but no graph.
    (d / "tensor.onnx").write_bytes(numpy_helper.from_array(np.ones(3, np.float32), "t").SerializeToString())
    return d / "tensor.onnx"


def _fp16(d: Path) -> Path:
    return write_model(d / "half.onnx", FP16_MODEL)


def _int_only(d: Path) -> Path:
    return write_model(d / "ints.onnx", INT_MODEL)


DANGLING = (
    "Error: {path} fails the ONNX checker: Nodes in a graph must be topologically sorted, however input 'Q'"
    " of node: name: OpType: Add is not output of any previous nodes - fix or re-export the model"
)

CASES: dict[str, Case] = {
    "not-a-file": (_missing, 3, "Error: {path}: no such file - check the path"),
    "directory": (_directory, 3, "Error: {path} is a directory, not an ONNX file - pass the path of a .onnx file"),
    "empty": (_empty, 4, "Error: {path} is empty (0 bytes) - re-export or re-download the model"),
    "truncated": (_truncated, 4, "Error: {path} is not a valid ONNX protobuf ("),
    "random-bytes": (_random, 4, "Error: {path} "),
    "png": (_png, 4, "Error: {path} is a PNG image, not an ONNX model - pass an .onnx file"),
    "text": (_text, 4, "Error: {path} "),
    "missing-external-data": (
        _missing_external,
        4,
        "Error: external data file 'm.onnx.data' for tensor 'W' is missing - put it in ",
    ),
    "external-data-escapes": (
        _escaping_external,
        4,
        "Error: tensor 'W' points at external data '../x.data' outside the model's directory"
        " - halfconv refuses such paths; move the data file next to the model",
    ),
    "external-data-absolute": (_absolute_external, 4, "Error: tensor 'W' has external data location '/"),
    "external-data-too-short": (
        _short_external,
        4,
        "Error: external data file 'm.onnx.data' is shorter than tensor 'W' needs"
        " - the data file is truncated or belongs to another model",
    ),
    "undefined-input": (_undefined_input, 4, DANGLING),
    "undefined-input-nothing-converts": (_undefined_input_only, 4, DANGLING),
    "unknown-op": (_unknown_op, 4, "Error: {path} fails the ONNX checker: No Op registered for NoSuchOp with domain_version of 17 "),
    "tensor-not-model": (_not_a_model_message, 4, "Error: {path} "),
    "already-fp16": (
        _fp16,
        8,
        "Error: {path} has no float32 tensors to convert (it already holds float16) - nothing was written",
    ),
    "int-only": (
        _int_only,
        8,
        "Error: {path} has no float32 tensors to convert (it has no float tensors at all) - nothing was written",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    build, exit_code, expected = CASES[name]
    path = build(tmp_path)
    before = snapshot(tmp_path)
    code, out, err = run(capfd, "convert", str(path))
    line = one_error_line(err)
    assert code == exit_code, line
    assert out == ""
    expected = expected.format(path=path)
    if expected.endswith((" ", "(", "/")):
        assert line.startswith(expected), line
    else:
        assert line == expected
    assert snapshot(tmp_path) == before
    assert staging_folders(tmp_path) == []


@pytest.mark.parametrize(
    "name", ["truncated", "random-bytes", "png", "missing-external-data", "already-fp16", "undefined-input"]
)
def test_bad_input_with_json_and_force(name: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """--json must not turn an error into JSON on stdout or a traceback; --force writes nothing either."""
    build, exit_code, _ = CASES[name]
    path = build(tmp_path)
    before = snapshot(tmp_path)
    code, out, err = run(capfd, "convert", str(path), "--json", "--force", "-o", str(tmp_path / "out.onnx"))
    assert (code, out) == (exit_code, "")
    one_error_line(err)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("name", ["undefined-input", "unknown-op"])
@pytest.mark.parametrize("flag", ["--no-validate", "--engine=onnxconverter-common"])
def test_invalid_graph_with_other_paths(
    name: str, flag: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    build, exit_code, _ = CASES[name]
    path = build(tmp_path)
    before = snapshot(tmp_path)
    code, out, err = run(capfd, "convert", str(path), flag)
    line = one_error_line(err)  # --no-validate still runs the checker, which names the input's fault
    assert (code, out) == (exit_code, ""), line
    assert snapshot(tmp_path) == before


def test_invalid_graph_in_a_real_process_prints_one_line(tmp_path: Path) -> None:
    """onnx-ir logs a warning for a dangling input; the user must still see one line only."""
    import subprocess
    import sys

    path = _undefined_input(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "halfconv", "convert", path.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 4
    assert done.stdout == ""
    assert done.stderr == DANGLING.format(path=path.name) + "\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dangling.onnx"]


def test_exit_codes_are_distinct_and_documented() -> None:
    codes = list(EXIT_CODES.values())
    assert len(codes) == len(set(codes))
    assert 0 not in codes and 1 not in codes and core.EXIT_INTERRUPTED not in codes
    assert InputNotFoundError.exit_code == 3
    assert InvalidModelError.exit_code == 4
    assert ValidationFailedError.exit_code == 6
    assert OutputError.exit_code == 7
    assert NothingToConvertError.exit_code == 8
    for cls in EXIT_CODES:
        assert cls.__doc__, f"{cls.__name__} has no docstring"


def test_error_message_joins_what_and_hint() -> None:
    assert str(OutputError("x exists", "pass --force")) == "x exists - pass --force"
    assert str(OutputError("x exists")) == "x exists"


# -- external data that works ----------------------------------------------------------------


def test_external_data_model_converts(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    path = write_external(tmp_path / "m.onnx")
    before = snapshot(tmp_path)
    code, out, err = run(capfd, "convert", str(path))
    assert (code, err) == (0, "")
    output = tmp_path / "m.fp16.onnx"
    converted = onnx.load(str(output))  # loads its external data, if any
    onnx.checker.check_model(str(output), full_check=True)
    assert converted.graph.initializer[0].data_type == onnx.TensorProto.FLOAT16
    files = set(snapshot(tmp_path)) - set(before)
    # Its 12 weights are below onnx-ir's external-data threshold, so they are written inline
    # and no empty data file is left beside the model.
    assert not (tmp_path / "m.fp16.onnx.data").exists()
    assert "external data" not in out
    assert files == {"m.fp16.onnx"}
    assert {k: v for k, v in snapshot(tmp_path).items() if k in before} == before


def test_output_must_not_overwrite_input_external_data(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    # The output's data file (x.onnx.data) would be the input's external data file.
    path = write_external(tmp_path / "m.onnx", location="x.onnx.data")
    (tmp_path / "m.onnx.data").rename(tmp_path / "x.onnx.data")
    before = snapshot(tmp_path)
    code, out, err = run(capfd, "convert", str(path), "-o", str(tmp_path / "x.onnx"), "--force")
    assert (code, out) == (7, "")
    assert one_error_line(err) == (
        f"Error: output data file {tmp_path / 'x.onnx.data'} is the input's external data"
        " - choose another output path with -o"
    )
    assert snapshot(tmp_path) == before


# -- failure atomicity -----------------------------------------------------------------------


def _patch_validation(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> list[Path]:
    """Make validation raise ``error``; returns the staged paths it saw."""
    seen: list[Path] = []

    def failing(reference: Path, converted: Path, **kwargs: object) -> object:
        seen.append(converted)
        assert converted.is_file()  # the staged model exists while it is validated
        raise error

    # _convert imports the function by name; patch both so either spelling is covered.
    monkeypatch.setattr(_validate, "validate_converted", failing)
    monkeypatch.setattr(_convert, "validate_converted", failing)
    return seen


@pytest.mark.parametrize(
    ("error", "exit_code", "line"),
    [
        (KeyboardInterrupt(), 130, "Error: interrupted - nothing was written"),
        (
            ValidationFailedError("output 'Y' has 3 non-finite value(s)", "pass --allow-nonfinite"),
            6,
            "Error: output 'Y' has 3 non-finite value(s) - pass --allow-nonfinite",
        ),
    ],
    ids=["ctrl-c", "validation-failed"],
)
def test_failure_during_validation_leaves_nothing(
    error: BaseException,
    exit_code: int,
    line: str,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = write_model(tmp_path / "m.onnx")
    seen = _patch_validation(monkeypatch, error)
    before = snapshot(tmp_path)
    code, out, err = run(capfd, "convert", str(path))
    assert (code, out) == (exit_code, "")
    assert one_error_line(err) == line
    assert len(seen) == 1
    assert seen[0].parent.name.startswith(".m.fp16.onnx.halfconv-")
    assert snapshot(tmp_path) == before
    assert staging_folders(tmp_path) == []


def test_failure_keeps_the_previous_output_with_force(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_model(tmp_path / "m.onnx")
    (tmp_path / "m.fp16.onnx").write_bytes(b"previous result")
    _patch_validation(monkeypatch, KeyboardInterrupt())
    before = snapshot(tmp_path)
    code, _, err = run(capfd, "convert", str(path), "--force")
    assert code == 130
    one_error_line(err)
    assert snapshot(tmp_path) == before


def test_external_data_failure_leaves_nothing(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_external(tmp_path / "m.onnx")
    _patch_validation(monkeypatch, ValidationFailedError("bad", "hint"))
    before = snapshot(tmp_path)
    code, _, err = run(capfd, "convert", str(path))
    assert code == 6
    one_error_line(err)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("error", [KeyboardInterrupt(), OSError(28, "No space left on device")], ids=["ctrl-c", "disk-full"])
def test_failure_during_save_leaves_nothing(
    error: BaseException, tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_model(tmp_path / "m.onnx")
    def partial_write(target: Path, data: bytes) -> None:
        target.write_bytes(data[: len(data) // 2])  # a partial file in the staging folder
        raise error

    monkeypatch.setattr(_model_save, "_write_bytes", partial_write)
    before = snapshot(tmp_path)
    code, out, err = run(capfd, "convert", str(path))
    line = one_error_line(err)
    if isinstance(error, KeyboardInterrupt):
        assert code == 130
        assert line == "Error: interrupted - nothing was written"
    else:
        assert code == 7
        assert line == f"Error: cannot write {tmp_path / 'm.fp16.onnx'}: No space left on device - check free disk space and permissions"
    assert out == ""
    assert snapshot(tmp_path) == before
    assert staging_folders(tmp_path) == []


def test_save_model_patched_to_raise(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_model(tmp_path / "m.onnx")

    def failing(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(core, "save_model", failing)
    before = snapshot(tmp_path)
    assert cli.main(["convert", str(path)]) == 130
    one_error_line(capfd.readouterr().err)
    assert snapshot(tmp_path) == before


def test_failure_during_commit_leaves_no_half_pair(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C between moving the data file and the model file must not leave the data file."""
    path = write_external(tmp_path / "m.onnx")
    real_replace = os.replace

    def replace(src: object, dst: object) -> None:
        if str(dst).endswith("m.fp16.onnx"):
            raise KeyboardInterrupt
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(_model_save.os, "replace", replace)
    before = snapshot(tmp_path)
    assert cli.main(["convert", str(path), "--no-validate"]) == 130
    one_error_line(capfd.readouterr().err)
    assert snapshot(tmp_path) == before


# -- the library functions directly --------------------------------------------------------


def test_load_model_records_external_files(tmp_path: Path) -> None:
    path = write_external(tmp_path / "m.onnx")
    loaded = _model_io.load_model(path)
    assert loaded.external_files == ((tmp_path / "m.onnx.data").resolve(),)
    assert _model_io.model_size_bytes(path, loaded.external_files) == path.stat().st_size + (tmp_path / "m.onnx.data").stat().st_size


def test_atomic_output_cleans_up_without_commit(tmp_path: Path) -> None:
    final = tmp_path / "out.onnx"
    with _model_save.AtomicOutput(final) as staged:
        staged.model_path.write_bytes(b"x")
        assert staged.staging.is_dir()
    assert list(tmp_path.iterdir()) == []


def test_atomic_output_commit_moves_model_and_drops_stale_data(tmp_path: Path) -> None:
    final = tmp_path / "out.onnx"
    (tmp_path / "out.onnx.data").write_bytes(b"stale")
    with _model_save.AtomicOutput(final) as staged:
        staged.model_path.write_bytes(b"model")
        assert staged.commit() is None
    assert snapshot(tmp_path).keys() == {"out.onnx"}
    assert final.read_bytes() == b"model"


def test_atomic_output_commit_moves_data(tmp_path: Path) -> None:
    final = tmp_path / "out.onnx"
    with _model_save.AtomicOutput(final) as staged:
        staged.model_path.write_bytes(b"model")
        (staged.staging / staged.data_name).write_bytes(b"data")
        assert staged.commit() == tmp_path / "out.onnx.data"
    assert snapshot(tmp_path).keys() == {"out.onnx", "out.onnx.data"}


def _one_weight_model(tensor: onnx.TensorProto) -> onnx.ModelProto:
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Add", ["X", tensor.name], ["Y"], name="add")],
        "g",
        [onnx.helper.make_tensor_value_info("X", onnx.TensorProto.FLOAT, [2, 5])],
        [onnx.helper.make_tensor_value_info("Y", onnx.TensorProto.FLOAT, [2, 5])],
        [tensor],
    )
    return onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)], ir_version=10)


def _weight(**changes: object) -> onnx.TensorProto:
    tensor = numpy_helper.from_array(np.arange(10, dtype=np.float32).reshape(2, 5), "W")
    for field, value in changes.items():
        if field == "dims":
            del tensor.dims[:]
            tensor.dims.extend(value)  # type: ignore[arg-type]
        else:
            setattr(tensor, field, value)
    return tensor


def _typed_weight(count: int) -> onnx.TensorProto:
    tensor = onnx.TensorProto(name="W", data_type=onnx.TensorProto.FLOAT, dims=[2, 5])
    tensor.float_data.extend([1.0] * count)
    return tensor


@pytest.mark.parametrize(
    ("tensor", "message"),
    [
        (_weight(data_type=99), "tensor 'W' has data type 99, which ONNX does not define"),
        (_weight(raw_data=bytes(41)), "tensor 'W' holds 41 bytes, but FLOAT of shape [2, 5] takes 40"),
        (_weight(raw_data=bytes(39)), "tensor 'W' holds 39 bytes, but FLOAT of shape [2, 5] takes 40"),
        # Dims that claim 2**62 elements while the tensor holds 10 values: refused before any allocation.
        (_weight(dims=[2**31, 2**31]), "tensor 'W' holds 40 bytes, but FLOAT of shape [2147483648, 2147483648] takes 18,446,744,073,709,551,616"),
        (_typed_weight(9), "tensor 'W' holds 9 values, but its shape [2, 5] takes 10"),
    ],
)
def test_tensors_that_do_not_hold_what_they_declare(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], tensor: onnx.TensorProto, message: str
) -> None:
    path = tmp_path / "m.onnx"
    onnx.save(_one_weight_model(tensor), str(path))
    before = path.read_bytes()
    assert cli.main(["convert", str(path)]) == 4
    err = capfd.readouterr().err
    assert err.startswith(f"Error: {message} - ") and err.count("\n") == 1
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_bit_flips_never_end_in_a_traceback(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """Seeded byte mutations of the demo CNN: every one ends in an exit code and at most one line on stderr."""
    import random

    source = (Path(__file__).resolve().parents[1] / "models" / "demo_cnn" / "model.onnx").read_bytes()
    rng = random.Random(7)
    for case in range(60):
        data = bytearray(source)
        for _ in range(rng.randint(1, 4)):
            position = rng.randrange(len(data))
            data[position] ^= 1 << rng.randrange(8)
        path = tmp_path / f"m{case}.onnx"
        path.write_bytes(bytes(data))
        code = cli.main(["convert", str(path), "-o", str(tmp_path / "out.onnx"), "--force"])
        err = capfd.readouterr().err
        assert code in (0, 4, 5, 6, 8), (case, code, err)
        assert err.count("\n") <= 1, (case, err)


def _external_model(tmp_path: Path, **entries: str) -> Path:
    """A model whose one weight is in external data, with some of its entries replaced."""
    weight = numpy_helper.from_array(np.ones((2, 5), np.float32), "W")
    path = tmp_path / "ext.onnx"
    onnx.save(_one_weight_model(weight), str(path), save_as_external_data=True, location="ext.data", size_threshold=0)
    proto = onnx.load(str(path), load_external_data=False)
    tensor = proto.graph.initializer[0]
    info = {e.key: e.value for e in tensor.external_data}
    info.update(entries)
    del tensor.external_data[:]
    for key, value in info.items():
        tensor.external_data.add(key=key, value=value)
    onnx.save(proto, str(path))
    return path


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ({"offset": "1e3"}, "tensor 'W' has external data offset '1e3', not a number of bytes"),
        ({"length": "-4"}, "tensor 'W' has external data length '-4', not a number of bytes"),
        ({"location": "ext\x00.data"}, "tensor 'W' has an external data location with a NUL byte"),
        # ONNX Runtime refuses a length that does not fit the tensor: so does halfconv, before converting.
        ({"length": "20"}, "tensor 'W' has 20 bytes of external data, but its shape [2, 5] takes 40"),
    ],
)
def test_bad_external_data_entries(tmp_path: Path, capfd: pytest.CaptureFixture[str], entries: dict[str, str], message: str) -> None:
    path = _external_model(tmp_path, **entries)
    assert cli.main(["convert", str(path), "-o", str(tmp_path / "out.onnx")]) == 4
    err = capfd.readouterr().err
    assert err.startswith(f"Error: {message} - ") and err.count("\n") == 1
    assert not (tmp_path / "out.onnx").exists()


def test_an_opset_onnx_does_not_know_is_the_input_s_fault(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    model = _one_weight_model(numpy_helper.from_array(np.ones((2, 5), np.float32), "W"))
    model.opset_import[0].version = 10000
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    assert cli.main(["convert", str(path)]) == 4
    assert "imports opset 10000 of the ONNX domain" in capfd.readouterr().err


def test_an_if_whose_branch_lost_its_output_is_the_input_s_fault(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    helper = onnx.helper
    then_branch = helper.make_graph([helper.make_node("Relu", ["X"], ["t"])], "then", [], [])
    else_branch = helper.make_graph(
        [helper.make_node("Neg", ["X"], ["e"])], "else", [], [helper.make_tensor_value_info("e", onnx.TensorProto.FLOAT, [2, 5])]
    )
    graph = helper.make_graph(
        [helper.make_node("If", ["C"], ["Y"], then_branch=then_branch, else_branch=else_branch)],
        "g",
        [helper.make_tensor_value_info("X", onnx.TensorProto.FLOAT, [2, 5])],
        [helper.make_tensor_value_info("Y", onnx.TensorProto.FLOAT, [2, 5])],
        [numpy_helper.from_array(np.array(True), "C")],
    )
    path = tmp_path / "if.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10), str(path))
    assert cli.main(["convert", str(path)]) == 4
    err = capfd.readouterr().err
    assert err.startswith(f"Error: {path} fails the ONNX checker: ") and "different number of outputs" in err


def test_a_newer_ir_than_onnx_runtime_reads_is_written_at_the_newest_it_does(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """onnx writes its own newest IR by default; the installed ONNX Runtime may read an older one at most."""
    model = _one_weight_model(numpy_helper.from_array(np.ones((2, 5), np.float32), "W"))
    model.ir_version = onnx.IR_VERSION
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    code = cli.main(["convert", str(path), "--json"])
    out, err = capfd.readouterr()
    assert (code, err) == (0, "")
    summary = json.loads(out)
    assert summary["validation"]["status"] == "passed"
    written = onnx.load(summary["output"]).ir_version
    assert written == min(onnx.IR_VERSION, core.max_ir_version())
    if written < onnx.IR_VERSION:
        assert summary["notes"] == [f"written at IR version {written}, the newest the installed ONNX Runtime reads (the input is IR {onnx.IR_VERSION})"]


def test_a_newer_ir_model_that_uses_what_that_ir_added_is_refused_before_converting(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """FLOAT6E2M3 came with IR 14: written at an older IR, the model would not be the same model."""
    newest = core.max_ir_version()
    if newest >= 14:
        pytest.skip(f"the installed ONNX Runtime reads IR {newest}, onnx's newest")
    text = f"""
    <ir_version: {onnx.IR_VERSION}, opset_import: ["" : 28]>
    g (float[2,5] x) => (float[2,5] y, float6e2m3[2,5] q) {{
        y = Relu(x)
        q = Cast<to: int = 27>(x)
    }}
    """
    path = tmp_path / "m.onnx"
    onnx.save(onnx.parser.parse_model(text), str(path))
    before = path.read_bytes()
    assert cli.main(["convert", str(path)]) == 13
    err = capfd.readouterr().err
    assert err == (
        f"Error: {path} is IR version {onnx.IR_VERSION} and holds FLOAT6E2M3 tensors, which need IR 14; "
        f"the installed ONNX Runtime reads IR {newest} at most - upgrade onnxruntime, or convert on a machine with a newer one\n"
    )
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["m.onnx"]


_ENDLESS_LOOP = """
<ir_version: 10, opset_import: ["" : 17]>
endless (float[2,4] x) => (float[2,4] y) {
    trips = Constant<value: tensor = int64 {2147483647}>()
    cond = Constant<value: tensor = bool {1}>()
    looped = Loop(trips, cond, x) <body: graph = body (int64 i, bool c, float[2,4] acc) => (bool c_out, float[2,4] acc_out) {
        c_out = Identity(c)
        acc_out = Relu(acc)
    }>
    y = Sigmoid(looped)
}
"""


def test_a_model_that_runs_for_hours_is_not_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """A Loop of 2^31 trips: the numeric check gives up at its time limit, and says so."""
    monkeypatch.setattr(_validate, "RUN_TIME_LIMIT_S", 0.5)
    path = tmp_path / "endless.onnx"
    onnx.save(onnx.parser.parse_model(_ENDLESS_LOOP), str(path))
    assert cli.main(["convert", str(path), "--json"]) == 0
    out, err = capfd.readouterr()
    assert err == ""
    validation = json.loads(out)["validation"]
    assert validation["status"] == "partial"
    assert "numeric check: the float32 model ran more than 0.5 s on these inputs and was stopped" in validation["skipped"]


def test_ctrl_c_stops_a_running_model_at_once(tmp_path: Path) -> None:
    import signal
    import threading

    path = tmp_path / "endless.onnx"
    onnx.save(onnx.parser.parse_model(_ENDLESS_LOOP), str(path))
    session = core.create_session(path, core.resolve_provider("cpu"))
    timer = threading.Timer(0.3, signal.raise_signal, (signal.SIGINT,))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        core.run_bounded(session, {"x": np.ones((2, 4), np.float32)}, 3600)
    timer.join()


def test_a_name_that_is_not_utf8_is_refused(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    model = _one_weight_model(_weight())
    original = model.SerializeToString()
    data = original.replace(b"\x12\x01g", b"\x12\x01\xee", 1)  # GraphProto.name (field 2), "g"
    assert data != original
    path = tmp_path / "m.onnx"
    path.write_bytes(data)
    code = cli.main(["convert", str(path), "--no-validate"])
    err = capfd.readouterr().err
    assert code == 4 and err.count("\n") == 1 and "Traceback" not in err, err
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]


def test_lenient_inference_leaves_weights_as_weights(tmp_path: Path) -> None:
    """Big weights travel to ONNX's inference as inputs; afterwards none of them is still marked an input."""
    weight = numpy_helper.from_array(np.ones((64, 64), np.float32), "w")  # 16 KiB: over the inline limit
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("MatMul", ["x", "w"], ["y"]), onnx.helper.make_node("Relu", ["y"], ["z"])],
        "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 64])],
        [onnx.helper.make_tensor_value_info("z", onnx.TensorProto.FLOAT, ["N", 64])],
        [weight],
    )
    path = tmp_path / "m.onnx"
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)], ir_version=8), str(path))
    model = core.load_model(path).model
    core.infer_shapes_leniently(model)
    (value,) = model.graph.initializers.values()
    assert not value.is_graph_input()
    assert [v.name for v in model.graph.inputs] == ["x"]
    assert model.graph.node(0).outputs[0].type == onnx_ir.TensorType(onnx_ir.DataType.FLOAT)
