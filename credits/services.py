"""Every write to credit and discount codes: grants, spends, expiry, redemption (L-7)."""

import datetime as dt
from decimal import Decimal

from django.db import transaction
from django.db.models import F

from core.errors import InvalidInput
from credits.models import CreditGrant, CreditTransaction, DiscountCode


def credit_grant_create(
    *,
    buyer,
    kind: str,
    amount: Decimal,
    source: str,
    reason: str,
    expires_at: dt.datetime | None = None,
    order=None,
    refund=None,
    granted_by=None,
) -> CreditGrant:
    """Give a buyer credit, with its `grant` ledger entry."""
    grant = CreditGrant.objects.create(
        buyer=buyer,
        kind=kind,
        amount=amount,
        remaining=amount,
        expires_at=expires_at,
        source=source,
        reason=reason,
        order=order,
        refund=refund,
        granted_by=granted_by,
    )
    CreditTransaction.objects.create(
        grant=grant, buyer=buyer, kind=CreditTransaction.Kind.GRANT, amount=amount, order=order
    )
    return grant


def credit_spend(*, grant_id: int, amount: Decimal, order) -> None:
    """Spend part of a grant on an order.

    The caller holds the grant's row lock (`selectors.credit_facts(..., for_update=True)`).
    """
    CreditGrant.objects.filter(pk=grant_id).update(remaining=F("remaining") - amount)
    CreditTransaction.objects.create(
        grant_id=grant_id,
        buyer_id=order.buyer_id,
        kind=CreditTransaction.Kind.SPEND,
        amount=-amount,
        order=order,
    )


@transaction.atomic
def credit_expire(*, grant_id: int, now: dt.datetime) -> bool:
    """Expire what is left of a promotional grant past `expires_at` (L-7.1). Returns whether
    anything expired; running it twice expires nothing more."""
    grant = (
        CreditGrant.objects.select_for_update()
        .filter(pk=grant_id, kind=CreditGrant.Kind.PROMO, expires_at__lte=now, remaining__gt=0)
        .first()
    )
    if grant is None:
        return False
    CreditTransaction.objects.create(
        grant=grant,
        buyer_id=grant.buyer_id,
        kind=CreditTransaction.Kind.EXPIRY,
        amount=-grant.remaining,
        note=f"Expired {grant.expires_at:%Y-%m-%d %H:%M} UTC (L-7.1)",
    )
    grant.remaining = Decimal("0.00")
    grant.save(update_fields=["remaining"])
    return True


def discount_code_redeem(*, discount: DiscountCode, order, now: dt.datetime) -> None:
    """Mark a single-use code used by this order; it stays used whatever happens to the order
    (L-7.2). The conditional update is the last guard against a concurrent redemption."""
    if discount.is_multi_use:
        return
    updated = DiscountCode.objects.filter(pk=discount.pk, redeemed_on_order__isnull=True).update(
        redeemed_on_order=order, redeemed_by=order.buyer, redeemed_at=now
    )
    if updated != 1:
        raise InvalidInput(
            "code_used", f"The code {discount.code} has already been used.", clauses=["L-7.2"]
        )


def credit_restore_for_order(*, order, now: dt.datetime) -> Decimal:
    """Give back the promotional credit a cancelled order spent, to the grants it came from and
    with their expiry (the order never happened; L-7.1 forbids only paying it out as money).
    Grants already expired stay expired. Returns the amount restored; running it twice
    restores nothing more."""
    spends = CreditTransaction.objects.filter(
        order=order, kind=CreditTransaction.Kind.SPEND, grant__kind=CreditGrant.Kind.PROMO
    ).select_related("grant")
    restored = Decimal("0.00")
    for spend in spends:
        grant = CreditGrant.objects.select_for_update().get(pk=spend.grant_id)
        already = CreditTransaction.objects.filter(
            grant=grant, order=order, kind=CreditTransaction.Kind.RESTORE
        ).exists()
        if already or grant.expires_at <= now:
            continue
        CreditTransaction.objects.create(
            grant=grant,
            buyer_id=grant.buyer_id,
            kind=CreditTransaction.Kind.RESTORE,
            amount=-spend.amount,
            order=order,
            note=f"Order #{order.pk} cancelled",
        )
        CreditGrant.objects.filter(pk=grant.pk).update(remaining=F("remaining") - spend.amount)
        restored -= spend.amount
    return restored
