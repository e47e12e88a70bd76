"""Exactly once under concurrency (issue 8, D-11): two late sweeps started at the same moment
over the same 1,000 late orders, and a sweep racing a buyer's late claim, on PostgreSQL with real
threads and their own connections."""

import datetime as dt

import pytest
import time_machine
from django.db.models import Count, Sum
from django.utils import timezone

from orders.models import Order
from refunds.models import Refund, RefundRequest
from refunds.services.late import late_order_auto_refund
from refunds.services.requests import refund_request_submit
from refunds.tasks import auto_refund_late_orders
from tests.bulk_orders import orders_like
from tests.concurrency import run_concurrently
from tests.conftest import NOW, advance, place_order, refunds_processed

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def late_orders(buyer, restaurant, count):
    """`count` accepted delivery orders: one placed through the services, the rest like it."""
    with time_machine.travel(NOW, tick=False):
        first = advance(place_order(buyer, restaurant, {restaurant.menu.first(): 1}), "accept")
        orders = [first, *orders_like(first, count - 1)]
    return orders, max(o.estimated_delivery_at for o in orders) + dt.timedelta(minutes=121)


def test_two_sweeps_at_the_same_moment_refund_each_of_1000_late_orders_once(buyer, restaurant):
    orders, late = late_orders(buyer, restaurant, 1000)

    with time_machine.travel(late):
        results = run_concurrently(auto_refund_late_orders, 2)

    assert all(isinstance(r, dict) for r in results), results
    assert sum(r["acted_on"] for r in results) == 1000
    per_order = Refund.objects.values("order").annotate(n=Count("pk"), total=Sum("amount"))
    assert len(per_order) == 1000
    assert {(row["n"], row["total"]) for row in per_order} == {(1, orders[0].amount_paid)}
    assert Order.objects.filter(auto_late_refunded_at__isnull=True).count() == 0
    with time_machine.travel(late + dt.timedelta(minutes=1)):
        assert auto_refund_late_orders()["acted_on"] == 0
        refunds_processed()  # the refunds ran on commit (eager); anything left runs now
    assert set(Refund.objects.values_list("status", flat=True)) == {"succeeded"}


@pytest.mark.parametrize("reason", ["significant_delay", "late_delivery"])
def test_a_sweep_and_a_late_claim_racing_move_money_once(buyer, restaurant, reason):
    orders, late = late_orders(buyer, restaurant, 5)

    outcomes = []
    with time_machine.travel(late):
        for order in orders:
            calls = [
                lambda order=order: late_order_auto_refund(order_id=order.pk, now=timezone.now()),
                lambda order=order: refund_request_submit(
                    order_id=order.pk, actor=buyer, reason=reason
                ),
            ]
            outcomes.append(run_concurrently(lambda calls=calls: calls.pop()(), 2))
        refunds_processed()

    assert not [r for pair in outcomes for r in pair if isinstance(r, Exception)], outcomes
    for order in orders:
        refunds = Refund.objects.filter(order=order)
        assert refunds.count() == 1
        assert refunds.get().amount == order.amount_paid
        assert refunds.get().status == "succeeded"
        order.refresh_from_db()
        assert order.auto_late_refunded_at is not None
    claims = RefundRequest.objects.all()
    assert len(claims) == 5
    assert {c.status for c in claims} <= {"refunded", "denied"}
    for claim in claims.filter(status="denied"):
        assert claim.suggested_code == "nothing_to_refund"
