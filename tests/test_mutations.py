"""The mutation run's fast subset: every promise holds for each bad input (see ``tests/mutations``).

About 290 cases from eight families (byte-level, tensor, external data, graph, metadata,
data files, command-line values, paths), each run by the real command line in a forked
process under an address-space limit. The full run (about 3,000 cases) is
``python tests/mutations/runner.py``; it prints the counts per family and failure class.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from mutations import families

RUNNER = Path(__file__).resolve().parent / "mutations" / "runner.py"
FAMILIES = ("bytes", "cli", "data", "external", "graph", "metadata", "paths", "tensor")


def test_the_cases_are_deterministic_and_cover_every_family(tmp_path: Path) -> None:
    first = families.fast_cases(tmp_path / "a")
    second = families.fast_cases(tmp_path / "b")
    assert [(c.family, c.name, c.argv) for c in first] == [(c.family, c.name, c.argv) for c in second]
    assert {c.family for c in first} == set(FAMILIES)
    full = families.all_cases(tmp_path / "c")
    assert len(full) >= 3000 and len({(c.family, c.name) for c in full}) == len(full)


def test_the_fast_subset_breaks_no_promise() -> None:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, str(RUNNER), "--fast", "--jobs", "2", "--show", "60"],
        capture_output=True, text=True, timeout=900, env=env, check=False,
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report[-8000:]
    counted = {m.group(1): int(m.group(2)) for m in re.finditer(r"^  (\w+) +(\d+) / 0 ", done.stdout, re.M)}
    assert set(counted) == set(FAMILIES), report
    assert sum(counted.values()) >= 250
