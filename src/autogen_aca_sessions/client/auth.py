"""Bearer tokens for the sessions data plane.

Accepts every kind of token source people already have: an azure-core ``TokenCredential``
(sync; its ``get_token`` blocks, so it runs in a worker thread), an ``AsyncTokenCredential``,
a callable returning a token string (sync or async), or a token string. Tokens are cached
and refreshed before they expire; concurrent callers share one refresh.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Union

from autogen_aca_sessions.client.checks import check_token
from autogen_aca_sessions.client.errors import CredentialError, SessionsError

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.core.credentials_async import AsyncTokenCredential

__all__ = [
    "LOCAL_POOL_WANTS_A_KEY",
    "TOKEN_SCOPE",
    "RequestAuthorization",
    "TokenProvider",
    "TokenSource",
    "claims_from_challenge",
]

TOKEN_SCOPE = "https://dynamicsessions.io/.default"
"""The scope to request tokens for (audience ``https://dynamicsessions.io``)."""

LOCAL_POOL_WANTS_A_KEY = (
    "a local pool wants an API key: pass credential=... (the CLI: --api-key or ACA_SESSIONS_API_KEY); "
    "DefaultAzureCredential is not tried for a loopback endpoint"
)
"""The :class:`CredentialError` of a loopback endpoint without a credential."""

# Refresh this long before the token's stated expiry, so a request never carries a token
# that expires in flight.
REFRESH_MARGIN_SECONDS = 300.0

TokenSource = Union[
    "TokenCredential",
    "AsyncTokenCredential",
    Callable[[], str],
    Callable[[], Awaitable[str]],
    str,
]
"""Anything the client accepts as a credential."""


def _is_async_callable(fn: Any) -> bool:
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 - callable objects with async __call__
    return call is not None and inspect.iscoroutinefunction(call)


class TokenProvider:
    """Hands out bearer tokens from a :data:`TokenSource`, caching and refreshing them."""

    def __init__(
        self, source: TokenSource | None, *, scope: str = TOKEN_SCOPE, local_endpoint: bool = False
    ) -> None:
        if (
            source is not None
            and not isinstance(source, str)
            and not (callable(source) or hasattr(source, "get_token"))
        ):
            raise TypeError(
                "credential must be a TokenCredential, an AsyncTokenCredential, a callable "
                f"returning a token string, or a string; got {type(source).__name__}"
            )
        if isinstance(source, str):
            check_token("credential (token string)", source)
        self._source: Any = source
        self._scope = scope
        self._local_endpoint = local_endpoint
        self._owned_credential: Any = None
        self._token: str | None = None
        # None means "never expires" (strings and callables): refreshed only after a 401.
        self._expires_on: float | None = None
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    @property
    def scope(self) -> str:
        """The scope tokens are requested for."""
        return self._scope

    def _valid_cached(self) -> str | None:
        if self._token is None:
            return None
        if self._expires_on is not None and time.time() >= self._expires_on - REFRESH_MARGIN_SECONDS:
            return None
        return self._token

    async def get_token(self, *, rejected: str | None = None, claims: str | None = None) -> str:
        """A valid token. ``rejected``: a token the service refused (401); never hand it out again
        unless the source returns it anew. ``claims``: the claims challenge the service sent with
        that 401 (decoded JSON), passed to an azure-core credential so it can satisfy it.

        Raises:
            CredentialError: the credential raised (its exception is the ``__cause__``).
        """
        cached = self._valid_cached()
        if cached is not None and cached != rejected:
            return cached
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            # An asyncio.Lock belongs to one loop; a client reused under a new loop needs a new one.
            self._lock = asyncio.Lock()
            self._lock_loop = loop
        async with self._lock:
            # Another caller may have refreshed while we waited for the lock.
            cached = self._valid_cached()
            if cached is not None and cached != rejected:
                return cached
            try:
                value = await self._fetch(claims)
            except SessionsError:
                raise
            except Exception as exc:
                raise CredentialError(
                    f"The credential {self._source_name()} could not get a token for scope "
                    f"{self._scope!r}: {type(exc).__name__}: {exc}"
                ) from exc
            token, expires_on = self._unpack(value)
            check_token(f"the token from {self._source_name()}", token)
            self._token = token
            self._expires_on = expires_on
            return token

    def _source_name(self) -> str:
        source = self._source if self._source is not None else self._owned_credential
        if source is None:
            return "DefaultAzureCredential"
        return type(source).__name__

    async def _fetch(self, claims: str | None) -> Any:
        """What the source returns: a token string or an ``AccessToken``-like object."""
        source = self._source
        if source is None:
            source = self._default_credential()
        if isinstance(source, str):
            return source
        get_token = getattr(source, "get_token", None)
        if get_token is not None:
            # Only azure-core credentials take claims; pass them only when there are some, so
            # credentials with a narrower signature keep working.
            kwargs: dict[str, Any] = {"claims": claims} if claims else {}
            if _is_async_callable(get_token):
                return await get_token(self._scope, **kwargs)
            # A sync credential does network I/O (or spawns az cli): keep it off the loop.
            access = await asyncio.to_thread(get_token, self._scope, **kwargs)
            if inspect.isawaitable(access):
                access = await access
            return access
        if _is_async_callable(source):
            return await source()
        value = await asyncio.to_thread(source)
        if inspect.isawaitable(value):
            value = await value
        return value

    @staticmethod
    def _unpack(value: Any) -> tuple[str, float | None]:
        token: Any
        expires_on: float | None
        if isinstance(value, str):
            token, expires_on = value, None
        else:
            token = getattr(value, "token", None)
            raw_expiry = getattr(value, "expires_on", None)
            expires_on = float(raw_expiry) if raw_expiry is not None else None
        if not isinstance(token, str) or not token:
            raise TypeError(f"the credential returned no token string (got {type(value).__name__})")
        return token, expires_on

    def _default_credential(self) -> Any:
        if self._local_endpoint:
            # A local pool only knows its API key: DefaultAzureCredential would try six sources,
            # fail in each, and bury this one fact under their 13 lines.
            raise CredentialError(LOCAL_POOL_WANTS_A_KEY)
        if self._owned_credential is None:
            # Imported here: azure.identity is heavy and unneeded when a credential is given.
            from azure.identity.aio import DefaultAzureCredential

            self._owned_credential = DefaultAzureCredential()
        return self._owned_credential

    async def close(self) -> None:
        """Close the credential this provider created itself (never the caller's)."""
        owned, self._owned_credential = self._owned_credential, None
        if owned is not None:
            await owned.close()


class RequestAuthorization:
    """The bearer-token step of one request: a token per attempt, and after a 401 one forced
    refresh (with the service's claims challenge, when it sent one). The request is sent again
    only when the refresh gave another token: a fixed key (a string, a callable or credential
    that hands out the same one) is sent once, since sending it again cannot change the answer."""

    def __init__(self, tokens: TokenProvider) -> None:
        self._tokens = tokens
        self._token: str | None = None
        self._fresh: str | None = None
        self._refresh_asked = False
        self.fresh_token_tried = False
        """Whether the request was sent again with another token after a 401."""

    async def header(self) -> str:
        """The ``Authorization`` header value for the next attempt."""
        if self._fresh is not None:
            self._token, self._fresh = self._fresh, None
        else:
            self._token = await self._tokens.get_token()
        return f"Bearer {self._token}"

    async def retry_after_rejection(self, status: int, headers: Mapping[str, str]) -> bool:
        """Whether an answer with ``status`` rejected the token and the request is to be sent once
        more with a fresh one (the token may have been revoked or expired early)."""
        if status != 401 or self._refresh_asked:
            return False
        self._refresh_asked = True
        claims = claims_from_challenge(headers.get("WWW-Authenticate"))
        fresh = await self._tokens.get_token(rejected=self._token, claims=claims)
        if fresh == self._token:
            return False
        self._fresh = fresh
        self.fresh_token_tried = True
        return True


_CLAIMS = re.compile(r'claims="([^"]*)"', re.IGNORECASE)


def claims_from_challenge(header: str | None) -> str | None:
    """The claims challenge of a ``WWW-Authenticate`` header, decoded to its JSON text.

    Entra ID sends it base64url-encoded (``Bearer ..., error="insufficient_claims",
    claims="eyJ..."``); a value that does not decode is passed on as it is.
    """
    if not header:
        return None
    match = _CLAIMS.search(header)
    if match is None or not match.group(1).strip():
        return None
    raw = match.group(1).strip()
    try:
        decoded = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return raw
    return decoded if decoded.lstrip().startswith("{") else raw
