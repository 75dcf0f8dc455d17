"""Failures of the pool itself reach the model as tool results that say what happened."""

from __future__ import annotations

import pytest

pytest.importorskip("agent_framework")

from agent_framework import AgentSession

from autogen_aca_sessions.agent_framework import DynamicSessions, DynamicSessionsConfig, ExecuteCodeTool
from tests.af_adapter._helpers import call, text_of
from tests.conftest import PoolFactory


async def test_a_full_pool_is_reported_as_pool_full(make_pool: PoolFactory) -> None:
    pool = await make_pool(max_concurrent_sessions=1)
    config = DynamicSessionsConfig(pool_management_endpoint=pool.endpoint)
    async with DynamicSessions(config, credential=pool.api_key) as sessions:
        tool = ExecuteCodeTool(sessions)
        first = await call(tool, AgentSession(), code="1")

        refused = await call(tool, AgentSession(), code="2")

    assert "value: 1" in text_of(first)
    assert "no free session right now" in text_of(refused)
    assert [c.error_code for c in refused if c.type == "error"] == ["PoolFull"]


async def test_an_unreachable_pool_is_reported_as_such() -> None:
    # A closed loopback port: nothing listens there.
    config = DynamicSessionsConfig(
        pool_management_endpoint="http://127.0.0.1:9/subscriptions/s/resourceGroups/r/sessionPools/p",
        request_timeout=5,
    )
    async with DynamicSessions(config, credential="key") as sessions:
        contents = await call(ExecuteCodeTool(sessions), AgentSession(), code="1")

    assert "Could not reach the session pool" in text_of(contents)
