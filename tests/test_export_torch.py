"""``halfconv export`` of PyTorch models: every file format, the exporters, the user errors.

Two tiny models are defined here and saved on the fly in each format: an MLP for MNIST
(Flatten, Linear 784->32, ReLU, Linear 32->10) and a CNN with BatchNorm for CIFAR-10
(3x32x32). Each export is checked against torch itself on ONNX Runtime (CPU) at batch
sizes 1 and 7, which the dynamic batch axis must accept. Dataset images come from the
``data_dir`` fixture (``tests/conftest.py``).
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import sys
import uuid
import zipfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from environment import require_module
from halfconv import cli
from halfconv.core import PREPROCESS_KEY, ExportError, UsageError
from halfconv.datasets import _download
from halfconv.exporters import ExportOptions, ExportResult, export

torch = require_module("torch")
require_module("onnxscript")
nn = torch.nn
_torch = require_module("halfconv.exporters._torch")
_torch_export = require_module("halfconv.exporters._torch_export")

pytestmark = [
    pytest.mark.torch,
    # torch 2.13 deprecates TorchScript; saving it is still how users hand us such files.
    pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:DeprecationWarning"),
]

# The ONNX model must match torch on fresh inputs as closely as the export's own check.
ATOL = 1e-4


# -- the models ---------------------------------------------------------------------------------


def make_mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))


class TinyCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.head = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x):
        x = torch.relu(self.bn(self.conv(x)))
        x = nn.functional.adaptive_avg_pool2d(x, 4)
        return self.head(x.flatten(1))


def make_cnn():
    return TinyCNN()


# The factory file holds the same code as this test, so a state_dict saved here fits it.
FACTORY_SOURCE = "\n\n".join(
    ["import torch\nfrom torch import nn", *(inspect.getsource(f) for f in (make_mlp, TinyCNN, make_cnn))]
)


def trained_mlp() -> nn.Module:
    torch.manual_seed(1)
    return make_mlp().eval()


def trained_cnn() -> nn.Module:
    """BatchNorm statistics far from the defaults, so eval and train mode disagree."""
    torch.manual_seed(2)
    model = make_cnn()
    with torch.no_grad():
        model.bn.running_mean.uniform_(-0.5, 0.5)
        model.bn.running_var.uniform_(0.5, 2.0)
        model.bn.weight.uniform_(0.5, 1.5)
        model.bn.bias.uniform_(-0.2, 0.2)
    return model.eval()


# -- helpers ------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(url: str, timeout_s: float) -> None:
        raise AssertionError(f"the test reached for the network: {url}")

    monkeypatch.setattr(_download, "_open_url", refuse)


def write_factory(folder: Path) -> str:
    """A module with make_mlp/make_cnn in ``folder``; returns its (unique) module name."""
    name = f"tiny_factory_{uuid.uuid4().hex[:8]}"
    (folder / f"{name}.py").write_text(FACTORY_SOURCE)
    return name


def session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def export_and_check(
    model_path: Path,
    reference: nn.Module,
    shape: tuple[int, ...],
    *,
    source_format: str,
    exporter: str,
    **options: object,
) -> ExportResult:
    """Export ``model_path``, then check the file against ``reference`` at batch 1 and 7; ``shape`` is the per-sample shape it must report."""
    output = model_path.parent / "m.onnx"
    before = files_in(model_path.parent)
    result = export(model_path, ExportOptions(output=output, **options))

    assert (result.framework, result.source_format, result.exporter) == ("torch", source_format, exporter)
    assert result.input_shape == shape
    assert result.max_abs_diff <= result.tolerance
    # One self-contained file: no external data, no staging folder left behind.
    assert files_in(model_path.parent) == sorted([*before, "m.onnx"])
    proto = onnx.load(str(output), load_external_data=False)
    assert not any(
        onnx.external_data_helper.uses_external_data(t) for t in onnx.external_data_helper._get_all_tensors(proto)
    )
    metadata = {entry.key: entry.value for entry in proto.metadata_props}
    assert json.loads(metadata[PREPROCESS_KEY]) == result.preprocessing

    ort_session = session(output)
    (model_input,) = ort_session.get_inputs()
    assert model_input.name == "input"
    assert isinstance(model_input.shape[0], str), "the batch axis must be dynamic"
    assert ort_session.get_outputs()[0].name == "logits"
    rng = np.random.default_rng(0)
    for batch in (1, 7):
        x = rng.standard_normal((batch, *shape), dtype=np.float32)
        with torch.no_grad():
            expected = reference(torch.from_numpy(x)).numpy()
        (logits,) = ort_session.run(["logits"], {"input": x})
        np.testing.assert_allclose(logits, expected, atol=ATOL, rtol=0, err_msg=f"batch {batch}")
    return result


def assert_export_error(
    model_path: Path, error_type: type[Exception], message: str, **options: object
) -> None:
    """The export fails with exactly ``message`` and leaves nothing on disk."""
    before = files_in(model_path.parent)
    with pytest.raises(error_type) as caught:
        export(model_path, ExportOptions(output=model_path.parent / "m.onnx", **options))
    assert str(caught.value) == message
    assert "\n" not in str(caught.value)
    assert files_in(model_path.parent) == before


# -- every format -------------------------------------------------------------------------------


def test_torchscript_script_uses_the_torchscript_exporter(tmp_path: Path, data_dir: Path) -> None:
    model = trained_mlp()
    path = tmp_path / "mlp.pt"
    torch.jit.save(torch.jit.script(model), str(path))

    result = export_and_check(
        path, model, (1, 28, 28), source_format="TorchScript archive",
        exporter=_torch_export.TORCHSCRIPT_EXPORTER, dataset="mnist", data_dir=data_dir,
    )
    assert result.notes == ("a TorchScript archive is exported by the TorchScript exporter (torch.export cannot trace it)",)
    assert result.preprocessing["dataset"] == "mnist"
    assert result.preprocessing["layout"] == "nchw"
    assert result.validation_inputs == "mnist test images"


def test_torchscript_trace_of_a_cnn(tmp_path: Path, data_dir: Path) -> None:
    model = trained_cnn()
    path = tmp_path / "cnn.pt"
    torch.jit.save(torch.jit.trace(model, torch.zeros(1, 3, 32, 32)), str(path))

    result = export_and_check(
        path, model, (3, 32, 32), source_format="TorchScript archive",
        exporter=_torch_export.TORCHSCRIPT_EXPORTER, dataset="cifar10", data_dir=data_dir,
    )
    assert result.validation_inputs == "cifar10 test images"


def test_exported_program_declares_its_input_shape(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    model = trained_cnn()
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(model, (torch.zeros(2, 3, 32, 32),), dynamic_shapes=({0: batch},))
    path = tmp_path / "cnn.pt2"
    torch.export.save(program, str(path))
    capfd.readouterr()

    loaded = _torch.load(path, factory=None, trust_pickle=False)
    assert (loaded.framework, loaded.description, loaded.input_shape) == ("torch", "ExportedProgram (.pt2)", (3, 32, 32))
    # No --dataset and no --input-shape: the program's example input gives the shape.
    result = export_and_check(
        path, model, (3, 32, 32), source_format="ExportedProgram (.pt2)", exporter=_torch_export.DYNAMO_EXPORTER
    )
    assert result.notes == ()
    assert result.validation_inputs == "random"
    # torch.onnx prints progress lines and torch logs warnings; the export must print nothing.
    assert capfd.readouterr() == ("", "")


def test_exported_program_with_a_fixed_batch_is_traced_again(tmp_path: Path) -> None:
    model = trained_mlp()
    path = tmp_path / "mlp.pt2"
    torch.export.save(torch.export.export(model, (torch.zeros(1, 1, 28, 28),)), str(path))

    result = export_and_check(
        path, model, (1, 28, 28), source_format="ExportedProgram (.pt2)", exporter=_torch_export.DYNAMO_EXPORTER
    )
    assert result.notes == (
        "the ExportedProgram was traced with a fixed batch size of 1; it was traced again with a dynamic batch axis",
    )
    assert result.validation_samples == 64  # run in 64 chunks of 1 for the reference outputs


def test_state_dict_with_a_module_factory(tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = tmp_path / "code"
    code.mkdir()
    module = write_factory(code)
    monkeypatch.syspath_prepend(str(code))
    model = trained_mlp()
    path = tmp_path / "mlp.pth"
    torch.save(model.state_dict(), str(path))

    result = export_and_check(
        path, model, (1, 28, 28), source_format=f"state_dict + factory {module}:make_mlp",
        exporter=_torch_export.DYNAMO_EXPORTER, dataset="mnist", data_dir=data_dir, torch_factory=f"{module}:make_mlp",
    )
    assert result.notes == ()


def test_state_dict_with_a_file_factory(tmp_path: Path, data_dir: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    factory_file = code / f"{write_factory(code)}.py"
    model = trained_cnn()
    path = tmp_path / "cnn.pt"
    # A checkpoint dict, as training scripts write them; the weights sit under "state_dict".
    torch.save({"epoch": 3, "state_dict": model.state_dict()}, str(path))
    path_before = list(sys.path)

    result = export_and_check(
        path, model, (3, 32, 32), source_format=f"state_dict + factory {factory_file}:make_cnn",
        exporter=_torch_export.DYNAMO_EXPORTER, dataset="cifar10", data_dir=data_dir,
        torch_factory=f"{factory_file}:make_cnn",
    )
    assert result.notes == ("used the 'state_dict' entry of the checkpoint",)
    assert sys.path == path_before, "the factory's folder is on sys.path only while it runs"


def test_data_parallel_prefix_is_removed(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    factory = f"{code / write_factory(code)}.py:make_mlp"
    model = trained_mlp()
    path = tmp_path / "mlp.pt"
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, str(path))

    loaded = _torch.load(path, factory=factory, trust_pickle=False)
    x = np.random.default_rng(0).standard_normal((3, 1, 28, 28), dtype=np.float32)
    np.testing.assert_array_equal(loaded.run(x), model(torch.from_numpy(x)).detach().numpy())
    assert loaded.notes == ("removed the 'module.' prefix from every key of the state_dict",)


def test_pickled_module_with_trust_pickle_runs_in_eval_mode(tmp_path: Path, data_dir: Path) -> None:
    model = trained_cnn()
    path = tmp_path / "cnn.pt"
    torch.save(model.train(), str(path))  # saved in training mode: BatchNorm would use batch statistics
    model.eval()

    export_and_check(
        path, model, (3, 32, 32), source_format="pickled nn.Module", exporter=_torch_export.DYNAMO_EXPORTER,
        dataset="cifar10", data_dir=data_dir, trust_pickle=True,
    )


def test_cli_exports_a_state_dict(tmp_path: Path, data_dir: Path, capfd: pytest.CaptureFixture[str]) -> None:
    code = tmp_path / "code"
    code.mkdir()
    factory = f"{code / write_factory(code)}.py:make_mlp"
    path = tmp_path / "mlp.pt"
    torch.save(trained_mlp().state_dict(), str(path))
    output = tmp_path / "mlp.onnx"

    argv = ["export", str(path), "--torch-factory", factory, "--dataset", "mnist", "--data-dir", str(data_dir)]
    assert cli.main(argv) == 0
    out, err = capfd.readouterr()
    lines = out.splitlines()
    assert err == ""
    assert lines[:4] == [
        f"exported {path} -> {output}",
        f"  source         torch: state_dict + factory {factory}",
        f"  exporter       {_torch_export.DYNAMO_EXPORTER}",
        "  input          (N, 1, 28, 28) float32, batch axis dynamic",
    ]
    assert output.is_file()

    assert cli.main(argv) == 7  # the output exists now
    assert capfd.readouterr() == ("", f"Error: {output} already exists - pass --force to overwrite it\n")
    assert cli.main(["export", str(path), "-o", str(tmp_path / "other.onnx")]) == 11
    assert capfd.readouterr() == (
        "",
        f"Error: {path} holds a state_dict (4 tensors) but no model code - pass --torch-factory pkg.module:make_model\n",
    )


# -- user errors --------------------------------------------------------------------------------


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "noise.pt"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    assert_export_error(
        path, ExportError,
        f"{path} is not a PyTorch model torch can read (neither a TorchScript archive, an ExportedProgram nor a "
        "torch.save file) - check the file; save the model with torch.save, torch.jit.save or torch.export.save",
    )


def test_keras_archive_named_pt(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", "{}")
        archive.writestr("model.weights.h5", b"")
    assert_export_error(
        path, ExportError, f"{path} is a Keras .keras archive, not a PyTorch model - pass --framework keras",
        framework="torch",
    )


def test_state_dict_without_factory(tmp_path: Path) -> None:
    path = tmp_path / "mlp.pt"
    torch.save(trained_mlp().state_dict(), str(path))
    assert_export_error(
        path, ExportError,
        f"{path} holds a state_dict (4 tensors) but no model code - pass --torch-factory pkg.module:make_model",
    )


def test_pickled_module_without_trust_pickle(tmp_path: Path) -> None:
    path = tmp_path / "cnn.pt"
    torch.save(trained_cnn(), str(path))
    assert_export_error(
        path, ExportError,
        f"{path} is a pickled Python object ({__name__}.TinyCNN), such as a whole nn.Module; unpickling it can "
        "execute arbitrary code - pass --trust-pickle if you trust its source, or save a state_dict and use --torch-factory",
    )


def test_factory_module_that_does_not_exist(tmp_path: Path) -> None:
    path = tmp_path / "mlp.pt"
    torch.save(trained_mlp().state_dict(), str(path))
    assert_export_error(
        path, ExportError,
        "--torch-factory: cannot import module 'nonexistent.module' (No module named 'nonexistent') - make it "
        "importable (check PYTHONPATH and the current folder) or pass path/to/file.py:function",
        torch_factory="nonexistent.module:fn",
    )


def test_factory_file_without_the_function(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    factory_file = code / f"{write_factory(code)}.py"
    path = tmp_path / "mlp.pt"
    torch.save(trained_mlp().state_dict(), str(path))
    assert_export_error(
        path, ExportError,
        f"--torch-factory: {factory_file} has no function 'missing_fn' - check the name after the ':'",
        torch_factory=f"{factory_file}:missing_fn",
    )


def test_factory_without_a_function_name(tmp_path: Path) -> None:
    path = tmp_path / "mlp.pt"
    torch.save(trained_mlp().state_dict(), str(path))
    assert_export_error(
        path, UsageError,
        "--torch-factory 'models:' is not MODULE:FUNCTION - write it as pkg.module:function or file.py:function",
        torch_factory="models:",
    )


BROKEN_FACTORIES = """
def raises():
    raise ValueError("no weights here")

