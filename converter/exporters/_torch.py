"""The PyTorch back end of ``halfconv export``: load a trained model and write it to ONNX.

Four kinds of file are read: a TorchScript archive (``torch.jit.save``), an
ExportedProgram (``torch.export.save``, usually ``.pt2``), a state_dict together with the
code that builds the model (``--torch-factory pkg.module:fn`` or ``file.py:fn``), and a
fully pickled ``nn.Module``. Unpickling a whole module can execute arbitrary code, so it
happens only with ``--trust-pickle``; everything else goes through
``torch.load(weights_only=True)``.

Export prefers the torch.export-based exporter (``dynamo=True``) and falls back to the
TorchScript exporter when it fails; a note says why. Both write one self-contained
``.onnx`` file whose batch axis is dynamic. This module and ``_export_keras`` are the only
ones that import a training framework; ``_export`` imports it only when an export runs.
"""

from __future__ import annotations

__all__ = ["TorchModel", "load"]

import contextlib
import importlib
import importlib.util
import io
import logging
import pickle
import re
import sys
import uuid
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx.external_data_helper
import torch  # an ImportError here becomes MissingDependencyError in _pipeline._load

from ..core import ExportError, UsageError, one_line

DYNAMO_EXPORTER = f"torch.onnx.export(dynamo=True), torch.export-based, torch {torch.__version__}"
TORCHSCRIPT_EXPORTER = f"torch.onnx.export(dynamo=False), TorchScript-based, torch {torch.__version__}"
# Batch 1 can be specialised into the graph by torch.export; 2 keeps the axis symbolic.
EXAMPLE_BATCH = 2
# Checkpoint dicts commonly keep the weights under one of these keys.
CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model")
# nn.DataParallel and torch.compile prefix every key of the state_dicts they produce.
WRAPPER_PREFIXES = ("module.", "_orig_mod.")
_QUIET_LOGGERS = ("torch", "onnxscript", "onnx_ir")
_UNSUPPORTED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


class TorchModel:
    """A loaded PyTorch model in eval mode; satisfies ``_export.FrameworkModel``."""

    framework = "torch"

    def __init__(
        self,
        module: torch.nn.Module,
        description: str,
        *,
        input_shape: tuple[int, ...] | None = None,
        export_module: torch.nn.Module | None = None,
        static_batch: int | None = None,
        notes: tuple[str, ...] = (),
    ) -> None:
        self.description = description
        self.input_shape = input_shape
        self._module = module
        self._export_module = module if export_module is None else export_module
        self._static_batch = static_batch  # an ExportedProgram traced without a dynamic batch
        self._notes = notes

    def run(self, x: np.ndarray) -> np.ndarray:
        inputs = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        with torch.no_grad():
            if self._static_batch is None:
                output = _first_tensor(self._module(inputs))
            else:
                output = torch.cat([self._run_padded(chunk) for chunk in inputs.split(self._static_batch)])
        return output.detach().to(device="cpu", dtype=torch.float32).numpy()

    def _run_padded(self, chunk: torch.Tensor) -> torch.Tensor:
        missing = self._static_batch - len(chunk)
        if missing:
            chunk = torch.cat([chunk, chunk.new_zeros((missing, *chunk.shape[1:]))])
        return _first_tensor(self._module(chunk))[: len(chunk) - missing]

    def export(self, path: Path, input_shape: tuple[int, ...], opset: int) -> tuple[str, list[str]]:
        """Write ``path`` with a dynamic batch axis; returns (exporter, notes)."""
        example = torch.zeros((EXAMPLE_BATCH, *input_shape), dtype=torch.float32)
        notes = list(self._notes)
        if isinstance(self._export_module, torch.jit.ScriptModule):
            reason = None  # torch.export cannot trace TorchScript, so do not spend time trying
        elif importlib.util.find_spec("onnxscript") is None:
            reason = "onnxscript, which it needs, is not installed"
        else:
            try:
                with _quiet():
                    torch.onnx.export(
                        self._export_module,
                        (example,),
                        str(path),
                        dynamo=True,
                        opset_version=opset,
                        dynamic_shapes=({0: torch.export.Dim("batch", min=1)},),
                        input_names=["input"],
                        output_names=["logits"],
                        external_data=False,
                        verbose=False,
                    )
                _inline_external_data(path)
                return DYNAMO_EXPORTER, notes
            except Exception as error:  # noqa: BLE001 - any failure means "try the other exporter"
                reason = one_line(error)
                _remove_export(path)
        try:
            with _quiet(), torch.no_grad():
                torch.onnx.export(
                    self._export_module,
                    (example,),
                    str(path),
                    dynamo=False,
                    opset_version=opset,
                    input_names=["input"],
                    output_names=["logits"],
                    dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                    verbose=False,
                )
            _inline_external_data(path)
        except Exception as error:  # noqa: BLE001 - the exporter's own error, in one line
            _remove_export(path)
            tried = "" if reason is None else f"the torch.export-based exporter: {reason}; "
            raise ExportError(
                f"PyTorch cannot export the model to ONNX ({tried}the TorchScript exporter: {one_line(error)})",
                "try another --opset, or simplify the ops the message names",
            ) from None
        if reason is None:
            notes.append("a TorchScript archive is exported by the TorchScript exporter (torch.export cannot trace it)")
        else:
            notes.append(f"torch.export-based exporter failed ({reason}); used the TorchScript exporter")
        return TORCHSCRIPT_EXPORTER, notes


