"""One pool's configuration: a frozen value, validated once, with every default in one place.

``LocalSessionPool`` builds one (from its keyword arguments, or takes one as ``config=``) and
hands the same value to the session runtime and the HTTP layer; the session runtime makes the
kernel launcher from it (passing the resolved sandbox, ``egress`` and the paths to hide).
Nothing below it restates an option or its default. Make variations with :func:`dataclasses.replace`
(validation runs again on the copy)::

    shell = dataclasses.replace(PoolConfig(), pool_type=PoolType.SHELL, pool_name="shell-pool")
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .choice import Choice
from .limits import (
    DEFAULT_COOLDOWN_PERIOD_SECONDS,
    DEFAULT_MAX_CONCURRENT_SESSIONS,
    DEFAULT_MAX_JSON_BYTES,
    DEFAULT_MAX_UPLOAD_BYTES,
    DEFAULT_READY_SESSIONS,
    MAX_EXECUTION_SECONDS,
    ResourceLimits,
)

__all__ = ["Isolation", "KernelLauncherKind", "PoolConfig", "PoolType", "SandboxMode", "valid_pool_name"]


class _Choice(Choice):
    """A configuration choice; a bad value names the option it came from."""

    @classmethod
    def refusal(cls, value: object) -> Exception:
        choices = " or ".join(repr(m.value) for m in cls)
        return ValueError(f"{_OPTION_NAMES.get(cls.__name__, cls.__name__)} must be {choices}, not {value!r}")


class PoolType(_Choice):
    """What sessions of a pool run."""

    PYTHON_LTS = "PythonLTS"
    """A Jupyter kernel per session (code executions)."""
    SHELL = "Shell"
    """Bash commands in the session's sandbox (no kernel)."""


class SandboxMode(_Choice):
    """The confinement asked for."""

    AUTO = "auto"
    """bubblewrap when it works, else none with a loud warning."""
    BWRAP = "bwrap"
    """bubblewrap, or refuse to start."""
    NONE = "none"
    """No confinement (code runs as the server's user)."""


class Isolation(_Choice):
    """The confinement actually in force (what ``auto`` resolved to)."""

    BWRAP = "bwrap"
    """Each session in its own bubblewrap sandbox."""
    NONE = "none"
    """Session code runs as the server's user."""


class KernelLauncherKind(_Choice):
    """How kernels start."""

    PLAIN = "plain"
    """A fresh interpreter per kernel (about a second cold, ~100 MiB each)."""
    FORK = "fork"
    """Forked from a template that imported NumPy, pandas and matplotlib once (~15 MiB each)."""


_OPTION_NAMES = {"PoolType": "pool_type", "SandboxMode": "sandbox", "KernelLauncherKind": "kernel_launcher"}
"""The option each choice is given as, for error messages."""


def valid_pool_name(name: str) -> bool:
    """Whether ``name`` can stand in an endpoint path as is (plain ASCII, no ``/?#%`` or spaces)."""
    return bool(name) and name.isascii() and not any(c in name for c in "/?#% ")


