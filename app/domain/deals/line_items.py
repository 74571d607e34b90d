"""A deal's line items (`/v1/deals/{id}/line-items`): what it sells. A deal with items has

    value          = Σ round(quantity × unit_price × (1 − discount_percent/100))
    value_with_tax = Σ round(item value × (1 + tax_rate/100))

each item rounded half-up to the minor unit of the deal's currency (none for JPY, 3 digits for BHD or KWD).
Every item write holds the deal's row, recomputes both sums in the same transaction and writes a
`deal.updated` event (its `previous` holds the old value and value_with_tax when they changed). Items follow
their deal: who may read the deal reads its items; who may edit it edits them; a deleted deal's items are gone
with it (404) and come back on restore. Removing the last item leaves `value` as it was (the deal's to set
again) and `value_with_tax` null."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, localcontext
from typing import Any
from uuid import UUID

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.auth.principal import Principal
from app.domain.catalog.models import Product
from app.domain.catalog.schemas import PRICE_MAX
from app.domain.catalog.service import PRODUCT, price_in
from app.domain.concurrency import check_version
from app.domain.deals.models import Deal, LineItem
from app.domain.deals.schemas import LineItemCreate, LineItemRead, LineItemUpdate
from app.domain.deals.service import DEAL
from app.domain.errors import NotFound, ValidationFailed
from app.domain.kinds import Reader
from app.domain.records import changed, require_ref
from app.domain.schemas import amount_places, round_money

MAX_ITEMS = 500
HUNDRED = Decimal(100)


def amounts(quantity: Decimal, unit_price: Decimal, discount_percent: Decimal, tax_rate: Decimal,
            currency: str) -> tuple[Decimal, Decimal]:
    """(value, value_with_tax) of one item, each rounded half-up to the currency's minor unit."""
    with localcontext() as ctx:
        ctx.prec = 60  # exact: 12 + 19 digits and the percentages fit many times over
        value = round_money(quantity * unit_price * (HUNDRED - discount_percent) / HUNDRED, currency)
        with_tax = round_money(value * (HUNDRED + tax_rate) / HUNDRED, currency)
    return value, with_tax


def dump(item: LineItem) -> dict[str, Any]:
    return LineItemRead.model_validate(item).model_dump(mode="json")


async def list_items(session: AsyncSession, who: Reader, deal_id: UUID) -> list[LineItem]:
    deal = await DEAL.get(session, who, deal_id)
    return await _items(session, deal)


async def _items(session: AsyncSession, deal: Deal) -> list[LineItem]:
    return list(await session.scalars(select(LineItem).where(
        LineItem.org_id == deal.org_id, LineItem.deal_id == deal.id).order_by(LineItem.position, LineItem.created_at,
                                                                              LineItem.id)))


async def _item(session: AsyncSession, deal: Deal, item_id: UUID) -> LineItem:
    item = await session.scalar(select(LineItem).where(
        LineItem.org_id == deal.org_id, LineItem.deal_id == deal.id, LineItem.id == item_id))
    if item is None:
        raise NotFound("Line item not found")
    return item


def _unit_price(deal: Deal, given: dict[str, Any]) -> Decimal:
    """A unit price from the body: in the deal's currency, with at most that currency's places."""
    currency = given.get("currency") or deal.currency
    if currency != deal.currency:
        raise ValidationFailed(f"unit_price must be in the deal's currency ({deal.currency})",
                               loc=("body", "unit_price", "currency"))
    places = amount_places(currency)
    amount: Decimal = given["amount"]
    if amount != amount.quantize(Decimal(1).scaleb(-places)):
        raise ValidationFailed(f"unit_price.amount has at most {places} decimal places in {currency}",
                               loc=("body", "unit_price", "amount"))
    return amount


def _product_price(product: Product, deal: Deal) -> Decimal:
    """The product's price in the deal's currency, else 422 naming `unit_price`."""
    price = price_in(product, deal.currency)
    if price is None:
        raise ValidationFailed(f"the product has no price in the deal's currency ({deal.currency}): give unit_price",
                               loc=("body", "unit_price"))
    return Decimal(price)


def _compute(item: LineItem, currency: str) -> None:
    value, with_tax = amounts(item.quantity, item.unit_price_amount, item.discount_percent, item.tax_rate, currency)
    if value >= PRICE_MAX or with_tax >= PRICE_MAX:
        raise ValidationFailed("the item's value must stay below 10^16", loc=("body", "quantity"))
    item.amount, item.amount_with_tax = value, with_tax


