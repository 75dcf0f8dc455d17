"""Turning user functions into a module that the session can import (``from functions import f``).

Framework-neutral: functions are plain Python callables (their source is read with ``inspect``)
or :class:`FunctionSource` values carrying source text. The module is rebuilt from source in the
session, so a function must be self-contained: the imports it needs go inside its body or in
``FunctionSource.imports``.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

__all__ = ["FunctionSource", "FunctionsModule", "InjectedFunction", "build_functions_module"]


@dataclass(frozen=True)
class FunctionSource:
    """A function given as source text (for functions defined where ``inspect`` cannot read them)."""

    source: str
    """Python source defining one or more top-level functions."""
    imports: tuple[str, ...] = field(default_factory=tuple)
    """Import statements the source needs, e.g. ``("import math",)``; placed before it."""


InjectedFunction: TypeAlias = "Callable[..., Any] | FunctionSource"
"""What can be injected: a plain function, or its source."""


@dataclass(frozen=True)
class FunctionsModule:
    """The module built from the injected functions."""

    source: str
    """Python source of the module."""
    names: tuple[str, ...]
    """Top-level function names the module defines, in order."""
    stubs: tuple[str, ...]
    """One signature-and-docstring stub per function, for the model's instructions."""


def _display_name(func: InjectedFunction) -> str:
    if isinstance(func, FunctionSource):
        return func.source.strip().splitlines()[0] if func.source.strip() else "<empty source>"
    return str(getattr(func, "__qualname__", getattr(func, "__name__", repr(func))))


def _read_source(func: InjectedFunction) -> str:
    if isinstance(func, FunctionSource):
        return func.source
    if not callable(func):
        raise TypeError(f"injected functions must be functions or FunctionSource, got {type(func).__name__}")
    target = inspect.unwrap(func)
    try:
        return inspect.getsource(target)
    except (OSError, TypeError) as exc:
        raise ValueError(
            f"Cannot read the source of injected function {_display_name(func)!r}: {exc}. "
            "Define it in a file, or pass FunctionSource(source=...)."
        ) from exc


def _stub(source_lines: list[str], node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    """The function's own signature lines and docstring, as written, without the body."""
    first = node.body[0]
    has_doc = (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    )
    if first.lineno == node.lineno:
        # A one-line definition: no lines of its own to show, so the signature is rebuilt.
        prefix = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
        returns = f" -> {ast.unparse(node.returns)}" if node.returns is not None else ""
        return f"{prefix} {node.name}({ast.unparse(node.args)}){returns}:\n    ..."
    end = (first.end_lineno or first.lineno) if has_doc else first.lineno - 1
    head = "".join(source_lines[node.lineno - 1 : end]).rstrip()
    if not has_doc:
        head += "\n    ..."
    return head


def _parse(func: InjectedFunction) -> tuple[str, list[ast.FunctionDef | ast.AsyncFunctionDef]]:
    source = textwrap.dedent(_read_source(func))
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ValueError(f"Injected function {_display_name(func)!r} does not parse: {exc}") from exc
    defs = [node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    if not defs:
        raise ValueError(
            f"Injected function {_display_name(func)!r} has no top-level 'def' in its source "
            "(lambdas and callable objects cannot be injected)."
        )
    # Decorators refer to names of the caller's module that do not exist in the session.
    for node in defs:
        if node.decorator_list:
            raise ValueError(
                f"Injected function {node.name!r} is decorated; inject the undecorated function "
                "(the session rebuilds it from source and cannot apply the caller's decorators)."
            )
    return source, defs


def build_functions_module(functions: Sequence[InjectedFunction]) -> FunctionsModule:
    """Build the module source defining every injected function, with the given imports first."""
    imports: dict[str, None] = {}
    parts: list[str] = []
    names: list[str] = []
    stubs: list[str] = []
    for func in functions:
        if isinstance(func, FunctionSource):
            for statement in func.imports:
                imports[statement.strip()] = None
        source, defs = _parse(func)
        lines = source.splitlines(keepends=True)
        parts.append(source.rstrip() + "\n")
        for node in defs:
            if node.name in names:
                raise ValueError(f"Two injected functions are named {node.name!r}.")
            names.append(node.name)
            stubs.append(_stub(lines, node))
    # Annotations may name types that exist only on the caller's side: keep them unevaluated.
    header = ["from __future__ import annotations\n"]
    if imports:
        header.append("\n".join(sorted(imports)) + "\n")
    return FunctionsModule(source="\n\n".join(header + parts), names=tuple(names), stubs=tuple(stubs))
