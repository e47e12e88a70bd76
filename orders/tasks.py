"""Timed rules of orders (D-8)."""

import logging

from celery import shared_task
from django.utils import timezone

from core.errors import DomainError
from core.services import task_run_recorded
from orders.selectors import order_ids_missing_due, policy_version_ids_to_announce
from orders.services.missing import order_missing_give_up
from orders.services.placement import order_void_orphan_charges
from orders.services.policy_versions import policy_version_announce

logger = logging.getLogger(__name__)

BATCH_SIZE = 200


@shared_task
@task_run_recorded
def void_orphan_charges() -> int:
    """Void the processor's charges whose order never committed (D-7). Returns how many; the
    decorator logs and records the run."""
    return len(order_void_orphan_charges(now=timezone.now()))


@shared_task
@task_run_recorded
def give_up_missing_orders(batch_size: int = BATCH_SIZE) -> dict:
    """Give up the missing orders not located within their version's `locate_minutes` and
    refund them in full (L-6.2), a bounded batch per run; each order is claimed with SKIP
    LOCKED and re-checked, so two runs at once give each up once. Counts looked at, given up
    and skipped."""
    now = timezone.now()
    due = order_ids_missing_due(now=now, limit=batch_size)
    given_up = sum(_give_up(order_id, now) for order_id in due)
    return {"looked_at": len(due), "given_up": given_up, "skipped": len(due) - given_up}


def _give_up(order_id: int, now) -> bool:
    # One order the refund service refuses (e.g. under a chargeback, L-7.2) must not stop the
    # batch; it stays missing, with its case open for support, and is logged.
    try:
        return order_missing_give_up(order_id=order_id, now=now)
    except DomainError as error:
        logger.warning(
            "give_up_missing_order_refused", extra={"order_id": order_id, "code": error.code}
        )
        return False


ANNOUNCE_BATCH_SIZE = 500
ANNOUNCE_MAX_BATCHES = 20  # users told a run at most: ANNOUNCE_BATCH_SIZE x this; beat goes on


@shared_task
@task_run_recorded
def announce_policy_versions(
    batch_size: int = ANNOUNCE_BATCH_SIZE, max_batches: int = ANNOUNCE_MAX_BATCHES
) -> dict:
    """Tell buyers and partners of each newly published policy version (K-UP), one batch of
    users per transaction, at most `max_batches` a run; requested through the outbox when a
    version is published and run on beat until everyone was told. Two runs at once skip each
    other's version (SKIP LOCKED), and each batch moves the version's cursor, so every user is
    told once. Counts versions looked at and users told."""
    now = timezone.now()
    told, batches = 0, 0
    versions = policy_version_ids_to_announce(limit=max_batches)
    for version_id in versions:
        while batches < max_batches:
            batches += 1
            count = policy_version_announce(version_id=version_id, now=now, limit=batch_size)
            told += count or 0
            if count is None or count < batch_size:
                break
    return {"versions": len(versions), "told": told}
