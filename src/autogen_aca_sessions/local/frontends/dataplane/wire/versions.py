"""The api-versions the local pool serves, and what each one has.

One entry per api-version of the reference; the HTTP layer asks this registry which contract
module renders a request and which optional operations and fields exist.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["API_VERSIONS", "ApiVersionSpec", "Contract", "lookup_api_version"]


class Contract(str, enum.Enum):
    """The two wire contracts the api-versions belong to."""

    LEGACY = "legacy"
    """``/code/execute``, ``properties`` wrapper (2024-02-02-preview, 2024-08-02-preview)."""
    CURRENT = "current"
    """``/executions`` (2024-10-02-preview and later)."""


@dataclass(frozen=True)
class ApiVersionSpec:
    """What one api-version of the dynamic-sessions data plane offers."""

    name: str
    """The api-version string exactly as the service spells it."""
    contract: Contract
    """The wire contract the api-version speaks."""
    execute_status: int
    """HTTP status of a synchronous execute (202 on 2024-10-02-preview, otherwise 200)."""
    file_item_operations: bool
    """Legacy contract: ``GET``/``DELETE /files/<name>`` exist (2024-08-02-preview)."""
    session_management: bool
    """``/session``, ``/listSessions`` and ``/metadata`` exist (2025-02-02-preview and later)."""
    shell: bool
    """``shellCommand`` is accepted on Shell pools (2025-02-02-preview and later)."""
    output_streams_max_length: bool
    """``outputStreamsMaxLength`` exists and defaults to 4096 (2025-10-02-preview)."""
    recursive_listing: bool
    """``GET /files?recursive=true`` and the ``directory`` field exist (2025-10-02-preview)."""
    exec_command_and_args: bool = False
    """Shell pools take ``execCommandAndArgs`` (an argv list) instead of ``shellCommand``, and
    ``returnJupyterFormatExecutionResult`` is a known field (2025-10-02-preview)."""


API_VERSIONS: dict[str, ApiVersionSpec] = {
    spec.name: spec
    for spec in (
        ApiVersionSpec("2024-02-02-preview", Contract.LEGACY, 200, False, False, False, False, False),
        ApiVersionSpec("2024-08-02-preview", Contract.LEGACY, 200, True, False, False, False, False),
        ApiVersionSpec("2024-10-02-preview", Contract.CURRENT, 202, True, False, False, False, False),
        ApiVersionSpec("2025-02-02-preview", Contract.CURRENT, 200, True, True, True, False, False),
        ApiVersionSpec(
            "2025-10-02-preview",
            Contract.CURRENT,
            200,
            True,
            True,
            True,
            True,
            True,
            exec_command_and_args=True,
        ),
    )
}
"""Every api-version served, keyed by its exact name."""


def lookup_api_version(value: str) -> ApiVersionSpec | None:
    """The spec of ``value`` (compared case-insensitively, surrounding blanks ignored)."""
    return API_VERSIONS.get(value.strip().lower())
