"""Tests of the halfconv conversion engine, through ``halfconv.conversion.convert``.

Every test builds its model from ONNX text, converts it, and checks both the STRUCTURE of
the result (which nodes run in float32 or float16, the Casts, the initializer types) and
the NUMBERS (ORT CPU outputs of the float32 and converted models on the same inputs).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from halfconv.conversion import ConvertOptions, convert
from halfconv.core import ConversionError, NothingToConvertError, ValidationFailedError
from helpers import (
    BFLOAT16,
    DOUBLE,
    FLOAT,
    FLOAT16,
    assert_outputs_close,
    convert_model,
    count_cancelling_cast_pairs,
    fp32_nodes,
    initializer,
    initializer_dtypes,
    io_types,
    model,
    node_types,
    nodes_of,
    noop_casts,
    ops,
    rand,
    run_ort,
    save,
)

FP16_MAX = 65504.0


def assert_clean_casts(path: Path) -> None:
    """No Cast round trip A->B->A and no Cast to the type its input already has."""
    assert count_cancelling_cast_pairs(path) == 0
    assert noop_casts(path) == []


def casts(path: Path) -> list:
    return nodes_of(path, "Cast")


# =============================================================================================
# Models. Each returns (model, feeds); the tests below and the differential test share them.
# =============================================================================================


def mlp_model() -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    mlp (float[N,4] x) => (float[N,3] y) {
        [mm1] h = MatMul(x, W1)
        [add1] hb = Add(h, B1)
        [relu] r = Relu(hb)
        [mm2] o = MatMul(r, W2)
        [add2] ob = Add(o, B2)
        [softmax] y = Softmax<axis=-1>(ob)
    }
    """
    weights = dict(W1=rand(4, 8, seed=1), B1=rand(8, seed=2), W2=rand(8, 3, seed=3), B2=rand(3, seed=4))
    return model(text, **weights), {"x": rand(5, 4, seed=10)}


def cnn_model() -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    cnn (float[1,3,8,8] x) => (float[1,5] y) {
        c = Conv<kernel_shape=[3,3], pads=[1,1,1,1]>(x, W, B)
        bn = BatchNormalization<epsilon=1e-5>(c, scale, bias, mean, var)
        r = Relu(bn)
        p = MaxPool<kernel_shape=[2,2], strides=[2,2]>(r)
        f = Flatten<axis=1>(p)
        y = Gemm<transB=1>(f, W2, B2)
    }
    """
    weights = dict(
        W=rand(4, 3, 3, 3, seed=1, low=-0.3, high=0.3),
        B=rand(4, seed=2),
        scale=rand(4, seed=3, low=0.5, high=1.5),
        bias=rand(4, seed=4),
        mean=rand(4, seed=5, low=-0.2, high=0.2),
        var=rand(4, seed=6, low=0.5, high=1.5),
        W2=rand(5, 64, seed=7, low=-0.2, high=0.2),
        B2=rand(5, seed=8),
    )
    return model(text, **weights), {"x": rand(1, 3, 8, 8, seed=11)}


def softmax_model() -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    softmax (float[2,10] x) => (float[2,10] y) {
        y = Softmax<axis=1>(x)
    }
    """
    return model(text), {"x": rand(2, 10, seed=12, low=-5, high=5)}


def layernorm_model() -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    layernorm (float[2,5,16] x) => (float[2,5,16] y) {
        y = LayerNormalization<axis=-1, epsilon=1e-5>(x, gamma, beta)
    }
    """
    weights = dict(gamma=rand(16, seed=1, low=0.5, high=1.5), beta=rand(16, seed=2))
    return model(text, **weights), {"x": rand(2, 5, 16, seed=13, low=-3, high=3)}


def reduce_model() -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    text = """
    <ir_version: 8, opset_import: ["" : 18]>
    reduce (float[4,32] x) => (float[4,1] m, float[4,1] s) {
        [scale] xs = Mul(x, k)
        [mean] m = ReduceMean<keepdims=1>(xs, axes)
        [center] d = Sub(xs, m)
        [square] sq = Mul(d, d)
        [sum] s = ReduceSum<keepdims=1>(sq, axes)
    }
    """
    weights = dict(k=np.array(2.0, np.float32), axes=np.array([1], np.int64))
    return model(text, **weights), {"x": rand(4, 32, seed=14)}


def pow_model() -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    power (float[3,4] x) => (float[3,4] y) {
        [relu] a = Relu(x)
        [pow] p = Pow(a, e)
        [add] y = Add(p, b)
    }
    """
    weights = dict(e=np.array(2.0, np.float32), b=rand(3, 4, seed=1))
    return model(text, **weights), {"x": rand(3, 4, seed=15, low=-2, high=2)}


def resize_model() -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    text = """
    <ir_version: 8, opset_import: ["" : 13]>
    resize (float[1,2,4,4] x) => (float[1,2,8,8] y) {
        [relu] a = Relu(x)
        [resize] r = Resize<mode="linear">(a, roi, scales)
        [add] y = Add(r, bias)
    }
    """
    weights = dict(
        roi=np.zeros([0], np.float32), scales=np.array([1, 1, 2, 2], np.float32), bias=rand(8, seed=1)
    )
    return model(text, **weights), {"x": rand(1, 2, 4, 4, seed=16)}


def if_model() -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    # Both branches read outer-scope values: the graph input x and h, computed in the main graph.
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    branches (bool c, float[2,3] x) => (float[2,3] y) {
        [square] h = Mul(x, x)
        [if] z = If(c) <
            then_branch = then_g () => (float[2,3] t) {
                [then_add] t0 = Add(h, x)
                [then_relu] t = Relu(t0)
            },
            else_branch = else_g () => (float[2,3] e) {
                [else_exp] e = Exp(h)
            }
        >
        [scale] y = Mul(z, k)
    }
    """
    return model(text, k=np.array(0.5, np.float32)), {"c": np.array(True), "x": rand(2, 3, seed=17)}


def loop_model() -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    # acc is a float loop-carried value, step a scan output; the body reads the outer h and x.
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    looping (float[2,3] x, int64 n) => (float[2,3] acc, float[K,2,3] trace) {
        [half] h = Mul(x, k)
        cond = Constant<value=bool {1}>()
        [loop] acc, trace = Loop(n, cond, x) <
            body = body_g (int64 i, bool c_in, float[2,3] a) => (bool c_out, float[2,3] a_out, float[2,3] step) {
                c_out = Identity(c_in)
                [body_add] s = Add(a, h)
                [body_mul] a_out = Mul(s, x)
                [body_tanh] step = Tanh(a_out)
            }
        >
    }
    """
    return model(text, k=np.array(0.5, np.float32)), {"x": rand(2, 3, seed=18), "n": np.array(3, np.int64)}


def shared_model() -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    # W and the Constant c each feed a converted node and a node kept by the default policy.
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    shared (float[2,3] x) => (float[2,3] y) {
        [mul] a = Mul(x, W)
        [exp] e = Exp(W)
        [add] s = Add(a, e)
        c = Constant<value_float=0.75>()
        [mul_c] sc = Mul(s, c)
        [log] l = Log(c)
        [add_l] y = Add(sc, l)
    }
    """
    return model(text, W=rand(2, 3, seed=1)), {"x": rand(2, 3, seed=19)}


def ranges_model() -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    # Values float16 cannot hold: 70000 (clamped to 65504) and 1e-9 (flushed to 0), as
    # initializers and as Constant nodes. Min/Max keep the outputs equal for inputs in [0, 1).
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    ranges (float[2,3] x) => (float[2,3] y) {
        a = Min(x, big)
        b = Max(a, nbig)
        c = Add(b, tiny)
        cbig = Constant<value=float[2,1] {70000, 100000}>()
        d = Min(c, cbig)
        ctiny = Constant<value_float=1e-9>()
        y = Add(d, ctiny)
    }
    """
    weights = dict(
        big=np.array([70000], np.float32),
        nbig=np.array([-70000], np.float32),
        tiny=np.array([1e-9], np.float32),
    )
    return model(text, **weights), {"x": rand(2, 3, seed=20, low=0, high=1)}


