"""A loaded PyTorch model, and its export to ONNX.

Export prefers the torch.export-based exporter (``dynamo=True``) and falls back to the
TorchScript exporter when it fails; a note says why. Both write one self-contained
``.onnx`` file whose batch axis is dynamic.
"""

from __future__ import annotations

__all__ = ["DYNAMO_EXPORTER", "TORCHSCRIPT_EXPORTER", "TorchModel", "quiet"]

import contextlib
import importlib.util
import io
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx.external_data_helper
import torch  # an ImportError here becomes MissingDependencyError in _pipeline._load

from ..core import ExportError, one_line

DYNAMO_EXPORTER = f"torch.onnx.export(dynamo=True), torch.export-based, torch {torch.__version__}"
TORCHSCRIPT_EXPORTER = f"torch.onnx.export(dynamo=False), TorchScript-based, torch {torch.__version__}"
# Batch 1 can be specialised into the graph by torch.export; 2 keeps the axis symbolic.
_EXAMPLE_BATCH = 2
_INPUT_NAME = "input"
_OUTPUT_NAME = "logits"
_QUIET_LOGGERS = ("torch", "onnxscript", "onnx_ir")


class TorchModel:
    """A loaded PyTorch model in eval mode; satisfies ``_pipeline.FrameworkModel``."""

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
        self.notes = notes  # what loading did that the export's summary should say
        self._module = module
        self._export_module = module if export_module is None else export_module
        self._static_batch = static_batch  # an ExportedProgram traced without a dynamic batch
        # The export runs the module on float32 inputs, so one with float16 parameters fails
        # before any check; one trained with torch.autocast stores float32 parameters.
        self.compute_dtype = "float32"

    def run(self, x: np.ndarray) -> np.ndarray:
        inputs = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        with torch.no_grad():
            if self._static_batch is None:
                output = _first_tensor(self._module(inputs))
            else:
                batch = self._static_batch
                chunks = [inputs[start : start + batch] for start in range(0, len(inputs), batch)]
                output = torch.cat([self._run_padded(chunk, batch) for chunk in chunks])
        return output.detach().to(device="cpu", dtype=torch.float32).numpy()

    def _run_padded(self, chunk: torch.Tensor, batch: int) -> torch.Tensor:
        missing = batch - len(chunk)
        if missing:
            chunk = torch.cat([chunk, chunk.new_zeros((missing, *chunk.shape[1:]))])
        return _first_tensor(self._module(chunk))[: len(chunk) - missing]

    def export(self, path: Path, input_shape: tuple[int, ...], opset: int) -> tuple[str, list[str]]:
        """Write ``path`` with a dynamic batch axis; returns (exporter, notes)."""
        example = torch.zeros((_EXAMPLE_BATCH, *input_shape), dtype=torch.float32)
        notes = list(self.notes)
        if isinstance(self._export_module, torch.jit.ScriptModule):
            reason = None  # torch.export cannot trace TorchScript, so do not spend time trying
        elif importlib.util.find_spec("onnxscript") is None:
            reason = "onnxscript, which it needs, is not installed"
        else:
            try:
                _export_with(self._export_module, example, path, opset, dynamo=True)
                return DYNAMO_EXPORTER, notes
            except Exception as error:  # any failure means "try the other exporter"
                reason = one_line(error)
                _remove_export(path)
        try:
            _export_with(self._export_module, example, path, opset, dynamo=False)
        except Exception as error:  # the exporter's own error, in one line
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


def _export_with(module: torch.nn.Module, example: torch.Tensor, path: Path, opset: int, *, dynamo: bool) -> None:
    """Write ``path`` with one of torch's two ONNX exporters, the batch axis dynamic either way."""
    batch_axis: dict[str, Any] = (
        {"dynamic_shapes": ({0: torch.export.Dim("batch", min=1)},), "external_data": False}
        if dynamo
        else {"dynamic_axes": {_INPUT_NAME: {0: "batch"}, _OUTPUT_NAME: {0: "batch"}}}
    )
    with quiet(), torch.no_grad():
        torch.onnx.export(
            module,
            (example,),
            str(path),
            dynamo=dynamo,
            opset_version=opset,
            input_names=[_INPUT_NAME],
            output_names=[_OUTPUT_NAME],
            verbose=False,
            **batch_axis,
        )
    _inline_external_data(path)


def _first_tensor(output: object) -> torch.Tensor:
    """A classifier's logits: the output itself, or the first element of a tuple/list."""
    if isinstance(output, (tuple, list)) and output:
        output = output[0]
    if not isinstance(output, torch.Tensor):
        # A TypeError, which _pipeline reports as "the model fails on inputs ...".
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
def quiet() -> Iterator[None]:
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
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
