"""The address guard: which addresses feeds may reach, and the resolver that enforces it."""

from __future__ import annotations

import socket
from ipaddress import ip_address

import pytest
from aiohttp.resolver import ThreadedResolver

from monitor.feeds.guard import (
    AddressPolicy,
    AddressRefusedError,
    GuardedResolver,
    address_kind,
    is_address_allowed,
)

FIX = "set MONITOR_ALLOW_PRIVATE_ADDRESSES=true or add it to MONITOR_ALLOWED_NETWORKS"

# address, kind (None = public)
KINDS = [
    ("8.8.8.8", None),
    ("93.184.216.34", None),
    ("2606:4700::1111", None),
    ("::ffff:8.8.8.8", None),  # IPv4-mapped public
    ("64:ff9b::808:808", None),  # NAT64 of a public address (DNS64 networks)
    ("2002:808:808::1", None),  # 6to4 of a public address
    ("127.0.0.1", "a loopback address"),
    ("127.0.0.2", "a loopback address"),
    ("::1", "a loopback address"),
    ("10.0.0.1", "a private address"),
    ("172.16.5.4", "a private address"),
    ("192.168.1.1", "a private address"),
    ("fd00::1", "a private address"),
    ("169.254.169.254", "a link-local address"),  # cloud metadata service
    ("fe80::1", "a link-local address"),
    ("fe80::1%eth0", "a link-local address"),
    ("224.0.0.1", "a multicast address"),
    ("ff02::1", "a multicast address"),
    ("100.64.0.1", "a shared (carrier-grade NAT) address"),
    ("100.127.255.254", "a shared (carrier-grade NAT) address"),
    ("0.0.0.0", "an unspecified address"),
    ("::", "an unspecified address"),
    ("240.0.0.1", "a reserved address"),
    ("255.255.255.255", "a reserved address"),
    ("::127.0.0.1", "a reserved address"),  # deprecated IPv4-compatible form
    ("192.0.2.1", "a special-purpose (non-public) address"),  # documentation
    ("198.18.0.1", "a special-purpose (non-public) address"),  # benchmarking
    ("2001:db8::1", "a special-purpose (non-public) address"),
    ("::ffff:127.0.0.1", "a loopback address"),  # IPv4-mapped loopback
    ("::ffff:10.0.0.1", "a private address"),
    ("::ffff:169.254.169.254", "a link-local address"),
    ("64:ff9b::a9fe:a9fe", "a link-local address"),  # NAT64 of the metadata service
    ("2002:7f00:1::1", "a loopback address"),  # 6to4 of loopback
    ("2002:a00:1::1", "a private address"),  # 6to4 of 10.0.0.1
]


@pytest.mark.parametrize(("address", "kind"), KINDS)
def test_address_kind(address: str, kind: str | None) -> None:
    assert address_kind(ip_address(address)) == kind


@pytest.mark.parametrize(("address", "kind"), KINDS)
def test_only_public_addresses_are_allowed_by_default(address: str, kind: str | None) -> None:
    assert is_address_allowed(address, False, ()) is (kind is None)


@pytest.mark.parametrize(("address", "kind"), KINDS)
def test_allow_private_allows_everything(address: str, kind: str | None) -> None:
    assert is_address_allowed(address, True, ())


@pytest.mark.parametrize(
    ("address", "networks", "allowed"),
    [
        ("10.1.2.3", ("10.0.0.0/8",), True),
        ("10.1.2.3", ("10.1.2.3/32",), True),
        ("10.1.2.4", ("10.1.2.3/32",), False),
        ("192.168.1.1", ("10.0.0.0/8",), False),
        ("192.168.1.1", ("10.0.0.0/8", "192.168.0.0/16"), True),
        ("::ffff:10.1.2.3", ("10.0.0.0/8",), True),  # the mapped address reaches 10.1.2.3
        ("::ffff:10.1.2.3", ("::ffff:10.0.0.0/104",), True),
        ("2002:a00:1::1", ("10.0.0.0/8",), True),
        ("127.0.0.1", ("127.0.0.1/32",), True),
        ("127.0.0.2", ("127.0.0.1/32",), False),
        ("::1", ("127.0.0.0/8",), False),  # versions never mix
        ("fd12::1", ("fd12::/16",), True),
        ("169.254.169.254", ("10.0.0.0/8",), False),
        ("8.8.8.8", ("10.0.0.0/8",), True),  # public stays allowed
    ],
)
def test_allowed_networks(address: str, networks: tuple[str, ...], allowed: bool) -> None:
    assert is_address_allowed(address, False, networks) is allowed
    policy = AddressPolicy.build(False, networks)
    assert policy.allows(ip_address(address)) is allowed


