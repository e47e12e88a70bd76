"""`GET /api/seller/ledger/` (D-10, L-9): the partner's restaurants' ledger entries, newest
first and paginated, with the weekly payout period totals and the balance, money as strings
with two decimals; who may read it, and a query count that does not grow with the entries."""

import datetime as dt
from decimal import Decimal as D

import pytest
import time_machine
from rest_framework.pagination import PageNumberPagination

from orders.services.cancellation import order_cancel_by_buyer, order_cancellation_approve
from refunds.models import RestaurantLedgerEntry
from tests.conftest import advance, place_order, token_client
from tests.factories import MenuItemFactory, RestaurantFactory

pytestmark = pytest.mark.django_db

LEDGER = "/api/seller/ledger/"
THURSDAY_WEEK_1 = dt.datetime(2026, 11, 12, 10, 0, tzinfo=dt.UTC)  # week of Mon 9 Nov
WEDNESDAY_WEEK_2 = dt.datetime(2026, 11, 18, 15, 0, tzinfo=dt.UTC)  # week of Mon 16 Nov


def sold(buyer, restaurant, items=None):
    order = place_order(buyer, restaurant, items)
    return advance(order, "accept", "start_preparation", "mark_ready", "dispatch", "deliver")


def fee_kept(buyer, restaurant, items):
    order = advance(place_order(buyer, restaurant, items), "accept")
    order_cancel_by_buyer(order_id=order.pk, actor=buyer)
    return order_cancellation_approve(order_id=order.pk, actor=restaurant.members.first())


@pytest.fixture
def two_weeks(buyer, restaurant, menu):
    """Week 1: sale 25.00. Week 2: sale 6.00 and a fee kept of 2.32 (15 % of 15.49)."""
    with time_machine.travel(THURSDAY_WEEK_1, tick=False):
        first = sold(buyer, restaurant, {menu["Margherita"]: 2})
    with time_machine.travel(WEDNESDAY_WEEK_2, tick=False):
        second = sold(buyer, restaurant, {menu["Tiramisu"]: 1})
        cancelled = fee_kept(buyer, restaurant, {menu["Margherita"]: 1})
    return first, second, cancelled


OPEN = {"closed": False, "paid_out": None}  # no payout closed the period yet
# A sale or a fee has no refund, no clause of L-9 and nothing to dispute; it closes no period.
NOT_A_DEDUCTION = {
    "reason": None,
    "clauses": [],
    "disputable": False,
    "dispute": None,
    "period_starts_on": None,
}


def test_entries_newest_first_with_period_totals_and_the_balance(
    api_as, partner, restaurant, two_weeks
):
    first, second, cancelled = two_weeks
    entry = {e.order_id: e for e in RestaurantLedgerEntry.objects.all()}

    response = api_as(partner).get(LEDGER)

    assert response.status_code == 200
    body = response.json()
    assert (body["count"], body["next"], body["previous"]) == (3, None, None)
    assert body["results"] == [
        {
            "id": entry[cancelled.pk].pk,
            "created_at": "2026-11-18T15:00:00Z",
            "restaurant": {"id": restaurant.pk, "name": "Trattoria Roma", "slug": "roma"},
            "kind": "cancellation_fee",
            "amount": "2.32",
            "order": cancelled.pk,
            "refund": None,
            "description": f"Cancellation fee kept: order #{cancelled.pk}",
            **NOT_A_DEDUCTION,
        },
        {
            "id": entry[second.pk].pk,
            "created_at": "2026-11-18T15:00:00Z",
            "restaurant": {"id": restaurant.pk, "name": "Trattoria Roma", "slug": "roma"},
            "kind": "sale",
            "amount": "6.00",
            "order": second.pk,
            "refund": None,
            "description": f"Sale: order #{second.pk}",
            **NOT_A_DEDUCTION,
        },
        {
            "id": entry[first.pk].pk,
            "created_at": "2026-11-12T10:00:00Z",
            "restaurant": {"id": restaurant.pk, "name": "Trattoria Roma", "slug": "roma"},
            "kind": "sale",
            "amount": "25.00",
            "order": first.pk,
            "refund": None,
            "description": f"Sale: order #{first.pk}",
            **NOT_A_DEDUCTION,
        },
    ]
    assert body["periods"] == [
        {"starts_on": "2026-11-16", "ends_on": "2026-11-22", "total": "8.32", "entries": 2} | OPEN,
        {"starts_on": "2026-11-09", "ends_on": "2026-11-15", "total": "25.00", "entries": 1} | OPEN,
    ]
    assert body["balance"] == "33.32"


