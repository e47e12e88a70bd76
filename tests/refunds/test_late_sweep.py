"""The automatic refund of a delivery over 2 hours late (L-6.1, L-3.1, D-8): the sweep task and
its service on PostgreSQL, the refund made by the worker stand-in, and late claims that agree
with the sweep (issue 8, items 1 and 2)."""

import datetime as dt
import logging
from decimal import Decimal as D

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.models import Notification, OutboxMessage
from core.services import SEND_NOTIFICATION_EMAILS
from disputes.models import Incident
from orders.models import Order, OrderEvent, PolicyVersion
from refunds import tasks
from refunds.models import Refund, RefundRequest
from refunds.selectors import order_late_candidates
from refunds.services.decisions import refund_request_approve
from refunds.services.late import late_order_auto_refund, late_orders_auto_refund
from refunds.services.requests import refund_request_submit
from refunds.tasks import auto_refund_late_orders
from tests.conftest import advance, place_order, refunds_processed
from tests.factories import IncidentFactory

pytestmark = pytest.mark.django_db

OUT = ("accept", "start_preparation", "mark_ready", "dispatch")


@pytest.fixture
def out_for_delivery(now, buyer, restaurant, menu):
    """Margherita 12.50 + delivery 2.99, paid 15.49 by card, out for delivery."""
    return advance(place_order(buyer, restaurant, {menu["Margherita"]: 1}), *OUT)


def travel_late(now, order, minutes):
    now.move_to(order.estimated_delivery_at + dt.timedelta(minutes=minutes))


def card_refunds(order):
    return list(Refund.objects.filter(order=order).values_list("amount", "status", "reason"))


def test_121_minutes_late_is_refunded_in_full_once_and_the_buyer_told_why(
    now, out_for_delivery, buyer
):
    order = out_for_delivery
    travel_late(now, order, 121)

    first = auto_refund_late_orders()
    second = auto_refund_late_orders()

    assert (first["looked_at"], first["acted_on"], first["skipped"]) == (1, 1, 0)
    assert (second["looked_at"], second["acted_on"]) == (0, 0)  # it left the index
    refund = Refund.objects.get(order=order)
    assert (refund.amount, refund.destination, refund.status) == (D("15.49"), "card", "pending")
    assert refund.idempotency_key == f"late-auto:{order.pk}:card"
    assert refund.clauses == ["L-6.1", "L-3.1"]
    assert refund.request is None
    order.refresh_from_db()
    assert order.auto_late_refunded_at is not None
    event = order.events.get(name="late_auto_refund")
    assert (event.actor_role, event.clauses, event.amount) == (
        "policy",
        ["L-6.1", "L-3.1"],
        D("15.49"),
    )
    told = Notification.objects.get(user=buyer, title__contains="refunded in full")
    assert told.title == f"Order #{order.pk}: refunded in full, 121 minutes late"
    assert told.body.startswith(
        "Your order is 121 minutes late, over 120 minutes: a full refund of what you paid, "
        "automatically (L-6.1, L-3.1). Refund of 15.49"
    )
    assert OutboxMessage.objects.filter(
        task=SEND_NOTIFICATION_EMAILS, kwargs={"notification_ids": [told.pk]}
    ).exists()

    assert refunds_processed() == {"succeeded": 1}
    refund.refresh_from_db()
    assert refund.status == "succeeded"
    assert Notification.objects.filter(user=buyer, title=f"Order #{order.pk}: refund sent").exists()
    assert auto_refund_late_orders()["acted_on"] == 0
    assert Refund.objects.filter(order=order).count() == 1


def test_119_minutes_late_is_not_refunded(now, out_for_delivery):
    travel_late(now, out_for_delivery, 119)

    result = auto_refund_late_orders()

    assert (result["looked_at"], result["acted_on"]) == (0, 0)
    assert not Refund.objects.exists()
    assert not Notification.objects.filter(title__contains="refunded in full").exists()


def test_at_exactly_120_minutes_a_candidate_is_looked_at_and_skipped(now, out_for_delivery):
    travel_late(now, out_for_delivery, 120)

    assert late_order_auto_refund(
        order_id=out_for_delivery.pk, now=out_for_delivery.estimated_delivery_at
    ) == ("not_late_enough")
    assert not Refund.objects.exists()


def test_delivered_125_minutes_late_is_refunded(now, out_for_delivery):
    order = out_for_delivery
    travel_late(now, order, 125)
    order = advance(order, "deliver")
    now.shift(dt.timedelta(hours=5))

    result = auto_refund_late_orders()

    assert result["acted_on"] == 1
    assert card_refunds(order) == [(D("15.49"), "pending", f"Order #{order.pk}: 125 minutes late")]


def test_delivered_late_but_under_two_hours_is_not_refunded_later(now, out_for_delivery):
    order = out_for_delivery
    travel_late(now, order, 100)
    advance(order, "deliver")
    now.shift(dt.timedelta(hours=5))

    result = auto_refund_late_orders()

    assert (result["looked_at"], result["acted_on"]) == (1, 0)
    assert result["skipped_by_reason"] == {"not_late_enough": 1}
    assert not Refund.objects.exists()
    order.refresh_from_db()
    assert order.late_sweep_done_at is not None  # delivered: its lateness can no longer change
    assert auto_refund_late_orders()["looked_at"] == 0


