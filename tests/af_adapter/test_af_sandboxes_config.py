"""``SandboxesConfig`` and the sandbox backend's tool contracts, without a server: what a
configuration accepts and refuses, and what the model reads about the sandbox's tools."""

from __future__ import annotations

import pytest

pytest.importorskip("agent_framework")

from pydantic import ValidationError

from autogen_aca_sessions.agent_framework import (
    BackendKind,
    DownloadFileTool,
    DynamicSessionsConfig,
    ExecuteCodeTool,
    ListFilesTool,
    RunShellTool,
    Sandboxes,
    SandboxesConfig,
    UploadFileTool,
    session_tools,
)
from autogen_aca_sessions.agent_framework._instructions import build_instructions
from autogen_aca_sessions.agent_framework._sandboxes import workspace_path
from autogen_aca_sessions.agent_framework._sessions import PathNotAllowedError
from autogen_aca_sessions.client.errors import ConfigurationError

SUB = "00000000-0000-0000-0000-000000000000"


def config(**overrides: object) -> SandboxesConfig:
    fields: dict[str, object] = {
        "endpoint": "http://127.0.0.1:1",
        "subscription_id": SUB,
        "resource_group": "rg",
        "sandbox_group": "group",
    }
    return SandboxesConfig.model_validate({**fields, **overrides})


def test_the_configuration_round_trips_through_a_dict_and_names_its_backend() -> None:
    original = config(idle_suspend_seconds=60, suspend_after_run=False, download_dir="/tmp/out")

    assert SandboxesConfig.from_dict(original.to_dict()) == original
    assert original.backend is BackendKind.SANDBOXES
    assert DynamicSessionsConfig(pool_management_endpoint="http://127.0.0.1:1/p").backend is (
        BackendKind.DYNAMIC_SESSIONS
    )


@pytest.mark.parametrize(
    "overrides",
    [
        {"unknown_field": 1},
        {"sandbox_group": ""},
        {"idle_suspend_seconds": 0},
        {"timeout_seconds": 0},
        {"functions_module": "not a module"},
    ],
    ids=["unknown-field", "empty-group", "zero-idle", "zero-timeout", "bad-module-name"],
)
def test_a_bad_configuration_is_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        config(**overrides)


def test_plain_http_to_a_remote_host_is_refused_unless_allowed() -> None:
    with pytest.raises(ConfigurationError, match="plain http"):
        Sandboxes(config(endpoint="http://sandboxes.example.com"), credential="key")
    allowed = Sandboxes(
        config(endpoint="http://sandboxes.example.com", allow_insecure_http=True), credential="key"
    )
    assert allowed.config.allow_insecure_http


def test_the_sandbox_tools_name_the_working_directory_and_what_comes_back() -> None:
    backend = Sandboxes(config(timeout_seconds=45, upload_dir="/tmp", download_dir="/tmp"), credential="key")

    tools = session_tools(backend)

    assert [type(tool) for tool in tools] == [
        ExecuteCodeTool,
        RunShellTool,
        ListFilesTool,
        UploadFileTool,
        DownloadFileTool,
    ]
    execute, shell, listing, upload, download = tools
    assert "Azure Container Apps sandbox" in execute.description
    assert "The working directory is /root/work" in execute.description
    assert "suspended between turns" in execute.description
    assert "figures do not come back as images" in execute.description
    assert "Each call may run for 45 s" in execute.description
    assert "the working directory is /root/work" in shell.description
    assert listing.description == "List the files in the sandbox's /root/work (name, size, last change)."
    assert "into the sandbox's /root/work" in upload.description
    assert download.parameters()["properties"]["name"]["description"] == (
        "File name relative to /root/work, e.g. 'chart.png'."
    )


def test_the_sandbox_instructions_offer_both_tools_and_say_state_survives_turns() -> None:
    text = build_instructions(
        config(),
        tool_names=["execute_code", "run_shell", "list_files"],
        packages=[],
        files=[],
        function_stubs=(),
    )

    assert "`execute_code` tool and shell commands with the `run_shell` tool" in text
    assert "also between turns" in text
    assert "The working directory is /root/work" in text
    assert "The sandbox's /root/work is empty." in text
    assert "File tools: `list_files`." in text


@pytest.mark.parametrize(
    ("name", "expected"),
    [("chart.png", "chart.png"), ("/root/work/out/chart.png", "out/chart.png"), ("./a/./b.txt", "a/b.txt")],
    ids=["plain", "absolute-in-work-dir", "dots"],
)
def test_workspace_paths_stay_inside_the_working_directory(name: str, expected: str) -> None:
    assert workspace_path(name) == expected


@pytest.mark.parametrize(
    "name",
    ["../etc/passwd", "/etc/passwd", "a\\b", "/root/work/../x"],
    ids=["dotdot", "abs", "backslash", "escape"],
)
def test_workspace_paths_that_leave_it_are_refused(name: str) -> None:
    with pytest.raises(PathNotAllowedError):
        workspace_path(name)
