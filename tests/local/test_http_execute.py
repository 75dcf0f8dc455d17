"""Execute operations of every api-version against a real local pool with real kernels."""

from __future__ import annotations

import base64
import re
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from _http_helpers import (
    CURRENT_VERSIONS,
    LEGACY_VERSIONS,
    call,
    current_body,
    execute,
    legacy_body,
    poll,
)

from autogen_aca_sessions.local import LocalSessionPool

pytestmark = pytest.mark.asyncio(loop_scope="module")

POOL_OPTIONS = {"ready_sessions": 2, "max_execution_seconds": 30}


def _elapsed(mapping: dict[str, Any]) -> int:
    value = mapping.pop("executionTimeInMilliseconds")
    assert isinstance(value, int)
    assert value >= 0
    return value


def _assert_timing_headers(headers: Any) -> None:
    for name in ("x-ms-overall-execution-time", "x-ms-preparation-time"):
        assert re.fullmatch(r"\d+", headers[name]), (name, headers.get(name))
    uuid.UUID(headers["x-ms-session-guid"])


# ---------------------------------------------------------------------------- legacy contract


@pytest.mark.parametrize("version", LEGACY_VERSIONS)
async def test_legacy_execute_answers_the_documented_shape_with_the_last_value(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str, version: str
) -> None:
    reply = await execute(module_http, module_pool.endpoint, version, session_id, "x = 1\nprint(x)\nx + 1")
    assert reply.status == 200
    body = reply.json()
    _elapsed(body["properties"])
    assert body == {
        "$id": "1",
        "properties": {"$id": "2", "status": "Success", "stdout": "1\n", "stderr": "", "result": 2},
    }
    uuid.UUID(reply.headers["operation-id"])
    _assert_timing_headers(reply.headers)


async def test_legacy_result_is_empty_string_without_value_and_null_for_none(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str
) -> None:
    v = LEGACY_VERSIONS[0]
    no_value = await execute(module_http, module_pool.endpoint, v, session_id, "y = 3")
    assert no_value.json()["properties"]["result"] == ""
    none_value = await execute(module_http, module_pool.endpoint, v, session_id, "None")
    assert none_value.json()["properties"]["result"] is None
    structured = await execute(module_http, module_pool.endpoint, v, session_id, "{'a': [1, 2.5, 'z']}")
    assert structured.json()["properties"]["result"] == {"a": [1, 2.5, "z"]}


async def test_legacy_failure_has_traceback_in_stderr_and_null_result(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str
) -> None:
    reply = await execute(
        module_http, module_pool.endpoint, LEGACY_VERSIONS[1], session_id, "print('a')\n1/0"
    )
    assert reply.status == 200
    props = reply.json()["properties"]
    _elapsed(props)
    assert props["status"] == "Failure"
    assert props["result"] is None
    assert props["stdout"] == "a\n"
    assert "ZeroDivisionError" in props["stderr"]


async def test_legacy_image_result_is_the_documented_image_object(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str
) -> None:
    code = "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()"
    reply = await execute(module_http, module_pool.endpoint, LEGACY_VERSIONS[0], session_id, code)
    result = reply.json()["properties"]["result"]
    assert set(result) == {"type", "format", "base64_data"}
    assert result["type"] == "image"
    assert result["format"] == "png"
    assert base64.b64decode(result["base64_data"]).startswith(b"\x89PNG")


async def test_legacy_enums_compare_case_insensitively_and_extra_fields_are_ignored(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str
) -> None:
    body = {
        "properties": {
            "codeInputType": "INLINE",
            "executionType": "Synchronous",
            "code": "6*7",
            "timeoutInSeconds": 100,
            "somethingNew": {"x": 1},
        },
        "extra": True,
    }
    reply = await call(
        module_http,
        "POST",
        f"{module_pool.endpoint}/code/execute/",
        version=LEGACY_VERSIONS[0],
        identifier=session_id,
        json=body,
    )
    assert reply.status == 200
    assert reply.json()["properties"]["result"] == 42


