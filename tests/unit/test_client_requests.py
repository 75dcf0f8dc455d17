"""Pins the exact request of every operation on every api-version (method, raw path and
query, headers, body) and the operations each version refuses."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from autogen_aca_sessions.client import ApiVersion, SessionsClient, UnsupportedOperationError
from tests.unit.conftest import FakePool, Recorded

LEGACY = ["2024-02-02-preview", "2024-08-02-preview"]
NEW = ["2024-10-02-preview", "2025-02-02-preview", "2025-10-02-preview"]

LEGACY_OK = {
    "$id": "1",
    "properties": {"$id": "2", "status": "Success", "stdout": "2\n", "stderr": "", "result": ""},
}
NEW_OK = {
    "id": "exec-1",
    "identifier": "sess-1",
    "executionType": "Synchronous",
    "status": "Succeeded",
    "result": {"stdout": "2\n", "stderr": "", "executionResult": "", "executionTimeInMilliseconds": 4},
}

Factory = Callable[..., SessionsClient]


def only(pool: FakePool) -> Recorded:
    assert len(pool.requests) == 1, [r.raw for r in pool.requests]
    return pool.requests[0]


def assert_common_headers(request: Recorded) -> None:
    assert request.headers["Authorization"] == "Bearer test-token"
    assert request.headers["User-Agent"].startswith("autogen-aca-sessions/0.1.0 ")
    assert request.headers["Accept"] == "application/json"


@pytest.mark.parametrize("version", LEGACY)
async def test_legacy_execute_posts_properties_wrapper_to_code_execute(
    version: str, make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(json_body=LEGACY_OK)
    await make_client(api_version=version).execute(
        "sess-1", "print(1+1)", timeout_seconds=45, operation_id="op-1"
    )
    request = only(fake_pool)
    assert request.method == "POST"
    assert request.raw == f"/code/execute?api-version={version}&identifier=sess-1"
    assert request.json() == {
        "properties": {
            "codeInputType": "inline",
            "executionType": "synchronous",
            "code": "print(1+1)",
            "timeoutInSeconds": 45,
        }
    }
    assert_common_headers(request)
    assert request.headers["operation-id"] == "op-1"
    assert request.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("version", NEW)
async def test_new_execute_posts_flat_body_to_executions(
    version: str, make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(json_body=NEW_OK)
    client = make_client(api_version=version, max_output_chars=50_000)
    await client.execute("sess-1", "print(1+1)", timeout_seconds=45, operation_id="op-1")
    request = only(fake_pool)
    assert request.method == "POST"
    assert request.raw == f"/executions?api-version={version}&identifier=sess-1"
    expected: dict[str, Any] = {
        "codeInputType": "Inline",
        "executionType": "Synchronous",
        "code": "print(1+1)",
        "timeoutInSeconds": 45,
    }
    if version == "2025-10-02-preview":
        expected["outputStreamsMaxLength"] = 50_000
    assert request.json() == expected
    assert_common_headers(request)
    assert request.headers["operation-id"] == "op-1"
    assert request.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("version", NEW)
async def test_asynchronous_execute_asks_for_asynchronous_execution_type(
    version: str, make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(json_body=NEW_OK)
    await make_client(api_version=version).execute("sess-1", "1", asynchronous=True)
    assert only(fake_pool).json()["executionType"] == "Asynchronous"


async def test_execute_defaults_to_newest_version_and_sends_a_generated_operation_id(
    make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(json_body=NEW_OK)
    client = make_client()
    assert client.api_version is ApiVersion.V2025_10_02_PREVIEW
    await client.execute("sess-1", "x = 1")
    request = only(fake_pool)
    assert request.raw == "/executions?api-version=2025-10-02-preview&identifier=sess-1"
    assert request.json()["timeoutInSeconds"] == 60
    assert request.json()["outputStreamsMaxLength"] == 1_000_000
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", request.headers["operation-id"]
    )


async def test_two_executions_get_different_generated_operation_ids(
    make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(json_body=NEW_OK, repeat=True)
    client = make_client()
    await client.execute("sess-1", "1")
    await client.execute("sess-1", "2")
    ids = [r.headers["operation-id"] for r in fake_pool.requests]
    assert len(ids) == 2
    assert ids[0] != ids[1]


async def test_fractional_timeout_is_rounded_up_to_whole_seconds(
    make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(json_body=NEW_OK)
    await make_client().execute("sess-1", "1", timeout_seconds=2.2)  # type: ignore[arg-type]
    assert only(fake_pool).json()["timeoutInSeconds"] == 3


@pytest.mark.parametrize("bad", [0, -1])
async def test_non_positive_timeout_is_refused_locally(
    bad: int, make_client: Factory, fake_pool: FakePool
) -> None:
    with pytest.raises(ValueError, match="timeout_seconds"):
        await make_client().execute("sess-1", "1", timeout_seconds=bad)
    assert fake_pool.requests == []


@pytest.mark.parametrize("version", ["2025-02-02-preview", "2025-10-02-preview"])
async def test_execute_shell_sends_shell_command(
    version: str, make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(json_body={"id": "e", "status": "0", "result": {"stdout": "a\n", "stderr": ""}})
    client = make_client(api_version=version, max_output_chars=9000)
    result = await client.execute_shell("sess-1", "ls -la", timeout_seconds=30, operation_id="op-9")
    request = only(fake_pool)
    assert request.raw == f"/executions?api-version={version}&identifier=sess-1"
    expected: dict[str, Any] = {
        "executionType": "Synchronous",
        "shellCommand": "ls -la",
        "timeoutInSeconds": 30,
    }
    if version == "2025-10-02-preview":
        expected["outputStreamsMaxLength"] = 9000
    assert request.json() == expected
    assert request.headers["operation-id"] == "op-9"
    assert result.exit_code == 0


@pytest.mark.parametrize("version", NEW)
async def test_get_execution_reads_executions_by_id(
    version: str, make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(json_body=NEW_OK)
    result = await make_client(api_version=version).get_execution("sess-1", "exec/1")
    request = only(fake_pool)
    assert request.method == "GET"
    assert request.raw == f"/executions/exec%2F1?api-version={version}&identifier=sess-1"
    assert request.body == b""
    assert_common_headers(request)
    assert result.execution_id == "exec-1"


@pytest.mark.parametrize(
    ("version", "path"),
    [(v, "/files/upload") for v in LEGACY] + [(v, "/files") for v in NEW],
)
async def test_upload_posts_multipart_file_field(
    version: str, path: str, make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(json_body={"name": "a.csv", "type": "File", "sizeInBytes": 3})
    await make_client(api_version=version).upload_file("sess-1", "a.csv", b"1,2")
    request = only(fake_pool)
    assert request.method == "POST"
    assert request.raw == f"{path}?api-version={version}&identifier=sess-1"
    assert request.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert request.form == {"file": ("a.csv", b"1,2")}
    assert "operation-id" not in request.headers
    assert_common_headers(request)


@pytest.mark.parametrize("version", LEGACY + NEW)
async def test_upload_passes_path_as_query_parameter(
    version: str, make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(json_body={"name": "a.csv"})
    await make_client(api_version=version).upload_file("sess-1", "a.csv", b"x", path="sub/dir")
    assert only(fake_pool).raw.endswith(f"?api-version={version}&identifier=sess-1&path=sub%2Fdir")


@pytest.mark.parametrize("version", LEGACY + NEW)
async def test_list_files_gets_files(version: str, make_client: Factory, fake_pool: FakePool) -> None:
    fake_pool.reply(json_body={"value": []})
    assert await make_client(api_version=version).list_files("sess-1") == []
    request = only(fake_pool)
    assert request.method == "GET"
    assert request.raw == f"/files?api-version={version}&identifier=sess-1"
    assert_common_headers(request)


async def test_list_files_recursive_on_2025_10_sends_recursive_true(
    make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(json_body={"value": []})
    await make_client().list_files("sess-1", path="out", recursive=True)
    assert (
        only(fake_pool).raw
        == "/files?api-version=2025-10-02-preview&identifier=sess-1&path=out&recursive=true"
    )


@pytest.mark.parametrize("version", [*LEGACY, "2024-10-02-preview", "2025-02-02-preview"])
async def test_list_files_recursive_before_2025_10_is_unsupported(
    version: str, make_client: Factory, fake_pool: FakePool
) -> None:
    with pytest.raises(UnsupportedOperationError, match="2025-10-02-preview"):
        await make_client(api_version=version).list_files("sess-1", recursive=True)
    assert fake_pool.requests == []


@pytest.mark.parametrize("version", [*LEGACY, *NEW])
async def test_supports_recursive_listing_says_what_the_contract_accepts(
    version: str, make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(json_body={"value": []})
    client = make_client(api_version=version)
    try:
        await client.list_files("sess-1", recursive=True)
    except UnsupportedOperationError:
        accepted = False
    else:
        accepted = True
    assert client.supports_recursive_listing is accepted
    assert accepted is (version == "2025-10-02-preview")


@pytest.mark.parametrize("version", ["2024-08-02-preview", *NEW])
async def test_get_file_reads_file_metadata(version: str, make_client: Factory, fake_pool: FakePool) -> None:
    fake_pool.reply(json_body={"name": "a b.csv", "type": "File"})
    entry = await make_client(api_version=version).get_file("sess-1", "a b.csv", path="d")
    request = only(fake_pool)
    assert request.method == "GET"
    assert request.raw == f"/files/a%20b.csv?api-version={version}&identifier=sess-1&path=d"
    assert entry.name == "a b.csv"


@pytest.mark.parametrize(
    ("version", "path"),
    [(v, "/files/content/a.csv") for v in LEGACY] + [(v, "/files/a.csv/content") for v in NEW],
)
async def test_download_gets_raw_bytes(
    version: str, path: str, make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(body=b"\x00\x01raw", headers={"Content-Type": "application/octet-stream"})
    data = await make_client(api_version=version).download_file("sess-1", "a.csv")
    assert data == b"\x00\x01raw"
    request = only(fake_pool)
    assert request.method == "GET"
    assert request.raw == f"{path}?api-version={version}&identifier=sess-1"
    assert_common_headers(request)


@pytest.mark.parametrize("version", ["2024-08-02-preview", *NEW])
async def test_delete_file_sends_delete(version: str, make_client: Factory, fake_pool: FakePool) -> None:
    if version in NEW:
        fake_pool.reply(204)
    else:
        fake_pool.reply(json_body={"message": "file deleted successfully"})
    await make_client(api_version=version).delete_file("sess-1", "a.csv")
    request = only(fake_pool)
    assert request.method == "DELETE"
    assert request.raw == f"/files/a.csv?api-version={version}&identifier=sess-1"


@pytest.mark.parametrize("operation", ["get_file", "delete_file"])
async def test_file_metadata_and_delete_need_2024_08_on_legacy(
    operation: str, make_client: Factory, fake_pool: FakePool
) -> None:
    client = make_client(api_version="2024-02-02-preview")
    with pytest.raises(UnsupportedOperationError, match="2024-08-02-preview"):
        await getattr(client, operation)("sess-1", "a.csv")
    assert fake_pool.requests == []


@pytest.mark.parametrize("version", ["2025-02-02-preview", "2025-10-02-preview"])
async def test_session_management_requests(version: str, make_client: Factory, fake_pool: FakePool) -> None:
    fake_pool.reply(json_body={"identifier": "sess-1"}, method="GET", path=r"^/session\?")
    fake_pool.reply(204, method="DELETE", path=r"^/session\?")
    fake_pool.reply(json_body={"sessions": []}, path=r"^/listSessions\?")
    fake_pool.reply(json_body={"runtimes": []}, path=r"^/metadata\?")
    client = make_client(api_version=version)
    assert client.supports_session_management
    await client.get_session("sess-1")
    await client.delete_session("sess-1")
    await client.list_sessions()
    await client.get_metadata()
    assert [(r.method, r.raw) for r in fake_pool.requests] == [
        ("GET", f"/session?api-version={version}&identifier=sess-1"),
        ("DELETE", f"/session?api-version={version}&identifier=sess-1"),
        ("GET", f"/listSessions?api-version={version}"),
        ("GET", f"/metadata?api-version={version}"),
    ]
    for request in fake_pool.requests:
        assert_common_headers(request)


@pytest.mark.parametrize("version", [*LEGACY, "2024-10-02-preview"])
@pytest.mark.parametrize(
    ("operation", "args"),
    [
        ("get_session", ("sess-1",)),
        ("delete_session", ("sess-1",)),
        ("list_sessions", ()),
        ("get_metadata", ()),
        ("execute_shell", ("sess-1", "ls")),
    ],
)
async def test_session_management_and_shell_need_2025_02(
    version: str, operation: str, args: tuple[str, ...], make_client: Factory, fake_pool: FakePool
) -> None:
    client = make_client(api_version=version)
    assert not client.supports_session_management
    with pytest.raises(UnsupportedOperationError, match="2025-02-02-preview") as info:
        await getattr(client, operation)(*args)
    assert info.value.api_version == version
    assert fake_pool.requests == []


@pytest.mark.parametrize("version", LEGACY)
async def test_legacy_refuses_asynchronous_execution_and_execution_lookup(
    version: str, make_client: Factory, fake_pool: FakePool
) -> None:
    client = make_client(api_version=version)
    with pytest.raises(UnsupportedOperationError, match="2024-10-02-preview"):
        await client.execute("sess-1", "1", asynchronous=True)
    with pytest.raises(UnsupportedOperationError):
        await client.get_execution("sess-1", "e")
    assert fake_pool.requests == []


async def test_user_agent_prefix_is_prepended(make_client: Factory, fake_pool: FakePool) -> None:
    fake_pool.reply(json_body={"value": []})
    await make_client(user_agent="my-app/2").list_files("sess-1")
    assert only(fake_pool).headers["User-Agent"].startswith("my-app/2 autogen-aca-sessions/0.1.0 ")


@pytest.mark.parametrize("value", [False, True, None])
async def test_ssl_setting_is_harmless_on_plain_http(
    value: bool | None, make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(json_body={"value": []})
    await make_client(ssl=value).list_files("sess-1")
    assert len(fake_pool.requests) == 1


@pytest.mark.parametrize("name", ["a b.txt", "é.csv", "50%.txt", "x%20y.txt"])
async def test_upload_file_name_goes_on_the_wire_as_utf8_text(
    name: str, make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(json_body={"name": name, "type": "File", "sizeInBytes": 1})
    await make_client().upload_file("sess-1", name, b"x")
    request = only(fake_pool)
    # The raw part header carries the name itself, never a percent-encoded form of it.
    expected = f'Content-Disposition: form-data; name="file"; filename="{name}"'.encode()
    assert expected in request.body
    assert request.form["file"] == (name, b"x")


async def test_upload_file_name_with_a_quote_is_escaped(make_client: Factory, fake_pool: FakePool) -> None:
    fake_pool.reply(json_body={"name": 'say "hi".txt'})
    await make_client().upload_file("sess-1", 'say "hi".txt', b"x")
    assert b'filename="say \\"hi\\".txt"' in only(fake_pool).body
