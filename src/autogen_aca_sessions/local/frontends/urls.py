"""The absolute URL of a request, for links the server hands back (``nextLink``, operation URLs)."""

from __future__ import annotations

from aiohttp import web
from yarl import URL

__all__ = ["request_url"]


def request_url(request: web.Request, base: str | None = None) -> URL:
    """The request's URL as the caller addressed it (scheme and ``Host`` header included).

    aiohttp builds that URL from the ``Host`` header, which the caller chose: one that cannot be
    part of a URL (a non-UTF-8 byte, a port of 99999999) makes it raise ``ValueError``, which
    was a 500. Then the request's path and query go on ``base`` (the server's own base URL), or
    stay relative when there is none.
    """
    try:
        return request.url
    except ValueError:
        return URL(base).join(request.rel_url) if base else request.rel_url
