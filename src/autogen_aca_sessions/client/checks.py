"""Checks of configuration values before anything is sent.

A value that cannot go into an HTTP request (a token with the newline it had in the file it
was pasted from, an endpoint with a tab in it) is refused here with a :class:`ConfigurationError`
naming the setting, instead of failing deep in the HTTP stack after the request was built.
Secrets are never echoed.
"""

from __future__ import annotations

import ipaddress
import math
import re
from urllib.parse import urlsplit

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


MAX_IDENTIFIER_LENGTH = 256
"""The longest session identifier the service accepts."""
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a name, an address, or a bracketed IPv6 address) is this machine."""
    name = host.strip("[]").lower().rstrip(".")
    if name in _LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def validate_endpoint(endpoint: str, *, allow_insecure_http: bool = False) -> str:
    """The pool management endpoint without its trailing ``/``; refuses what cannot be one."""
    if not isinstance(endpoint, str) or not endpoint.strip():
        raise ConfigurationError(
            "pool_management_endpoint", "pool_management_endpoint must be a non-empty URL"
        )
    endpoint = refuse_control_characters("pool_management_endpoint", endpoint).strip()
    if any(c.isspace() for c in endpoint):
        raise ConfigurationError(
            "pool_management_endpoint", f"pool_management_endpoint {endpoint!r} contains a space"
        )
    parts = urlsplit(endpoint)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(
            "pool_management_endpoint",
            "pool_management_endpoint must be an http(s) URL such as https://<region>.dynamicsessions.io"
            f"/subscriptions/<sub>/resourceGroups/<rg>/sessionPools/<pool>; got {endpoint!r}",
        )
    if parts.query or parts.fragment or endpoint.rstrip("/").endswith(("?", "#")):
        raise ConfigurationError(
            "pool_management_endpoint",
            "pool_management_endpoint must not carry a query string or fragment (the client adds "
            f"api-version and identifier itself); remove everything from '?' or '#' in {endpoint!r}",
        )
    if "@" in parts.netloc:
        # Never echo the endpoint here: the part before '@' may be a password.
        raise ConfigurationError(
            "pool_management_endpoint",
            "pool_management_endpoint must not contain user information ('user:password@'); the "
            "client authenticates with bearer tokens from the credential",
        )
    if (
        parts.scheme.lower() == "http"
        and not allow_insecure_http
        and not is_loopback_host(parts.hostname or "")
    ):
        raise ConfigurationError(
            "pool_management_endpoint",
            f"pool_management_endpoint {endpoint!r} uses plain http to a host that is not loopback: the "
            "bearer token would travel in clear text. Use https, or pass allow_insecure_http=True "
            "for a trusted network (for example a local pool in another container).",
        )
    return endpoint.rstrip("/")


def validate_identifier(identifier: str) -> str:
    """A session identifier as the service accepts it."""
    if not isinstance(identifier, str) or not identifier:
        raise ConfigurationError("session identifier", "session identifier must be a non-empty string")
    if len(identifier) > MAX_IDENTIFIER_LENGTH:
        raise ConfigurationError(
            "session identifier",
            f"session identifier is {len(identifier)} characters; the service allows at most "
            f"{MAX_IDENTIFIER_LENGTH}",
        )
    return refuse_control_characters("session identifier", identifier)


def validate_name(name: str, what: str = "file name") -> str:
    """A non-empty name (a file name, an execution id)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"{what} must be a non-empty string")
    return name


def validate_timeout(timeout_seconds: float) -> int:
    """An execution's ``timeoutInSeconds``: positive, rounded up to whole seconds."""
    if isinstance(timeout_seconds, bool) or not isinstance(timeout_seconds, (int, float)):
        raise TypeError("timeout_seconds must be a number")
    if not timeout_seconds > 0:
        raise ValueError("timeout_seconds must be positive")
    # The service takes whole seconds; round up so the code gets at least what was asked.
    return math.ceil(timeout_seconds)
