"""The shared kernel: errors, metadata keys, providers and sessions, model files, graph walks.

Every other subpackage may import these names; this package imports none of them.
"""

from __future__ import annotations

__all__ = [
    "CALIBRATION_KEY",
    "CONVERSION_KEY",
    "CPU_PROVIDER",
    "CUDA_PROVIDER",
    "CUDNN_CONV_ALGO_SEARCH",
    "DTYPE_ATTRIBUTES",
    "EXPORT_KEY",
    "EXTERNAL_DATA_THRESHOLD_BYTES",
    "LARGEST_FINITE",
    "ORT_ERRORS",
    "ORT_NUMPY_TYPES",
    "PREPROCESS_KEY",
    "PROVIDERS",
    "SMALLEST_NORMAL",
    "SMALLEST_SUBNORMAL",
    "SOURCE_MODEL_KEY",
    "AtomicOutput",
    "DtypeAttribute",
    "LoadedModel",
    "NodePlacement",
    "Placement",
    "ResolvedProvider",
    "RunTimedOut",
    "SaveTimings",
    "UniqueNames",
    "__version__",
    "all_graph_protos",
    "all_graphs",
    "check_input_model",
    "check_npz",
    "check_output_path",
    "choices_text",
    "cpu_model",
    "create_session",
    "cuda_unavailable_reason",
    "data_file_for",
    "format_magnitude",
    "gpu_and_driver",
    "graph_values",
    "infer_shapes_leniently",
    "lazy_exports",
    "load_model",
    "max_ir_version",
    "model_size_bytes",
    "model_stem",
    "named_subgraphs",
    "node_placement",
    "one_line",
    "paused_gc",
    "read_model_proto",
    "read_npz_bytes",
    "resolve_provider",
    "run_bounded",
    "save_for_runtime",
    "save_model",
    "tensor_bytes",
]

from typing import TYPE_CHECKING

from . import _errors
from ._errors import EXIT_CODES as EXIT_CODES
from ._errors import EXIT_INTERRUPTED as EXIT_INTERRUPTED
from ._errors import AccuracyGateError as AccuracyGateError
from ._errors import ConversionError as ConversionError
from ._errors import DatasetError as DatasetError
from ._errors import DatasetUnavailableError as DatasetUnavailableError
from ._errors import ExportError as ExportError
from ._errors import HalfconvError as HalfconvError
from ._errors import IncompatibleModelError as IncompatibleModelError
from ._errors import InputNotFoundError as InputNotFoundError
from ._errors import InvalidModelError as InvalidModelError
from ._errors import MissingDependencyError as MissingDependencyError
from ._errors import NothingToConvertError as NothingToConvertError
from ._errors import OutputError as OutputError
from ._errors import ProviderError as ProviderError
from ._errors import UsageError as UsageError
from ._errors import ValidationFailedError as ValidationFailedError
from ._gc import paused_gc
from ._lazy import lazy_exports
from ._limits import LARGEST_FINITE, SMALLEST_NORMAL, SMALLEST_SUBNORMAL
from ._metadata import CALIBRATION_KEY, CONVERSION_KEY, EXPORT_KEY, PREPROCESS_KEY, SOURCE_MODEL_KEY
from ._paths import model_stem
from ._providers import CPU_PROVIDER, CUDA_PROVIDER, PROVIDERS, ResolvedProvider
from ._text import choices_text, format_magnitude, one_line
from ._version import __version__

if TYPE_CHECKING:
    from ._bounded import RunTimedOut, run_bounded
    from ._graphs import UniqueNames, all_graph_protos, all_graphs, graph_values, infer_shapes_leniently, named_subgraphs
    from ._model_io import LoadedModel, check_input_model, load_model, model_size_bytes, read_model_proto
    from ._model_save import (
        EXTERNAL_DATA_THRESHOLD_BYTES,
        AtomicOutput,
        SaveTimings,
        check_output_path,
        data_file_for,
        save_for_runtime,
        save_model,
        tensor_bytes,
    )
    from ._npz import check_npz, read_npz_bytes
    from ._ops import DTYPE_ATTRIBUTES, DtypeAttribute
    from ._placement import NodePlacement, Placement, node_placement
    from ._runtime import (
        CUDNN_CONV_ALGO_SEARCH,
        ORT_ERRORS,
        ORT_NUMPY_TYPES,
        cpu_model,
        create_session,
        cuda_unavailable_reason,
        gpu_and_driver,
        max_ir_version,
        resolve_provider,
    )

__all__ += _errors.__all__

# Searched in this order: the modules that import nothing heavy first.
__getattr__, __dir__ = lazy_exports(__name__, ("._placement", "._npz", "._bounded", "._graphs", "._model_io", "._model_save", "._ops", "._runtime"))
