"""The ``Expect`` request header, answered the same way on every plane."""

from __future__ import annotations

from aiohttp import HttpVersion11, web

__all__ = ["expect_handler"]


async def expect_handler(request: web.Request) -> web.StreamResponse | None:
    """Send ``100 Continue`` for ``Expect: 100-continue``; ignore any other expectation.

    aiohttp's own handler answers any other value with a plain-text 417 before routing, so the
    caller got no error body of the plane's shape (JSON on the data planes, ARM's on ARM).
    RFC 9110 lets a server ignore an expectation it does not know (a 417 is a MAY), and then the
    request is answered by its route like any other.
    """
    expect = request.headers.get("Expect", "")
    if request.version == HttpVersion11 and expect.strip().lower() == "100-continue":
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        # The interim answer is not part of the response's own size.
        request.writer.output_size = 0
    return None
