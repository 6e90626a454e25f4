"""Conversion speed and peak memory: halfconv next to onnxconverter-common and ONNX Runtime's float16 tool, same run.

    python tests/benchmarks/bench_convert.py [--only chain|scaling|big] [--workdir DIR]

(a) chain: 16,000 nodes (MatMul 64x64 + activation; every tenth activation a Softmax),
    converted with --keep-op Softmax.
(s) scaling: the same chain at 16,000, 64,000 and 160,000 nodes, --no-validate, with the
    time per node of halfconv, ORT's float16 tool and the onnx.load + onnx.save floor.
(b) big:   16 MatMul weights of 4096x4096 float32 in external data (1 GiB), converted
    with validation off (--no-validate) for both engines.

Each conversion runs in its own subprocess, which reports its wall time (load to
written file) and its peak RSS (VmHWM from /proc/self/status, Linux only). Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

CHAIN_NODES = 16_000
CHAIN_WIDTH = 64
BIG_LAYERS = 16
BIG_WIDTH = 4096


def make_chain(path: Path, count: int = CHAIN_NODES) -> None:
    rng = np.random.default_rng(0)
    nodes, initializers = [], []
    previous = "x"
    for i in range(count // 2):
        weight = f"w{i}"
        initializers.append(
            numpy_helper.from_array((rng.standard_normal((CHAIN_WIDTH, CHAIN_WIDTH)) * 0.1).astype(np.float32), weight)
        )
        nodes.append(helper.make_node("MatMul", [previous, weight], [f"m{i}"], name=f"matmul_{i}"))
        activation = "Softmax" if i % 10 == 9 else "Relu"
        nodes.append(helper.make_node(activation, [f"m{i}"], [f"a{i}"], name=f"{activation.lower()}_{i}"))
        previous = f"a{i}"
    graph = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", CHAIN_WIDTH])],
        [helper.make_tensor_value_info(previous, TensorProto.FLOAT, ["N", CHAIN_WIDTH])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, str(path))


def make_big(path: Path) -> None:
    """Write the 1 GiB model tensor by tensor, so generating it needs little memory."""
    data_name = path.name + ".data"
    rng = np.random.default_rng(0)
    nodes, initializers = [], []
    previous = "x"
    offset = 0
    with open(path.with_name(data_name), "wb") as data:
        for i in range(BIG_LAYERS):
            weight = (rng.standard_normal((BIG_WIDTH, BIG_WIDTH), dtype=np.float32) * 0.02)
            raw = weight.tobytes()
            data.write(raw)
            tensor = TensorProto(name=f"w{i}", data_type=TensorProto.FLOAT, dims=[BIG_WIDTH, BIG_WIDTH])
            tensor.data_location = TensorProto.EXTERNAL
            for key, value in (("location", data_name), ("offset", str(offset)), ("length", str(len(raw)))):
                entry = tensor.external_data.add()
                entry.key, entry.value = key, value
            offset += len(raw)
            initializers.append(tensor)
            nodes.append(helper.make_node("MatMul", [previous, f"w{i}"], [f"m{i}"], name=f"matmul_{i}"))
            previous = f"m{i}"
    graph = helper.make_graph(
        nodes,
        "big",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", BIG_WIDTH])],
        [helper.make_tensor_value_info(previous, TensorProto.FLOAT, ["N", BIG_WIDTH])],
        initializers,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))


_CHILD = r"""
import json, sys, time
from pathlib import Path
engine, source, output, keep_ops, validate = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4], sys.argv[5] == "1"
keep = tuple(k for k in keep_ops.split(",") if k)
phases = {}
if engine == "halfconv":
    from halfconv import ConvertOptions, convert
    start = time.perf_counter()
    result = convert(source, ConvertOptions(output=output, keep_ops=keep, validate=validate, force=True))
    phases = {"load": result.timings.load_s, "plan+rewrite": result.timings.convert_s, "cast+write": result.timings.write_s, "validate": result.timings.validate_s}
elif engine == "session":
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.log_severity_level = 3
    start = time.perf_counter()
    ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
    phases = {"session": time.perf_counter() - start}
else:
    import onnx
    external = any(t.data_location == onnx.TensorProto.EXTERNAL for t in onnx.load(str(source), load_external_data=False).graph.initializer)
    start = time.perf_counter()
    model = onnx.load(str(source))
    loaded = time.perf_counter()
    if engine == "occ":
        from onnxconverter_common import float16
        model = float16.convert_float_to_float16(model, keep_io_types=True, op_block_list=[*float16.DEFAULT_OP_BLOCK_LIST, *keep])
    elif engine == "ort16":
        from onnxruntime.transformers import float16 as ort_float16
        model = ort_float16.convert_float_to_float16(
            model, keep_io_types=True, op_block_list=[*ort_float16.DEFAULT_OP_BLOCK_LIST, *keep]
        )
    converted = time.perf_counter()
    if external:
        onnx.save(model, str(output), save_as_external_data=True, location=output.name + ".data")
    else:
        onnx.save(model, str(output))
    phases = {"load": loaded - start, "convert": converted - loaded, "write": time.perf_counter() - converted}
