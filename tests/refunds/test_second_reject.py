"""Four eyes (D-6, L-4.1): a supervisor refuses the second approval of a large decision; the
request goes back under review with nothing paid. Every refusal changes nothing."""

from decimal import Decimal as D

import pytest

from core.errors import DomainError
from refunds.models import Refund, RefundRequest
from refunds.services.decisions import (
    refund_request_approve,
    refund_request_partially_approve,
    refund_request_second_reject,
)
from refunds.services.requests import refund_request_submit
from tests.conftest import advance, place_order

pytestmark = pytest.mark.django_db


def wrong_order(buyer, restaurant, menu) -> RefundRequest:
    """5 Margherita + 2.99 delivery = 65.49 paid; the whole order was wrong."""
    order = place_order(buyer, restaurant, {menu["Margherita"]: 5})
    advance(order, "accept", "start_preparation", "mark_ready", "dispatch", "deliver")
    return refund_request_submit(order_id=order.pk, actor=buyer, reason="wrong_order")


def test_a_refused_second_approval_clears_the_decision(supervisor, agent, buyer, restaurant, menu):
    request = refund_request_partially_approve(
        request_id=wrong_order(buyer, restaurant, menu).pk,
        actor=agent,
        amount=D("60.00"),
        explanation="All but the drinks were wrong.",
        method="account_credit",
    )

    sent = refund_request_second_reject(
        request_id=request.pk, actor=supervisor, explanation="Photos show only the drinks."
    )

    sent.refresh_from_db()
    assert sent.status == RefundRequest.Status.UNDER_REVIEW
    assert (sent.decided_amount, sent.decided_method, sent.resolution) == (None, "", "")
    assert (sent.decided_by, sent.decided_at, sent.needs_second_approval) == (None, None, False)
    assert sent.decision_clauses == []
    assert [e.name for e in sent.events.order_by("pk")][-3:] == [
        "partially_approve",
        "awaiting_supervisor",
        "send_back",
    ]
    assert Refund.objects.count() == 0


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("an agent", "supervisor_required"),
        ("no reason", "explanation_required"),
        ("not waiting", "no_second_approval_due"),
    ],
)
def test_refusals_change_nothing(supervisor, agent, buyer, restaurant, menu, case, code):
    request = wrong_order(buyer, restaurant, menu)
    if case != "not waiting":
        request = refund_request_approve(request_id=request.pk, actor=agent)
    before = RefundRequest.objects.values().get(pk=request.pk)
    events = request.events.count()

    with pytest.raises(DomainError) as refused:
        refund_request_second_reject(
            request_id=request.pk,
            actor=agent if case == "an agent" else supervisor,
            explanation="" if case == "no reason" else "Check again.",
        )

    assert refused.value.code == code
    assert RefundRequest.objects.values().get(pk=request.pk) == before
    assert request.events.count() == events
    assert Refund.objects.count() == 0
