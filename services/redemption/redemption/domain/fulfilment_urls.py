"""Which fulfilment URLs the service may call: a partner's URL must not point it at our own network.

In production a fulfilment URL must be https, and its host must not be, nor resolve to, an
address that is loopback, link-local, private, multicast, reserved, unspecified or otherwise
not globally routable; names that only resolve inside a network (`localhost`, one-label names,
`.local`, `.internal`, `.home.arpa`) are refused before any lookup. FULFILMENT_ALLOWED_HOSTS
lets ops allow hosts (exact names or addresses) or networks (CIDRs) that would be refused;
https stays required. A URL is checked where it is taken (the catalog) and again right before
each call, against the addresses its host resolves to then, since DNS can change in between.

In `local` and `test` anything goes: the tests and the demo call partners on http://127.0.0.1.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

INTERNAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa")
"""Special-use names (RFC 6761, RFC 6762, RFC 8375, ICANN's .internal) that never lead to a partner."""

_HOW_TO_ALLOW = (
    "; fulfilment URLs must reach the partner over the internet (ops may allow it: FULFILMENT_ALLOWED_HOSTS)"
)


class RefusedUrlError(ValueError):
    """A fulfilment URL the service will not call; the message says why and how to allow it."""


@dataclass(frozen=True)
class Target:
    """Where a checked URL leads: its host (lower case, IDNA as given) and port."""

    host: str
    port: int
    address: Address | None
    """The host when it is an address literal."""


@dataclass(frozen=True)
class UrlPolicy:
    strict: bool
    """True in production: https only, no internal addresses unless allowed."""
    allowed_hosts: frozenset[str] = frozenset()
    allowed_networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, strict: bool, allowed: str) -> UrlPolicy:
        """`allowed`: comma-separated hosts or CIDRs, e.g. "fulfil.partner.example, 10.20.0.0/16"."""
        hosts: set[str] = set()
        networks: list[Network] = []
        for entry in (part.strip().lower().rstrip(".") for part in allowed.split(",")):
            if not entry:
                continue
            if "/" in entry:
                try:
                    networks.append(ipaddress.ip_network(entry, strict=False))
                except ValueError as error:
                    raise ValueError(f"FULFILMENT_ALLOWED_HOSTS: {entry!r} is not a CIDR ({error})") from error
            else:
                hosts.add(_address_text(entry))
        return cls(strict, frozenset(hosts), tuple(networks))

    def allows_host(self, host: str) -> bool:
        return host in self.allowed_hosts

    def allows_address(self, address: Address) -> bool:
        return str(address) in self.allowed_hosts or any(address in network for network in self.allowed_networks)


PERMISSIVE = UrlPolicy(strict=False)
"""Local runs and tests: every http(s) URL may be called."""


def address_refusal(address: Address) -> str | None:
    """What `address` is that the service must not connect to it ("a private address"), or None when it is public."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address_refusal(address.ipv4_mapped)
    for kind, matches in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
    ):
        if matches:
            return f"a {kind} address"
    if not address.is_global:
        return "not a public address"
    return None


def check_url(url: str, policy: UrlPolicy) -> Target:
    """Where `url` leads, if the policy lets the service call it; raises RefusedUrlError with the reason."""
    parts = _split(url)
    host = _address_text((parts.hostname or "").rstrip("."))
    if not host:
        raise RefusedUrlError(f"{url!r} has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as error:
        raise RefusedUrlError(f"{url!r} has a bad port") from error
    address = _address(host)
    target = Target(host, port, address)
    if not policy.strict:
        return target
    if parts.scheme != "https":
        raise RefusedUrlError(f"{url!r} is not https; in production partners are called over https only")
    if policy.allows_host(host):
        return target
    if address is not None:
        why = address_refusal(address)
        if why is not None and not policy.allows_address(address):
            raise RefusedUrlError(f"{address} is {why}{_HOW_TO_ALLOW}")
    elif "." not in host or host == "localhost" or host.endswith(INTERNAL_SUFFIXES):
        raise RefusedUrlError(f"{host!r} names a host inside a private network{_HOW_TO_ALLOW}")
    return target


def check_addresses(target: Target, addresses: Iterable[Address], policy: UrlPolicy) -> None:
    """Refuse the call if any address the host resolved to is internal (one could be the one connected to)."""
    if not policy.strict or policy.allows_host(target.host):
        return
    for address in addresses:
        why = address_refusal(address)
        if why is not None and not policy.allows_address(address):
            raise RefusedUrlError(f"{target.host!r} resolves to {address}, {why}{_HOW_TO_ALLOW}")


def _split(url: str) -> SplitResult:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise RefusedUrlError(f"{url!r} is not an http(s) URL")
    return parts


def _address(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _address_text(host: str) -> str:
    """An address literal in its one canonical spelling (so '::0001' and '::1' match), a name as it is."""
    address = _address(host.strip("[]"))
    return str(address) if address is not None else host
