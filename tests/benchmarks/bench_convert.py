"""Conversion speed and peak memory: halfconv next to onnxconverter-common, ONNX Runtime's
float16 tool and ModelOpt AutoCast, in the same run.

    python tests/benchmarks/bench_convert.py [--only chain|resnet|scaling|big|fixed] [--workdir DIR]

(a) chain:   16,000 nodes (MatMul 64x64 + activation; every tenth activation a Softmax),
             converted with --keep-op Softmax (every engine gets Softmax in its block list).
(r) resnet:  a ResNet-50-sized graph (53 Conv with their BatchNorm folded, ReLU, Add,
             MaxPool, GlobalAveragePool, Gemm; 25.5 M random float32 weights, 97 MiB),
             converted with the defaults.
(s) scaling: the chain at 16,000, 64,000 and 160,000 nodes, --no-validate, with the time
             per node of halfconv, ORT's float16 tool and the onnx.load + onnx.save floor.
(b) big:     16 MatMul weights of 4096x4096 float32 in external data (1 GiB), without
             validation, next to the bound of a raw numpy read-cast-write of the same bytes.
(c) fixed:   `halfconv convert` on the 10-node demo CNN against the imports it cannot
             avoid (onnx, onnx-ir, onnxruntime, numpy), median of 5 runs each.

Each conversion runs in its own subprocess, which imports its engine first and then
reports its wall time (load to written file), its peak RSS (VmHWM from /proc/self/status,
Linux only) and its phases; halfconv's phases are those of ``--json`` (load, infer, plan,
rewrite, serialise, write, validate; --no-validate still runs the ONNX checker, shown as
validate). Two floors show what reading and writing the same model costs without any
conversion: onnx.load + onnx.save, and onnx-ir's load + save, halfconv's own round trip.
AutoCast rows appear when ``modelopt`` is importable here (``pip install
'nvidia-modelopt[onnx]'`` after the CPU build of torch; never a halfconv dependency).
Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

CHAIN_NODES = 16_000
CHAIN_WIDTH = 64
BIG_LAYERS = 16
BIG_WIDTH = 4096
REPO = Path(__file__).resolve().parents[2]
HAS_AUTOCAST = importlib.util.find_spec("modelopt") is not None


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


def make_resnet50(path: Path) -> None:
    """ResNet-50 as an inference export has it: BatchNorm folded into each Conv's bias."""
    rng = np.random.default_rng(0)
    nodes: list[onnx.NodeProto] = []
    initializers: list[TensorProto] = []

    def conv(source: str, channels_in: int, channels_out: int, kernel: int, stride: int, relu: bool) -> str:
        index = len(initializers) // 2
        weight = rng.standard_normal((channels_out, channels_in, kernel, kernel), dtype=np.float32)
        weight *= np.float32(np.sqrt(2.0 / (channels_in * kernel * kernel)))
        initializers.append(numpy_helper.from_array(weight, f"conv{index}.w"))
        initializers.append(numpy_helper.from_array(rng.standard_normal(channels_out, dtype=np.float32) * 0.01, f"conv{index}.b"))
        pad = kernel // 2
        nodes.append(helper.make_node(
            "Conv", [source, f"conv{index}.w", f"conv{index}.b"], [f"conv{index}"], name=f"conv{index}",
            kernel_shape=[kernel, kernel], strides=[stride, stride], pads=[pad] * 4,
        ))
        if not relu:
            return f"conv{index}"
        nodes.append(helper.make_node("Relu", [f"conv{index}"], [f"relu{index}"], name=f"relu{index}"))
        return f"relu{index}"

    current = conv("x", 3, 64, 7, 2, relu=True)
    nodes.append(helper.make_node("MaxPool", [current], ["pool"], name="pool", kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4))
    current, channels = "pool", 64
    for stage, (blocks, width) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512))):
        for block in range(blocks):
            stride = 2 if block == 0 and stage > 0 else 1
            branch = conv(current, channels, width, 1, 1, relu=True)
            branch = conv(branch, width, width, 3, stride, relu=True)
            branch = conv(branch, width, width * 4, 1, 1, relu=False)
            shortcut = conv(current, channels, width * 4, 1, stride, relu=False) if block == 0 else current
            name = f"add{stage}_{block}"
            nodes.append(helper.make_node("Add", [branch, shortcut], [name], name=name))
            nodes.append(helper.make_node("Relu", [name], [f"{name}.relu"], name=f"{name}.relu"))
            current, channels = f"{name}.relu", width * 4
    nodes.append(helper.make_node("GlobalAveragePool", [current], ["gap"], name="gap"))
    nodes.append(helper.make_node("Flatten", ["gap"], ["flat"], name="flat"))
    initializers.append(numpy_helper.from_array(rng.standard_normal((2048, 1000), dtype=np.float32) * 0.02, "fc.w"))
    initializers.append(numpy_helper.from_array(np.zeros(1000, np.float32), "fc.b"))
    nodes.append(helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["logits"], name="fc"))
    graph = helper.make_graph(
        nodes,
        "resnet50",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 224, 224])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1000])],
        initializers,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))


