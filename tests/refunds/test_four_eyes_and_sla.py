"""Four eyes on resolutions other than money (D-6, L-4.1, L-4.3) and the review SLA's hand-over
to supervisors (L-4.1, K-OV), on PostgreSQL through the services and the beat task."""

import datetime as dt
from decimal import Decimal as D

import pytest
import time_machine

from core.errors import DomainError
from core.models import Notification
from core.roles import SUPERVISOR, SUPPORT_AGENT
from credits.models import CreditGrant, CreditTransaction
from disputes.models import Intervention
from orders.models import Order
from refunds.models import Refund
from refunds.services.decisions import (
    refund_request_offer_credit,
    refund_request_offer_replacement,
    refund_request_second_approve,
)
from refunds.services.requests import refund_request_submit
from refunds.tasks import review_sla_sweep
from tests.concurrency import run_concurrently
from tests.conftest import NOW, advance, place_order
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock():
    """NOW, standing still until the test moves it, so dates are exact."""
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def delivered_order(buyer, restaurant, items):
    order = place_order(buyer, restaurant, items)
    return advance(order, "accept", "start_preparation", "mark_ready", "dispatch", "deliver")


def refused(call, **kwargs) -> str:
    with pytest.raises(DomainError) as error:
        call(**kwargs)
    return error.value.code


# -- four eyes: promotional credit (L-4.3, D-6) -------------------------------------------


def test_a_credit_above_the_threshold_is_granted_only_at_the_supervisors_approval(
    clock, buyer, agent, supervisor, restaurant, menu
):
    order = delivered_order(buyer, restaurant, {menu["Margherita"]: 6})  # 77.99 by card
    request = refund_request_submit(order_id=order.pk, actor=buyer, reason="wrong_order")
    assert order.policy_version.supervisor_approval_above == D("50.00")

    refund_request_offer_credit(
        request_id=request.pk, actor=agent, amount=D("70.00"), explanation="Sorry for the mix-up"
    )

    request.refresh_from_db()
    assert (request.status, request.resolution, request.decided_amount) == (
        "partially_approved",
        "promo_credit",
        D("70.00"),
    )
    assert (request.needs_second_approval, request.second_approved_by) == (True, None)
    assert request.events.filter(name="awaiting_supervisor").count() == 1
    assert not CreditGrant.objects.exists()
    assert not CreditTransaction.objects.exists()
    assert not Refund.objects.exists()

    clock.shift(dt.timedelta(hours=3))
    assert refused(refund_request_second_approve, request_id=request.pk, actor=agent) == (
        "supervisor_required"
    )
    assert not CreditGrant.objects.exists()
    assert not Refund.objects.exists()

    refund_request_second_approve(request_id=request.pk, actor=supervisor)

    grant = CreditGrant.objects.get()
    approved_at = NOW + dt.timedelta(hours=3)
    assert (grant.buyer, grant.kind, grant.source) == (buyer, "promo", "agent")
    assert (grant.amount, grant.remaining) == (D("70.00"), D("70.00"))
    assert grant.expires_at == approved_at + dt.timedelta(days=30)
    refund = Refund.objects.get()
    assert (refund.request, refund.destination, refund.amount, refund.status) == (
        request,
        "promo_credit",
        D("70.00"),
        "succeeded",
    )
    assert grant.refund == refund
    assert list(CreditTransaction.objects.values_list("kind", "amount")) == [("grant", D("70.00"))]
    request.refresh_from_db()
    assert (request.status, request.second_approved_by, request.second_approved_at) == (
        "refunded",
        supervisor,
        approved_at,
    )


def test_a_credit_confirmed_twice_is_granted_once(
    clock, buyer, agent, supervisor, restaurant, menu
):
    order = delivered_order(buyer, restaurant, {menu["Margherita"]: 6})
    request = refund_request_submit(order_id=order.pk, actor=buyer, reason="wrong_order")
    refund_request_offer_credit(
        request_id=request.pk, actor=agent, amount=D("70.00"), explanation="Sorry for the mix-up"
    )
    refund_request_second_approve(request_id=request.pk, actor=supervisor)

    assert refused(refund_request_second_approve, request_id=request.pk, actor=supervisor) == (
        "no_second_approval_due"
    )
    assert CreditGrant.objects.get().amount == D("70.00")
    assert Refund.objects.count() == 1


def test_the_supervisor_who_offered_the_credit_cannot_confirm_it(
    clock, buyer, supervisor, restaurant, menu
):
    order = delivered_order(buyer, restaurant, {menu["Margherita"]: 6})
    request = refund_request_submit(order_id=order.pk, actor=buyer, reason="wrong_order")
    refund_request_offer_credit(
        request_id=request.pk,
        actor=supervisor,
        amount=D("70.00"),
        explanation="Sorry for the mix-up",
    )

    assert refused(refund_request_second_approve, request_id=request.pk, actor=supervisor) == (
        "four_eyes"
    )
    assert not CreditGrant.objects.exists()
    assert not Refund.objects.exists()


