"""Shared plumbing for the examples: which model answers, and which session pool runs the code.

Every example works on a fresh machine with nothing configured: the model is a scripted
client that replays the turns the example ships with, and the code runs in a
:class:`~autogen_aca_sessions.LocalSessionPool` started for the run. Environment variables
switch either half to the real thing:

* ``OPENAI_API_KEY`` (optional ``OPENAI_MODEL``, default ``gpt-4o-mini``): OpenAI.
* ``AZURE_OPENAI_ENDPOINT`` + ``AZURE_OPENAI_DEPLOYMENT`` (+ ``AZURE_OPENAI_API_KEY``, or
  Entra ID through ``DefaultAzureCredential`` when no key is set; optional
  ``AZURE_OPENAI_MODEL``, ``AZURE_OPENAI_API_VERSION``): Azure OpenAI.
* ``ACA_POOL_MANAGEMENT_ENDPOINT``: a real Azure Container Apps session pool, reached with
  ``DefaultAzureCredential`` (the identity needs the role "Azure ContainerApps Session Executor").
  With ``ACA_SESSIONS_API_KEY`` as well, that key is sent instead: this is how the examples use a
  pool started separately with ``aca-sessions serve`` (which prints both variables).
* ``EXAMPLES_SCRIPTED_MODEL=1``: use the scripted turns even when a model key is set.
* ``ACA_SESSIONS_SANDBOX`` (``auto``, ``bwrap`` or ``none``): the local pool's sandbox
  (default ``auto``: bubblewrap when installed, else unsandboxed with a warning).
* ``OTEL_TRACES_EXPORTER=console`` (needs ``opentelemetry-sdk``): print the run's OpenTelemetry
  spans (AutoGen's agent spans, the executor's and the client's under them) to stdout.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import urlsplit

from autogen_core.models import ChatCompletionClient, ModelFamily, ModelInfo

from autogen_aca_sessions.client.limits import MAX_EXECUTION_SECONDS

__all__ = [
    "EXECUTOR_SYSTEM_HINT",
    "FINISH_HINT",
    "PoolTarget",
    "extract_code_result_failures",
    "fail",
    "model_client",
    "model_description",
    "run_main",
    "session_pool",
    "uses_scripted_model",
]

EXECUTOR_SYSTEM_HINT = (
    "You write code that runs in a remote Jupyter-style Python session (an Azure Container Apps "
    "dynamic session). State persists between your code blocks. The working directory is /mnt/data, "
    "where input files are and where outputs (charts, CSVs) must be saved: use relative file names "
    "such as 'sales.csv'. NumPy, pandas and matplotlib are "
    "installed; there is no network. Put each piece of code in a single ```python block (or ```sh "
    "for shell commands), print what you want to see, and wait for the result before going on."
)
"""System-message text that tells a real model how the session behaves."""

FINISH_HINT = " When the task is complete, give a short summary and end your message with TERMINATE."
"""System-message text for the agent that decides when a team is done."""

_SCRIPTED_MODEL_INFO = ModelInfo(
    vision=False,
    function_calling=False,
    json_output=False,
    family=ModelFamily.UNKNOWN,
    structured_output=False,
)


def uses_scripted_model() -> bool:
    """True when no model credentials are configured (or the scripted model is forced)."""
    if os.environ.get("EXAMPLES_SCRIPTED_MODEL", "").strip() not in ("", "0", "false"):
        return True
    if os.environ.get("OPENAI_API_KEY"):
        return False
    return not (os.environ.get("AZURE_OPENAI_ENDPOINT") and os.environ.get("AZURE_OPENAI_DEPLOYMENT"))


def model_description() -> str:
    """One line saying which model the example talks to."""
    if uses_scripted_model():
        return "scripted model (replays the example's turns; set OPENAI_API_KEY to use a real model)"
    if os.environ.get("OPENAI_API_KEY"):
        return f"OpenAI {os.environ.get('OPENAI_MODEL', 'gpt-4o-mini')}"
    return f"Azure OpenAI deployment {os.environ['AZURE_OPENAI_DEPLOYMENT']}"


def model_client(scripted_turns: Sequence[str]) -> ChatCompletionClient:
    """The model client for one agent.

    ``scripted_turns`` are the replies this agent gives, in order, when no real model is
    configured. Each agent gets its own client so that the scripted turns of different agents
    do not interleave.
    """
    if uses_scripted_model():
        from autogen_ext.models.replay import ReplayChatCompletionClient

        return ReplayChatCompletionClient(list(scripted_turns), model_info=_SCRIPTED_MODEL_INFO)
    if os.environ.get("OPENAI_API_KEY"):
        from autogen_ext.models.openai import OpenAIChatCompletionClient

        return OpenAIChatCompletionClient(model=os.environ.get("OPENAI_MODEL", "gpt-4o-mini"))
    return _azure_openai_client()


def _azure_openai_client() -> ChatCompletionClient:
    from autogen_ext.models.openai import AzureOpenAIChatCompletionClient

    options: dict[str, Any] = {
        "azure_endpoint": os.environ["AZURE_OPENAI_ENDPOINT"],
        "azure_deployment": os.environ["AZURE_OPENAI_DEPLOYMENT"],
        "model": os.environ.get("AZURE_OPENAI_MODEL", "gpt-4o"),
        "api_version": os.environ.get("AZURE_OPENAI_API_VERSION", "2024-10-21"),
    }
    api_key = os.environ.get("AZURE_OPENAI_API_KEY")
    if api_key:
        options["api_key"] = api_key
    else:
        from azure.identity import DefaultAzureCredential, get_bearer_token_provider

        options["azure_ad_token_provider"] = get_bearer_token_provider(
            DefaultAzureCredential(), "https://cognitiveservices.azure.com/.default"
        )
    return AzureOpenAIChatCompletionClient(**options)


@dataclass
class PoolTarget:
    """Where the example's code runs."""

    endpoint: str
    """The pool management endpoint handed to the executor."""
    credential: Any
    """What the executor authenticates with (an azure-core style ``get_token`` credential)."""
    is_local: bool
    """True for a local session pool started by this process."""
    description: str
    """One line for the user: which pool, and what isolation it gives."""


