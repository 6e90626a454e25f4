"""The ``halfconv`` command line, tested by invoking it: exit codes and exact output lines.

Models are tiny graphs written in ONNX text syntax inside each test. Most runs call
``halfconv.cli.main`` in-process with ``capfd``: ONNX Runtime is native code that writes its
notices to file descriptor 2, which ``capsys`` never sees, so "stderr is empty" is only
checked where the descriptor itself is captured. A few run the installed console script and
``python -m halfconv`` in a subprocess.

The expectations are this machine's: ONNX Runtime's CPU provider and no usable CUDA.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import zipfile
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
  <float[3,4] W = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2}> {
  [mm] H = MatMul(X, W)
  [exp0] E = Exp(H)
  [add0] Y = Add(E, H)
}
"""

TIME_LINE = re.compile(r"  time           \d+\.\d\d s")  # the wall time is the one figure that varies

# Add -> Mul -> Reshape: (X + 2) * 65504 lies in [131008, 196512) for the validation's inputs in
# [0, 1): finite in float32, beyond float16's 65504. ORT's CPU provider computes Add and Mul in
# float32 and would drop the fp32 -> fp16 -> fp32 casts around them, hiding the overflow; the
# Reshape has a float16 kernel, so the Mul's result is really stored as float16 (inf) before
# the output Cast back to float32. All 6 output values become inf, whatever the random inputs.
OVERFLOW_MODEL = """
<ir_version: 10, opset_import: ["" : 18]>
agraph (float[2,3] X) => (float[2,3] Y)
  <float[1] two = {2.0}, float[1] big = {65504.0}, int64[2] shape = {2, 3}> {
  [shift] H = Add(X, two)
  [scale] M = Mul(H, big)
  [same] Y = Reshape(M, shape)
}
"""

# `halfconv policy`, exactly.
POLICY_TEXT = """\
ops that stay float32:
  Exp                exp(x) overflows float16 (max 65504) for any x above 11.09
  Pow                x**y leaves the float16 range for moderate bases and exponents
  Log                inputs below 6e-8 flush to 0 in float16 and log returns -inf
  ReduceSum          sums over large axes overflow float16
  ReduceSumSquare    sums of squares overflow float16 once values pass 256
  ReduceMean         the running sum can overflow float16 before it is divided
  ReduceProd         products leave the float16 range after a few factors
  ReduceL1           sums of magnitudes over large axes overflow float16
  ReduceL2           the sum of squares inside the norm overflows float16
  ReduceLogSum       the inner sum overflows float16 on large axes
  ReduceLogSumExp    the inner exp/sum overflows float16
  CumSum             running sums over long axes overflow float16
  Range              float16 rounding of start/limit/delta changes the output length
  TopK               float16 rounding creates ties that change which elements are selected
  NonMaxSuppression  the ONNX spec defines it for float32 boxes and scores only
  RoiAlign           box coordinates above 2048 are not exact in float16
inputs that stay float32 when their node converts:
  Resize.roi  region-of-interest coordinates need float32 precision
  Resize.scales  the ONNX spec types scales as float32 only
  Upsample.scales  the ONNX spec types scales as float32 only
domains that stay float32:
  ai.onnx.ml  ai.onnx.ml operators are defined for float32/double only
"""
EXP_REASON = "exp(x) overflows float16 (max 65504) for any x above 11.09"
BF16_SKIPPED = (
    "ORT load: the CPU provider has no bfloat16 kernel (CPUExecutionProvider cannot run"
    " m.bf16.onnx: Could not find an implementation for MatMul(13) node with name 'mm')"
    " and no CUDA provider could be created"
)


def write_model(path: Path, text: str = MODEL) -> Path:
    model = onnx.parser.parse_model(text)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


