"""``aca-sessions serve --mcp``: prints the MCP endpoint, its own key and a VS Code mcp.json that work."""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).parents[1] / "e2e"))
from test_cli import start_serve, stop_serve


def _vscode_json(banner: str) -> dict[str, object]:
    lines = banner.splitlines()
    start = next(i for i, line in enumerate(lines) if "VS Code (.vscode/mcp.json):" in line) + 1
    end = next(i for i in range(start, len(lines)) if lines[i] == "    }")
    parsed: dict[str, object] = json.loads("\n".join(lines[start : end + 1]))
    return parsed


async def test_serve_mcp_prints_a_working_endpoint_key_and_vscode_config() -> None:
    served = start_serve("--mcp", "--ready-sessions", "0")
    try:
        endpoint = re.search(r"export ACA_SESSIONS_MCP_ENDPOINT=(\S+)", served.banner)
        key = re.search(r"export ACA_SESSIONS_MCP_API_KEY=(\S+)", served.banner)
        assert endpoint is not None
        assert key is not None
        url, mcp_key = shlex.split(endpoint.group(1))[0], shlex.split(key.group(1))[0]
        assert url == served.endpoint + "/mcp"
        assert mcp_key != served.api_key
        assert f"MCP API key:  {mcp_key}" in served.banner
        config = _vscode_json(served.banner)
        assert config == {
            "servers": {"aca-sessions": {"type": "http", "url": url, "headers": {"x-ms-apikey": mcp_key}}}
        }
        async with aiohttp.ClientSession() as http:
            async with http.post(
                url,
                json={"jsonrpc": "2.0", "id": "1", "method": "initialize"},
                headers={"x-ms-apikey": mcp_key},
            ) as resp:
                assert resp.status == 200
                assert (await resp.json())["result"]["protocolVersion"] == "2025-03-26"
            async with http.post(
                url,
                json={"jsonrpc": "2.0", "id": "1", "method": "ping"},
                headers={"x-ms-apikey": served.api_key},
            ) as resp:
                assert resp.status == 401
    finally:
        stop_serve(served)


def test_serve_without_mcp_prints_no_mcp_section() -> None:
    served = start_serve("--ready-sessions", "0")
    try:
        assert "MCP" not in served.banner
    finally:
        stop_serve(served)
