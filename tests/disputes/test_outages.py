"""Outage incidents (L-10, issue 9 item 4): the dry run shows the affected orders (placed in the
window at the outage's restaurants, not already refunded in full), the money and the split per
restaurant and writes nothing; the bulk refund gives each of them back what is still refundable,
once, tells the buyers why, deducts nothing from the restaurants (L-9) and closes the outage
with its progress and a summary."""

import datetime as dt
from decimal import Decimal as D

import pytest
import time_machine
from django.apps import apps
from django.conf import settings

from core.errors import DomainError
from core.models import Notification, OutboxMessage, TaskRun
from disputes import policy
from disputes.models import Incident
from disputes.selectors import outage_estimate, outage_refunds_by_restaurant
from disputes.services.outages import (
    incident_create,
    outage_orders_refund,
    outage_refund_start,
)
from disputes.tasks import refund_outage, refund_outages
from orders.models import OrderEvent
from orders.services.cancellation import order_cancel_by_buyer
from refunds.models import Refund, RestaurantLedgerEntry
from refunds.services.decisions import refund_request_partially_approve
from refunds.services.requests import refund_request_submit
from refunds.tasks import auto_refund_late_orders
from tests.conftest import NOW, advance, give_credit, place_order, refunds_processed
from tests.factories import MenuItemFactory, RestaurantFactory, UserFactory

pytestmark = pytest.mark.django_db

START, END = NOW + dt.timedelta(minutes=10), NOW + dt.timedelta(minutes=40)
AFTER = NOW + dt.timedelta(hours=2)
CUR = settings.LOJIX_CURRENCY


@pytest.fixture
def world(now, buyer, other_buyer, restaurant, menu):
    """Orders at two restaurants inside the window, and some outside it or at a third one."""
    blu = RestaurantFactory(name="Osteria Blu", members=[UserFactory()])
    MenuItemFactory(restaurant=blu, name="Risotto", price=D("14.00"))
    verde = RestaurantFactory(name="Verde", members=[UserFactory()])
    MenuItemFactory(restaurant=verde, name="Salad", price=D("9.00"))
    now.move_to(START - dt.timedelta(minutes=1))
    before = place_order(buyer, restaurant)
    with time_machine.travel(START, tick=False):  # the window includes both ends
        at_start = place_order(buyer, restaurant, {menu["Margherita"]: 2})  # 25.00 + 2.99
    now.move_to(START + dt.timedelta(minutes=5))
    at_blu = advance(place_order(other_buyer, blu), "accept")  # 14.00 + 2.99
    at_verde = place_order(other_buyer, verde)
    cancelled = place_order(buyer, restaurant)
    order_cancel_by_buyer(order_id=cancelled.pk, actor=buyer)  # refunded in full already
    with time_machine.travel(END, tick=False):
        at_end = place_order(other_buyer, blu, {blu.menu.get(): 2})  # 28.00 + 2.99
    now.move_to(END + dt.timedelta(seconds=1))
    after = place_order(buyer, restaurant)
    now.move_to(AFTER)
    return {
        "blu": blu,
        "verde": verde,
        "affected": [at_start, at_blu, at_end],
        "untouched": [before, at_verde, cancelled, after],
    }


def counts() -> dict:
    """Rows of every model, by label: what a dry run must leave as it was."""
    return {m._meta.label: m.objects.count() for m in apps.get_models()}


def enter_outage(supervisor, world, restaurant, **kwargs):
    if "restaurant_ids" not in kwargs:
        kwargs["restaurant_ids"] = [restaurant.pk, world["blu"].pk]
    return incident_create(
        actor=supervisor,
        kind="outage",
        title="Payments down",
        starts_at=START,
        ends_at=END,
        now=AFTER,
        **kwargs,
    )


