"""Python snippets any adapter sends to a session's interpreter to prepare it.

Framework-neutral on purpose (no AutoGen, no Agent Framework): both the AutoGen executor and the
Agent Framework integration use them, and the session side only needs plain Python. Each snippet
runs its body through ``exec`` in a private dictionary, so the only trace it leaves in the user's
namespace is what it means to leave (the injected function names). Arguments are embedded with
``repr``, which always yields a valid Python literal for ``str``, ``int``, ``float``, ``None`` and
tuples of strings: no escaping of user text is ever needed.
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
    _filename = "<" + _name + ">"
    # Tracebacks through injected functions show their source lines.
    linecache.cache[_filename] = (len(_source), None, _source.splitlines(True), _filename)
    _module = types.ModuleType(_name)
    _module.__file__ = _filename
    _previous = sys.modules.get(_name)
    sys.modules[_name] = _module
    try:
        exec(compile(_source, _filename, "exec"), _module.__dict__)
    except BaseException:
        if _previous is None:
            sys.modules.pop(_name, None)
        else:
            sys.modules[_name] = _previous
        raise
    for _n in _names:
        _ns[_n] = getattr(_module, _n)
"""


def setup_code(
    module_name: str | None, source: str | None, names: tuple[str, ...], *, directory: str = MNT_DATA
) -> str:
    """Change to ``directory`` (``/mnt/data``, where a session keeps its files) and register
    ``source`` as the importable module ``module_name``.

    The module is created with ``types.ModuleType`` + ``exec`` and put into ``sys.modules``, so
    ``from <module_name> import f`` works; its function names are bound in the interactive
    namespace too, so ``f(...)`` works without an import. Without ``source`` it only changes directory.
    """
    args = {"_mnt": directory, "_name": module_name, "_source": source, "_names": names}
    pairs = ", ".join(f"{key!r}: {value!r}" for key, value in args.items())
    return f"exec({_SETUP_BODY!r}, {{{pairs}, '_ns': globals()}})\n"


_PACKAGES_BODY = """
from importlib import metadata as _metadata
_out = sorted({(d.metadata["Name"] or "") for d in _metadata.distributions()} - {""})
"""


def packages_code() -> str:
    """An expression whose value is the sorted list of distribution names installed in the session."""
    return f"(lambda _g: (exec({_PACKAGES_BODY!r}, _g), _g['_out'])[1])({{}})\n"
