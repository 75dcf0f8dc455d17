"""``McpConnection``: a pool's MCP endpoint and key in the forms clients take."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from autogen_aca_sessions import McpConnection

AZURE = "https://eastus.dynamicsessions.io/subscriptions/s/resourceGroups/rg/sessionPools/p"


def test_an_azure_pool_endpoint_gets_the_mcp_path_and_the_key_header() -> None:
    conn = McpConnection.for_endpoint(AZURE + "/", "k3y")
    assert conn.url == AZURE + "/mcp"
    assert conn.headers == {"x-ms-apikey": "k3y"}


def test_a_local_pool_is_read_through_its_mcp_properties() -> None:
    @dataclass
    class FakePool:
        mcp_endpoint: str = "http://127.0.0.1:1/mcp"
        mcp_api_key: str = "abc"

    conn = McpConnection.from_pool(FakePool(), name="local")
    assert (conn.url, conn.api_key, conn.name) == ("http://127.0.0.1:1/mcp", "abc", "local")


def test_the_client_forms_carry_url_and_key() -> None:
    conn = McpConnection.for_endpoint(AZURE, "k3y")
    assert json.loads(conn.vscode_mcp_json()) == {
        "servers": {
            "aca-sessions": {"type": "http", "url": AZURE + "/mcp", "headers": {"x-ms-apikey": "k3y"}}
        }
    }
    assert conn.autogen_server_params() == {
        "url": AZURE + "/mcp",
        "headers": {"x-ms-apikey": "k3y"},
        "timeout": 240.0,
    }
    assert conn.agent_framework_tool_kwargs() == {
        "name": "aca-sessions",
        "url": AZURE + "/mcp",
        "static_headers": {"x-ms-apikey": "k3y"},
        "load_prompts": False,
    }


@pytest.mark.parametrize(
    ("url", "key"), [("ftp://x/mcp", "k"), ("http://x/mcp", ""), ("http://x/mcp", "a\nb")]
)
def test_bad_urls_and_keys_are_refused(url: str, key: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        McpConnection(url, key)
