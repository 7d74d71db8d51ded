"""When and how long the client retries: the policy, ``Retry-After``, and the client-wide rate-limit gate.

Retried: what the error says can be retried (``OctogenError.retryable``, set where it is raised: transport
errors, 429 and 5xx). Never retried: any other status (402, insufficient credit, above all: every request is
billed), configuration and response errors.
Waits grow exponentially with jitter, unless the API says how long to wait (``Retry-After``, in seconds or
as an HTTP date). A run of attempts is bounded both in number and in total time; a wait that would end
past the time budget is not started, the last error is raised at once instead. The client also ends an
attempt still running when the budget runs out (``OctogenClient``), so no request outlasts it.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
)
from tenacity.wait import wait_exponential, wait_random

from octogen_source.errors import OctogenAPIError, OctogenConfigurationError, OctogenError

__all__ = ["RateLimitGate", "RetryPolicy", "build_retrying", "is_retryable", "retry_after_seconds"]

log = logging.getLogger("octogen_source.client")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry one request."""

    max_attempts: int = 6
    """Attempts in total, the first included (1 = never retry)."""
    max_total_seconds: float = 120.0
    """Time budget from the first attempt, retries included: no attempt starts after it, and the client ends
    one still running (headers or body) when it runs out."""
    initial_backoff: float = 0.5
    """First wait; each later one doubles. Every wait adds a random jitter of up to this much."""
    max_backoff: float = 20.0
    """Cap of the doubling part of a wait (a ``Retry-After`` from the API is honoured even when longer)."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise OctogenConfigurationError(
                f"RetryPolicy.max_attempts must be at least 1, got {self.max_attempts}"
            )
        for name in ("max_total_seconds", "initial_backoff", "max_backoff"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise OctogenConfigurationError(
                    f"RetryPolicy.{name} must be a finite number >= 0, got {value!r}"
                )


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or HTTP date); ``None`` if unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


class RateLimitGate:
    """A client-wide "not before" time: after a 429 every request of the client waits for it.

    One 429 thus slows the whole run down instead of each concurrent request finding out on its own.
    """

    __slots__ = ("_limited_by", "_not_before")

    def __init__(self) -> None:
        self._not_before = 0.0
        self._limited_by: OctogenAPIError | None = None

    def close_for(self, seconds: float, cause: OctogenAPIError) -> None:
        """Hold every request for ``seconds`` from now (a longer hold already in place is kept)."""
        not_before = time.monotonic() + seconds
        if not_before > self._not_before:
            self._not_before = not_before
            self._limited_by = cause

    async def wait(self, deadline: float) -> None:
        """Wait until the gate opens; fail fast with the 429 if it opens only after ``deadline``."""
        while (remaining := self._not_before - time.monotonic()) > 0:
            if self._not_before > deadline and self._limited_by is not None:
                raise _rate_limited_past_deadline(self._limited_by, remaining)
            await asyncio.sleep(remaining)


def _rate_limited_past_deadline(cause: OctogenAPIError, remaining: float) -> OctogenAPIError:
    # a copy keeps the 429's class and fields (retry_after, request_id, ...); only the message changes
    error = type(cause).__new__(type(cause))
    error.__dict__.update(cause.__dict__)
    error.args = (f"{cause}; rate limited for another {remaining:.1f}s, beyond the retry time budget",)
    return error


def is_retryable(error: BaseException) -> bool:
    """The error's own ``retryable`` (transport errors, 429 and 5xx); any other exception is final."""
    return isinstance(error, OctogenError) and error.retryable


def build_retrying(policy: RetryPolicy, gate: RateLimitGate) -> AsyncRetrying:
    """A tenacity controller for ``policy``; call ``.copy()`` on it for each request (it keeps run state).

    Every attempt first waits for ``gate``; a 429 closes the gate for its ``Retry-After`` (or backoff).
    """
    backoff = wait_exponential(multiplier=policy.initial_backoff, max=policy.max_backoff) + wait_random(
        0, policy.initial_backoff
    )

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        delay: float | None = None
        if isinstance(error, OctogenAPIError) and error.response is not None:
            delay = retry_after_seconds(error.response.headers.get("retry-after"))
        if delay is None:
            delay = backoff(state)
        if isinstance(error, OctogenAPIError) and error.status_code == 429:
            gate.close_for(delay, error)
        return delay

    async def wait_for_gate(state: RetryCallState) -> None:
        # runs before every attempt, outside it: the gate's own error is final, never retried
        await gate.wait(state.start_time + policy.max_total_seconds)

    return AsyncRetrying(
        before=wait_for_gate,
        retry=retry_if_exception(is_retryable),
        wait=wait,
        stop=stop_after_attempt(policy.max_attempts) | stop_before_delay(policy.max_total_seconds),
        before_sleep=_log_retry,
        reraise=True,
    )


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome is not None else None
    log.info("retrying in %.2fs (attempt %d failed): %s", state.upcoming_sleep, state.attempt_number, error)
