"""Files attached to records: streamed uploads (on disk and into a real S3-compatible server, moto's standalone
one on 127.0.0.1), downloads as safe attachments, the size limit, content types found from the bytes, tenancy and
record visibility, timelines, the changes feed, GDPR export and erasure, and flat memory for a 50 MB upload
through a running `crm serve`."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import text

from app.api.deps import get_session
from app.db import transaction
from app.domain.files.content import content_disposition, safe_filename
from app.domain.files.storage import S3Location
from app.main import create_app
from app.settings import Settings
from tests.conftest import as_sweeper, savepoint_session
from tests.factories import PASSWORD, signup, unique_email
from tests.servers import crm_env, free_port, wait_http
from tests.test_server import output, running, serve_args

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82")
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
BOUNDARY = "crm-test-boundary-7d4e"


def multipart(parts: list[tuple[str, bytes, str | None, str | None]]) -> tuple[bytes, dict[str, str]]:
    """A multipart/form-data body in this order: (name, value, filename, content type) per part; filenames are
    written as given (raw UTF-8, quotes backslash-escaped), as browsers and curl send them."""
    out = b""
    for name, value, filename, ctype in parts:
        disposition = f'form-data; name="{name}"'.encode()
        if filename is not None:
            disposition += b'; filename="' + filename.replace("\\", "\\\\").replace('"', '\\"').encode() + b'"'
        out += f"--{BOUNDARY}\r\n".encode() + b"Content-Disposition: " + disposition + b"\r\n"
        if ctype:
            out += f"Content-Type: {ctype}\r\n".encode()
        out += b"\r\n" + value + b"\r\n"
    out += f"--{BOUNDARY}--\r\n".encode()
    return out, {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


async def upload(client: httpx.AsyncClient, headers: dict[str, str], object_type: str, object_id: str,
                 content: bytes, filename: str = "offer.pdf", declared: str | None = "application/pdf",
                 file_first: bool = False) -> httpx.Response:
    fields = [("object_type", object_type.encode(), None, None), ("object_id", object_id.encode(), None, None)]
    file = [("file", content, filename, declared)]
    body, h = multipart(file + fields if file_first else fields + file)
    return await client.post("/v1/files", headers={**headers, **h}, content=body)


async def _ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json() if r.content else None


async def _record(client, acct, plural: str, body: dict[str, Any]) -> dict[str, Any]:
    return await _ok(await client.post(f"/v1/{plural}", headers=acct.headers, json=body), 201)


def _stored(settings: Settings, org_id: str) -> list[Path]:
    folder = settings.data_dir / "files" / org_id
    return sorted(folder.iterdir()) if folder.exists() else []


@asynccontextmanager
async def app_client(settings: Settings, app_database, redis, connection) -> AsyncIterator[httpx.AsyncClient]:
    """Like the `client` fixture (inside the test's transaction), with other settings."""
    application = create_app(settings, db=app_database, redis=redis)

    async def test_session():
        async with savepoint_session(connection) as s, transaction(s):
            yield s

    application.dependency_overrides[get_session] = test_session
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://crm.test") as c:
        yield c


# --- a real S3-compatible server --------------------------------------------------------------------------


class S3Server:
    def __init__(self) -> None:
        import boto3
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.s3 = boto3.client("s3", endpoint_url=self.endpoint, region_name="eu-central-1",
                               aws_access_key_id="crm-test", aws_secret_access_key="crm-test-secret")
        self.bucket = "crm-files"
        self.s3.create_bucket(Bucket=self.bucket, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
        self.url = (f"s3://crm-test:crm-test-secret@{self.bucket}/uploads?endpoint={self.endpoint}"
                    f"&region=eu-central-1")

    def keys(self, prefix: str = "") -> list[str]:
        answer = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=f"uploads/{prefix}")
        return [o["Key"] for o in answer.get("Contents", [])]

    def unfinished_uploads(self) -> list[str]:
        return [u["Key"] for u in self.s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])]

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    server = S3Server()
    yield server
    server.stop()


@pytest.fixture
async def s3_client(settings, app_database, redis, connection, s3) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(settings.model_copy(update={"files_url": s3.url}), app_database, redis, connection) as c:
        yield c


# --- round trips ------------------------------------------------------------------------------------------


