"""Cancellation services on PostgreSQL: what moves, exactly once, and who is told."""

import datetime as dt
from decimal import Decimal as D

import pytest
from django.core import mail

from core.errors import DomainError
from core.models import Notification
from credits.models import CreditGrant, CreditTransaction
from orders.models import Order
from orders.services.cancellation import (
    order_cancel_by_buyer,
    order_cancel_by_restaurant,
    order_cancellation_approve,
    order_cancellation_deny,
)
from orders.services.terms import restaurant_update_terms
from refunds.models import Refund, RestaurantLedgerEntry
from tests.concurrency import run_concurrently
from tests.conftest import advance, give_credit, place_order, processor_refunds

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid_order(now, buyer, restaurant, menu):
    """30.50 paid: 25.00 + 2.99 delivery - 0 ... built as 2 Margherita + delivery, paid with
    3.00 promotional credit, 5.00 account credit and the rest by card."""
    give_credit(buyer, "3.00", kind="promo")
    give_credit(buyer, "5.00", kind="account")
    order = place_order(buyer, restaurant, {menu["Margherita"]: 2}, use_credit=True)
    assert (order.total, order.promo_credit_applied, order.account_credit_applied) == (
        D("27.99"),
        D("3.00"),
        D("5.00"),
    )
    assert (order.amount_charged, order.amount_paid) == (D("19.99"), D("24.99"))
    return order


def refunds_of(order):
    return [(r.destination, r.amount) for r in Refund.objects.filter(order=order).order_by("pk")]


def test_buyer_cancels_a_placed_order_free_and_gets_everything_back(paid_order, buyer, partner):
    order, decision = order_cancel_by_buyer(order_id=paid_order.pk, actor=buyer, quote=D("0"))

    assert order.status == Order.Status.CANCELLED
    assert (decision.fee, decision.refund, decision.clauses) == (
        D("0"),
        D("24.99"),
        ("L-2.1", "K-B3"),
    )
    # 24.99 by origin: 19.99 x 24.99 / 24.99 to the card, the 5.00 account part as credit.
    assert refunds_of(order) == [("card", D("19.99")), ("account_credit", D("5.00"))]
    promo = CreditGrant.objects.get(buyer=buyer, kind="promo")
    assert promo.remaining == D("3.00")  # promotional credit given back, not paid out
    assert CreditTransaction.objects.filter(kind="restore", order=order).count() == 1
    assert [n.user for n in Notification.objects.order_by("pk")] == [buyer, partner]
    assert not RestaurantLedgerEntry.objects.exists()


def test_buyer_asks_inside_the_window_and_the_restaurant_approves(paid_order, buyer, partner):
    advance(paid_order, "accept")

    order_cancel_by_buyer(order_id=paid_order.pk, actor=buyer, quote=D("3.75"))
    order = Order.objects.get(pk=paid_order.pk)
    decision_refund = order.amount_paid - order.cancellation_fee

    # 15 % of 24.99 = 3.7485 -> 3.75; 21.24 comes back if the restaurant agrees.
    assert (order.status, order.cancellation_fee) == ("cancellation_requested", D("3.75"))
    assert decision_refund == D("21.24")
    assert not Refund.objects.exists()

    order = order_cancellation_approve(order_id=order.pk, actor=partner)

    assert order.status == Order.Status.CANCELLED
    assert sum(amount for _, amount in refunds_of(order)) == D("21.24")
    fee = RestaurantLedgerEntry.objects.get(order=order)
    assert (fee.kind, fee.amount) == ("cancellation_fee", D("3.75"))
    approved = order.events.get(name="approve")
    assert (approved.actor, approved.actor_role) == (partner, "restaurant")


def test_a_denied_request_lets_the_order_go_on_and_cannot_be_repeated(paid_order, buyer, partner):
    advance(paid_order, "accept")
    order_cancel_by_buyer(order_id=paid_order.pk, actor=buyer)

    order_cancellation_deny(order_id=paid_order.pk, actor=partner, reason="Already cooking")

    order = Order.objects.get(pk=paid_order.pk)
    assert (order.status, order.cancellation_fee) == ("accepted", None)
    assert not Refund.objects.exists()
    with pytest.raises(DomainError) as refused:
        order_cancel_by_buyer(order_id=order.pk, actor=buyer)
    assert refused.value.code == "request_denied"
    assert "Already cooking" in Notification.objects.filter(user=buyer).first().body