@asynccontextmanager
async def session_pool(
    *, ready_sessions: int = 1, max_execution_seconds: float = MAX_EXECUTION_SECONDS
) -> AsyncIterator[PoolTarget]:
    """The pool the example uses: Azure when ``ACA_POOL_MANAGEMENT_ENDPOINT`` is set, else a local one.

    The local pool lives for the ``async with`` block and leaves no kernel behind.
    """
    azure_endpoint = os.environ.get("ACA_POOL_MANAGEMENT_ENDPOINT", "").strip()
    api_key = os.environ.get("ACA_SESSIONS_API_KEY", "").strip()
    if azure_endpoint and api_key:
        yield PoolTarget(
            endpoint=azure_endpoint,
            credential=api_key,
            is_local=False,
            description=f"session pool {azure_endpoint} (key from ACA_SESSIONS_API_KEY)",
        )
        return
    if azure_endpoint and _is_loopback(azure_endpoint):
        # A pool on this machine is never Azure's: DefaultAzureCredential could only fail, at length.
        fail(
            "a local pool wants ACA_SESSIONS_API_KEY as well as ACA_POOL_MANAGEMENT_ENDPOINT "
            "(`aca-sessions serve` prints both)"
        )
    if azure_endpoint:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
        try:
            yield PoolTarget(
                endpoint=azure_endpoint,
                credential=credential,
                is_local=False,
                description=f"Azure session pool {azure_endpoint} (DefaultAzureCredential)",
            )
        finally:
            credential.close()
        return

    try:
        from autogen_aca_sessions import LocalSessionPool
    except ImportError as exc:  # the `local` extra is missing
        raise SystemExit(
            f"The local session pool needs the 'local' extra ({exc}). "
            "Install it with: pip install -e '.[local,examples]'"
        ) from exc

    sandbox = os.environ.get("ACA_SESSIONS_SANDBOX", "auto").strip() or "auto"
    async with LocalSessionPool(
        ready_sessions=ready_sessions, max_execution_seconds=max_execution_seconds, sandbox=sandbox
    ) as pool:
        yield PoolTarget(
            endpoint=pool.endpoint,
            credential=pool.credential,
            is_local=True,
            description=f"local session pool {pool.endpoint} (isolation: {pool.isolation})",
        )


def _is_loopback(endpoint: str) -> bool:
    try:
        host = urlsplit(endpoint).hostname or ""
    except ValueError:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def extract_code_result_failures(messages: Sequence[Any], executor_agent: str) -> list[str]:
    """The executor agent's replies that report a failed or empty execution.

    ``CodeExecutorAgent`` (without its own model) turns a non-zero exit code into a reply that
    starts with a fixed sentence; the examples count those to decide their exit status.
    """
    failures: list[str] = []
    for message in messages:
        if getattr(message, "source", None) != executor_agent:
            continue
        content = getattr(message, "content", "")
        if isinstance(content, str) and content.startswith("The script ran, then exited with an error"):
            failures.append(content)
    return failures


