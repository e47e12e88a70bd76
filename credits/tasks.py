"""Timed credit rules (D-8)."""

from celery import shared_task
from django.utils import timezone

from core.services import task_run_recorded
from credits.services import credit_expire_due

BATCH_SIZE = 500


@shared_task
@task_run_recorded
def expire_credits(batch_size: int = BATCH_SIZE) -> int:
    """Expire promotional credit past its date (L-7.1), a bounded batch per transaction until
    none is due; safe to run twice at once (locked grants are skipped, and a grant expires once
    by constraint). Returns how many grants expired."""
    now = timezone.now()
    expired = 0
    while batch := credit_expire_due(now=now, limit=batch_size):
        expired += batch
    return expired