_CHILD = r"""
import json, sys, time
from pathlib import Path
engine, source, output, keep_ops, validate = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4], sys.argv[5] == "1"
keep = tuple(k for k in keep_ops.split(",") if k)
# Every engine imports its modules before the clock starts: the timings are the work's.
phases = {}
if engine == "halfconv":
    import onnxruntime  # validation's sessions
    from halfconv import ConvertOptions, convert
    import halfconv.conversion._pipeline, halfconv.conversion._validate
    start = time.perf_counter()
    result = convert(source, ConvertOptions(output=output, keep_ops=keep, validate=validate, force=True))
    phases = {k.removesuffix("_s"): v for k, v in vars(result.timings).items() if v is not None}
elif engine == "session":
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.log_severity_level = 3
    start = time.perf_counter()
    ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
    phases = {"session": time.perf_counter() - start}
elif engine == "autocast":
    import onnx
    from modelopt.onnx.autocast import convert_to_mixed_precision
    start = time.perf_counter()
    model = convert_to_mixed_precision(str(source), low_precision_type="fp16", keep_io_types=True, op_types_to_exclude=list(keep))
    converted = time.perf_counter()
    onnx.save(model, str(output), save_as_external_data=model.ByteSize() > 2**31 - 2**26)
    phases = {"load+convert": converted - start, "write": time.perf_counter() - converted}
elif engine == "rawcast":
    # The bound for external data: read each float32 tensor, cast it, write it; the
    # graph's protobuf (weights excluded) is read and written as it is.
    import numpy as np, onnx
    start = time.perf_counter()
    model = onnx.load(str(source), load_external_data=False)
    with open(source.parent / (source.name + ".data"), "rb") as data, open(output.parent / (output.name + ".data"), "wb") as out:
        for tensor in model.graph.initializer:
            info = {e.key: int(e.value) for e in tensor.external_data if e.key in ("offset", "length")}
            data.seek(info["offset"])
            out.write(np.frombuffer(data.read(info["length"]), dtype=np.float32).astype(np.float16).tobytes())
    onnx.save(model, str(output))
    phases = {"read+cast+write": time.perf_counter() - start}
elif engine == "ircopy":
    import onnx_ir as ir
    start = time.perf_counter()
    model = ir.load(source)
    loaded = time.perf_counter()
    ir.save(model, output)
    phases = {"load": loaded - start, "write": time.perf_counter() - loaded}
else:
    import onnx
    if engine == "occ":
        from onnxconverter_common import float16
    elif engine == "ort16":
        from onnxruntime.transformers import float16
    external = any(t.data_location == onnx.TensorProto.EXTERNAL for t in onnx.load(str(source), load_external_data=False).graph.initializer)
    start = time.perf_counter()
    model = onnx.load(str(source))
    loaded = time.perf_counter()
    if engine in ("occ", "ort16"):
        model = float16.convert_float_to_float16(model, keep_io_types=True, op_block_list=[*float16.DEFAULT_OP_BLOCK_LIST, *keep])
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


# An engine that runs longer than this is stopped, and its row says so.
ENGINE_TIMEOUT_S = 600


def run_engine(engine: str, source: Path, output: Path, keep_ops: str, validate: bool) -> dict:
    try:
        completed = subprocess.run(
            [sys.executable, "-c", _CHILD, engine, str(source), str(output), keep_ops, "1" if validate else "0"],
            check=True,
            capture_output=True,
            text=True,
            timeout=ENGINE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return {"seconds": float("nan"), "peak_rss_mib": float("nan"), "phases": {}, "timed_out": True}
    return json.loads(completed.stdout.strip().splitlines()[-1])


def report(title: str, rows: list[tuple[str, dict]]) -> None:
    print(f"\n{title}")
    print(f"  {'run':<44} {'wall s':>8} {'peak RSS MiB':>13}  phases (s)")
    for name, figures in rows:
        if figures.get("timed_out"):
            print(f"  {name:<44} did not finish within {ENGINE_TIMEOUT_S} s; stopped")
            continue
        phases = ", ".join(f"{k} {v:.2f}" for k, v in figures["phases"].items())
        print(f"  {name:<44} {figures['seconds']:>8.2f} {figures['peak_rss_mib']:>13.0f}  {phases}")
    by_name = dict(rows)
    ours = by_name["halfconv --no-validate"]
    for name, figures in rows:
        if name.startswith(("onnxconverter-common", "ONNX Runtime", "ModelOpt", "floor", "bound")) and not figures.get("timed_out"):
            print(
                f"  {name} / halfconv --no-validate: {figures['seconds'] / ours['seconds']:.2f}x the wall time, "
                f"{figures['peak_rss_mib'] / ours['peak_rss_mib']:.2f}x the peak RSS"
            )


def engines(source: Path, work: Path, keep: str, validated: bool = True) -> list[tuple[str, dict]]:
    """Every engine on one model, then the two floors."""
    stem = source.stem
    rows = []
    if validated:
        rows.append(("halfconv, validated", run_engine("halfconv", source, work / f"{stem}.hc.onnx", keep, True)))
    rows += [
        ("halfconv --no-validate", run_engine("halfconv", source, work / f"{stem}.hc.onnx", keep, False)),
        ("onnxconverter-common (no validation)", run_engine("occ", source, work / f"{stem}.occ.onnx", keep, False)),
        ("ONNX Runtime float16 tool (no validation)", run_engine("ort16", source, work / f"{stem}.ort.onnx", keep, False)),
    ]
    if HAS_AUTOCAST:
        rows.append(("ModelOpt AutoCast (its reference run)", run_engine("autocast", source, work / f"{stem}.ac.onnx", keep, False)))
    rows += [
        ("floor: onnx.load + onnx.save", run_engine("copy", source, work / f"{stem}.copy.onnx", "", False)),
        ("floor: onnx-ir load + save", run_engine("ircopy", source, work / f"{stem}.ir.onnx", "", False)),
    ]
    return rows


def chain_section(work: Path) -> None:
    chain = work / "chain.onnx"
    make_chain(chain)
    rows = engines(chain, work, "Softmax")
    rows.append(("ORT CPU session build of the fp32 model", run_engine("session", chain, work / "unused.onnx", "", False)))
    report(f"(a) chain of {CHAIN_NODES:,} nodes, --keep-op Softmax", rows)
    validated, session = rows[0][1], rows[-1][1]
    print(f"  halfconv validated: {validated['seconds'] / session['seconds']:.1f}x ORT's fp32 session build")


def resnet_section(work: Path) -> None:
    resnet = work / "resnet50.onnx"
    make_resnet50(resnet)
    report(f"(r) ResNet-50-sized graph, {resnet.stat().st_size / 2**20:.0f} MiB, default policy", engines(resnet, work, ""))


SCALING_SIZES = (16_000, 64_000, 160_000)


def scaling_section(work: Path) -> None:
    """The chain at each size, --no-validate: halfconv, ORT's float16 tool and the floor, with microseconds per node."""
    print("\n(s) scaling: the chain at each size, --keep-op Softmax, no validation; microseconds per node in brackets")
    print(f"  {'nodes':>8} {'halfconv s':>16} {'ORT float16 s':>18} {'load+save s':>16} {'halfconv/floor':>15} {'ORT/halfconv':>13}")
    phases: list[tuple[int, dict]] = []
    for count in SCALING_SIZES:
        chain = work / f"chain{count}.onnx"
        make_chain(chain, count)
        halfconv = run_engine("halfconv", chain, work / "s.hc.onnx", "Softmax", False)
        ours = halfconv["seconds"]
        ort16 = run_engine("ort16", chain, work / "s.ort.onnx", "Softmax", False)["seconds"]
        floor = run_engine("copy", chain, work / "s.copy.onnx", "", False)["seconds"]
        cells = [f"{s:7.2f} [{s / count * 1e6:5.0f}]" for s in (ours, ort16, floor)]
        print(f"  {count:>8,} {cells[0]:>16} {cells[1]:>18} {cells[2]:>16} {ours / floor:>14.2f}x {ort16 / ours:>12.2f}x")
        phases.append((count, halfconv["phases"]))
    print("  halfconv's phases, microseconds per node:")
    for count, figures in phases:
        print(f"  {count:>8,} " + ", ".join(f"{k} {v / count * 1e6:.0f}" for k, v in figures.items()))
        for stale in work.glob("chain*.onnx"):
            stale.unlink()


