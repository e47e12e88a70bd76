"""Non-delivery (L-6.2): report, locate, give up after exactly `locate_minutes`, replacement;
refusals change nothing; the `missing_order` case opens once and closes by whichever path."""

import datetime as dt
from decimal import Decimal as D

import pytest
import time_machine
from django.conf import settings

from core.errors import DomainError
from core.models import Notification, OutboxMessage
from disputes.models import Intervention
from orders import policy
from orders.models import Order, OrderEvent
from orders.selectors import order_ids_missing_due
from orders.services.missing import (
    order_missing_give_up,
    order_missing_locate,
    order_missing_replace,
    order_report_missing,
)
from orders.tasks import give_up_missing_orders
from refunds.models import Refund, RestaurantLedgerEntry
from refunds.services.execution import refund_execute
from tests.conftest import NOW, advance, place_order, refunds_processed

pytestmark = pytest.mark.django_db

REPORTED_AT = NOW + dt.timedelta(minutes=45)


def out_for_delivery(buyer, restaurant, menu):
    with time_machine.travel(NOW, tick=False):
        order = place_order(buyer, restaurant, {menu["Margherita"]: 2})
        return advance(order, "accept", "start_preparation", "mark_ready", "dispatch")


def reported(order, buyer, at=REPORTED_AT):
    with time_machine.travel(at, tick=False):
        return order_report_missing(order_id=order.pk, actor=buyer)


def snapshot(order):
    """Everything a refusal must leave as it was."""
    order.refresh_from_db()
    return (
        order.status,
        order.reported_missing_at,
        order.delivered_at,
        OrderEvent.objects.filter(order=order).count(),
        Intervention.objects.filter(order=order).count(),
        Refund.objects.filter(order=order).count(),
        RestaurantLedgerEntry.objects.filter(order=order).count(),
        Notification.objects.count(),
    )


def missing_cases(order):
    return list(
        Intervention.objects.filter(order=order, kind="missing_order").values_list(
            "status", "resolved_by", "action_taken"
        )
    )


# -- policy ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "fulfillment", "status", "delivered_minutes_ago", "expected"),
    [
        ("out for delivery", "delivery", "out_for_delivery", None, (True, "", ("L-6.2",))),
        ("delivered just now", "delivery", "delivered", 0, (True, "", ("L-6.2", "L-5.1"))),
        ("delivered 59 min ago", "delivery", "delivered", 59, (True, "", ("L-6.2", "L-5.1"))),
        (
            "delivered 60 min ago",
            "delivery",
            "delivered",
            60,
            (False, "report_window_passed", ("L-5.1", "L-6.2")),
        ),
        ("preparing", "delivery", "preparing", None, (False, "not_out_for_delivery", ("L-6.2",))),
        (
            "already missing",
            "delivery",
            "missing",
            None,
            (False, "not_out_for_delivery", ("L-6.2",)),
        ),
        ("pickup", "pickup", "picked_up", 5, (False, "not_a_delivery", ("L-6.2",))),
    ],
)
def test_policy_decides_who_may_report_a_delivery_missing(
    case, fulfillment, status, delivered_minutes_ago, expected
):
    delivered_at = (
        None if delivered_minutes_ago is None else NOW - dt.timedelta(minutes=delivered_minutes_ago)
    )
    facts = policy.MissingReportFacts(fulfillment, status, delivered_at, 60)

    decision = policy.decide_report_missing(facts, now=NOW)

    assert (decision.allowed, decision.code, decision.clauses) == expected


def test_policy_gives_up_after_locate_minutes():
    assert policy.missing_give_up_at(NOW, 60) == NOW + dt.timedelta(minutes=60)


# -- report ------------------------------------------------------------------------------


def test_buyer_reports_an_order_out_for_delivery_missing(buyer, partner, restaurant, menu):
    order = out_for_delivery(buyer, restaurant, menu)

    order = reported(order, buyer)

    assert (order.status, order.reported_missing_at) == (Order.Status.MISSING, REPORTED_AT)
    event = order.events.get(name="report_missing")
    assert (event.from_status, event.to_status, event.actor, event.actor_role) == (
        "out_for_delivery",
        "missing",
        buyer,
        "buyer",
    )
    assert event.clauses == ["L-6.2"]
    case = Intervention.objects.get(order=order)
    assert (case.kind, case.status, case.opened_at) == ("missing_order", "open", REPORTED_AT)
    told = Notification.objects.get(user=partner)
    assert told.title == f"Order #{order.pk} reported missing"
    assert Refund.objects.filter(order=order).count() == 0


