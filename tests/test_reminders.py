"""Timers that become events: `activity.due`, `activity.overdue`, `contact.birthday`. Each fires once.

The sweeps take `now` explicitly, so time is driven by passing it, never by sleeping. Tasks are created
through the API relative to the wall clock (the API re-arms a timer moved "into the future" by the wall
clock), and the sweeps are then run with `now` values before and after their times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.events.models import Event
from app.domain.reminders.service import fire_birthdays, fire_due, fire_overdue
from tests.conftest import as_sweeper
from tests.factories import signup

SYSTEM = {"type": "system", "id": None}
LA = "America/Los_Angeles"
TOKYO = "Asia/Tokyo"


def _iso(dt: datetime) -> str:
    return dt.isoformat()


async def _sweep(session: AsyncSession, fire, now: datetime, **kw) -> int:
    # A production sweep opens a fresh session each tick; this one lives through the whole test, so forget
    # what it loaded before (the API has changed rows since) and read them anew.
    session.expire_all()
    async with as_sweeper(session):
        return await fire(session, now, **kw)


async def _events(session: AsyncSession, org_id: str, type_: str, object_id: str | None = None) -> list[Event]:
    stmt = select(Event).where(Event.org_id == UUID(org_id), Event.type == type_)
    if object_id is not None:
        stmt = stmt.where(Event.object_id == UUID(object_id))
    async with as_sweeper(session):
        return list(await session.scalars(stmt.order_by(Event.id).execution_options(populate_existing=True)))


async def _task(client, acct, **body) -> dict:
    payload = {"type": "task", "subject": "Follow up", **body}
    for key in ("due_at", "remind_at", "done_at"):
        if isinstance(payload.get(key), datetime):
            payload[key] = _iso(payload[key])
    r = await client.post("/v1/activities", headers=acct.headers, json=payload)
    assert r.status_code == 201, r.text
    return r.json()


async def _set_timezone(client, acct, tz: str) -> None:
    r = await client.patch("/v1/org", headers=acct.headers, json={"timezone": tz})
    assert r.status_code == 200, r.text
    assert r.json()["timezone"] == tz


async def _contact(client, acct, first_name: str, birthday: str) -> dict:
    r = await client.post("/v1/contacts", headers=acct.headers, json={"first_name": first_name, "birthday": birthday})
    assert r.status_code == 201, r.text
    return r.json()


def _ids(events: list[Event]) -> list[str]:
    return [str(e.object_id) for e in events]


# --- activity.due ---------------------------------------------------------------------------------------------


async def test_due_fires_once_for_remind_at_or_due_at(client, session):
    acct = await signup(client)
    t0 = datetime.now(UTC)
    by_remind = await _task(client, acct, subject="remind", remind_at=t0 - timedelta(minutes=5),
                            due_at=t0 + timedelta(hours=2))
    by_due = await _task(client, acct, subject="due", due_at=t0 - timedelta(minutes=1))
    no_time = await _task(client, acct, subject="whenever")

    for _ in range(3):
        await _sweep(session, fire_due, t0)

    due = await _events(session, acct.org_id, "activity.due")
    assert sorted(_ids(due)) == sorted([by_remind["id"], by_due["id"]])  # once each, though swept three times
    assert no_time["id"] not in _ids(due)
    for e in due:
        assert e.actor == SYSTEM and e.version == 1 and e.object_type == "activity" and e.action == "due"
        assert e.data["object"]["id"] == str(e.object_id)
    by_id = {str(e.object_id): e for e in due}
    assert by_id[by_remind["id"]].data["object"]["subject"] == "remind"
    assert by_id[by_due["id"]].data["object"]["due_at"] == by_due["due_at"]
    # the reminder came, the due time did not: it is not overdue
    await _sweep(session, fire_overdue, t0)
    assert _ids(await _events(session, acct.org_id, "activity.overdue")) == [by_due["id"]]


async def test_remind_at_decides_over_due_at(client, session):
    acct = await signup(client)
    t0 = datetime.now(UTC)
    task = await _task(client, acct, remind_at=t0 + timedelta(hours=1), due_at=t0 - timedelta(hours=1))
    await _sweep(session, fire_due, t0)
    assert await _events(session, acct.org_id, "activity.due") == []  # due_at passed, but the reminder is later
    await _sweep(session, fire_due, t0 + timedelta(hours=1, seconds=1))
    assert _ids(await _events(session, acct.org_id, "activity.due")) == [task["id"]]


async def test_not_yet_due_fires_only_when_now_passes_it(client, session):
    acct = await signup(client)
    t0 = datetime.now(UTC)
    task = await _task(client, acct, due_at=t0 + timedelta(hours=1))

    await _sweep(session, fire_due, t0)
    await _sweep(session, fire_due, t0 + timedelta(minutes=59))
    assert await _events(session, acct.org_id, "activity.due") == []
    await _sweep(session, fire_due, t0 + timedelta(hours=1, seconds=1))
    await _sweep(session, fire_due, t0 + timedelta(hours=2))
    assert _ids(await _events(session, acct.org_id, "activity.due")) == [task["id"]]


async def test_completed_and_deleted_tasks_never_fire(client, session):
    acct = await signup(client)
    t0 = datetime.now(UTC)
    completed = await _task(client, acct, subject="completed", due_at=t0 + timedelta(minutes=30))
    r = await client.post(f"/v1/activities/{completed['id']}/complete", headers=acct.headers)
    assert r.status_code == 200 and r.json()["done_at"] is not None
    logged_done = await _task(client, acct, type="call", subject="logged", due_at=t0 - timedelta(hours=1),
                              done_at=t0 - timedelta(minutes=30))
    assert logged_done["done_at"] is not None
    deleted = await _task(client, acct, subject="deleted", due_at=t0 + timedelta(minutes=30))
    assert (await client.delete(f"/v1/activities/{deleted['id']}", headers=acct.headers)).status_code == 204
    open_one = await _task(client, acct, subject="open", due_at=t0 + timedelta(minutes=30))

    later = t0 + timedelta(hours=2)
    for _ in range(2):
        await _sweep(session, fire_due, later)
        await _sweep(session, fire_overdue, later)
    assert _ids(await _events(session, acct.org_id, "activity.due")) == [open_one["id"]]
    assert _ids(await _events(session, acct.org_id, "activity.overdue")) == [open_one["id"]]


async def test_overdue_fires_once_and_never_for_done_tasks(client, session):
    acct = await signup(client)
    t0 = datetime.now(UTC)
    late = await _task(client, acct, subject="late", due_at=t0 + timedelta(hours=1))
    done = await _task(client, acct, subject="done", due_at=t0 + timedelta(hours=1))
    reminder_only = await _task(client, acct, subject="no due", remind_at=t0 + timedelta(minutes=10))

    await _sweep(session, fire_overdue, t0 + timedelta(minutes=59))
    assert await _events(session, acct.org_id, "activity.overdue") == []

    assert (await client.post(f"/v1/activities/{done['id']}/complete", headers=acct.headers)).status_code == 200
    for _ in range(3):
        await _sweep(session, fire_overdue, t0 + timedelta(hours=1, minutes=1))
    overdue = await _events(session, acct.org_id, "activity.overdue")
    assert _ids(overdue) == [late["id"]]
    assert overdue[0].actor == SYSTEM and overdue[0].version == 1 and overdue[0].action == "overdue"
    assert overdue[0].data["object"]["done_at"] is None
    assert reminder_only["id"] not in _ids(overdue)  # no due_at, never overdue

    # still listed as overdue through the API, and completing it now does not fire anything more
    listed = await client.get("/v1/activities", headers=acct.headers, params={"done": "false"})
    assert late["id"] in [a["id"] for a in listed.json()["data"]]
    await client.post(f"/v1/activities/{late['id']}/complete", headers=acct.headers)
    await _sweep(session, fire_overdue, t0 + timedelta(days=1))
    assert _ids(await _events(session, acct.org_id, "activity.overdue")) == [late["id"]]


async def test_moving_due_at_into_the_future_rearms_both_timers(client, session):
    acct = await signup(client)
    t0 = datetime.now(UTC)
    task = await _task(client, acct, due_at=t0 + timedelta(hours=1))
    passed = t0 + timedelta(hours=1, minutes=1)
    await _sweep(session, fire_due, passed)
    await _sweep(session, fire_overdue, passed)
    assert len(await _events(session, acct.org_id, "activity.due")) == 1
    assert len(await _events(session, acct.org_id, "activity.overdue")) == 1

    new_due = t0 + timedelta(hours=3)
    r = await client.patch(f"/v1/activities/{task['id']}", headers=acct.headers, json={"due_at": _iso(new_due)})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2

    between = t0 + timedelta(hours=2)  # later than the first firing, earlier than the new due time
    await _sweep(session, fire_due, between)
    await _sweep(session, fire_overdue, between)
    assert len(await _events(session, acct.org_id, "activity.due")) == 1
    assert len(await _events(session, acct.org_id, "activity.overdue")) == 1

    after = t0 + timedelta(hours=3, minutes=1)
    for _ in range(3):
        await _sweep(session, fire_due, after)
        await _sweep(session, fire_overdue, after)
    due = await _events(session, acct.org_id, "activity.due")
    overdue = await _events(session, acct.org_id, "activity.overdue")
    assert len(due) == 2 and len(overdue) == 2  # exactly one more of each
    for e in (due[1], overdue[1]):
        assert e.version == 2 and e.actor == SYSTEM
        assert e.data["object"]["due_at"] == r.json()["due_at"]


async def test_moving_remind_at_into_the_future_rearms_the_reminder_only(client, session):
    acct = await signup(client)
    t0 = datetime.now(UTC)
    task = await _task(client, acct, remind_at=t0 + timedelta(minutes=10), due_at=t0 + timedelta(minutes=20))
    passed = t0 + timedelta(minutes=30)
    await _sweep(session, fire_due, passed)
    await _sweep(session, fire_overdue, passed)

    r = await client.patch(f"/v1/activities/{task['id']}", headers=acct.headers,
                           json={"remind_at": _iso(t0 + timedelta(hours=1))})
    assert r.status_code == 200, r.text
    later = t0 + timedelta(hours=1, minutes=1)
    await _sweep(session, fire_due, later)
    await _sweep(session, fire_overdue, later)
    assert len(await _events(session, acct.org_id, "activity.due")) == 2
    assert len(await _events(session, acct.org_id, "activity.overdue")) == 1  # due_at did not move


async def test_moving_due_at_while_an_earlier_reminder_stays_past_does_not_rearm_it(client, session):
    acct = await signup(client)
    t0 = datetime.now(UTC)
    task = await _task(client, acct, remind_at=t0 - timedelta(minutes=10), due_at=t0 + timedelta(minutes=20))
    await _sweep(session, fire_due, t0)
    r = await client.patch(f"/v1/activities/{task['id']}", headers=acct.headers,
                           json={"due_at": _iso(t0 + timedelta(hours=2))})
    assert r.status_code == 200, r.text
    await _sweep(session, fire_due, t0 + timedelta(hours=3))
    assert len(await _events(session, acct.org_id, "activity.due")) == 1  # the reminder time itself did not move


async def test_moving_a_timer_to_a_time_without_offset_is_rejected_not_a_crash(client, session):
    # API.md: "Times ISO 8601 with offset". A PATCH that moves a timer must answer 422, not 500, and leave it be.
    acct = await signup(client)
    t0 = datetime.now(UTC)
    task = await _task(client, acct, due_at=t0 + timedelta(hours=1))
    for field in ("due_at", "remind_at"):
        r = await client.patch(f"/v1/activities/{task['id']}", headers=acct.headers,
                               json={field: (t0 + timedelta(hours=3)).replace(tzinfo=None).isoformat()})
        assert r.status_code == 422, (field, r.status_code, r.text)
        assert r.json()["errors"][0]["loc"] == ["body", field]
    got = await client.get(f"/v1/activities/{task['id']}", headers=acct.headers)
    assert got.json()["due_at"] == task["due_at"] and got.json()["version"] == 1
    await _sweep(session, fire_due, t0 + timedelta(hours=1, minutes=1))
    assert _ids(await _events(session, acct.org_id, "activity.due")) == [task["id"]]


async def test_tasks_of_two_orgs_each_fire_in_their_own_org(client, session):
    a, b = await signup(client, "A"), await signup(client, "B")
    t0 = datetime.now(UTC)
    a_task = await _task(client, a, subject="a", due_at=t0 + timedelta(minutes=5))
    b_tasks = [await _task(client, b, subject=f"b{i}", due_at=t0 + timedelta(minutes=5 + i)) for i in range(2)]

    later = t0 + timedelta(hours=1)
    await _sweep(session, fire_due, later)
    await _sweep(session, fire_overdue, later)
    for type_ in ("activity.due", "activity.overdue"):
        a_events = await _events(session, a.org_id, type_)
        b_events = await _events(session, b.org_id, type_)
        assert _ids(a_events) == [a_task["id"]]
        assert sorted(_ids(b_events)) == sorted(t["id"] for t in b_tasks)
        assert all(str(e.org_id) == a.org_id and e.data["object"]["subject"] == "a" for e in a_events)
        assert all(str(e.org_id) == b.org_id for e in b_events)
        # an event of one org never names the other's object
        async with as_sweeper(session):
            got = await session.scalars(select(Event.org_id).where(Event.type == type_, Event.object_id.in_(
                [UUID(a_task["id"]), *(UUID(t["id"]) for t in b_tasks)])))
        assert sorted(map(str, got)) == sorted([a.org_id, b.org_id, b.org_id])


# --- contact.birthday -----------------------------------------------------------------------------------------


def _local(tz: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(tz)).astimezone(UTC)


async def test_birthday_at_nine_local_time_once(client, session):
    la, tokyo = await signup(client, "LA"), await signup(client, "Tokyo")
    await _set_timezone(client, la, LA)
    await _set_timezone(client, tokyo, TOKYO)
    # LA: June 15; 09:00 PDT is 16:00 UTC
    ana = await _contact(client, la, "Ana", "1990-06-15")
    ben = await _contact(client, la, "Ben", "1985-06-15")
    other_day = await _contact(client, la, "Cy", "1990-06-14")
    # Tokyo: June 16; 08:59 JST is still June 15 in UTC, 09:00 JST is 00:00 UTC June 16
    yuki = await _contact(client, tokyo, "Yuki", "2000-06-16")
    yesterday = await _contact(client, tokyo, "Ken", "2000-06-15")  # June 15 in UTC at 08:59 JST, not locally

    await _sweep(session, fire_birthdays, _local(LA, 2025, 6, 15, 8, 59), hour=9)  # 00:59 JST June 16
    assert await _events(session, la.org_id, "contact.birthday") == []
    assert await _events(session, tokyo.org_id, "contact.birthday") == []

    await _sweep(session, fire_birthdays, _local(LA, 2025, 6, 15, 9, 0), hour=9)
    la_events = await _events(session, la.org_id, "contact.birthday")
    assert sorted(_ids(la_events)) == sorted([ana["id"], ben["id"]])
    assert other_day["id"] not in _ids(la_events)
    for e in la_events:
        assert e.data["date"] == "2025-06-15" and e.actor == SYSTEM and e.version == 1
        assert e.object_type == "contact" and e.data["object"]["birthday"] in ("1990-06-15", "1985-06-15")
    assert await _events(session, tokyo.org_id, "contact.birthday") == []  # 09:00 PDT is 01:00 JST June 16

    await _sweep(session, fire_birthdays, _local(TOKYO, 2025, 6, 16, 8, 59), hour=9)  # 23:59 UTC June 15
    assert await _events(session, tokyo.org_id, "contact.birthday") == []
    await _sweep(session, fire_birthdays, _local(TOKYO, 2025, 6, 16, 9, 0), hour=9)
    tokyo_events = await _events(session, tokyo.org_id, "contact.birthday")
    assert _ids(tokyo_events) == [yuki["id"]] and yesterday["id"] not in _ids(tokyo_events)
    assert tokyo_events[0].data["date"] == "2025-06-16"

    # later the same day (local), and again the next hour: nothing more
    for now in (_local(LA, 2025, 6, 15, 9, 30), _local(LA, 2025, 6, 15, 23, 59), _local(TOKYO, 2025, 6, 16, 18, 0)):
        await _sweep(session, fire_birthdays, now, hour=9)
    assert len(await _events(session, la.org_id, "contact.birthday")) == 2
    assert len(await _events(session, tokyo.org_id, "contact.birthday")) == 1

    # next year: once more
    await _sweep(session, fire_birthdays, _local(TOKYO, 2026, 6, 16, 9, 0), hour=9)
    tokyo_events = await _events(session, tokyo.org_id, "contact.birthday")
    assert [e.data["date"] for e in tokyo_events] == ["2025-06-16", "2026-06-16"]


async def test_birthday_fires_late_in_the_day_with_the_local_date(client, session):
    la = await signup(client, "LA")
    await _set_timezone(client, la, LA)
    today = await _contact(client, la, "Ana", "1990-06-15")
    tomorrow = await _contact(client, la, "Tom", "1990-06-16")  # June 16 is already today in UTC at 20:00 PDT

    evening = _local(LA, 2025, 6, 15, 20, 0)  # 03:00 UTC June 16
    assert evening.date().isoformat() == "2025-06-16"
    await _sweep(session, fire_birthdays, evening, hour=9)
    events = await _events(session, la.org_id, "contact.birthday")
    assert _ids(events) == [today["id"]] and tomorrow["id"] not in _ids(events)
    assert events[0].data["date"] == "2025-06-15"

    await _sweep(session, fire_birthdays, _local(LA, 2025, 6, 16, 8, 0), hour=9)
    assert len(await _events(session, la.org_id, "contact.birthday")) == 1
    await _sweep(session, fire_birthdays, _local(LA, 2025, 6, 16, 9, 0), hour=9)
    events = await _events(session, la.org_id, "contact.birthday")
    assert [(str(e.object_id), e.data["date"]) for e in events] == [(today["id"], "2025-06-15"),
                                                                      (tomorrow["id"], "2025-06-16")]


async def test_feb_29_birthday_on_feb_28_in_common_years_and_feb_29_in_leap_years(client, session):
    acct = await signup(client)
    await _set_timezone(client, acct, TOKYO)
    leapling = await _contact(client, acct, "Leap", "2000-02-29")
    feb28 = await _contact(client, acct, "Feb", "1999-02-28")
    march1 = await _contact(client, acct, "Mar", "1999-03-01")

    async def dates(contact) -> list[str]:
        return [e.data["date"] for e in await _events(session, acct.org_id, "contact.birthday", contact["id"])]

    # 2027 is a common year: Feb 28 stands in for Feb 29
    for day in ((2, 27), (2, 28), (3, 1)):
        for hour in (8, 9, 15):
            await _sweep(session, fire_birthdays, _local(TOKYO, 2027, *day, hour, 0), hour=9)
    assert await dates(leapling) == ["2027-02-28"]
    assert await dates(feb28) == ["2027-02-28"]
    assert await dates(march1) == ["2027-03-01"]

    # 2028 is a leap year: Feb 29 itself, not Feb 28 as well
    await _sweep(session, fire_birthdays, _local(TOKYO, 2028, 2, 28, 10, 0), hour=9)
    assert await dates(leapling) == ["2027-02-28"]
    for day in ((2, 29), (3, 1)):
        for hour in (9, 20):
            await _sweep(session, fire_birthdays, _local(TOKYO, 2028, *day, hour, 0), hour=9)
    assert await dates(leapling) == ["2027-02-28", "2028-02-29"]
    assert await dates(feb28) == ["2027-02-28", "2028-02-28"]
    assert await dates(march1) == ["2027-03-01", "2028-03-01"]


async def test_deleted_contacts_and_contacts_without_birthday_get_none(client, session):
    acct = await signup(client)
    await _set_timezone(client, acct, LA)
    gone = await _contact(client, acct, "Gone", "1990-06-15")
    assert (await client.delete(f"/v1/contacts/{gone['id']}", headers=acct.headers)).status_code == 204
    r = await client.post("/v1/contacts", headers=acct.headers, json={"first_name": "Nobody"})
    assert r.status_code == 201
    stays = await _contact(client, acct, "Stays", "1990-06-15")

    await _sweep(session, fire_birthdays, _local(LA, 2025, 6, 15, 12, 0), hour=9)
    assert _ids(await _events(session, acct.org_id, "contact.birthday")) == [stays["id"]]


async def test_a_day_with_very_many_birthdays_fires_them_all(client, session):
    # The sweep looks at every org at once: a busy installation easily has ~16k birthdays on one day
    # (6M contacts / 365). Inserted with SQL, as an import would, to keep the test quick.
    acct = await signup(client)
    await _set_timezone(client, acct, TOKYO)
    many = 16_500
    await session.execute(text("""
        INSERT INTO contacts (org_id, id, owner_id, version, first_name, birthday)
        SELECT CAST(:org AS uuid), gen_random_uuid(), CAST(:owner AS uuid), 1, 'Guest ' || g, DATE '1990-07-04'
        FROM generate_series(1, :many) AS g"""), {"org": acct.org_id, "owner": acct.user_id, "many": many})
    fired, failures = 0, []
    for now in (_local(TOKYO, 2025, 7, 4, 9, 0), _local(TOKYO, 2025, 7, 4, 9, 15)):  # two sweeps that day
        try:
            async with session.begin_nested():  # a failed sweep is rolled back, logged, and tried next tick
                fired += await _sweep(session, fire_birthdays, now, hour=9)
        except DBAPIError as exc:
            failures.append(str(exc.orig)[:120])
    got = await session.scalar(select(func.count()).select_from(Event).where(
        Event.org_id == UUID(acct.org_id), Event.type == "contact.birthday"))
    assert got == many, f"{got} of {many} contacts got their contact.birthday; sweeps failed: {failures}"
    assert fired >= many


# --- isolation: one timer that raises holds up nothing ---------------------------------------------------------


async def test_a_poisoned_timer_is_recorded_and_retried_while_the_others_fire(committed_client, database, redis,
                                                                             settings):
    """Reminders, overdue checks and SLA checks of two organisations are due; one activity cannot be announced
    (its stored custom fields are not an object). Everything else fires; the poisoned one is recorded with its
    error, left alone until its retry time, tried again then, and fires once it can."""
    from app.domain.forms.models import SlaTimer
    from app.domain.reminders.models import TimerFailure
    from app.workers import jobs

    c = committed_client
    a, b = await signup(c, "A"), await signup(c, "B")
    t0 = datetime.now(UTC)
    healthy_a = await _task(c, a, subject="a", due_at=t0 - timedelta(minutes=1))
    poisoned = await _task(c, a, subject="poisoned", due_at=t0 - timedelta(minutes=1))
    healthy_b = await _task(c, b, subject="b", due_at=t0 - timedelta(minutes=1))
    form = (await c.post("/v1/forms", headers=b.headers, json={"name": "Demo", "sla_minutes": 15})).json()
    r = await c.post(f"/v1/public/forms/{form['public_key']}/submissions", json={"email": "late@example.com"})
    assert r.status_code == 202, r.text
    async with database.sessions.begin() as s:
        await s.execute(text("UPDATE activities SET custom_fields = '\"oops\"' WHERE id = :id"), {"id": poisoned["id"]})

    ctx = {"db": database, "redis": redis, "settings": settings}
    now = t0 + timedelta(minutes=16)  # every timer above is due, the SLA check too
    await jobs.sweep_timers(ctx, now)

    async def fired(type_: str, acct) -> list[str]:
        async with database.sessions() as s:
            return _ids(await _events(s, acct.org_id, type_))

    async def failures() -> dict[str, TimerFailure]:
        async with database.sessions() as s:
            rows = await s.scalars(select(TimerFailure).where(TimerFailure.item_id == UUID(poisoned["id"])))
            return {f.timer: f for f in rows}

    for type_ in ("activity.due", "activity.overdue"):
        assert await fired(type_, a) == [healthy_a["id"]]
        assert healthy_b["id"] in await fired(type_, b)  # beside the form's call-back task
    assert len(await fired("lead.sla_breached", b)) == 1
    async with database.sessions() as s:
        timer = await s.scalar(select(SlaTimer).where(SlaTimer.org_id == UUID(b.org_id)))
        assert timer.fired_at is not None and timer.breached is True
    failed = await failures()
    assert set(failed) == {"activity.due", "activity.overdue"}
    for f in failed.values():
        assert (f.attempts, str(f.org_id)) == (1, a.org_id)
        assert f.last_error.startswith("ValidationError") and f.next_attempt_at > now

    await jobs.sweep_timers(ctx, now + timedelta(seconds=30))  # before its retry time: left alone
    assert {t: f.attempts for t, f in (await failures()).items()} == {"activity.due": 1, "activity.overdue": 1}

    later = now + timedelta(minutes=2)  # retried, fails again, waits longer
    await jobs.sweep_timers(ctx, later)
    failed = await failures()
    assert {t: f.attempts for t, f in failed.items()} == {"activity.due": 2, "activity.overdue": 2}
    assert all(f.next_attempt_at > later + timedelta(minutes=1) for f in failed.values())

    async with database.sessions.begin() as s:  # repaired: the next retry fires it, once
        await s.execute(text("UPDATE activities SET custom_fields = '{}' WHERE id = :id"), {"id": poisoned["id"]})
    for _ in range(2):
        await jobs.sweep_timers(ctx, later + timedelta(hours=1))
    for type_ in ("activity.due", "activity.overdue"):
        assert sorted(await fired(type_, a)) == sorted([healthy_a["id"], poisoned["id"]])
    assert await failures() == {}


async def test_failures_of_timers_that_no_longer_wait_are_purged(committed_client, database, settings):
    from app.domain.reminders.models import TimerFailure
    from app.workers.maintenance import purge_stale_timer_failures

    acct = await signup(committed_client)
    now = datetime.now(UTC)
    stale, waiting = uuid4(), uuid4()
    async with database.sessions.begin() as s:
        for item, retry_at in ((stale, now - timedelta(days=2)), (waiting, now + timedelta(hours=1))):
            s.add(TimerFailure(org_id=UUID(acct.org_id), timer="activity.due", item_id=item, attempts=3,
                               last_error="ValidationError: x", next_attempt_at=retry_at, first_failed_at=now))
    assert await purge_stale_timer_failures({"db": database, "settings": settings}) >= 1
    async with database.sessions() as s:
        left = set(await s.scalars(select(TimerFailure.item_id).where(TimerFailure.org_id == UUID(acct.org_id))))
    assert left == {waiting}
