"""Every condition operator of the contract (API.md "Automations"), as a run and a dry run judge them: amounts
as decimals whether given as strings or numbers, other values as text, lists by their items."""

from __future__ import annotations

import pytest

from app.domain.automations.engine import holds

CASES = [
    ("eq", "1000.00", "1000", True), ("eq", "1000.00", 1000, True), ("eq", "Acme", "acme", True),
    ("eq", None, None, True), ("eq", "1000.01", "1000", False),
    ("neq", "1000.00", 999, True), ("neq", "x", "X", False),
    ("in", "web_form", ["referral", "web_form"], True), ("in", "2.50", [1, 2.5], True), ("in", "x", "x", False),
    ("gt", "1000.01", "1000", True), ("gt", "1000.00", 1000, False), ("gt", None, 1, False),
    ("gte", "1000.00", "1000", True), ("gte", "999.99", 1000, False),
    ("lt", "9", "10", True),  # decimals, not text ("9" > "10" as text)
    ("lte", "2026-01-31", "2026-02-01", True), ("lte", "2026-03-01", "2026-02-01", False),
    ("contains", ["vip", "b2b"], "VIP", True), ("contains", "Acme GmbH", "gmbh", True), ("contains", None, "x", False),
    ("is_empty", None, None, True), ("is_empty", [], True, True), ("is_empty", "", None, True),
    ("is_empty", "x", None, False), ("is_empty", "x", False, True), ("is_empty", None, False, False),
]


@pytest.mark.parametrize(("op", "actual", "value", "expected"), CASES)
def test_each_operator(op, actual, value, expected):
    assert holds(op, actual, value) is expected
