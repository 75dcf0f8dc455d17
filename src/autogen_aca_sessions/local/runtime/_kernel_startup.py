"""Code that runs inside every session kernel once, before the first user cell.

It is executed by ``_kernel_boot.py`` through IPython's ``exec_lines`` in a private
namespace, so the only trace it leaves is one name in ``builtins``
(``__aca_result__``), which the server calls through ``user_expressions`` after each
cell. It must stay importable without the package (the kernel may not have it on
``sys.path``) and must stay fast: it runs on every kernel start.
"""

from __future__ import annotations

import builtins
import contextlib
import math
import os
import sys
from typing import Any

_DATA_DIR = os.environ.get("ACA_DATA_DIR", "/mnt/data")
# Large single writes are cut into pieces and flushed early so that no iopub message
# grows beyond this many characters: the server caps what it keeps, but each message
# is held whole while it is decoded.
_CHUNK_CHARS = 32_768
# The displayed text of a cell's value goes out as one message, and the server refuses
# messages over 128 MiB; it reads the value itself through ``__aca_result__``, so only the
# start of a huge text representation is sent.
_DISPLAY_TEXT_CHARS = 1_000_000


def _jsonable(value: Any, depth: int = 0) -> Any:
    """Turn ``value`` into JSON-native data the way the service does, else its repr text."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return float(value)
    if depth > 32:
        return repr(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(item, depth + 1) for item in value]
    if isinstance(value, dict):
        return {
            (key if isinstance(key, str) else str(key)): _jsonable(item, depth + 1)
            for key, item in value.items()
        }
    # numpy scalars (np.int64, np.float32, np.bool_ ...) without importing numpy here.
    item = getattr(value, "item", None)
    if callable(item) and type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0:
        try:
            return _jsonable(item(), depth + 1)
        except Exception:
            return repr(value)
    return repr(value)


def _ends_quietly(source: str) -> bool:
    """Whether the cell's last token is ``;``, which suppresses the value display."""
    import io
    import tokenize

    last = None
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type in (
                tokenize.COMMENT,
                tokenize.NL,
                tokenize.NEWLINE,
                tokenize.INDENT,
                tokenize.DEDENT,
                tokenize.ENDMARKER,
            ):
                continue
            last = tok
    except (tokenize.TokenError, SyntaxError):
        return False
    return last is not None and last.type == tokenize.OP and last.string == ";"


class _JsonText:
    """Displays as its JSON text verbatim, so the server can read it back with ``json.loads``."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.text)


def _result(limit: int = 1_000_000) -> _JsonText:
    """Describe the last cell's value: ``{"kind": "none"}`` when it had none, else its value."""
    import ast
    import json

    from IPython.core.getipython import get_ipython

    ip: Any = get_ipython()  # type: ignore[no-untyped-call, unused-ignore]  # untyped before IPython 9
    last = ip.last_execution_result
    if last is None or last.info is None:
        return _JsonText('{"kind": "none"}')
    raw = last.info.raw_cell or ""
    try:
        tree = ast.parse(ip.transform_cell(raw))
    except Exception:
        return _JsonText('{"kind": "none"}')
    if not tree.body or not isinstance(tree.body[-1], ast.Expr) or _ends_quietly(raw):
        return _JsonText('{"kind": "none"}')
    if last.result is None and isinstance(tree.body[-1].value, ast.Call):
        # A call returning None (print(), a procedure) displays nothing, as on the service
        # (``print(7*9)`` -> ``""``); a bare ``None`` or a name bound to it stays a value.
        return _JsonText('{"kind": "none"}')
    try:
        text = json.dumps({"kind": "value", "value": _jsonable(last.result)}, allow_nan=False)
    except Exception:
        text = json.dumps({"kind": "value", "value": repr(last.result)})
    if len(text) > limit:
        # A value too big to ship as data comes back as the start of its text.
        text = json.dumps({"kind": "value", "value": repr(last.result)[:limit]})
    return _JsonText(text)


class _OutputLimit:
    """Per-execution output accounting shared by the stream patches and the metadata hooks.

    The server names its cap in the execute request's metadata
    (``aca_max_output_chars``); the kernel then sends at most that many characters of
    each stream and reports how many were written in all in the reply's metadata
    (``aca_output_chars``), together with the kept text itself (``aca_output``): iopub
    is a publish socket that loses messages under a storm of small flushed writes,
    the shell reply is not. A 200 MB print thus never crosses the socket either.
    """

    def __init__(self) -> None:
        self.cap: int | None = None
        self.counts = {"stdout": 0, "stderr": 0}
        self.kept: dict[str, list[str]] = {"stdout": [], "stderr": []}


_LIMIT = _OutputLimit()


def _is_patched(stream: Any) -> bool:
    return bool(getattr(getattr(stream, "write", None), "_aca_output_limit", False))