async def _round_trip(client: httpx.AsyncClient, content: bytes) -> tuple[Any, dict[str, Any]]:
    acct = await signup(client)
    deal = await _record(client, acct, "deals", {"title": "Solar roof"})
    made = await _ok(await upload(client, acct.headers, "deal", deal["id"], content, "angebot-ü.pdf"), 201)
    assert made["sha256"] == hashlib.sha256(content).hexdigest() and made["size"] == len(content)
    assert made["content_type"] == "application/pdf" and made["filename"] == "angebot-ü.pdf"
    assert (made["object_type"], made["object_id"], made["created_by"]) == ("deal", deal["id"], acct.user_id)
    assert set(made) >= {"id", "filename", "content_type", "size", "sha256", "object_type", "object_id",
                         "created_at"}
    got = await client.get(f"/v1/files/{made['id']}", headers=acct.headers)
    assert got.json() == made and got.headers["etag"] == '"1"'
    r = await client.get(f"/v1/files/{made['id']}/content", headers=acct.headers)
    assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == made["sha256"]
    assert r.headers["content-type"] == "application/pdf" and r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-disposition"].startswith("attachment;")
    assert "filename*=UTF-8''angebot-%C3%BC.pdf" in r.headers["content-disposition"]
    listed = (await client.get("/v1/files", headers=acct.headers,
                               params={"object_type": "deal", "object_id": deal["id"]})).json()
    assert listed == {"data": [made], "next_cursor": None}
    return acct, made


async def test_upload_and_download_round_trip_on_disk(client, settings):
    content = PDF + os.urandom(300_000)
    acct, made = await _round_trip(client, content)
    [path] = _stored(settings, acct.org_id)
    assert path.name == made["id"] and path.read_bytes() == content


async def test_upload_and_download_round_trip_in_an_s3_bucket(s3_client, s3):
    content = PDF + os.urandom(12 * 1024 * 1024)  # more than two 5 MiB parts: a multipart upload
    acct, made = await _round_trip(s3_client, content)
    assert s3.keys(acct.org_id) == [f"uploads/{acct.org_id}/{made['id']}"]
    stored = s3.s3.get_object(Bucket=s3.bucket, Key=f"uploads/{acct.org_id}/{made['id']}")["Body"].read()
    assert hashlib.sha256(stored).hexdigest() == made["sha256"]
    assert s3.unfinished_uploads() == []


async def test_fields_after_the_file_are_read_too(client, settings):
    acct = await signup(client)
    contact = await _record(client, acct, "contacts", {"first_name": "Ana"})
    made = await _ok(await upload(client, acct.headers, "contact", contact["id"], PDF, file_first=True), 201)
    assert made["object_id"] == contact["id"]
    # the record is checked once the body is read: a wrong one leaves nothing behind
    other = await signup(client, "Other Org")
    other_contact = await _record(client, other, "contacts", {"first_name": "Bo"})
    r = await upload(client, acct.headers, "contact", other_contact["id"], PDF, file_first=True)
    assert r.status_code == 404
    assert [p.name for p in _stored(settings, acct.org_id)] == [made["id"]]


async def test_lists_are_keyset_pages_with_filters(client):
    acct = await signup(client)
    contact = await _record(client, acct, "contacts", {"first_name": "Ana"})
    deal = await _record(client, acct, "deals", {"title": "D"})
    made = [await _ok(await upload(client, acct.headers, "contact", contact["id"], PDF, f"{i}.pdf"), 201)
            for i in range(3)]
    on_deal = await _ok(await upload(client, acct.headers, "deal", deal["id"], PDF), 201)
    first = await _ok(await client.get("/v1/files", headers=acct.headers, params={
        "object_type": "contact", "object_id": contact["id"], "limit": 2}))
    assert [f["id"] for f in first["data"]] == [made[2]["id"], made[1]["id"]] and first["next_cursor"]
    rest = await _ok(await client.get("/v1/files", headers=acct.headers, params={
        "object_type": "contact", "object_id": contact["id"], "limit": 2, "cursor": first["next_cursor"]}))
    assert [f["id"] for f in rest["data"]] == [made[0]["id"]] and rest["next_cursor"] is None
    deals = await _ok(await client.get("/v1/files", headers=acct.headers, params={"object_type": "deal"}))
    assert [f["id"] for f in deals["data"]] == [on_deal["id"]]
    both = await _ok(await client.get("/v1/files", headers=acct.headers, params={
        "ids": f"{made[0]['id']},{on_deal['id']}", "sort": "created_at"}))
    assert [f["id"] for f in both["data"]] == [made[0]["id"], on_deal["id"]]


