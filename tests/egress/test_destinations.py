"""The destination guard: the server's own ports on every address of this machine."""

from __future__ import annotations

import ipaddress

import psutil

from autogen_aca_sessions.local.runtime.egress import DestinationGuard
from autogen_aca_sessions.local.runtime.egress.destinations import is_local_address

SERVER_PORT = 8321


def _own_addresses() -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    found = []
    for addresses in psutil.net_if_addrs().values():
        for entry in addresses:
            text = entry.address.split("%", 1)[0]  # an IPv6 scope (fe80::1%eth0) is not part of it
            try:
                address = ipaddress.ip_address(text)
            except ValueError:
                continue  # a MAC address
            if not address.is_link_local:  # binding those needs the scope
                found.append(address)
    return found


def test_the_server_port_is_refused_on_every_address_of_this_machine_even_when_a_rule_names_it() -> None:
    guard = DestinationGuard([SERVER_PORT])
    addresses = _own_addresses()
    assert ipaddress.ip_address("127.0.0.1") in addresses
    for address in addresses:
        assert is_local_address(address), address
        reason = guard.refusal(address, SERVER_PORT, explicit=True)
        assert reason is not None, address
        assert "own ports" in reason
        # Other ports of the same address follow the policy (a rule naming the literal).
        assert guard.refusal(address, SERVER_PORT + 1, explicit=True) is None


def test_addresses_of_other_machines_are_not_taken_for_this_one() -> None:
    guard = DestinationGuard([SERVER_PORT])
    for text in ("203.0.113.7", "2001:db8::7", "8.8.8.8"):
        address = ipaddress.ip_address(text)
        assert not is_local_address(address)
    # A public address that is not this machine's: the server's port number there is someone
    # else's service, which the policy decides.
    assert guard.refusal(ipaddress.ip_address("8.8.8.8"), SERVER_PORT, explicit=False) is None
