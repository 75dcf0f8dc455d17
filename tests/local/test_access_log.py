"""The local pool logs one structured line per request, and a server span when a tracer is configured."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from autogen_aca_sessions.local import LocalSessionPool
from autogen_aca_sessions.local.frontends.access_log import ACCESS_LOGGER
from autogen_aca_sessions.local.frontends.dataplane import app as app_module
from autogen_aca_sessions.local.frontends.dataplane import routing
from autogen_aca_sessions.local.frontends.dataplane.operations import Operation
from autogen_aca_sessions.local.frontends.dataplane.routing import ResolvedRoute

NEWEST = "2025-10-02-preview"
BODY = {"codeInputType": "Inline", "executionType": "Synchronous", "code": "6 * 7", "timeoutInSeconds": 30}
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


def access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == ACCESS_LOGGER]


async def test_each_request_is_one_line_with_method_route_status_duration_and_session(
    local_pool: LocalSessionPool, pool_http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    url = f"{local_pool.endpoint}/executions?api-version={NEWEST}&identifier=logged"

    async with pool_http.post(url, json=BODY) as response:
        assert response.status == 200
    async with pool_http.get(
        f"{local_pool.endpoint}/files/nothing.txt?api-version={NEWEST}&identifier=logged"
    ) as r:
        assert r.status == 404

    execute, missing = access_records(caplog)
    assert execute.getMessage().startswith("POST /executions 200 ")
    assert execute.getMessage().endswith(' session="logged" operation=execute')
    assert (execute.http_method, execute.http_route, execute.http_status) == ("POST", "/executions", 200)  # type: ignore[attr-defined]
    assert execute.session_id == "logged"  # type: ignore[attr-defined]
    assert execute.duration_ms > 0  # type: ignore[attr-defined]
    assert missing.http_route == "/files/{name}"  # type: ignore[attr-defined]
    assert missing.http_status == 404  # type: ignore[attr-defined]


async def test_refused_calls_are_logged_and_a_control_character_cannot_forge_a_line(
    local_pool: LocalSessionPool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    url = f"{local_pool.endpoint}/executions?api-version={NEWEST}&identifier=evil%0AGET%20/forged%20200"

    async with aiohttp.ClientSession() as anonymous, anonymous.post(url, json=BODY) as response:
        assert response.status == 401

    [record] = access_records(caplog)
    assert record.http_status == 401  # type: ignore[attr-defined]
    assert "\n" not in record.getMessage()
    assert 'session="evil\\nGET /forged 200"' in record.getMessage()


async def test_with_a_tracer_each_request_is_a_server_span_continuing_the_callers_trace(
    local_pool: LocalSessionPool, pool_http: aiohttp.ClientSession, spans: InMemorySpanExporter
) -> None:
    url = f"{local_pool.endpoint}/executions?api-version={NEWEST}&identifier=traced"
    headers = {"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"}

    async with pool_http.post(url, json=BODY, headers=headers) as response:
        assert response.status == 200

    [server] = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    attributes = dict(server.attributes or {})
    assert server.name == "POST /executions"
    assert attributes["http.route"] == "/executions"
    assert attributes["http.response.status_code"] == 200
    assert attributes["aca_sessions.session.id"] == "traced"
    assert attributes["aca_sessions.operation"] == "execute"
    assert server.context is not None
    assert f"{server.context.trace_id:032x}" == TRACE_ID


async def test_a_request_for_another_pool_is_logged_with_its_404(
    local_pool: LocalSessionPool, pool_http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    other = local_pool.endpoint.rsplit("/", 1)[0] + "/other-pool"

    async with pool_http.post(f"{other}/executions?api-version={NEWEST}&identifier=x", json=BODY) as response:
        assert response.status == 404

    [record] = access_records(caplog)
    assert (record.http_route, record.http_status) == ("(other pool)", 404)  # type: ignore[attr-defined]


async def test_the_route_is_resolved_once_per_request_and_read_by_the_access_log_and_dispatch(
    local_pool: LocalSessionPool,
    pool_http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    resolved: list[ResolvedRoute] = []

    def counting_resolve(*args: Any, **kwargs: Any) -> ResolvedRoute:
        route = original(*args, **kwargs)
        resolved.append(route)
        return route

    original = routing.resolve
    # Every place that could resolve a route: the middleware and the app's fallback.
    monkeypatch.setattr(routing, "resolve", counting_resolve)
    monkeypatch.setattr(app_module, "resolve", counting_resolve)
    url = f"{local_pool.endpoint}/files/a.txt/content?api-version={NEWEST}&identifier=resolved-once"
    async with pool_http.get(url) as response:
        assert response.status == 404  # no such file: dispatch and the handler ran

    assert len(resolved) == 1
    (route,) = resolved
    assert (route.operation, route.template, route.identifier) == (
        Operation.FILES,
        "/files/{name}/content",
        "resolved-once",
    )
    (line,) = access_records(caplog)
    assert line.http_route == route.template  # type: ignore[attr-defined]
