"""Python snippets the executor sends to the session's interpreter (the ones every adapter sends,
``setup_code`` and ``packages_code``, live in :mod:`autogen_aca_sessions.client.session_code`,
and ``shell_code`` in :mod:`autogen_aca_sessions.client.session_shell`).

Every snippet runs its body through ``exec`` in a private dictionary, so the only trace it leaves
in the user's namespace is what it means to leave (the injected function names). Arguments are
embedded with ``repr``, which always yields a valid Python literal for ``str``, ``int``,
``float``, ``None`` and tuples of strings: no escaping of user text is ever needed.
"""

from __future__ import annotations

from autogen_aca_sessions.client.session_code import MNT_DATA, packages_code, setup_code
from autogen_aca_sessions.client.session_shell import shell_code

__all__ = [
    "MNT_DATA",
    "packages_code",
    "reset_code",
    "setup_code",
    "shell_code",
]

_RESET_BODY = """
_ip = _get_ipython() if _get_ipython is not None else None
if _ip is not None:
    _ip.reset(new_session=False)
else:
    for _key in [k for k in _ns if not k.startswith("__")]:
        del _ns[_key]
"""


def reset_code() -> str:
    """Clear the interactive namespace (IPython's ``reset``); used where a session cannot be deleted."""
    return f"exec({_RESET_BODY!r}, {{'_ns': globals(), '_get_ipython': globals().get('get_ipython')}})\n"
