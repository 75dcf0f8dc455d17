"""An execution's outcome as Agent Framework content: text for the model, images as image data."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from agent_framework import Content

from autogen_aca_sessions.client import ExecutionResult

__all__ = ["cut", "error_contents", "execution_contents"]


def cut(text: str, limit: int) -> str:
    """``text`` cut to about ``limit`` characters, keeping its start and its end (where the
    traceback or the final figures are), with a marker saying how much was left out."""
    if len(text) <= limit:
        return text
    head = limit // 2
    tail = limit - head
    left_out = len(text) - head - tail
    return f"{text[:head]}\n[... {left_out} characters cut ...]\n{text[-tail:]}"


def _value_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


def execution_contents(
    result: ExecutionResult,
    *,
    max_output_chars: int,
    max_images: int,
    timeout_seconds: int,
    notes: Sequence[str] = (),
) -> list[Content]:
    """The contents of one tool result: a text part (status, stdout, value, stderr, notes), one
    image part per displayed image, and an error part when the execution failed."""
    sections: list[str] = []
    if result.timed_out:
        sections.append(
            f"status: timed out after {timeout_seconds} s (the output so far is below; the session is "
            "still usable)"
        )
    elif not result.succeeded:
        sections.append(f"status: failed ({result.status.value})")
    else:
        sections.append("status: succeeded")
    if result.exit_code is not None:
        sections.append(f"exit code: {result.exit_code}")
    if result.stdout:
        sections.append("stdout:\n" + cut(result.stdout, max_output_chars))
    value = result.result
    if value not in ("", None):
        sections.append("value: " + cut(_value_text(value), max_output_chars))
    if result.stderr:
        sections.append("stderr:\n" + cut(result.stderr, max_output_chars))
    if not result.succeeded and result.error_message and result.error_message not in result.stderr:
        sections.append("error: " + cut(result.error_message, max_output_chars))
    if result.stdout_truncated or result.stderr_truncated:
        sections.append("note: the service cut the output at its length limit.")
    shown = result.images[:max_images]
    if shown:
        sections.append(f"images: {len(shown)} attached")
    if len(result.images) > len(shown):
        sections.append(f"note: {len(result.images) - len(shown)} more image(s) were not returned.")
    sections.extend(f"note: {note}" for note in notes)
    if result.succeeded and len(sections) == 1 and not shown:
        sections.append("The code ran without output.")
    contents = [Content.from_text("\n".join(sections))]
    for index, image in enumerate(shown, start=1):
        contents.append(
            Content.from_data(
                data=image.data, media_type=image.mime_type, name=f"image-{index}.{image.format}"
            )
        )
    if not result.succeeded:
        message = "Execution timed out" if result.timed_out else "Execution failed"
        contents.append(
            Content.from_error(
                message=message,
                error_code=result.error_code or ("Timeout" if result.timed_out else "ExecutionFailed"),
                error_details=cut(result.stderr or result.error_message or "", max_output_chars) or None,
            )
        )
    return contents


def error_contents(message: str, *, error_code: str, details: str | None = None) -> list[Content]:
    """A tool result for a call that did not run (or whose answer never came): text the model
    reads, and the same as an error part."""
    text = message if not details else f"{message}\n{details}"
    return [
        Content.from_text(f"status: error\n{text}"),
        Content.from_error(message=message, error_code=error_code, error_details=details),
    ]