async def add(session: AsyncSession, actor: Principal, deal_id: UUID, body: LineItemCreate) -> LineItem:
    deal = await DEAL.get(session, actor, deal_id, for_update=True)
    before = DEAL.dump(deal)
    count, last = (await session.execute(select(func.count(), func.max(LineItem.position)).where(
        LineItem.org_id == deal.org_id, LineItem.deal_id == deal.id))).one()
    if count >= MAX_ITEMS:
        raise ValidationFailed(f"a deal holds at most {MAX_ITEMS} line items", loc=("body",))
    product = None
    if body.product_id is not None:
        product = await require_ref(session, PRODUCT, actor, body.product_id, "product_id")
    if body.unit_price is not None:
        unit_price = _unit_price(deal, body.unit_price.model_dump())
    elif product is not None:
        unit_price = _product_price(product, deal)
    else:
        raise ValidationFailed("unit_price is required without product_id", loc=("body", "unit_price"))
    name = body.name or (product.name if product is not None else None)
    if not name:
        raise ValidationFailed("name is required without product_id", loc=("body", "name"))
    tax_rate = body.tax_rate if body.tax_rate is not None else (product.tax_rate if product is not None
                                                                 else Decimal("0.00"))
    item = LineItem(org_id=deal.org_id, deal_id=deal.id, product_id=body.product_id, name=name,
                    quantity=body.quantity, unit_price_amount=unit_price, currency=deal.currency,
                    discount_percent=body.discount_percent, tax_rate=tax_rate,
                    position=body.position if body.position is not None else (last + 1 if last is not None else 0))
    _compute(item, deal.currency)
    session.add(item)
    await _refresh(session, actor, deal, before)
    return item


async def update(session: AsyncSession, actor: Principal, deal_id: UUID, item_id: UUID, patch: LineItemUpdate,
                 expected_version: int | None) -> LineItem:
    deal = await DEAL.get(session, actor, deal_id, for_update=True)
    item = await _item(session, deal, item_id)
    check_version(item.version, expected_version)
    before = DEAL.dump(deal)
    changes = patch.model_dump(exclude_unset=True)
    for field in ("name", "quantity", "discount_percent", "tax_rate", "position"):
        if field in changes and changes[field] is None:
            raise ValidationFailed(f"{field} cannot be cleared", loc=("body", field))
    if "unit_price" in changes and changes["unit_price"] is None:
        raise ValidationFailed("unit_price cannot be cleared", loc=("body", "unit_price"))
    if changes.get("product_id") is not None and changes["product_id"] != item.product_id:
        product = await require_ref(session, PRODUCT, actor, changes["product_id"], "product_id")
        if "unit_price" not in changes:
            item.unit_price_amount = _product_price(product, deal)
    if "product_id" in changes:
        item.product_id = changes["product_id"]
    if changes.get("unit_price") is not None:
        item.unit_price_amount = _unit_price(deal, changes["unit_price"])
    for field in ("name", "quantity", "discount_percent", "tax_rate", "position"):
        if field in changes:
            setattr(item, field, changes[field])
    _compute(item, deal.currency)
    await _refresh(session, actor, deal, before)
    return item


async def remove(session: AsyncSession, actor: Principal, deal_id: UUID, item_id: UUID,
                 expected_version: int | None) -> None:
    deal = await DEAL.get(session, actor, deal_id, for_update=True)
    item = await _item(session, deal, item_id)
    check_version(item.version, expected_version)
    before = DEAL.dump(deal)
    await session.execute(delete(LineItem).where(LineItem.org_id == deal.org_id, LineItem.id == item.id))
    await _refresh(session, actor, deal, before)


async def _refresh(session: AsyncSession, actor: Principal, deal: Deal, before: dict[str, Any]) -> None:
    """The deal's value and value_with_tax from its items (the deal's row is held), a new version of it, and
    its `deal.updated` event, whether or not the sums changed (its items did)."""
    await session.flush()
    count, value, with_tax = (await session.execute(
        select(func.count(), func.sum(LineItem.amount), func.sum(LineItem.amount_with_tax)).where(
            LineItem.org_id == deal.org_id, LineItem.deal_id == deal.id))).one()
    if count:
        if value >= PRICE_MAX or with_tax >= PRICE_MAX:
            raise ValidationFailed("the deal's value must stay below 10^16", loc=("body", "quantity"))
        deal.value_amount, deal.value_with_tax_amount = value, with_tax
    else:
        deal.value_with_tax_amount = None
    deal.updated_at = datetime.now(UTC)  # always a new version: the deal's items changed
    await session.flush()
    after = DEAL.dump(deal)
    await DEAL.emit(session, actor, deal, "updated", previous=changed(before, after), after=after)
