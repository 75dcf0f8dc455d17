"""The egress gateway: one proxy (in the server process) with one Unix socket per sandbox.

The API the runtimes use, a few lines each::

    gateway = EgressGateway(root / "egress")
    gateway.protect(server_port)                   # the server's own listeners
    attachment = await gateway.attach("sb-1", policy, secrets=group_secrets.get)
    argv = [bwrap, *mounts, *attachment.bwrap_args, *attachment.wrap(workload)]
    env |= attachment.env
    gateway.update_policy("sb-1", new_policy)      # applies to the next connection
    gateway.decisions("sb-1").to_wire()            # the egress-decisions body
    await gateway.detach("sb-1")

``attachment.bwrap_args`` unshares the network (loopback only) and binds the sandbox's
socket directory at :data:`EGRESS_MOUNT`; its parent ``/run`` must be a tmpfs in the
sandbox (``--tmpfs /run`` earlier on the command line), since bubblewrap cannot make a
mount point on the host's read-only ``/run``. ``attachment.wrap`` starts the forwarder
(``forwarder.py``) in front of the workload; ``attachment.env`` points
``HTTP(S)_PROXY`` at it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .decisions import DecisionLog
from .destinations import DestinationGuard, Resolver, SystemResolver
from .policy import EgressPolicy
from .proxy import ConnectionCount, ProxyLimits, SandboxEgress, SecretLookup, handle_connection

__all__ = ["EGRESS_MOUNT", "EGRESS_PORT", "EgressAttachment", "EgressGateway", "UnknownSandboxError"]

EGRESS_MOUNT = "/run/aca-egress"
"""Where a sandbox sees its proxy socket's directory."""
EGRESS_PORT = 3128
"""The loopback port of the forwarder inside each sandbox (its namespace is its own)."""
_SOCKET_NAME = "proxy.sock"
_MAX_SOCKET_PATH = 107
"""Longest Unix socket path Linux takes (``sun_path`` is 108 bytes with its NUL)."""
FORWARDER = Path(__file__).with_name("forwarder.py")
"""The in-sandbox forwarder script (standard library only)."""


class UnknownSandboxError(KeyError):
    """No sandbox of that id is attached."""


@dataclass(frozen=True)
class EgressAttachment:
    """What a runtime adds to a sandbox's launch so its only way out is this gateway."""

    sandbox_id: str
    """Whose attachment this is."""
    socket_dir: Path
    """The host directory holding the sandbox's proxy socket."""
    bwrap_args: list[str]
    """bubblewrap options: a loopback-only network namespace and the socket directory."""
    env: dict[str, str] = field(default_factory=dict)
    """``HTTP_PROXY``, ``HTTPS_PROXY`` (both cases), ``ALL_PROXY`` and ``NO_PROXY`` for the workload."""
    python: str = sys.executable
    """The interpreter that runs the forwarder inside the sandbox."""

    @property
    def socket_path(self) -> Path:
        """The proxy socket on the host."""
        return self.socket_dir / _SOCKET_NAME

    def wrap(self, argv: list[str]) -> list[str]:
        """``argv`` started behind the forwarder (which ``exec``s it: same pid, same exit)."""
        inside = f"{EGRESS_MOUNT}/{_SOCKET_NAME}"
        return [self.python, "-I", "-S", str(FORWARDER), inside, str(EGRESS_PORT), "--", *argv]


def proxy_environment() -> dict[str, str]:
    """The environment that sends HTTP clients to the in-sandbox forwarder."""
    url = f"http://127.0.0.1:{EGRESS_PORT}"
    env = {"HTTP_PROXY": url, "HTTPS_PROXY": url, "ALL_PROXY": url}
    env |= {name.lower(): value for name, value in env.items()}
    # The sandbox's own loopback (its own namespace) stays direct.
    env["NO_PROXY"] = env["no_proxy"] = "localhost,127.0.0.1,::1"
    return env


