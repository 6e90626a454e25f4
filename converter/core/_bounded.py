"""Running a session so that a time limit and Ctrl-C can stop it, wherever ORT is in its native code."""

from __future__ import annotations

__all__ = ["RunTimedOut", "run_bounded"]

import threading
import time
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import onnxruntime as ort


class RunTimedOut(Exception):
    """A session run that outlasted its time limit; it was stopped."""


def run_bounded(
    session: ort.InferenceSession, feeds: dict[str, np.ndarray], time_limit_s: float
) -> list[object]:
    """``session.run`` that gives up after ``time_limit_s`` seconds, and stops at once on Ctrl-C.

    ORT's ``run`` holds the calling thread in native code until it returns, so neither a
    time limit nor Ctrl-C could stop a model that runs for hours (a Loop of 2^31 trips).
    It runs on a worker thread here; the caller's thread waits, and on the limit or an
    interrupt sets ORT's ``terminate`` flag, which ends the run within one kernel.
    Raises RunTimedOut, or what the run raised.
    """
    import onnxruntime as ort

    options = ort.RunOptions()
    options.log_severity_level = 4  # a terminated run logs an error line of its own; the caller says what happened
    outcome: dict[str, object] = {}

    def work() -> None:
        try:
            outcome["outputs"] = session.run(None, feeds, options)
        except BaseException as error:  # handed to the caller's thread
            outcome["error"] = error

    worker = threading.Thread(target=work, name="halfconv-ort-run", daemon=True)
    worker.start()
    deadline = time.monotonic() + time_limit_s
    try:
        # Short waits: a signal that reaches another thread (ORT's own, say) does not wake
        # a long one, and Python raises KeyboardInterrupt only between waits.
        while worker.is_alive() and time.monotonic() < deadline:
            worker.join(min(0.1, max(deadline - time.monotonic(), 0.0)))
    except BaseException:
        options.terminate = True
        worker.join()
        raise
    if worker.is_alive():
        options.terminate = True
        worker.join()
        raise RunTimedOut(f"ran more than {time_limit_s:g} s")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["outputs"]  # type: ignore[return-value]
