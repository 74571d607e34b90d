"""Reference lists (`/v1/lists`): the values an organisation allows for some fields. Once `lost_reasons`,
`industries` or `lead_sources` holds items, a deal's `lost_reason`, a company's `industry` and a contact's or
lead's `source` must be one of that list's active values (422 naming the field); an empty or absent list leaves
the field free text. A list is read by its key or its id; deleting it deletes its items."""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

from sqlalchemy import delete, exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.audit import service as audit
from app.domain.auth.principal import Principal
from app.domain.catalog.models import RefList, RefListItem
from app.domain.catalog.schemas import (
    RefListCreate,
    RefListItemCreate,
    RefListItemRead,
    RefListItemUpdate,
    RefListUpdate,
)
from app.domain.concurrency import check_version
from app.domain.errors import Conflict, NotFound, ValidationFailed
from app.domain.kinds import LIST as LIST_TYPE
from app.domain.kinds import Reader
from app.domain.records import Kind, changed

LIST: Kind[RefList] = Kind.of(LIST_TYPE)

MAX_ITEMS = 1000
_KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


async def get(session: AsyncSession, who: Reader, key_or_id: str, for_update: bool = False) -> RefList:
    """A list of the org by its key (lower_snake_case) or its id, else 404."""
    stmt = select(RefList).where(LIST_TYPE.readable(who))
    if _KEY.match(key_or_id):
        stmt = stmt.where(RefList.key == key_or_id)
    else:
        try:
            stmt = stmt.where(RefList.id == UUID(key_or_id))
        except ValueError:
            raise NotFound("List not found") from None
    found = await session.scalar(stmt.with_for_update() if for_update else stmt)
    if found is None:
        raise NotFound("List not found")
    return found


async def all_lists(session: AsyncSession, who: Reader) -> list[RefList]:
    return list(await session.scalars(select(RefList).where(LIST_TYPE.readable(who)).order_by(RefList.key)))


async def create(session: AsyncSession, actor: Principal, body: RefListCreate) -> RefList:
    if await session.scalar(select(exists().where(LIST_TYPE.readable(actor), RefList.key == body.key))):
        raise Conflict(f"a list with key {body.key!r} exists already", field="key")
    return await LIST.created(session, actor, RefList(org_id=actor.org_id, key=body.key, label=body.label))


async def update(session: AsyncSession, actor: Principal, key_or_id: str, patch: RefListUpdate,
                 expected_version: int | None) -> RefList:
    ref = await get(session, actor, key_or_id, for_update=True)
    check_version(ref.version, expected_version)
    before = LIST.dump(ref)
    if patch.label is not None:
        ref.label = patch.label
    elif "label" in patch.model_fields_set:
        raise ValidationFailed("label cannot be cleared", loc=("body", "label"))
    return await LIST.updated(session, actor, ref, before)


async def remove(session: AsyncSession, actor: Principal, key_or_id: str, expected_version: int | None) -> None:
    ref = await get(session, actor, key_or_id, for_update=True)
    check_version(ref.version, expected_version)
    await session.delete(ref)  # its items go with it (ON DELETE CASCADE)
    await session.flush()
    await audit.record(session, actor, "delete", "list", ref.id, {"key": [ref.key, None]})


# --- items -----------------------------------------------------------------------------------------------

def dump_item(item: RefListItem) -> dict[str, Any]:
    return RefListItemRead.model_validate(item).model_dump(mode="json")


async def items(session: AsyncSession, who: Reader, key_or_id: str) -> list[RefListItem]:
    ref = await get(session, who, key_or_id)
    return list(await session.scalars(select(RefListItem).where(
        RefListItem.org_id == ref.org_id, RefListItem.list_id == ref.id).order_by(
        RefListItem.position, RefListItem.value)))


async def get_item(session: AsyncSession, who: Reader, key_or_id: str, item_id: UUID) -> RefListItem:
    return await _item(session, await get(session, who, key_or_id), item_id, for_update=False)


async def _item(session: AsyncSession, ref: RefList, item_id: UUID, for_update: bool = True) -> RefListItem:
    stmt = select(RefListItem).where(
        RefListItem.org_id == ref.org_id, RefListItem.list_id == ref.id, RefListItem.id == item_id)
    item = await session.scalar(stmt.with_for_update() if for_update else stmt)
    if item is None:
        raise NotFound("List item not found")
    return item


async def _unique(session: AsyncSession, ref: RefList, value: str, item_id: UUID | None = None) -> None:
    clash = select(RefListItem.id).where(RefListItem.org_id == ref.org_id, RefListItem.list_id == ref.id,
                                         RefListItem.value == value)
    if item_id is not None:
        clash = clash.where(RefListItem.id != item_id)
    if await session.scalar(clash) is not None:
        raise Conflict(f"the list holds the value {value!r} already", field="value")


async def add_item(session: AsyncSession, actor: Principal, key_or_id: str, body: RefListItemCreate) -> RefListItem:
    ref = await get(session, actor, key_or_id, for_update=True)  # items of one list are written one at a time
    await _unique(session, ref, body.value)
    count = await session.scalar(select(func.count()).where(RefListItem.org_id == ref.org_id,
                                                            RefListItem.list_id == ref.id))
    if (count or 0) >= MAX_ITEMS:
        raise ValidationFailed(f"a list holds at most {MAX_ITEMS} items", loc=("body", "value"))
    item = RefListItem(org_id=ref.org_id, list_id=ref.id, **body.model_dump())
    session.add(item)
    try:
        await session.flush()
    except IntegrityError:  # pragma: no cover (the list row is locked: no twin can pass `_unique`)
        raise Conflict(f"the list holds the value {body.value!r} already", field="value") from None
    await audit.record(session, actor, "update", "list", ref.id, {"items": [None, dump_item(item)]})
    return item


async def update_item(session: AsyncSession, actor: Principal, key_or_id: str, item_id: UUID,
                      patch: RefListItemUpdate, expected_version: int | None) -> RefListItem:
    ref = await get(session, actor, key_or_id, for_update=True)
    item = await _item(session, ref, item_id)
    check_version(item.version, expected_version)
    before = dump_item(item)
    changes = patch.model_dump(exclude_unset=True)
    for field in ("value", "active", "position"):
        if field in changes and changes[field] is None:
            raise ValidationFailed(f"{field} cannot be cleared", loc=("body", field))
    if changes.get("value") and changes["value"] != item.value:
        await _unique(session, ref, changes["value"], item.id)
    for field, value in changes.items():
        setattr(item, field, value)
    await session.flush()
    after = dump_item(item)
    diff = changed(before, after)
    if diff:
        await audit.record(session, actor, "update", "list", ref.id, {"items": [before, after]})
    return item


async def remove_item(session: AsyncSession, actor: Principal, key_or_id: str, item_id: UUID,
                      expected_version: int | None) -> None:
    ref = await get(session, actor, key_or_id, for_update=True)
    item = await _item(session, ref, item_id)
    check_version(item.version, expected_version)
    before = dump_item(item)
    await session.execute(delete(RefListItem).where(RefListItem.org_id == ref.org_id, RefListItem.id == item.id))
    await audit.record(session, actor, "update", "list", ref.id, {"items": [before, None]})
