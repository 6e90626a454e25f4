"""The CUDA path, on a machine with a GPU: each test is skipped, with ORT's reason, where no CUDA session can be created.

What runs here: the doctor's verdict, IO binding with inputs and outputs on the device
(copies outside the timed region), node placement from ORT's profile, strict placement,
and a bfloat16 conversion validated on CUDA. ``scripts/gpu-check`` runs these first.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from halfconv import cli, core
from halfconv.conversion import ConvertOptions, convert

pytestmark = pytest.mark.gpu
CUDA = "CUDAExecutionProvider"


@pytest.fixture(scope="module", autouse=True)
def cuda() -> None:
    reason = core.cuda_unavailable_reason()
    if reason is not None:
        pytest.skip(f"CUDA unavailable: {reason}")


def _mlp(tmp_path: Path, extra: list[onnx.NodeProto] | None = None, outputs: list[onnx.ValueInfoProto] | None = None) -> Path:
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Flatten", ["input"], ["flat"], name="flatten"),
        helper.make_node("MatMul", ["flat", "W"], ["h"], name="fc"),
        helper.make_node("Relu", ["h"], ["logits"], name="relu"),
        *(extra or []),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10]), *(outputs or [])],
        [numpy_helper.from_array(rng.normal(0, 0.05, (784, 10)).astype(np.float32), "W")],
    )
    path = tmp_path / "mlp.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10), str(path))
    return path


def _npz(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    path = tmp_path / "data.npz"
    np.savez(path, x=rng.integers(0, 256, (256, 28, 28), dtype=np.uint8), y=rng.integers(0, 10, 256))
    return path


def _evaluate(capfd: pytest.CaptureFixture[str], model: Path, tmp_path: Path, *argv: str) -> dict[str, Any]:
    code = cli.main(["evaluate", str(model), "--dataset", str(_npz(tmp_path)), "--provider", "cuda", "--report-dir", str(tmp_path / "r"),
                     "--latency-batch-sizes", "1,64", "--iters", "5", "--warmup", "2", "--quiet", *argv])
    assert code == 0, capfd.readouterr().err
    return json.loads((tmp_path / "r" / "report.json").read_text())


def test_the_doctor_says_cuda_works(capfd: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["doctor"]) == 0
    out = capfd.readouterr().out
    assert "CUDA session     yes: --provider cuda works" in out and "fix " not in out


def test_io_binding_keeps_the_data_on_the_device(tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    devices: list[str] = []
    original = ort.OrtValue.ortvalue_from_numpy

    def spy(*args: Any) -> Any:
        devices.append(args[1])
        return original(*args)

    monkeypatch.setattr(ort.OrtValue, "ortvalue_from_numpy", staticmethod(spy))
    converted = tmp_path / "mlp.fp16.onnx"
    convert(_mlp(tmp_path), ConvertOptions(output=converted))
    report = _evaluate(capfd, converted, tmp_path)
    provider = report["provider"]
    assert (provider["actual"], provider["io_binding"], provider["copies_timed"]) == (CUDA, True, False)
    assert provider["cudnn_conv_algo_search"] == "EXHAUSTIVE" and provider["device_name"] and provider["device_driver"]
    # One input copy per model and batch size, made before the timed runs.
    assert devices == ["cuda"] * 4
    assert [p["batch_size"] for p in report["fp16"]["latency"]] == [1, 64]


def test_placement_names_what_fell_back(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    converted = tmp_path / "mlp.fp16.onnx"
    convert(_mlp(tmp_path), ConvertOptions(output=converted))
    placement = _evaluate(capfd, converted, tmp_path)["fp16"]["placement"]
    counts = dict(placement["counts"])
    assert counts.get(CUDA, 0) >= 3
    assert sum(counts.values()) - counts[CUDA] == len(placement["fallbacks"])


def test_strict_provider_refuses_a_cpu_fallback(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """Unique has no CUDA kernel in ONNX Runtime: it runs on the CPU, unless placement is strict."""
    unique = helper.make_node("Unique", ["flat"], ["values"], name="unique")
    model = _mlp(tmp_path, [unique], [helper.make_tensor_value_info("values", TensorProto.FLOAT, None)])
    provider = core.resolve_provider("cuda")
    placement = core.node_placement(model, provider, {"input": np.zeros((1, 1, 28, 28), np.float32)})
    assert [n.op_type for n in placement.fallbacks if n.op_type == "Unique"] == ["Unique"]
    with pytest.raises(core.ProviderError, match="strict placement"):
        core.create_session(model, provider, strict=True)


def test_bf16_is_validated_on_cuda(tmp_path: Path) -> None:
    result = convert(_mlp(tmp_path), ConvertOptions(output=tmp_path / "mlp.bf16.onnx", target="bf16"))
    assert result.validation.status == "passed", result.validation
    assert result.validation.ort_provider == CUDA
