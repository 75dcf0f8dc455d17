"""Egress policy for sandboxes and sessions: a proxy in the server, a door in each namespace.

Each sandbox (or dynamic session) runs in a network namespace with loopback only. A
forwarder inside it (``forwarder.py``) listens on a loopback port that ``HTTP(S)_PROXY``
name, and relays to a Unix socket bind-mounted from the server, where the proxy
(``proxy.py``) decides every request or tunnel against the sandbox's policy (``policy.py``,
``verdict.py``), resolves names itself, refuses the server's own ports and internal
addresses (``destinations.py``), checks TLS SNI (``sni.py``), adds Transform headers from
secrets to plain HTTP, and logs decisions (``decisions.py``). ``gateway.py`` is the API
the runtimes attach with. Why this shape, and what it does not guarantee: docs/design.md,
"Egress", and SECURITY.md.
"""

from .decisions import DECISIONS_KEPT, Decision, DecisionAction, DecisionLog
from .destinations import DestinationGuard, Resolver, StaticResolver, SystemResolver
from .gateway import EGRESS_MOUNT, EGRESS_PORT, EgressAttachment, EgressGateway, UnknownSandboxError
from .policy import EgressPolicy, EnforcementMode, PolicyError
from .proxy import ProxyLimits, SecretLookup
from .verdict import Scheme, Verdict, decide

__all__ = [
    "DECISIONS_KEPT",
    "EGRESS_MOUNT",
    "EGRESS_PORT",
    "Decision",
    "DecisionAction",
    "DecisionLog",
    "DestinationGuard",
    "EgressAttachment",
    "EgressGateway",
    "EgressPolicy",
    "EnforcementMode",
    "PolicyError",
    "ProxyLimits",
    "Resolver",
    "Scheme",
    "SecretLookup",
    "StaticResolver",
    "SystemResolver",
    "UnknownSandboxError",
    "Verdict",
    "decide",
]
