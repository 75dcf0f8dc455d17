"""The CodeAct instructions' package line: a long list is cut, the packages code reaches for most are not."""

from __future__ import annotations

import pytest

pytest.importorskip("agent_framework")

from autogen_aca_sessions.agent_framework import DynamicSessionsConfig
from autogen_aca_sessions.agent_framework._instructions import build_instructions


def test_a_long_package_list_still_names_the_data_packages_first() -> None:
    filler = [f"aaa-package-{index:03d}" for index in range(200)]
    packages = sorted([*filler, "pandas", "numpy", "matplotlib", "zzz-last"], key=str.lower)

    text = build_instructions(
        DynamicSessionsConfig(pool_management_endpoint="http://127.0.0.1:1/pool"),
        tool_names=["execute_code"],
        packages=packages,
        files=None,
        function_stubs=(),
    )

    (line,) = [line for line in text.splitlines() if line.startswith("Installed packages:")]
    assert line.startswith("Installed packages: numpy, pandas, matplotlib, aaa-package-000,")
    assert "zzz-last" not in line
    assert line.endswith(f"(and {len(packages) - 80} more).")
