"""Turning injected functions into the source of a module that runs inside the session.

autogen-core's ``build_python_functions_file`` pastes ``inspect.getsource`` output as is: that
breaks for functions defined in an indented scope (a test, a ``main()``), cuts exactly one line
when the source starts with a decorator (corrupting a decorator written over several lines) and
orders global imports by set iteration. This module builds the same kind of file with
autogen-core's ``import_to_str`` and ``to_stub`` helpers, but reads and dedents each function
itself, drops only the ``with_requirements`` decorator, orders imports deterministically and
reports the names the module defines.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from autogen_core.code_executor import FunctionWithRequirements, FunctionWithRequirementsStr
from autogen_core.code_executor._func_with_reqs import import_to_str, to_stub

__all__ = [
    "FunctionsModule",
    "InjectedFunction",
    "build_functions_module",
    "normalize_package_name",
    "required_packages",
    "stub_for",
]

InjectedFunction: TypeAlias = (
    "FunctionWithRequirements[Any, Any] | Callable[..., Any] | FunctionWithRequirementsStr"
)

_REQUIREMENT_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


@dataclass(frozen=True)
class FunctionsModule:
    """The module source built from the injected functions."""

    source: str
    """Python source of the module."""
    names: tuple[str, ...]
    """Top-level function names the module defines, in order."""


def normalize_package_name(name: str) -> str:
    """A distribution name in PEP 503 normal form (``Scikit_Learn`` -> ``scikit-learn``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def required_packages(functions: Sequence[InjectedFunction]) -> dict[str, str]:
    """The packages the functions declare, as ``{normalised name: requirement as written}``.

    Version specifiers and extras are ignored for the availability check: a session's package
    set is fixed, so only presence can be checked.
    """
    found: dict[str, str] = {}
    for func in functions:
        if isinstance(func, (FunctionWithRequirements, FunctionWithRequirementsStr)):
            for requirement in func.python_packages:
                match = _REQUIREMENT_NAME.match(requirement)
                if match is None:
                    raise ValueError(f"Cannot read a package name from requirement {requirement!r}.")
                found.setdefault(normalize_package_name(match.group(1)), requirement.strip())
    return found


def _display_name(func: InjectedFunction) -> str:
    if isinstance(func, FunctionWithRequirementsStr):
        return func._func_name
    target = func.func if isinstance(func, FunctionWithRequirements) else func
    return str(getattr(target, "__qualname__", getattr(target, "__name__", repr(target))))


def _is_requirements_decorator(node: ast.expr) -> bool:
    target = node.func if isinstance(node, ast.Call) else node
    if isinstance(target, ast.Attribute):
        return target.attr == "with_requirements"
    return isinstance(target, ast.Name) and target.id == "with_requirements"


def _function_source(func: InjectedFunction) -> tuple[str, list[str]]:
    """Dedented source of one injected function and the top-level function names it defines."""
    try:
        raw = _raw_source(func)
    except (OSError, TypeError) as exc:
        raise ValueError(
            f"Cannot read the source of injected function {_display_name(func)!r}: {exc}. "
            "Define it in a file, or pass FunctionWithRequirements.from_str(...)."
        ) from exc
    source = textwrap.dedent(raw)
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ValueError(f"Injected function {_display_name(func)!r} does not parse: {exc}") from exc
    lines = source.splitlines(keepends=True)
    names: list[str] = []
    drop: set[int] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.append(node.name)
            for decorator in node.decorator_list:
                if _is_requirements_decorator(decorator):
                    end = decorator.end_lineno or decorator.lineno
                    drop.update(range(decorator.lineno - 1, end))
    if not names:
        raise ValueError(
            f"Injected function {_display_name(func)!r} has no top-level 'def' in its source "
            "(lambdas and callable objects cannot be injected)."
        )
    kept = "".join(line for index, line in enumerate(lines) if index not in drop)
    return kept, names


def _raw_source(func: InjectedFunction) -> str:
    if isinstance(func, FunctionWithRequirementsStr):
        return func.func
    # Not autogen-core's to_code: it cuts exactly one line when the source starts with "@",
    # which corrupts a decorator written over several lines.
    target = func.func if isinstance(func, FunctionWithRequirements) else func
    return inspect.getsource(target)


def build_functions_module(functions: Sequence[InjectedFunction]) -> FunctionsModule:
    """Build the module that defines every injected function, with their global imports first."""
    imports: dict[str, None] = {}
    for func in functions:
        if isinstance(func, (FunctionWithRequirements, FunctionWithRequirementsStr)):
            for item in func.global_imports:
                imports[import_to_str(item)] = None
    # Annotations may name types that exist only on the caller's side: keep them unevaluated.
    parts: list[str] = ["from __future__ import annotations\n"]
    if imports:
        parts.append("\n".join(sorted(imports)) + "\n")
    names: list[str] = []
    for func in functions:
        source, defined = _function_source(func)
        parts.append(source.rstrip() + "\n")
        for name in defined:
            if name not in names:
                names.append(name)
    return FunctionsModule(source="\n\n".join(parts), names=tuple(names))


def stub_for(func: InjectedFunction) -> str:
    """A signature-and-docstring stub of one injected function, for prompts."""
    if isinstance(func, FunctionWithRequirements):
        return to_stub(func.func)
    return to_stub(func)
