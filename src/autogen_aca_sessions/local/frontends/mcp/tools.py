"""The MCP tools of a pool: launch an environment, run Python or a shell command in it.

Names and argument names are Azure's (``launchShell``, the older ``launchPythonEnvironment``,
``runPythonCodeInRemoteEnvironment {environmentId, pythonCode}``,
``runShellCommandInRemoteEnvironment {environmentId, shellCommand | execCommandAndArgs}``). The
sources quote no schema, description or result body: the ones here are ours (README "MCP").
Every result carries ``content`` (text a model reads, plus images) and ``structuredContent``
(the same facts as fields); a failed run sets ``isError``. Commands run in the pool's sessions
directly, with the pool's time limit and the data plane's default output cap.
"""

from __future__ import annotations

import base64
import json
import shlex
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import mcp_types as mt

from ...runtime.outcome import NO_RESULT, CodeOutput, Outcome, SessionLimitReached, ShellOutput
from ...runtime.protocol import SessionLike, SessionManagerLike
from .environments import EnvironmentGone, EnvironmentRegistry, TooManyEnvironments

__all__ = [
    "LAUNCH_TOOLS",
    "MCP_OUTPUT_MAX_CHARS",
    "TOOLS",
    "TOOL_TABLE",
    "ToolContext",
    "ToolEntry",
    "ToolError",
    "call_tool",
]

MCP_OUTPUT_MAX_CHARS = 4096
"""stdout and stderr are each cut to this many characters: the data plane's default
``outputStreamsMaxLength``, which is what a call to the service gets unless it asks for more."""

LAUNCH_TOOLS = ("launchShell", "launchPythonEnvironment")
"""The launch tool's current name and the older one (both served)."""

_ENV_ID_SCHEMA = {
    "type": "string",
    "minLength": 1,
    "description": "The environmentId returned by launchShell.",
}

_LAUNCH_OUTPUT = {
    "type": "object",
    "properties": {"environmentId": {"type": "string", "description": "Pass this to the run tools."}},
    "required": ["environmentId"],
}

_PYTHON_OUTPUT = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["Succeeded", "Failed", "TimedOut"]},
        "stdout": {"type": "string"},
        "stderr": {"type": "string"},
        "executionResult": {"description": "The value of the last expression (JSON), '' when none."},
        "exitCode": {
            "type": "integer",
            "description": "0 on success, 1 on failure (Shell pools: python3's).",
        },
        "imageCount": {"type": "integer", "description": "Images shown, sent as image content."},
        "error": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "message": {"type": "string"}},
        },
        "stateLost": {"type": "boolean", "description": "Variables from earlier calls are gone."},
        "executionTimeInMilliseconds": {"type": "integer"},
    },
    "required": ["status", "stdout", "stderr", "exitCode"],
}

_SHELL_OUTPUT = {
    "type": "object",
    "properties": {
        "stdout": {"type": "string"},
        "stderr": {"type": "string"},
        "exitCode": {"type": "integer", "description": "The command's exit status; 124 when timed out."},
        "timedOut": {"type": "boolean"},
        "executionTimeInMilliseconds": {"type": "integer"},
    },
    "required": ["stdout", "stderr", "exitCode"],
}

_LAUNCH_DESCRIPTION = (
    "Create a new, empty sandboxed environment (a Linux session with Python and a shell, no network "
    "unless the pool allows it) and return its environmentId. Call this once, then pass the id to "
    "runPythonCodeInRemoteEnvironment or runShellCommandInRemoteEnvironment; files and Python variables "
    "persist between calls with the same id. An environment expires after a period without calls; "
    "when a run tool says the environment does not exist, launch a new one."
)

_LAUNCH_SHELL = mt.Tool(
    name="launchShell",
    title="Launch a sandboxed environment",
    description=_LAUNCH_DESCRIPTION,
    input_schema={"type": "object", "properties": {}, "additionalProperties": False},
    output_schema=_LAUNCH_OUTPUT,
    annotations=mt.ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False),
)

_LAUNCH_PYTHON_ENVIRONMENT = mt.Tool(
    name="launchPythonEnvironment",
    title="Launch a sandboxed Python environment",
    description=_LAUNCH_DESCRIPTION + " (Older name of launchShell; same tool.)",
    input_schema={"type": "object", "properties": {}, "additionalProperties": False},
    output_schema=_LAUNCH_OUTPUT,
    annotations=mt.ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False),
)

