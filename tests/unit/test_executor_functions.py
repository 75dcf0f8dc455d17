"""How injected functions become the module the session loads."""

from __future__ import annotations

import sys
import types

import pytest
from autogen_core.code_executor import FunctionWithRequirements, ImportFromModule, with_requirements

from autogen_aca_sessions.executor._functions import build_functions_module, required_packages
from autogen_aca_sessions.executor._kernel_code import setup_code


def load(source: str, names: tuple[str, ...], module_name: str) -> dict[str, object]:
    """Run the setup snippet the executor sends, in a plain namespace, as the kernel would."""
    namespace: dict[str, object] = {}
    exec(setup_code(module_name, source, names), namespace)
    return namespace


def test_decorator_over_several_lines_and_indented_definition_are_handled() -> None:
    @with_requirements(
        python_packages=["numpy"],
        global_imports=[ImportFromModule("math", ("floor",))],
    )
    def rounded(x: float) -> int:
        """Round down."""
        return floor(x)  # type: ignore[name-defined]  # noqa: F821 - imported in the module

    module = build_functions_module([rounded])
    assert "with_requirements" not in module.source
    assert module.source.startswith("from __future__ import annotations\n")
    assert "from math import floor" in module.source
    assert module.names == ("rounded",)
    namespace = load(module.source, module.names, "fn_test_multiline")
    try:
        assert namespace["rounded"](2.7) == 2  # type: ignore[operator]
        imported = sys.modules["fn_test_multiline"]
        assert isinstance(imported, types.ModuleType)
        assert imported.rounded(3.2) == 3
    finally:
        sys.modules.pop("fn_test_multiline", None)


def test_other_decorators_are_kept() -> None:
    import functools

    @functools.cache
    def cached(x: int) -> int:
        return x * 2

    module = build_functions_module([FunctionWithRequirements(func=cached, global_imports=["functools"])])
    assert "@functools.cache" in module.source


def test_string_functions_and_plain_functions_mix_with_ordered_imports() -> None:
    def plain(a: int) -> int:
        return a + 1

    text = FunctionWithRequirements.from_str(
        "def twice(x):\n    return 2 * x\n", global_imports=["os", "json"]
    )
    module = build_functions_module([plain, text])
    assert module.names == ("plain", "twice")
    assert module.source.index("import json") < module.source.index("import os")


def test_a_lambda_cannot_be_injected() -> None:
    square = lambda x: x * x  # noqa: E731 - the case under test

    with pytest.raises(ValueError, match="no top-level 'def'"):
        build_functions_module([square])


def test_required_packages_are_normalised_and_keep_the_written_requirement() -> None:
    @with_requirements(python_packages=["Scikit_Learn>=1.3", "pandas[excel]", "numpy"])
    def uses() -> None:
        return None

    assert required_packages([uses]) == {
        "scikit-learn": "Scikit_Learn>=1.3",
        "pandas": "pandas[excel]",
        "numpy": "numpy",
    }


def test_a_failing_module_is_not_left_registered() -> None:
    broken = FunctionWithRequirements.from_str(
        "def f():\n    return 1\n", global_imports=["no_such_module_xyz"]
    )
    module = build_functions_module([broken])
    with pytest.raises(ModuleNotFoundError):
        load(module.source, module.names, "fn_test_broken")
    assert "fn_test_broken" not in sys.modules
