"""``halfconv export`` of Keras and TensorFlow models, through ``halfconv.exporters._keras``.

Each model is a tiny Keras 3 network built and fitted for one epoch inside the test, then
saved in every format the back end reads (.keras, .h5, a SavedModel folder). The checks
run the exported ONNX model on ONNX Runtime at two batch sizes and compare it with Keras'
own ``predict``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from environment import require_module
from halfconv.core import PREPROCESS_KEY, ExportError, UsageError
from halfconv.exporters import ExportOptions, export

# The back end imports TensorFlow, Keras and tf2onnx, as the CLI does: Keras then uses the
# TensorFlow backend whatever the environment says, and TensorFlow starts quietly.
require_module("halfconv.exporters._keras")
tf = require_module("tensorflow")
require_module("tf2onnx")
keras = require_module("keras")

pytestmark = [
    pytest.mark.keras,
    # Keras' own predict/fit convert tensors with np.array(x), which numpy 2 warns about.
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"),
]

REPO = Path(__file__).resolve().parents[1]
# The exported model must reproduce Keras' outputs to this absolute tolerance (softmax
# outputs lie in [0, 1]; float32 exporters agree to about 1e-6).
TOLERANCE = 1e-4
TRAIN_SAMPLES = 256
MNIST_CLASSES = tuple(str(digit) for digit in range(10))
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _images(name: str, data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """Scaled float32 test images (batch, H, W[, C]) and their labels."""
    from halfconv.datasets import load_dataset

    data = load_dataset(name, "test", data_dir=data_dir, download=False)
    return data.images.astype(np.float32) / np.float32(255.0), data.labels


def _fit(model: keras.Model, images: np.ndarray, labels: np.ndarray) -> keras.Model:
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    # Images after the first 64, which the export validates on.
    model.fit(images[64 : 64 + TRAIN_SAMPLES], labels[64 : 64 + TRAIN_SAMPLES], epochs=1, batch_size=64, verbose=0)
    return model


@pytest.fixture(scope="module")
def mnist_mlp(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[keras.Model, dict[str, Path]]:
    """Input(28, 28) -> Flatten -> Dense(16, relu) -> Dense(10, softmax), saved three ways."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((28, 28)),
            keras.layers.Flatten(),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    images, labels = _images("mnist", data_dir)
    _fit(model, images, labels)
    folder = tmp_path_factory.mktemp("mnist_mlp")
    paths = {"keras": folder / "mlp.keras", "h5": folder / "mlp.h5", "saved_model": folder / "mlp_saved_model"}
    model.save(paths["keras"])
    model.save(paths["h5"])
    model.export(str(paths["saved_model"]), verbose=False)
    return model, paths