def _patch_stream(stream: Any, name: str) -> None:
    original = getattr(stream, "write", None)
    flush = getattr(stream, "flush", None)
    if original is None or flush is None or not hasattr(stream, "pub_thread") or _is_patched(stream):
        return
    pending = [0]

    def write(text: Any) -> Any:
        if not isinstance(text, str):
            return original(text)  # raises the usual TypeError
        size = len(text)
        before = _LIMIT.counts[name]
        _LIMIT.counts[name] = before + size
        cap = _LIMIT.cap
        if cap is not None:
            room = cap - before
            if room <= 0:
                return size
            if room < size:
                text = text[:room]
            _LIMIT.kept[name].append(text)
        if len(text) <= _CHUNK_CHARS and pending[0] < _CHUNK_CHARS:
            pending[0] += len(text)
            original(text)
            return size
        for start in range(0, len(text), _CHUNK_CHARS):
            original(text[start : start + _CHUNK_CHARS])
            flush()
        pending[0] = 0
        return size

    write._aca_output_limit = True  # type: ignore[attr-defined]
    with contextlib.suppress(AttributeError, TypeError):
        stream.write = write


def _cap_displayed_values(ip: Any) -> None:
    hook: Any = getattr(ip, "displayhook", None)
    original = getattr(hook, "write_format_data", None)
    if original is None:
        return

    def write_format_data(format_dict: Any, md_dict: Any = None) -> Any:
        if isinstance(format_dict, dict):
            format_dict = {
                key: value[:_DISPLAY_TEXT_CHARS] if isinstance(value, str) else value
                for key, value in format_dict.items()
            }
        return original(format_dict, md_dict)

    with contextlib.suppress(AttributeError, TypeError):
        hook.write_format_data = write_format_data


def _patch_kernel() -> None:
    from IPython.core.getipython import get_ipython

    ip: Any = get_ipython()  # type: ignore[no-untyped-call, unused-ignore]  # untyped before IPython 9
    kernel = getattr(ip, "kernel", None)
    if kernel is None:
        return
    init_metadata = kernel.init_metadata
    finish_metadata = kernel.finish_metadata

    def init(parent: Any) -> Any:
        metadata = init_metadata(parent)
        if parent.get("header", {}).get("msg_type") == "execute_request":
            # Patched here, outside any cell: IPython 9 runs the start-up file inside
            # run_cell, whose output tee puts back the stream's original write on exit,
            # dropping a patch made there.
            _patch_stream(sys.stdout, "stdout")
            _patch_stream(sys.stderr, "stderr")
            cap = parent.get("metadata", {}).get("aca_max_output_chars")
            _LIMIT.cap = cap if isinstance(cap, int) and cap >= 0 else None
            _LIMIT.counts = {"stdout": 0, "stderr": 0}
            _LIMIT.kept = {"stdout": [], "stderr": []}
        return metadata

    def finish(parent: Any, metadata: Any, reply_content: Any) -> Any:
        metadata = finish_metadata(parent, metadata, reply_content)
        if parent.get("header", {}).get("msg_type") == "execute_request":
            _drain_child_output()
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            if not (_is_patched(sys.stdout) and _is_patched(sys.stderr)):
                # Without the patch the counts mean nothing; the server falls back to iopub.
                return metadata
            metadata["aca_output_chars"] = dict(_LIMIT.counts)
            if _LIMIT.cap is not None:
                metadata["aca_output"] = {name: "".join(parts) for name, parts in _LIMIT.kept.items()}
        return metadata

    def _drain_child_output() -> None:
        # Child processes write to fds 1 and 2, which ipykernel reads from a pipe on a thread of
        # its own; on a busy machine that thread may not have read the child's last output when
        # the cell ends, and it would miss the reply's record. Wait (boundedly) until the pipes
        # are empty, then a moment for the thread to hand on what it read last.
        import select
        import time

        pipes = [fid for s in (sys.stdout, sys.stderr) if isinstance(fid := getattr(s, "_fid", None), int)]
        if not pipes:
            return
        waited = False
        for _ in range(200):
            try:
                readable, _, _ = select.select(pipes, [], [], 0)
            except (OSError, ValueError):
                return
            if not readable:
                break
            waited = True
            time.sleep(0.005)
        if waited:
            time.sleep(0.02)

    kernel.init_metadata = init
    kernel.finish_metadata = finish
    _cap_displayed_values(ip)
    _patch_stream(sys.stdout, "stdout")
    _patch_stream(sys.stderr, "stderr")


def _main() -> None:
    with contextlib.suppress(OSError):
        os.chdir(_DATA_DIR)
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    builtins.__aca_result__ = _result  # type: ignore[attr-defined]
    # A kernel forked from a template that imported pyplot before IPython existed: hook
    # the inline backend up now (a fresh kernel does this when pyplot is imported).
    inline = sys.modules.get("matplotlib_inline.backend_inline")
    if inline is not None and hasattr(inline, "_enable_matplotlib_integration"):
        with contextlib.suppress(Exception):
            inline._enable_matplotlib_integration()
    _patch_kernel()


_main()
