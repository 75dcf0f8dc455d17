"""The legacy contract: api-versions 2024-02-02-preview and 2024-08-02-preview.

``POST /code/execute`` with a ``properties`` wrapper and ``$id`` numbering; files under
``/files/upload``, ``/files``, ``/files/content/<name>`` and (2024-08) ``/files/<name>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ....runtime.files import FileInfo
from ....runtime.outcome import NO_RESULT, CodeOutput, Outcome
from .common import (
    UNCAPPED_OUTPUT_CHARS,
    ExecuteRequest,
    bad_request,
    code_field,
    enum_field,
    iso_ticks,
    request_fields,
    timeout_field,
)
from .current import image_object

__all__ = ["DELETE_FILE_BODY", "parse_execute", "render_execution", "render_file_list"]

DELETE_FILE_BODY: dict[str, str] = {"message": "file deleted successfully"}
"""The 200 body of ``DELETE /files/<name>`` (2024-08-02-preview)."""


def parse_execute(body: Any, *, max_execution_seconds: int) -> ExecuteRequest:
    """Validate a ``/code/execute`` body; only inline, synchronous Python exists on this contract."""
    fields = request_fields(body)
    input_type = enum_field(fields, "codeInputType", ("Inline",), "Inline")
    execution_type = enum_field(fields, "executionType", ("Synchronous", "Asynchronous"), "Synchronous")
    if execution_type == "Asynchronous":
        raise bad_request(
            "The legacy contract only runs code synchronously; use api-version 2024-10-02-preview "
            "or later for asynchronous executions.",
            "executionType",
        )
    return ExecuteRequest(
        code=code_field(fields, "code", input_type),
        shell=False,
        timeout_seconds=timeout_field(fields, max_execution_seconds),
        asynchronous=False,
        max_output_chars=UNCAPPED_OUTPUT_CHARS,
        execution_type=execution_type,
    )


def _result_value(out: CodeOutput) -> Any:
    if out.outcome is not Outcome.SUCCEEDED:
        return None
    if out.images:
        return image_object(out.images[0])
    if out.result is NO_RESULT:
        return ""
    return out.result


def render_execution(out: CodeOutput, *, extensions: bool = False) -> dict[str, Any]:
    """The legacy execute response: ``{"$id": "1", "properties": {"$id": "2", "status", ...}}``.

    Anything but a clean run is ``Failure`` with ``result: null``; for timeouts and dead kernels
    the runtime has already put the sentence saying what happened into ``stderr``. With
    ``extensions`` (a pool option, off by default) the images after the first and the
    truncation flags are added; Azure sends neither.
    """
    props: dict[str, Any] = {
        "$id": "2",
        "status": "Success" if out.outcome is Outcome.SUCCEEDED else "Failure",
        "stdout": out.stdout,
        "stderr": out.stderr,
        "result": _result_value(out),
        "executionTimeInMilliseconds": out.duration_ms,
    }
    # Undocumented extras, present only when true so the documented shape is otherwise exact.
    if out.outcome in (Outcome.TIMED_OUT_INTERRUPTED, Outcome.TIMED_OUT_RESTARTED):
        props["timedOut"] = True
    if out.state_lost or out.outcome in (Outcome.TIMED_OUT_RESTARTED, Outcome.KERNEL_DIED):
        props["stateLost"] = True
    if extensions:
        if out.outcome is Outcome.SUCCEEDED and len(out.images) > 1:
            props["images"] = [image_object(image) for image in out.images[1:]]
        if out.stdout_truncated:
            props["stdoutTruncated"] = True
        if out.stderr_truncated:
            props["stderrTruncated"] = True
    return {"$id": "1", "properties": props}


def render_file_list(files: Sequence[FileInfo]) -> dict[str, Any]:
    """The legacy file list (also the upload and metadata answer): ``{"$id", "value": [...]}``."""
    value: list[dict[str, Any]] = []
    next_id = 2
    for f in files:
        value.append(
            {
                "$id": str(next_id),
                "properties": {
                    "$id": str(next_id + 1),
                    "filename": f.name,
                    "size": f.size,
                    "lastModifiedTime": iso_ticks(f.modified_at),
                },
            }
        )
        next_id += 2
    return {"$id": "1", "value": value}
