"""The restaurants' ledger (L-9): sales booked, fees kept, refunds deducted."""

from decimal import Decimal

from core.money import ZERO
from core.money_db import MoneySum
from orders.models import Order
from refunds.models import Refund, RestaurantLedgerEntry


def restaurant_ledger_record(
    *, restaurant_id: int, kind: str, amount: Decimal, order, description: str, refund=None
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
        description=description,
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
    more than its sale), one deduction per refund. Call while holding the order's row lock, when
    the refund has succeeded (`refunds.services.completion.refund_succeeded`). Raises no domain
    error."""
    booked = RestaurantLedgerEntry.objects.filter(
        order=order,
        kind__in=[RestaurantLedgerEntry.Kind.SALE, RestaurantLedgerEntry.Kind.REFUND_DEDUCTION],
    ).aggregate(total=MoneySum("amount"))["total"]
    for refund in refunds:
        deduction = min(refund.amount, booked)
        if deduction <= ZERO:
            return
        restaurant_ledger_record(
            restaurant_id=order.restaurant_id,
            kind=RestaurantLedgerEntry.Kind.REFUND_DEDUCTION,
            amount=-deduction,
            order=order,
            refund=refund,
            description=f"Refund deducted: order #{order.pk}",
        )
        booked -= deduction
