"""Deal line items (API.md "Catalog"): a deal with items has value = Σ round(quantity × unit_price × (1 − discount))
and value_with_tax = Σ round(item value × (1 + tax_rate)), each item rounded half-up to the minor unit of the
deal's currency; item writes keep both current at once, products lend their price, and items follow their deal's
visibility."""

from __future__ import annotations

import asyncio
from decimal import ROUND_HALF_UP, Decimal, localcontext

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from app.domain.deals.line_items import amounts
from app.domain.events.models import Event
from tests.factories import signup

# Minor digits written out here, independently of the code under test (ISO 4217).
DIGITS = {"JPY": 0, "EUR": 2, "BHD": 3, "KWD": 3, "USD": 2}


def expected(quantity: Decimal, price: Decimal, discount: Decimal, tax: Decimal, currency: str) -> tuple[Decimal, Decimal]:
    """One item's value and value with tax, computed by hand: exact products, then half-up to the minor unit."""
    unit = Decimal(1).scaleb(-DIGITS[currency])
    with localcontext() as ctx:
        ctx.prec = 80
        net = (quantity * price * (1 - discount / 100)).quantize(unit, rounding=ROUND_HALF_UP)
        gross = (net * (1 + tax / 100)).quantize(unit, rounding=ROUND_HALF_UP)
    return net, gross


def written(amount: Decimal, currency: str) -> str:
    """As the API writes amounts: 2 places, or 3 for three-digit currencies."""
    return str(amount.quantize(Decimal(1).scaleb(-max(2, DIGITS[currency]))))


async def _ok(r, status: int = 200) -> dict:
    assert r.status_code == status, r.text
    return r.json() if r.content else {}


def _names(r, *field: str) -> None:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    locs = [tuple(str(x) for x in e["loc"]) for e in r.json()["errors"]]
    assert any(loc[1:1 + len(field)] == field for loc in locs), (field, locs)


async def _deal(client, acct, currency: str = "EUR", **extra) -> dict:
    return await _ok(await client.post("/v1/deals", headers=acct.headers, json={
        "title": "Seats", "value": {"amount": "0", "currency": currency}, **extra}), 201)


def _places(currency: str) -> int:
    return max(2, DIGITS[currency])


@st.composite
def items(draw) -> tuple[str, list[tuple[Decimal, Decimal, Decimal, Decimal]]]:
    currency = draw(st.sampled_from(["JPY", "EUR", "BHD"]))
    lines = draw(st.lists(st.tuples(
        st.decimals(min_value=Decimal("0.001"), max_value=Decimal("100000"), places=3),
        st.decimals(min_value=Decimal(0), max_value=Decimal("10000000"), places=_places(currency)),
        st.decimals(min_value=Decimal(0), max_value=Decimal(100), places=2),
        st.decimals(min_value=Decimal(0), max_value=Decimal("99.99"), places=2),
    ), min_size=1, max_size=4))
    return currency, lines


@given(case=items())
@settings(max_examples=300, deadline=None)
def test_one_item_is_rounded_half_up_to_the_currencys_minor_unit(case):
    currency, lines = case
    for quantity, price, discount, tax in lines:
        net, gross = amounts(quantity, price, discount, tax, currency)
        want_net, want_gross = expected(quantity, price, discount, tax, currency)
        assert (net, gross) == (want_net, want_gross)
        assert str(net) == written(want_net, currency) and str(gross) == written(want_gross, currency)


@pytest.mark.parametrize(("quantity", "price", "discount", "tax", "currency", "value", "with_tax"), [
    ("1", "0.005", "0", "0", "EUR", "0.01", "0.01"),  # half-up, never to even
    ("1", "0.015", "0", "0", "EUR", "0.02", "0.02"),
    ("3", "33.335", "0", "0", "BHD", "100.005", "100.005"),
    ("1", "0.50", "0", "0", "JPY", "1.00", "1.00"),
    ("1", "2.50", "0", "0", "JPY", "3.00", "3.00"),
    ("2.5", "10.00", "10", "19", "EUR", "22.50", "26.78"),  # 22.5 × 1.19 = 26.775 → 26.78
    ("1", "999", "0", "10", "JPY", "999.00", "1099.00"),  # 1098.9 → 1099
])
def test_hand_computed_items(quantity, price, discount, tax, currency, value, with_tax):
    net, gross = amounts(Decimal(quantity), Decimal(price), Decimal(discount), Decimal(tax), currency)
    assert (str(net), str(gross)) == (value, with_tax)


