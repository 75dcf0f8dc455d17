"""Every ```python block of README.md runs as written (issue 22, item 10).

A block runs as a script (``python snippet.py``, in a fresh directory, against local pools only),
unless the line before it says otherwise:

* ``<!-- snippet: pytest -->``: the block is a test file; it runs under pytest, with the package's
  plugin and nothing else configured, as a user's own test would.
* ``<!-- snippet: not-runnable (REASON) -->``: a fragment, a signature, or something that needs
  Azure or a model; it is reported as skipped with its reason, so no block is silently left out.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
SNIPPET_SECONDS = 240
# Anything that would point a snippet at a real pool, model or subscription.
_FOREIGN_ENV = (
    "ACA_POOL_MANAGEMENT_ENDPOINT",
    "ACA_SESSIONS_API_KEY",
    "ACA_SESSIONS_TEST_POOL_ENDPOINT",
    "ACA_SESSIONS_TEST_API_KEY",
    "ACA_SESSIONS_MCP_ENDPOINT",
    "ACA_SESSIONS_MCP_API_KEY",
    "OPENAI_API_KEY",
    "AZURE_OPENAI_ENDPOINT",
    "AZURE_OPENAI_API_KEY",
    "AZURE_SUBSCRIPTION_ID",
)
_MARKER = re.compile(r"^<!-- snippet: (?P<kind>[a-z-]+)(?: \((?P<reason>[^)]+)\))? -->$")
_FENCE = re.compile(r"^```(?P<language>\S*)\s*$")


class Kind(Enum):
    """How a README block is checked."""

    SCRIPT = "script"
    """Run with ``python``."""
    PYTEST = "pytest"
    """Run with ``python -m pytest``."""
    NOT_RUNNABLE = "not-runnable"
    """Listed as skipped, with the reason the README gives."""


@dataclass(frozen=True)
class Snippet:
    """One ```python block of the README."""

    line: int
    """Line number of its opening fence."""
    code: str
    """The block's text."""
    kind: Kind
    """How it is checked."""
    reason: str
    """Why it cannot run (``not-runnable`` only)."""


def readme_snippets() -> list[Snippet]:
    """Every ```python block, with the marker on the line before it (blank lines skipped)."""
    lines = README.read_text(encoding="utf-8").splitlines()
    snippets: list[Snippet] = []
    number = 0
    while number < len(lines):
        fence = _FENCE.match(lines[number])
        if fence is None:
            number += 1
            continue
        end = number + 1
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        if fence.group("language") == "python":
            kind, reason = _marker_before(lines, number)
            snippets.append(Snippet(number + 1, "\n".join(lines[number + 1 : end]) + "\n", kind, reason))
        number = end + 1
    return snippets


def _marker_before(lines: list[str], fence: int) -> tuple[Kind, str]:
    previous = fence - 1
    while previous >= 0 and not lines[previous].strip():
        previous -= 1
    marker = _MARKER.match(lines[previous].strip()) if previous >= 0 else None
    if marker is None:
        return Kind.SCRIPT, ""
    return Kind(marker.group("kind")), marker.group("reason") or ""


def _params() -> list[object]:
    params: list[object] = []
    for snippet in readme_snippets():
        marks = []
        if snippet.kind is Kind.NOT_RUNNABLE:
            marks.append(pytest.mark.skip(reason=f"README.md line {snippet.line}: {snippet.reason}"))
        params.append(pytest.param(snippet, id=f"line-{snippet.line}-{snippet.kind.value}", marks=marks))
    return params


def snippet_env() -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name not in _FOREIGN_ENV}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def test_every_marker_names_a_known_kind_and_sits_right_before_a_python_block() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        if not line.strip().startswith("<!-- snippet:"):
            continue
        marker = _MARKER.match(line.strip())
        assert marker is not None, f"README.md line {number + 1}: malformed marker {line!r}"
        kind = Kind(marker.group("kind"))
        assert kind is not Kind.SCRIPT, f"README.md line {number + 1}: scripts need no marker"
        if kind is Kind.NOT_RUNNABLE:
            assert marker.group("reason"), f"README.md line {number + 1}: say why it cannot run"
        following = next((later for later in lines[number + 1 :] if later.strip()), "")
        assert following.strip() == "```python", f"README.md line {number + 1}: no ```python block follows"


def test_the_readme_has_runnable_snippets() -> None:
    # Guards the parser: a README whose blocks all went missing would pass every other test.
    kinds = [snippet.kind for snippet in readme_snippets()]
    assert Kind.SCRIPT in kinds
    assert Kind.PYTEST in kinds


@pytest.mark.parametrize("snippet", _params())
def test_the_readme_snippet_runs_as_written(snippet: Snippet, tmp_path: Path) -> None:
    if snippet.kind is Kind.PYTEST:
        source = tmp_path / "test_readme_snippet.py"
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", source.name]
    else:
        source = tmp_path / "readme_snippet.py"
        command = [sys.executable, source.name]
    source.write_text(snippet.code, encoding="utf-8")

    completed = subprocess.run(
        command,
        cwd=tmp_path,
        env=snippet_env(),
        capture_output=True,
        text=True,
        timeout=SNIPPET_SECONDS,
    )

    assert completed.returncode == 0, (
        f"README.md line {snippet.line}: exit {completed.returncode}\n{snippet.code}\n"
        f"--- stdout\n{completed.stdout[-3000:]}\n--- stderr\n{completed.stderr[-3000:]}"
    )
    assert "Traceback" not in completed.stderr, completed.stderr[-3000:]


# ------------------------------------------------------------------------------------ install lines

# `pip install` commands as the README, the examples and the command line print them.
_PIP_INSTALL = re.compile(r"pip install [^`\n]*")
_EDITABLE_EXTRAS = re.compile(r"-e '\.\[(?P<extras>[^\]]*)\]'")


def defined_extras() -> set[str]:
    """The optional-dependency groups pyproject.toml defines."""
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    section = text.split("[project.optional-dependencies]", 1)[1].split("\n[", 1)[0]
    return set(re.findall(r"^([A-Za-z0-9_-]+) = \[", section, flags=re.MULTILINE))


def install_commands() -> list[tuple[str, str]]:
    """(where, command) for every `pip install` in the README, the examples and the CLI."""
    files = [README, *sorted((REPO / "examples").glob("*.py")), REPO / "src/autogen_aca_sessions/cli.py"]
    found: list[tuple[str, str]] = []
    for path in files:
        for match in _PIP_INSTALL.finditer(path.read_text(encoding="utf-8")):
            found.append((str(path.relative_to(REPO)), match.group(0).strip()))
    return found


def test_every_install_line_works_from_a_clone() -> None:
    # The package is not on PyPI: `pip install 'autogen-aca-sessions[...]'` fails, so every line
    # installs the clone (`-e '.[extras]'`) or a local build (`--find-links dist`), and names only
    # extras pyproject.toml defines.
    extras = defined_extras()
    commands = install_commands()
    assert any(where == "README.md" for where, _ in commands)
    for where, command in commands:
        if "autogen-aca-sessions" in command:  # by name only from a local build's directory
            assert "--find-links" in command, f"{where}: {command}"
        for group in _EDITABLE_EXTRAS.finditer(command):
            named = {extra.strip() for extra in group.group("extras").split(",")}
            assert named <= extras, f"{where}: {command} names extras {sorted(named - extras)}"
