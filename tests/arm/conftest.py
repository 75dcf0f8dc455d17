"""Fixtures of the management-plane tests: a real ``LocalSessionsServer`` on 127.0.0.1.

``arm_server`` is one server per module (tests in these modules run in the module's loop);
``arm`` sends plain HTTP with the server's key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest_asyncio

from autogen_aca_sessions.local import LocalSessionsServer
from tests.arm._helpers import Arm


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def arm_server() -> AsyncIterator[LocalSessionsServer]:
    async with LocalSessionsServer(retry_after_seconds=1, list_page_size=2) as server:
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def arm(arm_server: LocalSessionsServer) -> AsyncIterator[Arm]:
    headers = {"Authorization": f"Bearer {arm_server.api_key}"}
    async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=180)) as http:
        yield Arm(arm_server.base_url, http)