@pytest.mark.parametrize(
    ("minutes_after_acceptance", "code"), [(5, "window_passed"), (None, "preparation_started")]
)
def test_refusals_change_nothing(now, paid_order, buyer, minutes_after_acceptance, code):
    if minutes_after_acceptance is None:
        advance(paid_order, "accept", "start_preparation")
    else:
        advance(paid_order, "accept")
        now.shift(dt.timedelta(minutes=minutes_after_acceptance))
    status = Order.objects.get(pk=paid_order.pk).status

    with pytest.raises(DomainError) as refused:
        order_cancel_by_buyer(order_id=paid_order.pk, actor=buyer)

    assert refused.value.code == code
    assert Order.objects.get(pk=paid_order.pk).status == status
    assert not Refund.objects.exists()


def test_a_changed_fee_answers_with_the_new_terms(paid_order, buyer, partner, restaurant):
    # The buyer was quoted 15 % (3.75); the terms changed before the restaurant accepted.
    restaurant_update_terms(
        restaurant_id=restaurant.pk, actor=partner, window_minutes=5, fee_percent=D("20")
    )
    advance(paid_order, "accept")

    with pytest.raises(DomainError) as changed:
        order_cancel_by_buyer(order_id=paid_order.pk, actor=buyer, quote=D("3.75"))

    assert changed.value.code == "quote_changed"
    assert changed.value.extra["cancellation"]["fee"] == "5.00"
    assert Order.objects.get(pk=paid_order.pk).status == "accepted"


def test_terms_changed_after_acceptance_leave_the_accepted_order_alone(
    now, paid_order, buyer, partner, restaurant
):
    """K-B1, L-2.1: the window and fee of the order summary at acceptance are the order's."""
    advance(paid_order, "accept")
    restaurant_update_terms(
        restaurant_id=restaurant.pk, actor=partner, window_minutes=1, fee_percent=D("20")
    )
    now.shift(dt.timedelta(minutes=3))  # past the new 1-minute window, inside the pinned 5

    order, decision = order_cancel_by_buyer(order_id=paid_order.pk, actor=buyer, quote=D("3.75"))

    assert (
        order.accepted_cancellation_window_minutes,
        order.accepted_cancellation_fee_percent,
    ) == (
        5,
        D("15.00"),
    )
    assert (order.status, order.cancellation_fee, decision.refund) == (
        "cancellation_requested",
        D("3.75"),
        D("21.24"),
    )
    assert decision.window_ends_at == order.accepted_at + dt.timedelta(minutes=5)


def test_the_pinned_window_still_ends_the_right_to_ask(now, paid_order, buyer, partner, restaurant):
    advance(paid_order, "accept")
    restaurant_update_terms(
        restaurant_id=restaurant.pk, actor=partner, window_minutes=30, fee_percent=D("10")
    )
    now.shift(dt.timedelta(minutes=6))  # inside the new 30 minutes, past the pinned 5

    with pytest.raises(DomainError) as refused:
        order_cancel_by_buyer(order_id=paid_order.pk, actor=buyer)

    assert (refused.value.code, refused.value.clauses) == ("window_passed", ("K-B1",))
    assert Order.objects.get(pk=paid_order.pk).status == "accepted"
    assert not Refund.objects.exists()


def test_another_buyer_cannot_cancel(paid_order, other_buyer):
    with pytest.raises(DomainError) as refused:
        order_cancel_by_buyer(order_id=paid_order.pk, actor=other_buyer)
    assert refused.value.kind == "not_found"


