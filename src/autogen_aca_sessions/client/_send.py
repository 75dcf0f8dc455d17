"""How a request goes out: send → auth → one attempt (docs/design.md, "How a request goes out").

:meth:`Sender.send` repeats attempts as :class:`~autogen_aca_sessions.client._retry.RetryPolicy`
allows; each attempt gets a bearer token from
:class:`~autogen_aca_sessions.client.auth.RequestAuthorization` (:meth:`Sender._authorized`) and is
one exchange on the :class:`~autogen_aca_sessions.client.transport.Transport` inside a tracing
span (:meth:`Sender._attempt`). Everything that decides whether to try again is in
:class:`_Exchange`, one per request.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from multidict import CIMultiDict

from autogen_aca_sessions.client._http_errors import http_error
from autogen_aca_sessions.client._retry import (
    IDEMPOTENT_METHODS,
    Failure,
    RetryPolicy,
    failure_of,
    parse_retry_after,
)
from autogen_aca_sessions.client.auth import RequestAuthorization, TokenProvider
from autogen_aca_sessions.client.clock import Clock
from autogen_aca_sessions.client.contracts import Request
from autogen_aca_sessions.client.errors import (
    RequestMayHaveRunError,
    RequestNotSentError,
    SessionsConnectionError,
    UploadOutcomeUnknownError,
)
from autogen_aca_sessions.client.transport import FileUpload, Transport, TransportRequest
from autogen_aca_sessions.telemetry import http_attempt, http_status, note_retry, with_trace_context

__all__ = ["Answer", "NoAnswerInTime", "Sender"]

logger = logging.getLogger("autogen_aca_sessions.client.client")


@dataclass(frozen=True)
class Answer:
    """A successful (2xx) answer to a request."""

    status: int
    """HTTP status code."""
    headers: CIMultiDict[str]
    """Response headers (case-insensitive)."""
    body: bytes
    """The whole body."""
    method: str
    """HTTP method of the request."""
    url: str
    """URL of the last attempt."""


class NoAnswerInTime(Exception):
    """The request was sent but no complete answer came within its timeout."""

    def __init__(self, waited: float) -> None:
        super().__init__(f"no answer within {waited:g} s")
        self.waited = waited


class _Exchange:
    """One request's attempts: its target, its deadline, and the decisions after each attempt."""

    def __init__(
        self,
        request: Request,
        url: str,
        body: bytes | FileUpload | None,
        policy: RetryPolicy,
        clock: Clock,
        deadline: float | None,
    ) -> None:
        self.request = request
        self.url = url
        self.method = request.method
        self.body = body
        self.idempotent = request.method in IDEMPOTENT_METHODS
        self.policy = policy
        self.clock = clock
        self.deadline = deadline
        self.attempt = 0
        """How many attempts came before the next one."""

    def attempt_timeout(self, timeout: float) -> float:
        """The next attempt's timeout: ``timeout``, cut to what is left before the deadline."""
        if self.deadline is None:
            return timeout
        remaining = self.deadline - self.clock.now()
        if remaining <= 0:
            raise NoAnswerInTime(timeout)
        return min(timeout, remaining)

    def _in_time(self, delay: float) -> bool:
        """Whether waiting ``delay`` seconds still leaves time for another attempt."""
        return self.deadline is None or self.clock.now() + delay < self.deadline

    def after_failure(self, error: SessionsConnectionError, waited: float) -> float:
        """The delay before the next attempt after one that got no answer; raises when there is none."""
        if isinstance(error, RequestNotSentError) and not error.retryable:
            raise error
        failure = failure_of(error)
        cause = error.__cause__ if error.__cause__ is not None else error
        if not self.policy.retries_failure(failure, idempotent=self.idempotent):
            if failure is Failure.NO_ANSWER:
                raise NoAnswerInTime(waited) from None
            # The request may have reached the server: never send it twice.
            upload = isinstance(self.body, FileUpload)
            unknown = UploadOutcomeUnknownError if upload else RequestMayHaveRunError
            raise unknown(
                f"{self.method} {self.url} failed after the request was sent ({error}); it was "
                "not retried because it may have run.",
                method=self.method,
                url=self.url,
            ) from cause
        if failure is Failure.NO_ANSWER and self.attempt >= self.policy.max_retries:
            raise NoAnswerInTime(waited) from None
        delay = self.policy.delay(self.attempt, None, self.clock.uniform)
        if self.attempt >= self.policy.max_retries or not self._in_time(delay):
            gave_up = RequestNotSentError if failure is Failure.NOT_SENT else RequestMayHaveRunError
            raise gave_up(
                f"{self.method} {self.url} failed after {self.attempt + 1} attempt(s): {error}",
                method=self.method,
                url=self.url,
            ) from cause
        return delay

    def after_error_status(
        self, status: int, headers: Mapping[str, str], body: bytes, *, fresh_token_tried: bool
    ) -> float:
        """The delay before the next attempt after an error answer; raises when there is none."""
        delay = self.policy.delay(self.attempt, parse_retry_after(headers), self.clock.uniform)
        if (
            self.policy.retries_status(status, idempotent=self.idempotent)
            and self.attempt < self.policy.max_retries
            and self._in_time(delay)
        ):
            return delay
        raise http_error(
            self.request, self.url, status, headers, body, self.attempt, fresh_token_tried=fresh_token_tried
        )


