"""The rule reference lists put on other records' fields (API.md "Catalog"): once `lost_reasons`, `industries`
or `lead_sources` holds items, a deal's `lost_reason`, a company's `industry` and a contact's or lead's `source`
must be one of that list's active values. It sits low (models only): the records' services call it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.catalog.models import RefList, RefListItem
from app.domain.errors import ValidationFailed
from app.domain.kinds import Reader, org_of

# field → the list whose values it takes
FIELDS = {"lost_reason": "lost_reasons", "industry": "industries", "source": "lead_sources"}
# the sources the system itself gives records (API.md "Sales core"): always allowed
SYSTEM_SOURCES = frozenset({"web_form", "email", "phone", "import", "api"})


_CARRIED = "reference_values_carried"


@contextmanager
def carried_over(session: AsyncSession) -> Iterator[None]:
    """Writes within take their values from another record (a lead's source onto the contact it becomes), which
    were checked when first written: a list changed since does not stop them."""
    session.info[_CARRIED] = True
    try:
        yield
    finally:
        session.info.pop(_CARRIED, None)


async def check_values(session: AsyncSession, who: Reader, values: dict[str, Any]) -> None:
    """Each of `lost_reason`, `industry` and `source` given a value in `values` must be an active value of its
    list once that list has items (a source the system gives, such as `web_form`, always passes); 422 naming
    the field otherwise."""
    if session.info.get(_CARRIED):
        return
    for field, key in FIELDS.items():
        value = values.get(field)
        if not value or (field == "source" and value in SYSTEM_SOURCES):
            continue
        row = (await session.execute(
            select(func.count(RefListItem.id), func.bool_or(RefListItem.value == value)
                   .filter(RefListItem.active))
            .select_from(RefList)
            .join(RefListItem, (RefListItem.org_id == RefList.org_id) & (RefListItem.list_id == RefList.id))
            .where(RefList.org_id == org_of(who), RefList.key == key))).one()
        if row[0] and not row[1]:
            raise ValidationFailed(f"{field} must be one of the active values of the list {key!r}",
                                   loc=("body", field), type="not_in_list")