_RUN_PYTHON = mt.Tool(
    name="runPythonCodeInRemoteEnvironment",
    title="Run Python in the environment",
    description=(
        "Run Python code in the environment, like a Jupyter cell: variables, imports and files persist "
        "between calls with the same environmentId. The working directory is /mnt/data. Returns stdout, "
        "stderr, and the value of the last expression; figures shown with matplotlib come back as "
        "images. An exception returns an error with its traceback. NumPy, pandas and matplotlib are "
        "installed. Long-running code is stopped at the pool's time limit, keeping the output so far."
    ),
    input_schema={
        "type": "object",
        "properties": {
            "environmentId": _ENV_ID_SCHEMA,
            "pythonCode": {"type": "string", "description": "The Python source to run."},
        },
        "required": ["environmentId", "pythonCode"],
        "additionalProperties": False,
    },
    output_schema=_PYTHON_OUTPUT,
    annotations=mt.ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=False),
)

_RUN_SHELL = mt.Tool(
    name="runShellCommandInRemoteEnvironment",
    title="Run a shell command in the environment",
    description=(
        "Run a command in the environment's bash shell (working directory /mnt/data) and return its "
        "stdout, stderr and exit code. Give exactly one of shellCommand (a command line, with pipes "
        "and quoting as in bash) or execCommandAndArgs (the program and its arguments as a list, run "
        "without shell parsing: use it when arguments contain quotes or spaces). Files persist between "
        "calls with the same environmentId; the command is killed at the pool's time limit."
    ),
    input_schema={
        "type": "object",
        "properties": {
            "environmentId": _ENV_ID_SCHEMA,
            "shellCommand": {"type": "string", "description": "A bash command line."},
            "execCommandAndArgs": {
                "type": "array",
                "items": {"type": "string"},
                "minItems": 1,
                "description": 'Program and arguments, e.g. ["python3", "-c", "print(1+1)"].',
            },
        },
        "required": ["environmentId"],
        "additionalProperties": False,
    },
    output_schema=_SHELL_OUTPUT,
    annotations=mt.ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=False),
)


class ToolError(Exception):
    """A tool call that cannot run; answered as a result with ``isError`` so the model can fix it."""


@dataclass
class ToolContext:
    """What a tool call needs from its pool."""

    manager: SessionManagerLike
    """The pool's sessions."""
    environments: EnvironmentRegistry
    """Launched environments."""
    shell_pool: bool
    """Whether the pool is a Shell pool (Python then runs as a ``python3`` process: no state kept)."""
    max_execution_seconds: float
    """The pool's time limit for one run."""
    output_max_chars: int = MCP_OUTPUT_MAX_CHARS
    """Cap of stdout and of stderr."""


def known_tool(name: str) -> bool:
    """Whether ``name`` is one of :data:`TOOLS`."""
    return name in TOOL_TABLE


async def call_tool(ctx: ToolContext, name: str, arguments: dict[str, Any]) -> mt.CallToolResult:
    """Run tool ``name`` (``KeyError`` when unknown); refusals the model can fix come back as
    ``isError`` results."""
    entry = TOOL_TABLE[name]
    try:
        return await entry.run(ctx, arguments)
    except ToolError as exc:
        return _error_result(str(exc))


# --------------------------------------------------------------------------------- runs


async def _launch_tool(ctx: ToolContext, arguments: dict[str, Any]) -> mt.CallToolResult:
    _no_extra(arguments, ())
    return _launch(ctx)


async def _run_python_tool(ctx: ToolContext, arguments: dict[str, Any]) -> mt.CallToolResult:
    _no_extra(arguments, ("environmentId", "pythonCode"))
    environment_id = _string_arg(arguments, "environmentId")
    code = _string_arg(arguments, "pythonCode", allow_empty=True)
    return await _run_python(ctx, environment_id, code)


async def _run_shell_tool(ctx: ToolContext, arguments: dict[str, Any]) -> mt.CallToolResult:
    _no_extra(arguments, ("environmentId", "shellCommand", "execCommandAndArgs"))
    environment_id = _string_arg(arguments, "environmentId")
    return await _run_shell(ctx, environment_id, _shell_command(arguments))


ToolRun = Callable[[ToolContext, dict[str, Any]], Awaitable[mt.CallToolResult]]
"""Checks a tool's arguments and runs it."""


@dataclass(frozen=True)
class ToolEntry:
    """One tool: what ``tools/list`` shows of it, and what ``tools/call`` runs."""

    tool: mt.Tool
    """Its name, description and input and output schemas."""
    run: ToolRun
    """Its run."""


TOOL_TABLE: Mapping[str, ToolEntry] = {
    entry.tool.name: entry
    for entry in (
        ToolEntry(_LAUNCH_SHELL, _launch_tool),
        ToolEntry(_LAUNCH_PYTHON_ENVIRONMENT, _launch_tool),
        ToolEntry(_RUN_PYTHON, _run_python_tool),
        ToolEntry(_RUN_SHELL, _run_shell_tool),
    )
}
"""Every tool by name, in ``tools/list`` order."""

