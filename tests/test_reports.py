"""Reports on live data, as a dashboard reads them: funnel, win-loss and forecast on a hand-built
scenario (deals moved through stages, won, lost with reasons, another currency left out, period bounds in
the organisation's time zone), filters and grouping, CSV, bad parameters, access and tenancy."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from uuid import UUID

import pytest
from sqlalchemy import text

from app.domain.reports.service import ReportParams, asyncpg_args, funnel_statement, win_loss_statement
from tests.factories import signup
from tests.reports_api import _get, _money, _problem

NY = "America/New_York"


async def _deal(client, acct, **body) -> dict:
    r = await client.post("/v1/deals", headers=acct.headers, json={"title": "A deal", **body})
    assert r.status_code == 201, r.text
    return r.json()


async def _move(client, acct, deal: dict, *stages: str, **extra) -> None:
    for stage in stages:
        body = {"stage_id": stage, **(extra if stage == stages[-1] else {})}
        r = await client.patch(f"/v1/deals/{deal['id']}", headers=acct.headers, json=body)
        assert r.status_code == 200, r.text


async def _at(session, deal: dict, column: str, local: str) -> None:
    """Pin a server-set timestamp (created_at, closed_at) to a local time in New York."""
    await session.execute(text(f"UPDATE deals SET {column} = CAST(CAST(:t AS text) AS timestamptz) WHERE id = :id"),
                          {"t": f"{local} {NY}", "id": UUID(deal["id"])})


@pytest.fixture
async def scenario(client, session):
    """One org in New York time, EUR. The default pipeline: Qualification(10) → Proposal(40) →
    Negotiation(70) → Won / Lost; a second pipeline with an Offer stage (50).

    deal  owner  EUR    path                                 closed (New York)
    A     olga   1000   Q → P → N → Won                      2026-01-31 23:30 (UTC: Feb 1)
    B     olga   2000   Q → Lost (price)                     2026-02-15 12:00   created 2025-12-31 23:00
    C     rita   3000   Q → P → Lost (price)                 2026-02-28 23:59 (UTC: Mar 1)
    D     rita   4000   Q → N (open, commit), closes 2026-03-15
    E     olga    500   Q (open, pipeline), closes 2026-03-20
    G     rita   1500   Q → Won (skips P and N)              2026-02-01 00:30
    H     olga    700   Q → P (open, set to commit), closes 2026-04-02
    I     rita    800   Q → Lost (timing)                    2026-03-01 00:00 (the instant after Feb)
    F     olga   9999 USD → Won                              left out of every EUR report
    second pipeline: L open 1000 in Offer (best_case) closes 2026-03-31; J omitted; K no close date
    """
    acct = await signup(client)
    r = await client.patch("/v1/org", headers=acct.headers, json={"timezone": NY, "default_currency": "EUR"})
    assert r.status_code == 200, r.text
    rep = await acct.invite("member")
    pipeline = [p for p in (await client.get("/v1/pipelines", headers=acct.headers)).json()["data"]
                if p["is_default"]][0]
    assert pipeline["currency"] == "EUR"
    s = {st["name"]: st["id"] for st in pipeline["stages"]}
    p, n, won, lost = s["Proposal"], s["Negotiation"], s["Won"], s["Lost"]
    olga, rita = acct.user_id, rep.user_id

    def eur(amount: int) -> dict:
        return {"amount": str(amount), "currency": "EUR"}

    deals = {}
    deals["A"] = await _deal(client, acct, value=eur(1000))
    await _move(client, acct, deals["A"], p, n, won)
    deals["B"] = await _deal(client, acct, value=eur(2000))
    await _move(client, acct, deals["B"], lost, lost_reason="price")
    deals["C"] = await _deal(client, acct, value=eur(3000), owner_id=rita)
    await _move(client, acct, deals["C"], p, lost, lost_reason="price")
    deals["D"] = await _deal(client, acct, value=eur(4000), owner_id=rita, expected_close_date="2026-03-15")
    await _move(client, acct, deals["D"], n)
    deals["E"] = await _deal(client, acct, value=eur(500), expected_close_date="2026-03-20")
    deals["G"] = await _deal(client, acct, value=eur(1500), owner_id=rita)
    await _move(client, acct, deals["G"], won)
    deals["H"] = await _deal(client, acct, value=eur(700), expected_close_date="2026-04-02")
    await _move(client, acct, deals["H"], p, forecast_category="commit")
    deals["I"] = await _deal(client, acct, value=eur(800), owner_id=rita)
    await _move(client, acct, deals["I"], lost, lost_reason="timing")
    deals["F"] = await _deal(client, acct, value={"amount": "9999", "currency": "USD"}, expected_close_date="2026-03-10")
    await _move(client, acct, deals["F"], won)

    r = await client.post("/v1/pipelines", headers=acct.headers, json={"name": "Renewals", "stages": [
        {"name": "Offer", "probability": 50}, {"name": "Won", "probability": 100, "kind": "won"},
        {"name": "Lost", "probability": 0, "kind": "lost"}]})
    assert r.status_code == 201, r.text
    renewals = r.json()
    deals["L"] = await _deal(client, acct, pipeline_id=renewals["id"], value=eur(1000),
                             expected_close_date="2026-03-31")
    deals["J"] = await _deal(client, acct, pipeline_id=renewals["id"], value=eur(5000),
                             expected_close_date="2026-03-01", forecast_category="omitted")
    deals["K"] = await _deal(client, acct, pipeline_id=renewals["id"], value=eur(6000))

    await session.execute(text("UPDATE deals SET created_at = '2026-06-01T12:00:00Z' WHERE org_id = :org"),
                          {"org": UUID(acct.org_id)})
    await _at(session, deals["B"], "created_at", "2025-12-31 23:00")
    for name, local in (("A", "2026-01-31 23:30"), ("B", "2026-02-15 12:00"), ("C", "2026-02-28 23:59"),
                        ("G", "2026-02-01 00:30"), ("I", "2026-03-01 00:00"), ("F", "2026-02-10 10:00")):
        await _at(session, deals[name], "closed_at", local)
    await session.commit()
    return {"acct": acct, "rep": rep, "olga": olga, "rita": rita, "pipeline": pipeline, "renewals": renewals,
            "stages": s, "deals": deals}


# --- funnel -------------------------------------------------------------------------------------------


async def test_funnel_counts_how_far_deals_got(client, scenario):
    acct, s = scenario["acct"], scenario["stages"]
    body = await _get(client, acct.headers, "funnel")
    rows = {r["name"]: r for r in body["rows"]}
    assert [r["name"] for r in body["rows"]] == ["Qualification", "Proposal", "Negotiation", "Won", "Lost"]
    assert [r["position"] for r in body["rows"]] == [0, 1, 2, 3, 4]
    assert rows["Won"]["stage_id"] == s["Won"] and rows["Lost"]["kind"] == "lost"
    # depth: B, E, I at Q; C, H at P; D at N; A, G at Won (G skipped P and N but passed them)
    assert [rows[n]["reached"] for n in ("Qualification", "Proposal", "Negotiation", "Won")] == [8, 5, 3, 2]
    assert rows["Lost"]["reached"] == 3  # B, C, I: lost stages count who entered them, and are no step
    assert [rows[n]["current"] for n in ("Qualification", "Proposal", "Negotiation", "Won", "Lost")] == [1, 1, 1, 2, 3]
    assert rows["Negotiation"]["value_current"] == _money("4000.00")
    assert rows["Won"]["value_current"] == _money("2500.00")
    assert rows["Lost"]["value_current"] == _money("5800.00")
    assert rows["Qualification"]["conversion_to_next"] == pytest.approx(5 / 8)
    assert rows["Proposal"]["conversion_to_next"] == pytest.approx(3 / 5)
    assert rows["Negotiation"]["conversion_to_next"] == pytest.approx(2 / 3)
    assert rows["Won"]["conversion_to_next"] is None and rows["Lost"]["conversion_to_next"] is None
    assert body["totals"] == {"deals": 8, "open": 3, "won": 2, "lost": 3, "value": _money("13500.00")}


async def test_funnel_period_is_created_at_in_the_org_time_zone(client, scenario):
    acct = scenario["acct"]
    # B was created 2025-12-31 23:00 in New York: already 2026-01-01 in UTC, still 2025 for the org
    body = await _get(client, acct.headers, "funnel", **{"from": "2026-01-01"})
    assert body["totals"]["deals"] == 7
    assert {r["name"]: r["reached"] for r in body["rows"]}["Lost"] == 2
    body = await _get(client, acct.headers, "funnel", **{"from": "2025-12-31", "to": "2025-12-31"})
    assert body["totals"]["deals"] == 1 and body["totals"]["lost"] == 1
    assert [r["reached"] for r in body["rows"]] == [1, 0, 0, 0, 1]
    assert body["rows"][0]["conversion_to_next"] == 0.0 and body["rows"][1]["conversion_to_next"] is None


async def test_funnel_filters_owner_pipeline_and_currency(client, scenario):
    acct, rita = scenario["acct"], scenario["rita"]
    body = await _get(client, acct.headers, "funnel", owner_id=rita)  # C, D, G, I
    assert [r["reached"] for r in body["rows"]] == [4, 3, 2, 1, 2]
    assert body["totals"] == {"deals": 4, "open": 1, "won": 1, "lost": 2, "value": _money("9300.00")}
    body = await _get(client, acct.headers, "funnel", currency="USD")
    assert body["totals"] == {"deals": 1, "open": 0, "won": 1, "lost": 0, "value": _money("9999.00", "USD")}
    assert body["rows"][3]["value_current"] == _money("9999.00", "USD")
    renewals = scenario["renewals"]
    body = await _get(client, acct.headers, "funnel", pipeline_id=renewals["id"])
    assert [r["name"] for r in body["rows"]] == ["Offer", "Won", "Lost"]
    assert body["rows"][0]["reached"] == 3 and body["rows"][0]["current"] == 3
    assert body["rows"][0]["value_current"] == _money("12000.00")


# --- win-loss -----------------------------------------------------------------------------------------


async def test_win_loss_totals_and_lost_reasons(client, scenario):
    body = await _get(client, scenario["acct"].headers, "win-loss")
    assert body["rows"] == [{"group": None, "won": 2, "lost": 3, "won_value": _money("2500.00"),
                             "lost_value": _money("5800.00"), "win_rate": 0.4}]
    assert body["totals"] == {"won": 2, "lost": 3, "won_value": _money("2500.00"), "lost_value": _money("5800.00"),
                              "win_rate": 0.4, "lost_reasons": [{"reason": "price", "count": 2},
                                                                {"reason": "timing", "count": 1}]}


async def test_win_loss_period_bounds_are_local_days(client, scenario):
    # February in New York: G (Feb 1 00:30), B, C (Feb 28 23:59 = Mar 1 in UTC); not A (Jan 31 23:30 = Feb 1
    # in UTC) nor I (Mar 1 00:00)
    body = await _get(client, scenario["acct"].headers, "win-loss", **{"from": "2026-02-01", "to": "2026-02-28"})
    totals = body["totals"]
    assert (totals["won"], totals["lost"], totals["won_value"], totals["lost_value"]) == (
        1, 2, _money("1500.00"), _money("5000.00"))
    assert totals["win_rate"] == pytest.approx(1 / 3)
    assert totals["lost_reasons"] == [{"reason": "price", "count": 2}]
    body = await _get(client, scenario["acct"].headers, "win-loss", **{"from": "2026-03-01", "to": "2026-03-01"})
    assert (body["totals"]["won"], body["totals"]["lost"]) == (0, 1)
    body = await _get(client, scenario["acct"].headers, "win-loss", **{"to": "2026-01-31"})
    assert (body["totals"]["won"], body["totals"]["lost"], body["totals"]["win_rate"]) == (1, 0, 1.0)


async def test_win_loss_by_month_in_the_org_time_zone(client, scenario):
    body = await _get(client, scenario["acct"].headers, "win-loss", group_by="month")
    assert [(r["group"], r["won"], r["lost"]) for r in body["rows"]] == [
        ("2026-01", 1, 0), ("2026-02", 1, 2), ("2026-03", 0, 1)]
    assert [r["win_rate"] for r in body["rows"]] == [1.0, pytest.approx(1 / 3), 0.0]
    assert body["rows"][1]["lost_value"] == _money("5000.00")
    assert (body["totals"]["won"], body["totals"]["lost"]) == (2, 3)


async def test_win_loss_by_owner_and_owner_filter(client, scenario):
    acct, olga, rita = scenario["acct"], scenario["olga"], scenario["rita"]
    body = await _get(client, acct.headers, "win-loss", group_by="owner")
    assert body["rows"] == [  # highest won value first
        {"group": rita, "won": 1, "lost": 2, "won_value": _money("1500.00"), "lost_value": _money("3800.00"),
         "win_rate": pytest.approx(1 / 3)},
        {"group": olga, "won": 1, "lost": 1, "won_value": _money("1000.00"), "lost_value": _money("2000.00"),
         "win_rate": 0.5},
    ]
    body = await _get(client, acct.headers, "win-loss", owner_id=rita)
    assert (body["totals"]["won"], body["totals"]["lost"]) == (1, 2)
    assert body["totals"]["lost_reasons"] == [{"reason": "price", "count": 1}, {"reason": "timing", "count": 1}]
    body = await _get(client, acct.headers, "win-loss", owner_id=olga, group_by="owner")
    assert [r["group"] for r in body["rows"]] == [olga]


async def test_win_loss_other_currency_and_empty(client, scenario):
    acct = scenario["acct"]
    body = await _get(client, acct.headers, "win-loss", currency="usd")
    assert body["totals"]["won_value"] == _money("9999.00", "USD") and body["totals"]["lost"] == 0
    body = await _get(client, acct.headers, "win-loss", currency="GBP", group_by="month")
    assert body["rows"] == []
    assert body["totals"] == {"won": 0, "lost": 0, "won_value": _money("0.00", "GBP"),
                              "lost_value": _money("0.00", "GBP"), "win_rate": None, "lost_reasons": []}
    body = await _get(client, acct.headers, "win-loss", pipeline_id=scenario["renewals"]["id"])
    assert body["rows"] == [{"group": None, "won": 0, "lost": 0, "won_value": _money("0.00"),
                             "lost_value": _money("0.00"), "win_rate": None}]


async def test_win_loss_by_lead_source(client, scenario):
    acct = scenario["acct"]
    for source, value in (("web_form", "100"), ("referral", "200")):
        r = await client.post("/v1/leads", headers=acct.headers, json={"first_name": "L", "source": source})
        assert r.status_code == 201, r.text
        r = await client.post(f"/v1/leads/{r.json()['id']}/convert", headers=acct.headers,
                              json={"create_deal": True, "value": {"amount": value}})
        assert r.status_code == 200, r.text
        await _move(client, acct, r.json()["deal"], scenario["stages"]["Won"])
    body = await _get(client, acct.headers, "win-loss", group_by="source")
    assert [(r["group"], r["won"], r["lost"], r["won_value"]["amount"]) for r in body["rows"]] == [
        (None, 2, 3, "2500.00"), ("referral", 1, 0, "200.00"), ("web_form", 1, 0, "100.00")]
    body = await _get(client, acct.headers, "win-loss", source="web_form")
    assert (body["totals"]["won"], body["totals"]["won_value"]) == (1, _money("100.00"))
    body = await _get(client, acct.headers, "funnel", source="referral")
    assert body["totals"]["deals"] == 1 and body["rows"][3]["current"] == 1


# --- forecast -----------------------------------------------------------------------------------------


async def test_forecast_by_month_and_category(client, scenario):
    body = await _get(client, scenario["acct"].headers, "forecast")
    assert body["rows"] == [
        {"month": "2026-03", "category": "pipeline", "deals": 1, "open_value": _money("500.00"),
         "weighted_value": _money("50.00")},  # E in Qualification (10 %)
        {"month": "2026-03", "category": "best_case", "deals": 1, "open_value": _money("1000.00"),
         "weighted_value": _money("500.00")},  # L in Offer (50 %)
        {"month": "2026-03", "category": "commit", "deals": 1, "open_value": _money("4000.00"),
         "weighted_value": _money("2800.00")},  # D in Negotiation (70 %)
        {"month": "2026-04", "category": "commit", "deals": 1, "open_value": _money("700.00"),
         "weighted_value": _money("280.00")},  # H in Proposal (40 %), set to commit
    ]  # J (omitted), K (no expected close date), F (USD) and the closed deals are left out
    assert body["totals"] == {
        "deals": 4, "open_value": _money("6200.00"), "weighted_value": _money("3630.00"),
        "categories": [
            {"category": "pipeline", "deals": 1, "open_value": _money("500.00"), "weighted_value": _money("50.00")},
            {"category": "best_case", "deals": 1, "open_value": _money("1000.00"),
             "weighted_value": _money("500.00")},
            {"category": "commit", "deals": 2, "open_value": _money("4700.00"), "weighted_value": _money("3080.00")},
        ]}


async def test_forecast_filters(client, scenario):
    acct = scenario["acct"]
    body = await _get(client, acct.headers, "forecast", **{"from": "2026-03-16", "to": "2026-03-31"})
    assert [(r["month"], r["category"]) for r in body["rows"]] == [("2026-03", "pipeline"), ("2026-03", "best_case")]
    body = await _get(client, acct.headers, "forecast", pipeline_id=scenario["pipeline"]["id"])
    assert body["totals"]["deals"] == 3 and body["totals"]["open_value"] == _money("5200.00")
    body = await _get(client, acct.headers, "forecast", owner_id=scenario["rita"])
    assert [(r["month"], r["category"], r["deals"]) for r in body["rows"]] == [("2026-03", "commit", 1)]
    body = await _get(client, acct.headers, "forecast", currency="USD")
    assert body["rows"] == [] and body["totals"]["deals"] == 0
    assert body["totals"]["weighted_value"] == _money("0.00", "USD") and body["totals"]["categories"] == []


async def test_forecast_follows_the_deal_category(client, scenario):
    acct, d = scenario["acct"], scenario["deals"]["D"]
    r = await client.patch(f"/v1/deals/{d['id']}", headers=acct.headers, json={"forecast_category": "omitted"})
    assert r.status_code == 200 and r.json()["forecast_category"] == "omitted"
    body = await _get(client, acct.headers, "forecast")
    assert body["totals"]["deals"] == 3
    assert [c["category"] for c in body["totals"]["categories"]] == ["pipeline", "best_case", "commit"]


# --- CSV ----------------------------------------------------------------------------------------------


def _csv(r) -> list[dict]:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(r.text)))


async def test_csv_by_format_or_accept(client, scenario):
    acct = scenario["acct"]
    rows = _csv(await client.get("/v1/reports/funnel", headers=acct.headers, params={"format": "csv"}))
    assert list(rows[0]) == ["stage_id", "name", "position", "kind", "reached", "current", "value_current",
                             "conversion_to_next", "currency"]
    assert [(r["name"], r["reached"], r["value_current"], r["currency"]) for r in rows] == [
        ("Qualification", "8", "500.00", "EUR"), ("Proposal", "5", "700.00", "EUR"),
        ("Negotiation", "3", "4000.00", "EUR"), ("Won", "2", "2500.00", "EUR"), ("Lost", "3", "5800.00", "EUR")]
    assert rows[1]["conversion_to_next"] == "0.6" and rows[3]["conversion_to_next"] == ""

    r = await client.get("/v1/reports/win-loss", headers={**acct.headers, "Accept": "text/csv"},
                         params={"group_by": "month"})
    assert [(x["group"], x["won"], x["lost"], x["won_value"], x["lost_value"]) for x in _csv(r)] == [
        ("2026-01", "1", "0", "1000.00", "0.00"), ("2026-02", "1", "2", "1500.00", "5000.00"),
        ("2026-03", "0", "1", "0.00", "800.00")]

    rows = _csv(await client.get("/v1/reports/forecast", headers=acct.headers, params={"format": "csv"}))
    assert rows[0] == {"month": "2026-03", "category": "pipeline", "deals": "1", "open_value": "500.00",
                       "weighted_value": "50.00", "currency": "EUR"}

    r = await client.get("/v1/reports/forecast", headers={**acct.headers, "Accept": "application/json, text/csv"})
    assert r.headers["content-type"].startswith("application/json")
    r = await client.get("/v1/reports/forecast", headers={**acct.headers, "Accept": "text/csv"},
                         params={"format": "json"})
    assert r.headers["content-type"].startswith("application/json")


# --- bad input, access, tenancy -----------------------------------------------------------------------


@pytest.mark.parametrize(("params", "loc"), [
    ({"from": "2026-13-01"}, "from"),
    ({"from": "20260101"}, "from"),
    ({"to": "1700000000"}, "to"),
    ({"to": "2026-01-01T00:00:00"}, "to"),
    ({"from": "2026-02-01", "to": "2026-01-31"}, "from"),
    ({"group_by": "team"}, "group_by"),
    ({"currency": "XYZ"}, "currency"),
    ({"owner_id": "nope"}, "owner_id"),
    ({"format": "xlsx"}, "format"),
])
async def test_bad_parameters_are_422(client, params, loc):
    acct = await signup(client)
    body = _problem(await client.get("/v1/reports/win-loss", headers=acct.headers, params=params), 422)
    assert ["query", loc] in [e["loc"] for e in body["errors"]], body


async def test_viewers_and_scoped_keys_may_read_reports(client):
    acct = await signup(client)
    viewer = await acct.invite("viewer")
    for report in ("funnel", "win-loss", "forecast"):
        await _get(client, viewer.headers, report)
    key = await acct.api_key(["reports:read"])
    await _get(client, key, "funnel")
    other = await acct.api_key(["deals:read"])
    _problem(await client.get("/v1/reports/funnel", headers=other), 403)
    _problem(await client.get("/v1/reports/forecast"), 401)


async def test_another_orgs_pipeline_is_404(client):
    mine, theirs = await signup(client), await signup(client, "Other")
    their_pipeline = (await client.get("/v1/pipelines", headers=theirs.headers)).json()["data"][0]["id"]
    for report in ("funnel", "win-loss", "forecast"):
        body = _problem(await client.get(f"/v1/reports/{report}", headers=mine.headers,
                                         params={"pipeline_id": their_pipeline}), 404)
        assert body["detail"] == "Pipeline not found"
    r = await client.get("/v1/reports/funnel", headers=theirs.headers, params={"pipeline_id": their_pipeline})
    assert r.status_code == 200


async def test_reports_only_see_their_own_org(client, scenario):
    other = await signup(client, "Other")
    await _deal(client, other, value={"amount": "123"})
    body = await _get(client, scenario["acct"].headers, "funnel")
    assert body["totals"]["deals"] == 8
    body = await _get(client, other.headers, "funnel")
    assert body["totals"]["deals"] == 1


# --- the statements, as a benchmark runs them ---------------------------------------------------------


async def test_the_statement_runs_as_is_with_asyncpg(client, scenario, connection):
    acct = scenario["acct"]
    params = ReportParams(who=UUID(acct.org_id), date_from=None, owner_id=UUID(scenario["rita"]))
    sql, args = asyncpg_args(funnel_statement(params))
    assert "$1" in sql and ":org_id" not in sql
    raw = (await connection.get_raw_connection()).driver_connection
    rows = await raw.fetch(sql, *args)
    assert [r["reached"] for r in rows] == [4, 3, 2, 1, 2]
    sql, args = asyncpg_args(win_loss_statement(ReportParams(who=UUID(acct.org_id), group_by="month")))
    rows = await raw.fetch(sql, *args)
    assert [(r["grp"], r["won"]) for r in rows if r["level"] == 1] == [("2026-01", 1), ("2026-02", 1),
                                                                      ("2026-03", 0)]
    assert Decimal(rows[-1]["won_value"]) == Decimal("2500.00")


async def test_reports_read_the_replica_when_one_is_configured(settings, database, redis):
    """CRM_DATABASE_REPLICA_URL: the report runs on that server, in a read-only transaction (here the replica
    URL names the same database; what matters is which connection the report took)."""
    import httpx
    from sqlalchemy.exc import DBAPIError

    from app.db import Database
    from app.main import create_app

    with_replica = settings.model_copy(update={"database_replica_url": settings.database_url})
    db = Database.from_settings(with_replica)
    try:
        app = create_app(with_replica, db=db, redis=redis)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://crm.test") as c:
            acct = await signup(c)
            await _deal(c, acct, value={"amount": "100.00", "currency": "EUR"})
            assert db.replica is not None and db.replica.pool.checkedin() == 0  # not used yet
            body = await _get(c, acct.headers, "funnel")
            assert body["totals"]["deals"] == 1
            assert db.replica.pool.checkedin() == 1  # the report's connection, back in the replica's pool
            async with db.replica.connect() as conn:
                name = await conn.scalar(text("SELECT current_setting('application_name')"))
                read_only = await conn.scalar(text("SELECT current_setting('transaction_read_only')"))
            assert (name, read_only) == ("crm-replica", "on")
        async with db.read_only(acct.org_id) as s:
            with pytest.raises(DBAPIError, match="read-only transaction"):
                await s.execute(text("UPDATE orgs SET name = name WHERE false"))
    finally:
        await db.dispose()

