"""Running the search model: validation logits for a trial, and exposed values batch by batch.

Two sessions, each built once: the search model for every trial (a trial differs from
another only in the switch vector it feeds), and the same model with every value exposed
for the range and error passes. Batches of the exposed runs are sized so that one
batch's outputs stay within a fixed number of bytes.
"""

from __future__ import annotations

__all__ = ["EXPOSED_BYTES", "SearchRunner"]

from collections.abc import Iterator

import numpy as np
import onnxruntime as ort

from ..core import ORT_ERRORS, IncompatibleModelError, one_line
from ..evaluation import ModelSignature
from ._data import Images
from ._search_model import SearchModel

EXPOSED_BYTES = 256 << 20  # the outputs of one batch with every value exposed, at most (for all its runs)
_LOGIT_BATCH = 256


class SearchRunner:
    def __init__(
        self,
        sessions: tuple[ort.InferenceSession, ort.InferenceSession],
        model: SearchModel,
        signature: ModelSignature,
        fixed_batch: int | None,
    ) -> None:
        self.trials, self.instrumented = sessions
        self.model = model
        self.signature = signature
        self.fixed_batch = fixed_batch
        self.names = [e.name for e in model.exposed]
        self.runs = 0  # session.run calls
        self.quiet = ort.RunOptions()
        self.quiet.log_severity_level = 4

    def mask(self, kept_fp32: frozenset[int]) -> np.ndarray:
        """The switch vector: True (fp16 rounding) everywhere except the switches kept float32."""
        switches = np.ones(len(self.model.switches), dtype=bool)
        switches[list(kept_fp32)] = False
        return switches

    def _run(self, outputs: list[str], x: np.ndarray, switches: np.ndarray, session: ort.InferenceSession) -> list[np.ndarray]:
        real = x.shape[0]
        if self.fixed_batch is not None and real < self.fixed_batch:
            x = np.concatenate([x, np.zeros((self.fixed_batch - real, *x.shape[1:]), x.dtype)])
        try:
            results = session.run(outputs, {self.signature.input_name: x, self.model.mask_name: switches}, self.quiet)
        except ORT_ERRORS as error:
            raise IncompatibleModelError(
                f"ONNX Runtime failed to run the calibration model on the calibration images: {one_line(error)}",
                "check that the model takes the dataset's images",
            ) from None
        self.runs += 1
        if real == x.shape[0]:
            return [np.asarray(r) for r in results]
        # Padding rows of a fixed-batch model are dropped from every value that has a batch axis.
        return [np.asarray(r)[:real] if np.ndim(r) and np.shape(r)[0] == x.shape[0] else np.asarray(r) for r in results]

    def logits(self, images: Images, kept_fp32: frozenset[int]) -> np.ndarray:
        switches = self.mask(kept_fp32)
        batch = self.fixed_batch or _LOGIT_BATCH
        output = [self.signature.output_name]
        chunks = [self._run(output, images.batch(i, i + batch), switches, self.trials)[0] for i in range(0, len(images), batch)]
        return np.concatenate(chunks).astype(np.float32, copy=False)

    def _exposed_batch(self, images: Images, runs_per_batch: int) -> int:
        """Images per batch such that ``runs_per_batch`` runs' exposed outputs fit in EXPOSED_BYTES."""
        if self.fixed_batch is not None:
            return self.fixed_batch
        probe = self._run(self.names, images.batch(0, 1), self.mask(frozenset(range(len(self.model.switches)))), self.instrumented)
        per_image = max(1, sum(int(a.nbytes) for a in probe) * runs_per_batch)
        return int(min(_LOGIT_BATCH, max(1, EXPOSED_BYTES // per_image)))

    def exposed(self, images: Images, masks: list[np.ndarray]) -> Iterator[tuple[np.ndarray, list[list[np.ndarray]]]]:
        """(the batch's model inputs, one list of exposed values per switch vector) for each batch of ``images``."""
        batch = self._exposed_batch(images, len(masks))
        for start in range(0, len(images), batch):
            x = images.batch(start, start + batch)
            yield x, [self._run(self.names, x, switches, self.instrumented) for switches in masks]
