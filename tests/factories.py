"""Helpers that build what tests need through the public API, as a client would."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field

import httpx

PASSWORD = "correct horse battery staple"
_counter = itertools.count()


def unique_email(tag: str = "user") -> str:
    return f"{tag}-{next(_counter)}-{uuid.uuid4().hex[:8]}@example.com"


@dataclass
class Account:
    """A signed-up organisation with its owner."""

    org_id: str
    user_id: str
    email: str
    access_token: str
    refresh_token: str
    client: httpx.AsyncClient = field(repr=False)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}

    async def invite(self, role: str = "member", **extra: object) -> Account:
        """Add a user with `role` and log them in."""
        email = unique_email(role)
        r = await self.client.post("/v1/users", headers=self.headers,
                                   json={"email": email, "name": f"A {role}", "role": role, "password": PASSWORD,
                                         **extra})
        assert r.status_code == 201, r.text
        tokens = await login(self.client, email)
        return Account(self.org_id, r.json()["id"], email, tokens["access_token"], tokens["refresh_token"],
                       self.client)

    async def api_key(self, scopes: list[str]) -> dict[str, str]:
        r = await self.client.post("/v1/api-keys", headers=self.headers, json={"name": "test key", "scopes": scopes})
        assert r.status_code == 201, r.text
        return {"Authorization": f"Bearer {r.json()['secret']}"}


async def signup(client: httpx.AsyncClient, org_name: str = "Acme") -> Account:
    email = unique_email("owner")
    r = await client.post("/v1/auth/signup",
                          json={"org_name": org_name, "email": email, "password": PASSWORD, "name": "Olga Owner"})
    assert r.status_code == 201, r.text
    body = r.json()
    return Account(body["org"]["id"], body["user"]["id"], email, body["access_token"], body["refresh_token"], client)


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict:
    r = await client.post("/v1/auth/token", data={"username": email, "password": password})
    assert r.status_code == 200, r.text
    return r.json()
