"""Text for the model: tool descriptions and the CodeAct instructions the provider injects."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from autogen_aca_sessions.agent_framework._config import BackendKind, PoolKind, SandboxesConfig
from autogen_aca_sessions.client import SessionFile
from autogen_aca_sessions.client.sandbox_python import WORK_DIR
from autogen_aca_sessions.client.session_code import MNT_DATA

if TYPE_CHECKING:
    from autogen_aca_sessions.agent_framework._backend import BackendConfig

__all__ = [
    "build_instructions",
    "download_file_description",
    "execute_code_description",
    "list_files_description",
    "run_shell_description",
    "upload_file_description",
    "work_dir",
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


def work_dir(config: BackendConfig) -> str:
    """Where the backend's code runs and its files live."""
    return WORK_DIR if config.backend is BackendKind.SANDBOXES else MNT_DATA


def _network(config: BackendConfig) -> str:
    if config.backend is BackendKind.SANDBOXES:
        return "Network access is what the sandbox group's egress policy allows."
    return "There is no network access."


def execute_code_description(config: BackendConfig) -> str:
    """Description of the ``execute_code`` tool."""
    if config.backend is BackendKind.SANDBOXES:
        return (
            "Run Python code in a persistent interpreter in a sandbox (Azure Container Apps "
            "sandbox). Variables, imports and files persist between calls in this conversation, "
            "also while the sandbox is suspended between turns. The working directory is "
            f"{WORK_DIR}. Returns stdout and stderr: print what you need to see (the value of the "
            "last expression is not shown, and figures do not come back as images: save them to "
            f"files). {_network(config)} Each call may run for {config.timeout_seconds} s; when it "
            "runs longer it is interrupted, the output so far is returned and the variables are kept."
        )
    return (
        "Run Python code in a sandboxed Jupyter session (Azure Container Apps dynamic session). "
        "Variables, imports and files persist between calls in this conversation. The working "
        "directory is /mnt/data. Returns stdout, stderr, the value of the last expression, and "
        "displayed images (e.g. matplotlib figures) as images. There is no network access. "
        f"Each call may run for {config.timeout_seconds} s; when it runs longer the output so far "
        "is returned and the session keeps its state."
    )


def run_shell_description(config: BackendConfig) -> str:
    """Description of the ``run_shell`` tool."""
    place = (
        "a sandbox (Azure Container Apps sandbox)"
        if config.backend is BackendKind.SANDBOXES
        else "a sandboxed Linux session (Azure Container Apps dynamic session)"
    )
    return (
        f"Run a shell command in {place}. "
        f"Files persist between calls in this conversation; the working directory is {work_dir(config)}. "
        f"Returns stdout, stderr and the exit code. {_network(config)} "
        f"Each command may run for {config.timeout_seconds} s; when it runs longer the output so far "
        "is returned."
    )


def _where(config: BackendConfig) -> str:
    noun = "sandbox" if config.backend is BackendKind.SANDBOXES else "session"
    return f"the {noun}'s {work_dir(config)}"


def upload_file_description(config: BackendConfig) -> str:
    """Description of the ``upload_file`` tool."""
    return (
        f"Copy a file from the user's upload directory into {_where(config)}, where code can "
        "read it. Give its path relative to the upload directory."
    )


def list_files_description(config: BackendConfig) -> str:
    """Description of the ``list_files`` tool."""
    return f"List the files in {_where(config)} (name, size, last change)."


def download_file_description(config: BackendConfig) -> str:
    """Description of the ``download_file`` tool."""
    return (
        f"Copy a file from {_where(config)} to the user's download directory, e.g. a chart or a "
        f"CSV the code wrote. Give its name relative to {work_dir(config)}."
    )


def _format_files(config: BackendConfig, files: Sequence[SessionFile]) -> str:
    entries = [f for f in files if not f.is_directory]
    if not entries:
        return f"{_where(config)[0].upper()}{_where(config)[1:]} is empty."
    lines = [f"Files in {work_dir(config)}:"]
    for entry in entries[:_MAX_FILES]:
        size = f" ({entry.size_in_bytes} bytes)" if entry.size_in_bytes is not None else ""
        lines.append(f"- {entry.relative_path}{size}")
    if len(entries) > _MAX_FILES:
        lines.append(f"- ... and {len(entries) - _MAX_FILES} more")
    return "\n".join(lines)


def build_instructions(
    config: BackendConfig,
    *,
    tool_names: Sequence[str],
    packages: Sequence[str],
    files: Sequence[SessionFile] | None,
    function_stubs: Sequence[str],
) -> str:
    """The CodeAct instructions: which tool runs code, what the session has, how to use it."""
    if isinstance(config, SandboxesConfig):
        lines = [
            "You can run Python with the `execute_code` tool and shell commands with the `run_shell` "
            "tool in a sandbox that keeps its state for this conversation, also between turns (it is "
            "suspended with its memory while idle): define variables in one call and use them in the "
            "next, even in a later turn.",
            f"The working directory is {WORK_DIR}; read input files from there and save outputs (charts, "
            "CSVs) there with relative names. Print what you need to see; figures do not come back as "
            f"images, so save them to files. {_network(config)}",
        ]
    elif config.pool_kind is PoolKind.PYTHON:
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
        lines.append(_format_files(config, files))
    if function_stubs:
        module = config.functions_module
        lines.append(
            f"These functions are ready to use (`from {module} import <name>`, or call them directly):\n"
            + "\n\n".join(function_stubs)
        )
    return "\n\n".join(lines)
