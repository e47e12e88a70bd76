"""Claims and refunds that add up (issue 7, section 2), replayed on PostgreSQL with the real
services: no line refunded twice, no claim line from elsewhere or beyond what is claimable,
cancellation after a partial refund, and a property over sequences of all of them."""

import contextlib
from decimal import Decimal as D

import pytest
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import DomainError
from credits.models import CreditGrant
from orders.models import Order
from orders.services.cancellation import (
    order_cancel_by_buyer,
    order_cancel_by_restaurant,
    order_cancellation_approve,
)
from refunds.models import Refund, RefundRequest, RefundRequestItem
from refunds.services.decisions import (
    refund_request_approve,
    refund_request_offer_replacement,
    refund_request_partially_approve,
)
from refunds.services.requests import refund_request_submit
from tests.conftest import advance, give_credit, place_order
from tests.factories import MenuItemFactory, RestaurantFactory, UserFactory

pytestmark = pytest.mark.django_db

DELIVERED = ("accept", "start_preparation", "mark_ready", "dispatch", "deliver")
EXPLANATION = "Checked with the restaurant."


@pytest.fixture
def order(buyer, restaurant, menu):
    """Margherita 12.50 + Tiramisu 6.00 + delivery 2.99: paid 21.49 by card."""
    return place_order(buyer, restaurant, {menu["Margherita"]: 1, menu["Tiramisu"]: 1})


def line(order, name) -> int:
    return order.items.get(name=name).pk


def submit(order, buyer, reason, items=()):
    return refund_request_submit(order_id=order.pk, actor=buyer, reason=reason, items=items)


def money_back(order) -> D:
    return Refund.objects.filter(order=order, destination__in=["card", "account_credit"]).aggregate(
        total=Sum("amount")
    )["total"] or D("0.00")


# -- 1. the same item refunded twice ------------------------------------------------------------


def test_the_same_missing_pizza_is_refunded_once(order, buyer, agent):
    advance(order, *DELIVERED)
    pizza = [(line(order, "Margherita"), 1)]
    first = submit(order, buyer, "missing_items", pizza)
    assert first.suggested_amount == D("12.50")
    refund_request_approve(request_id=first.pk, actor=agent)
    assert RefundRequestItem.objects.get(request=first).refunded_amount == D("12.50")

    with pytest.raises(DomainError) as refused:
        submit(order, buyer, "missing_items", pizza)

    assert (refused.value.code, refused.value.kind) == ("item_already_refunded", "invalid")
    assert list(refused.value.clauses) == ["L-3.2", "L-7.2"]
    assert RefundRequest.objects.filter(order=order).count() == 1
    assert money_back(order) == D("12.50")


def test_a_later_claim_on_a_partly_refunded_line_is_suggested_what_is_left(
    buyer, agent, restaurant, menu
):
    # 2 Margherita 25.00 + delivery 2.99 = 27.99; one pizza's claim partially approved 5.00.
    order = advance(place_order(buyer, restaurant, {menu["Margherita"]: 2}), *DELIVERED)
    first = submit(order, buyer, "missing_items", [(line(order, "Margherita"), 1)])
    refund_request_partially_approve(
        request_id=first.pk, actor=agent, amount=D("5.00"), explanation=EXPLANATION
    )

    second = submit(order, buyer, "missing_items", [(line(order, "Margherita"), 1)])

    assert second.suggested_amount == D("12.50")  # the second pizza's share, untouched
    refund_request_approve(request_id=second.pk, actor=agent)
    with pytest.raises(DomainError) as refused:
        submit(order, buyer, "missing_items", [(line(order, "Margherita"), 1)])
    assert refused.value.code == "item_already_refunded"
    assert money_back(order) == D("17.50")


