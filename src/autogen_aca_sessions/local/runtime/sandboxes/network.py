"""A sandbox's egress: its policy, its decisions log and its door to the server's egress proxy.

Every sandbox keeps its own network namespace with loopback only; its one way out is the
forwarder on ``127.0.0.1:3128`` that ``HTTP(S)_PROXY`` name, relaying to the proxy's Unix
socket for this sandbox (``runtime/egress``). The door is open while a run of the sandbox's
processes exists: attached before the run starts (create, or a resume that starts a new
run), kept through a Memory-mode suspend (the processes are frozen, the socket stays), and
closed when the run ends (Disk- or None-mode stop, delete). The policy and the decisions
log belong to the sandbox, not to the door: they carry over a Disk-mode stop and resume.
"""

from __future__ import annotations

from ..egress import DecisionLog, EgressAttachment, EgressGateway, EgressPolicy
from .secrets import GroupSecrets

__all__ = ["SandboxNetwork"]


class SandboxNetwork:
    """One sandbox's egress state, attached to the runtime's gateway while its processes run."""

    def __init__(self, gateway: EgressGateway, sandbox_id: str, policy: EgressPolicy | None = None) -> None:
        self._gateway = gateway
        self.sandbox_id = sandbox_id
        """Whose egress this is (the gateway's name for it)."""
        self._policy = policy or EgressPolicy.deny_all()
        self._log = DecisionLog()
        self.secrets: GroupSecrets | None = None
        """The group's secrets, read by Transform rules when a request goes out (``None``
        until the sandbox belongs to a group: a ready sandbox started ahead of need)."""
        self._attachment: EgressAttachment | None = None

    @property
    def policy(self) -> EgressPolicy:
        """The policy in force."""
        return self._policy

    @property
    def attachment(self) -> EgressAttachment | None:
        """The open door (bwrap options, forwarder, proxy environment), while a run exists."""
        return self._attachment

    @property
    def decisions(self) -> DecisionLog:
        """The decisions log (the last 50 allowed and 50 denied, newest first)."""
        return self._log

    def _secret(self, secret_id: str, key: str | None) -> str | None:
        # Read at the moment a request goes out: a secret written or deleted since applies.
        return self.secrets.lookup(secret_id, key) if self.secrets is not None else None

    async def attach(self) -> EgressAttachment:
        """Open the door (idempotent); a run started with the answer has the proxy as its only way out."""
        if self._attachment is None:
            self._attachment = await self._gateway.attach(
                self.sandbox_id, self._policy, secrets=self._secret, log=self._log
            )
        return self._attachment

    def set_policy(self, policy: EgressPolicy) -> None:
        """Replace the policy; the next connection is decided by it (no restart)."""
        self._policy = policy
        if self._attachment is not None:
            self._gateway.update_policy(self.sandbox_id, policy)

    async def detach(self) -> None:
        """Close the door: its socket, and the connections open through it (idempotent)."""
        if self._attachment is not None:
            self._attachment = None
            await self._gateway.detach(self.sandbox_id)
