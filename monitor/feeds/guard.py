"""Which addresses a feed fetch may connect to, and the resolver that enforces it.

A feeds file is operator input, but a feed's redirects are not: without this guard a
hostile feed could redirect us to the cloud metadata service, an admin panel on the
intranet or a database port on loopback. The decision is a pure function of the
address; ``GuardedResolver`` applies it to every name aiohttp resolves, so the
connector only ever sees allowed addresses. IP-literal hosts never reach a resolver,
so the fetcher checks them itself with ``AddressPolicy.refusal_for_literal``.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

from aiohttp.abc import AbstractResolver, ResolveResult

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

_SHARED = ip_network("100.64.0.0/10")  # carrier-grade NAT; not "private" to ipaddress
_PRIVATE = tuple(
    ip_network(cidr) for cidr in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
_NAT64 = ip_network("64:ff9b::/96")  # DNS64 hands these out for IPv4-only hosts

_FIX = "set MONITOR_ALLOW_PRIVATE_ADDRESSES=true or add it to MONITOR_ALLOWED_NETWORKS"


class AddressRefusedError(OSError):
    """A host resolved only to addresses the policy refuses.

    An ``OSError`` because aiohttp wraps resolver ``OSError``s into its own connector
    error, which the fetcher unwraps to tell a refusal from a failed lookup.
    """

    def __init__(self, host: str, address: IPAddress) -> None:
        self.host = host
        self.address = address
        super().__init__(refusal_message(host, address))


def refusal_message(host: str, address: IPAddress) -> str:
    """The one-line reason for refusing ``host``, naming the settings that would allow it."""
    kind = address_kind(address) or "a refused address"
    reached = _embedded(address)[-1]
    shown = f"{address} ({reached})" if reached != address else str(address)
    if ip_address_or_none(host) == address:
        return f"refused: {shown} is {kind}; {_FIX}"
    return f"refused: {host} resolves to {shown}, {kind}; {_FIX}"


def ip_address_or_none(text: str) -> IPAddress | None:
    """``text`` as an IP address, or None when it is a host name."""
    try:
        return ip_address(text)
    except ValueError:
        return None


def _embedded(address: IPAddress) -> tuple[IPAddress, ...]:
    """The addresses a connection to ``address`` really reaches.

    An IPv4-mapped or NAT64 address *is* its IPv4 address on the wire; a 6to4 address
    is routed to its IPv4 address, so both must pass.
    """
    if isinstance(address, IPv4Address):
        return (address,)
    if address.ipv4_mapped is not None:
        return (address.ipv4_mapped,)
    if address in _NAT64:
        return (IPv4Address(int(address) & 0xFFFFFFFF),)
    if address.sixtofour is not None:
        return (address, address.sixtofour)
    return (address,)


def _kind(address: IPAddress) -> str | None:
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address in _SHARED:
        return "a shared (carrier-grade NAT) address"
    if any(address in network for network in _PRIVATE):
        return "a private address"
    if address.is_reserved:
        return "a reserved address"
    if not address.is_global:
        return "a special-purpose (non-public) address"
    return None


def address_kind(address: IPAddress) -> str | None:
    """Why ``address`` is not public ("a loopback address", ...), or None when it is public."""
    for reached in _embedded(address):
        kind = _kind(reached)
        if kind is not None:
            return kind
    return None


def is_address_allowed(
    ip: IPAddress | str,
    allow_private: bool,
    allowed_networks: Iterable[IPNetwork | str],
) -> bool:
    """True when a feed fetch may connect to ``ip``.

    Public addresses always may; non-public ones only with ``allow_private`` or when
    inside one of ``allowed_networks`` (the address itself or the IPv4 address it embeds).
    """
    address = ip_address(ip) if isinstance(ip, str) else ip
    if allow_private:
        return True
    networks = [ip_network(n, strict=False) if isinstance(n, str) else n for n in allowed_networks]

    def listed(candidate: IPAddress) -> bool:
        return any(candidate in network for network in networks)

    if listed(address):
        return True
    return all(_kind(reached) is None or listed(reached) for reached in _embedded(address))


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """The operator's choice of non-public addresses feeds may use, parsed once."""

    allow_private: bool = False
    allowed_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def build(cls, allow_private: bool, allowed_networks: Iterable[str]) -> AddressPolicy:
        networks = tuple(ip_network(cidr, strict=False) for cidr in allowed_networks)
        return cls(allow_private, networks)

    def allows(self, address: IPAddress) -> bool:
        return is_address_allowed(address, self.allow_private, self.allowed_networks)

    def refusal_for_literal(self, host: str) -> str | None:
        """The refusal message for an IP-literal ``host``, or None when it may be contacted.

        Host names return None: ``GuardedResolver`` checks what they resolve to.
        Legacy numeric forms such as ``2130706433`` or ``127.1`` are refused outright,
        because some socket layers map them to an address without any resolver.
        """
        address = ip_address_or_none(host)
        if address is None:
            if host.replace(".", "").isdigit():
                return f"refused: {host} is not a canonical IP address; write it as a.b.c.d"
            return None
        return None if self.allows(address) else refusal_message(host, address)


class GuardedResolver(AbstractResolver):
    """Resolves through ``inner`` and drops every address the policy refuses.

    Raises ``AddressRefusedError`` when nothing is left, so aiohttp cannot connect to a
    refused address whatever a name resolves to, on the first request or on a redirect.
    """

    def __init__(self, inner: AbstractResolver, policy: AddressPolicy) -> None:
        self._inner = inner
        self._policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        allowed = [result for result in results if self._policy.allows(ip_address(result["host"]))]
        if not allowed and results:
            raise AddressRefusedError(host, ip_address(results[0]["host"]))
        return allowed

    async def close(self) -> None:
        await self._inner.close()
