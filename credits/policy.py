"""Credit and discount-code rules (L-7.1, L-7.2). Pure: plain data in, a decision out."""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from core.money import ZERO, amount_text, percent_of


@dataclass(frozen=True)
class DiscountCodeFacts:
    code: str
    amount_off: Decimal | None
    percent_off: Decimal | None
    min_order_subtotal: Decimal
    restaurant_ids: frozenset[int]
    is_multi_use: bool
    is_active: bool
    valid_from: dt.datetime
    valid_until: dt.datetime | None
    issued_to_id: int | None
    is_redeemed: bool
    used_by_buyer: bool
    currency: str = ""  # the deployment's, for the amounts in refusals


@dataclass(frozen=True)
class CodeDecision:
    allowed: bool
    code: str
    detail: str
    clauses: tuple[str, ...] = ("L-7.2",)


def discount_code_check(
    facts: DiscountCodeFacts, *, buyer_id: int, restaurant_id: int, subtotal: Decimal, now
) -> CodeDecision:
    """Whether a code qualifies for this order; a used code cannot be reused (L-7.2)."""
    refusals = [
        (not facts.is_active or now < facts.valid_from, "code_inactive", "is not active."),
        (
            facts.valid_until is not None and now >= facts.valid_until,
            "code_expired",
            "has expired.",
        ),
        (
            facts.issued_to_id is not None and facts.issued_to_id != buyer_id,
            "code_not_yours",
            "was issued to another account.",
        ),
        (facts.is_redeemed or facts.used_by_buyer, "code_used", "has already been used."),
        (
            bool(facts.restaurant_ids) and restaurant_id not in facts.restaurant_ids,
            "code_wrong_restaurant",
            "is not valid at this restaurant.",
        ),
        (
            subtotal < facts.min_order_subtotal,
            "code_min_order",
            f"needs an order of at least {amount_text(facts.min_order_subtotal, facts.currency)}.",
        ),
    ]
    for refused, code, reason in refusals:
        if refused:
            return CodeDecision(False, code, f"The code {facts.code} {reason}")
    return CodeDecision(True, "code_ok", f"The code {facts.code} applies.")


def discount_amount(facts: DiscountCodeFacts, subtotal: Decimal) -> Decimal:
    """What the code takes off, never more than the subtotal."""
    if facts.amount_off is not None:
        return min(facts.amount_off, subtotal)
    return min(percent_of(subtotal, facts.percent_off), subtotal)


@dataclass(frozen=True)
class CreditFacts:
    grant_id: int
    kind: str  # "promo" | "account"
    remaining: Decimal
    expires_at: dt.datetime | None
    created_at: dt.datetime


@dataclass(frozen=True)
class CreditSpend:
    grant_id: int
    kind: str
    amount: Decimal


def usable_credits(credits: list[CreditFacts], *, promo_allowed: bool, now) -> list[CreditFacts]:
    """Credit that can pay for an order, oldest-expiring first (account credit never expires,
    so it comes last); promotional credit only on a qualifying order and before it expires
    (L-7.1)."""
    usable = [
        c
        for c in credits
        if c.remaining > ZERO
        and (
            c.kind == "account"
            or (promo_allowed and c.expires_at is not None and c.expires_at > now)
        )
    ]
    far_future = dt.datetime.max.replace(tzinfo=dt.UTC)
    return sorted(usable, key=lambda c: (c.expires_at or far_future, c.created_at, c.grant_id))


def plan_credit_spend(credits: list[CreditFacts], amount: Decimal) -> list[CreditSpend]:
    """Take up to `amount` from `credits` in the order given."""
    plan, left = [], amount
    for credit in credits:
        if left <= ZERO:
            break
        take = min(credit.remaining, left)
        plan.append(CreditSpend(credit.grant_id, credit.kind, take))
        left -= take
    return plan
