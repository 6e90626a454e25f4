"""The README's example commands, run, with their output compared against what the README shows.

An example is a fenced block opened by a line that is exactly ```` ```text ```` and whose first
line is ``$ halfconv ...``. In such a block every ``$ `` line is a command (a trailing
backslash continues it on the next line) and the lines up to the next ``$ `` line, or the end
of the block, are what it prints: its stdout, or its stderr when that output starts with
``Error: `` (the command must then fail; otherwise it must exit 0). Other ```` ```text ````
blocks, such as the usage synopses, are not examples.

Each block runs in its own empty folder, with the commands in order, through the installed
``halfconv`` console script beside ``sys.executable`` and with ``$HALFCONV_DATA_DIR`` set. The
relative paths of the repository's files that the commands name (``models/demo_cnn/model.onnx``)
are copied there first, with the same relative paths, so the repository itself is never written
to and a converted model records the same relative path to its source as in the README.

Only what legitimately changes from run to run or machine to machine is masked, the same way in
the README's text and in the output (see ``normalise``):

- wall times (``0.03 s``) and every latency figure: ``ms`` values, ``img/s`` throughputs, the
  fp16/fp32 latency ratio of ``run`` (``1.05x of fp32 at batch``) and of ``evaluate``
  (``1.27x (slower)``, ``0.62x (1.61x faster)``), and ``--json`` keys ending in ``_s``/``_ms``;
- absolute paths (the temporary folder, the data directory, the home cache);
- runs of spaces inside a line, which collapse to one: table columns are as wide as their
  widest cell, which can be a masked figure.

Everything else (node counts, sizes, accuracies, agreement, error values, file names) must match
exactly, and stderr must be exactly what this machine gives: empty, except for ``run`` and
``evaluate`` on the default ``auto`` provider, which print the one-line CPU-fallback warning
that the README describes (this machine has no usable CUDA).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from environment import DATA_DIR

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
SCRIPT = Path(sys.executable).with_name("halfconv")
TIMEOUT_S = 300  # per command; the examples take a few seconds each (`run` ~5-10 s)

# Options whose value is a path that the command writes: never copied from the repository.
OUTPUT_OPTIONS = frozenset({"-o", "--output", "--report-dir"})
# A line printed by matplotlib the first time it runs on a machine, not by halfconv.
MATPLOTLIB_NOTICE = re.compile(r"Matplotlib is building the font cache; this may take a moment\.")


@dataclasses.dataclass(frozen=True)
class Command:
    line: int  # README line of the `$ ` prompt
    argv: tuple[str, ...]  # starting with "halfconv"
    expected: tuple[str, ...]  # the lines the README shows after it

    @property
    def fails(self) -> bool:
        return bool(self.expected) and self.expected[0].startswith("Error: ")


@dataclasses.dataclass(frozen=True)
class Example:
    line: int  # README line of the opening fence
    commands: tuple[Command, ...]


class ReadmeFormatError(ValueError):
    """An example block the test cannot read."""


def parse_examples(text: str) -> list[Example]:
    """Every ```text block of ``text`` whose first line is a `$ halfconv` command."""
    lines = text.splitlines()
    examples = []
    i = 0
    while i < len(lines):
        if lines[i].strip() != "```text":
            i += 1
            continue
        start = i
        i += 1
        body: list[tuple[int, str]] = []
        while i < len(lines) and lines[i].strip() != "```":
            body.append((i + 1, lines[i]))
            i += 1
        if i == len(lines):
            raise ReadmeFormatError(f"README.md:{start + 1}: the ```text block is never closed")
        i += 1
        if body and body[0][1].startswith("$ halfconv"):
            examples.append(Example(start + 1, _commands(body)))
    return examples


def _commands(body: list[tuple[int, str]]) -> tuple[Command, ...]:
    commands: list[Command] = []
    j = 0
    while j < len(body):
        number, text = body[j]
        assert text.startswith("$ ")
        command = text[2:]
        while command.endswith("\\"):
            j += 1
            if j == len(body):
                raise ReadmeFormatError(f"README.md:{number}: the command's last line ends with a backslash")
            command = command[:-1] + " " + body[j][1].strip()
        j += 1
        output: list[str] = []
        while j < len(body) and not body[j][1].startswith("$ "):
            output.append(body[j][1])
            j += 1
        try:
            argv = tuple(shlex.split(command))
        except ValueError as error:
            raise ReadmeFormatError(f"README.md:{number}: cannot split {command!r}: {error}") from None
        if not argv or argv[0] != "halfconv":
            raise ReadmeFormatError(f"README.md:{number}: only halfconv commands can be checked, not {command!r}")
        while output and not output[-1].strip():
            output.pop()
        commands.append(Command(number, argv, tuple(output)))
    return tuple(commands)