def test_restaurant_cancels_with_full_refund_goodwill_and_the_explanation(
    paid_order, buyer, partner, django_capture_on_commit_callbacks
):
    advance(paid_order, "accept", "start_preparation")

    with django_capture_on_commit_callbacks(execute=True):
        order = order_cancel_by_restaurant(
            order_id=paid_order.pk,
            actor=partner,
            reason="item_unavailable",
            explanation="  We ran out of mozzarella, sorry!  ",
        )

    order.refresh_from_db()
    assert order.status == Order.Status.CANCELLED
    assert (order.cancellation_reason, order.cancellation_explanation) == (
        "item_unavailable",
        "We ran out of mozzarella, sorry!",
    )
    assert sum(amount for _, amount in refunds_of(order)) == D("24.99")
    goodwill = CreditGrant.objects.get(source="restaurant_cancel_goodwill")
    assert (goodwill.kind, goodwill.amount, goodwill.order) == ("promo", D("5.00"), order)
    assert goodwill.expires_at == order.cancelled_at + dt.timedelta(days=30)
    note = Notification.objects.exclude(title__endswith="refund sent").get(user=buyer)
    assert "We ran out of mozzarella, sorry!" in note.body
    assert [m.to for m in mail.outbox] == [[buyer.email]] * 2  # the news, then "refund sent"
    assert "We ran out of mozzarella, sorry!" in mail.outbox[0].body
    with pytest.raises(DomainError):
        order_cancel_by_restaurant(
            order_id=order.pk, actor=partner, reason="item_unavailable", explanation="Again, sorry"
        )
    assert CreditGrant.objects.filter(source="restaurant_cancel_goodwill").count() == 1


@pytest.mark.parametrize(
    ("reason", "explanation", "code"),
    [
        ("change_of_mind", "We are too busy today", "invalid_reason"),
        ("technical_issue", " short ", "explanation_required"),
    ],
)
def test_restaurant_cancellation_needs_a_reason_and_an_explanation(
    paid_order, partner, reason, explanation, code
):
    with pytest.raises(DomainError) as refused:
        order_cancel_by_restaurant(
            order_id=paid_order.pk, actor=partner, reason=reason, explanation=explanation
        )
    assert (refused.value.code, refused.value.kind) == (code, "invalid")
    assert Order.objects.get(pk=paid_order.pk).status == "placed"
    assert not CreditGrant.objects.filter(source="restaurant_cancel_goodwill").exists()


def test_a_sale_is_booked_once_the_order_is_delivered(paid_order):
    advance(paid_order, "accept", "start_preparation", "mark_ready", "dispatch")
    assert not RestaurantLedgerEntry.objects.exists()
    advance(paid_order, "deliver")
    sale = RestaurantLedgerEntry.objects.get()
    assert (sale.kind, sale.amount) == ("sale", D("25.00"))


@pytest.mark.django_db(transaction=True)
def test_a_double_clicked_cancel_cancels_and_refunds_once(buyer, restaurant, menu):
    order = place_order(buyer, restaurant, {menu["Margherita"]: 2})

    results = run_concurrently(lambda: order_cancel_by_buyer(order_id=order.pk, actor=buyer), 2)

    cancelled = [r for r in results if isinstance(r, tuple)]
    refused = [r for r in results if isinstance(r, DomainError)]
    assert (len(cancelled), [r.code for r in refused]) == (1, ["order_closed"])
    assert refunds_of(order) == [("card", D("27.99"))]
    assert len(processor_refunds()) == 1


def test_terms_must_stay_inside_the_version_bounds(partner, restaurant):
    for window, fee in [(0, D("15")), (31, D("15")), (5, D("9.99")), (5, D("20.01"))]:
        with pytest.raises(DomainError) as refused:
            restaurant_update_terms(
                restaurant_id=restaurant.pk, actor=partner, window_minutes=window, fee_percent=fee
            )
        assert refused.value.code == "terms_out_of_bounds"
    restaurant.refresh_from_db()
    assert (restaurant.cancellation_window_minutes, restaurant.cancellation_fee_percent) == (
        5,
        D("15"),
    )
    for window, fee in [(1, D("10")), (30, D("20"))]:
        updated = restaurant_update_terms(
            restaurant_id=restaurant.pk, actor=partner, window_minutes=window, fee_percent=fee
        )
        assert (updated.cancellation_window_minutes, updated.cancellation_fee_percent) == (
            window,
            fee,
        )


def test_an_overlong_explanation_is_refused_before_anything_changes(paid_order, partner):
    with pytest.raises(DomainError) as refused:
        order_cancel_by_restaurant(
            order_id=paid_order.pk, actor=partner, reason="technical_issue", explanation="x" * 401
        )
    assert (refused.value.code, refused.value.kind) == ("explanation_too_long", "invalid")
    assert Order.objects.get(pk=paid_order.pk).status == "placed"