def test_an_order_still_in_the_kitchen_long_past_its_estimate_is_refunded(
    now, buyer, restaurant, menu
):
    order = advance(place_order(buyer, restaurant, {menu["Margherita"]: 1}), "accept")
    travel_late(now, order, 150)

    assert auto_refund_late_orders()["acted_on"] == 1
    assert Refund.objects.get(order=order).amount == D("15.49")


@pytest.mark.parametrize("cause", ["weather", "traffic"])
def test_a_weather_delay_over_two_hours_is_refunded_unless_the_version_blocks_it(
    now, out_for_delivery, cause
):
    order = out_for_delivery
    Order.objects.filter(pk=order.pk).update(delay_cause=cause)
    travel_late(now, order, 121)
    PolicyVersion.objects.filter(pk=order.policy_version_id).update(weather_blocks_automatic=True)

    blocked = auto_refund_late_orders()
    assert blocked["skipped_by_reason"] == {"weather_blocks_automatic": 1}
    assert not Refund.objects.exists()
    assert auto_refund_late_orders()["looked_at"] == 1  # still on its way: looked at again

    PolicyVersion.objects.filter(pk=order.policy_version_id).update(weather_blocks_automatic=False)
    assert auto_refund_late_orders()["acted_on"] == 1
    assert Refund.objects.get(order=order).amount == D("15.49")


@pytest.mark.parametrize("fulfillment", ["pickup", "dine_in"])
def test_pickup_and_dine_in_are_never_swept(now, buyer, restaurant, menu, fulfillment):
    order = advance(
        place_order(buyer, restaurant, {menu["Margherita"]: 1}, fulfillment=fulfillment),
        "accept",
    )
    now.shift(dt.timedelta(hours=6))

    assert auto_refund_late_orders()["looked_at"] == 0
    assert late_order_auto_refund(order_id=order.pk, now=timezone.now()) == "not_swept"
    assert not Refund.objects.exists()


@pytest.mark.parametrize("scope", ["all", "its_restaurant"])
def test_an_order_under_force_majeure_is_held_for_agents(now, out_for_delivery, scope):
    order = out_for_delivery
    IncidentFactory(
        kind=Incident.Kind.FORCE_MAJEURE,
        title="Flooding",
        starts_at=order.placed_at - dt.timedelta(hours=1),
        ends_at=order.placed_at + dt.timedelta(hours=1),
        restaurants=[order.restaurant] if scope == "its_restaurant" else [],
    )
    travel_late(now, order, 200)

    result = auto_refund_late_orders()

    assert result["held_for_agents"] == [order.pk]
    assert result["skipped_by_reason"] == {"held": 1}
    assert not Refund.objects.exists()
    assert auto_refund_late_orders()["held_for_agents"] == [order.pk]  # until agents decide


def test_force_majeure_elsewhere_or_closed_does_not_hold_the_order(
    now, out_for_delivery, other_partner
):
    order = out_for_delivery
    window = {
        "starts_at": order.placed_at - dt.timedelta(hours=1),
        "ends_at": order.placed_at + dt.timedelta(hours=1),
    }
    Incident.objects.create(
        kind="force_majeure", title="Closed", status=Incident.Status.CLOSED, **window
    )
    IncidentFactory(
        kind="force_majeure",
        title="Elsewhere",
        restaurants=[other_partner.restaurants.first()],
        **window,
    )
    Incident.objects.create(
        kind="force_majeure",
        title="Later",
        starts_at=order.placed_at + dt.timedelta(minutes=1),
    )
    Incident.objects.create(kind="outage", title="Outage", **window)
    travel_late(now, order, 200)

    assert auto_refund_late_orders()["acted_on"] == 1


def test_an_order_already_refunded_in_full_is_skipped(now, out_for_delivery, agent, buyer):
    order = out_for_delivery
    travel_late(now, order, 30)
    request = refund_request_submit(order_id=order.pk, actor=buyer, reason="not_delivered")
    refund_request_approve(request_id=request.pk, actor=agent)
    now.shift(dt.timedelta(hours=3))

    result = auto_refund_late_orders()

    assert (result["acted_on"], result["skipped_by_reason"]) == (0, {"nothing_to_refund": 1})
    assert Refund.objects.filter(order=order).count() == 1
    assert auto_refund_late_orders()["looked_at"] == 0


def test_the_marker_is_only_for_deliveries(now, buyer, restaurant, menu):
    order = place_order(buyer, restaurant, {menu["Margherita"]: 1}, fulfillment="pickup")
    with pytest.raises(IntegrityError), transaction.atomic():
        Order.objects.filter(pk=order.pk).update(auto_late_refunded_at=order.placed_at)


