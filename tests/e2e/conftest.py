"""Fixtures the end-to-end test modules share (the pools themselves come from tests/conftest.py)."""

from __future__ import annotations

import pytest

from autogen_aca_sessions.local import LocalSessionPool


@pytest.fixture
def pool(module_pool: LocalSessionPool) -> LocalSessionPool:
    """The module's shared local pool (tests/conftest.py; options from the module's POOL_OPTIONS)."""
    return module_pool