# --- the limit --------------------------------------------------------------------------------------------


async def test_a_file_over_the_limit_is_refused_and_nothing_is_kept(settings, app_database, redis, connection):
    small = settings.model_copy(update={"max_file_mb": 1})
    async with app_client(small, app_database, redis, connection) as client:
        acct = await signup(client)
        deal = await _record(client, acct, "deals", {"title": "D"})
        r = await upload(client, acct.headers, "deal", deal["id"], PDF + os.urandom((1 << 20) - len(PDF) + 1))
        assert r.status_code == 413 and r.headers["content-type"] == "application/problem+json"
        assert "CRM_MAX_FILE_MB" in r.json()["detail"]
        # a declared body far over the limit is refused before it is read
        big = await client.post("/v1/files", headers={**acct.headers, "Content-Type": f"multipart/form-data; "
                                                      f"boundary={BOUNDARY}", "Content-Length": str(5 << 20)},
                                content=b"")
        assert big.status_code == 413
        assert _stored(small, acct.org_id) == []
        assert (await client.get("/v1/files", headers=acct.headers)).json()["data"] == []
        exactly = await upload(client, acct.headers, "deal", deal["id"], PDF + os.urandom((1 << 20) - len(PDF)))
        assert exactly.status_code == 201 and exactly.json()["size"] == 1 << 20


async def test_over_the_limit_in_s3_leaves_no_object_and_no_open_upload(settings, app_database, redis, connection,
                                                                        s3):
    small = settings.model_copy(update={"max_file_mb": 6, "files_url": s3.url})
    async with app_client(small, app_database, redis, connection) as client:
        acct = await signup(client)
        deal = await _record(client, acct, "deals", {"title": "D"})
        r = await upload(client, acct.headers, "deal", deal["id"], os.urandom(7 << 20))  # after one part was sent
        assert r.status_code == 413
        assert s3.keys(acct.org_id) == [] and s3.unfinished_uploads() == []


# --- what the content is ----------------------------------------------------------------------------------


async def test_the_content_type_comes_from_the_bytes_and_pages_are_served_as_attachments(client):
    acct = await signup(client)
    contact = await _record(client, acct, "contacts", {"first_name": "Ana"})
    png = await _ok(await upload(client, acct.headers, "contact", contact["id"], PNG, "photo.html", "text/html"), 201)
    assert png["content_type"] == "image/png"
    page = await _ok(await upload(client, acct.headers, "contact", contact["id"], HTML, "page.txt", "text/plain"), 201)
    assert page["content_type"] == "text/html"
    r = await client.get(f"/v1/files/{page['id']}/content", headers=acct.headers)
    assert r.status_code == 200 and r.content == HTML
    assert r.headers["content-disposition"].startswith("attachment; ")
    assert r.headers["x-content-type-options"] == "nosniff" and "sandbox" in r.headers["content-security-policy"]
    # text no signature knows keeps a declared text type; a declared type never makes bytes text
    csv = await _ok(await upload(client, acct.headers, "contact", contact["id"], b"a;b\n1;2\n", "x.csv", "text/csv"), 201)
    assert csv["content_type"] == "text/csv"
    plain = await _ok(await upload(client, acct.headers, "contact", contact["id"], b"notes", "n", "image/png"), 201)
    assert plain["content_type"] == "text/plain"
    blob = await _ok(await upload(client, acct.headers, "contact", contact["id"], b"\x00\x01\x02\xff" * 10, "b",
                                  "text/html"), 201)
    assert blob["content_type"] == "application/octet-stream"
    empty = await _ok(await upload(client, acct.headers, "contact", contact["id"], b"", "empty.txt", None), 201)
    assert (empty["size"], empty["sha256"]) == (0, hashlib.sha256(b"").hexdigest())


