"""Reading a request body whole with a size cap, for the JSON bodies of every plane (the
Sandboxes data plane, ARM): the declared length is checked first, then the bytes as they come,
so a body built to bloat memory is refused after at most ``limit`` bytes were held."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

__all__ = ["read_capped_body"]


async def read_capped_body(request: web.Request, limit: int, too_large: Callable[[], Exception]) -> bytes:
    """The whole body, or ``too_large()`` raised once it (or its ``Content-Length``) passes ``limit``."""
    if request.content_length is not None and request.content_length > limit:
        raise too_large()
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.readany():
        size += len(chunk)
        if size > limit:
            raise too_large()
        chunks.append(chunk)
    return b"".join(chunks)
