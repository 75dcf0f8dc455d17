"""Environments of the MCP tools: an ``environmentId`` names a session allocated on first use.

``launchShell`` hands out a random UUID at once and starts nothing (the session is allocated
lazily, as on Azure). The first command creates the pool session whose identifier is the
environment id, so it shares the pool's limits, sandbox and cooldown with data-plane sessions.
An environment is gone once its session expired or was deleted, or, never used, once it sat
unused for the cooldown period: the tools then say to launch a new one.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["EnvironmentGone", "EnvironmentRegistry", "TooManyEnvironments"]


class EnvironmentGone(Exception):
    """The environment id is unknown here, or its session expired or was deleted."""


class TooManyEnvironments(Exception):
    """The registry is full of live environments."""


@dataclass
class _Environment:
    launched_at: float = field(default_factory=time.monotonic)
    last_used: float = field(default_factory=time.monotonic)
    allocated: bool = False


class EnvironmentRegistry:
    """The environments launched on one pool.

    ``session_exists`` tells whether the pool still holds a session (false once reaped or
    deleted); ``cooldown_seconds`` is how long a launched but unused environment stays valid.
    """

    def __init__(
        self, *, session_exists: Callable[[str], bool], cooldown_seconds: float, max_environments: int
    ) -> None:
        self._session_exists = session_exists
        self._cooldown = cooldown_seconds
        self._max = max_environments
        self._envs: dict[str, _Environment] = {}

    @property
    def cooldown_seconds(self) -> float:
        """How long a launched but unused environment stays valid."""
        return self._cooldown

    @property
    def max_environments(self) -> int:
        """Most live environments at once."""
        return self._max

    def reconfigure(self, *, cooldown_seconds: float, max_environments: int) -> None:
        """Follow the pool's new limits (launched environments are kept)."""
        self._cooldown = cooldown_seconds
        self._max = max_environments

    def launch(self) -> str:
        """A new environment id (no session yet)."""
        self._prune()
        if len(self._envs) >= self._max:
            raise TooManyEnvironments(
                f"This pool already has {self._max} live environments; reuse one, or wait for idle ones "
                "to expire."
            )
        environment_id = str(uuid.uuid4())
        self._envs[environment_id] = _Environment()
        return environment_id

    def check(self, environment_id: str) -> None:
        """Raise :class:`EnvironmentGone` unless the environment can take a command now."""
        env = self._envs.get(environment_id)
        if env is None or self._expired(environment_id, env, time.monotonic()):
            self._envs.pop(environment_id, None)
            raise EnvironmentGone(environment_id)

    def mark_used(self, environment_id: str) -> None:
        """Record that a command ran (its session now exists)."""
        env = self._envs.get(environment_id)
        if env is not None:
            env.allocated = True
            env.last_used = time.monotonic()

    def is_allocated(self, environment_id: str) -> bool:
        """Whether a command already created the environment's session."""
        env = self._envs.get(environment_id)
        return env is not None and env.allocated

    def __len__(self) -> int:
        return len(self._envs)

    def _expired(self, environment_id: str, env: _Environment, now: float) -> bool:
        if env.allocated:
            return not self._session_exists(environment_id)
        return now - env.last_used > self._cooldown

    def _prune(self) -> None:
        now = time.monotonic()
        for environment_id in [e for e, env in self._envs.items() if self._expired(e, env, now)]:
            del self._envs[environment_id]
