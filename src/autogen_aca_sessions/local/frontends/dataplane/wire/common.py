"""Request parsing and formatting shared by both contracts.

Parsing is lenient (any enum casing, extra fields ignored, ``properties`` wrapper optional);
every refusal is a :class:`WireError` naming the field at fault, so bad input is a 400 and never
reaches the catch-all 500.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .errors import WireError

__all__ = [
    "DEFAULT_TIMEOUT_SECONDS",
    "UNCAPPED_OUTPUT_CHARS",
    "ExecuteRequest",
    "bad_request",
    "enum_field",
    "int_field",
    "iso_ms",
    "iso_ticks",
    "request_fields",
    "timeout_field",
]

DEFAULT_TIMEOUT_SECONDS = 60
"""Time limit when a request names none (the CLI default of the real service)."""

UNCAPPED_OUTPUT_CHARS = 10_000_000
"""Output cap for api-versions without ``outputStreamsMaxLength``: a memory guard, not a contract."""

MAX_OUTPUT_STREAMS_LENGTH = UNCAPPED_OUTPUT_CHARS
"""Larger ``outputStreamsMaxLength`` values are clamped to this."""

VALIDATION_CODE = "SessionRequestValidationFailed"


@dataclass(frozen=True)
class ExecuteRequest:
    """An execute request, api-version free, after validation."""

    code: str
    """Python source, or the shell command on Shell pools."""
    shell: bool
    """Whether ``code`` is a shell command (``shellCommand`` on a Shell pool)."""
    timeout_seconds: int
    """Time limit in seconds, already clamped to the pool's maximum."""
    asynchronous: bool
    """Whether the caller asked for ``executionType: Asynchronous``."""
    max_output_chars: int
    """Each of stdout and stderr is cut to this many characters."""
    execution_type: str
    """``Synchronous`` or ``Asynchronous``, as echoed back in the resource."""


def bad_request(message: str, target: str | None, code: str = VALIDATION_CODE) -> WireError:
    """A 400 with the Azure validation error code."""
    return WireError(400, code, message, target=target)


def request_fields(body: Any) -> Mapping[str, Any]:
    """The request's fields: ``body["properties"]`` when present (legacy), else the body itself."""
    if not isinstance(body, Mapping):
        raise bad_request("The request body must be a JSON object.", "body", "InvalidRequestContent")
    if "properties" in body:
        props = body["properties"]
        if not isinstance(props, Mapping):
            raise bad_request("'properties' must be a JSON object.", "properties", "InvalidRequestContent")
        return props
    return body


def enum_field(fields: Mapping[str, Any], name: str, allowed: tuple[str, ...], default: str) -> str:
    """A string enum compared case-insensitively; returns the canonical spelling."""
    value = fields.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise bad_request(f"'{name}' must be a string, one of {', '.join(allowed)}.", name)
    for candidate in allowed:
        if candidate.lower() == value.strip().lower():
            return candidate
    raise bad_request(f"'{name}' must be one of {', '.join(allowed)} (got {value!r}).", name)


def int_field(fields: Mapping[str, Any], name: str) -> int | None:
    """An optional integer; integral floats (``60.0``) pass, booleans and strings do not."""
    value = fields.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad_request(f"'{name}' must be an integer (got {type(value).__name__}).", name)
    if isinstance(value, float):
        if not value.is_integer():
            raise bad_request(f"'{name}' must be an integer (got {value!r}).", name)
        value = int(value)
    return value


def timeout_field(fields: Mapping[str, Any], max_execution_seconds: int) -> int:
    """``timeoutInSeconds``: 1 or more; above the pool's maximum it is clamped to the maximum."""
    value = int_field(fields, "timeoutInSeconds")
    if value is None:
        return min(DEFAULT_TIMEOUT_SECONDS, max_execution_seconds)
    if value < 1:
        raise bad_request(
            f"'timeoutInSeconds' must be between 1 and {max_execution_seconds} (got {value}).",
            "timeoutInSeconds",
        )
    return min(value, max_execution_seconds)


def code_field(fields: Mapping[str, Any], name: str, input_type: str) -> str:
    """The code (or command) string; ``InlineBase64`` input is decoded as UTF-8."""
    value = fields.get(name)
    if value is None:
        raise bad_request(f"'{name}' is required.", name)
    if not isinstance(value, str):
        raise bad_request(f"'{name}' must be a string (got {type(value).__name__}).", name)
    if input_type == "InlineBase64":
        try:
            return base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise bad_request(f"'{name}' is not valid base64-encoded UTF-8 text: {exc}", name) from exc
    if "\x00" in value:
        raise bad_request(f"'{name}' must not contain NUL characters.", name)
    return value


def _utc(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def iso_ms(dt: datetime) -> str:
    """ISO 8601 UTC with milliseconds and ``Z`` (``2024-11-02T12:33:05.677Z``), as the new contract."""
    dt = _utc(dt)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{dt.microsecond // 1000:03d}Z"


def iso_ticks(dt: datetime) -> str:
    """ISO 8601 UTC with seven fractional digits and ``Z`` (``...07.9922617Z``), as the legacy contract."""
    dt = _utc(dt)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{dt.microsecond:06d}0Z"
