"""Imports end to end: messy CSV and XLSX files uploaded as a client would, processed by a real arq worker
on real PostgreSQL and Redis, then read back through the API (progress, counts, errors.csv, ?import_id=)."""

from __future__ import annotations

import codecs
import csv
import io
import json
import uuid
from datetime import date, datetime

from openpyxl import Workbook
from sqlalchemy import select

from app.domain.events.models import Event
from tests.factories import signup, unique_email
from tests.workers import FAST, eventually, running_worker

COUNTS = ("total", "processed", "created", "updated", "skipped", "failed")
CONTACT_MAPPING = {"Email": "email", "First Name": "first_name", "Last Name": "last_name", "Phone": "phone"}


async def upload(c, acct, name: str, data: bytes, *, object: str = "contacts", mapping: dict | str | None = None,
                 dedupe_by: str = "email", on_duplicate: str = "skip", dry_run: bool = False,
                 external_source: str | None = None, headers: dict | None = None, expect: int = 202):
    form = {"object": object, "dedupe_by": dedupe_by, "on_duplicate": on_duplicate,
            "dry_run": "true" if dry_run else "false"}
    if mapping is not None:
        form["mapping"] = mapping if isinstance(mapping, str) else json.dumps(mapping)
    if external_source is not None:
        form["external_source"] = external_source
    r = await c.post("/v1/imports", headers=acct.headers if headers is None else headers,
                     files={"file": (name, data)}, data=form)
    assert r.status_code == expect, r.text
    if expect == 202:
        body = r.json()
        assert body["status"] == "queued"
        assert r.headers["location"] == f"/v1/imports/{body['id']}"
    return r


def worker(settings):
    return running_worker(settings.model_copy(update=FAST))


async def finished(c, acct, import_id: str, within: float = 60.0) -> dict:
    async def done():
        r = await c.get(f"/v1/imports/{import_id}", headers=acct.headers)
        assert r.status_code == 200, r.text
        body = r.json()
        return body if body["status"] not in ("queued", "running") else None

    return await eventually(done, within=within)


async def run_import(c, acct, settings, name: str, data: bytes, **kw) -> dict:
    import_id = (await upload(c, acct, name, data, **kw)).json()["id"]
    async with worker(settings):
        return await finished(c, acct, import_id)


def counts(body: dict) -> dict:
    return {k: body[k] for k in COUNTS}


