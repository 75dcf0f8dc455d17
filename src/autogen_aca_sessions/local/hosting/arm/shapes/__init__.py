"""Session-pool bodies per api-version family: one lenient reader, one renderer per family."""

from __future__ import annotations

from typing import Any

from ..model import PoolResource
from ..versions import ArmApiVersion, BodyShape
from . import flat, lifecycle, seed
from .reader import read_patch, read_put

__all__ = ["read_patch", "read_put", "render_pool"]

_RENDERERS = {BodyShape.SEED: seed.render, BodyShape.FLAT: flat.render, BodyShape.LIFECYCLE: lifecycle.render}


def render_pool(resource: PoolResource, version: ArmApiVersion) -> dict[str, Any]:
    """The session-pool body of ``resource`` exactly as ``version`` spells it."""
    return _RENDERERS[version.shape](resource, version)