# -- normalisation ------------------------------------------------------------------------------

# (pattern, replacement), applied in order to every line of the README's text and of the output.
MASKS: tuple[tuple[re.Pattern[str], str], ...] = (
    # --json timings: "wall_time_s": 0.0497, "validate_s": 0.0264, "p50_ms": 0.41
    (re.compile(r'("\w+_(?:s|ms)"): -?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?'), r"\1: <n>"),
    # absolute paths: /tmp/pytest-of-x/..., /home/user/.cache/halfconv/datasets/...
    (re.compile(r"(?<![\w.~/])/[^\s'\",;:()\[\]]+"), "<abs path>"),
    # wall times: "time           0.03 s"
    (re.compile(r"\b\d+(?:\.\d+)? s\b"), "<t> s"),
    # latencies: "0.410 ms", "107.9 ms"
    (re.compile(r"\b\d[\d,]*(?:\.\d+)? ms\b"), "<t> ms"),
    # throughputs: "5,079 img/s"
    (re.compile(r"\b\d[\d,]*(?:\.\d+)? img/s\b"), "<n> img/s"),
    # run: "latency    1.05x of fp32 at batch 256"
    (re.compile(r"\b\d+\.\d+x of fp32 at batch\b"), "<r>x of fp32 at batch"),
    # evaluate: "1.27x (slower)", "0.62x (1.61x faster)", "1.00x (same speed)"
    (re.compile(r"\b\d+\.\d+x \((?:slower|\d+\.\d+x faster|same speed|speed unknown)\)"), "<r>x (<speed>)"),
    # the report's summary sentence: "(1.62x slower)"
    (re.compile(r"\b\d+\.\d+x (?:slower|faster)\b"), "<r>x <speed>"),
)


def normalise(line: str) -> str:
    for pattern, replacement in MASKS:
        line = pattern.sub(replacement, line)
    indent = len(line) - len(line.lstrip(" "))
    return line[:indent] + re.sub(r" {2,}", " ", line[indent:]).rstrip()


def test_normalise_masks_only_what_varies() -> None:
    assert normalise("  time           0.03 s") == "  time <t> s"
    assert normalise("latency    1.05x of fp32 at batch 256 (p50, CPUExecutionProvider)") == (
        "latency <r>x of fp32 at batch 256 (p50, CPUExecutionProvider)"
    )
    assert normalise("  p50 batch 1               0.410 ms      0.520 ms  1.27x (slower)") == (
        "  p50 batch 1 <t> ms <t> ms <r>x (<speed>)"
    )
    assert normalise("  throughput batch 256   5,079 img/s   4,857 img/s") == "  throughput batch 256 <n> img/s <n> img/s"
    assert normalise('  "wall_time_s": 0.0497,') == '  "wall_time_s": <n>,'
    assert normalise("report     /tmp/x/reports/r/report.html") == "report <abs path>"
    # Sizes, counts, accuracies, errors and ratios other than latency stay as they are.
    for line in (
        "  size           6.4 KiB -> 4.1 KiB (0.64x)",
        "                 output 'probabilities': max abs error 1.77e-05, max rel error 0.000133",
        "accuracy   fp32 97.65%   fp16 97.65%   change 0.00 pp   agreement 100.00%",
        "size       0.50x of fp32 (412,924 vs 819,578 bytes)",
        "[2/2] evaluated on mnist test (10,000 images, CPUExecutionProvider)",
        "  correct               9,071/10,000  9,069/10,000  agreement 99.81%",
    ):
        assert "<" not in normalise(line), line


def test_parse_examples() -> None:
    text = "\n".join(
        [
            "```text",
            "halfconv convert MODEL.onnx [-o OUT.onnx]",  # a synopsis, not an example
            "```",
            "```text",
            "$ halfconv convert a.onnx \\",
            "    --explain",
            "converted a.onnx",
            "",
            "$ halfconv convert a.onnx",
            "Error: a.fp16.onnx already exists - pass --force to overwrite it",
            "```",
            "```bash",
            "$ halfconv policy",
            "```",
        ]
    )
    assert parse_examples(text) == [
        Example(
            4,
            (
                Command(5, ("halfconv", "convert", "a.onnx", "--explain"), ("converted a.onnx",)),
                Command(9, ("halfconv", "convert", "a.onnx"), ("Error: a.fp16.onnx already exists - pass --force to overwrite it",)),
            ),
        )
    ]
    assert [c.fails for c in parse_examples(text)[0].commands] == [False, True]
    with pytest.raises(ReadmeFormatError, match=r"README\.md:3: only halfconv commands"):
        parse_examples("```text\n$ halfconv policy\n$ ls\n```\n")
    with pytest.raises(ReadmeFormatError, match=r"README\.md:1: the ```text block is never closed"):
        parse_examples("```text\n$ halfconv policy\n")