def test_the_dry_run_shows_orders_money_and_split_per_restaurant_and_writes_nothing(
    world, supervisor, restaurant, django_assert_num_queries
):
    before = counts()

    with django_assert_num_queries(1):
        estimate = outage_estimate(
            starts_at=START, ends_at=END, restaurant_ids=[restaurant.pk, world["blu"].pk]
        )

    assert estimate.affected_orders == 3
    assert estimate.total_amount == D("27.99") + D("16.99") + D("30.99")
    assert [(s.restaurant, s.orders, s.amount) for s in estimate.per_restaurant] == [
        ("Osteria Blu", 2, D("47.98")),
        ("Trattoria Roma", 1, D("27.99")),
    ]
    assert counts() == before


def test_the_dry_run_over_every_restaurant_counts_only_what_is_still_refundable(world):
    estimate = outage_estimate(starts_at=START, ends_at=END, restaurant_ids=[])

    assert estimate.affected_orders == 4  # Verde's too; never the cancelled (refunded) one
    assert [s.restaurant for s in estimate.per_restaurant] == [
        "Osteria Blu",
        "Trattoria Roma",
        "Verde",
    ]


def test_the_bulk_refund_refunds_each_affected_order_once_and_closes_the_outage(
    world, supervisor, restaurant, django_capture_on_commit_callbacks
):
    estimate = outage_estimate(
        starts_at=START, ends_at=END, restaurant_ids=[restaurant.pk, world["blu"].pk]
    )

    with django_capture_on_commit_callbacks(execute=True):
        incident = enter_outage(supervisor, world, restaurant, start_refund=True)
    refunds_processed()

    incident.refresh_from_db()
    assert incident.status == Incident.Status.CLOSED
    assert (incident.affected_orders, incident.refunded_orders) == (3, 3)
    assert incident.refunded_amount == estimate.total_amount
    assert incident.refund_finished_at is not None
    for order in world["affected"]:
        (refund,) = Refund.objects.filter(order=order)
        assert (refund.amount, refund.destination, refund.status) == (
            order.amount_paid,
            "card",
            "succeeded",
        )
        assert refund.idempotency_key == f"outage:{incident.pk}:{order.pk}:card"
        assert refund.clauses == ["L-10"]
        event = OrderEvent.objects.get(order=order, name="outage_refund")
        assert (event.amount, event.clauses, event.actor) == (
            order.amount_paid,
            ["L-10"],
            supervisor,
        )
        told = Notification.objects.get(user=order.buyer, order=order, title__contains="outage")
        assert told.title == f"Order #{order.pk}: refunded in full after a system outage"
        assert "(L-10)" in told.body
    for order in world["untouched"]:
        assert not Refund.objects.filter(order=order, reason__startswith="System outage").exists()
    assert not RestaurantLedgerEntry.objects.filter(kind="refund_deduction").exists()  # L-9
    summary = Notification.objects.get(user=supervisor)
    assert summary.title == "Outage refund finished: Payments down"
    assert summary.body.startswith(
        f"3 of 3 affected orders refunded in full, {estimate.total_amount} {CUR} (L-10)"
    )
    assert [(s.restaurant, s.orders, s.amount) for s in outage_refunds_by_restaurant(incident)] == [
        (s.restaurant, s.orders, s.amount) for s in estimate.per_restaurant
    ]


