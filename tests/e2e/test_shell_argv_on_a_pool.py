"""``SessionsClient.execute_shell`` with an argument list, against a real Shell pool, on both
the 2025-10 wire (``execCommandAndArgs``) and the 2025-02 one (quoted ``shellCommand``)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from autogen_aca_sessions.client import SessionsClient
from autogen_aca_sessions.local import LocalSessionPool

pytestmark = pytest.mark.asyncio(loop_scope="module")

POOL_OPTIONS: dict[str, Any] = {"pool_type": "Shell", "ready_sessions": 0}
TRICKY = ["it's", '"double"', "$(echo no)", "`no`", "*", "", "a  b"]


@pytest.mark.parametrize("version", ["2025-10-02-preview", "2025-02-02-preview"])
async def test_the_program_gets_exactly_these_arguments(module_pool: LocalSessionPool, version: str) -> None:
    async with SessionsClient(
        module_pool.endpoint, module_pool.async_credential, api_version=version
    ) as client:
        identifier = str(uuid.uuid4())
        result = await client.execute_shell(
            identifier, ["python3", "-c", "import sys; print(sys.argv[1:])", *TRICKY], timeout_seconds=30
        )
        await client.delete_session(identifier)
    assert result.exit_code == 0, result
    assert result.stdout == repr(TRICKY) + "\n"
