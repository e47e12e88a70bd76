"""Read queries for credit."""

import datetime as dt

from django.db.models import F, QuerySet, Sum

from core.money import ZERO
from credits.models import CreditGrant, DiscountCode


def credit_grant_list_for_buyer(buyer) -> QuerySet[CreditGrant]:
    """The wallet: soonest-expiring first; account credit, which never expires, last."""
    return CreditGrant.objects.filter(buyer=buyer).order_by(
        F("expires_at").asc(nulls_last=True), "created_at"
    )


def credit_balance(buyer, *, now: dt.datetime) -> dict:
    """Usable credit by kind: unexpired promotional credit and account credit."""
    grants = CreditGrant.objects.filter(buyer=buyer, remaining__gt=0)
    promo = grants.filter(kind=CreditGrant.Kind.PROMO, expires_at__gt=now).aggregate(
        total=Sum("remaining")
    )["total"]
    account = grants.filter(kind=CreditGrant.Kind.ACCOUNT).aggregate(total=Sum("remaining"))[
        "total"
    ]
    return {"promo": promo or ZERO, "account": account or ZERO}


def credit_ids_to_expire(*, now: dt.datetime, limit: int) -> list[int]:
    return list(
        CreditGrant.objects.filter(
            kind=CreditGrant.Kind.PROMO, expires_at__lte=now, remaining__gt=0
        )
        .order_by("expires_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def discount_codes_used_by(buyer) -> QuerySet[DiscountCode]:
    return DiscountCode.objects.filter(orders__buyer=buyer).distinct()
