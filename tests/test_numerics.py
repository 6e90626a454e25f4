"""The numerics model (``halfconv.numerics``) against ONNX's reference evaluator.

ONNX Runtime's CPU provider computes most float16 nodes in float32 and never rounds the
values between them, so a converted model that overflows (or flushes to zero) where float16
is stored natively looks healthy there. The numerics model computes in float32 but rounds
every value the converted model stores in 16 bits. Each test runs it on ORT's CPU provider
and compares it with ``onnx.reference.ReferenceEvaluator`` running the converted model
itself, where every op computes in float16 (or bfloat16) with numpy; and, where that is the
point, shows what plain ORT makes of the converted model.

Tolerances: ops that are elementwise in both agree bit for bit (float32 computed, then
rounded once, is what numpy does for a float16 ufunc); a MatMul may differ by the order of
its float32 accumulation, so those compare within two 16-bit ulps.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from pathlib import Path

import ml_dtypes
import numpy as np
import onnx
import onnx.parser
import onnx_ir as ir
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from halfconv import ConvertOptions, ValidationFailedError, cli, convert, load_dataset
from halfconv.numerics import RoundedValue, emulated_copy, emulation_model
from trained_models import mlp_model, train_mlp

FP16_RTOL = 2.0**-9  # two float16 ulps (a float16 ulp is at most 2**-10 of the value)
BF16_RTOL = 2.0**-7  # two bfloat16 ulps (8-bit significand)
FP16_MAX = float(np.finfo(np.float16).max)  # 65504
_NUMPY = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(bool)": np.bool_,
}
_LEVELS = (ort.GraphOptimizationLevel.ORT_DISABLE_ALL, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)


# -- building and running -------------------------------------------------------------------


def build(text: str, **initializers: np.ndarray) -> onnx.ModelProto:
    proto = onnx.parser.parse_model(text)
    for name, array in initializers.items():
        proto.graph.initializer.append(numpy_helper.from_array(np.asarray(array), name))
    onnx.checker.check_model(proto, full_check=True)
    return proto


def converted(tmp_path: Path, proto: onnx.ModelProto, name: str = "model", **options: object) -> tuple[Path, Path]:
    """Save ``proto`` as NAME.onnx and convert it to NAME.out.onnx; returns both paths."""
    source = tmp_path / f"{name}.onnx"
    onnx.save(proto, str(source))
    target = tmp_path / f"{name}.out.onnx"
    result = convert(source, ConvertOptions(output=target, **options))  # type: ignore[arg-type]
    assert Path(result.output_path) == target
    return source, target


def run_ort(path: Path, feeds: Mapping[str, np.ndarray], level: ort.GraphOptimizationLevel = _LEVELS[1]) -> dict[str, np.ndarray]:
    """Run ``path`` on ORT's CPU provider, feeds cast to the declared input types."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = level
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    cast = {i.name: np.asarray(feeds[i.name]).astype(_NUMPY[i.type]) for i in session.get_inputs()}
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, cast)))


