"""Outbound HTTP to user-given hosts: DNS resolved and checked, private targets refused, no redirects.

The request goes to the address that was checked (no second lookup an attacker could rebind), with the
original Host header and TLS server name, so certificates are still verified for the real host name.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit, urlunsplit

import httpx


class BlockedDestination(Exception):
    """The URL points at a private, loopback, link-local or otherwise internal address."""


# IPv6 forms that carry an IPv4 address: where traffic to them goes is decided by that IPv4 address.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052 well-known prefix: DNS64 networks hand these out
_COMPATIBLE = ipaddress.IPv6Network("::/96")  # ::a.b.c.d, deprecated IPv4-compatible
_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")  # ::ffff:0:a.b.c.d, SIIT (RFC 2765)
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215: a site's own translator, never public


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside an IPv4-mapped, IPv4-compatible, translated, NAT64 or 6to4 address."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64 or ip in _COMPATIBLE or ip in _TRANSLATED:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def _global(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return ip.is_global and not ip.is_multicast


def is_public(address: str) -> bool:
    """May a request go to this address? An IPv6 address that embeds an IPv4 address is judged by that IPv4
    address alone (so 64:ff9b::7f00:1 and 2002:7f00:1:: are loopback; on an IPv6-only network with DNS64
    a public IPv4-only host resolves to 64:ff9b::a.b.c.d and stays reachable). Teredo (2001::/32, an
    obsolete tunnel whose client address is obfuscated) and local-use NAT64 are always refused."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv4Address):
        return _global(ip)
    if ip.teredo is not None or ip in _NAT64_LOCAL:
        return False
    inner = embedded_ipv4(ip)
    return _global(inner if inner is not None else ip)


def check_url_syntax(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL with a host")
    if parts.username or parts.password:
        raise ValueError("must not carry credentials")


async def resolve_checked(host: str, port: int, allow_private: bool) -> str:
    """-> one address of `host` that may be contacted; BlockedDestination if any address is internal."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise BlockedDestination(f"cannot resolve {host}: {exc.strerror}") from None
    addresses = [info[4][0] for info in infos]
    if not addresses:
        raise BlockedDestination(f"cannot resolve {host}")
    if not allow_private:
        internal = [a for a in addresses if not is_public(a)]
        if internal:
            raise BlockedDestination(f"{host} resolves to a non-public address ({internal[0]})")
    return addresses[0]


TEMPORARY_STATUSES = frozenset({408, 425, 429})


def is_temporary(status_code: int) -> bool:
    """An answer worth trying again later: 408, 425, 429 and every 5xx."""
    return status_code in TEMPORARY_STATUSES or status_code >= 500


async def post(client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str], timeout_seconds: float,
               allow_private: bool) -> httpx.Response:
    return await request(client, "POST", url, body, headers, timeout_seconds, allow_private)


async def request(client: httpx.AsyncClient, method: str, url: str, body: bytes | None, headers: dict[str, str],
                  timeout_seconds: float, allow_private: bool) -> httpx.Response:
    check_url_syntax(url)
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = await resolve_checked(parts.hostname or "", port, allow_private)
    host_for_url = f"[{address}]" if ":" in address else address
    pinned = urlunsplit((parts.scheme, f"{host_for_url}:{port}", parts.path or "/", parts.query, ""))
    host_header = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
    return await client.request(method, pinned, content=body, headers={**headers, "host": host_header or ""},
                                timeout=timeout_seconds, follow_redirects=False, extensions=extensions)
