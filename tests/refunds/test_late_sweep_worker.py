"""The timed rules of late and missing deliveries on a real Celery worker over Redis (issue 8,
must show): each task is sent through the broker and run by the worker, and the refunds go to
the processor and the emails out through the worker too. An order 121 minutes late is refunded
once and the buyer emailed, one 119 minutes late is not; one delivered 125 minutes late is
refunded; a weather delay is refunded unless the pinned version sets `weather_blocks_automatic`;
pickup never; a missing order is given up and refunded after the version's `locate_minutes`,
and a located one is not."""

import datetime as dt

import pytest
import time_machine
from django.core import mail

from core.models import TaskRun
from orders.models import Order, PolicyVersion
from orders.services.delays import order_set_delay_cause
from orders.services.missing import order_missing_locate, order_report_missing
from orders.tasks import give_up_missing_orders
from refunds.models import Refund
from refunds.tasks import auto_refund_late_orders
from tests.conftest import NOW, advance, place_order, processor_refunds, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

OUT = ("accept", "start_preparation", "mark_ready", "dispatch")


def run_on_the_worker(task) -> None:
    """Send the task through the broker and wait until the worker has recorded the run (admin's
    "Task runs"): what it decided is committed by then, so a refund it did not make is absent."""
    TaskRun.objects.filter(name=task.name).delete()
    task.delay()
    assert wait_for(lambda: TaskRun.objects.filter(name=task.name, outcome="succeeded").exists())


def refunded(order) -> bool:
    return Refund.objects.filter(order=order, status="succeeded").exists()


def emails(subject_part: str) -> list:
    return [m for m in mail.outbox if subject_part in m.subject]


def succeeded_at_the_processor() -> list:
    return sorted(r.amount for r in processor_refunds() if r.status == "succeeded")


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
        assert wait_for(lambda: refunded(late) and emails("refunded in full"))
        run_on_the_worker(auto_refund_late_orders)  # a second tick finds nothing more to do

    assert Refund.objects.filter(order=late).count() == 1
    assert not Refund.objects.filter(order=not_yet).exists()
    assert succeeded_at_the_processor() == [late.amount_paid]
    emailed = emails("refunded in full")
    assert len(emailed) == 1
    assert emailed[0].to == [buyer.email]
    assert "121 minutes late" in emailed[0].subject
    assert "(L-6.1, L-3.1)" in emailed[0].body


def test_the_worker_refunds_late_deliveries_and_weather_unless_the_version_blocks_it_never_pickup(
    worker, buyer, partner, restaurant, menu
):
    with time_machine.travel(NOW, tick=False):
        delivered = advance(place_order(buyer, restaurant, {menu["Margherita"]: 1}), *OUT)
        weather = advance(place_order(buyer, restaurant, {menu["Tiramisu"]: 1}), *OUT)
        pickup = advance(
            place_order(buyer, restaurant, {menu["Lemonade"]: 1}, fulfillment="pickup"), "accept"
        )
        PolicyVersion.objects.create(
            status="published",  # K-UP: only a published version applies
            label="2",
            effective_from=NOW + dt.timedelta(minutes=1),
            text="Weather and traffic delays are left to a request.",
            weather_blocks_automatic=True,
        )
    with time_machine.travel(NOW + dt.timedelta(minutes=2), tick=False):
        blocked = advance(place_order(buyer, restaurant, {menu["Tiramisu"]: 2}), *OUT)
        for order in (weather, blocked):
            order_set_delay_cause(order_id=order.pk, actor=partner, delay_cause="weather")
    assert (weather.policy_version.label, blocked.policy_version.label) == ("1", "2")
    threshold = delivered.policy_version.late_auto_refund_minutes
    on_the_door = delivered.estimated_delivery_at + dt.timedelta(minutes=threshold + 5)
    with time_machine.travel(on_the_door, tick=False):
        delivered = advance(delivered, "deliver")
    mail.outbox.clear()

    with time_machine.travel(NOW + dt.timedelta(hours=6)):
        run_on_the_worker(auto_refund_late_orders)
        assert wait_for(lambda: refunded(delivered) and refunded(weather))
        assert wait_for(lambda: len(emails("refunded in full")) == 2)

    assert not Refund.objects.filter(order__in=[blocked, pickup]).exists()
    assert succeeded_at_the_processor() == sorted([delivered.amount_paid, weather.amount_paid])
    # Judged by when it was delivered, not by when the sweep ran.
    assert emails(f"Order #{delivered.pk}: refunded in full, {threshold + 5} minutes late")
    assert emails(f"Order #{weather.pk}: refunded in full")
    assert not emails(f"Order #{blocked.pk}")
    assert not emails(f"Order #{pickup.pk}")


def test_the_worker_gives_up_a_missing_order_after_locate_minutes_and_not_a_located_one(
    worker, buyer, partner, restaurant, menu
):
    with time_machine.travel(NOW, tick=False):
        lost = advance(place_order(buyer, restaurant, {menu["Margherita"]: 1}), *OUT)
        found = advance(place_order(buyer, restaurant, {menu["Tiramisu"]: 1}), *OUT)
    reported_at = NOW + dt.timedelta(minutes=30)
    with time_machine.travel(reported_at, tick=False):
        for order in (lost, found):
            order_report_missing(order_id=order.pk, actor=buyer)
    with time_machine.travel(reported_at + dt.timedelta(minutes=10), tick=False):
        order_missing_locate(order_id=found.pk, actor=partner)
    give_up_at = reported_at + dt.timedelta(minutes=lost.policy_version.locate_minutes)
    mail.outbox.clear()

    with time_machine.travel(give_up_at - dt.timedelta(minutes=1)):
        run_on_the_worker(give_up_missing_orders)
    assert Order.objects.get(pk=lost.pk).status == Order.Status.MISSING
    assert not Refund.objects.exists()

    with time_machine.travel(give_up_at + dt.timedelta(minutes=1)):
        run_on_the_worker(give_up_missing_orders)
        assert wait_for(lambda: refunded(lost) and emails(f"Order #{lost.pk} refunded in full"))

    statuses = dict(Order.objects.filter(pk__in=[lost.pk, found.pk]).values_list("pk", "status"))
    assert statuses == {lost.pk: Order.Status.UNDELIVERABLE, found.pk: Order.Status.DELIVERED}
    assert list(Refund.objects.values_list("order", "amount")) == [(lost.pk, lost.amount_paid)]
    assert succeeded_at_the_processor() == [lost.amount_paid]
    (emailed,) = emails("refunded in full")
    assert emailed.to == [buyer.email]
    assert "(L-6.2)" in emailed.body
