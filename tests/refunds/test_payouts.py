"""Weekly payouts (L-9) on PostgreSQL: `refunds.tasks.close_payout_periods` books one payout per
restaurant per ended week (Monday to Sunday, site time zone), paying the balance at the week's
end, so each deduction lands in a period; a negative balance pays nothing and carries over; two
runs at once book each payout once."""

import datetime as dt
from decimal import Decimal as D

import pytest
import time_machine
from django.db import IntegrityError, transaction
from django.urls import reverse

from refunds.models import RestaurantLedgerEntry
from refunds.selectors import LedgerPeriod
from refunds.services.decisions import refund_request_approve
from refunds.services.requests import refund_request_submit
from refunds.tasks import close_payout_periods
from tests.concurrency import run_concurrently
from tests.conftest import advance, place_order, refunds_processed, token_client

pytestmark = pytest.mark.django_db

Kind = RestaurantLedgerEntry.Kind
THURSDAY_WEEK_1 = dt.datetime(2026, 11, 12, 10, 0, tzinfo=dt.UTC)  # week of Mon 9 Nov
TUESDAY_WEEK_2 = dt.datetime(2026, 11, 17, 10, 0, tzinfo=dt.UTC)  # week of Mon 16 Nov
WEDNESDAY_WEEK_3 = dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.UTC)  # week of Mon 23 Nov
MONDAY_WEEK_2 = dt.datetime(2026, 11, 16, 1, 0, tzinfo=dt.UTC)
MONDAY_WEEK_4 = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.UTC)
SUNDAY_LAST_INSTANT = dt.datetime(2026, 11, 15, 23, 59, 59, 999999, tzinfo=dt.UTC)


def at(moment):
    return time_machine.travel(moment, tick=False)


def delivered(buyer, restaurant, items):
    order = place_order(buyer, restaurant, items)
    return advance(order, "accept", "start_preparation", "mark_ready", "dispatch", "deliver")


def deduct_missing(order, buyer, agent, name):
    """The buyer reports `name` missing and an agent approves: its paid share is deducted."""
    request = refund_request_submit(
        order_id=order.pk,
        actor=buyer,
        reason="missing_items",
        items=[(order.items.get(name=name).pk, 1)],
    )
    refund_request_approve(request_id=request.pk, actor=agent)
    refunds_processed()


def run_at(moment) -> dict:
    with at(moment):
        return close_payout_periods()


def payouts() -> list[tuple]:
    return [
        (p.restaurant_id, p.period_starts_on, p.amount, p.created_at)
        for p in RestaurantLedgerEntry.objects.filter(kind=Kind.PAYOUT).order_by("created_at")
    ]


@pytest.fixture
def week_1(buyer, restaurant, menu):
    """Week 1: 2 Margherita delivered, sale 25.00."""
    with at(THURSDAY_WEEK_1):
        return delivered(buyer, restaurant, {menu["Margherita"]: 2})


def test_an_ended_week_is_closed_by_one_payout_of_its_balance(restaurant, week_1):
    assert run_at(MONDAY_WEEK_2) == {"restaurants": 1, "payouts": 1, "skipped": 0}

    assert payouts() == [(restaurant.pk, dt.date(2026, 11, 9), D("-25.00"), SUNDAY_LAST_INSTANT)]
    payout = RestaurantLedgerEntry.objects.get(kind=Kind.PAYOUT)
    assert payout.description == "Payout for the week of Mon 9 Nov 2026"
    assert run_at(MONDAY_WEEK_2 + dt.timedelta(hours=1)) == {
        "restaurants": 0,
        "payouts": 0,
        "skipped": 0,
    }
    assert len(payouts()) == 1


def test_the_current_week_is_not_closed(restaurant, week_1):
    assert run_at(THURSDAY_WEEK_1 + dt.timedelta(days=3)) == {
        "restaurants": 0,
        "payouts": 0,
        "skipped": 0,
    }
    assert payouts() == []


def test_a_deduction_lands_in_its_week_and_a_negative_week_carries_over(
    buyer, agent, restaurant, menu, week_1, partner
):
    """Week 2 holds only a 12.50 deduction (of week 1's order): its payout is zero and the debt
    is taken off week 3's sale."""
    run_at(MONDAY_WEEK_2)
    with at(TUESDAY_WEEK_2):
        deduct_missing(week_1, buyer, agent, "Margherita")
    with at(WEDNESDAY_WEEK_3):
        delivered(buyer, restaurant, {menu["Margherita"]: 2})

    assert run_at(MONDAY_WEEK_4) == {"restaurants": 1, "payouts": 2, "skipped": 0}

    assert [(starts, amount) for _, starts, amount, _ in payouts()] == [
        (dt.date(2026, 11, 9), D("-25.00")),
        (dt.date(2026, 11, 16), D("0.00")),
        (dt.date(2026, 11, 23), D("-12.50")),  # 25.00 sold less the 12.50 carried
    ]
    response = token_client(partner).get(reverse("api-seller-ledger"))
    periods = response.json()["periods"]
    assert [(p["starts_on"], p["total"], p["closed"], p["paid_out"]) for p in periods] == [
        ("2026-11-23", "12.50", True, "12.50"),
        ("2026-11-16", "-12.50", True, "0.00"),
        ("2026-11-09", "0.00", True, "25.00"),
    ]
    assert response.json()["balance"] == "0.00"


def test_the_seller_page_shows_each_period_closed_by_its_payout(client, partner, week_1):
    run_at(MONDAY_WEEK_2)
    client.force_login(partner)
    with at(MONDAY_WEEK_2):
        response = client.get(reverse("seller:ledger"))
    assert response.context["periods"] == [
        LedgerPeriod(dt.date(2026, 11, 9), dt.date(2026, 11, 15), D("0.00"), 2, D("25.00"))
    ]
    assert "Closed: 25.00 USD paid" in response.content.decode()


def test_the_database_refuses_a_second_payout_for_a_period(restaurant, week_1):
    run_at(MONDAY_WEEK_2)
    with pytest.raises(IntegrityError), transaction.atomic():
        RestaurantLedgerEntry.objects.create(
            restaurant=restaurant,
            kind=Kind.PAYOUT,
            amount=D("-1.00"),
            period_starts_on=dt.date(2026, 11, 9),
            description="again",
        )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_book_each_payout_once(buyer, restaurant, menu):
    with at(THURSDAY_WEEK_1):
        delivered(buyer, restaurant, {menu["Margherita"]: 2})

    with at(MONDAY_WEEK_2):
        results = run_concurrently(close_payout_periods, 2)

    assert not [r for r in results if isinstance(r, Exception)]
    assert sum(r["payouts"] for r in results) == 1
    assert payouts() == [(restaurant.pk, dt.date(2026, 11, 9), D("-25.00"), SUNDAY_LAST_INSTANT)]
