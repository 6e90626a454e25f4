"""A calibrated conversion: measure the model on training images, decide, then convert.

1. The conversion's plan (policy, keep lists, weight checks) gives the nodes that would
   convert; the search model switches each one's fp16 rounding (``_search_model``).
2. One float32 pass over the calibration images streams every value's range; a value
   that does not fit the target keeps its nodes float32 (``_decide``).
3. Trials on the validation images check the accuracy budget; when the candidate misses
   it, the nodes are ranked by the error they introduce and a bisection keeps the fewest
   in ranked order (``_search``).
4. ``halfconv.conversion.convert`` writes the model, with every measured decision and
   the calibration's record in its metadata.
"""

from __future__ import annotations

__all__ = ["calibrated_convert"]

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx_ir as ir
import onnxruntime as ort

from .. import core
from ..conversion import TARGET_TYPES, ConvertOptions, MeasuredKeep, convert, default_output_path, rounding_slots
from ..core import (
    CALIBRATION_KEY,
    LARGEST_FINITE,
    SMALLEST_NORMAL,
    AccuracyGateError,
    IncompatibleModelError,
    NothingToConvertError,
    UsageError,
)
from ..evaluation import read_signature, top1
from ._data import CalibrationData, load_calibration
from ._decide import RANGE_MARGIN, introduced_errors, range_decisions
from ._options import CalibrationOptions
from ._results import CalibratedConversion, CalibrationReport, Decision, RankedNode
from ._runner import SearchRunner
from ._search import Trial, search
from ._search_model import SearchModel, build_search_model
from ._stats import ErrorStats, RangeStats

_TARGET_NAMES = {"fp16": "float16", "bf16": "bfloat16"}
_RANKING_SHOWN = 10


def calibrated_convert(
    input_path: str | Path, convert_options: ConvertOptions, options: CalibrationOptions
) -> CalibratedConversion:
    """Measure the model at ``input_path`` on calibration images, then convert it with those decisions.

    The input is never modified, and nothing is written unless the conversion succeeds.
    Raises AccuracyGateError when no node can be fp16 within the budget.
    """
    started = time.perf_counter()
    options.check()
    convert_options.check()
    if convert_options.engine != "halfconv":
        raise UsageError("--calibration applies to the halfconv engine only", "use --engine halfconv")
    if not convert_options.keep_io_types:
        raise UsageError(
            "--calibration needs --keep-io-types: with float16 inputs and outputs, no trial would compute the float32 model",
            "drop --no-keep-io-types, or --calibration",
        )
    input_path = Path(input_path)
    report, sample = _measure(input_path, convert_options, options, started)
    measured = tuple(MeasuredKeep(d.node_index, d.name, d.op_type, d.reason, d.source) for d in report.decisions)
    conversion = convert(
        input_path,
        convert_options,
        measured=measured,
        metadata={CALIBRATION_KEY: json.dumps(report.to_json_dict(timings=False), sort_keys=True)},
        validation_inputs=sample,  # the numeric check runs on real images, not random ones
    )
    return CalibratedConversion(conversion, report)


