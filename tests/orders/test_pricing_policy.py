"""Placement money (D-7, L-7.1, L-7.2) as a table of exact Decimal figures. No database."""

import datetime as dt
from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credits.policy import CreditFacts, DiscountCodeFacts, discount_code_check
from orders.policy import LineFacts, price_order

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
PIZZA2_TIRAMISU = [LineFacts(D("12.50"), 2), LineFacts(D("6.00"), 1)]  # 31.00


def code(amount_off=None, percent_off=None, **overrides):
    facts = {
        "code": "SAVE",
        "amount_off": amount_off,
        "percent_off": percent_off,
        "min_order_subtotal": D("0"),
        "restaurant_ids": frozenset(),
        "is_multi_use": False,
        "is_active": True,
        "valid_from": NOW - dt.timedelta(days=1),
        "valid_until": None,
        "issued_to_id": None,
        "is_redeemed": False,
        "used_by_buyer": False,
    }
    return DiscountCodeFacts(**(facts | overrides))


def promo(grant_id, remaining, days):
    return CreditFacts(grant_id, "promo", D(remaining), NOW + dt.timedelta(days=days), NOW)


def account(grant_id, remaining):
    return CreditFacts(grant_id, "account", D(remaining), None, NOW - dt.timedelta(days=grant_id))


def case(name, lines, expect, *, fee="2.99", discount=None, credits=(), use_credit=True):
    """`expect`: subtotal discount total promo account charged paid, space-separated."""
    return pytest.param(lines, fee, discount, list(credits), use_credit, expect, id=name)


CASES = [
    case("delivery, no extras", PIZZA2_TIRAMISU, "31.00 0.00 33.99 0.00 0.00 33.99 33.99"),
    case("pickup has no fee", PIZZA2_TIRAMISU, "31.00 0.00 31.00 0.00 0.00 31.00 31.00", fee="0"),
    case(
        "amount-off code",
        PIZZA2_TIRAMISU,
        "31.00 5.00 28.99 0.00 0.00 28.99 28.99",
        discount=code(amount_off=D("5.00")),
    ),
    case(
        "percent code",
        PIZZA2_TIRAMISU,
        "31.00 4.65 29.34 0.00 0.00 29.34 29.34",
        discount=code(percent_off=D("15")),
    ),
    case(
        "percent code rounds half-up",
        [LineFacts(D("3.30"), 1)],
        "3.30 0.50 2.80 0.00 0.00 2.80 2.80",
        fee="0",
        discount=code(percent_off=D("15")),
    ),
    case(
        "code never exceeds the subtotal",
        PIZZA2_TIRAMISU,
        "31.00 31.00 2.99 0.00 0.00 2.99 2.99",
        discount=code(amount_off=D("50.00")),
    ),
    case(
        "promo credit on a qualifying order",
        PIZZA2_TIRAMISU,
        "31.00 0.00 33.99 5.00 0.00 28.99 28.99",
        credits=[promo(1, "5.00", 10)],
    ),
    case(
        "promo credit not on a small order",
        [LineFacts(D("6.00"), 1)],
        "6.00 0.00 8.99 0.00 0.00 8.99 8.99",
        credits=[promo(1, "5.00", 10)],
    ),
    case(
        "qualifying is judged after the discount",
        [LineFacts(D("12.00"), 1)],
        "12.00 5.00 9.99 0.00 0.00 9.99 9.99",
        discount=code(amount_off=D("5.00")),
        credits=[promo(1, "5.00", 10)],
    ),
    case(
        "expired promo credit is not used",
        PIZZA2_TIRAMISU,
        "31.00 0.00 33.99 0.00 0.00 33.99 33.99",
        credits=[promo(1, "5.00", -1)],
    ),
    case(
        "account credit is money paid",
        PIZZA2_TIRAMISU,
        "31.00 0.00 33.99 0.00 10.00 23.99 33.99",
        credits=[account(1, "10.00")],
    ),
    case(
        "credit not asked for",
        PIZZA2_TIRAMISU,
        "31.00 0.00 33.99 0.00 0.00 33.99 33.99",
        credits=[account(1, "10.00")],
        use_credit=False,
    ),
    case(
        "code, promo and account together",
        PIZZA2_TIRAMISU,
        "31.00 5.00 28.99 3.00 4.00 21.99 25.99",
        discount=code(amount_off=D("5.00")),
        credits=[account(1, "4.00"), promo(2, "3.00", 10)],
    ),
    case(
        "credit covers everything",
        PIZZA2_TIRAMISU,
        "31.00 0.00 33.99 0.00 33.99 0.00 33.99",
        credits=[account(1, "100.00")],
    ),
    case(
        "promo covers the fee too",
        [LineFacts(D("10.00"), 1)],
        "10.00 0.00 12.99 12.99 0.00 0.00 0.00",
        credits=[promo(1, "20.00", 10)],
    ),
]