@pytest.fixture(scope="module")
def cifar_cnn(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[keras.Model, dict[str, Path]]:
    """A tiny Conv2D net on (32, 32, 3), saved as .keras and with tf.saved_model.save."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    images, labels = _images("cifar10", data_dir)
    _fit(model, images, labels)
    folder = tmp_path_factory.mktemp("cifar_cnn")
    paths = {"keras": folder / "cnn.keras", "tf_saved_model": folder / "cnn_tf_saved_model"}
    model.save(paths["keras"])

    class Serving(tf.Module):
        def __init__(self, wrapped: keras.Model) -> None:
            super().__init__()
            self.wrapped = wrapped

        @tf.function(input_signature=[tf.TensorSpec((None, 32, 32, 3), tf.float32)])
        def __call__(self, x: tf.Tensor) -> tf.Tensor:
            return self.wrapped(x, training=False)

    tf.saved_model.save(Serving(model), str(paths["tf_saved_model"]))
    return model, paths


def _files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _check_onnx_interface(path: Path, sample_shape: tuple[int, ...]) -> None:
    """One float input and one float output, both with a symbolic batch axis."""
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert len(proto.graph.input) == 1
    assert len(proto.graph.output) == 1
    (graph_input,), (graph_output,) = proto.graph.input, proto.graph.output
    input_dims = graph_input.type.tensor_type.shape.dim
    output_dims = graph_output.type.tensor_type.shape.dim
    assert graph_input.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert input_dims[0].dim_param and not input_dims[0].HasField("dim_value")
    assert output_dims[0].dim_param and not output_dims[0].HasField("dim_value")
    assert tuple(d.dim_value for d in input_dims[1:]) == sample_shape


def _check_matches_keras(path: Path, model: keras.Model, x: np.ndarray) -> None:
    """ORT at batch 1 and batch len(x) reproduces model.predict within TOLERANCE."""
    session = _session(path)
    name = session.get_inputs()[0].name
    expected = model.predict(x, verbose=0)
    (batched,) = session.run(None, {name: x})
    (single,) = session.run(None, {name: x[:1]})
    assert batched.shape == expected.shape == (len(x), 10)
    np.testing.assert_allclose(batched, expected, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(single, expected[:1], rtol=0, atol=TOLERANCE)


def _preprocess(path: Path) -> dict[str, object]:
    props = {entry.key: entry.value for entry in onnx.load(str(path)).metadata_props}
    return json.loads(props[PREPROCESS_KEY])


# -- exports that succeed -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "description"),
    [("keras", "Keras 3 .keras file"), ("h5", "Keras HDF5 .h5 file"), ("saved_model", "TensorFlow SavedModel")],
)
def test_mnist_mlp_exports_from_every_format(
    fmt: str, description: str, mnist_mlp: tuple[keras.Model, dict[str, Path]], data_dir: Path, tmp_path: Path
) -> None:
    model, paths = mnist_mlp
    output = tmp_path / "m.onnx"

    result = export(paths[fmt], ExportOptions(output=output, dataset="mnist", data_dir=data_dir))

    assert result.framework == "keras"
    assert result.source_format == description
    assert result.output_path == str(output)
    assert result.input_shape == (28, 28)
    assert result.opset == 18
    assert "tf2onnx" in result.exporter and "opset 18" in result.exporter
    assert result.validation_inputs == "mnist test images"
    assert result.validation_samples == 64
    assert result.max_abs_diff <= result.tolerance
    assert result.max_abs_diff <= TOLERANCE
    expected_meta = {
        "scale": 1.0 / 255.0,
        "mean": [0.0],
        "std": [1.0],
        "layout": "hw",
        "dataset": "mnist",
        "class_names": list(MNIST_CLASSES),
    }
    assert result.preprocessing == expected_meta
    assert _preprocess(output) == expected_meta
    assert _files_under(tmp_path) == {"m.onnx"}

    _check_onnx_interface(output, (28, 28))
    images, _ = _images("mnist", data_dir)
    _check_matches_keras(output, model, images[:5])


@pytest.mark.parametrize(("fmt", "description"), [("keras", "Keras 3 .keras file"), ("tf_saved_model", "TensorFlow SavedModel")])
def test_cifar_cnn_exports_with_nhwc_layout(
    fmt: str, description: str, cifar_cnn: tuple[keras.Model, dict[str, Path]], data_dir: Path, tmp_path: Path
) -> None:
    model, paths = cifar_cnn
    output = tmp_path / "cnn.onnx"

    result = export(paths[fmt], ExportOptions(output=output, dataset="cifar10", data_dir=data_dir))

    assert result.source_format == description
    assert result.input_shape == (32, 32, 3)
    assert result.max_abs_diff <= TOLERANCE
    assert result.preprocessing["layout"] == "nhwc"
    assert result.preprocessing["class_names"] == list(CIFAR_CLASSES)
    assert _preprocess(output) == result.preprocessing
    _check_onnx_interface(output, (32, 32, 3))
    images, _ = _images("cifar10", data_dir)
    _check_matches_keras(output, model, images[:5])


def test_export_without_dataset_validates_on_random_inputs(cifar_cnn: tuple[keras.Model, dict[str, Path]], tmp_path: Path) -> None:
    model, paths = cifar_cnn
    output = tmp_path / "cnn.onnx"

    result = export(paths["keras"], ExportOptions(output=output, opset=17))

    assert result.validation_inputs == "random"
    assert result.opset == 17
    assert result.max_abs_diff <= TOLERANCE
    assert result.preprocessing == {"scale": 1.0 / 255.0, "mean": [0.0], "std": [1.0], "layout": "nhwc"}
    assert {op.domain: op.version for op in onnx.load(str(output)).opset_import}[""] == 17
    x = np.random.default_rng(1).random((3, 32, 32, 3), dtype=np.float32)
    _check_matches_keras(output, model, x)


def test_default_output_sits_beside_the_saved_model_folder(mnist_mlp: tuple[keras.Model, dict[str, Path]], tmp_path: Path) -> None:
    _, paths = mnist_mlp
    source = tmp_path / "exported"
    shutil.copytree(paths["saved_model"], source)

    result = export(source, ExportOptions(input_shape=(28, 28)))

    assert result.output_path == str(tmp_path / "exported.onnx")
    assert (tmp_path / "exported.onnx").is_file()


def test_default_output_of_the_current_folder(
    mnist_mlp: tuple[keras.Model, dict[str, Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, paths = mnist_mlp
    source = tmp_path / "exported"
    shutil.copytree(paths["saved_model"], source)
    monkeypatch.chdir(source)

    result = export(Path("."), ExportOptions())

    assert Path(result.output_path) == tmp_path / "exported.onnx"
    assert (tmp_path / "exported.onnx").is_file()


def test_keras_file_with_an_unusual_extension_loads_by_content(
    mnist_mlp: tuple[keras.Model, dict[str, Path]], tmp_path: Path
) -> None:
    _, paths = mnist_mlp
    source = tmp_path / "mlp.model"
    source.write_bytes(paths["h5"].read_bytes())

    result = export(source, ExportOptions(output=tmp_path / "m.onnx", framework="keras"))

    assert result.source_format == "Keras HDF5 .h5 file"
    assert result.max_abs_diff <= TOLERANCE


# -- the command line -----------------------------------------------------------------------


def test_cli_export(
    mnist_mlp: tuple[keras.Model, dict[str, Path]], data_dir: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from halfconv import cli

    _, paths = mnist_mlp
    output = tmp_path / "cli.onnx"
    monkeypatch.setenv("HALFCONV_DATA_DIR", str(data_dir))

    code = cli.main(["export", str(paths["keras"]), "-o", str(output), "--dataset", "mnist"])

    captured = capfd.readouterr()
    assert code == 0, captured.err
    assert captured.err == ""
    assert output.is_file()
    assert _preprocess(output)["dataset"] == "mnist"


# -- what the back end leaves behind: nothing printed, nothing changed for good ------------


# What a process's user may have chosen, which the Keras back end must leave as it was.
USER_LOG_LEVELS = {"tensorflow": logging.INFO, "tf2onnx": logging.DEBUG, "absl": logging.WARNING}
BACK_END_VARIABLES = ("TF_CPP_MIN_LOG_LEVEL", "KERAS_BACKEND")

# Sets USER_LOG_LEVELS, exports every model in argv[3:] into exports/ beside it, and writes
# what the process looks like before halfconv is imported and after the exports to argv[1].
STATE_SCRIPT = """
import json, logging, os, sys
from pathlib import Path

LEVELS, VARIABLES = json.loads(sys.argv[2])

def state():
    return {
        "environment": {name: os.environ.get(name) for name in VARIABLES},
        "log_levels": {name: logging.getLogger(name).level for name in LEVELS},
    }

for name, level in LEVELS.items():
    logging.getLogger(name).setLevel(level)
before = state()
from halfconv.exporters import ExportOptions, export
for source in sys.argv[3:]:
    export(Path(source), ExportOptions(output=Path(source).parent / "exports" / (Path(source).name + ".onnx")))
import tensorflow as tf
after = state()
after["visible_devices"] = [device.name for device in tf.config.get_visible_devices()]
after["physical_devices"] = [device.name for device in tf.config.list_physical_devices()]
Path(sys.argv[1]).write_text(json.dumps({"before": before, "after": after}))
"""


@pytest.fixture
def user_log_levels() -> Iterator[dict[str, int]]:
    """The loggers set to USER_LOG_LEVELS for the test, and reset after it."""
    loggers = {name: logging.getLogger(name) for name in USER_LOG_LEVELS}
    saved = {name: logger.level for name, logger in loggers.items()}
    for name, logger in loggers.items():
        logger.setLevel(USER_LOG_LEVELS[name])
    yield USER_LOG_LEVELS
    for name, logger in loggers.items():
        logger.setLevel(saved[name])


def _export_in_a_fresh_process(
    mnist_mlp: tuple[keras.Model, dict[str, Path]], tmp_path: Path, user_environment: dict[str, str]
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """Run STATE_SCRIPT on the model in all three formats; returns the process and the state it wrote."""
    _, paths = mnist_mlp
    sources = tmp_path / "sources"
    sources.mkdir()
    shutil.copy(paths["keras"], sources / "mlp.keras")
    shutil.copy(paths["h5"], sources / "mlp.h5")
    shutil.copytree(paths["saved_model"], sources / "mlp_saved_model")
    (sources / "exports").mkdir()
    env = {k: v for k, v in os.environ.items() if k not in BACK_END_VARIABLES} | user_environment
    report = tmp_path / "state.json"
    arguments = json.dumps([USER_LOG_LEVELS, BACK_END_VARIABLES])
    completed = subprocess.run(
        [sys.executable, "-c", STATE_SCRIPT, str(report), arguments, *(str(sources / name) for name in ("mlp.keras", "mlp.h5", "mlp_saved_model"))],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=180,
    )
    assert completed.returncode == 0, completed.stderr
    assert sorted(p.name for p in (sources / "exports").iterdir()) == ["mlp.h5.onnx", "mlp.keras.onnx", "mlp_saved_model.onnx"]
    return completed, json.loads(report.read_text())


def test_loading_tensorflow_prints_nothing(mnist_mlp: tuple[keras.Model, dict[str, Path]], tmp_path: Path) -> None:
    """A fresh process that exports writes nothing to stdout or stderr: no oneDNN, CUDA or absl notices."""
    completed, _ = _export_in_a_fresh_process(mnist_mlp, tmp_path, {})
    assert completed.stderr == ""
    assert completed.stdout == ""


@pytest.mark.parametrize(
    "user_environment",
    [{}, {"TF_CPP_MIN_LOG_LEVEL": "1", "KERAS_BACKEND": "jax"}],
    ids=["variables-unset", "variables-set"],
)
def test_the_back_end_leaves_the_process_as_it_found_it(
    user_environment: dict[str, str], mnist_mlp: tuple[keras.Model, dict[str, Path]], tmp_path: Path
) -> None:
    """A fresh process that imports the back end and exports keeps its variables, log levels and GPUs."""
    _, state = _export_in_a_fresh_process(mnist_mlp, tmp_path, user_environment)
    expected_environment = {name: user_environment.get(name) for name in BACK_END_VARIABLES}
    assert state["before"] == {"environment": expected_environment, "log_levels": USER_LOG_LEVELS}
    assert state["after"]["environment"] == expected_environment
    assert state["after"]["log_levels"] == USER_LOG_LEVELS
    # No device is hidden from the rest of the process (the export runs on the CPU without it).
    assert state["after"]["visible_devices"] == state["after"]["physical_devices"]


def test_exports_restore_the_log_levels(
    mnist_mlp: tuple[keras.Model, dict[str, Path]], tmp_path: Path, user_log_levels: dict[str, int]
) -> None:
    """Loading and exporting lower TensorFlow's, tf2onnx's and absl's log levels only while they run."""
    _, paths = mnist_mlp

    for fmt in ("keras", "h5", "saved_model"):
        export(paths[fmt], ExportOptions(output=tmp_path / f"{fmt}.onnx"))

    assert {name: logging.getLogger(name).level for name in user_log_levels} == user_log_levels
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h5.onnx", "keras.onnx", "saved_model.onnx"]


# -- bad input ------------------------------------------------------------------------------


def _assert_one_line_export_error(error: pytest.ExceptionInfo[ExportError], *fragments: str) -> None:
    assert error.value.exit_code == 11
    message = str(error.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_corrupt_keras_file_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "broken.keras"
    source.write_bytes(np.random.default_rng(0).bytes(4096))

    with pytest.raises(ExportError) as error:
        export(source, ExportOptions(output=tmp_path / "m.onnx", input_shape=(28, 28)))

    _assert_one_line_export_error(error, f"cannot load Keras model {source}", "not a zip archive")
    assert _files_under(tmp_path) == {"broken.keras"}


def test_truncated_keras_archive_is_refused(mnist_mlp: tuple[keras.Model, dict[str, Path]], tmp_path: Path) -> None:
    _, paths = mnist_mlp
    source = tmp_path / "truncated.keras"
    data = paths["keras"].read_bytes()
    source.write_bytes(data[: len(data) // 2])

    with pytest.raises(ExportError) as error:
        export(source, ExportOptions(output=tmp_path / "m.onnx"))

    _assert_one_line_export_error(error, "truncated.keras")
    assert _files_under(tmp_path) == {"truncated.keras"}


def test_h5_file_that_is_not_a_model_is_refused(tmp_path: Path) -> None:
    import h5py

    source = tmp_path / "data.h5"
    with h5py.File(source, "w") as handle:
        handle.create_dataset("x", data=np.zeros((4, 4), np.float32))

    with pytest.raises(ExportError) as error:
        export(source, ExportOptions(output=tmp_path / "m.onnx"))

    _assert_one_line_export_error(error, f"cannot load Keras model {source}")
    assert _files_under(tmp_path) == {"data.h5"}


def test_input_shape_that_contradicts_the_model_is_refused(mnist_mlp: tuple[keras.Model, dict[str, Path]], tmp_path: Path) -> None:
    _, paths = mnist_mlp
    before = _files_under(paths["keras"].parent)

    with pytest.raises(ExportError) as error:
        export(paths["keras"], ExportOptions(output=tmp_path / "m.onnx", input_shape=(1, 28, 28)))

    _assert_one_line_export_error(error, "--input-shape 1,28,28 contradicts the model's input shape 28,28")
    assert _files_under(tmp_path) == set()
    assert _files_under(paths["keras"].parent) == before


def test_opset_beyond_tf2onnx_is_a_usage_error(mnist_mlp: tuple[keras.Model, dict[str, Path]], tmp_path: Path) -> None:
    _, paths = mnist_mlp

    with pytest.raises(UsageError) as error:
        export(paths["keras"], ExportOptions(output=tmp_path / "m.onnx", opset=21))

    assert "use --opset 18 or lower" in str(error.value)
    assert _files_under(tmp_path) == set()


def test_two_input_model_is_refused(tmp_path: Path) -> None:
    left, right = keras.Input((4,)), keras.Input((4,))
    model = keras.Model([left, right], keras.layers.Dense(2)(keras.layers.Concatenate()([left, right])))
    source = tmp_path / "two.keras"
    model.save(source)

    with pytest.raises(ExportError) as error:
        export(source, ExportOptions(output=tmp_path / "m.onnx"))

    _assert_one_line_export_error(error, "2 inputs")
    assert _files_under(tmp_path) == {"two.keras"}


# Built-in activations that a Dense layer cannot take by name alone: glu halves its axis
# (the layer's declared output shape would be wrong), threshold needs its two arguments.
_NOT_BY_NAME = {"glu", "threshold", "get", "serialize", "deserialize"}


def test_every_built_in_activation_exports(tmp_path: Path) -> None:
    """One model, one branch per Keras activation; each branch must match Keras on its own."""
    names = sorted(n for n in dir(keras.activations) if not n.startswith("_") and n not in _NOT_BY_NAME)
    assert {"gelu", "celu", "silu", "mish", "hard_swish", "elu", "leaky_relu", "softplus"} <= set(names)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16,))
    hidden = keras.layers.Dense(4)(inputs)
    outputs = keras.layers.Concatenate()([keras.layers.Activation(name)(hidden) for name in names])
    model = keras.Model(inputs, outputs)
    path = tmp_path / "activations.keras"
    model.save(path)

    result = export(path, ExportOptions(output=tmp_path / "a.onnx"))
    assert result.max_abs_diff <= TOLERANCE
    x = np.random.default_rng(3).normal(0.0, 3.0, (32, 16)).astype(np.float32)
    session = _session(tmp_path / "a.onnx")
    (got,) = session.run(None, {session.get_inputs()[0].name: x})
    expected = np.asarray(model.predict(x, verbose=0))
    wrong = [
        name
        for i, name in enumerate(names)
        if not np.allclose(got[:, 4 * i : 4 * i + 4], expected[:, 4 * i : 4 * i + 4], rtol=1e-4, atol=TOLERANCE)
    ]
    assert wrong == []


# -- a model trained under mixed precision -----------------------------------------------------------


@pytest.fixture(scope="module")
def mixed_cnn(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small CNN fitted under the mixed_float16 policy, its softmax in float32 as Keras recommends."""
    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = keras.Sequential(
            [
                keras.Input((28, 28, 1)),
                keras.layers.Conv2D(8, 3, activation="relu"),
                keras.layers.MaxPooling2D(2),
                keras.layers.Conv2D(16, 3, activation="relu"),
                keras.layers.Flatten(),
                keras.layers.Dense(32, activation="relu"),
                keras.layers.Dense(10),
                keras.layers.Activation("softmax", dtype="float32"),
            ]
        )
        images, labels = _images("mnist", data_dir)
        # compile() wraps the optimizer in a LossScaleOptimizer under this policy.
        _fit(model, images[..., None], labels)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    folder = tmp_path_factory.mktemp("mixed_cnn")
    paths = {"keras": folder / "mixed.keras", "saved_model": folder / "mixed_saved_model"}
    model.save(paths["keras"])
    model.export(str(paths["saved_model"]), verbose=False)
    return paths


def _weight_types(path: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for tensor in onnx.load(str(path)).graph.initializer:
        name = onnx.TensorProto.DataType.Name(tensor.data_type)
        counts[name] = counts.get(name, 0) + int(np.prod(tensor.dims))
    return counts


def test_mixed_precision_model_exports_with_its_baseline(
    mixed_cnn: dict[str, Path], data_dir: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """The check fits the precision the model computes in, and --fp32-baseline writes its float32 rebuild."""
    output = tmp_path / "mixed.onnx"
    handlers = list(logging.getLogger().handlers)
    result = export(mixed_cnn["keras"], ExportOptions(output=output, dataset="mnist", data_dir=data_dir, fp32_baseline=True))
    # tf2onnx's Gemm rewriter warns on float16 through logging.warning(): nothing shows, nothing stays installed.
    assert capfd.readouterr().err == "" and logging.getLogger().handlers == handlers
    assert result.compute_dtype == "float16"
    assert result.max_abs_diff <= result.tolerance
    assert result.tolerance == pytest.approx(20 * 2**-11)  # softmax outputs: the largest magnitude is at most 1
    assert result.baseline is not None and result.baseline.output_path == str(tmp_path / "mixed.fp32.onnx")
    assert result.baseline.tolerance == pytest.approx(1e-4)
    assert result.baseline.max_abs_diff <= result.baseline.tolerance
    # tf2onnx folds the variables' Casts: the export stores the weights in float16; the baseline in float32.
    assert _weight_types(output).get("FLOAT16", 0) > 0.9 * sum(_weight_types(output).values())
    assert "FLOAT16" not in _weight_types(tmp_path / "mixed.fp32.onnx")
    assert result.to_json_dict()["baseline"]["output_path"] == str(tmp_path / "mixed.fp32.onnx")


def test_mixed_precision_saved_model_is_checked_at_float16_tolerance(mixed_cnn: dict[str, Path], data_dir: Path, tmp_path: Path) -> None:
    result = export(mixed_cnn["saved_model"], ExportOptions(output=tmp_path / "m.onnx", dataset="mnist", data_dir=data_dir))
    assert result.compute_dtype == "float16"
    assert any("--fp32-baseline" in note for note in result.notes)
    with pytest.raises(ExportError, match="cannot be rebuilt under the float32 policy"):
        export(mixed_cnn["saved_model"], ExportOptions(output=tmp_path / "b.onnx", dataset="mnist", data_dir=data_dir, fp32_baseline=True))
    assert not (tmp_path / "b.onnx").exists() and not (tmp_path / "b.fp32.onnx").exists()


def test_float32_model_needs_no_baseline(mnist_mlp: tuple[keras.Model, dict[str, Path]], data_dir: Path, tmp_path: Path) -> None:
    _, paths = mnist_mlp
    result = export(paths["keras"], ExportOptions(output=tmp_path / "m.onnx", dataset="mnist", data_dir=data_dir, fp32_baseline=True))
    assert (result.compute_dtype, result.baseline) == ("float32", None)
    assert any("computes in float32 already" in note for note in result.notes)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_convert_says_the_mixed_model_arrived_mixed(mixed_cnn: dict[str, Path], data_dir: Path, tmp_path: Path) -> None:
    exported = tmp_path / "mixed.onnx"
    export(mixed_cnn["keras"], ExportOptions(output=exported, dataset="mnist", data_dir=data_dir))
    done = subprocess.run(
        [sys.executable, "-m", "halfconv", "convert", str(exported), "--json"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    weights = json.loads(done.stdout)["weights"]
    assert weights["target_elements_before"] == _weight_types(exported)["FLOAT16"]
    text = subprocess.run(
        [sys.executable, "-m", "halfconv", "convert", str(exported), "--force"], capture_output=True, text=True, check=True
    ).stdout
    line = next(line for line in text.splitlines() if line.lstrip().startswith("weights"))
    assert f"{weights['target_elements_before']:,}" in line and "were fp16 already (the model arrived mixed" in line


def test_report_compares_the_mixed_model_with_its_float32_rebuild(mixed_cnn: dict[str, Path], data_dir: Path, tmp_path: Path) -> None:
    from halfconv.evaluation import EvaluateOptions, evaluate

    output = tmp_path / "mixed.onnx"
    export(mixed_cnn["keras"], ExportOptions(output=output, dataset="mnist", data_dir=data_dir, fp32_baseline=True))
    options = EvaluateOptions(dataset="mnist", data_dir=data_dir, limit=500, latency_batch_sizes=(8,), warmup=1, iters=2)
    report = evaluate(output, dataclasses.replace(options, baseline=tmp_path / "mixed.fp32.onnx"))
    assert report.comparison is not None
    (note,) = [n for n in report.notes if "trained under mixed precision" in n]
    assert "computes in float16" in note and "same trained weights in float32" in note
    assert f"change the accuracy by {report.comparison.accuracy_delta_pp:+.2f} pp against float32" in note
    from halfconv.report import render_markdown

    summary = render_markdown(report).split("## Summary", 1)[1].split("\n## ", 1)[0]
    assert "trained under mixed precision" in summary  # the summary says it, not only the notes
    alone = evaluate(output, options)
    assert any("--fp32-baseline" in n for n in alone.notes)
