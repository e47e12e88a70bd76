"""The order state machine of D-5: every allowed transition works, every other pair is refused."""

import datetime as dt
import itertools

import pytest
from django_fsm import TransitionNotAllowed

from core.errors import DomainError
from orders.models import Order, OrderEvent, Restaurant
from orders.services.lifecycle import order_advance
from tests.conftest import advance, place_order

S = Order.Status
F = Order.Fulfillment
AT = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)

# D-5, transition by transition: (name, source) -> target, and the fulfilments it applies to.
SPEC = {
    ("accept", S.PLACED): (S.ACCEPTED, set(F)),
    ("start_preparation", S.ACCEPTED): (S.PREPARING, set(F)),
    ("mark_ready", S.PREPARING): (S.READY, set(F)),
    ("dispatch", S.READY): (S.OUT_FOR_DELIVERY, {F.DELIVERY}),
    ("deliver", S.OUT_FOR_DELIVERY): (S.DELIVERED, set(F)),
    ("hand_over", S.READY): (S.PICKED_UP, {F.PICKUP}),
    ("serve", S.READY): (S.SERVED, {F.DINE_IN}),
    ("close", S.SERVED): (S.CLOSED, set(F)),
    ("cancel", S.PLACED): (S.CANCELLED, set(F)),
    ("request_cancellation", S.ACCEPTED): (S.CANCELLATION_REQUESTED, set(F)),
    ("approve", S.CANCELLATION_REQUESTED): (S.CANCELLED, set(F)),
    ("deny", S.CANCELLATION_REQUESTED): (S.ACCEPTED, set(F)),
    ("cancel_by_restaurant", S.PLACED): (S.CANCELLED, set(F)),
    ("cancel_by_restaurant", S.ACCEPTED): (S.CANCELLED, set(F)),
    ("cancel_by_restaurant", S.PREPARING): (S.CANCELLED, set(F)),
    ("cancel_by_restaurant", S.READY): (S.CANCELLED, set(F)),
    ("report_missing", S.OUT_FOR_DELIVERY): (S.MISSING, set(F)),
    # Issue 8: "it never came" after the delivery mark, within L-5.1 (the policy checks it).
    ("report_missing", S.DELIVERED): (S.MISSING, set(F)),
    ("locate", S.MISSING): (S.DELIVERED, set(F)),
    ("give_up", S.MISSING): (S.UNDELIVERABLE, set(F)),
}
TRANSITIONS = sorted({name for name, _ in SPEC})


def _order(status, fulfillment=F.DELIVERY):
    return Order(
        status=status, fulfillment=fulfillment, restaurant=Restaurant(preparation_minutes=20)
    )


def test_the_model_declares_exactly_the_designed_transitions():
    declared = {
        (t.name, t.source): t.target
        for t in Order._meta.get_field("status").get_all_transitions(Order)
    }
    assert declared == {key: target for key, (target, _) in SPEC.items()}


@pytest.mark.parametrize(
    ("transition", "source", "fulfillment"),
    list(itertools.product(TRANSITIONS, list(S), list(F))),
)
def test_each_transition_from_each_state(transition, source, fulfillment):
    order = _order(source, fulfillment)
    target, fulfillments = SPEC.get((transition, source), (None, set()))
    if fulfillment in fulfillments:
        getattr(order, transition)(at=AT)
        assert order.status == target
    else:
        with pytest.raises(TransitionNotAllowed):
            getattr(order, transition)(at=AT)
        assert order.status == source


@pytest.mark.parametrize(("source", "target"), list(itertools.product(list(S), list(S))))
def test_every_state_pair_is_allowed_only_by_the_design(source, target):
    designed = {
        fulfillment
        for (_, src), (tgt, fulfillments) in SPEC.items()
        if src == source and tgt == target
        for fulfillment in fulfillments
    }
    for fulfillment in F:
        reachable = {
            t.target for t in _order(source, fulfillment).get_available_status_transitions()
        }
        assert (target in reachable) == (fulfillment in designed)


def test_status_cannot_be_assigned_directly():
    order = _order(S.PLACED)
    with pytest.raises(AttributeError):
        order.status = S.DELIVERED


PATHS = {
    F.DELIVERY: (["accept", "start_preparation", "mark_ready", "dispatch", "deliver"], S.DELIVERED),
    F.PICKUP: (["accept", "start_preparation", "mark_ready", "hand_over"], S.PICKED_UP),
    F.DINE_IN: (["accept", "start_preparation", "mark_ready", "serve", "close"], S.CLOSED),
}


@pytest.mark.django_db
@pytest.mark.parametrize("fulfillment", list(F))
def test_lifecycle_through_the_service_records_every_step(buyer, partner, restaurant, fulfillment):
    order = place_order(buyer, restaurant, fulfillment=fulfillment)
    actions, final = PATHS[fulfillment]

    order = advance(order, *actions, actor=partner)

    assert order.status == final
    steps = order.events.filter(kind=OrderEvent.Kind.TRANSITION).order_by("created_at", "pk")
    assert [(e.name, e.from_status, e.to_status) for e in steps] == [("place", "", "placed")] + [
        (action, src, SPEC[(action, src)][0])
        for action, src in zip(actions, _sources(actions), strict=True)
    ]
    assert all(e.actor == partner and e.actor_role == "restaurant" for e in steps[1:])
    stamp = {"deliver": "delivered_at", "hand_over": "picked_up_at", "close": "closed_at"}
    assert getattr(order, stamp[actions[-1]]) is not None


def _sources(actions):
    state, sources = S.PLACED, []
    for action in actions:
        sources.append(state)
        state = SPEC[(action, state)][0]
    return sources


@pytest.mark.django_db
def test_a_refused_transition_changes_nothing(buyer, partner, restaurant):
    order = place_order(buyer, restaurant, fulfillment=F.PICKUP)
    events_before = order.events.count()

    with pytest.raises(DomainError) as refused:
        order_advance(order_id=order.pk, action="dispatch", actor=partner)

    assert refused.value.code == "transition_not_allowed"
    order.refresh_from_db()
    assert order.status == S.PLACED
    assert order.events.count() == events_before


@pytest.mark.django_db
def test_only_the_restaurants_partners_or_support_may_advance(
    buyer, other_buyer, restaurant, agent
):
    order = place_order(buyer, restaurant)
    for outsider in (buyer, other_buyer):
        with pytest.raises(DomainError):
            order_advance(order_id=order.pk, action="accept", actor=outsider)
    order = order_advance(order_id=order.pk, action="accept", actor=agent)
    assert order.status == S.ACCEPTED
    assert order.events.last().actor_role == "support"
