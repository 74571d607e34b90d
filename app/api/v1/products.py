"""Products (`/v1/products`): the catalogue deals' line items sell from. Everyone reads them (`products:read`);
admins write them (`products:write`). Lists, soft delete and restore, upsert by external id and batches as for
contacts; custom fields with `object: product`."""

from typing import Annotated

from fastapi import Query
from sqlalchemy import ColumnElement

from app.api.records import record_routes
from app.api.routing import Router
from app.domain.auth.models import Role
from app.domain.catalog import service
from app.domain.catalog.models import Product
from app.domain.catalog.schemas import ProductCreate, ProductUpdate

router = Router(prefix="/v1/products", tags=["catalog"])
SORTS = {"created_at": Product.created_at, "updated_at": Product.updated_at}


async def filters(
    active: Annotated[bool | None, Query(description="only active (true) or inactive (false) products")] = None,
    sku: Annotated[str | None, Query(max_length=64, description="the product with this SKU")] = None,
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if active is not None:
        where.append(Product.active.is_(active))
    if sku is not None:
        where.append(Product.sku == sku)
    return where


record_routes(router, kind=service.PRODUCT, plural="products", area="products", create_schema=ProductCreate,
              update_schema=ProductUpdate, create=service.create, update=service.update, sorts=SORTS,
              searches="SKUs and names", filters=filters, sort_doc="Sorts: created_at, updated_at.",
              write_role=Role.admin)