def test_the_sweep_logs_what_it_did_as_structured_fields(now, out_for_delivery, caplog):
    travel_late(now, out_for_delivery, 121)

    with caplog.at_level(logging.INFO, logger="refunds.tasks"):
        auto_refund_late_orders()

    record = next(r for r in caplog.records if r.msg.startswith("late sweep:"))
    assert (record.looked_at, record.acted_on, record.skipped) == (1, 1, 0)
    assert record.duration_ms >= 0


def test_the_sweep_works_in_bounded_batches(now, buyer, restaurant, menu):
    orders = [
        advance(place_order(buyer, restaurant, {menu["Tiramisu"]: 1}), *OUT) for _ in range(5)
    ]
    now.move_to(max(o.estimated_delivery_at for o in orders) + dt.timedelta(minutes=121))

    first = auto_refund_late_orders(batch_size=2, max_rows=3)
    rest = auto_refund_late_orders(batch_size=2, max_rows=3)

    assert (first["looked_at"], first["acted_on"], rest["acted_on"]) == (3, 3, 2)
    assert Refund.objects.count() == 5


def test_the_claim_query_reads_the_partial_index(now, out_for_delivery):
    travel_late(now, out_for_delivery, 121)
    with CaptureQueriesContext(connection) as queries:
        order_late_candidates(now=timezone.now(), limit=200)
    sql = next(q["sql"] for q in queries.captured_queries if '"orders_order"' in q["sql"])
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "order_late_sweep_due" in plan


# -- item 2: claims that agree with the sweep ----------------------------------------------------


@pytest.mark.parametrize("reason", ["significant_delay", "late_delivery"])
def test_a_late_claim_over_two_hours_is_refunded_at_once_and_the_sweep_adds_nothing(
    now, out_for_delivery, buyer, reason
):
    order = out_for_delivery
    travel_late(now, order, 130)

    request = refund_request_submit(order_id=order.pk, actor=buyer, reason=reason)

    assert (request.status, request.decided_by, request.decided_amount) == (
        "approved",
        None,
        D("15.49"),
    )
    assert request.decision_clauses == ["L-6.1", "L-3.1"]
    order.refresh_from_db()
    assert order.auto_late_refunded_at is not None
    assert auto_refund_late_orders()["looked_at"] == 0
    assert late_order_auto_refund(order_id=order.pk, now=timezone.now()) == "already_refunded"
    refunds_processed()
    request.refresh_from_db()
    assert request.status == "refunded"
    assert Refund.objects.filter(order=order).count() == 1


def test_a_late_claim_after_the_sweep_finds_nothing_left(now, out_for_delivery, buyer):
    order = out_for_delivery
    travel_late(now, order, 130)
    auto_refund_late_orders()

    request = refund_request_submit(order_id=order.pk, actor=buyer, reason="significant_delay")

    assert (request.status, request.suggested_code) == ("denied", "nothing_to_refund")
    assert Refund.objects.filter(order=order).count() == 1


@pytest.mark.parametrize("reason", ["not_delivered", "late_delivery", "significant_delay"])
def test_late_and_non_delivery_claims_open_before_delivery_once_the_estimate_passed(
    now, buyer, restaurant, menu, reason
):
    order = advance(place_order(buyer, restaurant, {menu["Margherita"]: 1}), "accept")
    now.move_to(order.estimated_delivery_at - dt.timedelta(minutes=1))
    early = refund_request_submit(order_id=order.pk, actor=buyer, reason=reason)
    assert (early.status, early.suggested_code) == ("denied", "order_not_received")

    now.move_to(order.estimated_delivery_at + dt.timedelta(minutes=61))
    later = refund_request_submit(order_id=order.pk, actor=buyer, reason=reason)
    assert later.suggested_code != "order_not_received"
    assert RefundRequest.objects.filter(order=order).count() == 2


def test_events_say_the_policy_refunded(now, out_for_delivery):
    travel_late(now, out_for_delivery, 121)
    auto_refund_late_orders()
    names = list(out_for_delivery.events.values_list("name", "actor_role"))
    assert ("late_auto_refund", OrderEvent.Role.POLICY) in names
    assert ("refund_pending", OrderEvent.Role.POLICY) in names


def test_a_sweep_stopped_by_its_time_limit_reports_it_and_the_next_tick_goes_on(
    now, buyer, restaurant, menu, monkeypatch
):
    orders = [
        advance(place_order(buyer, restaurant, {menu["Tiramisu"]: 1}), *OUT) for _ in range(3)
    ]
    now.move_to(max(o.estimated_delivery_at for o in orders) + dt.timedelta(minutes=121))
    calls = []

    def second_batch_hits_the_limit(**kwargs):
        calls.append(kwargs["order_ids"])
        if len(calls) == 2:
            raise SoftTimeLimitExceeded()
        return late_orders_auto_refund(**kwargs)

    monkeypatch.setattr(tasks, "late_orders_auto_refund", second_batch_hits_the_limit)
    stopped = auto_refund_late_orders(batch_size=1)
    monkeypatch.undo()

    assert (stopped["acted_on"], stopped["stopped_at_time_limit"]) == (1, True)
    assert auto_refund_late_orders()["acted_on"] == 2
    assert Refund.objects.count() == 3
