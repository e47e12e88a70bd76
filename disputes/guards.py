"""The checks every buyer action calls before it starts something new (L-8.2, L-7.2, D-4).

The bottom of the disputes app: any app's services call these (placing an order, cancelling,
reporting a missing order, a refund request, its evidence and replies, an escalation), so a
suspended buyer is refused the same way everywhere. They read, take no lock and change nothing.
"""

from core.errors import DomainError
from disputes.models import Chargeback, Suspension

SUSPENDED_DETAIL = (
    "Your account is suspended (L-8.2): you can still see your orders, requests and credit, "
    "but you cannot start anything new. Contact support to have it reviewed."
)


def buyer_active_suspension(user) -> Suspension | None:
    """The buyer's unlifted suspension, or None (anonymous users are never suspended)."""
    if user is None or not user.is_authenticated:
        return None
    return Suspension.objects.filter(buyer_id=user.pk, lifted_at__isnull=True).first()


def buyer_must_not_be_suspended(user) -> None:
    """Refuse anything new from a suspended buyer: DomainError `account_suspended` (403, clause
    L-8.2). Call first in every buyer service that starts something (an order, a cancellation,
    a missing-order report, a refund request, evidence, a reply, an escalation), before any
    money moves."""
    if buyer_active_suspension(user) is not None:
        raise DomainError(
            "account_suspended", SUSPENDED_DETAIL, clauses=["L-8.2"], kind="forbidden"
        )


def order_must_not_have_chargeback(order) -> None:
    """A refund request after a chargeback is refused (L-7.2, L-8.2): the bank is deciding, and
    a refund on top could take back more than was paid. DomainError `chargeback_filed` (409)."""
    if Chargeback.objects.filter(order_id=order.pk).exists():
        raise DomainError(
            "chargeback_filed",
            "Your bank has a chargeback on this order, so it cannot be refunded here as well: "
            "the bank's decision settles it.",
            clauses=["L-7.2", "L-8.2"],
        )
