"""Refund rules: where money goes back (D-7, L-4.3) and when it arrives (L-4.2). Pure."""

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from core.money import ZERO, to_cents


@dataclass(frozen=True)
class PaidFacts:
    """What the buyer paid for an order and what has gone back already."""

    amount_charged: Decimal
    account_credit_applied: Decimal
    refunded_to_card: Decimal
    refunded_total: Decimal

    @property
    def amount_paid(self) -> Decimal:
        return self.amount_charged + self.account_credit_applied

    @property
    def refundable(self) -> Decimal:
        return self.amount_paid - self.refunded_total

    @property
    def card_refundable(self) -> Decimal:
        return self.amount_charged - self.refunded_to_card


@dataclass(frozen=True)
class RefundPart:
    destination: str  # "card" | "account_credit"
    amount: Decimal


def split_refund(amount: Decimal, paid: PaidFacts, *, method: str) -> list[RefundPart]:
    """Split a refund between card and account credit (D-7, L-4.3).

    `original` sends money back where it came from, in proportion to how the order was paid
    (the card part never more than the card can still take back); `account_credit` sends it
    all as account credit, available at once.
    """
    if method == "account_credit":
        return [RefundPart("account_credit", amount)]
    card_share = (
        to_cents(amount * paid.amount_charged / paid.amount_paid) if paid.amount_paid else ZERO
    )
    card = min(card_share, paid.card_refundable, amount)
    parts = [RefundPart("card", card), RefundPart("account_credit", amount - card)]
    return [part for part in parts if part.amount > ZERO]


@dataclass(frozen=True)
class RefundDates:
    processed_by: dt.date
    in_bank_from: dt.date | None
    in_bank_by: dt.date | None


def refund_dates(
    *,
    destination: str,
    on: dt.date,
    processing_min_days: int,
    processing_max_days: int,
    bank_min_days: int,
    bank_max_days: int,
    add_business_days: Callable[[dt.date, int], dt.date],
) -> RefundDates:
    """Expected dates (L-4.2): processed within the processing days, then at the bank within
    the bank days for a card; credit is available at once (L-4.3)."""
    if destination != "card":
        return RefundDates(processed_by=on, in_bank_from=None, in_bank_by=None)
    processed_by = add_business_days(on, processing_max_days)
    return RefundDates(
        processed_by=processed_by,
        in_bank_from=add_business_days(add_business_days(on, processing_min_days), bank_min_days),
        in_bank_by=add_business_days(processed_by, bank_max_days),
    )
