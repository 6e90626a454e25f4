"""``halfconv doctor``: whether this machine can run models on CUDA, and what to install if not."""

from __future__ import annotations

__all__ = ["DOCTOR"]

import argparse
import dataclasses
import json

from ..core import ProviderError
from ._command import Command


def _doctor_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the facts as JSON on stdout")


def _run_doctor(args: argparse.Namespace) -> int:
    from ..core import _doctor

    facts = _doctor.runtime_facts()
    code = 0 if facts.cuda_ready else ProviderError.exit_code
    if args.json:
        record = dataclasses.asdict(facts)
        record.update(cuda_ready=facts.cuda_ready, fix=facts.fix())
        print(json.dumps(record, indent=2))
        return code
    package = f"{facts.package} {facts.version}" if facts.package else f"onnxruntime {facts.version} (from no known package)"
    lines = [
        f"onnxruntime      {package}",
        f"providers        {', '.join(facts.providers)}",
        f"CUDA session     {'yes: --provider cuda works' if facts.cuda_ready else f'no: {facts.cuda_reason}'}",
    ]
    for library in facts.libraries:
        where = f"{library.version or 'version unknown'} ({library.where})" if library.where else "not found"
        lines.append(f"{library.name:16} {where}")
    lines.append(f"GPU              {facts.gpu or 'none found (nvidia-smi is missing or lists none)'}")
    lines.append(f"driver           {facts.driver or 'unknown'}")
    fix = facts.fix()
    if fix is not None:
        lines.append(f"fix              {fix}")
    if not facts.cuda_ready and facts.gpu is None:
        lines.append("                 and an NVIDIA GPU with its driver: no package supplies those")
    print("\n".join(lines))
    return code


DOCTOR = Command(
    "doctor",
    help="say whether ONNX Runtime can run on CUDA here, and what to install if not",
    description=(
        "Report the onnxruntime package and its providers, whether a CUDA session can really be created "
        "(and ORT's reason if not), the CUDA and cuDNN libraries found, the GPU and its driver, and the "
        "command that installs what is missing. Exits 10 when --provider cuda could not work."
    ),
    arguments=_doctor_arguments,
    run=_run_doctor,
)