def test_a_delivered_order_may_be_reported_within_the_delivery_window(buyer, restaurant, menu):
    order = out_for_delivery(buyer, restaurant, menu)
    with time_machine.travel(NOW + dt.timedelta(minutes=30), tick=False):
        advance(order, "deliver")
    sales = RestaurantLedgerEntry.objects.filter(order=order, kind="sale").count()

    order = reported(order, buyer, at=NOW + dt.timedelta(minutes=89))

    # The delivery mark is withdrawn: the order is missing, not delivered.
    assert (order.status, order.delivered_at) == (Order.Status.MISSING, None)
    assert order.events.get(name="report_missing").clauses == ["L-6.2", "L-5.1"]
    assert sales == 1
    assert Intervention.objects.filter(order=order, status="open").count() == 1

    # Given up: the buyer gets everything back; the sale booked at the delivery mark stands.
    with time_machine.travel(NOW + dt.timedelta(minutes=149), tick=False):
        assert order_missing_give_up(order_id=order.pk, now=dt.datetime.now(dt.UTC)) is True
    assert refunds_processed() == {"succeeded": 1}
    assert Refund.objects.get(order=order).amount == order.amount_paid
    assert list(
        RestaurantLedgerEntry.objects.filter(order=order).values_list("kind", "amount")
    ) == [("sale", D("25.00"))]


def test_a_report_after_the_delivery_window_is_refused_and_changes_nothing(buyer, restaurant, menu):
    order = out_for_delivery(buyer, restaurant, menu)
    with time_machine.travel(NOW + dt.timedelta(minutes=30), tick=False):
        advance(order, "deliver")
    before = snapshot(order)

    with pytest.raises(DomainError) as refused:
        reported(order, buyer, at=NOW + dt.timedelta(minutes=90))

    assert (refused.value.code, refused.value.clauses) == (
        "report_window_passed",
        ("L-5.1", "L-6.2"),
    )
    assert snapshot(order) == before


@pytest.mark.parametrize(
    ("case", "who", "code"),
    [
        ("another buyer", "other_buyer", "not_found"),
        ("the restaurant", "partner", "not_found"),
    ],
)
def test_only_the_buyer_reports_their_own_order(users, restaurant, menu, case, who, code):
    order = out_for_delivery(users["buyer"], restaurant, menu)
    before = snapshot(order)

    with pytest.raises(DomainError) as refused:
        reported(order, users[who])

    assert refused.value.code == code
    assert snapshot(order) == before


def test_an_order_in_the_kitchen_cannot_be_reported_missing(buyer, restaurant, menu):
    with time_machine.travel(NOW, tick=False):
        order = advance(place_order(buyer, restaurant), "accept", "start_preparation")
    before = snapshot(order)

    with pytest.raises(DomainError) as refused:
        reported(order, buyer)

    assert (refused.value.code, refused.value.clauses) == ("not_out_for_delivery", ("L-6.2",))
    assert snapshot(order) == before


def test_a_second_report_is_refused_and_the_case_is_opened_once(buyer, restaurant, menu):
    order = reported(out_for_delivery(buyer, restaurant, menu), buyer)
    before = snapshot(order)

    with pytest.raises(DomainError) as refused:
        reported(order, buyer, at=REPORTED_AT + dt.timedelta(minutes=1))

    assert refused.value.code == "not_out_for_delivery"
    assert snapshot(order) == before
    assert len(missing_cases(order)) == 1


# -- locate ------------------------------------------------------------------------------


def test_the_restaurant_locates_it_delivered_and_the_case_closes(buyer, partner, restaurant, menu):
    order = reported(out_for_delivery(buyer, restaurant, menu), buyer)
    located_at = REPORTED_AT + dt.timedelta(minutes=20)

    with time_machine.travel(located_at, tick=False):
        order = order_missing_locate(order_id=order.pk, actor=partner)

    assert (order.status, order.delivered_at) == (Order.Status.DELIVERED, located_at)
    assert missing_cases(order) == [("resolved", partner.pk, "Located and delivered")]
    assert RestaurantLedgerEntry.objects.filter(order=order, kind="sale").count() == 1
    assert (
        Notification.objects.filter(user=buyer, title=f"Order #{order.pk} was found").count() == 1
    )
    # Located: the sweep later gives nothing up and refunds nothing.
    with time_machine.travel(REPORTED_AT + dt.timedelta(hours=5), tick=False):
        assert give_up_missing_orders() == {"looked_at": 0, "given_up": 0, "skipped": 0}
    assert Refund.objects.filter(order=order).count() == 0


