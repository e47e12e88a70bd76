"""The restaurants' ledger (L-9): sales booked, fees kept, refunds deducted."""

from decimal import Decimal

from django.urls import reverse

from core.display import money_text
from core.money import ZERO
from core.money_db import MoneySum
from core.services import notify_restaurant
from orders.models import Order
from refunds import policy
from refunds.models import Refund, RestaurantLedgerEntry


def restaurant_ledger_record(
    *,
    restaurant_id: int,
    kind: str,
    amount: Decimal,
    order,
    description: str,
    refund=None,
    reverses=None,
    period_starts_on=None,
    created_at=None,
):
    """Add an entry to a restaurant's ledger (L-9): `amount` signed, in the deployment's
    currency, what the platform owes is positive. Call inside the caller's transaction, while
    holding the order's row lock. Raises no domain error; the database refuses (IntegrityError)
    a sale or a kept cancellation fee that is not positive."""
    return RestaurantLedgerEntry.objects.create(
        restaurant_id=restaurant_id,
        kind=kind,
        amount=amount,
        order=order,
        refund=refund,
        reverses=reverses,
        period_starts_on=period_starts_on,
        description=description,
        **({"created_at": created_at} if created_at is not None else {}),
    )


def restaurant_record_sale(order: Order) -> None:
    """Book a fulfilled order to its restaurant (L-9): the food value, less the restaurant's
    discount (credit and the delivery fee are the platform's). A free replacement books nothing.
    Call while holding the order's row lock (`order_advance` does). Raises no domain error."""
    if order.subtotal - order.discount_amount <= ZERO:
        return
    restaurant_ledger_record(
        restaurant_id=order.restaurant_id,
        kind=RestaurantLedgerEntry.Kind.SALE,
        amount=order.subtotal - order.discount_amount,
        order=order,
        description=f"Sale: order #{order.pk}",
    )


def restaurant_deduct_refunds(order: Order, refunds: list[Refund]) -> None:
    """L-9: a refund the restaurant caused comes off what it was booked for the order (never
    more than its sale, less what was already deducted and not reversed), one deduction per
    refund; the restaurant's partners are told each one with its reason and clause, and that
    they may dispute it once. Call while holding the order's row lock, when the refund has
    succeeded (`refunds.services.completion.refund_succeeded`). Raises no domain error."""
    booked = RestaurantLedgerEntry.objects.filter(
        order=order,
        kind__in=[
            RestaurantLedgerEntry.Kind.SALE,
            RestaurantLedgerEntry.Kind.REFUND_DEDUCTION,
            RestaurantLedgerEntry.Kind.DEDUCTION_REVERSAL,
        ],
    ).aggregate(total=MoneySum("amount"))["total"]
    for refund in refunds:
        deduction = min(refund.amount, booked)
        if deduction <= ZERO:
            return
        entry = restaurant_ledger_record(
            restaurant_id=order.restaurant_id,
            kind=RestaurantLedgerEntry.Kind.REFUND_DEDUCTION,
            amount=-deduction,
            order=order,
            refund=refund,
            description=f"Refund deducted: order #{order.pk}, {refund.reason}"[:240],
        )
        _deduction_notice(entry, refund)
        booked -= deduction


def _deduction_notice(entry: RestaurantLedgerEntry, refund: Refund) -> None:
    """Tell the restaurant's partners of a deduction, its reason and clauses (L-9), and that
    they may dispute it once from the ledger (K-DR)."""
    amount = money_text(-entry.amount)
    clauses = ", ".join(policy.deduction_clauses(refund.clauses))
    notify_restaurant(
        entry.order.restaurant,
        title=f"Order #{entry.order_id}: {amount} deducted from your payout",
        body=(
            f"The buyer was refunded for: {refund.reason}. Refunds due to restaurant error are "
            f"deducted from payouts (clauses {clauses}). If this was not your restaurant's "
            "error, you can dispute the deduction once, with a note, from your ledger."
        ),
        url=reverse("seller:deduction-dispute", args=[entry.pk]),
    )
