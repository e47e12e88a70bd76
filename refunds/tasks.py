"""Timed refund rules (D-8)."""

from celery import shared_task
from django.utils import timezone

from refunds.selectors import refund_request_ids_for_sla
from refunds.services.sla import refund_request_review_sla

BATCH_SIZE = 200


@shared_task
def review_sla_sweep(batch_size: int = BATCH_SIZE) -> dict:
    """Flag refund requests due soon and hand overdue ones to supervisors (L-4.1, K-OV), a
    bounded batch at a time; each request is locked and re-checked, so two runs do it once."""
    now = timezone.now()
    done = [
        refund_request_review_sla(request_id=i, now=now)
        for i in refund_request_ids_for_sla(now=now, limit=batch_size)
    ]
    return {"due_soon": done.count("due_soon"), "escalated": done.count("escalated")}