def cast_model() -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    casting (float[2,3] x, int64[2,3] k) => (float[2,3] y, int32[2,3] idx) {
        [to_float] kf = Cast<to=1>(k)
        [mul] m = Mul(x, kf)
        [same] ms = Cast<to=1>(m)
        [relu] r = Relu(ms)
        [add] y = Add(r, x)
        [to_int] idx = Cast<to=6>(kf)
    }
    """
    feeds = {"x": rand(2, 3, seed=21), "k": np.array([[0, 1, 2], [3, 4, 5]], np.int64)}
    return model(text), feeds


def float64_model() -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    doubles (float[2,3] x, double[2,3] d) => (float[2,3] y, double[2,3] z, double[2,3] w) {
        [relu] a = Relu(x)
        [df] dx = Cast<to=1>(d)
        [mul] y = Mul(a, dx)
        [exp64] e = Exp(d)
        [add64] z = Add(e, d)
        [to_double] ad = Cast<to=11>(a)
        [mul64] w = Mul(ad, d)
    }
    """
    feeds = {"x": rand(2, 3, seed=22), "d": rand(2, 3, seed=23).astype(np.float64)}
    return model(text), feeds


def constants_model() -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    constants (float[2,3] x) => (float[2,3] y, float[2,3] z) {
        s = Shape(x)
        [fill_half] half = ConstantOfShape<value=float[1] {0.5}>(s)
        [fill_zero] zero = ConstantOfShape(s)
        [add_half] a = Add(x, half)
        two = Constant<value_float=2.0>()
        [mul_two] b = Mul(a, two)
        [add_zero] y = Add(b, zero)
        row = Constant<value_floats=[1.0, 2.0, 3.0]>()
        [mul_row] z = Mul(x, row)
    }
    """
    return model(text), {"x": rand(2, 3, seed=24)}


def names_model() -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    # Duplicate node names, empty names, and names the engine would pick for its own Casts.
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    names (float[2,3] x) => (float[2,3] y) {
        [n] a = Relu(x)
        [n] b = Exp(a)
        c = Add(a, b)
        x_fp16 = Neg(c)
        [Cast_x_fp16] y_fp16 = Sigmoid(x_fp16)
        y = Mul(y_fp16, x)
    }
    """
    return model(text), {"x": rand(2, 3, seed=25)}


# =============================================================================================
# Structure + numbers, one test per model
# =============================================================================================


def test_mlp(tmp_path: Path) -> None:
    proto, feeds = mlp_model()
    src, out, result = convert_model(proto, tmp_path)

    assert fp32_nodes(out) == []
    converted = [n for n in node_types(out) if n.op != "Cast"]
    assert ops(converted) == ["MatMul", "Add", "Relu", "MatMul", "Add", "Softmax"]
    assert all(set(n.inputs) == {FLOAT16} and n.outputs == (FLOAT16,) for n in converted)
    assert set(initializer_dtypes(out).values()) == {FLOAT16}
    # One Cast in (x), one out (y), and float32 stays the interface.
    assert [(c.inputs, c.outputs) for c in casts(out)] == [((FLOAT,), (FLOAT16,)), ((FLOAT16,), (FLOAT,))]
    assert io_types(out) == ({"x": FLOAT}, {"y": FLOAT})
    assert_clean_casts(out)

    stats = result.stats
    assert (stats.nodes_total, stats.nodes_converted, stats.nodes_kept_fp32) == (6, 6, 0)
    assert stats.casts_inserted == 2 and stats.casts_removed == 0
    assert stats.float_weight_elements == stats.converted_weight_elements == 32 + 8 + 24 + 3
    assert stats.kept_nodes == () and stats.notes == ()
    assert result.validation.status == "passed"

    assert_outputs_close(src, out, feeds, atol=1e-2, rtol=1e-2)


def test_cnn(tmp_path: Path) -> None:
    proto, feeds = cnn_model()
    src, out, result = convert_model(proto, tmp_path)

    assert fp32_nodes(out) == []
    converted = [n for n in node_types(out) if n.op != "Cast"]
    assert ops(converted) == ["Conv", "BatchNormalization", "Relu", "MaxPool", "Flatten", "Gemm"]
    assert all(set(n.inputs) == {FLOAT16} for n in converted)
    assert set(initializer_dtypes(out).values()) == {FLOAT16}
    assert len(casts(out)) == 2
    assert_clean_casts(out)
    assert result.validation.status == "passed"

    assert_outputs_close(src, out, feeds, atol=2e-2, rtol=1e-2)


def test_softmax(tmp_path: Path) -> None:
    proto, feeds = softmax_model()
    src, out, result = convert_model(proto, tmp_path)

    (softmax,) = nodes_of(out, "Softmax")
    assert softmax.inputs == (FLOAT16,) and softmax.outputs == (FLOAT16,)
    assert len(casts(out)) == 2
    assert_clean_casts(out)
    assert result.stats.nodes_converted == 1

    _, converted = assert_outputs_close(src, out, feeds, atol=1e-3, rtol=1e-2)
    np.testing.assert_allclose(converted["y"].sum(axis=1), 1.0, atol=5e-3)


def test_layernorm(tmp_path: Path) -> None:
    proto, feeds = layernorm_model()
    src, out, result = convert_model(proto, tmp_path)

    (layernorm,) = nodes_of(out, "LayerNormalization")
    assert layernorm.inputs == (FLOAT16, FLOAT16, FLOAT16) and layernorm.outputs == (FLOAT16,)
    assert initializer_dtypes(out) == {"gamma": FLOAT16, "beta": FLOAT16}
    assert len(casts(out)) == 2
    assert_clean_casts(out)
    assert result.validation.status == "passed"

    assert_outputs_close(src, out, feeds, atol=1e-2, rtol=1e-2)


def test_reduce_ops_kept_by_policy(tmp_path: Path) -> None:
    proto, feeds = reduce_model()
    src, out, result = convert_model(proto, tmp_path)

    kept = {n.name: n for n in fp32_nodes(out)}
    assert sorted(kept) == ["mean", "sum"]
    assert all(n.outputs == (FLOAT,) for n in kept.values())
    for name in ("scale", "center", "square"):
        (node,) = [n for n in node_types(out) if n.name == name]
        assert set(i for i in node.inputs if i != "INT64") == {FLOAT16}, node
    # x in; scale's output to float32 for ReduceMean; m to float16 for Sub; sq to float32 for ReduceSum.
    # The outputs m and s are float32 already: no Cast at the end.
    assert len(casts(out)) == 4
    assert initializer_dtypes(out) == {"k": FLOAT16, "axes": "INT64"}
    assert_clean_casts(out)

    reasons = {k.name: k for k in result.stats.kept_nodes}
    assert set(reasons) == {"mean", "sum"}
    assert reasons["mean"].reason == "the running sum can overflow float16 before it is divided"
    assert reasons["sum"].reason == "sums over large axes overflow float16"
    assert {k.source for k in reasons.values()} == {"policy"}
    assert result.stats.nodes_kept_fp32 == 2 and result.stats.nodes_converted == 3

    assert_outputs_close(src, out, feeds, atol=1e-2, rtol=1e-2)