async def test_state_persists_between_calls_of_one_session_and_not_across_sessions(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str
) -> None:
    v = CURRENT_VERSIONS[2]
    await execute(module_http, module_pool.endpoint, v, session_id, "kept = 'here'")
    same = await execute(module_http, module_pool.endpoint, v, session_id, "kept")
    assert same.json()["result"]["executionResult"] == "here"
    other_id = str(uuid.uuid4())
    try:
        other = await execute(module_http, module_pool.endpoint, v, other_id, "kept")
        assert other.json()["status"] == "Failed"
        assert other.json()["error"]["code"] == "NameError"
    finally:
        await module_pool.manager.delete(other_id)


@pytest.mark.usefixtures("patient_interrupts")
async def test_legacy_timeout_is_failure_with_the_message_in_stderr_and_state_kept(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str
) -> None:
    v = LEGACY_VERSIONS[0]
    await execute(module_http, module_pool.endpoint, v, session_id, "before = 5")
    reply = await execute(
        module_http, module_pool.endpoint, v, session_id, "import time\ntime.sleep(30)", timeoutInSeconds=1
    )
    props = reply.json()["properties"]
    assert reply.status == 200
    assert props["status"] == "Failure"
    assert props["result"] is None
    assert props["timedOut"] is True
    assert "time limit" in props["stderr"].lower() or "timed out" in props["stderr"].lower()
    after = await execute(module_http, module_pool.endpoint, v, session_id, "before")
    assert after.json()["properties"]["result"] == 5


# ---------------------------------------------------------------------------- current contract


async def test_2024_10_execute_answers_202_with_operation_location_that_can_be_fetched(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str
) -> None:
    version = "2024-10-02-preview"
    reply = await execute(
        module_http, module_pool.endpoint, version, session_id, "x = 7 * 9\nprint(x)\ndone = True"
    )
    assert reply.status == 202
    body = reply.json()
    _elapsed(body["result"])
    execution_id = body.pop("id")
    assert reply.headers["operation-id"] == execution_id
    assert body == {
        "identifier": session_id,
        "executionType": "Synchronous",
        "status": "Succeeded",
        "result": {
            "stdout": "63\n",
            "stderr": "",
            "executionResult": "",
        },
    }
    location = reply.headers["Operation-Location"]
    parts = urlsplit(location)
    assert parts.path == f"/executions/{execution_id}"
    assert parse_qs(parts.query) == {"api-version": [version], "identifier": [session_id]}
    fetched = await call(module_http, "GET", module_pool.endpoint + location)
    assert fetched.status == 200
    assert fetched.json()["id"] == execution_id
    assert fetched.json()["status"] == "Succeeded"
    # The relative location also resolves against the server root.
    from_root = await call(module_http, "GET", f"http://127.0.0.1:{module_pool.port}{location}")
    assert from_root.status == 200


@pytest.mark.parametrize("version", ["2025-02-02-preview", "2025-10-02-preview"])
async def test_2025_execute_answers_200_with_the_execution_resource(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str, version: str
) -> None:
    reply = await execute(
        module_http, module_pool.endpoint, version, session_id, "2 + 2", timeoutInSeconds=60
    )
    assert reply.status == 200
    assert "Operation-Location" not in reply.headers
    body = reply.json()
    _elapsed(body["result"])
    assert body == {
        "id": reply.headers["operation-id"],
        "identifier": session_id,
        "executionType": "Synchronous",
        "status": "Succeeded",
        "result": {
            "stdout": "",
            "stderr": "",
            "executionResult": 4,
        },
    }
    _assert_timing_headers(reply.headers)


async def test_nan_result_is_the_string_nan(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str
) -> None:
    reply = await execute(module_http, module_pool.endpoint, "2025-10-02-preview", session_id, "float('nan')")
    assert reply.json()["result"]["executionResult"] == "nan"


async def test_user_exception_is_failed_with_error_object_and_raw_result(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str
) -> None:
    reply = await execute(module_http, module_pool.endpoint, "2025-02-02-preview", session_id, "1/0")
    assert reply.status == 200
    body = reply.json()
    assert body["status"] == "Failed"
    assert body["error"]["code"] == "ZeroDivisionError"
    assert "division by zero" in body["error"]["message"]
    assert body["error"]["stateLost"] is False
    assert "ZeroDivisionError" in body["result"]["stderr"]
    assert body["result"]["executionResult"] is None
    assert body["rawResult"]["error_name"] == "ZeroDivisionError"


