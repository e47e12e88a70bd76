"""Timed refund rules (D-8)."""

from celery import shared_task
from django.utils import timezone

from core.services import task_run_recorded
from refunds.selectors import refund_ids_due, refund_request_ids_for_sla
from refunds.services.duplicates import duplicate_charge_settle
from refunds.services.processing import refund_process
from refunds.services.sla import refund_request_review_sla

BATCH_SIZE = 200


@shared_task
@task_run_recorded
def review_sla_sweep(batch_size: int = BATCH_SIZE) -> dict:
    """Flag refund requests due soon and hand overdue ones to supervisors (L-4.1, K-OV), a
    bounded batch at a time; each request is locked and re-checked, so two runs do it once."""
    now = timezone.now()
    done = [
        refund_request_review_sla(request_id=i, now=now)
        for i in refund_request_ids_for_sla(now=now, limit=batch_size)
    ]
    return {"due_soon": done.count("due_soon"), "escalated": done.count("escalated")}


@shared_task
def process_refund(refund_id: int) -> str:
    """Make one card refund's money movement (D-7); requested through the outbox after the
    refund commits. Safe to run twice: the claim lease and the processor key make it once."""
    return refund_process(refund_id=refund_id)


@shared_task
@task_run_recorded
def retry_failed_refunds(batch_size: int = BATCH_SIZE) -> dict:
    """Try again the card refunds that are due: failed ones after their backoff, and pending
    ones whose first try never ran or whose worker died (D-7). Counts by outcome."""
    outcomes: dict[str, int] = {}
    for refund_id in refund_ids_due(now=timezone.now(), limit=batch_size):
        outcome = refund_process(refund_id=refund_id)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


@shared_task
def settle_duplicate_charge(request_id: int) -> str:
    """Look for the second charge a duplicate-charge claim is about and cancel it (L-3.1);
    requested through the outbox when the claim commits. Safe to run twice."""
    return duplicate_charge_settle(request_id=request_id)