@given(case=items(), as_numbers=st.booleans())
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
async def test_a_deals_value_is_the_sum_of_its_rounded_items_through_the_api(client, case, as_numbers):
    currency, lines = case
    acct = await signup(client)
    deal = await _deal(client, acct, currency)
    url = f"/v1/deals/{deal['id']}/line-items"
    total = total_with_tax = Decimal(0)
    for quantity, price, discount, tax in lines:
        body = {"name": "Item", "quantity": str(quantity), "unit_price": {"amount": str(price), "currency": currency},
                "discount_percent": str(discount), "tax_rate": str(tax)}
        if as_numbers:  # numbers are accepted on input too
            body.update(quantity=float(quantity), discount_percent=float(discount), tax_rate=float(tax))
        item = await _ok(await client.post(url, headers=acct.headers, json=body), 201)
        net, gross = expected(quantity, price, discount, tax, currency)
        assert item["value"] == {"amount": written(net, currency), "currency": currency}
        assert item["value_with_tax"] == {"amount": written(gross, currency), "currency": currency}
        total += net
        total_with_tax += gross
    got = await _ok(await client.get(f"/v1/deals/{deal['id']}", headers=acct.headers))
    assert got["value"] == {"amount": written(total, currency), "currency": currency}
    assert got["value_with_tax"] == {"amount": written(total_with_tax, currency), "currency": currency}


async def test_item_writes_keep_the_deal_current_and_write_deal_updated(client, session):
    acct = await signup(client)
    h = acct.headers
    deal = await _deal(client, acct)
    assert deal["value_with_tax"] is None  # no items yet
    url = f"/v1/deals/{deal['id']}/line-items"
    a = await _ok(await client.post(url, headers=h, json={
        "name": "Seats", "quantity": 10, "unit_price": {"amount": "12.50"}, "discount_percent": 20, "tax_rate": 19}),
        201)
    assert a["quantity"] == "10.000" and a["discount_percent"] == "20.00" and a["tax_rate"] == "19.00"
    assert a["unit_price"] == {"amount": "12.50", "currency": "EUR"}
    b = await _ok(await client.post(url, headers=h, json={"name": "Setup", "unit_price": {"amount": "99.99"}}), 201)
    assert b["quantity"] == "1.000" and b["position"] == a["position"] + 1
    d = await _ok(await client.get(f"/v1/deals/{deal['id']}", headers=h))
    assert d["value"]["amount"] == "199.99" and d["value_with_tax"]["amount"] == "218.99"  # 100.00 (119.00) + 99.99
    assert d["version"] == deal["version"] + 2

    patched = await client.patch(f"{url}/{a['id']}", headers={**h, "If-Match": f'"{a["version"]}"'},
                                 json={"quantity": "4"})
    assert (await _ok(patched))["value"]["amount"] == "40.00"
    d = await _ok(await client.get(f"/v1/deals/{deal['id']}", headers=h))
    assert d["value"]["amount"] == "139.99" and d["value_with_tax"]["amount"] == "147.59"  # 47.60 + 99.99
    stale = await client.patch(f"{url}/{a['id']}", headers={**h, "If-Match": f'"{a["version"]}"'}, json={"name": "x"})
    assert stale.status_code == 412

    listed = await _ok(await client.get(url, headers=h))
    assert [i["id"] for i in listed["data"]] == [a["id"], b["id"]]

    # the deal's value is its items' now
    _names(await client.patch(f"/v1/deals/{deal['id']}", headers=h, json={"value": {"amount": "5.00"}}), "value")
    # removing the last item leaves the value as it was, without a value with tax
    assert (await client.delete(f"{url}/{a['id']}", headers=h)).status_code == 204
    assert (await client.delete(f"{url}/{b['id']}", headers=h)).status_code == 204
    d = await _ok(await client.get(f"/v1/deals/{deal['id']}", headers=h))
    assert d["value"]["amount"] == "99.99" and d["value_with_tax"] is None
    assert (await client.patch(f"/v1/deals/{deal['id']}", headers=h, json={"value": {"amount": "5.00"}})).status_code == 200

    events = (await session.execute(select(Event.type, Event.version, Event.data).where(
        Event.object_id == deal["id"]).order_by(Event.version))).all()
    updates = [(v, data) for t, v, data in events if t == "deal.updated"]
    assert [v for v, _ in updates] == list(range(2, d["version"] + 2))  # one per item write, then the PATCH
    first = updates[0][1]
    assert first["object"]["value"] == {"amount": "100.00", "currency": "EUR"}
    assert first["object"]["value_with_tax"] == {"amount": "119.00", "currency": "EUR"}
    assert first["previous"] == {"value": {"amount": "0.00", "currency": "EUR"}, "value_with_tax": None}


