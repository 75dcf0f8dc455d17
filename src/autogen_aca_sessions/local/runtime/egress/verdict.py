"""Deciding one request or connection against a policy: first matching rule wins."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .policy import (
    EgressAction,
    EgressPolicy,
    EnforcementMode,
    HeaderOperation,
    RuleActionKind,
    SchemeMatch,
    host_matches,
)

__all__ = ["Scheme", "Verdict", "decide"]


class Scheme(str, enum.Enum):
    """How the sandbox reached the proxy."""

    HTTP = "http"
    """A plain HTTP request in absolute form."""
    HTTPS = "https"
    """A ``CONNECT`` tunnel carrying TLS."""


@dataclass(frozen=True)
class Verdict:
    """The outcome for one request or connection."""

    allowed: bool
    """Whether it goes out (in Audit mode, always)."""
    would_deny: bool
    """Whether the policy denies it (in Audit mode it is let through anyway, and logged denied)."""
    matched_rule: str | None
    """The rule or host rule that decided, or ``None`` for the default action."""
    reason: str
    """One sentence for the 403 body and the log."""
    headers: tuple[HeaderOperation, ...] = ()
    """The Transform's header operations to apply (plain HTTP only)."""
    names_literal: bool = False
    """Whether the deciding rule named the host exactly (what lets a rule reach a loopback
    address or an IP literal)."""


def _matches_scheme(wanted: SchemeMatch, scheme: Scheme) -> bool:
    return wanted is SchemeMatch.ANY or wanted.value == scheme.value


def _path_matches(prefix: str, path: str) -> bool:
    return path.startswith(prefix)


def decide(
    policy: EgressPolicy, *, host: str, scheme: Scheme, method: str | None = None, path: str | None = None
) -> Verdict:
    """The verdict for ``host`` (normalised) reached by ``scheme``.

    ``method`` and ``path`` are known for plain HTTP only. Rules that need them, met by an
    HTTPS connection, fail closed: an Allow does not match, a Deny does. A Transform that
    matches HTTPS denies (the proxy does not decrypt TLS, so it cannot add the headers).
    """
    denied: Verdict | None = None
    decided: Verdict | None = None
    for index, rule in enumerate(policy.rules):
        match = rule.match
        if not _matches_scheme(match.scheme, scheme) or not host_matches(match.host, host):
            continue
        label = rule.label(index)
        literal = match.host == host
        if scheme is Scheme.HTTPS and match.needs_request:
            if rule.action is RuleActionKind.ALLOW:
                continue
        else:
            if match.methods and (method or "").upper() not in match.methods:
                continue
            if match.path is not None and not _path_matches(match.path, path or ""):
                continue
        if rule.action is RuleActionKind.ALLOW:
            decided = Verdict(True, False, label, f"allowed by {label}", names_literal=literal)
        elif rule.action is RuleActionKind.DENY:
            denied = Verdict(False, True, label, f"denied by {label}")
        elif scheme is Scheme.HTTPS:
            denied = Verdict(
                False,
                True,
                label,
                f"{label} is a Transform, which cannot be applied to HTTPS (the local egress proxy "
                "does not decrypt TLS); call this host over plain HTTP or give the rule match.scheme 'http'",
            )
        else:
            decided = Verdict(
                True, False, label, f"transformed by {label}", rule.headers, names_literal=literal
            )
        break
    else:
        for index, host_rule in enumerate(policy.host_rules):
            if not host_matches(host_rule.pattern, host):
                continue
            label = f"hostRules[{index}]:{host_rule.pattern}"
            if host_rule.action is EgressAction.ALLOW:
                literal = host_rule.pattern == host
                decided = Verdict(True, False, label, f"allowed by {label}", names_literal=literal)
            else:
                denied = Verdict(False, True, label, f"denied by {label}")
            break
        else:
            if policy.default_action is EgressAction.ALLOW:
                decided = Verdict(True, False, None, "allowed by defaultAction")
            else:
                denied = Verdict(False, True, None, f"{host} is not allowed by this sandbox's egress policy")
    if decided is not None:
        return decided
    assert denied is not None
    if policy.enforcement_mode is EnforcementMode.AUDIT:
        return Verdict(True, True, denied.matched_rule, f"audit: {denied.reason}")
    return denied
