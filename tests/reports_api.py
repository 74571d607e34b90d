"""Helpers of the report tests: reports as a client reads them."""

from __future__ import annotations


def _money(amount: str, currency: str = "EUR") -> dict:
    return {"amount": amount, "currency": currency}


def _problem(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return r.json()


async def _get(client, headers, report: str, **params) -> dict:
    r = await client.get(f"/v1/reports/{report}", headers=headers, params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    return r.json()
