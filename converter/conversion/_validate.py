"""Validation of a converted model before it is kept.

1. ``onnx.checker`` full check by path (works past 2 GiB and with external data), which
   includes strict shape and type inference;
2. an ONNX Runtime CPU session loads the model (or a CUDA one, for bfloat16, where the
   CPU provider has no kernels);
3. the float32 model and the converted model's numbers run on the same inputs (random
   within [0, 1) for floats and {0, 1} for integers, or ``--sample FILE.npz``), and the
   maximum absolute and relative error of every output is reported. On the CPU the
   numbers come from the numerics model (float16 storage emulated, see
   :mod:`halfconv.numerics`), because ORT's CPU provider never rounds float16
   activations. Non-finite values that appear only in the converted model fail
   validation unless allowed, naming the first node whose output leaves the float16
   range or diverges.
"""

from __future__ import annotations

__all__ = ["ValidationOptions", "check_converted", "validate_converted"]

import concurrent.futures
import contextlib
import dataclasses
import io
import math
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from .. import core
from ..core import (
    CPU_PROVIDER,
    CUDA_PROVIDER,
    ORT_ERRORS,
    ORT_NUMPY_TYPES,
    HalfconvError,
    InvalidModelError,
    ProviderError,
    UsageError,
    ValidationFailedError,
    one_line,
)
from ..numerics import EmulatedModel, NodeDivergence, diverging_nodes, emulated_copy, native_label, numerics_label
from ._results import OutputDifference, ValidationReport

_BUG_HINT = "this is a halfconv bug; please report it, and try --keep-op on the op named"


@dataclasses.dataclass(frozen=True)
class ValidationOptions:
    sample: Path | None = None
    allow_nonfinite: bool = False
    seed: int = 0
    numerics: str = "auto"  # auto | emulated | native, see halfconv.numerics.NUMERICS
    diagnose: bool = False  # compare every stored value with float32, for --explain
    # Real inputs given in memory (a calibration's images) and what to call them; --sample wins.
    feeds: Mapping[str, np.ndarray] | None = None
    feeds_from: str = "calibration"


def _cpu_session(path: Path) -> ort.InferenceSession:
    # Graph optimisations only fuse and fold; on big float16 graphs the CPU provider spends
    # tens of seconds in them (16,000 nodes: 33 s with all optimisations, 17 s without).
    return core.create_session(path, core.resolve_provider("cpu"), optimize=False)


def _reference_session(path: Path) -> ort.InferenceSession:
    """The float32 model's session; a model of a newer IR than ORT reads is loaded at the newest it does, as convert writes it."""
    try:
        return _cpu_session(path)
    except InvalidModelError:
        proto = onnx.load(str(path), load_external_data=False)
        if proto.ir_version <= core.max_ir_version():
            raise
        if any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer):
            raise  # its external data is found from its own folder: not rewritten elsewhere
        proto.ir_version = core.max_ir_version()
        with tempfile.TemporaryDirectory(prefix="halfconv-reference-") as folder:
            lowered = Path(folder) / path.name
            onnx.save(proto, str(lowered))
            return _cpu_session(lowered)


def _converted_session(path: Path, bfloat16: bool) -> tuple[ort.InferenceSession | None, str | None]:
    """The converted model's session and provider; (None, reason) when no provider here has its kernels."""
    try:
        return _cpu_session(path), CPU_PROVIDER
    except ProviderError as error:
        if not bfloat16:
            raise ValidationFailedError(f"the converted model cannot run on the CPU: {error.what}", _BUG_HINT) from None
        if core.cuda_unavailable_reason() is None:
            return core.create_session(path, core.resolve_provider("cuda"), optimize=False), CUDA_PROVIDER
        return None, (
            f"ORT load: the CPU provider has no bfloat16 kernel ({error.what}) "
            "and no CUDA provider could be created"
        )
    except InvalidModelError as error:
        raise ValidationFailedError(f"the converted model fails to load: {error.what}", _BUG_HINT) from None