@pytest.mark.usefixtures("patient_interrupts")
async def test_timeout_is_failed_with_execution_timeout_and_keeps_state(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str
) -> None:
    v = "2025-10-02-preview"
    await execute(module_http, module_pool.endpoint, v, session_id, "kept = 11")
    reply = await execute(
        module_http, module_pool.endpoint, v, session_id, "import time\ntime.sleep(30)", timeoutInSeconds=1
    )
    body = reply.json()
    assert reply.status == 200
    assert body["status"] == "Failed"
    assert body["error"]["code"] == "ExecutionTimeout"
    assert body["error"]["stateLost"] is False
    assert body["timedOut"] is True
    assert "stateLost" not in body
    after = await execute(module_http, module_pool.endpoint, v, session_id, "kept")
    assert after.json()["result"]["executionResult"] == 11


async def test_dead_kernel_is_failed_with_kernel_died_and_state_lost(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str
) -> None:
    v = "2025-10-02-preview"
    await execute(module_http, module_pool.endpoint, v, session_id, "kept = 1")
    reply = await execute(module_http, module_pool.endpoint, v, session_id, "import os\nos._exit(3)")
    body = reply.json()
    assert reply.status == 200
    assert body["status"] == "Failed"
    assert body["error"]["code"] == "KernelDied"
    assert body["error"]["stateLost"] is True
    assert body["stateLost"] is True
    after = await execute(module_http, module_pool.endpoint, v, session_id, "'kept' in globals()")
    assert after.json()["status"] == "Succeeded"
    assert after.json()["result"]["executionResult"] is False


async def test_2025_10_cuts_output_at_4096_by_default_without_a_flag(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str
) -> None:
    code = "import sys\nprint('x' * 5000, end='')\nsys.stderr.write('e' * 5000)"
    reply = await execute(module_http, module_pool.endpoint, "2025-10-02-preview", session_id, code)
    result = reply.json()["result"]
    assert len(result["stdout"]) == 4096
    assert len(result["stderr"]) == 4096
    # As Azure: nothing says it was cut (the flags are an opt-in extension, test_wire_extensions.py).
    assert set(result) == {"stdout", "stderr", "executionResult", "executionTimeInMilliseconds"}


async def test_2025_10_honours_a_larger_output_streams_max_length(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str
) -> None:
    code = "print('x' * 5000, end='')"
    reply = await execute(
        module_http,
        module_pool.endpoint,
        "2025-10-02-preview",
        session_id,
        code,
        outputStreamsMaxLength=10000,
    )
    result = reply.json()["result"]
    assert result["stdout"] == "x" * 5000
    small = await execute(
        module_http, module_pool.endpoint, "2025-10-02-preview", session_id, code, outputStreamsMaxLength=10
    )
    assert small.json()["result"]["stdout"] == "x" * 10


async def test_versions_before_2025_10_do_not_cut_output(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str
) -> None:
    code = "print('x' * 5000, end='')"
    reply = await execute(module_http, module_pool.endpoint, "2025-02-02-preview", session_id, code)
    assert reply.json()["result"]["stdout"] == "x" * 5000
    legacy = await execute(module_http, module_pool.endpoint, LEGACY_VERSIONS[0], session_id, code)
    assert legacy.json()["properties"]["stdout"] == "x" * 5000


async def test_operation_id_header_names_the_execution(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str
) -> None:
    chosen = f"op-{uuid.uuid4()}"
    reply = await call(
        module_http,
        "POST",
        f"{module_pool.endpoint}/executions",
        version="2025-10-02-preview",
        identifier=session_id,
        json=current_body("1"),
        headers={"operation-id": chosen},
    )
    assert reply.json()["id"] == chosen
    assert reply.headers["operation-id"] == chosen
    fetched = await call(
        module_http,
        "GET",
        f"{module_pool.endpoint}/executions/{chosen}",
        version="2025-10-02-preview",
        identifier=session_id,
    )
    assert fetched.status == 200
    assert fetched.json()["result"]["executionResult"] == 1