@pytest.mark.parametrize(
    ("host", "refusal"),
    [
        ("example.org", None),  # names are the resolver's job
        ("93.184.216.34", None),
        ("2606:4700::1111", None),
        ("10.0.0.1", f"refused: 10.0.0.1 is a private address; {FIX}"),
        ("127.0.0.1", f"refused: 127.0.0.1 is a loopback address; {FIX}"),
        ("::1", f"refused: ::1 is a loopback address; {FIX}"),
        ("::ffff:a00:1", f"refused: ::ffff:a00:1 (10.0.0.1) is a private address; {FIX}"),
        ("169.254.169.254", f"refused: 169.254.169.254 is a link-local address; {FIX}"),
        ("2130706433", "refused: 2130706433 is not a canonical IP address; write it as a.b.c.d"),
        ("127.1", "refused: 127.1 is not a canonical IP address; write it as a.b.c.d"),
        ("127.0.0.1.", "refused: 127.0.0.1. is not a canonical IP address; write it as a.b.c.d"),
        ("010.0.0.1", "refused: 010.0.0.1 is not a canonical IP address; write it as a.b.c.d"),
    ],
)
def test_refusal_for_literal(host: str, refusal: str | None) -> None:
    assert AddressPolicy().refusal_for_literal(host) == refusal


def test_refusal_for_literal_respects_the_policy() -> None:
    assert AddressPolicy(allow_private=True).refusal_for_literal("10.0.0.1") is None
    assert AddressPolicy.build(False, ["10.0.0.0/8"]).refusal_for_literal("10.0.0.1") is None
    # Even when private addresses are allowed, a legacy numeric host is not a literal we
    # can judge, so it stays refused.
    assert AddressPolicy(allow_private=True).refusal_for_literal("2130706433") is not None


async def test_resolver_refuses_a_name_that_resolves_only_to_refused_addresses() -> None:
    resolver = GuardedResolver(ThreadedResolver(), AddressPolicy())
    with pytest.raises(AddressRefusedError) as caught:
        await resolver.resolve("localhost", 80, socket.AF_INET)
    assert str(caught.value) == (
        f"refused: localhost resolves to 127.0.0.1, a loopback address; {FIX}"
    )
    assert caught.value.host == "localhost"
    await resolver.close()


async def test_resolver_keeps_allowed_addresses() -> None:
    resolver = GuardedResolver(ThreadedResolver(), AddressPolicy.build(False, ["127.0.0.1/32"]))
    results = await resolver.resolve("localhost", 80, socket.AF_INET)
    assert [result["host"] for result in results] == ["127.0.0.1"]
    await resolver.close()


async def test_resolver_drops_refused_addresses_and_keeps_the_rest() -> None:
    # "localhost" has both an IPv4 and an IPv6 loopback on most hosts; with AF_UNSPEC and
    # only 127.0.0.1 allowed, whatever else it resolves to must be gone.
    inner = ThreadedResolver()
    everything = await inner.resolve("localhost", 80, socket.AF_UNSPEC)
    resolver = GuardedResolver(inner, AddressPolicy.build(False, ["127.0.0.1/32"]))
    results = await resolver.resolve("localhost", 80, socket.AF_UNSPEC)
    assert {result["host"] for result in everything} >= {"127.0.0.1"}
    assert [result["host"] for result in results] == ["127.0.0.1"]
    await resolver.close()