def load(path: Path, *, factory: str | None, trust_pickle: bool) -> TorchModel:
    """Load ``path`` in eval mode; raises ExportError with one line when it cannot."""
    path = Path(path)
    if path.is_dir():
        raise ExportError(f"{path} is a directory, not a PyTorch model file", "pass a .pt, .pth or .pt2 file")
    kind = _archive_kind(path)
    ignored = (f"--torch-factory {factory} is not used: the file holds its own model code",) if factory else ()
    if kind == "torchscript":
        try:
            with _quiet():
                module = torch.jit.load(str(path), map_location="cpu")
        except Exception as error:  # noqa: BLE001 - torch raises RuntimeError and friends
            raise ExportError(f"cannot load {path} as a TorchScript archive: {one_line(error)}", "save it again with torch.jit.save") from None
        return TorchModel(module.eval(), "TorchScript archive", notes=ignored)
    if kind == "exported_program":
        return _load_exported_program(path, ignored)
    if kind == "keras":
        raise ExportError(f"{path} is a Keras .keras archive, not a PyTorch model", "pass --framework keras")
    if kind == "other_zip":
        raise ExportError(
            f"{path} is a zip archive but not a PyTorch model (no data.pkl, code/ or archive_format inside)",
            "pass a file written by torch.save, torch.jit.save or torch.export.save",
        )
    return _load_torch_save(path, factory, trust_pickle)


def _archive_kind(path: Path) -> str | None:
    """torchscript, exported_program, torch_save, keras, other_zip, or None (not a zip)."""
    if not zipfile.is_zipfile(path):
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except zipfile.BadZipFile:
        raise ExportError(f"{path} is a damaged zip archive", "save the model again") from None
    if any(name.endswith("/archive_format") for name in names):
        return "exported_program"
    if any("/code/" in name for name in names) and any(name.endswith("constants.pkl") for name in names):
        return "torchscript"
    if any(name.endswith("data.pkl") for name in names):
        return "torch_save"
    if "config.json" in names and any(name.endswith(".weights.h5") for name in names):
        return "keras"
    return "other_zip"


def _load_exported_program(path: Path, notes: tuple[str, ...]) -> TorchModel:
    try:
        with _quiet():
            program = torch.export.load(str(path))
    except Exception as error:  # noqa: BLE001
        raise ExportError(f"cannot load {path} as an ExportedProgram: {one_line(error)}", "save it again with torch.export.save") from None
    saved = [*program.state_dict.values(), *program.constants.values()]
    if any(isinstance(t, torch.Tensor) and t.device.type != "cpu" for t in saved):
        # Saved on a GPU: the reference outputs are computed on the CPU, and ONNX is
        # device-neutral anyway.
        from torch.export.passes import move_to_device_pass

        program = move_to_device_pass(program, "cpu")
    user_inputs = program.graph_signature.user_inputs
    if len(user_inputs) != 1:
        raise ExportError(
            f"{path} takes {len(user_inputs)} inputs ({', '.join(map(str, user_inputs))})",
            "halfconv exports classifiers with one image input",
        )
    input_shape, static_batch = _exported_input_shape(program)
    if static_batch is None:
        return TorchModel(program.module(), "ExportedProgram (.pt2)", input_shape=input_shape, notes=notes)
    # Traced without a dynamic batch axis: run it in chunks of its batch size, and trace it
    # again without the guard that pins the batch; validation then proves the new graph right.
    note = f"the ExportedProgram was traced with a fixed batch size of {static_batch}; it was traced again with a dynamic batch axis"
    return TorchModel(
        program.module(),
        "ExportedProgram (.pt2)",
        input_shape=input_shape,
        export_module=program.module(check_guards=False),
        static_batch=static_batch,
        notes=(*notes, note),
    )


