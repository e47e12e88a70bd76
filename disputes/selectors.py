"""Read queries for the platform's oversight (K-OV)."""

import datetime as dt

from django.db.models import QuerySet

from disputes.models import Intervention
from orders.models import Order
from orders.selectors import order_cancellation_support_decides_at
from refunds.models import RefundRequest


def order_ids_with_unanswered_cancellation(*, now: dt.datetime, limit: int) -> list[int]:
    """Orders whose cancellation request has waited longer than the pinned version's
    `cancellation_response_minutes`, not yet handed to support; oldest first."""
    waiting = (
        Order.objects.filter(status=Order.Status.CANCELLATION_REQUESTED)
        .exclude(
            interventions__kind=Intervention.Kind.UNANSWERED_CANCELLATION,
            interventions__status=Intervention.Status.OPEN,
        )
        .select_related("policy_version")
        .only("pk", "cancellation_requested_at", "policy_version__cancellation_response_minutes")
        .order_by("cancellation_requested_at", "pk")
    )
    due = []
    for order in waiting.iterator(chunk_size=500):
        if order_cancellation_support_decides_at(order) <= now:
            due.append(order.pk)
            if len(due) == limit:
                break
    return due


def refund_requests_with_unanswered_verification(
    *, now: dt.datetime, limit: int
) -> list[tuple[int, int]]:
    """Refund requests support asked the restaurant to verify (`awaiting_restaurant`) that
    have waited longer than their order's pinned `verification_response_hours`, with no open
    `unanswered_verification` case: (request id, order id) pairs, the longest waiting first.
    Reads the partial index on `restaurant_asked_at` (only the waiting requests are in it)."""
    waiting = (
        RefundRequest.objects.filter(
            status=RefundRequest.Status.AWAITING_RESTAURANT, restaurant_asked_at__lte=now
        )
        .exclude(
            interventions__kind=Intervention.Kind.UNANSWERED_VERIFICATION,
            interventions__status=Intervention.Status.OPEN,
        )
        .values_list(
            "pk",
            "order_id",
            "restaurant_asked_at",
            "order__policy_version__verification_response_hours",
        )
        .order_by("restaurant_asked_at", "pk")
    )
    due = []
    for request_id, order_id, asked_at, hours in waiting.iterator(chunk_size=500):
        if asked_at + dt.timedelta(hours=hours) <= now:
            due.append((request_id, order_id))
            if len(due) == limit:
                break
    return due


def intervention_queue() -> QuerySet[Intervention]:
    return Intervention.objects.filter(status=Intervention.Status.OPEN).select_related(
        "order", "order__restaurant", "order__buyer"
    )
