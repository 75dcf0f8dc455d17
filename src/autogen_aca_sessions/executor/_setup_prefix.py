"""A session's set-up sent in the same request as its first block: one round trip, not two.

The set-up the executor needs in a fresh interpreter, when no functions are injected, is a
change of directory to ``/mnt/data``: one short line that can run as the first line of the
block's own cell. The line is invisible to the model: in a traceback of that cell it is removed
and the cell's line numbers are given back as the block's own.

A block cannot take the line when it must start its cell: ``from __future__`` imports, cell
magics (``%%time``), and an indented first line (IPython dedents a whole cell, which it would
not do below the set-up line). Those get the set-up as a request of its own, as before.
"""

from __future__ import annotations

import re

from ._kernel_code import MNT_DATA

__all__ = ["SETUP_LINE", "compile_failed", "prefixed", "unprefixed_text"]

SETUP_LINE = f"(lambda _o: _o.path.isdir({MNT_DATA!r}) and _o.chdir({MNT_DATA!r}))(__import__('os'))"
"""Change to ``/mnt/data`` when it exists; leaves no name behind in the user's namespace."""

_MUST_START_CELL = re.compile(r"^\s*(from\s+__future__\s+import|%%)", re.MULTILINE)
_CELL_FRAME = re.compile(r"^(\s*Cell In\[\d+\], line )(\d+)", re.MULTILINE)
_CONTEXT_LINE = re.compile(r"^( {6}|-{4}> )(\d+)(.*)$")
_SYNTAX_LOCATION = re.compile(r"(\(\S+\.py, line )(\d+)(\))")
_COMPILE_ERRORS = ("SyntaxError", "IndentationError", "TabError")


def prefixed(block: str) -> str | None:
    """``block`` with :data:`SETUP_LINE` as its cell's first line, or None when it must start its cell."""
    if _MUST_START_CELL.search(block):
        return None
    first = next((line for line in block.splitlines() if line.strip()), "")
    if first[:1].isspace():
        return None
    return SETUP_LINE + "\n" + block


def compile_failed(*texts: str | None) -> bool:
    """Whether a failed cell failed to compile (so that its set-up line did not run either).

    ``texts`` are what the service said: the error code, the error message, stderr.
    """
    for text in texts:
        if not text:
            continue
        last = next((line.strip() for line in reversed(text.splitlines()) if line.strip()), "")
        if text in _COMPILE_ERRORS or last.startswith(_COMPILE_ERRORS) or text.startswith(_COMPILE_ERRORS):
            return True
    return False


def unprefixed_text(text: str) -> str:
    """A traceback of a prefixed cell as it would read for the block alone.

    Only the cell's own frame (``Cell In[N], line K`` up to the next blank line) is renumbered;
    frames of other files keep their line numbers.
    """
    if not text or ("Cell In[" not in text and ".py, line " not in text):
        return text
    lines = text.split("\n")
    out: list[str] = []
    in_cell = False
    for line in lines:
        frame = _CELL_FRAME.match(line)
        if frame is not None:
            in_cell = True
            line = _CELL_FRAME.sub(lambda m: m.group(1) + str(max(1, int(m.group(2)) - 1)), line, count=1)
        elif in_cell and not line.strip():
            in_cell = False
        elif in_cell:
            context = _CONTEXT_LINE.match(line)
            if context is not None:
                number = int(context.group(2))
                if number == 1:
                    continue  # the set-up line itself
                line = f"{context.group(1)}{number - 1}{context.group(3)}"
        out.append(line)
    result = "\n".join(out)
    return _SYNTAX_LOCATION.sub(lambda m: m.group(1) + str(max(1, int(m.group(2)) - 1)) + m.group(3), result)
