"""What the command-line entry points share (``octogen-sync``, ``octogen-bq-subscribe``,
``octogen-bq-autosubscribe``): one-line argument errors and the table printer."""

from __future__ import annotations

import argparse
from collections.abc import Collection, Iterable, Sequence
from decimal import Decimal
from typing import Any, NoReturn


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line on stderr (no usage block); the exit status stays 2.

    The line is ``<prog>: error: <message> (see --help)``, or ``error: <message> (see --help)`` with
    ``prog_in_errors=False``.
    """

    def __init__(self, *args: Any, prog_in_errors: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.prog_in_errors = prog_in_errors
        self.error_message: str | None = None
        """The message of the last bad argument (for a caller that reports it again, e.g. as JSON)."""

    def error(self, message: str) -> NoReturn:
        prefix = f"{self.prog}: " if self.prog_in_errors else ""
        self.error_message = f"{message} (see --help)"
        self.exit(2, f"{prefix}error: {self.error_message}\n")


def format_table(
    header: Sequence[str], rows: Iterable[Sequence[object]], *, right: Collection[int] = ()
) -> list[str]:
    """The lines of a table: columns two spaces apart, no trailing blanks; the one printer of the commands.

    Values are shown as a person reads them: numbers right-aligned (floats with two decimals), lists as
    ``M, L, XL`` (not ``['M', 'L', 'XL']``), booleans as ``true``/``false``, None as nothing. Columns in
    ``right`` are right-aligned whatever their values (numbers the caller formatted, such as ``1,024``).
    """
    values = [list(row) for row in rows]
    aligned_right = [
        index in right
        or (
            any(row[index] is not None for row in values)
            and all(_is_number(row[index]) for row in values if row[index] is not None)
        )
        for index in range(len(header))
    ]
    table = [list(header), *([_cell(value) for value in row] for row in values)]
    widths = [max(len(row[index]) for row in table) for index in range(len(header))]
    return [
        "  ".join(
            cell.rjust(widths[index]) if aligned_right[index] else cell.ljust(widths[index])
            for index, cell in enumerate(row)
        ).rstrip()
        for row in table
    ]


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float | Decimal):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list | tuple):
        return ", ".join(_cell(item) for item in value)
    return str(value)
