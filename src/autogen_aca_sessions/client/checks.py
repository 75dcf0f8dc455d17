"""Checks of configuration values before anything is sent.

A value that cannot go into an HTTP request (a token with the newline it had in the file it
was pasted from, an endpoint with a tab in it) is refused here with a :class:`ConfigurationError`
naming the setting, instead of failing deep in the HTTP stack after the request was built.
Secrets are never echoed.
"""

from __future__ import annotations

import re

from .errors import ConfigurationError

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# RFC 6750 b64token, plus the characters static keys (ours, Azure's) are made of.
_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/=]+")
_NAMES = {"\n": "a newline", "\r": "a carriage return", "\t": "a tab", "\x00": "a NUL byte"}


def _describe(character: str) -> str:
    return _NAMES.get(character, f"the control character U+{ord(character):04X}")


def refuse_control_characters(setting: str, value: str, *, secret: bool = False) -> str:
    """``value``, unchanged; raises :class:`ConfigurationError` if it holds a control character."""
    match = _CONTROL.search(value)
    if match is None:
        return value
    position = match.start() + 1
    hint = ""
    if _CONTROL.search(value.strip()) is None:
        hint = " (at its start or end, as when pasted from a file: strip it)"
    shown = "" if secret else f" {value!r}"
    raise ConfigurationError(
        setting, f"{setting}{shown} contains {_describe(match.group())} at character {position}{hint}"
    )


def check_token(setting: str, token: str) -> str:
    """A bearer token as it will go into ``Authorization: Bearer <token>``."""
    refuse_control_characters(setting, token, secret=True)
    if not token:
        raise ConfigurationError(setting, f"{setting} is empty")
    if _TOKEN.fullmatch(token) is None:
        bad = next(c for c in token if _TOKEN.fullmatch(c) is None)
        what = "a space" if bad == " " else "a non-ASCII character" if ord(bad) > 127 else repr(bad)
        raise ConfigurationError(
            setting, f"{setting} contains {what}; a bearer token is letters, digits and -._~+/= only"
        )
    return token
