"""The serialisable configuration of the Agent Framework integration."""

from __future__ import annotations

from enum import Enum
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from autogen_aca_sessions.client import ApiVersion
from autogen_aca_sessions.client.limits import DEFAULT_API_VERSION

__all__ = [
    "ApprovalModeName",
    "BackendKind",
    "CodeInterpreterConfig",
    "DynamicSessionsConfig",
    "PoolKind",
    "SandboxesConfig",
]

ApprovalModeName = Literal["always_require", "never_require"]
"""Agent Framework's approval modes: a person approves every call, or none."""


class PoolKind(str, Enum):
    """What the pool's sessions run, which decides the tools offered to the model."""

    PYTHON = "python"
    """A Python (Jupyter) pool, e.g. ``PythonLTS``: the ``execute_code`` tool."""
    SHELL = "shell"
    """A shell pool: the ``run_shell`` tool."""

    def __str__(self) -> str:
        return self.value


class BackendKind(str, Enum):
    """Where the tools run code: the service behind a configuration."""

    DYNAMIC_SESSIONS = "dynamic_sessions"
    """Azure Container Apps dynamic sessions (a session pool's data plane)."""
    SANDBOXES = "sandboxes"
    """Azure Container Apps Sandboxes (a sandbox group's data plane)."""

    def __str__(self) -> str:
        return self.value


class CodeInterpreterConfig(BaseModel):
    """What every backend's configuration has: limits, approval, local directories, functions.

    Not used on its own: :class:`DynamicSessionsConfig` and :class:`SandboxesConfig` add where the
    code runs.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    BACKEND: ClassVar[BackendKind]
    """The backend this kind of configuration describes."""

    timeout_seconds: int = Field(
        default=60, gt=0, description="Time limit of one execution; output so far comes back when it hits."
    )
    max_output_chars: int = Field(
        default=20_000,
        gt=0,
        description="Characters of stdout, stderr and value each returned to the model; the rest is cut "
        "(start and end kept).",
    )
    max_images: int = Field(default=8, ge=0, description="Images returned per execution.")
    approval_mode: ApprovalModeName = Field(
        default="never_require",
        description="Whether a person must approve each execution and file transfer before it runs.",
    )
    upload_dir: str | None = Field(
        default=None, description="Local directory the upload tool may read from; None disables that tool."
    )
    download_dir: str | None = Field(
        default=None, description="Local directory the download tool may write to; None disables that tool."
    )
    functions_module: str = Field(
        default="functions", description="Module name under which injected functions are importable."
    )
    allow_insecure_http: bool = Field(
        default=False, description="Accept http:// to a host that is not loopback (tokens travel in clear)."
    )
    request_timeout: float = Field(
        default=30.0, gt=0, description="Timeout of requests other than executions."
    )

    @property
    def backend(self) -> BackendKind:
        """The backend this configuration describes."""
        return self.BACKEND

    @field_validator("functions_module")
    @classmethod
    def _module_name(cls, value: str) -> str:
        if not value.isidentifier():
            raise ValueError(f"functions_module must be a Python identifier, got {value!r}")
        return value

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (Agent Framework's ``to_dict`` convention)."""
        return self.model_dump(mode="json")


class DynamicSessionsConfig(CodeInterpreterConfig):
    """Everything about the sessions integration that can be written down and read back.

    Credentials and injected functions are not part of it (one is a secret, the other is code):
    pass them to :class:`DynamicSessions` beside the configuration. ``model_dump(mode="json")``
    and ``model_validate`` round-trip it, so it fits a YAML or JSON file next to an Agent
    Framework declarative agent.
    """

    BACKEND: ClassVar[BackendKind] = BackendKind.DYNAMIC_SESSIONS

    pool_management_endpoint: str = Field(description="The pool's poolManagementEndpoint.")
    api_version: ApiVersion = Field(
        default=DEFAULT_API_VERSION, description="Data-plane api-version to speak."
    )
    pool_kind: PoolKind = Field(default=PoolKind.PYTHON, description="Python or shell pool.")
    session_identifier: str | None = Field(
        default=None,
        description="A caller-chosen session identifier used for every conversation; None gives each "
        "AgentSession its own session.",
    )
    identifier_prefix: str = Field(
        default="af-", description="Prefix of the identifiers this package creates."
    )
    release_on_close: bool = Field(
        default=True, description="Delete the sessions this object created when it is closed."
    )
    restore_checkpoint_on_loss: bool = Field(
        default=False,
        description="When a conversation's session lost its state, restore the last checkpoint made or "
        "restored for it, and tell the model in the tool result.",
    )

    @field_validator("session_identifier")
    @classmethod
    def _identifier(cls, value: str | None) -> str | None:
        if value is not None and not (0 < len(value) <= 256):
            raise ValueError("session_identifier must have 1 to 256 characters")
        return value

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DynamicSessionsConfig:
        """The configuration a :meth:`to_dict` result describes."""
        return cls.model_validate(data)


class SandboxesConfig(CodeInterpreterConfig):
    """The Sandboxes backend: one sandbox per ``AgentSession``, in one sandbox group.

    The sandbox is created on a conversation's first call and its id is written into the
    ``AgentSession``'s state, so a conversation restored from ``AgentSession.to_dict()`` in a
    new process finds the same sandbox, memory included. Between agent runs the sandbox is
    suspended (``suspend_after_run``) and, as a safety net for a process that never gets to
    that hook, suspends itself after ``idle_suspend_seconds`` idle; the next call resumes it.
    Credentials and injected functions are passed beside it, as for :class:`DynamicSessionsConfig`.
    """

    BACKEND: ClassVar[BackendKind] = BackendKind.SANDBOXES

    endpoint: str = Field(
        description="The Sandboxes data-plane base URL (https://management.<region>.azuredevcompute.io, "
        "or a local server's base URL)."
    )
    subscription_id: str = Field(min_length=1, description="Subscription of the sandbox group.")
    resource_group: str = Field(min_length=1, description="Resource group of the sandbox group.")
    sandbox_group: str = Field(min_length=1, description="The sandbox group's name.")
    image: str = Field(
        default="python-3.12", min_length=1, description="Public disk image a new sandbox starts from."
    )
    idle_suspend_seconds: float | None = Field(
        default=300.0,
        gt=0,
        description="The sandbox suspends itself (memory kept) after this long without a call; None: "
        "never by itself.",
    )
    suspend_after_run: bool = Field(
        default=True,
        description="The CodeAct provider suspends the conversation's sandbox (memory kept) when an "
        "agent run ends; the next call resumes it.",
    )
    delete_on_close: bool = Field(
        default=False,
        description="Delete the sandboxes this object created when it is closed; by default they are "
        "suspended and kept, so a later process can resume them from the AgentSession's state.",
    )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SandboxesConfig:
        """The configuration a :meth:`to_dict` result describes."""
        return cls.model_validate(data)
