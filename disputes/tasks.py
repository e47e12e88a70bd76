"""Timed oversight rules (D-8, K-OV)."""

from celery import shared_task
from django.utils import timezone

from disputes.selectors import order_ids_with_unanswered_cancellation
from disputes.services import intervention_hand_over_cancellation_request

BATCH_SIZE = 200


@shared_task
def hand_unanswered_cancellation_requests_to_support(batch_size: int = BATCH_SIZE) -> int:
    """Hand cancellation requests the restaurant left unanswered to support (K-OV), a bounded
    batch at a time; safe to run twice at once (one open case per order, by constraint)."""
    now = timezone.now()
    ids = order_ids_with_unanswered_cancellation(now=now, limit=batch_size)
    return sum(intervention_hand_over_cancellation_request(order_id=i, now=now) for i in ids)