class _Calibration:
    """The measurements of one calibration, in the session of its search model."""

    def __init__(self, runner: SearchRunner, data: CalibrationData, options: CalibrationOptions, target: str) -> None:
        self.runner = runner
        self.data = data
        self.options = options
        self.target_name = _TARGET_NAMES[target]
        self.largest = LARGEST_FINITE[self.target_name]
        self.limit = self.largest / RANGE_MARGIN
        self.phase_s: dict[str, float] = {}
        self.ranking: tuple[RankedNode, ...] = ()
        self.introduced: dict[int, tuple[int, float]] = {}  # switch -> (its rank, the error it introduces)
        self.groups: list[tuple[int, frozenset[int]]] = []  # in ranked order: a switch, and those moving with it

    def ranges(self) -> dict[int, Decision]:
        started = time.perf_counter()
        model, runner = self.runner.model, self.runner
        smallest = SMALLEST_NORMAL[self.target_name]
        outputs = RangeStats(tuple(runner.names), self.limit, smallest)
        inputs = RangeStats(tuple(v.name for v in model.input_values), self.limit, smallest)
        fp32 = runner.mask(frozenset(range(len(model.switches))))
        for x, (values,) in runner.exposed(self.data.calibration, [fp32]):
            outputs.update(values, x.shape[0])
            inputs.update([x] if model.input_values else [], x.shape[0])
        decided = range_decisions(model, outputs, inputs, self.target_name, self.largest)
        self.phase_s["ranges_s"] = time.perf_counter() - started
        return decided

    def accuracy(self, kept_fp32: frozenset[int]) -> float:
        logits = self.runner.logits(self.data.validation, kept_fp32)
        if logits.ndim != 2 or logits.shape[1] != self.data.classes:
            raise IncompatibleModelError(
                f"the model outputs shape {logits.shape} for {self.data.provenance.dataset} images, "
                f"not (N, {self.data.classes})",
                "calibrate on the dataset the model was trained on",
            )
        return top1(logits, self.data.validation_labels, self.data.classes)[1]

    def search(self, base: frozenset[int]) -> tuple[float, frozenset[int], list[Trial]]:
        """float32's validation accuracy, the switches to keep float32, and every trial."""
        started = time.perf_counter()
        switches = len(self.runner.model.switches)
        fp32_accuracy = self.accuracy(frozenset(range(switches)))
        kept, trials = search(self.accuracy, fp32_accuracy, self.options.budget_pp, base, lambda: self.rank(base), switches)
        self.phase_s["trials_s"] = time.perf_counter() - started - self.phase_s.get("ranking_s", 0.0)
        return fp32_accuracy, kept, trials

    def rank(self, candidate: frozenset[int]) -> list[frozenset[int]]:
        """The switches not in ``candidate``, the largest introduced error first (ties in graph order),
        each with the switches producing its inputs, which move to float32 with it."""
        started = time.perf_counter()
        runner = self.runner
        model = runner.model
        errors = ErrorStats(tuple(runner.names))
        every = frozenset(range(len(model.switches)))
        for _, (reference, values) in runner.exposed(self.data.calibration, [runner.mask(every), runner.mask(candidate)]):
            errors.update(reference, values)
        introduced = introduced_errors(model, errors)
        ranked = sorted((s for s in range(len(introduced)) if s not in candidate), key=lambda s: (-introduced[s], s))
        self.introduced = {s: (rank, float(introduced[s])) for rank, s in enumerate(ranked, 1)}
        self.ranking = tuple(
            RankedNode(model.switches[s].name, model.switches[s].op_type, float(introduced[s])) for s in ranked[:_RANKING_SHOWN]
        )
        producers = {v.name: v.producer for v in model.exposed}
        self.groups = [
            (s, frozenset({s, *(p for name in model.switches[s].inputs if (p := producers.get(name)) is not None)}) - candidate)
            for s in ranked
        ]
        self.phase_s["ranking_s"] = time.perf_counter() - started
        return [group for _, group in self.groups]


_VALIDATION_IMAGES = 64  # calibration images that convert's numeric check runs on


