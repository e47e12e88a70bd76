"""D-7's must-show on a real Celery worker over Redis and PostgreSQL: card refunds the processor
declines or times out on are told "on its way", retried by the beat task once the processor
answers, and move money exactly once; one that keeps failing goes to support once."""

import datetime as dt
import time

import pytest
import time_machine
from django.utils import timezone

from core.models import Notification
from disputes.models import Intervention
from orders.services.cancellation import order_cancel_by_buyer
from refunds.models import Refund, RefundRequest, RestaurantLedgerEntry
from refunds.services.decisions import refund_request_approve
from refunds.services.requests import refund_request_submit
from refunds.tasks import retry_failed_refunds
from tests.conftest import advance, place_order, processor_refunds, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def a_free_cancellation_and_an_approved_claim(buyer, restaurant, menu, agent):
    placed = place_order(buyer, restaurant, {menu["Margherita"]: 1})
    order_cancel_by_buyer(order_id=placed.pk, actor=buyer)
    delivered = advance(
        place_order(buyer, restaurant, {menu["Margherita"]: 1, menu["Tiramisu"]: 1}),
        "accept",
        "start_preparation",
        "mark_ready",
        "dispatch",
        "deliver",
    )
    tiramisu = delivered.items.get(name="Tiramisu")
    request = refund_request_submit(
        order_id=delivered.pk,
        actor=buyer,
        reason="missing_items",
        items=[(tiramisu.pk, 1)],
        description="No tiramisu in the bag.",
    )
    refund_request_approve(request_id=request.pk, actor=agent)
    return request


def tried(count):
    return lambda: (
        all(r.attempts >= 1 for r in Refund.objects.all()) and (Refund.objects.count() == count)
    )


def all_succeeded():
    return not Refund.objects.exclude(status="succeeded").exists()


@pytest.mark.parametrize("fault", ["decline", "timeout"])
def test_refunds_wait_while_the_processor_fails_then_move_once(
    worker, settings, buyer, restaurant, menu, agent, fault
):
    settings.LOJIX_SIMULATED_GATEWAY_FAULTS = {"refund": fault}
    request = a_free_cancellation_and_an_approved_claim(buyer, restaurant, menu, agent)

    assert wait_for(tried(2))
    request.refresh_from_db()
    assert request.status == "approved"  # not refunded: no money moved
    assert set(Refund.objects.values_list("status", flat=True)) == {"failed"}
    assert not RestaurantLedgerEntry.objects.filter(kind="refund_deduction").exists()
    told = " ".join(Notification.objects.filter(user=buyer).values_list("body", flat=True))
    assert "on its way" in told
    assert "sent to your card" not in told

    settings.LOJIX_SIMULATED_GATEWAY_FAULTS = {}
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=2)):
        retry_failed_refunds.delay()
        assert wait_for(all_succeeded)

    request.refresh_from_db()
    assert request.status == "refunded"
    made = [r for r in processor_refunds() if r.status == "succeeded"]
    assert sorted(r.amount for r in made) == sorted(Refund.objects.values_list("amount", flat=True))
    assert len(made) == 2
    assert RestaurantLedgerEntry.objects.filter(kind="refund_deduction").count() == 1


def test_a_refund_that_keeps_failing_opens_one_case(worker, settings, buyer, restaurant, menu):
    settings.LOJIX_SIMULATED_GATEWAY_FAULTS = {"refund": "decline"}
    placed = place_order(buyer, restaurant, {menu["Margherita"]: 1})
    placed.policy_version.__class__.objects.filter(pk=placed.policy_version_id).update(
        refund_max_attempts=2
    )
    order_cancel_by_buyer(order_id=placed.pk, actor=buyer)
    assert wait_for(tried(1))

    with time_machine.travel(timezone.now() + dt.timedelta(minutes=5)):
        retry_failed_refunds.delay()
        assert wait_for(lambda: Intervention.objects.filter(kind="refund_failed").exists())
        retry_failed_refunds.delay()  # nothing is due any more
        time.sleep(1)

    refund = Refund.objects.get()
    assert (refund.status, refund.attempts, refund.next_attempt_at) == ("failed", 2, None)
    assert Intervention.objects.filter(kind="refund_failed", status="open").count() == 1
    assert not RefundRequest.objects.exists()
