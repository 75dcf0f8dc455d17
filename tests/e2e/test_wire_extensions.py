"""The result fields Azure does not send (``stdoutTruncated``, ``stderrTruncated``, ``images``
after the first) are an opt-in pool option; the client and the executor give the same results
with and without them."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from autogen_core import CancellationToken
from autogen_core.code_executor import CodeBlock

from autogen_aca_sessions.client import ApiVersion, ExecutionResult, SessionsClient
from autogen_aca_sessions.executor import ACADynamicSessionsCodeExecutor, ACADynamicSessionsCodeResult
from autogen_aca_sessions.local import LocalSessionPool

pytestmark = pytest.mark.asyncio(loop_scope="module")

NEWEST = ApiVersion.V2025_10_02_PREVIEW.value
LEGACY = ApiVersion.V2024_02_02_PREVIEW.value
EXTENSION_KEYS = {"stdoutTruncated", "stderrTruncated", "images"}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pools() -> AsyncIterator[dict[str, LocalSessionPool]]:
    """An exact pool (the default) and one with the extensions on."""
    async with (
        LocalSessionPool(ready_sessions=1) as exact,
        LocalSessionPool(ready_sessions=1, wire_extensions=True) as extended,
    ):
        yield {"exact": exact, "extended": extended}


TWO_FIGURES = "import matplotlib.pyplot as plt\nplt.plot([1, 2]); plt.show()\nplt.plot([2, 1]); plt.show()"
LONG = "import sys\nprint('o' * 5000, end='')\nsys.stderr.write('e' * 5000)"


async def _raw(pool: LocalSessionPool, version: str, code: str) -> dict[str, Any]:
    url = pool.endpoint + ("/executions" if version == NEWEST else "/code/execute")
    body: dict[str, Any] = {"code": code, "codeInputType": "Inline", "executionType": "Synchronous"}
    if version == LEGACY:
        body = {"properties": body}
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {pool.api_key}"}) as http,
        http.post(url, params={"api-version": version, "identifier": str(uuid.uuid4())}, json=body) as resp,
    ):
        assert resp.status == 200
        answer: dict[str, Any] = await resp.json()
    return answer["result"] if version == NEWEST else answer["properties"]


@pytest.mark.parametrize("version", [NEWEST, LEGACY])
async def test_the_extensions_are_sent_only_by_a_pool_that_enables_them(
    pools: dict[str, LocalSessionPool], version: str
) -> None:
    for code in (LONG if version == NEWEST else "print('x' * 11_000_000, end='')", TWO_FIGURES):
        exact = await _raw(pools["exact"], version, code)
        extended = await _raw(pools["extended"], version, code)
        assert not EXTENSION_KEYS & set(exact), exact.keys()
        assert EXTENSION_KEYS & set(extended), extended.keys()
        assert exact["stdout"] == extended["stdout"]


async def _client_result(pool: LocalSessionPool, code: str, **options: Any) -> ExecutionResult:
    async with SessionsClient(pool.endpoint, pool.async_credential, api_version=NEWEST, **options) as client:
        identifier = str(uuid.uuid4())
        try:
            return await client.execute(identifier, code)
        finally:
            await client.delete_session(identifier)


def _comparable(result: ExecutionResult) -> dict[str, Any]:
    return {
        "status": result.status,
        "stdout": result.stdout,
        "stderr": result.stderr,
        "result": result.result,
        "stdout_truncated": result.stdout_truncated,
        "stderr_truncated": result.stderr_truncated,
        "first_image": result.images[0].data[:8] if result.images else None,
    }


@pytest.mark.parametrize(
    ("code", "options"),
    [
        (LONG, {}),
        (LONG, {"max_output_chars": 100}),
        ("print('short')", {}),
        ("'x' * 4096", {}),
        ("import matplotlib.pyplot as plt\nplt.plot([1, 2]); plt.show()", {}),
        ("1/0", {}),
    ],
)
async def test_the_client_gives_the_same_result_with_and_without_the_extensions(
    pools: dict[str, LocalSessionPool], code: str, options: dict[str, Any]
) -> None:
    exact = await _client_result(pools["exact"], code, **options)
    extended = await _client_result(pools["extended"], code, **options)
    assert _comparable(exact) == _comparable(extended)
    if code == LONG and options:
        assert exact.stdout_truncated
        assert exact.stderr_truncated


async def test_only_the_extension_carries_figures_after_the_first(pools: dict[str, LocalSessionPool]) -> None:
    exact = await _client_result(pools["exact"], TWO_FIGURES)
    extended = await _client_result(pools["extended"], TWO_FIGURES)
    # As on Azure: the result holds the first figure only.
    assert len(exact.images) == 1
    assert len(extended.images) == 2
    assert exact.images[0].data == extended.images[0].data


async def _executor_result(
    pool: LocalSessionPool, tmp_path: Path, language: str, code: str, **options: Any
) -> ACADynamicSessionsCodeResult:
    async with ACADynamicSessionsCodeExecutor(
        pool.endpoint, pool.credential, api_version=NEWEST, work_dir=tmp_path, **options
    ) as executor:
        return await executor.execute_code_blocks(
            [CodeBlock(code=code, language=language)], CancellationToken()
        )


def _executor_comparable(result: ACADynamicSessionsCodeResult) -> dict[str, Any]:
    output = re.sub(r"Saved image to \S+", "Saved image to <path>", result.output)
    return {
        "exit_code": result.exit_code,
        "output": output,
        "stdout_truncated": result.stdout_truncated,
        "stderr_truncated": result.stderr_truncated,
        "output_truncated": result.output_truncated,
        "images": len(result.image_paths),
    }


@pytest.mark.parametrize(
    ("language", "code", "options"),
    [
        ("python", LONG, {}),
        ("python", LONG, {"max_output_chars": 200}),
        ("python", "print('ok')", {}),
        ("python", "import matplotlib.pyplot as plt\nplt.plot([1, 2]); plt.show()", {}),
        ("sh", "yes | head -c 9000", {}),
    ],
)
async def test_the_executor_gives_the_same_result_with_and_without_the_extensions(
    pools: dict[str, LocalSessionPool], tmp_path: Path, language: str, code: str, options: dict[str, Any]
) -> None:
    exact = await _executor_result(pools["exact"], tmp_path / "exact", language, code, **options)
    extended = await _executor_result(pools["extended"], tmp_path / "extended", language, code, **options)
    assert _executor_comparable(exact) == _executor_comparable(extended)
    if code == LONG and options:
        assert exact.stdout_truncated
