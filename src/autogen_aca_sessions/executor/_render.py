"""The executor's output renderer: execution results in, the text a model reads out.

Pure: nothing here sends a request or changes the executor's session state, and notes come in
as values and go out inside the results. What a result means for the session (a replaced
interpreter, say) is the session keeper's business, decided before or after rendering.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from autogen_core.code_executor import CodeBlock

from autogen_aca_sessions.client import ExecutionResult, ExecutionTimeoutError
from autogen_aca_sessions.executor._results import ACADynamicSessionsBlockResult, ACADynamicSessionsCodeResult

__all__ = [
    "PYTHON_LANGUAGES",
    "SHELL_LANGUAGES",
    "TIMEOUT_EXIT_CODE",
    "OutputRenderer",
]

PYTHON_LANGUAGES = ("python", "py", "python3")
SHELL_LANGUAGES = ("sh", "bash", "shell")

TIMEOUT_EXIT_CODE = 124
"""Exit status of a block that hit its time limit (as ``timeout(1)`` reports it)."""

INTERPRETER_REPLACED_NOTE = (
    "The session's interpreter was replaced, so earlier variables and imports are gone; "
    "the working directory and injected functions are set up again before the next block."
)


@dataclass(frozen=True)
class OutputRenderer:
    """Turns execution results into block and call results, under the executor's output settings."""

    max_output_chars: int
    """Most characters kept of each stream and of the whole output text."""
    suppress_result_output: bool
    """Leave the last expression's value out of the text."""
    server_timeout: int
    """The time limit the service was given per block, in seconds (named in timeout lines)."""

    def notes_for(self, result: ExecutionResult, *, replaced: bool) -> tuple[str, ...]:
        """The sentences a result itself calls for (beyond those the keeper wrote while sending)."""
        if result.state_lost and not replaced:
            return (INTERPRETER_REPLACED_NOTE,)
        return ()

    def block(
        self,
        block: CodeBlock,
        result: ExecutionResult,
        image_paths: Sequence[str],
        notes: Sequence[str],
        *,
        shell: bool,
        replaced: bool = False,
    ) -> ACADynamicSessionsBlockResult:
        """One execution as a block result; ``notes`` are sentences added to its text."""
        value = result.result
        if result.timed_out:
            exit_code = TIMEOUT_EXIT_CODE
        elif result.exit_code is not None:
            exit_code = result.exit_code
        elif not result.succeeded:
            exit_code = 1
        elif shell:
            exit_code = _as_exit_code(value)
        else:
            exit_code = 0
        # The service cuts streams only on 2025-10; cut them here on every version alike.
        stdout, stdout_cut = _cut_head(result.stdout, self.max_output_chars)
        stderr, stderr_cut = _cut_head(result.stderr, self.max_output_chars)
        stdout_truncated = result.stdout_truncated or stdout_cut
        stderr_truncated = result.stderr_truncated or stderr_cut

        parts: list[str] = [stdout, stderr]
        if stdout_truncated:
            parts.append(f"[stdout truncated after {len(stdout)} characters]\n")
        if stderr_truncated:
            parts.append(f"[stderr truncated after {len(stderr)} characters]\n")
        for stream, maybe in (
            ("stdout", result.stdout_possibly_truncated and not stdout_truncated),
            ("stderr", result.stderr_possibly_truncated and not stderr_truncated),
        ):
            if maybe:
                parts.append(
                    f"[{stream} has exactly 4096 characters, the service's default output cap: it may "
                    "have been cut]\n"
                )
        parts.append(self.result_text(value, shell=shell))
        parts.extend(f"Saved image to {path}\n" for path in image_paths)
        if not result.succeeded and not result.timed_out and not (stderr or stdout):
            detail = result.error_message or result.error_code or "no details"
            parts.append(f"Execution failed: {detail}\n")
        if result.timed_out:
            kept = "was lost (the interpreter was restarted)" if result.state_lost else "was kept"
            parts.append(
                f"Timed out after {self.server_timeout} s; the session's interpreter state {kept}.\n"
            )
        parts.extend(note + "\n" for note in notes)
        return ACADynamicSessionsBlockResult(
            language=block.language,
            exit_code=exit_code,
            output=_join(parts),
            stdout=stdout,
            stderr=stderr,
            result=None if value == "" else value,
            image_paths=list(image_paths),
            execution_time_ms=result.execution_time_ms,
            execution_id=result.execution_id,
            timed_out=result.timed_out,
            state_lost=result.state_lost or replaced,
            stdout_truncated=stdout_truncated,
            stderr_truncated=stderr_truncated,
            possibly_truncated=result.stdout_possibly_truncated or result.stderr_possibly_truncated,
        )

    def no_answer(
        self, block: CodeBlock, error: ExecutionTimeoutError, notes: Sequence[str], *, replaced: bool
    ) -> ACADynamicSessionsBlockResult:
        """A block whose execution the client gave up waiting for."""
        return ACADynamicSessionsBlockResult(
            language=block.language,
            exit_code=TIMEOUT_EXIT_CODE,
            output=_join(
                [
                    *(note + "\n" for note in notes),
                    f"Timed out: no answer from the session within {error.waited_seconds:g} s (the "
                    f"limit is {self.server_timeout} s); whether the interpreter state was kept is "
                    "unknown.\n",
                ]
            ),
            timed_out=True,
            state_lost=replaced,
        )

    @staticmethod
    def unsupported(block: CodeBlock) -> ACADynamicSessionsBlockResult:
        """A block in a language the executor does not run (nothing was sent)."""
        return ACADynamicSessionsBlockResult(
            language=block.language,
            exit_code=1,
            output=(
                f"Unsupported language {block.language!r}: this executor runs Python "
                f"({', '.join(PYTHON_LANGUAGES)}) and shell ({', '.join(SHELL_LANGUAGES)}) "
                "blocks. Nothing was executed for this block.\n"
            ),
            executed=False,
        )

    def result_text(self, value: Any, *, shell: bool) -> str:
        """The last expression's value as the model reads it ("" when not shown)."""
        if shell or self.suppress_result_output or value is None or value == "":
            return ""
        # str() as upstream does: the model reads Python values (True, None, {'a': 1}), not JSON.
        return value if isinstance(value, str) else str(value)

    def combine(
        self, blocks: Sequence[ACADynamicSessionsBlockResult], notes: Sequence[str], session_id: str
    ) -> ACADynamicSessionsCodeResult:
        """The blocks of one call as its result."""
        output = _join([block.output for block in blocks])
        # The limit counts what the code produced, not the lines the executor adds (markers,
        # notes, image paths), so those never push a result over it.
        produced = sum(
            len(block.stdout)
            + len(block.stderr)
            + len(self.result_text(block.result, shell=block.language.strip().lower() in SHELL_LANGUAGES))
            for block in blocks
        )
        truncated = produced > self.max_output_chars
        if truncated:
            output = _cut_middle(
                output, self.max_output_chars + len(output) - produced, self.max_output_chars
            )
        last = blocks[-1] if blocks else None
        return ACADynamicSessionsCodeResult(
            exit_code=last.exit_code if last else 0,
            output=output,
            stdout="".join(block.stdout for block in blocks),
            stderr="".join(block.stderr for block in blocks),
            result=last.result if last else None,
            image_paths=[path for block in blocks for path in block.image_paths],
            execution_time_ms=sum(block.execution_time_ms or 0 for block in blocks),
            session_id=session_id,
            blocks=list(blocks),
            timed_out=any(block.timed_out for block in blocks),
            state_lost=any(block.state_lost for block in blocks),
            output_truncated=truncated,
            stdout_truncated=any(block.stdout_truncated for block in blocks),
            stderr_truncated=any(block.stderr_truncated for block in blocks),
            notes=list(notes),
        )