async def test_a_hostile_filename_is_kept_harmless(client):
    acct = await signup(client)
    contact = await _record(client, acct, "contacts", {"first_name": "Ana"})
    hostile = '..\\..\\etc/pass"wd; filename=evil.exe ü\u202e.html'
    made = await _ok(await upload(client, acct.headers, "contact", contact["id"], PDF, hostile), 201)
    assert made["filename"] == 'pass"wd; filename=evil.exe ü\u202e.html'
    header = (await client.get(f"/v1/files/{made['id']}/content", headers=acct.headers)).headers["content-disposition"]
    assert "\r" not in header and "\n" not in header and header.isascii()
    m = re.fullmatch(r'attachment; filename="([^"\\]*)"; filename\*=UTF-8\'\'([A-Za-z0-9%._~-]+)', header)
    assert m is not None, header
    assert "/" not in m.group(1) and ";" not in m.group(1) and "evil" in m.group(1)
    assert unquote(m.group(2)) == made["filename"]
    dots = await _ok(await upload(client, acct.headers, "contact", contact["id"], PDF, "../.."), 201)
    assert dots["filename"] == "file"


@given(st.text(max_size=400))
@hypothesis_settings(max_examples=300, deadline=None)
def test_any_filename_becomes_a_safe_name_and_a_well_formed_header(raw):
    name = safe_filename(raw)
    assert name and len(name) <= 255 and "/" not in name and "\\" not in name
    assert not re.search(r"[\x00-\x1f\x7f-\x9f]", name) and name == name.strip()
    header = content_disposition(name)
    m = re.fullmatch(r'attachment; filename="([^"\\]*)"; filename\*=UTF-8\'\'([A-Za-z0-9%._~-]+)', header)
    assert m is not None and header.isascii(), header
    assert unquote(m.group(2), errors="strict") == name


def test_the_files_url_is_read_whole():
    where = S3Location.parse("s3://AK%2F1:s%40cret@My-Bucket/a/b/?endpoint=http://127.0.0.1:9000&region=eu-west-1")
    assert (where.bucket, where.prefix, where.endpoint, where.region) == ("My-Bucket", "a/b", "http://127.0.0.1:9000",
                                                                          "eu-west-1")
    assert (where.access_key, where.secret_key, where.key("o/f")) == ("AK/1", "s@cret", "a/b/o/f")
    bare = S3Location.parse("s3://bucket")
    assert (bare.prefix, bare.endpoint, bare.region, bare.access_key, bare.key("o/f")) == ("", None, "us-east-1",
                                                                                           None, "o/f")
    for bad in ("http://bucket/x", "s3:///x"):
        with pytest.raises(ValueError):
            Settings(env="test", files_url=bad)
    with pytest.raises(ValueError):
        S3Location.parse("s3://bucket?endpoint=http://x&acl=public")


# --- who may read ---------------------------------------------------------------------------------------


async def test_another_orgs_record_or_file_is_404(client, settings):
    acct, other = await signup(client), await signup(client, "Other Org")
    theirs = await _record(client, other, "deals", {"title": "Theirs"})
    r = await upload(client, acct.headers, "deal", theirs["id"], PDF)
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert _stored(settings, acct.org_id) == [] and _stored(settings, other.org_id) == []
    made = await _ok(await upload(client, other.headers, "deal", theirs["id"], PDF), 201)
    for path in (f"/v1/files/{made['id']}", f"/v1/files/{made['id']}/content"):
        assert (await client.get(path, headers=acct.headers)).status_code == 404
    assert (await client.delete(f"/v1/files/{made['id']}", headers=acct.headers)).status_code == 404
    r = await client.get("/v1/files", headers=acct.headers, params={"object_type": "deal", "object_id": theirs["id"]})
    assert r.status_code == 404
    assert (await client.get("/v1/files", headers=acct.headers)).json()["data"] == []
    assert (await client.get(f"/v1/files/{made['id']}")).status_code == 401