def test_pow_kept_by_policy(tmp_path: Path) -> None:
    proto, feeds = pow_model()
    src, out, result = convert_model(proto, tmp_path)

    (pow_node,) = fp32_nodes(out)
    assert pow_node.name == "pow" and pow_node.inputs == (FLOAT, FLOAT) and pow_node.outputs == (FLOAT,)
    # The exponent feeds only Pow, so it stays float32; b feeds the converted Add.
    assert initializer_dtypes(out) == {"e": FLOAT, "b": FLOAT16}
    (kept,) = result.stats.kept_nodes
    assert (kept.name, kept.source, kept.reason) == ("pow", "policy", "x**y leaves the float16 range for moderate bases and exponents")
    # x -> fp16 (Relu), a -> fp32 (Pow), p -> fp16 (Add), y -> fp32.
    assert len(casts(out)) == 4
    assert_clean_casts(out)

    assert_outputs_close(src, out, feeds, atol=1e-2, rtol=1e-2)


def test_resize_scales_stay_float32(tmp_path: Path) -> None:
    proto, feeds = resize_model()
    src, out, result = convert_model(proto, tmp_path)

    (resize,) = nodes_of(out, "Resize")
    assert resize.inputs == (FLOAT16, FLOAT, FLOAT) and resize.outputs == (FLOAT16,)
    assert fp32_nodes(out) == [resize]  # only through roi/scales
    assert initializer_dtypes(out) == {"roi": FLOAT, "scales": FLOAT, "bias": FLOAT16}
    (kept,) = result.stats.kept_nodes
    assert kept.name == "resize" and kept.kept_inputs == ("roi", "scales")
    assert result.stats.nodes_converted == 3 and result.stats.nodes_kept_fp32 == 0
    assert len(casts(out)) == 2
    assert_clean_casts(out)

    assert_outputs_close(src, out, feeds, atol=1e-2, rtol=1e-2)


def test_if_with_outer_scope_values(tmp_path: Path) -> None:
    proto, feeds = if_model()
    src, out, result = convert_model(proto, tmp_path)

    by_name = {n.name: n for n in node_types(out)}
    assert by_name["square"].inputs == (FLOAT16, FLOAT16)
    assert by_name["if"].outputs == (FLOAT16,)
    assert by_name["then_add"].inputs == (FLOAT16, FLOAT16)
    assert by_name["then_add"].graph == "main/if:then_branch"
    assert by_name["then_relu"].outputs == (FLOAT16,)
    # Exp stays float32 inside the else branch, between two Casts of that branch.
    assert by_name["else_exp"].inputs == (FLOAT,) and by_name["else_exp"].outputs == (FLOAT,)
    else_casts = [n for n in casts(out) if n.graph == "main/if:else_branch"]
    assert [(c.inputs, c.outputs) for c in else_casts] == [((FLOAT16,), (FLOAT,)), ((FLOAT,), (FLOAT16,))]
    assert ops(fp32_nodes(out)) == ["Exp"]
    (kept,) = result.stats.kept_nodes
    assert (kept.name, kept.graph) == ("else_exp", "main/if:else_branch")
    # then_add reads the float16 x of the main graph's Cast: x is cast once in all.
    assert [(c.graph, c.proto.input[0]) for c in casts(out)] == [
        ("main", "x"),
        ("main/if:else_branch", "h"),
        ("main/if:else_branch", "e"),
        ("main", "y_fp16"),
    ]
    assert_clean_casts(out)

    for cond in (True, False):
        assert_outputs_close(src, out, {**feeds, "c": np.array(cond)}, atol=1e-2, rtol=1e-2)


def test_loop_with_float_carried_value(tmp_path: Path) -> None:
    proto, feeds = loop_model()
    src, out, result = convert_model(proto, tmp_path)

    by_name = {n.name: n for n in node_types(out)}
    loop = by_name["loop"]
    assert loop.inputs == ("INT64", "BOOL", FLOAT16)
    assert loop.outputs == (FLOAT16, FLOAT16)
    body = next(a.g for a in loop.proto.attribute if a.name == "body")
    assert [i.type.tensor_type.elem_type for i in body.input] == [
        onnx.TensorProto.INT64,
        onnx.TensorProto.BOOL,
        onnx.TensorProto.FLOAT16,
    ]
    assert [o.type.tensor_type.elem_type for o in body.output][1:] == [onnx.TensorProto.FLOAT16] * 2
    assert by_name["body_add"].inputs == (FLOAT16, FLOAT16)
    assert by_name["body_mul"].inputs == (FLOAT16, FLOAT16)
    assert by_name["body_tanh"].outputs == (FLOAT16,)
    assert fp32_nodes(out) == []
    # x in (one Cast in the main graph serves half, the Loop and body_mul: none runs per
    # iteration), acc and trace out.
    assert [c.graph for c in casts(out)] == ["main"] * 3
    assert_clean_casts(out)
    assert result.validation.status == "passed"

    for n in (0, 1, 3):
        assert_outputs_close(src, out, {**feeds, "n": np.array(n, np.int64)}, atol=1e-2, rtol=1e-2)


def test_shared_initializer_and_constant(tmp_path: Path) -> None:
    proto, feeds = shared_model()
    src, out, result = convert_model(proto, tmp_path)

    nodes = node_types(out)
    by_name = {n.name: n for n in nodes}
    # W keeps its float32 precision for Exp; Mul reads it through one Cast to float16.
    assert initializer_dtypes(out) == {"W": FLOAT}
    np.testing.assert_array_equal(initializer(out, "W"), rand(2, 3, seed=1))
    assert by_name["exp"].proto.input[0] == "W" and by_name["exp"].inputs == (FLOAT,)
    w_casts = [n for n in nodes if n.op == "Cast" and n.proto.input[0] == "W"]
    assert len(w_casts) == 1 and w_casts[0].attr("to") == onnx.TensorProto.FLOAT16
    assert by_name["mul"].proto.input[1] == w_casts[0].proto.output[0]
    assert by_name["mul"].inputs == (FLOAT16, FLOAT16)
    # The Constant stays float32 too, with one Cast for mul_c.
    (constant,) = nodes_of(out, "Constant")
    assert constant.outputs == (FLOAT,)
    c_casts = [n for n in nodes if n.op == "Cast" and n.proto.input[0] == constant.proto.output[0]]
    assert len(c_casts) == 1 and by_name["mul_c"].proto.input[1] == c_casts[0].proto.output[0]
    assert by_name["log"].inputs == (FLOAT,)
    assert sorted(ops(fp32_nodes(out))) == ["Exp", "Log"]
    assert_clean_casts(out)
    kept = {k.name or k.op_type: k for k in result.stats.kept_nodes}
    assert kept["Constant"].source == "consumers"
    assert result.stats.converted_weight_elements == 0 and result.stats.float_weight_elements == 7

    assert_outputs_close(src, out, feeds, atol=1e-2, rtol=1e-2)


