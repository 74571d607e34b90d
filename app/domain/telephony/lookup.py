"""`GET /v1/calls/lookup?phone=`: the screen pop for a ringing number, in one SQL statement.

The contact with the number (the oldest), the oldest open lead with it, the contact's company (else a company
with the number) and up to 50 open deals of that contact or company, newest first; each under the reader's
visibility. One statement built once (one for readers whom visibility limits, one for the others), with the
reader and the number as bound values, so it costs one round trip and no statement building per request.

A national number (`030 1234567`) needs the org's `default_phone_region` before it can be read. The region is
remembered per process and the statement returns the org's current one beside the records: when they differ
(the first lookup of an org here, or an admin changed it meanwhile) the number is read again and the statement
sent again. International numbers (`+49…`) never need it."""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from uuid import UUID

from pydantic import TypeAdapter
from sqlalchemy import Select, String, bindparam, literal_column, or_, select, true, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.domain import kinds
from app.domain.auth.principal import Principal
from app.domain.companies.models import Company
from app.domain.contacts.models import Contact
from app.domain.deals.models import Deal
from app.domain.errors import ValidationFailed
from app.domain.kinds import BOUND, BOUND_UNLIMITED, reader_params
from app.domain.leads.models import OPEN_STATUSES, Lead
from app.domain.normalize import normalize_phone
from app.domain.orgs.models import Org
from app.domain.records import Kind
from app.domain.telephony.schemas import Lookup

OPEN_DEALS = 50
_REGIONS: dict[UUID, str | None] = {}  # org -> default_phone_region as last seen (checked on every lookup)
_MAX_REMEMBERED = 100_000
DUMPS = {name: Kind.of(kinds.named(name)).dump for name in ("contact", "lead", "company", "deal")}
CARD = TypeAdapter(Lookup)  # the whole card read from the entities and written as JSON in one pass each


@lru_cache(maxsize=2)
def statement(limited: bool) -> Select[Any]:
    """`limited`: for readers whom record visibility limits (`kinds.sees_all` false); the other statement
    carries no visibility rule and is quicker to plan. The open deals are the contact's and the company's (up
    to 50 each, each half read through its own index, newest first; `lookup` keeps the newest 50)."""
    who = BOUND if limited else BOUND_UNLIMITED
    phone = bindparam("phone", type_=String)
    contact_rows = (select(Contact).where(kinds.CONTACT.readable(who), Contact.phone == phone)
                    .order_by(Contact.created_at, Contact.id).limit(1).lateral("contact"))
    contact = aliased(Contact, contact_rows)
    lead = aliased(Lead, select(Lead).where(kinds.LEAD.readable(who), Lead.phone == phone,
                                            # written out: an expanding IN would be rendered anew each time
                                            Lead.status.in_([literal_column(repr(s)) for s in OPEN_STATUSES]))
                   .order_by(Lead.created_at, Lead.id).limit(1).lateral("lead"))
    company_rows = select(Company).where(
        kinds.COMPANY.readable(who),
        or_(Company.id == contact.company_id, (contact.company_id.is_(None)) & (Company.phone == phone))) \
        .order_by(Company.created_at, Company.id).limit(1).lateral("company")
    company = aliased(Company, company_rows)
    newest = (Deal.created_at.desc(), Deal.id.desc())
    open_deals = select(Deal).where(kinds.DEAL.readable(who), Deal.status == "open")
    either = union_all(
        open_deals.where(Deal.contact_id == contact.id).order_by(*newest).limit(OPEN_DEALS)
        .correlate(contact_rows),
        open_deals.where(Deal.company_id == company.id,  # not twice: the contact's are in the first half
                         or_(contact.id.is_(None), Deal.contact_id.is_distinct_from(contact.id)))
        .order_by(*newest).limit(OPEN_DEALS).correlate(contact_rows, company_rows))
    deal = aliased(Deal, either.lateral("deal"))
    return (select(Org.default_phone_region, contact, lead, company, deal).select_from(Org)
            .outerjoin(contact, true()).outerjoin(lead, true()).outerjoin(company, true()).outerjoin(deal, true())
            .where(Org.id == bindparam("org_id")))


def _read(raw: str, region: str | None) -> str | None:
    try:
        return normalize_phone(raw, region)
    except ValueError:
        return None


async def _run(session: AsyncSession, who: Principal, phone: str | None) -> tuple[str | None, list[Any]]:
    limited = not kinds.sees_all(who)
    params = reader_params(who) if limited else {"org_id": who.org_id}
    rows = (await session.execute(statement(limited), {**params, "phone": phone})).all()
    return rows[0][0], rows


async def lookup(session: AsyncSession, who: Principal, raw: str) -> dict[str, Any]:
    """The card as JSON values (each record as `Kind.dump` writes it)."""
    first, deals = await _records(session, who, raw)
    return {"contact": DUMPS["contact"](first[1]) if first[1] is not None else None,
            "lead": DUMPS["lead"](first[2]) if first[2] is not None else None,
            "company": DUMPS["company"](first[3]) if first[3] is not None else None,
            "open_deals": [DUMPS["deal"](d) for d in deals]}


async def lookup_json(session: AsyncSession, who: Principal, raw: str) -> bytes:
    """The card as the response's JSON: the same values as `lookup`, validated and written in one pass each
    (no dict per record, no second encoder)."""
    first, deals = await _records(session, who, raw)
    return CARD.dump_json(CARD.validate_python(
        {"contact": first[1], "lead": first[2], "company": first[3], "open_deals": deals}, from_attributes=True))


async def _records(session: AsyncSession, who: Principal, raw: str) -> tuple[Any, list[Any]]:
    org_id = who.org_id
    remembered = org_id in _REGIONS
    guess = _REGIONS.get(org_id)
    phone = _read(raw, guess)
    region, rows = await _run(session, who, phone)
    if len(_REGIONS) >= _MAX_REMEMBERED:
        _REGIONS.clear()
    _REGIONS[org_id] = region
    if (not remembered or region != guess) and not raw.strip().startswith("+"):
        phone = _read(raw, region)
        region, rows = await _run(session, who, phone)
    if phone is None:
        try:
            normalize_phone(raw, region)
        except ValueError as exc:
            raise ValidationFailed(f"phone: {exc}", loc=("query", "phone")) from None
    return rows[0], _newest([r[4] for r in rows if r[4] is not None])


def _newest(deals: list[Any]) -> list[Any]:
    """The contact's and the company's newest open deals together: the newest of both (each half came sorted)."""
    return sorted(deals, key=lambda d: (d.created_at, d.id), reverse=True)[:OPEN_DEALS]
