"""Timed credit rules (D-8)."""

from celery import shared_task
from django.utils import timezone

from credits.selectors import credit_ids_to_expire
from credits.services import credit_expire

BATCH_SIZE = 500


@shared_task
def expire_credits(batch_size: int = BATCH_SIZE) -> int:
    """Expire promotional credit past its date (L-7.1), a bounded batch at a time; safe to run
    twice at once (each grant is locked and re-checked). Returns how many grants expired."""
    now = timezone.now()
    expired = 0
    while ids := credit_ids_to_expire(now=now, limit=batch_size):
        results = [credit_expire(grant_id=grant_id, now=now) for grant_id in ids]
        expired += sum(results)
        if not any(results):
            break
    return expired