def test_a_full_order_claim_after_a_partial_refund_suggests_what_is_still_refundable(
    order, buyer, agent
):
    advance(order, *DELIVERED)
    first = submit(order, buyer, "missing_items", [(line(order, "Margherita"), 1)])
    refund_request_approve(request_id=first.pk, actor=agent)

    full = submit(order, buyer, "wrong_order")
    refund_request_approve(request_id=full.pk, actor=agent)

    assert full.suggested_amount == D("8.99")
    assert money_back(order) == D("21.49")


# -- 2. claim lines are validated ---------------------------------------------------------------


def test_99_margheritas_on_a_1_margherita_order_are_refused_and_nothing_ships(order, buyer, api_as):
    advance(order, *DELIVERED)
    response = api_as(buyer).post(
        "/api/refund-requests/",
        {
            "order": order.pk,
            "reason": "not_delivered",
            "items": [{"order_item": line(order, "Margherita"), "quantity": 99}],
        },
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_quantity"
    assert response.json()["clauses"] == ["L-3.1"]
    assert not RefundRequest.objects.exists()
    assert Order.objects.count() == 1  # no replacement order


def test_a_line_of_another_buyers_order_is_refused(order, buyer, api_as):
    advance(order, *DELIVERED)
    elsewhere = RestaurantFactory(members=[UserFactory()])
    caviar = MenuItemFactory(restaurant=elsewhere, name="Caviar", price=D("90.00"))
    theirs = place_order(UserFactory(), elsewhere, {caviar: 1})

    response = api_as(buyer).post(
        "/api/refund-requests/",
        {
            "order": order.pk,
            "reason": "not_delivered",
            "items": [{"order_item": line(theirs, "Caviar"), "quantity": 1}],
        },
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["code"] == "unknown_item"
    assert "Caviar" not in response.content.decode()
    assert not RefundRequest.objects.exists()
    assert not RefundRequestItem.objects.exists()


def test_a_replacement_ships_only_what_was_ordered(order, buyer, agent):
    advance(order, *DELIVERED)
    request = submit(order, buyer, "not_delivered", [(line(order, "Margherita"), 1)])

    refund_request_offer_replacement(request_id=request.pk, actor=agent, explanation=EXPLANATION)

    request.refresh_from_db()
    replacement = request.replacement_order
    assert [(i.name, i.quantity) for i in replacement.items.all()] == [("Margherita", 1)]
    assert replacement.restaurant_id == order.restaurant_id
    with pytest.raises(DomainError) as refused:
        submit(order, buyer, "missing_items", [(line(order, "Margherita"), 1)])
    assert refused.value.code == "item_already_refunded"


# -- 3. cancelling after a partial refund -------------------------------------------------------


def duplicate_partly_refunded(order, buyer, agent):
    request = submit(order, buyer, "duplicate_charge")
    refund_request_partially_approve(
        request_id=request.pk, actor=agent, amount=D("5.00"), explanation=EXPLANATION
    )
    assert money_back(order) == D("5.00")


def test_the_restaurant_cancels_after_a_partial_refund(order, buyer, agent, partner):
    advance(order, "accept")
    duplicate_partly_refunded(order, buyer, agent)

    order_cancel_by_restaurant(
        order_id=order.pk, actor=partner, reason="item_unavailable", explanation="Out of dough."
    )

    order.refresh_from_db()
    assert order.status == Order.Status.CANCELLED
    assert money_back(order) == D("21.49")
    cancellation = Refund.objects.get(idempotency_key=f"order:{order.pk}:cancellation:card")
    assert cancellation.amount == D("16.49")
    assert CreditGrant.objects.get(source="restaurant_cancel_goodwill").amount == D("5.00")


def test_the_buyer_cancels_free_after_a_partial_refund(order, buyer, agent):
    duplicate_partly_refunded(order, buyer, agent)

    order, decision = order_cancel_by_buyer(order_id=order.pk, actor=buyer)

    assert (order.status, decision.refund) == (Order.Status.CANCELLED, D("16.49"))
    assert money_back(order) == D("21.49")


def test_an_approved_cancellation_request_takes_the_fee_off_what_is_left(
    order, buyer, agent, partner
):
    advance(order, "accept")
    duplicate_partly_refunded(order, buyer, agent)

    order, decision = order_cancel_by_buyer(order_id=order.pk, actor=buyer)
    assert (decision.fee, decision.refund) == (D("3.22"), D("13.27"))  # 15 % of 21.49
    order_cancellation_approve(order_id=order.pk, actor=partner)

    assert money_back(order) == D("18.27")


# -- 4. property: any sequence of claims, decisions and cancellations adds up --------------------

CLAIMS = ["missing_items", "incorrect_items", "wrong_order", "duplicate_charge", "not_delivered"]
step = st.one_of(
    st.tuples(
        st.just("claim"),
        st.sampled_from(CLAIMS),
        st.lists(st.tuples(st.integers(0, 2), st.integers(0, 3)), max_size=3),
        st.sampled_from(["approve", "partial", "replace"]),
        st.integers(1, 2500),
    ),
    st.tuples(st.just("cancel_by_restaurant")),
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(step, min_size=1, max_size=5), use_credit=st.booleans())
def test_any_sequence_of_claims_and_cancellations_adds_up(
    steps, use_credit, buyer, agent, partner, restaurant, menu
):
    if use_credit:
        give_credit(buyer, "7.00")
    order = place_order(
        buyer,
        restaurant,
        {menu["Margherita"]: 2, menu["Tiramisu"]: 1, menu["Lemonade"]: 3},
        use_credit=use_credit,
    )
    order = advance(order, "accept")
    lines = list(order.items.order_by("pk"))
    for action in steps:
        # A refusal changes nothing; the invariants below must hold all the same.
        with contextlib.suppress(DomainError):
            _apply(action, order, lines, buyer, agent, partner)
        order.refresh_from_db()
        _assert_adds_up(order, lines)


def _apply(action, order, lines, buyer, agent, partner):
    if action[0] == "cancel_by_restaurant":
        order_cancel_by_restaurant(
            order_id=order.pk, actor=partner, reason="cannot_fulfill", explanation="Kitchen fire."
        )
        return
    _, reason, picks, decision, cents = action
    if reason not in ("duplicate_charge",) and order.status == Order.Status.ACCEPTED:
        advance(order, "start_preparation", "mark_ready", "dispatch", "deliver")
    items = [(lines[i].pk, quantity) for i, quantity in picks]
    request = submit(order, buyer, reason, items)
    if request.status != RefundRequest.Status.UNDER_REVIEW:
        return
    if decision == "approve":
        refund_request_approve(request_id=request.pk, actor=agent)
    elif decision == "partial":
        amount = D(cents) / 100
        refund_request_partially_approve(
            request_id=request.pk, actor=agent, amount=amount, explanation=EXPLANATION
        )
    else:
        refund_request_offer_replacement(
            request_id=request.pk, actor=agent, explanation=EXPLANATION
        )


def _assert_adds_up(order, lines):
    base = order.subtotal + order.delivery_fee
    decided = RefundRequestItem.objects.filter(
        request__order=order, request__status__in=["approved", "partially_approved", "refunded"]
    )
    for item in lines:
        rows = decided.filter(order_item=item)
        share = (item.unit_price * item.quantity * order.amount_paid / base).quantize(D("0.01"))
        assert (rows.aggregate(s=Sum("refunded_amount"))["s"] or 0) <= share
        assert (rows.aggregate(q=Sum("quantity"))["q"] or 0) <= item.quantity
    counted = Refund.objects.filter(order=order, status__in=["pending", "succeeded"])
    card = counted.filter(destination="card").aggregate(s=Sum("amount"))["s"] or 0
    credit = counted.filter(destination="account_credit").aggregate(s=Sum("amount"))["s"] or 0
    assert card + credit <= order.amount_paid
    assert card <= order.amount_charged
    assert credit <= order.account_credit_applied  # every refund here goes back by origin
