"""The egress policy model and matcher (reference §3.6)."""

from __future__ import annotations

from typing import Any

import pytest

from autogen_aca_sessions.local.runtime.egress import EgressPolicy, PolicyError, Scheme, decide
from autogen_aca_sessions.local.runtime.egress.policy import host_matches


def _http(policy: EgressPolicy, host: str, method: str = "GET", path: str = "/") -> tuple[bool, str | None]:
    verdict = decide(policy, host=host, scheme=Scheme.HTTP, method=method, path=path)
    return verdict.allowed, verdict.matched_rule


def _https(policy: EgressPolicy, host: str) -> tuple[bool, str | None]:
    verdict = decide(policy, host=host, scheme=Scheme.HTTPS, method="CONNECT")
    return verdict.allowed, verdict.matched_rule


def test_local_default_is_deny() -> None:
    assert _http(EgressPolicy.from_wire({}), "example.com") == (False, None)
    assert _http(EgressPolicy(), "example.com") == (False, None)


@pytest.mark.parametrize(
    ("pattern", "host", "expected"),
    [
        ("*.example.com", "api.example.com", True),
        ("*.example.com", "a.b.example.com", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", "badexample.com", False),
        ("example.com", "EXAMPLE.com", False),  # hosts are normalised before matching
        ("example.com", "example.com", True),
        ("*", "anything.test", True),
        ("*", "10.0.0.1", False),
    ],
)
def test_host_patterns(pattern: str, host: str, expected: bool) -> None:
    assert host_matches(pattern, host) is expected


def test_host_names_are_compared_case_and_dot_insensitively() -> None:
    policy = EgressPolicy.from_wire({"hostRules": [{"pattern": "API.Example.com.", "action": "Allow"}]})
    assert _http(policy, "api.example.com")[0] is True


def test_first_matching_rule_wins_and_rules_come_before_host_rules() -> None:
    policy = EgressPolicy.from_wire(
        {
            "defaultAction": "Allow",
            "hostRules": [{"pattern": "*.example.com", "action": "Allow"}],
            "rules": [
                {
                    "name": "no-admin",
                    "match": {"host": "*.example.com", "path": "/admin"},
                    "action": {"type": "Deny"},
                },
                {
                    "name": "reads",
                    "match": {"host": "api.example.com", "methods": ["get"]},
                    "action": {"type": "Allow"},
                },
                {"name": "rest", "match": {"host": "api.example.com"}, "action": {"type": "Deny"}},
            ],
        }
    )
    assert _http(policy, "api.example.com", "GET", "/admin/x") == (False, "no-admin")
    assert _http(policy, "api.example.com", "GET", "/data") == (True, "reads")
    assert _http(policy, "api.example.com", "POST", "/data") == (False, "rest")
    assert _http(policy, "www.example.com", "POST", "/data") == (True, "hostRules[0]:*.example.com")
    assert _http(policy, "other.org") == (True, None)


def test_https_fails_closed_on_rules_that_need_the_request() -> None:
    policy = EgressPolicy.from_wire(
        {
            "rules": [
                {
                    "name": "allow-get",
                    "match": {"host": "a.test", "methods": ["GET"]},
                    "action": {"type": "Allow"},
                },
                {
                    "name": "deny-admin",
                    "match": {"host": "b.test", "path": "/admin"},
                    "action": {"type": "Deny"},
                },
            ],
            "hostRules": [{"pattern": "*.test", "action": "Allow"}],
        }
    )
    assert _https(policy, "a.test") == (True, "hostRules[0]:*.test")  # the Allow cannot match, falls through
    assert _https(policy, "b.test") == (False, "deny-admin")  # the Deny denies the whole host
    warnings = policy.to_wire()["validationWarnings"]
    assert len(warnings) == 2


def test_scheme_restricted_rules() -> None:
    policy = EgressPolicy.from_wire(
        {"rules": [{"match": {"host": "a.test", "scheme": "https"}, "action": {"type": "Allow"}}]}
    )
    assert _https(policy, "a.test")[0] is True
    assert _http(policy, "a.test")[0] is False


def test_audit_allows_what_enforced_denies() -> None:
    policy = EgressPolicy.from_wire({"http": {"defaultAction": "Deny", "enforcementMode": "Audit"}})
    verdict = decide(policy, host="x.test", scheme=Scheme.HTTP, method="GET", path="/")
    assert verdict.allowed is True
    assert verdict.would_deny is True


def test_spec_http_section_and_sdk_flat_form_read_the_same() -> None:
    rules: list[dict[str, Any]] = [{"name": "r", "match": {"host": "a.test"}, "action": {"type": "Allow"}}]
    flat = EgressPolicy.from_wire({"defaultAction": "Deny", "rules": rules, "hostRules": []})
    spec = EgressPolicy.from_wire(
        {"http": {"defaultAction": "Deny", "rules": rules, "enforcementMode": "Enforced"}}
    )
    assert flat == spec


def test_written_back_as_a_superset_of_both_forms() -> None:
    policy = EgressPolicy.from_wire(
        {
            "defaultAction": "deny",
            "hostRules": [{"pattern": "*.a.test", "action": "allow"}],
            "trafficInspection": "Full",
            "somethingElse": {"kept": True},
        }
    )
    wire = policy.to_wire()
    assert wire["defaultAction"] == "Deny"
    assert wire["hostRules"] == [{"pattern": "*.a.test", "action": "Allow"}]
    assert wire["http"]["hostRules"] == wire["hostRules"]
    assert wire["http"]["enforcementMode"] == "Enforced"
    assert wire["trafficInspection"] == "Full"
    assert wire["somethingElse"] == {"kept": True}
    assert EgressPolicy.from_wire(wire) == policy


def test_secret_values_are_referenced_never_written_back() -> None:
    header = {
        "operation": "Set",
        "name": "Authorization",
        "valueRef": {"secretRef": {"secretId": "s", "secretKey": "k"}},
    }
    body = {
        "rules": [
            {
                "match": {"host": "a.test", "scheme": "http"},
                "action": {"type": "Transform", "headers": [header]},
            }
        ]
    }
    wire = EgressPolicy.from_wire(body).to_wire()
    assert wire["rules"][0]["action"]["headers"] == [header]
    assert "validationWarnings" not in wire


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"defaultAction": "Maybe"}, "defaultAction"),
        ({"hostRules": [{"pattern": "", "action": "Allow"}]}, "hostRules[0].pattern"),
        ({"hostRules": [{"pattern": "a/b", "action": "Allow"}]}, "hostRules[0].pattern"),
        ({"hostRules": [{"pattern": "*.*.x", "action": "Allow"}]}, "hostRules[0].pattern"),
        ({"hostRules": "a.test"}, "hostRules"),
        ({"rules": [{"match": {"host": "a.test"}, "action": {"type": "Rewrite"}}]}, "rules[0].action.type"),
        (
            {
                "rules": [
                    {
                        "match": {"host": "a.test"},
                        "action": {
                            "type": "Transform",
                            "headers": [
                                {
                                    "name": "X",
                                    "valueRef": {"managedIdentityRef": {"type": "System", "resource": "r"}},
                                }
                            ],
                        },
                    }
                ]
            },
            "managedIdentityRef",
        ),
        (
            {
                "rules": [
                    {
                        "match": {"host": "a.test"},
                        "action": {"type": "Transform", "headers": [{"name": "Host", "value": "b.test"}]},
                    }
                ]
            },
            "headers[0].name",
        ),
        (
            {
                "rules": [
                    {
                        "match": {"host": "a.test"},
                        "action": {"type": "Transform", "headers": [{"name": "X", "value": "a\r\nB: c"}]},
                    }
                ]
            },
            "headers[0].value",
        ),
        ({"rules": [{"match": {"host": "a.test"}, "action": {"type": "Transform"}}]}, "rules[0].action"),
        ({"rules": [{"match": {"host": "a.test", "path": "x"}, "action": "Allow"}]}, "rules[0].match.path"),
        ({"trafficInspection": "Legacy"}, "trafficInspection"),
        ({"http": {"enforcementMode": "Sometimes"}}, "http.enforcementMode"),
        ({"hostRules": [{"pattern": "a.test", "action": "Allow"}] * 2000}, "hostRules"),
        ([], ""),
    ],
)
def test_what_cannot_be_honoured_is_refused_with_the_field(body: object, where: str) -> None:
    with pytest.raises(PolicyError) as caught:
        EgressPolicy.from_wire(body)
    assert where in str(caught.value)