def _as_exit_code(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return 1


def _join(parts: Sequence[str]) -> str:
    """Concatenate text pieces, putting a newline between pieces where one is missing."""
    out = ""
    for part in parts:
        if not part:
            continue
        if out and not out.endswith("\n"):
            out += "\n"
        out += part
    return out


def _cut_head(text: str, limit: int) -> tuple[str, bool]:
    """The first ``limit`` characters of ``text`` and whether anything was cut."""
    if len(text) <= limit:
        return text, False
    return text[:limit], True


def _cut_middle(text: str, limit: int, max_output_chars: int) -> str:
    """Keep the head and the tail (where tracebacks are) of ``text`` within ``limit`` characters.

    The marker counts exactly the characters left out (the marker's own length included in the
    budget), so kept + omitted always equals ``len(text)``.
    """
    omitted = len(text) - limit
    marker = ""
    keep = 0
    # The marker's length depends on the number it shows; two rounds settle any change of digits.
    for _ in range(3):
        marker = f"\n[... {omitted} characters of output omitted (max_output_chars={max_output_chars}) ...]\n"
        keep = max(0, min(len(text), limit - len(marker)))
        if len(text) - keep == omitted:
            break
        omitted = len(text) - keep
    head = keep * 2 // 3
    tail = keep - head
    return text[:head] + marker + (text[len(text) - tail :] if tail else "")
