"""The egress decisions log: the last 50 allowed and denied, newest first, in both wire shapes."""

from __future__ import annotations

import collections
import datetime
from dataclasses import dataclass
from typing import Any

__all__ = ["DECISIONS_KEPT", "Decision", "DecisionLog"]

DECISIONS_KEPT = 50
"""How many allowed and how many denied decisions are kept (reference §3.6)."""


def _iso(moment: datetime.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Decision:
    """One logged request or connection."""

    timestamp: datetime.datetime
    """When it was decided (UTC)."""
    host: str
    """The host asked for."""
    method: str
    """The HTTP method (``CONNECT`` for HTTPS)."""
    path: str
    """The request path (empty for HTTPS, which hides it)."""
    scheme: str
    """``http`` or ``https``."""
    allowed: bool
    """Whether the policy allowed it (an audited denial is logged as denied)."""
    action: str
    """``Allow``, ``Deny``, ``Transform`` or ``Audit`` (denied by the policy, let through)."""
    matched_rule: str | None
    """The rule that decided, or ``None`` for the default action or a refusal outside the policy."""
    reason: str
    """Why, in one sentence."""
    connection_id: str
    """The proxy connection it came in on."""

    def to_wire(self) -> dict[str, Any]:
        """The entry: the SDK's fields, the spec's, and ``action``/``reason``."""
        return {
            "timestamp": _iso(self.timestamp),
            "host": self.host,
            "method": self.method,
            "path": self.path,
            "scheme": self.scheme,
            "action": self.action,
            "matchedRule": self.matched_rule,
            "rule": self.matched_rule,
            "reason": self.reason,
            "connectionId": self.connection_id,
        }


class DecisionLog:
    """The bounded log of one sandbox (or pool)."""

    def __init__(self, kept: int = DECISIONS_KEPT) -> None:
        self._allowed: collections.deque[Decision] = collections.deque(maxlen=kept)
        self._denied: collections.deque[Decision] = collections.deque(maxlen=kept)
        self._last_updated: datetime.datetime | None = None

    def record(self, decision: Decision) -> None:
        """Keep ``decision`` (the oldest of its kind is dropped beyond the bound)."""
        (self._allowed if decision.allowed else self._denied).appendleft(decision)
        self._last_updated = decision.timestamp

    @property
    def allowed(self) -> list[Decision]:
        """Allowed decisions, newest first."""
        return list(self._allowed)

    @property
    def denied(self) -> list[Decision]:
        """Denied (and audited) decisions, newest first."""
        return list(self._denied)

    def to_wire(self) -> dict[str, Any]:
        """``{networkEgress:{allowed,denied}, http:{allowed,denied}, lastUpdated}`` (SDK and spec)."""
        lists = {
            "allowed": [d.to_wire() for d in self._allowed],
            "denied": [d.to_wire() for d in self._denied],
        }
        updated = self._last_updated or datetime.datetime.now(datetime.timezone.utc)
        return {"networkEgress": lists, "http": lists, "lastUpdated": _iso(updated)}
