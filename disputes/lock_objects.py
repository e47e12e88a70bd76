"""Row locks for disputes, taken after the order's and the refund request's (D-3): order, then
request, then refund, then escalation, chargeback or incident."""

from core.errors import DomainError
from disputes.models import Chargeback, Escalation, Incident, Suspension


def escalation_for_update(escalation_id: int) -> Escalation:
    """Lock an escalation row (its order, request and buyer loaded). Call inside a transaction,
    after locking its order and request. Raises DomainError `not_found` (404)."""
    escalation = (
        Escalation.objects.select_for_update(of=("self",))
        .select_related("order", "order__policy_version", "refund_request", "buyer")
        .filter(pk=escalation_id)
        .first()
    )
    if escalation is None:
        raise DomainError("not_found", f"There is no escalation {escalation_id}.", kind="not_found")
    return escalation


def escalation_for_update_skip_locked(escalation_id: int) -> Escalation | None:
    """Lock an escalation for a sweep, or None while another transaction holds it (the next run
    takes it). Call inside a transaction; re-check its state under the lock."""
    return (
        Escalation.objects.select_for_update(of=("self",), skip_locked=True)
        .select_related("order", "order__policy_version", "buyer")
        .filter(pk=escalation_id)
        .first()
    )


def chargeback_for_update(chargeback_id: int) -> Chargeback:
    """Lock a chargeback row (with its order and payment loaded). Call inside a transaction,
    after locking its order. Raises DomainError `not_found` (404)."""
    chargeback = (
        Chargeback.objects.select_for_update(of=("self",))
        .select_related("order", "payment")
        .filter(pk=chargeback_id)
        .first()
    )
    if chargeback is None:
        raise DomainError("not_found", f"There is no chargeback {chargeback_id}.", kind="not_found")
    return chargeback


def suspension_active_for_update(buyer_id: int) -> Suspension | None:
    """Lock the buyer's unlifted suspension, or None. Call inside a transaction."""
    return (
        Suspension.objects.select_for_update()
        .filter(buyer_id=buyer_id, lifted_at__isnull=True)
        .first()
    )


def incident_for_update(incident_id: int) -> Incident:
    """Lock an incident row for a decision. Call inside a transaction. Raises DomainError
    `not_found` (404)."""
    incident = Incident.objects.select_for_update(of=("self",)).filter(pk=incident_id).first()
    if incident is None:
        raise DomainError("not_found", f"There is no incident {incident_id}.", kind="not_found")
    return incident
