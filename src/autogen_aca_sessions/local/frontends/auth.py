"""Bearer-key authentication of the local pool, and credentials that hand the key to clients.

Every request must carry ``Authorization: Bearer <api_key>``. The key is compared in constant
time. :class:`StaticKeyCredential` / :class:`AsyncStaticKeyCredential` implement azure-core's
token credential protocols so that any client written for Entra tokens works unchanged.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import typedefs, web
from azure.core.credentials import AccessToken, AccessTokenInfo

from .dataplane.wire.errors import WireError

__all__ = [
    "FAR_FUTURE_SECONDS",
    "AsyncStaticKeyCredential",
    "StaticKeyCredential",
    "auth_middleware",
    "generate_api_key",
    "keys_match",
]

FAR_FUTURE_SECONDS = 10 * 365 * 24 * 3600
"""How far in the future the tokens of the static credentials expire (ten years)."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = typedefs.Middleware
"""An aiohttp middleware (what ``@web.middleware`` decorates)."""

_CHALLENGE = 'Bearer realm="aca-local-session-pool", scope="https://dynamicsessions.io/.default"'


def generate_api_key() -> str:
    """A random bearer key that never starts with ``-`` (``--api-key KEY`` would read it as an option)."""
    while True:
        key = secrets.token_urlsafe(32)
        if not key.startswith("-"):
            return key


def keys_match(presented: str, expected: str) -> bool:
    """Whether a key a caller sent is ``expected``, compared in constant time.

    aiohttp decodes header bytes that are not UTF-8 with surrogate escapes, which a strict
    ``encode("utf-8")`` refuses with an exception: a stranger's ``\\xff`` would then be a 500 and
    a traceback before authentication. ``backslashreplace`` encodes any string; keys are URL-safe
    ASCII, so an escaped value can never equal one.
    """
    return hmac.compare_digest(
        presented.encode("utf-8", "backslashreplace"), expected.encode("utf-8", "backslashreplace")
    )


def _expiry() -> int:
    return int(time.time()) + FAR_FUTURE_SECONDS


class StaticKeyCredential:
    """A synchronous azure-core ``TokenCredential`` whose token is the pool's api key."""

    def __init__(self, api_key: str) -> None:
        self._key = api_key

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        """The api key as an access token that expires in ten years, whatever the scopes."""
        return AccessToken(self._key, _expiry())

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        """The api key as ``AccessTokenInfo`` (azure-core's newer ``SupportsTokenInfo`` protocol)."""
        return AccessTokenInfo(self._key, _expiry())

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> StaticKeyCredential:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncStaticKeyCredential:
    """An azure-core ``AsyncTokenCredential`` whose token is the pool's api key."""

    def __init__(self, api_key: str) -> None:
        self._key = api_key

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        """The api key as an access token that expires in ten years, whatever the scopes."""
        return AccessToken(self._key, _expiry())

    async def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        """The api key as ``AccessTokenInfo`` (azure-core's ``AsyncSupportsTokenInfo`` protocol)."""
        return AccessTokenInfo(self._key, _expiry())

    async def close(self) -> None:
        """Nothing to release."""

    async def __aenter__(self) -> AsyncStaticKeyCredential:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def check_authorization(header: str | None, api_key: str) -> None:
    """Raise a 401 :class:`WireError` unless ``header`` is ``Bearer <api_key>``."""
    if not header:
        raise WireError(
            401,
            "AuthenticationFailed",
            "The request has no Authorization header; send 'Authorization: Bearer <api key>'.",
            target="Authorization",
            headers={"WWW-Authenticate": _CHALLENGE},
        )
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise WireError(
            401,
            "AuthenticationFailed",
            "The Authorization header must use the Bearer scheme: 'Authorization: Bearer <api key>'.",
            target="Authorization",
            headers={"WWW-Authenticate": _CHALLENGE},
        )
    if not keys_match(token.strip(), api_key):
        raise WireError(
            401,
            "InvalidAuthenticationToken",
            "The bearer token is not this server's api key.",
            target="Authorization",
            headers={"WWW-Authenticate": _CHALLENGE + ', error="invalid_token"'},
        )


def auth_middleware(api_key: str) -> Middleware:
    """An aiohttp middleware refusing requests without the right bearer key (401)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        check_authorization(request.headers.get("Authorization"), api_key)
        response: web.StreamResponse = await handler(request)
        return response

    return middleware