async def test_a_file_follows_its_records_visibility_and_deletion(client):
    acct = await signup(client)
    member = await acct.invite("member")
    assert (await client.patch("/v1/org", headers=acct.headers, json={"record_visibility": "own"})).status_code == 200
    deal = await _record(client, acct, "deals", {"title": "The owner's"})
    # the member cannot see the deal: neither attach to it nor read its files
    assert (await upload(client, member.headers, "deal", deal["id"], PDF)).status_code == 404
    made = await _ok(await upload(client, acct.headers, "deal", deal["id"], PDF), 201)
    assert (await client.get(f"/v1/files/{made['id']}", headers=member.headers)).status_code == 404
    assert (await client.get("/v1/files", headers=member.headers)).json()["data"] == []
    viewer = await acct.invite("viewer")
    assert (await upload(client, viewer.headers, "deal", deal["id"], PDF)).status_code == 403
    key = await acct.api_key(["files:read"])  # files, but not deals: the deal's files stay out of reach
    assert (await client.get(f"/v1/files/{made['id']}", headers=key)).status_code == 404
    # a deleted record's files go with it, and come back with it
    assert (await client.delete(f"/v1/deals/{deal['id']}", headers=acct.headers)).status_code == 204
    assert (await client.get(f"/v1/files/{made['id']}", headers=acct.headers)).status_code == 404
    assert (await client.post(f"/v1/deals/{deal['id']}/restore", headers=acct.headers)).status_code == 200
    assert (await client.get(f"/v1/files/{made['id']}", headers=acct.headers)).status_code == 200


async def test_delete_restore_and_the_changes_feed(api, fast_settings):
    acct = await signup(api)
    lead = await _record(api, acct, "leads", {"first_name": "Jo"})
    made = await _ok(await upload(api, acct.headers, "lead", lead["id"], PDF), 201)
    stale = await api.delete(f"/v1/files/{made['id']}", headers={**acct.headers, "If-Match": '"7"'})
    assert stale.status_code == 412
    assert (await api.delete(f"/v1/files/{made['id']}", headers=acct.headers)).status_code == 204
    assert (await api.get(f"/v1/files/{made['id']}", headers=acct.headers)).status_code == 404
    assert (await api.get(f"/v1/files/{made['id']}/content", headers=acct.headers)).status_code == 404
    tomb = await _ok(await api.get(f"/v1/files/{made['id']}", headers=acct.headers,
                                      params={"include_deleted": "true"}))
    assert tomb["deleted_at"] is not None
    assert len(_stored(fast_settings, acct.org_id)) == 1  # kept for the restore window
    back = await _ok(await api.post(f"/v1/files/{made['id']}/restore", headers=acct.headers))
    assert back["deleted_at"] is None and back["version"] == 3
    assert (await api.get(f"/v1/files/{made['id']}/content", headers=acct.headers)).content == PDF
    feed = (await api.get("/v1/changes", headers=acct.headers, params={"types": "file"})).json()["data"]
    assert [(e["type"], e["version"]) for e in feed] == [("file.created", 1), ("file.deleted", 2),
                                                         ("file.restored", 3)]
    assert feed[0]["data"]["object"]["sha256"] == made["sha256"]


async def test_deleted_files_are_purged_with_their_bytes_after_the_restore_window(api, fast_settings, database):
    from app.workers.maintenance import purge_deleted_files

    acct = await signup(api)
    contact = await _record(api, acct, "contacts", {"first_name": "Ana"})
    old = await _ok(await upload(api, acct.headers, "contact", contact["id"], PDF), 201)
    recent = await _ok(await upload(api, acct.headers, "contact", contact["id"], PNG, "p.png"), 201)
    for made in (old, recent):
        assert (await api.delete(f"/v1/files/{made['id']}", headers=acct.headers)).status_code == 204
    async with database.across_orgs() as s:
        await s.execute(text("UPDATE files SET deleted_at = :at WHERE id = :id"),
                        {"at": datetime.now(UTC) - timedelta(days=31), "id": old["id"]})
    assert await purge_deleted_files({"db": database, "settings": fast_settings}) >= 1
    assert [p.name for p in _stored(fast_settings, acct.org_id)] == [recent["id"]]
    r = await api.get(f"/v1/files/{old['id']}", headers=acct.headers, params={"include_deleted": "true"})
    assert r.status_code == 404


# --- timelines and GDPR -------------------------------------------------------------------------------------