def not_a_model():
    return 3
"""


@pytest.mark.parametrize(
    ("function", "message"),
    [
        ("raises", "--torch-factory {factory}: raises() failed: no weights here - the factory must build the model with no arguments"),
        ("not_a_model", "--torch-factory {factory} returned a int, not an nn.Module - return the model from the function"),
    ],
)
def test_factory_that_does_not_build_a_model(tmp_path: Path, function: str, message: str) -> None:
    factory_file = tmp_path / "broken.py"
    factory_file.write_text(BROKEN_FACTORIES)
    path = tmp_path / "mlp.pt"
    torch.save(trained_mlp().state_dict(), str(path))
    factory = f"{factory_file}:{function}"
    assert_export_error(path, ExportError, message.format(factory=factory), torch_factory=factory)


def test_factory_file_that_does_not_exist(tmp_path: Path) -> None:
    path = tmp_path / "mlp.pt"
    torch.save(trained_mlp().state_dict(), str(path))
    assert_export_error(
        path, ExportError, "--torch-factory: models/net.py does not exist - check the path before the ':'",
        torch_factory="models/net.py:make_model",
    )


def test_state_dict_that_does_not_fit_the_factory(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    factory = f"{code / write_factory(code)}.py:make_mlp"
    path = tmp_path / "cnn.pt"
    torch.save(trained_cnn().state_dict(), str(path))
    assert_export_error(
        path, ExportError,
        f"{path} does not fit the model of --torch-factory {factory}: missing keys 1.bias, 1.weight, 3.bias (+1 more); "
        "unexpected keys bn.bias, bn.num_batches_tracked, bn.running_mean (+6 more) - check that the factory builds "
        "the architecture the weights were trained with",
        torch_factory=factory,
    )


def test_state_dict_with_a_wrong_shape(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    factory = f"{code / write_factory(code)}.py:make_mlp"
    path = tmp_path / "mlp.pt"
    weights = trained_mlp().state_dict()
    weights["3.weight"] = torch.zeros(5, 32)
    torch.save(weights, str(path))
    assert_export_error(
        path, ExportError,
        f"{path} does not fit the model of --torch-factory {factory}: size mismatch for 3.weight: copying a param "
        "with shape torch.Size([5, 32]) from checkpoint, the shape in current model is torch.Size([10, 32]) - check "
        "that the factory builds the architecture the weights were trained with",
        torch_factory=factory,
    )


def test_input_shape_the_model_cannot_take(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    factory = f"{code / write_factory(code)}.py:make_mlp"
    path = tmp_path / "mlp.pt"
    torch.save(trained_mlp().state_dict(), str(path))
    assert_export_error(
        path, ExportError,
        "the model fails on inputs of shape (64, 3, 32, 32): mat1 and mat2 shapes cannot be multiplied (64x3072 "
        "and 784x32) - pass the --input-shape the model was trained with",
        torch_factory=factory, input_shape=(3, 32, 32),
    )


def test_input_shape_contradicting_an_exported_program(tmp_path: Path) -> None:
    path = tmp_path / "mlp.pt2"
    torch.export.save(torch.export.export(trained_mlp(), (torch.zeros(2, 1, 28, 28),)), str(path))
    assert_export_error(
        path, ExportError,
        "--input-shape 3,32,32 contradicts the model's input shape 1,28,28 - drop --input-shape or fix it",
        input_shape=(3, 32, 32),
    )


# -- pieces -------------------------------------------------------------------------------------


def test_inline_external_data(tmp_path: Path) -> None:
    """An exporter that writes a side file still yields one self-contained model."""
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Add", ["x", "w"], ["y"])], "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [4])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [4])],
        [onnx.numpy_helper.from_array(np.arange(4, dtype=np.float32), "w")],
    )
    path = tmp_path / "m.onnx"
    proto = onnx.helper.make_model(graph, ir_version=10, opset_imports=[onnx.helper.make_opsetid("", 18)])
    onnx.save(proto, str(path), save_as_external_data=True, location="m.onnx.data", size_threshold=0)
    assert files_in(tmp_path) == ["m.onnx", "m.onnx.data"]

    _torch_export._inline_external_data(path)

    assert files_in(tmp_path) == ["m.onnx"]
    (y,) = session(path).run(None, {"x": np.ones(4, np.float32)})
    np.testing.assert_array_equal(y, np.arange(1, 5, dtype=np.float32))


# -- the exporters ------------------------------------------------------------------------------


class BranchingMLP(nn.Module):
    """A data-dependent `if`: torch.export refuses it, the TorchScript tracer records one branch."""

    def __init__(self):
        super().__init__()
        self.net = make_mlp()

    def forward(self, x):
        if x.abs().sum() >= 0:  # always true, so the traced branch is the right one
            return self.net(x)
        return -self.net(x)


def test_falls_back_to_the_torchscript_exporter(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    torch.manual_seed(3)
    model = BranchingMLP().eval()
    path = tmp_path / "branching.pt"
    torch.save(model, str(path))
    capfd.readouterr()

    result = export_and_check(
        path, model, (1, 28, 28), source_format="pickled nn.Module", exporter=_torch_export.TORCHSCRIPT_EXPORTER,
        input_shape=(1, 28, 28), trust_pickle=True,
    )
    (note,) = result.notes
    assert note.startswith("torch.export-based exporter failed (")
    assert note.endswith("); used the TorchScript exporter")
    assert "\n" not in note
    # torch.export dumps the graph it failed on to stderr, and the tracer warns; all silenced.
    assert capfd.readouterr() == ("", "")


def test_without_onnxscript_the_torchscript_exporter_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxscript" else find_spec(name, *a))
    model = trained_mlp()
    path = tmp_path / "mlp.pt"
    torch.save(model, str(path))

    result = export_and_check(
        path, model, (784,), source_format="pickled nn.Module", exporter=_torch_export.TORCHSCRIPT_EXPORTER,
        input_shape=(784,), trust_pickle=True,
    )
    assert result.notes == (
        "torch.export-based exporter failed (onnxscript, which it needs, is not installed); used the TorchScript exporter",
    )


def test_when_both_exporters_fail_nothing_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(model: object, args: object, f: str, **kwargs: object) -> None:
        Path(f).write_bytes(b"half a model")  # a partial file, which must not survive
        if kwargs["dynamo"]:
            raise RuntimeError("Failed.\n\n## Exception summary\n\n<class 'torch._dynamo.exc.Unsupported'>: op X\n")
        raise RuntimeError("Exporting the operator 'aten::x' to ONNX opset version 18 is not supported.\nmore")

    monkeypatch.setattr(torch.onnx, "export", refuse)
    path = tmp_path / "mlp.pt"
    torch.save(trained_mlp(), str(path))
    assert_export_error(
        path, ExportError,
        "PyTorch cannot export the model to ONNX (the torch.export-based exporter: Unsupported: op X; the TorchScript "
        "exporter: Exporting the operator 'aten::x' to ONNX opset version 18 is not supported) - try another --opset, "
        "or simplify the ops the message names",
        input_shape=(784,), trust_pickle=True,
    )


class _Activations(nn.Module):
    """One branch per common activation, side by side."""

    def __init__(self, activations: list[nn.Module]) -> None:
        super().__init__()
        self.linear = nn.Linear(16, 4)
        self.activations = nn.ModuleList(activations)

    def forward(self, x):
        hidden = self.linear(x)
        return torch.cat([activation(hidden) for activation in self.activations], dim=1)


def test_common_activations_export(tmp_path: Path) -> None:
    activations = [
        nn.GELU(), nn.GELU(approximate="tanh"), nn.SiLU(), nn.Mish(), nn.Hardswish(), nn.Hardsigmoid(), nn.ELU(),
        nn.CELU(), nn.SELU(), nn.LeakyReLU(0.1), nn.Softplus(), nn.Softsign(), nn.Tanh(), nn.Sigmoid(), nn.ReLU6(),
    ]
    torch.manual_seed(0)
    model = _Activations(activations).eval()
    path = tmp_path / "activations.pt2"
    batch = torch.export.Dim("batch", min=1)
    torch.export.save(torch.export.export(model, (torch.zeros(2, 16),), dynamic_shapes=({0: batch},)), str(path))

    result = export(path, ExportOptions(output=tmp_path / "a.onnx"))
    assert result.max_abs_diff <= result.tolerance
    x = torch.from_numpy(np.random.default_rng(3).normal(0.0, 3.0, (32, 16)).astype(np.float32))
    with torch.no_grad():
        expected = model(x).numpy()
    (got,) = session(tmp_path / "a.onnx").run(None, {"input": x.numpy()})
    wrong = [
        repr(a) for i, a in enumerate(activations) if not np.allclose(got[:, 4 * i : 4 * i + 4], expected[:, 4 * i : 4 * i + 4], atol=ATOL)
    ]
    assert wrong == []
