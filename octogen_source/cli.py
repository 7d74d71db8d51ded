"""What the command-line entry points share (``octogen-bq-subscribe``, ``octogen-bq-autosubscribe``,
``pipelines/sync.py``)."""

from __future__ import annotations

import argparse
from typing import Any, NoReturn


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line on stderr (no usage block); the exit status stays 2.

    The line is ``<prog>: error: <message> (see --help)``, or ``error: <message> (see --help)`` with
    ``prog_in_errors=False``.
    """

    def __init__(self, *args: Any, prog_in_errors: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.prog_in_errors = prog_in_errors

    def error(self, message: str) -> NoReturn:
        prefix = f"{self.prog}: " if self.prog_in_errors else ""
        self.exit(2, f"{prefix}error: {message} (see --help)\n")
