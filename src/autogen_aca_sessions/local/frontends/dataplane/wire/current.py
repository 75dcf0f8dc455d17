"""The current contract: api-versions 2024-10-02-preview, 2025-02-02-preview, 2025-10-02-preview.

Flat JSON without ``properties`` or ``$id``: ``POST /executions`` answering a
``SessionCodeExecutionResource``, files as ``SessionResourceFile``, and (2025-02 and later)
session management and pool metadata.
"""

from __future__ import annotations

import base64
import dataclasses
import shlex
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from ....runtime.files import FileInfo
from ....runtime.metadata import PoolRuntimeInfo
from ....runtime.outcome import NO_RESULT, CodeOutput, ImageData, Outcome, ShellOutput
from ....runtime.protocol import SessionLike
from .common import (
    MAX_OUTPUT_STREAMS_LENGTH,
    UNCAPPED_OUTPUT_CHARS,
    ExecuteRequest,
    bad_request,
    code_field,
    enum_field,
    int_field,
    iso_ms,
    request_fields,
    timeout_field,
)
from .versions import ApiVersionSpec

__all__ = [
    "DEFAULT_OUTPUT_STREAMS_MAX_LENGTH",
    "parse_execute",
    "render_execution",
    "render_file",
    "render_file_list",
    "render_metadata",
    "render_session",
]

DEFAULT_OUTPUT_STREAMS_MAX_LENGTH = 4096
"""2025-10-02-preview cuts stdout and stderr to this many characters unless told otherwise."""


class ExecutionLike(Protocol):
    """What rendering an execution needs (``local/runtime/executions.py`` ``ExecutionRecord``)."""

    id: str
    identifier: str
    execution_type: str
    shell: bool
    timeout_seconds: int
    output: CodeOutput | ShellOutput | None
    internal_error: str | None


def parse_execute(
    body: Any, spec: ApiVersionSpec, *, shell_pool: bool, max_execution_seconds: int
) -> ExecuteRequest:
    """Validate a ``POST /executions`` body for ``spec`` on a Shell pool or a Python pool."""
    fields = request_fields(body)
    input_type = enum_field(fields, "codeInputType", ("Inline", "InlineBase64", "InlineText"), "Inline")
    execution_type = enum_field(fields, "executionType", ("Synchronous", "Asynchronous"), "Synchronous")
    shell = shell_pool
    if shell:
        if not spec.shell:
            raise bad_request(
                f"Shell pools take 'shellCommand' from api-version 2025-02-02-preview on; "
                f"{spec.name} has no shell execution.",
                "api-version",
            )
        argv = exec_command_and_args_field(fields) if spec.exec_command_and_args else None
        if argv is not None:
            if fields.get("shellCommand") is not None:
                raise bad_request(
                    "Give either 'shellCommand' or 'execCommandAndArgs', not both.", "execCommandAndArgs"
                )
            # Every word quoted: bash runs the program with exactly these arguments.
            code = "exec " + shlex.join(argv)
        else:
            # Shell pools run 'shellCommand'; 'code' is taken as the command when it is absent.
            field_name = "shellCommand" if fields.get("shellCommand") is not None else "code"
            if fields.get(field_name) is None:
                raise bad_request(
                    "no command provided in the request, at least one of the 'shellCommand' or "
                    "'execCommandAndArgs' fields should be provided"
                    if spec.exec_command_and_args
                    else "'shellCommand' is required on a Shell pool.",
                    "shellCommand",
                )
            code = code_field(fields, field_name, input_type)
    else:
        for shell_field in ("shellCommand", "execCommandAndArgs"):
            if fields.get(shell_field) is not None:
                raise bad_request(
                    f"'{shell_field}' is only accepted by Shell pools; this is a Python pool, send 'code'.",
                    shell_field,
                )
        code = code_field(fields, "code", input_type)
    if spec.exec_command_and_args:
        jupyter = fields.get("returnJupyterFormatExecutionResult")
        if jupyter is not None and not isinstance(jupyter, bool):
            raise bad_request(
                "'returnJupyterFormatExecutionResult' must be a boolean.",
                "returnJupyterFormatExecutionResult",
            )
        if jupyter:
            # No source gives the response shape of this option; refusing beats inventing one.
            raise bad_request(
                "'returnJupyterFormatExecutionResult' is not supported by this pool: the response shape "
                "it selects is undocumented. Omit it (or send false) to get stdout, stderr and "
                "executionResult.",
                "returnJupyterFormatExecutionResult",
            )
    max_output = UNCAPPED_OUTPUT_CHARS
    if spec.output_streams_max_length:
        requested = int_field(fields, "outputStreamsMaxLength")
        if requested is None:
            max_output = DEFAULT_OUTPUT_STREAMS_MAX_LENGTH
        elif requested < 0:
            raise bad_request(
                f"'outputStreamsMaxLength' must not be negative (got {requested}).", "outputStreamsMaxLength"
            )
        else:
            max_output = min(requested, MAX_OUTPUT_STREAMS_LENGTH)
        use_empty = fields.get("useEmptyKernel")
        if use_empty is not None and not isinstance(use_empty, bool):
            raise bad_request("'useEmptyKernel' must be a boolean.", "useEmptyKernel")
    return ExecuteRequest(
        code=code,
        shell=shell,
        timeout_seconds=timeout_field(fields, max_execution_seconds),
        asynchronous=execution_type == "Asynchronous",
        max_output_chars=max_output,
        execution_type=execution_type,
    )


