"""Where the client's time and jitter come from: one small injectable object.

The client waits between retries and polls, bounds an execution by a deadline and spreads
retries with jitter. All of that goes through a :class:`Clock`, so tests pass a clock whose
``sleep`` moves its own time instead of waiting, and pin the jitter, without patching privates.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """Monotonic time, waiting, and the random jitter of retry delays."""

    def now(self) -> float:
        """Monotonic seconds (only differences matter)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` without blocking the event loop."""
        ...

    def uniform(self, low: float, high: float) -> float:
        """A random number in ``[low, high]`` (the jitter added to a backoff delay)."""
        ...


class SystemClock:
    """The real clock: ``time.monotonic``, ``asyncio.sleep`` and ``random.uniform``."""

    def now(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """``asyncio.sleep(seconds)``."""
        await asyncio.sleep(seconds)

    def uniform(self, low: float, high: float) -> float:
        """``random.uniform(low, high)`` (jitter, not cryptography)."""
        return random.uniform(low, high)
