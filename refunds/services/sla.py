"""The review SLA (L-4.1, K-OV): due-soon flags and hand-over to supervisors."""

import datetime as dt

from django.db import transaction

from disputes.models import Intervention
from disputes.services import intervention_open
from refunds.events import refund_request_event_record
from refunds.lock_objects import refund_request_for_update
from refunds.models import RefundRequest


@transaction.atomic
def refund_request_review_sla(*, request_id: int, now: dt.datetime) -> str:
    """L-4.1 / K-OV: flag a request due soon (24 h before its due time) and hand an overdue one
    to supervisors, once each. Returns what it did ("", "due_soon" or "escalated")."""
    request = refund_request_for_update(request_id)
    version = request.order.policy_version
    reviewing = [RefundRequest.Status.UNDER_REVIEW, RefundRequest.Status.AWAITING_RESTAURANT]
    if request.status not in reviewing:
        return ""
    if now >= request.review_due_at and request.escalated_at is None:
        request.escalated_at = now
        request.save(update_fields=["escalated_at"])
        intervention_open(
            order=request.order,
            refund_request=request,
            kind=Intervention.Kind.REVIEW_OVERDUE,
            now=now,
            summary=f"Refund request #{request.pk} not decided within "
            f"{version.review_sla_hours} h.",
        )
        refund_request_event_record(
            request,
            name="escalated",
            from_status=request.status,
            actor=None,
            role="system",
            at=now,
            clauses=("L-4.1", "K-OV"),
            message="Review overdue: handed to supervisors.",
        )
        return "escalated"
    due_soon_from = request.review_due_at - dt.timedelta(
        hours=version.review_sla_hours - version.review_due_soon_hours
    )
    if now >= due_soon_from and request.due_soon_flagged_at is None:
        request.due_soon_flagged_at = now
        request.save(update_fields=["due_soon_flagged_at"])
        return "due_soon"
    return ""
