"""Endpoint validation, URL building and percent-encoding of identifiers and file names."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from autogen_aca_sessions.client import ApiVersion, SessionsClient
from autogen_aca_sessions.client._urls import PoolUrls
from tests.unit.conftest import FakePool

Factory = Callable[..., SessionsClient]
AZURE = "https://eastus.dynamicsessions.io/subscriptions/s/resourceGroups/rg/sessionPools/p"


@pytest.mark.parametrize("suffix", ["", "/", "//"])
async def test_trailing_slashes_do_not_change_urls(
    suffix: str, make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(json_body={"value": []})
    await make_client(fake_pool.endpoint + suffix).list_files("sess-1")
    assert fake_pool.requests[0].raw == "/files?api-version=2025-10-02-preview&identifier=sess-1"


def test_endpoint_property_has_no_trailing_slash() -> None:
    assert SessionsClient(AZURE + "/", "t").endpoint == AZURE


@pytest.mark.parametrize(
    "endpoint",
    [AZURE + "?api-version=2024-02-02-preview", AZURE + "/?identifier=x", AZURE + "?", AZURE + "#frag"],
)
def test_endpoint_with_query_or_fragment_is_refused(endpoint: str) -> None:
    with pytest.raises(ValueError, match="query string or fragment"):
        SessionsClient(endpoint, "t")


@pytest.mark.parametrize(
    "endpoint", ["", "   ", "ftp://pool.example/x", "eastus.dynamicsessions.io/pool", "https://"]
)
def test_endpoint_must_be_http_url(endpoint: str) -> None:
    with pytest.raises(ValueError, match="pool_management_endpoint"):
        SessionsClient(endpoint, "t")


def test_ssl_of_the_wrong_type_is_refused_at_construction() -> None:
    with pytest.raises(TypeError, match="ssl must be"):
        SessionsClient(AZURE, "t", ssl="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="ssl must be"):
        SessionsClient(AZURE, "t", ssl=lambda: None)  # type: ignore[arg-type]


def test_unknown_api_version_lists_the_supported_ones() -> None:
    with pytest.raises(ValueError, match="2025-10-02-preview"):
        SessionsClient(AZURE, "t", api_version="2023-01-01")


def test_api_version_accepts_strings_and_enum() -> None:
    assert (
        SessionsClient(AZURE, "t", api_version="2024-08-02-preview").api_version
        is ApiVersion.V2024_08_02_PREVIEW
    )
    assert (
        SessionsClient(AZURE, "t", api_version=ApiVersion.V2024_10_02_PREVIEW).api_version.value
        == "2024-10-02-preview"
    )
    assert str(ApiVersion.V2025_02_02_PREVIEW) == "2025-02-02-preview"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_output_chars": 0}, "max_output_chars"),
        ({"max_retries": -1}, "max_retries"),
        ({"request_timeout": 0}, "request_timeout"),
        ({"execution_grace_seconds": -1}, "execution_grace_seconds"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SessionsClient(AZURE, "t", **kwargs)  # type: ignore[arg-type]


async def test_identifier_is_percent_encoded_on_the_wire(make_client: Factory, fake_pool: FakePool) -> None:
    fake_pool.reply(json_body={"status": "Succeeded"})
    nasty = "a b/c?d&e=f#g%h+i"
    await make_client().execute(nasty, "1")
    raw = fake_pool.requests[0].raw
    assert raw == "/executions?api-version=2025-10-02-preview&identifier=a%20b%2Fc%3Fd%26e%3Df%23g%25h%2Bi"
    assert parse_qs(urlsplit(raw).query)["identifier"] == [nasty]


@pytest.mark.parametrize(
    ("name", "encoded"),
    [
        ("my file#1 (v2).csv", "my%20file%231%20%28v2%29.csv"),
        ("données.csv", "donn%C3%A9es.csv"),
        ("sub/a.csv", "sub%2Fa.csv"),
        ("a?b=c&d.txt", "a%3Fb%3Dc%26d.txt"),
        ("..", ".."),
    ],
)
async def test_file_names_are_percent_encoded_on_the_wire(
    name: str, encoded: str, make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(body=b"data", repeat=True)
    client = make_client()
    await client.download_file("sess-1", name)
    await make_client(api_version="2024-02-02-preview").download_file("sess-1", name)
    new, legacy = (r.raw for r in fake_pool.requests)
    assert new == f"/files/{encoded}/content?api-version=2025-10-02-preview&identifier=sess-1"
    assert legacy == f"/files/content/{encoded}?api-version=2024-02-02-preview&identifier=sess-1"
    assert unquote(new.split("/")[2]) == name


async def test_path_parameter_is_encoded_as_query(make_client: Factory, fake_pool: FakePool) -> None:
    fake_pool.reply(json_body={"value": []})
    await make_client().list_files("sess-1", path="/mnt/data/out dir")
    assert fake_pool.requests[0].raw == (
        "/files?api-version=2025-10-02-preview&identifier=sess-1&path=%2Fmnt%2Fdata%2Fout%20dir"
    )


@pytest.mark.parametrize("identifier", ["", "x" * 257, None, 5])
async def test_invalid_identifiers_are_refused_locally(
    identifier: object, make_client: Factory, fake_pool: FakePool
) -> None:
    client = make_client()
    with pytest.raises(ValueError, match="identifier"):
        await client.execute(identifier, "1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="identifier"):
        await client.list_files(identifier)  # type: ignore[arg-type]
    assert fake_pool.requests == []


async def test_identifier_of_256_characters_is_accepted(make_client: Factory, fake_pool: FakePool) -> None:
    fake_pool.reply(json_body={"value": []})
    await make_client().list_files("x" * 256)
    assert fake_pool.requests[0].raw.endswith("identifier=" + "x" * 256)


async def test_empty_file_name_is_refused_locally(make_client: Factory, fake_pool: FakePool) -> None:
    client = make_client()
    for call in (client.download_file, client.get_file, client.delete_file):
        with pytest.raises(ValueError, match="file name"):
            await call("sess-1", "")
    with pytest.raises(ValueError, match="file name"):
        await client.upload_file("sess-1", "", b"x")
    with pytest.raises(TypeError, match="bytes"):
        await client.upload_file("sess-1", "a", "text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="execution id"):
        await client.get_execution("sess-1", "")
    with pytest.raises(TypeError, match="code"):
        await client.execute("sess-1", None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="command"):
        await client.execute_shell("sess-1", None)  # type: ignore[arg-type]
    assert fake_pool.requests == []


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("/executions/e?api-version=v&identifier=i", AZURE + "/executions/e?api-version=v&identifier=i"),
        (
            "/subscriptions/s/resourceGroups/rg/sessionPools/p/executions/e",
            AZURE + "/executions/e?api-version=2025-10-02-preview&identifier=sess",
        ),
        ("executions/e?identifier=i", AZURE + "/executions/e?identifier=i&api-version=2025-10-02-preview"),
        (
            AZURE + "/executions/e?api-version=v&identifier=i",
            AZURE + "/executions/e?api-version=v&identifier=i",
        ),
        (
            "HTTPS://EASTUS.dynamicsessions.io/x?api-version=v&identifier=i",
            "https://eastus.dynamicsessions.io/x?api-version=v&identifier=i",
        ),
        ("https://other.example/executions/e", None),
        ("http://eastus.dynamicsessions.io/executions/e", None),
        ("", None),
        (None, None),
    ],
)
def test_service_links_are_resolved_against_the_pool_only(link: str | None, expected: str | None) -> None:
    client = SessionsClient(AZURE, "t")
    assert PoolUrls(client.endpoint, client.api_version).resolve_link(link, "sess") == expected


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://eastus.dynamicsessions.io/subscriptions/s/resourceGroups/rg/sessionPools/p",
        "http://10.0.0.5:8080/pool",
        "http://pool.internal/pool",
    ],
)
def test_plain_http_to_a_remote_host_is_refused(endpoint: str) -> None:
    with pytest.raises(ValueError, match="clear text"):
        SessionsClient(endpoint, "t")
    # An explicit opt-in accepts it (a trusted network, a pool in another container).
    assert SessionsClient(endpoint, "t", allow_insecure_http=True).endpoint == endpoint


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://127.0.0.1:8080/pool",
        "http://127.3.4.5/pool",
        "http://[::1]:9000/pool",
        "http://localhost:8080/pool",
        "http://LOCALHOST./pool",
        "https://eastus.dynamicsessions.io/p",
    ],
)
def test_loopback_http_and_any_https_are_accepted(endpoint: str) -> None:
    assert SessionsClient(endpoint, "t").endpoint == endpoint.rstrip("/")


@pytest.mark.parametrize(
    "endpoint", ["https://user:secret@eastus.dynamicsessions.io/p", "http://u@127.0.0.1/p"]
)
def test_endpoint_with_user_information_is_refused_without_echoing_it(endpoint: str) -> None:
    with pytest.raises(ValueError, match="user information") as info:
        SessionsClient(endpoint, "t")
    assert "secret" not in str(info.value)


async def test_next_link_with_raw_characters_is_encoded_on_the_wire(
    make_client: Factory, fake_pool: FakePool
) -> None:
    fake_pool.reply(json_body={"value": [{"name": "a"}], "nextLink": "/files?skip=page 2&marker=é"})
    fake_pool.reply(json_body={"value": [{"name": "b"}]})
    files = await make_client().list_files("sess-1")
    assert [f.name for f in files] == ["a", "b"]
    raw = fake_pool.requests[1].raw
    assert " " not in raw
    assert "é" not in raw
    query = parse_qs(urlsplit(raw).query)
    assert query["skip"] == ["page 2"]
    assert query["marker"] == ["é"]
