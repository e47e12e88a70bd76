"""Timed oversight rules (D-8, K-OV)."""

import logging
from collections import Counter

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.utils import timezone

from core.services import task_run_recorded
from disputes.selectors import (
    chargeback_ids_unsettled,
    escalation_ids_due_for_sweep,
    incident_for_refund_run,
    incident_ids_refunding,
    incident_restaurant_ids,
    order_ids_with_unanswered_cancellation,
    outage_order_ids_to_refund,
    refund_requests_with_unanswered_verification,
)
from disputes.services.chargebacks import chargeback_settle
from disputes.services.escalations import escalation_check_due
from disputes.services.interventions import (
    intervention_hand_over_cancellation_request,
    intervention_hand_over_unanswered_verification,
)
from disputes.services.outages import BUSY, outage_orders_refund, outage_refund_finish

BATCH_SIZE = 200
logger = logging.getLogger(__name__)


@shared_task
@task_run_recorded
def hand_unanswered_cancellation_requests_to_support(batch_size: int = BATCH_SIZE) -> int:
    """Hand cancellation requests the restaurant left unanswered to support (K-OV), a bounded
    batch at a time; safe to run twice at once (one open case per order, by constraint)."""
    now = timezone.now()
    ids = order_ids_with_unanswered_cancellation(now=now, limit=batch_size)
    return sum(intervention_hand_over_cancellation_request(order_id=i, now=now) for i in ids)


@shared_task
@task_run_recorded
def hand_unanswered_verifications_to_support(batch_size: int = BATCH_SIZE) -> int:
    """Give support back the refund requests whose restaurant left a verification request
    unanswered past the version's `verification_response_hours` (K-OV, L-4.1), a bounded batch
    at a time; safe to run twice at once (SKIP LOCKED on the order, one open case per order and
    kind by constraint). Returns how many it handed over."""
    now = timezone.now()
    due = refund_requests_with_unanswered_verification(now=now, limit=batch_size)
    return sum(
        intervention_hand_over_unanswered_verification(request_id=r, order_id=o, now=now)
        for r, o in due
    )


@shared_task
@task_run_recorded
def escalation_due_dates(batch_size: int = BATCH_SIZE) -> dict:
    """L-8.1 / K-OV: flag escalations due soon (3 business days in) and tell supervisors of the
    overdue ones (past 5), once each, a bounded batch at a time; safe to run twice at once
    (SKIP LOCKED, re-checked under the lock). Returns the counts of each."""
    now = timezone.now()
    done = [
        escalation_check_due(escalation_id=pk, now=now)
        for pk in escalation_ids_due_for_sweep(now=now, limit=batch_size)
    ]
    return {"due_soon": done.count("due_soon"), "overdue": done.count("overdue")}


@shared_task
def settle_chargeback(chargeback_id: int) -> str:
    """Move a lost or accepted chargeback's money back through the processor (L-8.2, D-7):
    requested through the outbox by the decision; safe to run twice (one processor key)."""
    return chargeback_settle(chargeback_id=chargeback_id)


@shared_task
@task_run_recorded
def settle_chargebacks(batch_size: int = BATCH_SIZE) -> dict:
    """Retry the settlements the processor did not confirm (an error, a lost answer), a bounded
    batch at a time (L-8.2, D-7). Returns the count per outcome."""
    outcomes: dict[str, int] = {}
    for chargeback_id in chargeback_ids_unsettled(limit=batch_size):
        outcome = chargeback_settle(chargeback_id=chargeback_id)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


# -- outages (L-10) ----------------------------------------------------------------------------

OUTAGE_MAX_ROWS = 20_000
OUTAGES_PER_TICK = 5


@shared_task(soft_time_limit=240, time_limit=270)
def refund_outage(
    incident_id: int, batch_size: int | None = None, max_rows: int = OUTAGE_MAX_ROWS
) -> dict:
    """Refund an outage's affected orders in full (L-10), a batch (default
    `LOJIX_OUTAGE_BATCH_SIZE`) per transaction; requested through the outbox when a supervisor
    starts (or resumes) it, and by `refund_outages` on beat until it is done. Counts by outcome;
    `finished` when this run closed the outage."""
    return outage_refund_run(incident_id=incident_id, batch_size=batch_size, max_rows=max_rows)


@shared_task(soft_time_limit=50, time_limit=55)
@task_run_recorded
def refund_outages(batch_size: int | None = None, max_rows: int = OUTAGE_MAX_ROWS) -> dict:
    """Resume every outage bulk refund started and not finished (L-10; a worker died, or the
    broker lost the request), on beat every minute; safe beside a run already going (SKIP
    LOCKED, one key per order). Counts by outcome over the outages it worked on."""
    counts: Counter[str] = Counter()
    for incident_id in incident_ids_refunding(limit=OUTAGES_PER_TICK):
        result = outage_refund_run(
            incident_id=incident_id, batch_size=batch_size, max_rows=max_rows
        )
        counts.update({k: int(v) for k, v in result.items() if isinstance(v, int)})
        if result.get("stopped_at_time_limit"):
            break  # the hard limit is near: the next tick goes on
    return dict(counts)


def outage_refund_run(*, incident_id: int, batch_size: int | None, max_rows: int) -> dict:
    """One pass over what an outage still has to refund, in keyset batches; when the pass went
    to the end and nothing is left to refund, the outage is finished (closed, summary told).
    A time limit stops it between batches; the next tick goes on."""
    batch_size = batch_size or settings.LOJIX_OUTAGE_BATCH_SIZE
    incident = incident_for_refund_run(incident_id)
    if incident is None:
        return {"finished": False}
    restaurant_ids = incident_restaurant_ids(incident)
    counts: Counter[str] = Counter()
    looked_at, after, complete, stopped = 0, None, False, False
    try:
        while looked_at < max_rows:
            ids = outage_order_ids_to_refund(
                incident, restaurant_ids=restaurant_ids, after=after, limit=batch_size
            )
            if ids:
                counts.update(
                    outage_orders_refund(
                        incident=incident, order_ids=ids, now=timezone.now()
                    ).values()
                )
                looked_at += len(ids)
                after = ids[-1]
            if len(ids) < batch_size:
                complete = True
                break
    except SoftTimeLimitExceeded:
        stopped = True  # the batch in hand rolled back; the next tick goes on
    # Done when nothing is left: this pass met no order another run held, or (it did) those
    # runs have committed them since. Of runs ending together the last to commit sees it.
    finished = complete and (
        not counts[BUSY]
        or not outage_order_ids_to_refund(
            incident, restaurant_ids=restaurant_ids, after=None, limit=1
        )
    )
    if finished:
        finished = outage_refund_finish(incident_id=incident_id, now=timezone.now())
    result = {
        "looked_at": looked_at,
        **counts,
        "finished": finished,
        "stopped_at_time_limit": stopped,
    }
    logger.info(
        "outage %s bulk refund: %s", incident_id, result, extra={"incident": incident_id, **result}
    )
    return result
