"""Python snippets sent to a session's interpreter to prepare it for the agent.

Framework-neutral on purpose (no AutoGen, no Agent Framework): the session side only needs plain
Python. Each snippet runs its body through ``exec`` in a private dictionary, so the only trace it
leaves in the user's namespace is the injected function names. Arguments are embedded with
``repr``, which always yields a valid literal for the ``str``/``tuple``/``None`` values used here.
"""

from __future__ import annotations

__all__ = ["MNT_DATA", "packages_code", "setup_code"]

MNT_DATA = "/mnt/data"
"""Where the service keeps uploaded files; code runs with it as the working directory."""

_SETUP_BODY = """
import linecache, os, sys, types
if os.path.isdir(_mnt):
    os.chdir(_mnt)
if _source is not None:
    _filename = "<" + _module_name + ">"
    # Tracebacks through injected functions then show their source lines.
    linecache.cache[_filename] = (len(_source), None, _source.splitlines(True), _filename)
    _module = types.ModuleType(_module_name)
    _module.__file__ = _filename
    _before = sys.modules.get(_module_name)
    sys.modules[_module_name] = _module
    try:
        exec(compile(_source, _filename, "exec"), _module.__dict__)
    except BaseException:
        if _before is None:
            sys.modules.pop(_module_name, None)
        else:
            sys.modules[_module_name] = _before
        raise
    for _n in _names:
        _user_ns[_n] = getattr(_module, _n)
"""


def setup_code(module_name: str, source: str | None, names: tuple[str, ...]) -> str:
    """Change to ``/mnt/data`` and register ``source`` as the importable module ``module_name``.

    The module is put into ``sys.modules``, so ``from <module_name> import f`` works, and its
    function names are bound in the interactive namespace too, so ``f(...)`` works without an import.
    """
    args = {"_mnt": MNT_DATA, "_module_name": module_name, "_source": source, "_names": names}
    pairs = ", ".join(f"{key!r}: {value!r}" for key, value in args.items())
    return f"exec({_SETUP_BODY!r}, {{{pairs}, '_user_ns': globals()}})\n"


_PACKAGES_BODY = """
from importlib import metadata as _metadata
_out = sorted({(d.metadata["Name"] or "") for d in _metadata.distributions()} - {""}, key=str.lower)
"""


def packages_code() -> str:
    """An expression whose value is the sorted list of distributions installed in the session."""
    return f"(lambda _g: (exec({_PACKAGES_BODY!r}, _g), _g['_out'])[1])({{}})\n"