def test_graph_output_read_by_float32_node_shares_its_cast(tmp_path: Path) -> None:
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    output_reuse (float[2,3] x) => (float[2,3] r, float[2,3] e) {
        [relu] r = Relu(x)
        [exp] e = Exp(r)
    }
    """
    proto = model(text)
    feeds = {"x": rand(2, 3, seed=31)}
    src, out, result = convert_model(proto, tmp_path)

    by_name = {n.name: n for n in node_types(out)}
    # One Cast makes the float32 output r, and Exp reads that same value.
    assert [(c.inputs, c.outputs, c.proto.output[0]) for c in casts(out)] == [
        ((FLOAT,), (FLOAT16,), "x_fp16"),
        ((FLOAT16,), (FLOAT,), "r"),
    ]
    assert by_name["exp"].proto.input[0] == "r" and by_name["exp"].inputs == (FLOAT,)
    assert by_name["relu"].outputs == (FLOAT16,)
    assert io_types(out) == ({"x": FLOAT}, {"r": FLOAT, "e": FLOAT})
    assert result.stats.casts_inserted == 2
    assert_clean_casts(out)

    assert_outputs_close(src, out, feeds, atol=1e-2, rtol=1e-2)


def test_external_data(tmp_path: Path) -> None:
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    external (float[2,64] x) => (float[2,32] y) {
        h = MatMul(x, W)
        y = Add(h, B)
    }
    """
    # W is 4 KiB in float16, above the size onnx-ir writes inline (256 bytes).
    proto = model(text, W=rand(64, 32, seed=1, low=-0.2, high=0.2), B=rand(32, seed=2))
    feeds = {"x": rand(2, 64, seed=26)}
    source = tmp_path / "m.onnx"
    onnx.save(
        proto,
        str(source),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="m.onnx.data",
        size_threshold=0,
    )
    digest = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.iterdir()}
    assert set(digest) == {"m.onnx", "m.onnx.data"}
    output = tmp_path / "out.onnx"

    result = convert(source, ConvertOptions(output=output))

    assert result.external_data_path == str(tmp_path / "out.onnx.data")
    assert (tmp_path / "out.onnx.data").is_file()
    assert {p.name for p in tmp_path.iterdir()} == {"m.onnx", "m.onnx.data", "out.onnx", "out.onnx.data"}
    assert digest == {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.iterdir() if p.name.startswith("m.")
    }
    written = onnx.load(str(output), load_external_data=False)
    external = [t for t in written.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    assert "W" in {t.name for t in external}
    assert {e.value for t in external for e in t.external_data if e.key == "location"} == {"out.onnx.data"}
    assert initializer_dtypes(output) == {"W": FLOAT16, "B": FLOAT16}
    assert fp32_nodes(output) == []
    assert_clean_casts(output)
    assert result.validation.status == "passed"

    assert_outputs_close(source, output, feeds, atol=1e-2, rtol=1e-2)


def test_ir3_initializers_as_inputs(tmp_path: Path) -> None:
    text = """
    <ir_version: 3, opset_import: ["" : 8]>
    old (float[2,4] x, float[4,3] W, float[3] B) => (float[2,3] y) {
        h = MatMul(x, W)
        y = Add(h, B)
    }
    """
    proto = model(text, W=rand(4, 3, seed=1), B=rand(3, seed=2))
    feeds = {"x": rand(2, 4, seed=27)}
    src, out, result = convert_model(proto, tmp_path)

    written = onnx.load(str(out))
    assert written.ir_version == 4
    assert [i.name for i in written.graph.input] == ["x"]
    assert initializer_dtypes(out) == {"W": FLOAT16, "B": FLOAT16}
    assert fp32_nodes(out) == []
    assert_clean_casts(out)
    assert any("IR < 4" in note and "2 graph input(s)" in note for note in result.stats.notes)
    assert result.stats.converted_weight_elements == 15

    assert_outputs_close(src, out, feeds, atol=1e-2, rtol=1e-2)


def test_already_float16_raises_and_writes_nothing(tmp_path: Path) -> None:
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    half (float16[2,3] x) => (float16[2,3] y) {
        h = Mul(x, W)
        y = Relu(h)
    }
    """
    source = save(model(text, W=rand(2, 3).astype(np.float16)), tmp_path, "half.onnx")
    with pytest.raises(NothingToConvertError, match="float16"):
        convert(source, ConvertOptions(output=tmp_path / "out.onnx"))
    assert [p.name for p in tmp_path.iterdir()] == ["half.onnx"]


def test_int_only_raises(tmp_path: Path) -> None:
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    ints (int64[3] a, int64[3] b) => (int64[3] c) {
        c = Add(a, b)
    }
    """
    source = save(model(text), tmp_path, "ints.onnx")
    with pytest.raises(NothingToConvertError):
        convert(source, ConvertOptions(output=tmp_path / "out.onnx"))
    assert [p.name for p in tmp_path.iterdir()] == ["ints.onnx"]


def test_everything_kept_raises(tmp_path: Path) -> None:
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    kept (float[2,3] x) => (float[2,3] y) {
        y = Exp(x)
    }
    """
    source = save(model(text), tmp_path, "kept.onnx")
    with pytest.raises(NothingToConvertError, match="stays float32"):
        convert(source, ConvertOptions(output=tmp_path / "out.onnx"))
    assert [p.name for p in tmp_path.iterdir()] == ["kept.onnx"]


def test_sequence_values_keep_their_nodes_float32_and_stay_sequences(tmp_path: Path) -> None:
    # No value_info for the sequences: inference must give them sequence types, not tensor ones.
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    seq (float[2,3] x, float[2,3] y) => (float[2,6] z) {
        a = Relu(x)
        b = Sigmoid(y)
        s = SequenceConstruct(a, b)
        t = SequenceInsert(s, a)
        n = SequenceLength(t)
        c = ConcatFromSequence<axis: int = 1>(s)
        z = Tanh(c)
    }
    """
    src, out, result = convert_model(model(text), tmp_path)
    kept = {k.op_type: k.source for k in result.stats.kept_nodes}
    assert kept == {op: "sequence" for op in ("SequenceConstruct", "SequenceInsert", "SequenceLength", "ConcatFromSequence")}
    assert ops(n for n in node_types(out) if n.outputs == (FLOAT16,) and n.op != "Cast") == ["Relu", "Sigmoid", "Tanh"]
    assert_outputs_close(src, out, {"x": rand(2, 3, seed=1), "y": rand(2, 3, seed=2)}, atol=1e-2, rtol=1e-2)


def test_only_sequence_nodes_is_refused_with_the_reason(tmp_path: Path) -> None:
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    seq (float[2,3] x, float[2,3] y) => (float[2,6] z) {
        s = SequenceConstruct(x, y)
        z = ConcatFromSequence<axis: int = 1>(s)
    }
    """
    source = save(model(text), tmp_path, "seq.onnx")
    with pytest.raises(NothingToConvertError, match=r"\(2 nodes: sequence and optional values cannot be cast"):
        convert(source, ConvertOptions(output=tmp_path / "out.onnx"))
    assert [p.name for p in tmp_path.iterdir()] == ["seq.onnx"]


def test_out_of_range_constants_are_clamped_and_flushed(tmp_path: Path) -> None:
    proto, feeds = ranges_model()
    src, out, result = convert_model(proto, tmp_path, clamp_weights=True)

    stats = result.stats
    # big, nbig: 1 each; cbig: 2. tiny, ctiny: 1 each.
    assert stats.clamped_values == 4
    assert stats.flushed_values == 2
    reports = {r.name: (r.elements, r.clamped, r.flushed) for r in stats.range_reports}
    assert reports == {
        "big": (1, 1, 0),
        "nbig": (1, 1, 0),
        "tiny": (1, 0, 1),
        "cbig": (2, 2, 0),
        "ctiny": (1, 0, 1),
    }
    assert initializer_dtypes(out) == {"big": FLOAT16, "nbig": FLOAT16, "tiny": FLOAT16}
    assert initializer(out, "big").tolist() == [FP16_MAX]
    assert initializer(out, "nbig").tolist() == [-FP16_MAX]
    assert initializer(out, "tiny").tolist() == [0.0]
    constants = {n.proto.output[0]: numpy_helper.to_array(n.attr("value")) for n in nodes_of(out, "Constant")}
    assert constants["cbig"].dtype == np.float16 and constants["cbig"].tolist() == [[FP16_MAX], [FP16_MAX]]
    assert constants["ctiny"].dtype == np.float16 and constants["ctiny"].tolist() == 0.0
    assert not np.isinf(constants["cbig"]).any()
    assert fp32_nodes(out) == []
    assert_clean_casts(out)

    assert_outputs_close(src, out, feeds, atol=1e-3, rtol=1e-3)


def test_same_named_constants_in_sibling_branches_are_all_counted(tmp_path: Path) -> None:
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    siblings (bool c, float[2] x) => (float[2] y) {
        y = If(c) <
            then_branch = then_g () => (float[2] t) {
                k = Constant<value=float[1] {70000}>()
                t = Min(x, k)
            },
            else_branch = else_g () => (float[2] e) {
                k = Constant<value=float[2] {80000, 1e-9}>()
                e = Min(x, k)
            }
        >
    }
    """
    proto = model(text)
    src, out, result = convert_model(proto, tmp_path, clamp_weights=True)

    assert (result.stats.clamped_values, result.stats.flushed_values) == (2, 1)
    assert sorted((r.name, r.elements, r.clamped, r.flushed) for r in result.stats.range_reports) == [
        ("k", 1, 1, 0),
        ("k", 2, 1, 1),
    ]
    values = sorted(numpy_helper.to_array(n.attr("value")).tolist() for n in nodes_of(out, "Constant"))
    assert values == [[FP16_MAX], [FP16_MAX, 0.0]]
    for cond in (True, False):
        feeds = {"c": np.array(cond), "x": rand(2, seed=30, low=0, high=1)}
        assert_outputs_close(src, out, feeds, atol=1e-3, rtol=1e-3)


def test_keep_io_types_false(tmp_path: Path) -> None:
    proto, feeds = mlp_model()
    src, out, result = convert_model(proto, tmp_path, keep_io_types=False)

    assert io_types(out) == ({"x": FLOAT16}, {"y": FLOAT16})
    assert casts(out) == []
    assert fp32_nodes(out) == []
    assert result.stats.casts_inserted == 0 and not result.keep_io_types
    _, converted = assert_outputs_close(src, out, feeds, atol=1e-2, rtol=1e-2)
    assert converted["y"].dtype == np.float16


def test_keep_io_types_false_with_kept_nodes(tmp_path: Path) -> None:
    # m and s come out of nodes kept in float32; they are cast to float16 for the interface.
    proto, feeds = reduce_model()
    src, out, _result = convert_model(proto, tmp_path, keep_io_types=False)

    assert io_types(out) == ({"x": FLOAT16}, {"m": FLOAT16, "s": FLOAT16})
    assert sorted(n.name for n in fp32_nodes(out)) == ["mean", "sum"]
    output_casts = [c for c in casts(out) if c.proto.output[0] in ("m", "s")]
    assert [(c.inputs, c.outputs) for c in output_casts] == [((FLOAT,), (FLOAT16,))] * 2
    assert_clean_casts(out)

    _, converted = assert_outputs_close(src, out, feeds, atol=1e-2, rtol=1e-2)
    assert {v.dtype for v in converted.values()} == {np.dtype(np.float16)}


def test_keep_ops_and_keep_nodes(tmp_path: Path) -> None:
    proto, feeds = mlp_model()
    src, out, result = convert_model(proto, tmp_path, keep_ops=("Relu",), keep_nodes=("mm2", "missing"))

    kept = fp32_nodes(out)
    assert [(n.name, n.inputs, n.outputs) for n in kept] == [
        ("relu", (FLOAT,), (FLOAT,)),
        ("mm2", (FLOAT, FLOAT), (FLOAT,)),
    ]
    # W2 feeds only mm2, so it stays float32; the others convert.
    assert initializer_dtypes(out) == {"W1": FLOAT16, "B1": FLOAT16, "W2": FLOAT, "B2": FLOAT16}
    reasons = {k.name: (k.source, k.reason) for k in result.stats.kept_nodes}
    assert reasons == {"relu": ("keep-op", "kept by --keep-op"), "mm2": ("keep-node", "kept by --keep-node")}
    assert result.stats.notes == ("--keep-node missing matched no node in the model",)
    # x in; hb to fp32 (Relu); o to fp16 (add2); y out. relu->mm2 needs no Cast.
    assert len(casts(out)) == 4
    assert_clean_casts(out)

    assert_outputs_close(src, out, feeds, atol=1e-2, rtol=1e-2)


@pytest.mark.usefixtures("cuda_missing")
def test_bfloat16_target(tmp_path: Path) -> None:
    from onnx.reference import ReferenceEvaluator

    proto, feeds = mlp_model()
    src, out, result = convert_model(proto, tmp_path, target="bf16", status=None)

    onnx.checker.check_model(str(out), full_check=True)
    assert result.target == "bf16"
    assert set(initializer_dtypes(out).values()) == {BFLOAT16}
    converted = [n for n in node_types(out) if n.op != "Cast"]
    assert all(set(n.inputs) == {BFLOAT16} and n.outputs == (BFLOAT16,) for n in converted)
    assert fp32_nodes(out) == []
    assert_clean_casts(out)
    # ORT's CPU provider has no bfloat16 MatMul and there is no CUDA: the ORT steps are
    # skipped, not failed.
    assert (result.validation.status, result.validation.checker) == ("partial", True)
    assert any("no bfloat16 kernel" in s for s in result.validation.skipped)

    # Numbers from the ONNX reference implementation, which runs bfloat16.
    (expected,) = run_ort(src, feeds).values()
    (actual,) = ReferenceEvaluator(str(out)).run(None, feeds)
    np.testing.assert_allclose(actual.astype(np.float64), expected, atol=3e-2, rtol=3e-2)


def test_original_casts_are_retargeted(tmp_path: Path) -> None:
    proto, feeds = cast_model()
    src, out, result = convert_model(proto, tmp_path)

    by_name = {n.name: n for n in node_types(out)}
    assert by_name["to_float"].attr("to") == onnx.TensorProto.FLOAT16
    assert by_name["to_float"].inputs == ("INT64",) and by_name["to_float"].outputs == (FLOAT16,)
    assert "same" not in by_name  # float->float became float16->float16 and was removed
    assert by_name["relu"].proto.input[0] == "m"
    # A float -> int Cast takes the float16 value as it comes.
    assert by_name["to_int"].inputs == (FLOAT16,) and by_name["to_int"].outputs == ("INT32",)
    assert result.stats.casts_removed == 1
    assert result.stats.kept_nodes == () and result.stats.nodes_kept_fp32 == 0
    # Inserted: x to fp16 (shared by mul and add) and y back to fp32.
    assert result.stats.casts_inserted == 2
    assert len(casts(out)) == 4
    assert fp32_nodes(out) == []
    assert_clean_casts(out)

    reference, converted = assert_outputs_close(src, out, feeds, atol=1e-2, rtol=1e-2)
    np.testing.assert_array_equal(converted["idx"], reference["idx"])


def test_original_casts_feeding_float32_nodes_stay_float32(tmp_path: Path) -> None:
    # xs and kf feed only nodes kept in float32. Converted, their Casts would round the
    # values to float16 and cast them back (x: float32 -> float16 -> float32).
    text = """
    <ir_version: 8, opset_import: ["" : 18]>
    kept_casts (float[2,3] x, int64[2,3] k) => (float[2,1] s, float[2,3] r, float[2,3] e) {
        [same] xs = Cast<to=1>(x)
        [sum] s = ReduceSum<keepdims=1>(xs, axes)
        [relu] r = Relu(x)
        [to_float] kf = Cast<to=1>(k)
        [exp] e = Exp(kf)
    }
    """
    proto = model(text, axes=np.array([1], np.int64))
    # Values float16 rounds (1234.567) or cannot hold (70000).
    feeds = {"x": rand(2, 3, seed=28, low=-2000, high=2000), "k": np.array([[1, 2, 3], [-70000, 2049, -3]])}
    src, out, result = convert_model(proto, tmp_path)

    by_name = {n.name: n for n in node_types(out)}
    assert by_name["same"].attr("to") == onnx.TensorProto.FLOAT and by_name["same"].outputs == (FLOAT,)
    assert by_name["to_float"].attr("to") == onnx.TensorProto.FLOAT and by_name["to_float"].outputs == (FLOAT,)
    assert by_name["sum"].proto.input[0] == "xs" and by_name["exp"].proto.input[0] == "kf"
    assert by_name["relu"].inputs == (FLOAT16,)
    assert count_cancelling_cast_pairs(out) == 0
    # Inserted: x to float16 for Relu and r back to float32; nothing between a Cast and its float32 consumer.
    assert result.stats.casts_inserted == 2
    kept = {k.name: k for k in result.stats.kept_nodes}
    assert kept["same"].source == kept["to_float"].source == "consumers"

    reference, converted = assert_outputs_close(src, out, feeds, atol=1.0, rtol=1e-3)
    np.testing.assert_array_equal(converted["s"], reference["s"])  # float32 all the way
    np.testing.assert_array_equal(converted["e"], reference["e"])


def test_float64_path_untouched(tmp_path: Path) -> None:
    proto, feeds = float64_model()
    src, out, result = convert_model(proto, tmp_path)

    before = {n.name: n for n in node_types(src)}
    after = {n.name: n for n in node_types(out)}
    for name in ("exp64", "add64", "mul64"):
        assert after[name].inputs == before[name].inputs and after[name].outputs == (DOUBLE,)
    assert after["df"].inputs == (DOUBLE,) and after["df"].outputs == (FLOAT16,)
    assert after["to_double"].inputs == (FLOAT16,) and after["to_double"].outputs == (DOUBLE,)
    assert after["mul"].inputs == (FLOAT16, FLOAT16)
    # Only x in and y out are new; no Cast touches the double values.
    inserted = [c for c in casts(out) if c.name not in before]
    assert [(c.inputs, c.outputs) for c in inserted] == [((FLOAT,), (FLOAT16,)), ((FLOAT16,), (FLOAT,))]
    assert io_types(out) == ({"x": FLOAT, "d": DOUBLE}, {"y": FLOAT, "z": DOUBLE, "w": DOUBLE})
    # The Casts out of and into double convert; the double-only nodes are not counted at all.
    assert result.stats.kept_nodes == ()
    assert (result.stats.nodes_converted, result.stats.nodes_without_float) == (4, 3)
    assert fp32_nodes(out) == []
    assert_clean_casts(out)

    reference, converted = assert_outputs_close(src, out, feeds, atol=1e-2, rtol=1e-2)
    np.testing.assert_array_equal(converted["z"], reference["z"])


def test_constant_of_shape_and_constant_value_float(tmp_path: Path) -> None:
    proto, feeds = constants_model()
    src, out, result = convert_model(proto, tmp_path)

    fills = {n.name: numpy_helper.to_array(n.attr("value")) for n in nodes_of(out, "ConstantOfShape")}
    assert fills["fill_half"].dtype == np.float16 and fills["fill_half"].tolist() == [0.5]
    # The default float32 zero fill is stated explicitly in float16.
    assert fills["fill_zero"].dtype == np.float16 and fills["fill_zero"].tolist() == [0.0]
    constants = {n.proto.output[0]: n for n in nodes_of(out, "Constant")}
    for name, value in (("two", 2.0), ("row", [1.0, 2.0, 3.0])):
        attributes = [a.name for a in constants[name].proto.attribute]
        assert attributes == ["value"], attributes  # value_float(s) replaced by a float16 tensor
        tensor = numpy_helper.to_array(constants[name].attr("value"))
        assert tensor.dtype == np.float16 and tensor.tolist() == value
    assert fp32_nodes(out) == []
    assert len(casts(out)) == 3  # x in, y and z out
    assert_clean_casts(out)
    assert result.stats.nodes_converted == 9 and result.stats.nodes_kept_fp32 == 0

    assert_outputs_close(src, out, feeds, atol=1e-2, rtol=1e-2)


def _uniquely_named(proto: onnx.ModelProto, tmp_path: Path) -> Path:
    """The float32 model with its duplicate node names made unique, which ORT can load."""
    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    for k, node in enumerate(copy.graph.node):
        node.name = f"{node.name}_{k}" if node.name else ""
    return save(copy, tmp_path, "reference.onnx")


def test_duplicate_and_empty_node_names(tmp_path: Path) -> None:
    proto, feeds = names_model()
    _src, out, result = convert_model(proto, tmp_path, status="partial")

    written = onnx.load(str(out))
    node_names = [n.name for n in written.graph.node]
    # The second 'n' is renamed (ORT refuses duplicate node names); empty names stay empty.
    assert [n.name for n in written.graph.node if n.op_type in ("Relu", "Exp", "Add", "Neg", "Sigmoid", "Mul")] == [
        "n",
        "n_1",
        "",
        "",
        "Cast_x_fp16",
        "",
    ]
    assert any("1 node(s) renamed" in note for note in result.stats.notes)
    named = [n for n in node_names if n]
    assert len(named) == len(set(named))
    # The engine's own Casts never take an existing node or value name.
    new_names = [n.name for n in written.graph.node if n.op_type == "Cast"]
    assert new_names and all(new_names) and not set(new_names) & {n.name for n in proto.graph.node}
    values = [o for n in written.graph.node for o in n.output]
    assert len(values) == len(set(values))
    assert [o.name for o in written.graph.output] == ["y"]
    assert ops(fp32_nodes(out)) == ["Exp"]
    assert [(k.name, k.op_type) for k in result.stats.kept_nodes] == [("n", "Exp")]
    assert_clean_casts(out)
    # ORT cannot load the float32 model itself, so the built-in numeric check is skipped...
    assert result.validation.status == "partial"
    assert any("float32 model" in s for s in result.validation.skipped)

    # ...and the numbers are checked here against the same model with unique names.
    assert_outputs_close(_uniquely_named(proto, tmp_path), out, feeds, atol=1e-2, rtol=1e-2)


def test_keep_node_matches_every_node_of_that_name(tmp_path: Path) -> None:
    proto, feeds = names_model()
    _src, out, result = convert_model(proto, tmp_path, keep_nodes=("n",), status="partial")

    assert [(n.name, n.op) for n in fp32_nodes(out)] == [("n", "Relu"), ("n_1", "Exp")]
    assert [(k.name, k.source) for k in result.stats.kept_nodes] == [("n", "keep-node"), ("n", "keep-node")]
    assert not any("matched no node" in note for note in result.stats.notes)
    assert_clean_casts(out)
    assert_outputs_close(_uniquely_named(proto, tmp_path), out, feeds, atol=1e-2, rtol=1e-2)


# =============================================================================================
# Differential: halfconv against onnxconverter-common and float32
# =============================================================================================

def ranges_initializers_model() -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    # ranges_model without Constant nodes and without its Min -> Max chain, both of which
    # onnxconverter-common cannot convert (see _OCC_CANNOT).
    text = """
    <ir_version: 8, opset_import: ["" : 17]>
    ranges_initializers (float[2,3] x) => (float[2,3] y) {
        a = Min(x, big)
        y = Add(a, tiny)
    }
    """
    weights = dict(big=np.array([70000], np.float32), tiny=np.array([1e-9], np.float32))
    return model(text, **weights), {"x": rand(2, 3, seed=29, low=0, high=1)}


# Every model of this file -> (builder, atol = rtol of the comparisons).
_MODELS: dict[str, tuple[Callable[[], tuple[onnx.ModelProto, dict[str, np.ndarray]]], float]] = {
    "mlp": (mlp_model, 1e-2),
    "cnn": (cnn_model, 2e-2),
    "softmax": (softmax_model, 1e-2),
    "layernorm": (layernorm_model, 2e-2),
    "reduce": (reduce_model, 2e-2),
    "pow": (pow_model, 1e-2),
    "resize": (resize_model, 1e-2),
    "if": (if_model, 1e-2),
    "loop": (loop_model, 1e-2),
    "shared": (shared_model, 1e-2),
    "ranges": (ranges_model, 1e-2),
    "ranges_initializers": (ranges_initializers_model, 1e-2),
    "cast": (cast_model, 1e-2),
    "float64": (float64_model, 1e-2),
    "constants": (constants_model, 1e-2),
    "names": (names_model, 1e-2),
}
# Models onnxconverter-common (1.16) cannot convert, and what goes wrong (its output fails
# the ONNX checker or ORT, or it raises). On these the differential test checks halfconv
# against float32, then xfails.
_OCC_CANNOT = {
    "if": "a Cast of an outer-scope value lands after its use: 'Nodes ... must be topologically sorted'",
    "reduce": "Sub receives a float32 input next to a float16 one ('B has inconsistent type')",
    "shared": "a Constant node keeps its float32 value while its output is typed float16",
    "constants": "Constant value_float(s) keep float32 values while their outputs are typed float16",
    "cast": "an original Cast keeps to=FLOAT while its output is typed float16",
    "float64": "an original Cast keeps to=FLOAT while its output is typed float16",
    "ranges": "Constant nodes (as above), and a crash on Min -> Max in remove_unnecessary_cast_node",
    "names": "ORT refuses the duplicate node names that onnxconverter-common keeps",
}
# onnxconverter-common clips weights to [1e-7, 1e4] in magnitude, so on models with such
# constants its numbers are not compared.
_OCC_CLIPS = {"ranges", "ranges_initializers"}
# Models whose weights float16 cannot hold: converted with --clamp-weights, so that the
# range handling itself is what the test checks.
_CLAMPED = {"ranges", "ranges_initializers"}


@pytest.mark.parametrize("case", sorted(_MODELS))
@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"keep_io_types": False}, id="fp16-io"),
        pytest.param({"use_default_policy": False}, id="no-policy"),
        pytest.param({"target": "bf16"}, id="bf16"),
    ],
)
@pytest.mark.usefixtures("cuda_missing")
def test_every_model_with_other_options(case: str, options: dict[str, object], tmp_path: Path) -> None:
    """Each model again with float16 I/O, without the default policy, and to bfloat16."""
    build, tol = _MODELS[case]
    proto, feeds = build()
    if case in _CLAMPED:
        options = {**options, "clamp_weights": True}
    src, out, result = convert_model(proto, tmp_path, status=None, **options)

    assert_clean_casts(out)
    onnx.checker.check_model(str(out), full_check=True)
    if options.get("target") == "bf16":
        from onnx.reference import ReferenceEvaluator

        # Without CUDA, ORT's CPU provider can run only the LayerNormalization model in bfloat16.
        assert result.validation.status == ("passed" if case == "layernorm" else "partial")
        assert FLOAT16 not in {t for n in node_types(out) for t in (*n.inputs, *n.outputs)}
        # ORT's CPU provider lacks most bfloat16 kernels: both models run on the ONNX reference
        # implementation (which also stacks Loop scan outputs its own way, the same for both).
        expected = ReferenceEvaluator(str(src)).run(None, feeds)
        actual = ReferenceEvaluator(str(out)).run(None, feeds)
        for ref, got in zip(expected, actual):
            np.testing.assert_allclose(got.astype(np.float64), ref.astype(np.float64), atol=3e-2, rtol=3e-2)
        return
    assert result.validation.status == ("partial" if case == "names" else "passed")
    if options.get("keep_io_types") is False:
        inputs, outputs = io_types(out)
        assert FLOAT not in {*inputs.values(), *outputs.values()}
    else:
        # Without the policy table only the spec keeps float32: Resize's scales input.
        assert ops(fp32_nodes(out)) == (["Resize"] if case == "resize" else [])
        assert [(k.op_type, k.kept_inputs) for k in result.stats.kept_nodes] == (
            [("Resize", ("scales",))] if case == "resize" else []
        )
    reference = _uniquely_named(proto, tmp_path)
    assert_outputs_close(reference, out, feeds, atol=tol, rtol=tol)


