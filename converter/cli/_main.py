"""The ``halfconv`` parser and entry point.

The commands reach the library's pipelines through their packages' lazy names, at run
time, so that ``halfconv --help`` stays fast and never imports onnxruntime, torch or
TensorFlow.
"""

from __future__ import annotations

__all__ = ["COMMANDS", "build_parser", "main"]

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from typing import NoReturn, cast

from ..core import EXIT_INTERRUPTED, HalfconvError, __version__
from ._convert import CONVERT, POLICY
from ._doctor import DOCTOR
from ._evaluate import EVALUATE, RUN
from ._export import EXPORT

COMMANDS = (EXPORT, CONVERT, EVALUATE, RUN, POLICY, DOCTOR)
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a writer whose pipe closed


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors in halfconv's form: one line, ``Error: <what> - <what to do>``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"Error: {message} - see '{self.prog} --help'\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="halfconv",
        description="Convert fp32 ONNX models to fp16, keep sensitive ops in fp32, and prove accuracy.",
    )
    parser.add_argument("--version", action="version", version=f"halfconv {__version__}")
    # Subparsers are made by the same class (argparse's default), so their errors are one line too.
    subparsers = cast("argparse._SubParsersAction[argparse.ArgumentParser]", parser.add_subparsers(dest="command", metavar="COMMAND"))
    subparsers.required = True
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a HalfconvError becomes one line on stderr and its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so staging folders are cleaned up.
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        return int(args.handler(args))
    except HalfconvError as error:
        print(f"Error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("Error: interrupted - nothing was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of stdout went away (``halfconv ... | head``): stop quietly, as a pipe's
        # writer does. Output written so far stays; stdout goes nowhere from here on.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    finally:
        signal.signal(signal.SIGTERM, previous)
