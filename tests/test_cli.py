"""The ``halfconv`` command line, tested by invoking it: exit codes and exact output lines.

Models are tiny graphs written in ONNX text syntax inside each test. Most runs call
``halfconv.cli.main`` in-process with ``capsys``; a few run the installed console script
and ``python -m halfconv`` in a subprocess.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnx.parser
import pytest

from halfconv import cli

REPO = Path(__file__).resolve().parent.parent

# MatMul and Add convert; Exp stays float32 under the default policy.
MODEL = """
<ir_version: 8, opset_import: ["" : 17]>
agraph (float[2,3] X) => (float[2,4] Y)
  <float[3,4] W = {1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0}> {
  [mm] H = MatMul(X, W)
  [exp0] E = Exp(H)
  [add0] Y = Add(E, H)
}
"""

TIME_LINE = re.compile(r"  time           \d+\.\d\d s")
OUTPUT_ERROR_LINE = re.compile(r"                 output 'Y': max abs error \S+, max rel error \S+")


def write_model(path: Path, text: str = MODEL) -> Path:
    model = onnx.parser.parse_model(text)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def listing(directory: Path) -> set[str]:
    """Every file and folder under ``directory``, hidden ones included."""
    return {str(p.relative_to(directory)) for p in directory.rglob("*")}


def assert_one_error_line(err: str, expected: str | None = None) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("Error: "), err
    assert "Traceback" not in err
    if expected is not None:
        assert lines[0] == expected
    return lines[0]


@pytest.fixture
def model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return write_model(tmp_path / "m.onnx")


# -- output paths ----------------------------------------------------------------------------


def test_convert_writes_fp16_beside_input_with_exact_summary(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = model.read_bytes()
    code, out, err = run(capsys, "convert", str(model))
    assert (code, err) == (0, "")
    output = model.with_name("m.fp16.onnx")
    assert output.is_file()
    assert listing(model.parent) == {"m.onnx", "m.fp16.onnx"}
    assert model.read_bytes() == before
    size_before, size_after = len(before), output.stat().st_size
    lines = out.splitlines()
    assert lines[:7] == [
        f"converted {model} -> {output} (fp16, engine halfconv)",
        "  nodes          3 total: 2 converted, 1 kept float32, 0 without float tensors",
        "  weights        100.0% of 12 float32 elements now fp16",
        "  casts          4 inserted, 0 removed",
        "  range          0 values clamped, 0 flushed to zero",
        f"  size           {size_before} B -> {size_after} B ({size_after / size_before:.2f}x)",
        "  validation     passed (checker ok; CPUExecutionProvider; random inputs)",
    ]
    assert OUTPUT_ERROR_LINE.fullmatch(lines[7]), lines[7]
    assert TIME_LINE.fullmatch(lines[8]), lines[8]
    assert len(lines) == 9
    converted = onnx.load(str(output))
    onnx.checker.check_model(converted, full_check=True)
    assert converted.graph.initializer[0].data_type == onnx.TensorProto.FLOAT16
    # keep-io-types is the default: the graph input and output stay float32
    assert converted.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert converted.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT


def test_target_bf16_writes_bf16_file(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "convert", str(model), "--target", "bf16", "--json")
    assert (code, err) == (0, "")
    output = model.with_name("m.bf16.onnx")
    assert listing(model.parent) == {"m.onnx", "m.bf16.onnx"}
    summary = json.loads(out)
    assert summary["target"] == "bf16"
    assert summary["output"] == str(output)
    assert summary["validation"]["status"] in ("passed", "partial")
    converted = onnx.load(str(output))
    assert converted.graph.initializer[0].data_type == onnx.TensorProto.BFLOAT16


def test_dash_o_chooses_the_output(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = model.parent / "sub" / "half.onnx"
    target.parent.mkdir()
    code, out, err = run(capsys, "convert", str(model), "-o", str(target))
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == f"converted {model} -> {target} (fp16, engine halfconv)"
    assert listing(model.parent) == {"m.onnx", "sub", "sub/half.onnx"}


def test_existing_output_needs_force(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = model.with_name("m.fp16.onnx")
    output.write_bytes(b"old")
    code, out, err = run(capsys, "convert", str(model))
    assert (code, out) == (7, "")
    assert_one_error_line(err, f"Error: {output} already exists - pass --force to overwrite it")
    assert output.read_bytes() == b"old"
    assert listing(model.parent) == {"m.onnx", "m.fp16.onnx"}

    code, out, err = run(capsys, "convert", str(model), "--force")
    assert (code, err) == (0, "")
    assert output.read_bytes() != b"old"
    onnx.checker.check_model(str(output))
    assert listing(model.parent) == {"m.onnx", "m.fp16.onnx"}


def test_existing_output_data_file_needs_force(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stale = model.with_name("m.fp16.onnx.data")
    stale.write_bytes(b"stale")
    code, _, err = run(capsys, "convert", str(model))
    assert code == 7
    assert_one_error_line(err, f"Error: {stale} already exists - pass --force to overwrite it")
    code, _, err = run(capsys, "convert", str(model), "--force")
    assert (code, err) == (0, "")
    # The new model has no external data, so the stale data file must not stay beside it.
    assert listing(model.parent) == {"m.onnx", "m.fp16.onnx"}


@pytest.mark.parametrize("spelling", ["same", "dot-slash", "absolute", "symlink"])
def test_output_equal_to_input_is_refused(model: Path, capsys: pytest.CaptureFixture[str], spelling: str) -> None:
    expected = {"m.onnx"}
    if spelling == "symlink":
        (model.parent / "link.onnx").symlink_to(model)
        expected.add("link.onnx")
    before = (model.read_bytes(), model.stat().st_mtime_ns)
    target = {"same": "m.onnx", "dot-slash": "./m.onnx", "absolute": str(model), "symlink": "link.onnx"}[spelling]
    code, out, err = run(capsys, "convert", "m.onnx", "-o", target, "--force")
    assert (code, out) == (7, "")
    line = assert_one_error_line(err)
    assert line.endswith(" is the input model - choose another path with -o; the input is never modified")
    assert (model.read_bytes(), model.stat().st_mtime_ns) == before
    assert listing(model.parent) == expected


def test_output_in_missing_directory(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "convert", str(model), "-o", str(model.parent / "nope" / "x.onnx"))
    assert (code, out) == (7, "")
    assert_one_error_line(
        err, f"Error: output directory {model.parent / 'nope'} does not exist - create it or choose another path"
    )
    assert listing(model.parent) == {"m.onnx"}


def test_output_is_a_directory(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (model.parent / "d.onnx").mkdir()
    code, _, err = run(capsys, "convert", str(model), "-o", str(model.parent / "d.onnx"))
    assert code == 7
    assert_one_error_line(err, f"Error: output {model.parent / 'd.onnx'} is a directory - pass a file path with -o")
    assert listing(model.parent) == {"m.onnx", "d.onnx"}


def test_output_directory_not_writable(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    locked = model.parent / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as root: a 0o555 directory is still writable")
        code, out, err = run(capsys, "convert", str(model), "-o", str(locked / "x.onnx"))
        assert (code, out) == (7, "")
        assert_one_error_line(err)
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


def test_output_directory_that_refuses_files(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # /proc refuses new files even for root, so this covers "cannot write" where chmod cannot.
    if not Path("/proc/self").exists():
        pytest.skip("no /proc here")
    code, out, err = run(capsys, "convert", str(model), "-o", "/proc/halfconv-test.onnx")
    assert (code, out) == (7, "")
    assert assert_one_error_line(err).startswith("Error: cannot write to /proc")
    assert listing(model.parent) == {"m.onnx"}


# -- report formats ----------------------------------------------------------------------------


def test_json_summary(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "convert", str(model), "--json")
    assert (code, err) == (0, "")
    summary = json.loads(out)
    output = model.with_name("m.fp16.onnx")
    assert summary["input"] == str(model)
    assert summary["output"] == str(output)
    assert summary["target"] == "fp16"
    assert summary["engine"] == "halfconv"
    assert summary["nodes"]["total"] == 3
    assert summary["nodes"]["converted"] == 2
    assert summary["nodes"]["kept_fp32"] == 1
    assert summary["weights"]["converted_share"] == 1.0
    assert summary["casts_inserted"] == 4
    assert summary["clamped_values"] == 0
    assert summary["flushed_values"] == 0
    assert summary["size_bytes"] == {
        "before": model.stat().st_size,
        "after": output.stat().st_size,
        "ratio": round(output.stat().st_size / model.stat().st_size, 6),
    }
    validation = summary["validation"]
    assert validation["status"] == "passed"
    assert validation["inputs_from"] == "random"
    assert [o["name"] for o in validation["outputs"]] == ["Y"]
    assert isinstance(validation["outputs"][0]["max_abs_error"], float)
    assert validation["outputs"][0]["max_abs_error"] >= 0
    assert isinstance(summary["wall_time_s"], float) and summary["wall_time_s"] >= 0
    assert [k["name"] for k in summary["kept_nodes"]] == ["exp0"]


def test_no_validate(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "convert", str(model), "--no-validate")
    assert (code, err) == (0, "")
    assert "  validation     NOT VALIDATED (--no-validate)" in out.splitlines()
    code, out, err = run(capsys, "convert", str(model), "--no-validate", "--json", "--force")
    assert (code, err) == (0, "")
    validation = json.loads(out)["validation"]
    assert validation["status"] == "skipped"
    assert validation["outputs"] == []
    assert validation["checker"] is False


def test_explain_lists_float32_nodes_with_reasons(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from halfconv.conversion import _policy

    reason = next(r.reason for r in _policy.DEFAULT_KEEP_OPS if r.op_type == "Exp")
    code, out, err = run(capsys, "convert", str(model), "--explain")
    assert (code, err) == (0, "")
    table = out.split("\n\n", 1)[1].splitlines()
    assert table == [
        "1 node(s) keep float32:",
        "  NODE  OP   GRAPH  KEPT  SOURCE  REASON",
        f"  exp0  Exp  main   node  policy  {reason}",
    ]


def test_explain_with_keep_op_and_keep_node(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "convert", str(model), "--explain", "--keep-op", "MatMul", "--no-validate")
    assert (code, err) == (0, "")
    table = out.split("\n\n", 1)[1].splitlines()
    assert table[0] == "2 node(s) keep float32:"
    rows = {line.split()[0]: line.split()[4] for line in table[2:]}
    assert rows == {"mm": "keep-op", "exp0": "policy"}


def test_explain_when_nothing_stays_float32(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_model(
        tmp_path / "relu.onnx",
        """
        <ir_version: 8, opset_import: ["" : 17]>
        agraph (float[2] X) => (float[2] Y) <float[2] B = {1.0, 2.0}> {
          Y = Add(X, B)
        }
        """,
    )
    code, out, err = run(capsys, "convert", str(path), "--explain")
    assert (code, err) == (0, "")
    assert out.splitlines()[-1] == "no node stays float32"


def test_everything_kept_is_nothing_to_convert(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "convert", str(model), "--keep-op", "MatMul", "--keep-op", "Add"
    )
    # The weight W feeds a kept MatMul, so nothing at all converts.
    assert (code, out) == (8, "")
    assert_one_error_line(
        err,
        f"Error: every float32 node of {model} stays float32 under the current policy and keep lists"
        " - nothing was written; see --explain for the reasons",
    )
    assert listing(model.parent) == {"m.onnx"}


# -- engines, samples --------------------------------------------------------------------------


def test_engine_onnxconverter_common(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "convert", str(model), "--engine", "onnxconverter-common", "--json")
    assert code == 0
    summary = json.loads(out)
    assert summary["engine"] == "onnxconverter-common"
    assert summary["validation"]["status"] == "passed"
    assert listing(model.parent) == {"m.onnx", "m.fp16.onnx"}
    assert onnx.load(str(model.with_name("m.fp16.onnx"))).graph.initializer[0].data_type == onnx.TensorProto.FLOAT16


def test_engine_onnxconverter_common_refuses_bf16(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "convert", str(model), "--engine", "onnxconverter-common", "--target", "bf16")
    assert (code, out) == (2, "")
    assert_one_error_line(err, "Error: onnxconverter-common converts to fp16 only - use --engine halfconv for bf16")
    assert listing(model.parent) == {"m.onnx"}


def test_sample_is_used_for_the_numeric_check(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sample = model.with_name("inputs.npz")
    np.savez(sample, X=np.full((2, 3), 0.25, dtype=np.float32))
    code, out, err = run(capsys, "convert", str(model), "--sample", str(sample))
    assert (code, err) == (0, "")
    assert f"  validation     passed (checker ok; CPUExecutionProvider; {sample} inputs)" in out.splitlines()
    code, out, err = run(capsys, "convert", str(model), "--sample", str(sample), "--json", "--force")
    assert json.loads(out)["validation"]["inputs_from"] == str(sample)


def test_sample_without_the_input_name(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sample = model.with_name("inputs.npz")
    np.savez(sample, Z=np.zeros((2, 3), dtype=np.float32))
    code, out, err = run(capsys, "convert", str(model), "--sample", str(sample))
    assert (code, out) == (2, "")
    assert_one_error_line(
        err, f"Error: --sample {sample} has no array named 'X' - save one array per model input (X)"
    )
    assert listing(model.parent) == {"m.onnx", "inputs.npz"}


def test_sample_file_missing(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "convert", str(model), "--sample", str(model.with_name("none.npz")))
    assert (code, out) == (2, "")
    assert assert_one_error_line(err).startswith(f"Error: cannot read --sample {model.with_name('none.npz')}")
    assert listing(model.parent) == {"m.onnx"}


@pytest.mark.parametrize("kind", ["npy", "object-array"])
def test_sample_that_is_not_a_plain_npz(model: Path, capsys: pytest.CaptureFixture[str], kind: str) -> None:
    if kind == "npy":
        sample = model.with_name("inputs.npy")
        np.save(sample, np.zeros((2, 3), dtype=np.float32))
        expected = f"Error: --sample {sample} is a single array, not an .npz archive"
    else:
        sample = model.with_name("inputs.npz")
        np.savez(sample, X=np.array([object()], dtype=object))
        expected = "Error: --sample array 'X' cannot be read"
    code, out, err = run(capsys, "convert", str(model), "--sample", str(sample))
    assert (code, out) == (2, "")
    assert assert_one_error_line(err).startswith(expected)
    assert listing(model.parent) == {"m.onnx", sample.name}


def test_sample_with_wrong_shape_is_a_usage_error(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sample = model.with_name("inputs.npz")
    np.savez(sample, X=np.zeros((2, 7, 5), dtype=np.float32))
    code, out, err = run(capsys, "convert", str(model), "--sample", str(sample))
    assert (code, out) == (2, "")
    assert assert_one_error_line(err).startswith("Error: the float32 model fails on the --sample inputs: ")
    assert listing(model.parent) == {"m.onnx", "inputs.npz"}


def test_sample_with_no_validate(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sample = model.with_name("inputs.npz")
    np.savez(sample, X=np.zeros((2, 3), dtype=np.float32))
    code, out, err = run(capsys, "convert", str(model), "--sample", str(sample), "--no-validate")
    assert (code, out) == (2, "")
    assert_one_error_line(err, "Error: --sample and --no-validate are mutually exclusive - drop one of them")
    assert listing(model.parent) == {"m.onnx", "inputs.npz"}


# -- policy, help ------------------------------------------------------------------------------


def test_policy(capsys: pytest.CaptureFixture[str]) -> None:
    from halfconv.conversion import _policy

    code, out, err = run(capsys, "policy")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    width = max(len(r.op_type) for r in _policy.DEFAULT_KEEP_OPS)
    ops_end = 1 + len(_policy.DEFAULT_KEEP_OPS)
    assert lines[0] == "ops that stay float32:"
    assert lines[1:ops_end] == [f"  {r.op_type.ljust(width)}  {r.reason}" for r in _policy.DEFAULT_KEEP_OPS]
    assert lines[ops_end] == "inputs that stay float32 when their node converts:"
    assert "  Exp" in out


def test_policy_json(capsys: pytest.CaptureFixture[str]) -> None:
    from halfconv.conversion import _policy

    code, out, err = run(capsys, "policy", "--json")
    assert (code, err) == (0, "")
    table = json.loads(out)
    assert set(table) == {"keep_ops", "keep_inputs", "float_only_domains"}
    assert [r["op_type"] for r in table["keep_ops"]] == [r.op_type for r in _policy.DEFAULT_KEEP_OPS]
    assert all(r["reason"] for r in table["keep_ops"] + table["keep_inputs"])
    assert table["float_only_domains"] == dict(_policy.FLOAT_ONLY_DOMAINS)


def _subcommands() -> dict[str, object]:
    parser = cli.build_parser()
    (action,) = [a for a in parser._actions if a.dest == "command"]
    return {name: sub for name, sub in action.choices.items()}  # type: ignore[union-attr]


def test_help_mentions_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: halfconv ")
    for name in _subcommands():
        assert re.search(rf"^    {name}\s+\S", out, re.MULTILINE), f"{name} has no help line in halfconv --help"


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_subcommand_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([name, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: halfconv {name} ")
    sub = _subcommands()[name]
    assert sub.description  # type: ignore[attr-defined]
    for action in sub._actions:  # type: ignore[attr-defined]
        assert action.help, f"halfconv {name}: {action.option_strings or action.dest} has no help text"


def test_readme_mentions_every_subcommand() -> None:
    readme = REPO / "README.md"
    if not readme.exists():
        pytest.skip("README.md does not exist yet")
    text = readme.read_text(encoding="utf-8")
    missing = [name for name in _subcommands() if f"halfconv {name}" not in text]
    assert not missing, f"README.md does not mention: {', '.join('halfconv ' + m for m in missing)}"


def test_no_arguments_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("usage: halfconv ")


def test_unknown_choice_is_a_usage_error(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["convert", str(model), "--target", "fp8"])
    assert exit_info.value.code == 2
    assert listing(model.parent) == {"m.onnx"}


# -- real processes ----------------------------------------------------------------------------


def _script() -> Path:
    script = Path(sys.executable).with_name("halfconv")
    if not script.exists():
        pytest.skip(f"no console script beside {sys.executable}")
    return script


def _run_process(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_help_imports_no_heavy_framework(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from halfconv.cli import main\n"
        "for argv in (['--help'], ['convert', '--help'], ['policy', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('onnxruntime', 'torch', 'tensorflow'))\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    done = _run_process([sys.executable, "-c", code], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "HEAVY []"


def test_console_script_converts(tmp_path: Path) -> None:
    write_model(tmp_path / "m.onnx")
    done = _run_process([str(_script()), "convert", "m.onnx"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.splitlines()[0] == "converted m.onnx -> m.fp16.onnx (fp16, engine halfconv)"
    assert listing(tmp_path) == {"m.onnx", "m.fp16.onnx"}

    done = _run_process([str(_script()), "convert", "m.onnx"], tmp_path)
    assert done.returncode == 7
    assert done.stdout == ""
    assert done.stderr == "Error: m.fp16.onnx already exists - pass --force to overwrite it\n"


def test_python_dash_m_reports_bad_input(tmp_path: Path) -> None:
    (tmp_path / "bad.onnx").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    done = _run_process([sys.executable, "-m", "halfconv", "convert", "bad.onnx"], tmp_path)
    assert done.returncode == 4
    assert done.stdout == ""
    assert done.stderr == "Error: bad.onnx is a PNG image, not an ONNX model - pass an .onnx file\n"
    assert listing(tmp_path) == {"bad.onnx"}


def test_python_dash_m_version(tmp_path: Path) -> None:
    from halfconv import __version__

    done = _run_process([sys.executable, "-m", "halfconv", "--version"], tmp_path)
    assert done.returncode == 0
    assert done.stdout == f"halfconv {__version__}\n"


def test_sigterm_unwinds_and_leaves_nothing(tmp_path: Path) -> None:
    write_model(tmp_path / "m.onnx")
    code = (
        "import os, signal, sys, time\n"
        "import halfconv.conversion._pipeline as c\n"
        "def validate(*args, **kwargs):\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    time.sleep(30)\n"
        "c.validate_converted = validate\n"
        "from halfconv.cli import main\n"
        "sys.exit(main(['convert', 'm.onnx']))\n"
    )
    done = _run_process([sys.executable, "-c", code], tmp_path)
    assert done.returncode == 130
    assert done.stdout == ""
    assert done.stderr == "Error: interrupted - nothing was written\n"
    assert listing(tmp_path) == {"m.onnx"}