@pytest.mark.filterwarnings("ignore:the float32 number:UserWarning")
@pytest.mark.parametrize("case", sorted(_MODELS))
def test_differential_against_onnxconverter_common(case: str, tmp_path: Path) -> None:
    build, tol = _MODELS[case]
    proto, feeds = build()
    source = save(proto, tmp_path, "model.onnx")
    # The same float32 model with unique node names, which ORT always loads.
    reference = run_ort(_uniquely_named(proto, tmp_path), feeds)
    ours = tmp_path / "halfconv.onnx"
    theirs = tmp_path / "occ.onnx"

    convert(source, ConvertOptions(output=ours, clamp_weights=case in _CLAMPED))
    ours_out = run_ort(ours, feeds)
    assert list(ours_out) == list(reference)
    for name, ref in reference.items():
        np.testing.assert_allclose(
            ours_out[name].astype(np.float64), ref.astype(np.float64), atol=tol, rtol=tol, err_msg=f"halfconv {name}"
        )

    try:
        convert(source, ConvertOptions(output=theirs, engine="onnxconverter-common"))
    except (ConversionError, ValidationFailedError):
        if case in _OCC_CANNOT:
            pytest.xfail(f"onnxconverter-common: {_OCC_CANNOT[case]}")
        raise
    theirs_out = run_ort(theirs, feeds)
    assert list(theirs_out) == list(reference)
    if case in _OCC_CLIPS:
        return
    for name, ref in reference.items():
        ours64, theirs64 = ours_out[name].astype(np.float64), theirs_out[name].astype(np.float64)
        np.testing.assert_allclose(theirs64, ref.astype(np.float64), atol=tol, rtol=tol, err_msg=f"occ {name}")
        np.testing.assert_allclose(ours64, theirs64, atol=2 * tol, rtol=2 * tol, err_msg=f"halfconv vs occ {name}")