def trace_to_console() -> Callable[[], None] | None:
    """With ``OTEL_TRACES_EXPORTER=console``, install the SDK's console exporter; returns its flush."""
    if os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() != "console":
        return None
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    except ImportError:
        fail("OTEL_TRACES_EXPORTER=console needs the OpenTelemetry SDK: pip install opentelemetry-sdk")
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider.shutdown


def run_main(main: Coroutine[Any, Any, None]) -> None:
    """Run an example's ``main()``: a clean message and exit status 1 when the pool fails."""
    from autogen_aca_sessions.client import SessionsError

    flush_traces = trace_to_console()
    _one_line_library_warnings()
    try:
        asyncio.run(main)
    except KeyboardInterrupt:
        # asyncio.run cancelled main() first, so its `async with` blocks closed what they opened.
        print("\nInterrupted.", file=sys.stderr, flush=True)
        sys.exit(130)
    except SessionsError as exc:
        # The pool could not be reached, refused the request, or could not start a session.
        fail(describe_pool_failure(exc))
    except (OSError, RuntimeError) as exc:
        # AutoGen re-raises an agent's error as RuntimeError("<Type>: <message>\nTraceback: ...");
        # its first line says what went wrong, the rest is the runtime's frames.
        said = str(exc).strip().splitlines()
        fail(f"{type(exc).__name__}: {said[0] if said else ''}")
    finally:
        if flush_traces is not None:
            flush_traces()


def describe_pool_failure(exc: Exception) -> str:
    """One line for a failed call to the pool: what to check first, then what the service said."""
    from autogen_aca_sessions.client import (
        AuthenticationError,
        CredentialError,
        NotFoundError,
        PermissionDeniedError,
        PoolFullError,
        SessionsHTTPError,
    )

    if isinstance(exc, CredentialError):
        # azure-identity lists every credential it tried, over a dozen lines: the first says enough.
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"no Azure token for the pool; sign in (az login) or use a managed identity [{first}]"
    if not isinstance(exc, SessionsHTTPError):
        return f"{type(exc).__name__}: {exc}"
    if isinstance(exc, AuthenticationError):
        if os.environ.get("ACA_SESSIONS_API_KEY", "").strip():
            advice = (
                "the pool refused the key in ACA_SESSIONS_API_KEY; use the key `aca-sessions serve` printed"
            )
        else:
            advice = "the pool refused the Azure token; sign in (az login) to the pool's tenant"
    elif isinstance(exc, PermissionDeniedError):
        advice = "the identity lacks the role 'Azure ContainerApps Session Executor' on the pool"
    elif isinstance(exc, PoolFullError):
        advice = "the pool is at its maximum of concurrent sessions"
    elif isinstance(exc, NotFoundError):  # PoolNotFoundError among them
        advice = "no session pool at ACA_POOL_MANAGEMENT_ENDPOINT; check the URL"
    else:
        advice = "the pool refused the request"
    said = exc.service_message or exc.message
    code = f" {exc.error_code}" if exc.error_code else ""
    return f"{advice} [HTTP {exc.status_code}{code}: {said}]"


class _OneLineFormatter(logging.Formatter):
    """A log record and its exception on one line: the example's own FAILED line says the rest."""

    def format(self, record: logging.LogRecord) -> str:
        exc_info = record.exc_info
        record.exc_info, record.exc_text = None, None
        try:
            text = super().format(record)
        finally:
            record.exc_info = exc_info
        if exc_info and exc_info[1] is not None:
            text += f" ({type(exc_info[1]).__name__})"
        return text


def _one_line_library_warnings() -> None:
    """Library warnings (a session that could not be released, ...) as one line each, not a traceback."""
    handler = logging.StreamHandler()
    handler.setFormatter(_OneLineFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    # azure-identity logs each credential it tried when DefaultAzureCredential fails; the
    # example's FAILED line reports that failure once.
    logging.getLogger("azure.identity").setLevel(logging.ERROR)


def fail(message: str) -> NoReturn:
    """Print why the example failed and exit non-zero."""
    print(f"\nFAILED: {message}", file=sys.stderr, flush=True)
    raise SystemExit(1)