def run(capfd: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capfd.readouterr()
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


def test_convert_writes_fp16_beside_input_with_exact_summary(model: Path, capfd: pytest.CaptureFixture[str]) -> None:
    before = model.read_bytes()
    code, out, err = run(capfd, "convert", str(model))
    assert (code, err) == (0, "")
    output = model.with_name("m.fp16.onnx")
    assert output.is_file()
    assert listing(model.parent) == {"m.onnx", "m.fp16.onnx"}
    assert model.read_bytes() == before
    assert (len(before), output.stat().st_size) == (192, 657)
    lines = out.splitlines()
    assert lines[:10] == [
        f"converted {model} -> {output} (fp16, engine halfconv)",
        "  nodes          3 total: 2 converted, 1 kept float32, 0 without float tensors",
        "  weights        100.0% of 12 float32 elements now fp16",
        "  casts          4 inserted, 0 removed",
        "  range          0 values clamped, 0 flushed to zero",
        "  size           192 B -> 657 B (3.42x)",
        "  validation     passed (checker ok; CPUExecutionProvider; random inputs)",
        # The numbers of float16 storage: ORT's CPU provider alone would round nothing here
        # (max abs error 0), since it drops the fp32 -> fp16 -> fp32 cast pairs between its
        # float32 fallbacks.
        "                 output 'Y': max abs error 0.00426, max rel error 0.000737",
        "                 numbers: fp16 storage emulated on CPUExecutionProvider",
        "  calibration    not measured: activation ranges and accuracy were not checked on data (pass --calibration)",
    ]
    assert TIME_LINE.fullmatch(lines[10]), lines[10]
    assert len(lines) == 11
    converted = onnx.load(str(output))
    onnx.checker.check_model(converted, full_check=True)
    assert converted.graph.initializer[0].data_type == onnx.TensorProto.FLOAT16
    # keep-io-types is the default: the graph input and output stay float32
    assert converted.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert converted.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT


def test_target_bf16_writes_bf16_file(model: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """No CUDA here and no bfloat16 kernels in the CPU provider: ORT cannot load the model, so the
    status is partial; the numbers come from bfloat16 storage emulated on the CPU.

    ONNX Runtime's failed sessions (CPU for bfloat16, then CUDA) must not leak a single byte
    to file descriptor 2; capfd sees what capsys would miss.
    """
    code, out, err = run(capfd, "convert", str(model), "--target", "bf16", "--json")
    assert (code, err) == (0, "")
    output = model.with_name("m.bf16.onnx")
    assert listing(model.parent) == {"m.onnx", "m.bf16.onnx"}
    summary = json.loads(out)
    assert summary["target"] == "bf16"
    assert summary["output"] == str(output)
    assert summary["validation"] == {
        "status": "partial",
        "checker": True,
        "ort_provider": None,
        "inputs_from": "random",
        "skipped": [BF16_SKIPPED],
        "outputs": [
            {"name": "Y", "max_abs_error": 0.029630661010742188, "max_rel_error": 0.005123868321036819, "nonfinite_introduced": 0}
        ],
        "numerics": "bf16 storage emulated on CPUExecutionProvider",
        "divergences": [],
    }
    converted = onnx.load(str(output))
    assert converted.graph.initializer[0].data_type == onnx.TensorProto.BFLOAT16


def test_target_bf16_text_summary_says_partial(model: Path, capfd: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capfd, "convert", str(model), "--target", "bf16")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"converted {model} -> {model.with_name('m.bf16.onnx')} (bf16, engine halfconv)"
    assert lines[2] == "  weights        100.0% of 12 float32 elements now bf16"
    assert lines[6:11] == [
        "  validation     partial (checker ok; not loaded in ORT; random inputs)",
        "                 output 'Y': max abs error 0.0296, max rel error 0.00512",
        "                 numbers: bf16 storage emulated on CPUExecutionProvider",
        f"                 skipped: {BF16_SKIPPED}",
        "  calibration    not measured: activation ranges and accuracy were not checked on data (pass --calibration)",
    ]
    assert TIME_LINE.fullmatch(lines[11]), lines[11]
    assert len(lines) == 12


def test_target_bf16_in_a_fresh_process_prints_nothing_on_stderr(tmp_path: Path) -> None:
    """ONNX Runtime logs some provider failures once per process: check a fresh one too."""
    write_model(tmp_path / "m.onnx")
    done = _run_process([str(_script()), "convert", "m.onnx", "--target", "bf16", "--json"], tmp_path)
    assert (done.returncode, done.stderr) == (0, "")
    assert json.loads(done.stdout)["validation"]["status"] == "partial"
    assert listing(tmp_path) == {"m.onnx", "m.bf16.onnx"}


def test_dash_o_chooses_the_output(model: Path, capfd: pytest.CaptureFixture[str]) -> None:
    target = model.parent / "sub" / "half.onnx"
    target.parent.mkdir()
    code, out, err = run(capfd, "convert", str(model), "-o", str(target))
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == f"converted {model} -> {target} (fp16, engine halfconv)"
    assert listing(model.parent) == {"m.onnx", "sub", "sub/half.onnx"}


def test_existing_output_needs_force(model: Path, capfd: pytest.CaptureFixture[str]) -> None:
    output = model.with_name("m.fp16.onnx")
    output.write_bytes(b"old")
    code, out, err = run(capfd, "convert", str(model))
    assert (code, out) == (7, "")
    assert_one_error_line(err, f"Error: {output} already exists - pass --force to overwrite it")
    assert output.read_bytes() == b"old"
    assert listing(model.parent) == {"m.onnx", "m.fp16.onnx"}

    code, out, err = run(capfd, "convert", str(model), "--force")
    assert (code, err) == (0, "")
    assert output.read_bytes() != b"old"
    onnx.checker.check_model(str(output))
    assert listing(model.parent) == {"m.onnx", "m.fp16.onnx"}


def test_existing_output_data_file_needs_force(model: Path, capfd: pytest.CaptureFixture[str]) -> None:
    stale = model.with_name("m.fp16.onnx.data")
    stale.write_bytes(b"stale")
    code, _, err = run(capfd, "convert", str(model))
    assert code == 7
    assert_one_error_line(err, f"Error: {stale} already exists - pass --force to overwrite it")
    code, _, err = run(capfd, "convert", str(model), "--force")
    assert (code, err) == (0, "")
    # The new model has no external data, so the stale data file must not stay beside it.
    assert listing(model.parent) == {"m.onnx", "m.fp16.onnx"}


@pytest.mark.parametrize("spelling", ["same", "dot-slash", "absolute", "symlink"])
def test_output_equal_to_input_is_refused(model: Path, capfd: pytest.CaptureFixture[str], spelling: str) -> None:
    expected = {"m.onnx"}
    if spelling == "symlink":
        (model.parent / "link.onnx").symlink_to(model)
        expected.add("link.onnx")
    before = (model.read_bytes(), model.stat().st_mtime_ns)
    target = {"same": "m.onnx", "dot-slash": "./m.onnx", "absolute": str(model), "symlink": "link.onnx"}[spelling]
    code, out, err = run(capfd, "convert", "m.onnx", "-o", target, "--force")
    assert (code, out) == (7, "")
    line = assert_one_error_line(err)
    assert line.endswith(" is the input model - choose another path with -o; the input is never modified")
    assert (model.read_bytes(), model.stat().st_mtime_ns) == before
    assert listing(model.parent) == expected


def test_output_in_missing_directory(model: Path, capfd: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capfd, "convert", str(model), "-o", str(model.parent / "nope" / "x.onnx"))
    assert (code, out) == (7, "")
    assert_one_error_line(
        err, f"Error: output directory {model.parent / 'nope'} does not exist - create it or choose another path"
    )
    assert listing(model.parent) == {"m.onnx"}


def test_output_is_a_directory(model: Path, capfd: pytest.CaptureFixture[str]) -> None:
    (model.parent / "d.onnx").mkdir()
    code, _, err = run(capfd, "convert", str(model), "-o", str(model.parent / "d.onnx"))
    assert code == 7
    assert_one_error_line(err, f"Error: output {model.parent / 'd.onnx'} is a directory - pass a file path with -o")
    assert listing(model.parent) == {"m.onnx", "d.onnx"}


def test_output_directory_not_writable(
    model: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The tests run as root here, for whom a 0o555 directory stays writable; os.access answers
    # for the folder as it would for any other user, so the check runs the same everywhere.
    locked = model.parent / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    real_access = os.access

    def access(path: object, mode: int, **kwargs: object) -> bool:
        if Path(str(path)) == locked and mode & os.W_OK:
            return False
        return real_access(path, mode, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "access", access)
    try:
        code, out, err = run(capfd, "convert", str(model), "-o", str(locked / "x.onnx"))
        assert (code, out) == (7, "")
        assert_one_error_line(err, f"Error: cannot write to {locked} - choose a writable directory with -o")
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


def test_output_directory_that_refuses_files(model: Path, capfd: pytest.CaptureFixture[str]) -> None:
    # /proc refuses new files even for root, so this covers "cannot write" where chmod cannot.
    code, out, err = run(capfd, "convert", str(model), "-o", "/proc/halfconv-test.onnx")
    assert (code, out) == (7, "")
    assert assert_one_error_line(err).startswith("Error: cannot write to /proc")
    assert listing(model.parent) == {"m.onnx"}


# -- report formats ----------------------------------------------------------------------------


def test_json_summary(model: Path, capfd: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capfd, "convert", str(model), "--json")
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
    assert summary["size_bytes"] == {"before": 192, "after": 657, "ratio": 3.421875}
    assert (model.stat().st_size, output.stat().st_size) == (192, 657)
    assert summary["validation"] == {
        "status": "passed",
        "checker": True,
        "ort_provider": "CPUExecutionProvider",
        "inputs_from": "random",
        "skipped": [],
        "outputs": [{"name": "Y", "max_abs_error": 0.00426483154296875, "max_rel_error": 0.000737494017755927, "nonfinite_introduced": 0}],
        "numerics": "fp16 storage emulated on CPUExecutionProvider",
        "divergences": [],
    }
    assert isinstance(summary["wall_time_s"], float) and summary["wall_time_s"] > 0
    phases = summary["timings"]
    assert list(phases) == ["load_s", "infer_s", "plan_s", "rewrite_s", "serialise_s", "write_s", "validate_s"]
    assert all(isinstance(v, float) and v >= 0 for v in phases.values())
    assert sum(phases.values()) <= summary["wall_time_s"] + 1e-3
    assert summary["kept_nodes"] == [
        {
            "name": "exp0",
            "op_type": "Exp",
            "domain": "",
            "graph": "main",
            "reason": EXP_REASON,
            "source": "policy",
            "kept_inputs": [],
        }
    ]


def test_json_timings_of_onnxconverter_common(model: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """Its conversion is one call, and onnx.save serialises and writes: those phases are null, not zero."""
    code, out, err = run(capfd, "convert", str(model), "--engine", "onnxconverter-common", "--json")
    assert (code, err) == (0, "")
    phases = json.loads(out)["timings"]
    assert {k for k, v in phases.items() if v is None} == {"infer_s", "plan_s", "serialise_s"}
    assert all(v >= 0 for v in phases.values() if v is not None)


def test_no_validate(model: Path, capfd: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capfd, "convert", str(model), "--no-validate")
    assert (code, err) == (0, "")
    assert "  validation     checker ok; NOT LOADED IN ORT, NOT COMPARED (--no-validate)" in out.splitlines()
    code, out, err = run(capfd, "convert", str(model), "--no-validate", "--json", "--force")
    assert (code, err) == (0, "")
    validation = json.loads(out)["validation"]
    assert validation["status"] == "skipped"
    assert validation["outputs"] == []
    assert validation["checker"] is True  # the checker runs even so: it is cheap


def _cpu_run(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(["Y"], {"X": x})[0]


def test_real_overflow_fails_validation_and_writes_nothing(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    path = write_model(tmp_path / "o.onnx", OVERFLOW_MODEL)
    code, out, err = run(capfd, "convert", str(path))
    assert (code, out) == (6, "")
    assert_one_error_line(
        err,
        "Error: output 'Y' has 6 non-finite value(s) that the float32 model does not: node 'scale' (Mul): its output"
        " 'M' reaches 1.87e+05 in float32, beyond float16's 65504, and has 6 non-finite value(s) once stored in 16 bits"
        " - keep it in float32 with --keep-node scale, or pass --allow-nonfinite",
    )
    assert listing(tmp_path) == {"o.onnx"}


def test_real_overflow_with_allow_nonfinite(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    path = write_model(tmp_path / "o.onnx", OVERFLOW_MODEL)
    code, out, err = run(capfd, "convert", str(path), "--allow-nonfinite", "--json")
    assert (code, err) == (0, "")
    output = tmp_path / "o.fp16.onnx"
    assert listing(tmp_path) == {"o.onnx", "o.fp16.onnx"}
    validation = json.loads(out)["validation"]
    assert validation["status"] == "passed"
    # Every value is inf after conversion, so no finite pair is left to compare: no error figure.
    assert validation["outputs"] == [{"name": "Y", "max_abs_error": None, "max_rel_error": None, "nonfinite_introduced": 6}]
    # The overflow is real on the CPU provider, not a quirk of halfconv's check.
    x = np.full((2, 3), 0.5, dtype=np.float32)
    np.testing.assert_array_equal(_cpu_run(path, x), np.full((2, 3), 2.5 * 65504, dtype=np.float32))
    np.testing.assert_array_equal(_cpu_run(output, x), np.full((2, 3), np.inf, dtype=np.float32))

    code, out, err = run(capfd, "convert", str(path), "--allow-nonfinite", "--force")
    assert (code, err) == (0, "")
    assert out.splitlines()[6:9] == [
        "  validation     passed (checker ok; CPUExecutionProvider; random inputs)",
        "                 output 'Y': no element is finite in both models, 6 new non-finite",
        "                 numbers: fp16 storage emulated on CPUExecutionProvider",
    ]


def test_keeping_the_overflowing_op_in_float32_passes(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    path = write_model(tmp_path / "o.onnx", OVERFLOW_MODEL)
    code, out, err = run(capfd, "convert", str(path), "--keep-node", "scale", "--keep-node", "same", "--json")
    assert (code, err) == (0, "")
    outputs = json.loads(out)["validation"]["outputs"]
    assert [(o["name"], o["nonfinite_introduced"]) for o in outputs] == [("Y", 0)]


def test_explain_lists_float32_nodes_with_reasons(model: Path, capfd: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capfd, "convert", str(model), "--explain")
    assert (code, err) == (0, "")
    kept, divergences = out.split("\n\n")[1:]
    assert kept.splitlines() == [
        "1 node(s) keep float32:",
        "  NODE  OP   GRAPH  KEPT  SOURCE  REASON",
        "  exp0  Exp  main   node  policy  exp(x) overflows float16 (max 65504) for any x above 11.09",
    ]
    # Every value the fp16 model stores, against float32 on the same inputs, largest error first.
    assert divergences.splitlines() == [
        "no stored value diverges from float32 by more than 1% (3 compared); the largest:",
        "  NODE  OP      VALUE      MAX |FP32|  NON-FINITE  MAX REL ERROR",
        "  add0  Add     E (input)  4.32        0           0.000452",
        "  mm    MatMul  X (input)  0.851       0           0.000286",
        "  mm    MatMul  H          1.46        0           0.000247",
    ]


def test_explain_with_keep_op_and_keep_node(model: Path, capfd: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capfd, "convert", str(model), "--explain", "--keep-op", "MatMul", "--no-validate")
    assert (code, err) == (0, "")
    table = out.split("\n\n", 1)[1].splitlines()
    assert table[0] == "2 node(s) keep float32:"
    rows = {line.split()[0]: line.split()[4] for line in table[2:]}
    assert rows == {"mm": "keep-op", "exp0": "policy"}


def test_explain_when_nothing_stays_float32(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    path = write_model(
        tmp_path / "relu.onnx",
        """
        <ir_version: 8, opset_import: ["" : 17]>
        agraph (float[2] X) => (float[2] Y) <float[2] B = {1.0, 2.0}> {
          Y = Add(X, B)
        }
        """,
    )
    code, out, err = run(capfd, "convert", str(path), "--explain")
    assert (code, err) == (0, "")
    assert out.split("\n\n")[1:] == [
        "no node stays float32",
        "no stored value diverges from float32 by more than 1% (1 compared); the largest:\n"
        "  NODE       OP   VALUE      MAX |FP32|  NON-FINITE  MAX REL ERROR\n"
        "  (unnamed)  Add  X (input)  0.851       0           0.000286\n",
    ]


def test_everything_kept_is_nothing_to_convert(model: Path, capfd: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capfd, "convert", str(model), "--keep-op", "MatMul", "--keep-op", "Add"
    )
    # The weight W feeds a kept MatMul, so nothing at all converts.
    assert (code, out) == (8, "")
    assert_one_error_line(
        err,
        f"Error: every float32 node of {model} stays float32 (2 nodes: kept by --keep-op;"
        " 1 node: exp(x) overflows float16 (max 65504) for any x above 11.09) - nothing was written",
    )
    assert listing(model.parent) == {"m.onnx"}


# -- engines, samples --------------------------------------------------------------------------


def test_engine_onnxconverter_common(model: Path, capfd: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capfd, "convert", str(model), "--engine", "onnxconverter-common", "--json")
    assert (code, err) == (0, "")
    summary = json.loads(out)
    assert summary["engine"] == "onnxconverter-common"
    assert summary["validation"]["status"] == "passed"
    assert listing(model.parent) == {"m.onnx", "m.fp16.onnx"}
    assert onnx.load(str(model.with_name("m.fp16.onnx"))).graph.initializer[0].data_type == onnx.TensorProto.FLOAT16


def test_engine_onnxconverter_common_refuses_bf16(model: Path, capfd: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capfd, "convert", str(model), "--engine", "onnxconverter-common", "--target", "bf16")
    assert (code, out) == (2, "")
    assert_one_error_line(err, "Error: onnxconverter-common converts to fp16 only - use --engine halfconv for bf16")
    assert listing(model.parent) == {"m.onnx"}


def test_sample_is_used_for_the_numeric_check(model: Path, capfd: pytest.CaptureFixture[str]) -> None:
    sample = model.with_name("inputs.npz")
    np.savez(sample, X=np.full((2, 3), 0.25, dtype=np.float32))
    code, out, err = run(capfd, "convert", str(model), "--sample", str(sample))
    assert (code, err) == (0, "")
    assert f"  validation     passed (checker ok; CPUExecutionProvider; {sample} inputs)" in out.splitlines()
    code, out, err = run(capfd, "convert", str(model), "--sample", str(sample), "--json", "--force")
    assert json.loads(out)["validation"]["inputs_from"] == str(sample)


def test_sample_without_the_input_name(model: Path, capfd: pytest.CaptureFixture[str]) -> None:
    sample = model.with_name("inputs.npz")
    np.savez(sample, Z=np.zeros((2, 3), dtype=np.float32))
    code, out, err = run(capfd, "convert", str(model), "--sample", str(sample))
    assert (code, out) == (2, "")
    assert_one_error_line(
        err, f"Error: --sample {sample} has no array named 'X' - save one array per model input (X)"
    )
    assert listing(model.parent) == {"m.onnx", "inputs.npz"}


def test_sample_file_missing(model: Path, capfd: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capfd, "convert", str(model), "--sample", str(model.with_name("none.npz")))
    assert (code, out) == (2, "")
    assert_one_error_line(err, f"Error: --sample {model.with_name('none.npz')} does not exist - pass an .npz saved with numpy.savez")
    assert listing(model.parent) == {"m.onnx"}


def test_sample_that_is_a_fifo_is_refused_before_it_is_read(model: Path, capfd: pytest.CaptureFixture[str]) -> None:
    fifo = model.with_name("inputs.npz")
    os.mkfifo(fifo)
    code, out, err = run(capfd, "convert", str(model), "--sample", str(fifo))
    assert (code, out) == (2, "")
    assert_one_error_line(err, f"Error: --sample {fifo} is not a regular file - pass an .npz saved with numpy.savez")
    assert listing(model.parent) == {"m.onnx", "inputs.npz"}


def test_sample_whose_header_claims_more_than_it_holds(model: Path, capfd: pytest.CaptureFixture[str]) -> None:
    sample = model.with_name("inputs.npz")
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((2, 3), np.float32))
    member = buffer.getvalue().replace(b"(2, 3)", b"(2**40,)".replace(b"2**40", str(2**40).encode()), 1)
    with zipfile.ZipFile(sample, "w") as archive:
        archive.writestr("X.npy", member)
    code, out, err = run(capfd, "convert", str(model), "--sample", str(sample))
    assert (code, out) == (2, "")
    assert "array X.npy declares 4,398,046,511,104 bytes but holds" in assert_one_error_line(err)


@pytest.mark.parametrize("kind", ["npy", "object-array"])
def test_sample_that_is_not_a_plain_npz(model: Path, capfd: pytest.CaptureFixture[str], kind: str) -> None:
    if kind == "npy":
        sample = model.with_name("inputs.npy")
        np.save(sample, np.zeros((2, 3), dtype=np.float32))
        expected = f"Error: --sample {sample} is a single .npy array, not an .npz archive"
    else:
        sample = model.with_name("inputs.npz")
        np.savez(sample, X=np.array([object()], dtype=object))
        expected = f"Error: --sample {sample}: array X.npy holds objects"
    code, out, err = run(capfd, "convert", str(model), "--sample", str(sample))
    assert (code, out) == (2, "")
    assert assert_one_error_line(err).startswith(expected)
    assert listing(model.parent) == {"m.onnx", sample.name}


def test_sample_with_wrong_shape_is_a_usage_error(model: Path, capfd: pytest.CaptureFixture[str]) -> None:
    sample = model.with_name("inputs.npz")
    np.savez(sample, X=np.zeros((2, 7, 5), dtype=np.float32))
    code, out, err = run(capfd, "convert", str(model), "--sample", str(sample))
    assert (code, out) == (2, "")
    assert assert_one_error_line(err).startswith("Error: the float32 model fails on the --sample inputs: ")
    assert listing(model.parent) == {"m.onnx", "inputs.npz"}


def test_sample_with_no_validate(model: Path, capfd: pytest.CaptureFixture[str]) -> None:
    sample = model.with_name("inputs.npz")
    np.savez(sample, X=np.zeros((2, 3), dtype=np.float32))
    code, out, err = run(capfd, "convert", str(model), "--sample", str(sample), "--no-validate")
    assert (code, out) == (2, "")
    assert_one_error_line(err, "Error: --sample and --no-validate are mutually exclusive - drop one of them")
    assert listing(model.parent) == {"m.onnx", "inputs.npz"}


# -- policy, help ------------------------------------------------------------------------------


def test_policy(capfd: pytest.CaptureFixture[str]) -> None:
    assert run(capfd, "policy") == (0, POLICY_TEXT, "")


def test_policy_json(capfd: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capfd, "policy", "--json")
    assert (code, err) == (0, "")
    table = json.loads(out)
    assert set(table) == {"keep_ops", "keep_inputs", "float_only_domains"}
    # The same table as the text, entry for entry.
    text_ops = [line.split(None, 1) for line in POLICY_TEXT.splitlines()[1:17]]
    assert [[r["op_type"], r["reason"]] for r in table["keep_ops"]] == text_ops
    assert [r["category"] for r in table["keep_ops"]] == ["range"] * 12 + ["precision", "precision", "kernel", "precision"]
    assert table["keep_inputs"] == [
        {"op_type": "Resize", "input_name": "roi", "reason": "region-of-interest coordinates need float32 precision"},
        {"op_type": "Resize", "input_name": "scales", "reason": "the ONNX spec types scales as float32 only"},
        {"op_type": "Upsample", "input_name": "scales", "reason": "the ONNX spec types scales as float32 only"},
    ]
    assert table["float_only_domains"] == {"ai.onnx.ml": "ai.onnx.ml operators are defined for float32/double only"}


def _subcommands() -> dict[str, object]:
    parser = cli.build_parser()
    (action,) = [a for a in parser._actions if a.dest == "command"]
    return {name: sub for name, sub in action.choices.items()}  # type: ignore[union-attr]


def test_help_mentions_every_subcommand(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out = capfd.readouterr().out
    assert out.startswith("usage: halfconv ")
    for name in _subcommands():
        assert re.search(rf"^    {name}\s+\S", out, re.MULTILINE), f"{name} has no help line in halfconv --help"


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_subcommand_help(name: str, capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([name, "--help"])
    assert exit_info.value.code == 0
    out = capfd.readouterr().out
    assert out.startswith(f"usage: halfconv {name} ")
    sub = _subcommands()[name]
    assert sub.description  # type: ignore[attr-defined]
    for action in sub._actions:  # type: ignore[attr-defined]
        assert action.help, f"halfconv {name}: {action.option_strings or action.dest} has no help text"


def test_readme_mentions_every_subcommand() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    missing = [name for name in _subcommands() if f"halfconv {name}" not in text]
    assert not missing, f"README.md does not mention: {', '.join('halfconv ' + m for m in missing)}"


def test_no_arguments_is_a_usage_error(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([])
    assert exit_info.value.code == 2
    # argparse's errors take halfconv's form too: one line.
    assert capfd.readouterr().err == "Error: the following arguments are required: COMMAND - see 'halfconv --help'\n"


def test_unknown_choice_is_a_usage_error(model: Path, capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["convert", str(model), "--target", "fp8"])
    assert exit_info.value.code == 2
    assert listing(model.parent) == {"m.onnx"}


# -- real processes ----------------------------------------------------------------------------


def _script() -> Path:
    script = Path(sys.executable).with_name("halfconv")
    assert script.is_file(), f"no console script beside {sys.executable}: install halfconv (pip install -e .)"
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


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["convert", "m.onnx", "--accuracy-budget", "-1"], "argument --accuracy-budget: -1 is not from 0 to 100 percentage points"),
        (["convert", "m.onnx", "--accuracy-budget", "nan"], "argument --accuracy-budget: nan is not from 0 to 100 percentage points"),
        (["convert", "m.onnx", "--calibration-size", "abc"], "argument --calibration-size: invalid int value: 'abc'"),
        (["convert", "m.onnx", "--target", "fp8"], "argument --target: invalid choice: 'fp8'"),
        (["run", "m.onnx"], "the following arguments are required: --dataset"),
    ],
)
def test_parser_errors_are_one_line(argv: list[str], message: str, capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    err = capfd.readouterr().err
    assert err.startswith(f"Error: {message}") and err.endswith(f" - see 'halfconv {argv[0]} --help'\n") and err.count("\n") == 1


def test_an_input_declared_too_large_to_make_up_skips_the_numeric_check(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """A model input declared [2, 2**40, 7, 5] is never allocated: the check says what to pass instead."""
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Relu", ["X"], ["Y"], name="relu")],
        "g",
        [onnx.helper.make_tensor_value_info("X", onnx.TensorProto.FLOAT, [2, 2**40, 7, 5])],
        [onnx.helper.make_tensor_value_info("Y", onnx.TensorProto.FLOAT, [2, 2**40, 7, 5])],
    )
    path = tmp_path / "big.onnx"
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)], ir_version=10), str(path))
    code, out, err = run(capfd, "convert", str(path), "--json")
    assert (code, err) == (0, "")
    validation = json.loads(out)["validation"]
    assert validation["status"] == "partial" and validation["inputs_from"] is None
    assert validation["skipped"] == [
        "numeric check: input 'X' declares 76,965,813,944,320 elements, more than 67,108,864 to make up; pass --sample FILE.npz"
    ]
