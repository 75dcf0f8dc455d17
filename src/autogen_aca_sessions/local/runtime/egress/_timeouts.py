"""A time bound for one await, cheap on the proxy's hot path.

``asyncio.wait_for`` makes a task per call before Python 3.12; the proxy bounds every read
it makes, so on 3.11+ the bound is ``asyncio.timeout`` (no task). Both raise
``asyncio.TimeoutError`` (the built-in ``TimeoutError`` since 3.11).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["within"]

_T = TypeVar("_T")

if sys.version_info >= (3, 11):

    async def within(awaitable: Awaitable[_T], seconds: float) -> _T:
        """``await awaitable``, or ``TimeoutError`` after ``seconds``."""
        async with asyncio.timeout(seconds):
            return await awaitable

else:

    async def within(awaitable: Awaitable[_T], seconds: float) -> _T:
        """``await awaitable``, or ``asyncio.TimeoutError`` after ``seconds``."""
        return await asyncio.wait_for(awaitable, seconds)