def test_locating_an_order_reported_after_delivery_books_its_sale_once(
    buyer, partner, restaurant, menu
):
    order = out_for_delivery(buyer, restaurant, menu)
    with time_machine.travel(NOW + dt.timedelta(minutes=30), tick=False):
        advance(order, "deliver")
    reported(order, buyer, at=NOW + dt.timedelta(minutes=40))

    with time_machine.travel(NOW + dt.timedelta(minutes=50), tick=False):
        order_missing_locate(order_id=order.pk, actor=partner)

    assert RestaurantLedgerEntry.objects.filter(order=order, kind="sale").count() == 1


def test_support_locates_it_for_the_restaurant(buyer, agent, restaurant, menu):
    order = reported(out_for_delivery(buyer, restaurant, menu), buyer)

    order = order_missing_locate(order_id=order.pk, actor=agent)

    assert order.status == Order.Status.DELIVERED
    event = order.events.get(name="locate")
    assert (event.actor_role, event.clauses) == ("support", ["L-6.2", "K-OV"])
    assert missing_cases(order) == [("resolved", agent.pk, "Located and delivered")]


def test_locate_refusals_change_nothing(buyer, other_partner, partner, restaurant, menu):
    order = reported(out_for_delivery(buyer, restaurant, menu), buyer)
    before = snapshot(order)
    with pytest.raises(DomainError) as refused:
        order_missing_locate(order_id=order.pk, actor=other_partner)
    assert refused.value.code == "transition_not_allowed"
    assert snapshot(order) == before

    on_its_way = out_for_delivery(buyer, restaurant, menu)
    before = snapshot(on_its_way)
    with pytest.raises(DomainError) as refused:
        order_missing_locate(order_id=on_its_way.pk, actor=partner)
    assert (refused.value.code, refused.value.clauses) == ("not_missing", ("L-6.2",))
    assert snapshot(on_its_way) == before


# -- give up -----------------------------------------------------------------------------


def test_the_sweep_gives_up_after_exactly_locate_minutes_and_refunds_in_full(
    buyer, partner, restaurant, menu
):
    order = reported(out_for_delivery(buyer, restaurant, menu), buyer)
    due_at = REPORTED_AT + dt.timedelta(minutes=60)

    with time_machine.travel(due_at - dt.timedelta(seconds=1), tick=False):
        assert give_up_missing_orders() == {"looked_at": 0, "given_up": 0, "skipped": 0}
    order.refresh_from_db()
    assert order.status == Order.Status.MISSING
    assert Refund.objects.filter(order=order).count() == 0

    with time_machine.travel(due_at, tick=False):
        assert give_up_missing_orders() == {"looked_at": 1, "given_up": 1, "skipped": 0}

    order.refresh_from_db()
    assert order.status == Order.Status.UNDELIVERABLE
    refund = Refund.objects.get(order=order)
    assert (refund.amount, refund.destination, refund.idempotency_key, refund.clauses) == (
        order.amount_paid,
        "card",
        f"missing:{order.pk}:card",
        ["L-6.2"],
    )
    assert order.amount_paid == D("25.00") + order.delivery_fee
    assert order.events.get(name="give_up").actor_role == "policy"
    assert missing_cases(order) == [
        ("resolved", None, f"Given up after 60 minutes; refunded {order.amount_paid} USD in full")
    ]
    told = Notification.objects.get(user=buyer, title=f"Order #{order.pk} refunded in full")
    assert str(order.amount_paid) in told.body
    assert OutboxMessage.objects.filter(task="refunds.tasks.process_refunds").count() == 1

    assert refunds_processed() == {"succeeded": 1}
    refund.refresh_from_db()
    assert refund.status == Refund.Status.SUCCEEDED
    # L-9: a courier's loss is not the restaurant's: nothing is deducted, nothing was sold.
    assert not RestaurantLedgerEntry.objects.filter(order=order).exists()

    with time_machine.travel(due_at + dt.timedelta(minutes=5), tick=False):
        assert give_up_missing_orders() == {"looked_at": 0, "given_up": 0, "skipped": 0}
        assert order_missing_give_up(order_id=order.pk, now=due_at) is False
    assert Refund.objects.filter(order=order).count() == 1