# -- graph inputs that are also initializers ----------------------------------------------------


def _input_with_default(ir_version: int) -> onnx.ModelProto:
    """y = x @ W, where W is a graph input with a default value (an initializer of the same name)."""
    proto = model(
        f"""
        <ir_version: {ir_version}, opset_import: ["" : {13 if ir_version >= 4 else 9}]>
        agraph (float[2, 4] x, float[4, 3] W) => (float[2, 3] y) {{
            y = MatMul(x, W)
        }}
        """,
        W=rand(4, 3, seed=7),
    )
    return proto


def test_input_with_a_default_stays_an_input_at_ir_4_and_later(tmp_path: Path) -> None:
    src, out, result = convert_model(_input_with_default(8), tmp_path)

    converted = onnx.load(str(out))
    assert converted.ir_version == 8
    assert [i.name for i in converted.graph.input] == ["x", "W"]
    assert io_types(out) == ({"x": FLOAT, "W": FLOAT}, {"y": FLOAT})
    # The default keeps the input's type; the MatMul gets it through a Cast.
    assert initializer_dtypes(out) == {"W": FLOAT}
    assert ops(node_types(out)) == ["Cast", "Cast", "MatMul", "Cast"]
    assert result.stats.notes == ()
    x = rand(2, 4, seed=1)
    assert_outputs_close(src, out, {"x": x}, atol=1e-2, rtol=1e-2)
    # Overriding the default still works after conversion.
    override = {"x": x, "W": rand(4, 3, seed=9)}
    assert_outputs_close(src, out, override, atol=1e-2, rtol=1e-2)


