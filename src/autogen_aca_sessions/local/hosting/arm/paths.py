"""The one parser of management-plane paths: what an ARM URL names, as an :class:`ArmPath`.

::

    /subscriptions/{sub}/providers/Microsoft.App/{type}                          SUBSCRIPTION_LIST
    /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.App/{type}      RESOURCE_GROUP_LIST
    /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.App/{type}/{n}  RESOURCE
    .../{type}/{name}/{action}                                                   ACTION
    /subscriptions/{sub}/providers/Microsoft.App/locations/{loc}/operationStatuses/{id}  OPERATION_STATUS
    /subscriptions/{sub}/providers/Microsoft.App/locations/{loc}/operationResults/{id}   OPERATION_RESULT

The resource type is kept as a value (``sessionpools``), not matched here: the routes look it
up in their table of resource types, so a new type (``sandboxGroups``) is one more entry there.
Segments are compared case-insensitively, as ARM does, and kept as sent for names.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import ArmError

__all__ = ["PROVIDER", "ArmPath", "ArmTarget", "is_management_path", "parse_arm_path", "unknown_path"]

PROVIDER = "microsoft.app"
"""The resource provider namespace served (folded)."""

_LOCATIONS = "locations"


class ArmTarget(enum.Enum):
    """What kind of thing a management path names."""

    SUBSCRIPTION_LIST = "subscription list"
    """Every resource of a type in a subscription."""
    RESOURCE_GROUP_LIST = "resource group list"
    """Every resource of a type in a resource group."""
    RESOURCE = "resource"
    """One resource (GET, PUT, PATCH, DELETE)."""
    ACTION = "action"
    """A POST action on one resource (``fetchMcpServerCredentials``)."""
    OPERATION_STATUS = "operation status"
    """A long-running operation's ``Azure-AsyncOperation`` URL."""
    OPERATION_RESULT = "operation result"
    """A long-running operation's ``Location`` URL."""


_OPERATION_COLLECTIONS = {
    "operationstatuses": ArmTarget.OPERATION_STATUS,
    "operationresults": ArmTarget.OPERATION_RESULT,
}


@dataclass(frozen=True)
class ArmPath:
    """A parsed management path."""

    target: ArmTarget
    """What it names."""
    subscription: str
    """The subscription segment, as sent."""
    resource_type: str | None = None
    """The resource type under ``Microsoft.App``, folded to lower case (None for operations)."""
    resource_group: str | None = None
    """The resource group segment, as sent (None for subscription-wide paths)."""
    name: str | None = None
    """The resource name, as sent (RESOURCE and ACTION)."""
    action: str | None = None
    """The action, folded to lower case (ACTION)."""
    operation_id: str | None = None
    """The operation id (OPERATION_STATUS and OPERATION_RESULT)."""


def unknown_path(path: str) -> ArmError:
    """The 404 of a management path that names nothing served."""
    return ArmError(
        404,
        "InvalidResourceType",
        f"There is no management operation at '{path}'. This server serves Microsoft.App resources "
        "(and the operation URLs it hands out).",
        target="path",
    )


def is_management_path(segments: Sequence[str]) -> bool:
    """Whether a path (split on ``/``) is under ``/subscriptions/{sub}[/resourceGroups/{rg}]/providers``."""
    folded = [s.lower() for s in segments]
    if len(folded) < 3 or folded[0] != "subscriptions":
        return False
    return folded[2] == "providers" or (
        len(folded) >= 5 and folded[2] == "resourcegroups" and folded[4] == "providers"
    )


def parse_arm_path(path: str, segments: Sequence[str]) -> ArmPath | None:
    """What ``segments`` (the path split on ``/``, percent-decoded) name; None when the path is
    not under ``/subscriptions/{sub}[/resourceGroups/{rg}]/providers`` (a data-plane path).

    Raises :class:`ArmError` 404 for a management path that names nothing served (``path`` is
    quoted in its message).
    """
    folded = [s.lower() for s in segments]
    if not is_management_path(segments):
        return None
    subscription = segments[1]
    if folded[2] == "providers":
        rest, original = folded[3:], segments[3:]
        if len(rest) == 2 and rest[0] == PROVIDER:
            return ArmPath(ArmTarget.SUBSCRIPTION_LIST, subscription, resource_type=rest[1])
        if (
            len(rest) == 5
            and rest[0] == PROVIDER
            and rest[1] == _LOCATIONS
            and rest[3] in _OPERATION_COLLECTIONS
        ):
            return ArmPath(_OPERATION_COLLECTIONS[rest[3]], subscription, operation_id=original[4])
        raise unknown_path(path)
    group = segments[3]
    rest, original = folded[5:], segments[5:]
    if len(rest) < 2 or rest[0] != PROVIDER:
        raise unknown_path(path)
    kind = rest[1]
    if len(rest) == 2:
        return ArmPath(ArmTarget.RESOURCE_GROUP_LIST, subscription, resource_type=kind, resource_group=group)
    if len(rest) == 3:
        return ArmPath(ArmTarget.RESOURCE, subscription, kind, group, name=original[2])
    if len(rest) == 4:
        return ArmPath(ArmTarget.ACTION, subscription, kind, group, name=original[2], action=rest[3])
    raise unknown_path(path)
