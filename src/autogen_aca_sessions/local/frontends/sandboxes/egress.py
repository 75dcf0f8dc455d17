"""The egress routes of the Sandboxes data plane: the policy write and the decisions log.

``POST {s}/egresspolicy`` replaces a running sandbox's policy whole (the SDK's ``add_egress_*``
helpers read it from ``GET {s}``, change it and post it back); the next connection out of the
sandbox is decided by it. ``GET {s}/egress-decisions`` (SDK) and ``{s}/egressDecisions`` (spec)
answer the real log, the last 50 allowed and denied, newest first, under both names.
"""

from __future__ import annotations

from aiohttp import web

from ...runtime.egress import EgressPolicy, PolicyError
from .call import SandboxCall, json_response, runtime_call
from .wire.common import bad_request

__all__ = ["egress_decisions", "set_egress_policy"]


async def set_egress_policy(call: SandboxCall) -> web.StreamResponse:
    """``POST {s}/egresspolicy`` (either wire form): 200 with the policy in force, as a superset
    of the SDK's flat form and the spec's ``http`` section; 400 naming the field it cannot
    honour; 409 ``SandboxNotRunning`` when stopped or suspended (the SDK resumes first)."""
    sandbox = call.sandbox()
    body = await call.json()
    try:
        policy = EgressPolicy.from_wire(body)
    except PolicyError as exc:
        raise bad_request(str(exc), exc.field_path or "body", code="InvalidEgressPolicy") from exc
    runtime_call(lambda: sandbox.set_egress_policy(policy))
    return json_response(policy.to_wire())


async def egress_decisions(call: SandboxCall) -> web.StreamResponse:
    """``GET {s}/egress-decisions`` and ``{s}/egressDecisions``: ``{networkEgress, http,
    lastUpdated}``, each entry with host, method, path, scheme, action, matched rule and time."""
    sandbox = call.sandbox()
    return json_response(sandbox.egress_decisions.to_wire())
