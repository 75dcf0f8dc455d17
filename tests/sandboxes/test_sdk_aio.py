"""The official SDK's ``aio`` clients, unchanged, against the real local server over TLS: the
quickstart flow, memory kept across stop and resume, a snapshot, delete."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from azure.containerapps.sandbox.aio import SandboxGroupClient
from azure.core.exceptions import ResourceNotFoundError

from autogen_aca_sessions.local import LocalSessionsServer
from tests.sandboxes._wire_helpers import RG, SUB

pytestmark = pytest.mark.asyncio(loop_scope="module")

GROUP = "sdk-aio"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server() -> AsyncIterator[LocalSessionsServer]:
    async with LocalSessionsServer(tls=True) as srv:
        await srv.create_sandbox_group(GROUP, subscription=SUB, resource_group=RG)
        yield srv


@pytest_asyncio.fixture(loop_scope="module")
async def client(server: LocalSessionsServer) -> AsyncIterator[SandboxGroupClient]:
    group = SandboxGroupClient(
        server.base_url,
        server.async_credential,
        subscription_id=SUB,
        resource_group=RG,
        sandbox_group=GROUP,
        connection_verify=str(server.tls_ca_file),
    )
    async with group:
        yield group


async def test_aio_quickstart_keeps_a_python_process_memory_across_stop_and_resume(
    client: SandboxGroupClient,
) -> None:
    sandbox = await (await client.begin_create_sandbox(disk="python-3.12")).result()
    assert (await sandbox.exec("python3 -c 'print(6*7)'")).stdout == "42\n"
    await sandbox.write_file("/root/a.txt", "hello")
    assert await sandbox.read_file("/root/a.txt") == b"hello"
    # A Python process holding a value only in its memory, answering on a loopback port.
    server_code = (
        "import socket,random; v=str(random.random()).encode(); s=socket.socket(); "
        "s.bind(('127.0.0.1',8765)); s.listen(); open('/root/v.txt','wb').write(v)\n"
        "while True:\n c,_=s.accept(); c.sendall(v); c.close()"
    )
    await sandbox.write_file("/root/holder.py", server_code)
    await sandbox.exec("nohup python3 /root/holder.py >/dev/null 2>&1 &")
    ask = (
        'python3 -c "import socket,time\nfor _ in range(200):\n try:\n'
        "  s=socket.create_connection(('127.0.0.1',8765)); print(s.recv(64).decode()); break\n"
        ' except OSError: time.sleep(0.05)"'
    )
    before = (await sandbox.exec(ask)).stdout.strip()
    assert before
    assert before == (await sandbox.read_file("/root/v.txt")).decode()
    await (await sandbox.begin_stop()).result()
    assert (await sandbox.get()).state == "Suspended"
    await (await sandbox.begin_resume()).result()
    after = (await sandbox.exec(ask)).stdout.strip()
    assert after == before
    snapshot = await sandbox.create_snapshot(name="aio")
    assert (await client.get_snapshot(snapshot.id)).labels == {"name": "aio"}
    await (await sandbox.begin_delete()).result()
    with pytest.raises(ResourceNotFoundError):
        await sandbox.get()
    await client.delete_snapshot(snapshot.id)
