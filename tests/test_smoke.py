from tests.factories import signup


async def test_signup_then_me(client):
    acct = await signup(client)
    r = await client.get("/v1/me", headers=acct.headers)
    assert r.status_code == 200
    assert r.json()["user"]["email"] == acct.email
