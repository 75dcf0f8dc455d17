"""The URLs of one pool's requests, and the links the service returns, resolved safely."""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from yarl import URL

from autogen_aca_sessions.client.contracts import Request
from autogen_aca_sessions.client.models import ApiVersion

__all__ = ["PoolUrls"]

logger = logging.getLogger("autogen_aca_sessions.client.client")


class PoolUrls:
    """Builds request URLs under one pool endpoint, with its api-version."""

    def __init__(self, endpoint: str, api_version: ApiVersion) -> None:
        self.endpoint = endpoint
        """The pool management endpoint, without a trailing slash."""
        self.api_version = api_version
        """The api-version every URL names."""

    def _query(self, request: Request, identifier: str | None) -> str:
        params: list[tuple[str, str]] = [("api-version", self.api_version.value)]
        if request.per_session and identifier is not None:
            params.append(("identifier", identifier))
        params.extend(request.params.items())
        return urlencode(params, quote_via=quote, safe="")

    def url(self, request: Request, identifier: str | None) -> str:
        """The URL of ``request`` (for session ``identifier`` when it names one)."""
        return f"{self.endpoint}/{request.path}?{self._query(request, identifier)}"

    def resolve_link(self, link: str | None, identifier: str | None) -> str | None:
        """An absolute URL for a link the service returned (``Operation-Location``,
        ``nextLink``), or None when it is missing or points to another origin (we never send
        our token anywhere but the pool)."""
        if not link:
            return None
        link = link.strip()
        base = urlsplit(self.endpoint)
        parts = urlsplit(link)
        if parts.scheme or parts.netloc:
            if (parts.scheme.lower(), parts.netloc.lower()) != (base.scheme.lower(), base.netloc.lower()):
                logger.warning("ignoring a link to another origin than the pool: %s", link)
                return None
            url = link
        elif link.startswith("/"):
            base_path = base.path.rstrip("/")
            origin = f"{base.scheme}://{base.netloc}"
            url = origin + link if base_path and link.startswith(base_path + "/") else self.endpoint + link
        else:
            url = f"{self.endpoint}/{link}"
        # The link is the server's text, not ours: encode whatever it left raw (spaces, non-ASCII)
        # while keeping its existing %XX escapes, so the request line stays valid.
        url = str(URL(url, encoded=False))
        present = {k.lower() for k, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True)}
        missing: list[tuple[str, str]] = []
        if "api-version" not in present:
            missing.append(("api-version", self.api_version.value))
        if identifier is not None and "identifier" not in present:
            missing.append(("identifier", identifier))
        if missing:
            url += ("&" if "?" in url else "?") + urlencode(missing, quote_via=quote, safe="")
        return url
