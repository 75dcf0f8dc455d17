"""The client's defaults and the service limits it knows, each stated once.

The executor and the CLI import these; the local pool keeps its own copy of the execution cap
(``local/limits.py``) because it never imports the client.
"""

from __future__ import annotations

from .models import ApiVersion

__all__ = ["DEFAULT_API_VERSION", "DEFAULT_MAX_OUTPUT_CHARS", "MAX_EXECUTION_SECONDS"]

DEFAULT_API_VERSION = ApiVersion.V2025_10_02_PREVIEW
"""The api-version spoken unless told otherwise: the newest."""
DEFAULT_MAX_OUTPUT_CHARS = 1_000_000
"""Per-stream output limit asked for on 2025-10 (``outputStreamsMaxLength``) unless told otherwise."""
MAX_EXECUTION_SECONDS = 220
"""The service stops any execution after this many seconds whatever it is asked for."""
