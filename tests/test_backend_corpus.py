"""The ONNX backend test corpus that ships in the onnx wheel, converted model by model.

Every model must convert, or be refused with one of halfconv's own errors that is not
"a halfconv bug": the corpus is valid ONNX, so a failure of the converted model is
halfconv's. What each model's outcome was is counted in the test's own assertion message.
"""

from __future__ import annotations

import collections
from pathlib import Path

import onnx
import pytest

from halfconv.conversion import ConvertOptions, convert
from halfconv.core import HalfconvError

CORPUS = Path(onnx.__file__).parent / "backend" / "test" / "data"
MODELS = sorted(CORPUS.glob("*/*/model.onnx"))


def test_the_corpus_is_there() -> None:
    assert len(MODELS) >= 100, f"{CORPUS} holds {len(MODELS)} models"


def test_every_model_converts_or_is_refused_for_a_reason_of_its_own(tmp_path: Path) -> None:
    outcomes: collections.Counter[str] = collections.Counter()
    bugs = []
    for index, path in enumerate(MODELS):
        output = tmp_path / f"{index}.onnx"
        try:
            result = convert(path, ConvertOptions(output=output))
        except HalfconvError as error:
            outcomes[type(error).__name__] += 1
            if "halfconv bug" in str(error):
                bugs.append(f"{path.parent.relative_to(CORPUS)}: {error}")
            assert not output.exists()
        else:
            outcomes[f"converted ({result.validation.status})"] += 1
            onnx.checker.check_model(str(output), full_check=True)
    assert bugs == [], dict(outcomes)
    assert outcomes["converted (passed)"] >= 60, dict(outcomes)


def test_an_op_the_cpu_provider_lacks_at_the_model_opset_is_named(tmp_path: Path) -> None:
    """AveragePool-1 has no ONNX Runtime kernel: the input cannot run either, and the hint says what to do."""
    from halfconv.core import ProviderError

    with pytest.raises(ProviderError) as caught:
        convert(CORPUS / "pytorch-converted" / "test_AvgPool2d" / "model.onnx", ConvertOptions(output=tmp_path / "o.onnx"))
    assert "Could not find an implementation for AveragePool(1)" in caught.value.what
    assert caught.value.hint == "ONNX Runtime has no kernel for that op at the model's opset: re-export it at a newer opset"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", [f"test_sequence_model{i}" for i in (1, 2, 3, 4, 5, 6, 8)])
def test_sequence_models_are_refused_with_the_reason(name: str, tmp_path: Path) -> None:
    from halfconv.core import NothingToConvertError

    with pytest.raises(NothingToConvertError, match="sequence and optional values cannot be cast"):
        convert(CORPUS / "simple" / name / "model.onnx", ConvertOptions(output=tmp_path / "o.onnx"))
