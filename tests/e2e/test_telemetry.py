"""OpenTelemetry spans of the client and the executor, pinned with the SDK's in-memory exporter.

Spans go to the global tracer provider, as AutoGen's own do: a code execution nests under the
agent span of the agent that ran it.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from autogen_agentchat.agents import CodeExecutorAgent
from autogen_core import CancellationToken
from autogen_core.code_executor import CodeBlock
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from autogen_aca_sessions import ACADynamicSessionsCodeExecutor
from autogen_aca_sessions.client import NotFoundError, SessionsClient
from autogen_aca_sessions.pytest_plugin import AcaPool
from autogen_aca_sessions.telemetry import CAPTURE_CONTENT_ENV

pytestmark = pytest.mark.asyncio(loop_scope="module")

SECRET_CODE = "marker_value_7f3a = 6 * 7\nprint('printed-' + str(marker_value_7f3a))"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Every span finished during the test (the SDK provider is installed once per process)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


def named(spans: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [span for span in spans.get_finished_spans() if span.name == name]


def children(spans: InMemorySpanExporter, parent: ReadableSpan) -> list[ReadableSpan]:
    assert parent.context is not None
    return [
        s
        for s in spans.get_finished_spans()
        if s.parent is not None and s.parent.span_id == parent.context.span_id
    ]


def ancestors(spans: InMemorySpanExporter, span: ReadableSpan) -> list[str]:
    """The names of ``span``'s parent, grandparent ... (nearest first)."""
    by_id = {s.context.span_id: s for s in spans.get_finished_spans() if s.context is not None}
    names: list[str] = []
    current: Any = span
    while current.parent is not None and current.parent.span_id in by_id:
        current = by_id[current.parent.span_id]
        names.append(current.name)
    return names


def all_attribute_text(spans: InMemorySpanExporter) -> str:
    return json.dumps([dict(span.attributes or {}) for span in spans.get_finished_spans()], default=str)


async def test_an_execution_is_one_operation_span_over_one_http_client_span(
    spans: InMemorySpanExporter, aca_client: SessionsClient, aca_pool: AcaPool
) -> None:
    await aca_client.execute("traced", SECRET_CODE)

    [operation] = named(spans, "aca_sessions execute")
    attributes = dict(operation.attributes or {})
    assert operation.kind is SpanKind.INTERNAL
    assert attributes["aca_sessions.operation"] == "execute"
    assert attributes["aca_sessions.api_version"] == "2025-10-02-preview"
    assert attributes["aca_sessions.session.id"] == "traced"
    assert attributes["aca_sessions.retry_count"] == 0
    assert attributes["aca_sessions.execution.status"] == "Succeeded"
    [http] = children(spans, operation)
    http_attributes = dict(http.attributes or {})
    assert (http.name, http.kind) == ("POST", SpanKind.CLIENT)
    assert http_attributes["http.request.method"] == "POST"
    assert http_attributes["http.response.status_code"] == 200
    assert http_attributes["server.address"] == "127.0.0.1"
    assert str(http_attributes["url.full"]).startswith(aca_pool.endpoint + "/executions?")
    assert "http.request.resend_count" not in http_attributes
    # The local pool continued the trace: its server span is a child of the client span.
    [server] = [
        s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER and s.name == "POST /executions"
    ]
    assert server.parent is not None
    assert http.context is not None
    assert server.parent.span_id == http.context.span_id
    # No code, no output, no key in any attribute unless the user opts in.
    text = all_attribute_text(spans)
    assert "marker_value_7f3a" not in text
    assert "printed-42" not in text
    assert str(aca_pool.api_key) not in text
    await aca_client.delete_session("traced")


@pytest.mark.aca_pool(faults="next=503", scope="function")
async def test_a_retried_request_shows_each_attempt_and_the_retry_count(
    spans: InMemorySpanExporter, aca_client: SessionsClient
) -> None:
    await aca_client.execute("retried", "1 + 1")

    [operation] = named(spans, "aca_sessions execute")
    assert (operation.attributes or {})["aca_sessions.retry_count"] == 1
    first, second = sorted(children(spans, operation), key=lambda span: span.start_time or 0)
    assert (first.attributes or {})["http.response.status_code"] == 503
    assert (first.attributes or {})["error.type"] == "503"
    assert first.status.status_code is StatusCode.ERROR
    assert (second.attributes or {})["http.response.status_code"] == 200
    assert (second.attributes or {})["http.request.resend_count"] == 1