async def test_an_item_takes_its_products_price_in_the_deals_currency(client):
    acct = await signup(client)
    h = acct.headers
    product = await _ok(await client.post("/v1/products", headers=h, json={
        "sku": "SEAT", "name": "Pro seat", "prices": [{"amount": "240.00", "currency": "EUR"},
                                                      {"amount": "36000", "currency": "JPY"}],
        "tax_rate": "19"}), 201)
    eur = await _deal(client, acct)
    item = await _ok(await client.post(f"/v1/deals/{eur['id']}/line-items", headers=h, json={
        "product_id": product["id"], "quantity": "2"}), 201)
    assert item["name"] == "Pro seat" and item["unit_price"] == {"amount": "240.00", "currency": "EUR"}
    assert item["tax_rate"] == "19.00" and item["value"]["amount"] == "480.00"
    assert item["value_with_tax"]["amount"] == "571.20" and item["product_id"] == product["id"]
    # a given price and name win over the product's
    own = await _ok(await client.post(f"/v1/deals/{eur['id']}/line-items", headers=h, json={
        "product_id": product["id"], "name": "Seat (promo)", "unit_price": {"amount": "199.00", "currency": "EUR"},
        "tax_rate": 0}), 201)
    assert own["name"] == "Seat (promo)" and own["unit_price"]["amount"] == "199.00" and own["tax_rate"] == "0.00"

    jpy = await _deal(client, acct, "JPY")
    item = await _ok(await client.post(f"/v1/deals/{jpy['id']}/line-items", headers=h, json={
        "product_id": product["id"], "quantity": 3, "discount_percent": "33.33"}), 201)
    assert item["value"] == {"amount": "72004.00", "currency": "JPY"}  # 108000 × 0.6667 = 72003.6
    assert item["value_with_tax"] == {"amount": "85685.00", "currency": "JPY"}  # 72004 × 1.19 = 85684.76

    # no price in the deal's currency, and no unit_price: 422 naming unit_price; nothing written
    usd = await _deal(client, acct, "USD")
    _names(await client.post(f"/v1/deals/{usd['id']}/line-items", headers=h, json={"product_id": product["id"]}),
           "unit_price")
    assert (await _ok(await client.get(f"/v1/deals/{usd['id']}/line-items", headers=h)))["data"] == []
    assert (await _ok(await client.get(f"/v1/deals/{usd['id']}", headers=h)))["version"] == usd["version"]
    # ... with one, fine
    ok = await client.post(f"/v1/deals/{usd['id']}/line-items", headers=h, json={
        "product_id": product["id"], "unit_price": {"amount": "250.00"}})
    assert ok.status_code == 201 and ok.json()["name"] == "Pro seat"
    # switching an item to another product takes that product's price
    other = await _ok(await client.post("/v1/products", headers=h, json={
        "name": "Basic seat", "prices": [{"amount": "120.00", "currency": "EUR"}]}), 201)
    item = (await _ok(await client.get(f"/v1/deals/{eur['id']}/line-items", headers=h)))["data"][0]
    moved = await _ok(await client.patch(f"/v1/deals/{eur['id']}/line-items/{item['id']}", headers=h,
                                         json={"product_id": other["id"]}))
    assert moved["unit_price"]["amount"] == "120.00" and moved["value"]["amount"] == "240.00"
    # an inactive product still lends its price; a deleted one is no product
    assert (await client.delete(f"/v1/products/{other['id']}", headers=h)).status_code == 204
    _names(await client.post(f"/v1/deals/{eur['id']}/line-items", headers=h, json={"product_id": other["id"]}),
           "product_id")


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "x", "quantity": 0, "unit_price": {"amount": "1"}}, ("quantity",)),
    ({"name": "x", "quantity": "1.0001", "unit_price": {"amount": "1"}}, ("quantity",)),
    ({"name": "x", "quantity": "-2", "unit_price": {"amount": "1"}}, ("quantity",)),
    ({"name": "x", "quantity": "1e10", "unit_price": {"amount": "1"}}, ("quantity",)),
    ({"name": "x", "quantity": "lots", "unit_price": {"amount": "1"}}, ("quantity",)),
    ({"name": "x", "quantity": True, "unit_price": {"amount": "1"}}, ("quantity",)),
    ({"name": "x", "unit_price": {"amount": "1"}, "discount_percent": "100.01"}, ("discount_percent",)),
    ({"name": "x", "unit_price": {"amount": "1"}, "discount_percent": "5.555"}, ("discount_percent",)),
    ({"name": "x", "unit_price": {"amount": "1"}, "tax_rate": -1}, ("tax_rate",)),
    ({"name": "x", "unit_price": {"amount": "NaN"}}, ("unit_price", "amount")),
    ({"name": "x", "unit_price": {"amount": "1.005"}}, ("unit_price", "amount")),  # EUR: 2 places
    ({"name": "x", "unit_price": {"amount": "1", "currency": "USD"}}, ("unit_price", "currency")),
    ({"name": "x", "unit_price": {"amount": "1", "currency": "ZZZ"}}, ("unit_price", "currency")),
    ({"name": "x"}, ("unit_price",)),
    ({"unit_price": {"amount": "1"}}, ("name",)),
    ({"name": "x", "unit_price": {"amount": "1"}, "value": {"amount": "1"}}, ("value",)),  # server-owned
    ({"product_id": "0190a8f4-6c2e-7d4b-9a1f-3e5b2c7d8e91"}, ("product_id",)),
    ({"name": "x", "quantity": "999999999", "unit_price": {"amount": "9999999999999999.99"}}, ("quantity",)),
])
async def test_bad_items_are_422_naming_the_field(client, body, field):
    acct = await signup(client)
    deal = await _deal(client, acct)
    _names(await client.post(f"/v1/deals/{deal['id']}/line-items", headers=acct.headers, json=body), *field)
    after = await _ok(await client.get(f"/v1/deals/{deal['id']}", headers=acct.headers))
    assert after["version"] == deal["version"] and after["value_with_tax"] is None