elapsed = time.perf_counter() - start
# VmHWM is this process's own peak; ru_maxrss would include the parent's at fork time.
peak_kib = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"seconds": elapsed, "peak_rss_mib": peak_kib / 1024, "phases": phases}))
"""


def run_engine(engine: str, source: Path, output: Path, keep_ops: str, validate: bool) -> dict:
    completed = subprocess.run(
        [sys.executable, "-c", _CHILD, engine, str(source), str(output), keep_ops, "1" if validate else "0"],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def report(title: str, rows: list[tuple[str, dict]]) -> None:
    print(f"\n{title}")
    print(f"  {'run':<38} {'wall s':>8} {'peak RSS MiB':>13}  phases (s)")
    for name, figures in rows:
        phases = ", ".join(f"{k} {v:.2f}" for k, v in figures["phases"].items())
        print(f"  {name:<38} {figures['seconds']:>8.2f} {figures['peak_rss_mib']:>13.0f}  {phases}")
    ours = next(f for n, f in rows if n.startswith("halfconv (--no-validate)"))
    base = next(f for n, f in rows if n.startswith("onnxconverter-common"))
    print(
        f"  halfconv vs onnxconverter-common (both unvalidated): {base['seconds'] / ours['seconds']:.1f}x faster, "
        f"{ours['peak_rss_mib'] / base['peak_rss_mib']:.2f}x the peak RSS"
    )


SCALING_SIZES = (16_000, 64_000, 160_000)


def scaling(work: Path) -> None:
    """The chain at each size, --no-validate: halfconv, ORT's float16 tool and the floor, with microseconds per node."""
    print("\n(s) scaling: the chain at each size, --keep-op Softmax, no validation; microseconds per node in brackets")
    print(f"  {'nodes':>8} {'halfconv s':>16} {'ORT float16 s':>18} {'load+save s':>16} {'halfconv/floor':>15} {'ORT/halfconv':>13}")
    for count in SCALING_SIZES:
        chain = work / f"chain{count}.onnx"
        make_chain(chain, count)
        ours = run_engine("halfconv", chain, work / "s.hc.onnx", "Softmax", False)["seconds"]
        ort16 = run_engine("ort16", chain, work / "s.ort.onnx", "Softmax", False)["seconds"]
        floor = run_engine("copy", chain, work / "s.copy.onnx", "", False)["seconds"]
        cells = [f"{s:7.2f} [{s / count * 1e6:5.0f}]" for s in (ours, ort16, floor)]
        print(f"  {count:>8,} {cells[0]:>16} {cells[1]:>18} {cells[2]:>16} {ours / floor:>14.2f}x {ort16 / ours:>12.2f}x")
        for stale in work.glob("chain*.onnx"):
            stale.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=("chain", "scaling", "big"))
    parser.add_argument("--workdir", type=Path, help="where to put the generated models (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        if args.only in (None, "chain"):
            chain = work / "chain.onnx"
            make_chain(chain)
            rows = [
                ("halfconv (validated)", run_engine("halfconv", chain, work / "chain.hc.onnx", "Softmax", True)),
                ("halfconv (--no-validate)", run_engine("halfconv", chain, work / "chain.hc.onnx", "Softmax", False)),
                ("onnxconverter-common", run_engine("occ", chain, work / "chain.occ.onnx", "Softmax", False)),
                ("ONNX Runtime float16 tool", run_engine("ort16", chain, work / "chain.ort.onnx", "Softmax", False)),
                ("floor: onnx.load + onnx.save, no conversion", run_engine("copy", chain, work / "chain.copy.onnx", "", False)),
                ("ORT CPU session build of the fp32 model", run_engine("session", chain, work / "unused.onnx", "", False)),
            ]
            report(f"(a) chain of {CHAIN_NODES:,} nodes, --keep-op Softmax", rows)
            validated, session = rows[0][1], rows[-1][1]
            print(
                f"  halfconv validated: {validated['seconds'] / session['seconds']:.1f}x ORT's fp32 session build "
                f"({validated['seconds']:.2f} s vs {session['seconds']:.2f} s)"
            )
        if args.only in (None, "scaling"):
            scaling(work)
        if args.only in (None, "big"):
            big = work / "big.onnx"
            make_big(big)
            size = sum(p.stat().st_size for p in work.glob("big.onnx*"))
            rows = [
                ("halfconv (--no-validate)", run_engine("halfconv", big, work / "big.hc.onnx", "", False)),
                ("onnxconverter-common", run_engine("occ", big, work / "big.occ.onnx", "", False)),
                ("floor: onnx.load + onnx.save, no conversion", run_engine("copy", big, work / "big.copy.onnx", "", False)),
            ]
            report(f"(b) {BIG_LAYERS} x {BIG_WIDTH}x{BIG_WIDTH} MatMul weights, {size / 2**30:.2f} GiB external data, no validation", rows)
        load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
        print(f"\nmachine: {os.cpu_count()} cores, load average {load} at the end, python {sys.version.split()[0]}, onnx {onnx.__version__}")


if __name__ == "__main__":
    main()