@pytest.mark.parametrize(("lines", "fee", "discount", "credits", "use_credit", "expected"), CASES)
def test_price_order(lines, fee, discount, credits, use_credit, expected):
    price = price_order(
        lines=lines,
        delivery_fee=D(fee),
        discount=discount,
        credits=credits,
        use_credit=use_credit,
        promo_credit_min_order=D("10.00"),
        now=NOW,
    )
    figures = (
        price.subtotal,
        price.discount_amount,
        price.total,
        price.promo_credit_applied,
        price.account_credit_applied,
        price.amount_charged,
        price.amount_paid,
    )
    assert figures == tuple(D(x) for x in expected.split())


def test_credit_is_spent_oldest_expiring_first_and_account_credit_last():
    credits = [account(1, "50.00"), promo(2, "4.00", 20), promo(3, "2.00", 5), promo(4, "1.00", 9)]
    price = price_order(
        lines=PIZZA2_TIRAMISU,
        delivery_fee=D("2.99"),
        discount=None,
        credits=credits,
        use_credit=True,
        promo_credit_min_order=D("10.00"),
        now=NOW,
    )
    assert [(s.grant_id, s.amount) for s in price.credit_spends] == [
        (3, D("2.00")),
        (4, D("1.00")),
        (2, D("4.00")),
        (1, D("26.99")),
    ]
    assert price.clauses == ("L-7.1",)


@pytest.mark.parametrize(
    ("overrides", "subtotal", "expected_code"),
    [
        pytest.param({}, "31.00", "code_ok", id="valid"),
        pytest.param({"is_active": False}, "31.00", "code_inactive", id="inactive"),
        pytest.param(
            {"valid_from": NOW + dt.timedelta(hours=1)},
            "31.00",
            "code_inactive",
            id="not yet valid",
        ),
        pytest.param({"valid_until": NOW}, "31.00", "code_expired", id="expired at the edge"),
        pytest.param(
            {"valid_until": NOW + dt.timedelta(seconds=1)},
            "31.00",
            "code_ok",
            id="valid until the last second",
        ),
        pytest.param({"issued_to_id": 99}, "31.00", "code_not_yours", id="issued to another"),
        pytest.param({"issued_to_id": 7}, "31.00", "code_ok", id="issued to this buyer"),
        pytest.param({"is_redeemed": True}, "31.00", "code_used", id="single use, used"),
        pytest.param(
            {"is_multi_use": True, "used_by_buyer": True},
            "31.00",
            "code_used",
            id="multi-use, already used by this buyer",
        ),
        pytest.param(
            {"restaurant_ids": frozenset({2})},
            "31.00",
            "code_wrong_restaurant",
            id="other restaurant",
        ),
        pytest.param({"restaurant_ids": frozenset({1})}, "31.00", "code_ok", id="this restaurant"),
        pytest.param(
            {"min_order_subtotal": D("31.01")},
            "31.00",
            "code_min_order",
            id="just under the minimum",
        ),
        pytest.param({"min_order_subtotal": D("31.00")}, "31.00", "code_ok", id="at the minimum"),
    ],
)
def test_discount_code_check(overrides, subtotal, expected_code):
    decision = discount_code_check(
        code(amount_off=D("5"), **overrides),
        buyer_id=7,
        restaurant_id=1,
        subtotal=D(subtotal),
        now=NOW,
    )
    assert decision.code == expected_code
    assert decision.allowed == (expected_code == "code_ok")
    assert decision.clauses == ("L-7.2",)


money = st.decimals(min_value=D("0.01"), max_value=D("500"), places=2)


@given(
    prices=st.lists(st.tuples(money, st.integers(1, 50)), min_size=1, max_size=6),
    fee=st.decimals(min_value=D("0"), max_value=D("10"), places=2),
    percent=st.one_of(st.none(), st.decimals(min_value=D("0.01"), max_value=D("100"), places=2)),
    promo_left=money,
    account_left=money,
)
def test_placement_money_always_adds_up(prices, fee, percent, promo_left, account_left):
    price = price_order(
        lines=[LineFacts(p, q) for p, q in prices],
        delivery_fee=fee,
        discount=code(percent_off=percent) if percent else None,
        credits=[promo(1, promo_left, 10), account(2, account_left)],
        use_credit=True,
        promo_credit_min_order=D("10.00"),
        now=NOW,
    )
    assert price.total == price.subtotal + price.delivery_fee - price.discount_amount
    assert (
        price.amount_charged
        == price.total - price.promo_credit_applied - price.account_credit_applied
    )
    assert D("0") <= price.discount_amount <= price.subtotal
    assert price.amount_charged >= 0
    assert price.promo_credit_applied <= promo_left
    assert price.account_credit_applied <= account_left
    assert all(x == x.quantize(D("0.01")) for x in (price.total, price.amount_charged))