async def error_rows(c, acct, import_id: str) -> list[list[str]]:
    r = await c.get(f"/v1/imports/{import_id}/errors.csv", headers=acct.headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["row", "column", "reason"]
    return rows[1:]


async def listed(c, acct, import_id: str, things: str = "contacts") -> list[dict]:
    r = await c.get(f"/v1/{things}", headers=acct.headers, params={"import_id": import_id, "limit": 100})
    assert r.status_code == 200, r.text
    return r.json()["data"]


async def all_contacts(c, acct) -> list[dict]:
    r = await c.get("/v1/contacts", headers=acct.headers, params={"limit": 100})
    assert r.status_code == 200, r.text
    return r.json()["data"]


def by_email(rows: list[dict]) -> dict[str, dict]:
    return {r["email"]: r for r in rows}


def csv_text(lines: list[str], newline: str = "\r\n") -> str:
    return newline.join(lines) + newline


def local(tag: str) -> tuple[str, str]:
    """A unique email, as it is stored (lower case) and as a messy file might spell it."""
    email = unique_email(tag)
    return email, email.upper()


# --- CSV in the shapes people export ------------------------------------------------------------------


async def test_utf8_bom_csv_with_crlf_quotes_duplicates_bad_rows_and_empty_rows(committed_client, settings):
    c = committed_client
    acct = await signup(c)
    ana, ana_upper = local("ana")
    bob, carl, dora, eve, frank = (unique_email(t) for t in ("bob", "carl", "dora", "eve", "frank"))
    lines = [
        "Email,First Name,Last Name,Phone,Notes,Title,Internal Score",       # 1: header
        f'{ana},Ana,Silva,+351 912 345 678,"likes, commas; and semicolons",CEO,7',  # 2: created
        f"{bob.replace('@', '@@')},Bob,Broken,+49 30 1234567,,,",            # 3: invalid email -> failed
        "",                                                                  # 4: empty -> skipped
        f"{ana_upper},Ana,Again,+351 912 345 679,,,",                        # 5: duplicate of line 2 -> skipped
        f"{carl},Carl,Jones,not-a-phone,,,",                                 # 6: invalid phone -> failed
        ",,,,,,",                                                            # 7: only delimiters -> skipped
        f'{dora},Dora,"O""Brien, Jr.",+49 30 1234568,"first line\nsecond, line","Head of\nSales",9',  # 8
        f"{eve},Eve,Evans,,,,",                                              # 9: created
        f"{frank}.,Frank,Dot,,,,",                                           # 10: invalid email -> failed
    ]
    data = codecs.BOM_UTF8 + csv_text(lines).encode("utf-8")
    mapping = {**CONTACT_MAPPING, "Title": "title"}  # Notes and Internal Score are not mapped
    body = await run_import(c, acct, settings, "export.csv", data, mapping=mapping)

    assert body["status"] == "succeeded", body
    assert counts(body) == {"total": 9, "processed": 9, "created": 3, "updated": 0, "skipped": 3, "failed": 3}
    assert body["file_format"] == "csv" and body["delimiter"] == ","
    assert codecs.lookup(body["encoding"]).name in ("utf-8", "utf-8-sig")
    assert body["started_at"] and body["finished_at"]

    errors = await error_rows(c, acct, body["id"])
    assert [(row, column) for row, column, _ in errors] == [("3", "Email"), ("6", "Phone"), ("10", "Email")]
    assert all(reason for _, _, reason in errors)
    assert "phone" in errors[1][2].lower()

    rows = by_email(await listed(c, acct, body["id"]))
    assert set(rows) == {ana, dora, eve}
    assert (rows[ana]["first_name"], rows[ana]["last_name"], rows[ana]["phone"], rows[ana]["title"]) == (
        "Ana", "Silva", "+351912345678", "CEO")  # the first of the duplicates wins
    assert rows[dora]["last_name"] == 'O"Brien, Jr.'
    assert rows[dora]["title"] == "Head of\nSales"
    assert rows[dora]["phone"] == "+49301234568"
    assert rows[eve]["phone"] is None and rows[eve]["title"] is None
    assert all(r["import_id"] == body["id"] for r in rows.values())
    assert len(await all_contacts(c, acct)) == 3


async def test_windows_1251_semicolon_csv_with_cyrillic_names(committed_client, settings):
    c = committed_client
    acct = await signup(c)
    people = [("Иван", "Петров"), ("Мария", "Сидорова"), ("Алексей", "Смирнов"), ("Ольга", "Кузнецова")]
    emails = [unique_email("ru") for _ in people]
    lines = ["Имя;Фамилия;Электронная почта;Телефон;Комментарий"] + [
        f"{first};{last};{email};+7 912 345-67-8{i};Позвонить в понедельник, после обеда"
        for i, ((first, last), email) in enumerate(zip(people, emails, strict=True))]
    data = csv_text(lines).encode("cp1251")
    mapping = {"Имя": "first_name", "Фамилия": "last_name", "Электронная почта": "email", "Телефон": "phone"}
    body = await run_import(c, acct, settings, "клиенты.csv", data, mapping=mapping)

    assert body["status"] == "succeeded", body
    assert counts(body) == {"total": 4, "processed": 4, "created": 4, "updated": 0, "skipped": 0, "failed": 0}
    assert body["delimiter"] == ";"
    assert codecs.lookup(body["encoding"]).name == "cp1251"
    assert await error_rows(c, acct, body["id"]) == []
    rows = by_email(await listed(c, acct, body["id"]))
    assert {e: (r["first_name"], r["last_name"], r["phone"]) for e, r in rows.items()} == {
        email: (first, last, f"+791234567{80 + i}")
        for i, ((first, last), email) in enumerate(zip(people, emails, strict=True))}


async def test_utf16_tab_separated_without_mapping_uses_the_suggested_one(committed_client, settings):
    c = committed_client
    acct = await signup(c)
    jurgen, zoe = unique_email("juergen"), unique_email("zoe")
    lines = ["E-Mail\tVorname\tNachname\tTelefon\tAbteilung",
             f"{jurgen}\tJürgen\tMüller\t+49 89 1234567\tVertrieb",
             f"{zoe}\tZoë\tStraße\t\tEinkauf, Zentrale",
             "\t\t\t\t"]
    data = codecs.BOM_UTF16_LE + csv_text(lines).encode("utf-16-le")
    body = await run_import(c, acct, settings, "kontakte.txt", data)  # no mapping sent

    assert body["status"] == "succeeded", body
    assert body["mapping"] == {"E-Mail": "email", "Vorname": "first_name", "Nachname": "last_name",
                               "Telefon": "phone"}
    assert body["delimiter"] == "\t"
    assert codecs.lookup(body["encoding"]).name.startswith("utf-16")
    assert counts(body) == {"total": 3, "processed": 3, "created": 2, "updated": 0, "skipped": 1, "failed": 0}
    rows = by_email(await listed(c, acct, body["id"]))
    assert (rows[jurgen]["first_name"], rows[jurgen]["last_name"], rows[jurgen]["phone"]) == (
        "Jürgen", "Müller", "+49891234567")
    assert (rows[zoe]["first_name"], rows[zoe]["last_name"], rows[zoe]["phone"]) == ("Zoë", "Straße", None)


# --- XLSX ---------------------------------------------------------------------------------------------


async def _seats_field(c, acct) -> None:
    r = await c.post("/v1/custom-fields", headers=acct.headers,
                     json={"object": "contact", "key": "seats", "label": "Seats", "type": "number"})
    assert r.status_code == 201, r.text


def xlsx(rows: list[list[object]]) -> bytes:
    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def test_xlsx_with_dates_numbers_and_external_ids(committed_client, settings):
    c = committed_client
    acct = await signup(c)
    await _seats_field(c, acct)
    ann, ben, dee, eli = (unique_email(t) for t in ("ann", "ben", "dee", "eli"))
    base = 700_000 + uuid.uuid4().int % 100_000
    data = xlsx([
        ["Email", "First Name", "Birthday", "Seats", "Customer No", "Revenue"],
        [ann, "Ann", date(1990, 5, 17), 25, base, 1234.5],              # 2: created
        [ben, "Ben", datetime(1985, 12, 1), 12.5, base + 1, None],      # 3: created
        [None, None, None, None, None, None],                           # 4: empty -> skipped
        [dee, "Dee", "not a date", 3, base + 2, 10],                    # 5: bad birthday -> failed
        [eli, "Eli", None, None, base + 3, 0],                          # 6: created, nothing optional
    ])
    mapping = {"Email": "email", "First Name": "first_name", "Birthday": "birthday", "Seats": "cf.seats",
               "Customer No": "external_id"}  # Revenue is not mapped
    body = await run_import(c, acct, settings, "contacts.xlsx", data, mapping=mapping, external_source="erp")

    assert body["status"] == "succeeded", body
    assert body["file_format"] == "xlsx" and body["encoding"] is None and body["delimiter"] is None
    assert counts(body) == {"total": 5, "processed": 5, "created": 3, "updated": 0, "skipped": 1, "failed": 1}
    errors = await error_rows(c, acct, body["id"])
    assert [(row, column) for row, column, _ in errors] == [("5", "Birthday")]

    rows = by_email(await listed(c, acct, body["id"]))
    assert set(rows) == {ann, ben, eli}
    assert (rows[ann]["birthday"], rows[ann]["custom_fields"]) == ("1990-05-17", {"seats": 25})
    assert (rows[ben]["birthday"], rows[ben]["custom_fields"]) == ("1985-12-01", {"seats": 12.5})
    assert (rows[eli]["birthday"], rows[eli]["custom_fields"]) == (None, {})
    assert rows[ann]["external_ids"] == [{"source": "erp", "id": str(base)}]  # a number cell, not "700123.0"
    r = await c.get(f"/v1/contacts/by-external-id/erp/{base + 1}", headers=acct.headers)
    assert r.status_code == 200, r.text
    assert r.json()["email"] == ben


# --- preview and suggested mappings -------------------------------------------------------------------


async def test_preview_reports_format_encoding_delimiter_headers_sample_and_suggested_mapping(committed_client):
    c = committed_client
    acct = await signup(c)
    await _seats_field(c, acct)
    lines = ["E-Mail;First Name;Surname;Mobile;Seats;Favourite Colour"] + [
        f"p{i}@example.com;Pat{i};Lee;+1 212 555 010{i};{i};blue" for i in range(7)]
    r = await c.post("/v1/imports/preview", headers=acct.headers,
                     files={"file": ("people.csv", csv_text(lines).encode("utf-8"))}, data={"object": "contacts"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["format"], body["delimiter"]) == ("csv", ";")
    assert codecs.lookup(body["encoding"]).name == "utf-8"
    assert body["headers"] == ["E-Mail", "First Name", "Surname", "Mobile", "Seats", "Favourite Colour"]
    assert body["sample"][0] == ["p0@example.com", "Pat0", "Lee", "+1 212 555 0100", "0", "blue"]
    assert 1 <= len(body["sample"]) <= 7
    assert body["suggested_mapping"] == {"E-Mail": "email", "First Name": "first_name", "Surname": "last_name",
                                         "Mobile": "phone", "Seats": "cf.seats"}

    data = xlsx([["Company", "Website", "Sector"], ["Acme", "acme.example", "Retail"], ["Globex", None, 42]])
    r = await c.post("/v1/imports/preview", headers=acct.headers,
                     files={"file": ("companies.xlsx", data)}, data={"object": "companies"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["format"], body["encoding"], body["delimiter"]) == ("xlsx", None, None)
    assert body["headers"] == ["Company", "Website", "Sector"]
    assert body["sample"] == [["Acme", "acme.example", "Retail"], ["Globex", "", "42"]]
    assert body["suggested_mapping"]["Website"] == "domain" and body["suggested_mapping"]["Sector"] == "industry"

    # a preview writes nothing
    r = await c.get("/v1/imports", headers=acct.headers)
    assert r.status_code == 200 and r.json()["data"] == []


async def test_suggested_mapping_for_companies_maps_a_company_column_to_the_name(committed_client):
    """A companies export names its name column "Company" (or "Company Name", "Organisation"); the name is
    required, so a suggestion without it makes every row fail."""
    c = committed_client
    acct = await signup(c)
    for header in ("Company", "Company Name", "Organisation", "Name"):
        data = csv_text([f"{header},Website", "Acme,acme.example"]).encode()
        r = await c.post("/v1/imports/preview", headers=acct.headers, files={"file": ("c.csv", data)},
                         data={"object": "companies"})
        assert r.status_code == 200, r.text
        assert r.json()["suggested_mapping"] == {header: "name", "Website": "domain"}, header


# --- duplicates against the database -------------------------------------------------------------------


async def test_existing_contact_is_skipped_or_updated(committed_client, settings):
    c = committed_client
    acct = await signup(c)
    email, shouted = local("known")
    r = await c.post("/v1/contacts", headers=acct.headers, json={"first_name": "Old", "email": email})
    assert r.status_code == 201, r.text
    known = r.json()
    newcomer = unique_email("new")
    data = csv_text(["Email,First Name,Last Name,Phone",
                     f"{shouted},Olivia,Newman,+44 20 7946 0958",
                     f"{newcomer},Nina,New,"]).encode()

    skipped = await run_import(c, acct, settings, "a.csv", data, mapping=CONTACT_MAPPING, on_duplicate="skip")
    assert counts(skipped) == {"total": 2, "processed": 2, "created": 1, "updated": 0, "skipped": 1, "failed": 0}
    r = await c.get(f"/v1/contacts/{known['id']}", headers=acct.headers)
    assert r.status_code == 200
    assert (r.json()["first_name"], r.json()["last_name"], r.json()["phone"], r.json()["version"]) == (
        "Old", None, None, known["version"])
    assert [x["email"] for x in await listed(c, acct, skipped["id"])] == [newcomer]

    updated = await run_import(c, acct, settings, "b.csv", data, mapping=CONTACT_MAPPING, on_duplicate="update")
    assert counts(updated) == {"total": 2, "processed": 2, "created": 0, "updated": 2, "skipped": 0, "failed": 0}
    r = await c.get(f"/v1/contacts/{known['id']}", headers=acct.headers)
    after = r.json()
    assert (after["first_name"], after["last_name"], after["phone"], after["email"]) == (
        "Olivia", "Newman", "+442079460958", email)
    assert after["version"] > known["version"]
    assert r.headers["etag"] != f'"{known["version"]}"'
    assert sorted(x["email"] for x in await all_contacts(c, acct)) == sorted([email, newcomer])  # no duplicates


async def test_dedupe_by_external_id_updates_on_a_second_import(committed_client, settings):
    c = committed_client
    acct = await signup(c)
    source = f"legacy{uuid.uuid4().hex[:6]}"
    a, b, n = (f"C-{uuid.uuid4().hex[:8]}" for _ in range(3))
    mapping = {"ID": "external_id", "Name": "first_name", "Email": "email"}
    first = csv_text(["ID,Name,Email", f"{a},Alpha,{unique_email('a')}", f"{b},Beta,"]).encode()
    body = await run_import(c, acct, settings, "one.csv", first, mapping=mapping, dedupe_by="external_id",
                            external_source=source)
    assert counts(body) == {"total": 2, "processed": 2, "created": 2, "updated": 0, "skipped": 0, "failed": 0}
    r = await c.get(f"/v1/contacts/by-external-id/{source}/{a}", headers=acct.headers)
    assert r.status_code == 200, r.text
    alpha = r.json()
    assert alpha["first_name"] == "Alpha" and alpha["external_ids"] == [{"source": source, "id": a}]

    second = csv_text(["ID,Name,Email", f"{a},Alpha Two,", f"{b},Beta Two,", f"{n},Nu,"]).encode()
    body = await run_import(c, acct, settings, "two.csv", second, mapping=mapping, dedupe_by="external_id",
                            external_source=source, on_duplicate="update")
    assert counts(body) == {"total": 3, "processed": 3, "created": 1, "updated": 2, "skipped": 0, "failed": 0}
    for ext, name in ((a, "Alpha Two"), (b, "Beta Two"), (n, "Nu")):
        r = await c.get(f"/v1/contacts/by-external-id/{source}/{ext}", headers=acct.headers)
        assert r.status_code == 200, r.text
        assert r.json()["first_name"] == name
    r = await c.get(f"/v1/contacts/by-external-id/{source}/{a}", headers=acct.headers)
    assert r.json()["id"] == alpha["id"] and r.json()["version"] > alpha["version"]
    assert len(await all_contacts(c, acct)) == 3
    assert [x["first_name"] for x in await listed(c, acct, body["id"])] == ["Nu"]


# --- dry run ------------------------------------------------------------------------------------------


async def test_dry_run_counts_like_a_real_run_and_writes_nothing(committed_client, settings):
    c = committed_client
    acct = await signup(c)
    known, known_upper = local("known")
    r = await c.post("/v1/contacts", headers=acct.headers, json={"first_name": "Kim", "email": known})
    assert r.status_code == 201, r.text
    kim = r.json()
    fresh, fresh_upper = local("fresh")
    data = csv_text(["Email,First Name,Last Name,Phone",
                     f"{known_upper},Kim,Known,",          # 2: exists -> updated
                     f"{fresh},Fay,Fresh,",                # 3: created
                     f"{fresh_upper},Fay,Again,",          # 4: repeat of line 3 -> updated
                     "broken@,Bad,Mail,",                  # 5: failed
                     ",,,"]).encode()                      # 6: skipped
    expected = {"total": 5, "processed": 5, "created": 1, "updated": 2, "skipped": 1, "failed": 1}

    dry_id = (await upload(c, acct, "dry.csv", data, mapping=CONTACT_MAPPING, on_duplicate="update",
                           dry_run=True)).json()["id"]
    async with worker(settings):
        dry = await finished(c, acct, dry_id)
    assert dry["status"] == "succeeded" and dry["dry_run"] is True
    assert counts(dry) == expected
    assert [(row, column) for row, column, _ in await error_rows(c, acct, dry_id)] == [("5", "Email")]
    assert await listed(c, acct, dry_id) == []
    contacts = await all_contacts(c, acct)
    assert [(x["id"], x["last_name"], x["version"]) for x in contacts] == [(kim["id"], None, kim["version"])]

    real = await run_import(c, acct, settings, "real.csv", data, mapping=CONTACT_MAPPING, on_duplicate="update")
    assert counts(real) == expected
    assert len(await all_contacts(c, acct)) == 2


# --- custom fields ------------------------------------------------------------------------------------


async def test_custom_field_column_and_a_non_number_cell(committed_client, settings):
    c = committed_client
    acct = await signup(c)
    await _seats_field(c, acct)
    e1, e2, e3, e4 = (unique_email(f"cf{i}") for i in range(4))
    data = csv_text(["Email,Name,Seats",
                     f"{e1},One,10",
                     f'{e2},Two,"12,5"',
                     f"{e3},Three,lots",
                     f"{e4},Four,"]).encode()
    body = await run_import(c, acct, settings, "seats.csv", data,
                            mapping={"Email": "email", "Name": "first_name", "Seats": "cf.seats"})
    assert counts(body) == {"total": 4, "processed": 4, "created": 3, "updated": 0, "skipped": 0, "failed": 1}
    rows = by_email(await listed(c, acct, body["id"]))
    assert {e: r["custom_fields"] for e, r in rows.items()} == {e1: {"seats": 10}, e2: {"seats": 12.5}, e4: {}}
    errors = await error_rows(c, acct, body["id"])
    assert len(errors) == 1
    row, column, reason = errors[0]
    assert row == "4" and "seats" in reason
    assert column == "Seats"  # the file's header, as for every other column


# --- other objects ------------------------------------------------------------------------------------


async def test_companies_and_leads_import(committed_client, settings):
    c = committed_client
    acct = await signup(c)
    tag = uuid.uuid4().hex[:8]
    companies = csv_text(["Company;Website;Industry;Employees",
                          f"Acme {tag};acme-{tag}.example;Retail;50",
                          f"Globex {tag};globex-{tag}.example;;",
                          f";orphan-{tag}.example;Energy;3"]).encode()
    lead_a, lead_b = unique_email("lead"), unique_email("lead")
    leads = csv_text(["Title,First Name,Last Name,Email,Company,Lead Source",
                      f"Demo request,Jo,Park,{lead_a},Park Ltd,website",
                      f"Pricing,Li,Wu,{lead_b},,fair",
                      f"Pricing again,Li,Wu,{lead_b.upper()},,fair"]).encode()
    company_id = (await upload(c, acct, "companies.csv", companies, object="companies", dedupe_by="none",
                               mapping={"Company": "name", "Website": "domain", "Industry": "industry"})).json()["id"]
    lead_id = (await upload(c, acct, "leads.csv", leads, object="leads",
                            mapping={"Title": "title", "First Name": "first_name", "Last Name": "last_name",
                                     "Email": "email", "Company": "company_name", "Lead Source": "source"})
               ).json()["id"]
    async with worker(settings):
        company_import = await finished(c, acct, company_id)
        lead_import = await finished(c, acct, lead_id)

    assert company_import["object"] == "companies"
    assert counts(company_import) == {"total": 3, "processed": 3, "created": 2, "updated": 0, "skipped": 0,
                                      "failed": 1}
    assert [(row, column) for row, column, _ in await error_rows(c, acct, company_id)] == [("4", "Company")]
    made = {x["name"]: x for x in await listed(c, acct, company_id, "companies")}
    assert set(made) == {f"Acme {tag}", f"Globex {tag}"}
    assert (made[f"Acme {tag}"]["domain"], made[f"Acme {tag}"]["industry"]) == (f"acme-{tag}.example", "Retail")

    assert counts(lead_import) == {"total": 3, "processed": 3, "created": 2, "updated": 0, "skipped": 1, "failed": 0}
    made = by_email(await listed(c, acct, lead_id, "leads"))
    assert set(made) == {lead_a, lead_b}
    assert (made[lead_a]["title"], made[lead_a]["company_name"], made[lead_a]["source"], made[lead_a]["status"]) == (
        "Demo request", "Park Ltd", "website", "new")


# --- refusals -----------------------------------------------------------------------------------------


async def test_bad_requests_are_refused_before_anything_is_queued(committed_client, settings):
    c = committed_client
    incoming = settings.data_dir.resolve() / "imports" / "incoming"
    before = set(incoming.iterdir()) if incoming.exists() else set()
    acct = await signup(c)
    data = csv_text(["Email,First Name", f"{unique_email('x')},X"]).encode()

    r = await upload(c, acct, "a.csv", data, mapping={"E-mail address": "email"}, expect=422)
    assert r.json()["errors"][0]["loc"] == ["body", "mapping"] and "E-mail address" in r.text
    r = await upload(c, acct, "a.csv", data, mapping={"Email": "favourite_colour"}, expect=422)
    assert r.json()["errors"][0]["loc"] == ["body", "mapping"] and "favourite_colour" in r.text
    r = await upload(c, acct, "a.csv", data, mapping="{Email: email", expect=422)
    assert r.json()["errors"][0]["loc"] == ["body", "mapping"]
    r = await upload(c, acct, "a.csv", data, mapping='["email"]', expect=422)
    assert r.json()["errors"][0]["loc"] == ["body", "mapping"]
    for empty in (b"", b"\r\n\r\n", codecs.BOM_UTF8 + b",,\r\n"):
        r = await upload(c, acct, "empty.csv", empty, expect=422)
        assert r.json()["errors"][0]["loc"] == ["body", "file"]
    r = await upload(c, acct, "a.csv", data, mapping={"Email": "external_id"}, dedupe_by="external_id", expect=422)
    assert r.json()["errors"][0]["loc"] == ["body", "external_source"]
    r = await upload(c, acct, "a.csv", data, mapping={"Email": "email"}, dedupe_by="external_id",
                     external_source="crm", expect=422)  # nothing mapped to external_id
    r = await upload(c, acct, "a.csv", data, headers={}, expect=401)
    r = await c.post("/v1/imports/preview", files={"file": ("a.csv", data)}, data={"object": "contacts"})
    assert r.status_code == 401
    viewer = await acct.invite("viewer")
    await upload(c, viewer, "a.csv", data, expect=403)
    r = await c.post("/v1/imports/preview", headers=viewer.headers, files={"file": ("a.csv", data)},
                     data={"object": "contacts"})
    assert r.status_code == 403

    r = await c.get("/v1/imports", headers=acct.headers)
    assert r.status_code == 200 and r.json()["data"] == []
    r = await c.get("/v1/imports", headers=viewer.headers)  # viewers may read
    assert r.status_code == 200
    assert set(incoming.iterdir()) == before  # refused uploads leave no file behind


async def test_another_orgs_import_is_not_found(committed_client, settings):
    c = committed_client
    acct, other = await signup(c), await signup(c, "Other")
    data = csv_text(["Email,First Name", "nope@,X"]).encode()
    body = await run_import(c, acct, settings, "a.csv", data, mapping={"Email": "email", "First Name": "first_name"})
    assert counts(body) == {"total": 1, "processed": 1, "created": 0, "updated": 0, "skipped": 0, "failed": 1}
    assert len(await error_rows(c, acct, body["id"])) == 1
    for method, path in (("GET", ""), ("GET", "/errors.csv"), ("POST", "/cancel")):
        r = await c.request(method, f"/v1/imports/{body['id']}{path}", headers=other.headers)
        assert r.status_code == 404, (path, r.text)
    r = await c.get(f"/v1/imports/{body['id']}", headers=acct.headers)
    assert r.json()["status"] == "succeeded"
    r = await c.get(f"/v1/imports/{uuid.uuid4()}", headers=acct.headers)
    assert r.status_code == 404
    r = await c.get("/v1/imports", headers=other.headers)
    assert r.json()["data"] == []


# --- cancel, events, notifications --------------------------------------------------------------------


async def test_cancel_a_queued_import_and_a_later_worker_leaves_it_cancelled(committed_client, settings):
    c = committed_client
    acct = await signup(c)
    email = unique_email("cancel")
    data = csv_text(["Email,First Name", f"{email},Cancelled"]).encode()
    import_id = (await upload(c, acct, "a.csv", data, mapping={"Email": "email", "First Name": "first_name"})
                 ).json()["id"]
    r = await c.post(f"/v1/imports/{import_id}/cancel", headers=acct.headers)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled" and r.json()["finished_at"]
    r = await c.post(f"/v1/imports/{import_id}/cancel", headers=acct.headers)  # again: still cancelled
    assert r.status_code == 200 and r.json()["status"] == "cancelled"

    # a later import, queued behind the cancelled one, shows that the worker got through the queue
    later = unique_email("later")
    later_id = (await upload(c, acct, "b.csv", csv_text(["Email,First Name", f"{later},Later"]).encode(),
                             mapping={"Email": "email", "First Name": "first_name"})).json()["id"]
    async with worker(settings):
        assert (await finished(c, acct, later_id))["status"] == "succeeded"
    r = await c.get(f"/v1/imports/{import_id}", headers=acct.headers)
    assert r.json()["status"] == "cancelled"
    assert (r.json()["processed"], r.json()["created"]) == (0, 0)
    assert await listed(c, acct, import_id) == []
    assert [x["email"] for x in await all_contacts(c, acct)] == [later]


async def test_finished_import_writes_an_event_and_notifies_its_creator(committed_client, settings, database):
    c = committed_client
    acct = await signup(c)
    member = await acct.invite("member")
    data = csv_text(["Email,First Name", f"{unique_email('n')},Nora"]).encode()
    import_id = (await upload(c, member, "a.csv", data, mapping={"Email": "email", "First Name": "first_name"})
                 ).json()["id"]

    async def notified():
        r = await c.get("/v1/me/notifications", headers=member.headers)
        assert r.status_code == 200, r.text
        return [n for n in r.json()["data"] if n["kind"] == "import_finished"]

    async with worker(settings):
        body = await finished(c, member, import_id)
        notes = await eventually(notified)
    assert body["status"] == "succeeded" and body["created_by"] == member.user_id
    assert len(notes) == 1
    assert (notes[0]["object_type"], notes[0]["object_id"], notes[0]["read_at"]) == ("import", import_id, None)
    r = await c.get("/v1/me/notifications", headers=acct.headers)  # the owner did not start it
    assert [n for n in r.json()["data"] if n["kind"] == "import_finished"] == []

    async with database.sessions() as s:
        events = (await s.scalars(select(Event).where(Event.org_id == uuid.UUID(acct.org_id),
                                                      Event.type == "import.finished"))).all()
    assert [(e.object_type, str(e.object_id)) for e in events] == [("import", import_id)]
    assert events[0].data["object"]["status"] == "succeeded"
    assert events[0].data["object"]["created"] == 1


# --- batched writes ------------------------------------------------------------------------------------

async def test_a_batch_writes_every_row_with_its_created_event_in_file_order(committed_client, settings, database):
    c = committed_client
    acct = await signup(c)
    emails = [unique_email(f"b{i}") for i in range(700)]  # more than one batch
    lines = ["Email,First Name"] + [f"{e},Name{i}" for i, e in enumerate(emails)] + [f"{emails[3]},Again"]
    body = await run_import(c, acct, settings, "many.csv", csv_text(lines).encode(), mapping={
        "Email": "email", "First Name": "first_name"}, on_duplicate="update")
    assert counts(body) == {"total": 701, "processed": 701, "created": 700, "updated": 1, "skipped": 0, "failed": 0}
    async with database.sessions() as s:
        events = (await s.scalars(select(Event).where(Event.org_id == uuid.UUID(acct.org_id),
                                                      Event.object_type == "contact").order_by(Event.id))).all()
    created = [e for e in events if e.type == "contact.created"]
    assert [e.data["object"]["email"] for e in created] == emails
    assert all(e.version == 1 and e.data["object"]["version"] == 1 and e.data["object"]["created_at"]
               and e.data["object"]["custom_fields"] == {} for e in created)
    updated = [e for e in events if e.type == "contact.updated"]
    assert [(e.data["object"]["email"], e.data["object"]["first_name"], e.version) for e in updated] == [
        (emails[3], "Again", 2)]
    assert events.index(updated[0]) > events.index(created[3])  # the update follows the create in the feed
    r = await c.get(f"/v1/contacts/{updated[0].object_id}", headers=acct.headers)
    assert (r.json()["email"], r.json()["first_name"], r.json()["version"]) == (emails[3], "Again", 2)


async def test_a_row_the_database_refuses_fails_alone_and_the_batch_is_redone_row_by_row(
        committed_client, settings, database):
    """A constraint the API does not know of (added by a DBA, say) refuses one row: that row is reported in
    errors.csv, every other row of the batch is written once, with one event each."""
    c = committed_client
    acct = await signup(c)
    emails = [unique_email(f"r{i}") for i in range(5)]
    async with database.engine.begin() as conn:
        await conn.exec_driver_sql("ALTER TABLE contacts ADD CONSTRAINT ck_test_no_mallory "
                                   "CHECK (first_name IS DISTINCT FROM 'Mallory') NOT VALID")
    try:
        lines = ["Email,First Name"] + [f"{e},{'Mallory' if i == 2 else f'N{i}'}" for i, e in enumerate(emails)]
        body = await run_import(c, acct, settings, "refused.csv", csv_text(lines).encode(),
                                mapping={"Email": "email", "First Name": "first_name"})
    finally:
        async with database.engine.begin() as conn:
            await conn.exec_driver_sql("ALTER TABLE contacts DROP CONSTRAINT ck_test_no_mallory")
    assert body["status"] == "succeeded"
    assert counts(body) == {"total": 5, "processed": 5, "created": 4, "updated": 0, "skipped": 0, "failed": 1}
    assert await error_rows(c, acct, body["id"]) == [["4", "", "the database refused this row (ck_test_no_mallory)"]]
    assert sorted(x["email"] for x in await listed(c, acct, body["id"])) == sorted(emails[:2] + emails[3:])
    async with database.sessions() as s:
        events = (await s.scalars(select(Event).where(Event.org_id == uuid.UUID(acct.org_id),
                                                      Event.type == "contact.created"))).all()
    assert sorted(e.data["object"]["email"] for e in events) == sorted(emails[:2] + emails[3:])


async def test_a_nul_character_in_a_cell_fails_that_row(committed_client, settings):
    c = committed_client
    acct = await signup(c)
    good, bad = unique_email("g"), unique_email("n")
    data = csv_text(["Email,First Name", f"{good},Ok", f"{bad},Bad\x00Name"]).encode()
    body = await run_import(c, acct, settings, "nul.csv", data, mapping={"Email": "email", "First Name": "first_name"})
    assert counts(body) == {"total": 2, "processed": 2, "created": 1, "updated": 0, "skipped": 0, "failed": 1}
    [[row, _column, reason]] = await error_rows(c, acct, body["id"])
    assert row == "3" and "NUL" in reason


# --- one batch, many rules (records written by one INSERT per batch, events dumped from what it returned) ----


async def _events_of(database, org_id: str, types: tuple[str, ...]) -> list[Event]:
    async with database.sessions() as s:
        return list((await s.scalars(select(Event).where(Event.org_id == uuid.UUID(org_id), Event.type.in_(types))
                                     .order_by(Event.id))).all())


async def test_one_batch_mixing_creates_updates_repeats_bad_rows_and_custom_fields(committed_client, settings, database):
    """In one batch: creates, an update of a record already in the database, a repeat of a row created earlier in
    the same batch (updated after its create), a repeat of a failed row, bad rows in the middle, custom fields.
    Each record gets one event per write whose payload is the record as the API reads it."""
    c = committed_client
    acct = await signup(c)
    await _seats_field(c, acct)
    known = unique_email("known")
    r = await c.post("/v1/contacts", headers=acct.headers, json={"first_name": "Old", "email": known})
    assert r.status_code == 201, r.text
    old = r.json()
    emails = [unique_email(f"m{i}") for i in range(8)]
    lines = ["Email,First Name,Phone,Seats,Tags,Birthday",
             f'{emails[0]},A,+49 30 1234567,5,"vip, fair;vip",1990-05-17',  # 2: created
             f"{emails[1]},B,,",                      # 3: created
             f"{known.upper()},Known,,7",             # 4: existing -> updated
             f"{emails[2]},C,not-a-phone,1",          # 5: failed (phone)
             f"{emails[0].upper()},A2,,6",            # 6: repeat of line 2 -> updated
             f"{emails[3]},D,,lots",                  # 7: failed (custom field)
             f"{emails[4]},E,+49 30 1234568,12.5",    # 8: created
             f"{emails[2]},C2,,2",                    # 9: repeat of a failed row, same batch -> created
             ",,,",                                   # 10: skipped
             f"{emails[5]},F,+4930 1234567,",         # 11: created (the same phone as line 2: no dedupe on phone)
             f"{emails[6]}@,G,,"]                     # 12: failed (email)
    body = await run_import(c, acct, settings, "mixed.csv", csv_text(lines).encode(), on_duplicate="update",
                            mapping={"Email": "email", "First Name": "first_name", "Phone": "phone",
                                     "Seats": "cf.seats", "Tags": "tags", "Birthday": "birthday"})
    assert counts(body) == {"total": 11, "processed": 11, "created": 5, "updated": 2, "skipped": 1, "failed": 3}
    errors = await error_rows(c, acct, body["id"])
    assert [(row, column) for row, column, _ in errors] == [("5", "Phone"), ("7", "Seats"), ("12", "Email")]

    made = by_email(await listed(c, acct, body["id"]))
    assert set(made) == {emails[0], emails[1], emails[4], emails[2], emails[5]}
    assert (made[emails[0]]["first_name"], made[emails[0]]["phone"], made[emails[0]]["custom_fields"],
            made[emails[0]]["version"]) == ("A2", "+49301234567", {"seats": 6}, 2)
    assert (made[emails[0]]["tags"], made[emails[0]]["birthday"]) == (["vip", "fair"], "1990-05-17")
    assert (made[emails[4]]["phone"], made[emails[4]]["custom_fields"]) == ("+49301234568", {"seats": 12.5})
    assert (made[emails[2]]["first_name"], made[emails[2]]["custom_fields"]) == ("C2", {"seats": 2})
    assert made[emails[1]]["custom_fields"] == {}
    r = await c.get(f"/v1/contacts/{old['id']}", headers=acct.headers)
    assert (r.json()["first_name"], r.json()["custom_fields"], r.json()["version"]) == ("Known", {"seats": 7}, 2)

    events = await _events_of(database, acct.org_id, ("contact.created", "contact.updated"))
    created = [e for e in events if e.type == "contact.created" and str(e.object_id) != old["id"]]
    assert [e.data["object"]["email"] for e in created] == [emails[0], emails[1], emails[4], emails[2], emails[5]]
    for e in created:  # the payload is the record as it was created, as the API reads it
        current = made[e.data["object"]["email"]]
        if current["version"] == 1:
            assert e.data["object"] == current
        else:
            assert (e.data["object"]["tags"], e.data["object"]["birthday"]) == (["vip", "fair"], "1990-05-17")
        assert e.version == e.data["object"]["version"] == 1
        assert e.data["object"]["import_id"] == body["id"]
    updated = [e for e in events if e.type == "contact.updated"]
    assert sorted((str(e.object_id), e.version) for e in updated) == sorted([(old["id"], 2), (made[emails[0]]["id"], 2)])
    first = next(e for e in updated if str(e.object_id) == made[emails[0]]["id"])
    assert first.data["object"] == made[emails[0]]
    assert (first.data["previous"]["first_name"], first.data["previous"]["custom_fields"]) == ("A", {"seats": 5})
    assert events.index(first) > events.index(next(e for e in created if str(e.object_id) == made[emails[0]]["id"]))


async def test_companies_and_leads_in_one_batch_with_custom_fields_read_back_as_their_events(
        committed_client, settings, database):
    c = committed_client
    acct = await signup(c)
    for obj in ("company", "lead"):
        r = await c.post("/v1/custom-fields", headers=acct.headers,
                         json={"object": obj, "key": "tier", "label": "Tier", "type": "number"})
        assert r.status_code == 201, r.text
    tag = uuid.uuid4().hex[:8]
    companies = csv_text(["Company,Website,Tier"] + [f"Co{i} {tag},CO{i}-{tag}.Example,{i}" for i in range(30)]
                         + [f",orphan-{tag}.example,1"]).encode()
    lead_emails = [unique_email(f"l{i}") for i in range(30)]
    leads = csv_text(["Title,Email,Tier"] + [f"Lead {i},{e},{i}" for i, e in enumerate(lead_emails)]
                     + [f"Again,{lead_emails[4].upper()},99"]).encode()
    company_import = await run_import(c, acct, settings, "co.csv", companies, object="companies", dedupe_by="none",
                                      mapping={"Company": "name", "Website": "domain", "Tier": "cf.tier"})
    lead_import = await run_import(c, acct, settings, "leads.csv", leads, object="leads",
                                   mapping={"Title": "title", "Email": "email", "Tier": "cf.tier"})
    assert counts(company_import) == {"total": 31, "processed": 31, "created": 30, "updated": 0, "skipped": 0,
                                      "failed": 1}
    assert counts(lead_import) == {"total": 31, "processed": 31, "created": 30, "updated": 0, "skipped": 1,
                                   "failed": 0}
    for things, kind, import_id in (("companies", "company", company_import["id"]),
                                    ("leads", "lead", lead_import["id"])):
        rows = {x["id"]: x for x in await listed(c, acct, import_id, things)}
        assert len(rows) == 30
        events = await _events_of(database, acct.org_id, (f"{kind}.created",))
        assert len(events) == 30
        for e in events:
            assert e.data["object"] == rows[str(e.object_id)]  # every field, custom fields, nulls, timestamps
    co = {x["name"]: x for x in await listed(c, acct, company_import["id"], "companies")}
    assert (co[f"Co3 {tag}"]["domain"], co[f"Co3 {tag}"]["custom_fields"]) == (f"co3-{tag}.example", {"tier": 3})
