"""Row locks for disputes, taken after the order's (order, then request, then refund, then
chargeback; D-3)."""

from core.errors import DomainError
from disputes.models import Chargeback, Suspension


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