def exec_command_and_args_field(fields: Mapping[str, Any]) -> list[str] | None:
    """``execCommandAndArgs``: a non-empty list of strings without NUL, or absent."""
    value = fields.get("execCommandAndArgs")
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(word, str) for word in value):
        raise bad_request(
            "'execCommandAndArgs' must be a non-empty array of strings, "
            'e.g. ["python3", "-c", "print(1)"].',
            "execCommandAndArgs",
        )
    if any("\x00" in word for word in value):
        raise bad_request("'execCommandAndArgs' must not contain NUL characters.", "execCommandAndArgs")
    return value


def image_object(image: ImageData) -> dict[str, str]:
    """The documented image result: ``{"type": "image", "format": "png", "base64_data": ...}``."""
    return {
        "type": "image",
        "format": image.format,
        "base64_data": base64.b64encode(image.data).decode("ascii"),
    }


def _execution_result_value(out: CodeOutput) -> Any:
    if out.outcome is not Outcome.SUCCEEDED:
        return None
    if out.images:
        return image_object(out.images[0])
    if out.result is NO_RESULT:
        return ""
    return out.result


def _code_error(out: CodeOutput, timeout_seconds: int) -> dict[str, Any] | None:
    """The ``error`` object of a failed Python execution (codes the client maps to flags)."""
    if out.outcome is Outcome.SUCCEEDED:
        return None
    if out.outcome is Outcome.FAILED:
        name = out.error_name or "ExecutionFailed"
        message = f"{out.error_name}: {out.error_value}" if out.error_name else "The code raised an error."
        return {"code": name, "message": message, "stateLost": out.state_lost}
    if out.outcome is Outcome.TIMED_OUT_INTERRUPTED:
        return {
            "code": "ExecutionTimeout",
            "message": out.message
            or f"The execution exceeded its time limit of {timeout_seconds} s and was interrupted; "
            "session state kept.",
            "stateLost": out.state_lost,
        }
    if out.outcome is Outcome.TIMED_OUT_RESTARTED:
        return {
            "code": "KernelRestarted",
            "message": out.message
            or f"The execution exceeded its time limit of {timeout_seconds} s and did not stop when "
            "interrupted; the kernel was restarted and session state lost.",
            "stateLost": True,
        }
    return {
        "code": "KernelDied",
        "message": out.message or "The kernel died during the execution; session state lost.",
        "stateLost": True,
    }


def _streams(out: CodeOutput | ShellOutput, extensions: bool) -> dict[str, Any]:
    streams: dict[str, Any] = {
        "stdout": out.stdout,
        "stderr": out.stderr,
        "executionResult": _execution_result_value(out) if isinstance(out, CodeOutput) else "",
        "executionTimeInMilliseconds": out.duration_ms,
    }
    if not extensions:
        return streams
    # Opt-in extensions Azure does not send: the 2025-10 cap cuts without a flag (these let a
    # client tell), and the result holds only the first image (the ones after it travel here).
    streams["stdoutTruncated"] = out.stdout_length > len(out.stdout)
    streams["stderrTruncated"] = out.stderr_length > len(out.stderr)
    if isinstance(out, CodeOutput) and len(out.images) > 1 and out.outcome is Outcome.SUCCEEDED:
        streams["images"] = [image_object(image) for image in out.images[1:]]
    return streams


