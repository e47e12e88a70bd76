"""The missing-order sweep on PostgreSQL with real threads and a real Celery worker (L-6.2,
D-8): two sweeps at once give each order up once; a locate racing the sweep wins or loses whole;
through the worker a missing order is refunded once and the buyer emailed, a located one not."""

import datetime as dt
import threading
import time

import pytest
import time_machine
from django.core import mail
from django.db import connection, transaction

from disputes.models import Intervention
from orders.models import Order, OrderEvent
from orders.selectors import order_missing_due
from orders.services.missing import order_missing_locate, order_report_missing
from orders.tasks import give_up_missing_orders
from refunds.models import Refund
from tests.concurrency import run_concurrently
from tests.conftest import NOW, advance, place_order, processor_refunds, refunds_processed, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def missing_orders(buyer, restaurant, count):
    """`count` orders reported missing at NOW; all due for giving up from NOW + 60 min."""
    orders = []
    with time_machine.travel(NOW, tick=False):
        for _ in range(count):
            order = advance(
                place_order(buyer, restaurant), "accept", "start_preparation", "mark_ready",
                "dispatch",
            )  # fmt: skip
            orders.append(order_report_missing(order_id=order.pk, actor=buyer))
    return orders


def test_two_sweeps_at_once_give_each_order_up_once(buyer, restaurant):
    orders = missing_orders(buyer, restaurant, 12)

    with time_machine.travel(NOW + dt.timedelta(minutes=61)):
        results = run_concurrently(give_up_missing_orders, 2)

    assert not [r for r in results if isinstance(r, Exception)]
    assert sum(r["given_up"] for r in results) == 12
    assert Order.objects.filter(status="undeliverable").count() == 12
    assert OrderEvent.objects.filter(name="give_up").count() == 12
    assert Refund.objects.count() == 12
    assert sorted(Refund.objects.values_list("order_id", flat=True)) == sorted(o.pk for o in orders)
    assert Intervention.objects.filter(status="resolved").count() == 12
    refunds_processed()
    assert len(processor_refunds()) == 12


def test_a_locate_racing_the_sweep_resolves_the_case_once(buyer, partner, restaurant):
    (order,) = missing_orders(buyer, restaurant, 1)

    steps = [give_up_missing_orders, lambda: order_missing_locate(order_id=order.pk, actor=partner)]
    lock = threading.Lock()

    def one_of_them():
        with lock:
            step = steps.pop()
        return step()

    with time_machine.travel(NOW + dt.timedelta(minutes=61)):
        results = run_concurrently(one_of_them, 2)

    order.refresh_from_db()
    assert order.status in ("delivered", "undeliverable")
    # The loser either skipped the locked row (the sweep) or found it no longer missing.
    errors = [r for r in results if isinstance(r, Exception)]
    if order.status == "undeliverable":
        assert [e.code for e in errors] == ["not_missing"]
        assert Refund.objects.filter(order=order).count() == 1
    else:
        assert errors == []
        assert Refund.objects.filter(order=order).count() == 0
    assert OrderEvent.objects.filter(order=order, name__in=["locate", "give_up"]).count() == 1
    assert Intervention.objects.get(order=order).status == "resolved"
    refunds_processed()


def test_through_a_worker_a_missing_order_is_given_up_refunded_once_and_a_located_one_not(
    worker, buyer, partner, restaurant
):
    lost, found = missing_orders(buyer, restaurant, 2)
    order_missing_locate(order_id=found.pk, actor=partner)

    # Reported at NOW, long before the real clock: both were due; only the lost one is missing.
    give_up_missing_orders.delay()
    give_up_missing_orders.delay()

    def refunded():
        return Refund.objects.filter(order=lost, status="succeeded").count() == 1

    assert wait_for(refunded)
    assert wait_for(lambda: any("refunded in full" in m.subject for m in mail.outbox))
    time.sleep(1)  # the second run has had its chance
    assert Order.objects.get(pk=lost.pk).status == "undeliverable"
    assert Order.objects.get(pk=found.pk).status == "delivered"
    assert Refund.objects.count() == 1
    assert len(processor_refunds()) == 1
    assert [m.to for m in mail.outbox if "refunded in full" in m.subject] == [[buyer.email]]


def test_the_sweep_reads_through_the_partial_index(buyer, restaurant):
    missing_orders(buyer, restaurant, 1)
    with transaction.atomic(), connection.cursor() as cursor:
        # On a handful of rows PostgreSQL prefers a scan; what matters is that the index serves.
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = order_missing_due(now=NOW + dt.timedelta(hours=2)).explain()

    assert "order_missing_reported_idx" in plan
