"""The reports after funnel, win-loss and forecast: stage-durations, velocity, rotting, activities, lead-sources,
response-times, emails and customers, each on a small hand-built dataset with exact expected numbers.

Every dataset lives in an organisation in Pacific/Auckland (UTC+13 in January to March), where an instant
near midnight UTC is already the next day: 2026-01-31T11:30Z is 1 February, 00:30 local. Each one also holds
what must never be counted: a soft-deleted record, and the same kind of record in another organisation.
Times are pinned with SQL after the records were made through the API (the server stamps them itself)."""

from __future__ import annotations

import csv
import io
import uuid
from contextlib import contextmanager
from datetime import datetime
from uuid import UUID

import pytest
from sqlalchemy import event, text

from tests.conftest import as_sweeper
from tests.factories import signup
from tests.reports_api import _get, _money, _problem

AKL = "Pacific/Auckland"


def _csv(r) -> list[dict]:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(r.text)))


async def _post(client, acct, url: str, body: dict) -> dict:
    r = await client.post(url, headers=acct.headers, json=body)
    assert r.status_code in (200, 201, 202), r.text
    return r.json()


async def _deal(client, acct, amount: str = "100", currency: str = "EUR", **body) -> dict:
    return await _post(client, acct, "/v1/deals", {"title": "A deal", "value": {"amount": amount, "currency": currency},
                                                   **body})


async def _move(client, acct, deal: dict, *stages: str, **extra) -> None:
    for stage in stages:
        body = {"stage_id": stage, **(extra if stage == stages[-1] else {})}
        r = await client.patch(f"/v1/deals/{deal['id']}", headers=acct.headers, json=body)
        assert r.status_code == 200, r.text


async def _delete(client, acct, plural: str, record: dict) -> None:
    r = await client.delete(f"/v1/{plural}/{record['id']}", headers=acct.headers)
    assert r.status_code == 204, r.text


async def _sql(session, sql: str, **params) -> None:
    """Behind the app's back (any org), in the test's transaction, which the requests share."""
    async with as_sweeper(session):
        await session.execute(text(sql), params)


async def _pin(session, table: str, record: dict, column: str, local: str) -> None:
    """Set a server-stamped timestamp to a wall-clock time in Auckland."""
    await _sql(session, f"UPDATE {table} SET {column} = CAST(CAST(:t AS text) AS timestamptz) WHERE id = :id",
               t=f"{local} {AKL}", id=UUID(record["id"]))


