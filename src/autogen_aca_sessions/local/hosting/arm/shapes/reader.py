"""Lenient reading of session-pool bodies, shared by every api-version.

ARM reads property names case-insensitively, and the documents in the wild use several
spellings (``mcPServerSettings``, ``isMCPServerEnabled``, ``coolDownPeriodInSecond``, the seed's
flat ``maxConcurrentSessions``, 2024's ``executionType`` next to 2025's ``lifecycleConfiguration``).
Every body is therefore read with every documented spelling of every version: a client that
copies any published example gets its pool. What comes back is rendered exactly in the shape of
the api-version asked (``seed.py``, ``flat.py``, ``lifecycle.py``).

Every bad field is reported, not only the first: one ``InvalidRequestContent`` (or the single
field's own error) whose ``details`` list each.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from ..errors import ArmError
from ..model import (
    COOLDOWN_RANGE,
    DEFAULT_MAX_ALIVE_SECONDS,
    MAX_CONCURRENT_SESSIONS_LIMIT,
    MAX_IDENTITY_JSON_CHARS,
    MAX_MANAGED_IDENTITIES,
    MAX_MANAGED_IDENTITY_CHARS,
    MAX_SECRET_NAME_CHARS,
    MAX_SECRET_VALUE_CHARS,
    MAX_SECRETS,
    MAX_TAG_NAME_CHARS,
    MAX_TAG_VALUE_CHARS,
    MAX_TAGS,
    SUPPORTED_CONTAINER_TYPES,
    ContainerType,
    EgressStatus,
    IdentityLifecycle,
    LifecycleType,
    ManagedIdentitySetting,
    PoolManagementType,
    PoolSecret,
    PoolSettings,
    location_problem,
)

__all__ = ["read_patch", "read_put"]

E = TypeVar("E", bound=enum.Enum)

_MAX_INT32 = 2**31 - 1


class _Reader:
    """One JSON object of the body, read case-insensitively; problems go to a shared list."""

    def __init__(self, value: dict[str, Any], path: str, errors: list[ArmError]) -> None:
        self._folded = {k.lower(): (k, v) for k, v in value.items()}
        self._path = path
        self._errors = errors

    @property
    def errors(self) -> list[ArmError]:
        """The problems found so far in the whole body (shared by every reader of it)."""
        return self._errors

    def _where(self, key: str) -> str:
        return f"{self._path}.{key}" if self._path else key

    def raw(self, *names: str) -> tuple[str, Any] | None:
        """``(target, value)`` of the first spelling present (a JSON null counts as absent)."""
        for name in names:
            found = self._folded.get(name.lower())
            if found is not None and found[1] is not None:
                return self._where(found[0]), found[1]
        return None

    def fail(self, target: str, code: str, message: str) -> None:
        self._errors.append(ArmError(400, code, message, target=target))

    def obj(self, *names: str) -> _Reader | None:
        found = self.raw(*names)
        if found is None:
            return None
        target, value = found
        if not isinstance(value, dict):
            self.fail(target, "InvalidRequestContent", f"'{target}' must be a JSON object.")
            return None
        return _Reader(value, target, self._errors)

    def integer(self, *names: str, low: int, high: int, code: str) -> int | None:
        found = self.raw(*names)
        if found is None:
            return None
        target, value = found
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(target, "InvalidRequestContent", f"'{target}' must be a whole number (got {value!r}).")
            return None
        if not low <= value <= high:
            self.fail(target, code, f"'{target}' must be between {low} and {high} (got {value}).")
            return None
        return value

    def boolean(self, *names: str) -> bool | None:
        found = self.raw(*names)
        if found is None:
            return None
        target, value = found
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            self.fail(target, "InvalidRequestContent", f"'{target}' must be true or false (got {value!r}).")
            return None
        return value

    def text(self, *names: str) -> tuple[str, str] | None:
        found = self.raw(*names)
        if found is None:
            return None
        target, value = found
        if not isinstance(value, str):
            self.fail(target, "InvalidRequestContent", f"'{target}' must be a string (got {value!r}).")
            return None
        return target, value

    def choice(
        self, enum_type: type[E], *names: str, code: str, aliases: dict[str, E] | None = None
    ) -> E | None:
        found = self.text(*names)
        if found is None:
            return None
        target, value = found
        for member in enum_type:
            if str(member.value).lower() == value.strip().lower():
                return member
        if aliases and value.strip().lower() in aliases:
            return aliases[value.strip().lower()]
        allowed = ", ".join(str(m.value) for m in enum_type)
        self.fail(target, code, f"'{target}' must be one of {allowed} (got {value!r}).")
        return None

    def items(self, *names: str) -> tuple[str, list[Any]] | None:
        found = self.raw(*names)
        if found is None:
            return None
        target, value = found
        if not isinstance(value, list):
            self.fail(target, "InvalidRequestContent", f"'{target}' must be a JSON array.")
            return None
        return target, value


def _body(body: Any, errors: list[ArmError]) -> _Reader:
    if not isinstance(body, dict):
        raise ArmError(
            400,
            "InvalidRequestContent",
            "The request body must be a JSON object (a session pool resource).",
            target="body",
        )
    return _Reader(body, "", errors)


def _container_type(props: _Reader, changes: dict[str, Any]) -> None:
    container = props.choice(ContainerType, "containerType", code="InvalidContainerType")
    dynamic = props.obj("dynamicPoolConfiguration")
    pool_type = None
    if dynamic is not None:
        found = dynamic.text("poolType")  # the seed's (2023-08-01-preview) way to say what runs
        if found is not None:
            target, value = found
            if value.strip().lower() == "jupyterpython":
                pool_type = ContainerType.PYTHON_LTS
            else:
                props.fail(
                    target,
                    "ContainerTypeNotSupported",
                    f"poolType {value!r} is not supported by the local server; use JupyterPython "
                    "(or containerType PythonLTS or Shell).",
                )
    chosen = container or pool_type
    if chosen is None:
        return
    if chosen not in SUPPORTED_CONTAINER_TYPES:
        found = props.raw("containerType")
        props.fail(
            found[0] if found else "properties.containerType",
            "ContainerTypeNotSupported",
            f"containerType {chosen.value} is not supported by the local session server: it runs "
            "PythonLTS (a Jupyter kernel per session) and Shell (bash) pools only. "
            f"Create {chosen.value} pools on Azure.",
        )
        return
    changes["container_type"] = chosen


def _management_type(props: _Reader) -> None:
    kind = props.choice(PoolManagementType, "poolManagementType", code="InvalidPoolManagementType")
    if kind is PoolManagementType.MANUAL:
        found = props.raw("poolManagementType")
        props.fail(
            found[0] if found else "properties.poolManagementType",
            "PoolManagementTypeNotSupported",
            "poolManagementType Manual is not supported by the local session server; use Dynamic.",
        )


def _scale(props: _Reader, changes: dict[str, Any]) -> None:
    sessions_code = "InvalidMaxConcurrentSessions"
    scale = props.obj("scaleConfiguration")
    top = props.integer(
        "maxConcurrentSessions", low=1, high=MAX_CONCURRENT_SESSIONS_LIMIT, code=sessions_code
    )
    if top is not None:
        changes["max_concurrent_sessions"] = top  # the seed's place for it
    if scale is None:
        return
    most = scale.integer(
        "maxConcurrentSessions", low=1, high=MAX_CONCURRENT_SESSIONS_LIMIT, code=sessions_code
    )
    if most is not None:
        changes["max_concurrent_sessions"] = most
    ready = scale.integer(
        "readySessionInstances",
        low=0,
        high=MAX_CONCURRENT_SESSIONS_LIMIT,
        code="InvalidReadySessionInstances",
    )
    if ready is not None:
        changes["ready_session_instances"] = ready


_COOLDOWN_NAMES = (
    "cooldownPeriodInSeconds",
    "coolDownPeriodInSecond",
    "cooldownPeriodSeconds",
    "coolDownPeriodInSeconds",
)


def _lifecycle(props: _Reader, changes: dict[str, Any]) -> None:
    dynamic = props.obj("dynamicPoolConfiguration")
    if dynamic is None:
        return
    low, high = COOLDOWN_RANGE
    life = dynamic.obj("lifecycleConfiguration")
    source = life if life is not None else dynamic  # 2025's nested object or 2023/2024's flat one
    kind = source.choice(
        LifecycleType,
        "lifecycleType",
        "executionType",
        code="InvalidLifecycleType",
    )
    cooldown = source.integer(*_COOLDOWN_NAMES, low=low, high=high, code="InvalidCooldownPeriod")
    max_alive = source.integer("maxAlivePeriodInSeconds", low=low, high=high, code="InvalidMaxAlivePeriod")
    if kind is not None:
        changes["lifecycle_type"] = kind
    # The unused one of the pair may be sent (the az CLI sends both, one null): it is ignored.
    if cooldown is not None:
        changes["cooldown_seconds"] = cooldown
    if max_alive is not None:
        changes["max_alive_seconds"] = max_alive


def _network(props: _Reader, changes: dict[str, Any]) -> None:
    network = props.obj("sessionNetworkConfiguration")
    if network is None:
        return
    status = network.choice(EgressStatus, "status", code="InvalidSessionNetworkConfiguration")
    if status is not None:
        changes["egress"] = status


def _mcp(props: _Reader, changes: dict[str, Any]) -> None:
    mcp = props.obj("mcpServerSettings")
    if mcp is None:
        return
    enabled = mcp.boolean("isMcpServerEnabled")
    if enabled is not None:
        changes["mcp_enabled"] = enabled
    key_disabled = mcp.boolean("isMcpServerApiKeyDisabled", "mcpServerApiKeyDisabled")
    if key_disabled is not None:
        changes["mcp_api_key_disabled"] = key_disabled


def _too_many(props: _Reader, target: str, count: int, most: int) -> bool:
    """Whether a list is over its cap (reported once; its entries are then not read at all)."""
    if count <= most:
        return False
    message = f"'{target}' may hold at most {most} entries (it has {count})."
    props.fail(target, "InvalidRequestContent", message)
    return True


def _secrets(props: _Reader, changes: dict[str, Any]) -> None:
    found = props.items("secrets", "sessionPoolSecrets")
    if found is None:
        return
    target, entries = found
    if _too_many(props, target, len(entries), MAX_SECRETS):
        return
    secrets: list[PoolSecret] = []
    for index, entry in enumerate(entries):
        where = f"{target}[{index}]"
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name:
            props.fail(where, "InvalidRequestContent", "Each secret needs a non-empty 'name'.")
            continue
        value = entry.get("value", "")
        if value is None:
            value = ""
        if not isinstance(value, str):
            props.fail(where, "InvalidRequestContent", "A secret's 'value' must be a string.")
            continue
        if len(name) > MAX_SECRET_NAME_CHARS or len(value) > MAX_SECRET_VALUE_CHARS:
            props.fail(
                where,
                "InvalidRequestContent",
                f"A secret's name may have at most {MAX_SECRET_NAME_CHARS} characters and its value "
                f"at most {MAX_SECRET_VALUE_CHARS}.",
            )
            continue
        secrets.append(PoolSecret(name, value))
    changes["secrets"] = tuple(secrets)


def _managed_identities(props: _Reader, changes: dict[str, Any]) -> None:
    found = props.items("managedIdentitySettings")
    if found is None:
        return
    target, entries = found
    if _too_many(props, target, len(entries), MAX_MANAGED_IDENTITIES):
        return
    settings: list[ManagedIdentitySetting] = []
    for index, entry in enumerate(entries):
        where = f"{target}[{index}]"
        if not isinstance(entry, dict):
            props.fail(where, "InvalidRequestContent", f"'{where}' must be a JSON object.")
            continue
        reader = _Reader(entry, where, props.errors)
        identity = reader.text("identity")
        if identity is None:
            if reader.raw("identity") is None:  # a wrong type was reported by text()
                props.fail(
                    f"{where}.identity",
                    "InvalidRequestContent",
                    "Each managedIdentitySettings entry needs its 'identity' ('system' or the "
                    "resource id of a user-assigned identity).",
                )
            continue
        name = identity[1].strip()
        if not name or len(name) > MAX_MANAGED_IDENTITY_CHARS:
            props.fail(
                identity[0],
                "InvalidRequestContent",
                f"'{identity[0]}' must be 'system' or a resource id of at most "
                f"{MAX_MANAGED_IDENTITY_CHARS} characters.",
            )
            continue
        lifecycle = reader.choice(IdentityLifecycle, "lifecycle", code="InvalidRequestContent")
        settings.append(ManagedIdentitySetting(name, lifecycle or IdentityLifecycle.MAIN))
    changes["managed_identity_settings"] = tuple(settings)


def _envelope(root: _Reader, changes: dict[str, Any]) -> None:
    found = root.raw("tags")
    if found is not None:
        target, tags = found
        if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
            root.fail(target, "InvalidRequestContent", "'tags' must be an object of string values.")
        elif len(tags) > MAX_TAGS or any(
            len(k) > MAX_TAG_NAME_CHARS or len(v) > MAX_TAG_VALUE_CHARS for k, v in tags.items()
        ):
            root.fail(
                target,
                "InvalidTagNameOrValue",
                f"A resource has at most {MAX_TAGS} tags, each name at most {MAX_TAG_NAME_CHARS} "
                f"characters and each value at most {MAX_TAG_VALUE_CHARS}.",
            )
        else:
            changes["tags"] = dict(tags)
    identity = root.obj("identity")
    if identity is not None:
        found = root.raw("identity")
        assert found is not None
        if len(json.dumps(found[1])) > MAX_IDENTITY_JSON_CHARS:
            root.fail(
                found[0],
                "InvalidRequestContent",
                f"'identity' may be at most {MAX_IDENTITY_JSON_CHARS} characters of JSON.",
            )
        else:
            changes["identity"] = dict(found[1])


def _properties(root: _Reader, changes: dict[str, Any], *, patch: bool) -> None:
    props = root.obj("properties")
    if props is None:
        return
    steps: Iterable[Callable[[_Reader, dict[str, Any]], None]] = (
        _container_type,
        _scale,
        _lifecycle,
        _network,
        _mcp,
        _secrets,
        _managed_identities,
    )
    if not patch:
        _management_type(props)
    for step in steps:
        step(props, changes)


def _finish(errors: list[ArmError]) -> None:
    if not errors:
        return
    if len(errors) == 1:
        raise errors[0]
    raise ArmError(
        400,
        "InvalidRequestContent",
        f"The session pool has {len(errors)} invalid values; see details.",
        target="properties",
        details=errors,
    )


def _finish_and_forget(errors: list[ArmError]) -> None:
    """:func:`_finish`, then empty ``errors``: the raised error's traceback holds the frame that
    holds this list, and a list that still held the error would make a cycle that keeps the
    parsed body (up to 4 MB of JSON objects) alive until the garbage collector runs."""
    try:
        _finish(errors)
    finally:
        errors.clear()


def _merge(base: PoolSettings, changes: dict[str, Any]) -> PoolSettings:
    settings = dataclasses.replace(base, **changes)
    if (
        changes.get("lifecycle_type") is LifecycleType.ON_CONTAINER_EXIT
        and "max_alive_seconds" not in changes
        and base.lifecycle_type is not LifecycleType.ON_CONTAINER_EXIT
    ):
        settings = dataclasses.replace(settings, max_alive_seconds=DEFAULT_MAX_ALIVE_SECONDS)
    if settings.ready_session_instances > settings.max_concurrent_sessions:
        raise ArmError(
            400,
            "InvalidReadySessionInstances",
            f"readySessionInstances ({settings.ready_session_instances}) cannot exceed maxConcurrentSessions "
            f"({settings.max_concurrent_sessions}).",
            target="properties.scaleConfiguration.readySessionInstances",
        )
    return settings


def read_put(body: Any) -> PoolSettings:
    """The settings a create-or-replace body describes (defaults for what it leaves out)."""
    errors: list[ArmError] = []
    root = _body(body, errors)
    changes: dict[str, Any] = {}
    location = root.text("location")
    if location is None and root.raw("location") is None:
        errors.append(
            ArmError(
                400,
                "LocationRequired",
                "The session pool needs a 'location' (any region name).",
                target="location",
            )
        )
    elif location is not None:
        if not location[1].strip():
            root.fail(location[0], "LocationRequired", "'location' must not be empty.")
        elif (problem := location_problem(location[1].strip())) is not None:
            # What ARM answers for a region the resource type is not offered in.
            root.fail(
                location[0],
                "LocationNotAvailableForResourceType",
                f"The provided location {ascii(location[1])[:80]} {problem}.",
            )
        else:
            changes["location"] = location[1].strip()
    _envelope(root, changes)
    _properties(root, changes, patch=False)
    _finish_and_forget(errors)
    return _merge(PoolSettings(), changes)


def read_patch(body: Any, current: PoolSettings) -> PoolSettings:
    """``current`` with the updatable properties a PATCH body sets (a JSON merge patch)."""
    errors: list[ArmError] = []
    root = _body(body, errors)
    changes: dict[str, Any] = {}
    _envelope(root, changes)
    _properties(root, changes, patch=True)
    _finish_and_forget(errors)
    return _merge(current, changes)
