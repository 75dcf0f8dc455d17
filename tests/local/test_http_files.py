"""File operations of every api-version against a real local pool: round trips, paths, limits."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from _http_helpers import CURRENT_VERSIONS, LEGACY_VERSIONS, call, execute, form
from yarl import URL

from autogen_aca_sessions.local import LocalSessionPool

pytestmark = pytest.mark.asyncio(loop_scope="module")

MAX_UPLOAD = 64 * 1024
POOL_OPTIONS = {"ready_sessions": 2, "max_upload_bytes": MAX_UPLOAD}

V = "2025-10-02-preview"
TICKS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}Z$")
MILLIS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


async def upload(
    http: aiohttp.ClientSession,
    pool: LocalSessionPool,
    version: str,
    identifier: str,
    name: str,
    data: bytes,
    *,
    path: str | None = None,
) -> Any:
    op = "files/upload" if version in LEGACY_VERSIONS else "files"
    params = {"path": path} if path is not None else None
    reply = await call(
        http,
        "POST",
        f"{pool.endpoint}/{op}",
        version=version,
        identifier=identifier,
        params=params,
        data=form(name, data),
    )
    assert reply.status == 200, reply.body
    return reply.json()


def _entry(listing: dict[str, Any], name: str) -> dict[str, Any]:
    matches = [e for e in listing["value"] if e.get("name") == name]
    assert len(matches) == 1, listing
    return dict(matches[0])


# ---------------------------------------------------------------------------- legacy contract


@pytest.mark.parametrize("version", LEGACY_VERSIONS)
async def test_legacy_upload_list_download_round_trip(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str, version: str
) -> None:
    data = b"a,b\n1,2\n3,4\n"
    body = await upload(module_http, module_pool, version, session_id, "a.csv", data)
    modified = body["value"][0]["properties"].pop("lastModifiedTime")
    assert TICKS.match(modified), modified
    assert body == {
        "$id": "1",
        "value": [{"$id": "2", "properties": {"$id": "3", "filename": "a.csv", "size": len(data)}}],
    }
    listing = await call(
        module_http, "GET", f"{module_pool.endpoint}/files", version=version, identifier=session_id
    )
    assert listing.status == 200
    assert [v["properties"]["filename"] for v in listing.json()["value"]] == ["a.csv"]
    content = await call(
        module_http,
        "GET",
        f"{module_pool.endpoint}/files/content/a.csv",
        version=version,
        identifier=session_id,
    )
    assert content.status == 200
    assert content.headers["Content-Type"] == "application/octet-stream"
    assert content.body == data


async def test_legacy_upload_of_several_files_lists_each_with_its_own_ids(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str
) -> None:
    payload = aiohttp.FormData()
    payload.add_field("file", b"one", filename="one.txt")
    payload.add_field("file", b"three", filename="three.txt")
    reply = await call(
        module_http,
        "POST",
        f"{module_pool.endpoint}/files/upload",
        version=LEGACY_VERSIONS[0],
        identifier=session_id,
        data=payload,
    )
    value = reply.json()["value"]
    assert [
        (v["$id"], v["properties"]["$id"], v["properties"]["filename"], v["properties"]["size"])
        for v in value
    ] == [
        ("2", "3", "one.txt", 3),
        ("4", "5", "three.txt", 5),
    ]


async def test_2024_08_file_metadata_and_delete(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str
) -> None:
    version = "2024-08-02-preview"
    await upload(module_http, module_pool, version, session_id, "m.txt", b"hello")
    meta = await call(
        module_http, "GET", f"{module_pool.endpoint}/files/m.txt", version=version, identifier=session_id
    )
    assert meta.status == 200
    props = meta.json()["value"][0]["properties"]
    assert props["filename"] == "m.txt"
    assert props["size"] == 5
    deleted = await call(
        module_http, "DELETE", f"{module_pool.endpoint}/files/m.txt", version=version, identifier=session_id
    )
    assert deleted.status == 200
    assert deleted.json() == {"message": "file deleted successfully"}
    gone = await call(
        module_http,
        "GET",
        f"{module_pool.endpoint}/files/content/m.txt",
        version=version,
        identifier=session_id,
    )
    assert gone.status == 404
    assert gone.error["code"] == "FileNotFound"


async def test_legacy_listing_leaves_out_directories(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str
) -> None:
    await upload(module_http, module_pool, V, session_id, "deep.txt", b"x", path="sub")
    await upload(module_http, module_pool, V, session_id, "top.txt", b"y")
    listing = await call(
        module_http, "GET", f"{module_pool.endpoint}/files", version=LEGACY_VERSIONS[0], identifier=session_id
    )
    assert [v["properties"]["filename"] for v in listing.json()["value"]] == ["top.txt"]


# ---------------------------------------------------------------------------- current contract


@pytest.mark.parametrize("version", CURRENT_VERSIONS)
async def test_current_upload_list_metadata_download_delete_round_trip(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str, version: str
) -> None:
    data = b"# Title\n\nBody\n"
    resource = await upload(module_http, module_pool, version, session_id, "README.md", data)
    modified = resource.pop("lastModifiedAt")
    assert MILLIS.match(modified), modified
    expected: dict[str, Any] = {
        "name": "README.md",
        "type": "File",
        "sizeInBytes": len(data),
        "contentType": "text/markdown; charset=utf-8",
    }
    if version == "2025-10-02-preview":
        expected["directory"] = ""
    assert resource == expected

    listing = await call(
        module_http, "GET", f"{module_pool.endpoint}/files", version=version, identifier=session_id
    )
    assert listing.status == 200
    body = listing.json()
    assert set(body) == {"value", "nextLink"}
    assert body["nextLink"] is None
    assert _entry(body, "README.md")["sizeInBytes"] == len(data)

    meta = await call(
        module_http, "GET", f"{module_pool.endpoint}/files/README.md", version=version, identifier=session_id
    )
    assert meta.status == 200
    assert meta.json()["name"] == "README.md"

    content = await call(
        module_http,
        "GET",
        f"{module_pool.endpoint}/files/README.md/content",
        version=version,
        identifier=session_id,
    )
    assert content.status == 200
    assert content.headers["Content-Type"] == "application/octet-stream"
    assert content.body == data

    deleted = await call(
        module_http,
        "DELETE",
        f"{module_pool.endpoint}/files/README.md",
        version=version,
        identifier=session_id,
    )
    assert deleted.status == 204
    assert deleted.body == b""
    missing = await call(
        module_http, "GET", f"{module_pool.endpoint}/files/README.md", version=version, identifier=session_id
    )
    assert missing.status == 404
    assert missing.error["code"] == "FileNotFound"


async def test_files_in_subdirectories_round_trip_through_the_path_parameter(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str
) -> None:
    resource = await upload(
        module_http, module_pool, V, session_id, "b.bin", b"\x00\x01\x02", path="level1/level2"
    )
    assert resource["directory"] == "level1/level2"
    assert resource["contentType"] == "application/octet-stream"
    top = await call(module_http, "GET", f"{module_pool.endpoint}/files", version=V, identifier=session_id)
    directory = _entry(top.json(), "level1")
    assert directory["type"] == "Directory"
    assert "contentType" not in directory
    inner = await call(
        module_http,
        "GET",
        f"{module_pool.endpoint}/files",
        version=V,
        identifier=session_id,
        params={"path": "level1/level2"},
    )
    assert [e["name"] for e in inner.json()["value"]] == ["b.bin"]
    by_path = await call(
        module_http,
        "GET",
        f"{module_pool.endpoint}/files/b.bin/content",
        version=V,
        identifier=session_id,
        params={"path": "/mnt/data/level1/level2"},
    )
    assert by_path.body == b"\x00\x01\x02"
    by_name = await call(
        module_http,
        "GET",
        f"{module_pool.endpoint}/files/level1/level2/b.bin/content",
        version=V,
        identifier=session_id,
    )
    assert by_name.body == b"\x00\x01\x02"
    deleted = await call(
        module_http,
        "DELETE",
        f"{module_pool.endpoint}/files/b.bin",
        version=V,
        identifier=session_id,
        params={"path": "level1/level2"},
    )
    assert deleted.status == 204


async def test_langchain_style_absolute_path_and_filename_land_under_the_given_path(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str
) -> None:
    root = await upload(
        module_http, module_pool, "2024-02-02-preview", session_id, "lc.txt", b"1", path="/mnt/data"
    )
    assert root["value"][0]["properties"]["filename"] == "lc.txt"
    nested = await upload(
        module_http, module_pool, V, session_id, "/mnt/data/elsewhere/abs.txt", b"22", path="sub"
    )
    assert nested["name"] == "abs.txt"
    assert nested["directory"] == "sub"
    check = await execute(
        module_http,
        module_pool.endpoint,
        V,
        session_id,
        "import os\nsorted(os.listdir('.')), open('sub/abs.txt').read()",
    )
    assert check.json()["result"]["executionResult"] == [["lc.txt", "sub"], "22"]


async def test_recursive_listing_reports_every_level_with_its_directory(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str
) -> None:
    await upload(module_http, module_pool, V, session_id, "root.txt", b"r")
    await upload(module_http, module_pool, V, session_id, "mid.txt", b"mm", path="level1")
    await upload(module_http, module_pool, V, session_id, "leaf.txt", b"lll", path="level1/level2")
    flat = await call(module_http, "GET", f"{module_pool.endpoint}/files", version=V, identifier=session_id)
    assert sorted(e["name"] for e in flat.json()["value"]) == ["level1", "root.txt"]
    deep = await call(
        module_http,
        "GET",
        f"{module_pool.endpoint}/files",
        version=V,
        identifier=session_id,
        params={"recursive": "true"},
    )
    seen = sorted((e["directory"], e["name"], e["type"]) for e in deep.json()["value"])
    assert seen == [
        ("", "level1", "Directory"),
        ("", "root.txt", "File"),
        ("level1", "level2", "Directory"),
        ("level1", "mid.txt", "File"),
        ("level1/level2", "leaf.txt", "File"),
    ]
    below = await call(
        module_http,
        "GET",
        f"{module_pool.endpoint}/files",
        version=V,
        identifier=session_id,
        params={"recursive": "True", "path": "level1"},
    )
    assert sorted((e["directory"], e["name"]) for e in below.json()["value"]) == [
        ("level1", "level2"),
        ("level1", "mid.txt"),
        ("level1/level2", "leaf.txt"),
    ]


async def test_recursive_is_ignored_before_2025_10(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str
) -> None:
    await upload(module_http, module_pool, V, session_id, "leaf.txt", b"x", path="d")
    reply = await call(
        module_http,
        "GET",
        f"{module_pool.endpoint}/files",
        version="2025-02-02-preview",
        identifier=session_id,
        params={"recursive": "true"},
    )
    entries = reply.json()["value"]
    assert [e["name"] for e in entries] == ["d"]
    assert "directory" not in entries[0]


async def test_files_written_by_code_are_listed_and_downloadable(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str
) -> None:
    code = "import os\nos.makedirs('out', exist_ok=True)\nopen('out/r.json', 'w').write('{\"k\": 1}')"
    await execute(module_http, module_pool.endpoint, V, session_id, code)
    listing = await call(
        module_http,
        "GET",
        f"{module_pool.endpoint}/files",
        version=V,
        identifier=session_id,
        params={"path": "out"},
    )
    entry = _entry(listing.json(), "r.json")
    assert entry["contentType"] == "application/json; charset=utf-8"
    content = await call(
        module_http,
        "GET",
        f"{module_pool.endpoint}/files/out/r.json/content",
        version=V,
        identifier=session_id,
    )
    assert content.body == b'{"k": 1}'


async def test_listing_an_unknown_session_creates_it(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str
) -> None:
    assert module_pool.manager.get(session_id) is None
    reply = await call(module_http, "GET", f"{module_pool.endpoint}/files", version=V, identifier=session_id)
    assert reply.status == 200
    assert reply.json() == {"value": [], "nextLink": None}
    assert module_pool.manager.get(session_id) is not None


# ---------------------------------------------------------------------------- refusals


def _raw_url(pool: LocalSessionPool, encoded_op: str, query: str) -> URL:
    return URL(f"{pool.endpoint}/{encoded_op}?{query}", encoded=True)


@pytest.mark.parametrize(
    "encoded_op",
    [
        "files/%2e%2e/%2e%2e/etc/passwd/content",
        "files/..%2F..%2Fetc%2Fpasswd/content",
        "files/../../../../etc/passwd/content",
        "files/a%00b/content",
        "files/a%5Cb/content",
    ],
)
async def test_names_escaping_mnt_data_are_400(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str, encoded_op: str
) -> None:
    url = _raw_url(module_pool, encoded_op, f"api-version={V}&identifier={session_id}")
    async with module_http.get(url) as response:
        assert response.status == 400
        body = await response.json()
    assert body["error"]["code"] == "InvalidFilePath"


async def test_an_absolute_looking_name_stays_inside_mnt_data(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str
) -> None:
    # "/etc/passwd" in a URL path collapses to the relative name etc/passwd under /mnt/data.
    url = _raw_url(module_pool, "files/%2Fetc%2Fpasswd/content", f"api-version={V}&identifier={session_id}")
    async with module_http.get(url) as response:
        assert response.status == 404
        assert b"root:" not in await response.read()


async def test_multipart_filenames_are_stored_as_sent_without_percent_decoding(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str
) -> None:
    # RFC 7578: the filename parameter is not URL-encoded, so "%20" is two literal characters.
    spaced = await upload(module_http, module_pool, V, session_id, "my data%.csv", b"1")
    assert spaced["name"] == "my data%.csv"
    literal = await upload(module_http, module_pool, V, session_id, "x%20y.csv", b"2")
    assert literal["name"] == "x%20y.csv"
    unicode_name = await upload(module_http, module_pool, V, session_id, "données é.csv", b"3")
    assert unicode_name["name"] == "données é.csv"


async def test_legacy_content_with_dot_dot_is_400(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str
) -> None:
    url = _raw_url(
        module_pool,
        "files/content/%2e%2e/%2e%2e/etc/passwd",
        f"api-version=2024-02-02-preview&identifier={session_id}",
    )
    async with module_http.get(url) as response:
        assert response.status == 400


@pytest.mark.parametrize("path", ["../..", "/etc", "a/../../b", "/mnt/database", "x\x00y", "c:\\temp"])
async def test_path_parameters_escaping_mnt_data_are_400(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str, path: str
) -> None:
    listing = await call(
        module_http,
        "GET",
        f"{module_pool.endpoint}/files",
        version=V,
        identifier=session_id,
        params={"path": path},
    )
    assert listing.status == 400
    assert listing.error["target"] == "path"
    uploaded = await call(
        module_http,
        "POST",
        f"{module_pool.endpoint}/files",
        version=V,
        identifier=session_id,
        params={"path": path},
        data=form("x.txt", b"x"),
    )
    assert uploaded.status == 400


async def test_symlinks_planted_by_session_code_cannot_reach_outside(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str
) -> None:
    code = (
        "import os\n"
        "os.symlink('/etc/passwd', 'leak')\n"
        "os.symlink('/etc', 'etcdir')\n"
        "open('real.txt', 'w').write('ok')\n"
        "os.symlink('real.txt', 'inside')\n"
    )
    ran = await execute(module_http, module_pool.endpoint, V, session_id, code)
    assert ran.json()["status"] == "Succeeded", ran.json()
    for op, params in [
        ("files/leak/content", None),
        ("files/leak", None),
        ("files/etcdir/passwd/content", None),
        ("files/passwd/content", {"path": "etcdir"}),
        ("files", {"path": "etcdir"}),
    ]:
        reply = await call(
            module_http,
            "GET",
            f"{module_pool.endpoint}/{op}",
            version=V,
            identifier=session_id,
            params=params,
        )
        assert reply.status == 400, (op, reply.status, reply.body[:200])
        assert reply.error["code"] == "InvalidFilePath"
    listing = await call(
        module_http, "GET", f"{module_pool.endpoint}/files", version=V, identifier=session_id
    )
    assert sorted(e["name"] for e in listing.json()["value"]) == ["inside", "real.txt"]
    inside = await call(
        module_http, "GET", f"{module_pool.endpoint}/files/inside/content", version=V, identifier=session_id
    )
    assert inside.body == b"ok"
    # Uploading over the planted link replaces the link; the target outside is untouched.
    passwd = Path("/etc/passwd")
    before = await asyncio.to_thread(passwd.read_bytes)
    await upload(module_http, module_pool, V, session_id, "leak", b"replaced")
    assert await asyncio.to_thread(passwd.read_bytes) == before
    session = module_pool.manager.get(session_id)
    assert session is not None
    leak = session.data_dir / "leak"
    assert not await asyncio.to_thread(leak.is_symlink)
    assert await asyncio.to_thread(leak.read_bytes) == b"replaced"
    # Deleting a link removes only the link.
    gone = await call(
        module_http, "DELETE", f"{module_pool.endpoint}/files/etcdir", version=V, identifier=session_id
    )
    assert gone.status == 204
    assert await asyncio.to_thread(Path("/etc").is_dir)
    assert not await asyncio.to_thread((session.data_dir / "etcdir").is_symlink)


async def test_missing_file_is_404_and_directory_download_is_400(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str
) -> None:
    missing = await call(
        module_http, "GET", f"{module_pool.endpoint}/files/nope.txt/content", version=V, identifier=session_id
    )
    assert missing.status == 404
    assert missing.error["code"] == "FileNotFound"
    missing_dir = await call(
        module_http,
        "GET",
        f"{module_pool.endpoint}/files",
        version=V,
        identifier=session_id,
        params={"path": "nodir"},
    )
    assert missing_dir.status == 404
    assert missing_dir.error["code"] == "DirectoryNotFound"
    await upload(module_http, module_pool, V, session_id, "f.txt", b"1", path="somedir")
    directory = await call(
        module_http, "GET", f"{module_pool.endpoint}/files/somedir/content", version=V, identifier=session_id
    )
    assert directory.status == 400


@pytest.mark.parametrize("size", [MAX_UPLOAD + 1, 2 * 1024 * 1024])
async def test_upload_over_the_limit_is_413_and_leaves_nothing_behind(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str, size: int
) -> None:
    reply = await call(
        module_http,
        "POST",
        f"{module_pool.endpoint}/files",
        version=V,
        identifier=session_id,
        data=form("big.bin", b"\x00" * size),
    )
    assert reply.status == 413
    assert reply.error["code"] == "PayloadTooLarge"
    session = module_pool.manager.get(session_id)
    if session is not None:  # the Content-Length check refuses before the session is touched
        assert list(session.data_dir.iterdir()) == []


async def test_upload_at_the_limit_is_accepted(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str
) -> None:
    resource = await upload(module_http, module_pool, V, session_id, "exact.bin", b"\x01" * MAX_UPLOAD)
    assert resource["sizeInBytes"] == MAX_UPLOAD


async def test_upload_without_a_file_part_or_not_multipart_is_400(
    module_pool: LocalSessionPool, module_http: aiohttp.ClientSession, session_id: str
) -> None:
    no_file = aiohttp.FormData()
    no_file.add_field("other", "value")
    reply = await call(
        module_http, "POST", f"{module_pool.endpoint}/files", version=V, identifier=session_id, data=no_file
    )
    assert reply.status == 400
    assert reply.error["target"] == "file"
    as_json = await call(
        module_http,
        "POST",
        f"{module_pool.endpoint}/files",
        version=V,
        identifier=session_id,
        json={"file": "x"},
    )
    assert as_json.status == 400
    bad_name = await call(
        module_http,
        "POST",
        f"{module_pool.endpoint}/files",
        version=V,
        identifier=session_id,
        data=form("..", b"x"),
    )
    assert bad_name.status == 400
    assert bad_name.error["target"] == "filename"


async def test_uploads_belong_to_the_session_user_and_calls_walk_no_files(
    module_pool: LocalSessionPool,
    module_http: aiohttp.ClientSession,
    session_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os

    version = "2025-10-02-preview"
    endpoint = module_pool.endpoint
    assert module_pool.manager.isolation == "bwrap"  # the session runs as its own uid
    await execute(module_http, endpoint, version, session_id, "1")
    session = module_pool.manager.get(session_id)
    assert session is not None
    for path in (None, "sub/dir"):
        params = {"path": path} if path else {}
        reply = await call(
            module_http,
            "POST",
            f"{endpoint}/files",
            version=version,
            identifier=session_id,
            params=params,
            data=form("up.txt", b"from the server\n"),
        )
        assert reply.status == 200, reply.body
    owner = session.uid
    assert owner is not None
    assert owner != os.getuid()
    for rel in ("up.txt", "sub", "sub/dir", "sub/dir/up.txt"):
        assert os.lstat(session.data_dir / rel).st_uid == owner, rel
    walked: list[str] = []
    real_walk = os.walk

    def spy(top: Any, *args: Any, **kwargs: Any) -> Any:
        if str(top).startswith(str(session.data_dir)):
            walked.append(str(top))
        return real_walk(top, *args, **kwargs)

    monkeypatch.setattr(os, "walk", spy)
    code = (
        "import os\n"
        "with open('up.txt', 'a') as f:\n    f.write('from the session\\n')\n"
        "text = open('up.txt').read()\n"
        "os.remove('sub/dir/up.txt')\n"
        "open('sub/dir/new.txt', 'w').write('x')\n"
        "text"
    )
    reply = await execute(module_http, endpoint, version, session_id, code)
    body = reply.json()
    assert body["status"] == "Succeeded", body
    assert body["result"]["executionResult"] == "from the server\nfrom the session\n"
    assert not (session.data_dir / "sub/dir/up.txt").exists()
    assert (session.data_dir / "sub/dir/new.txt").read_text() == "x"
    assert walked == []  # no per-call ownership walk over /mnt/data
