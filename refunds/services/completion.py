"""What follows a refund's money movement (D-7): the timeline, the buyer told, the request
refunded once all its money moved, the restaurant's deduction booked (L-9), and support told when
a card refund keeps failing (K-OV).

Called inside a transaction that holds the order's row lock (and the request's, when the refund
has one), by `refunds.services.execution` and `refunds.services.processing`.
"""

import datetime as dt

from core.display import days_text, money_text
from core.services import notification, notify, notify_many
from disputes.models import Intervention
from disputes.services.interventions import intervention_open, interventions_resolve_for_orders
from orders.events import order_event, order_event_record
from orders.models import OrderEvent
from refunds import policy
from refunds.events import refund_request_step
from refunds.models import Refund, RefundRequest
from refunds.services.ledger import restaurant_deduct_refunds


def refund_message(refund: Refund) -> str:
    """The refund as the buyer reads it: on its way, sent, delayed, with support, or credited.
    Never "sent" for money that did not move (D-7)."""
    amount = money_text(refund.amount)
    if refund.destination != Refund.Destination.CARD:
        return f"{amount} added to your wallet as {refund.get_destination_display().lower()}."
    bank = "expected at your bank " + days_text(
        refund.expected_in_bank_from, refund.expected_in_bank_by
    )
    if refund.status == Refund.Status.SUCCEEDED:
        return f"Refund of {amount} sent to your card; {bank}."
    if refund.status == Refund.Status.PENDING:
        return f"Refund of {amount} to your card is on its way; {bank}."
    if refund.next_attempt_at is not None:
        return f"Refund of {amount} to your card is delayed; we are trying again."
    return f"Refund of {amount} to your card could not be made; our support team is on it."


def refund_succeeded(refund: Refund, *, actor, role: str, now: dt.datetime) -> None:
    """Record the money as moved: the timeline, the L-9 deduction, and the buyer told (with the
    request marked refunded once every refund of it has succeeded); an open refund_failed case
    on the order closes."""
    refunds_succeeded([refund], actor=actor, role=role, now=now)


def refunds_succeeded(refunds: list[Refund], *, actor, role: str, now: dt.datetime) -> None:
    """`refund_succeeded` for a batch (credit refunds made together, D-8): one insert each for
    the timeline and the buyers told, one update for the refund_failed cases; a refund of a
    request still takes that request's own steps."""
    OrderEvent.objects.bulk_create(
        order_event(
            order=refund.order,
            kind=OrderEvent.Kind.REFUND,
            name="refund_succeeded",
            actor=actor,
            role=role,
            message=refund_message(refund),
            reason=refund.reason,
            clauses=refund.clauses,
            amount=refund.amount,
            at=now,
        )
        for refund in refunds
    )
    for refund in (r for r in refunds if r.request_id is not None):
        if refund.request.reason in policy.RESTAURANT_CAUSED and refund.is_money_back:
            restaurant_deduct_refunds(refund.order, [refund])  # promotional credit: platform's
        _request_refunded_if_paid(refund.request, actor=actor, role=role, now=now)
    notify_many(
        [
            notification(
                user=refund.order.buyer,
                title=f"Order #{refund.order_id}: refund sent",
                body=refund_message(refund),
                order=refund.order,
            )
            for refund in refunds
            if refund.request_id is None and refund.destination == Refund.Destination.CARD
        ]
    )
    interventions_resolve_for_orders(
        order_ids={refund.order_id for refund in refunds},
        kind=Intervention.Kind.REFUND_FAILED,
        actor=actor,
        action="The refund went through.",
        now=now,
    )


def refund_given_up(refund: Refund, *, now: dt.datetime) -> None:
    """A card refund that failed `refund_max_attempts` times goes to support (K-OV, D-7): one
    open refund_failed case for the order, and the buyer told support is on it."""
    intervention_open(
        order=refund.order,
        refund_request=refund.request,
        kind=Intervention.Kind.REFUND_FAILED,
        summary=f"Refund of {money_text(refund.amount)} to the card failed {refund.attempts} "
        f"times: {refund.failure_message}"[:240],
        now=now,
    )
    order_event_record(
        order=refund.order,
        kind=OrderEvent.Kind.REFUND,
        name="refund_failed",
        actor=None,
        role=OrderEvent.Role.SYSTEM,
        message=refund_message(refund),
        clauses=("K-OV",),
        amount=refund.amount,
        at=now,
    )
    notify(
        user=refund.order.buyer,
        title=f"Order #{refund.order_id}: your refund needs our help",
        body=refund_message(refund),
        order=refund.order,
    )


def _request_refunded_if_paid(request: RefundRequest, *, actor, role: str, now) -> None:
    # A denied request whose decision a supervisor overturned (L-8.1) gets its money on the
    # escalation, not through its own state machine: only an approved one becomes refunded.
    if request.status not in (
        RefundRequest.Status.APPROVED,
        RefundRequest.Status.PARTIALLY_APPROVED,
    ):
        return
    live = list(request.refunds.filter(replaced_by__isnull=True))
    if any(refund.status != Refund.Status.SUCCEEDED for refund in live):
        return
    messages = " ".join(refund_message(refund) for refund in live)
    refund_request_step(
        request, request.mark_refunded, actor=actor, role=role, at=now, message=messages
    )
    notify(
        user=request.buyer,
        title=f"Refund request #{request.pk}: {money_text(request.decided_amount)} back",
        body=messages,
        url=request.get_absolute_url(),
    )