def _inputs(
    session: ort.InferenceSession, options: ValidationOptions
) -> tuple[dict[str, np.ndarray], str]:
    if options.sample is not None:
        hint = "pass an .npz saved with numpy.savez, one numeric array per model input"
        sample = Path(options.sample)
        data = core.read_npz_bytes(sample, "--sample", hint, UsageError)
        core.check_npz(data, f"--sample {sample}", hint, UsageError)
        try:
            archive = np.load(io.BytesIO(data), allow_pickle=False)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
            raise UsageError(f"cannot read --sample {options.sample}: {one_line(error)}", hint) from None
        feeds: dict[str, np.ndarray] = {}
        for model_input in session.get_inputs():
            if model_input.name not in archive.files:
                raise UsageError(
                    f"--sample {options.sample} has no array named '{model_input.name}'",
                    f"save one array per model input ({', '.join(i.name for i in session.get_inputs())})",
                )
            try:
                feeds[model_input.name] = np.asarray(archive[model_input.name])
            except ValueError as error:  # object arrays need pickle, which is refused
                raise UsageError(f"--sample array '{model_input.name}' cannot be read: {one_line(error)}", hint) from None
        return feeds, str(options.sample)
    if options.feeds is not None:
        return dict(options.feeds), options.feeds_from
    rng = np.random.default_rng(options.seed)
    feeds = {}
    for model_input in session.get_inputs():
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in model_input.shape]
        dtype = ORT_NUMPY_TYPES.get(model_input.type)
        if dtype is None:
            raise ValidationFailedError(
                f"cannot make a random value for input '{model_input.name}' of type {model_input.type}",
                "pass --sample FILE.npz with real inputs, or --no-validate",
            )
        if np.issubdtype(dtype, np.floating):
            feeds[model_input.name] = rng.random(shape, dtype=np.float32).astype(dtype)
        elif dtype is np.bool_:
            # np.asarray: a 0-d comparison returns a numpy scalar, which ORT rejects.
            feeds[model_input.name] = np.asarray(rng.random(shape) < 0.5)
        else:
            feeds[model_input.name] = rng.integers(0, 2, size=shape).astype(dtype)
    return feeds, "random"


_MAX_RANDOM_ELEMENTS = 1 << 26  # elements of one made-up input (256 MiB of float32)


def _too_big_for_random(session: ort.InferenceSession) -> str | None:
    """Why made-up inputs cannot be used: an input whose declared shape is too large to allocate, or None."""
    for model_input in session.get_inputs():
        dims = [d if isinstance(d, int) and d > 0 else 1 for d in model_input.shape]
        if math.prod(dims) > _MAX_RANDOM_ELEMENTS:
            return (
                f"numeric check: input '{model_input.name}' declares {math.prod(dims):,} elements, more than "
                f"{_MAX_RANDOM_ELEMENTS:,} to make up; pass --sample FILE.npz"
            )
    return None


def _cast_feeds(session: ort.InferenceSession, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    cast: dict[str, np.ndarray] = {}
    for model_input in session.get_inputs():
        dtype = ORT_NUMPY_TYPES.get(model_input.type)
        value = feeds[model_input.name]
        cast[model_input.name] = value.astype(dtype) if dtype is not None else value
    return cast


def _compare(name: str, reference: object, converted: object) -> OutputDifference | None:
    if not isinstance(reference, np.ndarray) or not isinstance(converted, np.ndarray):
        return None
    if reference.shape != converted.shape:
        raise ValidationFailedError(
            f"output '{name}' has shape {converted.shape} after conversion, {reference.shape} before",
            "report this model to halfconv; use --keep-node to keep the producer in float32",
        )
    if reference.dtype.kind not in "fiub" or converted.dtype.kind not in "fiub":
        return None
    ref = reference.astype(np.float64)
    out = converted.astype(np.float64)
    ref_finite = np.isfinite(ref)
    both = ref_finite & np.isfinite(out)
    nonfinite = int(np.count_nonzero(ref_finite & ~np.isfinite(out)))
    if not both.any():
        return OutputDifference(name, None, None, nonfinite)  # no element is finite in both: no error to give
    diff = np.abs(ref[both] - out[both])
    max_abs = float(diff.max())
    scale = float(np.abs(ref[both]).max())
    max_rel = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else float("inf"))
    return OutputDifference(name, max_abs, max_rel, nonfinite)


