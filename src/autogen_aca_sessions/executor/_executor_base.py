"""What the two AutoGen executors share: injected functions, local files, component-config rules.

:class:`~._executor.ACADynamicSessionsCodeExecutor` and
:class:`~._sandbox_executor.ACASandboxCodeExecutor` follow one contract; :class:`InjectedFunctionsExecutor`
holds the parts of it whose logic does not depend on where the code runs: the injected functions
(built at construction so that a broken one fails there), their prompt, the checks of local files
to upload, and the warnings about what a component config leaves out. The token read from an
environment variable at every use is here too.
"""

from __future__ import annotations

import asyncio
import os
import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from string import Template
from typing import ClassVar

from autogen_core.code_executor import CodeExecutor

from autogen_aca_sessions.executor._functions import (
    FunctionsModule,
    InjectedFunction,
    build_functions_module,
    required_packages,
    stub_for,
)
from autogen_aca_sessions.executor._render import PYTHON_LANGUAGES, SHELL_LANGUAGES

__all__ = ["EnvironmentToken", "InjectedFunctionsExecutor", "write_file"]


class EnvironmentToken:
    """Reads a static bearer token from an environment variable at every use (never stored).

    Args:
        variable: The environment variable's name (the executor's ``api_key_env``).
        holder: What the token is for, as the error says it (``the session pool``).
    """

    def __init__(self, variable: str, holder: str) -> None:
        self.variable = variable
        self._holder = holder

    def __call__(self) -> str:
        value = os.environ.get(self.variable)
        if not value:
            raise RuntimeError(
                f"Environment variable {self.variable!r} (api_key_env) is not set or empty; "
                f"it must hold the bearer token for {self._holder}."
            )
        return value


def write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path``, its directories made first (blocking: call it in a thread)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


class InjectedFunctionsExecutor(CodeExecutor, ABC):
    """A ``CodeExecutor`` with injected functions, a local ``work_dir`` and a component config.

    A subclass calls :meth:`_set_functions` in its constructor and provides ``work_dir``.
    """

    SUPPORTED_LANGUAGES: ClassVar[list[str]] = [*PYTHON_LANGUAGES, *SHELL_LANGUAGES]
    FUNCTION_PROMPT_TEMPLATE: ClassVar[str] = """You have access to the following user defined functions.

$functions"""

    _functions: list[InjectedFunction]
    _functions_module: str
    _functions_source: FunctionsModule | None
    _required_packages: dict[str, str]

    def _set_functions(self, functions: Sequence[InjectedFunction], functions_module: str) -> None:
        """Keep the functions and build their module now, so that unreadable or unparsable
        functions fail at construction, not mid-chat."""
        self._functions = list(functions)
        self._functions_module = functions_module
        self._functions_source = build_functions_module(self._functions) if self._functions else None
        self._required_packages = required_packages(self._functions)

    @property
    @abstractmethod
    def work_dir(self) -> Path:
        """Local directory files are written to (and relative upload paths are read from)."""

    @property
    def functions_module(self) -> str:
        """Module name under which the injected functions can be imported."""
        return self._functions_module

    @property
    def functions(self) -> list[str]:
        """Names of the injected functions."""
        return list(self._functions_source.names) if self._functions_source else []

    def format_functions_for_prompt(self, prompt_template: str = FUNCTION_PROMPT_TEMPLATE) -> str:
        """Describe the injected functions for a prompt.

        The template's ``$functions`` is replaced by the functions' stubs (signature and
        docstring), separated by blank lines.
        """
        return Template(prompt_template).substitute(
            functions="\n\n".join(stub_for(func) for func in self._functions)
        )

    async def _local_upload_paths(self, files: Sequence[Path | str]) -> list[Path]:
        """The local files to upload, relative ones taken under ``work_dir``; every one checked
        before anything is sent."""
        paths: list[Path] = []
        for file in files:
            path = Path(file)
            if not path.is_absolute():
                path = self.work_dir / path
            # File system calls may block (network mounts): never on the event loop.
            if not await asyncio.to_thread(path.is_file):
                raise FileNotFoundError(f"{file} does not exist (looked for {path})")
            paths.append(path)
        return paths

    def _warn_unserialised(self, has_credential: bool, api_key_env: str | None) -> None:
        """Warn (at the caller of ``dump_component``) about what the component config leaves out:
        injected functions, and a credential not named by ``api_key_env``."""
        name = type(self).__name__
        # stacklevel 4: this helper, _to_config, dump_component, then dump_component's caller.
        if self._functions:
            warnings.warn(
                f"{name}: injected functions are not serialised; pass them again when loading this "
                "component.",
                stacklevel=4,
            )
        if has_credential and api_key_env is None:
            warnings.warn(
                f"{name}: the credential is not serialised; the loaded executor will use "
                "DefaultAzureCredential. Set api_key_env to read a static token from an environment "
                "variable instead.",
                stacklevel=4,
            )
