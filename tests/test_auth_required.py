"""Every route of the API that is not public answers 401 problem+json without credentials."""

from __future__ import annotations

import re
import uuid

import pytest

from app.main import create_app
from app.settings import Settings

# `/v1/me/password` also takes no token: an expired password is changed with the account's email and current one.
PUBLIC = ("/healthz", "/readyz", "/metrics", "/problems", "/v1/auth/", "/v1/public/", "/v1/me/password")


def _routes() -> list[tuple[str, str]]:
    app = create_app(Settings(env="test", jwt_secret="x" * 40))
    found = []
    for path, item in app.openapi()["paths"].items():
        if path.startswith(PUBLIC):
            continue
        for method in item:
            found.append((method.upper(), path))
    return found


ROUTES = _routes()


def test_the_list_is_not_empty():
    assert len(ROUTES) > 100


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
async def test_no_credentials_is_401(client, method, path):
    concrete = re.sub(r"\{[^}]+\}", lambda m: "erp" if m.group(0) == "{source}" else str(uuid.uuid4()), path)
    r = await client.request(method, concrete)
    assert r.status_code == 401, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"] == "Bearer"