def test_input_with_a_default_converts_with_no_keep_io_types(tmp_path: Path) -> None:
    _, out, _ = convert_model(_input_with_default(8), tmp_path, keep_io_types=False)

    assert io_types(out) == ({"x": FLOAT16, "W": FLOAT16}, {"y": FLOAT16})
    assert initializer_dtypes(out) == {"W": FLOAT16}
    reference = rand(2, 4, seed=1) @ rand(4, 3, seed=7)
    np.testing.assert_allclose(run_ort(out, {"x": rand(2, 4, seed=1)})["y"], reference, atol=1e-2, rtol=1e-2)


def test_initializers_listed_as_inputs_before_ir_4_are_weights(tmp_path: Path) -> None:
    src, out, result = convert_model(_input_with_default(3), tmp_path)

    converted = onnx.load(str(out))
    assert converted.ir_version == 4
    assert [i.name for i in converted.graph.input] == ["x"]
    assert initializer_dtypes(out) == {"W": FLOAT16}
    assert result.stats.notes == (
        "1 graph input(s) were also initializers (IR < 4): converted as weights, "
        "removed from the input list, and the IR version raised to 4",
    )
    assert_outputs_close(src, out, {"x": rand(2, 4, seed=1)}, atol=1e-2, rtol=1e-2)



