"""The review SLA (L-4.1, K-OV): due-soon flags and hand-over to supervisors."""

import datetime as dt

from django.db import transaction
from django.urls import reverse

from core.services import notify
from disputes.models import Intervention
from disputes.services.interventions import intervention_open
from refunds import policy
from refunds.events import refund_request_event_record
from refunds.lock_objects import refund_request_for_update
from refunds.selectors import supervisor_list


@transaction.atomic
def refund_request_review_sla(*, request_id: int, now: dt.datetime) -> str:
    """L-4.1 / K-OV: flag a request due soon (`review_due_soon_hours` into its review) and hand
    an overdue one to supervisors (a `review_overdue` case, a notification to each active
    supervisor), once each. Takes the request's row lock and re-checks under it, so two sweeps
    do it once. Returns what it did ("", "due_soon" or "escalated").

    Errors: `not_found` (404) for a request that does not exist."""
    request = refund_request_for_update(request_id)
    version = request.order.policy_version
    clock = policy.review_clock(
        status=request.status,
        review_due_at=request.review_due_at,
        due_soon_flagged=False,
        sla_hours=version.review_sla_hours,
        due_soon_hours=version.review_due_soon_hours,
        now=now,
    )
    if not clock.running:
        return ""
    if clock.overdue and request.escalated_at is None:
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
        for supervisor in supervisor_list():
            notify(
                user=supervisor,
                title=f"Refund request #{request.pk}: review overdue",
                body=f"Refund request #{request.pk} was not decided within "
                f"{version.review_sla_hours} h (L-4.1); it is handed to supervisors (K-OV).",
                url=reverse("admin:refunds_refundrequest_change", args=[request.pk]),
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
    if clock.due_soon and request.due_soon_flagged_at is None:
        request.due_soon_flagged_at = now
        request.save(update_fields=["due_soon_flagged_at"])
        return "due_soon"
    return ""