def _exported_input_shape(program: Any) -> tuple[tuple[int, ...] | None, int | None]:
    """(per-sample input shape, fixed batch size or None) of an ExportedProgram's one input.

    The graph says which sizes are symbolic; the saved example input gives concrete values
    for symbolic per-sample sizes (programs saved without examples leave those unknown).
    """
    example = program.example_inputs
    concrete = None
    if example is not None and example[0] and isinstance(example[0][0], torch.Tensor):
        concrete = tuple(int(size) for size in example[0][0].shape)
    name = program.graph_signature.user_inputs[0]
    values = [n.meta.get("val") for n in program.graph.nodes if n.op == "placeholder" and n.name == name]
    if not values or not isinstance(values[0], torch.Tensor):
        return (concrete[1:] if concrete else None), None
    symbolic = [size if isinstance(size, int) else None for size in values[0].shape]
    if concrete is not None and len(concrete) == len(symbolic):
        symbolic[1:] = [c if s is None else s for c, s in zip(concrete[1:], symbolic[1:])]
    per_sample = symbolic[1:]
    input_shape = tuple(per_sample) if symbolic and all(size is not None for size in per_sample) else None
    return input_shape, (symbolic[0] if symbolic else None)


def _load_torch_save(path: Path, factory: str | None, trust_pickle: bool) -> TorchModel:
    unreadable = ExportError(
        f"{path} is not a PyTorch model torch can read (neither a TorchScript archive, an ExportedProgram nor a torch.save file)",
        "check the file; save the model with torch.save, torch.jit.save or torch.export.save",
    )
    try:
        with _quiet():
            content = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        match = _UNSUPPORTED_GLOBAL.search(str(error))
        if match is None:
            raise unreadable from None
        if not trust_pickle:
            raise ExportError(
                f"{path} is a pickled Python object ({match.group(1)}), such as a whole nn.Module; unpickling it can execute arbitrary code",
                "pass --trust-pickle if you trust its source, or save a state_dict and use --torch-factory",
            ) from None
        content = _unpickle(path)
    except Exception:  # noqa: BLE001 - EOFError, RuntimeError, ... all mean "not a torch file"
        raise unreadable from None
    notes: list[str] = []
    if isinstance(content, Mapping) and not _is_state_dict(content):
        for key in CHECKPOINT_KEYS:
            if isinstance(content.get(key), torch.nn.Module) or _is_state_dict(content.get(key)):
                notes.append(f"used the '{key}' entry of the checkpoint")
                content = content[key]
                break
    if isinstance(content, torch.nn.Module):
        if factory:
            notes.append(f"--torch-factory {factory} is not used: the file holds a whole nn.Module")
        return TorchModel(content.eval(), "pickled nn.Module", notes=tuple(notes))
    if not _is_state_dict(content):
        raise ExportError(
            f"{path} holds a {type(content).__name__}, neither an nn.Module nor a state_dict",
            "save the model with torch.save(model.state_dict(), ...), torch.jit.save or torch.export.save",
        )
    if factory is None:
        raise ExportError(f"{path} holds a state_dict ({len(content)} tensors) but no model code", "pass --torch-factory pkg.module:make_model")
    model = _build_model(factory)
    notes.extend(_load_weights(model, dict(content), path, factory))
    return TorchModel(model.eval(), f"state_dict + factory {factory}", notes=tuple(notes))


def _unpickle(path: Path) -> Any:
    try:
        with _quiet():
            return torch.load(str(path), map_location="cpu", weights_only=False)
    except Exception as error:  # noqa: BLE001 - a missing class raises AttributeError, ModuleNotFoundError, ...
        raise ExportError(
            f"cannot unpickle {path}: {one_line(error)}",
            "make the model's code importable (PYTHONPATH), or save a state_dict and use --torch-factory",
        ) from None


def _is_state_dict(content: object) -> bool:
    return (
        isinstance(content, Mapping)
        and len(content) > 0
        and all(isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in content.items())
    )


def _build_model(factory: str) -> torch.nn.Module:
    target, _, name = factory.rpartition(":")
    if not target or not name.isidentifier():
        raise UsageError(f"--torch-factory '{factory}' is not MODULE:FUNCTION", "write it as pkg.module:function or file.py:function")
    function = _factory_function(target, name)
    try:
        with _on_sys_path(_factory_folder(target)):
            model = function()
    except Exception as error:  # noqa: BLE001 - the factory's own error, in one line
        raise ExportError(f"--torch-factory {factory}: {name}() failed: {one_line(error)}", "the factory must build the model with no arguments") from None
    if not isinstance(model, torch.nn.Module):
        raise ExportError(f"--torch-factory {factory} returned a {type(model).__name__}, not an nn.Module", "return the model from the function")
    return model


def _factory_folder(target: str) -> str | None:
    is_file = target.endswith(".py") or "/" in target or "\\" in target
    return str(Path(target).resolve().parent) if is_file else None


