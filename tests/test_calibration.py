"""Calibration: fp32 decisions measured on the training split, within an accuracy budget.

The models are trained here on MNIST and then edited so that fp16 breaks them in a known
place: a hidden layer rescaled past 65504 (overflow), the same rescaling into the
thousands (headroom, nothing to keep), a shift by a large constant that a later node
cancels (precision), and logits offset so far that fp16 cannot rank them (no fp16 at all).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper

import trained_models
from halfconv import AccuracyGateError, ConvertOptions, cli, load_dataset
from halfconv.calibration import CalibrationOptions, calibrated_convert
from halfconv.calibration import _runner as runner_module
from halfconv.calibration._search_model import build_search_model
from halfconv.conversion import TARGET_TYPES, rounding_slots
from halfconv.numerics import emulated_copy
from helpers import run_ort

OVERFLOW = np.float32(2.0**15)  # hidden activations of about 7 reach 2e5
HEADROOM = np.float32(300.0)  # the same activations reach about 2,000: far inside fp16


@pytest.fixture(scope="module")
def mlp_weights(data_dir: Path) -> tuple[np.ndarray, ...]:
    return trained_models.train_mlp(data_dir)


@pytest.fixture(scope="module")
def linear_weights(data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    train = load_dataset("mnist", "train", data_dir=data_dir, download=False)
    return trained_models.train_softmax_regression(train.images, train.labels, epochs=1)


def _scaled_mlp(weights: tuple[np.ndarray, ...], scale: np.float32, path: Path) -> Path:
    w1, b1, w2, b2 = weights
    onnx.save(trained_models.mlp_model(w1 * scale, b1 * scale, w2 / scale, b2), str(path))
    return path


def _linear_graph(nodes: list[onnx.NodeProto], initializers: dict[str, np.ndarray], path: Path) -> Path:
    graph = helper.make_graph(
        nodes,
        "linear",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 784])],
        [helper.make_tensor_value_info("L", TensorProto.FLOAT, ["N", 10])],
        [numpy_helper.from_array(np.asarray(a, np.float32), n) for n, a in initializers.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


def _cancelling(weights: tuple[np.ndarray, np.ndarray], path: Path) -> Path:
    """Logits shifted by 1500 and back: stored in fp16, the shifted values keep a resolution of 1."""
    w, b = weights
    nodes = [
        helper.make_node("Gemm", ["X", "W", "b"], ["Z"], name="fc"),
        helper.make_node("Add", ["Z", "C"], ["S"], name="shift"),
        helper.make_node("Sub", ["S", "C"], ["L"], name="unshift"),
    ]
    return _linear_graph(nodes, {"W": w, "b": b, "C": np.float32(1500.0)}, path)


def _offset(weights: tuple[np.ndarray, np.ndarray], path: Path) -> Path:
    """One Gemm whose logits sit near 3000, where fp16's resolution is 2: it cannot be fp16 at all."""
    w, b = weights
    return _linear_graph([helper.make_node("Gemm", ["X", "W", "b"], ["L"], name="fc")], {"W": w, "b": b + 3000}, path)


def _calibrate(path: Path, data_dir: Path, **options: object) -> object:
    return calibrated_convert(
        path,
        ConvertOptions(output=path.with_name(path.stem + ".fp16.onnx"), force=True),
        CalibrationOptions("mnist", data_dir=data_dir, **options),  # type: ignore[arg-type]
    )


def _numerics_top1(path: Path, x: np.ndarray, labels: np.ndarray) -> float:
    with emulated_copy(path) as emulated:
        assert emulated is not None
        logits = run_ort(emulated.path, {"X": x})
    values = next(iter(logits.values()))
    return float((values.argmax(axis=1) == labels).mean())


