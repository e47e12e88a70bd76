"""Every write to credit and discount codes: grants, spends, expiry, redemption (L-7)."""

import datetime as dt
from decimal import Decimal

from django.db import transaction
from django.db.models import F

from core.display import when_text
from core.errors import InvalidInput
from core.roles import User
from credits.models import CreditGrant, CreditTransaction, DiscountCode


def credit_grant(
    *,
    buyer: User,
    kind: str,
    amount: Decimal,
    source: str,
    reason: str,
    expires_at: dt.datetime | None = None,
    order=None,
    refund=None,
    granted_by: User | None = None,
) -> CreditGrant:
    """A grant of `amount` (deployment currency), not yet saved: promotional credit expires at
    `expires_at` (L-7.1), account credit never does (D-5); `granted_by` is the person who
    decided it (None for the policy)."""
    return CreditGrant(
        buyer=buyer,
        kind=kind,
        amount=amount,
        remaining=amount,
        expires_at=expires_at,
        source=source,
        reason=reason,
        order=order,
        # By id: assigning the instance would cache the grant on the refund too, a reference
        # cycle that keeps a whole batch of refunds alive until the next full collection.
        refund_id=refund.pk if refund is not None else None,
        granted_by=granted_by,
    )


def credit_grant_create(**fields) -> CreditGrant:
    """Give a buyer credit (the fields of `credit_grant`), with its `grant` ledger entry. Takes
    no lock (a new grant has no competitor); call inside the transaction that causes it. Raises
    no domain error; the database refuses (IntegrityError) a negative amount."""
    (grant,) = credit_grants_create([credit_grant(**fields)])
    return grant


def credit_grants_create(grants: list[CreditGrant]) -> list[CreditGrant]:
    """Save `credit_grant`s with their `grant` ledger entries, two inserts for any number (a
    batch of refunds, D-8). Same lock and errors as `credit_grant_create`."""
    CreditGrant.objects.bulk_create(grants)
    CreditTransaction.objects.bulk_create(
        CreditTransaction(
            grant=grant,
            buyer_id=grant.buyer_id,
            kind=CreditTransaction.Kind.GRANT,
            amount=grant.amount,
            order=grant.order,
        )
        for grant in grants
    )
    return grants


def credit_spend(*, grant_id: int, amount: Decimal, order) -> None:
    """Spend `amount` of a grant on an order at checkout (L-7.1, D-7), with its `spend` ledger
    entry.

    The caller holds the grant's row lock (`selectors.credit_facts(..., for_update=True)`) and
    has checked the amount against `remaining`. Raises no domain error; the database refuses
    (IntegrityError) a spend that would take `remaining` below zero.
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
def credit_expire_due(*, now: dt.datetime, limit: int, grant_ids=None) -> int:
    """Expire what is left of promotional grants past `expires_at` (L-7.1), up to `limit` of
    them (or just `grant_ids`), in one transaction. Grants another run has locked are skipped,
    so two runs at once expire each grant once: locks the grants it expires (`SKIP LOCKED`).
    Returns how many expired. Raises no domain error."""
    due = CreditGrant.objects.filter(
        kind=CreditGrant.Kind.PROMO, expires_at__lte=now, remaining__gt=0
    )
    if grant_ids is not None:
        due = due.filter(pk__in=grant_ids)
    grants = list(due.select_for_update(skip_locked=True).order_by("expires_at", "pk")[:limit])
    CreditTransaction.objects.bulk_create(
        CreditTransaction(
            grant=grant,
            buyer_id=grant.buyer_id,
            kind=CreditTransaction.Kind.EXPIRY,
            amount=-grant.remaining,
            note=f"Expired {when_text(grant.expires_at)} (L-7.1)",
            created_at=now,
        )
        for grant in grants
    )
    CreditGrant.objects.filter(pk__in=[g.pk for g in grants]).update(remaining=Decimal("0.00"))
    return len(grants)


def credit_expire(*, grant_id: int, now: dt.datetime) -> bool:
    """Expire one promotional grant if it is due (L-7.1); running it twice expires nothing more.
    Locks the grant (skipped if another run holds it). Returns whether it expired it now. Raises
    no domain error."""
    return credit_expire_due(now=now, limit=1, grant_ids=[grant_id]) == 1


def discount_code_redeem(*, discount: DiscountCode, order, now: dt.datetime) -> None:
    """Mark a single-use code used by this order; it stays used whatever happens to the order
    (L-7.2). Takes no row lock: the conditional update is the last guard against a concurrent
    redemption. Raises InvalidInput `code_used` (400, L-7.2) when another order took it."""
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
    restores nothing more. Call while holding the order's row lock; locks each grant it
    restores. Raises no domain error."""
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
