"""The egress decisions log: the last 50 allowed and denied, newest first, in both wire shapes."""

from __future__ import annotations

import collections
import datetime
import enum
from dataclasses import dataclass
from typing import Any

from .verdict import Scheme

__all__ = ["DECISIONS_KEPT", "Decision", "DecisionAction", "DecisionLog"]

DECISIONS_KEPT = 50
"""How many allowed and how many denied decisions are kept (reference §3.6)."""


def _iso(moment: datetime.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class DecisionAction(str, enum.Enum):
    """What happened to a request or connection (the log's ``action``)."""

    ALLOW = "Allow"
    """Let through unchanged."""
    TRANSFORM = "Transform"
    """Let through with a Transform's headers."""
    DENY = "Deny"
    """Refused (by the policy, or by the proxy's own checks: guard, SNI, framing)."""
    AUDIT = "Audit"
    """Denied by the policy, let through because it is in Audit mode (logged as denied)."""

    @property
    def went_out(self) -> bool:
        """Whether the request or connection left the sandbox."""
        return self is not DecisionAction.DENY


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
    scheme: Scheme
    """Plain HTTP or an HTTPS tunnel."""
    action: DecisionAction
    """What happened to it."""
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
            "scheme": self.scheme.value,
            "action": self.action.value,
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
        """Keep ``decision`` (the oldest of its kind is dropped beyond the bound).

        Allowed and transformed ones go to ``allowed``; denied and audited ones to ``denied``
        (an audited one went out, but the policy denies it: that is what Audit reports).
        """
        allowed = decision.action in (DecisionAction.ALLOW, DecisionAction.TRANSFORM)
        (self._allowed if allowed else self._denied).appendleft(decision)
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
