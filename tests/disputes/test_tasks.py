"""The K-OV beat task: a cancellation request the restaurant leaves unanswered past the pinned
version's `cancellation_response_minutes` is handed to support once, with the buyer and the
restaurant told and the order's timeline saying so."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail

from core.models import Notification
from disputes.models import Intervention
from disputes.selectors import order_ids_with_unanswered_cancellation
from disputes.services.interventions import intervention_hand_over_cancellation_request
from disputes.tasks import hand_unanswered_cancellation_requests_to_support as hand_over
from orders.models import Order, OrderEvent, PolicyVersion
from orders.services.cancellation import (
    order_cancel_by_buyer,
    order_cancellation_approve,
    order_cancellation_deny,
)
from tests.concurrency import run_concurrently
from tests.conftest import NOW, advance, place_order

pytestmark = pytest.mark.django_db

RESPONSE_MINUTES = 10  # version 1


def ask_to_cancel(buyer, restaurant) -> Order:
    """An accepted order whose buyer asked to cancel just now, inside the window."""
    order = advance(place_order(buyer, restaurant), "accept")
    order, _ = order_cancel_by_buyer(order_id=order.pk, actor=buyer)
    assert order.status == Order.Status.CANCELLATION_REQUESTED
    return order


def handed_over_notes(order) -> list[tuple]:
    return [
        (event.actor_role, event.message, event.clauses)
        for event in order.events.filter(kind=OrderEvent.Kind.NOTE, name="handed_to_support")
    ]


def test_version_1_gives_the_restaurant_ten_minutes():
    assert PolicyVersion.objects.get(label="1").cancellation_response_minutes == RESPONSE_MINUTES


def test_an_unanswered_request_is_handed_to_support_once_and_everyone_is_told(
    now, buyer, partner, restaurant, django_capture_on_commit_callbacks
):
    order = ask_to_cancel(buyer, restaurant)
    notifications_before = Notification.objects.count()
    now.shift(dt.timedelta(minutes=RESPONSE_MINUTES, seconds=1))

    with django_capture_on_commit_callbacks(execute=True):
        first = hand_over()
    second = hand_over()

    assert (first, second) == (1, 0)
    case = Intervention.objects.get()
    summary = "Restaurant did not answer the cancellation request within 10 minutes."
    assert (case.order, case.kind, case.status, case.summary) == (
        order,
        Intervention.Kind.UNANSWERED_CANCELLATION,
        Intervention.Status.OPEN,
        summary,
    )
    assert (case.resolved_by, case.resolved_at, case.action_taken) == (None, None, "")
    assert handed_over_notes(order) == [
        (OrderEvent.Role.SYSTEM, f"{summary} Support will decide.", ["K-OV"])
    ]
    told = Notification.objects.order_by("pk")[notifications_before:]
    assert [(n.user, n.title) for n in told] == [
        (buyer, f"Order #{order.pk}: support is deciding"),
        (partner, f"Order #{order.pk} handed to support"),
    ]
    assert [(m.to, m.subject) for m in mail.outbox] == [
        ([buyer.email], f"lojix: Order #{order.pk}: support is deciding"),
        ([partner.email], f"lojix: Order #{order.pk} handed to support"),
    ]
    order.refresh_from_db()
    assert (order.status, order.cancellation_fee) == (
        Order.Status.CANCELLATION_REQUESTED,
        Decimal("2.32"),  # 15 % of 15.49 paid (12.50 + 2.99 delivery): still the quoted fee
    )


def test_a_request_still_inside_the_response_time_is_not_handed_over(now, buyer, restaurant):
    order = ask_to_cancel(buyer, restaurant)
    notifications_before = Notification.objects.count()
    now.shift(dt.timedelta(minutes=RESPONSE_MINUTES - 1))

    assert hand_over() == 0

    assert not Intervention.objects.exists()
    assert handed_over_notes(order) == []
    assert Notification.objects.count() == notifications_before


@pytest.mark.parametrize("answer", ["approve", "deny"])
def test_a_request_the_restaurant_answered_in_time_is_not_handed_over(
    now, buyer, partner, restaurant, answer
):
    order = ask_to_cancel(buyer, restaurant)
    now.shift(dt.timedelta(minutes=RESPONSE_MINUTES - 1))
    if answer == "approve":
        order_cancellation_approve(order_id=order.pk, actor=partner)
    else:
        order_cancellation_deny(order_id=order.pk, actor=partner, reason="Already in the oven")
    notifications_before = Notification.objects.count()
    now.shift(dt.timedelta(minutes=2))

    assert hand_over() == 0

    assert not Intervention.objects.exists()
    assert handed_over_notes(order) == []
    assert Notification.objects.count() == notifications_before


def test_an_answer_that_comes_in_after_the_sweep_picked_the_order_wins(
    now, buyer, partner, restaurant
):
    order = ask_to_cancel(buyer, restaurant)
    now.shift(dt.timedelta(minutes=RESPONSE_MINUTES + 1))
    picked = order_ids_with_unanswered_cancellation(now=now_utc(), limit=10)
    order_cancellation_deny(order_id=order.pk, actor=partner, reason="Already in the oven")

    handed = intervention_hand_over_cancellation_request(order_id=picked[0], now=now_utc())

    assert (picked, handed) == ([order.pk], False)
    assert not Intervention.objects.exists()
    assert handed_over_notes(order) == []


def test_each_order_is_judged_by_its_pinned_version(now, buyer, restaurant):
    PolicyVersion.objects.create(
        status="published",  # K-UP: only a published version applies
        label="2",
        effective_from=NOW + dt.timedelta(minutes=1),
        text="Restaurants get half an hour to answer.",
        cancellation_response_minutes=30,
    )
    under_v1 = ask_to_cancel(buyer, restaurant)
    now.shift(dt.timedelta(minutes=2))
    under_v2 = ask_to_cancel(buyer, restaurant)
    assert (under_v1.policy_version.label, under_v2.policy_version.label) == ("1", "2")

    now.shift(dt.timedelta(minutes=15))
    after_15 = hand_over()
    handed_after_15 = set(Intervention.objects.values_list("order", flat=True))
    now.shift(dt.timedelta(minutes=16))
    after_31 = hand_over()

    assert (after_15, handed_after_15) == (1, {under_v1.pk})
    assert after_31 == 1
    assert set(Intervention.objects.values_list("order", flat=True)) == {under_v1.pk, under_v2.pk}
    assert Intervention.objects.get(order=under_v2).summary == (
        "Restaurant did not answer the cancellation request within 30 minutes."
    )


def test_the_sweep_works_in_bounded_batches_oldest_first(now, buyer, restaurant):
    orders = []
    for _ in range(3):
        orders.append(ask_to_cancel(buyer, restaurant))
        now.shift(dt.timedelta(seconds=30))
    now.shift(dt.timedelta(minutes=RESPONSE_MINUTES))

    first, second, third = hand_over(batch_size=2), hand_over(batch_size=2), hand_over()

    assert (first, second, third) == (2, 1, 0)
    assert list(Intervention.objects.order_by("pk").values_list("order", flat=True)) == [
        order.pk for order in orders
    ]


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_hand_the_request_over_once(now, buyer, partner, restaurant):
    order = ask_to_cancel(buyer, restaurant)
    notifications_before = Notification.objects.count()
    mail.outbox.clear()
    now.shift(dt.timedelta(minutes=RESPONSE_MINUTES + 1))

    results = run_concurrently(hand_over, 2)

    assert sorted(results) == [0, 1]
    assert Intervention.objects.filter(order=order).count() == 1
    assert len(handed_over_notes(order)) == 1
    assert Notification.objects.count() == notifications_before + 2
    assert sorted(m.to[0] for m in mail.outbox) == sorted([buyer.email, partner.email])


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
