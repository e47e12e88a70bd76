"""Order rules: pricing at placement (D-7, L-7.1, L-7.2). Pure: plain data in, a decision out.

Cancellation rules (L-2.1, L-2.2, K-B1..3, K-S1..3) join this module with the cancellation work.
"""

from dataclasses import dataclass
from decimal import Decimal

from core.money import ZERO, to_cents
from credits.policy import (
    CreditFacts,
    CreditSpend,
    DiscountCodeFacts,
    discount_amount,
    plan_credit_spend,
    usable_credits,
)


@dataclass(frozen=True)
class LineFacts:
    unit_price: Decimal
    quantity: int


@dataclass(frozen=True)
class OrderPrice:
    subtotal: Decimal
    delivery_fee: Decimal
    discount_amount: Decimal
    total: Decimal
    promo_credit_applied: Decimal
    account_credit_applied: Decimal
    amount_charged: Decimal
    credit_spends: tuple[CreditSpend, ...]
    clauses: tuple[str, ...]

    @property
    def amount_paid(self) -> Decimal:
        return self.amount_charged + self.account_credit_applied


def price_order(
    *,
    lines: list[LineFacts],
    delivery_fee: Decimal,
    discount: DiscountCodeFacts | None,
    credits: list[CreditFacts],
    use_credit: bool,
    promo_credit_min_order: Decimal,
    now,
) -> OrderPrice:
    """The order's money (D-7): lines, delivery fee, the code's discount (L-7.2), then credit
    oldest-expiring first, promotional credit only when the order qualifies (L-7.1); the card
    pays the rest."""
    subtotal = to_cents(sum((line.unit_price * line.quantity for line in lines), ZERO))
    discount_off = discount_amount(discount, subtotal) if discount else ZERO
    total = subtotal + delivery_fee - discount_off
    promo_allowed = subtotal - discount_off >= promo_credit_min_order
    spends = (
        plan_credit_spend(usable_credits(credits, promo_allowed=promo_allowed, now=now), total)
        if use_credit
        else []
    )
    promo = sum((s.amount for s in spends if s.kind == "promo"), ZERO)
    account = sum((s.amount for s in spends if s.kind == "account"), ZERO)
    clauses = (("L-7.2",) if discount else ()) + (("L-7.1",) if spends else ())
    return OrderPrice(
        subtotal=subtotal,
        delivery_fee=delivery_fee,
        discount_amount=discount_off,
        total=total,
        promo_credit_applied=promo,
        account_credit_applied=account,
        amount_charged=total - promo - account,
        credit_spends=tuple(spends),
        clauses=clauses,
    )
