"""A failed sync as one line: ``SyncError``, and how a failure is described and whether retrying can help.

The line names the root cause (an Octogen error first, then a destination error), never the key, never a
traceback; the original exception stays the ``__cause__``."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import tomlkit
from dlt.common.configuration.exceptions import (
    ConfigFieldMissingException,
    ConfigValueCannotBeCoercedException,
    ValueNotSecretException,
)
from dlt.common.configuration.providers.toml import TomlProviderReadException
from dlt.common.destination.exceptions import DestinationException
from dlt.common.schema.exceptions import DataValidationError
from dlt.destinations.exceptions import DestinationConnectionError
from dlt.pipeline.exceptions import PipelineStepFailed
from tomlkit.exceptions import TOMLKitError

from octogen_source.client import API_KEY_ENV
from octogen_source.errors import (
    MissingAPIKeyError,
    OctogenAPIError,
    OctogenAuthenticationError,
    OctogenConfigurationError,
    OctogenConnectionError,
    OctogenError,
    OctogenForbiddenError,
    OctogenInsufficientCreditError,
    OctogenRequestError,
    OctogenValidationError,
)
from octogen_source.source.config import expected_form

MAX_ERROR_LINE = 400
MIN_REDACTED_KEY = 8
"""A "key" shorter than this (a typo, a placeholder) is no secret, and replacing it would mangle the line."""

if TYPE_CHECKING:
    from octogen_source.sync.report import SyncReport


class SyncError(OctogenError):
    """A sync failed; the message is the one line to show.

    ``report`` is what the failed run did (``outcome`` ``failed``, the figures of the catalogs it reached), as
    recorded in ``sync_runs``; ``None`` only where ``run_sync`` was not involved. ``retryable``: whether
    running the sync again may succeed (:func:`failure_is_retryable` of what failed).
    """

    def __init__(self, message: str, *, report: SyncReport | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.report = report
        self.retryable = retryable


def failure_is_configuration(error: BaseException) -> bool:
    """Whether the failure is a mistake in the arguments or the configuration, found before anything was
    loaded: a setting of the source missing, malformed or refused (no request sent, or the one that tells the
    API cannot list catalogs), a filter the API refused as invalid (422), a value of dlt's own settings it
    cannot read, a secret (the API key) in .dlt/config.toml, a configuration file it cannot parse, or a
    required one missing (a destination's credentials). Such a run is not recorded in ``sync_runs`` (the
    destination is left as it was) and the CLI exits 2."""
    if isinstance(error, SyncError) and error.__cause__ is not None:
        error = error.__cause__
    cause = root_cause(error)
    return isinstance(
        cause,
        OctogenConfigurationError
        | OctogenValidationError
        | ConfigValueCannotBeCoercedException
        | ConfigFieldMissingException
        | ValueNotSecretException
        | TomlProviderReadException,
    )


def describe_failure(error: BaseException, *, secret: str | None = None, base_url: str | None = None) -> str:
    """One readable line for a failed sync: the root cause, never a traceback, never the key."""
    cause = root_cause(error)
    line = _describe(cause, error, base_url)
    # dlt puts a failed job's whole traceback into its message: the line ends where it starts
    line = _TRACEBACK.split(line, maxsplit=1)[0].rstrip(" :")
    line = " ".join(line.split())
    for key in (secret, *_environment_keys()):
        if key and len(key) >= MIN_REDACTED_KEY:
            line = line.replace(key, "[redacted]")
    return line if len(line) <= MAX_ERROR_LINE else line[: MAX_ERROR_LINE - 3] + "..."


def _environment_keys() -> Sequence[str]:
    return [
        value for name in ("OCTO_API_KEY", "SOURCES__OCTOGEN__API_KEY") if (value := os.environ.get(name))
    ]


def _chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and what it wraps: dlt's step failures, the first exception of an exception group (a task
    group's), causes and contexts."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        if isinstance(current, PipelineStepFailed):
            current = current.exception
        elif isinstance(current, BaseExceptionGroup):
            current = current.exceptions[0]
        else:
            current = current.__cause__ or current.__context__


def root_cause(error: BaseException) -> BaseException:
    """The first Octogen error in the chain, else the first destination or configuration error of dlt's, else
    the innermost error (never an exception group: its first leaf)."""
    chain = list(_chain(error))
    for candidate in chain:
        if isinstance(candidate, OctogenError):
            return candidate
    for candidate in chain:
        if isinstance(
            candidate,
            DestinationException
            | ConfigFieldMissingException
            | ConfigValueCannotBeCoercedException
            | ValueNotSecretException
            | TomlProviderReadException
            | DataValidationError,
        ):
            return candidate
    return chain[-1]


def failure_is_retryable(error: BaseException) -> bool:
    """Whether running the failed sync again may succeed: the ``retryable`` of the first Octogen error in the
    chain (set where it was raised: the API unreachable, 429 or 5xx after the client's own retries), or, for
    anything outside Octogen's errors (the warehouse, the network to it), yes. A rejected or missing key, a
    catalog the key may not read, a refused request, a configuration mistake or data the schema contract
    refuses: no."""
    cause = root_cause(error)
    if isinstance(cause, OctogenError):
        return cause.retryable
    # the schema contract refused the data: the same data will be refused again
    return not isinstance(cause, DataValidationError)


def _describe(cause: BaseException, error: BaseException, base_url: str | None) -> str:
    if isinstance(cause, SyncError | MissingAPIKeyError):
        return str(cause)
    if isinstance(cause, TomlProviderReadException):
        # dlt's message lists every path it tried; the parser's own complaint is its last line
        problem = str(cause).strip().splitlines()[-1]
        where = broken_toml_file(cause.full_paths) or cause.file_name
        return f"cannot read the configuration: {where}: {problem}"
    if isinstance(cause, OctogenInsufficientCreditError):
        top_up = f" at {cause.top_up_url}" if cause.top_up_url else " in the Octogen platform"
        return (
            "the Octogen organization's prepaid credit is exhausted (402): nothing was loaded from this run;"
            f" top up{top_up}, then run the sync again"
        )
    if isinstance(cause, OctogenAuthenticationError):
        return f"the Octogen API rejected the API key (401 {_detail(cause)})"
    if isinstance(cause, OctogenForbiddenError):
        return f"the API key is not allowed to do this (403 {_detail(cause)})"
    if isinstance(cause, OctogenRequestError) and cause.detail:
        return f"invalid request, not sent: {_detail(cause)}"
    if isinstance(cause, OctogenValidationError):
        return f"the Octogen API rejected the request: {_detail(cause)}"
    if isinstance(cause, OctogenConnectionError) and base_url:
        return f"cannot reach the Octogen API at {base_url}: " + str(cause).replace(
            "Could not reach the Octogen API on ", ""
        )
    if isinstance(cause, OctogenError):
        return str(cause)
    step = error.step if isinstance(error, PipelineStepFailed) else None
    where = f" during {step}" if step else ""
    if isinstance(cause, ValueNotSecretException):
        return secret_in_config(cause)
    if isinstance(cause, ConfigFieldMissingException):
        return (
            f"missing configuration{where}: {cause.spec_name} needs {', '.join(cause.fields)}"
            " (set it in .dlt/secrets.toml, .dlt/config.toml or the environment)"
        )
    if isinstance(cause, DataValidationError):
        column = f" column {cause.column_name!r} of" if cause.column_name else ""
        return (
            f"the schema contract refused the data{where}: {cause.schema_entity} are"
            f" {cause.contract_mode} (sources.octogen.schema_contract), and this run would change{column}"
            f" table {cause.table_name!r}; nothing was loaded"
        )
    if isinstance(cause, ConfigValueCannotBeCoercedException):
        # the value is not shown: it may be a credential
        return f"bad setting {cause.field_name}{where}: the value given is not {expected_form(cause.hint)}"
    if isinstance(cause, DestinationConnectionError):
        return cannot_connect(cause.dataset_name, cause.inner_exc)
    if isinstance(cause, DestinationException) or step == "load":
        return f"the destination failed{where}: {_first_line(cause)}"
    return f"{type(cause).__name__}{where}: {_first_line(cause)}"


def secret_in_config(error: ValueNotSecretException) -> str:
    """The line for a secret found where dlt refuses secrets (.dlt/config.toml); never its value."""
    where = error.provider_name.strip("`")
    if error.key.rsplit(".", 1)[-1] == "api_key":
        return (
            f"the Octogen API key (sources.octogen.api_key) cannot be in {where}, which holds no secrets:"
            f" put it in .dlt/secrets.toml ([sources.octogen] api_key) or set {API_KEY_ENV} (or"
            " SOURCES__OCTOGEN__API_KEY)"
        )
    return (
        f"{error.key} is a secret and cannot be in {where}, which holds no secrets: put it in"
        " .dlt/secrets.toml or the environment"
    )


def broken_toml_file(paths: Sequence[str]) -> str | None:
    """The first of ``paths`` (the ones dlt read) that does not parse, for a line that names it."""
    for path in paths:
        try:
            tomlkit.parse(Path(path).read_text(encoding="utf-8"))
        except OSError:
            continue
        except TOMLKitError:
            return str(path).removeprefix("./")
    return None


def _detail(error: OctogenAPIError | OctogenRequestError) -> str:
    detail = error.detail
    if isinstance(detail, list):
        return "; ".join(
            ".".join(str(part) for part in problem.get("loc") or ()) + f": {problem.get('msg', '')}"
            for problem in detail
            if isinstance(problem, dict)
        )
    return str(detail) if detail is not None else str(error)


_BLANK_LINES = re.compile(r"\n\s*\n")
_TRACEBACK = re.compile(r"Traceback \(most recent call last\)|\n\s*File \"")


def cannot_connect(dataset: str, error: BaseException) -> str:
    """The line for a destination that could not be opened (dlt's connection failure, or the file the sync
    holds open: :mod:`octogen_source.sync.held_database`)."""
    return f"cannot connect to the destination (dataset {dataset!r}): {_first_line(error)}"


def _first_line(error: BaseException) -> str:
    """The first paragraph of an error message (dlt's messages go on with advice over many lines)."""
    text = str(error).strip() or type(error).__name__
    return _BLANK_LINES.split(text, maxsplit=1)[0]
