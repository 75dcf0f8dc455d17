"""The Azure.Core error body every failing request of the local pool answers with."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from ....errors import WireError

__all__ = ["WireError", "error_body", "error_response"]


def error_body(
    code: str, message: str, target: str | None = None, details: Sequence[dict[str, Any]] = ()
) -> dict[str, Any]:
    """The Azure.Core error body: ``{"error": {"code", "message", "target", "details": [...]}}``."""
    return {"error": {"code": code, "message": message, "target": target, "details": list(details)}}


def error_response(err: WireError, body: dict[str, Any] | None = None) -> web.Response:
    """The HTTP response for ``err``: its JSON error body (``body`` when given, else
    :func:`error_body`) plus ``x-ms-error-code``."""
    if body is None:
        body = error_body(err.code, err.message, err.target)
    headers = {"x-ms-error-code": err.code, **err.headers}
    return web.Response(
        status=err.status,
        text=json.dumps(body),
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )
