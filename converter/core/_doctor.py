"""What this machine offers ONNX Runtime: the package, its providers, CUDA, cuDNN, the GPU.

``halfconv doctor`` prints these facts; ``--provider cuda`` needs every one of them. The
CUDA libraries are looked for where ``onnxruntime-gpu[cuda,cudnn]`` installs them (the
``nvidia`` wheels in site-packages) and where the dynamic loader finds them
(``ldconfig -p``). Whether a CUDA session can be created is asked of ONNX Runtime itself.
"""

from __future__ import annotations

__all__ = ["CUDA_FIX", "LibraryFound", "RuntimeFacts", "runtime_facts"]

import dataclasses
import importlib.metadata
import re
import shutil
import subprocess
import sys
from pathlib import Path

CUDA_FIX = "pip install 'halfconv[cuda]'"
# The libraries ORT's CUDA provider loads, by the name a loader or wheel gives them.
_LIBRARIES = {"cuBLAS": "libcublasLt.so", "cuDNN": "libcudnn.so", "CUDA runtime": "libcudart.so"}
_PACKAGES = ("onnxruntime-gpu", "onnxruntime")


@dataclasses.dataclass(frozen=True)
class LibraryFound:
    name: str  # cuBLAS, cuDNN, CUDA runtime
    version: str | None  # the file's own version suffix (13, 9.1.0), or the wheel's version
    where: str | None  # its path, or None when it was not found


@dataclasses.dataclass(frozen=True)
class RuntimeFacts:
    package: str | None  # onnxruntime-gpu, onnxruntime, or None
    version: str
    providers: tuple[str, ...]
    cuda_reason: str | None  # None: a CUDA session was created
    libraries: tuple[LibraryFound, ...]
    gpu: str | None
    driver: str | None

    @property
    def cuda_ready(self) -> bool:
        return self.cuda_reason is None

    def fix(self) -> str | None:
        """The one command that supplies what is missing, or None when CUDA works (or no command can help)."""
        if self.cuda_ready:
            return None
        if self.package != "onnxruntime-gpu":
            return "pip uninstall -y onnxruntime && pip install onnxruntime-gpu && " + CUDA_FIX
        if any(library.where is None for library in self.libraries) or "cannot open shared object" in (self.cuda_reason or ""):
            return CUDA_FIX
        return None  # the libraries are there: a missing GPU or driver is no package's to supply


def _package() -> tuple[str | None, str]:
    for name in _PACKAGES:
        try:
            return name, importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None, "unknown"


def _ldconfig() -> list[str]:
    tool = shutil.which("ldconfig") or ("/sbin/ldconfig" if Path("/sbin/ldconfig").exists() else None)
    if tool is None:
        return []
    try:
        done = subprocess.run([tool, "-p"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.rsplit("=>", 1)[-1].strip() for line in done.stdout.splitlines() if "=>" in line]


def _libraries() -> tuple[LibraryFound, ...]:
    candidates = [str(p) for base in map(Path, sys.path) if (base / "nvidia").is_dir() for p in (base / "nvidia").glob("*/lib/*.so*")]
    candidates += _ldconfig()
    found = []
    for name, stem in _LIBRARIES.items():
        paths = sorted(p for p in candidates if Path(p).name.startswith(stem))
        if not paths:
            found.append(LibraryFound(name, None, None))
            continue
        path = paths[-1]
        match = re.search(re.escape(stem) + r"\.([\d.]+)$", Path(path).name)
        found.append(LibraryFound(name, match.group(1) if match else None, path))
    return tuple(found)


def runtime_facts() -> RuntimeFacts:
    import onnxruntime as ort

    from ._runtime import cuda_unavailable_reason, gpu_and_driver

    package, version = _package()
    gpu, driver = gpu_and_driver()
    return RuntimeFacts(
        package=package,
        version=version if package else ort.__version__,
        providers=tuple(ort.get_available_providers()),
        cuda_reason=cuda_unavailable_reason(),
        libraries=_libraries(),
        gpu=gpu,
        driver=driver,
    )
