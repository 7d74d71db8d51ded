"""A missing optional dependency is one line naming the extra to install, never a ``ModuleNotFoundError``.

The BigQuery commands (``octogen-bq-subscribe``, ``octogen-bq-autosubscribe``, ``octogen-mcp-login``) are
declared through the wrappers below, and ``octogen-sync --destination bigquery`` asks
:func:`missing_extra` first. Exit status 1: the command is fine, the installation lacks a part.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Sequence

BIGQUERY_EXTRA = "bigquery"
BIGQUERY_MODULES = ("google.cloud.bigquery", "google.cloud.bigquery_analyticshub", "grpc", "mcp")
"""What the ``bigquery`` extra brings that a plain install lacks."""
MISSING_EXTRA_STATUS = 1


def install_hint(extra: str) -> str:
    return f"pip install 'octogen-dlt[{extra}]'"


def missing_module(modules: Sequence[str]) -> str | None:
    """The first of ``modules`` that cannot be imported, or None."""
    for name in modules:
        try:
            if importlib.util.find_spec(name) is None:
                return name
        except ModuleNotFoundError:  # a parent package (``google``) is missing
            return name
    return None


def missing_extra_line(what: str, extra: str, module: str) -> str:
    return f"error: {what} needs the '{extra}' extra (no module {module!r}): {install_hint(extra)}"


def missing_bigquery_extra(what: str) -> str | None:
    """The one line to print when the ``bigquery`` extra is not installed, else None."""
    module = missing_module(BIGQUERY_MODULES)
    return None if module is None else missing_extra_line(what, BIGQUERY_EXTRA, module)


def _guarded(command: str, target: str) -> Callable[[Sequence[str] | None], int]:
    """The ``main`` of ``target`` ("module:function"), or one line naming the ``bigquery`` extra."""

    def main(argv: Sequence[str] | None = None) -> int:
        line = missing_bigquery_extra(command)
        if line is None:
            module_name, _, function = target.partition(":")
            try:
                entry: Callable[[Sequence[str] | None], int] = getattr(
                    importlib.import_module(module_name), function
                )
            except ModuleNotFoundError as error:  # something else of the extra
                line = missing_extra_line(command, BIGQUERY_EXTRA, error.name or str(error))
            else:
                return entry(argv)
        print(line, file=sys.stderr)
        return MISSING_EXTRA_STATUS

    return main


bq_subscribe = _guarded("octogen-bq-subscribe", "octogen_source.bigquery.subscribe_cli:main")
bq_autosubscribe = _guarded("octogen-bq-autosubscribe", "octogen_source.bigquery.autosubscribe_cli:main")
mcp_login = _guarded("octogen-mcp-login", "octogen_source.bigquery.login_cli:main")
