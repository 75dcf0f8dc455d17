"""The local pool's limits, in one place: execution time, request bodies, output, per-session resources.

Everything else (the pool's configuration, the HTTP layer, the runtime, the launchers) takes its
defaults from here, so a limit is changed once.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DEFAULT_COOLDOWN_PERIOD_SECONDS",
    "DEFAULT_MAX_CONCURRENT_SESSIONS",
    "DEFAULT_MAX_JSON_BYTES",
    "DEFAULT_MAX_UPLOAD_BYTES",
    "DEFAULT_READY_SESSIONS",
    "MAX_EXECUTION_SECONDS",
    "MAX_OUTPUT_CHARS",
    "ResourceLimits",
]

_GIB = 1024**3

MAX_EXECUTION_SECONDS = 220
"""The service's cap on one execution (``timeoutInSeconds`` above it is clamped): the default
``max_execution_seconds`` of a pool. ``client/limits.py`` states it for the client side: the pool
never imports the client."""
DEFAULT_MAX_CONCURRENT_SESSIONS = 100
"""Sessions a pool holds at once unless configured otherwise."""
DEFAULT_READY_SESSIONS = 2
"""Kernels kept started ahead of need unless configured otherwise."""
DEFAULT_COOLDOWN_PERIOD_SECONDS = 300
"""Idle time after which a session is deleted, unless configured otherwise."""
DEFAULT_MAX_UPLOAD_BYTES = 128 * 1024 * 1024
"""Largest upload request (the sum of its files); above it 413."""
DEFAULT_MAX_JSON_BYTES = 64 * 1024 * 1024
"""Largest JSON request body accepted (code can be large, but not unbounded); above it 413."""
MAX_OUTPUT_CHARS = 32_000_000
"""Hard upper bound of ``max_output_chars``: what one call may keep of each stream in memory."""


@dataclass(frozen=True)
class ResourceLimits:
    """Per-session resource limits; ``None`` leaves a limit as the server has it."""

    memory_bytes: int | None = 4 * _GIB
    """Address-space limit of each process (RLIMIT_AS): a runaway allocation gets MemoryError."""
    max_processes: int | None = 256
    """Processes and threads a session may have at once (pids cgroup, else RLIMIT_NPROC)."""
    file_size_bytes: int | None = 1 * _GIB
    """Largest file a session may write (RLIMIT_FSIZE)."""
    open_files: int | None = 1024
    """Open file descriptors per process (RLIMIT_NOFILE)."""

    def rlimits(self, *, with_nproc: bool) -> dict[str, int]:
        """The rlimits ``_kernel_boot.py`` sets, by ``resource`` constant name."""
        limits: dict[str, int] = {"RLIMIT_CORE": 0}
        if self.memory_bytes is not None:
            limits["RLIMIT_AS"] = self.memory_bytes
        if self.file_size_bytes is not None:
            limits["RLIMIT_FSIZE"] = self.file_size_bytes
        if self.open_files is not None:
            limits["RLIMIT_NOFILE"] = self.open_files
        if with_nproc and self.max_processes is not None:
            limits["RLIMIT_NPROC"] = self.max_processes
        return limits