# -- four eyes: a replacement order (L-4.1 step 4, L-6.2, D-6) -----------------------------


def test_a_replacement_above_the_threshold_is_placed_only_at_the_second_approval(
    clock, buyer, agent, supervisor, restaurant, menu
):
    order = delivered_order(buyer, restaurant, {menu["Margherita"]: 5, menu["Tiramisu"]: 1})
    lines = {item.name: item.pk for item in order.items.all()}
    request = refund_request_submit(
        order_id=order.pk,
        actor=buyer,
        reason="missing_items",
        items=[(lines["Margherita"], 4), (lines["Tiramisu"], 1)],  # worth 56.00
    )

    refund_request_offer_replacement(
        request_id=request.pk, actor=agent, explanation="A fresh order is on its way"
    )

    request.refresh_from_db()
    assert (request.status, request.resolution, request.decided_amount) == (
        "approved",
        "replacement",
        D("56.00"),
    )
    assert (request.needs_second_approval, request.replacement_order) == (True, None)
    assert list(Order.objects.values_list("pk", flat=True)) == [order.pk]
    assert refused(refund_request_second_approve, request_id=request.pk, actor=agent) == (
        "supervisor_required"
    )
    assert list(Order.objects.values_list("pk", flat=True)) == [order.pk]

    refund_request_second_approve(request_id=request.pk, actor=supervisor)

    request.refresh_from_db()
    replacement = Order.objects.exclude(pk=order.pk).get()
    assert request.replacement_order == replacement
    assert sorted((i.name, i.quantity) for i in replacement.items.all()) == [
        ("Margherita", 4),
        ("Tiramisu", 1),
    ]
    assert (replacement.buyer, replacement.restaurant, replacement.status) == (
        buyer,
        restaurant,
        "placed",
    )
    assert (replacement.subtotal, replacement.total, replacement.amount_charged) == (
        D("56.00"),
        D("0.00"),
        D("0.00"),
    )
    assert not Refund.objects.exists()

    assert refused(refund_request_second_approve, request_id=request.pk, actor=supervisor) == (
        "no_second_approval_due"
    )
    assert Order.objects.count() == 2


# -- the review SLA hands an overdue request to supervisors (L-4.1, K-OV) -------------------


@pytest.fixture
def supervisors(supervisor):
    """Two active supervisors, and people the hand-over must not reach."""
    other = UserFactory(username="chief", is_staff=True, groups=[SUPERVISOR])
    UserFactory(username="retired", is_staff=True, is_active=False, groups=[SUPERVISOR])
    UserFactory(username="helper", is_staff=True, groups=[SUPPORT_AGENT])
    return [supervisor, other]


def overdue_titles() -> list[tuple[str, str]]:
    return sorted(
        Notification.objects.filter(title__endswith="review overdue").values_list(
            "user__username", "title"
        )
    )


def test_an_overdue_review_notifies_each_active_supervisor_once_over_two_sweeps(
    clock, buyer, restaurant, menu, supervisors
):
    order = delivered_order(buyer, restaurant, {menu["Margherita"]: 2})
    request = refund_request_submit(order_id=order.pk, actor=buyer, reason="wrong_order")
    clock.shift(dt.timedelta(hours=48))

    first = review_sla_sweep()
    second = review_sla_sweep()

    assert first == {"due_soon": 0, "escalated": 1}
    assert second == {"due_soon": 0, "escalated": 0}
    title = f"Refund request #{request.pk}: review overdue"
    assert overdue_titles() == [("boss", title), ("chief", title)]
    case = Intervention.objects.get()
    assert (case.kind, case.refund_request, case.status) == ("review_overdue", request, "open")
    request.refresh_from_db()
    assert request.escalated_at == NOW + dt.timedelta(hours=48)
    assert request.events.filter(name="escalated").count() == 1


def test_a_review_not_yet_overdue_notifies_no_one(clock, buyer, restaurant, menu, supervisors):
    order = delivered_order(buyer, restaurant, {menu["Margherita"]: 2})
    refund_request_submit(order_id=order.pk, actor=buyer, reason="wrong_order")
    clock.shift(dt.timedelta(hours=47, minutes=59))

    assert review_sla_sweep() == {"due_soon": 1, "escalated": 0}
    assert overdue_titles() == []
    assert not Intervention.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_notify_each_supervisor_once(
    clock, buyer, restaurant, menu, supervisors
):
    order = delivered_order(buyer, restaurant, {menu["Margherita"]: 2})
    request = refund_request_submit(order_id=order.pk, actor=buyer, reason="wrong_order")
    clock.shift(dt.timedelta(hours=48))

    results = run_concurrently(review_sla_sweep, 2)

    assert sorted(r["escalated"] for r in results) == [0, 1]
    title = f"Refund request #{request.pk}: review overdue"
    assert overdue_titles() == [("boss", title), ("chief", title)]
    assert Intervention.objects.filter(refund_request=request).count() == 1
