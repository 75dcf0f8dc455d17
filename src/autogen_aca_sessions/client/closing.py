"""``async with`` for objects that only need closing on the way out (the client and the adapters'
objects over it)."""

from __future__ import annotations

from types import TracebackType
from typing import TypeVar

__all__ = ["AsyncClosing"]

_C = TypeVar("_C", bound="AsyncClosing")


class AsyncClosing:
    """Mixin: ``async with obj`` yields ``obj`` and awaits :meth:`close` on the way out."""

    async def close(self) -> None:
        """Release what the object holds; subclasses say what."""
        raise NotImplementedError

    async def __aenter__(self: _C) -> _C:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
