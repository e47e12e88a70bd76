"""Timed refund rules (D-8)."""

import logging
import time
from collections import Counter

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.utils import timezone

from core.services import task_run_recorded
from refunds.selectors import (
    order_late_candidates,
    refund_ids_due,
    refund_request_ids_for_sla,
    restaurant_ids_with_periods_to_close,
)
from refunds.services.duplicates import duplicate_charge_settle
from refunds.services.evidence import held_photos_purge
from refunds.services.late import HELD, REFUNDED, late_orders_auto_refund
from refunds.services.payouts import restaurant_close_periods
from refunds.services.processing import refund_process
from refunds.services.sla import refund_request_review_sla

BATCH_SIZE = 200
# The late sweep locks and refunds this many orders in one transaction (a few statements each
# batch, D-8), and looks at no more than LATE_SWEEP_MAX_ROWS a run; the next tick goes on.
LATE_SWEEP_BATCH_SIZE = 500
LATE_SWEEP_MAX_ROWS = 20_000
HELD_LISTED = 100  # held order ids a run reports; the counts cover them all

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
def process_refunds(refund_ids: list[int]) -> dict:
    """Make these card refunds' money movements (D-7), one after another; requested through
    the outbox after the refunds commit. Safe to run twice, or to be delivered again after a
    worker died part way: the claim lease and the processor key make each movement once.
    Counts by outcome."""
    return _outcome_counts(refund_process(refund_id=refund_id) for refund_id in refund_ids)


@shared_task
@task_run_recorded
def retry_failed_refunds(batch_size: int = BATCH_SIZE) -> dict:
    """Try again the card refunds that are due: failed ones after their backoff, and pending
    ones whose first try never ran or whose worker died (D-7). Counts by outcome."""
    return _outcome_counts(
        refund_process(refund_id=refund_id)
        for refund_id in refund_ids_due(now=timezone.now(), limit=batch_size)
    )


def _outcome_counts(outcomes) -> dict[str, int]:
    return dict(Counter(outcomes))


@shared_task
def settle_duplicate_charge(request_id: int) -> str:
    """Look for the second charge a duplicate-charge claim is about and cancel it (L-3.1);
    requested through the outbox when the claim commits. Safe to run twice."""
    return duplicate_charge_settle(request_id=request_id)


@shared_task(soft_time_limit=50, time_limit=55)
@task_run_recorded
def auto_refund_late_orders(
    batch_size: int = LATE_SWEEP_BATCH_SIZE, max_rows: int = LATE_SWEEP_MAX_ROWS
) -> dict:
    """Refund in full every delivery over its version's `late_auto_refund_minutes` late, with no
    review (L-6.1, L-3.1), on beat every minute. Reads candidates in bounded keyset batches from
    the partial index `order_late_sweep_due`; each batch is locked with SKIP LOCKED and decided
    in one transaction, so two sweeps at once, or a sweep and a claim, move money once, and a
    worker killed part way loses at most the batch in hand (rolled back; the next tick redoes
    it). Logs and returns rows looked at, acted on, skipped (by reason), held for agents, and
    the duration in milliseconds."""
    started, now = time.monotonic(), timezone.now()
    counts: Counter[str] = Counter()
    held: list[int] = []  # the first HELD_LISTED; admin lists them all (Incident, Order filter)
    looked_at, after, stopped = 0, None, False
    try:
        while looked_at < max_rows:
            batch = order_late_candidates(
                now=now, limit=min(batch_size, max_rows - looked_at), after=after
            )
            if batch:
                outcomes = late_orders_auto_refund(order_ids=[pk for _, pk in batch], now=now)
                counts.update(outcomes.values())
                held += [pk for pk, outcome in outcomes.items() if outcome == HELD]
                del held[HELD_LISTED:]
                looked_at += len(batch)
            if len(batch) < batch_size:
                break
            after = batch[-1]
    except SoftTimeLimitExceeded:
        stopped = True  # the batch in hand rolled back; the next tick goes on from the index
    acted = counts.pop(REFUNDED, 0)
    result = {
        "looked_at": looked_at,
        "acted_on": acted,
        "skipped": looked_at - acted,
        "skipped_by_reason": dict(counts),
        "held_for_agents": held,
        "stopped_at_time_limit": stopped,
        "duration_ms": round((time.monotonic() - started) * 1000, 1),
    }
    logger.info(
        "late sweep: %d looked at, %d refunded, %d skipped",
        result["looked_at"],
        result["acted_on"],
        result["skipped"],
        extra=result,
    )
    return result


@shared_task
@task_run_recorded
def close_payout_periods(batch_size: int = BATCH_SIZE) -> dict:
    """Close every ended weekly period of the restaurants' ledgers with its payout (L-9), a
    bounded batch of restaurants a run; each restaurant is locked with SKIP LOCKED, so two runs
    at once book each payout once. Counts restaurants closed, payouts booked, and restaurants
    skipped because another run held them."""
    now, tz = timezone.now(), timezone.get_current_timezone()
    counts = Counter(restaurants=0, payouts=0, skipped=0)
    for restaurant_id in restaurant_ids_with_periods_to_close(now=now, tz=tz, limit=batch_size):
        booked = restaurant_close_periods(restaurant_id=restaurant_id, now=now, tz=tz)
        if booked is None:
            counts["skipped"] += 1
        else:
            counts["restaurants"] += 1
            counts["payouts"] += len(booked)
    return dict(counts)


@shared_task
@task_run_recorded
def purge_held_photos(batch_size: int = BATCH_SIZE) -> dict:
    """Delete the photos buyers chose on the report-a-problem form but never sent, once older
    than a day, with their files (L-5.2 evidence is kept only on a request). Counts them."""
    return {"deleted": held_photos_purge(now=timezone.now(), limit=batch_size)}
