"""Which failed attempts are sent again, and after how long (docs/design.md, "How a request goes
out"). The rules are the client's safety promise: an execution or an upload is never sent twice
unless the service turned it away before doing anything."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

from autogen_aca_sessions.client.errors import RequestNotSentError, SessionsConnectionError
from autogen_aca_sessions.client.transport import ResponseTimeoutError

__all__ = ["IDEMPOTENT_METHODS", "Failure", "RetryPolicy", "failure_of", "parse_retry_after"]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})
"""Methods whose resend cannot repeat a side effect."""
# 429 and 503 mean the service turned the request away before doing anything: safe to resend
# even an execution. 502/504 may come from a gateway after the request reached the pool.
_RETRY_ANY_METHOD = frozenset({429, 503})
# 500 is retried only where a resend cannot repeat a side effect (GET, DELETE).
_RETRY_IDEMPOTENT_ONLY = frozenset({500, 502, 504})


class Failure(enum.Enum):
    """How an attempt ended without an answer, i.e. what the server can have seen of it."""

    NOT_SENT = "not sent"
    """No connection was made: the server saw nothing."""
    NO_ANSWER = "no answer"
    """Sent, and no complete answer in time: it may be running."""
    BROKEN = "broken"
    """Sent, and the connection broke before the answer: it may have run."""


def failure_of(error: SessionsConnectionError) -> Failure:
    """What a transport's error says the server can have seen."""
    if isinstance(error, RequestNotSentError):
        return Failure.NOT_SENT
    if isinstance(error, ResponseTimeoutError):
        return Failure.NO_ANSWER
    return Failure.BROKEN


@dataclass(frozen=True)
class RetryPolicy:
    """Which failed attempts are sent again, and after how long.

    Only what cannot repeat a side effect is resent: anything the service turned away before
    doing it (429, 503, no connection), and idempotent requests after anything else transient.
    """

    max_retries: int
    """Retries after the first attempt."""
    backoff_base: float
    """First backoff delay, doubled per retry (with jitter)."""
    backoff_max: float
    """Longest delay between retries (also caps ``Retry-After``)."""

    def retries_status(self, status: int, *, idempotent: bool) -> bool:
        """Whether an answer with ``status`` may be retried."""
        return status in _RETRY_ANY_METHOD or (idempotent and status in _RETRY_IDEMPOTENT_ONLY)

    def retries_failure(self, failure: Failure, *, idempotent: bool) -> bool:
        """Whether an attempt that got no answer may be retried."""
        return failure is Failure.NOT_SENT or idempotent

    def delay(
        self, attempt: int, retry_after: float | None, jitter: Callable[[float, float], float]
    ) -> float:
        """Seconds to wait before retry ``attempt + 1``: the service's ``Retry-After`` when it sent
        one, else exponential backoff with ``jitter(low, high)`` over its upper half."""
        if retry_after is not None:
            return min(retry_after, self.backoff_max)
        ceiling = min(self.backoff_max, self.backoff_base * (2.0**attempt))
        # Full jitter over the upper half keeps retries of many clients apart.
        return ceiling / 2 + jitter(0.0, ceiling / 2)


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the service asked to wait (``retry-after-ms``, ``x-ms-retry-after-ms`` or
    ``Retry-After`` in seconds or as an HTTP date), or None. ``headers`` must look up names
    case-insensitively."""
    millis = headers.get("retry-after-ms") or headers.get("x-ms-retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000.0)
        except ValueError:
            pass
    value = headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
