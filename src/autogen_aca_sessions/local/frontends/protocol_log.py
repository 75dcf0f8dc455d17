"""What aiohttp's HTTP parser writes when it refuses a request: one INFO line, never a traceback.

Bytes that are not HTTP (a control character in a header, a raw non-ASCII byte in the request
line, an over-long line) are refused by aiohttp with 400 before any handler runs, and aiohttp logs
each refusal with ``logger.exception``: an ERROR and a traceback per request, which anyone who can
reach the port could use to fill the log. The listener hands aiohttp :func:`protocol_logger`
instead of its own ``aiohttp.server`` logger; its filter turns those refusals into one INFO line
and leaves every other record (a handler that crashed: a real 500) as it was.
"""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import HttpProcessingError

__all__ = ["PROTOCOL_LOGGER", "protocol_logger"]

PROTOCOL_LOGGER = "autogen_aca_sessions.local.http"
"""The name of the logger aiohttp's request handlers write to."""

_MAX_DETAIL_CHARS = 200
"""How much of the parser's own message the line keeps (it may quote the hostile bytes)."""


class _ClientErrorsAsInfo(logging.Filter):
    """Rewrites the parser's refusal of a malformed request (a 4xx) as a one-line INFO record."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError) and 400 <= exc.code < 500:
            remote = record.args[0] if isinstance(record.args, tuple) and record.args else None
            # repr() escapes whatever the caller sent: the line cannot carry a forged newline.
            detail = repr(exc.message)[:_MAX_DETAIL_CHARS]
            record.msg = "refused a malformed HTTP request from %s (%d %s): %s"
            record.args = (remote, exc.code, type(exc).__name__, detail)
            record.levelno = logging.INFO
            record.levelname = logging.getLevelName(logging.INFO)
            record.exc_info = None
            record.exc_text = None
        return True


def protocol_logger() -> logging.Logger:
    """The logger to give aiohttp's request handlers (``AppRunner(app, logger=...)``)."""
    logger = logging.getLogger(PROTOCOL_LOGGER)
    if not any(isinstance(f, _ClientErrorsAsInfo) for f in logger.filters):
        logger.addFilter(_ClientErrorsAsInfo())
    return logger