@pytest.mark.parametrize("version", CURRENT_VERSIONS)
async def test_asynchronous_execution_returns_running_then_polls_to_succeeded(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str, version: str
) -> None:
    reply = await call(
        module_http,
        "POST",
        f"{module_pool.endpoint}/executions",
        version=version,
        identifier=session_id,
        json=current_body("import time\ntime.sleep(1)\nprint('done')\n'v'", executionType="asynchronous"),
    )
    assert reply.status == 202
    body = reply.json()
    assert body == {
        "id": reply.headers["operation-id"],
        "identifier": session_id,
        "executionType": "Asynchronous",
        "status": "Running",
        "result": None,
    }
    location = reply.headers["Operation-Location"]
    assert location == f"/executions/{body['id']}?api-version={version}&identifier={session_id}"
    final = await poll(module_http, module_pool.endpoint + location)
    assert final.status == 200
    done = final.json()
    assert done["status"] == "Succeeded"
    assert done["executionType"] == "Asynchronous"
    assert done["result"]["stdout"] == "done\n"
    assert done["result"]["executionResult"] == "v"


@pytest.mark.parametrize("version", CURRENT_VERSIONS)
async def test_unknown_execution_id_is_404(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str, version: str
) -> None:
    reply = await call(
        module_http,
        "GET",
        f"{module_pool.endpoint}/executions/{uuid.uuid4()}",
        version=version,
        identifier=session_id,
    )
    assert reply.status == 404
    assert reply.error["code"] == "ExecutionNotFound"


async def test_execution_of_another_session_is_not_visible(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str
) -> None:
    v = "2025-10-02-preview"
    reply = await execute(module_http, module_pool.endpoint, v, session_id, "1")
    other = await call(
        module_http,
        "GET",
        f"{module_pool.endpoint}/executions/{reply.json()['id']}",
        version=v,
        identifier=str(uuid.uuid4()),
    )
    assert other.status == 404


async def test_inline_base64_code_is_decoded(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str
) -> None:
    code = base64.b64encode(b"print('from base64')").decode()
    reply = await call(
        module_http,
        "POST",
        f"{module_pool.endpoint}/executions",
        version="2025-10-02-preview",
        identifier=session_id,
        json={"codeInputType": "inlinebase64", "executionType": "SYNCHRONOUS", "code": code},
    )
    assert reply.json()["result"]["stdout"] == "from base64\n"


async def test_timeout_above_the_pool_maximum_is_clamped_not_refused(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str
) -> None:
    reply = await execute(
        module_http, module_pool.endpoint, "2025-10-02-preview", session_id, "'ok'", timeoutInSeconds=100000
    )
    assert reply.status == 200
    assert reply.json()["status"] == "Succeeded"


async def test_python_pool_refuses_shell_command(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str
) -> None:
    reply = await call(
        module_http,
        "POST",
        f"{module_pool.endpoint}/executions",
        version="2025-10-02-preview",
        identifier=session_id,
        json={"shellCommand": "ls"},
    )
    assert reply.status == 400
    assert reply.error["target"] == "shellCommand"


async def test_legacy_contract_refuses_asynchronous_execution(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str
) -> None:
    reply = await call(
        module_http,
        "POST",
        f"{module_pool.endpoint}/code/execute",
        version=LEGACY_VERSIONS[0],
        identifier=session_id,
        json=legacy_body("1", executionType="asynchronous"),
    )
    assert reply.status == 400
    assert reply.error["target"] == "executionType"


async def test_the_server_root_is_no_pool_endpoint_and_a_double_slash_is_harmless(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str
) -> None:
    # As on Azure, the bare base URL runs nothing: its 404 names the pool endpoint instead.
    root = await call(
        module_http,
        "POST",
        f"http://127.0.0.1:{module_pool.port}/executions",
        version="2025-10-02-preview",
        identifier=session_id,
        json=current_body("5"),
    )
    assert root.status == 404
    assert root.error["code"] == "SessionPoolNotFound"
    assert module_pool.endpoint in root.error["message"]
    assert module_pool.manager.get(session_id) is None
    doubled = await call(
        module_http,
        "POST",
        f"{module_pool.endpoint}//executions/",
        version="2025-10-02-preview",
        identifier=session_id,
        json=current_body("6"),
    )
    assert doubled.status == 200
    assert doubled.json()["result"]["executionResult"] == 6
