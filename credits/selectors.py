"""Read queries for credit."""

import datetime as dt

from django.conf import settings
from django.db.models import Exists, F, OuterRef, Q, QuerySet

from core.errors import InvalidInput
from core.money_db import MoneySum
from credits.models import CreditGrant, DiscountCode
from credits.policy import CreditFacts, DiscountCodeFacts
from orders.models import Order


def credit_grant_list_for_buyer(buyer) -> QuerySet[CreditGrant]:
    """The wallet: soonest-expiring first; account credit, which never expires, last."""
    return CreditGrant.objects.filter(buyer=buyer).order_by(
        F("expires_at").asc(nulls_last=True), "created_at"
    )


def credit_balance(buyer, *, now: dt.datetime) -> dict:
    """Usable credit by kind: unexpired promotional credit and account credit."""
    grants = CreditGrant.objects.filter(buyer=buyer, remaining__gt=0)
    promo = grants.filter(kind=CreditGrant.Kind.PROMO, expires_at__gt=now).aggregate(
        total=MoneySum("remaining")
    )["total"]
    account = grants.filter(kind=CreditGrant.Kind.ACCOUNT).aggregate(total=MoneySum("remaining"))[
        "total"
    ]
    return {"promo": promo, "account": account}


def discount_codes_used_by(buyer) -> QuerySet[DiscountCode]:
    return DiscountCode.objects.filter(orders__buyer=buyer).distinct()


def discount_code_find(
    code: str, *, buyer, for_update: bool = False
) -> tuple[DiscountCode, DiscountCodeFacts]:
    """A code by its text, described for the policy; `for_update` locks its row (placement)."""
    codes = (
        DiscountCode.objects.select_for_update(of=("self",)) if for_update else DiscountCode.objects
    )
    discount = codes.filter(code=code.strip().upper()).first()
    if discount is None:
        raise InvalidInput("code_unknown", f"There is no discount code {code.strip().upper()}.")
    facts = DiscountCodeFacts(
        code=discount.code,
        amount_off=discount.amount_off,
        percent_off=discount.percent_off,
        min_order_subtotal=discount.min_order_subtotal,
        restaurant_ids=frozenset(discount.restaurants.values_list("pk", flat=True)),
        is_multi_use=discount.is_multi_use,
        is_active=discount.is_active,
        valid_from=discount.valid_from,
        valid_until=discount.valid_until,
        issued_to_id=discount.issued_to_id,
        is_redeemed=discount.is_redeemed,
        used_by_buyer=discount.orders.filter(buyer=buyer).exists(),
        currency=settings.LOJIX_CURRENCY,
    )
    return discount, facts


def credit_facts(buyer, *, for_update: bool = False) -> list[CreditFacts]:
    """The buyer's grants that still hold credit, for the policy; `for_update` locks them."""
    grants = CreditGrant.objects.select_for_update() if for_update else CreditGrant.objects
    grants = grants.filter(buyer=buyer, remaining__gt=0).order_by("pk")
    return [CreditFacts(g.pk, g.kind, g.remaining, g.expires_at, g.created_at) for g in grants]


def discount_codes_with_use(queryset: QuerySet[DiscountCode]) -> QuerySet[DiscountCode]:
    """Codes annotated with `is_used`: redeemed, or named by an order (L-7.2)."""
    used = Exists(Order.objects.filter(discount_code=OuterRef("pk")))
    return queryset.annotate(is_used=Q(redeemed_on_order__isnull=False) | used)
