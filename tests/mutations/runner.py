"""Run mutation cases in forked processes and judge each outcome against halfconv's promises.

A case is a command line and the files it reads. Each runs in a process forked from this
one (which has imported halfconv once), in a folder of its own, with an address-space
limit, stdout and stderr captured at the file-descriptor level (ONNX Runtime's C++ logs
too), and a time limit. The verdict lists every promise it broke:

- ``exit 1``: an internal error, where a bad input must get its own exit code;
- ``blames halfconv``: an error that calls itself a halfconv bug, for an input that is
  at fault (the converted model of a bad input failing validation, say);
- ``traceback``: a Python traceback on stderr;
- ``long error``: a failure whose stderr is more than three lines;
- ``memory``: MemoryError or std::bad_alloc (the limit was hit: an unbounded allocation);
- ``signal``: killed by a signal (a crash); ``hang``: still running at the time limit;
- ``left files``: a failure that left new files in the case folder;
- ``input modified``: a file that existed before the run changed;
- ``invalid output`` / ``output fails ORT``: an exit-0 model that fails ``onnx.checker``'s
  full check, or does not load in ONNX Runtime's CPU provider (a bfloat16 model for want
  of a CPU kernel excepted: halfconv's validation reports that as partial).

Usage: ``python tests/mutations/runner.py [--fast] [--jobs N] [--show N]``.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

# Headroom over what this process maps at fork time: a small model's conversion and
# evaluation use far less, and a multi-TiB request fails at once.
MEMORY_HEADROOM_BYTES = 3 << 30
TIME_LIMIT_S = 120.0
MAX_ERROR_LINES = 3
CLASSES = (
    "exit 1", "blames halfconv", "traceback", "long error", "memory", "signal", "hang",
    "left files", "input modified", "invalid output", "output fails ORT",
)


@dataclasses.dataclass(frozen=True)
class Case:
    family: str
    name: str
    argv: tuple[str, ...]
    # Writes the case's input files into the folder it is given (the run's working directory).
    setup: Callable[[Path], None]
    expect_success: bool | None = None  # None: either outcome is fine, if it is a clean one


@dataclasses.dataclass
class Verdict:
    case: Case
    code: int | None
    stderr: str
    broken: list[str]
    seconds: float


def _snapshot(folder: Path) -> dict[str, str | None]:
    """Every path under ``folder``: a regular file's sha256, None for anything else."""
    found: dict[str, str | None] = {}
    for root, dirs, files in os.walk(folder):
        for name in (*dirs, *files):
            path = Path(root) / name
            relative = str(path.relative_to(folder))
            if path.is_file() and not path.is_symlink():
                found[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                found[relative] = None
    return found


def _check_outputs(paths: Iterable[Path]) -> list[str]:
    """Checker and ORT load of each model a successful run wrote (runs in the child)."""
    import onnx
    import onnxruntime as ort

    problems = []
    for path in paths:
        try:
            onnx.checker.check_model(str(path), full_check=True)
        except Exception as error:
            problems.append(f"invalid output: {path.name}: {str(error).splitlines()[0][:200]}")
            continue
        try:
            options = ort.SessionOptions()
            options.log_severity_level = 4
            ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:
            if "NOT_IMPLEMENTED" in str(error) and _is_bfloat16(path):
                continue  # the CPU provider has few bfloat16 kernels; halfconv's validation says so
            problems.append(f"output fails ORT: {path.name}: {str(error).splitlines()[0][:200]}")
    return problems


def _is_bfloat16(path: Path) -> bool:
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return any(t.data_type == onnx.TensorProto.BFLOAT16 for t in proto.graph.initializer)


def _child(case: Case, folder: Path, result_file: Path) -> None:
    """In the forked process: limit memory, capture fds 1 and 2, run the command, check what it wrote."""
    os.chdir(folder)
    out = os.open(folder.parent / f"{folder.name}.out", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    err = os.open(folder.parent / f"{folder.name}.err", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(out, 1)
    os.dup2(err, 2)
    mapped = int(next(line for line in open("/proc/self/status") if line.startswith("VmSize")).split()[1]) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (mapped + MEMORY_HEADROOM_BYTES, resource.RLIM_INFINITY))
    before = set(_snapshot(folder))
    from halfconv.cli import main

    try:
        code = main(list(case.argv))
    except SystemExit as exit_:  # argparse's own exit, as the console script would see it
        code = exit_.code if isinstance(exit_.code, int) else 1
    sys.stdout.flush()
    sys.stderr.flush()
    problems: list[str] = []
    if code == 0:
        written = [folder / p for p in set(_snapshot(folder)) - before if p.endswith(".onnx")]
        problems = _check_outputs(sorted(written))
    result_file.write_text(json.dumps({"code": code, "problems": problems}))
    os._exit(code if 0 <= code < 256 else 255)


def _judge(case: Case, folder: Path, before: dict[str, str | None], status: int | None, seconds: float) -> Verdict:
    stderr = (folder.parent / f"{folder.name}.err").read_text(errors="replace")
    result_file = folder.parent / f"{folder.name}.json"
    result = json.loads(result_file.read_text()) if result_file.exists() else None
    broken: list[str] = []
    code: int | None = None
    if status is None:
        broken.append("hang")
    elif os.WIFSIGNALED(status):
        broken.append("signal")
    else:
        code = os.WEXITSTATUS(status)
    if code == 1:
        broken.append("exit 1")
    if "halfconv bug" in stderr:
        broken.append("blames halfconv")
    if "Traceback (most recent call last)" in stderr:
        broken.append("traceback")
    if "MemoryError" in stderr or "bad_alloc" in stderr:
        broken.append("memory")
    after = _snapshot(folder)
    if code not in (None, 0):
        if len(stderr.strip().splitlines()) > MAX_ERROR_LINES:
            broken.append("long error")
        if set(after) - set(before):
            broken.append("left files")
    if any(digest is not None and after.get(path) != digest for path, digest in before.items()):
        broken.append("input modified")
    if result is not None:
        broken.extend(sorted({p.split(":")[0] for p in result["problems"]}))
        if result["problems"]:
            stderr += "\n" + "\n".join(result["problems"])
    return Verdict(case, code, stderr, broken, seconds)


# Modules that import a deep-learning framework: left to the cases that need them (an
# export), since a framework may start threads, which a fork does not carry over.
_FRAMEWORK_MODULES = ("_keras", "_saved_model", "_tensorflow", "_tf_ops", "_torch")


def _preload() -> None:
    """Import halfconv and its libraries once, so that each forked case starts warm (2 s less each)."""
    import importlib
    import pkgutil

    import halfconv

    for module in pkgutil.walk_packages(halfconv.__path__, "halfconv."):
        leaf = module.name.rsplit(".", 1)[-1]
        if leaf != "__main__" and not leaf.startswith(_FRAMEWORK_MODULES):
            importlib.import_module(module.name)
    for name in ("onnx", "onnx.checker", "onnx.shape_inference", "onnx_ir", "onnxruntime", "onnxconverter_common"):
        importlib.import_module(name)


def run_cases(cases: list[Case], jobs: int = 2, on_verdict: Callable[[Verdict], None] = lambda _: None) -> list[Verdict]:
    """Run ``cases``, ``jobs`` at a time, each in a forked process; one verdict per case, in order."""
    _preload()

    root = Path(tempfile.mkdtemp(prefix="halfconv-mutations-"))
    verdicts: dict[int, Verdict] = {}
    running: dict[int, tuple[int, Path, dict[str, str | None], float]] = {}
    pending = list(enumerate(cases))
    try:
        while pending or running:
            while pending and len(running) < jobs:
                index, case = pending.pop(0)
                folder = root / f"case{index:05d}"
                folder.mkdir()
                case.setup(folder)
                before = _snapshot(folder)
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    try:
                        _child(case, folder, root / f"case{index:05d}.json")
                    except BaseException:  # what escapes the command itself: shown as the traceback it is
                        import traceback

                        traceback.print_exc()
                        sys.stderr.flush()
                    os._exit(1)
                running[pid] = (index, folder, before, time.monotonic())
            _reap(running, verdicts, cases, on_verdict)
    finally:
        for pid in running:
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)
    return [verdicts[i] for i in range(len(cases))]


def _reap(running: dict[int, tuple[int, Path, dict[str, str | None], float]], verdicts: dict[int, Verdict], cases: list[Case], on_verdict: Callable[[Verdict], None]) -> None:
    time.sleep(0.01)
    for pid, (index, folder, before, started) in list(running.items()):
        done, status = os.waitpid(pid, os.WNOHANG)
        elapsed = time.monotonic() - started
        if done == 0 and elapsed < TIME_LIMIT_S:
            continue
        if done == 0:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            status_or_none = None
        else:
            status_or_none = status
        del running[pid]
        verdicts[index] = _judge(cases[index], folder, before, status_or_none, elapsed)
        on_verdict(verdicts[index])
        shutil.rmtree(folder, ignore_errors=True)


def summary(verdicts: list[Verdict]) -> str:
    """Counts per family and per class, then the broken cases."""
    by_family = collections.Counter(v.case.family for v in verdicts)
    broken_by_family = collections.Counter(v.case.family for v in verdicts if v.broken)
    by_class = collections.Counter(c for v in verdicts for c in v.broken)
    codes = collections.Counter(v.code for v in verdicts)
    lines = [f"{len(verdicts)} cases, {sum(1 for v in verdicts if v.broken)} broken; exit codes {dict(sorted(codes.items(), key=str))}"]
    lines.append("per family (cases / broken):")
    seconds = collections.Counter()
    for verdict in verdicts:
        seconds[verdict.case.family] += verdict.seconds
    lines += [
        f"  {family:16} {count:5} / {broken_by_family[family]:<5} {seconds[family] / count:.2f} s each"
        for family, count in sorted(by_family.items())
    ]
    lines.append("per failure class:")
    lines += [f"  {name:16} {by_class[name]:5}" for name in CLASSES]
    return "\n".join(lines)


def describe(verdict: Verdict) -> str:
    tail = " | ".join(verdict.stderr.strip().splitlines()[-3:])[:400]
    return f"[{verdict.case.family}] {verdict.case.name}: {', '.join(verdict.broken)} (exit {verdict.code}) argv={list(verdict.case.argv)} :: {tail}"


def main(argv: list[str]) -> int:
    import argparse

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from mutations.families import all_cases, fast_cases

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="only the subset CI runs")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--show", type=int, default=50, help="broken cases to list")
    parser.add_argument("--family", action="append", help="only these families")
    parser.add_argument("--name", action="append", help="only cases whose name contains this")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="halfconv-seeds-") as seeds:
        cases = (fast_cases if args.fast else all_cases)(Path(seeds))
        if args.family:
            cases = [c for c in cases if c.family in args.family]
        if args.name:
            cases = [c for c in cases if any(part in c.name for part in args.name)]
        started = time.monotonic()
        verdicts = run_cases(cases, jobs=args.jobs)
    print(summary(verdicts))
    print(f"time: {time.monotonic() - started:.0f} s with {args.jobs} jobs")
    broken = [v for v in verdicts if v.broken]
    for verdict in broken[: args.show]:
        print(describe(verdict))
    return 1 if broken else 0


if __name__ == "__main__":
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # CUDA's start-up maps far more address space than the limit allows
    sys.exit(main(sys.argv[1:]))
