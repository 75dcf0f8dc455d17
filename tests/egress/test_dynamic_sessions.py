"""The dynamic-session pool's egress allowlist (a local extension), end to end: real pools,
real bubblewrap, real kernels forked from the template, real shell sessions.

The allowlist names ``127.0.0.1``: a rule naming that exact literal is how a test reaches a
loopback server (public DNS answers pointing at loopback are refused). Clients inside are told
to use the proxy even for 127.0.0.1 (``NO_PROXY`` keeps the sandbox's own loopback direct).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from autogen_aca_sessions.local.config import PoolConfig
from autogen_aca_sessions.local.hosting.pool import LocalSessionPool
from autogen_aca_sessions.local.hosting.server import LocalSessionsServer
from autogen_aca_sessions.local.runtime.outcome import Outcome
from autogen_aca_sessions.local.runtime.sessions import EGRESS_POOL_ID, SessionManager

from .sandboxed import needs_bwrap
from .world import world_servers

pytestmark = [needs_bwrap, pytest.mark.timeout(240)]

CURL = "curl -sS --noproxy '' --proxy \"$HTTP_PROXY\" -w '|%{http_code}' "


async def test_shell_session_reaches_only_the_allowlist_and_never_its_own_server(tmp_path: Path) -> None:
    async with (
        world_servers(tmp_path) as world,
        LocalSessionPool(
            pool_type="Shell", sandbox="bwrap", egress_allowlist=["127.0.0.1"], root_dir=tmp_path / "pool"
        ) as pool,
    ):
        session = await pool.manager.get_or_create("s1")
        out = await session.run_shell(
            f"{CURL} http://127.0.0.1:{world.http_port}/ok; echo '#'; "
            f"{CURL} http://127.0.0.1:{pool.port}/; echo '#'; "
            f"{CURL} http://denied.example/; echo '#'; "
            f"exec 3<>/dev/tcp/127.0.0.1/{world.http_port} && echo RAW-OPEN || echo raw-refused",
            timeout=60,
            max_output_chars=10_000,
        )
        parts = [part.strip() for part in out.stdout.split("#")]
        assert parts[0] == "hello GET /ok|200", out.stderr
        assert parts[1].endswith("|403")
        assert "own ports" in parts[1]
        assert parts[2].endswith("|403")
        assert parts[3] == "raw-refused"
        gateway = pool.manager.egress_gateway
        assert gateway is not None
        log = gateway.decisions(EGRESS_POOL_ID)
        assert [d.path for d in log.allowed] == ["/ok"]
        assert len(log.denied) == 2


async def test_server_pools_take_the_server_allowlist_and_never_reach_the_server_port(
    tmp_path: Path,
) -> None:
    defaults = PoolConfig(sandbox="bwrap", egress_allowlist=("127.0.0.1",))
    async with (
        world_servers(tmp_path) as world,
        LocalSessionsServer(pool_defaults=defaults, root_dir=tmp_path / "server") as server,
    ):
        pool = await server.create_pool("egresspool", container_type="Shell", ready_session_instances=0)
        assert pool.manager is not None
        session = await pool.manager.get_or_create("s1")
        out = await session.run_shell(
            f"{CURL} http://127.0.0.1:{world.http_port}/ok; echo '#'; {CURL} http://127.0.0.1:{server.port}/",
            timeout=60,
            max_output_chars=10_000,
        )
        parts = [part.strip() for part in out.stdout.split("#")]
        assert parts[0] == "hello GET /ok|200", out.stderr
        assert parts[1].endswith("|403")
        assert "own ports" in parts[1]


@pytest.mark.parametrize("launcher", ["fork", "plain"])
async def test_python_kernels_of_either_launcher_go_through_the_proxy(tmp_path: Path, launcher: str) -> None:
    config = PoolConfig(
        sandbox="bwrap", egress_allowlist=("127.0.0.1",), ready_sessions=0, kernel_launcher=launcher
    )
    code = (
        "import os, urllib.request, urllib.error\n"
        "proxy = os.environ['HTTP_PROXY']\n"
        "for name in ('NO_PROXY', 'no_proxy'):\n"
        "    os.environ.pop(name, None)\n"
        "opener = urllib.request.build_opener(urllib.request.ProxyHandler({'http': proxy}))\n"
        "def get(url):\n"
        "    try:\n"
        "        return opener.open(url, timeout=30).read().decode()\n"
        "    except urllib.error.HTTPError as exc:\n"
        "        return exc.code\n"
        "[proxy, get(ALLOWED), get('http://denied.example/')]"
    )
    async with (
        world_servers(tmp_path) as world,
        SessionManager(root=tmp_path / "pool", config=config) as manager,
    ):
        session = await manager.get_or_create("k1")
        allowed = f"http://127.0.0.1:{world.http_port}/kernel"
        out = await session.execute(
            code.replace("ALLOWED", repr(allowed)), timeout=60, max_output_chars=10_000
        )
        assert out.outcome is Outcome.SUCCEEDED, out.stderr
        assert out.result == ["http://127.0.0.1:3128", "hello GET /kernel", 403]
        # A new allowlist applies to the next request of the running kernel.
        manager.reconfigure(dataclasses.replace(config, egress_allowlist=("other.example",)))
        out = await session.execute(
            code.replace("ALLOWED", repr(allowed)), timeout=60, max_output_chars=10_000
        )
        assert out.result[1:] == [403, 403]
        assert [s.path for s in world.seen] == ["/kernel"]


def test_allowlist_patterns_are_checked_when_the_pool_is_configured() -> None:
    with pytest.raises(ValueError, match="allowlist"):
        PoolConfig(egress_allowlist=("bad/host",))
    with pytest.raises(ValueError, match="not one string"):
        PoolConfig(egress_allowlist="api.example.com")  # type: ignore[arg-type]
    assert PoolConfig().egress_allowlist is None


async def test_allowlist_without_bubblewrap_is_refused_not_opened(tmp_path: Path) -> None:
    config = PoolConfig(pool_type="Shell", sandbox="none", egress_allowlist=("api.example.com",))
    manager = SessionManager(root=tmp_path / "pool", config=config)
    try:
        with pytest.raises(RuntimeError, match="needs bubblewrap"):
            await manager.start()
    finally:
        await manager.close()


async def test_allowlist_cannot_be_switched_off_on_a_running_pool(tmp_path: Path) -> None:
    config = PoolConfig(pool_type="Shell", sandbox="bwrap", egress_allowlist=("api.example.com",))
    async with SessionManager(root=tmp_path / "pool", config=config) as manager:
        with pytest.raises(ValueError, match="egress_allowlist"):
            manager.reconfigure(dataclasses.replace(config, egress_allowlist=None))


def test_serve_egress_allow_flags_make_the_pool_allowlist() -> None:
    from autogen_aca_sessions import cli

    args = cli.build_parser().parse_args(
        ["serve", "--egress-allow", "pypi.org", "--egress-allow", "*.github.com"]
    )
    config = cli._pool_config(args)
    assert config.egress_allowlist == ("pypi.org", "*.github.com")
    assert config.egress is False
    assert cli._pool_config(cli.build_parser().parse_args(["serve"])).egress_allowlist is None
