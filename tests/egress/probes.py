"""Python programs run *inside* a sandbox by the egress tests (as ``python3 -c PROBE args``)."""

from __future__ import annotations

import textwrap

ESCAPE_PROBE = textwrap.dedent(
    """
    import json, socket, sys
    ports = [int(p) for p in sys.argv[1:]]
    out = {}
    def attempt(name, fn):
        try:
            fn()
            out[name] = "OPEN"
        except Exception as exc:
            out[name] = type(exc).__name__
    def tcp(host, p, family=socket.AF_INET):
        s = socket.socket(family, socket.SOCK_STREAM); s.settimeout(5); s.connect((host, p)); s.close()
    for port in ports:
        attempt(f"tcp_loopback_{port}", lambda: tcp("127.0.0.1", port))
        attempt(f"tcp_ipv6_loopback_{port}", lambda: tcp("::1", port, socket.AF_INET6))
    attempt("tcp_public", lambda: tcp("1.1.1.1", 443))
    attempt("tcp_ipv6_public", lambda: tcp("2606:4700:4700::1111", 443, socket.AF_INET6))
    def udp_dns():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5)
        query = bytes.fromhex("123401000001000000000000") + b"\\x03api\\x04test\\x00\\x00\\x01\\x00\\x01"
        s.sendto(query, ("8.8.8.8", 53))
        s.recvfrom(512)
    attempt("udp_dns_other_resolver", udp_dns)
    attempt("resolve_in_sandbox", lambda: socket.getaddrinfo("api.test", 80))
    attempt("raw_socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))
    attempt("packet_socket", lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW))
    tables = ""
    for name in ("tcp", "tcp6", "udp", "udp6", "unix"):
        try:
            tables += open("/proc/net/" + name).read()
        except OSError:
            pass
    out["proc_net_shows_port"] = any((":%04X" % port) in tables for port in ports)
    out["interfaces"] = sorted(n for _, n in socket.if_nameindex())
    print(json.dumps(out))
    """
)
"""Every way out but the proxy, tried from inside: ``ESCAPE_PROBE <port>...`` prints a JSON
object, ``"OPEN"`` for each attempt that got out, the exception's name otherwise; whether
``/proc/net`` shows any of the ports; the network interfaces."""

SECRET_SEARCH_PROBE = textwrap.dedent(
    """
    import os, sys, urllib.request
    url, needle, tops = sys.argv[1], sys.argv[2], sys.argv[3:]
    target = NEEDLE.encode()
    found = [False]
    def look(data):
        found[0] = found[0] or target in data
    look(repr(dict(os.environ)).encode())
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            for name in ("environ", "cmdline"):
                try:
                    look(open(f"/proc/{pid}/{name}", "rb").read())
                except OSError:
                    pass
    # The interpreter's read-only directories, shown again inside, hold nothing of the server's.
    interpreter = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    interpreter |= {os.path.realpath(p) for p in sys.path if p and os.path.isdir(p)}
    for top in tops:
        for root, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if os.path.realpath(os.path.join(root, d)) not in interpreter]
            for f in files:
                try:
                    look(open(os.path.join(root, f), "rb").read(1 << 20))
                except OSError:
                    pass
    reply = urllib.request.urlopen(url).read()
    look(reply)
    print(reply.decode())
    print(found[0])
    """
)
"""Everything a sandbox's code could read, searched for a needle: its environment, every
process's environment and command line, the files below the directories named (but for the
interpreter's own, read-only), and the reply of the request (made through the proxy).
``SECRET_SEARCH_PROBE <url> <needle> <dir>...`` prints the reply, then whether the needle
was found. ``NEEDLE`` in it stands for the expression that decodes ``needle`` (see
:func:`secret_search`)."""


def secret_search(*, hex_needle: bool) -> str:
    """The search probe taking its needle as is (``hex_needle=False``: it is then in the probe's
    own command line, so the search must find it) or hex-encoded (found only through a leak)."""
    needle = "bytes.fromhex(needle).decode()" if hex_needle else "needle"
    return SECRET_SEARCH_PROBE.replace("NEEDLE", needle)
