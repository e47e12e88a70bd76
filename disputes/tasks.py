"""Timed oversight rules (D-8, K-OV)."""

from celery import shared_task
from django.utils import timezone

from core.services import task_run_recorded
from disputes.selectors import (
    chargeback_ids_unsettled,
    escalation_ids_due_for_sweep,
    order_ids_with_unanswered_cancellation,
    refund_requests_with_unanswered_verification,
)
from disputes.services.chargebacks import chargeback_settle
from disputes.services.escalations import escalation_check_due
from disputes.services.interventions import (
    intervention_hand_over_cancellation_request,
    intervention_hand_over_unanswered_verification,
)

BATCH_SIZE = 200


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
