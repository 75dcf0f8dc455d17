"""The figures SECURITY.md quotes (hostile inputs tried, faults survived, memory measured...),
counted by the security and soak tests and printed once at the end of the run.

Under pytest-xdist each worker counts its own tests' figures; the worker hands them to the
controller when it finishes (``workeroutput``), and the controller adds them up before it prints
them (see the hooks in ``tests/conftest.py``). Without xdist the same process counts and prints.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

FIGURES: Counter[str] = Counter()
"""Counters for SECURITY.md (hostile inputs tried, faults survived, soak operations...)."""
NOTES: dict[str, Any] = {}
"""Other figures (memory and descriptor measurements), printed as they are."""

WORKEROUTPUT_KEY = "security_figures"
"""Where a worker puts its figures in ``config.workeroutput`` for the controller."""


def record(name: str, amount: int = 1) -> None:
    """Add to one of the figures printed at the end of the run."""
    FIGURES[name] += amount


def note(name: str, value: Any) -> None:
    """Keep a measured value for the end-of-run summary."""
    NOTES[name] = value


def snapshot() -> dict[str, Any]:
    """This process's figures as plain JSON values (what execnet can carry to the controller)."""
    # A note may hold any value: JSON with ``str`` as the fallback keeps it printable and portable.
    return json.loads(json.dumps({"counts": dict(FIGURES), "notes": NOTES}, default=str))  # type: ignore[no-any-return]


def merge(figures: dict[str, Any]) -> None:
    """Add a worker's :func:`snapshot` to this process's figures."""
    FIGURES.update(figures.get("counts", {}))
    NOTES.update(figures.get("notes", {}))


def summary_lines() -> list[str]:
    """The figures, one per line."""
    lines = [f"{name}: {count}" for name, count in sorted(FIGURES.items())]
    lines += [f"{name}: {value}" for name, value in sorted(NOTES.items())]
    return lines


def dump_figures() -> None:
    """Write the figures as JSON to ``$SECURITY_FIGURES_FILE`` when it is set."""
    target = os.environ.get("SECURITY_FIGURES_FILE")
    if target:
        Path(target).write_text(json.dumps({"counts": dict(FIGURES), "notes": NOTES}, indent=2, default=str))
