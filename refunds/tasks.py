"""Timed refund rules (D-8)."""

import logging
import time

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.utils import timezone

from core.errors import DomainError
from core.services import task_run_recorded
from refunds.selectors import order_late_candidates, refund_ids_due, refund_request_ids_for_sla
from refunds.services.duplicates import duplicate_charge_settle
from refunds.services.late import HELD, REFUNDED, late_order_auto_refund
from refunds.services.processing import refund_process
from refunds.services.sla import refund_request_review_sla

BATCH_SIZE = 200
LATE_SWEEP_MAX_ROWS = 5000  # per run; the next tick (a minute later) goes on

logger = logging.getLogger(__name__)


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


@shared_task(soft_time_limit=50, time_limit=55)
@task_run_recorded
def auto_refund_late_orders(
    batch_size: int = BATCH_SIZE, max_rows: int = LATE_SWEEP_MAX_ROWS
) -> dict:
    """Refund in full every delivery over its version's `late_auto_refund_minutes` late, with no
    review (L-6.1, L-3.1), on beat every minute. Reads candidates in bounded keyset batches from
    the partial index `order_late_sweep_due`; each order is locked with SKIP LOCKED and decided
    in its own transaction, so two sweeps at once, or a sweep and a claim, move money once.
    Logs and returns rows looked at, acted on, skipped (by reason), held for agents, and the
    duration in milliseconds."""
    started, now = time.monotonic(), timezone.now()
    counts: dict[str, int] = {}
    held: list[int] = []
    looked_at, after, stopped = 0, None, False
    try:
        while looked_at < max_rows:
            batch = order_late_candidates(
                now=now, limit=min(batch_size, max_rows - looked_at), after=after
            )
            for _, order_id in batch:
                outcome = _late_one(order_id, now)
                counts[outcome] = counts.get(outcome, 0) + 1
                held += [order_id] if outcome == HELD else []
                looked_at += 1
            if len(batch) < batch_size:
                break
            after = batch[-1]
    except SoftTimeLimitExceeded:
        stopped = True  # the order in hand rolled back; the next tick goes on from the index
    acted = counts.get(REFUNDED, 0)
    result = {
        "looked_at": looked_at,
        "acted_on": acted,
        "skipped": looked_at - acted,
        "skipped_by_reason": {k: v for k, v in counts.items() if k != REFUNDED},
        "held_for_agents": held,
        "stopped_at_time_limit": stopped,
        "duration_ms": round((time.monotonic() - started) * 1000, 1),
    }
    logger.info("auto_refund_late_orders", extra=result)
    return result


def _late_one(order_id: int, now) -> str:
    try:
        return late_order_auto_refund(order_id=order_id, now=now)
    except DomainError as error:
        logger.warning(
            "auto_refund_late_orders failed", extra={"order_id": order_id, "code": error.code}
        )
        return f"error:{error.code}"
