"""Text for the model: tool descriptions and the CodeAct instructions the provider injects."""

from __future__ import annotations

from collections.abc import Sequence

from autogen_aca_sessions.agent_framework._config import DynamicSessionsConfig, PoolKind
from autogen_aca_sessions.client import SessionFile

__all__ = [
    "DOWNLOAD_FILE_DESCRIPTION",
    "LIST_FILES_DESCRIPTION",
    "UPLOAD_FILE_DESCRIPTION",
    "build_instructions",
    "execute_code_description",
    "run_shell_description",
]

_MAX_PACKAGES = 80
_NOTABLE_PACKAGES = (
    "numpy",
    "pandas",
    "matplotlib",
    "scipy",
    "scikit-learn",
    "seaborn",
    "statsmodels",
    "sympy",
    "networkx",
    "pillow",
    "openpyxl",
    "requests",
)
"""Named first in the instructions when installed: what model-written code reaches for most, so
a long package list cut at :data:`_MAX_PACKAGES` never hides them behind the alphabet."""


def _packages_for_model(packages: Sequence[str]) -> list[str]:
    """``packages`` with the notable ones first (in :data:`_NOTABLE_PACKAGES` order), the rest as given."""
    lowered = {name.lower(): name for name in packages}
    first = [lowered[name] for name in _NOTABLE_PACKAGES if name in lowered]
    chosen = {name.lower() for name in first}
    return first + [name for name in packages if name.lower() not in chosen]


_MAX_FILES = 50


def execute_code_description(config: DynamicSessionsConfig) -> str:
    """Description of the ``execute_code`` tool."""
    return (
        "Run Python code in a sandboxed Jupyter session (Azure Container Apps dynamic session). "
        "Variables, imports and files persist between calls in this conversation. The working "
        "directory is /mnt/data. Returns stdout, stderr, the value of the last expression, and "
        "displayed images (e.g. matplotlib figures) as images. There is no network access. "
        f"Each call may run for {config.timeout_seconds} s; when it runs longer the output so far "
        "is returned and the session keeps its state."
    )


def run_shell_description(config: DynamicSessionsConfig) -> str:
    """Description of the ``run_shell`` tool."""
    return (
        "Run a shell command in a sandboxed Linux session (Azure Container Apps dynamic session). "
        "Files persist between calls in this conversation; the working directory is /mnt/data. "
        "Returns stdout, stderr and the exit code. There is no network access. "
        f"Each command may run for {config.timeout_seconds} s; when it runs longer the output so far "
        "is returned."
    )


UPLOAD_FILE_DESCRIPTION = (
    "Copy a file from the user's upload directory into the session's /mnt/data, where code can "
    "read it. Give its path relative to the upload directory."
)
LIST_FILES_DESCRIPTION = "List the files in the session's /mnt/data (name, size, last change)."
DOWNLOAD_FILE_DESCRIPTION = (
    "Copy a file from the session's /mnt/data to the user's download directory, e.g. a chart or a "
    "CSV the code wrote. Give its name relative to /mnt/data."
)


def _format_files(files: Sequence[SessionFile]) -> str:
    entries = [f for f in files if not f.is_directory]
    if not entries:
        return "The session's /mnt/data is empty."
    lines = ["Files in /mnt/data:"]
    for entry in entries[:_MAX_FILES]:
        size = f" ({entry.size_in_bytes} bytes)" if entry.size_in_bytes is not None else ""
        lines.append(f"- {entry.relative_path}{size}")
    if len(entries) > _MAX_FILES:
        lines.append(f"- ... and {len(entries) - _MAX_FILES} more")
    return "\n".join(lines)


def build_instructions(
    config: DynamicSessionsConfig,
    *,
    tool_names: Sequence[str],
    packages: Sequence[str],
    files: Sequence[SessionFile] | None,
    function_stubs: Sequence[str],
) -> str:
    """The CodeAct instructions: which tool runs code, what the session has, how to use it."""
    if config.pool_kind is PoolKind.PYTHON:
        lines = [
            "You can run Python with the `execute_code` tool in a sandboxed Jupyter session that keeps "
            "its state for this conversation: define variables in one call and use them in the next.",
            "The working directory is /mnt/data; read input files from there and save outputs (charts, "
            "CSVs) there with relative names. Print what you need to see; displayed figures come back "
            "as images. There is no network access, so packages cannot be installed.",
        ]
    else:
        lines = [
            "You can run shell commands with the `run_shell` tool in a sandboxed Linux session that "
            "keeps its files for this conversation. The working directory is /mnt/data; there is no "
            "network access.",
        ]
    others = [name for name in tool_names if name not in ("execute_code", "run_shell")]
    if others:
        lines.append("File tools: " + ", ".join(f"`{name}`" for name in others) + ".")
    if packages:
        packages = _packages_for_model(packages)
        shown = ", ".join(packages[:_MAX_PACKAGES])
        more = f" (and {len(packages) - _MAX_PACKAGES} more)" if len(packages) > _MAX_PACKAGES else ""
        lines.append(f"Installed packages: {shown}{more}.")
    if files is not None:
        lines.append(_format_files(files))
    if function_stubs:
        module = config.functions_module
        lines.append(
            f"These functions are ready to use (`from {module} import <name>`, or call them directly):\n"
            + "\n\n".join(function_stubs)
        )
    return "\n\n".join(lines)
