"""The SSRF guard on outbound HTTP: IPv6 forms that embed an IPv4 address are judged by that address."""

from __future__ import annotations

import ipaddress

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.outbound import BlockedDestination, embedded_ipv4, is_public, post, resolve_checked
from tests.factories import signup
from tests.workers import eventually, running_worker

INTERNAL_V4 = ["127.0.0.1", "10.0.0.1", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
               "224.0.0.1", "255.255.255.255"]
PUBLIC_V4 = ["8.8.8.8", "93.184.216.34", "1.1.1.1"]


def nat64(v4: str) -> str:
    return str(ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | int(ipaddress.IPv4Address(v4))))


def sixtofour(v4: str) -> str:
    return str(ipaddress.IPv6Address((0x2002 << 112) | (int(ipaddress.IPv4Address(v4)) << 80) | 1))


def compatible(v4: str) -> str:
    return str(ipaddress.IPv6Address(int(ipaddress.IPv4Address(v4))))


def mapped(v4: str) -> str:
    return f"::ffff:{v4}"


def translated(v4: str) -> str:
    return str(ipaddress.IPv6Address((0xFFFF << 32 << 16) | int(ipaddress.IPv4Address(v4))))


def teredo(server: str, client: str) -> str:
    obfuscated = int(ipaddress.IPv4Address(client)) ^ 0xFFFFFFFF
    return str(ipaddress.IPv6Address((0x20010000 << 96) | (int(ipaddress.IPv4Address(server)) << 64) | obfuscated))


FORMS = [nat64, sixtofour, compatible, mapped, translated]


@pytest.mark.parametrize("form", FORMS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("v4", INTERNAL_V4)
def test_an_embedded_internal_ipv4_is_refused(form, v4):
    address = form(v4)
    assert embedded_ipv4(ipaddress.IPv6Address(address)) == ipaddress.IPv4Address(v4)
    assert not is_public(address), address


@pytest.mark.parametrize("form", FORMS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("v4", PUBLIC_V4)
def test_an_embedded_public_ipv4_is_allowed(form, v4):
    # e.g. on an IPv6-only network with DNS64 every IPv4-only webhook host resolves to 64:ff9b::a.b.c.d
    assert is_public(form(v4))


@pytest.mark.parametrize(("address", "public"), [
    ("64:ff9b::7f00:1", False), ("2002:7f00:1::", False), ("::127.0.0.1", False), ("::ffff:127.0.0.1", False),
    ("64:ff9b::a9fe:a9fe", False), ("2002:a9fe:a9fe::1", False), ("64:ff9b:1::808:808", False),  # local-use NAT64
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False), ("::1", False), ("::", False), ("fe80::1%eth0", False),
    ("fc00::1", False), ("ff02::1", False), ("2001:db8::1", False), ("2606:4700:4700::1111", True),
    ("2a00:1450:4001:800::200e", True),
])
def test_addresses(address, public):
    assert is_public(address) is public


@pytest.mark.parametrize(("server", "client"), [("8.8.8.8", "127.0.0.1"), ("65.54.227.120", "192.168.0.1"),
                                                ("8.8.8.8", "8.8.4.4")])
def test_teredo_is_refused(server, client):
    address = teredo(server, client)
    assert ipaddress.IPv6Address(address).teredo == (ipaddress.IPv4Address(server), ipaddress.IPv4Address(client))
    assert not is_public(address)


@settings(max_examples=500, deadline=None)
@given(st.ip_addresses(v=4), st.sampled_from(FORMS))
def test_every_embedding_agrees_with_the_ipv4_address_itself(v4, form):
    assert is_public(form(str(v4))) == is_public(str(v4))


@pytest.mark.parametrize("host", ["64:ff9b::7f00:1", "2002:7f00:1::", "::127.0.0.1", "::ffff:0:127.0.0.1",
                                  "64:ff9b::a9fe:a9fe"])
async def test_resolution_refuses_embedded_internal_addresses(host):
    with pytest.raises(BlockedDestination, match="non-public"):
        await resolve_checked(host, 80, allow_private=False)


@pytest.mark.parametrize("host", ["[64:ff9b::7f00:1]", "[2002:7f00:1::]", "[::ffff:0:7f00:1]"])
async def test_a_webhook_to_an_embedded_loopback_is_blocked_not_sent(api, fast_settings, host):
    strict = fast_settings.model_copy(update={"allow_private_networks": False, "webhook_retry_schedule": []})
    acct = await signup(api)
    r = await api.post("/v1/webhooks", headers=acct.headers,
                       json={"url": f"http://{host}:8080/hook", "events": ["contact.*"]})
    assert r.status_code == 201, r.text
    hook = r.json()
    async with running_worker(strict):
        await api.post("/v1/contacts", headers=acct.headers, json={"first_name": "Ana"})

        async def failed():
            log = (await api.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=acct.headers)).json()["data"]
            return log and log[0]["status"] == "failed" and log[0]

        row = await eventually(failed)
    assert row["attempts"][0]["error"].startswith("blocked"), row["attempts"]


async def test_a_redirect_is_answered_not_followed():
    """A webhook endpoint answering 302 to an internal address gets its 302 recorded; nothing reaches the
    address it points at."""
    import http.server
    import threading

    hits: list[str] = []

    class Target(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST  # a followed 302 arrives as a GET

        def log_message(self, *args) -> None:  # noqa: ANN002
            pass

    target = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Target)

    class Redirecting(Target):
        def do_POST(self) -> None:  # noqa: N802
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{target.server_port}/internal")
            self.send_header("Content-Length", "0")
            self.end_headers()

    redirecting = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    for server in (target, redirecting):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        async with httpx.AsyncClient(trust_env=False) as client:
            r = await post(client, f"http://127.0.0.1:{redirecting.server_port}/hook", b"{}", {}, 5,
                           allow_private=True)
        assert r.status_code == 302 and hits == []
    finally:
        target.shutdown()
        redirecting.shutdown()


async def test_the_address_checked_is_the_one_connected_to_whatever_dns_answers_next(monkeypatch):
    """DNS rebinding: the name is resolved once; the request goes to that checked address (the Host header and
    TLS name stay the name), so a second, internal answer is never used."""
    import asyncio
    import socket

    answers = iter(["93.184.216.34", "127.0.0.1", "127.0.0.1"])
    loop = asyncio.get_running_loop()

    async def rebinding(host, port, **kwargs):  # noqa: ANN001, ANN003 - the resolver of a hostile DNS server
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    monkeypatch.setattr(loop, "getaddrinfo", rebinding)
    seen: list[httpx.Request] = []

    def remote(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    async with httpx.AsyncClient(transport=httpx.MockTransport(remote)) as client:
        r = await post(client, "http://hooks.example.com/crm", b"{}", {}, 5, allow_private=False)
    assert r.status_code == 204
    assert [(q.url.host, q.headers["host"]) for q in seen] == [("93.184.216.34", "hooks.example.com")]
    with pytest.raises(BlockedDestination):  # the next answer is internal: refused before any connection
        await resolve_checked("hooks.example.com", 80, allow_private=False)