def _utc(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.fixture
async def world(client):
    """Kiwi Ltd in Auckland, EUR: olga (the owner), rita (a member, the only member of team North); and another
    organisation, Other, with its own default pipeline."""
    acct = await signup(client, "Kiwi Ltd")
    r = await client.patch("/v1/org", headers=acct.headers, json={"timezone": AKL, "default_currency": "EUR"})
    assert r.status_code == 200, r.text
    rita = await acct.invite("member")
    north = await _post(client, acct, "/v1/teams", {"name": "North", "member_ids": [rita.user_id]})
    other = await signup(client, "Other")
    r = await client.patch("/v1/org", headers=other.headers, json={"timezone": AKL, "default_currency": "EUR"})
    assert r.status_code == 200, r.text

    async def default_pipeline(a) -> dict:
        pipelines = (await client.get("/v1/pipelines", headers=a.headers)).json()["data"]
        return next(p for p in pipelines if p["is_default"])

    pipeline, other_pipeline = await default_pipeline(acct), await default_pipeline(other)
    return {"acct": acct, "rita": rita, "olga": acct.user_id, "north": north, "other": other,
            "pipeline": pipeline, "stages": {s["name"]: s["id"] for s in pipeline["stages"]},
            "other_stages": {s["name"]: s["id"] for s in other_pipeline["stages"]}}


# --- stage-durations ----------------------------------------------------------------------------------


async def _history(session, org_id: str, deal: dict, moves: list[tuple[str | None, str, str, int | None]]) -> None:
    """Replace a deal's stage history with these moves: (from stage, to stage, local time, seconds in from)."""
    await _sql(session, "DELETE FROM deal_stage_history WHERE deal_id = :d", d=UUID(deal["id"]))
    for from_stage, to_stage, local, seconds in moves:
        await _sql(session, """
            INSERT INTO deal_stage_history (org_id, id, deal_id, from_stage_id, to_stage_id, moved_at, moved_by,
                                            seconds_in_previous)
            VALUES (:org, :id, :deal, :from_stage, :to_stage, CAST(CAST(:t AS text) AS timestamptz),
                    CAST('{"type": "system", "id": null}' AS jsonb), :seconds)""",
                   org=UUID(org_id), id=uuid.uuid4(), deal=UUID(deal["id"]),
                   from_stage=UUID(from_stage) if from_stage else None, to_stage=UUID(to_stage),
                   t=f"{local} {AKL}", seconds=seconds)


async def test_stage_durations_count_each_stay_that_ended_in_the_period(client, session, world):
    """deal  owner  stays (stage, seconds, ended at, Auckland)
    S1    olga   Q 86400 (Jan 11 09:00), P 172800 (Jan 13 09:00)            now in N
    S2    rita   Q 3600, P 7200, back to Q 1800, P 36000, all ended Jan 20  moved backwards: Q and P twice
    S3    rita   Q 7200, ended Feb 1 00:30 (Jan 31 11:30 UTC)               February, not January
    S5    olga   Q 999999 in January                                       deleted
    other org: Q 100 in January"""
    acct, st, rita = world["acct"], world["stages"], world["rita"]
    q, p, n = st["Qualification"], st["Proposal"], st["Negotiation"]
    s1 = await _deal(client, acct)
    await _move(client, acct, s1, p, n)
    await _history(session, acct.org_id, s1, [(None, q, "2026-01-10 09:00", None), (q, p, "2026-01-11 09:00", 86400),
                                              (p, n, "2026-01-13 09:00", 172800)])
    s2 = await _deal(client, acct, owner_id=rita.user_id)
    await _move(client, acct, s2, p, q, p, n)
    await _history(session, acct.org_id, s2, [
        (None, q, "2026-01-20 09:00", None), (q, p, "2026-01-20 10:00", 3600), (p, q, "2026-01-20 12:00", 7200),
        (q, p, "2026-01-20 12:30", 1800), (p, n, "2026-01-20 22:30", 36000)])
    s3 = await _deal(client, acct, owner_id=rita.user_id)
    await _move(client, acct, s3, p)
    await _history(session, acct.org_id, s3, [(None, q, "2026-01-31 22:30", None), (q, p, "2026-02-01 00:30", 7200)])
    s5 = await _deal(client, acct)
    await _move(client, acct, s5, p)
    await _history(session, acct.org_id, s5, [(None, q, "2026-01-01 09:00", None), (q, p, "2026-01-12 15:00", 999999)])
    await _delete(client, acct, "deals", s5)
    other = world["other"]
    o1 = await _deal(client, other)
    oq, op = world["other_stages"]["Qualification"], world["other_stages"]["Proposal"]
    await _move(client, other, o1, op)
    await _history(session, other.org_id, o1, [(None, oq, "2026-01-05 09:00", None), (oq, op, "2026-01-05 09:01", 100)])

    january = {"from": "2026-01-01", "to": "2026-01-31"}
    body = await _get(client, acct.headers, "stage-durations", **january)
    assert body["rows"] == [
        {"stage_id": q, "name": "Qualification", "deals": 3, "avg_seconds": 30600.0, "median_seconds": 3600.0},
        {"stage_id": p, "name": "Proposal", "deals": 3, "avg_seconds": 72000.0, "median_seconds": 36000.0},
        {"stage_id": n, "name": "Negotiation", "deals": 0, "avg_seconds": None, "median_seconds": None},
        {"stage_id": st["Won"], "name": "Won", "deals": 0, "avg_seconds": None, "median_seconds": None},
        {"stage_id": st["Lost"], "name": "Lost", "deals": 0, "avg_seconds": None, "median_seconds": None},
    ]
    assert body["totals"] == {"deals": 6, "avg_seconds": 51300.0, "median_seconds": 21600.0}

    body = await _get(client, acct.headers, "stage-durations", **{"from": "2026-02-01", "to": "2026-02-28"})
    assert [(r["name"], r["deals"], r["avg_seconds"]) for r in body["rows"] if r["deals"]] == [
        ("Qualification", 1, 7200.0)]
    assert body["totals"] == {"deals": 1, "avg_seconds": 7200.0, "median_seconds": 7200.0}

    for params in ({"owner_id": rita.user_id}, {"team_id": world["north"]["id"]}):
        body = await _get(client, acct.headers, "stage-durations", **january, **params)
        assert [(r["deals"], r["avg_seconds"], r["median_seconds"]) for r in body["rows"][:2]] == [
            (2, 2700.0, 2700.0), (2, 21600.0, 21600.0)]
        assert body["totals"] == {"deals": 4, "avg_seconds": 12150.0, "median_seconds": 5400.0}

    body = await _get(client, acct.headers, "stage-durations", **{"from": "2025-06-01", "to": "2025-06-30"})
    assert [r["deals"] for r in body["rows"]] == [0, 0, 0, 0, 0]
    assert body["totals"] == {"deals": 0, "avg_seconds": None, "median_seconds": None}

    body = await _get(client, other.headers, "stage-durations", **january)
    assert body["totals"] == {"deals": 1, "avg_seconds": 100.0, "median_seconds": 100.0}


# --- velocity -----------------------------------------------------------------------------------------


@pytest.fixture
async def closed_deals(client, session, world):
    """deal  owner  value     contact  created (Auckland)   closed (Auckland)            cycle
    V1    olga   1000 EUR  Ann      2026-01-01 10:00     won 2026-01-11 10:00          10 days
    V2    rita   2500 EUR  Ben      2026-01-05 00:00     won 2026-01-25 00:00          20
    V3    olga    500 EUR  Ben                           lost 2026-01-15 12:00
    V4    rita   2000 EUR  Ann      2026-01-31 00:30     won 2026-02-01 00:30 (Jan 31 11:30 UTC)  1
    V5    olga    400 EUR  Ann      won 2026-01-12, then moved back to Qualification: open
    V6    olga   9999 USD  Ann      2026-01-10 00:00     won 2026-01-20 00:00          10
    V7    olga    800 EUR  Ann      won 2026-01-10, deleted
    V8    olga    700 EUR  Cid      2025-12-10 00:00     won 2025-12-20 00:00          10   (Cid is deleted)
    V9    olga    300 EUR  -        2026-01-03 00:00     won 2026-01-13 00:00          10   (no contact)
    other org: 5000 EUR won 2026-01-10 with a contact"""
    acct, rita, st = world["acct"], world["rita"].user_id, world["stages"]
    won, lost = st["Won"], st["Lost"]
    people = {name: await _post(client, acct, "/v1/contacts", {"first_name": name}) for name in ("Ann", "Ben", "Cid")}
    spec = [  # name, amount, currency, owner, contact, outcome, created, closed
        ("V1", "1000", "EUR", None, "Ann", won, "2026-01-01 10:00", "2026-01-11 10:00"),
        ("V2", "2500", "EUR", rita, "Ben", won, "2026-01-05 00:00", "2026-01-25 00:00"),
        ("V3", "500", "EUR", None, "Ben", lost, None, "2026-01-15 12:00"),
        ("V4", "2000", "EUR", rita, "Ann", won, "2026-01-31 00:30", "2026-02-01 00:30"),
        ("V5", "400", "EUR", None, "Ann", won, None, "2026-01-12 00:00"),
        ("V6", "9999", "USD", None, "Ann", won, "2026-01-10 00:00", "2026-01-20 00:00"),
        ("V7", "800", "EUR", None, "Ann", won, None, "2026-01-10 00:00"),
        ("V8", "700", "EUR", None, "Cid", won, "2025-12-10 00:00", "2025-12-20 00:00"),
        ("V9", "300", "EUR", None, None, won, "2026-01-03 00:00", "2026-01-13 00:00"),
    ]
    deals = {}
    for name, amount, currency, owner, contact, outcome, created, closed in spec:
        extra = {"owner_id": owner} if owner else {}
        if contact:
            extra["contact_id"] = people[contact]["id"]
        deal = deals[name] = await _deal(client, acct, amount, currency, **extra)
        await _move(client, acct, deal, outcome, **({"lost_reason": "price"} if outcome == lost else {}))
        if created:
            await _pin(session, "deals", deal, "created_at", created)
        await _pin(session, "deals", deal, "closed_at", closed)
    await _move(client, acct, deals["V5"], st["Qualification"])  # backwards: open again, closed_at cleared
    await _delete(client, acct, "deals", deals["V7"])
    await _delete(client, acct, "contacts", people["Cid"])
    other = world["other"]
    theirs = await _deal(client, other, "5000", contact_id=(await _post(client, other, "/v1/contacts",
                                                                        {"first_name": "Zed"}))["id"])
    await _move(client, other, theirs, world["other_stages"]["Won"])
    await _pin(session, "deals", theirs, "created_at", "2026-01-01 12:00")
    await _pin(session, "deals", theirs, "closed_at", "2026-01-10 12:00")
    return {"deals": deals, "people": people}


def _velocity(period, won, avg, win_rate, cycle, per_day, currency="EUR") -> dict:
    return {"period": period, "won": won, "avg_won_value": avg and _money(avg, currency), "win_rate": win_rate,
            "avg_cycle_days": cycle, "velocity_per_day": per_day and _money(per_day, currency)}


async def test_velocity_per_period_is_won_value_per_day(client, world, closed_deals):
    h = world["acct"].headers
    body = await _get(client, h, "velocity", **{"from": "2026-01-01", "to": "2026-01-31"})
    # V1, V2 and V9 won (3800 over 31 days), V3 lost; V4 is February in Auckland; V5 reopened, V6 USD, V7 deleted
    january = _velocity("2026-01-01/2026-01-31", 3, "1266.67", 0.75, 13.33, "122.58")
    assert body["rows"] == [january]
    assert body["totals"] == {**january, "lost": 1, "won_value": _money("3800.00")}

    body = await _get(client, h, "velocity", group_by="month", **{"from": "2026-01-01", "to": "2026-03-31"})
    assert body["rows"] == [
        _velocity("2026-01", 3, "1266.67", 0.75, 13.33, "122.58"),
        _velocity("2026-02", 1, "2000.00", 1.0, 1.0, "71.43"),  # 2000 over 28 days
        _velocity("2026-03", 0, None, None, None, "0.00"),  # an empty period is a row
    ]
    assert body["totals"] == {**_velocity("2026-01-01/2026-03-31", 4, "1450.00", 0.8, 10.25, "64.44"),
                              "lost": 1, "won_value": _money("5800.00")}

    # weeks from Monday, cut by from/to: W05 is Jan 28 to Feb 1 (5 days), W06 Feb 2 and 3
    body = await _get(client, h, "velocity", group_by="week", **{"from": "2026-01-28", "to": "2026-02-03"})
    assert body["rows"] == [_velocity("2026-W05", 1, "2000.00", 1.0, 1.0, "400.00"),
                            _velocity("2026-W06", 0, None, None, None, "0.00")]
    assert body["totals"]["velocity_per_day"] == _money("285.71")  # 2000 over 7 days

    # without `from` the days start at the first close counted: V8 on 2025-12-20 (43 days to Jan 31)
    body = await _get(client, h, "velocity", to="2026-01-31")
    assert body["rows"] == [_velocity("2025-12-20/2026-01-31", 4, "1125.00", 0.8, 12.5, "104.65")]


async def test_velocity_filters_and_an_empty_period(client, world, closed_deals):
    h = world["acct"].headers
    both_months = {"from": "2026-01-01", "to": "2026-02-28"}
    for params in ({"owner_id": world["rita"].user_id}, {"team_id": world["north"]["id"]}):
        body = await _get(client, h, "velocity", **both_months, **params)
        assert body["rows"] == [_velocity("2026-01-01/2026-02-28", 2, "2250.00", 1.0, 10.5, "76.27")]
    body = await _get(client, h, "velocity", currency="USD", **{"from": "2026-01-01", "to": "2026-01-31"})
    assert body["rows"] == [_velocity("2026-01-01/2026-01-31", 1, "9999.00", 1.0, 10.0, "322.55", "USD")]
    body = await _get(client, h, "velocity", **{"from": "2025-06-01", "to": "2025-06-30"})
    assert body["rows"] == [_velocity("2025-06-01/2025-06-30", 0, None, None, None, "0.00")]
    assert body["totals"]["won_value"] == _money("0.00") and body["totals"]["lost"] == 0
    body = await _get(client, h, "velocity", group_by="month", **{"from": "2025-06-01", "to": "2025-06-30"})
    assert body["rows"] == [_velocity("2025-06", 0, None, None, None, "0.00")]
    body = await _get(client, world["other"].headers, "velocity", **{"from": "2026-01-01", "to": "2026-01-31"})
    assert body["totals"]["won"] == 1 and body["totals"]["won_value"] == _money("5000.00")


async def test_velocity_as_csv(client, world, closed_deals):
    r = await client.get("/v1/reports/velocity", headers={**world["acct"].headers, "Accept": "text/csv"},
                         params={"group_by": "month", "from": "2026-01-01", "to": "2026-03-31"})
    rows = _csv(r)
    assert list(rows[0]) == ["period", "won", "avg_won_value", "win_rate", "avg_cycle_days", "velocity_per_day",
                             "currency"]
    assert [(x["period"], x["won"], x["avg_won_value"], x["velocity_per_day"], x["currency"]) for x in rows] == [
        ("2026-01", "3", "1266.67", "122.58", "EUR"), ("2026-02", "1", "2000.00", "71.43", "EUR"),
        ("2026-03", "0", "", "0.00", "EUR")]


# --- customers ----------------------------------------------------------------------------------------


async def test_customers_sum_won_deals_per_contact(client, world, closed_deals):
    h, people = world["acct"].headers, closed_deals["people"]
    ann, ben = people["Ann"]["id"], people["Ben"]["id"]
    body = await _get(client, h, "customers")
    # Ann: V1 + V4; Ben: V2 (V3 was lost). Left out: V5 (reopened), V6 (USD), V7 (deleted), V8 (Cid is deleted),
    # V9 (no contact), the other org's deal
    assert body["rows"] == [
        {"contact_id": ann, "won_deals": 2, "lifetime_value": _money("3000.00"),
         "first_won_at": "2026-01-10T21:00:00Z", "last_won_at": "2026-01-31T11:30:00Z", "repeat": True},
        {"contact_id": ben, "won_deals": 1, "lifetime_value": _money("2500.00"),
         "first_won_at": "2026-01-24T11:00:00Z", "last_won_at": "2026-01-24T11:00:00Z", "repeat": False},
    ]
    assert body["totals"] == {"customers": 2, "repeat_customers": 1, "won_deals": 3,
                              "lifetime_value": _money("5500.00")}

    body = await _get(client, h, "customers", **{"from": "2026-02-01"})  # V4: Feb 1 in Auckland, Jan 31 in UTC
    assert [(r["contact_id"], r["won_deals"], r["lifetime_value"]["amount"], r["repeat"]) for r in body["rows"]] == [
        (ann, 1, "2000.00", False)]
    body = await _get(client, h, "customers", to="2026-01-31")
    assert [(r["contact_id"], r["lifetime_value"]["amount"]) for r in body["rows"]] == [(ben, "2500.00"),
                                                                                          (ann, "1000.00")]
    for params in ({"owner_id": world["rita"].user_id}, {"team_id": world["north"]["id"]}):
        body = await _get(client, h, "customers", **params)
        assert [(r["contact_id"], r["lifetime_value"]["amount"]) for r in body["rows"]] == [(ben, "2500.00"),
                                                                                              (ann, "2000.00")]
    body = await _get(client, h, "customers", currency="USD")
    assert [(r["contact_id"], r["lifetime_value"]) for r in body["rows"]] == [(ann, _money("9999.00", "USD"))]
    body = await _get(client, h, "customers", **{"from": "2025-06-01", "to": "2025-06-30"})
    assert body == {"rows": [], "totals": {"customers": 0, "repeat_customers": 0, "won_deals": 0,
                                           "lifetime_value": _money("0.00")}}


# --- rotting ------------------------------------------------------------------------------------------


async def test_rotting_lists_open_deals_past_their_stage_threshold(client, session, world):
    """Proposal rots after 5 days, Negotiation after 10, Qualification never.
    R1 olga Proposal 6 days         rotting (1 day past)
    R2 rita Proposal 4 days         not yet
    R3 rita Negotiation 30.5 days   rotting (20.5 days past: first)
    R4 olga Qualification 100 days  no threshold
    R5 olga Proposal 20 days        deleted
    R6 olga Proposal exactly 5 days not longer than the threshold
    W  olga Won 50 days             not open
    other org: Proposal (5 days) for 10 days"""
    acct, st, rita, pipeline = world["acct"], world["stages"], world["rita"].user_id, world["pipeline"]
    for stage, days in (("Proposal", 5), ("Negotiation", 10)):
        r = await client.patch(f"/v1/pipelines/{pipeline['id']}/stages/{st[stage]}", headers=acct.headers,
                               json={"rotting_days": days})
        assert r.status_code == 200, r.text
    deals = {}
    for name, owner, stage, entered in (
            ("R1", None, "Proposal", "6 days"), ("R2", rita, "Proposal", "4 days"),
            ("R3", rita, "Negotiation", "30 days 12 hours"), ("R4", None, "Qualification", "100 days"),
            ("R5", None, "Proposal", "20 days"), ("R6", None, "Proposal", "5 days"), ("W", None, "Won", "50 days")):
        deal = deals[name] = await _deal(client, acct, title=name, **({"owner_id": owner} if owner else {}))
        if stage != "Qualification":
            await _move(client, acct, deal, st[stage])
        # the report's now() is the test transaction's: the same instant here and in the request
        await _sql(session, "UPDATE deals SET stage_entered_at = now() - CAST(CAST(:age AS text) AS interval) WHERE id = :id",
                   age=entered, id=UUID(deal["id"]))
    await _delete(client, acct, "deals", deals["R5"])
    other = world["other"]
    other_pipeline = (await client.get("/v1/pipelines", headers=other.headers)).json()["data"][0]
    r = await client.patch(f"/v1/pipelines/{other_pipeline['id']}/stages/{world['other_stages']['Proposal']}",
                           headers=other.headers, json={"rotting_days": 5})
    assert r.status_code == 200, r.text
    theirs = await _deal(client, other)
    await _move(client, other, theirs, world["other_stages"]["Proposal"])
    await _sql(session, "UPDATE deals SET stage_entered_at = now() - interval '10 days' WHERE id = :id",
               id=UUID(theirs["id"]))

    def row(name: str, stage: str, owner: str, days: int, threshold: int) -> dict:
        return {"deal_id": deals[name]["id"], "title": name, "stage_id": st[stage], "owner_id": owner,
                "days_in_stage": days, "rotting_days": threshold}

    r3, r1 = row("R3", "Negotiation", rita, 30, 10), row("R1", "Proposal", world["olga"], 6, 5)
    body = await _get(client, acct.headers, "rotting")
    assert body == {"rows": [r3, r1], "totals": {"deals": 2}}
    for params in ({"owner_id": rita}, {"team_id": world["north"]["id"]}):
        assert (await _get(client, acct.headers, "rotting", **params))["rows"] == [r3]
    assert (await _get(client, acct.headers, "rotting", owner_id="me"))["rows"] == [r1]
    renewals = await _post(client, acct, "/v1/pipelines", {"name": "Renewals", "stages": [
        {"name": "Offer", "probability": 50, "rotting_days": 1}, {"name": "Won", "probability": 100, "kind": "won"},
        {"name": "Lost", "probability": 0, "kind": "lost"}]})
    assert await _get(client, acct.headers, "rotting", pipeline_id=renewals["id"]) == {"rows": [],
                                                                                       "totals": {"deals": 0}}
    other_body = await _get(client, other.headers, "rotting")
    assert [x["deal_id"] for x in other_body["rows"]] == [theirs["id"]]

    rows = _csv(await client.get("/v1/reports/rotting", headers=acct.headers, params={"format": "csv"}))
    assert rows == [{k: str(v) for k, v in r3.items()}, {k: str(v) for k, v in r1.items()}]  # no currency column


# --- activities ---------------------------------------------------------------------------------------


async def test_activities_per_assignee_and_type(client, session, world):
    """due (Auckland)                       what                          assignee
    A1 task    2026-03-10 09:00            open, overdue                 rita
    A2 call    2026-03-11 09:00            done                          rita
    A3 call    2026-03-31 23:30            open, overdue                 rita    (March 31, 10:30 UTC)
    A4 task    2026-04-01 00:30            open, overdue                 olga    (still March 31 in UTC)
    A5 meeting 2099-01-15                  open, not overdue             olga
    A6 note    no due date, created 2026-03-05, done                     nobody
    A7 task    2026-03-12                  deleted                       rita
    other org: a March task"""
    acct, rita, olga = world["acct"], world["rita"].user_id, world["olga"]

    async def activity(kind: str, due: str | None, assignee: str | None, done: bool = False) -> dict:
        body = {"type": kind, "subject": kind, "due_at": due and f"{due}:00+13:00", "assignee_id": assignee}
        if done:
            body["done_at"] = "2026-03-11T10:00:00+13:00"
        return await _post(client, acct, "/v1/activities", body)

    await activity("task", "2026-03-10T09:00", rita)
    await activity("call", "2026-03-11T09:00", rita, done=True)
    await activity("call", "2026-03-31T23:30", rita)
    await activity("task", "2026-04-01T00:30", olga)
    await activity("meeting", "2099-01-15T09:00", olga)
    note = await activity("note", None, None, done=True)
    await _pin(session, "activities", note, "created_at", "2026-03-05 12:00")
    await _delete(client, acct, "activities", await activity("task", "2026-03-12T09:00", rita))
    await _post(client, world["other"], "/v1/activities", {"type": "task", "subject": "x",
                                                           "due_at": "2026-03-10T09:00:00+13:00"})

    def rows(body: dict) -> dict:
        return {(r["user_id"], r["type"]): (r["open"], r["completed"], r["overdue"]) for r in body["rows"]}

    march = {"from": "2026-03-01", "to": "2026-03-31"}
    body = await _get(client, acct.headers, "activities", **march)
    assert [(r["user_id"], r["type"]) for r in body["rows"]] == [(rita, "task"), (rita, "call"), (None, "note")]
    assert rows(body) == {(rita, "task"): (1, 0, 1), (rita, "call"): (1, 1, 1), (None, "note"): (0, 1, 0)}
    assert body["totals"] == {"open": 2, "completed": 2, "overdue": 2}
    body = await _get(client, acct.headers, "activities", **{"from": "2026-04-01", "to": "2026-04-30"})
    assert body["rows"] == [{"user_id": olga, "type": "task", "open": 1, "completed": 0, "overdue": 1}]
    body = await _get(client, acct.headers, "activities")
    assert rows(body) == {(rita, "task"): (1, 0, 1), (rita, "call"): (1, 1, 1), (olga, "task"): (1, 0, 1),
                          (olga, "meeting"): (1, 0, 0), (None, "note"): (0, 1, 0)}
    assert body["totals"] == {"open": 4, "completed": 2, "overdue": 3}
    for params in ({"owner_id": rita}, {"team_id": world["north"]["id"]}):
        body = await _get(client, acct.headers, "activities", **params)
        assert rows(body) == {(rita, "task"): (1, 0, 1), (rita, "call"): (1, 1, 1)}
    body = await _get(client, acct.headers, "activities", **{"from": "2025-06-01", "to": "2025-06-30"})
    assert body == {"rows": [], "totals": {"open": 0, "completed": 0, "overdue": 0}}


# --- lead-sources -------------------------------------------------------------------------------------


async def test_lead_sources_by_source_campaign_and_form(client, session, world):
    """lead  owner source    utm campaign  form  created (Auckland)   became
    L1    olga  web_form  spring        F     2026-03-02 09:00     converted, deal won 1200 EUR
    L2    rita  web_form  spring        F     2026-03-10 09:00     converted, no deal
    L3    rita  referral  -             -     2026-03-15 09:00     new
    L4    olga  web_form  autumn        -     2026-04-01 00:30     (March 31 in UTC: April here)
    L5    olga  web_form  -             -     2026-03-20 09:00     converted, deal won 5000 USD
    L6    olga  web_form  -             -     2026-03-21 09:00     deleted
    L8    olga  web_form  -             -     2026-03-25 09:00     converted, deal open 300 EUR
    other org: a web_form lead in March, converted and won"""
    acct, rita, won = world["acct"], world["rita"].user_id, world["stages"]["Won"]
    form = await _post(client, acct, "/v1/forms", {"name": "Contact us"})

    async def lead(a, name: str, source: str, created: str, owner=None, campaign=None, in_form=False,
                   deal: tuple[str, str, bool] | None = None, convert: bool = False) -> dict:
        body = {"first_name": name, "source": source, **({"owner_id": owner} if owner else {}),
                **({"utm": {"campaign": campaign}} if campaign else {})}
        made = await _post(client, a, "/v1/leads", body)
        if in_form:
            await _sql(session, "UPDATE leads SET form_id = :f WHERE id = :id", f=UUID(form["id"]), id=UUID(made["id"]))
        if deal or convert:
            body = {"create_deal": bool(deal)}
            if deal:
                body["value"] = {"amount": deal[0], "currency": deal[1]}
            result = await _post(client, a, f"/v1/leads/{made['id']}/convert", body)
            if deal and deal[2]:
                won_stage = won if a is acct else world["other_stages"]["Won"]
                await _move(client, a, result["deal"], won_stage)
        await _pin(session, "leads", made, "created_at", created)
        return made

    await lead(acct, "L1", "web_form", "2026-03-02 09:00", campaign="spring", in_form=True, deal=("1200", "EUR", True))
    await lead(acct, "L2", "web_form", "2026-03-10 09:00", owner=rita, campaign="spring", in_form=True, convert=True)
    await lead(acct, "L3", "referral", "2026-03-15 09:00", owner=rita)
    await lead(acct, "L4", "web_form", "2026-04-01 00:30", campaign="autumn")
    await lead(acct, "L5", "web_form", "2026-03-20 09:00", deal=("5000", "USD", True))
    await _delete(client, acct, "leads", await lead(acct, "L6", "web_form", "2026-03-21 09:00"))
    await lead(acct, "L8", "web_form", "2026-03-25 09:00", deal=("300", "EUR", False))
    await lead(world["other"], "O1", "web_form", "2026-03-05 09:00", deal=("700", "EUR", True))

    def row(source=None, campaign=None, form_id=None, *, leads, converted, deals_won, won_value, currency="EUR"):
        return {"source": source, "utm_campaign": campaign, "form_id": form_id, "leads": leads,
                "converted": converted, "deals_won": deals_won, "won_value": _money(won_value, currency)}

    march = {"from": "2026-03-01", "to": "2026-03-31"}
    body = await _get(client, acct.headers, "lead-sources", **march)
    assert body["rows"] == [row("web_form", leads=4, converted=4, deals_won=1, won_value="1200.00"),
                            row("referral", leads=1, converted=0, deals_won=0, won_value="0.00")]
    assert body["totals"] == {"leads": 5, "converted": 4, "deals_won": 1, "won_value": _money("1200.00")}
    body = await _get(client, acct.headers, "lead-sources", group_by="utm_campaign", **march)
    assert body["rows"] == [row(leads=3, converted=2, deals_won=0, won_value="0.00"),
                            row(campaign="spring", leads=2, converted=2, deals_won=1, won_value="1200.00")]
    body = await _get(client, acct.headers, "lead-sources", group_by="form", **march)
    assert body["rows"] == [row(leads=3, converted=2, deals_won=0, won_value="0.00"),
                            row(form_id=form["id"], leads=2, converted=2, deals_won=1, won_value="1200.00")]
    body = await _get(client, acct.headers, "lead-sources", currency="USD", **march)
    assert body["rows"][0] == row("web_form", leads=4, converted=4, deals_won=1, won_value="5000.00", currency="USD")
    body = await _get(client, acct.headers, "lead-sources", **{"from": "2026-04-01", "to": "2026-04-30"})
    assert body["rows"] == [row("web_form", leads=1, converted=0, deals_won=0, won_value="0.00")]
    for params in ({"owner_id": rita}, {"team_id": world["north"]["id"]}):
        body = await _get(client, acct.headers, "lead-sources", **march, **params)
        assert body["rows"] == [row("referral", leads=1, converted=0, deals_won=0, won_value="0.00"),
                                row("web_form", leads=1, converted=1, deals_won=0, won_value="0.00")]
    body = await _get(client, acct.headers, "lead-sources", source="referral", **march)
    assert [r["source"] for r in body["rows"]] == ["referral"]
    body = await _get(client, acct.headers, "lead-sources", **{"from": "2025-06-01", "to": "2025-06-30"})
    assert body == {"rows": [], "totals": {"leads": 0, "converted": 0, "deals_won": 0, "won_value": _money("0.00")}}

    # CSV: only the grouping's column holds the group
    r = await client.get("/v1/reports/lead-sources", headers=acct.headers,
                         params={"format": "csv", "group_by": "utm_campaign", **march})
    assert _csv(r) == [
        {"utm_campaign": "", "leads": "3", "converted": "2", "deals_won": "0", "won_value": "0.00", "currency": "EUR"},
        {"utm_campaign": "spring", "leads": "2", "converted": "2", "deals_won": "1", "won_value": "1200.00",
         "currency": "EUR"}]
    r = await client.get("/v1/reports/lead-sources", headers={**acct.headers, "Accept": "text/csv"}, params=march)
    assert list(_csv(r)[0]) == ["source", "leads", "converted", "deals_won", "won_value", "currency"]


# --- response-times -----------------------------------------------------------------------------------


async def test_response_times_from_creation_to_first_completed_activity(client, session, world):
    """lead  owner  form  source    created (Auckland)   first completed activity after
    R1    olga   F     web_form  2026-03-02 09:00     60 s (a call completed through the API, then pinned)
    R2    olga   F     web_form  2026-03-03 09:00     120 s
    R3    olga   -     referral  2026-03-04 09:00     600 s
    R4    rita   F     web_form  2026-03-05 09:00     3600 s
    R5    rita   -     web_form  2026-03-06 09:00     none yet: left out
    R6    olga   -     web_form  2026-03-07 09:00     5 s, deleted
    R7    olga   -     web_form  2026-04-01 00:30     30 s (March 31 in UTC: April here)
    other org: a March lead answered in 1 s"""
    acct, rita, olga = world["acct"], world["rita"].user_id, world["olga"]
    form = await _post(client, acct, "/v1/forms", {"name": "Contact us"})

    async def lead(a, source: str, created: str, seconds: int | None, owner=None, in_form=False) -> dict:
        made = await _post(client, a, "/v1/leads", {"first_name": "L", "source": source,
                                                     **({"owner_id": owner} if owner else {})})
        if in_form:
            await _sql(session, "UPDATE leads SET form_id = :f WHERE id = :id", f=UUID(form["id"]), id=UUID(made["id"]))
        await _pin(session, "leads", made, "created_at", created)
        if seconds is not None:
            await _sql(session, "UPDATE leads SET first_response_at = created_at + make_interval(secs => :s) "
                                "WHERE id = :id", s=seconds, id=UUID(made["id"]))
        return made

    r1 = await _post(client, acct, "/v1/leads", {"first_name": "R1", "source": "web_form"})
    call = await _post(client, acct, "/v1/activities", {"type": "call", "subject": "Call back", "lead_id": r1["id"]})
    await _post(client, acct, f"/v1/activities/{call['id']}/complete", {})
    assert (await client.get(f"/v1/leads/{r1['id']}", headers=acct.headers)).json()["first_response_at"] is not None
    await _sql(session, "UPDATE leads SET form_id = :f, created_at = CAST(CAST(:t AS text) AS timestamptz),"
                        " first_response_at = CAST(CAST(:t AS text) AS timestamptz) + interval '60 seconds'"
                        " WHERE id = :id", f=UUID(form["id"]), t=f"2026-03-02 09:00 {AKL}", id=UUID(r1["id"]))
    await lead(acct, "web_form", "2026-03-03 09:00", 120, in_form=True)
    await lead(acct, "referral", "2026-03-04 09:00", 600)
    await lead(acct, "web_form", "2026-03-05 09:00", 3600, owner=rita, in_form=True)
    await lead(acct, "web_form", "2026-03-06 09:00", None, owner=rita)
    await _delete(client, acct, "leads", await lead(acct, "web_form", "2026-03-07 09:00", 5))
    await lead(acct, "web_form", "2026-04-01 00:30", 30)
    await lead(world["other"], "web_form", "2026-03-02 09:00", 1)

    def row(user=None, form_id=None, *, count, p50, p90) -> dict:
        return {"user_id": user, "form_id": form_id, "count": count, "p50_seconds": pytest.approx(p50),
                "p90_seconds": pytest.approx(p90)}

    march = {"from": "2026-03-01", "to": "2026-03-31"}
    body = await _get(client, acct.headers, "response-times", **march)
    # olga: 60, 120, 600 → median 120, p90 at 1.8 of 0..2: 120 + 0.8 × 480; rita: 3600
    assert body["rows"] == [row(olga, count=3, p50=120, p90=504), row(rita, count=1, p50=3600, p90=3600)]
    assert body["totals"] == {"count": 4, "p50_seconds": pytest.approx(360), "p90_seconds": pytest.approx(2700)}
    body = await _get(client, acct.headers, "response-times", group_by="form", **march)
    assert body["rows"] == [row(form_id=form["id"], count=3, p50=120, p90=2904), row(count=1, p50=600, p90=600)]
    body = await _get(client, acct.headers, "response-times", **{"from": "2026-04-01", "to": "2026-04-30"})
    assert body["rows"] == [row(olga, count=1, p50=30, p90=30)]
    body = await _get(client, acct.headers, "response-times", source="web_form", **march)
    assert body["rows"] == [row(olga, count=2, p50=90, p90=114), row(rita, count=1, p50=3600, p90=3600)]
    for params in ({"owner_id": rita}, {"team_id": world["north"]["id"]}):
        body = await _get(client, acct.headers, "response-times", **march, **params)
        assert body["rows"] == [row(rita, count=1, p50=3600, p90=3600)]
    body = await _get(client, acct.headers, "response-times", **{"from": "2025-06-01", "to": "2025-06-30"})
    assert body == {"rows": [], "totals": {"count": 0, "p50_seconds": None, "p90_seconds": None}}
    body = await _get(client, world["other"].headers, "response-times", **march)
    assert body["totals"]["count"] == 1 and body["totals"]["p50_seconds"] == 1.0


# --- emails -------------------------------------------------------------------------------------------


async def test_emails_sent_and_received_per_user_and_period(client, session, world):
    """Rita's mailbox M1 and a shared mailbox M2 without an owner.
    E1 outbound, sent by olga through the API from M1     2026-03-10 10:00   olga sent
    E2 outbound, sent by olga, still queued               (now)              not counted
    E3 outbound, synced from M1's Sent folder             2026-03-12 10:00   rita sent
    E4 inbound to M1                                      2026-03-31 23:30   rita received (10:30 UTC)
    E5 inbound to M1                                      2026-04-01 00:30   rita received, April (March in UTC)
    E6 inbound to M2                                      2026-03-15 10:00   nobody received
    E7 inbound to M1, deleted                             2026-03-16 10:00   not counted
    other org: an inbound mail in March"""
    acct, rita, olga = world["acct"], world["rita"].user_id, world["olga"]

    async def mailbox(a, address: str, owner: str | None) -> dict:
        return await _post(client, a, "/v1/mailboxes", {
            "email": address, "shared": True, "owner_id": owner,
            "imap": {"host": "127.0.0.1", "port": 9, "username": "u", "password": "p"},
            "smtp": {"host": "127.0.0.1", "port": 9}})

    m1, m2 = await mailbox(acct, "rita@kiwi.example.com", rita), await mailbox(acct, "sales@kiwi.example.com", None)
    await _sql(session, "UPDATE mailboxes SET owner_id = NULL WHERE id = :id", id=UUID(m2["id"]))
    e1 = await _post(client, acct, "/v1/emails", {"mailbox_id": m1["id"], "to": ["ann@client.example"],
                                                  "subject": "Offer", "text": "Hi"})
    await _sql(session, "UPDATE emails SET status = 'sent', sent_at = CAST(CAST(:t AS text) AS timestamptz) "
                        "WHERE id = :id", t=f"2026-03-10 10:00 {AKL}", id=UUID(e1["id"]))
    await _post(client, acct, "/v1/emails", {"mailbox_id": m1["id"], "to": ["ben@client.example"], "subject": "Q",
                                             "text": "Hi"})

    async def mail(a, box: dict, direction: str, local: str, deleted: bool = False) -> None:
        await _sql(session, """
            INSERT INTO emails (org_id, id, mailbox_id, direction, status, subject, from_address, to_addresses,
                                cc_addresses, sent_at, message_id, "references", thread_id, contact_ids, lead_ids,
                                deal_ids, version, deleted_at)
            VALUES (:org, :id, :box, :direction, :status, 'Hello', 'x@client.example', '{}', '{}',
                    CAST(CAST(:t AS text) AS timestamptz), :mid, '{}', :thread, '{}', '{}', '{}', 1,
                    CASE WHEN :deleted THEN now() END)""",
                   org=UUID(a.org_id), id=uuid.uuid4(), box=UUID(box["id"]), direction=direction,
                   status="sent" if direction == "outbound" else "received", t=f"{local} {AKL}",
                   mid=f"<{uuid.uuid4()}@client.example>", thread=uuid.uuid4(), deleted=deleted)

    await mail(acct, m1, "outbound", "2026-03-12 10:00")
    await mail(acct, m1, "inbound", "2026-03-31 23:30")
    await mail(acct, m1, "inbound", "2026-04-01 00:30")
    await mail(acct, m2, "inbound", "2026-03-15 10:00")
    await mail(acct, m1, "inbound", "2026-03-16 10:00", deleted=True)
    other = world["other"]
    await mail(other, await mailbox(other, "box@other.example.com", None), "inbound", "2026-03-20 10:00")

    def rows(body: dict) -> dict:
        return {(r["user_id"], r["period"]): (r["sent"], r["received"]) for r in body["rows"]}

    march = {"from": "2026-03-01", "to": "2026-03-31"}
    body = await _get(client, acct.headers, "emails", **march)
    span = "2026-03-01/2026-03-31"
    assert rows(body) == {(olga, span): (1, 0), (rita, span): (1, 1), (None, span): (0, 1)}
    assert body["rows"][-1]["user_id"] is None  # users without one come last
    assert body["totals"] == {"sent": 2, "received": 2}
    body = await _get(client, acct.headers, "emails", group_by="month", **{"from": "2026-03-01", "to": "2026-04-30"})
    assert rows(body) == {(olga, "2026-03"): (1, 0), (rita, "2026-03"): (1, 1), (None, "2026-03"): (0, 1),
                          (rita, "2026-04"): (0, 1)}
    assert body["rows"][-1] == {"user_id": rita, "period": "2026-04", "sent": 0, "received": 1}
    assert body["totals"] == {"sent": 2, "received": 3}
    body = await _get(client, acct.headers, "emails", group_by="week", **march)
    assert rows(body) == {(olga, "2026-W11"): (1, 0), (rita, "2026-W11"): (1, 0), (None, "2026-W11"): (0, 1),
                          (rita, "2026-W14"): (0, 1)}
    body = await _get(client, acct.headers, "emails", to="2026-03-31")  # the days start at the first mail counted
    assert rows(body) == {(olga, "2026-03-10/2026-03-31"): (1, 0), (rita, "2026-03-10/2026-03-31"): (1, 1),
                          (None, "2026-03-10/2026-03-31"): (0, 1)}
    for params in ({"owner_id": rita}, {"team_id": world["north"]["id"]}):
        body = await _get(client, acct.headers, "emails", **march, **params)
        assert rows(body) == {(rita, span): (1, 1)}
    body = await _get(client, acct.headers, "emails", **{"from": "2025-06-01", "to": "2025-06-30"})
    assert body == {"rows": [], "totals": {"sent": 0, "received": 0}}
    body = await _get(client, other.headers, "emails", **march)
    assert body["totals"] == {"sent": 0, "received": 1}


# --- every new report: parameters, access, tenancy, visibility, cost -------------------------------------

NEW = ("stage-durations", "velocity", "rotting", "activities", "lead-sources", "response-times", "emails",
       "customers")
TAKES_PIPELINE = ("stage-durations", "velocity", "rotting", "customers")


@pytest.mark.parametrize(("report", "params", "loc"), [
    ("rotting", {"from": "2026-01-01"}, "from"),  # as of now: no period
    ("rotting", {"currency": "EUR"}, "currency"),  # no money in it
    ("stage-durations", {"currency": "EUR"}, "currency"),
    ("activities", {"source": "web_form"}, "source"),
    ("activities", {"pipeline_id": str(uuid.uuid4())}, "pipeline_id"),
    ("emails", {"group_by": "owner"}, "group_by"),
    ("velocity", {"group_by": "quarter"}, "group_by"),
    ("lead-sources", {"group_by": "month"}, "group_by"),
    ("response-times", {"group_by": "source"}, "group_by"),
    ("customers", {"group_by": "month"}, "group_by"),
    ("customers", {"from": "2026-02-01", "to": "2026-01-31"}, "from"),
    ("velocity", {"from": "2026-02-30"}, "from"),
    ("lead-sources", {"team_id": "north"}, "team_id"),
    ("emails", {"owner_id": "nobody"}, "owner_id"),
])
async def test_bad_parameters_are_422(client, report, params, loc):
    acct = await signup(client)
    body = _problem(await client.get(f"/v1/reports/{report}", headers=acct.headers, params=params), 422)
    assert ["query", loc] in [e["loc"] for e in body["errors"]], body


async def test_another_orgs_or_a_deleted_team_or_pipeline_is_404(client, world):
    acct, other = world["acct"], world["other"]
    their_team = await _post(client, other, "/v1/teams", {"name": "South"})
    gone = await _post(client, acct, "/v1/teams", {"name": "Gone"})
    await _delete(client, acct, "teams", gone)
    their_pipeline = (await client.get("/v1/pipelines", headers=other.headers)).json()["data"][0]["id"]
    for report in (*NEW, "funnel", "win-loss", "forecast"):
        for team in (their_team["id"], gone["id"]):
            body = _problem(await client.get(f"/v1/reports/{report}", headers=acct.headers,
                                             params={"team_id": team}), 404)
            assert body["detail"] == "Team not found", report
        if report in TAKES_PIPELINE:
            body = _problem(await client.get(f"/v1/reports/{report}", headers=acct.headers,
                                             params={"pipeline_id": their_pipeline}), 404)
            assert body["detail"] == "Pipeline not found", report
        await _get(client, acct.headers, report, team_id=world["north"]["id"])


async def test_team_filter_on_the_first_reports_too(client, world, closed_deals):
    h, north = world["acct"].headers, world["north"]["id"]
    body = await _get(client, h, "win-loss", team_id=north)  # rita's V2 and V4
    assert (body["totals"]["won"], body["totals"]["won_value"]) == (2, _money("4500.00"))
    body = await _get(client, h, "funnel", team_id=north)
    assert body["totals"]["deals"] == 2


async def test_who_may_read_the_new_reports(client, world):
    acct = world["acct"]
    viewer = await acct.invite("viewer")
    key = await acct.api_key(["reports:read"])
    other_key = await acct.api_key(["deals:read"])
    for report in NEW:
        await _get(client, viewer.headers, report)
        await _get(client, key, report)
        _problem(await client.get(f"/v1/reports/{report}", headers=other_key), 403)
        _problem(await client.get(f"/v1/reports/{report}"), 401)


async def test_members_see_only_what_they_may_read_in_own_mode(client, session, world):
    """record_visibility `own`: rita's reports count her records only, the owner's count everyone's."""
    acct, rita = world["acct"], world["rita"]
    proposal = world["stages"]["Proposal"]
    r = await client.patch(f"/v1/pipelines/{world['pipeline']['id']}/stages/{proposal}", headers=acct.headers,
                           json={"rotting_days": 1})
    assert r.status_code == 200, r.text
    for owner in (acct.user_id, rita.user_id):
        deal = await _deal(client, acct, owner_id=owner)
        await _move(client, acct, deal, proposal)
        await _sql(session, "UPDATE deals SET stage_entered_at = now() - interval '3 days' WHERE id = :id",
                   id=UUID(deal["id"]))
        await _post(client, acct, "/v1/leads", {"first_name": "L", "source": "web_form", "owner_id": owner})
        await _post(client, acct, "/v1/activities", {"type": "task", "subject": "t", "assignee_id": owner,
                                                     "owner_id": owner})
    r = await client.patch("/v1/org", headers=acct.headers, json={"record_visibility": "own"})
    assert r.status_code == 200, r.text
    for headers, deals, leads, open_ in ((acct.headers, 2, 2, 2), (rita.headers, 1, 1, 1)):
        assert (await _get(client, headers, "rotting"))["totals"]["deals"] == deals
        assert (await _get(client, headers, "lead-sources"))["totals"]["leads"] == leads
        assert (await _get(client, headers, "activities"))["totals"]["open"] == open_


@contextmanager
def _statements(database):
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        if statement.lstrip().split(None, 1)[0].upper() not in ("SAVEPOINT", "RELEASE", "ROLLBACK"):
            seen.append(statement)

    engine = database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.mark.parametrize("report", NEW)
async def test_each_report_is_one_statement(client, database, world, report):
    """As many round trips as the funnel's (authentication, then the report's one statement), with every filter
    it takes given."""
    acct = world["acct"]
    with _statements(database) as baseline:
        await _get(client, acct.headers, "funnel")
    params = {"from": "2026-01-01", "to": "2026-12-31", "owner_id": "me", "team_id": world["north"]["id"],
              "source": "web_form", "pipeline_id": world["pipeline"]["id"], "currency": "EUR"}
    allowed = {"stage-durations": {"from", "to", "pipeline_id", "owner_id", "team_id", "source"},
               "velocity": set(params), "customers": set(params),
               "rotting": {"pipeline_id", "owner_id", "team_id", "source"},
               "activities": {"from", "to", "owner_id", "team_id"}, "emails": {"from", "to", "owner_id", "team_id"},
               "lead-sources": {"from", "to", "owner_id", "team_id", "source", "currency"},
               "response-times": {"from", "to", "owner_id", "team_id", "source"}}[report]
    with _statements(database) as seen:
        await _get(client, acct.headers, report, **{k: v for k, v in params.items() if k in allowed})
    assert len(seen) == len(baseline), "\n".join(s.split("\n")[0][:120] for s in seen)
