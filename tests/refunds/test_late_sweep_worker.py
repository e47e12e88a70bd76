"""The late sweep on a real Celery worker over Redis (issue 8, must show): the task is sent
through the broker, an order 121 minutes late is refunded once by the worker and the buyer
emailed, one 119 minutes late is not."""

import datetime as dt
import time

import pytest
import time_machine
from django.core import mail

from refunds.models import Refund
from refunds.tasks import auto_refund_late_orders
from tests.conftest import NOW, advance, place_order, processor_refunds, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


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