def test_an_empty_ledger(api_as, partner, restaurant):
    body = api_as(partner).get(LEDGER).json()
    assert body == {
        "count": 0, "next": None, "previous": None, "results": [], "periods": [],
        "balance": "0.00",
    }  # fmt: skip


def test_pages_of_entries_keep_every_period(monkeypatch, api_as, partner, restaurant, two_weeks):
    first = two_weeks[0]
    monkeypatch.setattr(PageNumberPagination, "page_size", 2)

    body = api_as(partner).get(LEDGER, {"page": 2}).json()

    assert (body["count"], body["next"]) == (3, None)
    assert body["previous"].endswith(LEDGER)
    assert [e["order"] for e in body["results"]] == [first.pk]
    assert [p["total"] for p in body["periods"]] == ["8.32", "25.00"]
    assert body["balance"] == "33.32"


def test_only_the_partners_restaurants_and_one_by_id(
    api_as, buyer, partner, other_partner, restaurant, menu, two_weeks
):
    theirs = other_partner.restaurants.get()
    MenuItemFactory(restaurant=theirs, name="Nigiri", price=D("9.00"))
    their_order = sold(buyer, theirs)
    second_own = RestaurantFactory(name="Roma Due", slug="roma-due", members=[partner])
    MenuItemFactory(restaurant=second_own, name="Pane", price=D("4.00"))
    own_order = sold(buyer, second_own)

    mine = api_as(partner).get(LEDGER).json()
    one = api_as(partner).get(LEDGER, {"restaurant": second_own.pk}).json()
    theirs_body = api_as(other_partner).get(LEDGER).json()

    assert mine["count"] == 4
    assert their_order.pk not in [e["order"] for e in mine["results"]]
    assert [(e["order"], e["amount"]) for e in one["results"]] == [(own_order.pk, "4.00")]
    assert (one["balance"], len(one["periods"])) == ("4.00", 1)
    assert [(e["order"], e["amount"]) for e in theirs_body["results"]] == [(their_order.pk, "9.00")]


@pytest.mark.parametrize(
    ("case", "raw", "status", "code"),
    [("another restaurant", "other", 404, "not_found"), ("not a number", "abc", 400, "wrong_type")],
)
def test_a_restaurant_not_the_partners_is_refused(
    api_as, partner, other_partner, restaurant, case, raw, status, code
):
    raw = other_partner.restaurants.get().pk if raw == "other" else raw
    response = api_as(partner).get(LEDGER, {"restaurant": raw})
    assert (response.status_code, response.json()["code"]) == (status, code)


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("anonymous", 401),
        ("buyer", 403),
        ("other_buyer", 403),
        ("partner", 200),
        ("other_partner", 200),
        ("agent", 403),
        ("supervisor", 403),
    ],
)
def test_matrix_seller_ledger(users, restaurant, two_weeks, role, expected):
    response = token_client(users[role]).get(LEDGER)
    assert response.status_code == expected
    if expected == 200:
        assert response.json()["count"] == (3 if role == "partner" else 0)
    elif expected == 403:
        assert response.json()["code"] == "not_a_partner"


def test_query_count_does_not_grow_with_entries(
    api_as, buyer, partner, restaurant, menu, django_assert_num_queries
):
    client = api_as(partner)
    sold(buyer, restaurant)
    client.get(LEDGER)  # warm the token and session lookups
    with django_assert_num_queries(5) as few:
        assert client.get(LEDGER).json()["count"] == 1
    for _ in range(5):
        sold(buyer, restaurant)
    with django_assert_num_queries(len(few.captured_queries)):
        assert client.get(LEDGER).json()["count"] == 6