# -- running ------------------------------------------------------------------------------------

EXAMPLES = parse_examples(README.read_text(encoding="utf-8"))


def test_readme_has_examples() -> None:
    assert EXAMPLES, "README.md has no ```text block starting with `$ halfconv`"


def _inputs(argv: tuple[str, ...]) -> list[Path]:
    """The repository files (and SavedModel folders) that ``argv`` reads, relative to the repository."""
    found = []
    previous = ""
    for token in argv[1:]:
        option, _, value = token.partition("=") if token.startswith("--") else ("", "", token)
        name = option or previous
        previous = token
        if name in OUTPUT_OPTIONS or not value or os.path.isabs(value):
            continue
        path = REPO / value
        if path.is_file() or (path / "saved_model.pb").is_file():
            found.append(Path(value))
            if Path(f"{path}.data").is_file():  # external data beside an ONNX model
                found.append(Path(f"{value}.data"))
    return found


def _copy_inputs(commands: tuple[Command, ...], workdir: Path) -> None:
    for command in commands:
        for relative in _inputs(command.argv):
            source, target = REPO / relative, workdir / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target, dirs_exist_ok=True)
            else:
                shutil.copyfile(source, target)


def _needs_data(argv: tuple[str, ...]) -> bool:
    return argv[1] in ("run", "evaluate") or any(a == "--dataset" or a.startswith("--dataset=") for a in argv)


def _provider(argv: tuple[str, ...]) -> str:
    for i, token in enumerate(argv):
        if token == "--provider" and i + 1 < len(argv):
            return argv[i + 1]
        if token.startswith("--provider="):
            return token.split("=", 1)[1]
    return "auto"


def _expected_stderr(command: Command) -> list[str]:
    """On this machine (no usable CUDA), what a successful command prints on stderr."""
    if command.argv[1] in ("run", "evaluate") and _provider(command.argv) == "auto":
        from halfconv.core import cuda_unavailable_reason

        reason = cuda_unavailable_reason()
        assert reason is not None, "this test pins a machine without CUDA, but a CUDA session could be created here"
        return [f"Warning: ran on CPUExecutionProvider: CUDA unavailable: {reason}"]
    return []


def _compare(command: Command, actual: str, stream: str) -> None:
    expected = [normalise(line) for line in command.expected]
    got = [normalise(line) for line in actual.rstrip("\n").splitlines()]
    if got != expected:
        diff = [
            f"  line {i + 1}:\n    README: {e!r}\n    actual: {a!r}"
            for i, (e, a) in enumerate(zip(expected, got))
            if e != a
        ]
        if len(expected) != len(got):
            diff.append(f"  README shows {len(expected)} lines, the command printed {len(got)}")
        pytest.fail(
            f"README.md:{command.line}: `{shlex.join(command.argv)}` printed on {stream} something else than the README shows "
            f"(after normalisation):\n" + "\n".join(diff) + f"\nfull {stream}:\n{actual}",
            pytrace=False,
        )


@pytest.mark.parametrize(
    "example", EXAMPLES, ids=[f"line{e.line}-{'-'.join(e.commands[0].argv[1:3])}" for e in EXAMPLES]
)
def test_readme_example(example: Example, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    assert SCRIPT.is_file(), f"no console script beside {sys.executable}: install halfconv (pip install -e .)"
    if any(_needs_data(c.argv) for c in example.commands):
        request.getfixturevalue("data_dir")  # skipped without the datasets; a failure in CI
    workdir = tmp_path / "work"
    workdir.mkdir()
    _copy_inputs(example.commands, workdir)
    env = {**os.environ, "HALFCONV_DATA_DIR": str(DATA_DIR)}
    for command in example.commands:
        done = subprocess.run(
            [str(SCRIPT), *command.argv[1:]], cwd=workdir, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
        )
        stderr = "".join(line for line in done.stderr.splitlines(keepends=True) if not MATPLOTLIB_NOTICE.fullmatch(line.strip()))
        if command.fails:
            assert done.returncode != 0, f"README.md:{command.line}: the README shows an error, but the command succeeded"
            assert done.stdout == ""
            _compare(command, stderr, "stderr")
            continue
        assert done.returncode == 0, f"README.md:{command.line}: exit code {done.returncode}\n{done.stderr}"
        _compare(command, done.stdout, "stdout")
        assert stderr.splitlines() == _expected_stderr(command), f"README.md:{command.line}: unexpected stderr"
