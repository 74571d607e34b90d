"""GET/PATCH /v1/org: time zone, phone region, currency, record visibility."""

from __future__ import annotations

from tests.factories import signup


async def test_read_and_update_settings(client):
    owner = await signup(client)
    r = await client.get("/v1/org", headers=owner.headers)
    assert r.status_code == 200
    assert r.json() | {} == r.json() and r.json()["default_currency"] == "EUR"
    assert r.json()["record_visibility"] == "all" and r.headers["etag"] == '"1"'
    r = await client.patch("/v1/org", headers={**owner.headers, "If-Match": '"1"'},
                           json={"timezone": "Europe/Berlin", "default_phone_region": "de", "default_currency": "usd"})
    assert r.status_code == 200
    assert (r.json()["timezone"], r.json()["default_phone_region"], r.json()["default_currency"]) == \
        ("Europe/Berlin", "DE", "USD")
    assert r.headers["etag"] == '"2"'
    r = await client.patch("/v1/org", headers=owner.headers, json={"default_phone_region": None})
    assert r.status_code == 200 and r.json()["default_phone_region"] is None
    assert r.json()["timezone"] == "Europe/Berlin"  # merge patch: absent fields unchanged


async def test_invalid_values_name_the_field(client):
    owner = await signup(client)
    for field, value in (("timezone", "Mars/Olympus"), ("default_phone_region", "XX"),
                         ("default_currency", "ABC"), ("record_visibility", "everyone"), ("name", "")):
        r = await client.patch("/v1/org", headers=owner.headers, json={field: value})
        assert r.status_code == 422, field
        assert r.json()["errors"][0]["loc"] == ["body", field]
    r = await client.patch("/v1/org", headers=owner.headers, json={"id": "x"})
    assert r.status_code == 422 and r.json()["errors"][0]["msg"] == "unknown field"


async def test_stale_if_match_is_412_and_only_admins_patch(client):
    owner = await signup(client)
    r = await client.patch("/v1/org", headers={**owner.headers, "If-Match": '"7"'}, json={"name": "X"})
    assert r.status_code == 412
    member = await owner.invite("member")
    assert (await client.get("/v1/org", headers=member.headers)).status_code == 200
    assert (await client.patch("/v1/org", headers=member.headers, json={"name": "X"})).status_code == 403
    admin = await owner.invite("admin")
    assert (await client.patch("/v1/org", headers=admin.headers, json={"name": "Y"})).status_code == 200


async def test_if_none_match_on_org(client):
    owner = await signup(client)
    r = await client.get("/v1/org", headers={**owner.headers, "If-None-Match": '"1"'})
    assert r.status_code == 304 and r.headers["etag"] == '"1"' and r.content == b""
