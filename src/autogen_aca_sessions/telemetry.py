"""OpenTelemetry spans of the client and the executor, through ``opentelemetry-api`` only.

Spans go to the global tracer provider and start in the current context, which is where
AutoGen (``autogen-core``'s ``invoke_agent`` / ``execute_tool`` spans) and Agent Framework put
theirs: a code execution shows up under the agent that asked for it. With no SDK configured
the API's no-op tracer makes all of this free.

What is recorded (OpenTelemetry HTTP and GenAI semantic conventions where they apply):

* one ``INTERNAL`` span per client operation, ``aca_sessions <operation>``, with
  ``aca_sessions.operation``, ``aca_sessions.api_version``, ``aca_sessions.session.id``,
  ``aca_sessions.retry_count``, ``aca_sessions.poll_count``, the execution's
  ``aca_sessions.execution.status`` / ``.id``, and on failure ``error.type``,
  ``aca_sessions.error_code`` and ``http.response.status_code``;
* one ``CLIENT`` span per HTTP attempt (``POST``, ``GET`` ...): ``http.request.method``,
  ``url.full``, ``server.address``, ``server.port``, ``http.response.status_code``,
  ``http.request.resend_count`` (retries), ``error.type``;
* one ``execute_tool`` span per ``execute_code_blocks`` call (``gen_ai.operation.name``,
  ``gen_ai.tool.name``) with a child per block: ``aca_sessions.block.language``,
  ``.exit_code``, ``.timed_out``, ``.state_lost``.

Never the code, its output, tokens or headers: code and output are added (cut to
:data:`CONTENT_LIMIT` characters) only when :data:`CAPTURE_CONTENT_ENV` (or GenAI's
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``) is ``true``.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlsplit

from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

__all__ = ["CAPTURE_CONTENT_ENV", "CONTENT_LIMIT", "TRACER_NAME", "capture_content"]

TRACER_NAME = "autogen_aca_sessions"
CAPTURE_CONTENT_ENV = "ACA_SESSIONS_CAPTURE_CONTENT"
"""``true``: spans carry the code sent and the output received (off by default)."""
_GENAI_CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
CONTENT_LIMIT = 4096
"""Most characters of code or output put in an attribute when content capture is on."""

P = ParamSpec("P")
R = TypeVar("R")


def _tracer() -> trace.Tracer:
    # Looked up at each use: a provider configured after import is still picked up.
    return trace.get_tracer(TRACER_NAME)


def capture_content() -> bool:
    """Whether the user opted in to code and output in span attributes."""
    for name in (CAPTURE_CONTENT_ENV, _GENAI_CAPTURE_ENV):
        if os.environ.get(name, "").strip().lower() in ("1", "true", "yes"):
            return True
    return False


def _cut(text: str) -> str:
    return text if len(text) <= CONTENT_LIMIT else text[:CONTENT_LIMIT] + "...[cut]"


# -- client operations ------------------------------------------------------------------------


@dataclass
class _OperationStats:
    retries: int = 0
    polls: int = 0


_current: contextvars.ContextVar[_OperationStats | None] = contextvars.ContextVar(
    "aca_sessions_operation", default=None
)


def note_retry() -> None:
    """The current operation retries a request."""
    stats = _current.get()
    if stats is not None:
        stats.retries += 1


def note_poll() -> None:
    """The current operation polls an execution once more."""
    stats = _current.get()
    if stats is not None:
        stats.polls += 1


def traced_operation(operation: str) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Wrap a client method in an operation span (its first argument after ``self`` is the
    session identifier when the method has one)."""

    def decorate(method: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(method)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            if _current.get() is not None:
                # Operations built from others (a download that lists first) are one span.
                return await method(*args, **kwargs)
            client = args[0]
            attributes: dict[str, Any] = {
                "aca_sessions.operation": operation,
                "aca_sessions.api_version": str(getattr(getattr(client, "api_version", ""), "value", "")),
            }
            identifier = args[1] if len(args) > 1 and isinstance(args[1], str) else kwargs.get("identifier")
            if isinstance(identifier, str):
                attributes["aca_sessions.session.id"] = identifier
            stats = _OperationStats()
            token = _current.set(stats)
            try:
                with _tracer().start_as_current_span(
                    f"aca_sessions {operation}",
                    kind=SpanKind.INTERNAL,
                    attributes=attributes,
                    record_exception=False,
                    set_status_on_exception=False,
                ) as span:
                    try:
                        result = await method(*args, **kwargs)
                    except BaseException as exc:
                        _record_failure(span, exc)
                        raise
                    finally:
                        span.set_attribute("aca_sessions.retry_count", stats.retries)
                        if stats.polls:
                            span.set_attribute("aca_sessions.poll_count", stats.polls)
                    _record_result(span, result)
                    return result
            finally:
                _current.reset(token)

        return wrapper

    return decorate


def _record_failure(span: Span, exc: BaseException) -> None:
    span.set_attribute("error.type", type(exc).__qualname__)
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        span.set_attribute("http.response.status_code", status)
    code = getattr(exc, "error_code", None)
    if isinstance(code, str) and code:
        span.set_attribute("aca_sessions.error_code", code)
    # The message may quote what the service said, never a secret; code and output are not in it.
    span.set_status(Status(StatusCode.ERROR, type(exc).__qualname__))


def _record_result(span: Span, result: Any) -> None:
    status = getattr(result, "status", None)
    if status is None or not hasattr(result, "stdout"):
        return
    span.set_attribute("aca_sessions.execution.status", str(getattr(status, "value", status)))
    execution_id = getattr(result, "execution_id", None)
    if execution_id:
        span.set_attribute("aca_sessions.execution.id", str(execution_id))
    if getattr(result, "error_code", None):
        span.set_attribute("aca_sessions.error_code", str(result.error_code))
    if getattr(result, "timed_out", False):
        span.set_attribute("aca_sessions.execution.timed_out", True)
    if getattr(result, "state_lost", False):
        span.set_attribute("aca_sessions.execution.state_lost", True)


@contextlib.contextmanager
def http_attempt(method: str, url: str, resend_count: int) -> Iterator[Span]:
    """A ``CLIENT`` span around one HTTP exchange (HTTP semantic conventions)."""
    parts = urlsplit(url)
    attributes: dict[str, Any] = {
        "http.request.method": method,
        "url.full": url,
        "server.address": parts.hostname or "",
    }
    port = parts.port or (443 if parts.scheme == "https" else 80)
    attributes["server.port"] = port
    if resend_count:
        attributes["http.request.resend_count"] = resend_count
    with _tracer().start_as_current_span(
        method,
        kind=SpanKind.CLIENT,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except BaseException as exc:
            # The transport's own exception (a connection refused, a timeout), not our wrapper.
            cause = exc.__cause__ if exc.__cause__ is not None else exc
            span.set_attribute("error.type", type(cause).__qualname__)
            span.set_status(Status(StatusCode.ERROR, type(cause).__qualname__))
            raise


def with_trace_context(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` plus ``traceparent`` (and ``tracestate``) of the current span, if one is recording."""
    carrier = dict(headers)
    propagate.inject(carrier)
    return carrier


def http_status(span: Span, status: int) -> None:
    """Record the response status; 4xx and 5xx are errors of a client span."""
    span.set_attribute("http.response.status_code", status)
    if status >= 400:
        span.set_attribute("error.type", str(status))
        span.set_status(Status(StatusCode.ERROR))


# -- executor ---------------------------------------------------------------------------------


@contextlib.contextmanager
def code_blocks_span(tool_name: str, session_id: str, count: int) -> Iterator[Span]:
    """The GenAI ``execute_tool`` span of one ``execute_code_blocks`` call."""
    with _tracer().start_as_current_span(
        f"execute_tool {tool_name}",
        kind=SpanKind.INTERNAL,
        attributes={
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": tool_name,
            "gen_ai.tool.type": "extension",
            "aca_sessions.session.id": session_id,
            "aca_sessions.block_count": count,
        },
    ) as span:
        yield span


@contextlib.contextmanager
def code_block_span(language: str, code: str) -> Iterator[Span]:
    """The span of one code block; :func:`block_outcome` records how it ended."""
    attributes: dict[str, Any] = {"aca_sessions.block.language": language}
    if capture_content():
        attributes["aca_sessions.block.code"] = _cut(code)
    with _tracer().start_as_current_span(
        f"code_block {language}", kind=SpanKind.INTERNAL, attributes=attributes
    ) as span:
        yield span


def block_outcome(span: Span, outcome: Any) -> None:
    """Exit code, timed out, state lost (and, when opted in, the output) of a block."""
    span.set_attribute("aca_sessions.block.exit_code", int(outcome.exit_code))
    span.set_attribute("aca_sessions.block.timed_out", bool(getattr(outcome, "timed_out", False)))
    span.set_attribute("aca_sessions.block.state_lost", bool(getattr(outcome, "state_lost", False)))
    execution_id = getattr(outcome, "execution_id", None)
    if execution_id:
        span.set_attribute("aca_sessions.execution.id", str(execution_id))
    if capture_content():
        span.set_attribute("aca_sessions.block.output", _cut(str(outcome.output)))
