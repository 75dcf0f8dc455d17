"""ARM ``Microsoft.App/sandboxGroups``: the group model, body reader and rendering (``model``)
and the management routes (``routes``). The groups themselves live in
``local/hosting/sandbox_groups.py``."""

from __future__ import annotations

from .model import SandboxGroupApiVersion, SandboxGroupSettings, group_name_problem
from .routes import SandboxGroupRoutes, is_sandbox_group_path

__all__ = [
    "SandboxGroupApiVersion",
    "SandboxGroupRoutes",
    "SandboxGroupSettings",
    "group_name_problem",
    "is_sandbox_group_path",
]
