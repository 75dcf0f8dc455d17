"""Wire formats, one module per contract, selected by api-version."""

from __future__ import annotations

from autogen_aca_sessions.client.contracts.base import Contract, Request, Service
from autogen_aca_sessions.client.contracts.current import CurrentContract
from autogen_aca_sessions.client.contracts.legacy import LegacyContract
from autogen_aca_sessions.client.models import ApiVersion

__all__ = ["Contract", "CurrentContract", "LegacyContract", "Request", "Service", "contract_for"]


def contract_for(api_version: ApiVersion) -> Contract:
    """The contract that speaks ``api_version``."""
    if api_version.is_legacy:
        return LegacyContract(api_version)
    return CurrentContract(api_version)
