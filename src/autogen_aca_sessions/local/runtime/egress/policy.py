"""The egress policy of ACA Sandboxes (reference §3.6): its model, its wire forms, its matcher.

Both wire forms are read: the SDK's flat body (``defaultAction``, ``hostRules``, ``rules``)
and the spec's canonical ``http`` section (the same fields plus ``enforcementMode``). The
policy is written back as a superset of both (the SDK ignores unknown keys).

Evaluation: ``rules`` in order, then ``hostRules`` in order; the first match wins, else
``defaultAction``. The local default is ``Deny``.

What the local proxy cannot honour is refused when the policy is written
(:class:`PolicyError`), never silently dropped: ``Rewrite`` actions, managed-identity header
values, ``Legacy`` traffic inspection. What it honours only partly is reported in
:attr:`EgressPolicy.validation_warnings` (the spec's ``validationWarnings``) and fails
closed at connection time: a ``Transform`` rule matching an HTTPS connection denies it,
because the proxy does not decrypt TLS (see docs/design.md, "Egress").
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ...choice import Choice

__all__ = [
    "MAX_HOST_RULES",
    "MAX_RULES",
    "EgressAction",
    "EgressPolicy",
    "EnforcementMode",
    "HeaderOperation",
    "HeaderOperationKind",
    "HostRule",
    "PolicyError",
    "Rule",
    "RuleActionKind",
    "RuleMatch",
    "SchemeMatch",
    "SecretRef",
    "host_matches",
    "normalize_host",
]

MAX_RULES = 256
"""Most ``rules`` in one policy (a bound on the work every connection does)."""
MAX_HOST_RULES = 1024
"""Most ``hostRules`` in one policy."""
_MAX_NAME = 253
"""Longest host name or pattern (DNS limit)."""
_MAX_HEADER_VALUE = 8192
"""Longest literal header value a Transform may set."""

_E = TypeVar("_E", bound="_WireEnum")


class PolicyError(ValueError):
    """A policy body the local server refuses (400 on the wire), with the offending field."""

    def __init__(self, message: str, *, field_path: str = "") -> None:
        super().__init__(f"{field_path}: {message}" if field_path else message)
        self.field_path = field_path
        """Where in the body the problem is (``rules[2].action.type``)."""


class _WireEnum(Choice):
    """A wire string, parsed case-insensitively, written in the reference's spelling; a bad one
    is a :class:`PolicyError` naming where in the body it is."""

    @classmethod
    def parse(cls: type[_E], value: object, where: str = "") -> _E:
        try:
            return super().parse(value)
        except PolicyError as exc:
            raise PolicyError(str(exc), field_path=where) from None

    @classmethod
    def refusal(cls, value: object) -> Exception:
        choices = ", ".join(m.value for m in cls)
        return PolicyError(f"must be one of {choices}, not {value!r}")


class EgressAction(_WireEnum):
    """What a host rule or the default does with a connection."""

    ALLOW = "Allow"
    """Let it through."""
    DENY = "Deny"
    """Refuse it (403 from the proxy)."""


class RuleActionKind(_WireEnum):
    """What a rule does with the requests it matches."""

    ALLOW = "Allow"
    """Let it through unchanged."""
    DENY = "Deny"
    """Refuse it."""
    TRANSFORM = "Transform"
    """Let it through with header operations applied (plain HTTP only; HTTPS fails closed)."""
    REWRITE = "Rewrite"
    """Redirect to another host/path: not supported locally, refused when written."""


class HeaderOperationKind(_WireEnum):
    """How a Transform changes one header."""

    SET = "Set"
    """Replace every value of the header with this one."""
    INSERT = "Insert"
    """Add this value, keeping the ones already there."""
    REMOVE = "Remove"
    """Drop the header."""


class EnforcementMode(_WireEnum):
    """Whether denials are applied or only logged."""

    ENFORCED = "Enforced"
    """Denied connections are refused."""
    AUDIT = "Audit"
    """Everything is let through; what Enforced would deny is logged as denied."""


class SchemeMatch(_WireEnum):
    """Which traffic a rule applies to (spec ``match.scheme``)."""

    HTTP = "http"
    """Plain HTTP requests only."""
    HTTPS = "https"
    """HTTPS (``CONNECT``) only."""
    ANY = "any"
    """Both."""


class TrafficInspection(_WireEnum):
    """The SDK's ``trafficInspection`` (kept and echoed; the local proxy never decrypts)."""

    LEGACY = "Legacy"
    """Refused on create by the service, refused here too."""
    FULL = "Full"
    """Accepted, echoed."""
    PARTIAL = "Partial"
    """Accepted, echoed."""
    NONE = "None"
    """Accepted, echoed."""


