"""The one parser of a data-plane path's pool prefix.

The prefix is ``/subscriptions/{sub}/resourceGroups/{rg}/sessionPools/{pool}``.
A pool endpoint is that prefix; operations follow it (``/executions``, ``/files/a.csv``). The
prefix is optional (a pool also answers at the server root), and its three keywords are matched
without regard to case, as Azure's front door matches them. Nothing here reads a request: callers
pass the path split into segments (the data plane splits the decoded path, the multi-pool server
the raw one so that ``%2F`` stays inside a name).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["PoolPrefix", "split_endpoint", "split_path"]

_KEYWORDS = ((0, "subscriptions"), (2, "resourcegroups"), (4, "sessionpools"))
"""The prefix's keywords and their segments (folded to lower case)."""


@dataclass(frozen=True)
class PoolPrefix:
    """The pool a data-plane path names."""

    subscription: str
    """The subscription segment, as sent."""
    resource_group: str
    """The resource group segment, as sent."""
    pool: str
    """The pool name segment, as sent."""

    @property
    def folded(self) -> tuple[str, str, str]:
        """``(subscription, resource_group, pool)`` in lower case: how pools are looked up."""
        return (self.subscription.lower(), self.resource_group.lower(), self.pool.lower())


def split_path(path: str) -> list[str]:
    """The segments of ``path``; empty ones are dropped, which makes a trailing slash and the
    double slash of an endpoint that already ended in ``/`` harmless."""
    return [s for s in path.split("/") if s]


def split_endpoint(segments: Sequence[str]) -> tuple[PoolPrefix | None, list[str]]:
    """The pool prefix of ``segments`` (``None`` when they have none) and the segments after it."""
    if len(segments) >= 6 and all(segments[i].lower() == word for i, word in _KEYWORDS):
        return PoolPrefix(segments[1], segments[3], segments[5]), list(segments[6:])
    return None, list(segments)
