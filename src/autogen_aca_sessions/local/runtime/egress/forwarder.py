"""The in-sandbox end of egress: a loopback TCP port relayed to the proxy's Unix socket.

Run *inside* the sandbox's network namespace as
``python -I -S forwarder.py <unix socket> <port> -- <argv...>`` (by path, standard library
only, so any interpreter the sandbox has will do). It binds ``127.0.0.1:<port>``, forks,
and the parent ``exec``s ``argv`` (the workload keeps the pid, the process group and the
exit status); the child relays every accepted connection to the Unix socket byte for byte
and dies with the workload. It has no policy and no secret: it is only the door, and
the only door, since the namespace has no other interface than loopback.

Started as root (bubblewrap run by root), the relay becomes ``nobody`` before serving.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import sys

_BUFFER = 65536
_MAX_PAIRS = 256
"""Concurrent relayed connections (the proxy caps each sandbox lower anyway)."""
_NOBODY = 65534


def _die_with_parent(parent: int) -> None:
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except Exception:
        pass
    if os.getppid() != parent:  # the workload ended before the request above took effect
        os._exit(0)


def _detach_descriptors(keep: int) -> None:
    """Hold nothing of the workload's: not its output pipes (a reader waiting for their EOF
    must not wait for the relay), not the descriptors passed to it (a runtime's agent socket)."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    os.closerange(3, keep)
    os.closerange(keep + 1, max(keep + 1, os.sysconf("SC_OPEN_MAX")))


def _drop_root() -> None:
    if os.geteuid() != 0:
        return
    try:
        os.setgroups([])
        os.setgid(_NOBODY)
        os.setuid(_NOBODY)
    except OSError:
        # Root of a user namespace where nobody is not mapped: not the host's root, and
        # without the capabilities bubblewrap dropped; relay as is rather than not at all.
        pass


def _relay(listener: socket.socket, socket_path: str) -> None:
    selector = selectors.DefaultSelector()
    listener.setblocking(False)
    selector.register(listener, selectors.EVENT_READ, None)
    peers: dict[socket.socket, socket.socket] = {}
    pending: dict[socket.socket, bytes] = {}
    """Bytes waiting to be written to a socket; while there are, its peer is not read."""
    watched: dict[socket.socket, int] = {}
    ended: set[socket.socket] = set()
    """Sockets that sent EOF (their peer is shut for writing once its pending bytes are out)."""

    def update(sock: socket.socket) -> None:
        wanted = 0
        if peers[sock] not in pending and sock not in ended:
            wanted |= selectors.EVENT_READ
        if sock in pending:
            wanted |= selectors.EVENT_WRITE
        current = watched.get(sock, 0)
        if wanted == current:
            return
        if not wanted:
            selector.unregister(sock)
        elif not current:
            selector.register(sock, wanted, None)
        else:
            selector.modify(sock, wanted, None)
        watched[sock] = wanted

    def drop(sock: socket.socket) -> None:
        for one in (sock, peers.get(sock)):
            if one is None or one not in peers:
                continue
            del peers[one]
            pending.pop(one, None)
            ended.discard(one)
            if watched.pop(one, 0):
                selector.unregister(one)
            one.close()

    def shut(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)

    def send(sock: socket.socket, data: bytes) -> bool:
        try:
            sent = sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            return False
        if sent < len(data):
            pending[sock] = data[sent:]
        else:
            pending.pop(sock, None)
            if peers[sock] in ended:
                shut(sock)
        update(sock)
        update(peers[sock])
        return True

    while True:
        for key, events in selector.select():
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            if sock is listener:
                try:
                    client, _ = listener.accept()
                except OSError:
                    continue
                upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                if len(peers) >= 2 * _MAX_PAIRS:
                    client.close()
                    upstream.close()
                    continue
                try:
                    upstream.connect(socket_path)
                except OSError:
                    client.close()
                    upstream.close()
                    continue
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                for one in (client, upstream):
                    one.setblocking(False)
                peers[client], peers[upstream] = upstream, client
                update(client)
                update(upstream)
                continue
            if sock not in peers:
                continue
            if events & selectors.EVENT_WRITE and not send(sock, pending.get(sock, b"")):
                drop(sock)
                continue
            if events & selectors.EVENT_READ and sock in peers and peers[sock] not in pending:
                try:
                    data = sock.recv(_BUFFER)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    drop(sock)
                    continue
                if not data:
                    # Half-close: pass the EOF on; the pair ends when both sides have ended.
                    ended.add(sock)
                    other = peers[sock]
                    if other in ended:
                        drop(sock)
                        continue
                    if other not in pending:
                        shut(other)
                    update(sock)
                    continue
                if not send(peers[sock], data):
                    drop(sock)


def main(argv: list[str]) -> None:
    if len(argv) < 4 or argv[2] != "--":
        raise SystemExit("usage: forwarder.py <unix socket> <port> -- <argv...>")
    socket_path, port_text = argv[0], argv[1]
    workload = argv[3:]
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", int(port_text)))
    listener.listen(128)
    parent = os.getpid()
    child = os.fork()
    if child == 0:
        _die_with_parent(parent)
        _detach_descriptors(listener.fileno())
        _drop_root()
        try:
            _relay(listener, socket_path)
        finally:
            os._exit(0)
    listener.close()
    os.execvp(workload[0], workload)


if __name__ == "__main__":
    main(sys.argv[1:])