def check_converted(path: Path) -> None:
    """The ONNX checker with strict inference, by path: cheap, so it runs even under --no-validate."""
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as error:  # checker and inference errors come as several types
        raise ValidationFailedError(f"the converted model fails the ONNX checker: {one_line(error)}", _BUG_HINT) from None


# One run of either model in the numeric check may take this long; then the check is
# skipped (validation "partial"), so a model that runs for hours is not waited for.
RUN_TIME_LIMIT_S = 60.0


@dataclasses.dataclass(frozen=True)
class _Ran:
    reference: list[object]
    converted: list[object]
    inputs_from: str
    feeds: dict[str, np.ndarray]


def _run_both(reference: ort.InferenceSession, converted: ort.InferenceSession, options: ValidationOptions) -> _Ran | str:
    """Both models' outputs on the same inputs, or why the numeric check cannot run."""
    if options.sample is None and options.feeds is None:
        too_big = _too_big_for_random(reference)
        if too_big is not None:
            return too_big
    feeds, inputs_from = _inputs(reference, options)
    try:
        reference_outputs = core.run_bounded(reference, _cast_feeds(reference, feeds), RUN_TIME_LIMIT_S)
    except core.RunTimedOut as error:
        return f"numeric check: the float32 model {error} on these inputs and was stopped"
    except ORT_ERRORS as error:
        if options.sample is not None:
            raise UsageError(
                f"the float32 model fails on the --sample inputs: {one_line(error)}",
                "match the model's input names, shapes and types",
            ) from None
        return f"numeric check: the float32 model fails on these inputs ({one_line(error)})"
    try:
        converted_outputs = core.run_bounded(converted, _cast_feeds(converted, feeds), RUN_TIME_LIMIT_S)
    except core.RunTimedOut as error:
        return f"numeric check: the converted model {error} on these inputs and was stopped"
    except ORT_ERRORS as error:
        raise ValidationFailedError(
            f"the converted model fails at run time where the float32 model runs: {one_line(error)}",
            "this is a halfconv bug; please report it",
        ) from None
    return _Ran(reference_outputs, converted_outputs, inputs_from, feeds)


@dataclasses.dataclass(frozen=True)
class _Numbers:
    """The session whose outputs stand for the converted model, and what computed them."""

    session: ort.InferenceSession | None
    label: str
    emulation: EmulatedModel | None  # for diagnosis


@contextlib.contextmanager
def _numbers(
    converted_path: Path, converted: Callable[[], ort.InferenceSession | None], provider: str, numerics: str
) -> Iterator[_Numbers]:
    """The session whose outputs stand for the converted model's: its numerics model's, or (native) its own."""
    emulate = numerics == "emulated" or (numerics == "auto" and provider != CUDA_PROVIDER)
    with emulated_copy(converted_path) if emulate else contextlib.nullcontext() as emulation:
        if emulation is None:
            # Native numbers, or nothing stored in 16 bits (the model is its own numerics model).
            label = native_label(onnx.load(str(converted_path), load_external_data=False), provider)
            yield _Numbers(converted(), label, None)
            return
        session = _cpu_session(emulation.path)
        yield _Numbers(session, numerics_label(True, CPU_PROVIDER, emulation.stored), emulation)


def _diagnose(reference_path: Path, numbers: _Numbers, feeds: dict[str, np.ndarray]) -> tuple[NodeDivergence, ...]:
    emulation = numbers.emulation
    if emulation is None or emulation.external_data:
        return ()  # the native numbers cannot be looked into; external weights are not copied twice
    return tuple(diverging_nodes(reference_path, emulation.path, emulation.rounded, feeds))


