"""One rule, for both adapters, for telling from an execution's answer that the session it ran
in is not the one that was set up, and that a block failed only for want of the set-up.

The service replaces a session when its cooldown runs out or it is deleted (a later call with the
same identifier gets a fresh one), and names each incarnation in ``x-ms-session-guid``. It also
says when the interpreter itself was replaced during a call (``ExecutionResult.state_lost``).
A block that then failed only because the injected functions were not there can be sent again
once they are: it ran in a fresh interpreter, so sending it twice repeats no state.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from autogen_aca_sessions.client.models import ExecutionResult

__all__ = ["failed_for_missing_functions", "replaced_since", "setup_lost"]

_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def replaced_since(known_guid: str | None, result: ExecutionResult) -> bool:
    """Whether ``result`` came from another incarnation of the session than ``known_guid`` (the
    one set up). False when either side is not named: only the service's word counts."""
    return known_guid is not None and result.session_guid is not None and result.session_guid != known_guid


def setup_lost(known_guid: str | None, result: ExecutionResult) -> bool:
    """Whether the interpreter that answered lacks the set-up: another incarnation answered, or
    the service says the interpreter was replaced during the call."""
    return result.state_lost or replaced_since(known_guid, result)


def failed_for_missing_functions(result: ExecutionResult, module_name: str, names: Iterable[str]) -> bool:
    """Whether ``result`` failed because the injected functions were not loaded: an import of
    ``module_name`` found no module, or a call of one of ``names`` found no such name."""
    if result.succeeded:
        return False
    # The traceback may come coloured (IPython) and in stderr or the error message.
    text = _ANSI_ESCAPE.sub("", "\n".join(part for part in (result.stderr, result.error_message) if part))
    if f"No module named '{module_name}'" in text:
        return True
    return any(re.search(rf"NameError: name '{re.escape(name)}' is not defined", text) for name in names)