TOOLS: tuple[mt.Tool, ...] = tuple(entry.tool for entry in TOOL_TABLE.values())
"""Every tool, in ``tools/list`` order."""


# --------------------------------------------------------------------------------- arguments


def _no_extra(arguments: dict[str, Any], allowed: Sequence[str]) -> None:
    extra = sorted(set(arguments) - set(allowed))
    if extra:
        expected = ", ".join(allowed) if allowed else "no arguments"
        raise ToolError(f"Unknown argument(s) {', '.join(extra)}; this tool takes {expected}.")


def _string_arg(arguments: dict[str, Any], name: str, *, allow_empty: bool = False) -> str:
    value = arguments.get(name)
    if value is None:
        raise ToolError(f"'{name}' is required.")
    if not isinstance(value, str):
        raise ToolError(f"'{name}' must be a string, not {_json_type(value)}.")
    if not allow_empty and not value.strip():
        raise ToolError(f"'{name}' must not be empty.")
    if "\x00" in value:
        raise ToolError(f"'{name}' must not contain NUL characters.")
    return value


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "a string"


def _shell_command(arguments: dict[str, Any]) -> str:
    """The bash command line to run: ``shellCommand``, or ``execCommandAndArgs`` quoted word by word."""
    has_command = arguments.get("shellCommand") is not None
    has_argv = arguments.get("execCommandAndArgs") is not None
    if has_command == has_argv:
        raise ToolError(
            "Give exactly one of 'shellCommand' (a command line) or 'execCommandAndArgs' (a list of "
            + ("strings), not both." if has_command else "strings); neither was given.")
        )
    if has_command:
        return _string_arg(arguments, "shellCommand")
    argv = arguments["execCommandAndArgs"]
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise ToolError("'execCommandAndArgs' must be a non-empty array of strings.")
    if any("\x00" in a for a in argv):
        raise ToolError("'execCommandAndArgs' must not contain NUL characters.")
    # Each word single-quoted: bash runs the program with exactly these arguments.
    return "exec " + shlex.join(argv)


# --------------------------------------------------------------------------------- tools


def _launch(ctx: ToolContext) -> mt.CallToolResult:
    try:
        environment_id = ctx.environments.launch()
    except TooManyEnvironments as exc:
        raise ToolError(str(exc)) from None
    text = (
        f"Launched environment {environment_id}. Pass environmentId={environment_id!r} to "
        "runPythonCodeInRemoteEnvironment or runShellCommandInRemoteEnvironment."
    )
    return mt.CallToolResult(
        content=[mt.TextContent(type="text", text=text)],
        structured_content={"environmentId": environment_id},
        is_error=False,
    )


async def _session(ctx: ToolContext, environment_id: str) -> SessionLike:
    gone = ToolError(
        f"The environment '{environment_id}' does not exist: it expired after a period without calls, was "
        "deleted, or was never launched on this pool. Call launchShell to get a new environmentId and "
        "run the command again there (files and variables of the old one are gone)."
    )
    try:
        ctx.environments.check(environment_id)
    except EnvironmentGone:
        raise gone from None
    session: SessionLike | None = ctx.manager.get(environment_id)
    if session is None:
        if ctx.environments.is_allocated(environment_id):
            raise gone  # reaped between the check and now
        try:
            session = await ctx.manager.get_or_create(environment_id)
        except SessionLimitReached as exc:
            raise ToolError(f"{exc} Try again later.") from None
    ctx.environments.mark_used(environment_id)
    session.touch()
    return session


async def _run_python(ctx: ToolContext, environment_id: str, code: str) -> mt.CallToolResult:
    session = await _session(ctx, environment_id)
    if ctx.shell_pool:
        # A Shell pool has no kernel: the code runs as a python3 process (no state between calls).
        out = await session.run_shell(
            "exec " + shlex.join(["python3", "-c", code]),
            timeout=ctx.max_execution_seconds,
            max_output_chars=ctx.output_max_chars,
        )
        ctx.environments.mark_used(environment_id)
        return _python_from_shell(out)
    result = await session.execute(
        code, timeout=ctx.max_execution_seconds, max_output_chars=ctx.output_max_chars
    )
    ctx.environments.mark_used(environment_id)
    return _python_result(result)


