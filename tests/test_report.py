"""The evaluation report: JSON against its schema, the HTML page, Markdown, console, files.

Reports are built by hand from the frozen result dataclasses, so every test shows the
numbers it checks: one with an fp32 baseline that fell back to the CPU, and one model
alone with a fixed batch size (one latency point) and some non-finite outputs.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from halfconv.core import OutputError
from halfconv.datasets import FileDigest
from halfconv.evaluation import (
    Comparison,
    ConversionFacts,
    DatasetInfo,
    EvaluationReport,
    LatencyPoint,
    ModelEvaluation,
    Preprocessing,
    ProviderInfo,
)
from halfconv.report import (
    ReportPaths,
    format_console,
    load_schema,
    render_html,
    render_markdown,
    write_report,
)
from halfconv.report import _plots as _report_plots

CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
SHA_A = "a" * 64
SHA_B = "b" * 64
SHA_C = "c" * 64
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
IMG = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]+)" width="(\d+)" height="(\d+)">')


def latency(batch_size: int, p50_ms: float) -> LatencyPoint:
    mean_ms = p50_ms * 1.05
    return LatencyPoint(
        batch_size=batch_size,
        iters=200,
        mean_ms=mean_ms,
        min_ms=p50_ms * 0.9,
        max_ms=p50_ms * 2.0,
        p50_ms=p50_ms,
        p90_ms=p50_ms * 1.2,
        p99_ms=p50_ms * 1.6,
        throughput=batch_size / mean_ms * 1000,
    )


def fallback_provider() -> ProviderInfo:
    return ProviderInfo(
        requested="auto",
        actual="CPUExecutionProvider",
        fallback_reason="CUDAExecutionProvider is not available: libcudnn.so.9 not found",
        ort_version="1.20.1",
        device_name=None,
        cpu_model="AMD EPYC 7R13",
        cpu_count=16,
        intra_op_threads=0,
        inter_op_threads=0,
        io_binding=False,
        copies_timed=False,
    )


CIFAR_PREPROCESSING = Preprocessing(
    layout="nchw",
    input_shape=("N", 3, 32, 32),
    input_dtype="float32",
    scale=1 / 255,
    mean=(0.4914, 0.4822, 0.4465),
    std=(0.247, 0.243, 0.261),
    source="metadata",
    fixed_batch=None,
)
MNIST_FIXED_BATCH_PREPROCESSING = Preprocessing(
    layout="hw",
    input_shape=(1, 28, 28),
    input_dtype="float16",
    scale=1 / 255,
    mean=(0.1307,),
    std=(0.3081,),
    source="default",
    fixed_batch=1,
)


def baseline_report() -> EvaluationReport:
    """CIFAR-10, fp32 vs fp16, on a machine where auto fell back to the CPU."""
    per_class_fp32 = (0.93, 0.96, 0.85, 0.78, 0.91, 0.84, 0.95, 0.94, 0.96, 0.95)
    per_class_fp16 = (0.93, 0.96, 0.85, 0.77, 0.91, 0.84, 0.95, 0.94, 0.96, 0.95)
    fp32 = ModelEvaluation(
        role="fp32",
        path="models/resnet/model.onnx",
        sha256=SHA_A,
        size_bytes=1_703_936,
        precision="float32",
        accuracy=0.9071,
        correct=9071,
        total=10000,
        per_class_accuracy=per_class_fp32,
        nonfinite_outputs=0,
        latency=(latency(1, 0.41), latency(8, 1.9), latency(64, 12.5), latency(256, 48.0)),
        latency_note=None,
        conversion=None,
    )
    fp16 = dataclasses.replace(
        fp32,
        role="fp16",
        path="models/resnet/model.fp16.onnx",
        sha256=SHA_B,
        size_bytes=860_160,
        precision="mixed",
        accuracy=0.9069,
        correct=9069,
        per_class_accuracy=per_class_fp16,
        latency=(latency(1, 0.52), latency(8, 2.1), latency(64, 13.1), latency(256, 50.2)),
        conversion=ConversionFacts(
            source_model="models/resnet/model.onnx",
            target="fp16",
            nodes_total=58,
            nodes_kept_fp32=2,
            casts_inserted=4,
            kept_ops=("ReduceMean", "Softmax"),
        ),
    )
    comparison = Comparison(
        accuracy_delta_pp=-0.02,
        agreement=0.9981,
        disagreements=19,
        max_abs_logit_diff=0.0312,
        mean_abs_logit_diff=0.00041,
        logit_diff_bins=(0.0, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0),
        logit_diff_counts=(1200, 5400, 21000, 52000, 19500, 800, 100),
        size_ratio=860_160 / 1_703_936,
        latency_ratio=((1, 0.52 / 0.41), (8, 2.1 / 1.9), (64, 13.1 / 12.5), (256, 50.2 / 48.0)),
        flips_to_wrong=11,
        flips_to_right=9,
        mcnemar_p=0.8238029479980483,
        delta_ci95_pp=(-0.10979401915015297, 0.06980201755047291),
    )
    return EvaluationReport(
        created="2025-01-31T12:00:00Z",
        tool_versions={
            "halfconv": "0.1.0",
            "onnx": "1.17.0",
            "onnxruntime": "1.20.1",
            "numpy": "2.1.3",
            "python": "3.11.2",
        },
        dataset=DatasetInfo(
            name="cifar10",
            split="test",
            num_images=10000,
            num_available=10000,
            class_names=CIFAR_CLASSES,
            files=(FileDigest("~/.cache/halfconv/cifar10/test_batch.bin", SHA_C, 30_730_000),),
        ),
        provider=fallback_provider(),
        preprocessing=CIFAR_PREPROCESSING,
        models=(fp32, fp16),
        comparison=comparison,
        baseline_source="--baseline",
        notes=("fp16 is slower than fp32 on the CPU provider, which computes float16 ops in float32.",),
    )


def baseline_with(**comparison_changes: Any) -> EvaluationReport:
    report = baseline_report()
    assert report.comparison is not None
    return dataclasses.replace(report, comparison=dataclasses.replace(report.comparison, **comparison_changes))


def single_report(nonfinite: int = 7) -> EvaluationReport:
    """MNIST, one model alone on the CPU provider, fixed batch size 1."""
    model = ModelEvaluation(
        role="model",
        path="models/mnist/model.fp16.onnx",
        sha256=SHA_B,
        size_bytes=53_248,
        precision="float16",
        accuracy=0.9912,
        correct=4956,
        total=5000,
        per_class_accuracy=(1.0, 0.99, 0.99, 0.99, 0.98, 0.99, 0.99, 0.99, 0.99, 0.99),
        nonfinite_outputs=nonfinite,
        latency=(latency(1, 0.083),),
        latency_note="the model's batch dimension is fixed at 1; batch sizes 8, 64 skipped",
        conversion=None,
    )
    return EvaluationReport(
        created="2025-01-31T12:00:00Z",
        tool_versions={"halfconv": "0.1.0", "onnxruntime": "1.20.1"},
        dataset=DatasetInfo(
            name="mnist",
            split="test",
            num_images=5000,
            num_available=10000,
            class_names=tuple(str(i) for i in range(10)),
            files=(FileDigest("t10k-images-idx3-ubyte.gz", SHA_A, 1_648_877),),
        ),
        provider=dataclasses.replace(fallback_provider(), requested="cpu", fallback_reason=None),
        preprocessing=MNIST_FIXED_BATCH_PREPROCESSING,
        models=(model,),
        comparison=None,
        baseline_source=None,
        notes=(),
    )


@pytest.fixture(scope="module")
def baseline_html() -> str:
    return render_html(baseline_report())


@pytest.fixture(scope="module")
def single_html() -> str:
    return render_html(single_report())


def decoded_images(page: str) -> list[tuple[bytes, str]]:
    images = []
    for data, alt, width, height in IMG.findall(page):
        assert 300 <= int(width) <= 1000 and 150 <= int(height) <= 800  # fits the page column
        images.append((base64.b64decode(data, validate=True), alt))
    return images


@pytest.fixture
def no_plots(monkeypatch: pytest.MonkeyPatch) -> None:
    """For tests about files, not pictures: skip matplotlib, which takes most of the time."""
    monkeypatch.setattr(_report_plots, "render_plots", lambda report: {})


# -- JSON and schema ----------------------------------------------------------------------------


@pytest.mark.parametrize("report", [baseline_report(), single_report(), single_report(nonfinite=0)])
def test_json_validates_against_schema(report: EvaluationReport) -> None:
    data = json.loads(json.dumps(report.to_json_dict()))
    jsonschema.Draft202012Validator.check_schema(load_schema())
    jsonschema.Draft202012Validator(load_schema()).validate(data)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("provider", "actual"), None, "'actual' is a required property"),
        (("fp32", "accuracy"), 1.5, "1.5 is greater than the maximum of 1"),
        (("fp16", "accuracy"), 1.5, "1.5 is greater than the maximum of 1"),
        (("provider", "requested"), "tensorrt", "'tensorrt' is not one of"),
        (("schema_version",), 2, "1 was expected"),
        (("agreement",), None, "'agreement' is a dependency of 'fp32'"),
        (("fp32", "latency"), [{"batch_size": 1, "p50_ms": 1.0}], "'p90_ms' is a required property"),
    ],
)
def test_broken_json_fails_schema(path: tuple[str, ...], value: object, message: str) -> None:
    data = copy.deepcopy(baseline_report().to_json_dict())
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    if value is None:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    errors = [error.message for error in jsonschema.Draft202012Validator(load_schema()).iter_errors(data)]
    assert any(message in error for error in errors), errors


def test_single_model_json_needs_a_model() -> None:
    data = single_report().to_json_dict()
    del data["model"]
    assert not jsonschema.Draft202012Validator(load_schema()).is_valid(data)


def test_schema_describes_every_field() -> None:
    schema = load_schema()
    data = baseline_report().to_json_dict()
    data.update(single_report().to_json_dict())
    data["fp16"] = baseline_report().to_json_dict()["fp16"]  # the one with conversion facts
    defs = schema["$defs"]
    nested = {
        "dataset": schema["properties"]["dataset"],
        "provider": schema["properties"]["provider"],
        "preprocessing": schema["properties"]["preprocessing"],
        "comparison": schema["properties"]["comparison"],
        "fp16": defs["model"],
    }
    assert set(data) <= set(schema["properties"])
    for key, sub in nested.items():
        assert set(data[key]) <= set(sub["properties"]), key
    assert set(data["fp16"]["latency"][0]) == set(defs["latency_point"]["properties"])
    assert set(data["fp16"]["conversion"]) == set(defs["conversion"]["properties"])
    assert set(data["dataset"]["files"][0]) == set(defs["file"]["properties"])

    def undescribed(node: object, where: str) -> list[str]:
        if not isinstance(node, dict):
            return []
        missing = [where] if "properties" in node and "description" not in node else []
        for name, child in node.get("properties", {}).items():
            if "description" not in child:
                missing.append(f"{where}.{name}")
        for key in ("properties", "$defs"):
            for name, child in node.get(key, {}).items():
                missing += undescribed(child, f"{where}.{name}")
        return missing

    assert undescribed(schema, "$") == []


def test_written_json_turns_nonfinite_values_into_null(tmp_path: Path, no_plots: None) -> None:
    diverged = baseline_with(max_abs_logit_diff=float("inf"))
    paths = write_report(diverged, tmp_path / "out")
    text = paths.json.read_text(encoding="utf-8")
    assert "Infinity" not in text
    data = json.loads(text)
    assert data["comparison"]["max_abs_logit_diff"] is None
    jsonschema.Draft202012Validator(load_schema()).validate(data)
    assert "| max \\|logit difference\\| | inf |" in paths.markdown.read_text(encoding="utf-8")


# -- HTML ---------------------------------------------------------------------------------------


def test_html_has_three_png_plots_with_baseline(baseline_html: str) -> None:
    images = decoded_images(baseline_html)
    assert len(images) == 3
    assert baseline_html.count('<img src="data:image/png;base64,') == 3
    for png, alt in images:
        assert png.startswith(PNG_MAGIC)
        assert len(png) > 1024
        assert len(alt) > 20
    assert baseline_html.count("<figcaption>") == 3


def test_html_without_baseline_has_two_plots_and_says_why(single_html: str) -> None:
    images = decoded_images(single_html)
    assert len(images) == 2
    assert all(png.startswith(PNG_MAGIC) and len(png) > 1024 for png, _ in images)
    assert "No baseline model was evaluated" in single_html


def test_html_shows_key_numbers(baseline_html: str) -> None:
    for text in (
        "90.71%",  # fp32 accuracy
        "90.69%",  # fp16 accuracy
        "-0.02 pp",
        "99.81%",  # agreement
        "CPUExecutionProvider",
        "libcudnn.so.9 not found",
        "0.50x",  # size ratio
        "1.27x (slower)",  # batch 1 latency ratio
        "9,071/10,000",
        "ReduceMean, Softmax",
        "automobile",
        SHA_A,
        "~/.cache/halfconv/cifar10/test_batch.bin",
    ):
        assert text in baseline_html, text
    # The fallback is a warning before the first section, not a row somewhere below.
    warning = baseline_html.index('class="warning"')
    assert warning < baseline_html.index("<section>")
    assert "CPU FALLBACK" in baseline_html[warning : baseline_html.index("</div>", warning)]


def test_html_is_self_contained(baseline_html: str, single_html: str) -> None:
    for page in (baseline_html, single_html):
        assert re.search(r"https?://", page) is None
        assert "<script" not in page
        assert "<link" not in page
        assert page.startswith("<!DOCTYPE html>")


def test_html_escapes_text(no_plots: None) -> None:
    report = dataclasses.replace(single_report(), notes=("<b>bold</b> & co",))
    page = render_html(report)
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in page
    assert "<b>bold</b>" not in page


def test_html_warns_about_nonfinite_outputs(single_html: str, no_plots: None) -> None:
    assert "produced 7 non-finite output values" in single_html
    assert "non-finite" not in render_html(single_report(nonfinite=0)).split("<section>")[0]


def test_html_fixed_batch_baseline_draws_bars_for_its_one_batch_size() -> None:
    report = baseline_report()
    fp32, fp16 = (dataclasses.replace(m, latency=m.latency[:1]) for m in report.models)
    page = render_html(dataclasses.replace(baseline_with(latency_ratio=((1, 0.52 / 0.41),)), models=(fp32, fp16)))
    images = decoded_images(page)
    assert len(images) == 3
    assert "at batch size 1 for fp32 and fp16" in images[1][1]
    assert "at batch size 1, the only one measured" in page


def test_html_on_a_gpu_has_no_warning(no_plots: None) -> None:
    provider = dataclasses.replace(
        fallback_provider(),
        requested="cuda",
        actual="CUDAExecutionProvider",
        fallback_reason=None,
        device_name="NVIDIA H100 80GB HBM3",
        io_binding=True,
    )
    report = dataclasses.replace(baseline_report(), provider=provider)
    page = render_html(report)
    assert 'class="warning"' not in page
    assert "<td>GPU</td><td>NVIDIA H100 80GB HBM3</td>" in page
    assert "<td>IO binding</td><td>yes</td>" in page
    assert format_console(report).splitlines()[1] == (
        "  provider  CUDAExecutionProvider (requested cuda), onnxruntime 1.20.1, NVIDIA H100 80GB HBM3"
    )


# -- Markdown -----------------------------------------------------------------------------------


def test_markdown_has_tables_and_warning() -> None:
    text = render_markdown(baseline_report())
    assert text.startswith("# halfconv evaluation: model.fp16.onnx vs model.onnx on cifar10 test\n")
    assert "> **Warning:** CPU FALLBACK: requested 'auto' but ran on CPUExecutionProvider" in text
    assert "|  | fp32 | fp16 | fp16 vs fp32 |\n| --- | ---: | ---: | --- |" in text
    assert "| accuracy | 90.71% | 90.69% | -0.02 pp |" in text
    assert "| cat | 78.00% | 77.00% | -1.00 pp |" in text
    assert "| fp16 | 256 | 200 | 50.20 | 60.24 | 80.32 | 52.71 | 4,857 |" in text
    assert "| accuracy change (fp16 - fp32) | -0.02 pp |" in text
    assert "| op types kept float32 | `ReduceMean, Softmax` |" in text
    for heading in (
        "Summary",
        "Dataset",
        "Device and runtime",
        "Preprocessing",
        "Models",
        "Comparison",
        "Accuracy per class",
        "Latency",
        "Logit differences",
        "Precision decisions",
        "Notes",
        "Tool versions",
    ):
        assert f"\n## {heading}\n" in text, heading


def test_markdown_single_model() -> None:
    text = render_markdown(single_report())
    assert "|  | model |" in text
    assert "| fixed batch size | 1 |" in text
    assert "| model | 1 | 200 | 0.083 | 0.100 | 0.133 | 0.087 | 11,474 |" in text
    assert "There is no baseline to compare with." in text
    assert "## Comparison" not in text
    assert "## Precision decisions" not in text


def test_markdown_escapes_pipes_and_stars() -> None:
    report = dataclasses.replace(single_report(), notes=("a | b *c*",))
    assert "- a \\| b \\*c\\*" in render_markdown(report)


# -- console ------------------------------------------------------------------------------------


def test_console_with_baseline() -> None:
    assert format_console(baseline_report()).splitlines() == [
        "evaluated cifar10 test: 10,000 of 10,000 images",
        "  provider  CPUExecutionProvider (requested auto), onnxruntime 1.20.1",
        "  WARNING   CPU FALLBACK: requested 'auto' but ran on CPUExecutionProvider - CUDAExecutionProvider "
        "is not available: libcudnn.so.9 not found. All latency figures are CPU figures, not GPU figures.",
        "",
        "                                fp32          fp16  fp16 vs fp32",
        "  accuracy                    90.71%        90.69%  -0.02 pp",
        "  correct               9,071/10,000  9,069/10,000  agreement 99.81%",
        "  non-finite                       0             0  19 predictions differ",
        "  flips                                             11 right to wrong, 9 wrong to right",
        "  95% interval                                      -0.11 to +0.07 pp, McNemar p 0.824",
        "  size                       1.6 MiB     840.0 KiB  0.50x",
        "  p50 batch 1               0.410 ms      0.520 ms  1.27x (slower)",
        "  p50 batch 8                1.90 ms       2.10 ms  1.11x (slower)",
        "  p50 batch 64              12.50 ms      13.10 ms  1.05x (slower)",
        "  p50 batch 256             48.00 ms      50.20 ms  1.05x (slower)",
        "  throughput batch 256   5,079 img/s   4,857 img/s",
        "  |logit diff|                                      max 0.0312, mean 0.00041",
    ]


def test_console_single_model() -> None:
    assert format_console(single_report()).splitlines() == [
        "evaluated mnist test: 5,000 of 10,000 images",
        "  provider  CPUExecutionProvider (requested cpu), onnxruntime 1.20.1",
        "  WARNING   model (model.fp16.onnx) produced 7 non-finite output values (inf or NaN).",
        "",
        "                             model",
        "  accuracy                  99.12%",
        "  correct              4,956/5,000",
        "  non-finite                     7",
        "  size                    52.0 KiB",
        "  p50 batch 1             0.083 ms",
        "  throughput batch 1  11,474 img/s",
    ]


def test_console_has_no_ansi_colours() -> None:
    assert "\x1b" not in format_console(baseline_report())


@pytest.mark.parametrize(
    ("delta", "text"),
    [(-0.02, "-0.02 pp"), (0.5, "+0.50 pp"), (0.0, "0.00 pp"), (-0.001, "-0.001 pp")],
)
def test_accuracy_change_is_signed(delta: float, text: str) -> None:
    report = baseline_with(accuracy_delta_pp=delta)
    assert f"  accuracy                    90.71%        90.69%  {text}" in format_console(report)


def test_share_near_one_is_not_rounded_to_100_percent() -> None:
    report = baseline_with(agreement=0.99999)
    assert "agreement >99.99%" in format_console(report)


# -- files --------------------------------------------------------------------------------------


def test_write_report_creates_three_files(tmp_path: Path) -> None:
    directory = tmp_path / "a" / "b" / "report"
    paths = write_report(baseline_report(), directory)
    assert paths == ReportPaths(
        directory, directory / "report.md", directory / "report.json", directory / "report.html"
    )
    assert sorted(p.name for p in directory.iterdir()) == ["report.html", "report.json", "report.md"]
    text = paths.json.read_text(encoding="utf-8")
    assert text.startswith('{\n  "schema_version": 1,\n  "created": "2025-01-31T12:00:00Z",\n')
    assert text.endswith("\n}\n")
    data = json.loads(text)
    assert (data["fp32"]["accuracy"], data["fp16"]["accuracy"], data["agreement"]) == (0.9071, 0.9069, 0.9981)
    assert data["fp16"]["conversion"]["kept_ops"] == ["ReduceMean", "Softmax"]
    assert data["provider"]["fallback_reason"] == "CUDAExecutionProvider is not available: libcudnn.so.9 not found"
    markdown = paths.markdown.read_text(encoding="utf-8")
    assert markdown.startswith("# halfconv evaluation: model.fp16.onnx vs model.onnx on cifar10 test\n")
    assert "| accuracy | 90.71% | 90.69% | -0.02 pp |\n" in markdown
    page = paths.html.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("data:image/png;base64,") == 3


def test_write_report_replaces_an_earlier_report(tmp_path: Path, no_plots: None) -> None:
    write_report(baseline_report(), tmp_path)
    paths = write_report(single_report(), tmp_path)
    assert json.loads(paths.json.read_text(encoding="utf-8"))["model"]["role"] == "model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "report.json", "report.md"]


def test_write_report_under_a_file_fails_and_leaves_nothing(tmp_path: Path, no_plots: None) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(OutputError) as caught:
        write_report(single_report(), blocker / "deeper" / "report")
    assert str(caught.value).startswith(f"cannot write the report to {blocker / 'deeper' / 'report'}: ")
    assert "\n" not in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-a-folder"]


def test_write_report_onto_a_file_says_so(tmp_path: Path, no_plots: None) -> None:
    target = tmp_path / "report"
    target.write_text("x", encoding="utf-8")
    with pytest.raises(OutputError) as caught:
        write_report(single_report(), target)
    assert str(caught.value) == f"cannot write the report to {target}: it is a file - choose a folder"
    assert target.read_text(encoding="utf-8") == "x"


def test_write_report_error_midway_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_plots: None
) -> None:
    calls = []

    def full_disk(self: Path, text: str, encoding: str | None = None) -> int:
        calls.append(self.name)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return original(self, text, encoding=encoding)

    original = Path.write_text
    monkeypatch.setattr(Path, "write_text", full_disk)
    with pytest.raises(OutputError, match="No space left on device"):
        write_report(single_report(), tmp_path / "new" / "report")
    assert list(tmp_path.iterdir()) == []


def bf16_report() -> EvaluationReport:
    """The baseline report, with the converted model in bfloat16."""
    report = baseline_report()
    converted = report.models[1]
    assert converted.conversion is not None
    bf16 = dataclasses.replace(
        converted, role="bf16", path="models/resnet/model.bf16.onnx", conversion=dataclasses.replace(converted.conversion, target="bf16")
    )
    return dataclasses.replace(report, models=(report.models[0], bf16), notes=())


def test_a_bf16_model_is_called_bf16(no_plots: None) -> None:
    report = bf16_report()
    console = format_console(report).splitlines()
    assert console[4] == "                                fp32          bf16  bf16 vs fp32"
    markdown = render_markdown(report)
    assert "The bf16 model reaches 90.69% top-1 accuracy against 90.71% for fp32 (-0.02 pp)" in markdown
    assert "| accuracy change (bf16 - fp32) | -0.02 pp |" in markdown
    assert "|bf16 - fp32| over every output element: max 0.0312, mean 0.00041." in markdown.replace("\\|", "|")
    assert "fp16" not in markdown.replace("model.bf16.onnx", "")
    data = report.to_json_dict()
    assert "bf16" in data and "fp16" not in data
    jsonschema.validate(data, load_schema())


def test_a_report_with_both_fp16_and_bf16_fails_the_schema() -> None:
    data = bf16_report().to_json_dict()
    data["fp16"] = {**data["bf16"], "role": "fp16"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, load_schema())


def test_precision_section_names_the_calibration_and_every_measured_node() -> None:
    from halfconv.evaluation import CalibrationFacts, MeasuredNode, TrialFacts

    calibration = CalibrationFacts(
        dataset="mnist",
        split="train",
        calibration_images=512,
        validation_images=2000,
        seed=0,
        overlap=False,
        files=(("train-images-idx3-ubyte.gz", "ab" * 32),),
        budget_pp=0.1,
        range_limit=32752.0,
        fp32_accuracy=0.912,
        accuracy=0.9115,
        target="fp16",
        switchable_nodes=4,
        sessions=1,
        trials=(TrialFacts("float32", 4, 0.912, 0.0, True), TrialFacts("candidate", 3, 0.9115, 0.05, True)),
    )
    report = baseline_report()
    fp16 = report.models[1]
    assert fp16.conversion is not None
    facts = dataclasses.replace(
        fp16.conversion,
        measured=(MeasuredNode("fc1", "Gemm", "activations", "output 'H' absmax 2.15e+05"),),
        calibration=calibration,
    )
    report = dataclasses.replace(report, models=(report.models[0], dataclasses.replace(fp16, conversion=facts)))
    text = render_markdown(report)
    assert "| calibration data | mnist, training split |" in text
    assert "| validation top-1 | fp32 91.20%, converted 91.15% (change -0.05 pp; fp16 storage emulated) |" in text
    assert "| 2 | candidate | 3 of 4 | 91.15% | -0.05 pp | yes |" in text
    assert "| `fc1` | `Gemm` | activations | output 'H' absmax 2.15e+05 |" in text
    assert "Activation ranges and accuracy were not measured" not in text
    assert "Activation ranges and accuracy were not measured" in render_markdown(baseline_report())