class EgressGateway:
    """The proxy of a server: every attached sandbox's policy, decisions and socket."""

    def __init__(
        self,
        root: Path,
        *,
        protected_ports: Iterable[int] = (),
        limits: ProxyLimits | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        """``root`` holds the sockets (made private to the server's user).

        ``resolver`` is the test-only override (a :class:`~.destinations.StaticResolver`);
        nothing outside tests passes it, and no option of the server or the CLI reaches it.
        """
        self.root = Path(root)
        """Where the per-sandbox socket directories live."""
        self.guard = DestinationGuard(protected_ports)
        """Addresses and ports never reached."""
        self.limits = limits or ProxyLimits()
        """Size, time and connection bounds."""
        self._resolver: Resolver = resolver or SystemResolver()
        self._sandboxes: dict[str, SandboxEgress] = {}
        self._servers: dict[str, asyncio.AbstractServer] = {}
        self._total = ConnectionCount()

    def protect(self, port: int) -> None:
        """Never let any sandbox reach ``port`` on this machine (call for every server listener)."""
        self.guard.protect(port)

    def _state(self, sandbox_id: str) -> SandboxEgress:
        try:
            return self._sandboxes[sandbox_id]
        except KeyError:
            raise UnknownSandboxError(sandbox_id) from None

    def override_resolver(self, resolver: Resolver) -> None:
        """Tests only: resolve names with ``resolver`` (a :class:`~.destinations.StaticResolver`
        mapping test names to 127.0.0.1 servers) from the next connection on.

        For a gateway a test does not construct itself (the one a server's Sandboxes runtime
        makes). Nothing in the server, its CLI or any wire route calls this.
        """
        self._resolver = resolver

    async def attach(
        self,
        sandbox_id: str,
        policy: EgressPolicy,
        *,
        secrets: SecretLookup | None = None,
        log: DecisionLog | None = None,
    ) -> EgressAttachment:
        """Open ``sandbox_id``'s socket with ``policy`` in force; returns what to launch it with.

        ``log`` carries a decisions log over from an earlier attachment of the same sandbox
        (a sandbox stopped in Disk mode and resumed keeps its history); a new one otherwise.
        """
        if sandbox_id in self._sandboxes:
            raise ValueError(f"{sandbox_id!r} is already attached")
        if not sandbox_id or "/" in sandbox_id or sandbox_id in (".", "..") or "\0" in sandbox_id:
            raise ValueError(f"{sandbox_id!r} cannot name a directory")
        socket_dir = self.root / sandbox_id
        if len(os.fsencode(socket_dir / _SOCKET_NAME)) > _MAX_SOCKET_PATH:
            raise ValueError(
                f"the proxy socket path {socket_dir / _SOCKET_NAME} is longer than a Unix socket "
                f"path may be ({_MAX_SOCKET_PATH} bytes): use a shorter gateway root or sandbox id"
            )
        self.root.mkdir(mode=0o711, parents=True, exist_ok=True)
        await asyncio.to_thread(shutil.rmtree, socket_dir, True)
        socket_dir.mkdir(mode=0o755)
        state = SandboxEgress(sandbox_id, policy, secrets, log if log is not None else DecisionLog())
        path = socket_dir / _SOCKET_NAME

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await handle_connection(
                state,
                reader,
                writer,
                resolver=self._resolver,
                guard=self.guard,
                limits=self.limits,
                total=self._total,
            )

        server = await asyncio.start_unix_server(serve, path=str(path), limit=self.limits.max_head_bytes)
        # The sandbox may run as another uid (bubblewrap started by root drops to the session's).
        os.chmod(path, 0o666)
        self._sandboxes[sandbox_id] = state
        self._servers[sandbox_id] = server
        return EgressAttachment(
            sandbox_id=sandbox_id,
            socket_dir=socket_dir,
            bwrap_args=["--unshare-net", "--ro-bind", str(socket_dir), EGRESS_MOUNT],
            env=proxy_environment(),
        )

    def policy(self, sandbox_id: str) -> EgressPolicy:
        """The policy in force for ``sandbox_id``."""
        return self._state(sandbox_id).policy

    def update_policy(self, sandbox_id: str, policy: EgressPolicy) -> None:
        """Replace the policy; the next connection is decided by it (open tunnels run on)."""
        self._state(sandbox_id).policy = policy

    def decisions(self, sandbox_id: str) -> DecisionLog:
        """The sandbox's decisions log."""
        return self._state(sandbox_id).log

    def attached(self, sandbox_id: str) -> bool:
        """Whether ``sandbox_id`` is attached."""
        return sandbox_id in self._sandboxes

    async def detach(self, sandbox_id: str) -> None:
        """Close the sandbox's socket and connections, and remove its directory. Idempotent."""
        state = self._sandboxes.pop(sandbox_id, None)
        server = self._servers.pop(sandbox_id, None)
        if server is not None:
            server.close()
        if state is not None:
            tasks = list(state.tasks)
            for task in tasks:
                task.cancel()
            for writer in list(state.connections):
                writer.close()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 5)
        await asyncio.to_thread(shutil.rmtree, self.root / sandbox_id, True)

    async def close(self) -> None:
        """Detach every sandbox."""
        for sandbox_id in list(self._sandboxes):
            await self.detach(sandbox_id)
