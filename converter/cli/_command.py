"""A command of the CLI as data: its name, its texts, its arguments and the function that runs it."""

from __future__ import annotations

__all__ = ["Command"]

import argparse
import dataclasses
from collections.abc import Callable


@dataclasses.dataclass(frozen=True)
class Command:
    name: str
    help: str  # one line, for `halfconv --help`
    description: str  # a paragraph, for `halfconv NAME --help`
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]

    def register(self, subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        parser = subparsers.add_parser(self.name, help=self.help, description=self.description)
        self.arguments(parser)
        parser.set_defaults(handler=self.run)
