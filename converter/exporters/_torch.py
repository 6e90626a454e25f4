"""The PyTorch back end of ``halfconv export``: ``load`` a trained model from its file.

Four kinds of file are read: a TorchScript archive (``torch.jit.save``), an
ExportedProgram (``torch.export.save``, usually ``.pt2``), a state_dict together with the
code that builds the model (``--torch-factory pkg.module:fn`` or ``file.py:fn``, see
``_torch_factory``), and a fully pickled ``nn.Module``. Unpickling a whole module can
execute arbitrary code, so it happens only with ``--trust-pickle``; everything else goes
through ``torch.load(weights_only=True)``. The loaded model exports itself (``_torch_export``).

This module, ``_torch_export`` and ``_torch_factory`` are the ones that import torch;
``_pipeline`` imports them only when an export runs.
"""

from __future__ import annotations

__all__ = ["load"]

import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch  # an ImportError here becomes MissingDependencyError in _pipeline._load

from ..core import ExportError, one_line
from ._torch_export import TorchModel, quiet
from ._torch_factory import build_model

# Checkpoint dicts commonly keep the weights under one of these keys.
CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model")
# nn.DataParallel and torch.compile prefix every key of the state_dicts they produce.
WRAPPER_PREFIXES = ("module.", "_orig_mod.")
_UNSUPPORTED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def load(path: Path, *, factory: str | None, trust_pickle: bool) -> TorchModel:
    """Load ``path`` in eval mode; raises ExportError with one line when it cannot."""
    path = Path(path)
    if path.is_dir():
        raise ExportError(f"{path} is a directory, not a PyTorch model file", "pass a .pt, .pth or .pt2 file")
    kind = _archive_kind(path)
    ignored = (f"--torch-factory {factory} is not used: the file holds its own model code",) if factory else ()
    if kind == "torchscript":
        try:
            with quiet():
                module = torch.jit.load(str(path), map_location="cpu")  # type: ignore[no-untyped-call]
        except Exception as error:  # torch raises RuntimeError and friends
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


# -- ExportedPrograms ---------------------------------------------------------------------------


def _load_exported_program(path: Path, notes: tuple[str, ...]) -> TorchModel:
    try:
        with quiet():
            program = torch.export.load(str(path))
    except Exception as error:  # torch raises many types for a bad archive
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
        symbolic[1:] = [c if s is None else s for c, s in zip(concrete[1:], symbolic[1:], strict=True)]
    per_sample = symbolic[1:]
    input_shape = tuple(size for size in per_sample if size is not None)
    known = bool(symbolic) and len(input_shape) == len(per_sample)
    return (input_shape if known else None), (symbolic[0] if symbolic else None)


# -- torch.save files ---------------------------------------------------------------------------


def _load_torch_save(path: Path, factory: str | None, trust_pickle: bool) -> TorchModel:
    content = _read_torch_save(path, trust_pickle)
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
    model = build_model(factory)
    notes.extend(_load_weights(model, dict(content), path, factory))
    return TorchModel(model.eval(), f"state_dict + factory {factory}", notes=tuple(notes))


def _read_torch_save(path: Path, trust_pickle: bool) -> Any:
    """What ``torch.save`` wrote: weights only, or (with ``trust_pickle``) any pickled object."""
    try:
        with quiet():
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        match = _UNSUPPORTED_GLOBAL.search(str(error))
        if match is None:
            raise _unreadable(path) from None
        if not trust_pickle:
            raise ExportError(
                f"{path} is a pickled Python object ({match.group(1)}), such as a whole nn.Module; unpickling it can execute arbitrary code",
                "pass --trust-pickle if you trust its source, or save a state_dict and use --torch-factory",
            ) from None
    except Exception:  # EOFError, RuntimeError, ... all mean "not a torch file"
        raise _unreadable(path) from None
    return _unpickle(path)


def _unreadable(path: Path) -> ExportError:
    return ExportError(
        f"{path} is not a PyTorch model torch can read (neither a TorchScript archive, an ExportedProgram nor a torch.save file)",
        "check the file; save the model with torch.save, torch.jit.save or torch.export.save",
    )


def _unpickle(path: Path) -> Any:
    try:
        with quiet():
            return torch.load(str(path), map_location="cpu", weights_only=False)
    except Exception as error:  # a missing class raises AttributeError, ModuleNotFoundError, ...
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


def _load_weights(model: torch.nn.Module, weights: dict[str, torch.Tensor], path: Path, factory: str) -> list[str]:
    """Load ``weights`` strictly, after removing a wrapper's key prefix; returns notes."""
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