def test_running_it_again_refunds_nothing_twice(
    world, supervisor, restaurant, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        incident = enter_outage(supervisor, world, restaurant, start_refund=True)
    refunds = Refund.objects.count()  # the three, and the cancelled order's

    with pytest.raises(DomainError) as refused:
        outage_refund_start(incident_id=incident.pk, actor=supervisor, now=AFTER)
    refund_outage(incident.pk)
    refund_outages()

    assert (refused.value.code, refused.value.clauses) == ("incident_closed", ("L-10",))
    assert Refund.objects.count() == refunds
    assert Refund.objects.filter(reason__startswith="System outage").count() == 3


def test_a_batch_rechecks_under_the_lock_what_a_run_before_refunded(
    world, supervisor, restaurant, django_capture_on_commit_callbacks
):
    incident = enter_outage(supervisor, world, restaurant)
    outage_refund_start(incident_id=incident.pk, actor=supervisor, now=AFTER)
    ids = [order.pk for order in world["affected"]]
    incident = Incident.objects.select_related("refund_started_by").get(pk=incident.pk)

    first = outage_orders_refund(incident=incident, order_ids=ids, now=AFTER)
    again = outage_orders_refund(incident=incident, order_ids=ids, now=AFTER)

    assert set(first.values()) == {"refunded"}
    assert set(again.values()) == {"already_refunded"}
    assert Refund.objects.filter(reason__startswith="System outage").count() == 3
    incident.refresh_from_db()
    assert incident.refunded_orders == 3


def test_an_order_paid_partly_with_account_credit_gets_each_part_back_where_it_came_from(
    now, supervisor, buyer, restaurant, menu, django_capture_on_commit_callbacks
):
    give_credit(buyer, "10.00")
    now.move_to(START)
    order = place_order(buyer, restaurant, {menu["Margherita"]: 2}, use_credit=True)
    now.move_to(AFTER)
    with django_capture_on_commit_callbacks(execute=True):
        incident_create(
            actor=supervisor,
            kind="outage",
            title="Payments down",
            starts_at=START,
            ends_at=END,
            restaurant_ids=[],
            now=AFTER,
            start_refund=True,
        )
    refunds_processed()

    parts = {r.destination: r.amount for r in Refund.objects.filter(order=order)}
    assert parts == {"card": order.amount_charged, "account_credit": D("10.00")}


def test_what_a_claim_refunded_before_is_not_refunded_again(
    world, supervisor, buyer, agent, restaurant, menu, django_capture_on_commit_callbacks
):
    at_start = world["affected"][0]
    advance(at_start, "accept", "start_preparation", "mark_ready", "dispatch", "deliver")
    claim = refund_request_submit(order_id=at_start.pk, actor=buyer, reason="wrong_order")
    refund_request_partially_approve(
        request_id=claim.pk, actor=agent, amount=D("5.00"), explanation="One pizza was right."
    )

    with django_capture_on_commit_callbacks(execute=True):
        enter_outage(supervisor, world, restaurant, start_refund=True)
    refunds_processed()

    outage = Refund.objects.get(order=at_start, reason__startswith="System outage")
    assert outage.amount == at_start.amount_paid - D("5.00")


@pytest.mark.parametrize(
    ("user_fixture", "kind", "window", "code"),
    [
        ("agent", "outage", (START, END), "supervisor_required"),
        ("supervisor", "allergen", (START, END), "incident_kind_not_entered"),
        ("supervisor", "outage", (START, None), "window_required"),
        ("supervisor", "outage", (END, START), "window_invalid"),
        ("supervisor", "outage", (START, AFTER + dt.timedelta(minutes=1)), "outage_not_over"),
    ],
)
def test_an_incident_that_cannot_be_entered_is_refused_and_nothing_is_written(
    request, world, restaurant, user_fixture, kind, window, code
):
    actor = request.getfixturevalue(user_fixture)
    before = counts()

    with pytest.raises(DomainError) as refused:
        incident_create(
            actor=actor,
            kind=kind,
            title="Payments down",
            starts_at=window[0],
            ends_at=window[1],
            restaurant_ids=[restaurant.pk],
            now=AFTER,
            start_refund=True,
        )

    assert (refused.value.code, refused.value.clauses) == (code, ("L-10",))
    assert counts() == before


def test_an_unknown_restaurant_is_refused(world, supervisor):
    with pytest.raises(DomainError) as refused:
        enter_outage(supervisor, world, None, restaurant_ids=[987654])

    assert refused.value.code == "unknown_restaurant"
    assert not Incident.objects.exists()


def test_only_an_outage_is_refunded_in_bulk_and_only_by_a_supervisor(world, supervisor, agent):
    force_majeure = incident_create(
        actor=supervisor,
        kind="force_majeure",
        title="Flooding",
        starts_at=START,
        ends_at=None,
        restaurant_ids=[],
        now=AFTER,
    )
    outage = enter_outage(supervisor, world, None, restaurant_ids=[])

    with pytest.raises(DomainError) as not_outage:
        outage_refund_start(incident_id=force_majeure.pk, actor=supervisor, now=AFTER)
    with pytest.raises(DomainError) as not_supervisor:
        outage_refund_start(incident_id=outage.pk, actor=agent, now=AFTER)

    assert not_outage.value.code == "not_an_outage"
    assert not_supervisor.value.code == "supervisor_required"
    outage.refresh_from_db()
    assert outage.status == Incident.Status.OPEN
    assert not OutboxMessage.objects.filter(task="disputes.tasks.refund_outage").exists()
    assert not Refund.objects.filter(reason__startswith="System outage").exists()


@pytest.mark.parametrize(
    ("name", "kind", "starts_at", "ends_at", "code"),
    [
        ("outage over", "outage", START, END, ""),
        ("outage ending now", "outage", START, AFTER, ""),
        ("outage not over", "outage", START, AFTER + dt.timedelta(seconds=1), "outage_not_over"),
        ("outage without end", "outage", START, None, "window_required"),
        ("no start", "force_majeure", None, END, "window_required"),
        ("ends before it starts", "force_majeure", END, START, "window_invalid"),
        ("ends when it starts", "outage", START, START, "window_invalid"),
        ("force majeure ongoing", "force_majeure", START, None, ""),
        ("allergen by hand", "allergen", START, END, "incident_kind_not_entered"),
    ],
)
def test_incident_entry_policy(name, kind, starts_at, ends_at, code):
    entry = policy.incident_entry(kind=kind, starts_at=starts_at, ends_at=ends_at, now=AFTER)

    assert (entry.allowed, entry.code, entry.clauses) == (not code, code, ("L-10",))


def test_the_beat_task_resumes_an_outage_left_unfinished(world, supervisor, restaurant, settings):
    incident = enter_outage(supervisor, world, restaurant)
    outage_refund_start(incident_id=incident.pk, actor=supervisor, now=AFTER)  # no worker ran

    result = refund_outages()

    assert settings.CELERY_BEAT_SCHEDULE["refund-outages"] == {
        "task": "disputes.tasks.refund_outages",
        "schedule": 60.0,
    }
    assert (result["looked_at"], result["refunded"]) == (3, 3)
    assert TaskRun.objects.get(name="disputes.tasks.refund_outages").outcome == "succeeded"
    incident.refresh_from_db()
    assert (incident.status, incident.refunded_orders) == ("closed", 3)
    assert refund_outages() == {}  # nothing left to resume


def test_force_majeure_over_two_restaurants_holds_their_late_deliveries_only(
    now, supervisor, buyer, restaurant, menu
):
    blu = RestaurantFactory(name="Osteria Blu", members=[UserFactory()])
    MenuItemFactory(restaurant=blu)
    verde = RestaurantFactory(name="Verde", members=[UserFactory()])
    MenuItemFactory(restaurant=verde)
    out = ("accept", "start_preparation", "mark_ready", "dispatch")
    orders = {r.name: advance(place_order(buyer, r), *out) for r in (restaurant, blu, verde)}
    incident_create(
        actor=supervisor,
        kind="force_majeure",
        title="Flooding downtown",
        starts_at=NOW - dt.timedelta(hours=1),
        ends_at=None,
        restaurant_ids=[restaurant.pk, blu.pk],
        now=NOW,
    )
    now.move_to(max(o.estimated_delivery_at for o in orders.values()) + dt.timedelta(hours=3))

    result = auto_refund_late_orders()

    held = {orders["Trattoria Roma"].pk, orders["Osteria Blu"].pk}
    assert set(result["held_for_agents"]) == held
    assert list(Refund.objects.values_list("order_id", flat=True)) == [orders["Verde"].pk]
