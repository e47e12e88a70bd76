"""Interventions (K-OV): the platform stepping in where a restaurant or a buyer did not follow
the rules in time; a case opens, and closes when the thing it is about is resolved."""

import datetime as dt

from django.db import IntegrityError, transaction

from core.roles import User
from core.services import notify, notify_restaurant
from disputes.models import Intervention
from orders.events import order_event_record
from orders.lock_objects import order_for_update, order_for_update_skip_locked
from orders.models import Order, OrderEvent
from refunds.events import refund_request_event_record
from refunds.lock_objects import refund_request_for_update
from refunds.models import RefundRequest


def intervention_open(
    *, order, kind: str, summary: str, now: dt.datetime, refund_request=None
) -> Intervention | None:
    """Hand a case to support (K-OV), once: an open case of the same kind for the order is kept
    and None returned (the database's unique open case decides, in a savepoint, so two sweeps
    at once open one). Takes no row lock; call inside the caller's transaction, holding the
    lock of what the case is about. Raises no domain error."""
    try:
        with transaction.atomic():
            return Intervention.objects.create(
                order=order,
                refund_request=refund_request,
                kind=kind,
                summary=summary,
                opened_at=now,
            )
    except IntegrityError:
        return None


def intervention_resolve_for_order(
    *, order, kind: str, actor: User | None, action: str, now: dt.datetime
) -> None:
    """Close the open case of this kind on the order, saying who did what (if there is one):
    the thing it was about was resolved, by whatever path (K-OV). `actor` None for the system.
    Call while holding the order's row lock. Raises no domain error."""
    interventions_resolve_for_orders(
        order_ids=[order.pk], kind=kind, actor=actor, action=action, now=now
    )


def interventions_resolve_for_orders(
    *, order_ids, kind: str, actor: User | None, action: str, now: dt.datetime
) -> None:
    """`intervention_resolve_for_order` for a batch of orders, in one update; the caller holds
    their row locks."""
    Intervention.objects.filter(
        order_id__in=order_ids, kind=kind, status=Intervention.Status.OPEN
    ).update(
        status=Intervention.Status.RESOLVED, resolved_by=actor, resolved_at=now, action_taken=action
    )


def intervention_resolve_for_refund_request(
    *, refund_request, actor: User | None, action: str, now: dt.datetime
) -> None:
    """Close the request's open review-overdue and unanswered-verification cases (K-OV, L-4.1),
    whoever decided it and however (`actor` None for the policy): called in the transaction that
    decides the request, which holds its row lock. Raises no domain error."""
    Intervention.objects.filter(
        refund_request=refund_request,
        kind__in=[Intervention.Kind.REVIEW_OVERDUE, Intervention.Kind.UNANSWERED_VERIFICATION],
        status=Intervention.Status.OPEN,
    ).update(
        status=Intervention.Status.RESOLVED, resolved_by=actor, resolved_at=now, action_taken=action
    )


def intervention_resolve_unanswered_verification(
    *, refund_request, actor: User | None, action: str, now: dt.datetime
) -> None:
    """Close the request's open unanswered-verification case (K-OV): the restaurant answered
    after all. Call in the transaction that takes the request out of `awaiting_restaurant`,
    holding its row lock. Raises no domain error."""
    Intervention.objects.filter(
        refund_request=refund_request,
        kind=Intervention.Kind.UNANSWERED_VERIFICATION,
        status=Intervention.Status.OPEN,
    ).update(
        status=Intervention.Status.RESOLVED, resolved_by=actor, resolved_at=now, action_taken=action
    )


@transaction.atomic
def intervention_hand_over_unanswered_verification(
    *, request_id: int, order_id: int, now: dt.datetime
) -> bool:
    """Give support back a refund request whose restaurant left its verification request
    unanswered for the order's `verification_response_hours` (K-OV, L-4.1): an
    `unanswered_verification` case, a line on the request's timeline and a note to the
    restaurant, once. Takes the order's row lock with SKIP LOCKED (an order another transaction
    holds is left to the next run), then the request's, and re-checks under them: an answer or
    a decision that just came in wins. Returns whether it handed the request over.

    Errors: `not_found` (404) for a request that does not exist."""
    order = order_for_update_skip_locked(order_id)
    if order is None:
        return False
    request = refund_request_for_update(request_id)
    hours = order.policy_version.verification_response_hours
    if (
        request.order_id != order.pk
        or request.status != RefundRequest.Status.AWAITING_RESTAURANT
        or request.restaurant_asked_at is None
        or request.restaurant_asked_at + dt.timedelta(hours=hours) > now
    ):
        return False
    summary = (
        f"Restaurant did not answer the verification request on refund request #{request.pk} "
        f"within {hours} h."
    )
    case = intervention_open(
        order=order,
        refund_request=request,
        kind=Intervention.Kind.UNANSWERED_VERIFICATION,
        summary=summary,
        now=now,
    )
    if case is None:
        return False
    refund_request_event_record(
        request,
        name="handed_to_support",
        from_status=request.status,
        actor=None,
        role="system",
        at=now,
        clauses=("L-4.1", "K-OV"),
        message=f"The restaurant did not answer within {hours} h: support decides.",
    )
    notify_restaurant(
        order.restaurant,
        title=f"Order #{order.pk}: verification handed to support",
        body=f"{summary} Support decides without your answer; you may still answer.",
        url="/seller/verifications/",
    )
    return True


@transaction.atomic
def intervention_hand_over_cancellation_request(*, order_id: int, now: dt.datetime) -> bool:
    """Give a cancellation request unanswered for `cancellation_response_minutes` to support
    (K-OV, L-2.1) and tell the restaurant and the buyer, once. Takes the order's row lock and
    re-checks under it: an answer that just came in wins. Returns whether it handed it over.

    Errors: `not_found` (404) for an order that does not exist."""
    order = order_for_update(order_id)
    if order.status != Order.Status.CANCELLATION_REQUESTED:
        return False
    minutes = order.policy_version.cancellation_response_minutes
    summary = f"Restaurant did not answer the cancellation request within {minutes} minutes."
    if (
        intervention_open(
            order=order, kind=Intervention.Kind.UNANSWERED_CANCELLATION, summary=summary, now=now
        )
        is None
    ):
        return False
    order_event_record(
        order=order,
        kind=OrderEvent.Kind.NOTE,
        name="handed_to_support",
        actor=None,
        role=OrderEvent.Role.SYSTEM,
        message=f"{summary} Support will decide.",
        clauses=("K-OV",),
        at=now,
    )
    notify(
        user=order.buyer,
        title=f"Order #{order.pk}: support is deciding",
        body=f"{summary} Our support team will decide on your cancellation request.",
        order=order,
    )
    notify_restaurant(
        order.restaurant,
        title=f"Order #{order.pk} handed to support",
        body=summary,
        url="/seller/cancellation-requests/",
    )
    return True