class Sender:
    """Sends requests to one pool: attempts, tokens and retries."""

    def __init__(
        self,
        transport: Transport,
        tokens: TokenProvider,
        policy: RetryPolicy,
        clock: Clock,
        *,
        user_agent: str,
        request_timeout: float,
    ) -> None:
        self.transport = transport
        self.tokens = tokens
        self.policy = policy
        self.clock = clock
        self.user_agent = user_agent
        self.request_timeout = request_timeout

    async def send(
        self,
        request: Request,
        url: str,
        *,
        timeout: float,
        headers: Mapping[str, str] | None = None,
        upload: FileUpload | None = None,
        deadline: float | None = None,
        raw_body: bytes | None = None,
    ) -> Answer:
        """Send ``request`` to ``url`` until it is answered 2xx or the retry policy gives up.

        ``timeout`` bounds each attempt; ``deadline`` (on the clock), when given, bounds all
        attempts and the waits between them together (:class:`NoAnswerInTime` when it passes).
        ``raw_body`` is sent as it is (a sandbox file's bytes; pass its ``Content-Type`` in ``headers``).
        """
        body: bytes | FileUpload | None = upload if raw_body is None else raw_body
        if request.json is not None:
            body = json.dumps(request.json).encode("utf-8")
        exchange = _Exchange(request, url, body, self.policy, self.clock, deadline)
        auth = RequestAuthorization(self.tokens)
        while True:
            attempt_timeout = exchange.attempt_timeout(timeout)
            try:
                status, answer_headers, payload = await self._authorized(
                    exchange, auth, headers, attempt_timeout
                )
            except SessionsConnectionError as error:
                delay = exchange.after_failure(error, attempt_timeout)
                reason = str(error)
            else:
                if await auth.retry_after_rejection(status, answer_headers):
                    continue
                if 200 <= status < 300:
                    return Answer(status, answer_headers, payload, exchange.method, url)
                delay = exchange.after_error_status(
                    status, answer_headers, payload, fresh_token_tried=auth.fresh_token_tried
                )
                reason = f"answered {status}"
            logger.info(
                "%s %s: %s; retry %d/%d in %.2fs",
                exchange.method,
                url,
                reason,
                exchange.attempt + 1,
                self.policy.max_retries,
                delay,
            )
            exchange.attempt += 1
            note_retry()
            await self.clock.sleep(delay)

    async def _authorized(
        self,
        exchange: _Exchange,
        auth: RequestAuthorization,
        extra_headers: Mapping[str, str] | None,
        timeout: float,
    ) -> tuple[int, CIMultiDict[str], bytes]:
        """One attempt with a bearer token and the request's headers."""
        headers = {
            "Authorization": await auth.header(),
            "User-Agent": self.user_agent,
            "Accept": "application/json",
        }
        if isinstance(exchange.body, bytes):
            headers["Content-Type"] = "application/json"
        if extra_headers:
            headers.update(extra_headers)
        return await self._attempt(exchange, headers, timeout)

    async def _attempt(
        self, exchange: _Exchange, headers: dict[str, str], timeout: float
    ) -> tuple[int, CIMultiDict[str], bytes]:
        """One exchange on the transport, whatever its status, inside its tracing span."""
        with http_attempt(exchange.method, exchange.url, exchange.attempt) as span:
            response = await self.transport.send(
                TransportRequest(
                    method=exchange.method,
                    url=exchange.url,
                    # W3C trace context, so a server that traces (the local pool does) continues it.
                    headers=with_trace_context(headers),
                    body=exchange.body,
                    timeout=timeout,
                    connect_timeout=min(timeout, self.request_timeout),
                )
            )
            http_status(span, response.status)
        return response.status, CIMultiDict(response.headers), response.body
