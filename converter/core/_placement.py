"""Where ONNX Runtime placed each node, from its own record of a run (session profiling).

A float16 model on CUDA is only as fast as its slowest fallback: a node that ORT places on
the CPU costs a device-to-host copy, a CPU kernel and a copy back on every run. ORT
profiling records, for every node it ran, the provider that ran it and the types of its
outputs; one profiled run of a small batch gives the placement of every node.
"""

from __future__ import annotations

__all__ = ["NodePlacement", "Placement", "node_placement"]

import collections
import dataclasses
import json
import tempfile
from pathlib import Path

import numpy as np

from ._providers import CPU_PROVIDER, CUDA_PROVIDER, ResolvedProvider

_PROFILE_RUN_LIMIT_S = 120.0


@dataclasses.dataclass(frozen=True)
class NodePlacement:
    name: str
    op_type: str
    provider: str
    output_types: tuple[str, ...]  # e.g. ("float16",)


@dataclasses.dataclass(frozen=True)
class Placement:
    counts: tuple[tuple[str, int], ...]  # (provider, nodes it ran), most first
    fallbacks: tuple[NodePlacement, ...]  # nodes that ran on another provider than the session's first
    source: str  # how it was recorded

    @property
    def total(self) -> int:
        return sum(count for _, count in self.counts)


def _events(profile: Path) -> list[NodePlacement]:
    nodes: dict[str, NodePlacement] = {}
    for event in json.loads(profile.read_text()):
        args = event.get("args", {})
        name = str(event.get("name", ""))
        if event.get("cat") != "Node" or "provider" not in args or not name.endswith("_kernel_time"):
            continue
        types = tuple(next(iter(entry)) for entry in args.get("output_type_shape", []) if isinstance(entry, dict) and entry)
        node = name[: -len("_kernel_time")]
        nodes.setdefault(node, NodePlacement(node, str(args.get("op_name", "?")), str(args["provider"]), types))
    return list(nodes.values())


def node_placement(path: Path, provider: ResolvedProvider, feeds: dict[str, np.ndarray]) -> Placement:
    """Profile one run of the model at ``path`` on ``provider`` and count the nodes each provider ran."""
    import onnxruntime as ort

    from ._bounded import run_bounded
    from ._runtime import create_session

    with tempfile.TemporaryDirectory(prefix="halfconv-profile-") as folder:
        session = create_session(path, provider, profile_prefix=str(Path(folder) / "run"))
        run_bounded(session, feeds, _PROFILE_RUN_LIMIT_S)
        placed = _events(Path(session.end_profiling()))
    main = CUDA_PROVIDER if provider.actual == CUDA_PROVIDER else CPU_PROVIDER
    counts = collections.Counter(node.provider for node in placed)
    return Placement(
        counts=tuple(counts.most_common()),
        fallbacks=tuple(node for node in placed if node.provider != main),
        source=f"ONNX Runtime {ort.__version__} session profiling, one run of batch {len(next(iter(feeds.values())))}",
    )
