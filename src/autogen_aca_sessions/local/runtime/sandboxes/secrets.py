"""A sandbox group's secrets: values that egress Transform rules add to requests at the edge.

Kept in the server's memory only, per group, for the life of the server. A sandbox never
sees them: the egress proxy (in the server process) reads a value at the moment a request
goes out (:meth:`GroupSecrets.lookup`), and nothing here is written to a sandbox's disk,
environment or command line. The data plane can list ids and keys, and ``peek`` (the
documented API) returns values to whoever holds the server's key, which no sandbox does
(the server's own port is unreachable from inside).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from types import MappingProxyType

from .errors import InvalidRequest, LimitReached, NotFound, ResourceKind

__all__ = [
    "MAX_KEYS_PER_SECRET",
    "MAX_SECRETS_PER_GROUP",
    "MAX_VALUE_CHARS",
    "GroupSecrets",
    "SecretRecord",
    "check_secret_id",
]

MAX_SECRETS_PER_GROUP = 256
"""Most secrets one group keeps."""
MAX_KEYS_PER_SECRET = 32
"""Most keys in one secret."""
MAX_VALUE_CHARS = 8192
"""Longest value (it becomes an HTTP header value)."""

_SECRET_ID = re.compile(r"[A-Za-z0-9-]{3,64}")
"""The spec's secret id: 3-64 letters, digits and hyphens."""
_KEY = re.compile(r"[A-Za-z0-9._-]{1,128}")
"""A key inside a secret."""
_HEADER_SAFE = re.compile(r"[\x20-\x7e\t]*")
"""Visible ASCII, space and tab: what an HTTP header value may carry without re-encoding."""


def check_secret_id(secret_id: object) -> str:
    """``secret_id`` if it is a valid id; :class:`InvalidRequest` otherwise."""
    if not isinstance(secret_id, str) or not _SECRET_ID.fullmatch(secret_id):
        shown = secret_id[:80] if isinstance(secret_id, str) else type(secret_id).__name__
        raise InvalidRequest(
            f"'{shown}' is not a valid secret id (3 to 64 letters, digits and hyphens).",
            code="InvalidSecretId",
            target="secretId",
        )
    return secret_id


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class SecretRecord:
    """One secret: its values and when it was written."""

    id: str
    """The secret's id."""
    values: Mapping[str, str]
    """Key to value (read-only)."""
    created_at: datetime
    """When it was first written (UTC)."""
    updated_at: datetime
    """When it was last written (UTC)."""

    @property
    def keys(self) -> list[str]:
        """Its keys, sorted."""
        return sorted(self.values)

    def __repr__(self) -> str:
        # Never print a value (a log line or a traceback must not carry it).
        return f"SecretRecord(id={self.id!r}, keys={self.keys!r})"


def _check_values(values: object) -> dict[str, str]:
    if not isinstance(values, Mapping):
        raise InvalidRequest("'values' must be an object of key to string value.", target="values")
    if not values:
        raise InvalidRequest("'values' must hold at least one key.", target="values")
    if len(values) > MAX_KEYS_PER_SECRET:
        raise InvalidRequest(f"A secret holds at most {MAX_KEYS_PER_SECRET} keys.", target="values")
    checked: dict[str, str] = {}
    for key, value in values.items():
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            shown = key[:80] if isinstance(key, str) else type(key).__name__
            raise InvalidRequest(
                f"'{shown}' is not a valid secret key (1 to 128 letters, digits, '.', '_' and '-').",
                target="values",
            )
        if not isinstance(value, str):
            raise InvalidRequest(f"The value of '{key}' must be a string.", target=f"values.{key}")
        if len(value) > MAX_VALUE_CHARS or not _HEADER_SAFE.fullmatch(value):
            # The value is sent as an HTTP header: a line break would split the request.
            raise InvalidRequest(
                f"The value of '{key}' must be at most {MAX_VALUE_CHARS} characters of visible ASCII, "
                "spaces and tabs (it is sent as an HTTP header value).",
                target=f"values.{key}",
            )
        checked[key] = value
    return checked


class GroupSecrets:
    """The secrets of one group, in memory."""

    def __init__(self, max_secrets: int = MAX_SECRETS_PER_GROUP) -> None:
        self.max_secrets = max_secrets
        """Most secrets kept at once."""
        self._records: dict[str, SecretRecord] = {}

    def __len__(self) -> int:
        return len(self._records)

    def put(self, secret_id: str, values: object) -> tuple[SecretRecord, bool]:
        """Create or replace a secret's values whole; returns it and whether it is new."""
        check_secret_id(secret_id)
        checked = _check_values(values)
        existing = self._records.get(secret_id)
        if existing is None and len(self._records) >= self.max_secrets:
            raise LimitReached(
                f"This group keeps its maximum of {self.max_secrets} secrets; delete one first.",
                retry_after=10,
                code="SecretQuotaExceeded",
            )
        now = _now()
        record = SecretRecord(
            id=secret_id,
            values=MappingProxyType(checked),
            created_at=existing.created_at if existing is not None else now,
            updated_at=now,
        )
        self._records[secret_id] = record
        return record, existing is None

    def get(self, secret_id: str) -> SecretRecord:
        """One secret (:class:`NotFound` when there is none)."""
        check_secret_id(secret_id)
        record = self._records.get(secret_id)
        if record is None:
            raise NotFound(ResourceKind.SECRET, secret_id)
        return record

    def delete(self, secret_id: str) -> None:
        """Delete a secret; a Transform that names it then fails closed (403 from the proxy)."""
        self.get(secret_id)
        del self._records[secret_id]

    def list(self) -> list[SecretRecord]:
        """Every secret, in creation order."""
        return list(self._records.values())

    def lookup(self, secret_id: str, key: str | None) -> str | None:
        """The value a Transform asks for, or ``None`` (the proxy then refuses the request).

        ``key`` ``None`` means the secret's only key; a secret with several keys needs the
        rule to name one.
        """
        record = self._records.get(secret_id)
        if record is None:
            return None
        if key is None:
            if len(record.values) != 1:
                return None
            return next(iter(record.values.values()))
        return record.values.get(key)