async def test_polling_an_asynchronous_execution_counts_the_polls(
    spans: InMemorySpanExporter, aca_client: SessionsClient
) -> None:
    result = await aca_client.execute("polled", "import time\ntime.sleep(1.2)\n'done'", asynchronous=True)

    assert result.result == "done"
    [operation] = named(spans, "aca_sessions execute")
    polls = int((operation.attributes or {})["aca_sessions.poll_count"])
    assert polls >= 1
    methods = [span.name for span in sorted(children(spans, operation), key=lambda s: s.start_time or 0)]
    assert methods == ["POST"] + ["GET"] * polls
    await aca_client.delete_session("polled")


async def test_a_failed_operation_records_the_error_type_status_and_code(
    spans: InMemorySpanExporter, aca_client: SessionsClient
) -> None:
    with pytest.raises(NotFoundError) as caught:
        await aca_client.get_file("missing-files", "nope.txt")

    [operation] = named(spans, "aca_sessions get_file")
    attributes = dict(operation.attributes or {})
    assert operation.status.status_code is StatusCode.ERROR
    assert attributes["error.type"] == "NotFoundError"
    assert attributes["http.response.status_code"] == 404
    assert attributes["aca_sessions.error_code"] == caught.value.error_code
    [http] = children(spans, operation)
    assert (http.attributes or {})["http.response.status_code"] == 404


@pytest.mark.aca_executor(timeout=2)
async def test_executor_blocks_nest_under_autogens_agent_span(
    spans: InMemorySpanExporter, aca_executor: ACADynamicSessionsCodeExecutor
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        agent = CodeExecutorAgent("runner", code_executor=aca_executor)
    message = "```python\nprint(6 * 7)\n```\n```python\nimport time\ntime.sleep(30)\n```"
    await agent.run(task=message)

    [tool] = named(spans, "execute_tool ACADynamicSessionsCodeExecutor")
    assert (tool.attributes or {})["gen_ai.operation.name"] == "execute_tool"
    assert (tool.attributes or {})["aca_sessions.session.id"] == aca_executor.session_id
    # The chain of parents reaches the agent span AutoGen opened for this call.
    names = ancestors(spans, tool)
    assert any(name.startswith("invoke_agent") for name in names), names
    blocks = sorted(children(spans, tool), key=lambda span: span.start_time or 0)
    assert [span.name for span in blocks] == ["code_block python", "code_block python"]
    first, second = (dict(span.attributes or {}) for span in blocks)
    assert first["aca_sessions.block.language"] == "python"
    assert (first["aca_sessions.block.exit_code"], first["aca_sessions.block.timed_out"]) == (0, False)
    assert (second["aca_sessions.block.exit_code"], second["aca_sessions.block.timed_out"]) == (124, True)
    assert second["aca_sessions.block.state_lost"] is False
    # A block's executions (the session's set-up may come first) are client operations inside it.
    inner = {s.name for s in children(spans, blocks[0])}
    assert inner == {"aca_sessions execute"}
    assert "print(6 * 7)" not in all_attribute_text(spans)


async def test_code_and_output_are_recorded_only_when_the_user_opts_in(
    spans: InMemorySpanExporter, aca_executor: ACADynamicSessionsCodeExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CAPTURE_CONTENT_ENV, "true")

    await aca_executor.execute_code_blocks(
        [CodeBlock(code=SECRET_CODE, language="python")], CancellationToken()
    )

    [span] = named(spans, "code_block python")
    assert (span.attributes or {})["aca_sessions.block.code"] == SECRET_CODE
    assert "printed-42" in str((span.attributes or {})["aca_sessions.block.output"])


async def test_client_spans_nest_under_agent_frameworks_agent_and_tool_spans(
    spans: InMemorySpanExporter, aca_pool: AcaPool
) -> None:
    pytest.importorskip("agent_framework")
    from agent_framework import Agent

    from autogen_aca_sessions.agent_framework import (
        DynamicSessions,
        DynamicSessionsCodeActProvider,
        DynamicSessionsConfig,
    )
    from autogen_aca_sessions.agent_framework.testing import ScriptedChatClient, ToolCall

    config = DynamicSessionsConfig(pool_management_endpoint=aca_pool.endpoint, timeout_seconds=20)
    client = ScriptedChatClient([ToolCall("execute_code", {"code": "print(6 * 7)"}), "It is 42."])
    async with DynamicSessions(config, credential=aca_pool.credential) as sessions:
        agent = Agent(client=client, context_providers=[DynamicSessionsCodeActProvider(sessions)])
        await agent.run("Compute it.", session=agent.create_session())

    executes = named(spans, "aca_sessions execute")
    assert executes
    names = ancestors(spans, executes[-1])
    assert any(name.startswith("invoke_agent") for name in names), names
    assert any(name.startswith("execute_tool") for name in names), names
