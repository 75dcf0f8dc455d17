"""The proxy's parsers on arbitrary bytes: a clear refusal, never another exception."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from autogen_aca_sessions.local.limits import ResourceLimits
from autogen_aca_sessions.local.runtime.bubblewrap import Sandbox
from autogen_aca_sessions.local.runtime.egress import EGRESS_MOUNT, EgressAttachment
from autogen_aca_sessions.local.runtime.egress.http1 import HttpError, parse_request_head
from autogen_aca_sessions.local.runtime.egress.sni import NotTLSError, parse_client_hello, read_client_hello


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_as_a_request_head_parse_or_get_an_http_error(data: bytes) -> None:
    try:
        head = parse_request_head(data + b"\r\n\r\n")
    except HttpError as exc:
        status = exc.status
    else:
        assert head.target.host
        assert head.method
        return
    assert status in (400, 431, 505)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_as_a_client_hello_parse_or_get_not_tls(data: bytes) -> None:
    try:
        name = parse_client_hello(data)
    except NotTLSError:
        return
    assert name is None or (name.isascii() and name == name.lower())


def _hello_of(server_name: str | None) -> bytes:
    """The ClientHello Python's own TLS client sends (captured from a memory BIO)."""
    context = ssl.create_default_context()
    context.check_hostname = server_name is not None
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


async def test_a_real_client_hello_gives_its_sni_and_is_kept_whole() -> None:
    for name in ("api.example.com", None):
        raw = _hello_of(name)
        reader = asyncio.StreamReader()
        reader.feed_data(raw + b"after")
        hello = await read_client_hello(reader)
        assert hello.raw == raw
        assert hello.server_name == name


def test_a_gated_sandbox_command_has_one_loopback_network_and_the_forwarder_in_front(tmp_path: Path) -> None:
    sandbox = Sandbox("bwrap", bwrap_path="/usr/bin/bwrap", limits=ResourceLimits(), cgroup=None)
    gate = EgressAttachment(
        sandbox_id="pool",
        socket_dir=tmp_path,
        bwrap_args=["--unshare-net", "--ro-bind", str(tmp_path), EGRESS_MOUNT],
        env={"HTTP_PROXY": "http://127.0.0.1:3128"},
    )
    sandbox.egress_gate = gate
    command = sandbox.command("{}", data_dir=tmp_path, run_dir=None, hide=[], egress=False, env={"A": "1"})
    argv = command.argv
    assert argv.count("--unshare-net") == 1
    run_tmpfs = argv.index("/run") - 1
    assert argv[run_tmpfs] == "--tmpfs"
    assert run_tmpfs < argv.index(EGRESS_MOUNT)
    assert str(gate.python) in argv
    assert argv[argv.index("--") + 1 :][1].endswith("_kernel_boot.py")
    assert command.env == {"A": "1", "HTTP_PROXY": "http://127.0.0.1:3128"}
    # Full egress (Azure's EgressEnabled) keeps the host's network and no forwarder.
    open_command = sandbox.command("{}", data_dir=tmp_path, run_dir=None, hide=[], egress=True, env={})
    assert "--unshare-net" not in open_command.argv
    assert "--" not in open_command.argv
