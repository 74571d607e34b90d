"""`crm seed-bench`: a large, skewed dataset written with COPY (minutes, not hours).

One big organisation (1,000,000 deals across 3 pipelines, 300,000 contacts, 50,000 companies,
2,000,000 activities, 200,000 leads, 20 users, custom fields, stage history and the matching events) and
200 small ones, all scaled by `--scale`. A few owners hold most deals and a few contacts have thousands of
activities, as in real teams.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson

from app.db import Database
from app.demo import create_org_with_key
from app.domain.auth.principal import Principal
from app.domain.custom_fields import service as custom_fields
from app.domain.custom_fields.schemas import CustomFieldCreate
from app.domain.pipelines import service as pipelines
from app.domain.pipelines.schemas import PipelineCreate, StageCreate
from app.ids import new_id
from app.settings import Settings

CHUNK = 20_000
FULL = {"deals": 1_000_000, "contacts": 300_000, "companies": 50_000, "activities": 2_000_000, "leads": 200_000}


def _skewed(rng: random.Random, items: list[Any]) -> Any:
    """Zipf-like: the first items are picked far more often."""
    return items[min(len(items) - 1, int(rng.paretovariate(1.2)) - 1)]


def _js(value: Any) -> str:
    return orjson.dumps(value).decode()


async def _copy(db: Database, table: str, columns: list[str], rows: Iterator[tuple]) -> int:
    total = 0
    async with db.engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        batch: list[tuple] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= CHUNK:
                await raw.copy_records_to_table(table, records=batch, columns=columns)
                total += len(batch)
                batch = []
        if batch:
            await raw.copy_records_to_table(table, records=batch, columns=columns)
            total += len(batch)
        await conn.commit()
    return total


async def _org(db: Database, settings: Settings, name: str, users: int, rng: random.Random) -> dict[str, Any]:
    org_id, owner_id, key = await create_org_with_key(db, settings, name, f"owner-{new_id().hex[:12]}@example.com",
                                                      "Owner", None, "bench")
    org, owner = UUID(org_id), UUID(owner_id)
    user_ids = [owner]
    async with db.sessions.begin() as session:
        from app.domain.auth import users as user_service
        from app.domain.auth.models import Role

        for i in range(users - 1):
            user = await user_service.create(session, settings, org, email=f"rep{i}-{new_id().hex[:12]}@example.com",
                                             name=f"Rep {i}", role=Role.member, password=None)
            user_ids.append(user.id)
        who = Principal.for_user(org, owner, "owner")
        stages = {}
        pipes = [await pipelines.default_pipeline(session, org)]
        for extra in ("Renewals", "Partners")[: 2 if users > 1 else 0]:
            pipes.append(await pipelines.create(session, who, PipelineCreate(name=extra, stages=[
                StageCreate(name="New", probability=20), StageCreate(name="Offer", probability=60),
                StageCreate(name="Won", probability=100, kind="won"),
                StageCreate(name="Lost", probability=0, kind="lost")])))
        for p in pipes:
            stages[p.id] = [(s.id, s.kind, s.forecast_category) for s in p.stages]
        if users > 1:
            await custom_fields.create(session, who, CustomFieldCreate(
                object="deal", key="tier", label="Tier", type="select", options=["gold", "silver", "bronze"]))
            await custom_fields.create(session, who, CustomFieldCreate(object="contact", key="score", label="Score",
                                                                       type="number"))
    return {"org": org, "key": key, "users": user_ids, "pipelines": stages}


async def seed(db: Database, settings: Settings, scale: float = 1.0, small_orgs: int = 200,
               seed_value: int = 7) -> dict[str, Any]:
    rng = random.Random(seed_value)
    started = time.perf_counter()
    n = {k: max(1, int(v * scale)) for k, v in FULL.items()}
    big = await _org(db, settings, "Bench Big", 20, rng)
    counts = await _fill(db, big, n, rng)
    for i in range(small_orgs):
        small = await _org(db, settings, f"Bench Small {i}", 1, rng)
        await _fill(db, small, {"deals": 50, "contacts": 50, "companies": 10, "activities": 100, "leads": 20}, rng)
    return {"org_id": str(big["org"]), "api_key": big["key"], "rows": counts, "small_orgs": small_orgs,
            "seconds": round(time.perf_counter() - started, 1)}


async def _fill(db: Database, org: dict[str, Any], n: dict[str, int], rng: random.Random) -> dict[str, int]:
    org_id, users = org["org"], org["users"]
    now = datetime.now(UTC)
    actor = _js({"type": "system", "id": None})
    company_ids = [new_id() for _ in range(n["companies"])]
    contact_ids = [new_id() for _ in range(n["contacts"])]
    counts: dict[str, int] = {}

    def at(i: int, total: int) -> datetime:  # spread creation over two years, in id order
        return now - timedelta(days=730) + timedelta(seconds=int(730 * 86400 * i / max(total, 1)))

    counts["companies"] = await _copy(db, "companies", [
        "org_id", "id", "owner_id", "name", "domain", "custom_fields", "external_ids", "created_at", "updated_at",
        "version"], ((org_id, cid, _skewed(rng, users), f"Company {i}", f"company{i}.example.com", "{}", "[]",
                      at(i, n["companies"]), at(i, n["companies"]), 1) for i, cid in enumerate(company_ids)))
    counts["contacts"] = await _copy(db, "contacts", [
        "org_id", "id", "owner_id", "first_name", "last_name", "email", "phone", "company_id", "tags", "source",
        "custom_fields", "external_ids", "created_at", "updated_at", "version"],
        ((org_id, cid, _skewed(rng, users), f"First{i % 997}", f"Last{i}", f"person{i}.{org_id.hex[:6]}@example.com",
          f"+4930{1000000 + i}", company_ids[i % len(company_ids)] if i % 3 == 0 else None,
          ["vip"] if i % 10 == 0 else [], ("web_form", "import", "referral", "api")[i % 4],
          _js({"score": i % 100}) if len(users) > 1 else "{}", "[]", at(i, n["contacts"]), at(i, n["contacts"]), 1)
         for i, cid in enumerate(contact_ids)))
    history: list[tuple] = []
    deal_ids: list[UUID] = []
    pipes = list(org["pipelines"].items())

    def deals() -> Iterator[tuple]:
        for i in range(n["deals"]):
            pipeline_id, stages = pipes[0] if i % 10 < 8 else pipes[i % len(pipes)]
            stage_id, kind, category = stages[rng.randrange(len(stages))]
            created = at(i, n["deals"])
            entered = created + timedelta(days=rng.randrange(1, 30))
            did = new_id()
            deal_ids.append(did)
            history.append((org_id, new_id(), did, None, stages[0][0], created, actor, None))
            if stage_id != stages[0][0]:
                history.append((org_id, new_id(), did, stages[0][0], stage_id, entered, actor,
                                int((entered - created).total_seconds())))
            yield (org_id, did, _skewed(rng, users), f"Deal {i}", pipeline_id, stage_id,
                   Decimal(rng.randrange(100, 100_000)) + Decimal("0.50"), "EUR",
                   None if i % 5 == 0 else date.today() + timedelta(days=rng.randrange(-60, 365)),
                   contact_ids[i % len(contact_ids)], None, kind, "price" if kind == "lost" else None,
                   entered if kind != "open" else None, entered, category,
                   _js({"tier": ("gold", "silver", "bronze")[i % 3]}) if len(users) > 1 else "{}", "[]", created,
                   entered, 1, sorted({stages[0][0], stage_id}))  # the stages its history entered

    counts["deals"] = await _copy(db, "deals", [
        "org_id", "id", "owner_id", "title", "pipeline_id", "stage_id", "value_amount", "currency",
        "expected_close_date", "contact_id", "company_id", "status", "lost_reason", "closed_at", "stage_entered_at",
        "forecast_category", "custom_fields", "external_ids", "created_at", "updated_at", "version",
        "entered_stage_ids"], deals())
    counts["deal_stage_history"] = await _copy(db, "deal_stage_history", [
        "org_id", "id", "deal_id", "from_stage_id", "to_stage_id", "moved_at", "moved_by", "seconds_in_previous"],
        iter(history))
    hot = contact_ids[:5]  # a few contacts with thousands of activities

    def activities() -> Iterator[tuple]:
        for i in range(n["activities"]):
            contact = hot[i % len(hot)] if i % 20 == 0 else contact_ids[rng.randrange(len(contact_ids))]
            created = at(i, n["activities"])
            owner = _skewed(rng, users)
            yield (org_id, new_id(), owner, ("task", "call", "note", "meeting", "email")[i % 5], f"Activity {i}",
                   created + timedelta(days=2), created + timedelta(days=1) if i % 3 else None, owner, contact,
                   deal_ids[i % len(deal_ids)] if i % 4 == 0 else None, "normal", "{}", created, created, 1,
                   created, created)

    counts["activities"] = await _copy(db, "activities", [
        "org_id", "id", "owner_id", "type", "subject", "due_at", "done_at", "assignee_id", "contact_id", "deal_id",
        "priority", "custom_fields", "created_at", "updated_at", "version", "reminded_at", "overdue_at"],
        activities())
    counts["leads"] = await _copy(db, "leads", [
        "org_id", "id", "owner_id", "first_name", "last_name", "email", "phone", "source", "status", "custom_fields",
        "external_ids", "created_at", "updated_at", "version"],
        ((org_id, new_id(), _skewed(rng, users), f"Lead{i}", f"Person{i}", f"lead{i}.{org_id.hex[:6]}@example.com",
          None, ("web_form", "email", "phone", "api")[i % 4], ("new", "working", "qualified", "disqualified")[i % 4],
          "{}", "[]", at(i, n["leads"]), at(i, n["leads"]), 1) for i in range(n["leads"])))
    counts["events"] = await _events(db, org_id, actor, counts)
    return counts


async def _events(db: Database, org_id: UUID, actor: str, counts: dict[str, int]) -> int:
    """One `<object>.created` per seeded record, already dispatched, read back from the tables in id order."""
    total = 0
    async with db.engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        for table, object_type in (("companies", "company"), ("contacts", "contact"), ("deals", "deal"),
                                   ("activities", "activity"), ("leads", "lead")):
            result = await raw.execute(f"""
                INSERT INTO events (org_id, id, type, object_type, object_id, action, actor, version, data,
                                    occurred_at, dispatched_at)
                SELECT org_id, id, '{object_type}.created', '{object_type}', id, 'created', $2::jsonb, 1,
                       jsonb_build_object('object', jsonb_build_object('id', id, 'owner_id', owner_id)),
                       created_at, created_at
                FROM {table} WHERE org_id = $1""", org_id, actor)
            total += int(result.split()[-1])
        await conn.commit()
    return total
