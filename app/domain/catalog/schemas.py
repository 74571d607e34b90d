"""Products and reference lists as the API reads and writes them. Quantities, discounts and tax rates are
decimal strings like money amounts (numbers are accepted on input)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from pydantic import AfterValidator, Field, field_validator

from app.domain.contacts.schemas import ExternalIds
from app.domain.schemas import Currency, CustomFieldValues, InputModel, Money, Name, ReadModel, amount_places

PRICE_MAX = Decimal("1e16")


def _places(value: Decimal, places: int) -> bool:
    return value == value.quantize(Decimal(1).scaleb(-places))


def decimal_in(low: Decimal, high: Decimal, places: int, *, low_open: bool = False, high_open: bool = True,
               what: str = "value") -> Callable[[Decimal], Decimal]:
    """A check for a decimal input: finite, within [low, high) (or the bounds asked for), at most `places`
    decimal places; the value comes back written with exactly that many places."""

    def check(value: Decimal) -> Decimal:
        if not value.is_finite():
            raise ValueError(f"{what} must be a finite decimal")
        if value < low or (low_open and value == low) or value > high or (high_open and value == high):
            raise ValueError(f"{what} must be {'above' if low_open else 'at least'} {low} and "
                             f"{'below' if high_open else 'at most'} {high}")
        if not _places(value, places):
            raise ValueError(f"{what} has at most {places} decimal places")
        return value.quantize(Decimal(1).scaleb(-places))

    return check


TaxRate = Annotated[Decimal, AfterValidator(decimal_in(Decimal(0), Decimal(1000), 2, what="tax_rate")),
                    Field(examples=["19.00"], description="percent, a decimal string (numbers accepted)")]
Percent = Annotated[Decimal, AfterValidator(decimal_in(Decimal(0), Decimal(100), 2, high_open=False,
                                                       what="discount_percent")),
                    Field(examples=["10.00"], description="percent (0 to 100), a decimal string (numbers accepted)")]
Quantity = Annotated[Decimal, AfterValidator(decimal_in(Decimal(0), Decimal("1e9"), 3, low_open=True,
                                                        what="quantity")),
                     Field(examples=["2.5"], description="above 0, up to 3 decimal places; a decimal string "
                                                         "(numbers accepted)")]
PriceAmount = Annotated[Decimal, AfterValidator(decimal_in(Decimal(0), PRICE_MAX, 3, what="amount")),
                        Field(examples=["1200.00"], description=(
                            "a decimal string (numbers accepted): 2 places, 3 for currencies with three minor "
                            "digits (BHD, KWD...)"))]


class PriceIn(InputModel):
    """A price: an amount in a currency, with at most the places amounts of that currency are written with."""

    amount: PriceAmount
    currency: Currency

    def model_post_init(self, context: Any, /) -> None:
        places = amount_places(self.currency)
        if not _places(self.amount, places):
            raise ValueError(f"amount has at most {places} decimal places in {self.currency}")
        self.amount = self.amount.quantize(Decimal(1).scaleb(-places))


Prices = Annotated[list[PriceIn], Field(max_length=50, description="at most one price per currency")]


def _one_per_currency(prices: list[PriceIn] | None) -> list[PriceIn] | None:
    if prices is not None and len({p.currency for p in prices}) != len(prices):
        raise ValueError("at most one price per currency")
    return prices


Sku = Annotated[str, Field(min_length=1, max_length=64, examples=["SEAT-PRO"])]
Unit = Annotated[str, Field(min_length=1, max_length=32, examples=["seat"])]


class ProductCreate(InputModel):
    model_config = {"json_schema_extra": {"examples": [{
        "sku": "SEAT-PRO", "name": "Pro seat (annual)", "unit": "seat",
        "prices": [{"amount": "240.00", "currency": "EUR"}, {"amount": "260.00", "currency": "USD"}],
        "tax_rate": "19.00", "active": True}]}}

    sku: Sku | None = None
    name: Name
    unit: Unit | None = None
    prices: Prices = Field(default_factory=list)
    tax_rate: TaxRate = Decimal("0.00")
    active: bool = True
    custom_fields: CustomFieldValues = Field(default_factory=dict)
    external_ids: ExternalIds = Field(default_factory=list)

    _prices = field_validator("prices")(_one_per_currency)


class ProductUpdate(InputModel):
    """JSON Merge Patch: absent = unchanged, null = cleared; `prices` and `external_ids` are replaced whole,
    custom_fields merge key by key."""

    sku: Sku | None = None
    name: Name | None = None
    unit: Unit | None = None
    prices: Prices | None = None
    tax_rate: TaxRate | None = None
    active: bool | None = None
    custom_fields: CustomFieldValues | None = None
    external_ids: ExternalIds | None = None

    _prices = field_validator("prices")(_one_per_currency)


class ProductRead(ReadModel):
    id: UUID
    sku: str | None
    name: str
    unit: str | None
    prices: list[Money]
    tax_rate: Decimal = Field(examples=["19.00"], description="percent, a decimal string")
    active: bool
    custom_fields: dict[str, Any]
    external_ids: list[dict[str, str]]
    created_at: datetime
    updated_at: datetime
    version: int
    deleted_at: datetime | None = None


# --- reference lists -------------------------------------------------------------------------------------

ListKey = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$", examples=["lost_reasons"],
                               description="lower_snake_case, unique in the organisation")]
Label = Annotated[str, Field(min_length=1, max_length=200)]
Value = Annotated[str, Field(min_length=1, max_length=200, examples=["price"])]


class RefListCreate(InputModel):
    model_config = {"json_schema_extra": {"examples": [{"key": "lost_reasons", "label": "Lost reasons"}]}}

    key: ListKey
    label: Label


class RefListUpdate(InputModel):
    """The key is fixed once created."""

    label: Label | None = None


class RefListRead(ReadModel):
    id: UUID
    key: str
    label: str
    created_at: datetime
    updated_at: datetime
    version: int


class RefListItemCreate(InputModel):
    model_config = {"json_schema_extra": {"examples": [{"value": "price", "label": "Too expensive", "active": True,
                                                        "position": 0}]}}

    value: Value
    label: Label | None = Field(None, description="default: the value")
    active: bool = True
    position: int = Field(0, ge=0, le=10_000)


class RefListItemUpdate(InputModel):
    value: Value | None = None
    label: Label | None = None
    active: bool | None = None
    position: int | None = Field(None, ge=0, le=10_000)


class RefListItemRead(ReadModel):
    id: UUID
    list_id: UUID
    value: str
    label: str | None
    active: bool
    position: int
    created_at: datetime
    updated_at: datetime
    version: int
