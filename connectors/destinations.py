"""Where the webhook channel may post: the operator's allow-list, and no private address of
a host the operator did not name.

Webhook URLs come from deployed templates, and a template may build the host from customer
data (`https://{{ profile.crm }}/hooks`): unchecked, the connector would POST wherever that
says, from inside the network it runs in (a cloud metadata service at 169.254.169.254, an
admin port on 127.0.0.1, a database on 10.0.0.5). So, before each request:

- with `ORCHESTRATOR_WEBHOOK_ALLOWED_HOSTS` set, only those hosts (`hooks.example.com`, or
  `*.example.com` for any subdomain of it), wherever they resolve: the operator named them;
- otherwise any host whose every address is public (globally routable).

The host is resolved once and the request goes to the address that was checked, with the
URL's host kept in the `Host` header and the TLS server name, so a DNS answer that changes
between the check and the connection (DNS rebinding) cannot move the request elsewhere.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import httpx

__all__ = ["Destination", "DestinationError", "Destinations", "host_allowed", "is_public"]

# (host, port) -> the addresses it resolves to; the event loop's getaddrinfo by default.
Resolver = Callable[[str, int], Awaitable[list[str]]]


class DestinationError(Exception):
    """A webhook URL the channel will not post to; `permanent` unless resolving it failed."""

    def __init__(self, code: str, reason: str, *, permanent: bool = True) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.permanent = permanent


@dataclass(frozen=True, slots=True)
class Destination:
    """A checked webhook URL: post to `url` (the checked address), with these `headers`
    and request `extensions` (the TLS server name)."""

    url: httpx.URL
    headers: dict[str, str]
    extensions: dict[str, str]


def is_public(address: str) -> bool:
    """True for a globally routable address (not private, loopback, link-local, CGNAT,
    multicast, reserved or unspecified; an IPv4-mapped IPv6 address counts as its IPv4)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def host_allowed(host: str, patterns: Sequence[str]) -> bool:
    """True if `host` is one of `patterns`, or a subdomain of a `*.domain` pattern
    (case-insensitive; `*.example.com` does not match `example.com` itself)."""
    host = host.lower().rstrip(".")
    for written in patterns:
        pattern = written.strip().lower().rstrip(".")
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]):
                return True
        elif host == pattern:
            return True
    return False


async def _getaddrinfo(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class Destinations:
    """Checks each webhook URL against the allow-list and the public-address rule."""

    def __init__(self, allowed: Sequence[str], resolve: Resolver = _getaddrinfo) -> None:
        self.allowed = [p for p in (p.strip() for p in allowed) if p]
        self.resolve = resolve

    async def check(self, url: str) -> Destination:
        """The URL to post to, pinned to a checked address; raises `DestinationError`."""
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise DestinationError("bad_url", f"not a URL: {url!r} ({exc})") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise DestinationError("bad_url", f"not an http(s) URL: {url!r}")
        host = parsed.host
        named = host_allowed(host, self.allowed)
        if self.allowed and not named:
            raise DestinationError(
                "host_not_allowed",
                f"{host} is not in ORCHESTRATOR_WEBHOOK_ALLOWED_HOSTS: add it there if it is "
                "a receiver of yours, or fix the template's url",
            )
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            addresses = await self.resolve(host, port)
        except OSError as exc:
            # DNS may come back: retried like a receiver that is down.
            raise DestinationError(
                "unresolvable", f"{host} does not resolve: {exc}", permanent=False
            ) from None
        if not addresses:
            raise DestinationError("unresolvable", f"{host} has no address", permanent=False)
        private = [a for a in addresses if not is_public(a)]
        if private and not named:
            raise DestinationError(
                "private_address",
                f"{host} resolves to {private[0]}, not a public address: add {host} to "
                "ORCHESTRATOR_WEBHOOK_ALLOWED_HOSTS if it is a receiver of yours inside "
                "your network",
            )
        extensions = {"sni_hostname": host} if parsed.scheme == "https" else {}
        host_header = host if parsed.port is None else f"{host}:{parsed.port}"
        return Destination(
            parsed.copy_with(host=addresses[0].split("%", 1)[0]), {"host": host_header}, extensions
        )
