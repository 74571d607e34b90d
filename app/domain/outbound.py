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


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


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
        internal = [a for a in addresses if not _is_public(a)]
        if internal:
            raise BlockedDestination(f"{host} resolves to a non-public address ({internal[0]})")
    return addresses[0]


async def post(client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str], timeout_seconds: float,
               allow_private: bool) -> httpx.Response:
    check_url_syntax(url)
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = await resolve_checked(parts.hostname or "", port, allow_private)
    host_for_url = f"[{address}]" if ":" in address else address
    pinned = urlunsplit((parts.scheme, f"{host_for_url}:{port}", parts.path or "/", parts.query, ""))
    host_header = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
    return await client.post(pinned, content=body, headers={**headers, "host": host_header or ""},
                             timeout=timeout_seconds, follow_redirects=False, extensions=extensions)