def normalize_host(host: str) -> str:
    """A host name as compared: lower case, no trailing dot, IPv6 brackets removed."""
    host = host.strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def host_matches(pattern: str, host: str) -> bool:
    """Whether ``host`` (normalised) matches ``pattern``.

    ``*`` matches every name (not IP literals: those must be named); ``*.example.com``
    matches any name below ``example.com`` (at any depth) but not ``example.com`` itself;
    anything else matches only itself, case-insensitively.
    """
    if pattern == "*":
        return not _is_ip_literal(host)
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


def _check_pattern(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PolicyError("must be a non-empty host name or pattern", field_path=where)
    pattern = normalize_host(value)
    if len(pattern) > _MAX_NAME or not pattern.isascii():
        raise PolicyError("must be an ASCII host name of at most 253 characters", field_path=where)
    if pattern == "*" or _is_ip_literal(pattern):
        return pattern
    body = pattern[2:] if pattern.startswith("*.") else pattern
    labels = body.split(".")
    if not body or any(not label or len(label) > 63 for label in labels):
        raise PolicyError(f"{value!r} is not a host name or *.domain pattern", field_path=where)
    if any(not all(c.isalnum() or c in "-_" for c in label) for label in labels):
        raise PolicyError(f"{value!r} is not a host name or *.domain pattern", field_path=where)
    return pattern


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PolicyError("must be an object", field_path=where)
    return value


def _sequence(value: object, where: str, *, limit: int) -> Sequence[Any]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise PolicyError("must be an array", field_path=where)
    if len(value) > limit:
        raise PolicyError(f"has more than {limit} entries", field_path=where)
    return value


def _optional_str(value: object, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise PolicyError("must be a string", field_path=where)
    return value


@dataclass(frozen=True)
class HostRule:
    """``hostRules[i]``: allow or deny a host pattern."""

    pattern: str
    """Normalised host or ``*.domain`` pattern."""
    action: EgressAction
    """What a match does."""

    def to_wire(self) -> dict[str, Any]:
        """The wire object."""
        return {"pattern": self.pattern, "action": self.action.value}


@dataclass(frozen=True)
class SecretRef:
    """Where a header value comes from: a key of one of the group's secrets."""

    secret_id: str
    """The secret's id."""
    secret_key: str | None
    """The key inside the secret (``None``: its only key)."""
    format: str | None
    """A template with ``{value}`` standing for the secret (``"Bearer {value}"``); ``None``: the value."""

    def to_wire(self) -> dict[str, Any]:
        """The wire ``valueRef`` object."""
        ref: dict[str, Any] = {"secretId": self.secret_id}
        if self.secret_key is not None:
            ref["secretKey"] = self.secret_key
        if self.format is not None:
            ref["format"] = self.format
        return {"secretRef": ref}


@dataclass(frozen=True)
class HeaderOperation:
    """One header change of a Transform."""

    operation: HeaderOperationKind
    """Set, Insert or Remove."""
    name: str
    """The header name (a token)."""
    value: str | None = None
    """A literal value (visible to anyone who can read the policy)."""
    secret: SecretRef | None = None
    """A value read from a secret at the edge (never enters the sandbox)."""

    def to_wire(self) -> dict[str, Any]:
        """The wire object (secret values are never written back, only their reference)."""
        wire: dict[str, Any] = {"operation": self.operation.value, "name": self.name}
        if self.value is not None:
            wire["value"] = self.value
        if self.secret is not None:
            wire["valueRef"] = self.secret.to_wire()
        return wire


@dataclass(frozen=True)
class RuleMatch:
    """What a rule applies to."""

    host: str
    """Normalised host or pattern."""
    path: str | None = None
    """A path prefix (``/v1/`` matches ``/v1/chat``); a trailing ``*`` is ignored."""
    methods: frozenset[str] = frozenset()
    """Upper-case methods; empty: any."""
    scheme: SchemeMatch = SchemeMatch.ANY
    """Plain HTTP, HTTPS or both."""

    @property
    def needs_request(self) -> bool:
        """Whether matching needs the request line (path or method), which HTTPS hides."""
        return self.path is not None or bool(self.methods)


@dataclass(frozen=True)
class Rule:
    """``rules[i]``: a match and an action."""

    name: str | None
    """The rule's name (logged as ``matchedRule``)."""
    match: RuleMatch
    """What it applies to."""
    action: RuleActionKind
    """Allow, Deny or Transform."""
    headers: tuple[HeaderOperation, ...] = ()
    """The Transform's header operations, in order."""

    def label(self, index: int) -> str:
        """How decisions name this rule."""
        return self.name or f"rules[{index}]"

    def to_wire(self) -> dict[str, Any]:
        """The wire object."""
        match: dict[str, Any] = {"host": self.match.host}
        if self.match.path is not None:
            match["path"] = self.match.path
        if self.match.methods:
            match["methods"] = sorted(self.match.methods)
        if self.match.scheme is not SchemeMatch.ANY:
            match["scheme"] = self.match.scheme.value
        action: dict[str, Any] = {"type": self.action.value}
        if self.headers:
            action["headers"] = [h.to_wire() for h in self.headers]
        wire: dict[str, Any] = {"match": match, "action": action}
        if self.name is not None:
            wire["name"] = self.name
        return wire


def _is_token(name: str) -> bool:
    allowed = "!#$%&'*+-.^_`|~"
    return bool(name) and name.isascii() and all(c.isalnum() or c in allowed for c in name)


_FORBIDDEN_TRANSFORM_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer", "keep-alive"}
)
"""Headers a Transform may not touch: they frame the request, and changing them would smuggle."""


def _parse_header(raw: object, where: str) -> HeaderOperation:
    body = _mapping(raw, where)
    operation = HeaderOperationKind.parse(body.get("operation", "Set"), f"{where}.operation")
    name = body.get("name")
    if not isinstance(name, str) or not _is_token(name) or len(name) > 256:
        raise PolicyError("must be an HTTP header name", field_path=f"{where}.name")
    if name.lower() in _FORBIDDEN_TRANSFORM_HEADERS:
        raise PolicyError(
            f"{name!r} frames the request and cannot be transformed", field_path=f"{where}.name"
        )
    if operation is HeaderOperationKind.REMOVE:
        return HeaderOperation(operation, name)
    value = _optional_str(body.get("value"), f"{where}.value")
    ref_body = body.get("valueRef")
    if (value is None) == (ref_body is None):
        raise PolicyError("needs exactly one of value and valueRef", field_path=where)
    if value is not None:
        if len(value) > _MAX_HEADER_VALUE or any(c in value for c in "\r\n\0"):
            raise PolicyError("must be one line of at most 8192 characters", field_path=f"{where}.value")
        return HeaderOperation(operation, name, value=value)
    ref = _mapping(ref_body, f"{where}.valueRef")
    if "managedIdentityRef" in ref:
        raise PolicyError(
            "managed identity tokens are not available on the local server; use a secretRef",
            field_path=f"{where}.valueRef.managedIdentityRef",
        )
    secret = _mapping(ref.get("secretRef"), f"{where}.valueRef.secretRef")
    secret_id = secret.get("secretId")
    if not isinstance(secret_id, str) or not secret_id:
        raise PolicyError("must name the secret", field_path=f"{where}.valueRef.secretRef.secretId")
    fmt = _optional_str(secret.get("format"), f"{where}.valueRef.secretRef.format")
    if fmt is not None and ("{value}" not in fmt or any(c in fmt for c in "\r\n\0")):
        raise PolicyError(
            "must be one line containing {value}", field_path=f"{where}.valueRef.secretRef.format"
        )
    key = _optional_str(secret.get("secretKey"), f"{where}.valueRef.secretRef.secretKey")
    return HeaderOperation(operation, name, secret=SecretRef(secret_id, key, fmt))


def _parse_rule(raw: object, where: str) -> Rule:
    body = _mapping(raw, where)
    match_body = _mapping(body.get("match"), f"{where}.match")
    host = _check_pattern(match_body.get("host"), f"{where}.match.host")
    path = _optional_str(match_body.get("path"), f"{where}.match.path")
    if path is not None:
        path = path.rstrip("*")
        if not path.startswith("/"):
            raise PolicyError("must start with '/'", field_path=f"{where}.match.path")
    methods: set[str] = set()
    for i, method in enumerate(_sequence(match_body.get("methods"), f"{where}.match.methods", limit=16)):
        if not isinstance(method, str) or not _is_token(method):
            raise PolicyError("must be an HTTP method", field_path=f"{where}.match.methods[{i}]")
        methods.add(method.upper())
    scheme = SchemeMatch.parse(match_body.get("scheme", "any"), f"{where}.match.scheme")
    action_body = body.get("action", {})
    if isinstance(action_body, str):  # a bare "Allow" is read as {"type": "Allow"}
        action_body = {"type": action_body}
    action_map = _mapping(action_body, f"{where}.action")
    action = RuleActionKind.parse(action_map.get("type"), f"{where}.action.type")
    if action is RuleActionKind.REWRITE:
        raise PolicyError(
            "Rewrite is not supported by the local server (Allow, Deny and Transform are)",
            field_path=f"{where}.action.type",
        )
    raw_headers = _sequence(action_map.get("headers"), f"{where}.action.headers", limit=32)
    headers = tuple(_parse_header(h, f"{where}.action.headers[{i}]") for i, h in enumerate(raw_headers))
    if action is RuleActionKind.TRANSFORM and not headers:
        raise PolicyError("a Transform needs at least one header operation", field_path=f"{where}.action")
    if action is not RuleActionKind.TRANSFORM and headers:
        raise PolicyError("only a Transform has header operations", field_path=f"{where}.action.headers")
    name = _optional_str(body.get("name"), f"{where}.name")
    return Rule(name, RuleMatch(host, path, frozenset(methods), scheme), action, headers)


@dataclass(frozen=True)
class EgressPolicy:
    """One sandbox's (or pool's) egress policy, validated."""

    default_action: EgressAction = EgressAction.DENY
    """What happens when nothing matches (local default: Deny)."""
    host_rules: tuple[HostRule, ...] = ()
    """Host patterns allowed or denied, in order (after ``rules``)."""
    rules: tuple[Rule, ...] = ()
    """Rules, in order (first match wins)."""
    enforcement_mode: EnforcementMode = EnforcementMode.ENFORCED
    """Enforced, or Audit (allow everything, log what would be denied)."""
    traffic_inspection: TrafficInspection | None = None
    """The SDK's ``trafficInspection``, echoed."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Keys of the body this server does not interpret (echoed as sent)."""

    @classmethod
    def deny_all(cls) -> EgressPolicy:
        """The local default: nothing gets out."""
        return cls()

    @classmethod
    def allow_hosts(cls, patterns: Sequence[str]) -> EgressPolicy:
        """Deny by default, allow these host patterns (the dynamic-session pool's allowlist)."""
        rules = tuple(
            HostRule(_check_pattern(p, f"allowlist[{i}]"), EgressAction.ALLOW) for i, p in enumerate(patterns)
        )
        return cls(host_rules=rules)

    @classmethod
    def from_wire(cls, body: object) -> EgressPolicy:
        """Read either wire form (raises :class:`PolicyError` on anything it cannot honour)."""
        top = _mapping(body, "")
        section = top
        prefix = ""
        if top.get("http") is not None:
            section = _mapping(top["http"], "http")
            prefix = "http."
        default = EgressAction.parse(
            section.get("defaultAction", top.get("defaultAction", "Deny")), f"{prefix}defaultAction"
        )
        raw_host_rules = section.get("hostRules", top.get("hostRules"))
        host_rules: list[HostRule] = []
        for i, raw in enumerate(_sequence(raw_host_rules, f"{prefix}hostRules", limit=MAX_HOST_RULES)):
            where = f"{prefix}hostRules[{i}]"
            rule = _mapping(raw, where)
            host_rules.append(
                HostRule(
                    _check_pattern(rule.get("pattern", rule.get("host")), f"{where}.pattern"),
                    EgressAction.parse(rule.get("action"), f"{where}.action"),
                )
            )
        raw_rules = section.get("rules", top.get("rules") if prefix else None)
        rules = tuple(
            _parse_rule(raw, f"{prefix}rules[{i}]")
            for i, raw in enumerate(_sequence(raw_rules, f"{prefix}rules", limit=MAX_RULES))
        )
        mode = EnforcementMode.parse(
            section.get("enforcementMode", top.get("enforcementMode", "Enforced")), f"{prefix}enforcementMode"
        )
        inspection: TrafficInspection | None = None
        if top.get("trafficInspection") is not None:
            inspection = TrafficInspection.parse(top["trafficInspection"], "trafficInspection")
            if inspection is TrafficInspection.LEGACY:
                raise PolicyError("Legacy is not accepted", field_path="trafficInspection")
        known = {"defaultAction", "hostRules", "rules", "enforcementMode", "trafficInspection", "http"}
        known |= {"validationWarnings"}
        extra = {k: v for k, v in top.items() if k not in known}
        return cls(default, tuple(host_rules), rules, mode, inspection, extra)

    @property
    def validation_warnings(self) -> list[str]:
        """What this policy asks that the local proxy honours only by failing closed."""
        warnings: list[str] = []
        for i, rule in enumerate(self.rules):
            https = rule.match.scheme is not SchemeMatch.HTTP
            if https and rule.action is RuleActionKind.TRANSFORM:
                warnings.append(
                    f"{rule.label(i)}: Transform cannot be applied to HTTPS (the local proxy does not "
                    "decrypt TLS); HTTPS connections it matches are denied. Use match.scheme 'http' "
                    "or call the host over plain HTTP."
                )
            elif https and rule.match.needs_request and rule.action is RuleActionKind.ALLOW:
                warnings.append(
                    f"{rule.label(i)}: path and methods are not visible in HTTPS; this rule never "
                    "matches an HTTPS connection."
                )
            elif https and rule.match.needs_request and rule.action is RuleActionKind.DENY:
                warnings.append(
                    f"{rule.label(i)}: path and methods are not visible in HTTPS; this rule denies "
                    "every HTTPS connection to its host."
                )
        return warnings

    def to_wire(self) -> dict[str, Any]:
        """A superset of the SDK's flat form and the spec's ``http`` section."""
        section: dict[str, Any] = {
            "defaultAction": self.default_action.value,
            "hostRules": [r.to_wire() for r in self.host_rules],
            "rules": [r.to_wire() for r in self.rules],
            "enforcementMode": self.enforcement_mode.value,
        }
        wire: dict[str, Any] = {**self.extra, **section, "http": dict(section)}
        if self.traffic_inspection is not None:
            wire["trafficInspection"] = self.traffic_inspection.value
        warnings = self.validation_warnings
        if warnings:
            wire["validationWarnings"] = warnings
        return wire
