"""The tools' JSON schemas and descriptions, the configuration's round trip, and the pure helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("agent_framework")

from autogen_aca_sessions.agent_framework import (
    DownloadFileTool,
    DynamicSessions,
    DynamicSessionsConfig,
    ExecuteCodeTool,
    FunctionSource,
    ListFilesTool,
    PathNotAllowedError,
    PoolKind,
    RunShellTool,
    UploadFileTool,
    session_tools,
)
from autogen_aca_sessions.agent_framework._functions import build_functions_module
from autogen_aca_sessions.agent_framework._results import cut
from autogen_aca_sessions.agent_framework._sessions import _split_session_path, resolve_inside
from autogen_aca_sessions.agent_framework._tools import _failure
from autogen_aca_sessions.client import ApiVersion, ExecutionTimeoutError

ENDPOINT = "http://127.0.0.1:1/subscriptions/s/resourceGroups/r/sessionPools/p"


def sessions(**overrides: object) -> DynamicSessions:
    return DynamicSessions(
        DynamicSessionsConfig(pool_management_endpoint=ENDPOINT, **overrides),  # type: ignore[arg-type]
        credential="key",
    )


def test_execute_code_tool_schema_and_description() -> None:
    tool = ExecuteCodeTool(sessions(timeout_seconds=45))

    assert tool.name == "execute_code"
    assert tool.parameters() == {
        "type": "object",
        "properties": {
            "code": {
                "type": "string",
                "description": "Python code to run in the session (it keeps state between calls).",
            }
        },
        "required": ["code"],
        "additionalProperties": False,
    }
    assert tool.description == (
        "Run Python code in a sandboxed Jupyter session (Azure Container Apps dynamic session). "
        "Variables, imports and files persist between calls in this conversation. The working "
        "directory is /mnt/data. Returns stdout, stderr, the value of the last expression, and "
        "displayed images (e.g. matplotlib figures) as images. There is no network access. "
        "Each call may run for 45 s; when it runs longer the output so far is returned and the "
        "session keeps its state."
    )
    assert tool.to_json_schema_spec() == {
        "type": "function",
        "function": {
            "name": "execute_code",
            "description": tool.description,
            "parameters": tool.parameters(),
        },
    }


def test_run_shell_tool_schema_description_and_kind() -> None:
    tool = RunShellTool(sessions(pool_kind="shell", timeout_seconds=30))

    assert tool.name == "run_shell"
    assert tool.kind == "shell"
    assert tool.parameters() == {
        "type": "object",
        "properties": {
            "command": {"type": "string", "description": "Shell command (or script) to run in the session."}
        },
        "required": ["command"],
        "additionalProperties": False,
    }
    assert tool.description == (
        "Run a shell command in a sandboxed Linux session (Azure Container Apps dynamic session). "
        "Files persist between calls in this conversation; the working directory is /mnt/data. "
        "Returns stdout, stderr and the exit code. There is no network access. "
        "Each command may run for 30 s; when it runs longer the output so far is returned."
    )


def test_file_tool_schemas_and_descriptions() -> None:
    owner = sessions(upload_dir="/tmp", download_dir="/tmp")
    upload, listing, download = UploadFileTool(owner), ListFilesTool(owner), DownloadFileTool(owner)

    assert (upload.name, listing.name, download.name) == ("upload_file", "list_files", "download_file")
    assert upload.parameters() == {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "Path of the file, relative to the upload directory."}
        },
        "required": ["path"],
        "additionalProperties": False,
    }
    assert listing.parameters() == {"type": "object", "properties": {}, "additionalProperties": False}
    assert download.parameters() == {
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "File name relative to /mnt/data, e.g. 'chart.png'."},
            "local_name": {
                "type": "string",
                "description": "Name to save it under in the download directory (default: the same name).",
            },
        },
        "required": ["name"],
        "additionalProperties": False,
    }
    assert upload.description == (
        "Copy a file from the user's upload directory into the session's /mnt/data, where code can "
        "read it. Give its path relative to the upload directory."
    )
    assert listing.description == "List the files in the session's /mnt/data (name, size, last change)."
    assert download.description == (
        "Copy a file from the session's /mnt/data to the user's download directory, e.g. a chart or a "
        "CSV the code wrote. Give its name relative to /mnt/data."
    )


def test_tools_follow_the_configured_approval_mode_except_the_read_only_listing() -> None:
    tools = session_tools(sessions(approval_mode="always_require", upload_dir="/tmp", download_dir="/tmp"))

    modes = {tool.name: tool.approval_mode for tool in tools}
    assert modes == {
        "execute_code": "always_require",
        "list_files": "never_require",
        "upload_file": "always_require",
        "download_file": "always_require",
    }


def test_tool_set_follows_pool_kind_and_configured_directories() -> None:
    assert [t.name for t in session_tools(sessions())] == ["execute_code", "list_files"]
    assert [t.name for t in session_tools(sessions(pool_kind="shell", download_dir="/tmp"))] == [
        "run_shell",
        "list_files",
        "download_file",
    ]


def test_config_round_trips_through_json_ready_dict() -> None:
    config = DynamicSessionsConfig(
        pool_management_endpoint=ENDPOINT,
        api_version=ApiVersion.V2024_08_02_PREVIEW,
        pool_kind=PoolKind.SHELL,
        timeout_seconds=5,
        approval_mode="always_require",
        session_identifier="mine",
        upload_dir="/data/in",
    )

    data = config.to_dict()

    assert data["api_version"] == "2024-08-02-preview"
    assert data["pool_kind"] == "shell"
    assert DynamicSessionsConfig.from_dict(data) == config


@pytest.mark.parametrize(
    "bad",
    [
        {"functions_module": "not a module"},
        {"timeout_seconds": 0},
        {"approval_mode": "sometimes"},
        {"session_identifier": ""},
        {"unknown_option": 1},
    ],
)
def test_config_refuses_bad_values(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - pydantic's ValidationError is a ValueError
        DynamicSessionsConfig(pool_management_endpoint=ENDPOINT, **bad)  # type: ignore[arg-type]


def test_shell_pool_refuses_injected_functions() -> None:
    def f() -> int:
        return 1

    with pytest.raises(ValueError, match="Python pool"):
        DynamicSessions(
            DynamicSessionsConfig(pool_management_endpoint=ENDPOINT, pool_kind="shell"),  # type: ignore[arg-type]
            credential="k",
            functions=[f],
        )


def test_functions_module_dedents_nested_functions_and_builds_stubs() -> None:
    def scale(values: list[float], factor: float = 2.0) -> list[float]:
        """Multiply every value."""
        return [v * factor for v in values]

    module = build_functions_module(
        [scale, FunctionSource("def hyp(a, b):\n    return math.hypot(a, b)\n", imports=("import math",))]
    )

    assert module.names == ("scale", "hyp")
    assert module.stubs[0] == (
        'def scale(values: list[float], factor: float = 2.0) -> list[float]:\n    """Multiply every value."""'
    )
    namespace: dict[str, object] = {}
    exec(compile(module.source, "<functions>", "exec"), namespace)
    assert namespace["scale"]([1.0, 2.0]) == [2.0, 4.0]  # type: ignore[operator]
    assert namespace["hyp"](3, 4) == 5.0  # type: ignore[operator]


def test_functions_module_refuses_lambdas_and_duplicates() -> None:
    with pytest.raises(ValueError, match="no top-level 'def'"):
        build_functions_module([FunctionSource("x = lambda: 1")])
    with pytest.raises(ValueError, match="Two injected functions"):
        build_functions_module([FunctionSource("def a(): pass"), FunctionSource("def a(): return 1")])


def test_local_paths_outside_the_allowed_directory_are_refused(tmp_path: Path) -> None:
    (tmp_path / "inside.txt").write_text("x")
    outside = tmp_path.parent / "outside-link-target"
    (tmp_path / "link").symlink_to(outside)

    assert resolve_inside(tmp_path, "inside.txt") == (tmp_path / "inside.txt").resolve()
    for escape in ("../x", "/etc/passwd", "sub/../../x", "link/secret", "."):
        with pytest.raises(PathNotAllowedError):
            resolve_inside(tmp_path, escape)


def test_session_paths_stay_in_mnt_data() -> None:
    assert _split_session_path("chart.png") == (None, "chart.png")
    assert _split_session_path("/mnt/data/out/chart.png") == ("out", "chart.png")
    for escape in ("../etc/passwd", "/etc/passwd", "a/../../b", "a\\b"):
        with pytest.raises(PathNotAllowedError):
            _split_session_path(escape)


def test_cut_keeps_start_and_end_and_says_how_much_is_missing() -> None:
    text = "A" * 50 + "B" * 100 + "C" * 50

    result = cut(text, 100)

    assert result.startswith("A" * 50)
    assert result.endswith("C" * 50)
    assert "[... 100 characters cut ...]" in result
    assert cut("short", 100) == "short"


def test_an_http_wait_that_runs_out_is_reported_with_what_to_do() -> None:
    contents = _failure(ExecutionTimeoutError("s1", 60, 70.5))

    assert "No answer from the session within 70.5 s (limit 60 s)" in "\n".join(
        c.text or "" for c in contents if c.type == "text"
    )
    assert [c.error_code for c in contents if c.type == "error"] == ["Timeout"]


def test_the_adapter_imports_neither_autogen_nor_the_executor_nor_the_local_server() -> None:
    import subprocess
    import sys

    probe = (
        "import sys, autogen_aca_sessions.agent_framework, autogen_aca_sessions.agent_framework.testing\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('autogen_core', 'autogen_agentchat', "
        "'autogen_ext') or m.startswith(('autogen_aca_sessions.executor', 'autogen_aca_sessions.local')))\n"
        "print(bad)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "[]"
