"""String enums that the local server reads from requests, flags and configuration."""

from __future__ import annotations

import enum
from typing import TypeVar

__all__ = ["Choice"]

_C = TypeVar("_C", bound="Choice")


class Choice(str, enum.Enum):
    """A string-valued choice: equal to its value, printed as its value, parsed case-insensitively
    (Azure and its SDKs compare these values that way). Subclasses say how a bad value is refused."""

    def __str__(self) -> str:
        return str(self.value)

    @classmethod
    def parse(cls: type[_C], value: object) -> _C:
        """The member named by ``value`` (a member or its value in any letter case)."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            wanted = value.strip().lower()
            for member in cls:
                if member.value.lower() == wanted:
                    return member
        raise cls.refusal(value)

    @classmethod
    def refusal(cls, value: object) -> Exception:
        """The exception for a value that names no member."""
        choices = " or ".join(repr(m.value) for m in cls)
        return ValueError(f"{cls.__name__} must be {choices}, not {value!r}")
