"""The api-versions of the Sandboxes data plane the local server serves, and what differs.

Reference ``aca-sandboxes.md`` section 4: the SDK (``azure-containerapps-sandbox`` 0.1.0b4)
sends ``2026-02-01-preview``; the only published spec is ``2026-09-01-preview``. Requests of
either shape are accepted on both; responses are a superset, with the state names and the
create/write statuses of the version asked for (one wire module per version in ``wire/``).
"""

from __future__ import annotations

import enum

__all__ = ["SandboxApiVersion", "lookup_sandbox_version"]


class SandboxApiVersion(enum.Enum):
    """A data-plane api-version."""

    V2026_02_01_PREVIEW = "2026-02-01-preview"
    """What the SDK sends: create with PUT, ``Suspended``/``Resuming``/``Deleting``/``Failed``."""
    V2026_09_01_PREVIEW = "2026-09-01-preview"
    """The published spec: create with POST, ``Idle``/``StopFailed``, no ``Resuming``."""


def lookup_sandbox_version(value: str) -> SandboxApiVersion | None:
    """The version named ``value`` (case-insensitive, surrounding blanks ignored)."""
    folded = value.strip().lower()
    return next((v for v in SandboxApiVersion if v.value == folded), None)