async def test_items_follow_their_deals_visibility_and_org(client):
    acct = await signup(client)
    h = acct.headers
    rep = await acct.invite("member")
    peer = await acct.invite("member")
    viewer = await acct.invite("viewer")
    assert (await client.patch("/v1/org", headers=h, json={"record_visibility": "own"})).status_code == 200
    deal = await _ok(await client.post("/v1/deals", headers=rep.headers, json={"title": "Rep's"}), 201)
    url = f"/v1/deals/{deal['id']}/line-items"
    item = await _ok(await client.post(url, headers=rep.headers, json={"name": "x", "unit_price": {"amount": "5"}}),
                     201)
    assert len((await _ok(await client.get(url, headers=h)))["data"]) == 1  # admins see all
    for path in (url, f"{url}/{item['id']}"):
        r = await (client.get(path, headers=peer.headers) if path == url else
                   client.patch(path, headers=peer.headers, json={"name": "y"}))
        assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert (await client.post(url, headers=peer.headers, json={"name": "x", "unit_price": {"amount": "1"}})
            ).status_code == 404
    assert (await client.post(url, headers=viewer.headers, json={"name": "x", "unit_price": {"amount": "1"}})
            ).status_code == 403
    # another organisation: every route 404, and its products are no products here
    other = await signup(client, "Other")
    assert (await client.get(url, headers=other.headers)).status_code == 404
    assert (await client.post(url, headers=other.headers, json={"name": "x", "unit_price": {"amount": "1"}})
            ).status_code == 404
    assert (await client.delete(f"{url}/{item['id']}", headers=other.headers)).status_code == 404
    theirs = await _ok(await client.post("/v1/products", headers=other.headers, json={
        "name": "Theirs", "prices": [{"amount": "1.00", "currency": "EUR"}]}), 201)
    _names(await client.post(url, headers=h, json={"product_id": theirs["id"]}), "product_id")
    # an item of another deal is not found under this one
    second = await _ok(await client.post("/v1/deals", headers=h, json={"title": "Second"}), 201)
    assert (await client.patch(f"/v1/deals/{second['id']}/line-items/{item['id']}", headers=h,
                               json={"name": "y"})).status_code == 404
    # a deleted deal's items are gone with it, and back on restore
    assert (await client.delete(f"/v1/deals/{deal['id']}", headers=h)).status_code == 204
    assert (await client.get(url, headers=h)).status_code == 404
    assert (await client.post(f"/v1/deals/{deal['id']}/restore", headers=h)).status_code == 200
    assert len((await _ok(await client.get(url, headers=h)))["data"]) == 1
    assert (await client.get(url)).status_code == 401