def _factory_function(target: str, name: str) -> Callable[[], object]:
    folder = _factory_folder(target)
    if folder is None:
        try:
            module = importlib.import_module(target)
        except ModuleNotFoundError as error:
            raise ExportError(
                f"--torch-factory: cannot import module '{target}' ({error})",
                "make it importable (check PYTHONPATH and the current folder) or pass path/to/file.py:function",
            ) from None
        except Exception as error:  # noqa: BLE001 - the module's own import-time error
            raise ExportError(f"--torch-factory: importing '{target}' failed: {one_line(error)}", "fix the module") from None
    else:
        file = Path(target)
        if not file.is_file():
            raise ExportError(f"--torch-factory: {file} does not exist", "check the path before the ':'")
        # A unique name, registered in sys.modules so that dataclasses and pickling of the
        # module's classes work; the file's folder is importable while it runs.
        stem = re.sub(r"\W", "_", file.stem)
        module_name = f"_halfconv_factory_{stem}_{uuid.uuid4().hex[:8]}"
        spec = importlib.util.spec_from_file_location(module_name, file)
        if spec is None or spec.loader is None:
            raise ExportError(f"--torch-factory: {file} cannot be imported as a Python file", "pass a .py file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            with _on_sys_path(folder):
                spec.loader.exec_module(module)
        except Exception as error:  # noqa: BLE001
            del sys.modules[module_name]
            raise ExportError(f"--torch-factory: running {file} failed: {one_line(error)}", "fix the file") from None
    function = getattr(module, name, None)
    if not callable(function):
        raise ExportError(f"--torch-factory: {target} has no function '{name}'", "check the name after the ':'")
    return function


def _load_weights(model: torch.nn.Module, weights: dict[str, torch.Tensor], path: Path, factory: str) -> list[str]:
    expected = set(model.state_dict())
    notes = []
    if set(weights) != expected:
        for prefix in WRAPPER_PREFIXES:
            if all(key.startswith(prefix) for key in weights) and {key[len(prefix) :] for key in weights} == expected:
                weights = {key[len(prefix) :]: value for key, value in weights.items()}
                notes.append(f"removed the '{prefix}' prefix from every key of the state_dict")
                break
        else:
            missing = sorted(expected - set(weights))
            unexpected = sorted(set(weights) - expected)
            problems = [_keys("missing", missing), _keys("unexpected", unexpected)]
            raise ExportError(
                f"{path} does not fit the model of --torch-factory {factory}: {'; '.join(p for p in problems if p)}",
                "check that the factory builds the architecture the weights were trained with",
            )
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        detail = next((line for line in lines if line.startswith("size mismatch")), lines[-1] if lines else "")
        raise ExportError(
            f"{path} does not fit the model of --torch-factory {factory}: {detail.rstrip('.')}",
            "check that the factory builds the architecture the weights were trained with",
        ) from None
    return notes


def _keys(kind: str, keys: list[str], shown: int = 3) -> str:
    if not keys:
        return ""
    more = f" (+{len(keys) - shown} more)" if len(keys) > shown else ""
    return f"{kind} keys {', '.join(keys[:shown])}{more}"


def _first_tensor(output: object) -> torch.Tensor:
    """A classifier's logits: the output itself, or the first element of a tuple/list."""
    if isinstance(output, (tuple, list)) and output:
        output = output[0]
    if not isinstance(output, torch.Tensor):
        # A TypeError, which _export reports as "the model fails on inputs ...".
        raise TypeError(f"the model returns a {type(output).__name__}, not a tensor of logits")
    return output


def _inline_external_data(path: Path) -> None:
    """Fold tensors that an exporter wrote to side files into ``path`` itself."""
    proto = onnx.load(str(path), load_external_data=False)
    external = [
        tensor
        for tensor in onnx.external_data_helper._get_all_tensors(proto)
        if onnx.external_data_helper.uses_external_data(tensor)
    ]
    if not external:
        return
    locations = {entry.value for tensor in external for entry in tensor.external_data if entry.key == "location"}
    onnx.load_external_data_for_model(proto, str(path.parent))
    onnx.save(proto, str(path))
    for location in locations:
        (path.parent / location).unlink(missing_ok=True)


def _remove_export(path: Path) -> None:
    """Delete what a failed exporter left, so the next attempt starts clean."""
    path.unlink(missing_ok=True)
    path.with_name(path.name + ".data").unlink(missing_ok=True)


@contextlib.contextmanager
def _on_sys_path(folder: str | None) -> Iterator[None]:
    if folder is None or folder in sys.path:
        yield
        return
    sys.path.insert(0, folder)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(folder)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence what torch and onnxscript print while they load and export a model.

    That is progress lines on stdout, warnings, log records, and graph dumps that
    torch.export writes to stderr before it raises; the error itself is reported in one line.
    """
    loggers = [logging.getLogger(name) for name in _QUIET_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