def render_execution(record: ExecutionLike, *, extensions: bool = False) -> dict[str, Any]:
    """A ``SessionCodeExecutionResource`` for a running or finished execution.

    Python: ``status`` ``Running`` / ``Succeeded`` / ``Failed``; a failure carries ``error``
    (``code``, ``message`` and the undocumented ``stateLost``) and, for user exceptions, the
    undocumented ``rawResult`` the real service sends. Shell: ``status`` is the exit code as a
    string; a command killed at its time limit also carries ``error`` ``ExecutionTimeout``.
    ``extensions`` (a pool option, off by default) adds ``stdoutTruncated``/``stderrTruncated``
    and the ``images`` after the first.
    """
    resource: dict[str, Any] = {
        "id": record.id,
        "identifier": record.identifier,
        "executionType": record.execution_type,
    }
    out = record.output
    if record.internal_error is not None:
        resource["status"] = "Failed"
        resource["result"] = None
        resource["error"] = {"code": "InternalServerError", "message": record.internal_error}
        return resource
    if out is None:
        resource["status"] = "Running"
        resource["result"] = None
        return resource
    if isinstance(out, ShellOutput):
        resource["status"] = str(out.exit_code)
        resource["result"] = _streams(out, extensions)
        if out.timed_out:
            resource["error"] = {
                "code": "ExecutionTimeout",
                "message": f"The command exceeded its time limit of {record.timeout_seconds} s "
                "and was killed.",
                "stateLost": False,
            }
        return resource
    resource["status"] = "Succeeded" if out.outcome is Outcome.SUCCEEDED else "Failed"
    resource["result"] = _streams(out, extensions)
    error = _code_error(out, record.timeout_seconds)
    if error is not None:
        resource["error"] = error
    if out.outcome in (Outcome.TIMED_OUT_INTERRUPTED, Outcome.TIMED_OUT_RESTARTED):
        resource["timedOut"] = True
    if out.outcome is Outcome.FAILED:
        resource["rawResult"] = {
            "error_name": out.error_name,
            "error_message": out.error_value,
            "error_stack_trace": out.stderr,
        }
    if out.state_lost or out.outcome in (Outcome.TIMED_OUT_RESTARTED, Outcome.KERNEL_DIED):
        resource["stateLost"] = True
    return resource


def render_file(f: FileInfo, spec: ApiVersionSpec) -> dict[str, Any]:
    """A ``SessionResourceFile``; 2025-10 adds ``directory``; directories have no ``contentType``."""
    item: dict[str, Any] = {
        "name": f.name,
        "type": "Directory" if f.is_dir else "File",
        "sizeInBytes": f.size,
        "lastModifiedAt": iso_ms(f.modified_at),
    }
    if f.content_type is not None:
        item["contentType"] = f.content_type
    if spec.recursive_listing:
        item["directory"] = f.directory
    return item


def render_file_list(files: Sequence[FileInfo], spec: ApiVersionSpec) -> dict[str, Any]:
    """``{"value": [SessionResourceFile...], "nextLink": null}`` (listings are never paged)."""
    return {"value": [render_file(f, spec) for f in files], "nextLink": None}


def render_session(session: SessionLike) -> dict[str, Any]:
    """The session resource of ``GET /session`` and the session lists."""
    return {
        "identifier": session.identifier,
        "createdAt": iso_ms(session.created_at),
        "lastAccessedAt": iso_ms(session.last_accessed_at),
        "expireAt": iso_ms(session.expire_at),
        "etag": session.etag,
    }


_CAMEL = {
    "pre_installed_packages": "preInstalledPackages",
    "preinstalled_packages": "preInstalledPackages",
    "jupyter_kernel": "jupyterKernel",
    "created_at": "createdAt",
    "last_updated_at": "lastUpdatedAt",
    "protocol_version": "protocolVersion",
    "language_version": "languageVersion",
    "display_name": "displayName",
}


def _camel(key: str) -> str:
    if key in _CAMEL:
        return _CAMEL[key]
    head, *rest = key.split("_")
    return head + "".join(part.title() for part in rest)


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {_camel(f.name): _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {_camel(str(k)): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return iso_ms(value)
    return value


def render_metadata(info: PoolRuntimeInfo, *, created_at: datetime) -> dict[str, Any]:
    """``GET /metadata``: the runtime's description with camelCase keys, plus pool timestamps."""
    body = _jsonable(info)
    if not isinstance(body, dict):
        body = {}
    body.setdefault("runtimes", [])
    body.setdefault("preInstalledPackages", [])
    body.setdefault("jupyterKernel", None)
    body.setdefault("createdAt", iso_ms(created_at))
    body.setdefault("lastUpdatedAt", iso_ms(created_at))
    return body