def _nonfinite_error(worst: OutputDifference, divergences: tuple[NodeDivergence, ...]) -> ValidationFailedError:
    what = f"output '{worst.name}' has {worst.nonfinite_introduced} non-finite value(s) that the float32 model does not"
    first = next((d for d in divergences if d.diverged), None)
    if first is None:
        return ValidationFailedError(what, "keep the overflowing ops in float32 with --keep-op/--keep-node, or pass --allow-nonfinite")
    keep = f"--keep-node {first.node}" if first.node else f"--keep-op {first.op_type}"
    return ValidationFailedError(f"{what}: {first.describe()}", f"keep it in float32 with {keep}, or pass --allow-nonfinite")


def _expected_provider(bfloat16: bool) -> str:
    """Where the converted model will load: the CPU, or CUDA for bfloat16 where CUDA works."""
    return CUDA_PROVIDER if bfloat16 and core.cuda_unavailable_reason() is None else CPU_PROVIDER


def validate_converted(
    reference_path: Path, converted_path: Path, *, bfloat16: bool, options: ValidationOptions
) -> ValidationReport:
    """Validate ``converted_path`` against ``reference_path``; raises ValidationFailedError.

    ONNX Runtime builds the converted model's session in a second thread while this one
    builds the numerics model and runs both models: on big float16 graphs that session is
    the slowest step (ORT adds float32 fallbacks around every float16 node), and ORT
    releases the GIL while it works.
    """
    check_converted(converted_path)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="halfconv-ort-load")
    try:
        loading = pool.submit(_converted_session, converted_path, bfloat16)
        try:
            return _validate_numbers(reference_path, converted_path, bfloat16, options, loading)
        except KeyboardInterrupt:
            # The load cannot be cancelled, and file descriptor 2 is captured until it ends:
            # wait, so that "interrupted" reaches the terminal.
            concurrent.futures.wait([loading])
            raise
        except BaseException:
            loading.result()  # a model ORT cannot load is the error to report, whatever else failed
            raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _validate_numbers(
    reference_path: Path,
    converted_path: Path,
    bfloat16: bool,
    options: ValidationOptions,
    loading: concurrent.futures.Future[tuple[ort.InferenceSession | None, str | None]],
) -> ValidationReport:
    def loaded() -> tuple[tuple[str, ...], str | None]:
        converted, loaded_on = loading.result()
        return (() if converted is not None else (str(loaded_on),)), (loaded_on if converted is not None else None)

    try:
        reference = _reference_session(reference_path)
    except HalfconvError as error:
        skipped, provider = loaded()
        skipped += (f"numeric check: ONNX Runtime cannot load the float32 model ({error.what})",)
        return ValidationReport("partial", True, provider, (), None, skipped)
    with _numbers(converted_path, lambda: loading.result()[0], _expected_provider(bfloat16), options.numerics) as numbers:
        if numbers.session is None:
            skipped, provider = loaded()
            skipped += (f"numeric check: --numerics {options.numerics} needs the converted model to run",)
            return ValidationReport("partial", True, provider, (), None, skipped)
        ran = _run_both(reference, numbers.session, options)
        skipped, provider = loaded()
        if isinstance(ran, str):
            return ValidationReport("partial", True, provider, (), None, (*skipped, ran), numbers.label)
        names = [o.name for o in reference.get_outputs()]
        differences = tuple(d for d in map(_compare, names, ran.reference, ran.converted) if d is not None)
        introduced = [d for d in differences if d.nonfinite_introduced]
        failing = bool(introduced) and not options.allow_nonfinite
        divergences = _diagnose(reference_path, numbers, ran.feeds) if failing or options.diagnose else ()
    if failing:
        raise _nonfinite_error(introduced[0], divergences)
    status = "partial" if skipped else "passed"
    return ValidationReport(status, True, provider, differences, ran.inputs_from, skipped, numbers.label, divergences)
