"""The soak suite prints the same figures as the security suite (once per run)."""

from __future__ import annotations

import pytest

from tests.security._support import print_figures


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    print_figures(terminalreporter)