async def test_a_file_is_on_its_records_timeline(client):
    acct = await signup(client)
    deal = await _record(client, acct, "deals", {"title": "Solar roof"})
    made = await _ok(await upload(client, acct.headers, "deal", deal["id"], PDF, "offer.pdf"), 201)
    timeline = (await client.get(f"/v1/deals/{deal['id']}/timeline", headers=acct.headers)).json()["data"]
    [entry] = [e for e in timeline if e["kind"] == "file"]
    assert entry["object_type"] == "file" and entry["object_id"] == made["id"] and entry["data"] == made
    assert entry["actor"] == {"type": "user", "id": acct.user_id} and entry["summary"].startswith("File offer.pdf")
    narrow = await acct.api_key(["deals:read"])  # no files:read: left out, not refused
    r = await client.get(f"/v1/deals/{deal['id']}/timeline", headers=narrow)
    assert r.status_code == 200 and not [e for e in r.json()["data"] if e["kind"] == "file"]
    assert (await client.delete(f"/v1/files/{made['id']}", headers=acct.headers)).status_code == 204
    timeline = (await client.get(f"/v1/deals/{deal['id']}/timeline", headers=acct.headers)).json()["data"]
    assert not [e for e in timeline if e["kind"] == "file"]


async def test_gdpr_export_lists_the_files_and_erasure_removes_rows_and_bytes(client, settings, session):
    acct = await signup(client)
    contact = await _record(client, acct, "contacts", {"first_name": "Anna", "last_name": "Schmidt"})
    deal = await _record(client, acct, "deals", {"title": "Kept", "contact_id": contact["id"]})
    passport = await _ok(await upload(client, acct.headers, "contact", contact["id"], PNG, "anna-schmidt-passport.png"),
                         201)
    offer = await _ok(await upload(client, acct.headers, "deal", deal["id"], PDF), 201)
    export = await _ok(await client.get(f"/v1/contacts/{contact['id']}/export", headers=acct.headers))
    assert export["files"] == [passport]
    assert ("file.created", passport["id"]) in {(e["type"], e["object_id"]) for e in export["events"]}

    r = await _ok(await client.post(f"/v1/contacts/{contact['id']}/erase", headers=acct.headers), 202)
    assert r["counts"]["files"] == 1
    assert [p.name for p in _stored(settings, acct.org_id)] == [offer["id"]]  # the deal's file is the org's
    r = await client.get(f"/v1/files/{passport['id']}", headers=acct.headers, params={"include_deleted": "true"})
    assert r.status_code == 404
    async with as_sweeper(session):
        events = (await session.execute(text("SELECT type, data::text FROM events WHERE org_id = :org AND "
                                             "object_type = 'file'"), {"org": acct.org_id})).all()
    assert {t for t, _ in events} == {"file.created"} and len(events) == 2
    assert not [d for _, d in events if "anna-schmidt" in d.lower()]  # the name is cleared from its events


async def test_erasure_removes_the_bytes_from_the_bucket(s3_client, s3):
    acct = await signup(s3_client)
    contact = await _record(s3_client, acct, "contacts", {"first_name": "Anna"})
    made = await _ok(await upload(s3_client, acct.headers, "contact", contact["id"], PDF), 201)
    assert s3.keys(acct.org_id) == [f"uploads/{acct.org_id}/{made['id']}"]
    await _ok(await s3_client.post(f"/v1/contacts/{contact['id']}/erase", headers=acct.headers), 202)
    assert s3.keys(acct.org_id) == []


# --- bad input -----------------------------------------------------------------------------------------------


