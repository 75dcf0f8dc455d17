"""Names shared by the Sandboxes runtime tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from autogen_aca_sessions.local.runtime.sandboxes import LocalSandbox

GROUP = "g"
"""The group every fixture sandbox is made in."""

MakeSandbox = Callable[..., Awaitable[LocalSandbox]]
"""``await make_sandbox(spec=None, group="g")``: a Running sandbox."""
