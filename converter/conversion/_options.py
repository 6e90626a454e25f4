"""The options of a conversion, declared once with their defaults and their checks."""

from __future__ import annotations

__all__ = ["ENGINES", "TARGETS", "ConvertOptions"]

import dataclasses
from pathlib import Path

from ..core import UsageError, choices_text
from ..numerics import NUMERICS

TARGETS = ("fp16", "bf16")
ENGINES = ("halfconv", "onnxconverter-common")


@dataclasses.dataclass(frozen=True)
class ConvertOptions:
    """Options of ``halfconv convert``; the CLI flags map one to one onto these fields."""

    output: Path | None = None  # default: MODEL.fp16.onnx / MODEL.bf16.onnx beside the input
    target: str = "fp16"  # one of TARGETS
    keep_ops: tuple[str, ...] = ()  # op types that stay float32, on top of the default policy
    keep_nodes: tuple[str, ...] = ()  # node names that stay float32
    keep_io_types: bool = True  # keep float32 graph inputs and outputs
    engine: str = "halfconv"  # one of ENGINES
    force: bool = False  # overwrite an existing output
    validate: bool = True  # checker, ORT load and numeric check before the file is kept
    sample: Path | None = None  # .npz of real inputs for the numeric check
    allow_nonfinite: bool = False  # accept inf/NaN that appear only after conversion
    use_default_policy: bool = True  # False drops the default keep-float32 table
    clamp_weights: bool = False  # convert weights the target cannot hold, clamped, instead of keeping their users float32
    numerics: str = "auto"  # one of NUMERICS: how the numeric check computes the converted model
    diagnose: bool = False  # compare every stored value with float32 in validation (--explain)

    def check(self) -> None:
        """Raise UsageError for a value out of range or options that contradict each other."""
        if self.target not in TARGETS:
            raise UsageError(f"unknown target '{self.target}'", "use " + choices_text(TARGETS))
        if self.engine not in ENGINES:
            raise UsageError(f"unknown engine '{self.engine}'", "use " + choices_text(ENGINES))
        if self.engine == "onnxconverter-common" and self.target != "fp16":
            raise UsageError("onnxconverter-common converts to fp16 only", "use --engine halfconv for bf16")
        if self.engine == "onnxconverter-common" and not self.use_default_policy:
            raise UsageError(
                "--no-default-policy applies to the halfconv engine only",
                "drop it or use --engine halfconv",
            )
        if self.numerics not in NUMERICS:
            raise UsageError(f"unknown numerics '{self.numerics}'", "use " + choices_text(NUMERICS))
        if not self.validate and self.sample is not None:
            raise UsageError("--sample and --no-validate are mutually exclusive", "drop one of them")
        if self.sample is not None and not Path(self.sample).is_file():
            # Checked before the model is read: a FIFO would be read forever, and a typo found late.
            what = "does not exist" if not Path(self.sample).exists() else "is not a regular file"
            raise UsageError(f"--sample {self.sample} {what}", "pass an .npz saved with numpy.savez")
