"""A running pool's limits change in place; deleting a Shell session ends its running command."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from autogen_aca_sessions.local.config import PoolConfig, PoolType
from autogen_aca_sessions.local.runtime.outcome import SessionLimitReached
from autogen_aca_sessions.local.runtime.sessions import SessionManager

pytestmark = pytest.mark.timeout(120)


def _shell_config(**changes: object) -> PoolConfig:
    return dataclasses.replace(PoolConfig(pool_type=PoolType.SHELL, ready_sessions=0), **changes)  # type: ignore[arg-type]


async def test_reconfigure_raises_the_session_limit_of_a_running_pool(tmp_path: Path) -> None:
    async with SessionManager(
        root=tmp_path / "pool", config=_shell_config(max_concurrent_sessions=1)
    ) as manager:
        first = await manager.get_or_create("one")
        with pytest.raises(SessionLimitReached):
            await manager.get_or_create("two")
        manager.reconfigure(
            dataclasses.replace(manager.config, max_concurrent_sessions=2, cooldown_period_seconds=900)
        )
        await manager.get_or_create("two")
        assert manager.get("one") is first
        assert manager.config.cooldown_period_seconds == 900


@pytest.mark.parametrize("field", ["pool_type", "egress", "sandbox", "kernel_launcher"])
async def test_reconfigure_refuses_what_the_runtime_was_built_with(tmp_path: Path, field: str) -> None:
    async with SessionManager(root=tmp_path / "pool", config=_shell_config()) as manager:
        # Each value differs from what the manager was built with, whatever the defaults are.
        other_launcher = "plain" if manager.config.kernel_launcher == "fork" else "fork"
        changed = {
            "pool_type": PoolType.PYTHON_LTS,
            "egress": True,
            "sandbox": "none",
            "kernel_launcher": other_launcher,
        }
        with pytest.raises(ValueError, match=field):
            manager.reconfigure(dataclasses.replace(manager.config, **{field: changed[field]}))  # type: ignore[arg-type]


async def test_deleting_a_shell_session_kills_the_command_it_is_running(tmp_path: Path) -> None:
    async with SessionManager(root=tmp_path / "pool", config=_shell_config()) as manager:
        session = await manager.get_or_create("sleeper")
        running = asyncio.ensure_future(
            session.run_shell("sleep 60; echo done", timeout=120, max_output_chars=1000)
        )
        await asyncio.sleep(1.0)
        assert await manager.delete("sleeper")
        # Without the kill the command would run for another minute: the bound only stops a hang.
        output = await asyncio.wait_for(running, 30)
        assert "done" not in output.stdout
        assert output.exit_code != 0


async def test_a_max_alive_period_ends_a_session_that_is_kept_busy(tmp_path: Path) -> None:
    config = _shell_config(cooldown_period_seconds=600, max_alive_period_seconds=1.5)
    async with SessionManager(root=tmp_path / "pool", config=config) as manager:
        session = await manager.get_or_create("kept")
        assert (session.expire_at - session.created_at).total_seconds() == 1.5
        for _ in range(50):
            if manager.get("kept") is None:
                break
            await session.run_shell("true", timeout=10, max_output_chars=10)  # touches it
            await asyncio.sleep(0.1)
        assert manager.get("kept") is None


def test_a_max_alive_period_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_alive_period_seconds"):
        PoolConfig(max_alive_period_seconds=0)