async def test_three_digit_currencies_keep_their_third_digit(client):
    acct = await signup(client)
    deal = await _deal(client, acct, "KWD")
    item = await _ok(await client.post(f"/v1/deals/{deal['id']}/line-items", headers=acct.headers, json={
        "name": "Service", "quantity": "3", "unit_price": {"amount": "1.234"}, "tax_rate": "5"}), 201)
    assert item["value"]["amount"] == "3.702" and item["value_with_tax"]["amount"] == "3.887"  # 3.8871
    got = await _ok(await client.get(f"/v1/deals/{deal['id']}", headers=acct.headers))
    assert got["value"] == {"amount": "3.702", "currency": "KWD"}
    board = await _ok(await client.get(f"/v1/pipelines/{deal['pipeline_id']}/summary", headers=acct.headers))
    assert {"amount": "3.702", "currency": "KWD"} in board["totals"]["other_currencies"]
    # a deal without items takes a value with three places in such a currency, and two in others
    plain = await _deal(client, acct, "KWD")
    set_ = await client.patch(f"/v1/deals/{plain['id']}", headers=acct.headers, json={"value": {"amount": "7.125"}})
    assert (await _ok(set_))["value"] == {"amount": "7.125", "currency": "KWD"}
    _names(await client.patch(f"/v1/deals/{plain['id']}", headers=acct.headers,
                              json={"value": {"amount": "7.125", "currency": "EUR"}}), "value", "amount")
    _names(await client.post("/v1/deals", headers=acct.headers, json={
        "title": "JPY", "value": {"amount": "7.1255", "currency": "KWD"}}), "value", "amount")


async def test_concurrent_item_writes_on_one_deal_lose_nothing(api):
    """Each item write holds the deal's row: writers racing on one deal queue, and the sums hold every item."""
    acct = await signup(api)
    deal = await _deal(api, acct)
    url = f"/v1/deals/{deal['id']}/line-items"
    prices = [f"{n}.{n:02d}" for n in range(1, 9)]
    answers = await asyncio.gather(*(api.post(url, headers=acct.headers, json={
        "name": f"Item {p}", "unit_price": {"amount": p}, "tax_rate": "10"}) for p in prices))
    assert [r.status_code for r in answers] == [201] * len(prices), [r.text for r in answers]
    got = await _ok(await api.get(f"/v1/deals/{deal['id']}", headers=acct.headers))
    total = sum(Decimal(p) for p in prices)
    with_tax = sum((Decimal(p) * Decimal("1.1")).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) for p in prices)
    assert got["value"]["amount"] == str(total) and got["value_with_tax"]["amount"] == str(with_tax)
    assert got["version"] == deal["version"] + len(prices)
