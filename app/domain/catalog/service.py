"""Products: the catalogue line items sell from. Admins write them; everyone reads them."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.auth.principal import Principal
from app.domain.catalog.models import Product
from app.domain.catalog.schemas import ProductCreate, ProductUpdate
from app.domain.concurrency import check_version
from app.domain.custom_fields import service as custom_fields
from app.domain.kinds import PRODUCT as PRODUCT_TYPE
from app.domain.records import Kind, apply, org_settings

PRODUCT: Kind[Product] = Kind.of(PRODUCT_TYPE)


async def _values(session: AsyncSession, actor: Principal, data: dict[str, Any],
                  current: Product | None = None) -> dict[str, Any]:
    values = dict(data)
    if "prices" in values:
        values["prices"] = [{"amount": str(p["amount"]), "currency": p["currency"]} for p in values["prices"] or []]
    if "custom_fields" in values or current is None:
        region = (await org_settings(session, actor.org_id)).default_phone_region
        defs = await custom_fields.definitions(session, actor.org_id, "product")
        patch = values.get("custom_fields")
        if current is not None and patch is None and "custom_fields" in values:
            patch = {k: None for k in (current.custom_fields or {})}  # custom_fields: null clears them all
        values["custom_fields"] = custom_fields.validate(defs, current.custom_fields if current else None,
                                                         patch or {}, region)
    return values


async def create(session: AsyncSession, actor: Principal, body: ProductCreate) -> Product:
    values = await _values(session, actor, body.model_dump(mode="python"))
    return await PRODUCT.created(session, actor, Product(org_id=actor.org_id, **values))


async def update(session: AsyncSession, actor: Principal, product_id: UUID, patch: ProductUpdate,
                 expected_version: int | None) -> Product:
    product = await PRODUCT.get(session, actor, product_id, for_update=True)
    check_version(product.version, expected_version)
    before = PRODUCT.dump(product)
    values = await _values(session, actor, patch.model_dump(mode="python", exclude_unset=True), product)
    apply(product, values, required=("name", "tax_rate", "active"))
    return await PRODUCT.updated(session, actor, product, before)


def price_in(product: Product, currency: str) -> str | None:
    """The product's price in this currency (a decimal string), if it has one."""
    return next((p["amount"] for p in product.prices or [] if p["currency"] == currency), None)
