"""Timed platform housekeeping (D-8)."""

from celery import shared_task
from django.utils import timezone

from core.idempotency import PURGE_BATCH_SIZE, idempotency_records_purge


@shared_task
def purge_idempotency_records(batch_size: int = PURGE_BATCH_SIZE) -> int:
    """Delete `Idempotency-Key` records past their 24 hours (D-10). Returns how many."""
    return idempotency_records_purge(now=timezone.now(), batch_size=batch_size)
