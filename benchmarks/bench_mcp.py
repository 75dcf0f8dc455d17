"""The pool's MCP server: what a tool call costs over the data plane's own execute.

Measured round-robin in one loop on one pool, so both paths see the same machine load:
- a bare HTTP POST of the data plane's execute request (the baseline; ``warm`` shows its cost
  over a raw kernel);
- a bare HTTP POST of ``tools/call runPythonCodeInRemoteEnvironment`` with the same block, in an
  environment whose session already exists: JSON-RPC parsing, the environment check, the
  tool result with its text and ``structuredContent``.
Also the first call of a new environment (``launchShell`` then one run: the lazy allocation
takes a ready kernel).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from harness import TRIVIAL_BLOCK, Config, Row, dist_row, log, open_pool, pool_available, ratio, wait_ready

NAME = "mcp"
DESCRIPTION = "MCP tools/call of a trivial block vs the data plane's execute (bare HTTP both)"
WARMUP = 10
TARGET_RATIO = 1.1


async def _post(http: Any, url: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    async with http.post(url, data=body, headers=headers) as response:
        payload = await response.read()
        if response.status >= 300:
            raise RuntimeError(f"POST got {response.status}: {payload[:200]!r}")
    answer: dict[str, Any] = json.loads(payload)
    return answer


def _tool_body(name: str, arguments: dict[str, Any]) -> bytes:
    return json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}}
    ).encode()


async def run(cfg: Config) -> list[Row]:
    why = pool_available()
    if why is not None:
        return [Row(benchmark=NAME, figure="all figures", note=f"skipped: {why}")]
    import aiohttp

    count = cfg.n(200, 20)
    firsts = cfg.n(10, 3)
    samples: dict[str, list[float]] = {"http": [], "mcp": [], "first": []}
    async with open_pool(ready_sessions=2, max_concurrent_sessions=8 + firsts, mcp=True) as pool:
        mcp_headers = {"x-ms-apikey": pool.mcp_api_key, "Content-Type": "application/json"}
        plane_headers = {"Authorization": f"Bearer {pool.api_key}", "Content-Type": "application/json"}
        async with aiohttp.ClientSession() as http:
            launched = await _post(http, pool.mcp_endpoint, mcp_headers, _tool_body("launchShell", {}))
            environment_id = launched["result"]["structuredContent"]["environmentId"]
            tool_body = _tool_body(
                "runPythonCodeInRemoteEnvironment",
                {"environmentId": environment_id, "pythonCode": TRIVIAL_BLOCK},
            )
            plane_url = f"{pool.endpoint}/executions?api-version=2025-10-02-preview&identifier={uuid.uuid4()}"
            plane_body = json.dumps(
                {"codeInputType": "Inline", "executionType": "Synchronous", "code": TRIVIAL_BLOCK}
            ).encode()

            async def one_http() -> None:
                await _post(http, plane_url, plane_headers, plane_body)

            async def one_mcp() -> None:
                answer = await _post(http, pool.mcp_endpoint, mcp_headers, tool_body)
                if answer["result"]["isError"]:
                    raise RuntimeError(str(answer)[:300])

            paths = {"http": one_http, "mcp": one_mcp}
            for fn in paths.values():
                for _ in range(WARMUP):
                    await fn()
            log(cfg, f"mcp: {count} rounds of data-plane execute / MCP tools/call")
            for i in range(count):
                names = list(paths) if i % 2 == 0 else list(reversed(paths))
                for name in names:
                    start = time.perf_counter()
                    await paths[name]()
                    samples[name].append(time.perf_counter() - start)

            log(cfg, f"mcp: {firsts} new environments (launch + first run)")
            for _ in range(firsts):
                await wait_ready(pool, 1)
                start = time.perf_counter()
                fresh = await _post(http, pool.mcp_endpoint, mcp_headers, _tool_body("launchShell", {}))
                fresh_id = fresh["result"]["structuredContent"]["environmentId"]
                body = _tool_body(
                    "runPythonCodeInRemoteEnvironment",
                    {"environmentId": fresh_id, "pythonCode": TRIVIAL_BLOCK},
                )
                answer = await _post(http, pool.mcp_endpoint, mcp_headers, body)
                samples["first"].append(time.perf_counter() - start)
                if answer["result"]["isError"]:
                    raise RuntimeError(str(answer)[:300])
                await pool.manager.delete(fresh_id)

    http_p50 = dist_row(NAME, "", samples["http"]).p50
    mcp_row = dist_row(NAME, "MCP tools/call runPythonCodeInRemoteEnvironment (warm)", samples["mcp"])
    return [
        dist_row(NAME, "baseline: data-plane POST /executions (warm, bare HTTP)", samples["http"]),
        dist_row(
            NAME,
            "MCP tools/call runPythonCodeInRemoteEnvironment (warm, bare HTTP)",
            samples["mcp"],
            baseline="data-plane execute",
            baseline_value=http_p50,
            ratio=ratio(mcp_row.p50, http_p50),
            target=f"p50 <= {TARGET_RATIO}x data plane",
            met=mcp_row.p50 is not None and http_p50 is not None and mcp_row.p50 <= TARGET_RATIO * http_p50,
        ),
        dist_row(NAME, "MCP launchShell + first run (session taken from the ready pool)", samples["first"]),
    ]
