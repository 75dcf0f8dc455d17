"""2025-10-02-preview request fields: ``execCommandAndArgs`` on Shell pools (mutually exclusive
with ``shellCommand``) and ``returnJupyterFormatExecutionResult`` (refused when true: its
response shape is documented nowhere)."""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp
import pytest

from autogen_aca_sessions.local import LocalSessionPool

NEWEST = "2025-10-02-preview"


async def _execute(
    pool: LocalSessionPool, body: dict[str, Any], version: str = NEWEST
) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {pool.api_key}"}) as http,
        http.post(
            pool.endpoint + "/executions",
            params={"api-version": version, "identifier": str(uuid.uuid4())},
            json={"codeInputType": "Inline", "executionType": "Synchronous", **body},
        ) as resp,
    ):
        return resp.status, await resp.json()


@pytest.mark.parametrize("local_pool", [{"pool_type": "Shell", "ready_sessions": 0}], indirect=True)
async def test_exec_command_and_args_runs_the_words_exactly_and_excludes_shell_command(
    local_pool: LocalSessionPool,
) -> None:
    tricky = 'it\'s "quoted" $(rm -rf /) `x` *'
    status, body = await _execute(
        local_pool, {"execCommandAndArgs": ["python3", "-c", "import sys; print(sys.argv[1:])", tricky, ""]}
    )
    assert status == 200, body
    assert body["status"] == "0"
    assert body["result"]["stdout"] == repr([tricky, ""]) + "\n"

    status, body = await _execute(local_pool, {"execCommandAndArgs": ["true"], "shellCommand": "true"})
    assert status == 400
    assert body["error"]["target"] == "execCommandAndArgs"
    assert "not both" in body["error"]["message"]

    status, body = await _execute(local_pool, {})
    assert status == 400
    assert "at least one of the 'shellCommand' or 'execCommandAndArgs'" in body["error"]["message"]

    for bad in ([], "ls", [1], ["a", None], ["a\x00b"]):
        status, body = await _execute(local_pool, {"execCommandAndArgs": bad})
        assert status == 400, bad
        assert body["error"]["target"] == "execCommandAndArgs"

    # Before 2025-10 the field does not exist: the command is still required.
    status, body = await _execute(local_pool, {"execCommandAndArgs": ["true"]}, "2025-02-02-preview")
    assert status == 400
    assert body["error"]["target"] == "shellCommand"


@pytest.mark.parametrize("local_pool", [{"ready_sessions": 0}], indirect=True)
async def test_exec_command_and_args_is_refused_on_a_python_pool(local_pool: LocalSessionPool) -> None:
    status, body = await _execute(local_pool, {"code": "1", "execCommandAndArgs": ["true"]})
    assert status == 400
    assert body["error"]["target"] == "execCommandAndArgs"
    assert "Shell pools" in body["error"]["message"]


@pytest.mark.parametrize("local_pool", [{"ready_sessions": 1}], indirect=True)
async def test_return_jupyter_format_is_refused_clearly_when_true_and_ignored_when_false(
    local_pool: LocalSessionPool,
) -> None:
    status, body = await _execute(local_pool, {"code": "1 + 1", "returnJupyterFormatExecutionResult": True})
    assert status == 400
    assert body["error"]["target"] == "returnJupyterFormatExecutionResult"
    assert "undocumented" in body["error"]["message"]
    status, body = await _execute(local_pool, {"code": "1 + 1", "returnJupyterFormatExecutionResult": "yes"})
    assert status == 400
    status, body = await _execute(local_pool, {"code": "1 + 1", "returnJupyterFormatExecutionResult": False})
    assert status == 200
    assert body["result"]["executionResult"] == 2