def _test_inputs(data_dir: Path, count: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    test = load_dataset("mnist", "test", data_dir=data_dir, download=False)
    return test.images[:count].reshape(count, -1).astype(np.float32) / 255, test.labels[:count]


# -- ranges -------------------------------------------------------------------------------------


def test_overflowing_layers_stay_float32_with_their_figures(tmp_path: Path, data_dir: Path, mlp_weights: tuple[np.ndarray, ...]) -> None:
    path = _scaled_mlp(mlp_weights, OVERFLOW, tmp_path / "overflow.onnx")
    result = _calibrate(path, data_dir)
    report = result.calibration  # type: ignore[attr-defined]
    kept = {d.name: d for d in report.decisions}
    # fc1's output H passes fp16's range, relu1 reads it, fc2 reads relu1's output R.
    assert sorted(kept) == ["fc1", "fc2", "relu1"]
    assert {d.source for d in report.decisions} == {"activations"}
    assert kept["fc1"].reason.startswith("output 'H' absmax ")
    assert kept["relu1"].reason.startswith("input 'H' absmax ")
    assert kept["fc2"].reason.startswith("input 'R' absmax ")
    assert "on 100% of 512 calibration images" in kept["fc1"].reason
    absmax = float(kept["fc1"].reason.split("absmax ")[1].split(",")[0])
    assert absmax > 65504
    # The range check alone met the budget: the float32 trial and the candidate.
    assert [t.stage for t in report.trials] == ["float32", "candidate"]
    # The written model keeps them, and its fp16 numbers keep fp32's accuracy on the test split.
    x, labels = _test_inputs(data_dir)
    converted = Path(result.conversion.output_path)  # type: ignore[attr-defined]
    fp32 = float((run_ort(path, {"X": x})["P"].argmax(axis=1) == labels).mean())
    assert _numerics_top1(converted, x, labels) == pytest.approx(fp32, abs=0.001)
    kept_nodes = {k.name: k.source for k in result.conversion.stats.kept_nodes}  # type: ignore[attr-defined]
    assert {kept_nodes[n] for n in ("fc1", "relu1", "fc2")} == {"activations"}


def test_activations_in_the_thousands_keep_every_node_fp16(tmp_path: Path, data_dir: Path, mlp_weights: tuple[np.ndarray, ...]) -> None:
    path = _scaled_mlp(mlp_weights, HEADROOM, tmp_path / "headroom.onnx")
    result = _calibrate(path, data_dir)
    w1, b1, _, _ = mlp_weights
    x, _ = _test_inputs(data_dir, 512)
    assert 1000 < np.abs(x @ (w1 * HEADROOM) + b1 * HEADROOM).max() < 32752
    assert result.calibration.decisions == ()  # type: ignore[attr-defined]
    assert result.conversion.stats.converted_weight_share == 1.0  # type: ignore[attr-defined]
    assert len(result.calibration.trials) == 2  # type: ignore[attr-defined]


# -- the accuracy budget -------------------------------------------------------------------------


def test_the_budget_search_keeps_the_cancelling_pair(tmp_path: Path, data_dir: Path, linear_weights: tuple[np.ndarray, np.ndarray]) -> None:
    path = _cancelling(linear_weights, tmp_path / "cancel.onnx")
    result = _calibrate(path, data_dir)
    report = result.calibration  # type: ignore[attr-defined]
    candidate = report.trials[1]
    assert candidate.stage == "candidate" and not candidate.within_budget
    # The Sub that cancels introduces the error; the Add that stores the shifted value moves with it.
    assert report.ranking[0].name == "unshift"
    assert sorted(d.name for d in report.decisions) == ["shift", "unshift"]
    assert {d.source for d in report.decisions} == {"accuracy"}
    assert report.drop_pp <= 0.1
    n, k = report.switchable_nodes, len(report.decisions)
    assert len(report.trials) <= 2 + k * math.ceil(math.log2(n))
    # The Gemm, which holds every weight, stays fp16.
    assert result.conversion.stats.converted_weight_share > 0.99  # type: ignore[attr-defined]
    # The chosen trial's accuracy is the written model's, through its own numerics model.
    data = load_dataset("mnist", "train", data_dir=data_dir, download=False)
    order = np.random.default_rng(0).permutation(len(data.labels))[512 : 512 + 2000]
    x = data.images[order].reshape(len(order), -1).astype(np.float32) / 255
    assert _numerics_top1(Path(result.conversion.output_path), x, data.labels[order]) == report.accuracy  # type: ignore[attr-defined]


def test_a_budget_no_fp16_node_can_meet_is_one_error(
    tmp_path: Path, data_dir: Path, linear_weights: tuple[np.ndarray, np.ndarray], capfd: pytest.CaptureFixture[str]
) -> None:
    path = _offset(linear_weights, tmp_path / "offset.onnx")
    with pytest.raises(AccuracyGateError, match=r"no node of offset.onnx can be fp16 within the accuracy budget of 0.1 pp"):
        _calibrate(path, data_dir)
    code = cli.main(["convert", str(path), "--calibration", "mnist", "--data-dir", str(data_dir)])
    captured = capfd.readouterr()
    assert code == 14 and captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("Error: no node of offset.onnx can be fp16")
    assert not (tmp_path / "offset.fp16.onnx").exists()
    # A budget wide enough lets it through.
    assert cli.main(["convert", str(path), "--calibration", "mnist", "--data-dir", str(data_dir), "--accuracy-budget", "50"]) == 0


# -- the search model ------------------------------------------------------------------------------


def _search_logits(path: Path, kept: set[str], x: np.ndarray) -> np.ndarray:
    """The search model's output with the named nodes switched to float32."""
    import onnxruntime as ort

    model = ir.load(path)
    search, _ = build_search_model(model, rounding_slots(model, ConvertOptions()), TARGET_TYPES["fp16"])
    switches = np.array([s.name not in kept for s in search.switches])
    saved = path.with_name("search.onnx")
    ir.save(model, saved)
    session = ort.InferenceSession(str(saved), providers=["CPUExecutionProvider"])
    return session.run([search.outputs[0]], {"X": x, search.mask_name: switches})[0]


@pytest.mark.parametrize("kept", [set(), {"fc1"}, {"relu1"}, {"fc1", "relu1", "fc2"}, {"fc2", "softmax"}])
def test_a_trial_computes_the_numerics_model_of_that_conversion(
    tmp_path: Path, data_dir: Path, mlp_weights: tuple[np.ndarray, ...], kept: set[str]
) -> None:
    path = _scaled_mlp(mlp_weights, np.float32(2.0**13), tmp_path / "mlp.onnx")
    x, _ = _test_inputs(data_dir, 256)
    keep = [a for name in sorted(kept) for a in ("--keep-node", name)]
    out = tmp_path / "out.onnx"
    assert cli.main(["convert", str(path), "-o", str(out), "--no-validate", *keep]) == 0
    with emulated_copy(out) as emulated:
        assert emulated is not None
        expected = run_ort(emulated.path, {"X": x})["P"]
    np.testing.assert_array_equal(_search_logits(path, kept, x), expected)


def test_no_switch_on_is_the_float32_model(tmp_path: Path, data_dir: Path, mlp_weights: tuple[np.ndarray, ...]) -> None:
    path = _scaled_mlp(mlp_weights, OVERFLOW, tmp_path / "mlp.onnx")
    x, _ = _test_inputs(data_dir, 256)
    np.testing.assert_array_equal(_search_logits(path, {"fc1", "relu1", "fc2", "softmax"}, x), run_ort(path, {"X": x})["P"])


def test_statistics_do_not_depend_on_the_batch(
    tmp_path: Path, data_dir: Path, mlp_weights: tuple[np.ndarray, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _scaled_mlp(mlp_weights, OVERFLOW, tmp_path / "mlp.onnx")
    default = _calibrate(path, data_dir, size=64).calibration  # type: ignore[attr-defined]
    monkeypatch.setattr(runner_module, "EXPOSED_BYTES", 1)  # one image per batch
    small = _calibrate(path, data_dir, size=64).calibration  # type: ignore[attr-defined]
    assert small.decisions == default.decisions
    assert small.model_runs > default.model_runs + 60


# -- data ------------------------------------------------------------------------------------


def test_calibration_reads_the_training_split_only(tmp_path: Path, data_dir: Path, mlp_weights: tuple[np.ndarray, ...]) -> None:
    path = _scaled_mlp(mlp_weights, HEADROOM, tmp_path / "mlp.onnx")
    data = _calibrate(path, data_dir).calibration.provenance  # type: ignore[attr-defined]
    assert (data.dataset, data.split, data.available) == ("mnist", "train", 60000)
    assert (data.calibration_images, data.validation_images, data.overlap) == (512, 2000, False)
    assert sorted(Path(f.path).name for f in data.files) == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]


def test_an_npz_smaller_than_the_calibration_size_calibrates_and_validates_on_all_of_it(
    tmp_path: Path, data_dir: Path, mlp_weights: tuple[np.ndarray, ...]
) -> None:
    path = _scaled_mlp(mlp_weights, OVERFLOW, tmp_path / "mlp.onnx")
    train = load_dataset("mnist", "train", data_dir=data_dir, download=False)
    npz = tmp_path / "held_out.npz"
    np.savez(npz, x=train.images[-300:], y=train.labels[-300:])
    result = calibrated_convert(path, ConvertOptions(output=tmp_path / "o.onnx"), CalibrationOptions(str(npz)))
    data = result.calibration.provenance
    assert (data.split, data.calibration_images, data.validation_images, data.overlap) == ("file", 300, 300, True)
    assert sorted(d.name for d in result.calibration.decisions) == ["fc1", "fc2", "relu1"]


# -- the command line ------------------------------------------------------------------------


def test_convert_prints_and_records_the_calibration(
    tmp_path: Path, data_dir: Path, mlp_weights: tuple[np.ndarray, ...], capfd: pytest.CaptureFixture[str]
) -> None:
    path = _scaled_mlp(mlp_weights, OVERFLOW, tmp_path / "mlp.onnx")
    assert cli.main(["convert", str(path), "--calibration", "mnist", "--data-dir", str(data_dir), "--explain"]) == 0
    out = capfd.readouterr().out
    assert "calibration    mnist train split: 512 images measured, 2,000 validate (seed 0); 2 sessions," in out
    assert "measured       3 of 4 convertible nodes kept float32: 3 by activation range (limit 32,752), 0 by the accuracy search" in out
    assert "trials on the validation images:" in out and " 2. candidate " in out
    assert cli.main(["convert", str(path), "--calibration", "mnist", "--data-dir", str(data_dir), "--json", "--force"]) == 0
    summary = json.loads(capfd.readouterr().out)
    calibration = summary["calibration"]
    assert calibration["data"]["split"] == "train" and calibration["evaluations"] == 2
    assert [d["name"] for d in calibration["decisions"]] == ["fc1", "relu1", "fc2"]
    assert calibration["sessions"] == 2  # the trials' and the instrumented one
    # The converted model carries the record, for the report.
    metadata = {p.key: p.value for p in onnx.load(str(tmp_path / "mlp.fp16.onnx")).metadata_props}
    assert json.loads(metadata["halfconv.calibration"])["decisions"] == calibration["decisions"]
    conversion = json.loads(metadata["halfconv.conversion"])
    assert [k["node"] for k in conversion["measured_kept"]] == ["fc1", "relu1", "fc2"]


def test_convert_without_data_says_ranges_were_not_measured(
    tmp_path: Path, mlp_weights: tuple[np.ndarray, ...], capfd: pytest.CaptureFixture[str]
) -> None:
    path = _scaled_mlp(mlp_weights, HEADROOM, tmp_path / "mlp.onnx")
    assert cli.main(["convert", str(path)]) == 0
    assert "calibration    not measured: activation ranges and accuracy were not checked on data" in capfd.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--accuracy-budget", "0.5"], "--accuracy-budget needs calibration data"),
        (["--calibration-size", "10"], "--calibration-size needs calibration data"),
        (["--calibration", "mnist", "--engine", "onnxconverter-common"], "--calibration applies to the halfconv engine only"),
        (["--calibration", "imagenet"], "unknown calibration data 'imagenet'"),
        (["--calibration", "mnist", "--calibration-size", "0"], "--calibration-size must be from 1 to 1,000,000 images"),
    ],
)
def test_bad_calibration_options_are_usage_errors(
    tmp_path: Path, mlp_weights: tuple[np.ndarray, ...], capfd: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    path = _scaled_mlp(mlp_weights, HEADROOM, tmp_path / "mlp.onnx")
    assert cli.main(["convert", str(path), *extra]) == 2
    err = capfd.readouterr().err
    assert err.startswith(f"Error: {message}") and err.count("\n") == 1
    assert not (tmp_path / "mlp.fp16.onnx").exists()


def test_a_calibration_file_that_is_missing_is_a_dataset_error(
    tmp_path: Path, mlp_weights: tuple[np.ndarray, ...], capfd: pytest.CaptureFixture[str]
) -> None:
    path = _scaled_mlp(mlp_weights, HEADROOM, tmp_path / "mlp.onnx")
    assert cli.main(["convert", str(path), "--calibration", str(tmp_path / "none.npz")]) == 9
    assert "not found" in capfd.readouterr().err
    assert not (tmp_path / "mlp.fp16.onnx").exists()


# -- no fp32 for nothing ---------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["mnist_mlp_torch", "mnist_mlp_keras"])
def test_reference_models_keep_their_whole_fp16_share(tmp_path: Path, data_dir: Path, name: str) -> None:
    """The Keras model ends in a softmax whose tiny probabilities are most of its elements but none of its mass."""
    result = calibrated_convert(
        REPO / "models" / name / "model.onnx",
        ConvertOptions(output=tmp_path / "model.fp16.onnx"),
        CalibrationOptions("mnist", data_dir=data_dir),
    )
    assert result.calibration.decisions == ()
    assert result.conversion.stats.converted_weight_share == 1.0
    assert [t.stage for t in result.calibration.trials] == ["float32", "candidate"]


def test_activations_below_the_normal_range_stay_float32(tmp_path: Path, data_dir: Path, mlp_weights: tuple[np.ndarray, ...]) -> None:
    """A first layer scaled by 2**-20: its activations, about 7e-6, are fp16 subnormals."""
    w1, b1, w2, b2 = mlp_weights
    scale = np.float32(2.0**-20)
    path = tmp_path / "tiny.onnx"
    onnx.save(trained_models.mlp_model(w1 * scale, b1 * scale, w2 / scale, b2), str(path))
    result = calibrated_convert(path, ConvertOptions(output=tmp_path / "o.onnx", clamp_weights=True), CalibrationOptions("mnist", data_dir=data_dir))
    kept = {d.name: d.reason for d in result.calibration.decisions}
    assert {"fc1", "relu1", "fc2"} <= set(kept)
    assert "of its magnitude in values below float16's normal range (6.1e-05;" in kept["fc1"]


# -- the search model on graphs that need care ------------------------------------------------------


def _value_info(name: str, shape: list[int], dtype: int = TensorProto.FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, dtype, shape)


def _graph_model(nodes: list[onnx.NodeProto], inputs: list[str], outputs: list[str], initializers: dict[str, np.ndarray]) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "g",
        [_value_info(n, [4, 8]) for n in inputs],
        [_value_info(n, [4, 8]) for n in outputs],
        [numpy_helper.from_array(np.asarray(a), n) for n, a in initializers.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)
    onnx.checker.check_model(model, full_check=True)
    return model


def _loop_with_policy_kept_body() -> onnx.ModelProto:
    """A Loop whose carried value comes from a CumSum, which the policy keeps float32: cast to fp16 every iteration."""
    body = helper.make_graph(
        [helper.make_node("CumSum", ["acc", "axis"], ["acc_out"], name="body_cumsum")],
        "body",
        [_value_info("i", [], TensorProto.INT64), _value_info("cond", [], TensorProto.BOOL), _value_info("acc", [4, 8])],
        [_value_info("cond", [], TensorProto.BOOL), _value_info("acc_out", [4, 8])],
        [numpy_helper.from_array(np.array(1, np.int64), "axis")],
    )
    nodes = [helper.make_node("Mul", ["X", "S"], ["X1"], name="pre"), helper.make_node("Loop", ["N", "", "X1"], ["Y"], name="loop", body=body)]
    return _graph_model(nodes, ["X"], ["Y"], {"S": np.float32(1.1), "N": np.int64(3)})


_W = np.random.default_rng(3).standard_normal((8, 8)).astype(np.float32)
_CAREFUL = {
    # A Constant converts only when all its readers do: a float32 reader sees it exact.
    "constant": (
        _graph_model(
            [
                helper.make_node("Constant", [], ["C"], name="const", value=numpy_helper.from_array(np.full((8,), 0.1, np.float32))),
                helper.make_node("Mul", ["X", "C"], ["M"], name="mul"),
                helper.make_node("Relu", ["M"], ["Y"], name="relu"),
            ],
            ["X"], ["Y"], {},
        ),
        [set(), {"mul"}, {"mul", "relu"}],
        [],
    ),
    # The model's own Cast that is a graph output stays float32 under keep-io-types.
    "cast_output": (
        _graph_model(
            [helper.make_node("MatMul", ["X", "W"], ["V"], name="mm"), helper.make_node("Cast", ["V"], ["Y"], name="cast", to=TensorProto.FLOAT)],
            ["X"], ["Y"], {"W": _W},
        ),
        [set(), {"mm"}],
        [],
    ),
    "loop_carried": (_loop_with_policy_kept_body(), [set(), {"pre"}, {"loop"}], []),
    # --clamp-weights writes 65504 where a runtime Cast would give inf.
    "clamped_weight": (
        _graph_model(
            [helper.make_node("MatMul", ["X", "W"], ["V"], name="mm"), helper.make_node("Relu", ["V"], ["Y"], name="relu")],
            ["X"], ["Y"], {"W": np.where(np.arange(64).reshape(8, 8) == 0, np.float32(1e5), _W)},
        ),
        [set(), {"relu"}],
        ["--clamp-weights"],
    ),
}


@pytest.mark.parametrize("case", sorted(_CAREFUL))
def test_the_search_model_matches_the_conversion_where_it_takes_care(tmp_path: Path, case: str) -> None:
    model, kept_sets, extra = _CAREFUL[case]
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    x = np.random.default_rng(5).standard_normal((4, 8)).astype(np.float32)
    options = ConvertOptions(clamp_weights="--clamp-weights" in extra)
    for kept in kept_sets:
        loaded = ir.load(path)
        search, _ = build_search_model(loaded, rounding_slots(loaded, options), TARGET_TYPES["fp16"])
        ir.save(loaded, tmp_path / "search.onnx")
        import onnxruntime as ort

        switches = np.array([s.name not in kept for s in search.switches])
        session = ort.InferenceSession(str(tmp_path / "search.onnx"), providers=["CPUExecutionProvider"])
        got = session.run([search.outputs[0]], {"X": x, search.mask_name: switches})[0]
        out = tmp_path / "out.onnx"
        keep = [a for name in sorted(kept) for a in ("--keep-node", name)]
        code = cli.main(["convert", str(path), "-o", str(out), "--force", "--no-validate", *keep, *extra])
        if code == 8:  # every node kept: the float32 model is the conversion
            expected = run_ort(path, {"X": x})["Y"]
        else:
            assert code == 0
            with emulated_copy(out) as emulated:
                assert emulated is not None
                expected = run_ort(emulated.path, {"X": x})["Y"]
        np.testing.assert_array_equal(got, expected, err_msg=f"{case}, kept {sorted(kept)}")
    # Constants and the model's own Casts round for each reader: they are no switch of their own.
    assert not {s.op_type for s in search.switches} & {"Constant", "Cast"}


# -- refusals ------------------------------------------------------------------------------------


def test_calibration_refuses_float16_io(tmp_path: Path, mlp_weights: tuple[np.ndarray, ...], capfd: pytest.CaptureFixture[str]) -> None:
    path = _scaled_mlp(mlp_weights, HEADROOM, tmp_path / "mlp.onnx")
    assert cli.main(["convert", str(path), "--calibration", "mnist", "--no-keep-io-types"]) == 2
    assert capfd.readouterr().err.startswith("Error: --calibration needs --keep-io-types")


def test_ranges_that_keep_every_node_are_nothing_to_convert(tmp_path: Path, data_dir: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """Weights of 500 fit fp16; summed over an image's ~100 bright pixels they reach 5e4, which does not."""
    weights = {"W": np.full((784, 10), 500.0, np.float32), "b": np.zeros(10, np.float32)}
    path = _linear_graph([helper.make_node("Gemm", ["X", "W", "b"], ["L"], name="fc")], weights, tmp_path / "big.onnx")
    assert cli.main(["convert", str(path), "--calibration", "mnist", "--data-dir", str(data_dir)]) == 8
    err = capfd.readouterr().err
    assert err.startswith("Error: every convertible node of big.onnx stays float32 by its measured activation range (1 nodes; fc: output 'L' absmax ")
    assert err.count("\n") == 1 and not (tmp_path / "big.fp16.onnx").exists()


def test_non_finite_calibration_data_is_refused(
    tmp_path: Path, data_dir: Path, mlp_weights: tuple[np.ndarray, ...], capfd: pytest.CaptureFixture[str]
) -> None:
    path = _scaled_mlp(mlp_weights, HEADROOM, tmp_path / "mlp.onnx")
    npz = tmp_path / "nan.npz"
    np.savez(npz, x=np.full((50, 28, 28), np.nan, np.float32), y=np.zeros(50, np.int64))
    assert cli.main(["convert", str(path), "--calibration", str(npz)]) == 9
    assert capfd.readouterr().err.startswith(f"Error: {npz}: x holds NaN or infinite values")
    assert cli.main(["convert", str(path), "--calibration", "mnist", "--data-dir", str(data_dir), "--std", "nan"]) == 2
    assert capfd.readouterr().err.startswith("Error: --mean and --std must be finite numbers")
    assert cli.main(["convert", str(path), "--mean", "0.1"]) == 2
    assert capfd.readouterr().err.startswith("Error: --mean describes calibration data, and none was given")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlp.onnx", "nan.npz"]


def test_a_model_with_nothing_to_convert_has_nothing_to_calibrate(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    graph = helper.make_graph(
        [helper.make_node("Slice", ["X", "starts", "ends", "axes"], ["Y"], name="slice")],
        "u8",
        [helper.make_tensor_value_info("X", TensorProto.UINT8, ["N", 784])],
        [helper.make_tensor_value_info("Y", TensorProto.UINT8, ["N", 10])],
        [numpy_helper.from_array(np.array(v, np.int64), n) for n, v in (("starts", [0]), ("ends", [10]), ("axes", [1]))],
    )
    path = tmp_path / "u8.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10), str(path))
    assert cli.main(["convert", str(path), "--calibration", "mnist"]) == 8
    assert capfd.readouterr().err.count("\n") == 1
