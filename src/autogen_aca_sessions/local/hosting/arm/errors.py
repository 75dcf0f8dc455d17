"""ARM's error response, the only error shape the management routes answer with.

``{"error": {"code", "message", "target", "details": [...]}}`` (common-types v5
``ErrorResponse``), plus the ``x-ms-error-code`` header. Codes follow ARM's where ARM has a
well-known one (``ResourceNotFound``, ``MissingApiVersionParameter``, ``InvalidRequestContent``);
the reference names none for the session-pool RP's own validation, so those codes are ours and
say what is wrong (``InvalidSessionPoolName``, ``InvalidCooldownPeriod``, ...).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

from ...frontends.dataplane.wire.errors import WireError, error_body, error_response

__all__ = ["ArmError", "arm_error_body", "arm_error_response"]


class ArmError(WireError):
    """A management request refused: status, ARM error code, message, target and details."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        target: str | None = None,
        details: Sequence[ArmError] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(status, code, message, target=target, headers=headers)
        self.details: list[ArmError] = list(details)
        """Further errors of the same request (every bad field of a body, not only the first)."""


def arm_error_body(err: WireError) -> dict[str, Any]:
    """The ARM ``ErrorResponse`` body of ``err``."""
    details = getattr(err, "details", [])
    return error_body(err.code, err.message, err.target, [arm_error_body(d)["error"] for d in details])


def arm_error_response(err: WireError) -> web.Response:
    """The HTTP response of ``err``: the body above and ``x-ms-error-code``."""
    return error_response(err, arm_error_body(err))