# -- weights the target cannot hold, found without data --------------------------------------


def test_a_weight_beyond_float16_keeps_its_consumer_float32(tmp_path: Path) -> None:
    proto = model(
        """
        <ir_version: 8, opset_import: ["" : 17]>
        wide (float[2,2] x) => (float[2,2] y) {
            [scale] h = Gemm<alpha=0.001>(x, W)
            [shift] y = Add(h, B)
        }
        """,
        W=np.array([[1e5, 1.0], [2.0, 3.0]], np.float32),
        B=np.array([0.5, 0.25], np.float32),
    )
    src, out, result = convert_model(proto, tmp_path)
    # Gemm keeps its weight exact (clamping it to 65504 would change the model); its output,
    # alpha times x @ W, fits float16, so the Add converts.
    assert [(k.name, k.source, k.reason) for k in result.stats.kept_nodes] == [
        ("scale", "weights", "weight 'W' has 1 of 4 values beyond float16's 65504 (max |value| 1e+05)")
    ]
    assert initializer_dtypes(out) == {"W": FLOAT, "B": FLOAT16}
    assert result.stats.clamped_values == 0
    assert_outputs_close(src, out, {"x": rand(2, 2, seed=3, low=0, high=1)}, atol=0.1, rtol=1e-2)


def test_clamp_weights_converts_them_clamped(tmp_path: Path) -> None:
    proto = model(
        """
        <ir_version: 8, opset_import: ["" : 17]>
        wide (float[2,2] x) => (float[2,2] y) {
            [scale] y = MatMul(x, W)
        }
        """,
        W=np.array([[1e5, 1.0], [2.0, 3.0]], np.float32),
    )
    _, out, result = convert_model(proto, tmp_path, clamp_weights=True, allow_nonfinite=True)
    assert result.stats.kept_nodes == ()
    assert result.stats.clamped_values == 1
    assert initializer(out, "W")[0, 0] == np.float16(65504)


def test_a_weight_that_mostly_flushes_keeps_its_consumer_float32(tmp_path: Path) -> None:
    proto = model(
        """
        <ir_version: 8, opset_import: ["" : 17]>
        tiny (float[2,4] x) => (float[2,4] y) {
            [fine] m = Mul(x, T)
            y = Relu(m)
        }
        """,
        T=np.array([1e-9, 2e-9, 1.0, 3e-9], np.float32),
    )
    _, out, result = convert_model(proto, tmp_path, status="passed")
    assert [(k.name, k.source, k.reason) for k in result.stats.kept_nodes] == [
        ("fine", "weights", "weight 'T': 75.0% of its non-zero values flush to zero in float16")
    ]
    assert initializer_dtypes(out) == {"T": FLOAT}


_SPECIALS = np.array(
    [0.0, -0.0, np.inf, -np.inf, np.nan, 1e5, -7e4, 65504, 65519, 65520, 2**-25, 2**-26, -(2**-25) * 0.99, 1e-40, 3e38, -3.4e38],
    dtype=np.float32,
)


@pytest.mark.parametrize("target", ["fp16", "bf16"])
def test_range_scan_and_cast_count_as_float_comparisons_do(target: str) -> None:
    """The scan and the cast read bit patterns; their counts equal those of plain float comparisons."""
    import ml_dtypes

    from halfconv.conversion._rewrite import TARGET_TYPES
    from halfconv.conversion._tensors import cast_array
    from halfconv.conversion._weight_ranges import _limits, _scan

    dtype = np.float16 if target == "fp16" else ml_dtypes.bfloat16
    largest, smallest = _limits(TARGET_TYPES[target])
    rng = np.random.default_rng(3)
    for _ in range(200):
        values = (rng.standard_normal(int(rng.integers(1, 50))) * 10.0 ** int(rng.integers(-45, 39))).astype(np.float32)
        values = np.concatenate([values, rng.choice(_SPECIALS, int(rng.integers(0, 5)))]).astype(np.float32)
        magnitude = np.abs(values)
        finite = np.isfinite(magnitude)
        expected_peak = float(magnitude[finite].max()) if finite.any() else 0.0
        assert _scan(values, largest, smallest) == (
            int(np.count_nonzero(finite & (magnitude > largest))),
            int(np.count_nonzero(magnitude)),
            int(np.count_nonzero((magnitude > 0) & (magnitude < smallest))),
            expected_peak,
        )
        with np.errstate(over="ignore"):
            plain = values.astype(dtype)
        converted, clamped, flushed = cast_array(values, TARGET_TYPES[target])
        assert clamped == int(np.count_nonzero(np.isinf(plain) & np.isfinite(values)))
        assert flushed == int(np.count_nonzero((plain == 0) & (values != 0)))
        assert not np.any(np.isinf(converted) & np.isfinite(values))