def test_the_pinned_version_sets_the_search_time(buyer, restaurant, menu):
    order = reported(out_for_delivery(buyer, restaurant, menu), buyer)
    order.policy_version.locate_minutes = 90
    order.policy_version.save(update_fields=["locate_minutes"])

    assert order_ids_missing_due(now=REPORTED_AT + dt.timedelta(minutes=89), limit=10) == []
    assert order_ids_missing_due(now=REPORTED_AT + dt.timedelta(minutes=90), limit=10) == [order.pk]


def test_the_sweep_works_in_bounded_batches_oldest_first(buyer, restaurant, menu):
    orders = [
        reported(
            out_for_delivery(buyer, restaurant, menu),
            buyer,
            at=REPORTED_AT + dt.timedelta(minutes=i),
        )
        for i in range(3)
    ]

    with time_machine.travel(REPORTED_AT + dt.timedelta(hours=2), tick=False):
        assert give_up_missing_orders(batch_size=2) == {"looked_at": 2, "given_up": 2, "skipped": 0}
        assert Order.objects.get(pk=orders[2].pk).status == Order.Status.MISSING
        assert give_up_missing_orders(batch_size=2) == {"looked_at": 1, "given_up": 1, "skipped": 0}

    assert Order.objects.filter(status="undeliverable").count() == 3
    refunds_processed()


# -- replacement -------------------------------------------------------------------------


def test_support_sends_a_replacement_instead_of_the_refund(buyer, agent, restaurant, menu):
    order = reported(out_for_delivery(buyer, restaurant, menu), buyer)

    with time_machine.travel(REPORTED_AT + dt.timedelta(minutes=10), tick=False):
        replacement = order_missing_replace(order_id=order.pk, actor=agent, note="Sorry!")

    order.refresh_from_db()
    assert order.status == Order.Status.UNDELIVERABLE
    assert (replacement.buyer, replacement.restaurant, replacement.amount_charged) == (
        buyer,
        restaurant,
        D("0.00"),
    )
    assert [(i.name, i.quantity) for i in replacement.items.all()] == [("Margherita", 2)]
    assert missing_cases(order) == [
        ("resolved", agent.pk, f"Replacement order #{replacement.pk} placed")
    ]
    assert Refund.objects.count() == 0
    with time_machine.travel(REPORTED_AT + dt.timedelta(hours=2), tick=False):
        assert give_up_missing_orders()["given_up"] == 0
    assert Refund.objects.count() == 0


def test_only_support_sends_a_replacement(buyer, partner, restaurant, menu):
    order = reported(out_for_delivery(buyer, restaurant, menu), buyer)
    before = snapshot(order)
    orders = Order.objects.count()

    with pytest.raises(DomainError) as refused:
        order_missing_replace(order_id=order.pk, actor=partner)

    assert refused.value.code == "support_only"
    assert snapshot(order) == before
    assert Order.objects.count() == orders


def test_the_sweep_is_on_beat():
    assert settings.CELERY_BEAT_SCHEDULE["give-up-missing-orders"] == {
        "task": "orders.tasks.give_up_missing_orders",
        "schedule": 60.0,
    }


def test_an_order_the_refund_service_refuses_stays_missing_and_the_batch_goes_on(
    buyer, restaurant, menu
):
    stuck, other = (reported(out_for_delivery(buyer, restaurant, menu), buyer) for _ in range(2))
    # A card refund already holds the key the give-up would use, for another amount.
    refund_execute(
        order_id=stuck.pk,
        amount=D("1.00"),
        destination="card",
        idempotency_key=f"missing:{stuck.pk}:card",
        actor=None,
        role="system",
        reason="Earlier goodwill.",
    )

    with time_machine.travel(REPORTED_AT + dt.timedelta(hours=1), tick=False):
        assert give_up_missing_orders() == {"looked_at": 2, "given_up": 1, "skipped": 1}

    assert Order.objects.get(pk=stuck.pk).status == Order.Status.MISSING
    assert missing_cases(stuck) == [("open", None, "")]
    assert Order.objects.get(pk=other.pk).status == Order.Status.UNDELIVERABLE
    refunds_processed()
