"""A refusal of a request, as every layer of the local server raises it.

The runtime refuses a file name or an upload the same way the frontends refuse a query parameter:
with the HTTP status and Azure error code the caller gets. The class lives here, apart from the
frontends that render it (``frontends/dataplane/wire/errors.py``), so that the runtime raises it
without importing aiohttp or any frontend.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["WireError"]


class WireError(Exception):
    """A request the pool refuses, with the HTTP status and Azure error code to answer with."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        target: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        """The HTTP status code."""
        self.code = code
        """The Azure error code (also sent as ``x-ms-error-code``)."""
        self.message = message
        """A sentence saying what was wrong and, where possible, how to fix it."""
        self.target = target
        """The request field, query parameter or header at fault, if any."""
        self.headers: dict[str, str] = dict(headers or {})
        """Extra response headers (``WWW-Authenticate``, ``Allow``, ...)."""
