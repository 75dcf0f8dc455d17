"""Which session identifiers and execution ids the local pool accepts.

The sources disagree on the rule (docs: 4-128 characters; 2024-10/2025-02 specs:
``[A-Za-z0-9-_]{1,256}``; 2025-10 spec: 4-128 characters of broad ASCII punctuation). The local
pool accepts the union that is safe to use as a dictionary key and in a log line: 1-256
printable ASCII characters other than ``/`` and ``\\``. That admits every identifier any
documented rule admits (UUIDs included) and refuses only what could be confused with a path or
smuggle whitespace and control characters.
"""

from __future__ import annotations

__all__ = ["MAX_IDENTIFIER_LENGTH", "identifier_problem", "is_valid_identifier"]

MAX_IDENTIFIER_LENGTH = 256
"""The longest identifier accepted (the longest any api-version documents)."""

_FORBIDDEN = frozenset("/\\")


def identifier_problem(value: str) -> str | None:
    """Say why ``value`` is not an acceptable identifier, or return ``None`` when it is."""
    if not value:
        return "must not be empty"
    if len(value) > MAX_IDENTIFIER_LENGTH:
        return f"must be at most {MAX_IDENTIFIER_LENGTH} characters long (got {len(value)})"
    for ch in value:
        # 0x21..0x7e is printable ASCII without the space: whitespace, control characters and
        # non-ASCII all fall outside it.
        if not ("\x21" <= ch <= "\x7e"):
            return f"must contain only printable ASCII characters without whitespace (found {ch!r})"
        if ch in _FORBIDDEN:
            return f"must not contain {ch!r}"
    return None


def is_valid_identifier(value: str) -> bool:
    """Whether ``value`` is an acceptable identifier."""
    return identifier_problem(value) is None