def _measure(
    input_path: Path, convert_options: ConvertOptions, options: CalibrationOptions, started: float
) -> tuple[CalibrationReport, dict[str, np.ndarray]]:
    loaded = core.load_model(input_path)
    output = Path(convert_options.output) if convert_options.output else default_output_path(input_path, convert_options.target)
    core.check_output_path(input_path, output, convert_options.force, loaded.external_files)
    model, expose = build_search_model(loaded.model, rounding_slots(loaded.model, convert_options), TARGET_TYPES[convert_options.target])
    if not model.switches:
        raise NothingToConvertError(
            f"no node of {input_path.name} would convert to {convert_options.target}, so there is nothing to calibrate",
            "nothing was written; convert it without --calibration to see why",
        )
    external = bool(loaded.external_files)
    with tempfile.TemporaryDirectory(prefix="halfconv-calibration-") as folder:
        trials_session = _session(loaded.model, Path(folder) / "search.onnx", external)
        expose()
        sessions = (trials_session, _session(loaded.model, Path(folder) / "instrumented.onnx", external))
        signature = read_signature(trials_session, input_path.name, ignore=frozenset({model.mask_name}))
        data = load_calibration(options, signature, input_path.name)
        runner = SearchRunner(sessions, model, signature, data.provenance.preprocessing.fixed_batch)
        calibration = _Calibration(runner, data, options, convert_options.target)
        calibration.phase_s["prepare_s"] = time.perf_counter() - started
        decided = calibration.ranges()
        if len(decided) == len(model.switches):
            first = next(iter(decided.values()))
            raise NothingToConvertError(
                f"every convertible node of {input_path.name} stays float32 by its measured activation range "
                f"({len(decided)} nodes; {first.name or first.op_type}: {first.reason})",
                "nothing was written; converted without data, its values would leave the target's range",
            )
        fp32_accuracy, kept, trials = calibration.search(frozenset(decided))
    if model.switches and kept == frozenset(range(len(model.switches))):
        best = min((t for t in trials if t.kept_fp32 < len(model.switches)), key=lambda t: t.drop_pp)
        raise AccuracyGateError(
            f"no node of {input_path.name} can be {convert_options.target} within the accuracy budget of "
            f"{options.budget_pp:g} pp: the closest trial dropped {best.drop_pp:.2f} pp with {best.kept_fp32} of "
            f"{len(model.switches)} nodes float32",
            "raise --accuracy-budget, or keep the model float32",
        )
    accuracy = next(t.accuracy for t in reversed(trials) if t.within_budget and t.kept_fp32 == len(kept))
    drop = (fp32_accuracy - accuracy) * 100.0
    decisions = _decisions(model, decided, kept, calibration, f"{drop:.2f} pp, within {options.budget_pp:g} pp")
    sample = {signature.input_name: data.calibration.batch(0, _VALIDATION_IMAGES)}
    return CalibrationReport(
        provenance=data.provenance,
        target=convert_options.target,
        budget_pp=options.budget_pp,
        range_limit=calibration.limit,
        largest_finite=calibration.largest,
        switchable_nodes=len(model.switches),
        decisions=decisions,
        trials=tuple(trials),
        fp32_accuracy=fp32_accuracy,
        accuracy=accuracy,
        ranking=calibration.ranking,
        sessions=len(sessions),
        model_runs=runner.runs,
        time_s=time.perf_counter() - started,
        phase_s=calibration.phase_s,
    ), sample


def _session(model: ir.Model, path: Path, external: bool) -> ort.InferenceSession:
    model.ir_version = min(model.ir_version, core.max_ir_version())  # as convert writes it
    core.save_for_runtime(model, path, external)
    return core.create_session(path, core.resolve_provider("cpu"))


def _decisions(
    model: SearchModel, decided: dict[int, Decision], kept: frozenset[int], calibration: _Calibration, outcome: str
) -> tuple[Decision, ...]:
    """Every switch kept float32, with its reason: its range, or its place in the error ranking."""
    decisions = dict(decided)
    searched = kept - set(decided)
    total = len(calibration.introduced)
    for switch in sorted(searched):
        node = model.switches[switch]
        lead = next(lead for lead, group in calibration.groups if switch in group)
        rank, error = calibration.introduced[lead]
        if lead == switch:
            why = f"its fp16 rounding adds relative error {error:.3g} on the calibration images (rank {rank} of {total})"
        else:
            other = model.switches[lead]
            why = (
                f"it produces an input of {other.op_type} '{other.name}' (rank {rank} of {total}, relative error "
                f"{error:.3g}), which must not be stored in fp16 for that node"
            )
        reason = f"{why}; with the {len(searched)} node(s) so kept float32 the validation drop is {outcome}"
        decisions[switch] = Decision(node.node_index, node.name, node.op_type, "accuracy", reason)
    return tuple(decisions[s] for s in sorted(decisions))