async def _run_shell(ctx: ToolContext, environment_id: str, command: str) -> mt.CallToolResult:
    session = await _session(ctx, environment_id)
    out = await session.run_shell(
        command, timeout=ctx.max_execution_seconds, max_output_chars=ctx.output_max_chars
    )
    ctx.environments.mark_used(environment_id)
    structured: dict[str, Any] = {
        "stdout": out.stdout,
        "stderr": out.stderr,
        "exitCode": out.exit_code,
        "timedOut": out.timed_out,
        "executionTimeInMilliseconds": out.duration_ms,
    }
    lines = [f"exit code: {out.exit_code}" + (" (timed out and killed)" if out.timed_out else "")]
    lines += _stream_text("stdout", out.stdout, out.stdout_length)
    lines += _stream_text("stderr", out.stderr, out.stderr_length)
    return mt.CallToolResult(
        content=[mt.TextContent(type="text", text="\n".join(lines))],
        structured_content=structured,
        is_error=out.timed_out,
    )


# --------------------------------------------------------------------------------- results


def _stream_text(name: str, text: str, total: int) -> list[str]:
    if not text and total == 0:
        return []
    note = f" (cut at {len(text)} of {total} characters)" if total > len(text) else ""
    return [f"{name}{note}:", text.rstrip("\n")]


def _python_result(out: CodeOutput) -> mt.CallToolResult:
    succeeded = out.outcome is Outcome.SUCCEEDED
    timed_out = out.outcome in (Outcome.TIMED_OUT_INTERRUPTED, Outcome.TIMED_OUT_RESTARTED)
    status = "Succeeded" if succeeded else "TimedOut" if timed_out else "Failed"
    value: Any = "" if out.result is NO_RESULT or not succeeded else out.result
    structured: dict[str, Any] = {
        "status": status,
        "stdout": out.stdout,
        "stderr": out.stderr,
        "executionResult": value,
        "exitCode": 0 if succeeded else 1,
        "imageCount": len(out.images) if succeeded else 0,
        "stateLost": out.state_lost,
        "executionTimeInMilliseconds": out.duration_ms,
    }
    lines: list[str] = []
    if not succeeded:
        name = out.error_name or ("ExecutionTimeout" if timed_out else "ExecutionFailed")
        message = out.error_value or out.message or ""
        structured["error"] = {"name": name, "message": message}
        lines.append(f"error: {name}: {message}".rstrip(": "))
    if out.state_lost:
        lines.append("note: the Python process was restarted; variables from earlier calls are gone.")
    lines += _stream_text("stdout", out.stdout, out.stdout_length)
    lines += _stream_text("stderr", out.stderr, out.stderr_length)
    if succeeded and value != "":
        lines.append("result: " + (value if isinstance(value, str) else json.dumps(value)))
    content: list[mt.TextContent | mt.ImageContent] = []
    if succeeded:
        for image in out.images:
            content.append(
                mt.ImageContent(
                    type="image",
                    data=base64.b64encode(image.data).decode("ascii"),
                    mime_type=_mime(image.format),
                )
            )
        if out.images:
            lines.append(f"images: {len(out.images)} (sent as image content)")
    if not lines:
        lines.append("(no output)")
    content.insert(0, mt.TextContent(type="text", text="\n".join(lines)))
    return mt.CallToolResult(content=list(content), structured_content=structured, is_error=not succeeded)


def _python_from_shell(out: ShellOutput) -> mt.CallToolResult:
    succeeded = out.exit_code == 0 and not out.timed_out
    structured: dict[str, Any] = {
        "status": "Succeeded" if succeeded else "TimedOut" if out.timed_out else "Failed",
        "stdout": out.stdout,
        "stderr": out.stderr,
        "executionResult": "",
        "exitCode": out.exit_code,
        "imageCount": 0,
        "stateLost": False,
        "executionTimeInMilliseconds": out.duration_ms,
    }
    lines = [] if succeeded else [f"error: python3 exited with {out.exit_code}"]
    lines += _stream_text("stdout", out.stdout, out.stdout_length)
    lines += _stream_text("stderr", out.stderr, out.stderr_length)
    return mt.CallToolResult(
        content=[mt.TextContent(type="text", text="\n".join(lines) or "(no output)")],
        structured_content=structured,
        is_error=not succeeded,
    )


def _mime(fmt: str) -> str:
    return {"png": "image/png", "jpeg": "image/jpeg", "jpg": "image/jpeg", "svg": "image/svg+xml"}.get(
        fmt.lower(), f"image/{fmt.lower()}"
    )


def _error_result(message: str) -> mt.CallToolResult:
    return mt.CallToolResult(
        content=[mt.TextContent(type="text", text=message)],
        structured_content={"error": message},
        is_error=True,
    )