@dataclass(frozen=True)
class PoolConfig:
    """Everything that makes one pool what it is (the server's address, key and TLS are not here).

    Strings are accepted for the enum fields (``pool_type="shell"``) and normalised on creation.
    """

    pool_type: PoolType = PoolType.PYTHON_LTS
    """``PythonLTS`` (a kernel per session) or ``Shell``."""
    pool_name: str = "local-pool"
    """The pool name in the endpoint path."""
    max_concurrent_sessions: int = DEFAULT_MAX_CONCURRENT_SESSIONS
    """Most sessions at once; a call that would create one more gets 404 ``SessionPoolFull``."""
    ready_sessions: int = DEFAULT_READY_SESSIONS
    """Warm, unallocated kernels kept ready (Python pools)."""
    cooldown_period_seconds: float = DEFAULT_COOLDOWN_PERIOD_SECONDS
    """Idle time after which a session is deleted."""
    max_alive_period_seconds: float | None = None
    """Lifetime of a session from its creation, busy or not (ARM's ``OnContainerExit``
    lifecycle); ``None``: sessions end only by the cooldown (``Timed``)."""
    max_execution_seconds: float = MAX_EXECUTION_SECONDS
    """Longest execution; larger ``timeoutInSeconds`` values are clamped to it."""
    egress: bool = False
    """Whether session code may reach the network."""
    egress_allowlist: tuple[str, ...] | None = None
    """Local extension, off (``None``) by default so the wire stays Azure's: host names or
    ``*.domain`` patterns that sessions of a pool *without* egress may reach through the
    server's egress proxy (HTTP and HTTPS only, deny by default, decisions logged). Needs
    bubblewrap. ``egress=True`` keeps its meaning (the whole network) and ignores it."""
    sandbox: SandboxMode = SandboxMode.AUTO
    """The confinement asked for; the session runtime resolves it once on start."""
    kernel_launcher: KernelLauncherKind = KernelLauncherKind.FORK
    """How kernels start (Python pools): forked from a pre-imported template by default (~15 MiB
    per idle session with the data stack imported); ``plain`` starts a fresh interpreter each."""
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    """Largest upload request (the sum of its files); above it 413."""
    max_json_bytes: int = DEFAULT_MAX_JSON_BYTES
    """Largest JSON request body; above it 413."""
    limits: ResourceLimits = field(default_factory=ResourceLimits)
    """Per-session resource limits (memory, processes, file size, open files)."""
    mcp: bool = False
    """Whether the pool serves its MCP server at ``{endpoint}/mcp`` from the start (its key, like
    the bearer key, is the pool's, not the configuration's; a running pool can switch it)."""
    wire_extensions: bool = False
    """Whether execution results carry the fields Azure does not send (``stdoutTruncated``,
    ``stderrTruncated``, ``images`` after the first); off, the pool emits exactly Azure's shape."""

    def __post_init__(self) -> None:
        # Frozen: normalised values are written once, here, and never again.
        object.__setattr__(self, "pool_type", PoolType.parse(self.pool_type))
        object.__setattr__(self, "sandbox", SandboxMode.parse(self.sandbox))
        object.__setattr__(self, "kernel_launcher", KernelLauncherKind.parse(self.kernel_launcher))
        if not isinstance(self.pool_name, str) or not valid_pool_name(self.pool_name):
            raise ValueError(
                "pool_name must be a plain ASCII name without '/', '?', '#', '%' or spaces: "
                f"{self.pool_name!r}"
            )
        if self.max_execution_seconds < 1:
            raise ValueError("max_execution_seconds must be at least 1")
        if self.max_concurrent_sessions < 0:
            raise ValueError("max_concurrent_sessions must not be negative")
        if self.ready_sessions < 0:
            object.__setattr__(self, "ready_sessions", 0)
        if self.max_alive_period_seconds is not None and self.max_alive_period_seconds <= 0:
            raise ValueError("max_alive_period_seconds must be positive (or None)")
        if self.egress_allowlist is not None:
            if isinstance(self.egress_allowlist, str):
                raise ValueError("egress_allowlist must be a list of host patterns, not one string")
            patterns = tuple(self.egress_allowlist)
            # Checked here, so a bad pattern fails when the pool is configured, not when it starts.
            from .runtime.egress.policy import EgressPolicy

            EgressPolicy.allow_hosts(patterns)
            object.__setattr__(self, "egress_allowlist", patterns)
        if self.max_upload_bytes < 0 or self.max_json_bytes < 0:
            raise ValueError("max_upload_bytes and max_json_bytes must not be negative")

    @property
    def is_shell(self) -> bool:
        """Whether sessions run shell commands instead of kernels."""
        return self.pool_type is PoolType.SHELL

    @property
    def execution_cap_seconds(self) -> int:
        """``max_execution_seconds`` as the whole seconds the wire contracts clamp to (at least 1)."""
        return max(1, int(self.max_execution_seconds))