def big_section(work: Path) -> None:
    big = work / "big.onnx"
    make_big(big)
    size = sum(p.stat().st_size for p in work.glob("big.onnx*"))
    rows = [
        ("halfconv --no-validate", run_engine("halfconv", big, work / "big.hc.onnx", "", False)),
        ("onnxconverter-common (no validation)", run_engine("occ", big, work / "big.occ.onnx", "", False)),
        ("bound: numpy read, cast, write per tensor", run_engine("rawcast", big, work / "big.raw.onnx", "", False)),
        ("floor: onnx.load + onnx.save", run_engine("copy", big, work / "big.copy.onnx", "", False)),
    ]
    report(f"(b) {BIG_LAYERS} x {BIG_WIDTH}x{BIG_WIDTH} MatMul weights, {size / 2**30:.2f} GiB external data, no validation", rows)
    for stale in work.glob("big*"):
        stale.unlink()


def _median_wall(command: list[str], runs: int = 5) -> float:
    walls = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        walls.append(time.perf_counter() - start)
    return statistics.median(walls)


def fixed_section(work: Path) -> None:
    demo = REPO / "models" / "demo_cnn" / "model.onnx"
    halfconv = [sys.executable, "-m", "halfconv", "convert", str(demo), "-o", str(work / "demo.fp16.onnx"), "--force"]
    imports = [sys.executable, "-c", "import onnx, onnx_ir, onnxruntime, numpy"]
    bare = [sys.executable, "-c", "pass"]
    figures = {name: _median_wall(command) for name, command in (("convert", halfconv), ("imports", imports), ("python", bare))}
    print("\n(c) fixed cost: the 10-node demo CNN, wall time of the whole process, median of 5")
    print(f"  halfconv convert (validated)                  {figures['convert']:6.2f} s")
    print(f"  python -c 'import onnx, onnx_ir, onnxruntime, numpy'  {figures['imports']:6.2f} s")
    print(f"  python -c pass                                {figures['python']:6.2f} s")
    print(f"  halfconv above the imports: {figures['convert'] - figures['imports']:.2f} s")


SECTIONS = {"chain": chain_section, "resnet": resnet_section, "scaling": scaling_section, "big": big_section, "fixed": fixed_section}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=tuple(SECTIONS))
    parser.add_argument("--workdir", type=Path, help="where to put the generated models (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        for name, section in SECTIONS.items():
            if args.only in (None, name):
                section(Path(tmp))
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    import onnxruntime

    print(
        f"\nmachine: {os.cpu_count()} cores, load average {load} at the end, python {sys.version.split()[0]}, "
        f"onnx {onnx.__version__}, onnxruntime {onnxruntime.__version__}, AutoCast {'installed' if HAS_AUTOCAST else 'not installed'}"
    )


if __name__ == "__main__":
    main()
