"""The late sweep on a real Celery worker over Redis (issue 8, must show): the task is sent
through the broker, an order 121 minutes late is refunded once by the worker and the buyer
emailed, one 119 minutes late is not."""

import datetime as dt
import time

import pytest
import time_machine
from celery.contrib.testing.worker import start_worker
from django.core import mail

from config.celery import app
from refunds.models import Refund
from refunds.tasks import auto_refund_late_orders
from tests.conftest import NOW, advance, place_order, processor_refunds

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker(monkeypatch):
    monkeypatch.setitem(app.conf, "task_always_eager", False)
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        yield


def wait_for(condition, seconds=20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_the_worker_refunds_the_order_121_minutes_late_once_and_emails_the_buyer(
    worker, buyer, restaurant, menu
):
    with time_machine.travel(NOW, tick=False):
        late = advance(place_order(buyer, restaurant, {menu["Margherita"]: 1}), "accept")
    with time_machine.travel(NOW + dt.timedelta(minutes=2), tick=False):
        not_yet = advance(place_order(buyer, restaurant, {menu["Tiramisu"]: 1}), "accept")
    mail.outbox.clear()

    with time_machine.travel(late.estimated_delivery_at + dt.timedelta(minutes=121)):
        auto_refund_late_orders.delay()
        assert wait_for(
            lambda: (
                Refund.objects.filter(order=late, status="succeeded").exists()
                and any("refunded in full" in m.subject for m in mail.outbox)
            )
        )
        auto_refund_late_orders.delay()  # a second tick finds nothing more to do
        time.sleep(1)

    assert Refund.objects.filter(order=late).count() == 1
    assert not Refund.objects.filter(order=not_yet).exists()
    made = [r for r in processor_refunds() if r.status == "succeeded"]
    assert [r.amount for r in made] == [late.amount_paid]
    emailed = [m for m in mail.outbox if "refunded in full" in m.subject]
    assert len(emailed) == 1
    assert emailed[0].to == [buyer.email]
    assert "121 minutes late" in emailed[0].subject
    assert "(L-6.1, L-3.1)" in emailed[0].body
