"""Lenient reading helpers shared by both contracts (no contract-specific field names here,
except the Azure.Core error envelope, which both contracts use)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from autogen_aca_sessions.client.models import ExecutionStatus, ImageOutput

_STATUS_BY_NAME: dict[str, ExecutionStatus] = {
    "notstarted": ExecutionStatus.NOT_STARTED,
    "queued": ExecutionStatus.NOT_STARTED,
    "running": ExecutionStatus.RUNNING,
    "inprogress": ExecutionStatus.RUNNING,
    "succeeded": ExecutionStatus.SUCCEEDED,
    "success": ExecutionStatus.SUCCEEDED,
    "failed": ExecutionStatus.FAILED,
    "failure": ExecutionStatus.FAILED,
    "canceled": ExecutionStatus.CANCELED,
    "cancelled": ExecutionStatus.CANCELED,
}

_STATE_LOST_CODES = frozenset({"kernelrestarted", "kerneldied", "sessionrestarted"})

_ISO_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?\s*(Z|[+-]\d{2}:?\d{2})?$",
    re.IGNORECASE,
)


def load_json(body: bytes | str) -> Any:
    """The JSON value of a body, or None when it is empty or not JSON."""
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def get_ci(obj: Mapping[str, Any] | None, *names: str) -> Any:
    """The first present key among ``names``, compared exactly first and then case-insensitively."""
    if not isinstance(obj, Mapping):
        return None
    for name in names:
        if name in obj:
            return obj[name]
    lowered = {k.lower(): v for k, v in obj.items() if isinstance(k, str)}
    for name in names:
        if name.lower() in lowered:
            return lowered[name.lower()]
    return None


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty dict."""
    return value if isinstance(value, dict) else {}


def as_str(value: Any) -> str:
    """A text stream from the wire; None becomes ``""``."""
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def as_int(value: Any) -> int | None:
    """An integer from a number or a numeric string; None when absent or not numeric."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        try:
            return int(float(value.strip()))
        except ValueError:
            return None
    return None


def as_bool(value: Any) -> bool:
    """A flag that may come as a bool or as ``"true"``."""
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return value is True


def path_params(path: str | None) -> dict[str, str]:
    """The optional ``path`` query parameter of the file operations."""
    return {"path": path} if path else {}


def first_present(obj: dict[str, Any], *names: str) -> tuple[bool, Any]:
    """(present, value) of the first of ``names`` in ``obj``, case-insensitively.

    A key that is present with a ``null`` value counts as present (value ``None``), so a
    parser can tell "the server said null" from "the server did not say".
    """
    for name in names:
        value = get_ci(obj, name)
        if value is not None:
            return True, value
    for name in names:
        if any(isinstance(k, str) and k.lower() == name.lower() for k in obj):
            return True, None
    return False, None


def parse_status(value: Any) -> ExecutionStatus | None:
    """A named execution status in any casing; None when absent or unknown."""
    if not isinstance(value, str):
        return None
    return _STATUS_BY_NAME.get(value.strip().replace("_", "").replace(" ", "").lower())


def parse_exit_code(value: Any) -> int | None:
    """A shell pool's exit code, sent as a string (``"0"``) in ``status``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    return None


def parse_datetime(value: Any) -> datetime | None:
    """An ISO 8601 timestamp (``Z``, offsets, 7 fractional digits) as an aware datetime."""
    if not isinstance(value, str) or not value.strip():
        return None
    match = _ISO_RE.match(value.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    tz = timezone.utc
    if zone and zone.upper() != "Z":
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        tz = timezone(-offset if zone[0] == "-" else offset)
    try:
        return datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro, tzinfo=tz
        )
    except ValueError:
        return None


def is_timeout_code(code: str | None) -> bool:
    """Whether a service error code says the execution hit its time limit."""
    if not code:
        return False
    lowered = code.lower()
    return "timeout" in lowered or "timedout" in lowered


def is_state_lost_code(code: str | None) -> bool:
    """Whether a service error code says the interpreter was replaced."""
    return bool(code) and str(code).replace("_", "").lower() in _STATE_LOST_CODES


def decode_base64(value: Any) -> bytes | None:
    """Bytes from base64 text (standard or URL-safe, padding optional); None when not base64."""
    if not isinstance(value, str) or not value:
        return None
    text = re.sub(r"\s+", "", value)
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    text += "=" * (-len(text) % 4)
    try:
        if "-" in text or "_" in text:
            return base64.urlsafe_b64decode(text)
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def image_from(value: Any, default_format: str = "png") -> ImageOutput | None:
    """An image from an image object (``{"type": "image", "format", "base64_data"}`` and close
    variants) or from bare base64 text; None when ``value`` is not an image."""
    if isinstance(value, str):
        data = decode_base64(value)
        return ImageOutput(format=default_format, data=data) if data is not None else None
    if not isinstance(value, Mapping):
        return None
    payload = get_ci(value, "base64_data", "base64Data", "data", "base64", "content")
    data = decode_base64(payload)
    if data is None:
        return None
    fmt = get_ci(value, "format", "imageFormat")
    if not isinstance(fmt, str) or not fmt:
        mime = get_ci(value, "mimeType", "mime_type", "contentType")
        fmt = mime.split("/", 1)[1] if isinstance(mime, str) and "/" in mime else default_format
    return ImageOutput(format=fmt.lower(), data=data)


def is_image_object(value: Any) -> bool:
    """Whether ``value`` is a result object describing an image."""
    return isinstance(value, Mapping) and str(get_ci(value, "type") or "").lower() == "image"


def images_from_list(value: Any) -> list[ImageOutput]:
    """Images from an (undocumented) list of image objects or base64 strings."""
    if not isinstance(value, list):
        return []
    images = []
    for item in value:
        image = image_from(item)
        if image is not None:
            images.append(image)
    return images


def parse_error_body(body: bytes | str) -> tuple[str | None, str | None]:
    """``(code, message)`` from an error body: the Azure.Core ``{"error": {...}}`` envelope,
    a flat ``{"code", "message"}`` object, or plain text."""
    data = load_json(body)
    if isinstance(data, dict):
        inner = get_ci(data, "error")
        if isinstance(inner, dict):
            code, message = get_ci(inner, "code"), get_ci(inner, "message")
        elif isinstance(inner, str):
            code, message = None, inner
        else:
            props = get_ci(data, "properties")
            source = props if isinstance(props, dict) and get_ci(data, "message") is None else data
            code = get_ci(source, "code", "errorCode")
            message = get_ci(source, "message", "detail", "title")
        return (
            str(code) if code is not None else None,
            str(message) if message is not None else None,
        )
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = text.strip()
    return None, (text or None)
