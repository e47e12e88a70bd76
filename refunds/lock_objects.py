"""Row locks for refunds, always taken in one order: order, then request, then refund (D-3)."""

from core.errors import DomainError
from refunds.models import Refund, RefundRequest


def refund_request_for_update(request_id: int, *, buyer=None) -> RefundRequest:
    """Lock a refund request (with its order, version, restaurant and buyer loaded).

    Call inside a transaction, after locking the order if the caller locks it too. With
    `buyer`, another buyer's request is not found. Raises DomainError `not_found` (404).
    """
    request = (
        RefundRequest.objects.select_for_update(of=("self",))
        .select_related("order", "order__policy_version", "order__restaurant", "buyer")
        .filter(pk=request_id)
        .first()
    )
    if request is None or (buyer is not None and request.buyer_id != buyer.pk):
        raise DomainError(
            "not_found", f"There is no refund request {request_id}.", kind="not_found"
        )
    return request


def refund_for_update(refund_id: int) -> Refund:
    """Lock one refund row (its money movement). Call inside a transaction, last of the locks."""
    return (
        Refund.objects.select_for_update(of=("self",)).select_related("payment").get(pk=refund_id)
    )
