"""The valid inputs every mutation starts from: small models, data files and a sample file.

Each is built here (nothing is downloaded) at IR 10, which every supported ONNX Runtime reads.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

IR_VERSION = 10
OPSET = 17


def _model(graph: onnx.GraphProto) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)
    onnx.checker.check_model(model, full_check=True)
    return model


def classifier() -> onnx.ModelProto:
    """An MNIST-shaped classifier: (N,1,28,28) -> Flatten -> MatMul -> Add -> Relu -> MatMul -> Softmax."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.normal(0, 0.05, (784, 16)).astype(np.float32), "W1")
    b1 = numpy_helper.from_array(rng.normal(0, 0.05, (16,)).astype(np.float32), "B1")
    w2 = numpy_helper.from_array(rng.normal(0, 0.3, (16, 10)).astype(np.float32), "W2")
    nodes = [
        helper.make_node("Flatten", ["input"], ["flat"], name="flatten"),
        helper.make_node("MatMul", ["flat", "W1"], ["h"], name="fc1"),
        helper.make_node("Add", ["h", "B1"], ["hb"], name="bias1"),
        helper.make_node("Relu", ["hb"], ["r"], name="relu1"),
        helper.make_node("MatMul", ["r", "W2"], ["logits"], name="fc2"),
        helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "classifier",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 10])],
        [w1, b1, w2],
    )
    return _model(graph)


def control_flow() -> onnx.ModelProto:
    """Structure-heavy and small: an If over two branches, a Loop with a float carried value, a Constant."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])
    then_out = helper.make_tensor_value_info("t", TensorProto.FLOAT, [2, 4])
    else_out = helper.make_tensor_value_info("e", TensorProto.FLOAT, [2, 4])
    then_branch = helper.make_graph([helper.make_node("Relu", ["x"], ["t"], name="then_relu")], "then", [], [then_out])
    else_branch = helper.make_graph([helper.make_node("Sigmoid", ["x"], ["e"], name="else_sigmoid")], "else", [], [else_out])
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"], name="body_cond"),
            helper.make_node("Mul", ["acc_in", "half"], ["acc_out"], name="body_mul"),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, [2, 4]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, [2, 4]),
        ],
    )
    nodes = [
        helper.make_node("Constant", [], ["half"], name="half", value=numpy_helper.from_array(np.full((2, 4), 0.5, np.float32))),
        helper.make_node("If", ["flag"], ["branch"], name="if", then_branch=then_branch, else_branch=else_branch),
        helper.make_node("Loop", ["trips", "", "branch"], ["looped"], name="loop", body=body),
        helper.make_node("Add", ["looped", "x"], ["y"], name="add"),
    ]
    graph = helper.make_graph(
        nodes,
        "control",
        [x],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])],
        [numpy_helper.from_array(np.array(True), "flag"), numpy_helper.from_array(np.array(3, np.int64), "trips")],
    )
    return _model(graph)


@dataclasses.dataclass(frozen=True)
class Seeds:
    folder: Path
    classifier: Path  # classifier.onnx
    external: Path  # external.onnx + external.onnx.data: the classifier with its weights outside
    control: Path  # control.onnx
    data: Path  # data.npz: 64 MNIST-shaped uint8 images and labels
    sample: Path  # sample.npz: inputs for classifier.onnx's numeric check


def write_seeds(folder: Path) -> Seeds:
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(classifier(), str(folder / "classifier.onnx"))
    onnx.save(
        classifier(), str(folder / "external.onnx"), save_as_external_data=True, location="external.onnx.data", size_threshold=0
    )
    onnx.save(control_flow(), str(folder / "control.onnx"))
    rng = np.random.default_rng(1)
    np.savez(folder / "data.npz", x=rng.integers(0, 256, (64, 28, 28), dtype=np.uint8), y=rng.integers(0, 10, 64))
    np.savez(folder / "sample.npz", input=rng.random((4, 1, 28, 28), dtype=np.float32))
    return Seeds(
        folder,
        folder / "classifier.onnx",
        folder / "external.onnx",
        folder / "control.onnx",
        folder / "data.npz",
        folder / "sample.npz",
    )