async def test_bad_input_is_422_naming_the_field(client, settings):
    acct = await signup(client)
    contact = await _record(client, acct, "contacts", {"first_name": "Ana"})
    h = acct.headers
    cases = [
        ([("object_type", b"contact", None, None), ("file", PDF, "a.pdf", None)], ["body", "object_id"]),
        ([("object_id", contact["id"].encode(), None, None), ("file", PDF, "a.pdf", None)], ["body", "object_type"]),
        ([("object_type", b"widget", None, None), ("object_id", contact["id"].encode(), None, None),
          ("file", PDF, "a.pdf", None)], ["body", "object_type"]),
        ([("object_type", b"contact", None, None), ("object_id", b"not-a-uuid", None, None),
          ("file", PDF, "a.pdf", None)], ["body", "object_id"]),
        ([("object_type", b"contact", None, None), ("object_id", contact["id"].encode(), None, None)], ["body", "file"]),
        ([("object_type", b"contact", None, None), ("object_id", contact["id"].encode(), None, None),
          ("colour", b"red", None, None), ("file", PDF, "a.pdf", None)], ["body", "colour"]),
        ([("file", PDF, "a.pdf", None), ("object_type", b"contact", None, None),
          ("object_id", b"0000", None, None)], ["body", "object_id"]),
        ([("object_type", b"contact", None, None), ("object_id", contact["id"].encode(), None, None),
          ("file", PDF, "a.pdf", None), ("file", PDF, "b.pdf", None)], ["body", "file"]),
    ]
    for parts, loc in cases:
        body, mh = multipart(parts)
        r = await client.post("/v1/files", headers={**h, **mh}, content=body)
        assert r.status_code == 422, (loc, r.text)
        assert r.json()["errors"][0]["loc"] == loc, r.text
    r = await client.post("/v1/files", headers=h, json={"object_type": "contact", "object_id": contact["id"]})
    assert r.status_code == 422
    body, mh = multipart([("object_type", b"contact", None, None)])
    r = await client.post("/v1/files", headers={**h, **mh}, content=body[:-20])  # cut short
    assert r.status_code == 422
    assert _stored(settings, acct.org_id) == []
    for params in ({"object_type": "widget"}, {"object_id": contact["id"]}, {"object_type": "contact", "x": "1"}):
        assert (await client.get("/v1/files", headers=h, params=params)).status_code == 422, params
    assert (await client.get("/v1/files/not-a-uuid", headers=h)).status_code == 422


# --- memory stays flat ----------------------------------------------------------------------------------------


def _peak_rss(pid: int) -> int:
    """The process's resident-set high-water mark (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def _streamed_upload(http: httpx.Client, token: str, contact_id: str, size: int) -> tuple[httpx.Response, str]:
    """Send `size` random bytes as a file, generated as they are sent (the client holds no copy either)."""
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"object_type\"\r\n\r\ncontact\r\n"
            f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"object_id\"\r\n\r\n{contact_id}\r\n"
            f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    digest = hashlib.sha256()

    def body() -> Iterator[bytes]:
        yield head
        left = size
        while left:
            chunk = os.urandom(min(256 * 1024, left))
            digest.update(chunk)
            left -= len(chunk)
            yield chunk
        yield tail

    r = http.post("/v1/files", content=body(), headers={
        "Authorization": f"Bearer {token}", "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        "Content-Length": str(len(head) + size + len(tail))})
    return r, digest.hexdigest()


def test_a_50_mb_upload_keeps_the_servers_memory_flat(database_url, redis_server, tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = crm_env(database_url, redis_server.url, tmp_path, CRM_MAX_FILE_MB="64")
    with running(serve_args(port), env, tmp_path) as proc, httpx.Client(base_url=base, timeout=120) as http:
        wait_http(f"{base}/healthz", proc)
        email = unique_email("files")
        r = http.post("/v1/auth/signup", json={"org_name": "Big Files", "email": email, "password": PASSWORD,
                                               "name": "Bea"})
        assert r.status_code == 201, r.text
        token = r.json()["access_token"]
        contact = http.post("/v1/contacts", headers={"Authorization": f"Bearer {token}"}, json={"first_name": "Ann"})
        assert contact.status_code == 201, contact.text
        warm, _ = _streamed_upload(http, token, contact.json()["id"], 6 << 20)  # every code path loaded once
        assert warm.status_code == 201, f"{warm.text}\n{output(tmp_path)}"
        before = _peak_rss(proc.pid)
        r, sha = _streamed_upload(http, token, contact.json()["id"], 50 << 20)
        grown = _peak_rss(proc.pid) - before
        assert r.status_code == 201, f"{r.text}\n{output(tmp_path)}"
        assert r.json()["size"] == 50 << 20 and r.json()["sha256"] == sha
        assert grown < 20 << 20, f"the server's peak memory grew by {grown >> 20} MiB for a 50 MiB upload"
        # and downloading streams too
        digest = hashlib.sha256()
        with http.stream("GET", f"/v1/files/{r.json()['id']}/content",
                         headers={"Authorization": f"Bearer {token}"}) as download:
            assert download.status_code == 200
            for chunk in download.iter_bytes():
                digest.update(chunk)
        assert digest.hexdigest() == sha
        assert _peak_rss(proc.pid) - before < 20 << 20