def run_reference(path: Path, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The converted model itself, every op computed by numpy in the model's own types."""
    proto = onnx.load(str(path))
    types = {i.name: helper.tensor_dtype_to_np_dtype(i.type.tensor_type.elem_type) for i in proto.graph.input}
    evaluator = ReferenceEvaluator(proto)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow is what these models do
        outputs = evaluator.run(None, {name: np.asarray(feeds[name]).astype(dtype) for name, dtype in types.items()})
    return dict(zip([o.name for o in proto.graph.output], outputs))


def run_numerics(path: Path, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The numerics model of ``path`` on ORT's CPU provider; ORT's graph optimisations change nothing."""
    with emulated_copy(path) as emulated:
        assert emulated is not None
        unoptimized, optimized = (run_ort(emulated.path, feeds, level) for level in _LEVELS)
    for name, value in unoptimized.items():
        np.testing.assert_array_equal(optimized[name], value, err_msg=f"{name}: ORT's optimisations changed the numerics model")
    return unoptimized


def assert_same_numbers(got: Mapping[str, np.ndarray], want: Mapping[str, np.ndarray], rtol: float, atol: float = 0.0) -> None:
    """Same names, dtypes and shapes; NaN and ±inf at the same places; finite values within rtol/atol."""
    assert list(got) == list(want)
    for name, expected in want.items():
        actual = got[name]
        assert actual.dtype == expected.dtype and actual.shape == expected.shape, name
        a, e = actual.astype(np.float64), expected.astype(np.float64)
        np.testing.assert_array_equal(np.isnan(a), np.isnan(e), err_msg=f"{name}: NaN positions")
        np.testing.assert_array_equal(np.where(np.isinf(a), a, 0), np.where(np.isinf(e), e, 0), err_msg=f"{name}: inf positions")
        finite = np.isfinite(e)
        np.testing.assert_allclose(a[finite], e[finite], rtol=rtol, atol=atol, err_msg=name)


def nonfinite(values: Mapping[str, np.ndarray]) -> dict[str, int]:
    return {name: int(np.count_nonzero(~np.isfinite(v.astype(np.float64)))) for name, v in values.items()}


def float16_nodes(proto: onnx.ModelProto) -> set[str]:
    """Names (or op types) of the main graph's non-Cast nodes that read or write a float16 value."""
    inferred = onnx.shape_inference.infer_shapes(proto)
    types = {
        v.name: v.type.tensor_type.elem_type for v in (*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output)
    }
    types.update({t.name: t.data_type for t in inferred.graph.initializer})
    return {
        n.name or n.op_type
        for n in inferred.graph.node
        if n.op_type != "Cast" and TensorProto.FLOAT16 in {types.get(v) for v in (*n.input, *n.output)}
    }


def io_signature(path: Path) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    proto = onnx.load(str(path))
    return (
        [(v.name, v.type.tensor_type.elem_type) for v in proto.graph.input],
        [(v.name, v.type.tensor_type.elem_type) for v in proto.graph.output],
    )


# -- 1. overflow ----------------------------------------------------------------------------

OVERFLOW = """
<ir_version: 8, opset_import: ["" : 17]>
overflow (float[4,4] X) => (float[4,4] Y, float[4,4] D) {
  [mm1] H = MatMul(X, W)
  [relu] R = Relu(H)
  [sub] S = Sub(R, B)
  [scale] Y = Mul(S, C)
  [mm2] G = MatMul(X, Wneg)
  [cancel] D = Add(H, G)
}
"""


def overflow_model() -> onnx.ModelProto:
    # H = 3e4 * sum(x): a row summing past 2.18 leaves float16's range. D = H + (-H) is 0 in
    # float32 and inf + -inf = NaN once H is stored in float16.
    return build(
        OVERFLOW,
        W=np.full((4, 4), 3e4, np.float32),
        Wneg=np.full((4, 4), -3e4, np.float32),
        B=np.full((4,), 6e4, np.float32),
        C=np.full((4,), 1e-3, np.float32),
    )


OVERFLOW_X = np.array(
    [
        [1.0, 1.0, 1.0, 1.0],  # H = 1.2e5: +inf in float16
        [0.1, 0.2, 0.3, 0.4],  # H = 3e4: fine
        [-1.0, -1.0, -1.0, -1.0],  # H = -1.2e5: -inf, which Relu turns into 0
        [0.5, 0.5, 0.5, 0.6],  # H = 6.3e4: just inside float16's range
    ],
    np.float32,
)


def test_overflow_numerics_match_the_reference_where_plain_ort_stays_finite(tmp_path: Path) -> None:
    source, target = converted(tmp_path, overflow_model(), allow_nonfinite=True)
    feeds = {"X": OVERFLOW_X}

    fp32 = run_ort(source, feeds)
    reference = run_reference(target, feeds)
    numerics = run_numerics(target, feeds)
    plain = run_ort(target, feeds)

    # float32 is finite everywhere; float16 storage is not, in rows 0 and 2.
    assert nonfinite(fp32) == {"Y": 0, "D": 0}
    np.testing.assert_array_equal(reference["Y"][0], np.full(4, np.inf, np.float32))
    np.testing.assert_array_equal(np.isnan(reference["D"]).any(axis=1), [True, False, True, False])
    assert nonfinite(reference) == {"Y": 4, "D": 8}

    # The numerics model on the CPU provider gives the reference's numbers.
    assert_same_numbers(numerics, reference, rtol=FP16_RTOL)
    # Rows 1 and 3 are finite in all three and show float16 rounding: Y = (3e4*1 - 6e4) * 1e-3
    # with C stored as float16(1e-3) = 0.0010004.
    np.testing.assert_allclose(numerics["Y"][1], np.float16(-3e4) * np.float32(np.float16(1e-3)), rtol=FP16_RTOL)

    # Plain ORT on the same converted file: finite exactly where float16 overflows, and
    # close to float32 there (it never stored H in float16).
    assert nonfinite(plain) == {"Y": 0, "D": 0}
    np.testing.assert_array_equal(np.isfinite(plain["Y"]) & ~np.isfinite(reference["Y"]), [[True] * 4, *[[False] * 4] * 3])
    np.testing.assert_array_equal(np.isfinite(plain["D"]) & np.isnan(reference["D"]), [[r in (0, 2)] * 4 for r in range(4)])
    np.testing.assert_allclose(plain["Y"][0], fp32["Y"][0], rtol=1e-2)
    np.testing.assert_array_equal(plain["D"], np.zeros((4, 4), np.float32))


def test_overflow_rounded_values_name_their_producers(tmp_path: Path) -> None:
    _, target = converted(tmp_path, overflow_model(), allow_nonfinite=True)
    with emulated_copy(target) as emulated:
        assert emulated is not None
        assert emulated.stored == "fp16"
        by_reference = {v.reference: v for v in emulated.rounded}
        numerics_proto = onnx.load(str(emulated.path))
    for value, node, op in (("H", "mm1", "MatMul"), ("R", "relu", "Relu"), ("S", "sub", "Sub"), ("G", "mm2", "MatMul")):
        assert by_reference[value] == RoundedValue(value, value, node, op, "float16", is_input=False)
    # X enters through a float16 Cast that conversion inserted: it stands for X, blamed on mm1.
    assert by_reference["X"].is_input and by_reference["X"].op_type == "MatMul"
    # Every rounded value is a float32 value produced by a Cast from a float16 one.
    produced = {out: n for n in numerics_proto.graph.node for out in n.output}
    for rounded in emulated.rounded:
        back = produced[rounded.name]
        assert back.op_type == "Cast" and helper.get_attribute_value(back.attribute[0]) == TensorProto.FLOAT
        narrow = produced[back.input[0]]
        assert narrow.op_type == "Cast" and helper.get_attribute_value(narrow.attribute[0]) == TensorProto.FLOAT16


def test_validation_uses_the_numerics_model_and_fails_on_the_overflow(tmp_path: Path) -> None:
    source = tmp_path / "model.onnx"
    onnx.save(overflow_model(), str(source))
    sample = tmp_path / "sample.npz"
    np.savez(sample, X=OVERFLOW_X)
    with pytest.raises(ValidationFailedError) as caught:
        convert(source, ConvertOptions(output=tmp_path / "out.onnx", sample=sample))
    # The float32 H reaches 3e4 * 4 = 1.2e5; rows 0 and 2 give 8 non-finite H values.
    assert caught.value.what.startswith(
        "output 'Y' has 4 non-finite value(s) that the float32 model does not: node 'mm1' (MatMul)"
    )
    assert "its output 'H' reaches 1.2e+05 in float32, beyond float16's 65504, and has 8 non-finite value(s)" in caught.value.what
    assert caught.value.hint == "keep it in float32 with --keep-node mm1, or pass --allow-nonfinite"


# -- 2. subnormals ---------------------------------------------------------------------------

SUBNORMAL = """
<ir_version: 10, opset_import: ["" : 18]>
subnormal (float[2,8] X) => (float[2,8] T, float[2,8] Y, float[2,8] Z) {
  [small] T = Mul(X, A)
  [large] Y = Mul(T, B)
  [direct] Z = Mul(X, B)
}
"""
SUBNORMAL_X = np.array(
    [
        [1.0, 0.5, 0.3, 0.1, 0.05, 0.03, 0.01, 0.02],  # T = X * 1e-6: float16 subnormals, the last two flush
        [1e-6, 3e-7, 1e-7, 4e-8, 3e-8, 2e-8, 1e-8, 0.0],  # X itself is subnormal in float16
    ],
    np.float32,
)
_SUBNORMAL_STEP = 2.0**-24  # float16's smallest subnormal, 5.96e-8


def test_subnormals_round_and_flush_as_the_reference_does(tmp_path: Path) -> None:
    source, target = converted(tmp_path, build(SUBNORMAL, A=np.float32(1e-6), B=np.float32(1e4)))
    feeds = {"X": SUBNORMAL_X}
    fp32 = run_ort(source, feeds)
    reference = run_reference(target, feeds)
    numerics = run_numerics(target, feeds)
    plain = run_ort(target, feeds)

    # Elementwise products, each rounded once: bit for bit the reference's numbers.
    assert_same_numbers(numerics, reference, rtol=0.0)

    # What the reference does: A is stored as 17 subnormal steps (1.0133e-6), T lies on the
    # subnormal grid, and products under half a step flush to zero.
    a16 = np.float32(np.float16(1e-6))
    assert a16 == np.float32(17 * _SUBNORMAL_STEP)
    steps = reference["T"].astype(np.float64) / _SUBNORMAL_STEP
    np.testing.assert_array_equal(steps, np.round(steps))
    np.testing.assert_array_equal(steps[0], [17, 8, 5, 2, 1, 1, 0, 0])
    np.testing.assert_array_equal(reference["Y"][0] == 0, [False] * 6 + [True] * 2)
    # X itself: 1e-6 -> 17 steps, 3e-7 -> 5, 1e-7 -> 2, 4e-8 -> 1, 3e-8 -> 1 (just above half a step), 2e-8 and less -> 0.
    np.testing.assert_array_equal(
        reference["Z"][1], np.float32(np.float16(np.array([17, 5, 2, 1, 1, 0, 0, 0]) * _SUBNORMAL_STEP * 1e4))
    )
    np.testing.assert_array_equal(reference["Y"][0], np.float32(np.float16(steps[0] * _SUBNORMAL_STEP * 1e4)))
    # Row 1 is X * 1e-6 * 1e4 with X already subnormal: every product flushes.
    np.testing.assert_array_equal(reference["Y"][1], np.zeros(8, np.float32))
    # Against float32: 0.03 * 1e-6 becomes one step, 5.96e-8, twice the true value.
    relative = np.abs(numerics["Y"][0, :6] / fp32["Y"][0, :6] - 1)
    assert relative[0] == pytest.approx(0.0133, abs=1e-3) and relative[5] == pytest.approx(0.987, abs=1e-3)

    # Plain ORT: T is float32's X * float16(1e-6), neither rounded to the subnormal grid nor
    # flushed; nothing of the subnormal range shows there.
    np.testing.assert_allclose(plain["T"][0], SUBNORMAL_X[0] * a16, rtol=1e-6)
    assert np.all(plain["T"][0] != 0) and np.all(plain["Y"][0] != 0)
    flushed = reference["Y"] == 0
    np.testing.assert_array_equal(flushed & (plain["Y"] != 0), [[False] * 6 + [True] * 2, [True] * 7 + [False]])


# -- 3. bfloat16 -----------------------------------------------------------------------------

BF16 = """
<ir_version: 8, opset_import: ["" : 17]>
bf16 (float[3,8] X) => (float[3,4] Y, float[3,4] Z) {
  [mm] H = MatMul(X, W)
  [bias] A = Add(H, Bias)
  [tanh] T = Tanh(A)
  [mul] Y = Mul(T, K)
  [div] Z = Div(A, D)
}
"""


def test_bf16_numerics_model_runs_on_the_cpu_and_matches_the_reference(tmp_path: Path, cuda_missing: str) -> None:
    """Without CUDA (``cuda_missing``: the same on every machine) nothing here runs the bf16 model itself."""
    rng = np.random.default_rng(7)
    proto = build(
        BF16,
        W=rng.uniform(-1, 1, (8, 4)).astype(np.float32),
        Bias=rng.uniform(-0.5, 0.5, 4).astype(np.float32),
        K=np.float32(3.3),
        D=np.float32(7.1),
    )
    source = tmp_path / "model.onnx"
    onnx.save(proto, str(source))
    target = tmp_path / "model.bf16.onnx"
    result = convert(source, ConvertOptions(output=target, target="bf16"))
    # The CPU provider cannot load the bf16 model, yet the numeric check ran, emulated.
    assert result.validation.status == "partial"
    assert result.validation.numerics == "bf16 storage emulated on CPUExecutionProvider"
    assert {o.name for o in result.validation.outputs} == {"Y", "Z"}
    with pytest.raises(Exception, match=r"NOT_IMPLEMENTED"):
        run_ort(target, {"X": np.zeros((3, 8), np.float32)})

    feeds = {"X": rng.uniform(-1, 1, (3, 8)).astype(np.float32)}
    fp32 = run_ort(source, feeds)
    reference = run_reference(target, feeds)
    with emulated_copy(target) as emulated:
        assert emulated is not None and emulated.stored == "bf16"
        assert {v.stored for v in emulated.rounded} == {"bfloat16"}
    numerics = run_numerics(target, feeds)

    assert_same_numbers(numerics, reference, rtol=BF16_RTOL, atol=1e-3)
    for name, value in numerics.items():
        # Outputs are bfloat16 values (widened by the model's final Cast), 8 significant bits.
        np.testing.assert_array_equal(value, value.astype(ml_dtypes.bfloat16).astype(np.float32), err_msg=name)
        # ... and differ from float32 by bfloat16's rounding, far beyond float16's.
        error = np.abs(value - fp32[name]).max() / np.abs(fp32[name]).max()
        assert 1e-3 < error < 3e-2, (name, error)


# -- 4. structure ----------------------------------------------------------------------------


@pytest.mark.parametrize("keep_io_types", [True, False], ids=["float32-io", "float16-io"])
def test_numerics_model_keeps_graph_inputs_and_outputs(tmp_path: Path, keep_io_types: bool) -> None:
    _, target = converted(tmp_path, overflow_model(), allow_nonfinite=True, keep_io_types=keep_io_types)
    io_type = TensorProto.FLOAT if keep_io_types else TensorProto.FLOAT16
    assert io_signature(target) == ([("X", io_type)], [("Y", io_type), ("D", io_type)])
    with emulated_copy(target) as emulated:
        assert emulated is not None
        assert io_signature(emulated.path) == io_signature(target)
        numerics_proto = onnx.load(str(emulated.path))
    # Inside, nothing computes in float16: only the rounding Casts (and, for float16 inputs,
    # the Cast that widens them and the one that narrows each output) touch float16 values.
    assert {t.data_type for t in numerics_proto.graph.initializer} == {TensorProto.FLOAT}
    assert float16_nodes(numerics_proto) == set()
    numerics = run_numerics(target, {"X": OVERFLOW_X})
    assert {v.dtype for v in numerics.values()} == {np.dtype(np.float32 if keep_io_types else np.float16)}
    assert_same_numbers(numerics, run_reference(target, {"X": OVERFLOW_X}), rtol=FP16_RTOL)


def test_numerics_model_of_a_float32_model_is_none(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    onnx.save(overflow_model(), str(path))
    with emulated_copy(path) as emulated:
        assert emulated is None
    # So is that of a model with no floats at all.
    ints = build("""
        <ir_version: 8, opset_import: ["" : 17]>
        ints (int64[3] I) => (int64[3] J) { J = Add(I, I) }
    """)
    path = tmp_path / "ints.onnx"
    onnx.save(ints, str(path))
    with emulated_copy(path) as emulated:
        assert emulated is None


IF_MODEL = """
<ir_version: 8, opset_import: ["" : 17]>
branches (float[2,4] X, bool C) => (float[2,4] Y) {
  [mm] H = MatMul(X, W)
  [choose] Y = If(C) <
    then_branch = then_graph () => (float[2,4] T) {
      [up] T1 = Mul(H, K)
      [down] T = Mul(T1, Kinv)
    },
    else_branch = else_graph () => (float[2,4] E) {
      [plus] E = Add(H, K)
    }
  >
}
"""


@pytest.mark.parametrize("condition", [True, False])
def test_if_with_float16_branches_matches_the_reference(tmp_path: Path, condition: bool) -> None:
    proto = build(IF_MODEL, W=np.full((4, 4), 30.0, np.float32), K=np.float32(1e3), Kinv=np.float32(1e-3))
    source, target = converted(tmp_path, proto, allow_nonfinite=True)
    # Both branches compute in float16 in the converted model.
    branch_types = {
        a.name: {v.type.tensor_type.elem_type for v in a.g.output}
        for n in onnx.load(str(target)).graph.node
        if n.op_type == "If"
        for a in n.attribute
    }
    assert branch_types == {"then_branch": {TensorProto.FLOAT16}, "else_branch": {TensorProto.FLOAT16}}

    feeds = {"X": np.array([[1.0, 1.0, 1.0, 1.0], [0.01, 0.02, 0.03, 0.04]], np.float32), "C": np.array(condition)}
    fp32 = run_ort(source, feeds)
    reference = run_reference(target, feeds)
    numerics = run_numerics(target, feeds)
    plain = run_ort(target, feeds)
    assert_same_numbers(numerics, reference, rtol=FP16_RTOL)
    assert nonfinite(fp32) == nonfinite(plain) == {"Y": 0}
    if condition:
        # T1 = 120 * 1000 overflows inside the branch: the rounding reaches into subgraphs.
        np.testing.assert_array_equal(reference["Y"][0], np.full(4, np.inf, np.float32))
        np.testing.assert_allclose(plain["Y"][0], fp32["Y"][0], rtol=1e-3)  # 120, as in float32
        np.testing.assert_allclose(numerics["Y"][1], fp32["Y"][1], rtol=2e-3)
    else:
        assert nonfinite(reference) == {"Y": 0}
        np.testing.assert_allclose(numerics["Y"], fp32["Y"], rtol=2e-3)


CASTS = """
<ir_version: 10, opset_import: ["" : 18]>
casts (float[2,3] X, int64[2,3] I) => (float[2,3] Y, float16[2,3] Z) {
  [to_half] F = Cast<to=10>(I)
  [to_float] G = Cast<to=1>(F)
  [scale] H = Mul(X, K)
  [add] Y = Add(H, G)
  [out_half] Z = Cast<to=10>(Y)
}
"""


def test_casts_to_float16_inside_the_model_round(tmp_path: Path) -> None:
    source, target = converted(tmp_path, build(CASTS, K=np.float32(2e4)), allow_nonfinite=True)
    # The converted model keeps the Cast of the integers to float16 (float16 all the way).
    casts = {n.name: helper.get_attribute_value(n.attribute[0]) for n in onnx.load(str(target)).graph.node if n.op_type == "Cast"}
    assert casts["to_half"] == TensorProto.FLOAT16 and casts["out_half"] == TensorProto.FLOAT16
    assert io_signature(target)[1] == [("Y", TensorProto.FLOAT), ("Z", TensorProto.FLOAT16)]

    feeds = {
        "X": np.array([[1.0, 0.5, 0.1], [2.0, 3.0, 4.0]], np.float32),
        "I": np.array([[2049, 70000, 1], [-70000, 3, 4097]], np.int64),
    }
    fp32 = run_ort(source, feeds)
    reference = run_reference(target, feeds)
    numerics = run_numerics(target, feeds)
    plain = run_ort(target, feeds)

    assert_same_numbers(numerics, reference, rtol=0.0)
    assert numerics["Z"].dtype == np.float16
    # float16(2049) = 2048, float16(±70000) = ±inf, 4.0 * 2e4 + 4097 = 84096 -> inf.
    np.testing.assert_array_equal(reference["Y"], np.array([[22048, np.inf, 2001], [-np.inf, 60000, np.inf]], np.float32))
    # The float32 model has the Cast too: it overflows where the integers do, not at 84096.
    np.testing.assert_array_equal(np.isinf(fp32["Y"]), [[False, True, False], [True, False, False]])
    # Plain ORT drops even the model's own Cast to float16 from the integers: 70000 stays.
    np.testing.assert_array_equal(plain["Y"][0], np.array([22049, 80000, 2001], np.float32))
    assert nonfinite(plain) == {"Y": 0, "Z": 2}


def test_emulation_model_edits_an_onnx_ir_model_in_place(tmp_path: Path) -> None:
    _, target = converted(tmp_path, overflow_model(), allow_nonfinite=True)
    model = ir.load(str(target))
    rounded = emulation_model(model)
    with emulated_copy(target) as emulated:
        assert emulated is not None
        assert rounded == emulated.rounded
    assert [v.reference for v in rounded if v.reference in {"H", "R", "S", "G"}] == ["H", "R", "S", "G"]
    # No node but a Cast reads or writes float16 any more.
    for node in model.graph:
        if node.op_type != "Cast":
            assert {v.dtype for v in (*node.inputs, *node.outputs) if v is not None} == {ir.DataType.FLOAT}, node
    path = tmp_path / "edited.onnx"
    ir.save(model, str(path))
    onnx.checker.check_model(str(path), full_check=True)
    assert_same_numbers(run_ort(path, {"X": OVERFLOW_X}), run_numerics(target, {"X": OVERFLOW_X}), rtol=0.0)


# -- 5. a trained MLP, rescaled into overflow --------------------------------------------------

# 2**15: the rescaling is exact in float32, and lifts the hidden activations (at most about
# 7 for these weights) past 65504. (1e3 would leave them under 7,000.)
SCALE = np.float32(2.0**15)
_ERROR = re.compile(
    r"Error: output 'P' has (\d+) non-finite value\(s\) that the float32 model does not: "
    r"node '(\w+)' \((\w+)\): its (input|output) '(\w+)' reaches (\S+) in float32, beyond float16's 65504, "
    r"and has (\d+) non-finite value\(s\) once stored in 16 bits - keep it in float32 with --keep-node \2, or pass --allow-nonfinite"
)


def f16(array: np.ndarray) -> np.ndarray:
    """``array``'s float16 values, in float32."""
    return array.astype(np.float16).astype(np.float32)


def test_rescaled_trained_mlp_fails_conversion_naming_the_node_then_passes_with_keep_node(
    tmp_path: Path, data_dir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    w1, b1, w2, b2 = train_mlp(data_dir)
    test = load_dataset("mnist", "test", data_dir=data_dir, download=False)
    x = test.images[:32].reshape(-1, 784).astype(np.float32) / 255
    sample = tmp_path / "sample.npz"
    np.savez(sample, X=x)
    plain_path, scaled_path = tmp_path / "mlp.onnx", tmp_path / "scaled.onnx"
    onnx.save(mlp_model(w1, b1, w2, b2), str(plain_path))
    onnx.save(mlp_model(w1 * SCALE, b1 * SCALE, w2 / SCALE, b2), str(scaled_path))

    # The float32 function is unchanged; its hidden layer is not.
    fp32 = run_ort(plain_path, {"X": x})["P"]
    np.testing.assert_allclose(run_ort(scaled_path, {"X": x})["P"], fp32, rtol=1e-5, atol=1e-7)
    assert (fp32.argmax(axis=1) == test.labels[:32]).mean() > 0.8
    hidden = x @ (w1 * SCALE) + b1 * SCALE
    assert np.abs(hidden).max() > FP16_MAX > np.abs(x @ w1 + b1).max() * 1e3

    def halfconv_convert(path: Path, *keep: str) -> tuple[int, str, str]:
        argv = ["convert", str(path), "-o", str(tmp_path / "out.onnx"), "--force", "--sample", str(sample)]
        code = cli.main(argv + [a for name in keep for a in ("--keep-node", name)])
        captured = capfd.readouterr()
        return code, captured.out, captured.err

    # Unscaled, it converts.
    code, _, err = halfconv_convert(plain_path)
    assert (code, err) == (0, "")

    # What float16 storage does to the scaled one, per the reference evaluator.
    convert(scaled_path, ConvertOptions(output=tmp_path / "unvalidated.onnx", validate=False))
    reference = run_reference(tmp_path / "unvalidated.onnx", {"X": x})["P"]
    broken_rows = int(np.count_nonzero(~np.isfinite(reference).all(axis=1)))
    assert broken_rows > 16
    with np.errstate(over="ignore"):
        stored_hidden = (f16(x) @ f16(w1 * SCALE) + f16(b1 * SCALE)).astype(np.float16)
    hidden_nonfinite = int(np.count_nonzero(~np.isfinite(stored_hidden)))
    relu_nonfinite = int(np.count_nonzero(np.isposinf(stored_hidden)))

    keep: list[str] = []
    named = []
    for _ in range(4):
        code, out, err = halfconv_convert(scaled_path, *keep)
        if code == 0:
            break
        assert code == 6 and out == "", (code, out)
        lines = err.splitlines()
        assert len(lines) == 1, err
        match = _ERROR.fullmatch(lines[0])
        assert match is not None, lines[0]
        outputs, node, op, role, value, reaches, value_nonfinite = match.groups()
        assert int(outputs) == int(np.count_nonzero(~np.isfinite(reference))) == 10 * broken_rows
        assert float(reaches) == pytest.approx(np.abs(hidden).max(), rel=1e-2)
        assert f"{float(reaches):.3g}" == reaches
        named.append((node, op, role, value, int(value_nonfinite)))
        keep.append(node)
    else:
        pytest.fail(f"still failing after --keep-node {' '.join(keep)}")

    # fc1's output H overflows; kept in float32, it overflows again where relu1 reads it in
    # float16, and relu1's output R (now float32) where fc2 reads it: three nodes to keep.
    assert named == [
        ("fc1", "Gemm", "output", "H", hidden_nonfinite),
        ("relu1", "Relu", "input", "H", hidden_nonfinite),
        ("fc2", "Gemm", "input", "R", relu_nonfinite),
    ]
    assert (code, err) == (0, "")
    assert "3 kept float32" in out
    # The kept model's numbers: the float32 predictions, finite.
    numerics = run_numerics(tmp_path / "out.onnx", {"X": x})["P"]
    assert np.isfinite(numerics).all()
    np.testing.assert_array_equal(numerics.argmax(axis=1), fp32.argmax(axis=1))
    np.testing.assert_allclose(numerics, fp32, atol=2e-3)


# -- models from other tools, and inputs that are outputs -------------------------------------


def test_float16_model_without_value_info_rounds_its_intermediates(tmp_path: Path) -> None:
    proto = build(
        """
        <ir_version: 8, opset_import: ["" : 17]>
        hand (float16[2,4] X) => (float16[2,4] Y) {
          H = MatMul(X, W)
          Y = Mul(H, C)
        }
        """,
        W=np.full((4, 4), 3e4, np.float16),
        C=np.full((4,), 1e-3, np.float16),
    )
    path = tmp_path / "hand.fp16.onnx"
    onnx.save(proto, str(path))
    feeds = {"X": OVERFLOW_X[:2]}
    reference = run_reference(path, feeds)
    np.testing.assert_array_equal(reference["Y"][0], np.full(4, np.inf, np.float16))  # H = 1.2e5 -> inf
    assert_same_numbers(run_numerics(path, feeds), reference, rtol=FP16_RTOL)


PASSTHROUGH = """
<ir_version: 8, opset_import: ["" : 17]>
passthrough (float[2,4] X) => (float[2,4] X, float[2,4] Y) {
  Y = Mul(X, X)
}
"""


def test_numerics_model_keeps_an_input_that_is_also_an_output(tmp_path: Path) -> None:
    proto = onnx.shape_inference.infer_shapes(build(PASSTHROUGH.replace("float[", "float16[")))
    path = tmp_path / "passthrough.fp16.onnx"
    onnx.save(proto, str(path))
    with emulated_copy(path) as emulated:
        assert emulated is not None
        assert io_signature(emulated.path) == io_signature(path)


def test_convert_with_float16_io_of_an_input_that_is_also_an_output(tmp_path: Path) -> None:
    _, target = converted(tmp_path, build(PASSTHROUGH), keep_io_types=False)
    feeds = {"X": np.array([[300.0, 1.0, 0.5, 2.0]] * 2, np.float32)}
    assert_same_numbers(run_numerics(target, feeds), run_reference(target, feeds), rtol=0.0)


def test_an_input_with_a_default_keeps_its_type_in_the_numerics_model(tmp_path: Path) -> None:
    # IR >= 4: W is an input that callers may feed, with an initializer as its default.
    proto = build(
        """
        <ir_version: 8, opset_import: ["" : 17]>
        defaults (float16[2,2] X, float16[2,2] W) => (float16[2,2] Y) {
          Y = MatMul(X, W)
        }
        """,
        W=np.full((2, 2), 300.0, np.float16),
    )
    path = tmp_path / "defaults.fp16.onnx"
    onnx.save(onnx.shape_inference.infer_shapes(proto), str(path))
    feeds = {"X": np.full((2, 2), 200.0, np.float16), "W": np.full((2, 2), 300.0, np.float16)}
    with emulated_copy(path) as emulated:
        assert emulated is not None
        assert io_signature(emulated.path) == io_signature(path)
    numerics = run_numerics(path, feeds)
    np.testing.assert_array_equal(numerics["Y"], np.full((2, 2), np.inf, np.float16))  # 2 * 200 * 300 > 65504
    np.testing.assert_array_equal(numerics["Y"], run_reference(path, feeds)["Y"])


def test_the_range_that_counts_is_the_stored_types() -> None:
    from halfconv.numerics import NodeDivergence

    def divergence(stored: str) -> NodeDivergence:
        return NodeDivergence("h", "fc1", "Gemm", False, stored, 1.2e5, 0, 0.001)

    assert divergence("float16").out_of_range and divergence("float16").diverged
    assert not divergence("bfloat16").out_of_range and not divergence("bfloat16").diverged
    assert "beyond float16's 65504" in divergence("float16").describe()
